//! One module per command family; this one holds what they share: the context, the lock,
//! automatic recovery, and the engine's construction.

mod apply;
mod cis;
mod demo;
mod journal;
mod recover;

use super::args::{AuditArgs, ChangeArgs, Cli, Command, GateArgs, OutputFormat};
use super::{CliError, CliResult};
use crate::audit::{Audit, NoAudit, StandardAudit};
use crate::durable::RealStorage;
use crate::exit;
use crate::gate::{Gate, NoGate};
use crate::journal::JournalRead;
use crate::journal::{AuditSpec, GateSpec, Journal};
use crate::lock::{self, LockError, StateLock};
use crate::paths::HostRoot;
use crate::probe_gate::ProbeGate;
use crate::txn::{self, Engine, Policy, SystemClock};
use clap::{ArgMatches, CommandFactory};
use kharden_manifest::Change;
use std::time::Duration;

/// What every command gets.
pub struct Ctx<'a> {
    pub cli: &'a Cli,
    pub root: HostRoot,
    pub json: bool,
}

impl Ctx<'_> {
    /// Take the state directory's lock (creating the directory when needed).
    pub fn lock(&self) -> Result<StateLock, CliError> {
        crate::journal::prepare_state_dir(&self.cli.state_dir)?;
        lock::acquire(&self.cli.state_dir, Duration::from_secs(self.cli.wait)).map_err(
            |e| match e {
                LockError::Held { .. } => CliError::new(exit::LOCKED, e.to_string()),
                other => CliError::from(other),
            },
        )
    }

    pub fn open_journal(&self) -> Result<Journal, CliError> {
        Ok(Journal::open(&self.cli.state_dir)?)
    }

    /// Print a result: the JSON document with `-o json`, else the text.
    pub fn print(&self, text: &str, json: serde_json::Value) {
        if self.json {
            println!("{json}");
        } else if !text.is_empty() {
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
        }
    }

    pub fn gate_spec(&self, g: &GateArgs, container: Option<&str>) -> GateSpec {
        GateSpec {
            enabled: !g.no_gate,
            timeout_secs: g.health_timeout,
            stable_for_secs: g.stable_for,
            health_url: g.health_url.clone(),
            cacert: g.cacert.as_ref().map(|p| p.display().to_string()),
            cert: g.cert.as_ref().map(|p| p.display().to_string()),
            key: g.key.as_ref().map(|p| p.display().to_string()),
            container: container.map(str::to_string),
            root: self.cli.root.as_ref().map(|p| p.display().to_string()),
        }
    }

    pub fn audit_spec(&self, a: &AuditArgs) -> AuditSpec {
        AuditSpec {
            builtin: !a.no_audit,
            script: a.audit_script.as_ref().map(|p| p.display().to_string()),
            script_timeout_secs: a.audit_timeout,
        }
    }
}

/// The gate for a spec: none, or the real probe gate.
pub fn gate_for(ctx: &Ctx<'_>, spec: &GateSpec) -> Box<dyn Gate> {
    if spec.enabled {
        Box::new(ProbeGate::new(ctx.root.clone(), ctx.json))
    } else {
        Box::new(NoGate)
    }
}

pub fn audit_for(spec: &AuditSpec) -> Box<dyn Audit> {
    if spec.builtin || spec.script.is_some() {
        Box::new(StandardAudit)
    } else {
        Box::new(NoAudit)
    }
}

/// Run recovery (revert policy) before a command that changes files. Refuses to go on when a
/// conflict remains (files of an unresolved needs-manual transaction are refused by the
/// engine itself, see [`run_plan`]).
pub fn auto_recover(journal: &Journal) -> Result<(), CliError> {
    if journal.open_ids()?.is_empty() {
        return Ok(());
    }
    tracing::warn!("open transactions found: running recovery first");
    let gate = NoGate;
    let engine = Engine {
        journal,
        storage: &RealStorage,
        gate: &gate,
        audit: &NoAudit,
        clock: &SystemClock,
    };
    let report = txn::recover(&engine, Policy::Revert, false)?;
    for t in &report.transactions {
        eprintln!("kharden: recovered transaction {}: {}", t.txid, t.action);
    }
    if report.has_conflicts() {
        return Err(CliError::new(
            exit::CONFLICT,
            "recovery found files that match neither side of an open transaction; nothing was changed. Run `kharden recover` for details",
        ));
    }
    Ok(())
}

/// Run a plan. A refusal because a file belongs to an unresolved needs-manual transaction is
/// exit 5 (needs manual intervention), journaled like every other refusal.
pub fn run_plan(engine: &Engine<'_>, plan: txn::Plan) -> Result<txn::Outcome, CliError> {
    let (kind, summary) = (plan.kind.clone(), plan.summary.clone());
    match engine.run(plan) {
        Err(e @ txn::TxnError::Unresolved { .. }) => {
            let msg = e.to_string();
            let id = engine.journal.record_refusal(
                kind,
                summary,
                Vec::new(),
                msg.clone(),
                txn::to_ms(std::time::SystemTime::now()),
            )?;
            Err(CliError::new(
                exit::NEEDS_MANUAL,
                format!("{msg} (refusal recorded as transaction {id})"),
            ))
        }
        r => Ok(r?),
    }
}

/// The changes of a command, in the order they were given on the command line.
pub fn ordered_changes(matches: &ArgMatches) -> Result<Vec<Change>, CliError> {
    let mut all: Vec<(usize, Change)> = Vec::new();
    for (id, kind) in ChangeArgs::IDS {
        let (Some(vals), Some(idx)) = (matches.get_many::<String>(id), matches.indices_of(id))
        else {
            continue;
        };
        for (v, i) in vals.zip(idx) {
            let c = Change::parse_cli(kind, v)
                .map_err(|e| CliError::new(exit::USAGE, format!("--{kind} {v}: {e}")))?;
            all.push((i, c));
        }
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, c)| c).collect())
}

pub fn run(cli: &Cli, matches: &ArgMatches) -> CliResult {
    let ctx = Ctx {
        cli,
        root: HostRoot::new(cli.root.as_deref()),
        json: cli.output == OutputFormat::Json,
    };
    let sub = matches.subcommand().map(|(_, m)| m);
    match &cli.command {
        Command::Apply(a) => apply::apply(
            &ctx,
            a,
            sub.ok_or_else(|| CliError::error("no subcommand"))?,
        ),
        Command::Edit(a) => apply::edit(
            &ctx,
            a,
            sub.ok_or_else(|| CliError::error("no subcommand"))?,
        ),
        Command::Rollback(a) => apply::rollback(&ctx, a),
        Command::Recover(a) => recover::recover(&ctx, a),
        Command::Journal(j) => journal::journal(&ctx, j),
        Command::Audit(a) => cis::audit(&ctx, a),
        Command::Harden(a) => cis::harden(&ctx, a),
        Command::Demo(a) => demo::demo(&ctx, a),
        Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "kharden",
                &mut std::io::stdout(),
            );
            Ok(exit::SUCCESS)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|e| CliError::error(format!("man page: {e}")))?;
            Ok(exit::SUCCESS)
        }
    }
}
