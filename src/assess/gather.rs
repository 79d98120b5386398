//! The facts `kharden audit` gathers from the node under `--root`, for the catalog to read
//! ([`kharden_catalog::NodeFacts`]; see docs/cis-catalog.md, "Gathering the facts").
//!
//! Two steps: [`scan_node`] finds the components (static pod manifests, running processes,
//! independent of the benchmark: it also decides the targets and the Kubernetes version), and
//! [`node_facts`] gathers, for the checks of one benchmark, what they read:
//!
//! - each component's own flags: its running process's argv (as kube-bench's `ps`): the process
//!   that runs its static pod manifest's argv, else one that runs its binary (a pod not yet
//!   restarted since its manifest changed; the kubelet, kube-proxy); else (with
//!   `--source auto|manifest`) its manifest's argv;
//! - kube-bench's value of every config.yaml variable: the first candidate that exists under
//!   the root (`os.Stat`: symlinks followed, with the root as `/`), else the default;
//! - where the components' files really are, where kharden knows better than kube-bench's
//!   candidates: the manifests the kubelet loads, the kubelet's unit and every drop-in as systemd
//!   loads them, the kubelet's `--config` and `--config-dir` drop-ins;
//! - `lstat` of every path the file checks need (directories walked as `find` lists them,
//!   without following symlinks), owners named from the root's `/etc/passwd` and `/etc/group`
//!   (`UNKNOWN` as `stat` prints it);
//! - the file `$kubeletconf` (`$proxykubeconfig`) names, read as kube-bench reads it
//!   ([`super::yaml`]), and the kubelet's effective configuration ([`super::effective`]);
//! - the users and groups that exist.
//!
//! Paths in the facts are host paths (`/etc/kubernetes/pki`), as the catalog and the reports
//! show them; a path read from a simulated node's manifests that already starts with the root is
//! kept as it is (both name the same file).

