//! Find the running kubelet and every place its configuration comes from.
//!
//! Why from the running process: the configuration that matters is the one the kubelet runs
//! with, and only its command line says which `--config` and `--config-dir` it read (kube-bench
//! guesses from a list of candidates; kharden does not). The process is the newest one of the
//! node under `--root` whose `argv[0]` is named `kubelet` (`/proc`, as kube-bench's `ps`); its
//! command line is then matched word for word with what its unit's `ExecStart=` expands to now
//! ([`super::unit`]), which says which file each flag lives in. When they differ, the unit or an
//! environment file changed since the kubelet started (or a unit change awaits `systemctl
//! daemon-reload`): a restart would apply that change too, unjournaled, so kharden refuses
//! until it is applied or undone.
//!
//! Every path read from the node (the command line, the unit) is a host path, resolved under
//! `--root` ([`HostRoot`]) and never escaping it.

use super::unit::{self, Service, UnitError, Word};
use crate::assess::gather::follow;
use crate::assess::procs::{self, NodeProcess};
use crate::root::{HostRoot, RootError};
use kharden_kubelet_config::{effective, ConfigSource, Effective, Sources};
use kharden_manifest::Flags;
use std::path::PathBuf;

/// Why the kubelet's configuration cannot be changed (or read) here. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("no kubelet is running on this node (no process named kubelet in /proc{}): kharden changes a running kubelet's configuration and proves its restart; start it first", .root.as_deref().map(|r| format!(" belonging to --root {r}")).unwrap_or_default())]
    NotRunning { root: Option<String> },
    #[error(transparent)]
    Unit(#[from] UnitError),
    #[error("the running kubelet (pid {pid}) has another command line than its unit gives now: it runs `{running}`, {unit} expands to `{expanded}`. A restart would apply that difference too (an environment file edited since it started, or a unit change waiting for `systemctl daemon-reload`): restart it yourself first, or undo the change; nothing was changed")]
    Differs {
        pid: u32,
        running: String,
        expanded: String,
        unit: String,
    },
    #[error(transparent)]
    Root(#[from] RootError),
    #[error("{file}: {why}")]
    Read { file: String, why: String },
    #[error("{0}")]
    Refused(String),
}

/// A configuration file as read from the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The host path (`/var/lib/kubelet/config.yaml`).
    pub host: String,
    /// The path under the root, as the storage layer opens it (its last component not
    /// followed).
    pub path: PathBuf,
    pub contents: Vec<u8>,
}

/// One `--config-dir` drop-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropIn {
    /// Relative to the directory, `/`-separated (the kubelet's merge order is by this name).
    pub name: String,
    pub file: SourceFile,
}

/// The `KubeletConfiguration` sources a command line names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigSources {
    /// The `--config` file, when given (absent file: `contents` empty and `exists` false).
    pub config: Option<SourceFile>,
    /// `--config-dir`: its host path and path under the root.
    pub config_dir: Option<(String, PathBuf)>,
    /// Every file below `--config-dir` (drop-ins and others), in walk order.
    pub dropins: Vec<DropIn>,
}

