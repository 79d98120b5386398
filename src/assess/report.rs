//! The typed report of `kharden audit`: every check of the chosen benchmark's targets, with
//! kube-bench's verdict and, beside it, whether the control really holds. Every output format
//! (text, JSON, JUnit, kube-bench's JSON, Prometheus metrics) is rendered from it.

use super::effective::KUBELET_EFFECTIVE_WIRED;
use super::gather::{node_facts, NodeFiles, NodeScan};
use super::targets::{choose_targets, TargetChoice};
use super::version::{choose_benchmark, manifest_evidence, BenchmarkChoice, VersionProbe};
use super::Unreadable;
use crate::durable::Storage;
use crate::error::{Error, Result};
use kharden_catalog::{
    evaluate_check, Audit, Check, CheckResult, Detail, FileSet, Fix, NodeFacts, Status, Target,
};
use serde::Serialize;

/// What `kharden audit` is asked.
#[derive(Debug, Clone, Default)]
pub struct AuditRequest {
    /// `--benchmark`.
    pub benchmark: Option<String>,
    /// `--kubernetes-version`.
    pub kubernetes_version: Option<String>,
    /// `--targets` (`None`: chosen from the node).
    pub targets: Option<Vec<Target>>,
    /// The exit code when a scored check fails (kube-bench's `--exit-code`).
    pub fail_code: u8,
    /// When the audit ran (ms since the epoch), from the caller's clock.
    pub now_ms: u64,
}

/// One check in the report.
#[derive(Debug, Clone, Serialize)]
pub struct CheckView {
    pub id: &'static str,
    /// The definition's stable key (the same in every benchmark version).
    pub key: &'static str,
    pub title: &'static str,
    pub target: Target,
    pub section: String,
    pub section_title: &'static str,
    /// The process whose flags or configuration the check reads, if any.
    pub component: Option<&'static str>,
    pub scored: bool,
    /// kube-bench's check type: `manual` or `automated`.
    #[serde(rename = "type")]
    pub check_type: &'static str,
    /// kube-bench's verdict (`MANUAL` for a `type: manual` check); `None` when kharden does
    /// not evaluate the check (see `reason`).
    pub status: Option<Status>,
    /// The label kube-bench prints: PASS, FAIL or WARN.
    pub kube_bench_status: &'static str,
    pub kube_bench: Option<bool>,
    /// Whether the control really holds on this node; `None`: no opinion (see
    /// `effective_note`).
    pub effective: Option<bool>,
    pub effective_note: Option<String>,
    /// Why the two readings differ.
    pub disagreement: Option<String>,
    /// Why kube-bench's status is what it is when no test decided it.
    pub reason: Option<String>,
    /// The text kube-bench tests (its `actual_value`).
    pub actual_value: Option<String>,
    /// kube-bench's `expected_result`.
    pub expected: Option<String>,
    /// The audit kube-bench runs (its shell command, variables substituted).
    pub audit: String,
    /// kube-bench's `audit_config` (the configuration file it reads), or empty.
    pub audit_config: String,
    /// kube-bench's `use_multiple_values`.
    pub multiple: bool,
    /// Whether `kharden harden` fixes it (file fixes may still be held back by the node's
    /// facts).
    pub automatable: bool,
    /// What harden would do (`auto: …`) or why a person must (`manual: …`), for a failing
    /// check.
    pub fix: Option<String>,
    /// What fixing it means, in our words.
    pub remediation: String,
    pub detail: Detail,
}

impl CheckView {
    /// True when kube-bench reports it as failing (FAIL, or WARN for a test that ran).
    pub fn failing(&self) -> bool {
        matches!(self.status, Some(Status::Fail | Status::Warn))
    }
}

/// Where a component's flags were read.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentView {
    pub component: &'static str,
    pub source: String,
    pub pid: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub groups: Vec<u32>,
}

