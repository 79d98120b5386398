//! The kubelet's service as systemd runs it: the unit file, its drop-ins, the environment
//! they set, and the command line `ExecStart=` expands to, word by word with where each word
//! comes from.
//!
//! Why: on a kubeadm node half of the kubelet's flags are not in the unit but in environment
//! files (`KUBELET_KUBEADM_ARGS` in `/var/lib/kubelet/kubeadm-flags.env`, `KUBELET_EXTRA_ARGS` in
//! `/etc/default/kubelet`), expanded into `ExecStart=` at every start. A flag overrides the
//! configuration file, so kharden must know which file holds each flag of the *running*
//! command line before it changes a setting (edit the flag where it is, or refuse), and the
//! gate must know the command line the restarted kubelet will have. Reading the running
//! process alone says what the flags are, not where they live.
//!
//! What is read, as systemd does (systemd.unit(5), systemd.exec(5), systemd.service(5)):
//! - the unit file from the first of `/etc/systemd/system`, `/run/systemd/system`,
//!   `/usr/lib/systemd/system`, `/lib/systemd/system` that has it; drop-ins `UNIT.d/*.conf` from
//!   all of them, ordered by file name across directories, a name in a directory of higher
//!   precedence masking the same name below;
//! - `[Service]` `Environment=` (quoted assignments), `EnvironmentFile=` (`-` prefix: optional),
//!   `ExecStart=` (an empty assignment resets the list); comments, line continuations;
//! - the environment: `Environment=` in order, then every `EnvironmentFile=` in order, which
//!   override `Environment=` (systemd.exec(5));
//! - `ExecStart=` split into words (quotes, backslash escapes), then `$NAME` as a word of its own
//!   replaced by the value split at blanks (quotes removed), `${NAME}` replaced in place by the
//!   value as one word, `$$` a literal `$`.
//!
//! Not modelled: specifiers (`%i`, ...; a word with one is kept as written), `ExecStart=`
//! prefixes other than `-`, `@`, `:`, `+`, `!` (the `@` form takes `argv[0]` from the second
//! word), units not loaded with `daemon-reload` since they changed (the running command line is
//! compared with the expansion to catch that, see [`crate::kubelet::locate`]).

use crate::assess::gather::{follow, UNIT_DIRS};
use crate::root::HostRoot;
use kharden_kubelet_config::{split_exec_words, EnvFile};
use std::collections::BTreeMap;

/// How the expansion reads an environment file (host path): its contents, `Ok(None)` when
/// absent. A plan hands the files it is about to write.
pub type ReadFile<'a> = dyn FnMut(&str) -> Result<Option<Vec<u8>>, String> + 'a;

/// Where a word of the expanded command line comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Origin {
    /// Written in `ExecStart=` of this unit file.
    ExecStart { unit_file: String },
    /// From `$NAME`, set by `EnvironmentFile=` (this host path).
    EnvFile { name: String, file: String },
    /// From `$NAME`, set by `Environment=` in this unit file.
    Environment { name: String, unit_file: String },
    /// A word that mixes several sources (`${NAME}` inside a word).
    Mixed { unit_file: String },
}

impl Origin {
    /// How a person would find it.
    pub fn describe(&self) -> String {
        match self {
            Origin::ExecStart { unit_file } => format!("ExecStart= of {unit_file}"),
            Origin::EnvFile { name, file } => format!("${name} in {file}"),
            Origin::Environment { name, unit_file } => {
                format!("${name} set by Environment= in {unit_file}")
            }
            Origin::Mixed { unit_file } => format!("a composite word of ExecStart= in {unit_file}"),
        }
    }
}

/// One word of the expanded command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub origin: Origin,
}

/// One `EnvironmentFile=` of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileRef {
    /// The host path as written (without the `-` prefix).
    pub host: String,
    /// `-` prefix: a missing file is not an error.
    pub optional: bool,
    /// The unit file that names it.
    pub unit_file: String,
}

/// The kubelet's service definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub unit: String,
    /// The unit file and its drop-ins, in the order systemd applies them (host paths).
    pub files: Vec<String>,
    /// `Environment=` assignments in order: (name, value, unit file).
    pub environment: Vec<(String, String, String)>,
    pub env_files: Vec<EnvFileRef>,
    /// The words of the one `ExecStart=` left after resets, and the unit file that set it.
    pub exec: Vec<String>,
    pub exec_file: String,
    /// `ExecStart=@...`: `argv[0]` is the second word.
    pub exec_at: bool,
}

