//! What the caller tells the catalog about the node: plain data, gathered by the caller's I/O.
//!
//! The catalog never reads a file or `/proc`. The caller fills a [`NodeFacts`] in three steps:
//!
//! 1. the running processes' own flags ([`NodeFacts::processes`]) and kube-bench's choice of each
//!    config.yaml variable ([`NodeFacts::paths`], resolved with [`crate::paths`] and the caller's
//!    `exists` test), plus, where it knows them, the files the components really use
//!    ([`NodeFacts::located`]);
//! 2. [`crate::file_requests`] then lists every path to `lstat` (and every directory to walk, as
//!    `find` would), and the caller records each in [`NodeFacts::files`];
//! 3. the kubelet's configuration: the file kube-bench reads, parsed the way kube-bench parses it
//!    ([`ConfigFacts::kube_bench_file`]), and the effective value of each key under the kubelet's
//!    own rules ([`ConfigFacts::effective`], from the kubelet-config crate).
//!
//! Paths are host paths (`/etc/kubernetes/pki/ca.crt`); mapping them under `--root` is the
//! caller's business. A fact the evaluation needs but does not find is an error
//! ([`crate::MissingFact`]), never silently "absent": a forgotten `stat` must not read as a
//! missing file.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::audit::FileRole;
use crate::model::Component;
use crate::paths::ResolvedPath;

/// Everything the checks read from one node.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeFacts {
    /// Each running component's own flags (argv after the binary and any wrapper, as for
    /// [`crate::evaluate`]). A component absent from the map is not running.
    pub processes: BTreeMap<Component, Vec<String>>,
    /// kube-bench's value of each config.yaml variable, by name without `$` (`kubeletconf`).
    pub paths: BTreeMap<String, ResolvedPath>,
    /// `lstat` facts of every path [`crate::file_requests`] asked for.
    pub files: FileFacts,
    /// Where the files of a role really are, when the caller knows better than kube-bench's
    /// candidates (the kubelet's unit and every drop-in, the manifests the kubelet loads, ...).
    pub located: BTreeMap<FileRole, Located>,
    /// The kubelet's configuration, both readings.
    pub kubelet: ConfigFacts,
    /// kube-proxy's configuration, both readings (4.3.1).
    pub proxy: ConfigFacts,
    /// Users and groups that exist on the node (an owner fix needs both).
    pub accounts: Accounts,
}

impl NodeFacts {
    /// A process's own flags.
    pub fn argv(&self, c: Component) -> Option<&[String]> {
        self.processes.get(&c).map(Vec::as_slice)
    }

    /// The configuration facts of the kubelet or kube-proxy.
    pub fn config(&self, c: Component) -> &ConfigFacts {
        if c == Component::KubeProxy {
            &self.proxy
        } else {
            &self.kubelet
        }
    }
}

/// Users and groups known to exist (from `/etc/passwd` and `/etc/group`, or NSS).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Accounts {
    pub users: BTreeSet<String>,
    pub groups: BTreeSet<String>,
}

impl Accounts {
    pub fn has_user(&self, name: &str) -> bool {
        name == "root" || self.users.contains(name)
    }
    pub fn has_group(&self, name: &str) -> bool {
        name == "root" || self.groups.contains(name)
    }
}

/// Where the files of a role really are, and how the caller knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Located {
    /// Host paths. For a directory role whose files are tested (the CNI files), the caller
    /// lists the files; [`crate::file_requests`] asks for them.
    pub paths: Vec<String>,
    /// For reports: "the kubelet's --config", "systemctl show kubelet: DropInPaths", ...
    pub provenance: String,
}

/// The type of a directory entry, as `lstat` sees it (a symlink is not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    /// A FIFO, socket or device.
    Other,
}

/// Mode and owner of one inode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Meta {
    pub kind: FileKind,
    /// Permission bits including setuid/setgid/sticky (`st_mode & 0o7777`); a symlink's own
    /// mode is 0o777 on Linux.
    pub mode: u32,
    /// The owner's name as `stat -c %U` prints it (`UNKNOWN` when it has none).
    pub user: String,
    /// The group's name as `stat -c %G` prints it.
    pub group: String,
}

impl Meta {
    /// `0644 root:root`.
    pub fn describe(&self) -> String {
        format!("{:04o} {}:{}", self.mode & 0o7777, self.user, self.group)
    }
}

