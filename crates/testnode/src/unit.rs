//! systemd's unit files, environment files and command lines, as the service-manager emulator
//! reads them.
//!
//! Why: kharden changes the kubelet's flags where the kubelet's unit takes them from: the
//! `Environment=` lines of a drop-in, `/var/lib/kubelet/kubeadm-flags.env`, `/etc/default/kubelet`.
//! Whether a flag reaches the kubelet depends on systemd's rules, not on a shell's: the unit is
//! read at boot and at `daemon-reload` only, the environment files at every start, a later
//! file overrides an earlier one, `$VAR` alone as a word is split at whitespace (quotes in the
//! value are honoured), `${VAR}` is one word, an environment file is not a shell script
//! (`export` is not understood, `#` starts a comment only at the start of a line). The emulator
//! applies those rules so that kharden is tested against them.
//!
//! Sources: systemd.service(5), systemd.exec(5), systemd.unit(5) and src/basic/env-file.c,
//! env-util.c (`replace_env_argv`), extract-word.c.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unit search path (host paths, highest priority first).
pub const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// `Restart=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    No,
    Always,
    OnSuccess,
    OnFailure,
    OnAbnormal,
    OnAbort,
    OnWatchdog,
}

impl RestartPolicy {
    fn parse(s: &str) -> Option<RestartPolicy> {
        Some(match s {
            "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "on-success" => RestartPolicy::OnSuccess,
            "on-failure" => RestartPolicy::OnFailure,
            "on-abnormal" => RestartPolicy::OnAbnormal,
            "on-abort" => RestartPolicy::OnAbort,
            "on-watchdog" => RestartPolicy::OnWatchdog,
            _ => return None,
        })
    }

    /// The name `systemctl show -p Restart` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::OnSuccess => "on-success",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::OnAbnormal => "on-abnormal",
            RestartPolicy::OnAbort => "on-abort",
            RestartPolicy::OnWatchdog => "on-watchdog",
        }
    }

    /// Whether a main process that ended this way is restarted (`clean`: exit 0 or a clean
    /// signal; `signal`: killed by an unclean signal).
    pub fn restarts(self, clean: bool, signal: bool) -> bool {
        match self {
            RestartPolicy::No | RestartPolicy::OnWatchdog => false,
            RestartPolicy::Always => true,
            RestartPolicy::OnSuccess => clean,
            RestartPolicy::OnFailure => !clean,
            RestartPolicy::OnAbnormal | RestartPolicy::OnAbort => signal,
        }
    }
}

/// An `EnvironmentFile=` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileSpec {
    /// Host path as written (after the `-`).
    pub path: String,
    /// `-` prefix: a missing file is not an error.
    pub optional: bool,
}

/// `ExecStart=` as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecCommand {
    /// The executable (host path).
    pub path: String,
    /// argv, `argv[0]` included, before environment expansion.
    pub argv: Vec<String>,
    /// `-` prefix.
    pub ignore_errors: bool,
    /// The line as written, for `systemctl show`.
    pub raw: String,
}

/// A loaded `.service` unit.
#[derive(Debug, Clone)]
pub struct ServiceUnit {
    pub name: String,
    /// Host path of the unit file.
    pub fragment: String,
    /// Host paths of the drop-ins applied, in order.
    pub dropins: Vec<String>,
    pub description: String,
    pub service_type: String,
    pub exec_start: Option<ExecCommand>,
    pub environment: Vec<(String, String)>,
    pub environment_files: Vec<EnvFileSpec>,
    pub restart: RestartPolicy,
    pub restart_sec: Duration,
    pub timeout_stop: Duration,
    pub start_limit_interval: Duration,
    pub start_limit_burst: u32,
    pub working_directory: Option<String>,
    /// Problems systemd would log while loading (ignored settings).
    pub warnings: Vec<String>,
    /// Contents of every file read, for `systemctl cat` and to notice changes on disk.
    pub sources: Vec<(String, String)>,
}

/// Errors that make a unit unloadable (`LoadState=bad-setting`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("{file}: {message}")]
    Bad { file: String, message: String },
}

/// Map a host path under the simulated root (a path already under the root is used as is).
pub fn under_root(root: &Path, host: &str) -> PathBuf {
    let p = Path::new(host);
    if p.starts_with(root) {
        return p.to_path_buf();
    }
    root.join(host.trim_start_matches('/'))
}

