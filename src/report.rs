//! Typed results of the commands, serializable as the one JSON document `-o json` prints,
//! and rendered as text in one place (`cli/render.rs`).
//!
//! Why typed: the JSON is an interface (Ansible reads `result`, `changed`, `steps`; CI reads
//! `transactions`). Built ad hoc with `json!` at two dozen call sites, a field could change
//! name in one of them. Every report also carries its `exit_code`, decided by the library.
//! The reports of `audit` and `harden` live beside their logic (`assess`, `harden`).

use crate::exit;
use crate::journal::{
    hex, Event, EventKind, Fault, Image, RollbackCause, Scope, State, TxId, TxnKind, TxnRecord,
};
use crate::txn::{Outcome, RecoverReport, Verified};
use serde::Serialize;

/// The result of a command that runs one transaction (`apply`, `rollback`).
#[derive(Debug, Clone, Serialize)]
pub struct TxnReport {
    /// `committed`, `unchanged`, `dry-run`, `rolled-back`, `needs-manual`, `left-open`,
    /// `aborted`.
    pub result: &'static str,
    pub changed: bool,
    pub txid: Option<TxId>,
    /// What the command was about (a file, or "rollback of transaction N").
    pub file: String,
    pub diff: String,
    pub reason: Option<String>,
    /// For a rollback: what was verified about the restored component.
    pub verified: Option<Verified>,
    pub rollback_cause: Option<RollbackCause>,
    pub exit_code: u8,
}

impl TxnReport {
    pub fn of(outcome: &Outcome, what: &str, diff: &str) -> TxnReport {
        let base = TxnReport {
            result: "unchanged",
            changed: false,
            txid: outcome.txid(),
            file: what.to_string(),
            diff: String::new(),
            reason: None,
            verified: None,
            rollback_cause: None,
            exit_code: outcome.exit_code(),
        };
        match outcome {
            Outcome::Unchanged => base,
            Outcome::Committed { .. } => TxnReport {
                result: "committed",
                changed: true,
                diff: diff.to_string(),
                ..base
            },
            Outcome::RolledBack {
                cause,
                reason,
                verified,
                ..
            } => TxnReport {
                result: "rolled-back",
                reason: Some(reason.clone()),
                verified: Some(*verified),
                rollback_cause: Some(*cause),
                ..base
            },
            Outcome::NeedsManual { reason, .. } => TxnReport {
                result: "needs-manual",
                reason: Some(reason.clone()),
                ..base
            },
            Outcome::LeftOpen { reason, .. } => TxnReport {
                result: "left-open",
                reason: Some(reason.clone()),
                ..base
            },
            Outcome::Aborted { reason, .. } => TxnReport {
                result: "aborted",
                reason: Some(reason.clone()),
                ..base
            },
        }
    }

    /// `--dry-run`: the diff, nothing written or journaled.
    pub fn dry_run(what: &str, diff: String) -> TxnReport {
        TxnReport {
            result: "dry-run",
            diff,
            ..TxnReport::of(&Outcome::Unchanged, what, "")
        }
    }
}

/// `kharden edit`: the edited file, written nowhere.
#[derive(Debug, Clone, Serialize)]
pub struct EditReport {
    pub file: String,
    pub container: String,
    pub changed: bool,
    pub argv_before: Vec<String>,
    pub argv_after: Vec<String>,
    pub replaced: Vec<[usize; 2]>,
    pub output: String,
    #[serde(skip)]
    pub bytes: Vec<u8>,
    pub exit_code: u8,
}

/// `kharden recover`.
#[derive(Debug, Clone, Serialize)]
pub struct RecoverSummary {
    /// `recovered`, `conflict`, `needs-manual`.
    pub result: &'static str,
    #[serde(flatten)]
    pub report: RecoverReport,
    /// Needs-manual transactions still waiting for `kharden journal resolve`.
    pub unresolved: Vec<TxId>,
    pub exit_code: u8,
}