/// What `lstat` (and, for a symlink, `stat`) says about one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileFact {
    /// The entry itself (`lstat`); `None` when nothing is there.
    pub entry: Option<Meta>,
    /// For a symlink, what it points to (`stat`); `None` when dangling or not a symlink.
    pub target: Option<Meta>,
}

impl FileFact {
    /// Nothing at this path.
    pub fn absent() -> FileFact {
        FileFact {
            entry: None,
            target: None,
        }
    }

    /// A path whose entry (not a symlink) has this metadata.
    pub fn of(meta: Meta) -> FileFact {
        FileFact {
            entry: Some(meta),
            target: None,
        }
    }
}

impl FileFact {
    /// `test -e`: the path exists, following symlinks.
    pub fn exists(&self) -> bool {
        match &self.entry {
            None => false,
            Some(m) if m.kind == FileKind::Symlink => self.target.is_some(),
            Some(_) => true,
        }
    }

    /// `test -d`: a directory, following symlinks.
    pub fn is_dir(&self) -> bool {
        self.resolved().is_some_and(|m| m.kind == FileKind::Dir)
    }

    /// What a component that opens the path sees: the target of a symlink, else the entry.
    pub fn resolved(&self) -> Option<&Meta> {
        match &self.entry {
            Some(m) if m.kind == FileKind::Symlink => self.target.as_ref(),
            other => other.as_ref(),
        }
    }

    /// True when the path is a symlink.
    pub fn is_symlink(&self) -> bool {
        self.entry
            .as_ref()
            .is_some_and(|m| m.kind == FileKind::Symlink)
    }
}

/// `lstat` facts by host path. Directories asked for with `walk` must have every descendant
/// recorded too (as `find` lists them, without following symlinks): the catalog lists a
/// directory's contents from the paths recorded under it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileFacts {
    map: BTreeMap<String, FileFact>,
}

/// `/a//b/` -> `/a/b`.
pub fn normalize_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for part in p.split('/') {
        if part.is_empty() {
            continue;
        }
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        if p.starts_with('/') {
            return "/".to_string();
        }
        return String::new();
    }
    if !p.starts_with('/') {
        out.remove(0);
    }
    out
}

impl FileFacts {
    pub fn new() -> FileFacts {
        FileFacts::default()
    }

    /// Record one path.
    pub fn insert(&mut self, path: &str, fact: FileFact) {
        self.map.insert(normalize_path(path), fact);
    }

    /// The fact of one path, if it was recorded.
    pub fn get(&self, path: &str) -> Option<&FileFact> {
        self.map.get(&normalize_path(path))
    }

    /// Every recorded path strictly below `dir` that exists (has an entry), in path order: what
    /// `find` lists under it.
    pub fn below<'a>(&'a self, dir: &str) -> impl Iterator<Item = (&'a String, &'a FileFact)> {
        let dir = normalize_path(dir);
        let prefix = if dir == "/" { dir } else { format!("{dir}/") };
        self.map
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .filter(|(_, f)| f.entry.is_some())
    }

    /// Every recorded path.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &FileFact)> {
        self.map.iter()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Record a missing path.
    pub fn missing(mut self, path: &str) -> FileFacts {
        self.insert(
            path,
            FileFact {
                entry: None,
                target: None,
            },
        );
        self
    }

    /// Record a regular file (for tests and simulations).
    pub fn file(self, path: &str, mode: u32, user: &str, group: &str) -> FileFacts {
        self.with(path, FileKind::File, mode, user, group)
    }

    /// Record a directory (for tests and simulations).
    pub fn dir(self, path: &str, mode: u32, user: &str, group: &str) -> FileFacts {
        self.with(path, FileKind::Dir, mode, user, group)
    }

    /// Record a symlink owned by root whose target has this metadata (`None`: dangling).
    pub fn symlink(mut self, path: &str, target: Option<Meta>) -> FileFacts {
        self.insert(
            path,
            FileFact {
                entry: Some(Meta {
                    kind: FileKind::Symlink,
                    mode: 0o777,
                    user: "root".into(),
                    group: "root".into(),
                }),
                target,
            },
        );
        self
    }

    fn with(mut self, path: &str, kind: FileKind, mode: u32, user: &str, group: &str) -> FileFacts {
        self.insert(
            path,
            FileFact {
                entry: Some(Meta {
                    kind,
                    mode,
                    user: user.into(),
                    group: group.into(),
                }),
                target: None,
            },
        );
        self
    }
}

