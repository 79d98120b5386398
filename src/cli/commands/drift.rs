//! `kharden drift`: every file kharden committed a change to, compared with what it holds now.
//! Reads only: the journal is opened read-only (alongside a running kharden), never created.

use super::Ctx;
use crate::cli::args::DriftArgs;
use crate::cli::{render_audit, Output};
use kharden::drift::{drift, DriftReport};
use kharden::durable::RealStorage;
use kharden::journal::{Inspector, Journal, JournalError, JournalReader};
use kharden::lock;
use kharden::Result;
use std::time::Duration;

/// The journal for reading: read-only when possible; when redb wants a repair after a crash,
/// under the lock through a writer used only to read. `None`: there has never been a journal
/// here.
pub fn open_journal(ctx: &Ctx<'_>) -> Result<Option<Inspector>> {
    match JournalReader::open(&ctx.cli.state_dir) {
        Ok(j) => Ok(j.map(Inspector::ReadOnly)),
        Err(e) if e.is_fault() => Err(e.into()),
        Err(JournalError::StateDir(e)) => Err(e.into()),
        Err(e) => {
            tracing::info!("read-only open failed ({e}); opening under the lock");
            let _lock = lock::acquire(&ctx.cli.state_dir, Duration::from_secs(ctx.cli.wait))?;
            Ok(Journal::open_existing(&ctx.cli.state_dir)?.map(Inspector::Repaired))
        }
    }
}

pub fn run(ctx: &Ctx<'_>, a: &DriftArgs) -> Result<Output> {
    let report = match open_journal(ctx)? {
        None => DriftReport::no_journal(),
        Some(j) => drift(&j, &RealStorage)?,
    };
    Ok(render_audit::drift(&report, !a.no_diff))
}
