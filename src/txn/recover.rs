//! `kharden recover`: finish or revert every open transaction (DESIGN.md, "Recovery").
//!
//! One match over (the state found, where the files are), one arm per row of DESIGN.md's
//! table:
//!
//! | state found open        | files on disk          | default action (revert)            |
//! |-------------------------|------------------------|------------------------------------|
//! | Prepared … Auditing     | all at before          | mark Aborted                       |
//! | Prepared … Auditing     | some or all at after   | restore before → RolledBack        |
//! | Audited                 | all at after           | mark Committed                     |
//! | Audited                 | split                  | restore before → RolledBack        |
//! | RollingBack             | before or after        | finish the rollback                |
//! | any                     | a file matches neither | conflict: change nothing, report   |
//!
//! A file of a metadata change that kharden itself left halfway (killed between its `fchown`
//! and its `fchmod`) is on neither side but is no conflict: it counts as split.
//!
//! The temp files the journal names for the transaction are removed in every case (and only
//! those). `Policy::Resume` rolls forward instead (write after, gate and audit again). The
//! default policy needs no network and runs no gate, so it can run at boot before kubelet:
//! its rollbacks are recorded as restored but not gated. Every step re-reads the files, so
//! recovery is idempotent and survives being killed.

use super::{half_set, holds, Engine, Outcome, TxnError};
use crate::durable::TempName;
use crate::journal::{
    Durable, EventKind, JournalRead, RollbackCause, State, Transition, TxId, TxnRecord,
};
use std::path::Path;

/// What to do with an edit that was written but never passed its gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Restore the before-contents (the last known-good wins).
    Revert,
    /// Write the after-contents and run the gate and audit again.
    Resume,
}

/// Where the files of a transaction stand, all together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    AllBefore,
    AllAfter,
    /// Some at before, some at after, or a file of a metadata change halfway between (its
    /// owner set, its mode not yet: [`super::half_set`]).
    Split,
    /// At least one file matches neither side.
    Conflict,
}

/// What recovery did to one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecoveryAction {
    /// Nothing had been applied: marked aborted.
    MarkedAborted,
    /// Written but never gated: the before side restored (not gated).
    RestoredBefore,
    /// Audited but the commit not recorded, every file at after: marked committed.
    MarkedCommitted,
    /// A rollback in progress, finished.
    FinishedRollback,
    /// `--policy resume`: the after side written, gated and audited again.
    Resumed,
    /// A file matches neither side: nothing changed.
    LeftConflict,
    /// A terminal state listed as open (for `journal verify`): left alone.
    LeftForVerify,
}

impl RecoveryAction {
    pub fn text(self) -> &'static str {
        match self {
            RecoveryAction::MarkedAborted => "every file at before: marked aborted",
            RecoveryAction::RestoredBefore => {
                "written but never gated: before restored (the last known-good wins)"
            }
            RecoveryAction::MarkedCommitted => {
                "audit passed, commit not recorded, every file at after: marked committed"
            }
            RecoveryAction::FinishedRollback => "rollback finished",
            RecoveryAction::Resumed => "--policy resume: after written, gated and audited again",
            RecoveryAction::LeftConflict => {
                "conflict: a file matches neither side; nothing changed (inspect it, then `kharden recover --force` restores the policy's side)"
            }
            RecoveryAction::LeftForVerify => "terminal but listed open: left for `journal verify`",
        }
    }
}

/// What recovery did to one transaction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecoveredTxn {
    pub txid: TxId,
    pub found: State,
    pub placement: Placement,
    pub action: RecoveryAction,
    /// The state it ended in; `None` when left open (conflict).
    pub ended: Option<State>,
    /// Files that matched neither side.
    pub conflicts: Vec<String>,
    /// Whether `--force` overwrote them.
    pub forced: bool,
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
            .any(|t| t.action == RecoveryAction::LeftConflict)
    }

    pub fn needs_manual(&self) -> bool {
        self.transactions
            .iter()
            .any(|t| t.ended == Some(State::NeedsManual))
    }
}

/// Recover every open transaction, oldest first.
pub fn recover(
    engine: &Engine<'_>,
    policy: Policy,
    force: bool,
) -> Result<RecoverReport, TxnError> {
    engine.set_force(force);
    let mut report = RecoverReport::default();
    for id in engine.journal.open_ids()? {
        report
            .transactions
            .push(recover_one(engine, id, policy, force)?);
    }
    engine.set_force(false);
    Ok(report)
}

