//! The kubelet's effective configuration: for each setting kharden knows, the value the kubelet
//! runs with and which source decided it.
//!
//! Why it exists: the benchmark asks "is `--anonymous-auth` false?", and kube-bench answers by
//! reading one flag or one file, without defaults. The kubelet answers differently, and kharden
//! must know the kubelet's answer before it changes anything (never edit a value that something
//! else overrides) and when it audits. The rules, from `cmd/kubelet/app/server.go`
//! (`NewKubeletCommand`, `mergeKubeletConfigurations`, `kubeletConfigFlagPrecedence`):
//!
//! 1. **Base.** With `--config`, the file is decoded and the v1beta1 defaults are applied to it
//!    (`SetDefaults_KubeletConfiguration`: see [`crate::schema`] for absent-vs-zero rules), and
//!    relative paths are resolved against the file's directory. Without `--config`, the base is
//!    the command-line defaults, which keep the legacy insecure values (anonymous
//!    authentication on, `AlwaysAllow`, read-only port 10255).
//! 2. **Drop-ins.** With `--config-dir`, the directory is walked (`filepath.WalkDir`: lexical
//!    order, subdirectories included, depth first) and every file whose name ends in `.conf` is
//!    merged over the result so far as a JSON merge patch: a key present in the drop-in replaces
//!    the value, mappings (and maps such as `featureGates`) merge key by key, lists are replaced
//!    whole, `null` changes nothing. Drop-ins are *not* defaulted: `streamingConnectionIdleTimeout:
//!    0s` in a drop-in stays 0. A drop-in must be a complete object with `apiVersion` and `kind`,
//!    and an empty one makes the kubelet exit.
//! 3. **Flags.** Every flag given on the command line is parsed again over the merged
//!    configuration, so a flag beats the file and every drop-in. `--feature-gates` merges key by
//!    key with the file's gates; list and map flags given several times accumulate (pflag).
//!
//! Anything the kubelet would refuse (a value of the wrong type for a known key, an empty
//! drop-in, `--anonymous-auth false` written as two words, which pflag reads as `true` followed
//! by an unknown command) is an error: there is then no effective configuration, the kubelet
//! does not start.

use crate::doc::{ConfigDoc, FileValue, YamlValue};
use crate::duration::GoDuration;
use crate::error::{err, Error, ErrorKind};
use crate::keypath::KeyPath;
use crate::schema::{DefaultRule, KeySpec, Value, ValueType, KEYS};
use kharden_manifest::{flags, FlagValue, Flags};
use serde::Serialize;
use std::fmt;

/// One configuration file: its name (the `--config` path, or the drop-in's path relative to
/// `--config-dir`) and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct ConfigSource<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
}

/// Everything that decides the kubelet's configuration.
#[derive(Debug, Clone)]
pub struct Sources<'a> {
    /// The `--config` file, when the kubelet has one.
    pub config: Option<ConfigSource<'a>>,
    /// The files under `--config-dir` (any order; only `*.conf` files are read, in the kubelet's
    /// order).
    pub dropins: Vec<ConfigSource<'a>>,
    /// The kubelet's command-line flags.
    pub flags: &'a Flags,
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Source {
    /// The kubelet's command line.
    Flag,
    /// A `--config-dir` drop-in: its place in the merge order (0-based) and its name.
    DropIn { index: usize, name: String },
    /// The `--config` file.
    ConfigFile,
    /// Set nowhere: the `KubeletConfiguration` v1beta1 default.
    Default,
    /// Set nowhere and no `--config`: the kubelet's command-line default.
    FlagDefault,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("command-line flag"),
            Source::DropIn { index, name } => write!(f, "drop-in #{} {name}", index + 1),
            Source::ConfigFile => f.write_str("config file"),
            Source::Default => f.write_str("default"),
            Source::FlagDefault => f.write_str("command-line default (no --config)"),
        }
    }
}

/// One place that sets a value, lowest precedence first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layer {
    pub source: Source,
    /// The value as that source alone would make it (after the kubelet's parsing).
    pub value: Value,
    /// As written there (`--read-only-port=10255`, `10255`).
    pub written: String,
    /// 1-based line in the file, for file sources.
    pub line: Option<usize>,
}