/// Why the service cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("no unit file {unit} under {dirs} (below --root {root}): kharden restarts the kubelet through systemd and needs its unit")]
    NoUnit {
        unit: String,
        dirs: String,
        root: String,
    },
    #[error("{file}: {why}")]
    Read { file: String, why: String },
    #[error("{unit} has no ExecStart= (after the resets of its drop-ins: {files})")]
    NoExecStart { unit: String, files: String },
    #[error("{unit} has {n} ExecStart= lines: a simple service has one")]
    SeveralExecStart { unit: String, n: usize },
    #[error("{file}: {why}")]
    EnvFile { file: String, why: String },
}

/// One logical line of a unit file: section and key/value, after continuations.
fn logical_lines(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim_start();
        if pending.is_empty() && (trimmed.starts_with('#') || trimmed.starts_with(';')) {
            continue;
        }
        if !pending.is_empty() && (trimmed.starts_with('#') || trimmed.starts_with(';')) {
            // A comment inside a continuation is skipped (systemd does the same).
            continue;
        }
        if let Some(body) = line.strip_suffix('\\') {
            pending.push_str(body);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let full = std::mem::take(&mut pending);
        let t = full.trim();
        if t.is_empty() {
            continue;
        }
        if t.starts_with('[') && t.ends_with(']') {
            section = t[1..t.len() - 1].trim().to_string();
            continue;
        }
        if let Some((k, v)) = t.split_once('=') {
            out.push((section.clone(), k.trim().to_string(), v.trim().to_string()));
        }
    }
    if !pending.trim().is_empty() {
        if let Some((k, v)) = pending.trim().split_once('=') {
            out.push((section, k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// systemd's split of a command line or an `Environment=` value into words: blanks separate,
/// `"..."` and `'...'` group, a backslash escapes the next character (C escapes `\n`, `\t`
/// kept simple: the character itself). Returns each word and whether it was written as a
/// single unquoted `$NAME` (which systemd splits again).
fn split_quoted(s: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let mut word = String::new();
        let mut quoted = false;
        let mut quote: Option<char> = None;
        while i < chars.len() {
            let c = chars[i];
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) if c == '\\' && i + 1 < chars.len() => {
                    i += 1;
                    word.push(unescape(chars[i]));
                }
                Some(_) => word.push(c),
                None if c == '"' || c == '\'' => {
                    quote = Some(c);
                    quoted = true;
                }
                None if c == '\\' && i + 1 < chars.len() => {
                    i += 1;
                    word.push(unescape(chars[i]));
                    quoted = true;
                }
                None if c.is_whitespace() => break,
                None => word.push(c),
            }
            i += 1;
        }
        let bare_var = !quoted && is_dollar_name(&word);
        out.push((word, bare_var));
    }
    out
}

fn unescape(c: char) -> char {
    match c {
        'n' => '\n',
        't' => '\t',
        other => other,
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `$NAME` exactly.
fn is_dollar_name(w: &str) -> bool {
    w.strip_prefix('$')
        .is_some_and(|n| !n.is_empty() && !n.starts_with('{') && n.chars().all(is_name_char))
}

/// Read the unit and its drop-ins under `root`.
pub fn load(root: &HostRoot, unit: &str) -> Result<Service, UnitError> {
    let read = |host: &str| -> Result<String, UnitError> {
        let real = follow(root, host).map_err(|why| UnitError::Read {
            file: host.to_string(),
            why,
        })?;
        std::fs::read(&real)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| UnitError::Read {
                file: host.to_string(),
                why: e.to_string(),
            })
    };
    let exists = |host: &str| {
        follow(root, host)
            .ok()
            .and_then(|p| std::fs::metadata(p).ok())
            .is_some_and(|m| m.is_file())
    };
    let Some(unit_file) = UNIT_DIRS
        .iter()
        .map(|d| format!("{d}/{unit}"))
        .find(|p| exists(p))
    else {
        return Err(UnitError::NoUnit {
            unit: unit.to_string(),
            dirs: UNIT_DIRS.join(", "),
            root: root.root().display().to_string(),
        });
    };
    // Drop-ins: by name across directories; the first directory (highest precedence) wins.
    let mut dropins: BTreeMap<String, String> = BTreeMap::new();
    for d in UNIT_DIRS {
        let dir = format!("{d}/{unit}.d");
        let Ok(real) = follow(root, &dir) else {
            continue;
        };
        let Ok(rd) = std::fs::read_dir(real) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let host = format!("{dir}/{name}");
            if name.ends_with(".conf") && exists(&host) {
                dropins.entry(name).or_insert(host);
            }
        }
    }
    let mut files = vec![unit_file];
    files.extend(dropins.into_values());
    let mut svc = Service {
        unit: unit.to_string(),
        files: files.clone(),
        environment: Vec::new(),
        env_files: Vec::new(),
        exec: Vec::new(),
        exec_file: String::new(),
        exec_at: false,
    };
    let mut execs: Vec<(String, String)> = Vec::new();
    for f in &files {
        let text = read(f)?;
        for (section, key, value) in logical_lines(&text) {
            if section != "Service" {
                continue;
            }
            match key.as_str() {
                "Environment" if value.is_empty() => svc.environment.clear(),
                "Environment" => {
                    for (w, _) in split_quoted(&value) {
                        if let Some((n, v)) = w.split_once('=') {
                            svc.environment
                                .push((n.to_string(), v.to_string(), f.clone()));
                        }
                    }
                }
                "EnvironmentFile" if value.is_empty() => svc.env_files.clear(),
                "EnvironmentFile" => {
                    let (optional, host) = match value.strip_prefix('-') {
                        Some(h) => (true, h.trim().to_string()),
                        None => (false, value.clone()),
                    };
                    svc.env_files.push(EnvFileRef {
                        host,
                        optional,
                        unit_file: f.clone(),
                    });
                }
                "ExecStart" if value.is_empty() => execs.clear(),
                "ExecStart" => execs.push((value, f.clone())),
                _ => {}
            }
        }
    }
    match execs.len() {
        0 => Err(UnitError::NoExecStart {
            unit: unit.to_string(),
            files: files.join(", "),
        }),
        1 => {
            let (mut line, file) = execs.remove(0);
            let mut at = false;
            loop {
                let t = line.trim_start();
                let Some(c) = t.chars().next() else { break };
                if matches!(c, '-' | '@' | ':' | '+' | '!') {
                    at |= c == '@';
                    line = t[c.len_utf8()..].to_string();
                } else {
                    break;
                }
            }
            svc.exec = split_quoted(&line)
                .into_iter()
                .map(|(w, bare)| if bare { format!("\u{0}{w}") } else { w })
                .collect();
            svc.exec_file = file;
            svc.exec_at = at;
            Ok(svc)
        }
        n => Err(UnitError::SeveralExecStart {
            unit: unit.to_string(),
            n,
        }),
    }
}

/// Where a variable's value comes from.
#[derive(Debug, Clone)]
struct Var {
    value: String,
    origin: Origin,
}

impl Service {
    /// The environment files the service reads, with their contents as `contents` gives them
    /// (`Ok(None)`: absent). A missing file that is not optional is an error, as systemd
    /// refuses to start the service then.
    fn environment_with(
        &self,
        contents: &mut ReadFile<'_>,
    ) -> Result<BTreeMap<String, Var>, UnitError> {
        let mut vars: BTreeMap<String, Var> = BTreeMap::new();
        for (n, v, f) in &self.environment {
            vars.insert(
                n.clone(),
                Var {
                    value: v.clone(),
                    origin: Origin::Environment {
                        name: n.clone(),
                        unit_file: f.clone(),
                    },
                },
            );
        }
        for ef in &self.env_files {
            let bytes = match contents(&ef.host).map_err(|why| UnitError::EnvFile {
                file: ef.host.clone(),
                why,
            })? {
                Some(b) => b,
                None if ef.optional => continue,
                None => {
                    return Err(UnitError::EnvFile {
                        file: ef.host.clone(),
                        why: format!(
                            "named by EnvironmentFile= in {} and missing: systemd would not start the service",
                            ef.unit_file
                        ),
                    })
                }
            };
            let env = EnvFile::parse(&bytes).map_err(|e| UnitError::EnvFile {
                file: ef.host.clone(),
                why: e.to_string(),
            })?;
            for a in env.assignments() {
                vars.insert(
                    a.name.clone(),
                    Var {
                        value: a.value.clone(),
                        origin: Origin::EnvFile {
                            name: a.name.clone(),
                            file: ef.host.clone(),
                        },
                    },
                );
            }
        }
        Ok(vars)
    }

    /// The command line `ExecStart=` expands to, with the environment files read through
    /// `contents` (so that a plan can expand the files it is about to write).
    pub fn expand_with(&self, contents: &mut ReadFile<'_>) -> Result<Vec<Word>, UnitError> {
        let vars = self.environment_with(contents)?;
        let lit = || Origin::ExecStart {
            unit_file: self.exec_file.clone(),
        };
        let mut out = Vec::new();
        for w in &self.exec {
            if let Some(name) = w.strip_prefix("\u{0}$") {
                // `$NAME` as a word of its own: split at blanks.
                if let Some(v) = vars.get(name) {
                    for t in split_exec_words(&v.value) {
                        out.push(Word {
                            text: t,
                            origin: v.origin.clone(),
                        });
                    }
                }
                continue;
            }
            let (text, from) = substitute(w, &vars);
            let origin = match from.as_slice() {
                [] => lit(),
                [only] if w == &format!("${{{}}}", only_name(w)) => vars
                    .get(*only)
                    .map(|v| v.origin.clone())
                    .unwrap_or_else(lit),
                _ => Origin::Mixed {
                    unit_file: self.exec_file.clone(),
                },
            };
            out.push(Word { text, origin });
        }
        if self.exec_at && out.len() >= 2 {
            // `@/usr/bin/kubelet kubelet ...`: the second word is argv[0].
            out.remove(0);
        }
        Ok(out)
    }

    /// The variables `ExecStart=` expands as `$NAME` words whose value comes from the
    /// environment file `file` (the assignment that wins), in `ExecStart=` order: what an edit
    /// of a flag in that file must name.
    pub fn variables_from(
        &self,
        file: &str,
        contents: &mut ReadFile<'_>,
    ) -> Result<Vec<String>, UnitError> {
        let vars = self.environment_with(contents)?;
        let mut out: Vec<String> = Vec::new();
        for w in &self.exec {
            let Some(name) = w.strip_prefix("\u{0}$") else {
                continue;
            };
            let from_file = vars
                .get(name)
                .is_some_and(|v| matches!(&v.origin, Origin::EnvFile { file: f, .. } if f == file));
            if from_file && !out.iter().any(|n| n == name) {
                out.push(name.to_string());
            }
        }
        Ok(out)
    }
}

fn only_name(w: &str) -> &str {
    w.strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .unwrap_or("")
}

/// `${NAME}` and `$NAME` inside a word replaced by their values; `$$` is `$`. Returns the
/// text and the names used.
fn substitute<'a>(w: &str, vars: &'a BTreeMap<String, Var>) -> (String, Vec<&'a str>) {
    let mut out = String::new();
    let mut used = Vec::new();
    let chars: Vec<char> = w.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        if chars.get(i + 1) == Some(&'$') {
            out.push('$');
            i += 2;
            continue;
        }
        let (name, next) = if chars.get(i + 1) == Some(&'{') {
            match chars[i + 2..].iter().position(|c| *c == '}') {
                Some(end) => (
                    chars[i + 2..i + 2 + end].iter().collect::<String>(),
                    i + 3 + end,
                ),
                None => {
                    out.push(c);
                    i += 1;
                    continue;
                }
            }
        } else {
            let n: String = chars[i + 1..]
                .iter()
                .take_while(|c| is_name_char(**c))
                .collect();
            let len = n.chars().count();
            (n, i + 1 + len)
        };
        if name.is_empty() {
            out.push(c);
            i += 1;
            continue;
        }
        if let Some((k, v)) = vars.get_key_value(&name) {
            out.push_str(&v.value);
            used.push(k.as_str());
        }
        i = next;
    }
    (out, used)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(exec: &str, env: &[(&str, &str)], files: &[(&str, bool)]) -> Service {
        let mut s = Service {
            unit: "kubelet.service".into(),
            files: vec!["/u".into()],
            environment: env
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string(), "/u".into()))
                .collect(),
            env_files: files
                .iter()
                .map(|(h, optional)| EnvFileRef {
                    host: h.to_string(),
                    optional: *optional,
                    unit_file: "/u".into(),
                })
                .collect(),
            exec: Vec::new(),
            exec_file: "/u".into(),
            exec_at: false,
        };
        let text = format!("[Service]\nExecStart={exec}\n");
        let (_, _, v) = logical_lines(&text).remove(0);
        s.exec = split_quoted(&v)
            .into_iter()
            .map(|(w, bare)| if bare { format!("\u{0}{w}") } else { w })
            .collect();
        s
    }

    #[test]
    fn kubeadm_expansion_with_origins() {
        let s = svc(
            "/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS",
            &[
                ("KUBELET_KUBECONFIG_ARGS", "--kubeconfig=/etc/kubernetes/kubelet.conf"),
                ("KUBELET_CONFIG_ARGS", "--config=/var/lib/kubelet/config.yaml"),
            ],
            &[("/var/lib/kubelet/kubeadm-flags.env", true), ("/etc/default/kubelet", true)],
        );
        let files: BTreeMap<&str, &str> = [
            (
                "/var/lib/kubelet/kubeadm-flags.env",
                "KUBELET_KUBEADM_ARGS=\"--node-ip=10.0.0.1 --read-only-port=10255\"\n",
            ),
            ("/etc/default/kubelet", "KUBELET_EXTRA_ARGS='--v=2'\n"),
        ]
        .into_iter()
        .collect();
        let words = s
            .expand_with(&mut |h| Ok(files.get(h).map(|t| t.as_bytes().to_vec())))
            .unwrap();
        let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "/usr/bin/kubelet",
                "--kubeconfig=/etc/kubernetes/kubelet.conf",
                "--config=/var/lib/kubelet/config.yaml",
                "--node-ip=10.0.0.1",
                "--read-only-port=10255",
                "--v=2"
            ]
        );
        assert!(matches!(words[0].origin, Origin::ExecStart { .. }));
        assert!(matches!(words[1].origin, Origin::Environment { .. }));
        assert_eq!(
            words[4].origin,
            Origin::EnvFile {
                name: "KUBELET_KUBEADM_ARGS".into(),
                file: "/var/lib/kubelet/kubeadm-flags.env".into()
            }
        );
        let mut read = |h: &str| Ok(files.get(h).map(|t| t.as_bytes().to_vec()));
        assert_eq!(
            s.variables_from("/var/lib/kubelet/kubeadm-flags.env", &mut read)
                .unwrap(),
            vec!["KUBELET_KUBEADM_ARGS".to_string()]
        );
        assert_eq!(
            s.variables_from("/etc/default/kubelet", &mut read).unwrap(),
            vec!["KUBELET_EXTRA_ARGS".to_string()]
        );
    }

    #[test]
    fn env_files_override_environment_and_braces_keep_one_word() {
        let s = svc(
            "/usr/bin/kubelet \"--node-labels=${LABELS}\" ${ONE} $$HOME",
            &[("LABELS", "a=b c=d"), ("ONE", "x y")],
            &[("/e", false)],
        );
        let words = s
            .expand_with(&mut |_| Ok(Some(b"ONE=\"from file\"\n".to_vec())))
            .unwrap();
        let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "/usr/bin/kubelet",
                "--node-labels=a=b c=d",
                "from file",
                "$HOME"
            ]
        );
        assert!(matches!(words[1].origin, Origin::Mixed { .. }));
        assert!(matches!(words[2].origin, Origin::EnvFile { .. }));
        // A required environment file that is missing stops the service.
        assert!(s.expand_with(&mut |_| Ok(None)).is_err());
    }

    #[test]
    fn continuation_comments_prefixes_and_resets() {
        let lines = logical_lines(
            "[Unit]\nDescription=x\n# c\n[Service]\nExecStart=\nExecStart=-/usr/bin/kubelet \\\n  --a=1 \\\n  --b=2\n; comment\n",
        );
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[1],
            ("Service".into(), "ExecStart".into(), String::new())
        );
        assert_eq!(lines[2].2, "-/usr/bin/kubelet    --a=1    --b=2");
        assert!(is_dollar_name("$A_1"));
        assert!(!is_dollar_name("${A}"));
        assert!(!is_dollar_name("$"));
    }
}
