//! `kharden apply`, `kharden edit` and `kharden rollback`.

use super::{audit_for, auto_recover, gate_for, ordered_changes, run_plan, Ctx};
use crate::cli::args::{ApplyArgs, EditArgs, RollbackArgs};
use crate::cli::format;
use crate::cli::{CliError, CliResult};
use crate::durable::{hash, RealStorage, Storage};
use crate::exit;
use crate::journal::{RollbackCause, TxnKind};
use crate::txn::{Engine, FileOp, Outcome, Plan, SystemClock};
use clap::ArgMatches;
use kharden_manifest::{Change, Edited};
use std::path::Path;

/// The absolute path of a file named on the command line (its directory canonicalized, the
/// name itself kept, so that a symlink is still refused by the storage layer). The journal
/// stores absolute paths: recovery may run from another working directory.
pub fn absolute(path: &Path) -> Result<std::path::PathBuf, CliError> {
    let name = path
        .file_name()
        .ok_or_else(|| CliError::error(format!("{}: not a file name", path.display())))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = std::fs::canonicalize(dir)
        .map_err(|e| CliError::error(format!("{}: {e}", dir.display())))?;
    Ok(dir.join(name))
}

/// Read a manifest the way the engine will (no symlinks, regular files only).
fn read_manifest(path: &Path) -> Result<Vec<u8>, CliError> {
    match RealStorage.read(path)? {
        Some(s) => Ok(s.contents),
        None => Err(CliError::error(format!("{}: no such file", path.display()))),
    }
}

/// Run the editor, turning a refusal into "file: line N: reason".
fn run_editor(
    path: &Path,
    contents: &[u8],
    container: Option<&str>,
    changes: &[Change],
) -> Result<Edited, CliError> {
    if changes.is_empty() {
        return Err(CliError::new(exit::USAGE, "no change given (use --set, --unset, --add-item, --remove-item, --at-least or --set-key)"));
    }
    kharden_manifest::edit(contents, container, changes)
        .map_err(|e| CliError::error(format!("{}: {e}", path.display())))
}

fn summary(path: &Path, changes: &[Change]) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(
        "apply {name}: {}",
        changes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

pub fn edit(ctx: &Ctx<'_>, a: &EditArgs, m: &ArgMatches) -> CliResult {
    let changes = ordered_changes(m)?;
    let contents = read_manifest(&a.manifest)?;
    let edited = run_editor(&a.manifest, &contents, a.container.as_deref(), &changes)?;
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({
                "file": a.manifest.display().to_string(),
                "container": edited.after.container,
                "changed": !edited.unchanged(),
                "argv_before": edited.before.argv,
                "argv_after": edited.after.argv,
                "replaced": edited.replaced.iter().map(|r| [r.start, r.end]).collect::<Vec<_>>(),
                "output": String::from_utf8_lossy(&edited.output),
            })
        );
    } else {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(&edited.output)
            .and_then(|_| out.flush())
            .map_err(|e| CliError::error(format!("stdout: {e}")))?;
    }
    Ok(exit::SUCCESS)
}

pub fn apply(ctx: &Ctx<'_>, a: &ApplyArgs, m: &ArgMatches) -> CliResult {
    let changes = ordered_changes(m)?;
    if changes.is_empty() {
        return Err(CliError::new(exit::USAGE, "no change given (use --set, --unset, --add-item, --remove-item, --at-least or --set-key)"));
    }
    // Lock and recover first: recovery may change the very file we are about to edit.
    let held = if a.dry_run {
        None
    } else {
        let lock = ctx.lock()?;
        let journal = ctx.open_journal()?;
        auto_recover(&journal)?;
        Some((lock, journal))
    };
    let gate_spec = ctx.gate_spec(&a.gate, a.container.as_deref());
    let prepared = (|| {
        let contents = read_manifest(&a.manifest)?;
        let edited = run_editor(&a.manifest, &contents, a.container.as_deref(), &changes)?;
        if gate_spec.enabled && !edited.unchanged() {
            // Refuse before any change when the gate could not run (no probe, no argv).
            crate::probe_gate::params_for(
                &ctx.root,
                &gate_spec,
                &edited.output,
                None,
                std::time::SystemTime::now(),
            )
            .map_err(|why| {
                CliError::error(format!(
                    "{}: cannot gate this change: {why}",
                    a.manifest.display()
                ))
            })?;
        }
        Ok::<_, CliError>((contents, edited, absolute(&a.manifest)?))
    })();
    let (contents, edited, path) = match prepared {
        Ok(p) => p,
        Err(e) => {
            // Bad input changes nothing; the journal says why (not for --dry-run, which
            // journals nothing).
            if let Some((_, journal)) = &held {
                let id = journal.record_refusal(
                    TxnKind::Apply,
                    summary(&a.manifest, &changes),
                    Vec::new(),
                    format!("{}: {}", a.manifest.display(), e.message),
                    crate::txn::to_ms(std::time::SystemTime::now()),
                )?;
                return Err(CliError::new(
                    e.code,
                    format!("{} (refusal recorded as transaction {id})", e.message),
                ));
            }
            return Err(e);
        }
    };
    let path_str = path.display().to_string();
    let diff = format::unified(&path_str, Some(&contents), Some(&edited.output));
    let Some((_lock, journal)) = held.filter(|_| !edited.unchanged()) else {
        let result = if edited.unchanged() {
            "unchanged"
        } else {
            "dry-run"
        };
        let text = if edited.unchanged() {
            format!("{path_str}: unchanged (already so)\n")
        } else {
            diff.clone()
        };
        ctx.print(&text, serde_json::json!({"result": result, "changed": false, "file": path_str, "diff": diff, "exit_code": 0}));
        return Ok(exit::SUCCESS);
    };
    let audit_spec = ctx.audit_spec(&a.audit);
    let gate = gate_for(ctx, &gate_spec);
    let audit = audit_for(&audit_spec);
    let engine = Engine {
        journal: &journal,
        storage: &RealStorage,
        gate: gate.as_ref(),
        audit: audit.as_ref(),
        clock: &SystemClock,
    };
    let plan = Plan {
        kind: TxnKind::Apply,
        summary: summary(&a.manifest, &changes),
        ops: vec![FileOp {
            path: path.clone(),
            after: Some(edited.output.clone()),
            expect_before: Some(Some(hash(&contents))),
            changes: changes.clone(),
            gated: true,
        }],
        gate: gate_spec,
        audit: audit_spec,
    };
    let outcome = run_plan(&engine, plan)?;
    Ok(report(ctx, &outcome, &path_str, &diff))
}

