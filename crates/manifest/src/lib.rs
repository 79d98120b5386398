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
//! - [`Flags`] (the one reader of a flag's value) and [`Change::holds_in`].
//!
//! # Decisions (details in `docs/manifest-editor.md`)
//!
//! - **Target**: the document that is a `Pod` (or the only pod template), then `--container`,
//!   else the only container, else the one running a known component (name or binary after
//!   wrappers), else the one matching the pod's component label/name; otherwise refused.
//!   Flags start after `go-runner`'s own flags and binary, after `hyperkube SUBCOMMAND`, after
//!   `flock [opts] LOCK BINARY`; `sh -c` and block scalars are refused.
//! - **Flag rules** (pflag): `-x` = `--x`, `_` = `-` in names, the last occurrence wins, `--`
//!   ends the flags, `--name value` (two items) is one flag.
//! - **Duplicated flags**: `set` rewrites the last (effective) occurrence and removes the
//!   earlier ones; list/integer/map changes consolidate duplicates with equal values and refuse
//!   duplicates with different values (list flags accumulate, so "the" value is ambiguous).
//! - **Two-item flags** are edited as a unit: `set` replaces the value item (keeping its
//!   quoting), `unset` removes both; `set NAME` without a value on one is refused.
//! - **New flags** go right after the last flag item of the list holding the component's flags,
//!   copying its indentation, dash spacing, quoting and line ending.
//! - **Quoting**: edited items keep their style; a plain value that is not safe plain is quoted
//!   like its quoted siblings, else with double quotes; values that YAML 1.1 would read as
//!   bool/null/number/timestamp (`on`, `no`, `~`, `0x1F`, `1_000`, `1:30`, `1e3`, `.inf`,
//!   empty...) are always quoted. Values with line breaks or control characters are refused.
//! - **Verification**: the new argv must express the change and leave every other flag as it
//!   was; the output must parse (serde_yaml) to the input's parse with exactly that change.
//! - **Mount**: appends to existing block `volumes`/`volumeMounts` lists, creates them when
//!   absent (at the mapping's key column); flow-style lists are refused; idempotent;
//!   conflicting existing entries are refused.

mod argv;
pub mod flags;
mod locate;
mod mount;
mod plan;
mod splice;
mod tree;
mod verify;
mod yaml11;

