//! `kharden audit` and `kharden harden`.

use super::apply::{absolute, report_code};
use super::{audit_for, auto_recover, gate_for, run_plan, Ctx};
use crate::cis::{self, ControlResult, Found, SourcePolicy, HARDEN_ORDER};
use crate::cli::args::{CisAuditArgs, HardenArgs, ReportFormat};
use crate::cli::format;
use crate::cli::{CliError, CliResult};
use crate::durable::{hash, RealStorage, Storage};
use crate::exit;
use crate::journal::TxnKind;
use crate::txn::{Engine, FileOp, Outcome, Plan, SystemClock};
use kharden_catalog::{Benchmark, Control, Status};
use serde_json::json;
use std::io::IsTerminal;
use std::path::PathBuf;

fn bench(id: &str) -> Result<&'static Benchmark, CliError> {
    kharden_catalog::benchmark(id).ok_or_else(|| {
        CliError::new(
            exit::USAGE,
            format!(
                "unknown benchmark {id:?}; known: {}",
                kharden_catalog::benchmark_ids().join(", ")
            ),
        )
    })
}

fn manifests_dir(ctx: &Ctx<'_>, given: &Option<PathBuf>) -> PathBuf {
    given.clone().unwrap_or_else(|| ctx.root.manifests_dir())
}

