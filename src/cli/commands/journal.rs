//! `kharden journal log|show|diff|verify|prune|resolve`. Text output reads like `jj op log`.

use super::Ctx;
use crate::cli::args::JournalCommand;
use crate::cli::format::{self, short, time};
use crate::cli::{CliError, CliResult};
use crate::exit;
use crate::journal::JournalRead;
use crate::journal::{hex, Event, EventKind, Image, Inspector, Journal, State, TxnKind, TxnRecord};
use serde_json::{json, Value};

/// Open for reading: read-only (alongside a running kharden) when possible; when redb wants a
/// repair after a crash, take the lock and open it for writing.
fn open_for_read(ctx: &Ctx<'_>) -> Result<Option<Inspector>, CliError> {
    match crate::journal::JournalReader::open(&ctx.cli.state_dir) {
        Ok(j) => Ok(j.map(Inspector::ReadOnly)),
        Err(e) if e.is_fault() => Err(e.into()),
        Err(e) => {
            tracing::info!("read-only open failed ({e}); opening under the lock");
            let _lock = ctx.lock()?;
            Ok(Journal::open_existing(&ctx.cli.state_dir)?.map(Inspector::Repaired))
        }
    }
}

fn image_json(img: &Option<Image>) -> Value {
    match img {
        None => Value::Null,
        Some(i) => {
            json!({"hash": hex(&i.hash), "len": i.len, "mode": format!("{:04o}", i.meta.mode), "uid": i.meta.uid, "gid": i.meta.gid})
        }
    }
}

fn kind_text(k: &TxnKind) -> String {
    match k {
        TxnKind::Apply => "apply".into(),
        TxnKind::Rollback { of } => format!("rollback of {of}"),
        TxnKind::Harden { controls } => format!("harden {}", controls.join(",")),
    }
}

