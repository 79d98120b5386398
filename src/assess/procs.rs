//! The node's processes, from `/proc`: argv (as kube-bench's `ps` sees it), credentials (uid,
//! gid and supplementary groups from `/proc/PID/status`, for the access checks of file fixes),
//! and where each process lives (its root and working directory), to tell the node under
//! `--root` from other nodes simulated on the same machine.
//!
//! Which processes are the node's (`--root R`):
//! - `R` is `/`: every process.
//! - otherwise, a process whose root directory or working directory is `R` or below it (a
//!   chroot, a simulated node); and the host's own processes as a container with the host's
//!   PID namespace and the host mounted at `R` sees them: root and working directory both `/`.
//!   A process in another container (its own root) is found only through its static pod
//!   manifest (exact argv), never by its binary's name.

use crate::root::HostRoot;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One process of the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeProcess {
    pub pid: u32,
    pub argv: Vec<String>,
    /// Start time in clock ticks since boot (the newest of two matching processes wins).
    pub start_ticks: u64,
    /// Effective uid and gid, and the supplementary groups (`None`: `status` unreadable).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub groups: Vec<u32>,
    /// `/proc/PID/cwd` and `/proc/PID/root` as read from here (`None`: not readable).
    #[serde(skip)]
    pub cwd: Option<PathBuf>,
    #[serde(skip)]
    pub proc_root: Option<PathBuf>,
}

impl NodeProcess {
    /// The basename of `argv[0]`.
    pub fn binary(&self) -> &str {
        let a0 = self.argv.first().map(String::as_str).unwrap_or("");
        a0.rsplit('/').next().unwrap_or(a0)
    }

    /// The index of the first of the process's own flags when its binary (or `hyperkube
    /// NAME`) is `name`: `None` when the process is not that binary.
    pub fn flags_start(&self, name: &str) -> Option<usize> {
        if self.binary() == name {
            return Some(1);
        }
        let short = name.strip_prefix("kube-").unwrap_or(name);
        if self.binary() == "hyperkube" {
            if let Some(sub) = self.argv.get(1) {
                if sub == name || sub == short {
                    return Some(2);
                }
            }
        }
        None
    }

    /// The process's own flags when it runs `name`.
    pub fn own_flags(&self, name: &str) -> Option<Vec<String>> {
        self.flags_start(name)
            .map(|i| self.argv.get(i..).unwrap_or_default().to_vec())
    }

    /// Whether the process belongs to the node under `root` (see the module docs).
    pub fn belongs_to(&self, root: &HostRoot) -> bool {
        if root.is_system() {
            return true;
        }
        let under = |p: &Option<PathBuf>| p.as_deref().is_some_and(|p| p.starts_with(root.root()));
        if under(&self.cwd) || under(&self.proc_root) {
            return true;
        }
        let slash = |p: &Option<PathBuf>| p.as_deref().is_none_or(|p| p == Path::new("/"));
        slash(&self.cwd) && slash(&self.proc_root)
    }

    /// As the gate crate describes a process (for the manifest discovery).
    pub fn proc_info(&self) -> kharden_gate::ProcInfo {
        kharden_gate::ProcInfo {
            pid: self.pid,
            argv: self.argv.clone(),
            start_ticks: self.start_ticks,
            // Not used by the discovery (the newest process wins by its ticks).
            started_at: std::time::UNIX_EPOCH,
        }
    }
}

/// The numbers of a `status` line (`Uid:\t0\t0\t0\t0`).
fn status_numbers(status: &str, key: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// One process, or `None` when it vanished or is a kernel thread or a zombie.
pub fn read_process(proc_dir: &Path, pid: u32) -> Option<NodeProcess> {
    let dir = proc_dir.join(pid.to_string());
    let argv = kharden_gate::restart::split_cmdline(&std::fs::read(dir.join("cmdline")).ok()?);
    if argv.is_empty() {
        return None;
    }
    let start_ticks = std::fs::read_to_string(dir.join("stat"))
        .ok()
        .and_then(|s| kharden_gate::restart::parse_stat_starttime(&s))
        .unwrap_or(0);
    let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
    // Real, effective, saved, filesystem: the effective ids decide access.
    let uid = status_numbers(&status, "Uid:").get(1).copied();
    let gid = status_numbers(&status, "Gid:").get(1).copied();
    Some(NodeProcess {
        pid,
        argv,
        start_ticks,
        uid,
        gid,
        groups: status_numbers(&status, "Groups:"),
        cwd: std::fs::read_link(dir.join("cwd")).ok(),
        proc_root: std::fs::read_link(dir.join("root")).ok(),
    })
}

/// Every readable process of `proc_dir` (the running kernel's `/proc`), by pid.
pub fn scan(proc_dir: &Path) -> Vec<NodeProcess> {
    let Ok(rd) = std::fs::read_dir(proc_dir) else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut out: Vec<NodeProcess> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter_map(|pid| read_process(proc_dir, pid))
        .collect();
    out.sort_by_key(|p| p.pid);
    out
}

/// The newest process of the node under `root` that runs `name` (by its binary's name).
pub fn newest<'a>(
    procs: &'a [NodeProcess],
    root: &HostRoot,
    name: &str,
) -> Option<&'a NodeProcess> {
    procs
        .iter()
        .filter(|p| p.flags_start(name).is_some() && p.belongs_to(root))
        .max_by_key(|p| (p.start_ticks, p.pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(argv: &[&str], cwd: &str, root: &str) -> NodeProcess {
        NodeProcess {
            pid: 1,
            argv: argv.iter().map(|s| s.to_string()).collect(),
            start_ticks: 0,
            uid: Some(0),
            gid: Some(0),
            groups: vec![],
            cwd: Some(cwd.into()),
            proc_root: Some(root.into()),
        }
    }

    #[test]
    fn binaries_flags_and_the_node_a_process_belongs_to() {
        let k = p(&["/usr/bin/kubelet", "--config=/c"], "/", "/");
        assert_eq!(
            k.own_flags("kubelet"),
            Some(vec!["--config=/c".to_string()])
        );
        let h = p(&["hyperkube", "kubelet", "--v=2"], "/", "/");
        assert_eq!(h.own_flags("kubelet"), Some(vec!["--v=2".to_string()]));
        let a = p(&["hyperkube", "apiserver", "--v=2"], "/", "/");
        assert_eq!(a.flags_start("kube-apiserver"), Some(2));
        assert_eq!(k.flags_start("kube-proxy"), None);
        let d = tempfile_dir();
        let root = HostRoot::new(Some(&d)).unwrap();
        let d = root.root().to_path_buf();
        let here = p(&["kubelet"], d.join("x").to_str().unwrap(), "/");
        let host = p(&["kubelet"], "/", "/");
        let other = p(&["kubelet"], "/tmp/another-node", "/");
        let container = p(&["kube-proxy"], "/", "/run/containerd/x/rootfs");
        assert!(here.belongs_to(&root));
        assert!(host.belongs_to(&root));
        assert!(!other.belongs_to(&root));
        assert!(!container.belongs_to(&root));
        assert!(container.belongs_to(&HostRoot::system()));
        let _ = std::fs::remove_dir_all(&d);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("kharden-procs-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn reads_this_process() {
        let me = read_process(Path::new("/proc"), std::process::id()).unwrap();
        assert!(!me.argv.is_empty());
        assert_eq!(me.uid, Some(nix::unistd::geteuid().as_raw()));
        assert!(me.cwd.is_some());
    }
}