/// Totals per kube-bench verdict.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    /// `type: manual` checks (kube-bench prints WARN).
    pub manual: usize,
    /// Checks kharden does not evaluate (kube-bench prints WARN; section 5's API audits).
    pub not_evaluated: usize,
    /// Checks whose effective reading disagrees with kube-bench's.
    pub disagreements: usize,
    /// Checks that do not hold on this node, read effectively.
    pub effective_fail: usize,
}

impl Summary {
    /// kube-bench's WARN count: WARN, manual and not evaluated.
    pub fn kube_bench_warn(&self) -> usize {
        self.warn + self.manual + self.not_evaluated
    }
}

/// `kharden audit`.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub benchmark: BenchmarkChoice,
    pub targets: Vec<TargetChoice>,
    pub checks: Vec<CheckView>,
    pub components: Vec<ComponentView>,
    /// Files and paths that could not be examined (they count as absent).
    pub unreadable: Vec<Unreadable>,
    pub summary: Summary,
    /// When the audit ran (ms since the epoch).
    pub time_ms: u64,
    /// The manifests directory.
    pub manifests: String,
    pub exit_code: u8,
}

impl AuditReport {
    /// The selected targets, in kube-bench's order.
    pub fn selected_targets(&self) -> Vec<Target> {
        self.targets
            .iter()
            .filter(|t| t.selected)
            .map(|t| t.target)
            .collect()
    }
}

/// kube-bench's audit command for a check, with config.yaml's variables substituted (for the
/// reports' `audit` and `AuditConfig` fields).
fn audit_commands(check: &Check, facts: &NodeFacts) -> (String, String) {
    let var = |v: &str| {
        facts
            .paths
            .get(v)
            .map(|r| r.path.clone())
            .unwrap_or_else(|| format!("${v}"))
    };
    match check.audit {
        Audit::None => (String::new(), String::new()),
        Audit::NotEvaluated(n) => (
            format!("(not reproduced by kharden: {})", n.reason),
            String::new(),
        ),
        Audit::Flags(f) => {
            let bin = f.component.name();
            (
                if bin == "etcd" {
                    "/bin/ps -ef | /bin/grep etcd | /bin/grep -v grep".into()
                } else {
                    format!("/bin/ps -ef | grep {bin} | grep -v grep")
                },
                String::new(),
            )
        }
        Audit::Config(c) => {
            let config = match c.config_var {
                Some("kubeletconf") => format!("/bin/cat {}", var("kubeletconf")),
                Some(v) => {
                    let p = var(v);
                    format!("/bin/sh -c 'if test -e {p}; then cat {p}; fi'")
                }
                None => String::new(),
            };
            (format!("/bin/ps -fC {}", c.process.name()), config)
        }
        Audit::File(t) => {
            let fmt = t.format.format();
            let stat = if fmt.contains(' ') {
                format!("stat -c \"{fmt}\"")
            } else {
                format!("stat -c {fmt}")
            };
            let cmd = match t.files {
                FileSet::Var { var: v } => {
                    let p = var(v);
                    match t.if_missing {
                        Some(m) => format!(
                            "/bin/sh -c \"if test -e {p}; then {stat} {p}; else echo \\\"{m}\\\"; fi\""
                        ),
                        None => format!("/bin/sh -c 'if test -e {p}; then {stat} {p}; fi'"),
                    }
                }
                FileSet::FindVar { var: v, name } => {
                    let p = var(v);
                    format!(
                        "/bin/sh -c 'if test -e {p}; then find {p} -name '{name}' | xargs {stat}; fi'"
                    )
                }
                FileSet::Paths { paths } => format!(
                    "for f in {}; do if test -e $f; then {stat} $f; fi; done",
                    paths.join(" ")
                ),
                FileSet::Find { dir, name } => match name {
                    Some(n) => format!("find {dir} -name '{n}' | xargs {stat}"),
                    None => format!("find {dir} | xargs {stat}"),
                },
                FileSet::EtcdDataDir => format!(
                    "DATA_DIR=''; for d in $(ps -ef | grep etcd | grep -- --data-dir | sed \
                     's%.*data-dir[= ]\\([^ ]*\\).*%\\1%'); do if test -d \"$d\"; then \
                     DATA_DIR=\"$d\"; fi; done; if ! test -d \"$DATA_DIR\"; then DATA_DIR={}; \
                     fi; {stat} \"$DATA_DIR\"",
                    var("etcddatadir")
                ),
                FileSet::Cni => format!(
                    "ps -ef | grep kubelet | grep -- --cni-conf-dir | sed \
                     's%.*cni-conf-dir[= ]\\([^ ]*\\).*%\\1%' | xargs -I{{}} find {{}} -mindepth 1 \
                     | xargs --no-run-if-empty {stat}; find /var/lib/cni/networks -type f 2> \
                     /dev/null | xargs --no-run-if-empty {stat}"
                ),
                FileSet::KubeletClientCa => format!(
                    "CAFILE=$(ps -ef | grep kubelet | grep -v apiserver | grep -- \
                     --client-ca-file= | awk -F '--client-ca-file=' '{{print $2}}' | awk \
                     '{{print $1}}' | uniq); if test -z $CAFILE; then CAFILE={}; fi; if test -e \
                     $CAFILE; then {stat} $CAFILE; fi",
                    var("kubeletcafile")
                ),
            };
            (cmd, String::new())
        }
    }
}

