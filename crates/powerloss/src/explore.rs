//! The bounded exhaustive explorer: run a workload on the simulated disk, cut the power before
//! every storage operation in turn (and after the last), build every post-crash disk of the
//! bounded family ([`crate::crash`]), run `kharden recover` on each and check the invariants
//! ([`crate::check`]). Recovery itself is explored the same way, from every disk on which the
//! first recovery had work to do.

use crate::check::{recover_and_check_full, Oracle};
use crate::crash::{images, Bounds};
use crate::harness::{with_ctx, Ctx};
use crate::sim::{lock, Bugs, Shared, Snapshot, Tree, World};
use kharden::durable::FileMeta;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The mode and owner every initial file of a scenario has (not the default for new files, so
/// that a lost chmod shows).
pub const INITIAL_META: FileMeta = FileMeta {
    mode: 0o640,
    uid: 0,
    gid: 0,
};

/// A workload on the simulated node.
pub type Workload = Box<dyn Fn(&Ctx<'_>)>;

/// What to explore.
pub struct Scenario {
    pub name: &'static str,
    /// The managed files before anything runs (`None`: absent).
    pub files: Vec<(PathBuf, Option<Vec<u8>>)>,
    /// Runs to completion before the explored part, followed by a clean shutdown.
    pub setup: Option<Workload>,
    /// The part where the power is cut.
    pub workload: Workload,
    /// No journal before the workload: the first run on an empty state directory (the journal
    /// is created inside the explored part).
    pub first_run: bool,
}

/// One broken invariant, with what it takes to reproduce it.
#[derive(Debug, Clone)]
pub struct Violation {
    pub scenario: String,
    /// The crash point: the index of the storage operation the power cut came before.
    pub crash_at: u64,
    /// For recovery exploration: the crash point inside recovery.
    pub recovery_crash_at: Option<u64>,
    /// The fates of the unsynced effects (`K` kept, `-` lost, `T` torn, `G` garbage).
    pub fates: String,
    pub what: Vec<String>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}] power cut before op {}",
            self.scenario, self.crash_at
        )?;
        if let Some(r) = self.recovery_crash_at {
            write!(f, ", then before op {r} of recovery")?;
        }
        write!(
            f,
            ", unsynced effects {}: {}",
            self.fates,
            self.what.join("; ")
        )
    }
}

/// What an exploration did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub crash_points: u64,
    /// Distinct post-crash disks on which recovery ran and the invariants were checked.
    pub crash_states: u64,
    pub violations: Vec<Violation>,
    /// Post-crash disks on which recovery had work to do (starting points for exploring
    /// recovery itself).
    pub recovery_starts: Vec<(Tree, Oracle)>,
}

impl Report {
    pub fn merge(&mut self, other: Report) {
        self.crash_points += other.crash_points;
        self.crash_states += other.crash_states;
        self.violations.extend(other.violations);
    }
}

fn shared(w: World) -> Shared {
    Arc::new(Mutex::new(w))
}

/// The disk before the explored workload, and what the operator knows about it.
pub fn base(scn: &Scenario) -> Result<(Tree, Oracle), String> {
    let mut t = World::fresh().durable;
    let mut initial = BTreeMap::new();
    for (i, (p, c)) in scn.files.iter().enumerate() {
        if let Some(c) = c {
            t.put(100 + i as u64, p, c, INITIAL_META);
        } else if let Some(dir) = p.parent() {
            t.dirs.entry(dir.to_path_buf()).or_default();
        }
        initial.insert(p.clone(), c.clone().map(|c| (c, INITIAL_META)));
    }
    let world = shared(World::from_tree(t));
    let reported = if scn.first_run {
        Vec::new()
    } else {
        with_ctx(&world, |ctx| {
            if let Some(s) = &scn.setup {
                s(ctx);
            }
        })
        .map_err(|e| format!("{}: setup: journal: {e}", scn.name))?
        .1
    };
    let mut w = lock(&world);
    w.sync_all();
    Ok((
        w.durable.clone(),
        Oracle {
            initial,
            reported,
            faults: false,
            pruned: false,
        },
    ))
}

