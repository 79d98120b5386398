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
//! audit, clock, interrupts, progress) so that tests can script every transition and crash
//! anywhere.
//!
//! Two rules hold everywhere a file is written (forward, rollback, recovery):
//! - a file is only ever moved from one side of its transaction to the other: one that holds
//!   neither side ([`holds`]) is a conflict. Forward, nothing is written and the transaction is
//!   aborted; in a rollback, nothing is overwritten (without [`PlanOptions::force`]), its
//!   contents are kept in the journal, and the transaction ends NeedsManual (DESIGN.md
//!   invariants 5 and 11);
//! - the storage checks again, right before its rename, that the file still holds what was
//!   read ([`crate::durable::Expect`]): another writer's change in between is refused, not
//!   lost.

mod recover;

pub use recover::{recover, Placement, Policy, RecoverReport, RecoveredTxn, RecoveryAction};

use crate::audit::{Audit, AuditRequest};
use crate::durable::{
    hash, new_temp_tag, DurableError, Expect, FileMeta, FileState, Inode, Storage,
};
use crate::gate::{Gate, GateRequest, GateVerdict, Observation, Purpose};
use crate::journal::{
    AuditSpec, Durable, Event, EventKind, FileRecord, GateSpec, GateTarget, Image, Journal,
    JournalError, JournalRead, Restart, RollbackCause, Scope, Side, State, Transition, TxId,
    TxnKind, TxnRecord,
};
use crate::services::{NoServices, Services};
use crate::signals::{Interrupts, NoInterrupts};
use kharden_kubelet_config::ConfigChange;
use kharden_manifest::Change;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall-clock time, injectable: the one clock of kharden, shared with the gate loop.
pub use kharden_gate::{Clock, SystemClock};

pub fn to_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// What the engine tells whoever watches (the CLI draws a progress line from it). Nothing
/// here prints: the library never writes to the terminal.
pub trait Progress {
    /// A gate observation, as it is journaled.
    fn observed(&self, _txid: TxId, _purpose: Purpose, _deadline: SystemTime, _o: &Observation) {}
    /// The gate of `txid` is over (clear a progress line).
    fn gate_done(&self, _txid: TxId) {}
    /// A step of a longer command begins (`harden`).
    fn step(&self, _what: &str) {}
}

/// No one watches.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// A managed file as found, read as its record's scope needs: the contents (a contents
/// change), or the inode's identity and metadata (a metadata change, which never reads a
/// file whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Contents(FileState),
    Inode(Inode),
}

impl Found {
    /// The identity hash: of the contents, or the inode's ([`Inode::hash`]).
    pub fn hash(&self) -> [u8; 32] {
        match self {
            Found::Contents(f) => hash(&f.contents),
            Found::Inode(i) => i.hash,
        }
    }

    pub fn meta(&self) -> FileMeta {
        match self {
            Found::Contents(f) => f.meta,
            Found::Inode(i) => i.meta,
        }
    }
}

/// Does this file hold that side of its transaction (`None`: absent)? The one comparison of
/// a file with a side, used by the engine, `kharden rollback` and recovery: the contents for
/// a contents change, the identity and the metadata for a metadata change.
pub fn holds(found: Option<&Found>, image: Option<&Image>) -> bool {
    match (found, image) {
        (None, None) => true,
        (Some(Found::Contents(f)), Some(i)) => hash(&f.contents) == i.hash,
        (Some(Found::Inode(n)), Some(i)) => n.hash == i.hash && n.meta == i.meta,
        _ => false,
    }
}

/// Whether a file is halfway between the sides of its metadata change, as kharden itself
/// leaves it when killed between the `fchown` and the `fchmod` of one file: its contents
/// unchanged, the owner of one side and the mode of the other (a chown also clears the
/// set-user-ID and set-group-ID bits). Not a conflict: kharden finishes putting it on a side.
pub fn half_set(found: Option<&Found>, f: &FileRecord) -> bool {
    let (Some(Found::Inode(n)), Some(b), Some(a)) = (found, &f.before, &f.after) else {
        return false;
    };
    if !f.is_metadata() || n.hash != b.hash {
        return false;
    }
    let owners = [(b.meta.uid, b.meta.gid), (a.meta.uid, a.meta.gid)];
    let modes = [b.meta.mode, a.meta.mode, b.meta.mode & !0o6000];
    owners.contains(&(n.meta.uid, n.meta.gid)) && modes.contains(&n.meta.mode)
}

/// What a plan does to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// New contents; `None` deletes the file.
    Contents(Option<Vec<u8>>),
    /// New mode, owner and group; the contents stay.
    Metadata(FileMeta),
}

/// One file of a plan.
#[derive(Debug, Clone)]
pub struct FileOp {
    pub path: PathBuf,
    pub target: Target,
    /// The contents the caller computed the target from, as their hash (`None`: the file was
    /// absent). The transaction is refused when the file changed since.
    pub expect_before: Option<Option<[u8; 32]>>,
    /// The metadata the caller computed the target from (a metadata change never loosens:
    /// the caller removed bits from what it read). Refused when it changed since.
    pub expect_meta: Option<FileMeta>,
    /// Flag changes (a static pod manifest, or the kubelet's flags in an environment file).
    pub changes: Vec<Change>,
    /// `KubeletConfiguration` settings changed (a config file or a drop-in).
    pub settings: Vec<ConfigChange>,
    /// A static pod manifest whose component the gate must see restarted.
    pub gated: bool,
    /// The controls this file's change implements (journaled with the file).
    pub controls: Vec<String>,
}

