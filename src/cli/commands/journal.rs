//! `kharden journal log|show|diff|verify|prune|resolve`. Text output reads like `jj op log`.
//!
//! None of these creates a journal: where there has never been one they say so; where one
//! was created and is gone, or is damaged, they report a fault (exit 8).

use super::Ctx;
use crate::cli::args::JournalCommand;
use crate::cli::{render, Output};
use kharden::durable::RealStorage;
use kharden::exit;
use kharden::journal::{Inspector, Journal, JournalRead, JournalReader, State, TxId};
use kharden::lock;
use kharden::report::{
    DiffReport, EventView, FileDiff, LogReport, PruneReport, ResolveReport, ShowReport, TxnView,
    VerifyReport,
};
use kharden::users::Names;
use kharden::{Error, Result};
use std::time::Duration;

/// Open for reading: read-only (alongside a running kharden) when possible; when redb wants a
/// repair after a crash, take the lock and open it for writing (which repairs). `None`: there
/// has never been a journal here.
fn open_for_read(ctx: &Ctx<'_>) -> Result<Option<Inspector>> {
    match JournalReader::open(&ctx.cli.state_dir) {
        Ok(j) => Ok(j.map(Inspector::ReadOnly)),
        Err(e) if e.is_fault() => Err(e.into()),
        Err(kharden::journal::JournalError::StateDir(e)) => Err(e.into()),
        Err(e) => {
            tracing::info!("read-only open failed ({e}); opening under the lock");
            let _lock = lock::acquire(&ctx.cli.state_dir, Duration::from_secs(ctx.cli.wait))?;
            Ok(Journal::open_existing(&ctx.cli.state_dir)?.map(Inspector::Repaired))
        }
    }
}

fn no_journal(ctx: &Ctx<'_>) -> Error {
    Error::refused(format!(
        "no journal in {}: kharden has recorded nothing here",
        ctx.cli.state_dir.display()
    ))
}

/// Open the journal for writing under the lock, never creating it.
fn open_for_write(ctx: &Ctx<'_>) -> Result<Option<(lock::StateLock, Journal)>> {
    if !ctx.cli.state_dir.exists() {
        return Ok(None);
    }
    let l = lock::acquire(&ctx.cli.state_dir, Duration::from_secs(ctx.cli.wait))?;
    Ok(Journal::open_existing(&ctx.cli.state_dir)?.map(|j| (l, j)))
}

fn view(j: &impl JournalRead, txid: TxId) -> Result<TxnView> {
    let r = j.get(txid)?;
    let unresolved = j.unresolved()?.contains(&txid);
    Ok(TxnView::of(&r, unresolved))
}

pub fn run(ctx: &Ctx<'_>, cmd: &JournalCommand) -> Result<Output> {
    match cmd {
        JournalCommand::Log { limit, state } => {
            let filter = match state {
                Some(s) => Some(State::parse(s).ok_or_else(|| {
                    Error::Usage(format!(
                        "unknown state {s:?}; one of: {}",
                        State::ALL.map(|s| s.name()).join(", ")
                    ))
                })?),
                None => None,
            };
            let report = match open_for_read(ctx)? {
                None => LogReport {
                    transactions: Vec::new(),
                    unresolved: Vec::new(),
                    exit_code: exit::SUCCESS,
                },
                Some(j) => {
                    let unresolved = j.unresolved()?;
                    let limit = usize::try_from(*limit).unwrap_or(usize::MAX);
                    let transactions = j
                        .list(limit, filter)?
                        .iter()
                        .map(|r| TxnView::of(r, unresolved.contains(&r.id)))
                        .collect();
                    LogReport {
                        transactions,
                        unresolved,
                        exit_code: exit::SUCCESS,
                    }
                }
            };
            Ok(render::log(&report))
        }
        JournalCommand::Show { txid } => {
            let j = open_for_read(ctx)?.ok_or_else(|| no_journal(ctx))?;
            let report = ShowReport {
                txn: view(&j, *txid)?,
                events: j.events(*txid)?.iter().map(EventView::of).collect(),
                exit_code: exit::SUCCESS,
            };
            Ok(render::show(&report))
        }
        JournalCommand::Diff { txid } => {
            let j = open_for_read(ctx)?.ok_or_else(|| no_journal(ctx))?;
            let r = j.get(*txid)?;
            let mut files = Vec::new();
            let names = Names::of_root(&ctx.root, &RealStorage);
            for f in &r.files {
                files.push(FileDiff {
                    path: f.path.clone(),
                    diff: kharden::diff::record(&j, f, &names)?,
                });
            }
            Ok(render::diff(&DiffReport {
                txid: r.id,
                state: r.state,
                files,
                exit_code: exit::SUCCESS,
            }))
        }
        JournalCommand::Verify => {
            let Some((_lock, mut j)) = open_for_write(ctx)? else {
                return Ok(render::verify(&VerifyReport {
                    ok: true,
                    transactions: 0,
                    open: 0,
                    faults: Vec::new(),
                    exit_code: exit::SUCCESS,
                }));
            };
            let faults = j.verify()?;
            let report = VerifyReport {
                ok: faults.is_empty(),
                transactions: j.len()?,
                open: j.open_ids()?.len(),
                exit_code: if faults.is_empty() {
                    exit::SUCCESS
                } else {
                    exit::JOURNAL_FAULT
                },
                faults,
            };
            Ok(render::verify(&report))
        }
        JournalCommand::Prune { keep } => {
            let (_lock, j) = open_for_write(ctx)?.ok_or_else(|| no_journal(ctx))?;
            let keep = usize::try_from(*keep).unwrap_or(usize::MAX);
            let (t, b) = j.prune(keep)?;
            Ok(render::prune(&PruneReport {
                pruned_transactions: t,
                pruned_blobs: b,
                keep,
                exit_code: exit::SUCCESS,
            }))
        }
        JournalCommand::Resolve { txid, note } => {
            let (_lock, j) = open_for_write(ctx)?.ok_or_else(|| no_journal(ctx))?;
            let now = kharden::txn::to_ms(kharden::txn::Clock::now(&kharden::txn::SystemClock));
            j.resolve(*txid, note.clone(), now)?;
            let r = j.get(*txid)?;
            Ok(render::resolve(&ResolveReport {
                txid: *txid,
                resolved: true,
                files: r.files.iter().map(|f| f.path.clone()).collect(),
                exit_code: exit::SUCCESS,
            }))
        }
    }
}
