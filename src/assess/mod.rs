//! Assess a node against a CIS benchmark (`kharden audit`), and find what `harden` can fix:
//! the glue between the catalog (checks as data), the node's files and manifests, and the
//! running processes.
//!
//! (Named "assess" so that "audit" keeps one meaning inside the library: the check of the
//! running process after a transaction's gate. The command is still `kharden audit`.)
//!
//! Two layers:
//! - this module: the control-plane static pods and their flag checks ([`discover`],
//!   [`assess`]), which `harden` plans its manifest transactions on. A component is evaluated on
//!   its running process's argv when one is found in `/proc` (what kube-bench reads with `ps`),
//!   else on its manifest; every result says which.
//! - the whole benchmark, every check of every target ([`report::audit`]): the node scanned
//!   ([`gather::scan_node`]), the benchmark chosen from the node's Kubernetes version
//!   ([`version`]), the targets from what runs and exists ([`targets`]), the facts gathered
//!   ([`gather::node_facts`]) and read by `kharden_catalog::evaluate_check`. The report renders
//!   as text, JSON, JUnit, kube-bench's JSON ([`kube_bench_json`]) and Prometheus metrics
//!   ([`metrics`]).

pub mod effective;
pub mod gather;
pub mod kube_bench_json;
pub mod metrics;
pub mod procs;
pub mod report;
pub mod targets;
pub mod version;
pub mod yaml;

use crate::durable::Storage;
use kharden_catalog::{evaluate, Benchmark, Component, Control, Evaluation, Status};
use kharden_manifest::PodInfo;
use std::path::{Path, PathBuf};

/// Where a component's argv came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Source {
    Manifest {
        path: String,
    },
    Running {
        pid: u32,
        manifest: String,
    },
    /// A running process found by its binary's name (no manifest: the kubelet, kube-proxy, a
    /// component not run as a static pod).
    Process {
        pid: u32,
        binary: String,
    },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Manifest { path } => write!(f, "manifest {path}"),
            Source::Running { pid, .. } => write!(f, "running process {pid}"),
            Source::Process { pid, binary } => write!(f, "running process {pid} ({binary})"),
        }
    }
}

/// Which argv to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourcePolicy {
    /// The running process when found, else the manifest.
    Auto,
    Manifest,
    Running,
}

/// A control-plane component found on the node.
#[derive(Debug, Clone)]
pub struct Found {
    pub component: Component,
    pub manifest: PathBuf,
    pub contents: Vec<u8>,
    pub info: PodInfo,
    /// The running process, when one with this manifest's argv (or the component's binary)
    /// is in `/proc`.
    pub running: Option<(u32, Vec<String>)>,
}

impl Found {
    /// The component's own flags under `policy`, and where they came from. `None` when the
    /// policy asks for a running process and there is none.
    pub fn flags(&self, policy: SourcePolicy) -> Option<(Vec<String>, Source)> {
        let manifest = self.manifest.display().to_string();
        let from_manifest = || {
            (
                self.info
                    .argv
                    .get(self.info.flags_start..)
                    .unwrap_or_default()
                    .to_vec(),
                Source::Manifest {
                    path: manifest.clone(),
                },
            )
        };
        let from_running = || {
            self.running.as_ref().map(|(pid, argv)| {
                // The running argv is the manifest's when the restart proof matched; else find
                // the binary and take what follows it.
                let start = if *argv == self.info.argv {
                    self.info.flags_start
                } else {
                    argv.iter()
                        .position(|a| a.rsplit('/').next() == Some(self.component.name()))
                        .map(|i| i + 1)
                        .unwrap_or(1)
                };
                (
                    argv.get(start..).unwrap_or_default().to_vec(),
                    Source::Running {
                        pid: *pid,
                        manifest: manifest.clone(),
                    },
                )
            })
        };
        match policy {
            SourcePolicy::Manifest => Some(from_manifest()),
            SourcePolicy::Running => from_running(),
            SourcePolicy::Auto => from_running().or_else(|| Some(from_manifest())),
        }
    }
}

/// A manifest that could not be read as a component's pod.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Unreadable {
    pub path: String,
    pub why: String,
}