impl ConfigSources {
    /// Read what `flags` name under `root`.
    pub fn read(root: &HostRoot, flags: &Flags) -> Result<ConfigSources, KubeletError> {
        let value = |name: &str| {
            flags
                .effective(name)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let read_file = |host: &str| -> Result<Option<SourceFile>, KubeletError> {
            let path = root.resolve(host)?;
            let real = follow(root, host).map_err(|why| KubeletError::Read {
                file: host.to_string(),
                why,
            })?;
            match std::fs::read(&real) {
                Ok(contents) => Ok(Some(SourceFile {
                    host: host.to_string(),
                    path,
                    contents,
                })),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(KubeletError::Read {
                    file: host.to_string(),
                    why: e.to_string(),
                }),
            }
        };
        let mut out = ConfigSources::default();
        if let Some(c) = value("config") {
            out.config = Some(read_file(&c)?.ok_or_else(|| KubeletError::Read {
                file: c.clone(),
                why: "the kubelet's --config names it and it does not exist (the kubelet cannot start like this)".into(),
            })?);
        }
        if let Some(d) = value("config-dir") {
            let dir = d.trim_end_matches('/').to_string();
            let real = follow(root, &dir).map_err(|why| KubeletError::Read {
                file: dir.clone(),
                why,
            })?;
            for name in dropin_names(&real) {
                if let Some(f) = read_file(&format!("{dir}/{name}"))? {
                    out.dropins.push(DropIn { name, file: f });
                }
            }
            out.config_dir = Some((dir.clone(), root.resolve(&dir)?));
        }
        Ok(out)
    }

    /// The kubelet's effective configuration from these sources and `flags`.
    pub fn effective(&self, flags: &Flags) -> Result<Effective, kharden_kubelet_config::Error> {
        let sources = Sources {
            config: self.config.as_ref().map(|c| ConfigSource {
                name: &c.host,
                bytes: &c.contents,
            }),
            dropins: self
                .dropins
                .iter()
                .map(|d| ConfigSource {
                    name: &d.name,
                    bytes: &d.file.contents,
                })
                .collect(),
            flags,
        };
        effective(&sources)
    }

    /// The drop-in named `name` (relative to the directory).
    pub fn dropin(&self, name: &str) -> Option<&DropIn> {
        self.dropins.iter().find(|d| d.name == name)
    }
}

/// The running kubelet and where its configuration comes from.
#[derive(Debug, Clone)]
pub struct Located {
    pub root: HostRoot,
    pub process: NodeProcess,
    pub service: Service,
    /// The running command line, each word with where it comes from (it matches what the
    /// unit expands to).
    pub words: Vec<Word>,
    pub sources: ConfigSources,
    /// `--kubeconfig` (host path), when given.
    pub kubeconfig: Option<String>,
    /// The Node's name, when it can be told (see [`node_name`]).
    pub node_name: Option<String>,
}

impl Located {
    /// The kubelet's own flags (after `argv[0]`).
    pub fn flags(&self) -> Flags {
        Flags::parse(self.process.argv.get(1..).unwrap_or_default())
    }

