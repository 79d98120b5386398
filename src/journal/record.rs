//! What the journal records, as the rest of kharden sees it (the domain types).
//!
//! These are not the on-disk format: [`super::schema`] has the journal's own frozen types and
//! converts to and from these, so that changing a type here (or in another crate, such as
//! `kharden_manifest::Change`) can never silently change what an existing journal means.

use crate::durable::FileMeta;
use kharden_kubelet_config::ConfigChange;
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

/// What of a file its transaction changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Its contents: a whole-file replace (create or delete), mode and owner kept. Both
    /// sides' contents are in the journal's blob table.
    Contents,
    /// Its mode, owner and group (`chmod`/`chown`). The contents are the file's identity
    /// only: both sides carry the same hash (a file whose contents changed is a conflict),
    /// and they are not kept in the journal. A directory's identity is only that it is one.
    Metadata { directory: bool },
}

/// A managed file of a transaction. `None` on a side means "absent" (create or delete).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileRecord {
    pub path: String,
    pub before: Option<Image>,
    pub after: Option<Image>,
    /// The flag changes made to this file (a static pod manifest, or the kubelet's flags in
    /// an environment file); empty for whole-file writes.
    pub changes: Vec<Change>,
    /// The `KubeletConfiguration` settings changed in this file (a config file or a drop-in).
    pub settings: Vec<ConfigChange>,
    /// Whether this file is a static pod manifest whose component the gate watches.
    pub gated: bool,
    pub scope: Scope,
    /// The controls this file's change implements, when the transaction knows them per file
    /// (`harden`'s metadata changes: one transaction may set the pki tree for 1.1.19 and its
    /// keys for 1.1.21); empty otherwise.
    pub controls: Vec<String>,
}

impl FileRecord {
    pub fn is_metadata(&self) -> bool {
        matches!(self.scope, Scope::Metadata { .. })
    }

    /// The blobs this file's sides are kept in (none for a metadata change, whose contents
    /// are only its identity).
    pub fn blob_hashes(&self) -> impl Iterator<Item = &[u8; 32]> {
        let kept = !self.is_metadata();
        [&self.before, &self.after]
            .into_iter()
            .flatten()
            .filter(move |_| kept)
            .map(|i| &i.hash)
    }
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
    /// What restarts and is proven healthy (formats 1 and 2: always the static pods).
    pub target: GateTarget,
    /// Processes that must keep running, the same process, and stay healthy through the
    /// gate: the components that use the files of a change that restarts nothing, or the
    /// static pods while the kubelet restarts.
    pub keep: Vec<Kept>,
}

/// What a transaction's gate waits for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateTarget {
    /// The components of the gated static pod manifests, restarted by kubelet.
    #[default]
    StaticPods,
    /// The kubelet, restarted by the transaction's [`Restart`]: a new process of the unit,
    /// its `/healthz` answering `ok` (at the URL of the side being proven: a change may move
    /// it), and the Node `Ready` when the API server answers with the kubelet's own
    /// credentials (`kubeconfig`, `node`).
    Kubelet {
        healthz_before: String,
        healthz_after: String,
        kubeconfig: Option<String>,
        node: Option<String>,
    },
    /// Nothing restarts: only the processes of [`GateSpec::keep`] are watched.
    Nothing,
}

/// A process a gate watches without expecting it to restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kept {
    /// `kube-apiserver`, `etcd`, `kubelet`...
    pub component: String,
    pub pid: u32,
    /// Its start time (`/proc/PID/stat` field 22, clock ticks after boot): with the pid, the
    /// identity of the process (a restarted one has another).
    pub start_ticks: u64,
    /// Its static pod manifest, whose probe is its health (`None`: alive is all that is
    /// checked).
    pub manifest: Option<String>,
}

/// A service a transaction restarts after writing either side (the kubelet: its
/// configuration takes effect only at a restart). Journaled like a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Restart {
    /// `kubelet.service`.
    pub unit: String,
    /// The `systemctl` program (`--systemctl`, `KHARDEN_SYSTEMCTL`, else the one on PATH).
    pub systemctl: String,
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
    /// The restart of the transaction's service failed (format 3).
    RestartFailed,
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
    /// The service restarted after each write of a side (`None`: nothing to restart; kubelet
    /// restarts static pods by itself).
    pub restart: Option<Restart>,
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
    /// The transaction's service was restarted after the files of `side` were written
    /// (format 3). `detail`: what the service manager said.
    Restarted {
        unit: String,
        side: Side,
        detail: String,
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
