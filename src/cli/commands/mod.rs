//! One file per subcommand; this one holds what they share: the parsed context, the
//! specifications built from the options, the session, and the dispatch.

mod apply;
mod audit;
#[cfg(feature = "demo")]
mod demo;
pub mod drift;
mod edit;
mod harden;
mod journal;
mod kubelet;
mod recover;
mod rollback;

use super::args::{AuditArgs, ChangeArgs, Cli, Command, GateArgs, OutputFormat, SafetyArgs};
use super::Output;
use clap::{ArgMatches, CommandFactory};
use kharden::audit::{Audit, NoAudit, StandardAudit};
use kharden::exit;
use kharden::gate::{Gate, NoGate, ProbeGate};
use kharden::journal::{AuditSpec, GateSpec, GateTarget};
use kharden::root::HostRoot;
use kharden::session::{Session, SessionOptions};
use kharden::txn::PlanOptions;
use kharden::{Error, Result};
use kharden_manifest::Change;
use std::path::PathBuf;
use std::time::Duration;

/// What every command gets.
pub struct Ctx<'a> {
    pub cli: &'a Cli,
    pub root: HostRoot,
    pub json: bool,
}

impl Ctx<'_> {
    /// Open a session (lock, journal, automatic recovery) for a command that writes.
    /// `protected`: more directories the state directory must not be in.
    pub fn session(&self, protected: Vec<PathBuf>, recover: bool) -> Result<Session> {
        Session::open(&SessionOptions {
            state_dir: self.cli.state_dir.clone(),
            root: self.root.clone(),
            wait: Duration::from_secs(self.cli.wait),
            protected,
            recover,
        })
    }

    pub fn gate_spec(&self, g: &GateArgs, container: Option<&str>) -> Result<GateSpec> {
        if !g.no_gate && g.stable_for > g.health_timeout {
            return Err(Error::Usage(format!(
                "--stable-for {} is longer than --health-timeout {}: the gate could never pass",
                g.stable_for, g.health_timeout
            )));
        }
        Ok(GateSpec {
            enabled: !g.no_gate,
            timeout_secs: g.health_timeout,
            stable_for_secs: g.stable_for,
            health_url: g.health_url.clone(),
            cacert: g.cacert.as_ref().map(|p| p.display().to_string()),
            cert: g.cert.as_ref().map(|p| p.display().to_string()),
            key: g.key.as_ref().map(|p| p.display().to_string()),
            container: container.map(str::to_string),
            root: self.cli.root.as_ref().map(|p| p.display().to_string()),
            max_crashes: g.max_crashes,
            target: GateTarget::StaticPods,
            keep: Vec::new(),
        })
    }

    pub fn audit_spec(&self, a: &AuditArgs) -> AuditSpec {
        AuditSpec {
            builtin: !a.no_audit,
            script: a.audit_script.as_ref().map(|p| p.display().to_string()),
            script_timeout_secs: a.audit_timeout,
        }
    }
}

pub fn plan_options(s: &SafetyArgs) -> PlanOptions {
    PlanOptions {
        force: s.force,
        split_hardlinks: s.split_hardlinks,
    }
}

/// The gate for a spec: none, or the real probe gate.
pub fn gate_for(ctx: &Ctx<'_>, spec: &GateSpec) -> Box<dyn Gate> {
    if spec.enabled {
        Box::new(ProbeGate::new(ctx.root.clone()))
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

/// The changes of a command, in the order they were given on the command line.
pub fn ordered_changes(matches: &ArgMatches) -> Result<Vec<Change>> {
    let mut all: Vec<(usize, Change)> = Vec::new();
    for (id, kind) in ChangeArgs::IDS {
        let (Some(vals), Some(idx)) = (matches.get_many::<String>(id), matches.indices_of(id))
        else {
            continue;
        };
        for (v, i) in vals.zip(idx) {
            let c = Change::parse_cli(kind, v)
                .map_err(|e| Error::Usage(format!("--{kind} {v}: {e}")))?;
            all.push((i, c));
        }
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, c)| c).collect())
}

fn raw(bytes: Vec<u8>, what: &str) -> Output {
    Output {
        json: serde_json::json!({"result": "ok", "text": String::from_utf8_lossy(&bytes), "exit_code": 0}),
        text: bytes,
        stderr: String::new(),
        code: exit::SUCCESS,
        outcome: what.to_string(),
    }
}

pub fn run(cli: &Cli, matches: &ArgMatches) -> Result<Output> {
    let ctx = Ctx {
        cli,
        root: HostRoot::new(cli.root.as_deref())?,
        json: cli.output == OutputFormat::Json,
    };
    let sub = || {
        matches
            .subcommand()
            .map(|(_, m)| m)
            .ok_or_else(|| Error::Usage("no subcommand".into()))
    };
    match &cli.command {
        Command::Apply(a) => apply::run(&ctx, a, sub()?),
        Command::Edit(a) => edit::run(&ctx, a, sub()?),
        Command::Rollback(a) => rollback::run(&ctx, a),
        Command::Recover(a) => recover::run(&ctx, a),
        Command::Journal(j) => journal::run(&ctx, j),
        Command::Audit(a) => audit::run(&ctx, a),
        Command::Harden(a) => harden::run(&ctx, a),
        #[cfg(feature = "demo")]
        Command::Demo(a) => demo::run(&ctx, a),
        Command::Kubelet(k) => kubelet::run(&ctx, k),
        Command::Drift(a) => drift::run(&ctx, a),
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "kharden", &mut buf);
            Ok(raw(buf, "completions"))
        }
        Command::Man => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut buf)
                .map_err(|e| Error::Other(format!("man page: {e}")))?;
            Ok(raw(buf, "man page"))
        }
    }
}
