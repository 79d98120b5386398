//! The transaction state machine of DESIGN.md.
//!
//! ```text
//! Prepared ──> Applied ──> Gating ──> Auditing ──> Audited ──> Committed
//!    │            │           │           │           │
//!    └────────────┴───────────┴───────────┴───────────┴──> RollingBack ──> RolledBack
//!                                                                └──────────> NeedsManual
//! ```
//!
//! [`Engine::run`] drives one transaction over a list of file operations; [`recover`] finishes
//! or reverts whatever a crash left open. The engine is generic over the seams (storage, gate,
//! audit, clock) so that tests can script every transition and crash anywhere.

mod recover;

pub use recover::{recover, Policy, RecoverReport, RecoveredTxn};

use crate::audit::{Audit, AuditRequest};
use crate::durable::{hash, DurableError, FileMeta, Storage};
use crate::gate::{Gate, GateRequest, GateVerdict, Observation, Purpose};
use crate::journal::{
    AuditSpec, Durable, Event, EventKind, FileRecord, GateSpec, Image, Journal, JournalError,
    RollbackCause, Side, State, TxId, TxnKind, TxnRecord,
};
use crate::journal::{JournalRead, Transition};
use kharden_manifest::Change;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall-clock time, injectable.
pub trait Clock {
    fn now(&self) -> SystemTime;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

pub fn to_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// One file of a plan.
#[derive(Debug, Clone)]
pub struct FileOp {
    pub path: PathBuf,
    /// New contents; `None` deletes the file.
    pub after: Option<Vec<u8>>,
    /// The contents the caller computed `after` from (`None`: the file was absent). The
    /// transaction is refused when the file changed since.
    pub expect_before: Option<Option<[u8; 32]>>,
    pub changes: Vec<Change>,
    /// A static pod manifest whose component the gate must see restarted.
    pub gated: bool,
}

/// A transaction to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub kind: TxnKind,
    pub summary: String,
    pub ops: Vec<FileOp>,
    pub gate: GateSpec,
    pub audit: AuditSpec,
}

/// How a transaction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to change: not journaled.
    Unchanged,
    Committed {
        txid: TxId,
    },
    RolledBack {
        txid: TxId,
        cause: RollbackCause,
        reason: String,
    },
    NeedsManual {
        txid: TxId,
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Durable(#[from] DurableError),
    #[error("{path}: changed since it was read; nothing was written")]
    Changed { path: PathBuf },
    #[error("transaction {txid} is {state}, not committed: only a committed transaction can be rolled back")]
    NotCommitted { txid: TxId, state: State },
    #[error(
        "{path} no longer holds transaction {txid}'s after-contents; refusing to roll back over it"
    )]
    Diverged { txid: TxId, path: String },
    #[error("{path}: the same file appears twice in one transaction")]
    DuplicatePath { path: PathBuf },
    #[error(
        "{path} belongs to transaction {txid}, which needs manual intervention: restore it (kharden journal show {txid}), then run `kharden journal resolve {txid}`; nothing was changed"
    )]
    Unresolved { txid: TxId, path: String },
}

/// The engine: one journal, one storage, one gate, one audit, one clock.
pub struct Engine<'a> {
    pub journal: &'a Journal,
    pub storage: &'a dyn Storage,
    pub gate: &'a dyn Gate,
    pub audit: &'a dyn Audit,
    pub clock: &'a dyn Clock,
}

fn image(contents: &[u8], meta: FileMeta) -> Image {
    Image {
        hash: hash(contents),
        len: contents.len() as u64,
        meta,
    }
}

impl<'a> Engine<'a> {
    fn now_ms(&self) -> u64 {
        to_ms(self.clock.now())
    }

    fn event(&self, id: TxId, kind: EventKind, durable: Durable) -> Result<(), TxnError> {
        Ok(self
            .journal
            .add_events(id, vec![kind], durable, self.now_ms())?)
    }

