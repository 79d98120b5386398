//! `kharden recover`: finish or revert every open transaction (DESIGN.md, "Recovery").
//!
//! | state found open        | files on disk        | default action (revert)            |
//! |-------------------------|----------------------|------------------------------------|
//! | Prepared … Auditing     | all at before        | mark Aborted                       |
//! | Prepared … Auditing     | some or all at after | restore before → RolledBack        |
//! | Audited                 | all at after         | mark Committed                     |
//! | RollingBack             | before or after      | finish the rollback                |
//! | any                     | a file matches neither | conflict: change nothing, report |
//!
//! Temp files a transaction left are removed in every case. `Policy::Resume` rolls forward
//! instead (write after, gate and audit again). The default policy needs no network and runs no
//! gate, so it can run at boot before kubelet: its rollbacks are recorded as restored but not
//! gated. Every step re-reads the files, so recovery is idempotent and survives being killed.

use super::{Engine, Outcome, TxnError};
use crate::durable::hash;
use crate::journal::{Durable, EventKind, RollbackCause, State, TxId};
use crate::journal::{JournalRead, Transition};
use std::path::Path;

/// What to do with an edit that was written but never passed its gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Policy {
    /// Restore the before-contents (the last known-good wins).
    Revert,
    /// Write the after-contents and run the gate and audit again.
    Resume,
}

/// What recovery did to one transaction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecoveredTxn {
    pub txid: TxId,
    pub found: String,
    pub action: String,
    /// The state it ended in; `None` when left open (conflict).
    pub state: Option<String>,
    pub conflicts: Vec<String>,
    pub temps_removed: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecoverReport {
    pub transactions: Vec<RecoveredTxn>,
}

impl RecoverReport {
    /// Conflicts left standing (a `--force` recovery resolves the ones it reports).
    pub fn has_conflicts(&self) -> bool {
        self.transactions
            .iter()
            .any(|t| !t.conflicts.is_empty() && t.state.is_none())
    }