/// Run `workload` on a world made from `tree`, with the power cut before operation `crash_at`
/// (or after the last one). Returns the crash snapshot, the outcomes reported before it, and
/// the number of operations the workload performed when it did not crash.
pub fn run_to_crash(
    tree: &Tree,
    bugs: Bugs,
    crash_at: Option<u64>,
    workload: &dyn Fn(&Ctx<'_>),
) -> (Snapshot, crate::harness::Reported, u64) {
    let mut w = World::from_tree(tree.clone());
    w.bugs = bugs;
    w.crash_at = crash_at;
    let world = shared(w);
    let reported = with_ctx(&world, workload)
        .map(|(_, r)| r)
        .unwrap_or_default();
    let mut w = lock(&world);
    let ops = w.ops;
    let snap = w.crashed.take().unwrap_or_else(|| w.snapshot());
    (snap, reported, ops)
}

/// Explore every crash point of `scn`'s workload.
pub fn explore(scn: &Scenario, bugs: Bugs, bounds: Bounds) -> Report {
    let mut report = Report::default();
    let (tree, oracle0) = match base(scn) {
        Ok(b) => b,
        Err(e) => {
            report.violations.push(Violation {
                scenario: scn.name.into(),
                crash_at: 0,
                recovery_crash_at: None,
                fates: String::new(),
                what: vec![e],
            });
            return report;
        }
    };
    let (_, _, total) = run_to_crash(&tree, bugs, None, &scn.workload);
    let mut seen = HashSet::new();
    for n in 0..=total {
        report.crash_points += 1;
        let (snap, reported, _) = run_to_crash(&tree, bugs, Some(n), &scn.workload);
        let mut oracle = oracle0.clone();
        oracle.reported.extend(reported);
        let key_reported = format!("{:?}", oracle.reported);
        for img in images(&snap, bounds) {
            if !seen.insert((img.tree.fingerprint(), key_reported.clone())) {
                continue;
            }
            report.crash_states += 1;
            let mut w = World::from_tree(img.tree.clone());
            w.bugs = bugs;
            let world = shared(w);
            let (bad, did_work) = recover_and_check_full(&world, &oracle);
            if did_work {
                report
                    .recovery_starts
                    .push((img.tree.clone(), oracle.clone()));
            }
            if !bad.is_empty() {
                report.violations.push(Violation {
                    scenario: scn.name.into(),
                    crash_at: n,
                    recovery_crash_at: None,
                    fates: img.describe(),
                    what: bad,
                });
            }
        }
    }
    report
}

/// Explore kills of kharden alone (`kill -9`, the OOM killer) at every operation of `scn`'s
/// workload: the page cache survives (every write kept, nothing torn) and so does the service
/// the workload restarted, running whatever it started on. Recovery then finds a kubelet
/// running, possibly on the after side it is about to restore: it must restart it on the
/// restored files (the invariant of `check_state`: a running service runs what its file holds).
pub fn explore_kills(scn: &Scenario, bugs: Bugs) -> Report {
    let mut report = Report::default();
    let (tree, oracle0) = match base(scn) {
        Ok(b) => b,
        Err(e) => {
            report.violations.push(Violation {
                scenario: scn.name.into(),
                crash_at: 0,
                recovery_crash_at: None,
                fates: String::new(),
                what: vec![e],
            });
            return report;
        }
    };
    let (_, _, total) = run_to_crash(&tree, bugs, None, &scn.workload);
    for n in 0..=total {
        report.crash_points += 1;
        let mut w = World::from_tree(tree.clone());
        w.bugs = bugs;
        w.crash_at = Some(n);
        let world = shared(w);
        let reported = with_ctx(&world, &scn.workload)
            .map(|(_, r)| r)
            .unwrap_or_default();
        let (live, service) = {
            let w = lock(&world);
            (w.live.clone(), w.service.clone())
        };
        let mut oracle = oracle0.clone();
        oracle.reported.extend(reported);
        report.crash_states += 1;
        let mut w = World::from_tree(live);
        w.bugs = bugs;
        w.service = service;
        let world = shared(w);
        let (bad, _) = recover_and_check_full(&world, &oracle);
        if !bad.is_empty() {
            report.violations.push(Violation {
                scenario: format!("{} (kill)", scn.name),
                crash_at: n,
                recovery_crash_at: None,
                fates: "page cache kept".into(),
                what: bad,
            });
        }
    }
    report
}

/// Explore power cuts during recovery, from each of `starts` (disks on which recovery has work
/// to do): cut before every operation of recovery, build the post-crash disks, recover again,
/// check.
pub fn explore_recovery(
    name: &str,
    starts: &[(Tree, Oracle)],
    bugs: Bugs,
    bounds: Bounds,
) -> Report {
    let mut report = Report::default();
    let recover_workload = |ctx: &Ctx<'_>| {
        let _ = crate::check::run_recover(ctx.world, ctx.journal);
    };
    for (si, (start, oracle)) in starts.iter().enumerate() {
        let (_, _, total) = run_to_crash(start, bugs, None, &recover_workload);
        let mut seen = HashSet::new();
        for n in 0..=total {
            report.crash_points += 1;
            let (snap, _, _) = run_to_crash(start, bugs, Some(n), &recover_workload);
            for img in images(&snap, bounds) {
                if !seen.insert(img.tree.fingerprint()) {
                    continue;
                }
                report.crash_states += 1;
                let mut w = World::from_tree(img.tree.clone());
                w.bugs = bugs;
                let world = shared(w);
                let (bad, _) = recover_and_check_full(&world, oracle);
                if !bad.is_empty() {
                    report.violations.push(Violation {
                        scenario: format!("{name} (recovery start {si})"),
                        crash_at: si as u64,
                        recovery_crash_at: Some(n),
                        fates: img.describe(),
                        what: bad,
                    });
                }
            }
        }
    }
    report
}

/// Pick at most `max` of `v`, spread evenly (deterministic).
pub fn spread<T: Clone>(v: &[T], max: usize) -> Vec<T> {
    if v.len() <= max || max == 0 {
        return v.to_vec();
    }
    (0..max).map(|i| v[i * v.len() / max].clone()).collect()
}
