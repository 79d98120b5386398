//! What the journal records, as the rest of kharden sees it (the domain types).
//!
//! These are not the on-disk format: [`super::schema`] has the journal's own frozen types and
//! converts to and from these, so that changing a type here (or in another crate, such as
//! `kharden_manifest::Change`) can never silently change what an existing journal means.

use crate::durable::FileMeta;
use kharden_manifest::Change;
use serde::Serialize;

/// Transaction id: a counter, never reused.
pub type TxId = u64;

/// The states of DESIGN.md's transaction, plus `Aborted` (recovery found the files untouched).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Prepared,
    Applied,
    Gating,
    Auditing,
    /// The audit passed; `Committed` is the next record.
    Audited,
    Committed,
    RollingBack,
    RolledBack,
    NeedsManual,
    /// Recovery found every file at its before-contents: nothing to undo.
    Aborted,
}

impl State {
    pub const ALL: [State; 10] = [
        State::Prepared,
        State::Applied,
        State::Gating,
        State::Auditing,
        State::Audited,
        State::Committed,
        State::RollingBack,
        State::RolledBack,
        State::NeedsManual,
        State::Aborted,
    ];

    /// Terminal states leave the open-transaction index.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            State::Committed | State::RolledBack | State::NeedsManual | State::Aborted
        )
    }

    /// The states this one may move to (DESIGN.md's diagram).
    pub fn may_go_to(self, next: State) -> bool {
        use State::*;
        matches!(
            (self, next),
            (Prepared, Applied | RollingBack | Aborted | Committed)
                | (
                    Applied,
                    Gating | Auditing | Committed | RollingBack | Aborted
                )
                | (Gating, Auditing | Committed | RollingBack | Aborted)
                | (Auditing, Audited | RollingBack | Aborted)
                | (Audited, Committed | RollingBack)
                | (RollingBack, RolledBack | NeedsManual)
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            State::Prepared => "prepared",
            State::Applied => "applied",
            State::Gating => "gating",
            State::Auditing => "auditing",
            State::Audited => "audited",
            State::Committed => "committed",
            State::RollingBack => "rolling-back",
            State::RolledBack => "rolled-back",
            State::NeedsManual => "needs-manual",
            State::Aborted => "aborted",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.name() == s)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One side (before or after) of a managed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Image {
    /// blake3 of the contents; the contents are in the blob table.
    pub hash: [u8; 32],
    pub len: u64,
    pub meta: FileMeta,
}

/// A managed file of a transaction. `None` on a side means "absent" (create or delete).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileRecord {
    pub path: String,
    pub before: Option<Image>,
    pub after: Option<Image>,
    /// The flag changes made to this file (empty for whole-file writes).
    pub changes: Vec<Change>,
    /// Whether this file is a static pod manifest whose component the gate watches.
    pub gated: bool,
}

/// How the health gate is to run (stored so that recovery can run it again).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct GateSpec {
    pub enabled: bool,
    pub timeout_secs: u64,
    pub stable_for_secs: u64,
    pub health_url: Option<String>,
    pub cacert: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    /// The container the change targets (`--container`).
    pub container: Option<String>,
    /// Host root the paths were resolved under.
    pub root: Option<String>,
    /// Fail the gate as soon as the new process has crashed this many times (0: only at the
    /// deadline). Format 1 had no such field: its transactions read as 0.
    pub max_crashes: u32,
}

/// How the audit is to run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct AuditSpec {
    pub builtin: bool,
    pub script: Option<String>,
    pub script_timeout_secs: u64,
}

/// What started a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum TxnKind {
    Apply,
    /// `kharden rollback TXID`.
    Rollback {
        of: TxId,
    },
    /// `kharden harden`, with the control ids it fixes.
    Harden {
        controls: Vec<String>,
    },
}

/// Why a transaction was rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RollbackCause {
    GateFailed,
    AuditFailed,
    WriteFailed,
    Recovery,
    /// SIGTERM, SIGINT or SIGHUP during the gate or the audit.
    Interrupted,
}

/// The transaction's head record (events are kept apart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TxnRecord {
    pub id: TxId,
    pub kind: TxnKind,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// One line for `journal log`.
    pub summary: String,
    pub files: Vec<FileRecord>,
    pub gate: GateSpec,
    pub audit: AuditSpec,
    /// Wall-clock deadline of the gate (ms since the epoch), so a crash during the gate still
    /// ends in rollback.
    pub deadline_ms: u64,
    pub state: State,
    pub rollback_cause: Option<RollbackCause>,
    /// The last reason given for a state change (gate failure, conflict...).
    pub reason: Option<String>,
    /// Random, chosen at prepare: the temp files of this transaction are
    /// `.<name>.kharden-<id>-<tag as 16 hex digits>-<attempt>` ([`crate::durable::TempName`]);
    /// [`TEMP_TAG_V1`] for a transaction of format 1 (`.<name>.kharden-<id>`).
    pub temp_tag: u64,
}

/// The temp tag of a format-1 transaction, whose temps were named `.<name>.kharden-<id>`.
pub const TEMP_TAG_V1: u64 = 0;

/// The class of one gate round as the journal keeps it (kept apart, as DESIGN.md asks): the
/// probe's answer without its status code, which the event's detail carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RoundClass {
    /// No process with the expected argv yet (or the old one only).
    NoProcess,
    /// Connection refused.
    Down,
    /// 401/403: up, not authorised.
    Unauthorized,
    /// 5xx.
    ServerError,
    Timeout,
    TlsError,
    OtherStatus,
    Healthy,
}

/// Something that happened to a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum EventKind {
    State {
        state: State,
        note: Option<String>,
    },
    FileWritten {
        path: String,
        side: Side,
    },
    FileRemoved {
        path: String,
        side: Side,
    },
    Probe {
        class: RoundClass,
        pid: Option<i32>,
        restarted: bool,
        detail: String,
    },
    Audit {
        passed: bool,
        detail: String,
        output: Option<String>,
    },
    Recovery {
        action: String,
    },
    Conflict {
        path: String,
        found: Option<[u8; 32]>,
    },
    TempRemoved {
        path: String,
    },
    Note(String),
    /// The operator said a NeedsManual transaction's files are dealt with
    /// (`kharden journal resolve`). Added after schema 1's first release: a new variant at the
    /// end keeps every older record decodable.
    Resolved {
        note: Option<String>,
    },
    /// A signal (SIGTERM, SIGINT, SIGHUP) arrived during the gate or the audit; `second`:
    /// another one after the first, which stops kharden and leaves the transaction to
    /// `kharden recover`.
    Signal {
        signal: i32,
        second: bool,
    },
    /// A process with the argv the gate waits for exited before the gate passed (seen
    /// through the kernel's process events, however short it lived).
    Crash {
        pid: u32,
        /// "exited with code 2", "was killed by signal 9 (SIGKILL)".
        status: String,
        lifetime_ms: u64,
        /// Times from kernel events (`false`: inferred from /proc polling).
        exact: bool,
    },
}

/// Which side of a transaction a file was set to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Side {
    Before,
    After,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub time_ms: u64,
    pub kind: EventKind,
}

pub fn hex(hash: &[u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_roundtrip_and_terminals() {
        for s in State::ALL {
            assert_eq!(State::parse(s.name()), Some(s));
            if s.is_terminal() {
                assert!(State::ALL.iter().all(|n| !s.may_go_to(*n)));
            }
        }
    }
}
