//! File checks (sections 1.1 and 4.1): kube-bench's verdict, what is really there, and the fix.
//!
//! kube-bench's reading is reproduced by rebuilding, from the caller's `lstat` facts, the exact
//! text its shell audit would print (`permissions=644`, `root:root`, `ownership=root:root
//! /etc/kubernetes/admin.conf`, `File not found`) and testing it with the same test items and
//! rules as every other check ([`crate::kube_bench::execute_text`]). That keeps its quirks:
//!
//! - a file that does not exist prints nothing, and an empty output fails every item: missing
//!   files FAIL (WARN when unscored), except 4.1.2 whose audit prints `File not found` and
//!   accepts it;
//! - `stat` without `-L` reports a symlink itself (mode 777), so a symlinked file fails the
//!   permissions tests whatever its target's mode;
//! - ownership items without a compare are substring tests: `xroot:root` passes `root:root`;
//! - `find ... | xargs stat` fails as a command when `find` lists nothing (no `*.crt` under the
//!   PKI directory, an etcd manifest whose name lacks `etcd`) or when a name has whitespace: the
//!   check is then FAIL/WARN whatever the files' modes;
//! - `use_multiple_values`: every line (file) must pass.
//!
//! The effective reading judges the files the components really use ([`crate::facts::Located`],
//! or the paths read from the components' own flags: etcd's `--data-dir`, the kubelet's
//! `--kubeconfig` and `clientCAFile`, the CNI directory the runtime uses, ...), through
//! symlinks, with a typed test (`mode & !allowed == 0`, `user:group` equality). A file that is not
//! there has nothing to protect: the effective reading is then "not applicable" (`None`).

use std::collections::BTreeSet;

use serde::Serialize;

use crate::audit::{
    FileRole, FileSet, FileTest, Owner, StatFormat, CNI_CONF_DIR, CNI_NETWORKS_DIR,
};
use crate::eval::Status;
use crate::facts::{normalize_path, FileFact, FileKind, Meta, NodeFacts};
use crate::kube_bench;
use crate::model::{Check, Component, Fix};
use crate::result::{CheckResult, Detail, MissingFact};
use kharden_manifest::Flags;

/// One file in a file check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileReading {
    pub path: String,
    /// The line kube-bench's `stat` printed for it; `None` when kube-bench did not stat it.
    pub kube_bench: Option<String>,
    /// What the component sees (the target of a symlink): `0644 root:root`; `None` when the
    /// file is not one the component uses, or does not exist.
    pub effective: Option<String>,
    /// Whether it satisfies the check, read effectively; `None` when not judged.
    pub holds: Option<bool>,
}

/// A path the caller must `lstat` (and, with `walk`, every path below it, as `find` lists them
/// without following symlinks) before evaluating file checks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FileRequest {
    pub path: String,
    pub walk: bool,
}

/// What kube-bench's audit command would print, or how it would fail.
struct KbAudit {
    /// (path, line) per file `stat` printed.
    files: Vec<(String, String)>,
    /// Extra output lines (error messages that end up in the tested text).
    extra: Vec<String>,
    /// The audit command fails (non-zero exit): the check fails whatever the output.
    error: Option<String>,
    /// Facts worth telling about how kube-bench found its files.
    notes: Vec<String>,
    /// Printed when the file does not exist (4.1.2).
    missing_text: Option<String>,
}

impl KbAudit {
    fn new() -> KbAudit {
        KbAudit {
            files: Vec::new(),
            extra: Vec::new(),
            error: None,
            notes: Vec::new(),
            missing_text: None,
        }
    }

    fn output(&self) -> String {
        let mut lines: Vec<&str> = self.files.iter().map(|(_, l)| l.as_str()).collect();
        lines.extend(self.extra.iter().map(String::as_str));
        if let Some(t) = &self.missing_text {
            lines.push(t);
        }
        lines.join("\n")
    }
}

