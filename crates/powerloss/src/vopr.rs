//! Seeded random schedules, in the style of TigerBeetle's VOPR: long runs of transactions
//! (one to three files, creates and deletes), gate and audit failures, `kharden rollback`,
//! `journal prune`, EIO and ENOSPC from writes and fsyncs, power cuts at random operations,
//! and power cuts during the recovery that follows. After every reboot the invariants are
//! checked ([`crate::check`]). Everything is derived from one `u64` seed, so a failure is
//! replayed exactly by running that seed again.

use crate::check::{recover_and_check, run_recover, Oracle};
use crate::crash::random_image;
use crate::explore::{base, Scenario};
use crate::harness::{open_journal, plan, with_ctx_journal, FixedAudit, ScriptedGate};
use crate::scenarios::{apiserver, body, policy, scheduler};
use crate::sim::{lock, Bugs, FaultPlan, Rng, Shared, World};
use kharden::journal::{AuditSpec, GateSpec, Journal, JournalRead};
use kharden::txn::Outcome;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Knobs of a schedule.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Actions per schedule.
    pub steps: usize,
    /// Probability, per million eligible operations, of an injected EIO or ENOSPC.
    pub faults_per_million: u64,
    /// Probability, in percent, that an action is cut short by a power cut.
    pub power_cut_percent: u64,
    pub bugs: Bugs,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            steps: 12,
            faults_per_million: 15_000,
            power_cut_percent: 35,
            bugs: Bugs::default(),
        }
    }
}

/// What the schedules did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub schedules: u64,
    pub actions: u64,
    pub transactions: u64,
    pub power_cuts: u64,
    pub power_cuts_in_recovery: u64,
    pub faults_injected: u64,
    /// Post-crash (or post-error) states on which the invariants were checked.
    pub checks: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.schedules += o.schedules;
        self.actions += o.actions;
        self.transactions += o.transactions;
        self.power_cuts += o.power_cuts;
        self.power_cuts_in_recovery += o.power_cuts_in_recovery;
        self.faults_injected += o.faults_injected;
        self.checks += o.checks;
    }
}

/// A schedule that broke an invariant.
#[derive(Debug, Clone)]
pub struct Failure {
    pub seed: u64,
    pub step: usize,
    pub log: Vec<String>,
    pub what: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "VOPR seed {} failed at step {}:", self.seed, self.step)?;
        for w in &self.what {
            writeln!(f, "  violation: {w}")?;
        }
        writeln!(f, "  schedule:")?;
        for l in &self.log {
            writeln!(f, "    {l}")?;
        }
        write!(
            f,
            "  replay: cargo run --release -p kharden-powerloss --example vopr -- --seed {}",
            self.seed
        )
    }
}

fn shared(w: World) -> Shared {
    Arc::new(Mutex::new(w))
}

struct Run {
    rng: Rng,
    cfg: Config,
    world: Shared,
    oracle: Oracle,
    stats: Stats,
    log: Vec<String>,
}

impl Run {
    fn faults(&self, on: bool) {
        if let Some(p) = &mut lock(&self.world).random_faults {
            p.per_million = if on { self.cfg.faults_per_million } else { 0 };
        }
    }

    /// Power back on with `tree` as the disk.
    fn reboot(&mut self, tree: crate::sim::Tree) {
        let (injected, seed) = {
            let w = lock(&self.world);
            (
                w.faults_injected,
                w.random_faults.as_ref().map(|p| p.rng.clone()),
            )
        };
        let mut w = World::from_tree(tree);
        w.bugs = self.cfg.bugs;
        w.faults_injected = injected;
        w.random_faults = seed.map(|rng| FaultPlan {
            rng,
            per_million: self.cfg.faults_per_million,
        });
        self.world = shared(w);
    }

    /// Take the crash snapshot (or cut the power now), pick a random post-crash disk, reboot.
    fn power_cut(&mut self) {
        let snap = {
            let mut w = lock(&self.world);
            w.crash_at = None;
            w.crashed.take().unwrap_or_else(|| w.snapshot())
        };
        let img = random_image(&snap, &mut self.rng);
        if crate::sim::trace_on() {
            eprintln!("power cut before op {}:", snap.at);
            for (e, f) in snap.pending.iter().zip(&img.fates) {
                eprintln!("    {f:?}: {e:?}");
            }
        }
        self.log.push(format!(
            "  power cut before op {} (unsynced effects {})",
            snap.at,
            crate::crash::CrashImage::describe(&img)
        ));
        self.reboot(img.tree);
    }

