//! `kharden audit`: the CIS benchmark on this node (as kube-bench reads it, and as the
//! components really run).

use super::Ctx;
use crate::cli::args::{AuditCmdArgs, ReportFormat, SourceArg};
use crate::cli::{render, Output};
use kharden::assess::{self, SourcePolicy};
use kharden::durable::RealStorage;
use kharden::{Error, Result};
use std::io::IsTerminal;

pub fn bench(id: &str) -> Result<&'static kharden_catalog::Benchmark> {
    kharden_catalog::benchmark(id).ok_or_else(|| {
        Error::Usage(format!(
            "unknown benchmark {id:?}; known: {}",
            kharden_catalog::benchmark_ids().join(", ")
        ))
    })
}

pub fn run(ctx: &Ctx<'_>, a: &AuditCmdArgs) -> Result<Output> {
    let bench = bench(&a.benchmark)?;
    let dir = match &a.manifests {
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
        kharden_gate::ProcScanner::default()
            .processes()
            .unwrap_or_default()
    };
    let (found, unreadable) = assess::discover(&RealStorage, &dir, Some(&processes))
        .map_err(|e| Error::refused(format!("{}: {e}", dir.display())))?;
    let stderr: String = unreadable
        .iter()
        .map(|u| format!("kharden: {}: {}\n", u.path, u.why))
        .collect();
    let report = assess::audit_report(bench, &dir, &found, unreadable, policy, a.exit_code);
    let format = if ctx.json {
        ReportFormat::Json
    } else {
        a.format
    };
    let text = match format {
        ReportFormat::Json => serde_json::to_string(&report).unwrap_or_default() + "\n",
        ReportFormat::Junit => render::audit_junit(&report),
        ReportFormat::Text => render::audit_text(&report, std::io::stdout().is_terminal()),
    };
    Ok(render::output(&report, report.exit_code, text, stderr))
}
