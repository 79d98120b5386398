//! The journal's on-disk format: its own types, versioned, with explicit conversions to and
//! from the domain types of [`super::record`].
//!
//! Why its own types: the journal outlives the build that wrote it. If records embedded domain
//! types (`kharden_manifest::Change`, the gate's and the audit's specifications), reordering an
//! enum in another crate would silently change what is on disk, and an old journal would decode
//! into the wrong values or not at all. Here every type of a format version is frozen in a
//! module of its own (`v1`, ...): postcard encodes fields in declaration order and enum
//! variants by index, so these declarations *are* the format. They are never edited; a new
//! format gets a new module, a new version byte, and a conversion from the previous one (see
//! "Journal format history" in docs/crash-safety.md). `tests/journal_format.rs` reads the
//! golden journal and the golden record bytes of every format with every later build.
//!
//! Every record is postcard-encoded behind a leading format-version byte; a record with an
//! unknown version byte is refused, never guessed at.

use super::record as domain;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// Format version written by this build (first byte of every record).
pub const RECORD_VERSION: u8 = 3;

/// Errors decoding a record.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty record")]
    Empty,
    #[error(
        "record format version {0} is not supported (this kharden reads versions 1 to {RECORD_VERSION})"
    )]
    Version(u8),
    #[error("record does not decode: {0}")]
    Postcard(#[from] postcard::Error),
    #[error("record decodes to an invalid value: {0}")]
    Invalid(String),
}

