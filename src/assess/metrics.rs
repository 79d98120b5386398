//! The audit, the journal and the drift as Prometheus gauges, for node_exporter's textfile
//! collector (`kharden audit --format prometheus --textfile PATH`). Typed here; written in the
//! text exposition format 0.0.4 by the command line.
//!
//! Metric families (every one a gauge; see docs/reports.md for the alerting rules):
//!
//! - `kharden_audit_check_status{benchmark,id,section,target,scored,status}`: one series per
//!   check and kube-bench status (PASS, FAIL, WARN), 1 for the check's status, 0 otherwise;
//! - `kharden_audit_check_effective{benchmark,id,section,target}`: 1 when the control really
//!   holds, 0 when it does not (checks with no effective opinion have no series);
//! - `kharden_audit_checks{benchmark,status}`: totals per kube-bench status;
//! - `kharden_audit_benchmark_info{benchmark,kubernetes_version,detected_version,how}`: 1;
//! - `kharden_audit_timestamp_seconds`: when the audit ran;
//! - `kharden_audit_disagreements`: checks whose readings disagree;
//! - `kharden_journal_present`, `kharden_journal_open_transactions`,
//!   `kharden_journal_unresolved_transactions`;
//! - `kharden_drift_files{status}` (unchanged, changed, reverted, missing, open, needs-manual),
//!   `kharden_drift_file{path,status}` (1 per drifted file), `kharden_drift_controls_undone`.

use super::report::AuditReport;
use crate::drift::{DriftReport, FileStatus};
use serde::Serialize;

/// One sample: its labels, in order, and its value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// A metric family (all of kharden's are gauges).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub samples: Vec<Sample>,
}

impl Family {
    fn new(name: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            samples: Vec::new(),
        }
    }

    fn push(&mut self, labels: Vec<(&'static str, String)>, value: f64) {
        self.samples.push(Sample { labels, value });
    }
}

/// The journal's state, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JournalStatus {
    pub present: bool,
    pub open: usize,
    pub unresolved: usize,
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// Every metric of an audit, with the journal's state and the drift when known.
pub fn audit_metrics(
    r: &AuditReport,
    journal: Option<JournalStatus>,
    drift: Option<&DriftReport>,
) -> Vec<Family> {
    let b = r.benchmark.benchmark.to_string();
    let mut status = Family::new(
        "kharden_audit_check_status",
        "kube-bench's verdict on each CIS check: 1 for the check's status, 0 for the others.",
    );
    let mut effective = Family::new(
        "kharden_audit_check_effective",
        "Whether each CIS control really holds on this node (1) or not (0), read the \
         components' way.",
    );
    for c in &r.checks {
        let base = || {
            vec![
                ("benchmark", b.clone()),
                ("id", c.id.to_string()),
                ("section", c.section.clone()),
                ("target", c.target.name().to_string()),
            ]
        };
        for s in ["PASS", "FAIL", "WARN"] {
            let mut labels = base();
            labels.push(("scored", c.scored.to_string()));
            labels.push(("status", s.to_string()));
            status.push(labels, flag(c.kube_bench_status == s));
        }
        if let Some(e) = c.effective {
            effective.push(base(), flag(e));
        }
    }
    let mut totals = Family::new(
        "kharden_audit_checks",
        "Number of CIS checks per kube-bench status.",
    );
    for (s, n) in [
        ("PASS", r.summary.pass),
        ("FAIL", r.summary.fail),
        ("WARN", r.summary.kube_bench_warn()),
        ("INFO", 0),
    ] {
        totals.push(
            vec![("benchmark", b.clone()), ("status", s.into())],
            n as f64,
        );
    }
    let mut info = Family::new(
        "kharden_audit_benchmark_info",
        "The benchmark of the last audit and the Kubernetes version it was chosen from.",
    );
    info.push(
        vec![
            ("benchmark", b.clone()),
            (
                "kubernetes_version",
                r.benchmark.kubernetes_version.clone().unwrap_or_default(),
            ),
            ("detected_version", r.benchmark.detected_version.clone()),
            (
                "how",
                serde_json::to_value(r.benchmark.how)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            ),
        ],
        1.0,
    );
    let mut time = Family::new(
        "kharden_audit_timestamp_seconds",
        "When the last audit ran (seconds since the epoch).",
    );
    time.push(Vec::new(), r.time_ms as f64 / 1000.0);
    let mut disagreements = Family::new(
        "kharden_audit_disagreements",
        "Checks whose kube-bench verdict and effective reading disagree.",
    );
    disagreements.push(Vec::new(), r.summary.disagreements as f64);
    let mut out = vec![status, effective, totals, info, time, disagreements];
    if let Some(j) = journal {
        let mut present = Family::new(
            "kharden_journal_present",
            "Whether kharden's journal exists on this node.",
        );
        present.push(Vec::new(), flag(j.present));
        let mut open = Family::new(
            "kharden_journal_open_transactions",
            "Transactions not finished (kharden recover finishes them).",
        );
        open.push(Vec::new(), j.open as f64);
        let mut unresolved = Family::new(
            "kharden_journal_unresolved_transactions",
            "Needs-manual transactions not yet resolved by an operator.",
        );
        unresolved.push(Vec::new(), j.unresolved as f64);
        out.extend([present, open, unresolved]);
    }
    if let Some(d) = drift {
        out.extend(drift_metrics(d));
    }
    out
}

/// The drift's metrics.
pub fn drift_metrics(d: &DriftReport) -> Vec<Family> {
    let mut files = Family::new(
        "kharden_drift_files",
        "Files kharden committed a change to, by what they hold now.",
    );
    for s in FileStatus::ALL {
        let n = d.files.iter().filter(|f| f.status == s).count();
        files.push(vec![("status", s.name().to_string())], n as f64);
    }
    let mut each = Family::new(
        "kharden_drift_file",
        "A file whose contents drifted from what kharden last committed (1 per file).",
    );
    for f in d.files.iter().filter(|f| f.status.is_drift()) {
        each.push(
            vec![
                ("path", f.path.clone()),
                ("status", f.status.name().to_string()),
            ],
            1.0,
        );
    }
    let mut undone = Family::new(
        "kharden_drift_controls_undone",
        "Controls kharden applied that are no longer in effect.",
    );
    undone.push(Vec::new(), d.controls_undone.len() as f64);
    vec![files, each, undone]
}