impl RecoverSummary {
    pub fn new(report: RecoverReport, unresolved: Vec<TxId>) -> RecoverSummary {
        let exit_code = if report.has_conflicts() {
            exit::CONFLICT
        } else if report.needs_manual() {
            exit::NEEDS_MANUAL
        } else {
            exit::SUCCESS
        };
        RecoverSummary {
            result: match exit_code {
                exit::SUCCESS => "recovered",
                exit::CONFLICT => "conflict",
                _ => "needs-manual",
            },
            report,
            unresolved,
            exit_code,
        }
    }
}

/// One side of a file in a transaction.
#[derive(Debug, Clone, Serialize)]
pub struct ImageView {
    pub hash: String,
    pub len: u64,
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
}

impl ImageView {
    pub fn of(img: &Option<Image>) -> Option<ImageView> {
        img.as_ref().map(|i| ImageView {
            hash: hex(&i.hash),
            len: i.len,
            mode: format!("{:04o}", i.meta.mode),
            uid: i.meta.uid,
            gid: i.meta.gid,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FileView {
    pub path: String,
    /// What of the file the transaction changes: its contents, or its mode and owner.
    pub scope: Scope,
    pub before: Option<ImageView>,
    pub after: Option<ImageView>,
    pub changes: Vec<String>,
    /// `KubeletConfiguration` settings changed in the file.
    pub settings: Vec<String>,
    /// The controls the file's change implements, when recorded per file.
    pub controls: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateView {
    pub enabled: bool,
    pub timeout_secs: u64,
    pub stable_for_secs: u64,
    pub health_url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditView {
    pub builtin: bool,
    pub script: Option<String>,
}

/// A transaction as `journal log` and `journal show` present it.
#[derive(Debug, Clone, Serialize)]
pub struct TxnView {
    pub txid: TxId,
    pub state: State,
    pub kind: String,
    pub summary: String,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub reason: Option<String>,
    pub rollback_cause: Option<RollbackCause>,
    pub deadline_ms: u64,
    pub gate: GateView,
    pub audit: AuditView,
    pub files: Vec<FileView>,
    /// Waiting for `kharden journal resolve`.
    pub unresolved: bool,
}

/// How a transaction kind reads (`apply`, `rollback of 3`, `harden 1.2.15,1.2.16`).
pub fn kind_text(k: &TxnKind) -> String {
    match k {
        TxnKind::Apply => "apply".into(),
        TxnKind::Rollback { of } => format!("rollback of {of}"),
        TxnKind::Harden { controls } => format!("harden {}", controls.join(",")),
    }
}

impl TxnView {
    pub fn of(r: &TxnRecord, unresolved: bool) -> TxnView {
        TxnView {
            txid: r.id,
            state: r.state,
            kind: kind_text(&r.kind),
            summary: r.summary.clone(),
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
            reason: r.reason.clone(),
            rollback_cause: r.rollback_cause,
            deadline_ms: r.deadline_ms,
            gate: GateView {
                enabled: r.gate.enabled,
                timeout_secs: r.gate.timeout_secs,
                stable_for_secs: r.gate.stable_for_secs,
                health_url: r.gate.health_url.clone(),
            },
            audit: AuditView {
                builtin: r.audit.builtin,
                script: r.audit.script.clone(),
            },
            files: r
                .files
                .iter()
                .map(|f| FileView {
                    path: f.path.clone(),
                    scope: f.scope,
                    before: ImageView::of(&f.before),
                    after: ImageView::of(&f.after),
                    changes: f.changes.iter().map(ToString::to_string).collect(),
                    settings: f.settings.iter().map(ToString::to_string).collect(),
                    controls: f.controls.clone(),
                })
                .collect(),
            unresolved,
        }
    }
}

/// `journal log`.
#[derive(Debug, Clone, Serialize)]
pub struct LogReport {
    pub transactions: Vec<TxnView>,
    pub unresolved: Vec<TxId>,
    pub exit_code: u8,
}

/// One event, with its text.
#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    pub time_ms: u64,
    pub event: String,
    pub kind: EventKind,
}

impl EventView {
    pub fn of(e: &Event) -> EventView {
        EventView {
            time_ms: e.time_ms,
            event: event_text(&e.kind),
            kind: e.kind.clone(),
        }
    }
}

/// An event in one line (multi-line audit output indented below it).
pub fn event_text(kind: &EventKind) -> String {
    match kind {
        EventKind::State { state, note } => match note {
            Some(n) => format!("state {state}: {n}"),
            None => format!("state {state}"),
        },
        EventKind::FileWritten { path, side } => format!("wrote {path} ({side:?} side)"),
        EventKind::FileRemoved { path, side } => format!("removed {path} ({side:?} side)"),
        EventKind::Probe {
            class,
            pid,
            restarted,
            detail,
        } => format!(
            "probe {class:?} pid={} {}{}",
            pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            if *restarted {
                "(restarted) "
            } else {
                "(old or none) "
            },
            detail
        ),
        EventKind::Audit {
            passed,
            detail,
            output,
        } => format!(
            "audit {}: {detail}{}",
            if *passed { "passed" } else { "FAILED" },
            output
                .as_ref()
                .map(|o| format!(
                    "\n{}",
                    o.lines()
                        .map(|l| format!("        │ {l}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                ))
                .unwrap_or_default()
        ),
        EventKind::Recovery { action } => format!("recovery: {action}"),
        EventKind::Conflict { path, found } => format!(
            "conflict: {path} matches neither side (found {}; its contents are kept in the journal)",
            found
                .as_ref()
                .map(|h| hex(h)[..12].to_string())
                .unwrap_or_else(|| "absent".into())
        ),
        EventKind::TempRemoved { path } => format!("removed temp file of {path}"),
        EventKind::Restarted { unit, side, detail } => {
            format!("restarted {unit} ({side:?} side written): {detail}")
        }
        EventKind::Note(n) => n.clone(),
        EventKind::Resolved { note } => match note {
            Some(n) => format!("resolved by the operator: {n}"),
            None => "resolved by the operator".into(),
        },
        EventKind::Crash {
            pid,
            status,
            lifetime_ms,
            exact,
        } => format!(
            "crash: pid {pid} {status} after {lifetime_ms} ms{}",
            if *exact { "" } else { " (seen by polling /proc: times approximate)" }
        ),
        EventKind::Signal { signal, second } => format!(
            "signal {signal}{}",
            if *second {
                " (a second one: kharden stops, the transaction is left for `kharden recover`)"
            } else {
                ": rolling back"
            }
        ),
    }
}

/// `journal show`.
#[derive(Debug, Clone, Serialize)]
pub struct ShowReport {
    #[serde(flatten)]
    pub txn: TxnView,
    pub events: Vec<EventView>,
    pub exit_code: u8,
}

/// One file of `journal diff`.
#[derive(Debug, Clone, Serialize)]
pub struct FileDiff {
    pub path: String,
    pub diff: String,
}

/// `journal diff`.
#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    pub txid: TxId,
    pub state: State,
    pub files: Vec<FileDiff>,
    pub exit_code: u8,
}

/// `journal verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub transactions: u64,
    pub open: usize,
    pub faults: Vec<Fault>,
    pub exit_code: u8,
}

/// `journal prune`.
#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    pub pruned_transactions: usize,
    pub pruned_blobs: usize,
    pub keep: usize,
    pub exit_code: u8,
}

/// `journal resolve`.
#[derive(Debug, Clone, Serialize)]
pub struct ResolveReport {
    pub txid: TxId,
    pub resolved: bool,
    pub files: Vec<String>,
    pub exit_code: u8,
}

/// A failed command, as `-o json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorReport {
    pub result: &'static str,
    pub error: String,
    pub exit_code: u8,
}
