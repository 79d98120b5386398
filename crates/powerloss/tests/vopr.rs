//! A fixed number of seeded random schedules (`cargo test`); the long run is
//! `cargo run --release -p kharden-powerloss --example vopr -- --hours H`.

use kharden_powerloss::vopr::{run_many, Config};

/// Fixed seeds, so CI is deterministic; a failure prints the seed that replays it.
const FIRST_SEED: u64 = 1;
const SCHEDULES: u64 = if cfg!(debug_assertions) { 40 } else { 400 };

#[test]
fn seeded_random_schedules() {
    let t = std::time::Instant::now();
    match run_many(FIRST_SEED, SCHEDULES, Config::default()) {
        Ok(s) => eprintln!("vopr: {s:?}, 0 violations in {:.1?}", t.elapsed()),
        Err(f) => panic!("{f}"),
    }
}
