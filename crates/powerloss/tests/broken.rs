//! The explorer must be able to fail: deliberately broken variants of the storage layer, each a
//! bug a real implementation could have, and what the explorer reports for each.

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
use kharden_powerloss::explore::{explore, explore_kills, Report};
use kharden_powerloss::scenarios;
use kharden_powerloss::sim::Bugs;

fn explore_broken(bugs: Bugs) -> Report {
    let r = explore(
        &scenarios::single_file_commit(),
        bugs,
        Bounds {
            full_subsets_up_to: 4,
            tears: true,
        },
    );
    eprintln!(
        "{bugs:?}: {} crash points, {} crash states, {} violations",
        r.crash_points,
        r.crash_states,
        r.violations.len()
    );
    for v in r.violations.iter().take(3) {
        eprintln!("  {v}");
    }
    r
}

/// A replace that skips the directory fsync: the rename of a committed transaction can be lost
/// at a power cut, so the committed change silently reverts.
#[test]
fn skipping_the_directory_fsync_is_caught() {
    let r = explore_broken(Bugs {
        skip_dir_fsync: true,
        ..Bugs::default()
    });
    assert!(
        !r.violations.is_empty(),
        "the explorer missed a lost rename"
    );
    assert!(
        r.violations.iter().any(|v| v
            .what
            .iter()
            .any(|w| w.contains("expected") && w.contains("journal's last word"))),
        "expected a committed transaction whose file reverted: {:?}",
        r.violations.first()
    );
}

/// A replace that renames the temp file before its data is durable: after a power cut the
/// manifest can be empty, torn or garbage.
#[test]
fn skipping_the_temp_file_fsync_is_caught() {
    let r = explore_broken(Bugs {
        skip_file_fsync: true,
        ..Bugs::default()
    });
    assert!(
        !r.violations.is_empty(),
        "the explorer missed an unsynced rename"
    );
}

/// A journal whose commits are not durable when they return (Prepared committed without
/// `Durability::Immediate`, or a disk that lies about flushes): files change before their
/// intent is on disk, and a reported commit can vanish. (redb itself may panic on such a disk;
/// the explorer reports a panic as a violation, so the hook is silenced here.)
#[test]
fn a_journal_without_durable_commits_is_caught() {
    std::panic::set_hook(Box::new(|_| {}));
    let r = explore_broken(Bugs {
        journal_sync_noop: true,
        ..Bugs::default()
    });
    assert!(
        !r.violations.is_empty(),
        "the explorer missed a non-durable journal"
    );
}

/// The random schedules catch the lost rename too, and name the seed that replays it.
#[test]
fn vopr_catches_skipping_the_directory_fsync() {
    let cfg = kharden_powerloss::vopr::Config {
        bugs: Bugs {
            skip_dir_fsync: true,
            ..Bugs::default()
        },
        ..Default::default()
    };
    let f = kharden_powerloss::vopr::run_many(1, 200, cfg)
        .expect_err("the random schedules missed a lost rename");
    eprintln!("{f}");
    assert!(f.to_string().contains(&format!("--seed {}", f.seed)));
}

/// Issue 11, item 6: the journal created in place (the empty file linked first, then written)
/// instead of built under a temp name and renamed in: a power cut during the first run leaves
/// a `journal.redb` that does not open, and every later command fails.
#[test]
fn creating_the_journal_in_place_is_caught() {
    let r = explore(
        &scenarios::first_run(),
        Bugs {
            journal_created_in_place: true,
            ..Bugs::default()
        },
        Bounds {
            full_subsets_up_to: 4,
            tears: true,
        },
    );
    assert!(
        r.violations
            .iter()
            .any(|v| v.what.iter().any(|w| w.contains("journal does not open"))),
        "the explorer missed a journal broken by a power cut at its creation: {:?}",
        r.violations.first()
    );
    // The real code (temp + rename) passes the same exploration.
    let ok = explore(
        &scenarios::first_run(),
        Bugs::default(),
        Bounds {
            full_subsets_up_to: 4,
            tears: true,
        },
    );
    assert!(ok.violations.is_empty(), "{:?}", ok.violations.first());
    assert!(ok.crash_points > 10, "{} crash points", ok.crash_points);
}

/// Issue 13: a chmod/chown whose inode is not synced before the commit record: a power cut
/// after the commit can bring the old mode back under a committed transaction.
#[test]
fn skipping_the_fsync_of_a_metadata_change_is_caught() {
    let bounds = Bounds {
        full_subsets_up_to: 4,
        tears: true,
    };
    let r = explore(
        &scenarios::metadata_commit(),
        Bugs {
            skip_meta_fsync: true,
            ..Bugs::default()
        },
        bounds,
    );
    assert!(
        r.violations
            .iter()
            .any(|v| v.what.iter().any(|w| w.contains("mode/owner"))),
        "the explorer missed a lost chmod: {:?}",
        r.violations.first()
    );
    let ok = explore(&scenarios::metadata_commit(), Bugs::default(), bounds);
    assert!(ok.violations.is_empty(), "{:?}", ok.violations.first());
}

/// A service manager that says the kubelet is not running when it is: after kharden alone is
/// killed mid-transaction, recovery restores the files without restarting the kubelet, which
/// keeps running the after side no file holds any more.
#[test]
fn a_recovery_that_does_not_restart_a_running_kubelet_is_caught() {
    let r = explore_kills(
        &scenarios::kubelet_restart_commit(),
        Bugs {
            service_never_active: true,
            ..Bugs::default()
        },
    );
    assert!(
        r.violations.iter().any(|v| v
            .what
            .iter()
            .any(|w| w.contains("runs a configuration") && w.contains("no longer holds"))),
        "expected a kubelet left on a configuration no file holds: {:?}",
        r.violations.first()
    );
}