fn colour(status: Status, on: bool) -> String {
    let label = format!("[{status}]");
    if !on {
        return label;
    }
    let code = match status {
        Status::Pass => "32",
        Status::Fail => "31",
        Status::Warn => "33",
        Status::Manual => "36",
    };
    format!("\x1b[{code}m{label}\x1b[0m")
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

/// The audit table as text, grouped by section.
fn render_text(
    bench: &Benchmark,
    results: &[ControlResult],
    found: &[Found],
    colours: bool,
) -> String {
    let mut out = String::new();
    let mut last = "";
    for r in results {
        let (sec, name) = cis::section(r.id);
        if sec != last {
            let src = found
                .iter()
                .find(|f| f.component == r.component)
                .and_then(|f| f.flags(SourcePolicy::Auto).map(|(_, s)| s.to_string()))
                .unwrap_or_else(|| "not found".into());
            out.push_str(&format!("\n== {sec} {name} ({}: {src})\n", r.component));
            last = sec;
        }
        out.push_str(&format!(
            "{} {:<7} {}\n",
            colour(r.status, colours),
            r.id,
            r.title
        ));
        if r.failing() {
            if let Some(c) = bench.control(r.id) {
                out.push_str(&format!("        fix {}\n", fix_text(c)));
            }
        }
        if let Some(d) = r.evaluation.as_ref().and_then(|e| e.disagreement.as_ref()) {
            out.push_str(&format!(
                "        note: kube-bench and the flag parser disagree: {d}\n"
            ));
        }
        if r.evaluation.is_none() {
            if let Some(n) = &r.note {
                out.push_str(&format!("        {n}\n"));
            }
        }
    }
    let count = |s: Status| results.iter().filter(|r| r.status == s).count();
    out.push_str(&format!(
        "\n== Summary {}: {} pass, {} fail, {} warn, {} manual\n",
        bench.id,
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Warn),
        count(Status::Manual)
    ));
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn render_junit(bench: &Benchmark, results: &[ControlResult]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let failures = results.iter().filter(|r| r.status == Status::Fail).count();
    out.push_str(&format!(
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{failures}\">\n",
        bench.id,
        results.len()
    ));
    let mut sections: Vec<&str> = results.iter().map(|r| cis::section(r.id).0).collect();
    sections.dedup();
    for sec in sections {
        let rs: Vec<&ControlResult> = results
            .iter()
            .filter(|r| cis::section(r.id).0 == sec)
            .collect();
        out.push_str(&format!(
            "  <testsuite name=\"{} {sec} {}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
            bench.id,
            cis::section(rs[0].id).1,
            rs.len(),
            rs.iter().filter(|r| r.status == Status::Fail).count(),
            rs.iter()
                .filter(|r| matches!(r.status, Status::Warn | Status::Manual))
                .count()
        ));
        for r in rs {
            out.push_str(&format!(
                "    <testcase classname=\"{}.{}\" name=\"{} {}\">",
                bench.id,
                sec,
                r.id,
                xml_escape(r.title)
            ));
            let detail = r.source.as_ref().map(|s| s.to_string()).unwrap_or_default();
            match r.status {
                Status::Pass => {}
                Status::Fail => out.push_str(&format!(
                    "<failure message=\"{} fails on {}\"/>",
                    r.id,
                    xml_escape(&detail)
                )),
                Status::Warn | Status::Manual => out.push_str(&format!(
                    "<skipped message=\"{}\"/>",
                    xml_escape(r.note.as_deref().unwrap_or(match r.status {
                        Status::Manual => "manual check",
                        _ => "unscored control fails",
                    }))
                )),
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn result_json(r: &ControlResult) -> serde_json::Value {
    json!({
        "id": r.id,
        "title": r.title,
        "component": r.component.name(),
        "scored": r.scored,
        "status": r.status,
        "source": r.source,
        "automatable": r.automatable,
        "kube_bench": r.evaluation.as_ref().map(|e| e.kube_bench),
        "flag_parser": r.evaluation.as_ref().map(|e| e.flag_parser),
        "disagreement": r.evaluation.as_ref().and_then(|e| e.disagreement.clone()),
        "note": r.note,
    })
}

pub fn audit(ctx: &Ctx<'_>, a: &CisAuditArgs) -> CliResult {
    let bench = bench(&a.benchmark)?;
    let dir = manifests_dir(ctx, &a.manifests);
    let (found, unreadable) = cis::discover(&dir, a.source != SourcePolicy::Manifest)
        .map_err(|e| CliError::error(format!("{}: {e}", dir.display())))?;
    for u in &unreadable {
        eprintln!("kharden: {}: {}", u.path, u.why);
    }
    let results = cis::audit(bench, &found, a.source);
    let scored_fail = results.iter().any(|r| r.scored && r.status == Status::Fail);
    let code = if scored_fail {
        a.exit_code
    } else {
        exit::SUCCESS
    };
    let format = if ctx.json {
        ReportFormat::Json
    } else {
        a.format
    };
    match format {
        ReportFormat::Json => println!(
            "{}",
            json!({
                "benchmark": bench.id,
                "manifests": dir.display().to_string(),
                "controls": results.iter().map(result_json).collect::<Vec<_>>(),
                "unreadable": unreadable,
                "summary": {
                    "pass": results.iter().filter(|r| r.status == Status::Pass).count(),
                    "fail": results.iter().filter(|r| r.status == Status::Fail).count(),
                    "warn": results.iter().filter(|r| r.status == Status::Warn).count(),
                    "manual": results.iter().filter(|r| r.status == Status::Manual).count(),
                },
                "exit_code": code,
            })
        ),
        ReportFormat::Junit => print!("{}", render_junit(bench, &results)),
        ReportFormat::Text => print!(
            "{}",
            render_text(bench, &results, &found, std::io::stdout().is_terminal())
        ),
    }
    Ok(code)
}

/// What happened to one unit of work (a control, or a component's controls with `--batch`).
#[derive(Debug, Clone, serde::Serialize)]
struct Step {
    controls: Vec<&'static str>,
    component: &'static str,
    result: String,
    txid: Option<u64>,
    reason: Option<String>,
}

/// Build the plan for some controls of one component on top of `contents`. Returns the edited
/// manifest, the file ops (extra files first, manifest last) and the controls actually planned
/// (those blocked are returned apart).
#[allow(clippy::type_complexity)]
fn plan_controls(
    ctx: &Ctx<'_>,
    f: &Found,
    contents: &[u8],
    controls: &[&'static Control],
) -> Result<
    (
        Vec<FileOp>,
        Vec<&'static str>,
        Vec<(&'static str, String)>,
        Vec<u8>,
    ),
    CliError,
> {
    let info = kharden_manifest::inspect(contents, None)
        .map_err(|e| CliError::error(format!("{}: {e}", f.manifest.display())))?;
    let flags = info
        .argv
        .get(info.flags_start..)
        .unwrap_or_default()
        .to_vec();
    let mut changes = Vec::new();
    let mut files: Vec<FileOp> = Vec::new();
    let mut planned = Vec::new();
    let mut blocked = Vec::new();
    'controls: for c in controls {
        let Some(r) = c.remediation() else { continue };
        if let Err(b) = r.check_guards(&flags) {
            blocked.push((
                c.id,
                b.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
            continue;
        }
        let mut mine = Vec::new();
        for x in &r.files {
            let path = ctx.root.resolve(&x.path);
            if files.iter().any(|o| o.path == path) {
                continue;
            }
            match RealStorage.read(&path)? {
                Some(s) if s.contents == x.contents.as_bytes() => {}
                Some(_) => {
                    blocked.push((
                        c.id,
                        format!(
                            "{} exists with other contents; kharden will not replace it",
                            path.display()
                        ),
                    ));
                    continue 'controls;
                }
                None => mine.push(FileOp {
                    path,
                    after: Some(x.contents.as_bytes().to_vec()),
                    expect_before: Some(None),
                    changes: Vec::new(),
                    gated: false,
                }),
            }
        }
        files.extend(mine);
        changes.extend(r.changes.iter().cloned());
        planned.push(c.id);
    }
    let edited = if changes.is_empty() {
        contents.to_vec()
    } else {
        kharden_manifest::edit(contents, None, &changes)
            .map_err(|e| CliError::error(format!("{}: {e}", f.manifest.display())))?
            .output
    };
    files.push(FileOp {
        path: absolute(&f.manifest)?,
        after: Some(edited.clone()),
        expect_before: Some(Some(hash(contents))),
        changes,
        gated: true,
    });
    Ok((files, planned, blocked, edited))
}

pub fn harden(ctx: &Ctx<'_>, a: &HardenArgs) -> CliResult {
    let bench = bench(&a.benchmark)?;
    for id in a.only.iter().chain(&a.skip) {
        if bench.control(id).is_none() {
            return Err(CliError::new(
                exit::USAGE,
                format!("unknown control {id:?} in {}", bench.id),
            ));
        }
    }
    let held = if a.dry_run {
        None
    } else {
        let lock = ctx.lock()?;
        let journal = ctx.open_journal()?;
        auto_recover(&journal)?;
        Some((lock, journal))
    };
    let dir = manifests_dir(ctx, &a.manifests);
    let (found, unreadable) = cis::discover(&dir, false)
        .map_err(|e| CliError::error(format!("{}: {e}", dir.display())))?;
    for u in &unreadable {
        eprintln!("kharden: {}: {}", u.path, u.why);
    }
    // Plan on the manifests: they are what this command changes.
    let before = cis::audit(bench, &found, SourcePolicy::Manifest);
    let selected = |id: &str| {
        (a.only.is_empty() || a.only.iter().any(|o| o == id)) && !a.skip.iter().any(|s| s == id)
    };
    let passed_before: Vec<&str> = before
        .iter()
        .filter(|r| r.status == Status::Pass)
        .map(|r| r.id)
        .collect();
    let manual: Vec<(&str, String)> = before
        .iter()
        .filter(|r| selected(r.id) && r.failing() && !r.automatable)
        .map(|r| (r.id, r.note.clone().unwrap_or_default()))
        .collect();
    let not_evaluated: Vec<(&str, String)> = before
        .iter()
        .filter(|r| selected(r.id) && r.evaluation.is_none())
        .map(|r| (r.id, r.note.clone().unwrap_or_default()))
        .collect();
    let gate_spec = ctx.gate_spec(&a.gate, None);
    let audit_spec = ctx.audit_spec(&a.audit);
    let gate = gate_for(ctx, &gate_spec);
    let audit = audit_for(&audit_spec);
    let mut steps: Vec<Step> = Vec::new();
    let mut text = String::new();
    let mut code = exit::SUCCESS;
    'components: for comp in HARDEN_ORDER {
        let Some(f) = found.iter().find(|f| f.component == comp) else {
            continue;
        };
        let todo: Vec<&'static Control> = before
            .iter()
            .filter(|r| r.component == comp && selected(r.id) && r.failing() && r.automatable)
            .filter_map(|r| bench.control(r.id))
            .collect();
        if todo.is_empty() {
            continue;
        }
        let groups: Vec<Vec<&'static Control>> = if a.batch {
            vec![todo]
        } else {
            todo.into_iter().map(|c| vec![c]).collect()
        };
        // For --dry-run, edits chain in memory; otherwise each transaction reads the file anew.
        let mut current = f.contents.clone();
        for group in groups {
            if held.is_some() {
                current = RealStorage
                    .read(&f.manifest)?
                    .map(|s| s.contents)
                    .unwrap_or_default();
            }
            let (ops, planned, blocked, edited) = plan_controls(ctx, f, &current, &group)?;
            for (id, why) in blocked {
                steps.push(Step {
                    controls: vec![id],
                    component: comp.name(),
                    result: "blocked".into(),
                    txid: None,
                    reason: Some(why),
                });
            }
            if planned.is_empty() {
                continue;
            }
            let mut diff = String::new();
            for op in &ops {
                let cur = if op.gated {
                    Some(current.clone())
                } else {
                    None
                };
                if cur.as_deref() != op.after.as_deref() {
                    diff.push_str(&format::unified(
                        &op.path.display().to_string(),
                        cur.as_deref(),
                        op.after.as_deref(),
                    ));
                }
            }
            let Some((_, journal)) = &held else {
                text.push_str(&format!(
                    "== plan: {} on {}\n{diff}",
                    planned.join(", "),
                    comp
                ));
                steps.push(Step {
                    controls: planned,
                    component: comp.name(),
                    result: "planned".into(),
                    txid: None,
                    reason: None,
                });
                current = edited;
                continue;
            };
            let engine = Engine {
                journal,
                storage: &RealStorage,
                gate: gate.as_ref(),
                audit: audit.as_ref(),
                clock: &SystemClock,
            };
            eprintln!("kharden: fixing {} on {} ...", planned.join(", "), comp);
            let outcome = match run_plan(
                &engine,
                Plan {
                    kind: TxnKind::Harden {
                        controls: planned.iter().map(|s| s.to_string()).collect(),
                    },
                    summary: format!("harden {}: {}", comp, planned.join(", ")),
                    ops,
                    gate: gate_spec.clone(),
                    audit: audit_spec.clone(),
                },
            ) {
                Ok(o) => o,
                // A file of an unresolved needs-manual transaction: nothing was changed (the
                // refusal is journaled). Other components' files are still free to fix.
                Err(e) if e.code == exit::NEEDS_MANUAL => {
                    steps.push(Step {
                        controls: planned,
                        component: comp.name(),
                        result: "refused".into(),
                        txid: None,
                        reason: Some(e.message),
                    });
                    code = exit::NEEDS_MANUAL;
                    if a.keep_going {
                        continue 'components;
                    }
                    break 'components;
                }
                Err(e) => return Err(e),
            };
            let (result, txid, reason) = match &outcome {
                Outcome::Unchanged => ("unchanged", None, None),
                Outcome::Committed { txid } => ("fixed", Some(*txid), None),
                Outcome::RolledBack { txid, reason, .. } => {
                    ("rolled-back", Some(*txid), Some(reason.clone()))
                }
                Outcome::NeedsManual { txid, reason } => {
                    ("needs-manual", Some(*txid), Some(reason.clone()))
                }
            };
            steps.push(Step {
                controls: planned,
                component: comp.name(),
                result: result.into(),
                txid,
                reason,
            });
            let c = report_code(&outcome);
            if c != exit::SUCCESS {
                code = c;
                if c == exit::NEEDS_MANUAL || !a.keep_going {
                    break 'components;
                }
            }
        }
    }
    // What the manifests say now.
    let after: Vec<ControlResult> = if held.is_some() {
        let (found_after, _) = cis::discover(&dir, false)
            .map_err(|e| CliError::error(format!("{}: {e}", dir.display())))?;
        cis::audit(bench, &found_after, SourcePolicy::Manifest)
    } else {
        Vec::new()
    };
    let list = |result: &str| -> Vec<String> {
        steps
            .iter()
            .filter(|s| s.result == result)
            .map(|s| {
                let mut t = s.controls.join(", ");
                if let Some(x) = s.txid {
                    t.push_str(&format!(" (transaction {x})"));
                }
                if let Some(r) = &s.reason {
                    t.push_str(&format!(": {r}"));
                }
                t
            })
            .collect()
    };
    text.push_str(&format!(
        "\n== harden {} summary{}\n",
        bench.id,
        if a.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    ));
    text.push_str(&format!(
        "passed before: {}\n",
        if passed_before.is_empty() {
            "none".into()
        } else {
            passed_before.join(", ")
        }
    ));
    for (label, key) in [
        ("fixed", "fixed"),
        ("planned", "planned"),
        ("rolled back", "rolled-back"),
        ("needs manual", "needs-manual"),
        (
            "refused (files of an unresolved needs-manual transaction)",
            "refused",
        ),
        ("blocked", "blocked"),
    ] {
        let l = list(key);
        if !l.is_empty() {
            text.push_str(&format!("{label}:\n"));
            for x in l {
                text.push_str(&format!("  {x}\n"));
            }
        }
    }
    if !manual.is_empty() {
        text.push_str("left manual:\n");
        for (id, why) in &manual {
            text.push_str(&format!("  {id}: {why}\n"));
        }
    }
    if !not_evaluated.is_empty() {
        text.push_str("not evaluated:\n");
        for (id, why) in &not_evaluated {
            text.push_str(&format!("  {id}: {why}\n"));
        }
    }
    if !after.is_empty() {
        let failing: Vec<&str> = after
            .iter()
            .filter(|r| r.failing() && r.automatable)
            .map(|r| r.id)
            .collect();
        text.push_str(&format!(
            "automatable controls still failing: {}\n",
            if failing.is_empty() {
                "none".into()
            } else {
                failing.join(", ")
            }
        ));
    }
    ctx.print(
        &text,
        json!({
            "benchmark": bench.id,
            "dry_run": a.dry_run,
            "passed_before": passed_before,
            "steps": steps,
            "manual": manual.iter().map(|(id, why)| json!({"id": id, "reason": why})).collect::<Vec<_>>(),
            "not_evaluated": not_evaluated.iter().map(|(id, why)| json!({"id": id, "reason": why})).collect::<Vec<_>>(),
            "still_failing": after.iter().filter(|r| r.failing() && r.automatable).map(|r| r.id).collect::<Vec<_>>(),
            "exit_code": code,
        }),
    );
    Ok(code)
}
