//! kube-bench's JSON report (`kube-bench --json`), so that tools that import kube-bench's
//! results read kharden's unchanged.
//!
//! The shape is kube-bench's Go structs (snapshot of `shared/cis/SOURCE.md`), field by field,
//! with their json tags, `omitempty` and order (encoding/json writes fields in declaration
//! order, an embedded struct's fields at its place):
//!
//! ```text
//! OverallControls { Controls []*Controls; Totals Summary }            // no tags: "Controls", "Totals"
//! Controls { id, version, detected_version (omitempty), text, node_type, tests []*Group, Summary (embedded) }
//! Summary  { total_pass, total_fail, total_warn, total_info }
//! Group    { section, type, pass, fail, warn, info, desc, results []*Check }
//! Check    { test_number, test_desc, audit, AuditEnv, AuditConfig, type, remediation,
//!            test_info []string, status, actual_value, scored, IsMultiple, expected_result,
//!            reason (omitempty) }
//! ```
//!
//! What kharden puts there: `id` is the target's section number (`1` master ... `5`
//! policies), `version` the benchmark, `detected_version` kube-bench's (`1.30`, or `none` when
//! the version was given), `text` and `desc` kharden's own titles; a group's `type` is empty
//! (kube-bench does not copy it into its results); a check's `type` is `manual` or empty,
//! `test_info` holds the remediation (kube-bench appends it there), remediation texts are
//! kharden's own words. A check kharden does not evaluate is WARN, as kube-bench reports a
//! check it could not carry out; no state is ever INFO (kharden skips nothing).

use super::report::{AuditReport, CheckView};
use kharden_catalog::Target;
use serde::{Deserialize, Serialize};

/// kube-bench's `check.Summary`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub total_pass: u64,
    pub total_fail: u64,
    pub total_warn: u64,
    pub total_info: u64,
}

/// kube-bench's `check.OverallControls`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverallControls {
    #[serde(rename = "Controls")]
    pub controls: Vec<Controls>,
    #[serde(rename = "Totals")]
    pub totals: Summary,
}

/// kube-bench's `check.Controls` (one target).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Controls {
    pub id: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detected_version: String,
    pub text: String,
    pub node_type: String,
    pub tests: Vec<Group>,
    #[serde(flatten)]
    pub summary: Summary,
}

/// kube-bench's `check.Group` (one section).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub section: String,
    #[serde(rename = "type")]
    pub group_type: String,
    pub pass: u64,
    pub fail: u64,
    pub warn: u64,
    pub info: u64,
    pub desc: String,
    pub results: Vec<Check>,
}

/// kube-bench's `check.Check` (one result).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub test_number: String,
    pub test_desc: String,
    pub audit: String,
    #[serde(rename = "AuditEnv")]
    pub audit_env: String,
    #[serde(rename = "AuditConfig")]
    pub audit_config: String,
    #[serde(rename = "type")]
    pub check_type: String,
    pub remediation: String,
    pub test_info: Vec<String>,
    pub status: String,
    pub actual_value: String,
    pub scored: bool,
    #[serde(rename = "IsMultiple")]
    pub is_multiple: bool,
    pub expected_result: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

fn check(v: &CheckView) -> Check {
    Check {
        test_number: v.id.to_string(),
        test_desc: v.title.to_string(),
        audit: v.audit.clone(),
        audit_env: String::new(),
        audit_config: v.audit_config.clone(),
        check_type: if v.check_type == "manual" {
            "manual".into()
        } else {
            String::new()
        },
        remediation: v.remediation.clone(),
        test_info: vec![v.remediation.clone()],
        status: v.kube_bench_status.to_string(),
        actual_value: v.actual_value.clone().unwrap_or_default(),
        scored: v.scored,
        is_multiple: v.multiple,
        expected_result: v.expected.clone().unwrap_or_default(),
        reason: v.reason.clone().unwrap_or_default(),
    }
}

fn count(s: &mut Summary, status: &str) {
    match status {
        "PASS" => s.total_pass += 1,
        "FAIL" => s.total_fail += 1,
        "INFO" => s.total_info += 1,
        _ => s.total_warn += 1,
    }
}

/// The report in kube-bench's JSON shape: one `Controls` per selected target, in kube-bench's
/// order (by id), and the totals.
pub fn overall(r: &AuditReport) -> OverallControls {
    let mut controls = Vec::new();
    let mut totals = Summary::default();
    let mut targets: Vec<Target> = r.selected_targets();
    targets.sort_by_key(|t| t.number());
    for t in targets {
        let mut c = Controls {
            id: t.number().to_string(),
            version: r.benchmark.benchmark.to_string(),
            detected_version: r.benchmark.detected_version.clone(),
            text: t.title().to_string(),
            node_type: t.name().to_string(),
            tests: Vec::new(),
            summary: Summary::default(),
        };
        for v in r.checks.iter().filter(|v| v.target == t) {
            let k = check(v);
            if c.tests.last().map(|g| g.section.as_str()) != Some(v.section.as_str()) {
                c.tests.push(Group {
                    section: v.section.clone(),
                    group_type: String::new(),
                    pass: 0,
                    fail: 0,
                    warn: 0,
                    info: 0,
                    desc: v.section_title.to_string(),
                    results: Vec::new(),
                });
            }
            let mut s = Summary::default();
            count(&mut s, &k.status);
            if let Some(g) = c.tests.last_mut() {
                g.pass += s.total_pass;
                g.fail += s.total_fail;
                g.warn += s.total_warn;
                g.info += s.total_info;
                g.results.push(k);
            }
            c.summary.total_pass += s.total_pass;
            c.summary.total_fail += s.total_fail;
            c.summary.total_warn += s.total_warn;
            c.summary.total_info += s.total_info;
        }
        totals.total_pass += c.summary.total_pass;
        totals.total_fail += c.summary.total_fail;
        totals.total_warn += c.summary.total_warn;
        totals.total_info += c.summary.total_info;
        controls.push(c);
    }
    OverallControls { controls, totals }
}