fn fact<'a>(facts: &'a NodeFacts, path: &str) -> Result<&'a FileFact, MissingFact> {
    facts
        .files
        .get(path)
        .ok_or_else(|| MissingFact::File(normalize_path(path)))
}

fn var<'a>(facts: &'a NodeFacts, name: &str) -> Result<&'a str, MissingFact> {
    facts
        .paths
        .get(name)
        .map(|r| r.path.as_str())
        .ok_or_else(|| MissingFact::PathVar(name.to_string()))
}

/// The line `stat -c FORMAT` prints for `path`.
fn stat_line(format: StatFormat, m: &Meta, path: &str) -> String {
    let mode = m.mode & 0o7777;
    match format {
        StatFormat::Permissions => format!("permissions={mode:o}"),
        StatFormat::Owner => format!("{}:{}", m.user, m.group),
        StatFormat::PermissionsAndName => format!("permissions={mode:o} {path}"),
        StatFormat::OwnershipAndName => format!("ownership={}:{} {path}", m.user, m.group),
    }
}

/// `fnmatch` for the globs kube-bench uses (`*` and `?`).
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

fn base_name(path: &str) -> &str {
    let p = path.trim_end_matches('/');
    p.rsplit('/').next().unwrap_or(p)
}

/// `xargs` splits its input at blanks and interprets quotes and backslashes.
fn xargs_mangles(path: &str) -> bool {
    path.chars()
        .any(|c| c.is_whitespace() || c == '\'' || c == '"' || c == '\\')
}

/// `find ROOT [-name GLOB]` (no `-L`): `None` when ROOT does not exist.
fn find(
    facts: &NodeFacts,
    root: &str,
    name: Option<&str>,
) -> Result<Option<Vec<String>>, MissingFact> {
    let f = fact(facts, root)?;
    let Some(entry) = &f.entry else {
        return Ok(None);
    };
    let matches = |p: &str| name.is_none_or(|g| glob_match(g, base_name(p)));
    let mut out = Vec::new();
    if matches(root) {
        out.push(normalize_path(root));
    }
    if entry.kind == FileKind::Dir {
        out.extend(
            facts
                .files
                .below(root)
                .filter(|(p, _)| matches(p))
                .map(|(p, _)| p.clone()),
        );
    }
    Ok(Some(out))
}

/// The value sed's `s%.*NAME[= ]\([^ ]*\).*%\1%` extracts: after the last `NAME=` or `NAME `.
fn sed_last_value(line: &str, name: &str) -> Option<String> {
    let mut found = None;
    let mut from = 0;
    while let Some(i) = line[from..].find(name) {
        let at = from + i + name.len();
        if let Some(c) = line[at..].chars().next() {
            if c == '=' || c == ' ' {
                let rest = &line[at + 1..];
                let end = rest.find(' ').unwrap_or(rest.len());
                found = Some(rest[..end].to_string());
            }
        }
        from = from + i + 1;
    }
    found
}

/// The directory kube-bench's 1.1.11/1.1.12 audit stats, and how it chose it.
fn kube_bench_data_dir(facts: &NodeFacts) -> Result<(String, String), MissingFact> {
    let line = facts
        .argv(Component::Etcd)
        .map(|a| a.join(" "))
        .unwrap_or_default();
    let mut chosen: Option<String> = None;
    if line.contains("--data-dir") {
        if let Some(v) = sed_last_value(&line, "data-dir") {
            for word in v.split_whitespace().filter(|w| w.starts_with('/')) {
                if fact(facts, word)?.is_dir() {
                    chosen = Some(word.to_string());
                }
            }
        }
    }
    match chosen {
        Some(d) => Ok((d, "the running etcd's --data-dir".to_string())),
        None => {
            let d = var(facts, "etcddatadir")?;
            let how = facts
                .paths
                .get("etcddatadir")
                .map(|r| r.explain())
                .unwrap_or_default();
            Ok((
                d.to_string(),
                format!("no --data-dir of a running etcd is a directory; {how}"),
            ))
        }
    }
}