impl FileOp {
    /// Write `after` to `path` (`None`: delete it).
    pub fn contents(path: impl Into<PathBuf>, after: Option<Vec<u8>>) -> FileOp {
        FileOp {
            path: path.into(),
            target: Target::Contents(after),
            expect_before: None,
            expect_meta: None,
            changes: Vec::new(),
            settings: Vec::new(),
            gated: false,
            controls: Vec::new(),
        }
    }

    /// Set the mode, owner and group of `path`.
    pub fn metadata(path: impl Into<PathBuf>, meta: FileMeta) -> FileOp {
        FileOp {
            target: Target::Metadata(meta),
            ..FileOp::contents(path, None)
        }
    }
}

/// Choices an operator makes about a transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// A rollback may overwrite a file that matches neither side (its contents are still
    /// kept in the journal first). Off: such a file is a conflict, the transaction ends
    /// NeedsManual.
    pub force: bool,
    /// Replace a file that has other hard links (the other names keep the old contents).
    /// Off: refused.
    pub split_hardlinks: bool,
}

/// A transaction to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub kind: TxnKind,
    pub summary: String,
    pub ops: Vec<FileOp>,
    pub gate: GateSpec,
    pub audit: AuditSpec,
    pub options: PlanOptions,
    /// The service to restart after writing each side (the kubelet).
    pub restart: Option<Restart>,
}

/// What a rollback proved about the restored component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verified {
    /// The gate proved the old component back and healthy.
    Healthy,
    /// The files were restored, no gate ran (`--no-gate`, or recovery before kubelet).
    RestoredNotGated,
    /// The files were restored; none of them is a gated manifest.
    RestoredNothingToGate,
}

impl Verified {
    /// What was verified, in words (for "the previous … is …").
    pub fn text(self) -> &'static str {
        match self {
            Verified::Healthy => {
                "restored, and the old component was proven running and healthy again"
            }
            Verified::RestoredNotGated => "restored (its health was not checked: no gate ran)",
            Verified::RestoredNothingToGate => "restored (no component restarts for it)",
        }
    }
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
        verified: Verified,
    },
    NeedsManual {
        txid: TxId,
        reason: String,
    },
    /// A second signal stopped kharden during a rollback: the transaction stays open for
    /// `kharden recover` (which finishes the rollback).
    LeftOpen {
        txid: TxId,
        reason: String,
    },
    /// Another writer changed a file after it was read and before kharden wrote it: nothing
    /// was written, the transaction was aborted.
    Aborted {
        txid: TxId,
        reason: String,
    },
}

impl Outcome {
    /// The process exit code this outcome means (README, "Exit codes").
    pub fn exit_code(&self) -> u8 {
        use crate::exit;
        match self {
            Outcome::Unchanged | Outcome::Committed { .. } => exit::SUCCESS,
            Outcome::RolledBack { cause, .. } => match cause {
                RollbackCause::GateFailed => exit::ROLLED_BACK_GATE,
                RollbackCause::AuditFailed => exit::ROLLED_BACK_AUDIT,
                RollbackCause::Interrupted => exit::INTERRUPTED,
                RollbackCause::WriteFailed
                | RollbackCause::Recovery
                | RollbackCause::RestartFailed => exit::ERROR,
            },
            Outcome::NeedsManual { .. } => exit::NEEDS_MANUAL,
            Outcome::LeftOpen { .. } => exit::INTERRUPTED,
            Outcome::Aborted { .. } => exit::ERROR,
        }
    }