/// `kubelet` → `kubelet.service`.
pub fn normalize_unit_name(name: &str) -> String {
    const SUFFIXES: &[&str] = &[
        ".service",
        ".socket",
        ".target",
        ".timer",
        ".mount",
        ".path",
        ".slice",
        ".scope",
        ".device",
        ".swap",
        ".automount",
    ];
    if SUFFIXES.iter().any(|s| name.ends_with(s)) {
        name.to_string()
    } else {
        format!("{name}.service")
    }
}

/// Find and load `name` under `root`. `Ok(None)`: no unit file (`LoadState=not-found`).
pub fn load_service(root: &Path, name: &str) -> Result<Option<ServiceUnit>, UnitError> {
    let Some(fragment) = UNIT_DIRS
        .iter()
        .map(|d| format!("{d}/{name}"))
        .find(|p| under_root(root, p).is_file())
    else {
        return Ok(None);
    };
    // Drop-ins: every `<dir>/<name>.d/*.conf`; a name in a higher-priority directory masks the
    // same name in a lower one; applied in name order.
    let mut dropins: BTreeMap<String, String> = BTreeMap::new();
    for d in UNIT_DIRS {
        let dir = format!("{d}/{name}.d");
        let Ok(rd) = std::fs::read_dir(under_root(root, &dir)) else {
            continue;
        };
        let mut names: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".conf"))
            .collect();
        names.sort();
        for n in names {
            dropins.entry(n.clone()).or_insert(format!("{dir}/{n}"));
        }
    }
    let mut unit = ServiceUnit {
        name: name.to_string(),
        fragment: fragment.clone(),
        dropins: dropins.values().cloned().collect(),
        description: name.to_string(),
        service_type: "simple".into(),
        exec_start: None,
        environment: Vec::new(),
        environment_files: Vec::new(),
        restart: RestartPolicy::No,
        restart_sec: Duration::from_millis(100),
        timeout_stop: Duration::from_secs(90),
        start_limit_interval: Duration::from_secs(10),
        start_limit_burst: 5,
        working_directory: None,
        warnings: Vec::new(),
        sources: Vec::new(),
    };
    let files: Vec<String> = std::iter::once(fragment)
        .chain(unit.dropins.clone())
        .collect();
    for file in files {
        let text =
            std::fs::read_to_string(under_root(root, &file)).map_err(|e| UnitError::Bad {
                file: file.clone(),
                message: e.to_string(),
            })?;
        apply_unit_text(&mut unit, &file, &text)?;
        unit.sources.push((file, text));
    }
    Ok(Some(unit))
}