/// Where the files of `rec` are, and the conflict events for those on neither side.
fn place(
    engine: &Engine<'_>,
    rec: &TxnRecord,
    events: &mut Vec<EventKind>,
) -> Result<(Placement, Vec<String>), TxnError> {
    let (mut before, mut after, mut half) = (0, 0, 0);
    let mut conflicts = Vec::new();
    for f in &rec.files {
        let cur = engine.find(f)?;
        if holds(cur.as_ref(), f.before.as_ref()) {
            before += 1;
        } else if holds(cur.as_ref(), f.after.as_ref()) {
            after += 1;
        } else if half_set(cur.as_ref(), f) {
            // Our own metadata change, killed halfway: on neither side, not a conflict.
            half += 1;
        } else {
            // Kept in the journal before anything else can happen to it.
            let (_, found) = engine.conflict_events(f, cur.as_ref())?;
            conflicts.push(f.path.clone());
            events.extend(found);
        }
    }
    let placement = if !conflicts.is_empty() {
        Placement::Conflict
    } else if half > 0 {
        Placement::Split
    } else if after == 0 {
        Placement::AllBefore
    } else if before == 0 {
        Placement::AllAfter
    } else {
        Placement::Split
    };
    Ok((placement, conflicts))
}

fn recover_one(
    engine: &Engine<'_>,
    id: TxId,
    policy: Policy,
    force: bool,
) -> Result<RecoveredTxn, TxnError> {
    let rec = engine.journal.get(id)?;
    let now = || super::to_ms(engine.clock.now());
    let mut events = Vec::new();
    // Temp files the journal names for this transaction are ours and never hold anything
    // needed: remove them first (and nothing else).
    let temp = TempName {
        txid: id,
        tag: rec.temp_tag,
    };
    let mut temps_removed = Vec::new();
    for f in &rec.files {
        for t in engine.storage.remove_temps(Path::new(&f.path), &temp)? {
            temps_removed.push(t.display().to_string());
            events.push(EventKind::TempRemoved {
                path: f.path.clone(),
            });
        }
    }
    let (placement, conflicts) = place(engine, &rec, &mut events)?;
    let mut out = RecoveredTxn {
        txid: id,
        found: rec.state,
        placement,
        action: RecoveryAction::LeftConflict,
        ended: None,
        conflicts,
        forced: false,
        temps_removed,
    };
    use State::*;
    let early = matches!(rec.state, Prepared | Applied | Gating | Auditing);
    let outcome = match (rec.state, placement) {
        (_, Placement::Conflict) if !force => {
            record(
                engine,
                &mut out,
                events,
                RecoveryAction::LeftConflict,
                now(),
            )?;
            engine.journal.sync()?;
            return Ok(out);
        }
        (_, Placement::AllBefore) if early => {
            out.forced = false;
            mark_as_found(
                engine,
                &rec,
                &mut out,
                events,
                RecoveryAction::MarkedAborted,
                Aborted,
                "recovery: nothing was applied",
            )?;
            return Ok(out);
        }
        (_, _) if early && policy == Policy::Revert => {
            out.forced = placement == Placement::Conflict;
            record(
                engine,
                &mut out,
                events,
                RecoveryAction::RestoredBefore,
                now(),
            )?;
            restore(
                engine,
                id,
                format!(
                    "recovery: found {} with the gate not passed; the last known-good wins",
                    rec.state
                ),
                "restored by recovery (not gated: recovery runs before kubelet)",
            )?
        }
        (_, _) if early => {
            out.forced = placement == Placement::Conflict;
            record(engine, &mut out, events, RecoveryAction::Resumed, now())?;
            let mut rec = rec;
            // A fresh deadline: the one stored has passed while the node was down.
            rec.deadline_ms = now() + rec.gate.timeout_secs * 1000;
            engine.forward(rec)?
        }
        (Audited, Placement::AllAfter) => {
            mark_as_found(
                engine,
                &rec,
                &mut out,
                events,
                RecoveryAction::MarkedCommitted,
                Committed,
                "recovery: audit had passed",
            )?;
            return Ok(out);
        }
        (Audited, _) => {
            out.forced = placement == Placement::Conflict;
            record(
                engine,
                &mut out,
                events,
                RecoveryAction::RestoredBefore,
                now(),
            )?;
            restore(
                engine,
                id,
                "recovery: files split between sides".into(),
                "restored by recovery (not gated)",
            )?
        }
        (RollingBack, _) => {
            out.forced = placement == Placement::Conflict;
            record(
                engine,
                &mut out,
                events,
                RecoveryAction::FinishedRollback,
                now(),
            )?;
            let cause = rec.rollback_cause.unwrap_or(RollbackCause::Recovery);
            let reason = rec
                .reason
                .clone()
                .unwrap_or_else(|| "rollback finished by recovery".into());
            let gate = policy == Policy::Resume || restart_in_recovery(engine, &rec)?;
            engine.finish_rollback(rec, cause, reason, gate)?
        }
        (Committed | RolledBack | NeedsManual | Aborted, _) => {
            // Not reachable through the journal API (terminal states leave the open index);
            // `journal verify` reports it. Leave it alone.
            out.action = RecoveryAction::LeftForVerify;
            return Ok(out);
        }
        // `early` covers the remaining states.
        (Prepared | Applied | Gating | Auditing, _) => {
            out.action = RecoveryAction::LeftForVerify;
            return Ok(out);
        }
    };
    out.ended = Some(match outcome {
        Outcome::Committed { .. } => Committed,
        Outcome::RolledBack { .. } => RolledBack,
        Outcome::NeedsManual { .. } => NeedsManual,
        Outcome::Unchanged | Outcome::Aborted { .. } => Aborted,
        Outcome::LeftOpen { .. } => return Ok(out),
    });
    Ok(out)
}