use super::effective::{kubelet_effective, KubeletSources, SourceFile};
use super::procs::{newest, NodeProcess};
use super::yaml::kube_bench_content;
use super::{discover, Found, Source, SourcePolicy, Unreadable};
use crate::durable::{DurableError, Storage};
use crate::root::HostRoot;
use crate::users::Names;
use kharden_catalog::{
    file_requests, paths, Check, Component, ConfigContent, ConfigDoc, FileFact, FileFacts,
    FileKind, FileRole, Located, Meta, NodeFacts,
};
use kharden_manifest::Flags;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How many symlinks one lookup follows (the kernel's limit).
const MAX_LINKS: usize = 40;
/// How many entries one `find` walk records at most (a PKI tree has dozens).
const MAX_WALK: usize = 50_000;

/// Where a component's flags come from, and its process.
#[derive(Debug, Clone)]
pub struct ComponentSource {
    pub flags: Vec<String>,
    pub source: Source,
    pub process: Option<NodeProcess>,
}

/// The components found on the node.
#[derive(Debug, Clone)]
pub struct NodeScan {
    pub root: HostRoot,
    pub manifests_dir: PathBuf,
    pub policy: SourcePolicy,
    /// The static pod manifests of the control-plane components.
    pub found: Vec<Found>,
    pub unreadable: Vec<Unreadable>,
    /// Each component whose flags are known (running, or from its manifest).
    pub components: BTreeMap<Component, ComponentSource>,
    /// Every process read from `/proc` (empty with `--source manifest`).
    pub processes: Vec<NodeProcess>,
}

impl NodeScan {
    /// The running kubelet of this node.
    pub fn kubelet(&self) -> Option<&NodeProcess> {
        self.components
            .get(&Component::Kubelet)
            .and_then(|c| c.process.as_ref())
    }

    /// The kubelet's flags, when it runs.
    pub fn kubelet_flags(&self) -> Option<&[String]> {
        self.components
            .get(&Component::Kubelet)
            .map(|c| c.flags.as_slice())
    }

    /// The manifest of a control-plane component.
    pub fn manifest(&self, c: Component) -> Option<&Found> {
        self.found.iter().find(|f| f.component == c)
    }

    /// A host path as reports show it: under the root, the part after the root.
    pub fn host_path(&self, p: &Path) -> String {
        host_path(&self.root, p)
    }
}

/// `p` (a path under the root) as the host sees it.
pub fn host_path(root: &HostRoot, p: &Path) -> String {
    if root.is_system() {
        return p.display().to_string();
    }
    match p.strip_prefix(root.root()) {
        Ok(rel) => format!("/{}", rel.display()),
        Err(_) => p.display().to_string(),
    }
}

/// Find the components: the manifests of `manifests_dir` (a missing directory is a node without
/// static pods), their running processes, the kubelet and kube-proxy by their binaries.
pub fn scan_node(
    storage: &dyn Storage,
    root: &HostRoot,
    manifests_dir: &Path,
    policy: SourcePolicy,
    processes: Vec<NodeProcess>,
) -> Result<NodeScan, DurableError> {
    let infos: Vec<kharden_gate::ProcInfo> = processes.iter().map(NodeProcess::proc_info).collect();
    let (found, unreadable) = match storage.list(manifests_dir)? {
        None => (Vec::new(), Vec::new()),
        Some(_) => discover(storage, manifests_dir, Some(&infos))?,
    };
    let mut components = BTreeMap::new();
    for c in Component::CONTROL_PLANE {
        // A manifest whose argv no process runs (the kubelet has not restarted the pod since
        // the file changed): kube-bench's `ps` still sees the old process, found by its name.
        let stale = |f: &Found| {
            f.running.is_none()
                && policy != SourcePolicy::Manifest
                && newest(&processes, root, c.name()).is_some()
        };
        let from_manifest = found
            .iter()
            .find(|f| f.component == c)
            .filter(|f| !stale(f))
            .and_then(|f| {
                f.flags(policy).map(|(flags, source)| {
                    let process = f
                        .running
                        .as_ref()
                        .and_then(|(pid, _)| processes.iter().find(|p| p.pid == *pid).cloned());
                    let process = match source {
                        Source::Manifest { .. } => None,
                        _ => process,
                    };
                    ComponentSource {
                        flags,
                        source,
                        process,
                    }
                })
            });
        let by_name = || {
            if policy == SourcePolicy::Manifest {
                return None;
            }
            newest(&processes, root, c.name()).and_then(|p| {
                Some(ComponentSource {
                    flags: p.own_flags(c.name())?,
                    source: Source::Process {
                        pid: p.pid,
                        binary: p.binary().to_string(),
                    },
                    process: Some(p.clone()),
                })
            })
        };
        if let Some(s) = from_manifest.or_else(by_name) {
            components.insert(c, s);
        }
    }
    if policy != SourcePolicy::Manifest {
        for c in [Component::Kubelet, Component::KubeProxy] {
            if let Some(p) = newest(&processes, root, c.name()) {
                if let Some(flags) = p.own_flags(c.name()) {
                    components.insert(
                        c,
                        ComponentSource {
                            flags,
                            source: Source::Process {
                                pid: p.pid,
                                binary: p.binary().to_string(),
                            },
                            process: Some(p.clone()),
                        },
                    );
                }
            }
        }
    }
    Ok(NodeScan {
        root: root.clone(),
        manifests_dir: manifests_dir.to_path_buf(),
        policy,
        found,
        unreadable,
        components,
        processes,
    })
}

/// Reads of the node's files under the root.
pub struct NodeFiles<'a> {
    pub root: &'a HostRoot,
    pub storage: &'a dyn Storage,
    pub names: Names,
    /// Paths that could not be examined, with why.
    pub problems: Vec<Unreadable>,
}