    pub fn txid(&self) -> Option<TxId> {
        match self {
            Outcome::Unchanged => None,
            Outcome::Committed { txid }
            | Outcome::RolledBack { txid, .. }
            | Outcome::NeedsManual { txid, .. }
            | Outcome::LeftOpen { txid, .. }
            | Outcome::Aborted { txid, .. } => Some(*txid),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Durable(#[from] DurableError),
    #[error("{path}: changed since it was read; nothing was written")]
    Changed { path: PathBuf },
    #[error("{path}: does not exist; there is no mode or owner to change. Nothing was changed")]
    Absent { path: PathBuf },
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
    #[error("{path} has {nlink} hard links: replacing it would leave the other names with the old contents (kubelet may read either). Nothing was changed. Remove the other links, or pass --split-hardlinks to replace this name only")]
    HardLinked { path: PathBuf, nlink: u64 },
    #[error("{path}: {len} bytes after the change is over kharden's limit for a managed file ({limit}); nothing was changed")]
    TooLarge { path: PathBuf, len: u64, limit: u64 },
    /// Recording the commit failed: it may or may not be on disk. The files hold the verified
    /// after side; `kharden recover` ends the transaction from what the journal says.
    #[error("the commit record of transaction {txid} could not be confirmed ({source}); its change passed the gate and the audit and is in place. Once the journal can be written again (free space in the state directory), run `kharden recover`: it marks the transaction committed, or restores the previous files if the record was lost")]
    CommitUnknown {
        txid: TxId,
        #[source]
        source: JournalError,
    },
    /// A refusal before anything was written, recorded in the journal as transaction `txid`.
    #[error("{inner} (refusal recorded as transaction {txid})")]
    Recorded { txid: TxId, inner: Box<TxnError> },
    /// The journal failed after a file was written. The files were put back (when
    /// `restored`), the transaction is open: `kharden recover` finishes it.
    #[error("the journal could not record transaction {txid} after its files were written ({source}). {}. The transaction stays open: once the journal can be written again (free space in the state directory), run `kharden recover` to finish it", if *.restored { "The files were put back to their before-contents, durably" } else { "Putting the files back failed too: they may hold the after-contents" })]
    JournalMidway {
        txid: TxId,
        restored: bool,
        #[source]
        source: JournalError,
    },
}

/// The engine: one journal, one storage, one gate, one audit, one clock.
pub struct Engine<'a> {
    pub journal: &'a Journal,
    pub storage: &'a dyn Storage,
    pub gate: &'a dyn Gate,
    pub audit: &'a dyn Audit,
    pub clock: &'a dyn Clock,
    pub interrupts: &'a dyn Interrupts,
    pub progress: &'a dyn Progress,
    pub services: &'a dyn Services,
    /// [`PlanOptions::force`] of the plan being run (or `kharden recover --force`): a
    /// rollback may write over a file that matches neither side.
    force: std::cell::Cell<bool>,
}

fn image(contents: &[u8], meta: FileMeta) -> Image {
    Image {
        hash: hash(contents),
        len: contents.len() as u64,
        meta,
    }
}

fn side_image(f: &FileRecord, side: Side) -> Option<&Image> {
    match side {
        Side::Before => f.before.as_ref(),
        Side::After => f.after.as_ref(),
    }
}

/// Whether a transaction has something for its gate to prove: a restarted static pod, the
/// restarted kubelet, or processes that must stay up through a change that restarts nothing.
pub fn has_gate(rec: &TxnRecord) -> bool {
    match rec.gate.target {
        GateTarget::StaticPods => rec.files.iter().any(|f| f.gated) || !rec.gate.keep.is_empty(),
        GateTarget::Kubelet { .. } => true,
        GateTarget::Nothing => !rec.gate.keep.is_empty(),
    }
}

/// Where a write of one side stands when a file is found matching neither side.
struct Conflicts(Vec<(String, Option<[u8; 32]>)>);

impl<'a> Engine<'a> {
    pub fn new(
        journal: &'a Journal,
        storage: &'a dyn Storage,
        gate: &'a dyn Gate,
        audit: &'a dyn Audit,
        clock: &'a dyn Clock,
    ) -> Engine<'a> {
        Engine {
            journal,
            storage,
            gate,
            audit,
            clock,
            interrupts: &NoInterrupts,
            progress: &NoProgress,
            services: &NoServices,
            force: std::cell::Cell::new(false),
        }
    }

    /// Let rollbacks write over files that match neither side (recovery's `--force`).
    pub(crate) fn set_force(&self, force: bool) {
        self.force.set(force);
    }

    pub fn with_progress(mut self, progress: &'a dyn Progress) -> Engine<'a> {
        self.progress = progress;
        self
    }

    pub fn with_interrupts(mut self, interrupts: &'a dyn Interrupts) -> Engine<'a> {
        self.interrupts = interrupts;
        self
    }

    pub fn with_services(mut self, services: &'a dyn Services) -> Engine<'a> {
        self.services = services;
        self
    }

    /// What `f` holds now, read as its scope needs.
    pub fn find(&self, f: &FileRecord) -> Result<Option<Found>, TxnError> {
        let path = Path::new(&f.path);
        Ok(match f.scope {
            Scope::Contents => self.storage.read(path)?.map(Found::Contents),
            Scope::Metadata { .. } => self.storage.inode(path)?.map(Found::Inode),
        })
    }

    fn now_ms(&self) -> u64 {
        to_ms(self.clock.now())
    }

    fn event(&self, id: TxId, kind: EventKind, durable: Durable) -> Result<(), TxnError> {
        Ok(self
            .journal
            .add_events(id, vec![kind], durable, self.now_ms())?)
    }

    /// Record a refused command in the journal (a transaction with no file that goes from
    /// Prepared to Aborted, with the reason), at the engine's time. Returns its id.
    pub fn refuse(&self, kind: TxnKind, summary: String, reason: String) -> Result<TxId, TxnError> {
        Ok(self
            .journal
            .record_refusal(kind, summary, Vec::new(), reason, self.now_ms())?)
    }

    /// Run a plan to its end. A refusal before anything is written (a file of an unresolved
    /// needs-manual transaction, a hard-linked file, a result over the size limit) is
    /// journaled and returned as an error; nothing is changed.
    pub fn run(&self, plan: Plan) -> Result<Outcome, TxnError> {
        let (kind, summary) = (plan.kind.clone(), plan.summary.clone());
        match self.prepare(plan) {
            Ok(Some(rec)) => self.forward(rec),
            Ok(None) => Ok(Outcome::Unchanged),
            Err(
                e @ (TxnError::Unresolved { .. }
                | TxnError::HardLinked { .. }
                | TxnError::TooLarge { .. }
                | TxnError::Absent { .. }
                | TxnError::Durable(
                    DurableError::Symlink { .. }
                    | DurableError::NotRegular { .. }
                    | DurableError::NotFileOrDirectory { .. },
                )),
            ) => {
                let id = self.refuse(kind, summary, e.to_string())?;
                tracing::info!(txid = id, "refused: {e}");
                Err(TxnError::Recorded {
                    txid: id,
                    inner: Box::new(e),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Read every file, drop operations that change nothing, check what must hold before
    /// anything is written, and record the transaction (Prepared, durable).
    fn prepare(&self, plan: Plan) -> Result<Option<TxnRecord>, TxnError> {
        let mut files = Vec::new();
        let mut blobs: Vec<Vec<u8>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for op in &plan.ops {
            if !seen.insert(op.path.clone()) {
                return Err(TxnError::DuplicatePath {
                    path: op.path.clone(),
                });
            }
            let record = match &op.target {
                Target::Contents(after) => {
                    self.plan_contents(op, after, &plan.options, &mut blobs)?
                }
                Target::Metadata(meta) => self.plan_metadata(op, *meta)?,
            };
            if let Some(record) = record {
                files.push(record);
            }
        }
        if files.is_empty() {
            return Ok(None);
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
            restart: plan.restart,
            temp_tag: new_temp_tag(),
        };
        let blob_refs: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
        // Invariant 3: durable intent before any managed file is touched.
        let id = self.journal.prepare(rec, &blob_refs, to_ms(now))?;
        tracing::info!(txid = id, "prepared (durable intent recorded)");
        let rec = self.journal.get(id)?;
        // A choice of this run, not journaled (recovery has its own --force).
        self.force.set(plan.options.force);
        Ok(Some(rec))
    }

    /// The record of a contents change (`None`: it changes nothing). Both sides' contents
    /// go to `blobs`.
    fn plan_contents(
        &self,
        op: &FileOp,
        after: &Option<Vec<u8>>,
        options: &PlanOptions,
        blobs: &mut Vec<Vec<u8>>,
    ) -> Result<Option<FileRecord>, TxnError> {
        let current = self.storage.read(&op.path)?;
        if let Some(expect) = op.expect_before {
            if current.as_ref().map(|c| hash(&c.contents)) != expect {
                return Err(TxnError::Changed {
                    path: op.path.clone(),
                });
            }
        }
        let same = match (&current, after) {
            (None, None) => true,
            (Some(c), Some(a)) => &c.contents == a,
            _ => false,
        };
        if same {
            return Ok(None);
        }
        if let Some(c) = &current {
            if c.nlink > 1 && !options.split_hardlinks {
                return Err(TxnError::HardLinked {
                    path: op.path.clone(),
                    nlink: c.nlink,
                });
            }
        }
        if let Some(a) = after {
            let limit = crate::durable::MAX_FILE_BYTES;
            if a.len() as u64 > limit {
                return Err(TxnError::TooLarge {
                    path: op.path.clone(),
                    len: a.len() as u64,
                    limit,
                });
            }
        }
        let meta = current
            .as_ref()
            .map(|c| c.meta)
            .unwrap_or(FileMeta::NEW_FILE);
        let before = current.as_ref().map(|c| image(&c.contents, c.meta));
        let after_img = after.as_ref().map(|a| image(a, meta));
        if let Some(c) = current {
            blobs.push(c.contents);
        }
        if let Some(a) = after {
            blobs.push(a.clone());
        }
        Ok(Some(FileRecord {
            path: op.path.to_string_lossy().into_owned(),
            before,
            after: after_img,
            changes: op.changes.clone(),
            settings: op.settings.clone(),
            gated: op.gated,
            scope: Scope::Contents,
            controls: op.controls.clone(),
        }))
    }

    /// The record of a metadata change (`None`: the file already has that metadata). Nothing
    /// of the contents is kept but their hash, the file's identity.
    fn plan_metadata(&self, op: &FileOp, meta: FileMeta) -> Result<Option<FileRecord>, TxnError> {
        let Some(found) = self.storage.inode(&op.path)? else {
            return Err(TxnError::Absent {
                path: op.path.clone(),
            });
        };
        let changed = op.expect_before.is_some_and(|e| e != Some(found.hash))
            || op.expect_meta.is_some_and(|m| m != found.meta);
        if changed {
            return Err(TxnError::Changed {
                path: op.path.clone(),
            });
        }
        if found.meta == meta {
            return Ok(None);
        }
        let side = |meta| Image {
            hash: found.hash,
            len: found.len,
            meta,
        };
        Ok(Some(FileRecord {
            path: op.path.to_string_lossy().into_owned(),
            before: Some(side(found.meta)),
            after: Some(side(meta)),
            changes: Vec::new(),
            settings: Vec::new(),
            gated: false,
            scope: Scope::Metadata {
                directory: found.directory,
            },
            controls: op.controls.clone(),
        }))
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

    /// Whether a signal asks the current step to stop (the first one stops a forward gate or
    /// audit; the second one stops a rollback).
    fn interrupted(&self, purpose: Purpose) -> Option<i32> {
        let need = match purpose {
            Purpose::Forward => 1,
            Purpose::Rollback => 2,
        };
        (self.interrupts.count() >= need).then(|| self.interrupts.last_signal())
    }

    /// Record the signal(s) seen, once each.
    fn note_signal(&self, id: TxId, second: bool) -> Result<(), TxnError> {
        self.event(
            id,
            EventKind::Signal {
                signal: self.interrupts.last_signal(),
                second,
            },
            Durable::Later,
        )
    }

    /// From Prepared (or a resumed open transaction): write the after side, gate, audit,
    /// commit; roll back on any failure.
    pub(crate) fn forward(&self, rec: TxnRecord) -> Result<Outcome, TxnError> {
        let id = rec.id;
        if let Some(sig) = self.interrupted(Purpose::Forward) {
            // Nothing written yet: stop here.
            self.note_signal(id, false)?;
            self.journal.transition(
                id,
                Transition::to(State::Aborted)
                    .because(format!("interrupted by signal {sig} before any change")),
                self.now_ms(),
            )?;
            return Ok(Outcome::RolledBack {
                txid: id,
                cause: RollbackCause::Interrupted,
                reason: format!("interrupted by signal {sig} before any change"),
                verified: Verified::RestoredNothingToGate,
            });
        }
        // The before side, in memory: if the journal fails after the write (a full disk), the
        // files are put back without it.
        let before = self.side_contents(&rec, Side::Before)?;
        // The restart proof compares process start times with this instant, taken *before*
        // the rename: kubelet may start the new process within milliseconds of it, before the
        // write call even returns.
        let write_started = self.clock.now();
        if rec.gate.enabled && has_gate(&rec) {
            self.gate.arm();
        }
        let written = match self.write_side(&rec, Side::After) {
            Ok(Ok(n)) => n,
            Ok(Err(conflicts)) => {
                // Another writer got there between the plan and the write: nothing of ours
                // is on disk for these files; put back any file already written.
                return self.abort_for_conflicts(rec, conflicts);
            }
            Err(TxnError::Journal(e)) => return self.journal_failed_midway(&rec, &before, e),
            Err(e) => {
                let reason = format!("write failed: {e}");
                self.event(id, EventKind::Note(reason.clone()), Durable::Later)?;
                return self.rollback(id, RollbackCause::WriteFailed, reason);
            }
        };
        // Kept for the case the journal fails from here on (it may then not even be readable).
        let files = rec.clone();
        match self.after_write(rec, written, write_started) {
            Err(TxnError::Journal(e)) => self.journal_failed_midway(&files, &before, e),
            other => other,
        }
    }

    fn after_write(
        &self,
        rec: TxnRecord,
        written: usize,
        write_started: SystemTime,
    ) -> Result<Outcome, TxnError> {
        let id = rec.id;
        // A resumed transaction whose files were already at after: the write happened before
        // the crash, at a time not kept durably. Any process with the new argv started after
        // it (no process had that argv before), so the restart proof needs no start time.
        let started_after = (written > 0).then_some(write_started);
        let mut state = rec.state;
        self.advance(id, &mut state, State::Applied)?;
        if let Some(service) = &rec.restart {
            if let Err(why) = self.restart_service(id, service, Side::After)? {
                return self.rollback(
                    id,
                    RollbackCause::RestartFailed,
                    format!("restarting {} failed: {why}", service.unit),
                );
            }
        }
        let mut running_argv = None;
        let gate_ran = rec.gate.enabled && has_gate(&rec);
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
            if let Some(sig) = self.interrupted(Purpose::Forward) {
                self.note_signal(id, false)?;
                return self.rollback(
                    id,
                    RollbackCause::Interrupted,
                    format!("interrupted by signal {sig} during the health gate"),
                );
            }
            match verdict {
                GateVerdict::Passed { argv, .. } => running_argv = argv,
                failed @ GateVerdict::Failed { .. } => {
                    return self.rollback(
                        id,
                        RollbackCause::GateFailed,
                        format!(
                            "health gate failed: {}",
                            failed.failure().unwrap_or_default()
                        ),
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
                .filter(|(f, _)| f.gated)
                .find_map(|(_, c)| {
                    let info =
                        kharden_manifest::inspect(c.as_ref()?, rec.gate.container.as_deref())
                            .ok()?;
                    Some((info.argv, info.flags_start))
                });
            let verdict = self.audit.check(&AuditRequest {
                txid: id,
                spec: &rec.audit,
                gate: &rec.gate,
                files: &rec.files,
                running_argv,
                manifest_argv,
                interrupts: self.interrupts,
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
            if let Some(sig) = self.interrupted(Purpose::Forward) {
                self.note_signal(id, false)?;
                return self.rollback(
                    id,
                    RollbackCause::Interrupted,
                    format!("interrupted by signal {sig} during the audit"),
                );
            }
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
        if let Err(e) = self
            .journal
            .transition(id, Transition::to(State::Committed), self.now_ms())
        {
            // A commit that reports an error may still have reached the disk (redb can fail
            // after its header is written). The files hold the verified after side: putting
            // them back could contradict a journal that says Committed. Leave them; recovery
            // reads the journal and ends the transaction either way.
            return Err(TxnError::CommitUnknown {
                txid: id,
                source: e,
            });
        }
        tracing::info!(txid = id, "committed");
        Ok(Outcome::Committed { txid: id })
    }

    /// The journal failed after files were written: put them back (durably, without the
    /// journal), and say that the open transaction is `kharden recover`'s to finish.
    fn journal_failed_midway(
        &self,
        rec: &TxnRecord,
        contents: &[Option<Vec<u8>>],
        e: JournalError,
    ) -> Result<Outcome, TxnError> {
        tracing::error!(txid = rec.id, "journal failed mid-transaction: {e}");
        let mut restored = true;
        for (i, f) in rec.files.iter().enumerate().rev() {
            let Ok(current) = self.find(f) else {
                restored = false;
                continue;
            };
            if holds(current.as_ref(), f.before.as_ref()) {
                continue;
            }
            if !holds(current.as_ref(), f.after.as_ref()) && !half_set(current.as_ref(), f) {
                // Not ours to overwrite: recovery will report it as a conflict.
                restored = false;
                continue;
            }
            let r = self.put(
                rec,
                f,
                Side::Before,
                current.as_ref(),
                contents.get(i).and_then(Option::as_deref),
            );
            restored &= r.is_ok();
        }
        Err(TxnError::JournalMidway {
            txid: rec.id,
            restored,
            source: e,
        })
    }

    /// Put one file on `side`, from what was just found there (which must be the other side,
    /// or, in a forced rollback, whatever the conflict check kept). `bytes`: the side's
    /// contents (contents changes only; `None` deletes).
    fn put(
        &self,
        rec: &TxnRecord,
        f: &FileRecord,
        side: Side,
        current: Option<&Found>,
        bytes: Option<&[u8]>,
    ) -> Result<(), DurableError> {
        let path = Path::new(&f.path);
        let img = side_image(f, side);
        match (f.scope, current, img) {
            (Scope::Metadata { .. }, Some(Found::Inode(now)), Some(im)) => {
                self.storage.set_meta(path, &im.meta, now)
            }
            // Gone (or not what a metadata change reads): nothing to set it on.
            (Scope::Metadata { .. }, _, _) => Err(DurableError::Moved {
                path: path.to_path_buf(),
            }),
            (Scope::Contents, _, _) => {
                let expect = match current {
                    None => Expect::Absent,
                    Some(c) => Expect::Contents(c.hash()),
                };
                match (bytes, img) {
                    (Some(bytes), Some(im)) => {
                        let meta = current.map(Found::meta).unwrap_or(im.meta);
                        self.storage
                            .replace(path, bytes, &meta, &self.temp_name(rec), expect)
                    }
                    _ => self.storage.remove(path, expect),
                }
            }
        }
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

    /// The contents of each file on one side, from the journal's blobs (`None`: absent, or
    /// a metadata change, whose contents are not kept).
    fn side_contents(&self, rec: &TxnRecord, side: Side) -> Result<Vec<Option<Vec<u8>>>, TxnError> {
        rec.files
            .iter()
            .map(|f| {
                if f.is_metadata() {
                    return Ok(None);
                }
                side_image(f, side)
                    .map(|i| self.journal.blob(&i.hash))
                    .transpose()
                    .map_err(TxnError::from)
            })
            .collect()
    }

    fn temp_name(&self, rec: &TxnRecord) -> crate::durable::TempName {
        crate::durable::TempName {
            txid: rec.id,
            tag: rec.temp_tag,
        }
    }

    /// The events that record `f` holding neither side: the conflict, with what was found
    /// kept in the journal (a contents change's contents, in the blob table) or described (a
    /// metadata change's identity and metadata). Returns the hash the conflict names.
    pub(crate) fn conflict_events(
        &self,
        f: &FileRecord,
        found: Option<&Found>,
    ) -> Result<(Option<[u8; 32]>, Vec<EventKind>), TxnError> {
        let kept = match found {
            Some(Found::Contents(c)) => Some(self.journal.keep_blob(&c.contents)?),
            Some(Found::Inode(n)) => Some(n.hash),
            None => None,
        };
        let mut events = vec![EventKind::Conflict {
            path: f.path.clone(),
            found: kept,
        }];
        if let Some(Found::Inode(n)) = found {
            let same = f.before.as_ref().is_some_and(|b| b.hash == n.hash);
            events.push(EventKind::Note(format!(
                "{}: found {} {}",
                f.path,
                n.meta,
                if same {
                    "(contents unchanged)"
                } else if n.directory {
                    "(a directory where the transaction had a file)"
                } else {
                    "(contents changed since the transaction read them)"
                }
            )));
        }
        Ok((kept, events))
    }

    /// Files of `rec` that hold neither side, with a durable conflict record for each, before
    /// anything else happens to them.
    fn find_conflicts(&self, rec: &TxnRecord) -> Result<Conflicts, TxnError> {
        let mut out = Vec::new();
        for f in &rec.files {
            let current = self.find(f)?;
            if holds(current.as_ref(), f.before.as_ref())
                || holds(current.as_ref(), f.after.as_ref())
                || half_set(current.as_ref(), f)
            {
                continue;
            }
            let (found, events) = self.conflict_events(f, current.as_ref())?;
            self.journal
                .add_events(rec.id, events, Durable::Yes, self.now_ms())?;
            out.push((f.path.clone(), found));
        }
        Ok(Conflicts(out))
    }

    /// Put every file of `rec` on `side` durably (files already there are only synced).
    /// Returns how many files were written or removed, or the files found on neither side
    /// (nothing is written then: they are checked before the first write).
    fn write_side(
        &self,
        rec: &TxnRecord,
        side: Side,
    ) -> Result<Result<usize, Conflicts>, TxnError> {
        let conflicts = self.find_conflicts(rec)?;
        let forced = side == Side::Before && self.force.get();
        if !conflicts.0.is_empty() && !forced {
            return Ok(Err(conflicts));
        }
        let mut written = 0;
        let contents = self.side_contents(rec, side)?;
        let order: Vec<usize> = match side {
            Side::After => (0..rec.files.len()).collect(),
            Side::Before => (0..rec.files.len()).rev().collect(),
        };
        for i in order {
            let f = &rec.files[i];
            let path = Path::new(&f.path);
            let img = side_image(f, side);
            let current = self.find(f)?;
            if holds(current.as_ref(), img) {
                // Found, not written: make sure it is on disk before a state is journaled on
                // its strength (see `Storage::sync`).
                self.storage.sync(path)?;
                continue;
            }
            let result = self.put(
                rec,
                f,
                side,
                current.as_ref(),
                contents.get(i).and_then(Option::as_deref),
            );
            match result {
                // Another writer changed it in the instant between the check above and the
                // rename: nothing of ours is on disk yet, so this is a refusal, not a failure.
                Err(DurableError::Moved { .. }) if side == Side::After && written == 0 => {
                    let now = self.find(f)?;
                    let (found, events) = self.conflict_events(f, now.as_ref())?;
                    self.journal
                        .add_events(rec.id, events, Durable::Yes, self.now_ms())?;
                    return Ok(Err(Conflicts(vec![(f.path.clone(), found)])));
                }
                Err(e) => return Err(e.into()),
                Ok(()) => {}
            }
            written += 1;
            let kind = match img {
                Some(_) => EventKind::FileWritten {
                    path: f.path.clone(),
                    side,
                },
                None => EventKind::FileRemoved {
                    path: f.path.clone(),
                    side,
                },
            };
            self.event(rec.id, kind, Durable::Later)?;
        }
        Ok(Ok(written))
    }

    /// A forward write found files changed by someone else: nothing of ours was written to
    /// them; abort the transaction.
    fn abort_for_conflicts(&self, rec: TxnRecord, c: Conflicts) -> Result<Outcome, TxnError> {
        let names: Vec<&str> = c.0.iter().map(|(p, _)| p.as_str()).collect();
        let reason = format!(
            "{} changed since kharden read {}: another writer got there first; nothing was written (their contents are kept in the journal)",
            names.join(", "),
            if names.len() == 1 { "it" } else { "them" }
        );
        self.journal.transition(
            rec.id,
            Transition::to(State::Aborted).because(reason.clone()),
            self.now_ms(),
        )?;
        Ok(Outcome::Aborted {
            txid: rec.id,
            reason,
        })
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
        let other = self.side_contents(
            rec,
            match purpose {
                Purpose::Forward => Side::Before,
                Purpose::Rollback => Side::After,
            },
        )?;
        let previous: Vec<Option<&[u8]>> = rec
            .files
            .iter()
            .zip(contents)
            .zip(&other)
            .filter(|((f, c), _)| f.gated && c.is_some())
            .map(|(_, o)| o.as_deref())
            .collect();
        let req = GateRequest {
            txid: rec.id,
            spec: &rec.gate,
            manifests,
            previous,
            written_at,
            deadline,
            purpose,
            interrupts: self.interrupts,
            restart: rec.restart.as_ref(),
        };
        let mut journal_err = None;
        let verdict = self.gate.wait(&req, &mut |o: &Observation| {
            self.progress.observed(rec.id, purpose, deadline, o);
            // Journal as we go (not durably: a crash during the gate ends in rollback anyway).
            let time_ms = to_ms(o.at);
            let evs = crate::gate::journal_events(o)
                .into_iter()
                .map(|kind| Event { time_ms, kind })
                .collect();
            if let Err(e) = self.journal.add_timed_events(rec.id, evs, Durable::Later) {
                journal_err.get_or_insert(e);
            }
        });
        self.progress.gate_done(rec.id);
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
    /// ones, so clean up now. Only this transaction's temps are touched. Best effort: a
    /// leftover dot file is harmless to kubelet.
    fn remove_temps(&self, rec: &TxnRecord) {
        for f in &rec.files {
            if let Err(e) = self
                .storage
                .remove_temps(Path::new(&f.path), &self.temp_name(rec))
            {
                tracing::warn!(txid = rec.id, path = %f.path, "could not remove a temp file: {e}");
            }
        }
    }

    /// Restart the transaction's service after `side` was written, and journal it like a
    /// write. The inner error says why the restart failed.
    fn restart_service(
        &self,
        id: TxId,
        service: &Restart,
        side: Side,
    ) -> Result<Result<(), String>, TxnError> {
        crate::failpoint::hit("engine.restart.before");
        match self.services.restart(service) {
            Ok(detail) => {
                crate::failpoint::hit("engine.restart.after");
                self.event(
                    id,
                    EventKind::Restarted {
                        unit: service.unit.clone(),
                        side,
                        detail,
                    },
                    Durable::Later,
                )?;
                Ok(Ok(()))
            }
            Err(why) => {
                self.event(
                    id,
                    EventKind::Note(format!("restarting {} failed: {why}", service.unit)),
                    Durable::Later,
                )?;
                Ok(Err(why))
            }
        }
    }

    fn needs_manual(&self, id: TxId, manual: String) -> Result<Outcome, TxnError> {
        self.journal.transition(
            id,
            Transition::to(State::NeedsManual).because(manual.clone()),
            self.now_ms(),
        )?;
        Ok(Outcome::NeedsManual {
            txid: id,
            reason: manual,
        })
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
        let names = || {
            rec.files
                .iter()
                .map(|f| f.path.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        // Taken before the restore's rename, as in `forward`.
        let write_started = self.clock.now();
        if gate && rec.gate.enabled && has_gate(&rec) {
            self.gate.arm();
        }
        let restored = match self.write_side(&rec, Side::Before) {
            Ok(Ok(n)) => n,
            Ok(Err(conflicts)) => {
                self.remove_temps(&rec);
                let found: Vec<&str> = conflicts.0.iter().map(|(p, _)| p.as_str()).collect();
                return self.needs_manual(
                    id,
                    format!(
                        "{reason}; then, to roll back, {} matched neither the before nor the after side (changed by hand during the transaction?): nothing was overwritten. Its contents are kept in the journal (kharden journal show {id}); restore what it should hold, then run `kharden journal resolve {id}`, or roll back over it with --force",
                        found.join(", ")
                    ),
                );
            }
            Err(TxnError::Journal(e)) => return Err(TxnError::Journal(e)),
            Err(e) => {
                self.remove_temps(&rec);
                return self.needs_manual(
                    id,
                    format!(
                        "{reason}; then restoring the before-contents failed: {e}. Restore these files from the journal (kharden journal show {id}): {}",
                        names()
                    ),
                );
            }
        };
        self.remove_temps(&rec);
        if let (Some(service), true) = (&rec.restart, gate) {
            if let Err(why) = self.restart_service(id, service, Side::Before)? {
                return self.needs_manual(
                    id,
                    format!(
                        "{reason}; the before-contents were restored but restarting {} failed: {why}. Restart it by hand and check it: {}",
                        service.unit,
                        names()
                    ),
                );
            }
        }
        let verified = if !has_gate(&rec) {
            Verified::RestoredNothingToGate
        } else if !(gate && rec.gate.enabled) {
            Verified::RestoredNotGated
        } else {
            let now = self.clock.now();
            let deadline = now + Duration::from_secs(rec.gate.timeout_secs);
            let contents = self.side_contents(&rec, Side::Before)?;
            let written_at = (restored > 0).then_some(write_started);
            let verdict =
                self.run_gate(&rec, &contents, written_at, deadline, Purpose::Rollback)?;
            if let Some(sig) = self.interrupted(Purpose::Rollback) {
                self.note_signal(id, true)?;
                self.journal.sync()?;
                return Ok(Outcome::LeftOpen {
                    txid: id,
                    reason: format!(
                        "{reason}; a second signal ({sig}) stopped kharden while it proved the rollback: the before-contents are written, the transaction is left open. Run `kharden recover` to finish it"
                    ),
                });
            }
            match verdict {
                GateVerdict::Passed { .. } => Verified::Healthy,
                failed @ GateVerdict::Failed { .. } => {
                    let why = failed.failure().unwrap_or_default();
                    return self.needs_manual(
                        id,
                        format!(
                            "{reason}; the before-contents were restored but the old component did not come back healthy: {why}. Check kubelet and the files: {}",
                            names()
                        ),
                    );
                }
            }
        };
        self.journal.transition(
            id,
            Transition::to(State::RolledBack).because(reason.clone()),
            self.now_ms(),
        )?;
        Ok(Outcome::RolledBack {
            txid: id,
            cause,
            reason,
            verified,
        })
    }

    /// `kharden rollback TXID`: a new transaction that restores a committed transaction's
    /// before-contents, refused when any file no longer holds its after-contents.
    pub fn rollback_plan(
        &self,
        of: TxId,
        gate: GateSpec,
        audit: AuditSpec,
        options: PlanOptions,
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
            let current = self.find(f)?;
            if !holds(current.as_ref(), f.after.as_ref()) {
                return Err(TxnError::Diverged {
                    txid: of,
                    path: f.path.clone(),
                });
            }
            let op = match (f.scope, &f.before) {
                (Scope::Metadata { .. }, Some(before)) => FileOp {
                    expect_before: Some(Some(before.hash)),
                    expect_meta: f.after.as_ref().map(|a| a.meta),
                    ..FileOp::metadata(path, before.meta)
                },
                _ => FileOp {
                    expect_before: Some(f.after.as_ref().map(|a| a.hash)),
                    gated: f.gated,
                    ..FileOp::contents(
                        path,
                        f.before
                            .as_ref()
                            .map(|b| self.journal.blob(&b.hash))
                            .transpose()?,
                    )
                },
            };
            ops.push(op);
        }
        Ok(Plan {
            kind: TxnKind::Rollback { of },
            summary: format!("rollback of {of}: {}", rec.summary),
            ops,
            gate: GateSpec {
                container: rec.gate.container.clone(),
                root: rec.gate.root.clone(),
                // The sides swap: the new transaction's after is the old one's before.
                target: match &rec.gate.target {
                    GateTarget::Kubelet {
                        healthz_before,
                        healthz_after,
                        kubeconfig,
                        node,
                    } => GateTarget::Kubelet {
                        healthz_before: healthz_after.clone(),
                        healthz_after: healthz_before.clone(),
                        kubeconfig: kubeconfig.clone(),
                        node: node.clone(),
                    },
                    other => other.clone(),
                },
                ..gate
            },
            audit,
            options,
            restart: rec.restart.clone(),
        })
    }
}

#[cfg(test)]
mod tests;
