//! Evaluating a control on one process's flags, under both readings.
//!
//! The reported [`Status`] follows kube-bench, because that is what auditors run. The flag
//! parser's verdict is computed as well, and when the two differ the [`Evaluation`] says so in
//! `disagreement` instead of hiding it: a control kube-bench passes while the component uses
//! an insecure value is exactly what an operator needs to hear about.

use serde::Serialize;

use crate::model::{BinOp, Control};
use crate::{effective, kube_bench};

/// The outcome, as kube-bench would print it (`Manual` is kube-bench's WARN for a
/// `type: manual` check, which runs no test).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    /// A scored control whose test failed.
    Fail,
    /// An unscored control whose test failed.
    Warn,
    /// A `type: manual` control: nothing to test on the command line.
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

/// What each reading saw for one flag the control tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observation {
    /// With dashes, as the control spells it.
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
    pub observed: Vec<Observation>,
}

fn combine(bin_op: BinOp, mut results: impl Iterator<Item = bool>) -> bool {
    match bin_op {
        // kube-bench starts from `true` for `and` and from `false` for `or`.
        BinOp::And => results.all(|r| r),
        BinOp::Or => results.any(|r| r),
    }
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
    let line = kube_bench::audit_line(argv);
    let mut observed: Vec<Observation> = Vec::new();
    for flag in control.flags() {
        observed.push(Observation {
            flag,
            kube_bench: kube_bench::find_value(&line, flag),
            flag_parser: effective::value(argv, flag.trim_start_matches('-')),
        });
    }
    if control.manual_check {
        return Evaluation {
            id: control.id,
            status: Status::Manual,
            kube_bench: false,
            flag_parser: false,
            disagreement: None,
            observed,
        };
    }
    let seen = |flag: &str| observed.iter().find(|o| o.flag == flag);
    let per_item: Vec<(bool, bool, &Observation)> = control
        .tests
        .iter()
        .filter_map(|t| {
            let o = seen(t.flag)?;
            Some((
                kube_bench::item_passes(t, o.kube_bench.as_deref()),
                effective::item_passes(t, o.flag_parser.as_deref()),
                o,
            ))
        })
        .collect();
    let kb = combine(control.bin_op, per_item.iter().map(|(k, _, _)| *k));
    let fp = combine(control.bin_op, per_item.iter().map(|(_, f, _)| *f));
    let status = if kb {
        Status::Pass
    } else if control.scored {
        Status::Fail
    } else {
        Status::Warn
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
        id: control.id,
        status,
        kube_bench: kb,
        flag_parser: fp,
        disagreement,
        observed,
    }
}
