//! Long random power-loss runs (VOPR style).
//!
//! ```text
//! cargo run --release -p kharden-powerloss --example vopr -- --seeds 10000
//! cargo run --release -p kharden-powerloss --example vopr -- --hours 2 [--first-seed N]
//! cargo run --release -p kharden-powerloss --example vopr -- --seed 1234      # replay one
//! cargo run --release -p kharden-powerloss --example vopr -- --exhaustive      # full explorer
//! ```
//!
//! Exit status 0 with no violation, 1 on the first violation (its seed and schedule printed).

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
use kharden_powerloss::explore::{explore, explore_recovery, spread, Report};
use kharden_powerloss::sim::Bugs;
use kharden_powerloss::vopr::{run_schedule, Config, Stats};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn usage() -> ! {
    eprintln!("usage: vopr [--seeds N | --hours H | --seed S | --exhaustive] [--first-seed N] [--steps N]");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut seeds: Option<u64> = None;
    let mut hours: Option<f64> = None;
    let mut one: Option<u64> = None;
    let mut exhaustive = false;
    let mut cfg = Config::default();
    let mut first = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1)
        << 20;
    let mut i = 0;
    let num = |i: usize| -> String { args.get(i + 1).cloned().unwrap_or_else(|| usage()) };
    while i < args.len() {
        match args[i].as_str() {
            "--seeds" => seeds = Some(num(i).parse().unwrap_or_else(|_| usage())),
            "--hours" => hours = Some(num(i).parse().unwrap_or_else(|_| usage())),
            "--seed" => one = Some(num(i).parse().unwrap_or_else(|_| usage())),
            "--first-seed" => first = num(i).parse().unwrap_or_else(|_| usage()),
            "--steps" => cfg.steps = num(i).parse().unwrap_or_else(|_| usage()),
            "--exhaustive" => {
                exhaustive = true;
                i += 1;
                continue;
            }
            _ => usage(),
        }
        i += 2;
    }
    let start = Instant::now();
    if exhaustive {
        let bounds = Bounds {
            full_subsets_up_to: 10,
            tears: true,
        };
        let mut total = Report::default();
        for scn in kharden_powerloss::scenarios::all() {
            let t = Instant::now();
            let mut r = explore(&scn, Bugs::default(), bounds);
            let starts = std::mem::take(&mut r.recovery_starts);
            let rr = explore_recovery(
                scn.name,
                &spread(&starts, usize::MAX),
                Bugs::default(),
                bounds,
            );
            println!(
                "{}: {} crash points, {} crash states; recovery: {} starts, {} crash points, {} crash states; {} violations ({:.1?})",
                scn.name,
                r.crash_points,
                r.crash_states,
                starts.len(),
                rr.crash_points,
                rr.crash_states,
                r.violations.len() + rr.violations.len(),
                t.elapsed()
            );
            total.merge(r);
            total.merge(rr);
        }
        for v in total.violations.iter().take(20) {
            println!("VIOLATION {v}");
        }
        println!(
            "total: {} crash points, {} crash states, {} violations, {:.1?}",
            total.crash_points,
            total.crash_states,
            total.violations.len(),
            start.elapsed()
        );
        std::process::exit(if total.violations.is_empty() { 0 } else { 1 });
    }
    let deadline = hours.map(|h| start + Duration::from_secs_f64(h * 3600.0));
    let (first, count) = match (one, seeds) {
        (Some(s), _) => (s, 1),
        (None, Some(n)) => (first, n),
        (None, None) if deadline.is_some() => (first, u64::MAX - first),
        _ => usage(),
    };
    println!("vopr: seeds from {first}, {} steps per schedule", cfg.steps);
    let mut total = Stats::default();
    let mut last_print = Instant::now();
    for seed in first..first.saturating_add(count) {
        match run_schedule(seed, cfg) {
            Ok(s) => total.add(&s),
            Err(f) => {
                println!("{f}");
                println!("after {total:?} in {:.1?}", start.elapsed());
                std::process::exit(1);
            }
        }
        if last_print.elapsed() > Duration::from_secs(30) {
            println!("{total:?} ({:.0?})", start.elapsed());
            last_print = Instant::now();
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    println!("done: {total:?}, 0 violations, {:.1?}", start.elapsed());
}
