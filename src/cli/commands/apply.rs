//! `kharden apply`.

use super::{audit_for, gate_for, ordered_changes, plan_options, Ctx};
use crate::cli::args::ApplyArgs;
use crate::cli::progress::Spinner;
use crate::cli::{render, Output};
use clap::ArgMatches;
use kharden::apply::{absolute, ApplyRequest};
use kharden::durable::RealStorage;
use kharden::journal::TxnKind;
use kharden::report::TxnReport;
use kharden::signals::ProcessSignals;
use kharden::txn::Outcome;
use kharden::{Error, Result};

pub fn run(ctx: &Ctx<'_>, a: &ApplyArgs, m: &ArgMatches) -> Result<Output> {
    let changes = ordered_changes(m)?;
    if changes.is_empty() {
        return Err(Error::Usage("no change given (use --set, --unset, --add-item, --remove-item, --at-least or --set-key)".into()));
    }
    let req = ApplyRequest {
        manifest: a.manifest.clone(),
        container: a.container.clone(),
        changes,
        gate: ctx.gate_spec(&a.gate, a.container.as_deref())?,
        audit: ctx.audit_spec(&a.audit),
        options: plan_options(&a.safety),
        root: ctx.root.clone(),
    };
    if a.dry_run {
        // Nothing written, nothing journaled.
        let p = req.prepare(&RealStorage)?;
        let what = p.path.display().to_string();
        let report = if p.unchanged() {
            TxnReport::of(&Outcome::Unchanged, &what, "")
        } else {
            TxnReport::dry_run(&what, p.diff)
        };
        return Ok(render::txn(&report));
    }
    let signals = ProcessSignals::install().map_err(|e| Error::Other(format!("signals: {e}")))?;
    // The manifest's own directory is a manifests directory too: no state there.
    let protected = absolute(&a.manifest)?
        .parent()
        .map(|p| vec![p.to_path_buf()])
        .unwrap_or_default();
    // Lock and recover first: recovery may change the very file about to be edited.
    let session = ctx.session(protected, true)?;
    let gate = gate_for(ctx, &req.gate);
    let audit = audit_for(&req.audit);
    let spinner = Spinner::new(ctx.json);
    let engine = session
        .engine(gate.as_ref(), audit.as_ref(), &spinner)
        .with_interrupts(&signals);
    let prepared = match req.prepare(&RealStorage) {
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
    let what = prepared.path.display().to_string();
    if prepared.unchanged() {
        return Ok(render::txn(&TxnReport::of(&Outcome::Unchanged, &what, "")));
    }
    let outcome = engine.run(req.plan(&prepared))?;
    Ok(render::txn(&TxnReport::of(&outcome, &what, &prepared.diff)))
}