/// The CA file kube-bench's 4.1.7/4.1.8 audit stats, and how it chose it.
fn kube_bench_client_ca(facts: &NodeFacts) -> Result<(String, String), MissingFact> {
    let line = facts
        .argv(Component::Kubelet)
        .map(|a| a.join(" "))
        .unwrap_or_default();
    const FLAG: &str = "--client-ca-file=";
    if !line.contains("apiserver") {
        if let Some(i) = line.find(FLAG) {
            let rest = &line[i + FLAG.len()..];
            let field = rest.split(FLAG).next().unwrap_or(rest);
            if let Some(word) = field.split_whitespace().next() {
                return Ok((
                    word.to_string(),
                    "the kubelet's --client-ca-file= flag".to_string(),
                ));
            }
        }
    }
    let how = facts
        .paths
        .get("kubeletcafile")
        .map(|r| r.explain())
        .unwrap_or_default();
    Ok((
        var(facts, "kubeletcafile")?.to_string(),
        format!("the kubelet has no --client-ca-file= flag; {how}"),
    ))
}

/// The CNI configuration directory kube-bench reads: the kubelet's `--cni-conf-dir`.
fn kube_bench_cni_dir(facts: &NodeFacts) -> Option<String> {
    let line = facts.argv(Component::Kubelet)?.join(" ");
    if !line.contains("--cni-conf-dir") {
        return None;
    }
    sed_last_value(&line, "cni-conf-dir")
}

/// Emulate kube-bench's audit for a file test.
fn kube_bench_audit(t: &FileTest, facts: &NodeFacts) -> Result<KbAudit, MissingFact> {
    let mut a = KbAudit::new();
    let stat_one = |a: &mut KbAudit, path: &str, f: &FileFact| {
        if let Some(m) = &f.entry {
            a.files
                .push((normalize_path(path), stat_line(t.format, m, path)));
        }
    };
    match t.files {
        FileSet::Var { var: name } => {
            let path = var(facts, name)?;
            if let Some(r) = facts.paths.get(name) {
                a.notes.push(r.explain());
            }
            let f = fact(facts, path)?;
            if f.exists() {
                stat_one(&mut a, path, f);
            } else {
                a.notes.push(format!("{path} does not exist"));
                a.missing_text = t.if_missing.map(str::to_string);
            }
        }
        FileSet::FindVar {
            var: name,
            name: glob,
        } => {
            let path = var(facts, name)?;
            if let Some(r) = facts.paths.get(name) {
                a.notes.push(r.explain());
            }
            if !fact(facts, path)?.exists() {
                a.notes.push(format!("{path} does not exist"));
            } else {
                let found = find(facts, path, Some(glob))?.unwrap_or_default();
                stat_all(&mut a, t, facts, &found)?;
                if found.is_empty() {
                    a.error = Some(format!(
                        "find {path} -name '{glob}' lists nothing, so `xargs stat` runs \
                         without a file and fails"
                    ));
                }
            }
        }
        FileSet::Paths { paths } => {
            for p in paths {
                let f = fact(facts, p)?;
                if f.exists() {
                    stat_one(&mut a, p, f);
                } else {
                    a.notes.push(format!("{p} does not exist"));
                }
            }
        }
        FileSet::Find { dir, name } => match find(facts, dir, name)? {
            None => {
                a.error = Some(format!(
                    "{dir} does not exist: find fails and `xargs stat` runs without a file"
                ));
            }
            Some(found) => {
                stat_all(&mut a, t, facts, &found)?;
                if found.is_empty() {
                    a.error = Some(format!(
                        "find {dir}{} lists nothing, so `xargs stat` runs without a file and \
                         fails",
                        name.map(|g| format!(" -name '{g}'")).unwrap_or_default()
                    ));
                }
            }
        },
        FileSet::EtcdDataDir => {
            let (dir, how) = kube_bench_data_dir(facts)?;
            a.notes.push(format!("kube-bench stats {dir}: {how}"));
            let f = fact(facts, &dir)?;
            if f.entry.is_some() {
                stat_one(&mut a, &dir, f);
            } else {
                a.error = Some(format!("stat {dir}: no such file or directory"));
            }
        }
        FileSet::Cni => {
            if let Some(dir) = kube_bench_cni_dir(facts) {
                a.notes.push(format!(
                    "kube-bench lists everything below the kubelet's --cni-conf-dir {dir}"
                ));
                match fact(facts, &dir)?.entry {
                    None => a
                        .extra
                        .push(format!("find: '{dir}': No such file or directory")),
                    Some(ref m) if m.kind == FileKind::Dir => {
                        for (p, f) in facts.files.below(&dir) {
                            if xargs_mangles(p) {
                                a.extra.push(format!(
                                    "stat: cannot statx '{p}': No such file or directory"
                                ));
                            } else {
                                stat_one(&mut a, p, f);
                            }
                        }
                    }
                    Some(_) => {}
                }
            } else {
                a.notes.push(
                    "the kubelet has no --cni-conf-dir (removed in Kubernetes 1.24), so \
                     kube-bench reads only /var/lib/cni/networks"
                        .to_string(),
                );
            }
            if fact(facts, CNI_NETWORKS_DIR)?.is_dir() {
                for (p, f) in facts.files.below(CNI_NETWORKS_DIR) {
                    if f.entry.as_ref().is_some_and(|m| m.kind == FileKind::File) {
                        if xargs_mangles(p) {
                            a.error = Some(format!("xargs splits the file name {p:?}"));
                        } else {
                            stat_one(&mut a, p, f);
                        }
                    }
                }
            }
        }
        FileSet::KubeletClientCa => {
            let (path, how) = kube_bench_client_ca(facts)?;
            a.notes.push(format!("kube-bench stats {path}: {how}"));
            let f = fact(facts, &path)?;
            if f.exists() {
                stat_one(&mut a, &path, f);
            } else {
                a.notes.push(format!("{path} does not exist"));
            }
        }
    }
    Ok(a)
}

