//! Assess a node against a CIS benchmark (`kharden audit`), and find what `harden` can fix:
//! the glue between the catalog (controls as data), the manifests on disk and the running
//! processes.
//!
//! (Named "assess" so that "audit" keeps one meaning inside the library: the check of the
//! running process after a transaction's gate. The command is still `kharden audit`.)
//!
//! A component is evaluated on its running process's argv when one is found in `/proc` (that
//! is what kube-bench reads with `ps`), else on its manifest; every result says which.

use crate::durable::Storage;
use kharden_catalog::{evaluate, Benchmark, Component, Control, Evaluation, Status};
use kharden_manifest::PodInfo;
use std::path::{Path, PathBuf};

/// Where a component's argv came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Source {
    Manifest { path: String },
    Running { pid: u32, manifest: String },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Manifest { path } => write!(f, "manifest {path}"),
            Source::Running { pid, .. } => write!(f, "running process {pid}"),
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

/// One control in the report of `kharden audit`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ControlView {
    pub id: &'static str,
    pub title: &'static str,
    pub component: &'static str,
    pub scored: bool,
    pub status: Status,
    pub source: Option<Source>,
    pub automatable: bool,
    /// kube-bench's verdict and the flag parser's (when evaluated).
    pub kube_bench: Option<bool>,
    pub flag_parser: Option<bool>,
    pub disagreement: Option<String>,
    pub note: Option<String>,
    /// What harden would do (`auto: …`) or why a person must (`manual: …`), for a failing
    /// control.
    pub fix: Option<String>,
}

/// Totals per status.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub manual: usize,
}

/// `kharden audit`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditReport {
    pub benchmark: &'static str,
    pub manifests: String,
    pub controls: Vec<ControlView>,
    pub unreadable: Vec<Unreadable>,
    pub summary: Summary,
    /// Where each component's argv came from (`running process 123`, `manifest …`).
    #[serde(skip)]
    pub sources: Vec<(&'static str, String)>,
    pub exit_code: u8,
}

fn fix_text(c: &Control) -> String {
    match c.remediation() {
        Some(r) => format!(
            "auto: {}",
            r.changes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => format!("manual: {}", c.manual_reason().unwrap_or("")),
    }
}

/// Assess and build the report; `fail_code` is the exit code when a scored control fails
/// (kube-bench's `--exit-code`, 0 by default).
pub fn audit_report(
    bench: &Benchmark,
    manifests: &Path,
    found: &[Found],
    unreadable: Vec<Unreadable>,
    policy: SourcePolicy,
    fail_code: u8,
) -> AuditReport {
    let results = assess(bench, found, policy);
    let mut summary = Summary::default();
    for r in &results {
        match r.status {
            Status::Pass => summary.pass += 1,
            Status::Fail => summary.fail += 1,
            Status::Warn => summary.warn += 1,
            Status::Manual => summary.manual += 1,
        }
    }
    let scored_fail = results.iter().any(|r| r.scored && r.status == Status::Fail);
    let controls = results
        .iter()
        .map(|r| ControlView {
            id: r.id,
            title: r.title,
            component: r.component.name(),
            scored: r.scored,
            status: r.status,
            source: r.source.clone(),
            automatable: r.automatable,
            kube_bench: r.evaluation.as_ref().map(|e| e.kube_bench),
            flag_parser: r.evaluation.as_ref().map(|e| e.flag_parser),
            disagreement: r.evaluation.as_ref().and_then(|e| e.disagreement.clone()),
            note: r.note.clone(),
            fix: r
                .failing()
                .then(|| bench.control(r.id).map(fix_text))
                .flatten(),
        })
        .collect();
    let sources = Component::ALL
        .iter()
        .map(|c| {
            let src = found
                .iter()
                .find(|f| f.component == *c)
                .and_then(|f| f.flags(SourcePolicy::Auto).map(|(_, s)| s.to_string()))
                .unwrap_or_else(|| "not found".into());
            (c.name(), src)
        })
        .collect();
    AuditReport {
        benchmark: bench.id,
        manifests: manifests.display().to_string(),
        controls,
        unreadable,
        summary,
        sources,
        exit_code: if scored_fail {
            fail_code
        } else {
            crate::exit::SUCCESS
        },
    }
}