/// Parse `text` (one unit file or drop-in) into `unit`.
pub fn apply_unit_text(unit: &mut ServiceUnit, file: &str, text: &str) -> Result<(), UnitError> {
    let mut section = String::new();
    // Join continuation lines (a trailing backslash), as systemd's config parser does.
    let mut logical: Vec<String> = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if cur.is_empty() && (t.starts_with('#') || t.starts_with(';')) {
            continue;
        }
        if let Some(body) = line.strip_suffix('\\') {
            cur.push_str(body);
            cur.push(' ');
            continue;
        }
        cur.push_str(line);
        logical.push(std::mem::take(&mut cur));
    }
    if !cur.is_empty() {
        logical.push(cur);
    }
    for line in logical {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if t.starts_with('[') && t.ends_with(']') {
            section = t[1..t.len() - 1].to_string();
            continue;
        }
        let Some((k, v)) = t.split_once('=') else {
            unit.warnings
                .push(format!("{file}: Missing '=', ignoring line."));
            continue;
        };
        let key = k.trim();
        let value = expand_specifiers(v.trim(), &unit.name);
        let bad = |message: String| UnitError::Bad {
            file: file.to_string(),
            message,
        };
        match (section.as_str(), key) {
            ("Unit", "Description") => unit.description = value,
            ("Unit", "StartLimitIntervalSec") | ("Service", "StartLimitInterval") => {
                unit.start_limit_interval = parse_timespan(&value)
                    .map_err(|e| bad(format!("StartLimitIntervalSec={value}: {e}")))?
            }
            ("Unit", "StartLimitBurst") | ("Service", "StartLimitBurst") => {
                unit.start_limit_burst = value
                    .parse()
                    .map_err(|e| bad(format!("StartLimitBurst={value}: {e}")))?
            }
            ("Service", "Type") => unit.service_type = value,
            ("Service", "ExecStart") => {
                if value.is_empty() {
                    unit.exec_start = None;
                } else {
                    if unit.exec_start.is_some() && unit.service_type != "oneshot" {
                        return Err(bad("Service has more than one ExecStart= setting, which is only allowed for Type=oneshot services. Refusing.".into()));
                    }
                    unit.exec_start = Some(parse_exec(&value).map_err(bad)?);
                }
            }
            ("Service", "Environment") => {
                if value.is_empty() {
                    unit.environment.clear();
                } else {
                    for w in split_words(&value, true) {
                        match w.split_once('=') {
                            Some((n, val)) if env_name_is_valid(n) => {
                                unit.environment.retain(|(k, _)| k != n);
                                unit.environment.push((n.to_string(), val.to_string()));
                            }
                            _ => unit.warnings.push(format!(
                                "{file}: Invalid environment assignment, ignoring: {w}"
                            )),
                        }
                    }
                }
            }
            ("Service", "EnvironmentFile") => {
                if value.is_empty() {
                    unit.environment_files.clear();
                } else {
                    let (optional, path) = match value.strip_prefix('-') {
                        Some(p) => (true, p.to_string()),
                        None => (false, value.clone()),
                    };
                    if !path.starts_with('/') {
                        return Err(bad(format!(
                            "Path '{path}' is not absolute, ignoring: {value}"
                        )));
                    }
                    unit.environment_files.push(EnvFileSpec { path, optional });
                }
            }
            ("Service", "Restart") => {
                unit.restart = RestartPolicy::parse(&value).ok_or_else(|| {
                    bad(format!(
                        "Failed to parse service restart specifier, ignoring: {value}"
                    ))
                })?
            }
            ("Service", "RestartSec") => {
                unit.restart_sec =
                    parse_timespan(&value).map_err(|e| bad(format!("RestartSec={value}: {e}")))?
            }
            ("Service", "TimeoutStopSec") | ("Service", "TimeoutSec") => {
                unit.timeout_stop =
                    parse_timespan(&value).map_err(|e| bad(format!("{key}={value}: {e}")))?
            }
            ("Service", "WorkingDirectory") => {
                unit.working_directory = Some(value.trim_start_matches('-').to_string())
            }
            _ => {}
        }
    }
    Ok(())
}

