//! `kharden kubelet set KEY=VALUE... [--unset KEY]`: the library finds the kubelet, plans the
//! change on the source that wins and runs it as a gated transaction; this parses and renders.

use super::{plan_options, Ctx};
use crate::cli::args::{KubeletCommand, KubeletSetArgs};
use crate::cli::progress::Spinner;
use crate::cli::{render, Output};
use kharden::audit::StandardAudit;
use kharden::gate::{Gate, NoGate, ProbeGate};
use kharden::journal::{AuditSpec, GateSpec, TxnKind};
use kharden::kubelet::{KubeletReport, KubeletService, SetRequest};
use kharden::signals::ProcessSignals;
use kharden::{Error, Result};
use kharden_kubelet_config::ConfigChange;

/// How this command reaches the kubelet's service manager.
pub fn service(g: &crate::cli::args::GateArgs) -> KubeletService {
    KubeletService {
        unit: g.kubelet_unit.clone(),
        systemctl: g
            .systemctl
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "systemctl".into()),
    }
}

/// The gate of a kubelet transaction (`--no-gate`: none).
pub fn gate(ctx: &Ctx<'_>, spec: &GateSpec, unit: &str) -> Box<dyn Gate> {
    if spec.enabled {
        Box::new(ProbeGate::new(ctx.root.clone()).with_kubelet_unit(unit))
    } else {
        Box::new(NoGate)
    }
}

pub fn run(ctx: &Ctx<'_>, k: &KubeletCommand) -> Result<Output> {
    match k {
        KubeletCommand::Set(a) => set(ctx, a),
    }
}

fn set(ctx: &Ctx<'_>, a: &KubeletSetArgs) -> Result<Output> {
    if a.gate.health_url.is_some() {
        // Bad input gets a clear error: the option would otherwise be silently ignored.
        return Err(Error::Usage(
            "--health-url does not apply to the kubelet: its gate probes the kubelet's own /healthz on the healthzBindAddress:healthzPort of the configuration written (docs/kubelet.md)".into(),
        ));
    }
    let mut changes = Vec::new();
    for s in &a.settings {
        changes.push(ConfigChange::parse_set(s).map_err(|e| Error::Usage(format!("{s}: {e}")))?);
    }
    for u in &a.unset {
        changes.push(
            ConfigChange::parse_unset(u).map_err(|e| Error::Usage(format!("--unset {u}: {e}")))?,
        );
    }
    if changes.is_empty() {
        return Err(Error::Usage(
            "no change given: kharden kubelet set KEY=VALUE... [--unset KEY]".into(),
        ));
    }
    let req = SetRequest {
        root: ctx.root.clone(),
        service: service(&a.gate),
        changes,
        gate: ctx.gate_spec(&a.gate, None)?,
        // The built-in audit always runs on a kubelet change: it is what proves the restarted
        // kubelet reads what was written.
        audit: AuditSpec {
            builtin: true,
            script: None,
            script_timeout_secs: 30,
        },
        options: plan_options(&a.safety),
    };
    if a.dry_run {
        let p = req.prepare()?;
        return Ok(render::kubelet(&KubeletReport::dry_run(&p)));
    }
    let signals = ProcessSignals::install().map_err(|e| Error::Other(format!("signals: {e}")))?;
    // Lock and recover first: recovery may change (and restart) the very kubelet.
    let session = ctx.session(Vec::new(), true)?;
    let gate = gate(ctx, &req.gate, &req.service.unit);
    let spinner = Spinner::new(ctx.json);
    let engine = session
        .engine(gate.as_ref(), &StandardAudit, &spinner)
        .with_interrupts(&signals);
    let p = match req.prepare() {
        Ok(p) => p,
        // Bad input changes nothing; the journal says why.
        Err(Error::Refused { message, code, .. }) => {
            let txid = engine.refuse(TxnKind::Apply, req.summary(), message.clone())?;
            return Err(Error::Refused {
                message,
                txid: Some(txid),
                code,
            });
        }
        Err(e) => return Err(e),
    };
    if p.unchanged() {
        return Ok(render::kubelet(&KubeletReport::dry_run(&p)));
    }
    let outcome = engine.run(req.plan(&p))?;
    Ok(render::kubelet(&KubeletReport::of(&outcome, &p)))
}
