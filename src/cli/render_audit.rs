//! `kharden audit` and `kharden drift` as text, JUnit XML, kube-bench's JSON and Prometheus
//! metrics: every format from the one typed report of each.

use super::render::output;
use super::Output;
use kharden::assess::kube_bench_json;
use kharden::assess::metrics::Family;
use kharden::assess::report::{AuditReport, CheckView};
use kharden::drift::{DriftReport, FileStatus};
use kharden_catalog::Status;

fn colour(label: &str, status: Option<Status>, on: bool) -> String {
    let label = format!("[{label}]");
    if !on {
        return label;
    }
    let code = match status {
        Some(Status::Pass) => "32",
        Some(Status::Fail) => "31",
        Some(Status::Warn) => "33",
        Some(Status::Manual) | None => "36",
    };
    format!("\x1b[{code}m{label}\x1b[0m")
}

fn status_label(c: &CheckView) -> String {
    match c.status {
        Some(s) => s.to_string(),
        None => "WARN".into(),
    }
}

fn effective_label(c: &CheckView) -> &'static str {
    match c.effective {
        Some(true) => "holds",
        Some(false) => "FAILS",
        None => "  -  ",
    }
}

/// The audit as text: the benchmark and why, the targets, then every check by section with
/// kube-bench's verdict and, beside it, whether the control really holds.
pub fn audit_text(r: &AuditReport, colours: bool) -> String {
    let b = &r.benchmark;
    let mut out = format!(
        "kharden audit: benchmark {}\n  why: {}\n",
        b.benchmark, b.reason
    );
    if let Some(m) = &b.mid_upgrade {
        out.push_str(&format!("  NOTE: {m}\n"));
    }
    let selected: Vec<&str> = r
        .targets
        .iter()
        .filter(|t| t.selected)
        .map(|t| t.target.name())
        .collect();
    out.push_str(&format!(
        "  targets: {}\n",
        if selected.is_empty() {
            "none".into()
        } else {
            selected.join(", ")
        }
    ));
    for t in r.targets.iter().filter(|t| !t.selected) {
        out.push_str(&format!("  {}: {}\n", t.target.name(), t.why));
    }
    out.push_str("  columns: kube-bench's verdict, then whether the control really holds\n");
    let mut last = String::new();
    for c in &r.checks {
        if c.section != last {
            let src = c
                .component
                .map(|comp| {
                    let s = r
                        .components
                        .iter()
                        .find(|v| v.component == comp)
                        .map(|v| v.source.as_str())
                        .unwrap_or("not running");
                    format!(" ({comp}: {s})")
                })
                .unwrap_or_default();
            out.push_str(&format!(
                "\n== {} {} [{}]{src}\n",
                c.section,
                c.section_title,
                c.target.name()
            ));
            last = c.section.clone();
        }
        out.push_str(&format!(
            "{:<8} {} {:<7} {}\n",
            colour(&status_label(c), c.status, colours),
            effective_label(c),
            c.id,
            c.title
        ));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("        fix {fix}\n"));
        }
        let runs = c.component.is_some_and(|comp| {
            r.components
                .iter()
                .any(|v| v.component == comp && v.pid.is_some())
        });
        if let (kharden_catalog::Detail::Config { readings }, true) = (&c.detail, runs) {
            // The value the component runs with, and where it comes from, beside kube-bench's.
            let mut uses: Vec<String> = Vec::new();
            for r in readings.iter().filter(|r| r.effective_source != "unknown") {
                let u = format!(
                    "{}={} ({})",
                    r.key.as_deref().unwrap_or(r.flag),
                    r.effective.as_deref().unwrap_or("not set"),
                    r.effective_source
                );
                if !uses.contains(&u) {
                    uses.push(u);
                }
            }
            if !uses.is_empty() {
                out.push_str(&format!("        uses: {}\n", uses.join("; ")));
            }
        }
        if let Some(d) = &c.disagreement {
            out.push_str(&format!("        disagreement: {d}\n"));
        } else if c.effective == Some(false) {
            if let Some(n) = &c.effective_note {
                out.push_str(&format!("        effective: {n}\n"));
            }
        }
        if c.status.is_none() || c.kube_bench == Some(false) {
            if let Some(reason) = &c.reason {
                out.push_str(&format!("        {reason}\n"));
            }
        }
    }
    let s = &r.summary;
    let not_evaluated_effective = r
        .checks
        .iter()
        .filter(|c| {
            c.effective.is_none()
                && c.effective_note
                    .as_deref()
                    .is_some_and(|n| n.starts_with("not evaluated"))
        })
        .count();
    if not_evaluated_effective > 0 {
        out.push_str(&format!(
            "\nnote: the effective reading of {not_evaluated_effective} kubelet check(s) is not \
             evaluated by this build (see -o json, effective_note)\n"
        ));
    }
    for u in &r.unreadable {
        out.push_str(&format!("note: {}: {}\n", u.path, u.why));
    }
    out.push_str(&format!(
        "\n== Summary {}: {} pass, {} fail, {} warn, {} manual, {} not evaluated (kube-bench \
         prints {} PASS, {} FAIL, {} WARN); effective: {} do not hold, {} disagree with \
         kube-bench\n",
        b.benchmark,
        s.pass,
        s.fail,
        s.warn,
        s.manual,
        s.not_evaluated,
        s.pass,
        s.fail,
        s.kube_bench_warn(),
        s.effective_fail,
        s.disagreements
    ));
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The audit as JUnit XML: one test suite per section, a failure per FAIL, WARN and manual
/// checks skipped.
pub fn audit_junit(r: &AuditReport) -> String {
    let bench = r.benchmark.benchmark;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"{bench}\" tests=\"{}\" failures=\"{}\">\n",
        r.checks.len(),
        r.summary.fail
    ));
    let mut sections: Vec<&str> = r.checks.iter().map(|c| c.section.as_str()).collect();
    sections.dedup();
    for sec in sections {
        let cs: Vec<&CheckView> = r.checks.iter().filter(|c| c.section == sec).collect();
        let Some(first) = cs.first() else { continue };
        out.push_str(&format!(
            "  <testsuite name=\"{bench} {sec} {}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
            xml_escape(first.section_title),
            cs.len(),
            cs.iter().filter(|c| c.status == Some(Status::Fail)).count(),
            cs.iter()
                .filter(|c| !matches!(c.status, Some(Status::Pass | Status::Fail)))
                .count()
        ));
        // Which benchmark, and why, in every suite (JUnit's properties).
        out.push_str(&format!(
            "    <properties><property name=\"benchmark\" value=\"{bench}\"/><property name=\"benchmark_reason\" value=\"{}\"/></properties>\n",
            xml_escape(&r.benchmark.reason)
        ));
        for c in cs {
            out.push_str(&format!(
                "    <testcase classname=\"{bench}.{sec}\" name=\"{} {}\">",
                c.id,
                xml_escape(c.title)
            ));
            match c.status {
                Some(Status::Pass) => {}
                Some(Status::Fail) => out.push_str(&format!(
                    "<failure message=\"{}\"/>",
                    xml_escape(&format!(
                        "{} fails: {}",
                        c.id,
                        c.fix.as_deref().unwrap_or(&c.remediation)
                    ))
                )),
                _ => out.push_str(&format!(
                    "<skipped message=\"{}\"/>",
                    xml_escape(c.reason.as_deref().unwrap_or(match c.status {
                        Some(Status::Manual) => "manual check",
                        _ => "unscored check fails",
                    }))
                )),
            }
            if let Some(d) = &c.disagreement {
                out.push_str(&format!("<system-out>{}</system-out>", xml_escape(d)));
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// kube-bench's JSON report (one line, as `kube-bench --json` prints it).
pub fn audit_kube_bench_json(r: &AuditReport) -> String {
    serde_json::to_string(&kube_bench_json::overall(r)).unwrap_or_default() + "\n"
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Metric families in the Prometheus text exposition format 0.0.4 (every family a gauge).
pub fn exposition(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        out.push_str(&format!("# HELP {} {}\n", f.name, escape_help(f.help)));
        out.push_str(&format!("# TYPE {} gauge\n", f.name));
        for s in &f.samples {
            out.push_str(f.name);
            if !s.labels.is_empty() {
                let labels: Vec<String> = s
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                    .collect();
                out.push_str(&format!("{{{}}}", labels.join(",")));
            }
            out.push_str(&format!(" {}\n", value(s.value)));
        }
    }
    out
}

/// `kharden drift` as text.
pub fn drift(r: &DriftReport, diffs: bool) -> Output {
    let mut text = String::new();
    if !r.journal {
        text.push_str("no journal: kharden has committed nothing on this node\n");
    } else if r.files.is_empty() {
        text.push_str("kharden has committed no change to any file on this node\n");
    }
    for f in &r.files {
        let label = match f.status {
            FileStatus::Unchanged => "unchanged".to_string(),
            FileStatus::Changed => "CHANGED by someone else".to_string(),
            FileStatus::Reverted => "REVERTED".to_string(),
            FileStatus::Missing => "MISSING".to_string(),
            FileStatus::Open => "in an open transaction".to_string(),
            FileStatus::NeedsManual => "needs manual intervention".to_string(),
        };
        text.push_str(&format!(
            "{}: {label} (last committed by transaction {})\n",
            f.path, f.txid
        ));
        if !f.controls.is_empty() {
            text.push_str(&format!(
                "  controls kharden applied here: {}\n",
                f.controls.join(", ")
            ));
        }
        // One line per control (or per change of an `apply`), in the report's order.
        let mut lines: Vec<(String, Vec<String>)> = Vec::new();
        for u in &f.undone {
            let key = match &u.control {
                Some(c) => c.clone(),
                None => format!("transaction {}", u.txid),
            };
            match lines.iter_mut().find(|(k, _)| *k == key) {
                Some((_, changes)) => changes.push(u.change.clone()),
                None => lines.push((key, vec![u.change.clone()])),
            }
        }
        for (key, changes) in lines {
            text.push_str(&format!(
                "  no longer in effect: {key} ({})\n",
                changes.join(", ")
            ));
        }
        if let Some(m) = &f.meta_change {
            text.push_str(&format!("  mode and owner changed: {m}\n"));
        }
        if let Some(n) = &f.note {
            text.push_str(&format!("  {n}\n"));
        }
        if diffs && !f.diff.is_empty() {
            for l in f.diff.lines() {
                text.push_str(&format!("  {l}\n"));
            }
        }
    }
    if r.journal && !r.files.is_empty() {
        text.push_str(&format!(
            "\n{} of {} file(s) drifted; controls no longer in effect: {}\n",
            r.drifted,
            r.files.len(),
            if r.controls_undone.is_empty() {
                "none".into()
            } else {
                r.controls_undone.join(", ")
            }
        ));
        if !r.controls_undone.is_empty() {
            text.push_str("`kharden harden` re-applies them as new transactions\n");
        }
    }
    output(r, r.exit_code, text, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kharden::assess::metrics::Sample;

    #[test]
    fn exposition_escapes_and_formats() {
        let f = Family {
            name: "kharden_x",
            help: "a \\ help\nline",
            samples: vec![
                Sample {
                    labels: vec![("path", "/a \"b\"\\c\nd".into())],
                    value: 1.0,
                },
                Sample {
                    labels: vec![],
                    value: 1_718_000_000.25,
                },
            ],
        };
        assert_eq!(
            exposition(&[f]),
            "# HELP kharden_x a \\\\ help\\nline\n# TYPE kharden_x gauge\nkharden_x{path=\"/a \\\"b\\\"\\\\c\\nd\"} 1\nkharden_x 1718000000.25\n"
        );
        assert_eq!(value(f64::NAN), "NaN");
        assert_eq!(value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(value(0.0), "0");
    }
}