    /// The effective configuration the kubelet runs with.
    pub fn effective(&self) -> Result<Effective, KubeletError> {
        self.sources.effective(&self.flags()).map_err(|e| {
            KubeletError::Refused(format!(
                "the kubelet's configuration as found cannot be read: {e}"
            ))
        })
    }
}

/// The newest kubelet process of the node under `root` (`argv[0]` named `kubelet`).
pub fn running_kubelet(root: &HostRoot) -> Option<NodeProcess> {
    let all = procs::scan(&root.proc_dir());
    procs::newest(&all, root, "kubelet")
        .filter(|p| p.binary() == "kubelet")
        .cloned()
}

/// Read an environment file of the service under `root` (`Ok(None)`: absent).
pub fn read_env_file(root: &HostRoot, host: &str) -> Result<Option<Vec<u8>>, String> {
    let real = follow(root, host)?;
    match std::fs::read(&real) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// The command line `unit` gives the kubelet now, from the files on disk: what a restart
/// starts (the gate's expected argv).
pub fn expected_argv(root: &HostRoot, unit: &str) -> Result<Vec<String>, String> {
    let svc = unit::load(root, unit).map_err(|e| e.to_string())?;
    let words = svc
        .expand_with(&mut |h| read_env_file(root, h))
        .map_err(|e| e.to_string())?;
    Ok(words.into_iter().map(|w| w.text).collect())
}

/// The Node's name: `--hostname-override`, else the user of the kubelet's kubeconfig
/// (`system:node:NAME`), else `/etc/hostname` under the root, lower-cased as the kubelet does.
pub fn node_name(root: &HostRoot, flags: &Flags, kubeconfig: Option<&str>) -> Option<String> {
    if let Some(h) = flags
        .effective("hostname-override")
        .filter(|h| !h.is_empty())
    {
        return Some(h.trim().to_lowercase());
    }
    if let Some(k) = kubeconfig {
        if let Ok(cfg) = super::kubeconfig::Kubeconfig::read(root, k) {
            if let Some(n) = cfg
                .user_name
                .as_deref()
                .and_then(|u| u.strip_prefix("system:node:"))
            {
                return Some(n.to_string());
            }
        }
    }
    let hostname = follow(root, "/etc/hostname")
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())?;
    let h = hostname.trim().to_lowercase();
    (!h.is_empty()).then_some(h)
}

/// Find the kubelet of the node under `root`, run by `unit`, and read its sources.
pub fn locate(root: &HostRoot, unit: &str) -> Result<Located, KubeletError> {
    let process = running_kubelet(root).ok_or_else(|| KubeletError::NotRunning {
        root: (!root.is_system()).then(|| root.root().display().to_string()),
    })?;
    let service = unit::load(root, unit)?;
    let words = service.expand_with(&mut |h| read_env_file(root, h))?;
    let expanded: Vec<String> = words.iter().map(|w| w.text.clone()).collect();
    if !kharden_gate::argv_matches(&expanded, &process.argv) {
        return Err(KubeletError::Differs {
            pid: process.pid,
            running: process.argv.join(" "),
            expanded: expanded.join(" "),
            unit: unit.to_string(),
        });
    }
    let flags = Flags::parse(process.argv.get(1..).unwrap_or_default());
    let sources = ConfigSources::read(root, &flags)?;
    let kubeconfig = flags
        .effective("kubeconfig")
        .filter(|k| !k.is_empty())
        .map(str::to_string);
    let node_name = node_name(root, &flags, kubeconfig.as_deref());
    Ok(Located {
        root: root.clone(),
        process,
        service,
        words,
        sources,
        kubeconfig,
        node_name,
    })
}

/// The kubelet's `--config-dir` drop-ins in the order it merges them, as paths relative to the
/// directory `real`: its `filepath.WalkDir` (names in byte order, depth first, a directory's
/// files where its name sorts, symbolic links not entered) keeping the files named `*.conf`
/// (it skips the others with a warning). The one reading of that order: the planner and the
/// audit both use it, so that they never disagree about which drop-in wins.
pub fn dropin_names(real: &std::path::Path) -> Vec<String> {
    fn walk(dir: &std::path::Path, rel: &str, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<(std::ffi::OsString, bool)> = rd
            .flatten()
            .map(|e| (e.file_name(), e.file_type().is_ok_and(|t| t.is_dir())))
            .collect();
        entries.sort();
        for (name, is_dir) in entries {
            let n = name.to_string_lossy();
            let here = if rel.is_empty() {
                n.to_string()
            } else {
                format!("{rel}/{n}")
            };
            if is_dir {
                walk(&dir.join(&name), &here, out);
            } else if std::path::Path::new(&name)
                .extension()
                .is_some_and(|e| e == "conf")
            {
                out.push(here);
            }
        }
    }
    let mut out = Vec::new();
    walk(real, "", &mut out);
    out
}

#[cfg(test)]
mod dropin_order_tests {
    #![allow(clippy::unwrap_used, clippy::disallowed_methods)]
    use super::dropin_names;

    /// The kubelet's order: a subdirectory's drop-ins where its name sorts (not after the
    /// files beside it), only `*.conf`, byte order ("Z" before "a").
    #[test]
    fn dropins_in_the_kubelets_walk_order() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        for f in [
            "a.conf",
            "b/x.conf",
            "b/y.txt",
            "c.conf",
            "README",
            "Z.conf",
            "b/c/z.conf",
            "a.conf.bak",
        ] {
            let path = p.join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "kind: KubeletConfiguration\n").unwrap();
        }
        assert_eq!(
            dropin_names(p),
            ["Z.conf", "a.conf", "b/c/z.conf", "b/x.conf", "c.conf"]
        );
        assert!(dropin_names(&p.join("absent")).is_empty());
    }
}
