//! `kharden recover`.

use super::{audit_for, kubelet, Ctx};
use crate::cli::args::{PolicyArg, RecoverArgs};
use crate::cli::progress::Spinner;
use crate::cli::{render, Output};
use kharden::journal::{AuditSpec, JournalRead, JournalReader};
use kharden::report::RecoverSummary;
use kharden::signals::ProcessSignals;
use kharden::txn::{self, Policy, RecoverReport};
use kharden::{Error, Result};

pub fn run(ctx: &Ctx<'_>, a: &RecoverArgs) -> Result<Output> {
    // At boot, almost always nothing is open: answer from a read-only handle, which writes
    // nothing and costs no fsync. A journal that needs redb's repair after a crash refuses a
    // read-only open; then the session below (under the lock) repairs it. A journal that is
    // damaged or missing is a fault either way.
    match JournalReader::open(&ctx.cli.state_dir) {
        Ok(Some(ro)) if ro.open_ids().is_ok_and(|ids| ids.is_empty()) => {
            let unresolved = ro.unresolved()?;
            return Ok(render::recover(&RecoverSummary::new(
                RecoverReport::default(),
                unresolved,
            )));
        }
        Ok(None) => {
            return Ok(render::recover(&RecoverSummary::new(
                RecoverReport::default(),
                Vec::new(),
            )))
        }
        Err(e) if e.is_fault() => return Err(e.into()),
        _ => {}
    }
    let policy = match a.policy {
        PolicyArg::Revert => Policy::Revert,
        PolicyArg::Resume => Policy::Resume,
    };
    let signals = ProcessSignals::install().map_err(|e| Error::Other(format!("signals: {e}")))?;
    let session = ctx.session(Vec::new(), false)?;
    let gate = kubelet::gate(ctx, &ctx.gate_spec(&a.gate, None)?, &a.gate.kubelet_unit);
    let audit = audit_for(&AuditSpec {
        builtin: true,
        script: None,
        script_timeout_secs: 30,
    });
    let spinner = Spinner::new(ctx.json);
    let engine = session
        .engine(gate.as_ref(), audit.as_ref(), &spinner)
        .with_interrupts(&signals);
    let report = txn::recover(&engine, policy, a.force)?;
    let unresolved = session.journal().unresolved()?;
    Ok(render::recover(&RecoverSummary::new(report, unresolved)))
}