/// Why the effective value is what it is, when that is not obvious from one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Note {
    /// Set nowhere: the default applies.
    Defaulted { default: Value },
    /// No `--config`: the command-line default differs from the configuration file's default.
    LegacyDefault { config_default: Value },
    /// The `--config` file writes the zero value, which the kubelet's defaulting replaces.
    ZeroReplaced { written: String, default: Value },
    /// A negative `podPidsLimit` in the `--config` file becomes -1.
    NegativeReplaced { written: String },
    /// A source of higher precedence overrides a lower one that says something else.
    Overridden {
        by: Source,
        source: Source,
        value: Value,
    },
    /// A relative path in the `--config` file, resolved against the file's directory.
    RelativePath { written: String, resolved: String },
    /// A list or map flag given several times: pflag accumulates the occurrences.
    Accumulated { occurrences: usize },
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Defaulted { default } => write!(f, "set nowhere: the kubelet's default {default} applies"),
            Note::LegacyDefault { config_default } => write!(
                f,
                "the kubelet runs without --config, so its command-line default applies (with a config file the default would be {config_default})"
            ),
            Note::ZeroReplaced { written, default } => write!(
                f,
                "the config file says {written}, the zero value, which the kubelet replaces with its default {default}"
            ),
            Note::NegativeReplaced { written } => write!(
                f,
                "the config file says {written}; the kubelet reads any negative value as -1"
            ),
            Note::Overridden { by, source, value } => {
                write!(f, "the {by} overrides the {source}, which says {value}")
            }
            Note::RelativePath { written, resolved } => write!(
                f,
                "the relative path {written} is resolved against the config file's directory: {resolved}"
            ),
            Note::Accumulated { occurrences } => write!(
                f,
                "the flag is given {occurrences} times; the kubelet accumulates the occurrences"
            ),
        }
    }
}

/// The effective value of one setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    #[serde(skip)]
    pub spec: KeySpec,
    /// The `KubeletConfiguration` key (`None` for a flag-only setting).
    pub path: Option<&'static str>,
    pub flag: Option<&'static str>,
    pub value: Value,
    /// The source that decided the value.
    pub source: Source,
    /// Every source that sets it, lowest precedence first.
    pub layers: Vec<Layer>,
    pub notes: Vec<Note>,
}

impl Setting {
    /// True when sources disagree or a default replaced what a file wrote: what a report should
    /// explain.
    pub fn disputed(&self) -> bool {
        self.notes.iter().any(|n| {
            matches!(
                n,
                Note::Overridden { .. } | Note::ZeroReplaced { .. } | Note::NegativeReplaced { .. }
            )
        })
    }
}

/// The kubelet's effective configuration, for the settings in [`crate::schema::KEYS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effective {
    pub settings: Vec<Setting>,
    /// Whether the kubelet runs with a `--config` file.
    pub with_config: bool,
    /// The drop-ins read, in merge order.
    pub dropins: Vec<String>,
    /// Files in `--config-dir` that the kubelet does not read (not `*.conf`).
    pub ignored: Vec<String>,
}

impl Effective {
    /// The setting named by its key path, its flag (with or without dashes), or
    /// `featureGates.NAME`.
    pub fn get(&self, name: &str) -> Option<&Setting> {
        let flag = flags::normalize(name);
        self.settings
            .iter()
            .find(|s| s.path == Some(name))
            .or_else(|| {
                self.settings
                    .iter()
                    .find(|s| s.flag == Some(flag.as_str()) && s.spec.gate.is_none())
            })
    }
}

/// Whether the kubelet reads a file found under `--config-dir` (Go's `filepath.Ext(name) ==
/// ".conf"` on the file's own name).
pub fn is_dropin(name: &str) -> bool {
    name.rsplit('/')
        .next()
        .is_some_and(|b| b.ends_with(".conf"))
}

/// The drop-ins among `names` (paths relative to `--config-dir`), in the order the kubelet
/// merges them: `filepath.WalkDir` visits each directory's entries in lexical order, depth
/// first, so paths compare component by component.
pub fn dropin_order<'a>(names: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&str> = names.iter().copied().filter(|n| is_dropin(n)).collect();
    v.sort_by(|a, b| {
        a.split('/')
            .filter(|c| !c.is_empty())
            .cmp(b.split('/').filter(|c| !c.is_empty()))
    });
    v
}