/// What fixing a check means, in our words.
pub fn remediation_text(check: &Check) -> String {
    match check.fix {
        Fix::Manifest(r) => format!(
            "{} kharden harden: {}.",
            r.note,
            r.changes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Fix::File(f) => {
            let mut what = Vec::new();
            if let Some(m) = f.allowed_mode {
                what.push(format!("remove every permission bit outside {m:o}"));
            }
            if let Some(o) = f.owner {
                what.push(format!("make it owned by {o}"));
            }
            format!("{} kharden harden: {}.", f.note, what.join(" and "))
        }
        Fix::Kubelet(k) => format!(
            "{} kharden harden: {}.",
            k.note,
            k.settings
                .iter()
                .map(|s| format!("{}: {}", s.key, s.value))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Fix::Manual { reason } => format!("Left to a person: {reason}"),
    }
}

fn fix_line(check: &Check) -> String {
    match check.fix {
        Fix::Manifest(r) => format!(
            "auto: {}",
            r.changes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Fix::File(f) => {
            let mut what = Vec::new();
            if let Some(m) = f.allowed_mode {
                what.push(format!("mode {m:o} or stricter"));
            }
            if let Some(o) = f.owner {
                what.push(format!("owner {o}"));
            }
            format!("auto: {}", what.join(", "))
        }
        Fix::Kubelet(k) => format!(
            "auto: {}",
            k.settings
                .iter()
                .map(|s| format!("{}={}", s.key, s.value))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Fix::Manual { reason } => format!("manual: {reason}"),
    }
}

fn view(check: &Check, r: CheckResult, facts: &NodeFacts) -> CheckView {
    let (audit, audit_config) = audit_commands(check, facts);
    let multiple = matches!(check.audit, Audit::File(t) if t.multiple);
    let mut effective_note = r.effective_note.clone();
    if let (Audit::Config(c), None) = (check.audit, r.effective) {
        let no_values = facts.config(c.process).effective.is_empty();
        if no_values && !KUBELET_EFFECTIVE_WIRED && facts.argv(c.process).is_some() {
            effective_note = Some(format!(
                "not evaluated: the {}'s effective configuration (flags over --config-dir \
                 drop-ins over the file over the defaults) is not computed by this build",
                c.process
            ));
        }
    }
    let status = r.status;
    let failing = matches!(status, Some(Status::Fail | Status::Warn));
    CheckView {
        id: check.id,
        key: check.key,
        title: check.title,
        target: check.target,
        section: check.section.clone(),
        section_title: kharden_catalog::section_title(&check.section),
        component: check.component().map(|c| c.name()),
        scored: check.scored,
        check_type: check.check_type(),
        status,
        kube_bench_status: r.kube_bench_label(),
        kube_bench: r.kube_bench,
        effective: r.effective,
        effective_note,
        disagreement: r.disagreement,
        reason: r.reason,
        actual_value: r.actual_value,
        expected: r.expected,
        audit,
        audit_config,
        multiple,
        automatable: check.is_automatable(),
        fix: (failing || r.effective == Some(false)).then(|| fix_line(check)),
        remediation: remediation_text(check),
        detail: r.detail,
    }
}

/// Run the audit on a scanned node: choose the benchmark and the targets, gather the facts,
/// evaluate every check of the selected targets.
pub fn audit(
    req: &AuditRequest,
    scan: &NodeScan,
    storage: &dyn Storage,
    probe: &dyn VersionProbe,
) -> Result<AuditReport> {
    let choice = choose_benchmark(
        req.benchmark.as_deref(),
        req.kubernetes_version.as_deref(),
        manifest_evidence(scan),
        probe,
    )?;
    let bench = kharden_catalog::benchmark(choice.benchmark).ok_or_else(|| {
        Error::Other(format!("benchmark {} is not compiled in", choice.benchmark))
    })?;
    let targets = {
        let mut files = NodeFiles::new(&scan.root, storage);
        choose_targets(req.targets.as_deref(), scan, &mut files)
    };
    let selected: Vec<Target> = targets
        .iter()
        .filter(|t| t.selected)
        .map(|t| t.target)
        .collect();
    let checks: Vec<&Check> = bench
        .checks
        .iter()
        .filter(|c| selected.contains(&c.target))
        .collect();
    let (facts, problems) = node_facts(scan, storage, &checks);
    let mut views = Vec::with_capacity(checks.len());
    for c in &checks {
        let r = evaluate_check(c, &facts).unwrap_or_else(|missing| CheckResult {
            id: c.id,
            key: c.key,
            status: None,
            kube_bench: None,
            effective: None,
            effective_note: None,
            reason: Some(format!(
                "not evaluated: {missing} (a fact kharden failed to gather: a bug)"
            )),
            disagreement: None,
            actual_value: None,
            expected: None,
            detail: Detail::None,
        });
        views.push(view(c, r, &facts));
    }
    let mut summary = Summary::default();
    for v in &views {
        match v.status {
            Some(Status::Pass) => summary.pass += 1,
            Some(Status::Fail) => summary.fail += 1,
            Some(Status::Warn) => summary.warn += 1,
            Some(Status::Manual) => summary.manual += 1,
            None => summary.not_evaluated += 1,
        }
        if v.disagreement.is_some() {
            summary.disagreements += 1;
        }
        if v.effective == Some(false) {
            summary.effective_fail += 1;
        }
    }
    let scored_fail = views
        .iter()
        .any(|v| v.scored && v.status == Some(Status::Fail));
    let components = scan
        .components
        .iter()
        .map(|(c, s)| ComponentView {
            component: c.name(),
            source: s.source.to_string(),
            pid: s.process.as_ref().map(|p| p.pid),
            uid: s.process.as_ref().and_then(|p| p.uid),
            gid: s.process.as_ref().and_then(|p| p.gid),
            groups: s
                .process
                .as_ref()
                .map(|p| p.groups.clone())
                .unwrap_or_default(),
        })
        .collect();
    let mut unreadable = scan.unreadable.clone();
    unreadable.extend(problems);
    Ok(AuditReport {
        benchmark: choice,
        targets,
        checks: views,
        components,
        unreadable,
        summary,
        time_ms: req.now_ms,
        manifests: scan.host_path(&scan.manifests_dir),
        exit_code: if scored_fail {
            req.fail_code
        } else {
            crate::exit::SUCCESS
        },
    })
}
