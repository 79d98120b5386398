//! Evaluating a command-line check on one process's flags, under both readings.
//!
//! The reported [`Status`] follows kube-bench, because that is what auditors run. The flag
//! parser's verdict is computed as well, and when the two differ the [`Evaluation`] says so in
//! `disagreement` instead of hiding it: a control kube-bench passes while the component uses
//! an insecure value is exactly what an operator needs to hear about.

use serde::Serialize;

use crate::model::{BinOp, Control, TestItem};
use crate::{effective, kube_bench};

/// The outcome, as kube-bench would print it (`Manual` is kube-bench's WARN for a
/// `type: manual` check, which runs no test).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    /// A scored check whose test failed (or whose audit command failed).
    Fail,
    /// An unscored check whose test failed.
    Warn,
    /// A `type: manual` check: nothing to test.
    Manual,
}

impl Status {
    /// The label kube-bench prints (`Manual` shows as `WARN` there).
    pub fn kube_bench_label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Warn | Status::Manual => "WARN",
        }
    }

    /// PASS when `pass`, else FAIL for a scored check and WARN for an unscored one.
    pub fn of(pass: bool, scored: bool) -> Status {
        match (pass, scored) {
            (true, _) => Status::Pass,
            (false, true) => Status::Fail,
            (false, false) => Status::Warn,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Warn => "WARN",
            Status::Manual => "MANUAL",
        })
    }
}

/// What each reading saw for one flag a check tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reading {
    /// With dashes, as the check spells it.
    pub flag: &'static str,
    /// kube-bench's value (first occurrence, substring match); `None` when not found.
    pub kube_bench: Option<String>,
    /// The component's value (last occurrence, exact name); `None` when absent.
    pub flag_parser: Option<String>,
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    pub id: &'static str,
    /// Follows kube-bench.
    pub status: Status,
    /// The test result under kube-bench's reading (`false` for a manual check).
    pub kube_bench: bool,
    /// The test result under the flag parser's reading (`false` for a manual check).
    pub flag_parser: bool,
    /// Set when the two readings give different results: which flags, and what each saw.
    pub disagreement: Option<String>,
    pub readings: Vec<Reading>,
    /// kube-bench's `expected_result` text (empty for a manual check).
    pub expected: String,
}

fn show(v: &Option<String>) -> String {
    match v {
        Some(v) => format!("{v:?}"),
        None => "absent".to_string(),
    }
}

/// Evaluate `control` on a component's own flags (`argv[flags_start..]` from
/// `kharden_manifest::inspect`, or the live `/proc/PID/cmdline` minus the binary and any
/// wrapper).
pub fn evaluate(control: &Control, argv: &[String]) -> Evaluation {
    evaluate_flags(
        control.id,
        control.manual_check,
        control.scored,
        control.bin_op,
        control.tests,
        argv,
    )
}

/// The flags a test reads, each once, in order.
pub(crate) fn distinct_flags(items: &[TestItem]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for t in items {
        if !out.contains(&t.flag) {
            out.push(t.flag);
        }
    }
    out
}

/// The command-line evaluation behind [`evaluate`] and [`crate::evaluate_check`].
pub(crate) fn evaluate_flags(
    id: &'static str,
    manual: bool,
    scored: bool,
    bin_op: BinOp,
    items: &[TestItem],
    argv: &[String],
) -> Evaluation {
    let line = kube_bench::audit_line(argv);
    let readings: Vec<Reading> = distinct_flags(items)
        .into_iter()
        .map(|flag| Reading {
            flag,
            kube_bench: kube_bench::find_value(&line, flag),
            flag_parser: effective::value(argv, flag.trim_start_matches('-')),
        })
        .collect();
    if manual {
        return Evaluation {
            id,
            status: Status::Manual,
            kube_bench: false,
            flag_parser: false,
            disagreement: None,
            readings,
            expected: String::new(),
        };
    }
    let seen = |flag: &str| readings.iter().find(|o| o.flag == flag);
    let mut outcomes = Vec::new();
    let mut per_item: Vec<(bool, bool, &Reading)> = Vec::new();
    for t in items {
        let Some(o) = seen(t.flag) else { continue };
        let kb = kube_bench::evaluate_text(t, &line);
        per_item.push((
            kb.pass,
            effective::item_passes(t, o.flag_parser.as_deref()),
            o,
        ));
        outcomes.push(kb);
    }
    let (kb, expected) = kube_bench::combine(bin_op, &outcomes);
    let fp = match bin_op {
        BinOp::And => per_item.iter().all(|(_, f, _)| *f),
        BinOp::Or => per_item.iter().any(|(_, f, _)| *f),
    };
    let disagreement = (kb != fp).then(|| {
        let mut flags: Vec<String> = Vec::new();
        for (k, f, o) in &per_item {
            let text = format!(
                "{}: kube-bench reads {}, the component uses {}",
                o.flag,
                show(&o.kube_bench),
                show(&o.flag_parser)
            );
            if (k != f || o.kube_bench != o.flag_parser) && !flags.contains(&text) {
                flags.push(text);
            }
        }
        format!(
            "kube-bench {} this control but under the flag parser's reading it would {} ({})",
            if kb { "passes" } else { "fails" },
            if fp { "pass" } else { "fail" },
            flags.join("; ")
        )
    });
    Evaluation {
        id,
        status: Status::of(kb, scored),
        kube_bench: kb,
        flag_parser: fp,
        disagreement,
        readings,
        expected,
    }
}
