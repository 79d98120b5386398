//! Format-preserving editing of container flags in Kubernetes static pod manifests.
//!
//! This crate is pure: bytes in, bytes out, no I/O. It finds one container's argv
//! (`command` + `args`) in the YAML text with exact byte spans, applies [`Change`]s as byte
//! splices, and verifies every edit by re-parsing the result with an independent parser
//! (serde_yaml): the only semantic difference must be the intended one.
//!
//! CONTRACT (used by the `kharden` binary and `kharden-catalog`; keep these signatures):
//! - [`Change`], [`Mount`] and their `Display`/`parse_cli` forms,
//! - [`edit`], [`inspect`], [`Edited`], [`PodInfo`], [`HttpGetProbe`], [`EditError`],
//! - [`flags::parse_flags`], [`flags::last_value`], [`flags::first_value`].

pub mod flags;

use serde::{Deserialize, Serialize};
use std::ops::Range;

/// One intended change to a container's flags (DESIGN.md, "Command line").
///
/// `name` is always stored without leading dashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// `--set NAME=VALUE` (value `Some`) or `--set NAME` (value `None`: a bare boolean flag).
    Set { name: String, value: Option<String> },
    /// `--unset NAME`: remove every occurrence.
    Unset { name: String },
    /// `--add-item NAME=ITEM`: add ITEM to a comma-separated list (append the flag if absent).
    AddItem { name: String, item: String },
    /// `--remove-item NAME=ITEM`: remove ITEM from the list. When the list becomes empty the
    /// flag is removed, or set to `if_empty` when given.
    RemoveItem {
        name: String,
        item: String,
        if_empty: Option<String>,
    },
    /// `--at-least NAME=N`: the integer value is at least N (set to N when absent or lower).
    AtLeast { name: String, min: i64 },
    /// `--set-key NAME=KEY=VALUE`: in a `K=V,K=V` map flag such as `--feature-gates`.
    SetKey {
        name: String,
        key: String,
        value: String,
    },
    /// Add a hostPath volume to the pod and its volumeMount to the container (idempotent:
    /// nothing happens when an identical volume and mount already exist).
    Mount(Mount),
}

/// A hostPath volume plus the matching volumeMount of the target container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Volume name (also used by the volumeMount).
    pub name: String,
    pub host_path: String,
    pub mount_path: String,
    pub read_only: bool,
    /// hostPath `type`, e.g. `File`, `DirectoryOrCreate`.
    pub path_type: Option<String>,
}

impl Change {
    /// The flag name this change is about (without dashes); `None` for [`Change::Mount`].
    pub fn flag_name(&self) -> Option<&str> {
        match self {
            Change::Set { name, .. }
            | Change::Unset { name }
            | Change::AddItem { name, .. }
            | Change::RemoveItem { name, .. }
            | Change::AtLeast { name, .. }
            | Change::SetKey { name, .. } => Some(name),
            Change::Mount(_) => None,
        }
    }

    /// Parse one command-line change: `kind` is the option without dashes (`set`, `unset`,
    /// `add-item`, `remove-item`, `at-least`, `set-key`), `arg` its argument.
    pub fn parse_cli(kind: &str, arg: &str) -> Result<Change, String> {
        fn strip(n: &str) -> Result<String, String> {
            let n = n.trim_start_matches('-');
            if n.is_empty()
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            {
                return Err(format!("invalid flag name {n:?}"));
            }
            Ok(n.to_string())
        }
        fn split(arg: &str, what: &str) -> Result<(String, String), String> {
            match arg.split_once('=') {
                Some((n, v)) => Ok((strip(n)?, v.to_string())),
                None => Err(format!("expected NAME={what}, got {arg:?}")),
            }
        }
        match kind {
            "set" => match arg.split_once('=') {
                Some((n, v)) => Ok(Change::Set {
                    name: strip(n)?,
                    value: Some(v.to_string()),
                }),
                None => Ok(Change::Set {
                    name: strip(arg)?,
                    value: None,
                }),
            },
            "unset" => Ok(Change::Unset { name: strip(arg)? }),
            "add-item" => {
                let (name, item) = split(arg, "ITEM")?;
                Ok(Change::AddItem { name, item })
            }
            "remove-item" => {
                let (name, item) = split(arg, "ITEM")?;
                Ok(Change::RemoveItem {
                    name,
                    item,
                    if_empty: None,
                })
            }
            "at-least" => {
                let (name, n) = split(arg, "N")?;
                let min = n
                    .parse::<i64>()
                    .map_err(|_| format!("--at-least needs an integer, got {n:?}"))?;
                Ok(Change::AtLeast { name, min })
            }
            "set-key" => {
                let (name, kv) = split(arg, "KEY=VALUE")?;
                let (key, value) = kv
                    .split_once('=')
                    .ok_or_else(|| format!("expected NAME=KEY=VALUE, got {arg:?}"))?;
                Ok(Change::SetKey {
                    name,
                    key: key.to_string(),
                    value: value.to_string(),
                })
            }
            other => Err(format!("unknown change kind {other:?}")),
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Set { name, value: Some(v) } => write!(f, "set --{name}={v}"),
            Change::Set { name, value: None } => write!(f, "set --{name}"),
            Change::Unset { name } => write!(f, "unset --{name}"),
            Change::AddItem { name, item } => write!(f, "add {item} to --{name}"),
            Change::RemoveItem {
                name,
                item,
                if_empty,
            } => match if_empty {
                Some(e) => write!(f, "remove {item} from --{name} (empty: {e})"),
                None => write!(f, "remove {item} from --{name}"),
            },
            Change::AtLeast { name, min } => write!(f, "--{name} at least {min}"),
            Change::SetKey { name, key, value } => write!(f, "set {key}={value} in --{name}"),
            Change::Mount(m) => write!(
                f,
                "mount hostPath {} at {}{}",
                m.host_path,
                m.mount_path,
                if m.read_only { " (read-only)" } else { "" }
            ),
        }
    }
}

