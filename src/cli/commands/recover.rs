//! `kharden recover`.

use super::{audit_for, gate_for, Ctx};
use crate::cli::args::RecoverArgs;
use crate::cli::CliResult;
use crate::durable::RealStorage;
use crate::exit;
use crate::journal::AuditSpec;
use crate::journal::JournalRead;
use crate::txn::{self, Engine, SystemClock};

pub fn recover(ctx: &Ctx<'_>, a: &RecoverArgs) -> CliResult {
    let _lock = ctx.lock()?;
    // At boot, almost always nothing is open: answer from a read-only handle, which writes
    // nothing and costs no fsync. A journal that needs redb's repair after a crash refuses a
    // read-only open; then the writable open below repairs it.
    if let Ok(Some(ro)) = crate::journal::JournalReader::open(&ctx.cli.state_dir) {
        if ro.open_ids().is_ok_and(|ids| ids.is_empty()) {
            let unresolved = ro.unresolved().unwrap_or_default();
            ctx.print(
                &format!(
                    "nothing to recover: no open transaction\n{}",
                    reminder(&unresolved)
                ),
                serde_json::json!({"result": "recovered", "exit_code": 0, "transactions": [], "unresolved": unresolved}),
            );
            return Ok(exit::SUCCESS);
        }
    }
    let journal = ctx.open_journal()?;
    let gate = gate_for(ctx, &ctx.gate_spec(&a.gate, None));
    let audit = audit_for(&AuditSpec {
        builtin: true,
        script: None,
        script_timeout_secs: 30,
    });
    let engine = Engine {
        journal: &journal,
        storage: &RealStorage,
        gate: gate.as_ref(),
        audit: audit.as_ref(),
        clock: &SystemClock,
    };
    let report = txn::recover(&engine, a.policy, a.force)?;
    let mut text = String::new();
    if report.transactions.is_empty() {
        text.push_str("nothing to recover: no open transaction\n");
    }
    for t in &report.transactions {
        text.push_str(&format!(
            "transaction {} (found {}): {} -> {}\n",
            t.txid,
            t.found,
            t.action,
            t.state.as_deref().unwrap_or("left open")
        ));
        for p in &t.temps_removed {
            text.push_str(&format!("  removed temp file of {p}\n"));
        }
        for p in &t.conflicts {
            if t.state.is_none() {
                text.push_str(&format!("  CONFLICT: {p} matches neither side\n"));
            } else {
                text.push_str(&format!(
                    "  overwritten (--force): {p} matched neither side\n"
                ));
            }
        }
    }
    let unresolved = journal.unresolved()?;
    text.push_str(&reminder(&unresolved));
    let code = if report.has_conflicts() {
        exit::CONFLICT
    } else if report.needs_manual() {
        exit::NEEDS_MANUAL
    } else {
        exit::SUCCESS
    };
    ctx.print(
        &text,
        serde_json::json!({"result": if code == 0 {"recovered"} else if code == exit::CONFLICT {"conflict"} else {"needs-manual"}, "exit_code": code, "transactions": report.transactions, "unresolved": unresolved}),
    );
    Ok(code)
}

/// NeedsManual transactions still waiting for the operator: recovery cannot finish them (a
/// person must), but says so at every boot until `kharden journal resolve` is run.
fn reminder(unresolved: &[crate::journal::TxId]) -> String {
    unresolved
        .iter()
        .map(|id| {
            format!(
                "transaction {id} still needs manual intervention: its files are refused to every change until `kharden journal resolve {id}` (see `kharden journal show {id}`)\n"
            )
        })
        .collect()
}
