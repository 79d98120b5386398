//! `kharden audit`: the CIS benchmark on this node (as kube-bench reads it, and as the
//! components really run), in the format asked for.

use super::Ctx;
use crate::cli::args::{AuditCmdArgs, ReportFormat, SourceArg};
use crate::cli::{render, render_audit, Output};
use kharden::assess::gather::scan_node;
use kharden::assess::metrics::{audit_metrics, JournalStatus};
use kharden::assess::report::{audit, AuditRequest};
use kharden::assess::targets::parse_targets;
use kharden::assess::version::LiveVersionProbe;
use kharden::assess::{procs, SourcePolicy};
use kharden::durable::RealStorage;
use kharden::journal::JournalRead;
use kharden::txn::{to_ms, Clock, SystemClock};
use kharden::{Error, Result};
use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

/// The benchmark with this id, or a usage error listing the known ones (also `harden`'s).
pub fn bench(id: &str) -> Result<&'static kharden_catalog::Benchmark> {
    kharden_catalog::benchmark(id).ok_or_else(|| {
        Error::Usage(format!(
            "unknown benchmark {id:?}; known: {}",
            kharden_catalog::benchmark_ids().join(", ")
        ))
    })
}

/// Refuse a textfile node_exporter would not read, or one kharden cannot write, before the
/// audit runs.
fn check_textfile(a: &AuditCmdArgs) -> Result<()> {
    let Some(p) = &a.textfile else {
        return Ok(());
    };
    if a.format != ReportFormat::Prometheus {
        return Err(Error::Usage(
            "--textfile is for --format prometheus (node_exporter's textfile collector)".into(),
        ));
    }
    if p.extension().and_then(|e| e.to_str()) != Some("prom") {
        return Err(Error::Usage(format!(
            "--textfile {}: node_exporter's textfile collector only reads files named *.prom",
            p.display()
        )));
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::refused(format!(
            "--textfile {}: {} is not a directory (create node_exporter's \
             --collector.textfile.directory first)",
            p.display(),
            dir.display()
        )));
    }
    Ok(())
}

/// The journal's state and the drift, for the metrics (read-only; no journal is created).
fn journal_and_drift(
    ctx: &Ctx<'_>,
) -> Result<(JournalStatus, Option<kharden::drift::DriftReport>)> {
    match super::drift::open_journal(ctx)? {
        // No journal: nothing committed, nothing drifted (the metrics are there, at zero).
        None => Ok((
            JournalStatus::default(),
            Some(kharden::drift::DriftReport::no_journal()),
        )),
        Some(j) => {
            let status = JournalStatus {
                present: true,
                open: j.open_ids()?.len(),
                unresolved: j.unresolved()?.len(),
            };
            let drift = kharden::drift::drift(&j, &RealStorage)?;
            Ok((status, Some(drift)))
        }
    }
}

pub fn run(ctx: &Ctx<'_>, a: &AuditCmdArgs) -> Result<Output> {
    check_textfile(a)?;
    let targets = if a.targets.is_empty() {
        None
    } else {
        Some(parse_targets(&a.targets).map_err(Error::Usage)?)
    };
    let dir = match &a.manifests {
        // A directory given on the command line must exist (the default one may not: a node
        // without static pods).
        Some(d) if !d.is_dir() => {
            return Err(Error::refused(format!(
                "--manifests {}: not a directory",
                d.display()
            )))
        }
        Some(d) => d.clone(),
        None => ctx.root.manifests_dir()?,
    };
    let policy = match a.source {
        SourceArg::Auto => SourcePolicy::Auto,
        SourceArg::Manifest => SourcePolicy::Manifest,
        SourceArg::Running => SourcePolicy::Running,
    };
    let processes = if policy == SourcePolicy::Manifest {
        Vec::new()
    } else {
        procs::scan(&ctx.root.proc_dir())
    };
    let scan = scan_node(&RealStorage, &ctx.root, &dir, policy, processes)
        .map_err(|e| Error::refused(format!("{}: {e}", dir.display())))?;
    let probe = LiveVersionProbe {
        scan: &scan,
        timeout: Duration::from_secs(5),
    };
    let req = AuditRequest {
        benchmark: a.benchmark.clone(),
        kubernetes_version: a.kubernetes_version.clone(),
        targets,
        fail_code: a.exit_code,
        now_ms: to_ms(SystemClock.now()),
    };
    let report = audit(&req, &scan, &RealStorage, &probe)?;
    let stderr: String = report
        .unreadable
        .iter()
        .map(|u| format!("kharden: {}: {}\n", u.path, u.why))
        .collect();
    let format = if ctx.json {
        ReportFormat::Json
    } else {
        a.format
    };
    let mut text = match format {
        ReportFormat::Json => serde_json::to_string(&report).unwrap_or_default() + "\n",
        ReportFormat::Junit => render_audit::audit_junit(&report),
        ReportFormat::Text => render_audit::audit_text(&report, std::io::stdout().is_terminal()),
        ReportFormat::KubeBenchJson => render_audit::audit_kube_bench_json(&report),
        ReportFormat::Prometheus => String::new(),
    };
    if a.format == ReportFormat::Prometheus {
        let (journal, drift) = journal_and_drift(ctx)?;
        let metrics =
            render_audit::exposition(&audit_metrics(&report, Some(journal), drift.as_ref()));
        match &a.textfile {
            Some(p) => {
                kharden::durable::local::write_atomic(p, metrics.as_bytes(), 0o644)
                    .map_err(|e| Error::refused(format!("--textfile {}: {e}", p.display())))?;
                if !ctx.json {
                    text = format!(
                        "kharden audit: {} metrics written to {} ({} checks, benchmark {})\n",
                        metrics.lines().filter(|l| !l.starts_with('#')).count(),
                        p.display(),
                        report.checks.len(),
                        report.benchmark.benchmark
                    );
                }
            }
            None if !ctx.json => text = metrics,
            None => {}
        }
    }
    Ok(render::output(&report, report.exit_code, text, stderr))
}