/// Every static pod manifest of `dir` (kubelet's rules: every non-dot regular file), with its
/// component, read through `storage`. The first manifest of a component wins; later ones are
/// reported. With `processes` (from `/proc`), each component's running process is found by
/// its argv.
pub fn discover(
    storage: &dyn Storage,
    dir: &Path,
    processes: Option<&[kharden_gate::ProcInfo]>,
) -> Result<(Vec<Found>, Vec<Unreadable>), crate::durable::DurableError> {
    let names: Vec<PathBuf> = storage
        .list(dir)?
        .ok_or_else(|| {
            crate::durable::DurableError::io(
                dir,
                "list directory",
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })?
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .map(|n| dir.join(n))
        .collect();
    let processes = processes.unwrap_or_default();
    let mut found: Vec<Found> = Vec::new();
    let mut bad = Vec::new();
    for path in names {
        let contents = match storage.read(&path) {
            Ok(Some(s)) => s.contents,
            Ok(None) => continue,
            Err(crate::durable::DurableError::NotRegular { .. }) => continue,
            Err(e) => {
                bad.push(Unreadable {
                    path: path.display().to_string(),
                    why: e.to_string(),
                });
                continue;
            }
        };
        let info = match kharden_manifest::inspect(&contents, None) {
            Ok(i) => i,
            Err(e) => {
                bad.push(Unreadable {
                    path: path.display().to_string(),
                    why: e.to_string(),
                });
                continue;
            }
        };
        let Some(component) = info.component.as_deref().and_then(Component::from_name) else {
            continue;
        };
        if found.iter().any(|f| f.component == component) {
            bad.push(Unreadable {
                path: path.display().to_string(),
                why: format!("a second manifest for {component}; the first one is used"),
            });
            continue;
        }
        let running = processes
            .iter()
            .filter(|p| kharden_gate::argv_matches(&info.argv, &p.argv))
            .max_by_key(|p| p.start_ticks)
            .map(|p| (p.pid, p.argv.clone()));
        found.push(Found {
            component,
            manifest: path,
            contents,
            info,
            running,
        });
    }
    Ok((found, bad))
}

/// One control's result on this node.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ControlResult {
    pub id: &'static str,
    pub title: &'static str,
    pub component: Component,
    pub scored: bool,
    pub status: Status,
    pub evaluation: Option<Evaluation>,
    pub source: Option<Source>,
    pub automatable: bool,
    /// Why a person must fix it, or why it could not be evaluated.
    pub note: Option<String>,
}

impl ControlResult {
    pub fn failing(&self) -> bool {
        matches!(self.status, Status::Fail | Status::Warn) && self.evaluation.is_some()
    }
}

/// Evaluate every control of `bench` against what was found.
pub fn assess(bench: &Benchmark, found: &[Found], policy: SourcePolicy) -> Vec<ControlResult> {
    bench
        .controls
        .iter()
        .map(|c| assess_one(c, found, policy))
        .collect()
}

pub fn assess_one(c: &Control, found: &[Found], policy: SourcePolicy) -> ControlResult {
    let base = ControlResult {
        id: c.id,
        title: c.title,
        component: c.component,
        scored: c.scored,
        status: Status::Warn,
        evaluation: None,
        source: None,
        automatable: c.is_automatable(),
        note: c.manual_reason().map(str::to_string),
    };
    let Some(f) = found.iter().find(|f| f.component == c.component) else {
        return ControlResult {
            note: Some(format!("no {} manifest found", c.component)),
            ..base
        };
    };
    let Some((flags, source)) = f.flags(policy) else {
        return ControlResult {
            note: Some(format!("{} is not running", c.component)),
            ..base
        };
    };
    let ev = evaluate(c, &flags);
    ControlResult {
        status: ev.status,
        evaluation: Some(ev),
        source: Some(source),
        ..base
    }
}

/// The CIS section a control belongs to, for grouping (`1.2`, `2`, `3.2`).
pub fn section(id: &str) -> (&'static str, &'static str) {
    match id.split('.').take(2).collect::<Vec<_>>().as_slice() {
        ["1", "2"] => ("1.2", "API Server"),
        ["1", "3"] => ("1.3", "Controller Manager"),
        ["1", "4"] => ("1.4", "Scheduler"),
        ["2", _] => ("2", "etcd"),
        ["3", "2"] => ("3.2", "Logging"),
        _ => ("?", "Other"),
    }
}

/// The order `harden` restarts components in: etcd first (the API server depends on it),
/// then the API server (the others talk to it), then the controller manager and scheduler.
pub const HARDEN_ORDER: [Component; 4] = [
    Component::Etcd,
    Component::ApiServer,
    Component::ControllerManager,
    Component::Scheduler,
];