/// Format 1 (kharden 0.1, the first release): frozen.
pub mod v1 {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum State {
        Prepared,
        Applied,
        Gating,
        Auditing,
        Audited,
        Committed,
        RollingBack,
        RolledBack,
        NeedsManual,
        Aborted,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub struct FileMeta {
        pub mode: u32,
        pub uid: u32,
        pub gid: u32,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Image {
        pub hash: [u8; 32],
        pub len: u64,
        pub meta: FileMeta,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Mount {
        pub name: String,
        pub host_path: String,
        pub mount_path: String,
        pub read_only: bool,
        pub path_type: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Change {
        Set {
            name: String,
            value: Option<String>,
        },
        Unset {
            name: String,
        },
        AddItem {
            name: String,
            item: String,
        },
        RemoveItem {
            name: String,
            item: String,
            if_empty: Option<String>,
        },
        AtLeast {
            name: String,
            min: i64,
        },
        SetKey {
            name: String,
            key: String,
            value: String,
        },
        Mount(Mount),
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct FileRecord {
        pub path: String,
        pub before: Option<Image>,
        pub after: Option<Image>,
        pub changes: Vec<Change>,
        pub gated: bool,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct GateSpec {
        pub enabled: bool,
        pub timeout_secs: u64,
        pub stable_for_secs: u64,
        pub health_url: Option<String>,
        pub cacert: Option<String>,
        pub cert: Option<String>,
        pub key: Option<String>,
        pub container: Option<String>,
        pub root: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct AuditSpec {
        pub builtin: bool,
        pub script: Option<String>,
        pub script_timeout_secs: u64,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum TxnKind {
        Apply,
        Rollback { of: u64 },
        Harden { controls: Vec<String> },
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum RollbackCause {
        GateFailed,
        AuditFailed,
        WriteFailed,
        Recovery,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct TxnRecord {
        pub id: u64,
        pub kind: TxnKind,
        pub created_ms: u64,
        pub updated_ms: u64,
        pub summary: String,
        pub files: Vec<FileRecord>,
        pub gate: GateSpec,
        pub audit: AuditSpec,
        pub deadline_ms: u64,
        pub state: State,
        pub rollback_cause: Option<RollbackCause>,
        pub reason: Option<String>,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum ProbeClass {
        NoProcess,
        Down,
        Unauthorized,
        ServerError,
        Timeout,
        TlsError,
        OtherStatus,
        Healthy,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Side {
        Before,
        After,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
            class: ProbeClass,
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
        Resolved {
            note: Option<String>,
        },
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Event {
        pub time_ms: u64,
        pub kind: EventKind,
    }
}

/// Format 2: a transaction records the random tag of its temp files (so that only the
/// temps the journal names are ever removed) and the gate's `--max-crashes`, a rollback may be
/// caused by a signal, and a signal is an event. Enums of this format may grow by appending variants (older
/// records still decode); anything else is a new format.
pub mod v2 {
    use serde::{Deserialize, Serialize};

    pub use super::v1::{
        AuditSpec, Change, FileMeta, FileRecord, Image, Mount, ProbeClass, Side, State, TxnKind,
    };

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct GateSpec {
        pub enabled: bool,
        pub timeout_secs: u64,
        pub stable_for_secs: u64,
        pub health_url: Option<String>,
        pub cacert: Option<String>,
        pub cert: Option<String>,
        pub key: Option<String>,
        pub container: Option<String>,
        pub root: Option<String>,
        /// `--max-crashes`: fail the gate at the N-th crash of the new process (0: never early).
        pub max_crashes: u32,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum RollbackCause {
        GateFailed,
        AuditFailed,
        WriteFailed,
        Recovery,
        /// SIGTERM, SIGINT or SIGHUP during the gate or the audit.
        Interrupted,
        /// Appended in format 3: the restart of the transaction's service failed.
        RestartFailed,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct TxnRecord {
        pub id: u64,
        pub kind: TxnKind,
        pub created_ms: u64,
        pub updated_ms: u64,
        pub summary: String,
        pub files: Vec<FileRecord>,
        pub gate: GateSpec,
        pub audit: AuditSpec,
        pub deadline_ms: u64,
        pub state: State,
        pub rollback_cause: Option<RollbackCause>,
        pub reason: Option<String>,
        /// Random, chosen at prepare: every temp file of this transaction is named
        /// `.<name>.kharden-<id>-<tag as 16 hex digits>-<attempt>`.
        pub temp_tag: u64,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
            class: ProbeClass,
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
        /// `found` is the hash of what the file held (kept in the blob table), `None` when
        /// it was absent.
        Conflict {
            path: String,
            found: Option<[u8; 32]>,
        },
        TempRemoved {
            path: String,
        },
        Note(String),
        Resolved {
            note: Option<String>,
        },
        /// A signal arrived during the gate or the audit.
        Signal {
            signal: i32,
            second: bool,
        },
        /// A crash of the process the gate waits for.
        Crash {
            pid: u32,
            status: String,
            lifetime_ms: u64,
            exact: bool,
        },
        /// Appended in format 3: the transaction's service was restarted after a side was
        /// written.
        Restarted {
            unit: String,
            side: Side,
            detail: String,
        },
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Event {
        pub time_ms: u64,
        pub kind: EventKind,
    }
}

/// Format 3: a file's metadata (mode, owner, group) as a transaction's change, besides its
/// contents (`FileRecord::scope`); the kubelet's configuration settings a file's change made
/// (`FileRecord::settings`) and the controls it implements (`FileRecord::controls`); a service
/// restarted after each write (`TxnRecord::restart`); the
/// gate's target (static pods, the kubelet, nothing) and the processes it keeps watching
/// (`GateSpec::target`, `GateSpec::keep`). Events and rollback causes are format 2's, with
/// the variants appended in format 3.
pub mod v3 {
    use serde::{Deserialize, Serialize};

    pub use super::v1::{AuditSpec, Change, Image, Mount, State, TxnKind};
    pub use super::v2::{Event, EventKind, RollbackCause};

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Scope {
        Contents,
        Metadata { directory: bool },
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Scalar {
        Bool(bool),
        Int(i64),
        Str(String),
    }

    /// A `KubeletConfiguration` change; `path` is the key path's segments.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Setting {
        Set {
            path: Vec<String>,
            value: Scalar,
        },
        Unset {
            path: Vec<String>,
        },
        SetList {
            path: Vec<String>,
            items: Vec<Scalar>,
        },
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct FileRecord {
        pub path: String,
        pub before: Option<Image>,
        pub after: Option<Image>,
        pub changes: Vec<Change>,
        pub settings: Vec<Setting>,
        pub gated: bool,
        pub scope: Scope,
        pub controls: Vec<String>,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum GateTarget {
        StaticPods,
        Kubelet {
            healthz_before: String,
            healthz_after: String,
            kubeconfig: Option<String>,
            node: Option<String>,
        },
        Nothing,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Kept {
        pub component: String,
        pub pid: u32,
        pub start_ticks: u64,
        pub manifest: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct GateSpec {
        pub enabled: bool,
        pub timeout_secs: u64,
        pub stable_for_secs: u64,
        pub health_url: Option<String>,
        pub cacert: Option<String>,
        pub cert: Option<String>,
        pub key: Option<String>,
        pub container: Option<String>,
        pub root: Option<String>,
        pub max_crashes: u32,
        pub target: GateTarget,
        pub keep: Vec<Kept>,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Restart {
        pub unit: String,
        pub systemctl: String,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct TxnRecord {
        pub id: u64,
        pub kind: TxnKind,
        pub created_ms: u64,
        pub updated_ms: u64,
        pub summary: String,
        pub files: Vec<FileRecord>,
        pub gate: GateSpec,
        pub audit: AuditSpec,
        pub deadline_ms: u64,
        pub state: State,
        pub rollback_cause: Option<RollbackCause>,
        pub reason: Option<String>,
        pub restart: Option<Restart>,
        pub temp_tag: u64,
    }
}

/// A domain type and its on-disk form in the current format.
pub trait Stored: Sized {
    /// The current format's type.
    type Current: Serialize + DeserializeOwned;
    fn to_stored(&self) -> Self::Current;
    fn from_stored(s: Self::Current) -> Result<Self, CodecError>;
    /// Decode a record written in an older format `version` (every version below
    /// [`RECORD_VERSION`] must be handled).
    fn decode_older(version: u8, body: &[u8]) -> Result<Self, CodecError>;
}

/// Encode a domain value in the current format, version byte first.
pub fn encode<T: Stored>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![RECORD_VERSION];
    out.extend(postcard::to_allocvec(&value.to_stored())?);
    Ok(out)
}

/// Decode a record of any supported format into the domain type.
pub fn decode<T: Stored>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&RECORD_VERSION, rest)) => T::from_stored(postcard::from_bytes(rest)?),
        Some((&v, rest)) if (1..RECORD_VERSION).contains(&v) => T::decode_older(v, rest),
        Some((&v, _)) => Err(CodecError::Version(v)),
    }
}

/// Decode a format-1 body (used by every later format's `decode_older`).
fn postcard_v1<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, CodecError> {
    Ok(postcard::from_bytes(body)?)
}

// ---- conversions between format 1 and the domain ------------------------------------------

impl From<domain::State> for v1::State {
    fn from(s: domain::State) -> Self {
        use domain::State as D;
        match s {
            D::Prepared => v1::State::Prepared,
            D::Applied => v1::State::Applied,
            D::Gating => v1::State::Gating,
            D::Auditing => v1::State::Auditing,
            D::Audited => v1::State::Audited,
            D::Committed => v1::State::Committed,
            D::RollingBack => v1::State::RollingBack,
            D::RolledBack => v1::State::RolledBack,
            D::NeedsManual => v1::State::NeedsManual,
            D::Aborted => v1::State::Aborted,
        }
    }
}

impl From<v1::State> for domain::State {
    fn from(s: v1::State) -> Self {
        use domain::State as D;
        match s {
            v1::State::Prepared => D::Prepared,
            v1::State::Applied => D::Applied,
            v1::State::Gating => D::Gating,
            v1::State::Auditing => D::Auditing,
            v1::State::Audited => D::Audited,
            v1::State::Committed => D::Committed,
            v1::State::RollingBack => D::RollingBack,
            v1::State::RolledBack => D::RolledBack,
            v1::State::NeedsManual => D::NeedsManual,
            v1::State::Aborted => D::Aborted,
        }
    }
}

impl From<&domain::Image> for v1::Image {
    fn from(i: &domain::Image) -> Self {
        v1::Image {
            hash: i.hash,
            len: i.len,
            meta: v1::FileMeta {
                mode: i.meta.mode,
                uid: i.meta.uid,
                gid: i.meta.gid,
            },
        }
    }
}

impl From<v1::Image> for domain::Image {
    fn from(i: v1::Image) -> Self {
        domain::Image {
            hash: i.hash,
            len: i.len,
            meta: crate::durable::FileMeta {
                mode: i.meta.mode,
                uid: i.meta.uid,
                gid: i.meta.gid,
            },
        }
    }
}

impl From<&kharden_manifest::Change> for v1::Change {
    fn from(c: &kharden_manifest::Change) -> Self {
        use kharden_manifest::Change as C;
        match c.clone() {
            C::Set { name, value } => v1::Change::Set { name, value },
            C::Unset { name } => v1::Change::Unset { name },
            C::AddItem { name, item } => v1::Change::AddItem { name, item },
            C::RemoveItem {
                name,
                item,
                if_empty,
            } => v1::Change::RemoveItem {
                name,
                item,
                if_empty,
            },
            C::AtLeast { name, min } => v1::Change::AtLeast { name, min },
            C::SetKey { name, key, value } => v1::Change::SetKey { name, key, value },
            C::Mount(m) => v1::Change::Mount(v1::Mount {
                name: m.name,
                host_path: m.host_path,
                mount_path: m.mount_path,
                read_only: m.read_only,
                path_type: m.path_type,
            }),
        }
    }
}

impl From<v1::Change> for kharden_manifest::Change {
    fn from(c: v1::Change) -> Self {
        use kharden_manifest::Change as C;
        match c {
            v1::Change::Set { name, value } => C::Set { name, value },
            v1::Change::Unset { name } => C::Unset { name },
            v1::Change::AddItem { name, item } => C::AddItem { name, item },
            v1::Change::RemoveItem {
                name,
                item,
                if_empty,
            } => C::RemoveItem {
                name,
                item,
                if_empty,
            },
            v1::Change::AtLeast { name, min } => C::AtLeast { name, min },
            v1::Change::SetKey { name, key, value } => C::SetKey { name, key, value },
            v1::Change::Mount(m) => C::Mount(kharden_manifest::Mount {
                name: m.name,
                host_path: m.host_path,
                mount_path: m.mount_path,
                read_only: m.read_only,
                path_type: m.path_type,
            }),
        }
    }
}

impl From<&kharden_kubelet_config::Scalar> for v3::Scalar {
    fn from(v: &kharden_kubelet_config::Scalar) -> Self {
        use kharden_kubelet_config::Scalar as S;
        match v {
            S::Bool(b) => v3::Scalar::Bool(*b),
            S::Int(i) => v3::Scalar::Int(*i),
            S::Str(s) => v3::Scalar::Str(s.clone()),
        }
    }
}

impl From<v3::Scalar> for kharden_kubelet_config::Scalar {
    fn from(v: v3::Scalar) -> Self {
        use kharden_kubelet_config::Scalar as S;
        match v {
            v3::Scalar::Bool(b) => S::Bool(b),
            v3::Scalar::Int(i) => S::Int(i),
            v3::Scalar::Str(s) => S::Str(s),
        }
    }
}

impl From<&kharden_kubelet_config::ConfigChange> for v3::Setting {
    fn from(c: &kharden_kubelet_config::ConfigChange) -> Self {
        use kharden_kubelet_config::ConfigChange as C;
        match c {
            C::Set { path, value } => v3::Setting::Set {
                path: path.segments().to_vec(),
                value: value.into(),
            },
            C::Unset { path } => v3::Setting::Unset {
                path: path.segments().to_vec(),
            },
            C::SetList { path, items } => v3::Setting::SetList {
                path: path.segments().to_vec(),
                items: items.iter().map(Into::into).collect(),
            },
        }
    }
}

impl TryFrom<v3::Setting> for kharden_kubelet_config::ConfigChange {
    type Error = CodecError;
    fn try_from(c: v3::Setting) -> Result<Self, CodecError> {
        use kharden_kubelet_config::{ConfigChange as C, KeyPath};
        let path = |p: Vec<String>| {
            KeyPath::new(p).map_err(|e| CodecError::Invalid(format!("setting key path: {e}")))
        };
        Ok(match c {
            v3::Setting::Set { path: p, value } => C::Set {
                path: path(p)?,
                value: value.into(),
            },
            v3::Setting::Unset { path: p } => C::Unset { path: path(p)? },
            v3::Setting::SetList { path: p, items } => C::SetList {
                path: path(p)?,
                items: items.into_iter().map(Into::into).collect(),
            },
        })
    }
}

impl From<domain::Scope> for v3::Scope {
    fn from(s: domain::Scope) -> Self {
        match s {
            domain::Scope::Contents => v3::Scope::Contents,
            domain::Scope::Metadata { directory } => v3::Scope::Metadata { directory },
        }
    }
}

impl From<v3::Scope> for domain::Scope {
    fn from(s: v3::Scope) -> Self {
        match s {
            v3::Scope::Contents => domain::Scope::Contents,
            v3::Scope::Metadata { directory } => domain::Scope::Metadata { directory },
        }
    }
}

impl From<&domain::FileRecord> for v3::FileRecord {
    fn from(f: &domain::FileRecord) -> Self {
        v3::FileRecord {
            path: f.path.clone(),
            before: f.before.as_ref().map(Into::into),
            after: f.after.as_ref().map(Into::into),
            changes: f.changes.iter().map(Into::into).collect(),
            settings: f.settings.iter().map(Into::into).collect(),
            gated: f.gated,
            scope: f.scope.into(),
            controls: f.controls.clone(),
        }
    }
}

/// Formats 1 and 2 changed contents only, and knew no kubelet settings.
impl From<v1::FileRecord> for v3::FileRecord {
    fn from(f: v1::FileRecord) -> Self {
        v3::FileRecord {
            path: f.path,
            before: f.before,
            after: f.after,
            changes: f.changes,
            settings: Vec::new(),
            gated: f.gated,
            scope: v3::Scope::Contents,
            controls: Vec::new(),
        }
    }
}

impl TryFrom<v3::FileRecord> for domain::FileRecord {
    type Error = CodecError;
    fn try_from(f: v3::FileRecord) -> Result<Self, CodecError> {
        Ok(domain::FileRecord {
            path: f.path,
            before: f.before.map(Into::into),
            after: f.after.map(Into::into),
            changes: f.changes.into_iter().map(Into::into).collect(),
            settings: f
                .settings
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            gated: f.gated,
            scope: f.scope.into(),
            controls: f.controls,
        })
    }
}

impl From<&domain::GateTarget> for v3::GateTarget {
    fn from(t: &domain::GateTarget) -> Self {
        match t.clone() {
            domain::GateTarget::StaticPods => v3::GateTarget::StaticPods,
            domain::GateTarget::Kubelet {
                healthz_before,
                healthz_after,
                kubeconfig,
                node,
            } => v3::GateTarget::Kubelet {
                healthz_before,
                healthz_after,
                kubeconfig,
                node,
            },
            domain::GateTarget::Nothing => v3::GateTarget::Nothing,
        }
    }
}

impl From<v3::GateTarget> for domain::GateTarget {
    fn from(t: v3::GateTarget) -> Self {
        match t {
            v3::GateTarget::StaticPods => domain::GateTarget::StaticPods,
            v3::GateTarget::Kubelet {
                healthz_before,
                healthz_after,
                kubeconfig,
                node,
            } => domain::GateTarget::Kubelet {
                healthz_before,
                healthz_after,
                kubeconfig,
                node,
            },
            v3::GateTarget::Nothing => domain::GateTarget::Nothing,
        }
    }
}

impl From<&domain::Kept> for v3::Kept {
    fn from(k: &domain::Kept) -> Self {
        v3::Kept {
            component: k.component.clone(),
            pid: k.pid,
            start_ticks: k.start_ticks,
            manifest: k.manifest.clone(),
        }
    }
}

impl From<v3::Kept> for domain::Kept {
    fn from(k: v3::Kept) -> Self {
        domain::Kept {
            component: k.component,
            pid: k.pid,
            start_ticks: k.start_ticks,
            manifest: k.manifest,
        }
    }
}

impl From<&domain::GateSpec> for v3::GateSpec {
    fn from(g: &domain::GateSpec) -> Self {
        v3::GateSpec {
            enabled: g.enabled,
            timeout_secs: g.timeout_secs,
            stable_for_secs: g.stable_for_secs,
            health_url: g.health_url.clone(),
            cacert: g.cacert.clone(),
            cert: g.cert.clone(),
            key: g.key.clone(),
            container: g.container.clone(),
            root: g.root.clone(),
            max_crashes: g.max_crashes,
            target: (&g.target).into(),
            keep: g.keep.iter().map(Into::into).collect(),
        }
    }
}

/// Formats 1 and 2 gated static pods only, and kept no other process.
impl From<v2::GateSpec> for v3::GateSpec {
    fn from(g: v2::GateSpec) -> Self {
        v3::GateSpec {
            enabled: g.enabled,
            timeout_secs: g.timeout_secs,
            stable_for_secs: g.stable_for_secs,
            health_url: g.health_url,
            cacert: g.cacert,
            cert: g.cert,
            key: g.key,
            container: g.container,
            root: g.root,
            max_crashes: g.max_crashes,
            target: v3::GateTarget::StaticPods,
            keep: Vec::new(),
        }
    }
}

/// Format 1 had no `--max-crashes`: its gates waited for the deadline (0).
impl From<v1::GateSpec> for v2::GateSpec {
    fn from(g: v1::GateSpec) -> Self {
        v2::GateSpec {
            enabled: g.enabled,
            timeout_secs: g.timeout_secs,
            stable_for_secs: g.stable_for_secs,
            health_url: g.health_url,
            cacert: g.cacert,
            cert: g.cert,
            key: g.key,
            container: g.container,
            root: g.root,
            max_crashes: 0,
        }
    }
}

impl From<v3::GateSpec> for domain::GateSpec {
    fn from(g: v3::GateSpec) -> Self {
        domain::GateSpec {
            enabled: g.enabled,
            timeout_secs: g.timeout_secs,
            stable_for_secs: g.stable_for_secs,
            health_url: g.health_url,
            cacert: g.cacert,
            cert: g.cert,
            key: g.key,
            container: g.container,
            root: g.root,
            max_crashes: g.max_crashes,
            target: g.target.into(),
            keep: g.keep.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<&domain::AuditSpec> for v1::AuditSpec {
    fn from(a: &domain::AuditSpec) -> Self {
        v1::AuditSpec {
            builtin: a.builtin,
            script: a.script.clone(),
            script_timeout_secs: a.script_timeout_secs,
        }
    }
}

impl From<v1::AuditSpec> for domain::AuditSpec {
    fn from(a: v1::AuditSpec) -> Self {
        domain::AuditSpec {
            builtin: a.builtin,
            script: a.script,
            script_timeout_secs: a.script_timeout_secs,
        }
    }
}

impl From<&domain::TxnKind> for v1::TxnKind {
    fn from(k: &domain::TxnKind) -> Self {
        match k {
            domain::TxnKind::Apply => v1::TxnKind::Apply,
            domain::TxnKind::Rollback { of } => v1::TxnKind::Rollback { of: *of },
            domain::TxnKind::Harden { controls } => v1::TxnKind::Harden {
                controls: controls.clone(),
            },
        }
    }
}

impl From<v1::TxnKind> for domain::TxnKind {
    fn from(k: v1::TxnKind) -> Self {
        match k {
            v1::TxnKind::Apply => domain::TxnKind::Apply,
            v1::TxnKind::Rollback { of } => domain::TxnKind::Rollback { of },
            v1::TxnKind::Harden { controls } => domain::TxnKind::Harden { controls },
        }
    }
}

impl From<domain::RollbackCause> for v2::RollbackCause {
    fn from(c: domain::RollbackCause) -> Self {
        match c {
            domain::RollbackCause::GateFailed => v2::RollbackCause::GateFailed,
            domain::RollbackCause::AuditFailed => v2::RollbackCause::AuditFailed,
            domain::RollbackCause::WriteFailed => v2::RollbackCause::WriteFailed,
            domain::RollbackCause::Recovery => v2::RollbackCause::Recovery,
            domain::RollbackCause::Interrupted => v2::RollbackCause::Interrupted,
            domain::RollbackCause::RestartFailed => v2::RollbackCause::RestartFailed,
        }
    }
}

impl From<v2::RollbackCause> for domain::RollbackCause {
    fn from(c: v2::RollbackCause) -> Self {
        match c {
            v2::RollbackCause::GateFailed => domain::RollbackCause::GateFailed,
            v2::RollbackCause::AuditFailed => domain::RollbackCause::AuditFailed,
            v2::RollbackCause::WriteFailed => domain::RollbackCause::WriteFailed,
            v2::RollbackCause::Recovery => domain::RollbackCause::Recovery,
            v2::RollbackCause::Interrupted => domain::RollbackCause::Interrupted,
            v2::RollbackCause::RestartFailed => domain::RollbackCause::RestartFailed,
        }
    }
}

impl From<v1::RollbackCause> for v2::RollbackCause {
    fn from(c: v1::RollbackCause) -> Self {
        match c {
            v1::RollbackCause::GateFailed => v2::RollbackCause::GateFailed,
            v1::RollbackCause::AuditFailed => v2::RollbackCause::AuditFailed,
            v1::RollbackCause::WriteFailed => v2::RollbackCause::WriteFailed,
            v1::RollbackCause::Recovery => v2::RollbackCause::Recovery,
        }
    }
}

/// Format 1 had no temp tag: its temps were `.<name>.kharden-<id>` ([`domain::TEMP_TAG_V1`]).
impl From<v1::TxnRecord> for v2::TxnRecord {
    fn from(r: v1::TxnRecord) -> Self {
        v2::TxnRecord {
            id: r.id,
            kind: r.kind,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
            summary: r.summary,
            files: r.files,
            gate: r.gate.into(),
            audit: r.audit,
            deadline_ms: r.deadline_ms,
            state: r.state,
            rollback_cause: r.rollback_cause.map(Into::into),
            reason: r.reason,
            temp_tag: domain::TEMP_TAG_V1,
        }
    }
}

/// Format 2 restarted no service.
impl From<v2::TxnRecord> for v3::TxnRecord {
    fn from(r: v2::TxnRecord) -> Self {
        v3::TxnRecord {
            id: r.id,
            kind: r.kind,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
            summary: r.summary,
            files: r.files.into_iter().map(Into::into).collect(),
            gate: r.gate.into(),
            audit: r.audit,
            deadline_ms: r.deadline_ms,
            state: r.state,
            rollback_cause: r.rollback_cause,
            reason: r.reason,
            restart: None,
            temp_tag: r.temp_tag,
        }
    }
}

impl Stored for domain::TxnRecord {
    type Current = v3::TxnRecord;

    fn to_stored(&self) -> v3::TxnRecord {
        v3::TxnRecord {
            id: self.id,
            kind: (&self.kind).into(),
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
            summary: self.summary.clone(),
            files: self.files.iter().map(Into::into).collect(),
            gate: (&self.gate).into(),
            audit: (&self.audit).into(),
            deadline_ms: self.deadline_ms,
            state: self.state.into(),
            rollback_cause: self.rollback_cause.map(Into::into),
            reason: self.reason.clone(),
            restart: self.restart.as_ref().map(|r| v3::Restart {
                unit: r.unit.clone(),
                systemctl: r.systemctl.clone(),
            }),
            temp_tag: self.temp_tag,
        }
    }

    fn from_stored(r: v3::TxnRecord) -> Result<Self, CodecError> {
        Ok(domain::TxnRecord {
            id: r.id,
            kind: r.kind.into(),
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
            summary: r.summary,
            files: r
                .files
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            gate: r.gate.into(),
            audit: r.audit.into(),
            deadline_ms: r.deadline_ms,
            state: r.state.into(),
            rollback_cause: r.rollback_cause.map(Into::into),
            reason: r.reason,
            restart: r.restart.map(|r| domain::Restart {
                unit: r.unit,
                systemctl: r.systemctl,
            }),
            temp_tag: r.temp_tag,
        })
    }

    fn decode_older(version: u8, body: &[u8]) -> Result<Self, CodecError> {
        match version {
            1 => Self::from_stored(v2::TxnRecord::from(postcard_v1::<v1::TxnRecord>(body)?).into()),
            2 => Self::from_stored(postcard_v1::<v2::TxnRecord>(body)?.into()),
            v => Err(CodecError::Version(v)),
        }
    }
}

impl From<domain::RoundClass> for v1::ProbeClass {
    fn from(c: domain::RoundClass) -> Self {
        use domain::RoundClass as D;
        match c {
            D::NoProcess => v1::ProbeClass::NoProcess,
            D::Down => v1::ProbeClass::Down,
            D::Unauthorized => v1::ProbeClass::Unauthorized,
            D::ServerError => v1::ProbeClass::ServerError,
            D::Timeout => v1::ProbeClass::Timeout,
            D::TlsError => v1::ProbeClass::TlsError,
            D::OtherStatus => v1::ProbeClass::OtherStatus,
            D::Healthy => v1::ProbeClass::Healthy,
        }
    }
}

impl From<v1::ProbeClass> for domain::RoundClass {
    fn from(c: v1::ProbeClass) -> Self {
        use domain::RoundClass as D;
        match c {
            v1::ProbeClass::NoProcess => D::NoProcess,
            v1::ProbeClass::Down => D::Down,
            v1::ProbeClass::Unauthorized => D::Unauthorized,
            v1::ProbeClass::ServerError => D::ServerError,
            v1::ProbeClass::Timeout => D::Timeout,
            v1::ProbeClass::TlsError => D::TlsError,
            v1::ProbeClass::OtherStatus => D::OtherStatus,
            v1::ProbeClass::Healthy => D::Healthy,
        }
    }
}

impl From<domain::Side> for v1::Side {
    fn from(s: domain::Side) -> Self {
        match s {
            domain::Side::Before => v1::Side::Before,
            domain::Side::After => v1::Side::After,
        }
    }
}

impl From<v1::Side> for domain::Side {
    fn from(s: v1::Side) -> Self {
        match s {
            v1::Side::Before => domain::Side::Before,
            v1::Side::After => domain::Side::After,
        }
    }
}

impl From<v1::EventKind> for v2::EventKind {
    fn from(k: v1::EventKind) -> Self {
        use v1::EventKind as K;
        match k {
            K::State { state, note } => v2::EventKind::State { state, note },
            K::FileWritten { path, side } => v2::EventKind::FileWritten { path, side },
            K::FileRemoved { path, side } => v2::EventKind::FileRemoved { path, side },
            K::Probe {
                class,
                pid,
                restarted,
                detail,
            } => v2::EventKind::Probe {
                class,
                pid,
                restarted,
                detail,
            },
            K::Audit {
                passed,
                detail,
                output,
            } => v2::EventKind::Audit {
                passed,
                detail,
                output,
            },
            K::Recovery { action } => v2::EventKind::Recovery { action },
            K::Conflict { path, found } => v2::EventKind::Conflict { path, found },
            K::TempRemoved { path } => v2::EventKind::TempRemoved { path },
            K::Note(n) => v2::EventKind::Note(n),
            K::Resolved { note } => v2::EventKind::Resolved { note },
        }
    }
}

impl From<&domain::EventKind> for v2::EventKind {
    fn from(k: &domain::EventKind) -> Self {
        use domain::EventKind as D;
        match k.clone() {
            D::State { state, note } => v2::EventKind::State {
                state: state.into(),
                note,
            },
            D::FileWritten { path, side } => v2::EventKind::FileWritten {
                path,
                side: side.into(),
            },
            D::FileRemoved { path, side } => v2::EventKind::FileRemoved {
                path,
                side: side.into(),
            },
            D::Probe {
                class,
                pid,
                restarted,
                detail,
            } => v2::EventKind::Probe {
                class: class.into(),
                pid,
                restarted,
                detail,
            },
            D::Audit {
                passed,
                detail,
                output,
            } => v2::EventKind::Audit {
                passed,
                detail,
                output,
            },
            D::Recovery { action } => v2::EventKind::Recovery { action },
            D::Conflict { path, found } => v2::EventKind::Conflict { path, found },
            D::TempRemoved { path } => v2::EventKind::TempRemoved { path },
            D::Note(n) => v2::EventKind::Note(n),
            D::Resolved { note } => v2::EventKind::Resolved { note },
            D::Signal { signal, second } => v2::EventKind::Signal { signal, second },
            D::Crash {
                pid,
                status,
                lifetime_ms,
                exact,
            } => v2::EventKind::Crash {
                pid,
                status,
                lifetime_ms,
                exact,
            },
            D::Restarted { unit, side, detail } => v2::EventKind::Restarted {
                unit,
                side: side.into(),
                detail,
            },
        }
    }
}

impl From<v2::EventKind> for domain::EventKind {
    fn from(k: v2::EventKind) -> Self {
        use domain::EventKind as D;
        match k {
            v2::EventKind::State { state, note } => D::State {
                state: state.into(),
                note,
            },
            v2::EventKind::FileWritten { path, side } => D::FileWritten {
                path,
                side: side.into(),
            },
            v2::EventKind::FileRemoved { path, side } => D::FileRemoved {
                path,
                side: side.into(),
            },
            v2::EventKind::Probe {
                class,
                pid,
                restarted,
                detail,
            } => D::Probe {
                class: class.into(),
                pid,
                restarted,
                detail,
            },
            v2::EventKind::Audit {
                passed,
                detail,
                output,
            } => D::Audit {
                passed,
                detail,
                output,
            },
            v2::EventKind::Recovery { action } => D::Recovery { action },
            v2::EventKind::Conflict { path, found } => D::Conflict { path, found },
            v2::EventKind::TempRemoved { path } => D::TempRemoved { path },
            v2::EventKind::Note(n) => D::Note(n),
            v2::EventKind::Resolved { note } => D::Resolved { note },
            v2::EventKind::Signal { signal, second } => D::Signal { signal, second },
            v2::EventKind::Crash {
                pid,
                status,
                lifetime_ms,
                exact,
            } => D::Crash {
                pid,
                status,
                lifetime_ms,
                exact,
            },
            v2::EventKind::Restarted { unit, side, detail } => D::Restarted {
                unit,
                side: side.into(),
                detail,
            },
        }
    }
}

impl Stored for domain::Event {
    type Current = v2::Event;

    fn to_stored(&self) -> v2::Event {
        v2::Event {
            time_ms: self.time_ms,
            kind: (&self.kind).into(),
        }
    }

    fn from_stored(e: v2::Event) -> Result<Self, CodecError> {
        Ok(domain::Event {
            time_ms: e.time_ms,
            kind: e.kind.into(),
        })
    }

    fn decode_older(version: u8, body: &[u8]) -> Result<Self, CodecError> {
        match version {
            1 => {
                let e: v1::Event = postcard_v1(body)?;
                Self::from_stored(v2::Event {
                    time_ms: e.time_ms,
                    kind: e.kind.into(),
                })
            }
            // Format 3 appended variants to format 2's events: the same type reads both.
            2 => Self::from_stored(postcard_v1::<v2::Event>(body)?),
            v => Err(CodecError::Version(v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_version_byte() {
        let ev = domain::Event {
            time_ms: 5,
            kind: domain::EventKind::State {
                state: domain::State::Prepared,
                note: None,
            },
        };
        let bytes = encode(&ev).unwrap();
        assert_eq!(bytes[0], RECORD_VERSION);
        assert_eq!(decode::<domain::Event>(&bytes).unwrap(), ev);
        let mut bad = bytes.clone();
        bad[0] = 99;
        assert!(matches!(
            decode::<domain::Event>(&bad),
            Err(CodecError::Version(99))
        ));
        bad[0] = 0;
        assert!(matches!(
            decode::<domain::Event>(&bad),
            Err(CodecError::Version(0))
        ));
        assert!(matches!(
            decode::<domain::Event>(&[]),
            Err(CodecError::Empty)
        ));
    }
}