fn fail(name: &str, e: &Error) -> Error {
    err(
        ErrorKind::KubeletWouldFail,
        e.line,
        format!("{name}: {} (the kubelet would refuse it)", e.reason),
    )
}

/// A parsed configuration source.
struct Parsed<'a> {
    name: &'a str,
    doc: ConfigDoc,
}

fn parse_source<'a>(src: &ConfigSource<'a>, dropin: bool) -> Result<Parsed<'a>, Error> {
    if src.bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(err(
            ErrorKind::KubeletWouldFail,
            None,
            format!(
                "{}: the file is empty; the kubelet refuses an empty configuration",
                src.name
            ),
        ));
    }
    let doc = ConfigDoc::parse(src.bytes).map_err(|e| fail(src.name, &e))?;
    if dropin {
        for key in ["apiVersion", "kind"] {
            let path = KeyPath::new([key])?;
            if doc.lookup(&path).map_err(|e| fail(src.name, &e))?.is_none() {
                return Err(err(
                    ErrorKind::KubeletWouldFail,
                    None,
                    format!(
                        "{}: a drop-in needs `{key}`; the kubelet refuses it",
                        src.name
                    ),
                ));
            }
        }
    }
    Ok(Parsed {
        name: src.name,
        doc,
    })
}

/// `value` converted to the setting's type, as the kubelet's JSON decoding accepts it.
fn convert(spec: &KeySpec, v: &YamlValue) -> Result<Value, String> {
    let int = |bits32: bool| -> Result<Value, String> {
        let i = match v {
            YamlValue::Int(i) => Some(*i),
            #[allow(clippy::cast_possible_truncation)]
            YamlValue::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e18 => {
                Some(*f as i64)
            }
            _ => None,
        };
        match i {
            Some(i) if !bits32 || i32::try_from(i).is_ok() => Ok(Value::Int(i)),
            Some(i) => Err(format!("{i} does not fit a 32-bit integer")),
            None => Err(format!("{} where an integer is needed", v.type_name())),
        }
    };
    match spec.ty {
        ValueType::Bool | ValueType::FeatureGate => match v {
            YamlValue::Bool(b) => Ok(Value::Bool(*b)),
            _ => Err(format!("{} where a boolean is needed", v.type_name())),
        },
        ValueType::Int32 => int(true),
        ValueType::Int64 => int(false),
        ValueType::Str | ValueType::Path => match v {
            YamlValue::Str(s) => Ok(Value::Str(s.clone())),
            _ => Err(format!("{} where a string is needed", v.type_name())),
        },
        ValueType::Duration => match v {
            YamlValue::Str(s) => GoDuration::parse(s).map(Value::Duration),
            _ => Err(format!(
                "{} where a duration string (like \"4h0m0s\") is needed",
                v.type_name()
            )),
        },
        ValueType::StringList => match v {
            YamlValue::List(items) => items
                .iter()
                .map(|i| match i {
                    YamlValue::Str(s) => Ok(s.clone()),
                    other => Err(format!("a list item is {}", other.type_name())),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List),
            _ => Err(format!("{} where a list is needed", v.type_name())),
        },
    }
}

/// The value `spec` has in one file, typed (`None` when absent or null).
fn read_file(p: &Parsed<'_>, spec: &KeySpec) -> Result<Option<(Value, FileValue)>, Error> {
    let Some(path) = spec.path else {
        return Ok(None);
    };
    let path = KeyPath::parse(path)?;
    let Some(fv) = p.doc.lookup(&path).map_err(|e| fail(p.name, &e))? else {
        return Ok(None);
    };
    let v = convert(spec, &fv.value).map_err(|why| {
        err(
            ErrorKind::KubeletWouldFail,
            Some(fv.line),
            format!(
                "{}: `{path}` is {why}; the kubelet refuses the file",
                p.name
            ),
        )
    })?;
    Ok(Some((v, fv)))
}

/// Go's `filepath.Join(dir, rel)` followed by `Clean`, for resolving relative paths.
fn join_clean(dir: &str, rel: &str) -> String {
    let joined = if dir.is_empty() {
        rel.to_string()
    } else {
        format!("{dir}/{rel}")
    };
    let abs = joined.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !abs {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    let body = out.join("/");
    match (abs, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

/// The value `spec` gets from the command line, with pflag's rules.
fn read_flags(flags: &Flags, spec: &KeySpec) -> Result<Option<(Value, String, usize)>, Error> {
    let Some(flag) = spec.flag else {
        return Ok(None);
    };
    let bad = |why: String| err(ErrorKind::KubeletWouldFail, None, why);
    let occ: Vec<_> = flags.all(flag).collect();
    let Some(last) = occ.last() else {
        return Ok(None);
    };
    let shown = |o: &kharden_manifest::FlagItem| match &o.value {
        FlagValue::Inline(v) => format!("{}={v}", o.written),
        FlagValue::Separate { value, .. } => format!("{} {value}", o.written),
        FlagValue::Bare => o.written.clone(),
    };
    let value_of = |o: &kharden_manifest::FlagItem| -> Result<String, Error> {
        o.value.as_str().map(str::to_string).ok_or_else(|| {
            bad(format!(
                "{} needs a value; the kubelet refuses it",
                o.written
            ))
        })
    };
    match spec.ty {
        ValueType::FeatureGate => {
            let gate = spec.gate.unwrap_or_default();
            for o in occ.iter().rev() {
                let v = value_of(o)?;
                if let Some(g) = flags::map_value(&v, gate) {
                    let b = flags::parse_bool(g).ok_or_else(|| {
                        bad(format!(
                            "{}: {gate}={g} is not a boolean; the kubelet refuses it",
                            shown(o)
                        ))
                    })?;
                    return Ok(Some((Value::Bool(b), shown(o), occ.len())));
                }
            }
            Ok(None)
        }
        ValueType::StringList => {
            let mut items = Vec::new();
            for o in &occ {
                let v = value_of(o)?;
                items.extend(flags::list_items(&v).into_iter().map(str::to_string));
            }
            let written: Vec<String> = occ.iter().map(|o| shown(o)).collect();
            Ok(Some((Value::List(items), written.join(" "), occ.len())))
        }
        ValueType::Bool => {
            let v = match &last.value {
                FlagValue::Bare => true,
                FlagValue::Inline(v) => flags::parse_bool(v).ok_or_else(|| {
                    bad(format!("{}: not a boolean; the kubelet refuses it", shown(last)))
                })?,
                FlagValue::Separate { value, .. } => {
                    return Err(bad(format!(
                        "`{} {value}`: a boolean flag takes its value after `=`; the kubelet reads {} as true and refuses the extra argument {value:?}",
                        last.written, last.written
                    )))
                }
            };
            Ok(Some((Value::Bool(v), shown(last), 1)))
        }
        ty => {
            let v = value_of(last)?;
            let v = ty
                .parse_text(&v)
                .map_err(|why| bad(format!("{}: {why}; the kubelet refuses it", shown(last))))?;
            Ok(Some((v, shown(last), 1)))
        }
    }
}

/// Compute the kubelet's effective configuration from its sources.
pub fn effective(src: &Sources<'_>) -> Result<Effective, Error> {
    let config = src
        .config
        .as_ref()
        .map(|c| parse_source(c, false))
        .transpose()?;
    let names: Vec<&str> = src.dropins.iter().map(|d| d.name).collect();
    let order = dropin_order(&names);
    let ignored: Vec<String> = names
        .iter()
        .filter(|n| !is_dropin(n))
        .map(|n| n.to_string())
        .collect();
    let mut dropins = Vec::new();
    for name in &order {
        if let Some(d) = src.dropins.iter().find(|d| d.name == *name) {
            dropins.push(parse_source(d, true)?);
        }
    }
    let with_config = config.is_some();
    let mut settings = Vec::with_capacity(KEYS.len());
    for spec in KEYS {
        settings.push(setting(spec, config.as_ref(), &dropins, src.flags)?);
    }
    Ok(Effective {
        settings,
        with_config,
        dropins: order.iter().map(|s| s.to_string()).collect(),
        ignored,
    })
}

fn setting(
    spec: &KeySpec,
    config: Option<&Parsed<'_>>,
    dropins: &[Parsed<'_>],
    flags: &Flags,
) -> Result<Setting, Error> {
    let mut layers = Vec::new();
    let mut notes = Vec::new();
    let default = spec.default_value(config.is_some());
    let (mut value, mut source) = match config {
        None => {
            if spec.without_config.is_some() && spec.default_value(true) != default {
                notes.push(Note::LegacyDefault {
                    config_default: spec.default_value(true),
                });
            }
            (default.clone(), Source::FlagDefault)
        }
        Some(p) => match read_file(p, spec)? {
            None => (default.clone(), Source::Default),
            Some((mut v, fv)) => {
                if spec.ty == ValueType::Path {
                    if let Value::Str(s) = &v {
                        if !s.is_empty() && !s.starts_with('/') {
                            let dir = p.name.rsplit_once('/').map_or("", |(d, _)| d);
                            let resolved = join_clean(
                                if dir.is_empty() && p.name.starts_with('/') {
                                    "/"
                                } else {
                                    dir
                                },
                                s,
                            );
                            notes.push(Note::RelativePath {
                                written: s.clone(),
                                resolved: resolved.clone(),
                            });
                            v = Value::Str(resolved);
                        }
                    }
                }
                layers.push(Layer {
                    source: Source::ConfigFile,
                    value: v.clone(),
                    written: fv.written.clone(),
                    line: Some(fv.line),
                });
                match spec.default {
                    DefaultRule::IfZero(_) if v.is_zero() => {
                        notes.push(Note::ZeroReplaced {
                            written: fv.written,
                            default: default.clone(),
                        });
                        (default.clone(), Source::Default)
                    }
                    DefaultRule::IfAbsentOrNegative(d) if v.as_int().is_some_and(|i| i < 0) => {
                        if v.as_int() != Some(d) {
                            notes.push(Note::NegativeReplaced {
                                written: fv.written,
                            });
                        }
                        (Value::Int(d), Source::ConfigFile)
                    }
                    _ => (v, Source::ConfigFile),
                }
            }
        },
    };
    for (index, d) in dropins.iter().enumerate() {
        if let Some((v, fv)) = read_file(d, spec)? {
            let s = Source::DropIn {
                index,
                name: d.name.to_string(),
            };
            layers.push(Layer {
                source: s.clone(),
                value: v.clone(),
                written: fv.written,
                line: Some(fv.line),
            });
            if v != value {
                notes.push(Note::Overridden {
                    by: s.clone(),
                    source: source.clone(),
                    value: value.clone(),
                });
            }
            value = v;
            source = s;
        }
    }
    if let Some((v, written, n)) = read_flags(flags, spec)? {
        if n > 1 && matches!(spec.ty, ValueType::StringList | ValueType::FeatureGate) {
            notes.push(Note::Accumulated { occurrences: n });
        }
        layers.push(Layer {
            source: Source::Flag,
            value: v.clone(),
            written,
            line: None,
        });
        if v != value {
            notes.push(Note::Overridden {
                by: Source::Flag,
                source: source.clone(),
                value: value.clone(),
            });
        }
        value = v;
        source = Source::Flag;
    }
    if matches!(source, Source::Default | Source::FlagDefault)
        && !notes.iter().any(|n| matches!(n, Note::ZeroReplaced { .. }))
    {
        notes.push(Note::Defaulted {
            default: value.clone(),
        });
    }
    Ok(Setting {
        spec: *spec,
        path: spec.path,
        flag: spec.flag,
        value,
        source,
        layers,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropin_walk_order() {
        let names = [
            "20-b.conf",
            "10-a.conf",
            "a/x.conf",
            "a.conf",
            "README",
            "10-a.conf.bak",
            ".hidden.conf",
            "sub/dir/z.conf",
            "Z.conf",
        ];
        assert_eq!(
            dropin_order(&names),
            vec![
                ".hidden.conf",
                "10-a.conf",
                "20-b.conf",
                "Z.conf",
                "a/x.conf",
                "a.conf",
                "sub/dir/z.conf"
            ]
        );
    }

    #[test]
    fn path_joining() {
        assert_eq!(
            join_clean("/var/lib/kubelet", "pki/ca.crt"),
            "/var/lib/kubelet/pki/ca.crt"
        );
        assert_eq!(
            join_clean("/var/lib/kubelet", "../ca.crt"),
            "/var/lib/ca.crt"
        );
        assert_eq!(join_clean("/", "../../x"), "/x");
        assert_eq!(join_clean("", "a/./b"), "a/b");
        assert_eq!(join_clean("etc", "../../x"), "../x");
    }
}
