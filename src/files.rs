//! The files of the node (CIS 1.1 and 4.1): the metadata changes that fix the failing file
//! checks, planned as one transaction, and the proof that no running component loses access.
//!
//! Why here and not in the catalog: the catalog knows what each check wants
//! ([`kharden_catalog::plan_file_fix`]: the bits to remove, never adding any, and the owner);
//! this module knows the node: which processes run, as whom, and which files they use. Before
//! anything changes, every running component that uses a changed file (named by its flags, by
//! its `--config` or `--kubeconfig` file, or below a hostPath mount of its static pod) is
//! checked with its own credentials (uid, gid and groups from `/proc/PID/status`): a change
//! that would take away a read it has today (or a write, for etcd's data directory, or the
//! search of a directory on the way) is refused with the component and the file named. The
//! processes that use the changed files are then what the transaction's gate keeps watching
//! ([`crate::gate::keep`]): a chmod restarts nothing, so the proof is that they stay the same
//! processes, healthy.
//!
//! Root (uid 0) is taken to read and write everything, as `CAP_DAC_OVERRIDE` lets it: the
//! static pods of kubeadm run as root. A component run as another user is checked bit by bit.

use crate::assess::gather::{node_facts, NodeScan};
use crate::assess::procs::NodeProcess;
use crate::assess::yaml::parse_yaml11;
use crate::assess::Unreadable;
use crate::durable::{FileMeta, Storage};
use crate::journal::Kept;
use crate::root::HostRoot;
use crate::txn::FileOp;
use crate::users::Names;
use kharden_catalog::audit::Audit;
use kharden_catalog::{evaluate_check, plan_file_fix, Benchmark, Check, ConfigValue, Status};
use kharden_manifest::Flags;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What a process needs of a file it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    Read,
    /// Read and write (a data directory).
    ReadWrite,
}

/// A running component and the files it uses (host paths).
#[derive(Debug, Clone)]
pub struct FileUser {
    pub component: &'static str,
    pub process: NodeProcess,
    /// Its static pod manifest (the real path), for the gate's probe.
    pub manifest: Option<PathBuf>,
    /// Files it names (flags, its config and kubeconfig files), with what it needs of each.
    pub named: BTreeMap<String, Need>,
    /// Directories mounted into its pod (hostPath): it may read anything below them.
    pub mounts: Vec<String>,
}

impl FileUser {
    /// Whether this component uses `host` (a file it names, a directory on the way to one, or
    /// something below one of its mounts).
    pub fn uses(&self, host: &str) -> bool {
        let under = |dir: &str, p: &str| {
            p == dir || p.starts_with(&format!("{}/", dir.trim_end_matches('/')))
        };
        self.named.keys().any(|n| under(host, n) || under(n, host))
            || self.mounts.iter().any(|m| under(m, host))
    }
}

/// Whether credentials (uid, gid, groups) may do `need` to a file with `meta`; `search`: the
/// file is a directory that is only traversed.
pub fn allowed(
    uid: u32,
    gid: u32,
    groups: &[u32],
    meta: FileMeta,
    need: Need,
    search: bool,
) -> bool {
    if uid == 0 {
        return true;
    }
    let bits = if uid == meta.uid {
        (meta.mode >> 6) & 7
    } else if gid == meta.gid || groups.contains(&meta.gid) {
        (meta.mode >> 3) & 7
    } else {
        meta.mode & 7
    };
    let want = if search {
        1
    } else {
        match need {
            Need::Read => 4,
            Need::ReadWrite => 6,
        }
    };
    bits & want == want
}

/// A YAML file as the audit reads it (YAML 1.1, the first document).
fn yaml(bytes: &[u8]) -> Option<ConfigValue> {
    parse_yaml11(std::str::from_utf8(bytes).ok()?).ok()
}

