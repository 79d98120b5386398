//! `kharden edit`: the edited manifest on stdout; nothing written, nothing journaled.

use super::{ordered_changes, Ctx};
use crate::cli::args::EditArgs;
use crate::cli::{render, Output};
use clap::ArgMatches;
use kharden::apply::{read_manifest, run_editor};
use kharden::durable::RealStorage;
use kharden::exit;
use kharden::report::EditReport;
use kharden::Result;

pub fn run(_ctx: &Ctx<'_>, a: &EditArgs, m: &ArgMatches) -> Result<Output> {
    let changes = ordered_changes(m)?;
    let contents = read_manifest(&RealStorage, &a.manifest)?;
    let edited = run_editor(&a.manifest, &contents, a.container.as_deref(), &changes)?;
    Ok(render::edit(&EditReport {
        file: a.manifest.display().to_string(),
        container: edited.after.container.clone(),
        changed: !edited.unchanged(),
        argv_before: edited.before.argv.clone(),
        argv_after: edited.after.argv.clone(),
        replaced: edited.replaced.iter().map(|r| [r.start, r.end]).collect(),
        output: String::from_utf8_lossy(&edited.output).into_owned(),
        bytes: edited.output,
        exit_code: exit::SUCCESS,
    }))
}