    /// Run a plan to its end: Unchanged, Committed, RolledBack or NeedsManual.
    pub fn run(&self, plan: Plan) -> Result<Outcome, TxnError> {
        // Read every file first; drop operations that change nothing.
        let mut files = Vec::new();
        let mut blobs: Vec<Vec<u8>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for op in &plan.ops {
            if !seen.insert(op.path.clone()) {
                return Err(TxnError::DuplicatePath {
                    path: op.path.clone(),
                });
            }
            let current = self.storage.read(&op.path)?;
            if let Some(expect) = op.expect_before {
                if current.as_ref().map(|c| hash(&c.contents)) != expect {
                    return Err(TxnError::Changed {
                        path: op.path.clone(),
                    });
                }
            }
            let same = match (&current, &op.after) {
                (None, None) => true,
                (Some(c), Some(a)) => &c.contents == a,
                _ => false,
            };
            if same {
                continue;
            }
            let meta = current
                .as_ref()
                .map(|c| c.meta)
                .unwrap_or(FileMeta::NEW_FILE);
            let before = current.as_ref().map(|c| image(&c.contents, c.meta));
            let after = op.after.as_ref().map(|a| image(a, meta));
            if let Some(c) = current {
                blobs.push(c.contents);
            }
            if let Some(a) = &op.after {
                blobs.push(a.clone());
            }
            files.push(FileRecord {
                path: op.path.to_string_lossy().into_owned(),
                before,
                after,
                changes: op.changes.clone(),
                gated: op.gated,
            });
        }
        if files.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        self.refuse_unresolved(&files)?;
        let now = self.clock.now();
        let deadline = now + Duration::from_secs(plan.gate.timeout_secs);
        let rec = TxnRecord {
            id: 0,
            kind: plan.kind,
            created_ms: 0,
            updated_ms: 0,
            summary: plan.summary,
            files,
            gate: plan.gate,
            audit: plan.audit,
            deadline_ms: to_ms(deadline),
            state: State::Prepared,
            rollback_cause: None,
            reason: None,
        };
        let blob_refs: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
        // Invariant 3: durable intent before any managed file is touched.
        let id = self.journal.prepare(rec, &blob_refs, to_ms(now))?;
        tracing::info!(txid = id, "prepared (durable intent recorded)");
        let rec = self.journal.get(id)?;
        drop(blobs);
        self.forward(rec)
    }

    /// A transaction that ended NeedsManual handed its files to a person: kharden no longer
    /// knows what they should hold, nor whether what they hold is on disk. Until the operator
    /// runs `kharden journal resolve`, no new transaction may take them as its before-side.
    fn refuse_unresolved(&self, files: &[FileRecord]) -> Result<(), TxnError> {
        for txid in self.journal.unresolved()? {
            let held = self.journal.get(txid)?;
            if let Some(f) = files
                .iter()
                .find(|f| held.files.iter().any(|h| h.path == f.path))
            {
                return Err(TxnError::Unresolved {
                    txid,
                    path: f.path.clone(),
                });
            }
        }
        Ok(())
    }