pub use flags::{FlagItem, FlagValue, Flags};
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

    /// Whether this change is in effect on a command line, under the flag parser's rules (the
    /// last occurrence wins; see [`flags`]). The editor's verification, the built-in audit of
    /// the running process and the catalog's remediations all ask this one question. A
    /// [`Change::Mount`] is not about flags and always holds.
    pub fn holds_in(&self, flags: &Flags) -> bool {
        let Some(name) = self.flag_name() else {
            return true;
        };
        let last = flags.last(name).map(|f| &f.value);
        let value = last.map(FlagValue::effective);
        match self {
            Change::Set {
                value: Some(want), ..
            } => match last {
                Some(FlagValue::Bare) => flags::parse_bool(want) == Some(true),
                Some(v) => v.as_str() == Some(want.as_str()),
                None => false,
            },
            Change::Set { value: None, .. } => match last {
                Some(FlagValue::Bare) => true,
                Some(FlagValue::Inline(v)) => flags::parse_bool(v) == Some(true),
                // `--name value`: whether the item is the flag's value depends on the flag's
                // type; the editor never writes it for a bare flag.
                Some(FlagValue::Separate { .. }) | None => false,
            },
            Change::Unset { .. } => last.is_none(),
            Change::AddItem { item, .. } => {
                value.is_some_and(|v| flags::list_items(v).contains(&item.as_str()))
            }
            Change::RemoveItem { item, if_empty, .. } => value.is_none_or(|v| {
                !flags::list_items(v).contains(&item.as_str()) || if_empty.as_deref() == Some(v)
            }),
            Change::AtLeast { min, .. } => {
                value.and_then(flags::parse_int).is_some_and(|n| n >= *min)
            }
            Change::SetKey { key, value: want, .. } => value
                .and_then(|v| flags::map_value(v, key))
                .is_some_and(|v| {
                    v == want
                        || matches!((flags::parse_bool(v), flags::parse_bool(want)), (Some(a), Some(b)) if a == b)
                }),
            Change::Mount(_) => true,
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
            Change::Set {
                name,
                value: Some(v),
            } => write!(f, "set --{name}={v}"),
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
///
/// Refuses (with the reason and line) what [`edit`] would refuse about the container itself:
/// no or several matching containers, a `sh -c` script, flags in block scalars, anchors,
/// aliases, tags or merge keys on the path to the argv.
pub fn inspect(input: &[u8], container: Option<&str>) -> Result<PodInfo, EditError> {
    let text = check_input(input)?;
    let docs = tree::parse(text)?;
    let loc = locate::locate(&docs, container)?;
    locate::pod_info(&loc, loc.argv_strings(), loc.flags_start)
}

/// Apply `changes` (in order) to the target container of a manifest.
///
/// Returns the edited bytes, or a refusal. Never returns output that failed verification.
/// Each change is planned on the text produced by the previous one; the whole call succeeds or
/// fails as one.
pub fn edit(
    input: &[u8],
    container: Option<&str>,
    changes: &[Change],
) -> Result<Edited, EditError> {
    let text = check_input(input)?;
    let docs = tree::parse(text)?;
    let loc = locate::locate(&docs, container)?;
    let before = locate::pod_info(&loc, loc.argv_strings(), loc.flags_start)?;
    let (doc_index, container_index) = (loc.doc_index, loc.container_index);
    drop(loc);
    let mut first = Some(docs);
    let mut cur = text.to_string();
    let mut provenance = splice::Provenance::new(text.len());
    let mut argv = before.argv.clone();
    let mut flags_start = before.flags_start;
    // The checking parser's reading of the input, parsed only once a change needs it (a no-op
    // edit never pays for it), then updated with each change's intended effect.
    let n_docs = first.as_ref().map_or(0, Vec::len);
    let mut expected = verify::Expected::new(text, n_docs);
    for change in changes {
        let (docs, reparsed) = match first.take() {
            Some(d) => (d, false),
            None => (tree::parse(&cur).map_err(internal)?, true),
        };
        let loc =
            locate::locate(&docs, container).map_err(|e| if reparsed { internal(e) } else { e })?;
        if (loc.doc_index, loc.container_index) != (doc_index, container_index) {
            return Err(EditError {
                line: None,
                kind: EditErrorKind::Verification,
                reason: "verification failed, nothing written: an earlier change moved the target container".into(),
            });
        }
        let mut splices = match change {
            Change::Mount(m) => mount::plan(&cur, &loc, m, &mut expected)?,
            _ => {
                let (splices, new_argv, new_start) =
                    flag_change(&cur, &loc, change, &mut expected)?;
                argv = new_argv;
                flags_start = new_start;
                splices
            }
        };
        if splices.is_empty() {
            continue;
        }
        let next = splice::apply(&cur, &mut splices)?;
        provenance.record(&splices);
        drop(docs);
        cur = next;
    }
    if cur.as_bytes() == input {
        return Ok(Edited {
            output: input.to_vec(),
            after: before.clone(),
            before,
            replaced: Vec::new(),
        });
    }
    verify::compare(expected.get()?, &cur)?;
    if cfg!(debug_assertions) {
        // Belt and braces in test and fuzz builds: our own parser must read the output back to
        // the intended argv too (release builds rely on the serde_yaml comparison).
        let docs = tree::parse(&cur).map_err(internal)?;
        let loc = locate::locate(&docs, container).map_err(internal)?;
        if loc.argv_strings() != argv || loc.flags_start != flags_start {
            return Err(EditError {
                line: None,
                kind: EditErrorKind::Verification,
                reason: "verification failed, nothing written: the output reads back differently"
                    .into(),
            });
        }
    }
    let after = PodInfo {
        argv,
        flags_start,
        ..before.clone()
    };
    Ok(Edited {
        output: cur.into_bytes(),
        before,
        after,
        replaced: provenance.replaced(),
    })
}

/// An error met while re-reading text this crate produced: a bug guard, reported as a failed
/// verification (nothing is written).
fn internal(e: EditError) -> EditError {
    EditError {
        line: e.line,
        kind: EditErrorKind::Verification,
        reason: format!(
            "verification failed, nothing written: the edited text does not read back cleanly ({})",
            e.reason
        ),
    }
}

/// Size, UTF-8 and line-ending checks shared by [`inspect`] and [`edit`].
fn check_input(input: &[u8]) -> Result<&str, EditError> {
    if input.len() > MAX_MANIFEST_BYTES {
        return Err(EditError {
            line: None,
            kind: EditErrorKind::TooLarge,
            reason: format!(
                "{} bytes is too large for a static pod manifest (limit {MAX_MANIFEST_BYTES})",
                input.len()
            ),
        });
    }
    let text = std::str::from_utf8(input).map_err(|e| EditError {
        line: Some(line_of(input, e.valid_up_to())),
        kind: EditErrorKind::Syntax,
        reason: "not valid UTF-8".into(),
    })?;
    let b = text.as_bytes();
    if let Some(p) = (0..b.len()).find(|&i| b[i] == b'\r' && b.get(i + 1) != Some(&b'\n')) {
        return Err(EditError {
            line: Some(line_of(input, p)),
            kind: EditErrorKind::Unsupported,
            reason: "a carriage return without a line feed (old Mac line endings) is not supported"
                .into(),
        });
    }
    if let Some((p, c)) = yaml11::yaml11_only_line_break(text) {
        return Err(EditError {
            line: Some(line_of(input, p)),
            kind: EditErrorKind::Unsupported,
            reason: format!(
                "U+{:04X} is a line break to the kubelet's YAML reader and not to others: refusing a file that reads two ways",
                u32::from(c)
            ),
        });
    }
    Ok(text)
}

/// 1-based line of byte offset `pos`.
fn line_of(input: &[u8], pos: usize) -> usize {
    input[..pos.min(input.len())]
        .iter()
        .filter(|&&c| c == b'\n')
        .count()
        + 1
}

/// Plan, check and render one flag change on the current text.
fn flag_change(
    text: &str,
    loc: &locate::Located<'_>,
    change: &Change,
    expected: &mut verify::Expected<'_>,
) -> Result<(Vec<splice::Splice>, Vec<String>, usize), EditError> {
    let argv = loc.argv_strings();
    let ops = plan::plan(&argv, loc.flags_start, change, &|i| {
        loc.argv.get(i).map_or(0, |a| a.node.line)
    })?;
    if ops.is_empty() {
        return Ok((Vec::new(), argv, loc.flags_start));
    }
    let new_argv = plan::apply_strings(&argv, &ops);
    let new_start = match argv::analyse(&new_argv, loc.command.is_some()) {
        argv::Launch::Flags { flags_start, .. } => flags_start,
        argv::Launch::ShellC { .. } => usize::MAX,
    };
    verify::check_intent(change, &argv, &new_argv, loc.flags_start, new_start)?;

    // The expected documents: the same container with its lists rewritten.
    let homes: Vec<(usize, usize)> = loc.argv.iter().map(|a| (list_id(a.list), a.pos)).collect();
    let slots = plan::apply(&homes, 2, &ops);
    let touched = |id: usize| {
        ops.iter().any(|op| {
            loc.argv
                .get(op.idx())
                .is_some_and(|a| list_id(a.list) == id)
        })
    };
    let mut lists = Vec::new();
    for kind in [locate::ListKind::Command, locate::ListKind::Args] {
        let id = list_id(kind);
        if touched(id) {
            // `plan::apply` returns one entry per list id (0 and 1).
            lists.push((kind, slots[id].clone()));
        }
    }
    let container = verify::value_at_mut(expected.get()?, loc.doc_index, &loc.container_path())?;
    verify::set_lists(container, &lists)?;

    // The bytes.
    let mut splices = Vec::new();
    for (kind, _) in &lists {
        let list = loc.list(*kind);
        let Some((items, flow)) = list.and_then(|l| l.seq_items().map(|i| (i, l.is_flow()))) else {
            continue;
        };
        let in_list = |idx: usize| loc.argv.get(idx).filter(|a| a.list == *kind);
        let mut removed = Vec::new();
        for op in &ops {
            let Some(item) = in_list(op.idx()) else {
                continue;
            };
            match op {
                plan::Op::Remove { .. } => removed.push(item.pos),
                plan::Op::Replace { value, .. } => {
                    splices.extend(splice::replace_scalar(text, item.node, items, flow, value));
                }
                plan::Op::InsertAfter { value, .. } => {
                    splices.push(splice::insert_item(text, items, flow, item.pos, value)?);
                }
            }
        }
        removed.sort_unstable();
        splices.extend(splice::remove_items(
            text,
            items,
            flow,
            &removed,
            kind.key(),
        )?);
    }
    Ok((splices, new_argv, new_start))
}

fn list_id(kind: locate::ListKind) -> usize {
    match kind {
        locate::ListKind::Command => 0,
        locate::ListKind::Args => 1,
    }
}
