//! `kharden rollback TXID`: undo a committed transaction as a new one.

use super::{audit_for, gate_for, plan_options, Ctx};
use crate::cli::args::RollbackArgs;
use crate::cli::progress::Spinner;
use crate::cli::{render, Output};
use kharden::report::TxnReport;
use kharden::signals::ProcessSignals;
use kharden::users::Names;
use kharden::{Error, Result};

pub fn run(ctx: &Ctx<'_>, a: &RollbackArgs) -> Result<Output> {
    let gate_spec = ctx.gate_spec(&a.gate, None)?;
    let audit_spec = ctx.audit_spec(&a.audit);
    let signals = ProcessSignals::install().map_err(|e| Error::Other(format!("signals: {e}")))?;
    let session = ctx.session(Vec::new(), true)?;
    let gate = gate_for(ctx, &gate_spec);
    let audit = audit_for(&audit_spec);
    let spinner = Spinner::new(ctx.json);
    let engine = session
        .engine(gate.as_ref(), audit.as_ref(), &spinner)
        .with_interrupts(&signals);
    let plan = engine.rollback_plan(a.txid, gate_spec, audit_spec, plan_options(&a.safety))?;
    let names = Names::of_root(&ctx.root, engine.storage);
    let diff = kharden::diff::ops(engine.storage, &plan.ops, &names);
    let outcome = engine.run(plan)?;
    Ok(render::txn(&TxnReport::of(
        &outcome,
        &format!("rollback of transaction {}", a.txid),
        &diff,
    )))
}