/// Start a rollback of an open transaction and finish it: without a gate, unless the
/// transaction restarts a service that is running now ([`restart_in_recovery`]).
fn restore(engine: &Engine<'_>, id: TxId, why: String, reason: &str) -> Result<Outcome, TxnError> {
    engine.journal.transition(
        id,
        Transition::to(State::RollingBack)
            .because(why)
            .cause(RollbackCause::Recovery),
        super::to_ms(engine.clock.now()),
    )?;
    let rec = engine.journal.get(id)?;
    let restart = restart_in_recovery(engine, &rec)?;
    let reason = match (&rec.restart, restart) {
        (Some(service), true) => format!(
            "restored by recovery; {} was running, so it was restarted on the restored files and gated",
            service.unit
        ),
        (Some(service), false) => format!(
            "restored by recovery ({} is not running: it starts on the restored files)",
            service.unit
        ),
        (None, _) => reason.to_string(),
    };
    engine.finish_rollback(rec, RollbackCause::Recovery, reason, restart)
}

/// Whether recovery restarts (and gates) the service of a transaction it rolls back: only
/// when that service runs now, on the files being restored. At boot, `kharden recover` runs
/// before the kubelet starts, and restoring the files is all it takes. When the service
/// manager cannot say, the files are restored without a restart, and the journal says so.
fn restart_in_recovery(engine: &Engine<'_>, rec: &TxnRecord) -> Result<bool, TxnError> {
    let Some(service) = &rec.restart else {
        return Ok(false);
    };
    match engine.services.is_active(service) {
        Ok(active) => Ok(active),
        Err(why) => {
            engine.event(
                rec.id,
                EventKind::Note(format!(
                    "recovery could not tell whether {} runs ({why}): the files are restored without a restart; restart it yourself if it runs",
                    service.unit
                )),
                Durable::Later,
            )?;
            Ok(false)
        }
    }
}

/// End a transaction in `state` on the strength of what its files hold (nothing to write):
/// make that durable first (a found state may be in the page cache only, see
/// `Storage::sync`), then say so and record the state.
fn mark_as_found(
    engine: &Engine<'_>,
    rec: &TxnRecord,
    out: &mut RecoveredTxn,
    events: Vec<EventKind>,
    action: RecoveryAction,
    state: State,
    reason: &str,
) -> Result<(), TxnError> {
    engine.sync_files(rec)?;
    let now = super::to_ms(engine.clock.now());
    record(engine, out, events, action, now)?;
    engine
        .journal
        .transition(rec.id, Transition::to(state).because(reason), now)?;
    out.ended = Some(state);
    Ok(())
}

/// Say what recovery does to a transaction: in the report, and in the journal with the events
/// gathered so far (committed with the state record that follows).
fn record(
    engine: &Engine<'_>,
    out: &mut RecoveredTxn,
    mut events: Vec<EventKind>,
    action: RecoveryAction,
    now_ms: u64,
) -> Result<(), TxnError> {
    out.action = action;
    let mut text = action.text().to_string();
    if out.forced {
        text.push_str(" (--force: overwriting files that matched neither side; their contents are kept in the journal)");
    }
    events.push(EventKind::Recovery { action: text });
    engine
        .journal
        .add_events(out.txid, events, Durable::Later, now_ms)?;
    Ok(())
}
