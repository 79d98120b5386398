//! One result per check of a benchmark, whatever its kind, for every report format.
//!
//! [`evaluate_check`] dispatches on the check's audit and returns a [`CheckResult`] with the two
//! readings side by side: `status`/`kube_bench` (what an auditor's kube-bench run prints) and
//! `effective` (whether the control really holds on this node), with `disagreement` saying why
//! they differ. Checks kharden does not reproduce (section 5, 1.2.28) still get a result, with
//! `status: None` and the reason, so that a report lists every check as kube-bench does.

use serde::Serialize;

use crate::audit::Audit;
use crate::eval::{evaluate_flags, Reading, Status};
use crate::eval_config::{evaluate_config, ConfigReading};
use crate::eval_files::{evaluate_file, FileReading};
use crate::facts::NodeFacts;
use crate::model::Check;

/// A fact the evaluation needs and the caller did not give: a bug in the caller's gathering,
/// reported instead of read as "absent".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "what")]
pub enum MissingFact {
    #[error("${0} was not resolved (resolve it with kharden_catalog::paths)")]
    PathVar(String),
    #[error("{0} was not gathered (see kharden_catalog::file_requests)")]
    File(String),
    #[error("the file kube-bench reads through ${0} was not given")]
    ConfigFile(&'static str),
}

/// The per-kind readings of a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Detail {
    /// Nothing read (manual, not evaluated, process not running).
    None,
    /// A command-line check: each flag under both readings.
    Flags { readings: Vec<Reading> },
    /// A file check: every file either reading looked at.
    Files {
        files: Vec<FileReading>,
        /// Where the effective reading's files come from.
        effective_from: String,
    },
    /// A kubelet or kube-proxy check: each item under both readings.
    Config { readings: Vec<ConfigReading> },
}

/// One check's result on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub id: &'static str,
    /// The definition's stable key.
    pub key: &'static str,
    /// kube-bench's verdict (`Manual` for `type: manual`); `None` when kharden does not
    /// evaluate the check (see `reason`).
    pub status: Option<Status>,
    /// kube-bench's test result (`false` also when its audit command fails); `None` for manual
    /// and not-evaluated checks.
    pub kube_bench: Option<bool>,
    /// Whether the control really holds, read the component's way; `None` when there is no
    /// opinion (manual, not evaluated, not applicable, or unknown: see `effective_note`).
    pub effective: Option<bool>,
    /// Why `effective` is what it is, when that needs saying.
    pub effective_note: Option<String>,
    /// Why kube-bench's status is what it is when no test decided it (audit command failing,
    /// process not running, manual check, not evaluated by kharden).
    pub reason: Option<String>,
    /// Set when the two readings disagree: why.
    pub disagreement: Option<String>,
    /// The text kube-bench tested (its `actual_value`): the `ps` line, the `stat` output.
    pub actual_value: Option<String>,
    /// kube-bench's `expected_result` text.
    pub expected: Option<String>,
    pub detail: Detail,
}

impl CheckResult {
    /// The label kube-bench prints: PASS, FAIL or WARN (a check kharden does not evaluate is
    /// WARN, kube-bench's "could not carry out the check").
    pub fn kube_bench_label(&self) -> &'static str {
        self.status.map_or("WARN", Status::kube_bench_label)
    }

    /// True when kube-bench would report the check as failing (FAIL, or WARN for an unscored
    /// test that ran and failed).
    pub fn failing(&self) -> bool {
        matches!(self.status, Some(Status::Fail | Status::Warn))
    }

    fn bare(check: &Check) -> CheckResult {
        CheckResult {
            id: check.id,
            key: check.key,
            status: None,
            kube_bench: None,
            effective: None,
            effective_note: None,
            reason: None,
            disagreement: None,
            actual_value: None,
            expected: None,
            detail: Detail::None,
        }
    }
}

/// Evaluate one check of a benchmark on the node's facts, under both readings.
pub fn evaluate_check(check: &Check, facts: &NodeFacts) -> Result<CheckResult, MissingFact> {
    let manual = || CheckResult {
        status: Some(Status::Manual),
        reason: Some(
            "a manual check (`type: manual`): kube-bench runs no test and prints WARN".into(),
        ),
        ..CheckResult::bare(check)
    };
    match check.audit {
        Audit::None => Ok(manual()),
        Audit::NotEvaluated(n) => {
            if check.manual {
                return Ok(manual());
            }
            Ok(CheckResult {
                reason: Some(format!("not evaluated by kharden: {}", n.reason)),
                ..CheckResult::bare(check)
            })
        }
        Audit::Flags(t) => {
            let Some(argv) = facts.argv(t.component) else {
                if check.manual {
                    return Ok(manual());
                }
                return Ok(CheckResult {
                    status: Some(Status::of(false, check.scored)),
                    kube_bench: Some(false),
                    reason: Some(format!(
                        "{} is not running: kube-bench's `ps | grep` finds no line and its \
                         audit command fails",
                        t.component
                    )),
                    ..CheckResult::bare(check)
                });
            };
            let e = evaluate_flags(
                check.id,
                check.manual,
                check.scored,
                t.bin_op,
                &t.items,
                argv,
            );
            if check.manual {
                return Ok(CheckResult {
                    detail: Detail::Flags {
                        readings: e.readings,
                    },
                    ..manual()
                });
            }
            Ok(CheckResult {
                status: Some(e.status),
                kube_bench: Some(e.kube_bench),
                effective: Some(e.flag_parser),
                disagreement: e.disagreement,
                actual_value: Some(crate::kube_bench::audit_line(argv)),
                expected: Some(e.expected),
                detail: Detail::Flags {
                    readings: e.readings,
                },
                ..CheckResult::bare(check)
            })
        }
        Audit::File(t) => evaluate_file(check, t, facts),
        Audit::Config(t) => evaluate_config(check, t, facts),
    }
}

/// Evaluate every check of `checks` (a benchmark's, or a target's): the first missing fact
/// stops it.
pub fn evaluate_all<'a>(
    checks: impl IntoIterator<Item = &'a Check>,
    facts: &NodeFacts,
) -> Result<Vec<CheckResult>, MissingFact> {
    checks
        .into_iter()
        .map(|c| evaluate_check(c, facts))
        .collect()
}