fn expand_specifiers(v: &str, unit: &str) -> String {
    if !v.contains('%') {
        return v.to_string();
    }
    let prefix = unit.rsplit_once('.').map(|(p, _)| p).unwrap_or(unit);
    let mut out = String::new();
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('%') => out.push('%'),
            Some('n') => out.push_str(unit),
            Some('N') | Some('p') => out.push_str(prefix),
            Some('i') | Some('I') => {}
            Some('t') => out.push_str("/run"),
            Some('h') => out.push_str("/root"),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

fn parse_exec(value: &str) -> Result<ExecCommand, String> {
    let mut rest = value;
    let mut ignore_errors = false;
    let mut at = false;
    while let Some(c) = rest.chars().next() {
        match c {
            '-' => ignore_errors = true,
            '@' => at = true,
            ':' | '+' | '!' => {}
            _ => break,
        }
        rest = &rest[c.len_utf8()..];
    }
    let mut words = split_words(rest, true);
    // `;` separates commands (Type=oneshot only): keep the first.
    if let Some(i) = words.iter().position(|w| w == ";") {
        words.truncate(i);
    }
    if words.is_empty() {
        return Err(format!(
            "Empty executable name or zeroeth argument, ignoring: {value}"
        ));
    }
    let path = words.remove(0);
    if !path.starts_with('/') {
        return Err(format!(
            "Neither a valid executable name nor an absolute path: {path}"
        ));
    }
    let argv = if at {
        if words.is_empty() {
            return Err(format!("Empty zeroeth argument, ignoring: {value}"));
        }
        words
    } else {
        std::iter::once(path.clone()).chain(words).collect()
    };
    Ok(ExecCommand {
        path,
        argv,
        ignore_errors,
        raw: value.to_string(),
    })
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
pub fn env_name_is_valid(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(f) if f == '_' || f.is_ascii_alphabetic())
        && c.all(|x| x == '_' || x.is_ascii_alphanumeric())
}

/// Split at whitespace honouring single and double quotes and backslash escapes
/// (systemd's `extract_first_word` with `EXTRACT_UNQUOTE|EXTRACT_RELAX`, plus
/// `EXTRACT_CUNESCAPE` when `cunescape`: `\n`, `\t`, `\xNN`... in unit files).
pub fn split_words(s: &str, cunescape: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (_, '\\') => {
                in_word = true;
                match it.next() {
                    None => cur.push('\\'),
                    Some(e) if cunescape => match e {
                        'n' => cur.push('\n'),
                        't' => cur.push('\t'),
                        'r' => cur.push('\r'),
                        'a' => cur.push('\x07'),
                        'b' => cur.push('\x08'),
                        'f' => cur.push('\x0c'),
                        'v' => cur.push('\x0b'),
                        's' => cur.push(' '),
                        'x' => {
                            let h: String = (0..2).filter_map(|_| it.next()).collect();
                            match u8::from_str_radix(&h, 16) {
                                Ok(b) => cur.push(char::from(b)),
                                Err(_) => {
                                    cur.push_str("\\x");
                                    cur.push_str(&h);
                                }
                            }
                        }
                        other => cur.push(other),
                    },
                    Some(e) => cur.push(e),
                }
            }
            (None, '\'') | (None, '"') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (_, c) => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// Parse an environment file like systemd (`parse_env_file_internal`): `KEY=VALUE` lines,
/// comments starting a line with `#` or `;`, single quotes literal, double quotes with
/// backslash escapes of `"\`$`, unquoted backslash escapes and line continuations, trailing
/// whitespace of unquoted values dropped, invalid names ignored (returned in the second list).
pub fn parse_env_file(text: &str) -> (Vec<(String, String)>, Vec<String>) {
    #[derive(Clone, Copy, PartialEq)]
    enum S {
        PreKey,
        Key,
        PreValue,
        Value,
        ValueEscape,
        Single,
        Double,
        DoubleEscape,
        Comment,
        CommentEscape,
    }
    let mut out: Vec<(String, String)> = Vec::new();
    let mut invalid = Vec::new();
    let mut state = S::PreKey;
    let mut key = String::new();
    let mut value = String::new();
    let mut trailing_ws = 0usize;
    fn assign(
        out: &mut Vec<(String, String)>,
        invalid: &mut Vec<String>,
        key: &mut String,
        value: &mut String,
        trailing: usize,
    ) {
        let k = key.trim().to_string();
        let mut v = std::mem::take(value);
        v.truncate(v.len() - trailing.min(v.len()));
        if env_name_is_valid(&k) {
            out.retain(|(n, _)| n != &k);
            out.push((k, v));
        } else {
            invalid.push(k);
        }
        key.clear();
    }
    for c in text.chars().chain(std::iter::once('\n')) {
        let nl = c == '\n' || c == '\r';
        state = match state {
            S::PreKey => {
                if c == '#' || c == ';' {
                    S::Comment
                } else if c.is_whitespace() {
                    S::PreKey
                } else {
                    key.push(c);
                    S::Key
                }
            }
            S::Key => {
                if nl {
                    invalid.push(std::mem::take(&mut key).trim().to_string());
                    S::PreKey
                } else if c == '=' {
                    S::PreValue
                } else {
                    key.push(c);
                    S::Key
                }
            }
            S::PreValue => {
                if nl {
                    assign(&mut out, &mut invalid, &mut key, &mut value, 0);
                    trailing_ws = 0;
                    S::PreKey
                } else if c == '\'' {
                    S::Single
                } else if c == '"' {
                    S::Double
                } else if c == '\\' {
                    S::ValueEscape
                } else if c.is_whitespace() {
                    S::PreValue
                } else {
                    value.push(c);
                    trailing_ws = 0;
                    S::Value
                }
            }
            S::Value => {
                if nl {
                    assign(&mut out, &mut invalid, &mut key, &mut value, trailing_ws);
                    trailing_ws = 0;
                    S::PreKey
                } else if c == '\\' {
                    trailing_ws = 0;
                    S::ValueEscape
                } else {
                    value.push(c);
                    if c.is_whitespace() {
                        trailing_ws += c.len_utf8();
                    } else {
                        trailing_ws = 0;
                    }
                    S::Value
                }
            }
            S::ValueEscape => {
                if !nl {
                    value.push(c);
                }
                S::Value
            }
            S::Single => {
                if c == '\'' {
                    S::PreValue
                } else {
                    value.push(c);
                    S::Single
                }
            }
            S::Double => {
                if c == '"' {
                    S::PreValue
                } else if c == '\\' {
                    S::DoubleEscape
                } else {
                    value.push(c);
                    S::Double
                }
            }
            S::DoubleEscape => {
                if "\"\\`$".contains(c) {
                    value.push(c);
                } else if !nl {
                    value.push('\\');
                    value.push(c);
                }
                S::Double
            }
            S::Comment => {
                if c == '\\' {
                    S::CommentEscape
                } else if nl {
                    S::PreKey
                } else {
                    S::Comment
                }
            }
            S::CommentEscape => S::Comment,
        };
    }
    (out, invalid)
}

/// systemd's `replace_env_argv`: a word that is exactly `$NAME` becomes the variable's value
/// split at whitespace (quotes honoured; unset: no word); `${NAME}` and `$NAME` inside a word
/// are replaced by the exact value; `$$` is a literal `$`.
pub fn expand_argv(argv: &[String], env: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for w in argv {
        if let Some(name) = w.strip_prefix('$') {
            if !name.starts_with('{') && !name.starts_with('$') {
                if let Some(v) = env_get(env, name) {
                    out.extend(split_words(v, false));
                }
                continue;
            }
        }
        out.push(replace_env(w, env));
    }
    out
}

fn env_get<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn replace_env(w: &str, env: &[(String, String)]) -> String {
    let get = |n: &str| env_get(env, n).map(str::to_string);
    let mut out = String::new();
    let b: Vec<char> = w.chars().collect();
    let mut i = 0;
    while i < b.len() {
        if b[i] != '$' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => match b[i + 2..].iter().position(|c| *c == '}') {
                Some(end) => {
                    let name: String = b[i + 2..i + 2 + end].iter().collect();
                    out.push_str(&get(&name).unwrap_or_default());
                    i += 3 + end;
                }
                None => {
                    out.extend(&b[i..]);
                    i = b.len();
                }
            },
            Some(c) if *c == '_' || c.is_ascii_alphabetic() => {
                let mut j = i + 1;
                while j < b.len() && (b[j] == '_' || b[j].is_ascii_alphanumeric()) {
                    j += 1;
                }
                let name: String = b[i + 1..j].iter().collect();
                out.push_str(&get(&name).unwrap_or_default());
                i = j;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    out
}

/// systemd's time span syntax (`10`, `10s`, `100ms`, `1min 30s`, `infinity`).
pub fn parse_timespan(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "infinity" {
        return Ok(Duration::MAX);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return Err("empty time span".into());
    }
    while !rest.is_empty() {
        rest = rest.trim_start();
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("invalid time span {s:?}"))?;
        rest = rest[num_end..].trim_start();
        let unit_end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let secs = match unit {
            "" | "s" | "sec" | "second" | "seconds" => 1.0,
            "ms" | "msec" => 1e-3,
            "us" | "usec" | "µs" => 1e-6,
            "ns" | "nsec" => 1e-9,
            "m" | "min" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86400.0,
            "w" | "week" | "weeks" => 604800.0,
            other => return Err(format!("unknown time unit {other:?} in {s:?}")),
        };
        total += Duration::from_secs_f64(num * secs);
    }
    Ok(total)
}

/// systemd's `format_timespan` (`10s`, `100ms`, `1min 30s`, `0`, `infinity`).
pub fn format_timespan(d: Duration) -> String {
    if d == Duration::MAX {
        return "infinity".into();
    }
    let mut us = d.as_micros();
    if us == 0 {
        return "0".into();
    }
    const UNITS: &[(&str, u128)] = &[
        ("d", 86_400_000_000),
        ("h", 3_600_000_000),
        ("min", 60_000_000),
        ("s", 1_000_000),
        ("ms", 1_000),
        ("us", 1),
    ];
    let mut parts = Vec::new();
    for (name, size) in UNITS {
        if us >= *size {
            parts.push(format!("{}{name}", us / size));
            us %= size;
        }
    }
    parts.join(" ")
}

/// `Tue 2024-05-14 10:11:12 UTC` (systemd's timestamp format, in UTC).
pub fn format_timestamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let wd = WD[days.rem_euclid(7) as usize];
    let mut s = String::new();
    let _ = write!(
        s,
        "{wd} {y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    );
    s
}

/// Howard Hinnant's days-to-civil.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn env_file_like_systemd() {
        let (vars, invalid) = parse_env_file(
            "# comment\n; also\nKUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.9\"\nKUBELET_EXTRA_ARGS=\nA=plain value   \nB='single $x \\n'\nC=\"dq \\\"x\\\" \\$y \\n\"\nexport D=1\nE=one\\\n two\nF=a # not a comment\n",
        );
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(
            get("KUBELET_KUBEADM_ARGS"),
            Some("--container-runtime-endpoint=unix:///run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.9")
        );
        assert_eq!(get("KUBELET_EXTRA_ARGS"), Some(""));
        assert_eq!(get("A"), Some("plain value"));
        assert_eq!(get("B"), Some("single $x \\n"));
        assert_eq!(get("C"), Some("dq \"x\" $y \\n"));
        assert_eq!(get("E"), Some("one two"));
        assert_eq!(get("F"), Some("a # not a comment"));
        assert_eq!(get("D"), None);
        assert_eq!(invalid, ["export D"]);
    }

    #[test]
    fn argv_expansion() {
        let env = vec![
            ("A".to_string(), "--x=1  --y=\"two words\"".to_string()),
            ("EMPTY".to_string(), String::new()),
            ("B".to_string(), "b c".to_string()),
        ];
        assert_eq!(
            expand_argv(
                &s(&[
                    "/usr/bin/kubelet",
                    "$A",
                    "$EMPTY",
                    "$UNSET",
                    "${B}",
                    "--z=$B",
                    "$$x"
                ]),
                &env
            ),
            s(&[
                "/usr/bin/kubelet",
                "--x=1",
                "--y=two words",
                "b c",
                "--z=b c",
                "$x"
            ])
        );
    }

    #[test]
    fn words_and_exec() {
        assert_eq!(
            split_words(
                "\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\" A=b\\ c",
                true
            ),
            s(&[
                "KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml",
                "A=b c"
            ])
        );
        let e = parse_exec("-/usr/bin/kubelet $A $B").unwrap();
        assert!(e.ignore_errors);
        assert_eq!(e.argv, s(&["/usr/bin/kubelet", "$A", "$B"]));
        assert!(parse_exec("kubelet").is_err());
    }

    #[test]
    fn timespans() {
        assert_eq!(parse_timespan("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_timespan("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_timespan("1min 30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_timespan("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_timespan("10x").is_err());
        assert_eq!(format_timespan(Duration::from_secs(90)), "1min 30s");
        assert_eq!(format_timespan(Duration::from_secs(10)), "10s");
        assert_eq!(format_timespan(Duration::from_millis(200)), "200ms");
        assert_eq!(format_timespan(Duration::ZERO), "0");
        assert_eq!(
            format_timestamp(UNIX_EPOCH + Duration::from_secs(1_715_681_472)),
            "Tue 2024-05-14 10:11:12 UTC"
        );
    }

    #[test]
    fn unit_and_dropins() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let w = |p: &str, t: &str| {
            let f = under_root(root, p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, t).unwrap();
        };
        w(
            "/usr/lib/systemd/system/kubelet.service",
            "[Unit]\nDescription=kubelet: The Kubernetes Node Agent\n[Service]\nExecStart=/usr/bin/kubelet\nRestart=always\nStartLimitInterval=0\nRestartSec=10\n",
        );
        w(
            "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
            "[Service]\nEnvironment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"\nEnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\nExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_CONFIG_ARGS\n",
        );
        w(
            "/etc/systemd/system/kubelet.service.d/20-fast.conf",
            "[Service]\nRestartSec=200ms\n",
        );
        let u = load_service(root, "kubelet.service").unwrap().unwrap();
        assert_eq!(u.fragment, "/usr/lib/systemd/system/kubelet.service");
        assert_eq!(u.dropins.len(), 2);
        assert_eq!(u.restart, RestartPolicy::Always);
        assert_eq!(u.restart_sec, Duration::from_millis(200));
        assert_eq!(u.start_limit_interval, Duration::ZERO);
        assert_eq!(
            u.exec_start.unwrap().argv,
            s(&["/usr/bin/kubelet", "$KUBELET_CONFIG_ARGS"])
        );
        assert!(load_service(root, "nope.service").unwrap().is_none());
    }
}