/// Absolute paths among a file's string values (a kubeconfig's certificates, a
/// KubeletConfiguration's CA and certificate files): every scalar that starts with `/`.
fn paths_in_yaml(bytes: &[u8]) -> Vec<String> {
    fn walk(v: &ConfigValue, out: &mut Vec<String>) {
        match v {
            ConfigValue::Str(s) if s.starts_with('/') => out.push(s.clone()),
            ConfigValue::List(items) => items.iter().for_each(|i| walk(i, out)),
            ConfigValue::Map(m) => m.iter().for_each(|(_, i)| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(v) = yaml(bytes) {
        walk(&v, &mut out);
    }
    out
}

/// The hostPath directories and files of a static pod manifest.
fn host_paths(manifest: &[u8]) -> Vec<String> {
    let volumes = yaml(manifest).and_then(|v| v.get("spec")?.get("volumes").cloned());
    match volumes {
        Some(ConfigValue::List(vols)) => vols
            .iter()
            .filter_map(|vol| match vol.get("hostPath")?.get("path")? {
                ConfigValue::Str(p) => Some(p.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Flags whose value is a directory the component writes into.
const WRITTEN_DIRS: &[&str] = &["data-dir", "wal-dir", "root-dir", "cert-dir"];

/// Every running component of the scan and the files it uses.
pub fn file_users(scan: &NodeScan, storage: &dyn Storage) -> Vec<FileUser> {
    let read = |host: &str| -> Option<Vec<u8>> {
        let real = scan.root.resolve(host).ok()?;
        storage.read(&real).ok().flatten().map(|s| s.contents)
    };
    let mut out = Vec::new();
    for (c, src) in &scan.components {
        let Some(process) = &src.process else {
            continue;
        };
        let flags = Flags::parse(&src.flags);
        let mut named: BTreeMap<String, Need> = BTreeMap::new();
        let mut follow_files = Vec::new();
        for item in flags.iter() {
            let Some(value) = item.value.as_str() else {
                continue;
            };
            for v in kharden_manifest::flags::list_items(value) {
                if !v.starts_with('/') {
                    continue;
                }
                let need = if WRITTEN_DIRS.contains(&item.name.as_str()) {
                    Need::ReadWrite
                } else {
                    Need::Read
                };
                let e = named.entry(v.to_string()).or_insert(need);
                *e = (*e).max(need);
                if matches!(
                    item.name.as_str(),
                    "kubeconfig"
                        | "config"
                        | "authentication-kubeconfig"
                        | "authorization-kubeconfig"
                        | "bootstrap-kubeconfig"
                ) {
                    follow_files.push(v.to_string());
                }
            }
        }
        for f in follow_files {
            if let Some(bytes) = read(&f) {
                for p in paths_in_yaml(&bytes) {
                    named.entry(p).or_insert(Need::Read);
                }
            }
        }
        let found = scan.manifest(*c);
        let mounts = found.map(|f| host_paths(&f.contents)).unwrap_or_default();
        out.push(FileUser {
            component: c.name(),
            process: process.clone(),
            manifest: found.map(|f| f.manifest.clone()),
            named,
            mounts,
        });
    }
    out
}

/// One metadata change the plan makes, and the controls that want it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaChange {
    /// The host path (as reports show it).
    pub host: String,
    /// The path under the root.
    pub path: PathBuf,
    pub before: FileMeta,
    pub after: FileMeta,
    pub directory: bool,
    pub controls: Vec<&'static str>,
}

/// A control and why it is not part of the plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Held {
    pub id: &'static str,
    pub reason: String,
    /// Left to a person by choice (a manual check, an account the node does not have), as
    /// opposed to refused (a component would lose access, a symlink, a file that vanished).
    pub manual: bool,
}

/// What fixing the file checks would do on this node.
#[derive(Debug, Clone, Default)]
pub struct FilesPlan {
    /// The failing file checks this plan fixes.
    pub controls: Vec<&'static str>,
    pub changes: Vec<MetaChange>,
    /// Checks that fail but are not fixed, and why (a component would lose access, a
    /// symlink, an account missing, a manual check).
    pub held: Vec<Held>,
    /// The file checks evaluated (passing or not).
    pub evaluated: usize,
    /// Checks that already pass.
    pub passing: Vec<&'static str>,
    pub unreadable: Vec<Unreadable>,
    /// The processes that use a changed file: the gate keeps watching them.
    pub keep: Vec<Kept>,
}

impl FilesPlan {
    /// The transaction's operations: one metadata change per file, refused at prepare if the
    /// file changed since it was read here.
    pub fn ops(&self) -> Vec<FileOp> {
        self.changes
            .iter()
            .map(|c| FileOp {
                expect_meta: Some(c.before),
                controls: c.controls.iter().map(|s| s.to_string()).collect(),
                ..FileOp::metadata(c.path.clone(), c.after)
            })
            .collect()
    }

    /// The plan restricted to some controls (bisection): their changes only, recombined.
    pub fn only(&self, controls: &[&'static str]) -> FilesPlan {
        let changes = self
            .changes
            .iter()
            .filter(|c| c.controls.iter().any(|id| controls.contains(id)))
            .cloned()
            .collect();
        FilesPlan {
            controls: self
                .controls
                .iter()
                .copied()
                .filter(|c| controls.contains(c))
                .collect(),
            changes,
            ..self.clone()
        }
    }
}

/// Whether a check is about files (its audit stats them).
pub fn is_file_check(c: &Check) -> bool {
    matches!(c.audit, Audit::File(_))
}

/// Plan the fix of every failing file check of `bench` that `selected` keeps, on the node
/// `scan` describes.
pub fn plan(
    bench: &Benchmark,
    scan: &NodeScan,
    storage: &dyn Storage,
    selected: &dyn Fn(&str) -> bool,
) -> FilesPlan {
    let names = Names::of_root(&scan.root, storage);
    let checks: Vec<&Check> = bench
        .checks
        .iter()
        .filter(|c| is_file_check(c) && selected(c.id))
        .collect();
    let (facts, unreadable) = node_facts(scan, storage, &checks);
    let mut plan = FilesPlan {
        evaluated: checks.len(),
        unreadable,
        ..FilesPlan::default()
    };
    // Path -> the change wanted so far.
    let mut wanted: BTreeMap<String, MetaChange> = BTreeMap::new();
    for c in &checks {
        let failing = match evaluate_check(c, &facts) {
            Ok(r) => r.status == Some(Status::Fail) || r.effective == Some(false),
            Err(missing) => {
                plan.held.push(Held {
                    id: c.id,
                    reason: format!("not evaluated: {missing}"),
                    manual: false,
                });
                continue;
            }
        };
        if !failing {
            plan.passing.push(c.id);
            continue;
        }
        let fp = match plan_file_fix(c, &facts) {
            Ok(p) => p,
            Err(missing) => {
                plan.held.push(Held {
                    id: c.id,
                    reason: format!("not planned: {missing}"),
                    manual: false,
                });
                continue;
            }
        };
        if let Some(why) = fp.manual {
            plan.held.push(Held {
                id: c.id,
                reason: why,
                manual: true,
            });
            continue;
        }
        if !fp.blocked.is_empty() {
            plan.held.push(Held {
                id: c.id,
                reason: fp
                    .blocked
                    .iter()
                    .map(|b| format!("{}: {}", b.path, b.why))
                    .collect::<Vec<_>>()
                    .join("; "),
                manual: false,
            });
            continue;
        }
        let mut mine = Vec::new();
        let mut refusal = None;
        for ch in &fp.changes {
            match change_of(&scan.root, storage, &names, ch) {
                Ok(m) => mine.push(m),
                Err(why) => {
                    refusal = Some(why);
                    break;
                }
            }
        }
        if let Some(why) = refusal {
            plan.held.push(Held {
                id: c.id,
                reason: why,
                manual: false,
            });
            continue;
        }
        if mine.is_empty() {
            continue;
        }
        for m in mine {
            match wanted.get_mut(&m.host) {
                Some(w) => {
                    // Two checks on one file: the stricter mode (both only remove bits), and
                    // an owner only one of them sets.
                    w.after.mode &= m.after.mode;
                    if (m.after.uid, m.after.gid) != (m.before.uid, m.before.gid) {
                        w.after.uid = m.after.uid;
                        w.after.gid = m.after.gid;
                    }
                    w.controls.push(c.id);
                }
                None => {
                    wanted.insert(
                        m.host.clone(),
                        MetaChange {
                            controls: vec![c.id],
                            ..m
                        },
                    );
                }
            }
        }
        plan.controls.push(c.id);
    }
    // No component may lose access: a control whose change would take one away is held.
    let users = file_users(scan, storage);
    let losses = access_losses(&users, &wanted);
    let lost_controls: BTreeSet<&'static str> = losses
        .iter()
        .flat_map(|(controls, _)| controls.iter().copied())
        .collect();
    for id in &lost_controls {
        let why: Vec<&str> = losses
            .iter()
            .filter(|(cs, _)| cs.contains(id))
            .map(|(_, w)| w.as_str())
            .collect();
        plan.held.push(Held {
            id,
            reason: why.join("; "),
            manual: false,
        });
    }
    // A control that shares a file with a held one is held too: the file's change is one
    // (the stricter mode of both), and half of it would satisfy neither.
    let mut held: BTreeSet<&'static str> = lost_controls;
    loop {
        let mut more = Vec::new();
        for m in wanted.values() {
            if let Some(h) = m.controls.iter().find(|c| held.contains(*c)) {
                for c in &m.controls {
                    if !held.contains(c) && !more.iter().any(|(x, _)| x == c) {
                        more.push((*c, format!("shares {} with {h}, which is held", m.host)));
                    }
                }
            }
        }
        if more.is_empty() {
            break;
        }
        for (id, reason) in more {
            held.insert(id);
            plan.held.push(Held {
                id,
                reason,
                manual: false,
            });
        }
    }
    plan.controls.retain(|c| !held.contains(c));
    plan.changes = wanted
        .into_values()
        .filter(|m| !m.controls.iter().any(|c| held.contains(c)))
        .collect();
    plan.keep = users
        .iter()
        .filter(|u| plan.changes.iter().any(|c| u.uses(&c.host)))
        .map(|u| Kept {
            component: u.component.to_string(),
            pid: u.process.pid,
            start_ticks: u.process.start_ticks,
            manifest: u.manifest.as_ref().map(|m| m.display().to_string()),
        })
        .collect();
    plan
}

/// The metadata change of one catalog change, on the real file (the root resolved, the file
/// itself never followed).
fn change_of(
    root: &HostRoot,
    storage: &dyn Storage,
    names: &Names,
    ch: &kharden_catalog::FileChange,
) -> Result<MetaChange, String> {
    let path = root
        .resolve(&ch.path)
        .map_err(|e| format!("{}: {e}", ch.path))?;
    let found = storage
        .inode(&path)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{}: gone since it was examined", ch.path))?;
    let mut after = found.meta;
    if let Some(m) = ch.new_mode {
        // Never loosen, whatever the catalog said: only bits the file has are kept.
        after.mode = found.meta.mode & m;
    }
    if let Some(o) = &ch.new_owner {
        let (Some(uid), Some(gid)) = (names.uid_of(o.user), names.gid_of(o.group)) else {
            return Err(format!("{}: {o} does not exist on this node", ch.path));
        };
        after.uid = uid;
        after.gid = gid;
    }
    Ok(MetaChange {
        host: ch.path.clone(),
        path,
        before: found.meta,
        after,
        directory: found.directory,
        controls: Vec::new(),
    })
}

/// For every component that would lose an access it has today: the controls responsible and
/// the reason, naming the component and the file.
fn access_losses(
    users: &[FileUser],
    wanted: &BTreeMap<String, MetaChange>,
) -> Vec<(Vec<&'static str>, String)> {
    let mut out = Vec::new();
    for u in users {
        let (Some(uid), Some(gid)) = (u.process.uid, u.process.gid) else {
            continue;
        };
        let groups = &u.process.groups;
        for (file, need) in &u.named {
            // The file itself, then every directory on the way to it that changes.
            let mut on_the_way: Vec<(&MetaChange, bool)> = Vec::new();
            if let Some(m) = wanted.get(file) {
                on_the_way.push((m, false));
            }
            let mut dir = Path::new(file).parent();
            while let Some(d) = dir {
                if let Some(m) = d.to_str().and_then(|d| wanted.get(d)) {
                    on_the_way.push((m, true));
                }
                dir = d.parent();
            }
            for (m, search) in on_the_way {
                let need = *need;
                // A directory it names (a data or certificate directory) is also searched.
                let can = |meta: FileMeta| {
                    allowed(uid, gid, groups, meta, need, search)
                        && (!m.directory || search || allowed(uid, gid, groups, meta, need, true))
                };
                if can(m.before) && !can(m.after) {
                    out.push((
                        m.controls.clone(),
                        format!(
                            "{} (pid {}, uid {uid}, gid {gid}) would lose {} {} {}: {} -> {}",
                            u.component,
                            u.process.pid,
                            match (search, need) {
                                (true, _) => "the search of",
                                (false, Need::Read) => "read access to",
                                (false, Need::ReadWrite) => "write access to",
                            },
                            if search { "directory" } else { "file" },
                            m.host,
                            m.before,
                            m.after
                        ),
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(mode: u32, uid: u32, gid: u32) -> FileMeta {
        FileMeta { mode, uid, gid }
    }

    #[test]
    fn access_by_owner_group_and_others() {
        let m = meta(0o640, 1000, 2000);
        assert!(
            allowed(0, 0, &[], meta(0o000, 5, 5), Need::ReadWrite, false),
            "root"
        );
        assert!(allowed(1000, 1, &[], m, Need::Read, false), "owner reads");
        assert!(
            allowed(1000, 1, &[], m, Need::ReadWrite, false),
            "owner writes"
        );
        assert!(allowed(7, 2000, &[], m, Need::Read, false), "group reads");
        assert!(
            !allowed(7, 2000, &[], m, Need::ReadWrite, false),
            "group does not write"
        );
        assert!(
            allowed(7, 1, &[2000], m, Need::Read, false),
            "supplementary group"
        );
        assert!(!allowed(7, 1, &[], m, Need::Read, false), "others");
        let d = meta(0o710, 0, 2000);
        assert!(allowed(7, 2000, &[], d, Need::Read, true), "group searches");
        assert!(!allowed(7, 3, &[], d, Need::Read, true), "others do not");
    }

    #[test]
    fn yaml_paths_and_host_paths() {
        let kubeconfig = b"apiVersion: v1\nusers:\n- name: a\n  user:\n    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem\n    client-key: /var/lib/kubelet/pki/kubelet-client-current.pem\nclusters:\n- cluster:\n    server: https://10.0.0.1:6443\n    certificate-authority-data: abc\n";
        let p = paths_in_yaml(kubeconfig);
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|x| x.starts_with("/var/lib/kubelet/pki")));
        let manifest = b"apiVersion: v1\nkind: Pod\nspec:\n  volumes:\n  - hostPath:\n      path: /etc/kubernetes/pki\n      type: DirectoryOrCreate\n    name: k8s-certs\n  - name: x\n    emptyDir: {}\n";
        assert_eq!(
            host_paths(manifest),
            vec!["/etc/kubernetes/pki".to_string()]
        );
    }

    fn user(uid: u32, named: &[(&str, Need)], mounts: &[&str]) -> FileUser {
        FileUser {
            component: "etcd",
            process: NodeProcess {
                pid: 10,
                argv: vec!["etcd".into()],
                start_ticks: 5,
                uid: Some(uid),
                gid: Some(uid),
                groups: vec![],
                cwd: None,
                proc_root: None,
            },
            manifest: None,
            named: named.iter().map(|(p, n)| (p.to_string(), *n)).collect(),
            mounts: mounts.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn change(
        host: &str,
        before: FileMeta,
        after: FileMeta,
        directory: bool,
    ) -> (String, MetaChange) {
        (
            host.to_string(),
            MetaChange {
                host: host.to_string(),
                path: PathBuf::from(host),
                before,
                after,
                directory,
                controls: vec!["1.1.12"],
            },
        )
    }

    #[test]
    fn a_change_that_takes_away_a_components_access_is_found() {
        // etcd runs as uid 998 and owns its data directory; 1.1.12 would give it to root.
        let u = user(
            998,
            &[("/var/lib/etcd", Need::ReadWrite)],
            &["/var/lib/etcd"],
        );
        let wanted: BTreeMap<_, _> = [change(
            "/var/lib/etcd",
            meta(0o700, 998, 998),
            meta(0o700, 0, 0),
            true,
        )]
        .into_iter()
        .collect();
        let losses = access_losses(std::slice::from_ref(&u), &wanted);
        assert_eq!(losses.len(), 1);
        assert!(
            losses[0].1.contains("etcd (pid 10, uid 998"),
            "{}",
            losses[0].1
        );
        assert!(losses[0].1.contains("/var/lib/etcd"));
        // Tightening the mode only (0755 -> 0700) keeps the owner's access.
        let wanted: BTreeMap<_, _> = [change(
            "/var/lib/etcd",
            meta(0o755, 998, 998),
            meta(0o700, 998, 998),
            true,
        )]
        .into_iter()
        .collect();
        assert!(access_losses(std::slice::from_ref(&u), &wanted).is_empty());
        // A directory on the way loses its search bit for others: a non-root reader of a file
        // below it loses the file.
        let reader = user(1000, &[("/etc/kubernetes/pki/ca.crt", Need::Read)], &[]);
        let wanted: BTreeMap<_, _> = [change(
            "/etc/kubernetes/pki",
            meta(0o755, 0, 0),
            meta(0o700, 0, 0),
            true,
        )]
        .into_iter()
        .collect();
        let l = access_losses(std::slice::from_ref(&reader), &wanted);
        assert!(
            l[0].1
                .contains("the search of directory /etc/kubernetes/pki"),
            "{l:?}"
        );
        assert!(reader.uses("/etc/kubernetes/pki"));
        assert!(u.uses("/var/lib/etcd/member/snap/db"));
        assert!(!u.uses("/var/lib/etcd2"));
    }
}