    pub fn needs_manual(&self) -> bool {
        self.transactions
            .iter()
            .any(|t| t.state.as_deref() == Some(State::NeedsManual.name()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    Before,
    After,
    Neither,
}

/// Recover every open transaction, oldest first.
pub fn recover(
    engine: &Engine<'_>,
    policy: Policy,
    force: bool,
) -> Result<RecoverReport, TxnError> {
    let mut report = RecoverReport::default();
    for id in engine.journal.open_ids()? {
        report
            .transactions
            .push(recover_one(engine, id, policy, force)?);
    }
    Ok(report)
}

fn recover_one(
    engine: &Engine<'_>,
    id: TxId,
    policy: Policy,
    force: bool,
) -> Result<RecoveredTxn, TxnError> {
    let rec = engine.journal.get(id)?;
    let now = || super::to_ms(engine.clock.now());
    let mut out = RecoveredTxn {
        txid: id,
        found: rec.state.name().to_string(),
        action: String::new(),
        state: None,
        conflicts: Vec::new(),
        temps_removed: Vec::new(),
    };
    // Temp files are ours and never hold anything needed: remove them first.
    let tag = id.to_string();
    let mut events = Vec::new();
    for f in &rec.files {
        if engine.storage.remove_temp(Path::new(&f.path), &tag)? {
            out.temps_removed.push(f.path.clone());
            events.push(EventKind::TempRemoved {
                path: f.path.clone(),
            });
        }
    }
    let mut places = Vec::new();
    for f in &rec.files {
        let cur = engine.storage.read(Path::new(&f.path))?;
        let h = cur.as_ref().map(|c| hash(&c.contents));
        let matches = |img: &Option<crate::journal::Image>| match (&h, img) {
            (None, None) => true,
            (Some(h), Some(i)) => *h == i.hash,
            _ => false,
        };
        let w = if matches(&f.before) {
            Where::Before
        } else if matches(&f.after) {
            Where::After
        } else {
            Where::Neither
        };
        if w == Where::Neither {
            out.conflicts.push(f.path.clone());
            events.push(EventKind::Conflict {
                path: f.path.clone(),
                found: h,
            });
        }
        places.push(w);
    }
    if !out.conflicts.is_empty() && !force {
        out.action = format!(
            "conflict: {} match(es) neither side; nothing changed (inspect, then `kharden recover --force` restores the {} side)",
            out.conflicts.join(", "),
            if policy == Policy::Resume { "after" } else { "before" }
        );
        events.push(EventKind::Recovery {
            action: out.action.clone(),
        });
        engine.journal.add_events(id, events, Durable::Yes, now())?;
        return Ok(out);
    }
    let all_before = places.iter().all(|w| *w == Where::Before);
    let all_after = places.iter().all(|w| *w == Where::After);
    let forced = if out.conflicts.is_empty() {
        ""
    } else {
        " (--force: overwriting files that matched neither side)"
    };
    let outcome = match rec.state {
        State::Prepared | State::Applied | State::Gating | State::Auditing => {
            if all_before {
                mark_as_found(
                    engine,
                    &rec,
                    &mut out,
                    std::mem::take(&mut events),
                    "every file at before: marked aborted",
                    State::Aborted,
                    "recovery: nothing was applied",
                )?;
                out.state = Some(State::Aborted.name().into());
                return Ok(out);
            }
            match policy {
                Policy::Revert => {
                    record_action(
                        engine,
                        id,
                        &mut out,
                        std::mem::take(&mut events),
                        format!("written but never gated: restoring before{forced}"),
                        now(),
                    )?;
                    engine.journal.transition(
                        id,
                        Transition::to(State::RollingBack)
                            .because(format!(
                            "recovery: found {} with the gate not passed; the last known-good wins",
                            rec.state
                        ))
                            .cause(RollbackCause::Recovery),
                        now(),
                    )?;
                    let rec = engine.journal.get(id)?;
                    engine.finish_rollback(
                        rec,
                        RollbackCause::Recovery,
                        "restored by recovery (not gated: recovery runs before kubelet)".into(),
                        false,
                    )?
                }
                Policy::Resume => {
                    record_action(
                        engine,
                        id,
                        &mut out,
                        std::mem::take(&mut events),
                        format!(
                            "--policy resume: writing after, gating and auditing again{forced}"
                        ),
                        now(),
                    )?;
                    let mut rec = rec;
                    // A fresh deadline: the one stored has passed while the node was down.
                    rec.deadline_ms = now() + rec.gate.timeout_secs * 1000;
                    engine.forward(rec)?
                }
            }
        }
        State::Audited if all_after => {
            mark_as_found(
                engine,
                &rec,
                &mut out,
                std::mem::take(&mut events),
                "audit passed, commit not recorded: marked committed",
                State::Committed,
                "recovery: audit had passed",
            )?;
            Outcome::Committed { txid: id }
        }
        State::Audited => {
            record_action(
                engine,
                id,
                &mut out,
                std::mem::take(&mut events),
                format!("audited but not every file at after: restoring before{forced}"),
                now(),
            )?;
            engine.journal.transition(
                id,
                Transition::to(State::RollingBack)
                    .because("recovery: files split between sides")
                    .cause(RollbackCause::Recovery),
                now(),
            )?;
            let rec = engine.journal.get(id)?;
            engine.finish_rollback(
                rec,
                RollbackCause::Recovery,
                "restored by recovery (not gated)".into(),
                false,
            )?
        }
        State::RollingBack => {
            record_action(
                engine,
                id,
                &mut out,
                std::mem::take(&mut events),
                format!("finishing the rollback{forced}"),
                now(),
            )?;
            let cause = rec.rollback_cause.unwrap_or(RollbackCause::Recovery);
            let reason = rec
                .reason
                .clone()
                .unwrap_or_else(|| "rollback finished by recovery".into());
            engine.finish_rollback(rec, cause, reason, policy == Policy::Resume)?
        }
        terminal => {
            // Not reachable through the journal API (terminal states leave the open index);
            // `journal verify` reports it. Leave it alone.
            out.action = format!("{terminal} but listed open: left for `journal verify`");
            return Ok(out);
        }
    };
    let _ = all_after;
    out.state = Some(
        match outcome {
            Outcome::Committed { .. } => State::Committed,
            Outcome::RolledBack { .. } => State::RolledBack,
            Outcome::NeedsManual { .. } => State::NeedsManual,
            Outcome::Unchanged => State::Aborted,
        }
        .name()
        .into(),
    );
    Ok(out)
}

/// End a transaction in `state` on the strength of what its files hold (nothing to write):
/// make that durable first (a found state may be in the page cache only, see
/// `Storage::sync`), then say so and record the state.
fn mark_as_found(
    engine: &Engine<'_>,
    rec: &crate::journal::TxnRecord,
    out: &mut RecoveredTxn,
    events: Vec<EventKind>,
    action: &str,
    state: State,
    reason: &str,
) -> Result<(), TxnError> {
    engine.sync_files(rec)?;
    let now = super::to_ms(engine.clock.now());
    record_action(engine, rec.id, out, events, action.into(), now)?;
    engine
        .journal
        .transition(rec.id, Transition::to(state).because(reason), now)?;
    Ok(())
}

/// Say what recovery does to a transaction: in the report, and in the journal with the events
/// gathered so far (committed with the state record that follows).
fn record_action(
    engine: &Engine<'_>,
    id: TxId,
    out: &mut RecoveredTxn,
    mut events: Vec<EventKind>,
    action: String,
    now_ms: u64,
) -> Result<(), TxnError> {
    out.action = action;
    events.push(EventKind::Recovery {
        action: out.action.clone(),
    });
    engine
        .journal
        .add_events(id, events, Durable::Later, now_ms)?;
    Ok(())
}