    /// From Prepared (or a resumed open transaction): write the after side, gate, audit,
    /// commit; roll back on any failure.
    pub(crate) fn forward(&self, rec: TxnRecord) -> Result<Outcome, TxnError> {
        let id = rec.id;
        // The restart proof compares process start times with this instant, taken *before*
        // the rename: kubelet may start the new process within milliseconds of it, before the
        // write call even returns.
        let write_started = self.clock.now();
        let written = match self.write_side(&rec, Side::After) {
            Ok(n) => n,
            Err(e) => {
                let reason = format!("write failed: {e}");
                self.event(id, EventKind::Note(reason.clone()), Durable::Later)?;
                return self.rollback(id, RollbackCause::WriteFailed, reason);
            }
        };
        // A resumed transaction whose files were already at after: the write happened before
        // the crash, at a time not kept durably. Any process with the new argv started after
        // it (no process had that argv before), so the restart proof needs no start time.
        let started_after = (written > 0).then_some(write_started);
        let mut state = rec.state;
        self.advance(id, &mut state, State::Applied)?;
        let gated = rec.files.iter().any(|f| f.gated);
        let mut running_argv = None;
        let gate_ran = rec.gate.enabled && gated;
        if gate_ran {
            self.advance(id, &mut state, State::Gating)?;
            let contents = self.side_contents(&rec, Side::After)?;
            let verdict = self.run_gate(
                &rec,
                &contents,
                started_after,
                from_ms(rec.deadline_ms),
                Purpose::Forward,
            )?;
            match verdict {
                GateVerdict::Passed { argv, .. } => running_argv = argv,
                GateVerdict::Failed { reason } => {
                    return self.rollback(
                        id,
                        RollbackCause::GateFailed,
                        format!("health gate failed: {reason}"),
                    );
                }
            }
        }
        if rec.audit.builtin || rec.audit.script.is_some() {
            self.advance(id, &mut state, State::Auditing)?;
            let contents = self.side_contents(&rec, Side::After)?;
            let manifest_argv = rec
                .files
                .iter()
                .zip(&contents)
                .find(|(f, _)| f.gated)
                .and_then(|(f, c)| {
                    let c = c.as_ref()?;
                    let info = kharden_manifest::inspect(c, rec.gate.container.as_deref()).ok();
                    let _ = f;
                    info.map(|i| (i.argv, i.flags_start))
                });
            let verdict = self.audit.check(&AuditRequest {
                txid: id,
                spec: &rec.audit,
                files: &rec.files,
                running_argv,
                manifest_argv,
            });
            self.event(
                id,
                EventKind::Audit {
                    passed: verdict.passed,
                    detail: verdict.detail.clone(),
                    output: verdict.output.clone(),
                },
                Durable::Later,
            )?;
            if !verdict.passed {
                return self.rollback(
                    id,
                    RollbackCause::AuditFailed,
                    format!("audit failed: {}", verdict.detail),
                );
            }
            // After a gate (seconds of proof), "audit passed" is made durable so that a crash
            // before the commit record keeps the verified change (recovery row 3). Without a
            // gate there is nothing expensive to keep: the commit record below carries it.
            let durable = if gate_ran {
                Durable::Yes
            } else {
                Durable::Later
            };
            self.journal.transition(
                id,
                Transition::to(State::Audited).durability(durable),
                self.now_ms(),
            )?;
        }
        self.journal
            .transition(id, Transition::to(State::Committed), self.now_ms())?;
        tracing::info!(txid = id, "committed");
        Ok(Outcome::Committed { txid: id })
    }

    /// Record progress to `to` unless already there (a resumed transaction may be further on).
    /// Progress records are not durable: recovery treats Prepared … Auditing alike.
    fn advance(&self, id: TxId, state: &mut State, to: State) -> Result<(), TxnError> {
        let rank = |s: State| match s {
            State::Prepared => 0,
            State::Applied => 1,
            State::Gating => 2,
            State::Auditing => 3,
            _ => 4,
        };
        if rank(*state) < rank(to) {
            self.journal
                .transition(id, Transition::to(to).later(), self.now_ms())?;
            *state = to;
        }
        Ok(())
    }

    /// Make durable every file of `rec` as it stands (recovery marks a state from what it
    /// found; a found state may still be only in the page cache).
    pub(crate) fn sync_files(&self, rec: &TxnRecord) -> Result<(), TxnError> {
        for f in &rec.files {
            self.storage.sync(Path::new(&f.path))?;
        }
        Ok(())
    }

    /// The contents of each file on one side, from the journal's blobs (`None`: absent).
    fn side_contents(&self, rec: &TxnRecord, side: Side) -> Result<Vec<Option<Vec<u8>>>, TxnError> {
        rec.files
            .iter()
            .map(|f| {
                let img = match side {
                    Side::Before => &f.before,
                    Side::After => &f.after,
                };
                img.as_ref()
                    .map(|i| self.journal.blob(&i.hash))
                    .transpose()
                    .map_err(TxnError::from)
            })
            .collect()
    }