/// The exit code of an outcome.
pub fn report_code(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::Unchanged | Outcome::Committed { .. } => exit::SUCCESS,
        Outcome::RolledBack { cause, .. } => match cause {
            RollbackCause::GateFailed => exit::ROLLED_BACK_GATE,
            RollbackCause::AuditFailed => exit::ROLLED_BACK_AUDIT,
            RollbackCause::WriteFailed | RollbackCause::Recovery => exit::ERROR,
        },
        Outcome::NeedsManual { .. } => exit::NEEDS_MANUAL,
    }
}

/// Print an outcome and return its exit code.
pub fn report(ctx: &Ctx<'_>, outcome: &Outcome, what: &str, diff: &str) -> u8 {
    let (result, code, text, txid, reason) = match outcome {
        Outcome::Unchanged => (
            "unchanged",
            exit::SUCCESS,
            format!("{what}: unchanged (already so)\n"),
            None,
            None,
        ),
        Outcome::Committed { txid } => (
            "committed",
            exit::SUCCESS,
            format!("{diff}transaction {txid} committed: {what}\n"),
            Some(*txid),
            None,
        ),
        Outcome::RolledBack {
            txid,
            cause,
            reason,
        } => {
            let code = match cause {
                RollbackCause::GateFailed => exit::ROLLED_BACK_GATE,
                RollbackCause::AuditFailed => exit::ROLLED_BACK_AUDIT,
                RollbackCause::WriteFailed | RollbackCause::Recovery => exit::ERROR,
            };
            (
                "rolled-back",
                code,
                format!("transaction {txid} ROLLED BACK: {reason}\nthe previous {what} is restored and healthy; see `kharden journal show {txid}`\n"),
                Some(*txid),
                Some(reason.clone()),
            )
        }
        Outcome::NeedsManual { txid, reason } => (
            "needs-manual",
            exit::NEEDS_MANUAL,
            format!("transaction {txid} NEEDS MANUAL INTERVENTION: {reason}\n"),
            Some(*txid),
            Some(reason.clone()),
        ),
    };
    if code == exit::NEEDS_MANUAL
        || code == exit::ROLLED_BACK_GATE
        || code == exit::ROLLED_BACK_AUDIT
    {
        if !ctx.json {
            eprint!("{text}");
        }
        ctx.print("", serde_json::json!({"result": result, "changed": false, "txid": txid, "reason": reason, "exit_code": code, "file": what}));
    } else {
        ctx.print(
            &text,
            serde_json::json!({"result": result, "changed": matches!(outcome, Outcome::Committed{..}), "txid": txid, "reason": reason, "exit_code": code, "file": what, "diff": diff}),
        );
    }
    code
}

pub fn rollback(ctx: &Ctx<'_>, a: &RollbackArgs) -> CliResult {
    let _lock = ctx.lock()?;
    let journal = ctx.open_journal()?;
    auto_recover(&journal)?;
    let gate_spec = ctx.gate_spec(&a.gate, None);
    let audit_spec = ctx.audit_spec(&a.audit);
    let gate = gate_for(ctx, &gate_spec);
    let audit = audit_for(&audit_spec);
    let engine = Engine {
        journal: &journal,
        storage: &RealStorage,
        gate: gate.as_ref(),
        audit: audit.as_ref(),
        clock: &SystemClock,
    };
    let plan = engine.rollback_plan(a.txid, gate_spec, audit_spec)?;
    let mut diff = String::new();
    for op in &plan.ops {
        let cur = RealStorage.read(&op.path)?.map(|s| s.contents);
        diff.push_str(&format::unified(
            &op.path.display().to_string(),
            cur.as_deref(),
            op.after.as_deref(),
        ));
    }
    let outcome = run_plan(&engine, plan)?;
    Ok(report(
        ctx,
        &outcome,
        &format!("rollback of transaction {}", a.txid),
        &diff,
    ))
}
