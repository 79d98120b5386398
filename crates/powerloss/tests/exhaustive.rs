//! The bounded exhaustive power-loss exploration of issue 7: one single-file and one two-file
//! transaction, a gate failure with its rollback, `kharden rollback`, `journal prune`, and
//! recovery itself. Every crash point, the bounded family of post-crash disks of
//! `kharden_powerloss::crash`, recovery and DESIGN.md's invariants on each.

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use kharden_powerloss::crash::Bounds;
use kharden_powerloss::explore::{
    explore, explore_kills, explore_recovery, spread, Report, Scenario,
};
use kharden_powerloss::scenarios;
use kharden_powerloss::sim::Bugs;

/// Debug builds (plain `cargo test`) run a smaller subset bound and sample the recovery
/// starting points; `--release` explores more.
fn bounds() -> Bounds {
    Bounds {
        full_subsets_up_to: if cfg!(debug_assertions) { 4 } else { 8 },
        tears: true,
    }
}

fn recovery_sample() -> usize {
    if cfg!(debug_assertions) {
        4
    } else {
        24
    }
}

fn run(scn: Scenario, with_recovery: bool) -> Report {
    let t = std::time::Instant::now();
    let mut r = explore(&scn, Bugs::default(), bounds());
    let starts = std::mem::take(&mut r.recovery_starts);
    let nstarts = starts.len();
    if with_recovery {
        let rr = explore_recovery(
            scn.name,
            &spread(&starts, recovery_sample()),
            Bugs::default(),
            bounds(),
        );
        eprintln!(
            "{}: recovery explored from {} of {} starts: {} crash points, {} crash states",
            scn.name,
            recovery_sample().min(nstarts),
            nstarts,
            rr.crash_points,
            rr.crash_states
        );
        r.merge(rr);
    }
    eprintln!(
        "{}: {} crash points, {} crash states, {} violations in {:.1?}",
        scn.name,
        r.crash_points,
        r.crash_states,
        r.violations.len(),
        t.elapsed()
    );
    for v in r.violations.iter().take(10) {
        eprintln!("VIOLATION {v}");
    }
    assert!(r.crash_states > 0);
    assert!(
        r.violations.is_empty(),
        "{} violations; first: {}",
        r.violations.len(),
        r.violations[0]
    );
    r
}

#[test]
fn single_file_transaction_and_its_recovery() {
    run(scenarios::single_file_commit(), true);
}

#[test]
fn two_file_transaction_and_its_recovery() {
    run(scenarios::two_file_commit(), true);
}

#[test]
fn gate_failure_rollback() {
    run(scenarios::gate_failure_rollback(), false);
}

#[test]
fn rollback_command() {
    run(scenarios::rollback_command(), false);
}

#[test]
fn prune() {
    run(scenarios::prune(), false);
}

/// Issue 13: a metadata transaction, and recovery from every point of it.
#[test]
fn metadata_transaction_and_its_recovery() {
    run(scenarios::metadata_commit(), true);
}

#[test]
fn metadata_gate_failure_rollback() {
    run(scenarios::metadata_rollback(), false);
}

/// Issue 14: a kubelet transaction restarts the kubelet after each side is written. Power cuts
/// everywhere (the kubelet is then not running at recovery: it restores and starts nothing),
/// and kills of kharden alone everywhere (the kubelet runs on: recovery restarts it on the
/// restored files).
#[test]
fn kubelet_restart_commit_and_rollback() {
    for scn in [
        scenarios::kubelet_restart_commit(),
        scenarios::kubelet_restart_rollback(),
        scenarios::kubelet_two_files_rollback(),
    ] {
        let kills = explore_kills(&scn, Bugs::default());
        eprintln!(
            "{} (kills): {} crash points, {} violations",
            scn.name,
            kills.crash_points,
            kills.violations.len()
        );
        for v in kills.violations.iter().take(10) {
            eprintln!("VIOLATION {v}");
        }
        assert!(kills.crash_points > 10);
        assert!(kills.violations.is_empty(), "{}", kills.violations[0]);
        run(scn, true);
    }
}