/// A parsed configuration value, neutral to the parser the caller used. Numbers keep the
/// distinction kube-bench sees: its JSON decoder makes every number a float, its YAML decoder
/// keeps integers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ConfigValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<ConfigValue>),
    Map(Vec<(String, ConfigValue)>),
}

impl ConfigValue {
    /// The value of `key` in a map.
    pub fn get(&self, key: &str) -> Option<&ConfigValue> {
        match self {
            ConfigValue::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// What kube-bench's `cat $kubeletconf` gave, parsed as kube-bench parses it: JSON first, else
/// YAML 1.1 (`gopkg.in/yaml.v2`: `yes`/`no`/`on`/`off` are booleans).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum ConfigContent {
    /// The file does not exist (kube-bench then reads the command line only).
    Missing,
    /// The file is empty (same as missing for kube-bench).
    Empty,
    /// `cat` fails for another reason than a missing file (the path is a directory: one of
    /// kube-bench's `$kubeletconf` candidates is RKE2's `kubelet.conf.d`): kube-bench's audit
    /// command fails and the check is FAIL (WARN if unscored) whatever the flags say.
    Unreadable(String),
    /// Neither JSON nor YAML (a systemd drop-in among the candidates, say): every `path` item
    /// fails, even `set: false` ones.
    Unparseable(String),
    Json(ConfigValue),
    Yaml(ConfigValue),
}

/// The file kube-bench reads for `path` items.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigDoc {
    /// The resolved variable (`$kubeletconf`).
    pub path: String,
    pub content: ConfigContent,
}

/// Where an effective value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ValueSource {
    /// A command-line flag (which wins over every file).
    Flag { flag: String },
    /// The `--config` file.
    ConfigFile { path: String },
    /// A `--config-dir` drop-in, merged over the file.
    DropIn { path: String },
    /// Not set anywhere: the `KubeletConfiguration` default.
    Default,
    /// Not set and without a default.
    Unset,
}

impl std::fmt::Display for ValueSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueSource::Flag { flag } => write!(f, "flag {flag}"),
            ValueSource::ConfigFile { path } => write!(f, "{path}"),
            ValueSource::DropIn { path } => write!(f, "drop-in {path}"),
            ValueSource::Default => f.write_str("the default"),
            ValueSource::Unset => f.write_str("not set"),
        }
    }
}

/// The value a component really uses for one key, with where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectiveValue {
    /// The value as text (`true`, `0`, `Webhook`, `4h0m0s`); a list joined with `,`. `None`:
    /// no value even after defaults (an empty string counts as none).
    pub value: Option<String>,
    pub source: ValueSource,
}

/// Both readings of the kubelet's (or kube-proxy's) configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConfigFacts {
    /// The file kube-bench reads (`$kubeletconf` / `$proxykubeconfig`), as it parses it.
    pub kube_bench_file: Option<ConfigDoc>,
    /// The effective value per `KubeletConfiguration` key (`authentication.anonymous.enabled`,
    /// `featureGates.RotateKubeletServerCertificate`, `tlsCipherSuites`), under the
    /// component's rules: flags over drop-ins over the file over the defaults.
    pub effective: BTreeMap<String, EffectiveValue>,
    /// The component's own configuration file (`--config`), when it has one.
    pub config_path: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_walks() {
        assert_eq!(
            normalize_path("/etc/kubernetes/pki/"),
            "/etc/kubernetes/pki"
        );
        assert_eq!(normalize_path("//a///b"), "/a/b");
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path("rel/x/"), "rel/x");
        let f = FileFacts::new()
            .dir("/p", 0o755, "root", "root")
            .file("/p/a.crt", 0o644, "root", "root")
            .dir("/p/etcd", 0o755, "root", "root")
            .file("/p/etcd/ca.key", 0o600, "root", "root")
            .file("/p2/x", 0o600, "root", "root");
        let below: Vec<&String> = f.below("/p/").map(|(k, _)| k).collect();
        assert_eq!(below, ["/p/a.crt", "/p/etcd", "/p/etcd/ca.key"]);
        assert!(f.get("/p/").is_some_and(FileFact::is_dir));
        let l = FileFacts::new().symlink("/l", None);
        let fact = l.get("/l").expect("recorded");
        assert!(!fact.exists() && fact.is_symlink() && fact.resolved().is_none());
    }
}