pub fn txn_json(r: &TxnRecord) -> Value {
    json!({
        "txid": r.id,
        "state": r.state.name(),
        "kind": kind_text(&r.kind),
        "summary": r.summary,
        "created": time(r.created_ms),
        "created_ms": r.created_ms,
        "updated_ms": r.updated_ms,
        "reason": r.reason,
        "rollback_cause": r.rollback_cause.map(|c| format!("{c:?}")),
        "deadline_ms": r.deadline_ms,
        "gate": {"enabled": r.gate.enabled, "timeout_secs": r.gate.timeout_secs, "stable_for_secs": r.gate.stable_for_secs, "health_url": r.gate.health_url},
        "audit": {"builtin": r.audit.builtin, "script": r.audit.script},
        "files": r.files.iter().map(|f| json!({
            "path": f.path,
            "before": image_json(&f.before),
            "after": image_json(&f.after),
            "changes": f.changes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn event_text(e: &Event) -> String {
    match &e.kind {
        EventKind::State { state, note } => match note {
            Some(n) => format!("state {state}: {n}"),
            None => format!("state {state}"),
        },
        EventKind::FileWritten { path, side } => format!("wrote {path} ({side:?} side)"),
        EventKind::FileRemoved { path, side } => format!("removed {path} ({side:?} side)"),
        EventKind::Probe {
            class,
            pid,
            restarted,
            detail,
        } => format!(
            "probe {class:?} pid={} {}{}",
            pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            if *restarted {
                "(restarted) "
            } else {
                "(old or none) "
            },
            detail
        ),
        EventKind::Audit {
            passed,
            detail,
            output,
        } => format!(
            "audit {}: {detail}{}",
            if *passed { "passed" } else { "FAILED" },
            output
                .as_ref()
                .map(|o| format!("\n{}", indent(o, "        │ ")))
                .unwrap_or_default()
        ),
        EventKind::Recovery { action } => format!("recovery: {action}"),
        EventKind::Conflict { path, found } => format!(
            "conflict: {path} matches neither side (found {})",
            found.as_ref().map(short).unwrap_or_else(|| "absent".into())
        ),
        EventKind::TempRemoved { path } => format!("removed temp file of {path}"),
        EventKind::Note(n) => n.clone(),
        EventKind::Resolved { note } => match note {
            Some(n) => format!("resolved by the operator: {n}"),
            None => "resolved by the operator".into(),
        },
    }
}

fn indent(s: &str, prefix: &str) -> String {
    s.lines()
        .map(|l| format!("{prefix}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn event_json(e: &Event) -> Value {
    json!({"time": time(e.time_ms), "time_ms": e.time_ms, "event": event_text(e), "kind": serde_json::to_value(&e.kind).unwrap_or(Value::Null)})
}

fn glyph(s: State) -> &'static str {
    match s {
        State::Committed => "○",
        State::RolledBack | State::Aborted => "◌",
        State::NeedsManual => "✗",
        _ => "@",
    }
}

pub fn journal(ctx: &Ctx<'_>, cmd: &JournalCommand) -> CliResult {
    match cmd {
        JournalCommand::Log { limit, state } => {
            let filter = match state {
                Some(s) => Some(State::parse(s).ok_or_else(|| {
                    CliError::new(
                        exit::USAGE,
                        format!(
                            "unknown state {s:?}; one of: {}",
                            State::ALL.map(|s| s.name()).join(", ")
                        ),
                    )
                })?),
                None => None,
            };
            let Some(j) = open_for_read(ctx)? else {
                ctx.print("the journal is empty\n", json!({"transactions": []}));
                return Ok(exit::SUCCESS);
            };
            let recs = j.list(*limit, filter)?;
            let unresolved = j.unresolved()?;
            let mut text = String::new();
            for (i, r) in recs.iter().enumerate() {
                text.push_str(&format!(
                    "{}  {} {}{} {}\n",
                    glyph(r.state),
                    r.id,
                    r.state,
                    if unresolved.contains(&r.id) {
                        " (unresolved)"
                    } else {
                        ""
                    },
                    time(r.created_ms)
                ));
                let bar = if i + 1 == recs.len() { " " } else { "│" };
                text.push_str(&format!("{bar}  {}\n", r.summary));
                for f in &r.files {
                    text.push_str(&format!(
                        "{bar}  {} {} -> {}\n",
                        f.path,
                        f.before
                            .as_ref()
                            .map(|i| short(&i.hash))
                            .unwrap_or_else(|| "(absent)".into()),
                        f.after
                            .as_ref()
                            .map(|i| short(&i.hash))
                            .unwrap_or_else(|| "(absent)".into())
                    ));
                }
                if let Some(reason) = &r.reason {
                    text.push_str(&format!("{bar}  reason: {reason}\n"));
                }
            }
            if recs.is_empty() {
                text.push_str("no transactions\n");
            }
            ctx.print(
                &text,
                json!({
                    "transactions": recs.iter().map(txn_json).collect::<Vec<_>>(),
                    "unresolved": unresolved,
                }),
            );
            Ok(exit::SUCCESS)
        }
        JournalCommand::Resolve { txid, note } => {
            let _lock = ctx.lock()?;
            let j = ctx.open_journal()?;
            j.resolve(
                *txid,
                note.clone(),
                crate::txn::to_ms(std::time::SystemTime::now()),
            )?;
            let r = j.get(*txid)?;
            let files: Vec<&str> = r.files.iter().map(|f| f.path.as_str()).collect();
            ctx.print(
                &format!(
                    "transaction {txid} resolved: kharden may change {} again\n",
                    files.join(", ")
                ),
                json!({"txid": txid, "resolved": true, "files": files}),
            );
            Ok(exit::SUCCESS)
        }
        JournalCommand::Show { txid } => {
            let j = open_for_read(ctx)?.ok_or_else(|| CliError::error("the journal is empty"))?;
            let r = j.get(*txid)?;
            let events = j.events(*txid)?;
            let mut text = format!(
                "transaction {}  {}\n  {}\n  kind: {}\n  created: {}  updated: {}\n",
                r.id,
                r.state,
                r.summary,
                kind_text(&r.kind),
                time(r.created_ms),
                time(r.updated_ms)
            );
            if r.gate.enabled {
                text.push_str(&format!(
                    "  gate: timeout {}s, stable for {}s, deadline {}\n",
                    r.gate.timeout_secs,
                    r.gate.stable_for_secs,
                    time(r.deadline_ms)
                ));
            } else {
                text.push_str("  gate: disabled\n");
            }
            if let Some(reason) = &r.reason {
                text.push_str(&format!("  reason: {reason}\n"));
            }
            for f in &r.files {
                text.push_str(&format!("  file {}\n", f.path));
                for (side, img) in [("before", &f.before), ("after", &f.after)] {
                    match img {
                        Some(i) => text.push_str(&format!(
                            "    {side:6} blake3 {} {} bytes mode {:04o} owner {}:{}\n",
                            hex(&i.hash),
                            i.len,
                            i.meta.mode,
                            i.meta.uid,
                            i.meta.gid
                        )),
                        None => text.push_str(&format!("    {side:6} absent\n")),
                    }
                }
                for c in &f.changes {
                    text.push_str(&format!("    change: {c}\n"));
                }
            }
            text.push_str("  events:\n");
            for e in &events {
                text.push_str(&format!("    {}  {}\n", time(e.time_ms), event_text(e)));
            }
            let mut doc = txn_json(&r);
            doc["events"] = Value::Array(events.iter().map(event_json).collect());
            ctx.print(&text, doc);
            Ok(exit::SUCCESS)
        }
        JournalCommand::Diff { txid } => {
            let j = open_for_read(ctx)?.ok_or_else(|| CliError::error("the journal is empty"))?;
            let r = j.get(*txid)?;
            let mut text = String::new();
            let mut files = Vec::new();
            for f in &r.files {
                let b = f.before.as_ref().map(|i| j.blob(&i.hash)).transpose()?;
                let a = f.after.as_ref().map(|i| j.blob(&i.hash)).transpose()?;
                let d = format::unified(&f.path, b.as_deref(), a.as_deref());
                text.push_str(&d);
                files.push(json!({"path": f.path, "diff": d}));
            }
            ctx.print(
                &text,
                json!({"txid": r.id, "state": r.state.name(), "files": files}),
            );
            Ok(exit::SUCCESS)
        }
        JournalCommand::Verify => {
            let _lock = ctx.lock()?;
            let mut j = ctx.open_journal()?;
            let faults = j.verify()?;
            let n = j.len()?;
            let open = j.open_ids()?.len();
            let code = if faults.is_empty() {
                exit::SUCCESS
            } else {
                exit::JOURNAL_FAULT
            };
            let mut text = format!("{n} transactions, {open} open: ");
            if faults.is_empty() {
                text.push_str("journal OK (redb integrity, every blob re-hashed, every state machine replayed)\n");
            } else {
                text.push_str(&format!("{} FAULT(S)\n", faults.len()));
                for f in &faults {
                    text.push_str(&format!(
                        "  {}{}\n",
                        f.txid
                            .map(|t| format!("transaction {t}: "))
                            .unwrap_or_default(),
                        f.what
                    ));
                }
            }
            ctx.print(&text, json!({"ok": faults.is_empty(), "transactions": n, "open": open, "faults": faults, "exit_code": code}));
            Ok(code)
        }
        JournalCommand::Prune { keep } => {
            let _lock = ctx.lock()?;
            let j = ctx.open_journal()?;
            let (t, b) = j.prune(*keep)?;
            ctx.print(
                &format!("pruned {t} transaction(s) and {b} unreferenced blob(s); kept the newest {keep} finished ones and every open one\n"),
                json!({"pruned_transactions": t, "pruned_blobs": b, "keep": keep}),
            );
            Ok(exit::SUCCESS)
        }
    }
}