    /// Boot: recover (itself maybe cut short by power cuts, maybe failing on injected
    /// faults), then check every invariant with faults off.
    fn boot_and_check(&mut self, step: usize) -> Result<(), Failure> {
        for _ in 0..3 {
            if !self.rng.chance(1, 3) {
                break;
            }
            let at = lock(&self.world).ops + self.rng.below(40);
            lock(&self.world).crash_at = Some(at);
            if let Ok(j) = open_journal(&self.world) {
                let _ = run_recover(&self.world, &j);
            }
            let crashed = lock(&self.world).crashed.is_some();
            if crashed {
                self.stats.power_cuts_in_recovery += 1;
                self.log.push("  recovery cut short:".into());
                self.power_cut();
            } else {
                lock(&self.world).crash_at = None;
                break;
            }
        }
        self.check(step)
    }

    fn check(&mut self, step: usize) -> Result<(), Failure> {
        self.oracle.faults |= lock(&self.world).faults_injected > 0;
        self.faults(false);
        self.stats.checks += 1;
        let bad = recover_and_check(&self.world, &self.oracle);
        if bad.is_empty() {
            // After a command that failed, the operator reads `kharden journal log`.
            if let Ok(j) = open_journal(&self.world) {
                self.operator_reads(&j, &[]);
            }
        }
        self.faults(true);
        if bad.is_empty() {
            Ok(())
        } else {
            Err(Failure {
                seed: 0,
                step,
                log: self.log.clone(),
                what: bad,
            })
        }
    }

    fn random_plan_ops(&mut self, version: u32) -> Vec<(PathBuf, Option<Vec<u8>>)> {
        let mut ops = Vec::new();
        for (p, deletable) in [(apiserver(), false), (policy(), true), (scheduler(), false)] {
            if self.rng.chance(1, 2) || (p == apiserver() && ops.is_empty()) {
                let after = if deletable && self.rng.chance(1, 4) {
                    None
                } else {
                    Some(body(version, 200 + self.rng.below(3000) as usize))
                };
                ops.push((p, after));
            }
        }
        ops
    }

    /// One action on a running kharden. Returns false when the process hit an error (it exits).
    fn action(&mut self, journal: &Journal, step: usize) -> bool {
        self.stats.actions += 1;
        let storage = crate::sim::SimStorage {
            world: self.world.clone(),
        };
        let world = self.world.clone();
        let choice = self.rng.below(10);
        let gate = ScriptedGate::new(vec![self.rng.chance(4, 5), self.rng.chance(9, 10)]);
        let audit = FixedAudit(self.rng.chance(6, 7));
        let ops = self.random_plan_ops(step as u32 + 1);
        let committed: Vec<u64> = self
            .oracle
            .reported
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Committed { .. }))
            .map(|(i, _)| *i)
            .collect();
        let pick = if committed.is_empty() {
            0
        } else {
            committed[self.rng.below(committed.len() as u64) as usize]
        };
        let keep = self.rng.below(3) as usize;
        let ((ok, desc), reported) =
            with_ctx_journal(&world, journal, &storage, |ctx| match choice {
                0..=6 => {
                    let p = plan(&ops, true, true);
                    let out = ctx.run(p, &gate, &audit);
                    (
                        out.is_some(),
                        format!(
                            "apply {:?}: {out:?}",
                            ops.iter()
                                .map(|(p, a)| (
                                    p.display().to_string(),
                                    a.as_ref().map(|a| a.len())
                                ))
                                .collect::<Vec<_>>()
                        ),
                    )
                }
                7 | 8 if pick != 0 => {
                    let engine = ctx.engine(&gate, &audit);
                    match engine.rollback_plan(
                        pick,
                        GateSpec {
                            enabled: true,
                            timeout_secs: 60,
                            ..Default::default()
                        },
                        AuditSpec::default(),
                        kharden::txn::PlanOptions::default(),
                    ) {
                        Ok(p) => {
                            let out = ctx.run(p, &gate, &audit);
                            (out.is_some(), format!("rollback {pick}: {out:?}"))
                        }
                        Err(e) => (
                            !matches!(
                                e,
                                kharden::txn::TxnError::Journal(_)
                                    | kharden::txn::TxnError::Durable(_)
                            ),
                            format!("rollback {pick}: refused: {e}"),
                        ),
                    }
                }
                _ => match ctx.journal.prune(keep) {
                    Ok(r) => (true, format!("prune --keep {keep}: {r:?}")),
                    Err(e) => (false, format!("prune --keep {keep}: {e}")),
                },
            });
        if choice >= 9 || (choice >= 7 && pick == 0) {
            self.oracle.pruned = true;
        }
        if choice <= 8 {
            self.stats.transactions += 1;
        }
        self.log.push(format!("step {step}: {desc}"));
        if crate::sim::trace_on() {
            eprintln!("== step {step}: {desc}");
        }
        self.operator_reads(journal, &reported);
        self.oracle.reported.extend(reported);
        ok
    }

    /// The operator learns of a NeedsManual transaction from the command's output or, when
    /// the command died on an error after recording it, from `kharden journal log`; they are
    /// told to restore the files by hand. Model that intervention as a clean sync of the disk.
    /// Without it, an unlink or rename whose directory fsync failed can be undone by a later
    /// power cut under the next transaction, which recovery then (correctly) reports as a
    /// conflict: see docs/crash-safety.md.
    fn operator_reads(&mut self, journal: &Journal, reported: &[(u64, Outcome)]) {
        let mut ids: Vec<u64> = journal.unresolved().unwrap_or_default();
        ids.extend(
            reported
                .iter()
                .filter_map(|(id, o)| matches!(o, Outcome::NeedsManual { .. }).then_some(*id)),
        );
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return;
        }
        // The message says: restore the files, and delete the temp files
        // `.<name>.kharden-<id>` beside them; then `kharden journal resolve <id>`.
        {
            let mut w = lock(&self.world);
            for entries in w.live.dirs.values_mut() {
                entries.retain(|name, _| {
                    !ids.iter().any(|id| {
                        name.starts_with('.') && name.ends_with(&format!(".kharden-{id}"))
                    })
                });
            }
            w.live.gc();
            w.pending.clear();
            w.durable = w.live.clone();
        }
        let resolved: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|id| {
                journal
                    .resolve(*id, Some("operator intervention (VOPR)".into()), 0)
                    .is_ok()
            })
            .collect();
        self.log.push(format!(
            "  operator intervention after needs-manual {ids:?}: temp files deleted, disk synced, resolved {resolved:?}"
        ));
    }
}