    /// Put every file of `rec` on `side` durably (files already there are only synced).
    /// Returns how many files were written or removed.
    fn write_side(&self, rec: &TxnRecord, side: Side) -> Result<usize, TxnError> {
        let mut written = 0;
        let contents = self.side_contents(rec, side)?;
        let order: Vec<usize> = match side {
            Side::After => (0..rec.files.len()).collect(),
            Side::Before => (0..rec.files.len()).rev().collect(),
        };
        for i in order {
            let f = &rec.files[i];
            let path = Path::new(&f.path);
            let img = match side {
                Side::Before => &f.before,
                Side::After => &f.after,
            };
            let current = self.storage.read(path)?;
            let there = match (&current, img) {
                (None, None) => true,
                (Some(c), Some(im)) => hash(&c.contents) == im.hash,
                _ => false,
            };
            if there {
                // Found, not written: make sure it is on disk before a state is journaled on
                // its strength (see `Storage::sync`).
                self.storage.sync(path)?;
                continue;
            }
            match (&contents[i], img) {
                (Some(bytes), Some(im)) => {
                    let meta = current.as_ref().map(|c| c.meta).unwrap_or(im.meta);
                    self.storage
                        .replace(path, bytes, &meta, &rec.id.to_string())?;
                    written += 1;
                    self.event(
                        rec.id,
                        EventKind::FileWritten {
                            path: f.path.clone(),
                            side,
                        },
                        Durable::Later,
                    )?;
                }
                _ => {
                    self.storage.remove(path)?;
                    written += 1;
                    self.event(
                        rec.id,
                        EventKind::FileRemoved {
                            path: f.path.clone(),
                            side,
                        },
                        Durable::Later,
                    )?;
                }
            }
        }
        Ok(written)
    }

    fn run_gate(
        &self,
        rec: &TxnRecord,
        contents: &[Option<Vec<u8>>],
        written_at: Option<SystemTime>,
        deadline: SystemTime,
        purpose: Purpose,
    ) -> Result<GateVerdict, TxnError> {
        let manifests: Vec<(PathBuf, &[u8])> = rec
            .files
            .iter()
            .zip(contents)
            .filter(|(f, _)| f.gated)
            .filter_map(|(f, c)| c.as_ref().map(|c| (PathBuf::from(&f.path), c.as_slice())))
            .collect();
        let req = GateRequest {
            txid: rec.id,
            spec: &rec.gate,
            manifests,
            written_at,
            deadline,
            purpose,
        };
        let mut pending: Vec<Event> = Vec::new();
        let mut journal_err = None;
        let verdict = self.gate.wait(&req, &mut |o: Observation| {
            pending.push(Event {
                time_ms: to_ms(o.time),
                kind: EventKind::Probe {
                    class: o.class,
                    pid: o.pid,
                    restarted: o.restarted,
                    detail: o.detail,
                },
            });
            // Journal as we go (not durably: a crash during the gate ends in rollback anyway).
            if let Err(e) =
                self.journal
                    .add_timed_events(rec.id, std::mem::take(&mut pending), Durable::Later)
            {
                journal_err.get_or_insert(e);
            }
        });
        if let Some(e) = journal_err {
            return Err(e.into());
        }
        Ok(verdict)
    }

    /// Restore every file's before-contents, then prove the old component is back.
    pub(crate) fn rollback(
        &self,
        id: TxId,
        cause: RollbackCause,
        reason: String,
    ) -> Result<Outcome, TxnError> {
        tracing::info!(txid = id, ?cause, %reason, "rolling back");
        self.journal.transition(
            id,
            Transition::to(State::RollingBack)
                .because(reason.clone())
                .cause(cause),
            self.now_ms(),
        )?;
        let rec = self.journal.get(id)?;
        self.finish_rollback(rec, cause, reason, true)
    }

    /// A write that failed may have left its temp file (a storage that could not remove it
    /// on its error path): the transaction is about to end, and recovery only looks at open
    /// ones, so clean up now. Best effort: a leftover dot file is harmless to kubelet.
    fn remove_temps(&self, rec: &TxnRecord) {
        for f in &rec.files {
            if let Err(e) = self
                .storage
                .remove_temp(Path::new(&f.path), &rec.id.to_string())
            {
                tracing::warn!(txid = rec.id, path = %f.path, "could not remove a temp file: {e}");
            }
        }
    }