/// Why an edit was refused. `Display` gives `line N: reason` (1-based line) when a line is
/// known; callers prefix the file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{reason}", match .line { Some(l) => format!("line {l}: "), None => String::new() })]
pub struct EditError {
    /// 1-based line of the offending text, when known.
    pub line: Option<usize>,
    pub kind: EditErrorKind,
    pub reason: String,
}

/// Machine-readable class of an [`EditError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EditErrorKind {
    /// Not valid UTF-8 or not valid YAML.
    Syntax,
    /// Too large to be a manifest.
    TooLarge,
    /// No container, several candidates, or no Pod document.
    Container,
    /// Anchors/aliases, block scalars, `sh -c`, ambiguous two-item or duplicated flags...
    Unsupported,
    /// The requested value cannot be written (newline, control character, not an integer).
    Value,
    /// The edit did not pass re-parse verification (a bug guard: never written).
    Verification,
}

/// An `httpGet` probe found in a container (startup, readiness or liveness).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpGetProbe {
    /// `startupProbe`, `readinessProbe` or `livenessProbe`.
    pub kind: String,
    /// `HTTP` or `HTTPS` (kubelet's default is HTTP).
    pub scheme: String,
    /// The probe's `host`, or `None` (kubelet then uses the pod IP; for hostNetwork static
    /// pods that is the node, so callers use 127.0.0.1).
    pub host: Option<String>,
    /// Numeric port; a named port is resolved against the container's `ports` when possible.
    pub port: u16,
    pub path: String,
}

/// What kharden needs to know about a manifest's target container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodInfo {
    /// `metadata.name` of the pod, when present.
    pub pod_name: Option<String>,
    pub container: String,
    /// Component recognised from the container name or argv (kube-apiserver,
    /// kube-controller-manager, kube-scheduler, etcd), if any.
    pub component: Option<String>,
    /// Effective argv: `command` followed by `args`.
    pub argv: Vec<String>,
    /// Index in `argv` where the component's own flags start (after go-runner, hyperkube
    /// subcommands, `flock ...` wrappers).
    pub flags_start: usize,
    /// Probes in kubelet's order of relevance: startup, readiness, liveness.
    pub probes: Vec<HttpGetProbe>,
    /// `env` entries with literal `value`s, in order.
    pub env: Vec<(String, String)>,
    /// `spec.hostNetwork`.
    pub host_network: bool,
}

/// The result of a successful [`edit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    /// The edited file. Equal to the input when nothing needed to change.
    pub output: Vec<u8>,
    /// Target container, before and after.
    pub before: PodInfo,
    pub after: PodInfo,
    /// Byte ranges of the input that were replaced, in increasing order.
    pub replaced: Vec<Range<usize>>,
}

impl Edited {
    /// True when the output equals the input.
    pub fn unchanged(&self) -> bool {
        self.replaced.is_empty()
    }
}

/// The largest input accepted (a static pod manifest is a few KiB).
pub const MAX_MANIFEST_BYTES: usize = 1024 * 1024;

/// Describe the target container of a manifest without changing anything.
pub fn inspect(input: &[u8], container: Option<&str>) -> Result<PodInfo, EditError> {
    let _ = (input, container);
    Err(EditError {
        line: None,
        kind: EditErrorKind::Unsupported,
        reason: "editor not implemented yet".into(),
    })
}

/// Apply `changes` (in order) to the target container of a manifest.
///
/// Returns the edited bytes, or a refusal. Never returns output that failed verification.
pub fn edit(input: &[u8], container: Option<&str>, changes: &[Change]) -> Result<Edited, EditError> {
    let _ = (input, container, changes);
    Err(EditError {
        line: None,
        kind: EditErrorKind::Unsupported,
        reason: "editor not implemented yet".into(),
    })
}