/// `... | xargs stat`: every path listed, or a failed command when a name would be split.
fn stat_all(
    a: &mut KbAudit,
    t: &FileTest,
    facts: &NodeFacts,
    found: &[String],
) -> Result<(), MissingFact> {
    for p in found {
        if xargs_mangles(p) {
            a.error = Some(format!(
                "xargs splits the file name {p:?}, so stat fails on its pieces"
            ));
            continue;
        }
        if let Some(m) = &fact(facts, p)?.entry {
            a.files.push((p.clone(), stat_line(t.format, m, p)));
        }
    }
    Ok(())
}

/// A value from a component's own flags (last occurrence, pflag rules).
fn flag_of(facts: &NodeFacts, c: Component, name: &str) -> Option<String> {
    let argv = facts.argv(c)?;
    Flags::parse(argv)
        .effective(name)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// How the effective file list of a role is expanded from its paths.
#[derive(Clone, Copy)]
enum Expand {
    /// The paths are the files.
    Files,
    /// The paths are directories: themselves and everything below.
    Tree,
    /// The paths are directories: what is below them, whose name matches.
    Below(Option<&'static str>),
}

/// Where the files of a role really are: (paths, expansion, provenance). `None`: the same files
/// as kube-bench's.
fn effective_location(t: &FileTest, facts: &NodeFacts) -> Option<(Vec<String>, Expand, String)> {
    let expand = match t.role {
        FileRole::PkiTree => Expand::Tree,
        FileRole::PkiCertificates => Expand::Below(Some("*.crt")),
        FileRole::PkiKeys => Expand::Below(Some("*.key")),
        FileRole::CniFiles => Expand::Below(None),
        _ => Expand::Files,
    };
    if let Some(l) = facts.located.get(&t.role) {
        return Some((l.paths.clone(), expand, l.provenance.clone()));
    }
    let from_flags = |c: Component, names: &[&str]| -> Option<(Vec<String>, Expand, String)> {
        let mut paths: Vec<String> = Vec::new();
        let mut used: Vec<String> = Vec::new();
        for n in names {
            if let Some(v) = flag_of(facts, c, n) {
                if !paths.contains(&v) {
                    paths.push(v);
                }
                used.push(format!("--{n}"));
            }
        }
        (!paths.is_empty()).then(|| (paths, expand, format!("{c}'s {}", used.join(", "))))
    };
    match t.role {
        FileRole::EtcdDataDir => from_flags(Component::Etcd, &["data-dir"]),
        FileRole::KubeletKubeconfig => from_flags(Component::Kubelet, &["kubeconfig"]),
        FileRole::SchedulerKubeconfig => from_flags(
            Component::Scheduler,
            &[
                "kubeconfig",
                "authentication-kubeconfig",
                "authorization-kubeconfig",
            ],
        ),
        FileRole::ControllerManagerKubeconfig => from_flags(
            Component::ControllerManager,
            &[
                "kubeconfig",
                "authentication-kubeconfig",
                "authorization-kubeconfig",
            ],
        ),
        FileRole::KubeletConfig => facts.kubelet.config_path.as_ref().map(|p| {
            (
                vec![p.clone()],
                expand,
                "the kubelet's --config".to_string(),
            )
        }),
        FileRole::KubeletClientCa => {
            let v = facts
                .kubelet
                .effective
                .get("authentication.x509.clientCAFile")?;
            Some((
                v.value.iter().cloned().collect(),
                expand,
                format!("the kubelet's clientCAFile (from {})", v.source),
            ))
        }
        FileRole::CniFiles => {
            let dir = flag_of(facts, Component::Kubelet, "cni-conf-dir");
            let provenance = match &dir {
                Some(d) => format!("the kubelet's --cni-conf-dir {d}"),
                None => format!(
                    "the container runtime's default CNI directory {CNI_CONF_DIR} (the kubelet \
                     has no --cni-conf-dir)"
                ),
            };
            Some((
                vec![dir.unwrap_or_else(|| CNI_CONF_DIR.to_string())],
                expand,
                provenance,
            ))
        }
        _ => None,
    }
}

/// Expand located paths into the files to judge.
fn expand_paths(
    facts: &NodeFacts,
    role: FileRole,
    paths: &[String],
    expand: Expand,
) -> Result<Vec<String>, MissingFact> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |p: String| {
        if !out.contains(&p) {
            out.push(p);
        }
    };
    for p in paths {
        let f = fact(facts, p)?;
        match expand {
            Expand::Files => push(normalize_path(p)),
            Expand::Tree => {
                push(normalize_path(p));
                if f.entry.as_ref().is_some_and(|m| m.kind == FileKind::Dir) {
                    for (q, _) in facts.files.below(p) {
                        push(q.clone());
                    }
                }
            }
            Expand::Below(glob) => {
                if f.is_dir() {
                    for (q, _) in facts.files.below(p) {
                        if glob.is_none_or(|g| glob_match(g, base_name(q))) {
                            push(q.clone());
                        }
                    }
                } else if glob.is_none_or(|g| glob_match(g, base_name(p))) {
                    push(normalize_path(p));
                }
            }
        }
    }
    if role == FileRole::CniFiles && fact(facts, CNI_NETWORKS_DIR)?.is_dir() {
        for (q, f) in facts.files.below(CNI_NETWORKS_DIR) {
            if f.entry.as_ref().is_some_and(|m| m.kind == FileKind::File) {
                push(q.clone());
            }
        }
    }
    Ok(out)
}

/// The typed test on what the component sees.
fn holds(t: &FileTest, m: &Meta) -> bool {
    let mode_ok = t.allowed_mode.is_none_or(|a| m.mode & 0o7777 & !a == 0);
    let owner_ok = t
        .owner
        .is_none_or(|o| m.user == o.user && m.group == o.group);
    mode_ok && owner_ok
}

/// What a file test expects, in words (`mode 600 or stricter`, `owner root:root`).
fn expectation(t: &FileTest) -> String {
    let mut parts = Vec::new();
    if let Some(a) = t.allowed_mode {
        parts.push(format!("mode {a:o} or stricter"));
    }
    if let Some(o) = t.owner {
        parts.push(format!("owned by {o}"));
    }
    parts.join(", ")
}

/// Evaluate a file check (both readings).
pub(crate) fn evaluate_file(
    check: &Check,
    t: &FileTest,
    facts: &NodeFacts,
) -> Result<CheckResult, MissingFact> {
    let kb = kube_bench_audit(t, facts)?;
    let output = kb.output();
    let (kb_pass, expected) = if kb.error.is_some() {
        (false, String::new())
    } else {
        let outcomes: Vec<_> = t
            .items
            .iter()
            .map(|i| kube_bench::execute_text(i, &output, t.multiple))
            .collect();
        kube_bench::combine(t.bin_op, &outcomes)
    };
    let status = if check.manual {
        Status::Manual
    } else {
        Status::of(kb_pass, check.scored)
    };

    // The effective reading.
    let kb_paths: Vec<String> = kb.files.iter().map(|(p, _)| p.clone()).collect();
    let (eff_paths, provenance, own_location) = match effective_location(t, facts) {
        Some((paths, expand, provenance)) => (
            expand_paths(facts, t.role, &paths, expand)?,
            provenance,
            true,
        ),
        None => (
            kb_paths.clone(),
            "the same files as kube-bench (no other location known)".to_string(),
            false,
        ),
    };
    let mut readings: Vec<FileReading> = Vec::new();
    let mut judged: Vec<(String, bool, String)> = Vec::new();
    let mut symlinks: Vec<String> = Vec::new();
    for p in &eff_paths {
        let f = fact(facts, p)?;
        if f.is_symlink() {
            symlinks.push(p.clone());
        }
        let (eff, ok) = match f.resolved() {
            Some(m) => {
                let ok = holds(t, m);
                judged.push((p.clone(), ok, m.describe()));
                (Some(m.describe()), Some(ok))
            }
            None => (None, None),
        };
        readings.push(FileReading {
            path: p.clone(),
            kube_bench: kb
                .files
                .iter()
                .find(|(q, _)| q == p)
                .map(|(_, l)| l.clone()),
            effective: eff,
            holds: ok,
        });
    }
    for (p, line) in &kb.files {
        if !readings.iter().any(|r| &r.path == p) {
            if fact(facts, p)?.is_symlink() {
                symlinks.push(p.clone());
            }
            readings.push(FileReading {
                path: p.clone(),
                kube_bench: Some(line.clone()),
                effective: None,
                holds: None,
            });
        }
    }
    let effective = (!judged.is_empty()).then(|| judged.iter().all(|(_, ok, _)| *ok));
    let effective_note = match effective {
        None => Some(format!(
            "no such file on this node ({provenance}): nothing to protect"
        )),
        Some(false) => Some(format!(
            "expected {}; {}",
            expectation(t),
            judged
                .iter()
                .filter(|(_, ok, _)| !ok)
                .map(|(p, _, m)| format!("{p} is {m}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Some(true) => None,
    };

    let disagreement = match effective {
        Some(e) if e != kb_pass && !check.manual => {
            let mut why: Vec<String> = Vec::new();
            let kb_set: BTreeSet<&String> = kb_paths.iter().collect();
            let eff_set: BTreeSet<&String> = judged.iter().map(|(p, _, _)| p).collect();
            if own_location && kb_set != eff_set {
                why.push(format!(
                    "kube-bench stats {}; the component uses {} ({provenance})",
                    if kb_paths.is_empty() {
                        "nothing".to_string()
                    } else {
                        kb_paths.join(", ")
                    },
                    eff_paths.join(", ")
                ));
            }
            if !symlinks.is_empty() {
                why.push(format!(
                    "{} is a symlink: kube-bench's stat reports the link itself (mode 777), \
                     not the file it points to",
                    symlinks.join(", ")
                ));
            }
            if let Some(err) = &kb.error {
                why.push(format!("kube-bench's audit command fails: {err}"));
            }
            if kb_pass && t.owner.is_some() {
                why.push("kube-bench tests the owner as a substring of `user:group`".to_string());
            }
            if why.is_empty() {
                why.extend(kb.notes.iter().cloned());
            }
            Some(format!(
                "kube-bench {} this check but the files the component uses {} ({})",
                if kb_pass { "passes" } else { "fails" },
                if e { "satisfy it" } else { "do not" },
                why.join("; ")
            ))
        }
        _ => None,
    };
    let reason = match (&kb.error, kb.files.is_empty()) {
        (Some(e), _) => Some(format!("the audit command fails: {e}")),
        (None, true) if !kb_pass => Some(format!(
            "kube-bench found no file to stat ({})",
            kb.notes.join("; ")
        )),
        _ => None,
    };
    Ok(CheckResult {
        id: check.id,
        key: check.key,
        status: Some(status),
        kube_bench: (!check.manual).then_some(kb_pass),
        effective,
        effective_note,
        reason,
        disagreement,
        actual_value: Some(output),
        expected: (!check.manual).then_some(expected),
        detail: Detail::Files {
            files: readings,
            effective_from: provenance,
        },
    })
}

/// Every path the file checks of `checks` need, given the processes, variables and locations
/// already in `facts`. The caller `lstat`s each (walking those with `walk`) into
/// [`NodeFacts::files`], then evaluates.
pub fn file_requests<'a>(
    checks: impl IntoIterator<Item = &'a Check>,
    facts: &NodeFacts,
) -> Vec<FileRequest> {
    let mut out: Vec<FileRequest> = Vec::new();
    let mut add = |path: &str, walk: bool| {
        let path = normalize_path(path);
        if path.is_empty() {
            return;
        }
        match out.iter_mut().find(|r| r.path == path) {
            Some(r) => r.walk |= walk,
            None => out.push(FileRequest { path, walk }),
        }
    };
    let var = |name: &str| facts.paths.get(name).map(|r| r.path.clone());
    for c in checks {
        let crate::audit::Audit::File(t) = c.audit else {
            continue;
        };
        match t.files {
            FileSet::Var { var: v } => {
                if let Some(p) = var(v) {
                    add(&p, false);
                }
            }
            FileSet::FindVar { var: v, .. } => {
                if let Some(p) = var(v) {
                    add(&p, true);
                }
            }
            FileSet::Paths { paths } => paths.iter().for_each(|p| add(p, false)),
            FileSet::Find { dir, .. } => add(dir, true),
            FileSet::EtcdDataDir => {
                if let Some(line) = facts.argv(Component::Etcd).map(|a| a.join(" ")) {
                    if let Some(v) = sed_last_value(&line, "data-dir") {
                        v.split_whitespace()
                            .filter(|w| w.starts_with('/'))
                            .for_each(|w| add(w, false));
                    }
                }
                if let Some(p) = var("etcddatadir") {
                    add(&p, false);
                }
            }
            FileSet::Cni => {
                if let Some(d) = kube_bench_cni_dir(facts) {
                    add(&d, true);
                }
                add(CNI_NETWORKS_DIR, true);
            }
            FileSet::KubeletClientCa => {
                if let Ok((p, _)) = kube_bench_client_ca(facts) {
                    add(&p, false);
                } else if let Some(p) = var("kubeletcafile") {
                    add(&p, false);
                }
            }
        }
        if let Some((paths, expand, _)) = effective_location(t, facts) {
            let walk = !matches!(expand, Expand::Files);
            paths.iter().for_each(|p| add(p, walk));
            if t.role == FileRole::CniFiles {
                add(CNI_NETWORKS_DIR, true);
            }
        }
    }
    out.sort();
    out
}

/// One metadata change of a file fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    pub path: String,
    pub kind: FileKind,
    /// Current permission bits.
    pub mode: u32,
    /// New permission bits (`mode & allowed`), when they change.
    pub new_mode: Option<u32>,
    /// Current `user:group`.
    pub owner: String,
    /// New owner and group, when they change.
    pub new_owner: Option<Owner>,
}

/// A path the fix will not touch, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileBlocked {
    pub path: String,
    pub why: String,
}

/// What fixing a file check would change on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilePlan {
    pub id: &'static str,
    /// The changes, in path order. Empty when everything already satisfies the check.
    pub changes: Vec<FileChange>,
    pub blocked: Vec<FileBlocked>,
    /// Set when the fix is left to a person (the check's fix is manual, or the owner does not
    /// exist on the node): why.
    pub manual: Option<String>,
}

/// Plan the fix of a file check: for every file kube-bench stats and every file the component
/// uses, the bits to remove (`new = old & allowed`, never loosening) and the owner to set. The
/// caller still checks that no running component loses access before applying it.
pub fn plan_file_fix(check: &Check, facts: &NodeFacts) -> Result<FilePlan, MissingFact> {
    let mut plan = FilePlan {
        id: check.id,
        changes: Vec::new(),
        blocked: Vec::new(),
        manual: None,
    };
    let crate::audit::Audit::File(t) = check.audit else {
        plan.manual = Some("not a file check".to_string());
        return Ok(plan);
    };
    let fix = match check.fix {
        Fix::File(f) => f,
        Fix::Manual { reason } => {
            plan.manual = Some(reason.to_string());
            return Ok(plan);
        }
        _ => {
            plan.manual = Some("not a file fix".to_string());
            return Ok(plan);
        }
    };
    if let Some(o) = fix.owner {
        if !facts.accounts.has_user(o.user) || !facts.accounts.has_group(o.group) {
            plan.manual = Some(format!(
                "{o} does not exist on this node: {}",
                fix.account_missing
            ));
            return Ok(plan);
        }
    }
    let kb = kube_bench_audit(t, facts)?;
    let mut paths: Vec<String> = kb.files.iter().map(|(p, _)| p.clone()).collect();
    if let Some((located, expand, _)) = effective_location(t, facts) {
        for p in expand_paths(facts, t.role, &located, expand)? {
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
    }
    paths.sort();
    for p in paths {
        let f = fact(facts, &p)?;
        let Some(entry) = &f.entry else { continue };
        match entry.kind {
            FileKind::Symlink => {
                plan.blocked.push(FileBlocked {
                    path: p,
                    why: "a symlink: kube-bench's stat reports the link itself (always 0777 on \
                          Linux), which no chmod changes, and kharden never follows links when \
                          it changes metadata; replace the link by the file, or fix its target"
                        .to_string(),
                });
                continue;
            }
            FileKind::Other => {
                plan.blocked.push(FileBlocked {
                    path: p,
                    why: "neither a regular file nor a directory".to_string(),
                });
                continue;
            }
            FileKind::File | FileKind::Dir => {}
        }
        let mode = entry.mode & 0o7777;
        let new_mode = fix.allowed_mode.map(|a| mode & a).filter(|m| *m != mode);
        let new_owner = fix
            .owner
            .filter(|o| entry.user != o.user || entry.group != o.group);
        if new_mode.is_some() || new_owner.is_some() {
            plan.changes.push(FileChange {
                path: p,
                kind: entry.kind,
                mode,
                new_mode,
                owner: format!("{}:{}", entry.user, entry.group),
                new_owner,
            });
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_sed() {
        assert!(glob_match("*.crt", "ca.crt"));
        assert!(!glob_match("*.crt", "ca.crt.bak"));
        assert!(glob_match("*etcd*", "etcd.yaml"));
        assert!(!glob_match("*etcd*", "config"));
        assert!(glob_match("a?c", "abc"));
        assert_eq!(
            sed_last_value("--data-dir=/a --x --data-dir /b --y", "data-dir").as_deref(),
            Some("/b")
        );
        assert_eq!(sed_last_value("--data-dir", "data-dir"), None);
        assert_eq!(base_name("/etc/kubernetes/pki/"), "pki");
    }
}