    /// The second half of a rollback (also used by recovery, which does not gate).
    pub(crate) fn finish_rollback(
        &self,
        rec: TxnRecord,
        cause: RollbackCause,
        reason: String,
        gate: bool,
    ) -> Result<Outcome, TxnError> {
        let id = rec.id;
        // Taken before the restore's rename, as in `forward`.
        let write_started = self.clock.now();
        let restored = match self.write_side(&rec, Side::Before) {
            Ok(n) => n,
            Err(e) => {
                self.remove_temps(&rec);
                let manual = format!(
                "{reason}; then restoring the before-contents failed: {e}. Restore these files from the journal (kharden journal show {id}), and delete any temp file `.<name>.kharden-{id}` beside them: {}",
                rec.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>().join(", ")
            );
                self.journal.transition(
                    id,
                    Transition::to(State::NeedsManual).because(manual.clone()),
                    self.now_ms(),
                )?;
                return Ok(Outcome::NeedsManual {
                    txid: id,
                    reason: manual,
                });
            }
        };
        self.remove_temps(&rec);
        if gate && rec.gate.enabled && rec.files.iter().any(|f| f.gated) {
            let now = self.clock.now();
            let deadline = now + Duration::from_secs(rec.gate.timeout_secs);
            let contents = self.side_contents(&rec, Side::Before)?;
            let written_at = (restored > 0).then_some(write_started);
            match self.run_gate(&rec, &contents, written_at, deadline, Purpose::Rollback)? {
                GateVerdict::Passed { .. } => {}
                GateVerdict::Failed { reason: why } => {
                    let manual = format!(
                        "{reason}; the before-contents were restored but the old component did not come back healthy: {why}. Check kubelet and the files: {}",
                        rec.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>().join(", ")
                    );
                    self.journal.transition(
                        id,
                        Transition::to(State::NeedsManual).because(manual.clone()),
                        self.now_ms(),
                    )?;
                    return Ok(Outcome::NeedsManual {
                        txid: id,
                        reason: manual,
                    });
                }
            }
        }
        self.journal.transition(
            id,
            Transition::to(State::RolledBack).because(reason.clone()),
            self.now_ms(),
        )?;
        Ok(Outcome::RolledBack {
            txid: id,
            cause,
            reason,
        })
    }

    /// `kharden rollback TXID`: a new transaction that restores a committed transaction's
    /// before-contents, refused when any file no longer holds its after-contents.
    pub fn rollback_plan(
        &self,
        of: TxId,
        gate: GateSpec,
        audit: AuditSpec,
    ) -> Result<Plan, TxnError> {
        let rec = self.journal.get(of)?;
        if rec.state != State::Committed {
            return Err(TxnError::NotCommitted {
                txid: of,
                state: rec.state,
            });
        }
        let mut ops = Vec::new();
        for f in &rec.files {
            let path = PathBuf::from(&f.path);
            let current = self.storage.read(&path)?;
            let at_after = match (&current, &f.after) {
                (None, None) => true,
                (Some(c), Some(a)) => hash(&c.contents) == a.hash,
                _ => false,
            };
            if !at_after {
                return Err(TxnError::Diverged {
                    txid: of,
                    path: f.path.clone(),
                });
            }
            let before = f
                .before
                .as_ref()
                .map(|b| self.journal.blob(&b.hash))
                .transpose()?;
            ops.push(FileOp {
                path,
                after: before,
                expect_before: Some(f.after.as_ref().map(|a| a.hash)),
                changes: Vec::new(),
                gated: f.gated,
            });
        }
        Ok(Plan {
            kind: TxnKind::Rollback { of },
            summary: format!("rollback of {of}: {}", rec.summary),
            ops,
            gate: GateSpec {
                container: rec.gate.container.clone(),
                root: rec.gate.root.clone(),
                ..gate
            },
            audit,
        })
    }
}

#[cfg(test)]
mod tests;
