//! `kharden harden`: the library plans and runs; this parses and renders.

use super::{audit_for, kubelet, plan_options, Ctx};
use crate::cli::args::HardenArgs;
use crate::cli::progress::Spinner;
use crate::cli::{render, Output};
use kharden::assess::gather::scan_node;
use kharden::assess::procs;
use kharden::assess::version::{choose_benchmark, manifest_evidence, LiveVersionProbe};
use kharden::assess::SourcePolicy;
use kharden::durable::RealStorage;
use kharden::harden::{self, Grouping, HardenRequest};
use kharden::signals::ProcessSignals;
use kharden::{Error, Result};
use std::time::Duration;

pub fn run(ctx: &Ctx<'_>, a: &HardenArgs) -> Result<Output> {
    let manifests_dir = match &a.manifests {
        // A directory named on the command line must be there (a typo is not "no static pods").
        Some(d) if !d.is_dir() => {
            return Err(Error::Usage(format!(
                "--manifests {}: no such directory",
                d.display()
            )))
        }
        Some(d) => d.clone(),
        None => ctx.root.manifests_dir()?,
    };
    let processes: Vec<_> = procs::scan(&ctx.root.proc_dir())
        .into_iter()
        .filter(|p| p.belongs_to(&ctx.root))
        .collect();
    // The benchmark `kharden audit` would choose on this node: the same version, the same ids.
    let choice = {
        let scan = scan_node(
            &RealStorage,
            &ctx.root,
            &manifests_dir,
            SourcePolicy::Auto,
            processes.clone(),
        )
        .map_err(|e| Error::refused(format!("{}: {e}", manifests_dir.display())))?;
        let probe = LiveVersionProbe {
            scan: &scan,
            timeout: Duration::from_secs(5),
        };
        choose_benchmark(
            a.benchmark.as_deref(),
            a.kubernetes_version.as_deref(),
            manifest_evidence(&scan),
            &probe,
        )?
    };
    let req = HardenRequest {
        bench: super::audit::bench(choice.benchmark)?,
        benchmark_reason: choice.reason.clone(),
        manifests_dir: manifests_dir.clone(),
        root: ctx.root.clone(),
        only: a.only.clone(),
        skip: a.skip.clone(),
        grouping: if a.one_per_control {
            Grouping::PerControl
        } else {
            Grouping::PerComponent
        },
        keep_going: a.keep_going,
        gate: ctx.gate_spec(&a.gate, None)?,
        audit: ctx.audit_spec(&a.audit),
        options: plan_options(&a.safety),
        processes,
        kubelet: Some(kubelet::service(&a.gate)),
    };
    req.validate()?;
    if let Some(script) = &req.audit.script {
        kharden::audit::check_script(std::path::Path::new(script)).map_err(Error::refused)?;
    }
    if a.dry_run {
        return Ok(render::harden(&harden::dry_run(&req, &RealStorage)?));
    }
    let signals = ProcessSignals::install().map_err(|e| Error::Other(format!("signals: {e}")))?;
    let session = ctx.session(vec![manifests_dir], true)?;
    let gate = kubelet::gate(ctx, &req.gate, &a.gate.kubelet_unit);
    let audit = audit_for(&req.audit);
    let spinner = Spinner::new(ctx.json);
    let engine = session
        .engine(gate.as_ref(), audit.as_ref(), &spinner)
        .with_interrupts(&signals);
    Ok(render::harden(&harden::run(&req, &engine)?))
}