/// The disk every schedule starts from.
fn initial() -> Scenario {
    Scenario {
        name: "vopr",
        files: vec![
            (apiserver(), Some(body(0, 1500))),
            (policy(), None),
            (scheduler(), Some(body(0, 900))),
        ],
        setup: None,
        workload: Box::new(|_| {}),
        // Every schedule starts on an empty state directory: the journal's creation is
        // among the operations power cuts and faults hit.
        first_run: true,
    }
}

/// Run one schedule. `Err` carries the seed and the schedule that broke an invariant.
pub fn run_schedule(seed: u64, cfg: Config) -> Result<Stats, Failure> {
    let fail = |mut f: Failure| {
        f.seed = seed;
        f
    };
    let (tree, oracle) = base(&initial()).map_err(|e| {
        fail(Failure {
            seed,
            step: 0,
            log: vec![],
            what: vec![e],
        })
    })?;
    let mut oracle = oracle;
    // A rollback whose gate fails ends in NeedsManual without any I/O error: legal here.
    oracle.faults = true;
    let mut rng = Rng::new(seed);
    let fault_rng = Rng::new(rng.next_u64());
    let mut w = World::from_tree(tree);
    w.bugs = cfg.bugs;
    w.random_faults = Some(FaultPlan {
        rng: fault_rng,
        per_million: cfg.faults_per_million,
    });
    let mut run = Run {
        rng,
        cfg,
        world: shared(w),
        oracle,
        stats: Stats {
            schedules: 1,
            ..Stats::default()
        },
        log: Vec::new(),
    };
    let mut journal: Option<Journal> = None;
    for step in 0..cfg.steps {
        let cut = run.rng.chance(cfg.power_cut_percent, 100);
        if cut {
            let at = lock(&run.world).ops + run.rng.below(60);
            lock(&run.world).crash_at = Some(at);
        }
        if journal.is_none() {
            match open_journal(&run.world) {
                Ok(j) => {
                    // Every command that changes files recovers first.
                    let _ = run_recover(&run.world, &j);
                    journal = Some(j);
                }
                Err(e) => run
                    .log
                    .push(format!("step {step}: journal does not open: {e}")),
            }
        }
        let ok = match &journal {
            Some(j) => run.action(j, step),
            None => false,
        };
        let crashed = lock(&run.world).crashed.is_some();
        if cut || crashed {
            drop(journal.take());
            run.stats.power_cuts += 1;
            run.power_cut();
            run.boot_and_check(step).map_err(fail)?;
        } else if !ok {
            // The process exits on an error; the page cache survives. Restart and check.
            drop(journal.take());
            run.log.push("  process exited on an error; restart".into());
            run.check(step).map_err(fail)?;
        }
    }
    drop(journal.take());
    run.power_cut();
    run.boot_and_check(cfg.steps).map_err(fail)?;
    run.stats.faults_injected = lock(&run.world).faults_injected;
    Ok(run.stats)
}

/// Run `count` schedules from `first_seed` on; stop at the first failure.
pub fn run_many(first_seed: u64, count: u64, cfg: Config) -> Result<Stats, Failure> {
    let mut total = Stats::default();
    for seed in first_seed..first_seed + count {
        total.add(&run_schedule(seed, cfg)?);
    }
    Ok(total)
}