impl<'a> NodeFiles<'a> {
    pub fn new(root: &'a HostRoot, storage: &'a dyn Storage) -> NodeFiles<'a> {
        let mut me = NodeFiles {
            root,
            storage,
            names: Names::default(),
            problems: Vec::new(),
        };
        let passwd = me.read_text("/etc/passwd");
        let group = me.read_text("/etc/group");
        me.names = Names::parse(&passwd, &group);
        me
    }

    fn read_text(&mut self, host: &str) -> String {
        match self.read(host) {
            Ok(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
            Ok(None) => String::new(),
            Err(why) => {
                self.problems.push(Unreadable {
                    path: host.to_string(),
                    why,
                });
                String::new()
            }
        }
    }

    /// `host` with every symlink followed under the root ([`follow`]).
    pub fn follow(&self, host: &str) -> Result<PathBuf, String> {
        follow(self.root, host)
    }

    /// A file's contents through the storage layer, symlinks followed under the root
    /// (`cat`): `Ok(None)` when it does not exist.
    pub fn read(&self, host: &str) -> Result<Option<Vec<u8>>, String> {
        let real = self.follow(host)?;
        match self.storage.read(&real) {
            Ok(s) => Ok(s.map(|s| s.contents)),
            Err(DurableError::NotRegular { .. }) if real.is_dir() => {
                Err(format!("cat: {host}: Is a directory"))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    fn meta(&self, md: &std::fs::Metadata) -> Meta {
        let ft = md.file_type();
        let kind = if ft.is_symlink() {
            FileKind::Symlink
        } else if ft.is_dir() {
            FileKind::Dir
        } else if ft.is_file() {
            FileKind::File
        } else {
            FileKind::Other
        };
        Meta {
            kind,
            mode: md.mode() & 0o7777,
            user: self.names.user(md.uid()),
            group: self.names.group(md.gid()),
        }
    }

    /// `lstat` of one host path, and `stat` of a symlink's target.
    pub fn fact(&mut self, host: &str) -> FileFact {
        let real = match self.root.resolve(host) {
            Ok(p) => p,
            Err(e) => {
                self.problems.push(Unreadable {
                    path: host.to_string(),
                    why: e.to_string(),
                });
                return FileFact::absent();
            }
        };
        match std::fs::symlink_metadata(&real) {
            Ok(md) => {
                let entry = self.meta(&md);
                let target = if entry.kind == FileKind::Symlink {
                    self.follow(host)
                        .ok()
                        .and_then(|t| std::fs::symlink_metadata(t).ok())
                        .filter(|m| !m.file_type().is_symlink())
                        .map(|m| self.meta(&m))
                } else {
                    None
                };
                FileFact {
                    entry: Some(entry),
                    target,
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileFact::absent(),
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => FileFact::absent(),
            Err(e) => {
                self.problems.push(Unreadable {
                    path: host.to_string(),
                    why: e.to_string(),
                });
                FileFact::absent()
            }
        }
    }

    /// `test -e` (symlinks followed).
    pub fn exists(&mut self, host: &str) -> bool {
        self.fact(host).exists()
    }

    /// Record `host` and, for a directory (not a symlink to one), everything below it, as
    /// `find` lists it.
    pub fn record(&mut self, files: &mut FileFacts, host: &str, walk: bool) {
        let f = self.fact(host);
        let is_dir = f.entry.as_ref().is_some_and(|m| m.kind == FileKind::Dir);
        files.insert(host, f);
        if !(walk && is_dir) {
            return;
        }
        let mut todo = vec![host.trim_end_matches('/').to_string()];
        let mut n = 0;
        while let Some(dir) = todo.pop() {
            let Ok(real) = self.root.resolve(&dir) else {
                continue;
            };
            let mut names: Vec<String> = match std::fs::read_dir(&real) {
                Ok(rd) => rd
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect(),
                Err(e) => {
                    self.problems.push(Unreadable {
                        path: dir.clone(),
                        why: e.to_string(),
                    });
                    continue;
                }
            };
            names.sort();
            for name in names {
                n += 1;
                if n > MAX_WALK {
                    self.problems.push(Unreadable {
                        path: host.to_string(),
                        why: format!(
                            "more than {MAX_WALK} entries below it; the rest is not listed"
                        ),
                    });
                    return;
                }
                let child = format!("{dir}/{name}");
                let f = self.fact(&child);
                if f.entry.as_ref().is_some_and(|m| m.kind == FileKind::Dir) {
                    todo.push(child.clone());
                }
                files.insert(&child, f);
            }
        }
    }
}

/// `host` with every symlink followed, the root as `/`: the real path (which may not exist).
/// `Err`: a link loop, or a path that escapes the root.
pub fn follow(root: &HostRoot, host: &str) -> Result<PathBuf, String> {
    let mut cur = root.resolve(host).map_err(|e| e.to_string())?;
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&cur) {
            Ok(md) if md.file_type().is_symlink() => {
                let target = std::fs::read_link(&cur).map_err(|e| e.to_string())?;
                let next = if target.is_absolute() {
                    target
                } else {
                    cur.parent().unwrap_or(Path::new("/")).join(target)
                };
                cur = root.resolve(&next).map_err(|e| e.to_string())?;
            }
            _ => return Ok(cur),
        }
    }
    Err(format!("{host}: too many levels of symbolic links"))
}

/// The unit directories systemd loads `kubelet.service` from, in its order of precedence.
pub const UNIT_DIRS: [&str; 4] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// The kubelet's unit file and drop-ins as systemd loads them: the unit from the first
/// directory that has one, every `*.conf` of every `kubelet.service.d` (a name in a directory
/// of higher precedence masks the same name below it). Paths that are the same file through a
/// link (`/lib` -> `/usr/lib`) are listed once.
pub fn kubelet_unit_files(files: &mut NodeFiles<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    for d in UNIT_DIRS {
        let unit = format!("{d}/kubelet.service");
        if files.fact(&unit).entry.is_some() {
            if let Ok(real) = files.root.resolve(&unit) {
                seen.insert(real);
            }
            out.push(unit);
            break;
        }
    }
    let mut names: BTreeSet<String> = BTreeSet::new();
    for d in UNIT_DIRS {
        let dir = format!("{d}/kubelet.service.d");
        let Ok(real) = files.root.resolve(&dir) else {
            continue;
        };
        let Ok(rd) = std::fs::read_dir(&real) else {
            continue;
        };
        let mut here: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".conf"))
            .collect();
        here.sort();
        for n in here {
            let p = format!("{dir}/{n}");
            let real = files.root.resolve(&p).unwrap_or_default();
            if names.contains(&n) || !seen.insert(real) {
                continue;
            }
            names.insert(n);
            out.push(p);
        }
    }
    out
}

/// The kubelet's `--config-dir` drop-ins, in the order the kubelet merges them
/// ([`crate::kubelet::locate::dropin_names`]).
fn config_dir_files(files: &NodeFiles<'_>, dir: &str) -> Vec<String> {
    let Ok(real) = files.root.resolve(dir) else {
        return Vec::new();
    };
    crate::kubelet::locate::dropin_names(&real)
        .into_iter()
        .map(|n| format!("{}/{n}", dir.trim_end_matches('/')))
        .collect()
}

/// The manifest role of a control-plane component.
fn manifest_role(c: Component) -> Option<FileRole> {
    match c {
        Component::ApiServer => Some(FileRole::ApiServerManifest),
        Component::ControllerManager => Some(FileRole::ControllerManagerManifest),
        Component::Scheduler => Some(FileRole::SchedulerManifest),
        Component::Etcd => Some(FileRole::EtcdManifest),
        _ => None,
    }
}

/// Everything `checks` read, gathered from the node. Paths that could not be examined are
/// returned with why (they count as absent).
pub fn node_facts(
    scan: &NodeScan,
    storage: &dyn Storage,
    checks: &[&Check],
) -> (NodeFacts, Vec<Unreadable>) {
    let mut files = NodeFiles::new(&scan.root, storage);
    let mut facts = NodeFacts {
        processes: scan
            .components
            .iter()
            .map(|(c, s)| (*c, s.flags.clone()))
            .collect(),
        ..NodeFacts::default()
    };
    facts.paths = paths::resolve_for(checks.iter().copied(), |p| files.exists(p));

    // Where the files really are.
    for f in &scan.found {
        if let Some(role) = manifest_role(f.component) {
            facts.located.insert(
                role,
                Located {
                    paths: vec![scan.host_path(&f.manifest)],
                    provenance: format!(
                        "the static pod manifest the kubelet loads from {}",
                        scan.host_path(&scan.manifests_dir)
                    ),
                },
            );
        }
    }
    let unit = kubelet_unit_files(&mut files);
    if !unit.is_empty() {
        facts.located.insert(
            FileRole::KubeletUnit,
            Located {
                paths: unit,
                provenance: "the kubelet's unit and every drop-in, as systemd loads them from \
                             /etc, /run and /usr/lib"
                    .into(),
            },
        );
    }
    let kubelet_flags = scan.kubelet_flags().map(Flags::parse);
    let flag = |name: &str| {
        kubelet_flags
            .as_ref()
            .and_then(|f| f.effective(name))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let config = flag("config");
    let config_dir = flag("config-dir");
    let drop_ins = config_dir
        .as_deref()
        .map(|d| config_dir_files(&files, d))
        .unwrap_or_default();
    facts.kubelet.config_path = config.clone();
    if config.is_some() || !drop_ins.is_empty() {
        facts.located.insert(
            FileRole::KubeletConfig,
            Located {
                paths: config
                    .iter()
                    .cloned()
                    .chain(drop_ins.iter().cloned())
                    .collect(),
                provenance: if drop_ins.is_empty() {
                    "the kubelet's --config".into()
                } else {
                    "the kubelet's --config and its --config-dir drop-ins".into()
                },
            },
        );
    }

    // The kubelet's effective configuration (flags over drop-ins over the file over defaults).
    if let Some(flags) = scan.kubelet_flags() {
        let read = |p: &String| {
            files.read(p).ok().flatten().map(|contents| SourceFile {
                path: p.clone(),
                contents,
            })
        };
        let sources = KubeletSources {
            flags: flags.to_vec(),
            config: config.as_ref().and_then(read),
            drop_ins: drop_ins.iter().filter_map(read).collect(),
        };
        match kubelet_effective(&sources) {
            Ok(m) => facts.kubelet.effective = m,
            Err(why) => files.problems.push(Unreadable {
                path: config
                    .clone()
                    .unwrap_or_else(|| "the kubelet's flags".into()),
                why: format!("the kubelet's effective configuration cannot be computed: {why}"),
            }),
        }
    }

    // kube-bench's reading of `$kubeletconf` and `$proxykubeconfig`.
    let doc = |files: &NodeFiles<'_>, var: &str| -> Option<ConfigDoc> {
        let path = facts.paths.get(var)?.path.clone();
        let content = match files.read(&path) {
            Ok(None) => ConfigContent::Missing,
            Ok(Some(bytes)) => kube_bench_content(&bytes),
            Err(e) => ConfigContent::Unreadable(e),
        };
        Some(ConfigDoc { path, content })
    };
    facts.kubelet.kube_bench_file = doc(&files, "kubeletconf");
    facts.proxy.kube_bench_file = doc(&files, "proxykubeconfig");

    // `lstat` of every file the checks need.
    let mut stat = FileFacts::new();
    for r in file_requests(checks.iter().copied(), &facts) {
        files.record(&mut stat, &r.path, r.walk);
    }
    facts.files = stat;
    facts.accounts = files.names.accounts();
    (facts, files.problems)
}
