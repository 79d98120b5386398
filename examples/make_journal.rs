//! Build a journal of N committed transactions quickly, for the performance figures of
//! docs/performance.md (`recover` and `journal log` must stay flat as history grows).
//!
//! ```text
//! cargo run --release --example make_journal -- STATE_DIR N [VARIANTS]
//! ```
//!
//! It drives `kharden::journal::Journal` directly, with the same calls, in the same order and
//! with the same durability as a `kharden apply --no-gate` (prepare, file written, applied,
//! auditing, audit passed, audited, committed), so the records, the events and the redb
//! commits are those of real transactions. The blobs are ~3 KB kubeadm apiserver manifests,
//! VARIANTS (default 8) versions of the test fixture that differ by one flag: transaction i
//! changes variant i to variant i+1, so the blob table deduplicates to VARIANTS entries, as
//! it would on a node where a few flags are toggled over and over.
//!
//! `make_journal --redb-commits MODE DB N` is a probe for the fsync table of
//! docs/performance.md: it opens a bare redb database in ConcurrencyMode MODE (`exclusive` or
//! `single`), makes N `Durability::Immediate` commits of one small row, and closes it, so that
//! `strace -c -e trace=fdatasync` of N=1 and N=11 gives redb's cost per commit in each mode.
//!
//! Every durable commit costs fdatasyncs; point STATE_DIR at a tmpfs (`/dev/shm/...`) to
//! build 100k transactions in seconds, then copy `journal.redb` where it is to be measured:
//! the file's format does not depend on where it was written.

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use kharden::journal::{Journal, JournalRead};
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[path = "../benches/support/synthetic_apply.rs"]
mod synthetic_apply;

fn usage() -> ! {
    eprintln!("usage: make_journal STATE_DIR N [VARIANTS]");
    eprintln!(
        "       make_journal --redb-commits exclusive|single DB N [no-close] [qr-last] [ro-only]"
    );
    std::process::exit(2);
}

/// N immediate commits on a bare redb database in the given concurrency mode.
///
/// `opts` (for the floor analysis in docs/performance.md): `no-close` leaks the database
/// handle instead of closing it (no allocator-state commit, no shutdown header: the next open
/// repairs); `qr-last` makes the last commit a quick-repair commit (2-phase, allocator state
/// recorded), so that the repair at the next open is quick; `ro-only` (with N = 0) only tries a
/// read-only open, as `kharden journal log` does, and prints whether it works.
fn redb_commits(
    mode: &str,
    path: &str,
    n: u64,
    opts: &[String],
) -> Result<(), Box<dyn std::error::Error>> {
    use redb::{ConcurrencyMode, Durability, ReadableDatabase, TableDefinition};
    const T: TableDefinition<u64, u64> = TableDefinition::new("t");
    let has = |o: &str| opts.iter().any(|x| x == o);
    let mut b = redb::Builder::new();
    b.set_concurrency_mode(match mode {
        "exclusive" => ConcurrencyMode::ExclusiveWriter,
        "single" => ConcurrencyMode::SingleWriter,
        _ => usage(),
    });
    if has("ro-only") {
        match b.open_read_only(path) {
            Ok(ro) => {
                ro.begin_read()?;
                println!("read-only open: ok");
            }
            Err(e) => println!("read-only open: {e}"),
        }
        return Ok(());
    }
    let db = b.create(path)?;
    for i in 0..n {
        let mut tx = db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        if has("qr-last") && i + 1 == n {
            tx.set_quick_repair(true);
        }
        tx.open_table(T)?.insert(i, i)?;
        tx.commit()?;
    }
    if has("no-close") {
        // The point of the probe: what redb costs when the handle is never closed.
        std::mem::forget(db);
    } else {
        drop(db);
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--redb-commits") {
        if args.len() < 4 {
            usage();
        }
        let n = args[3].parse().unwrap_or_else(|_| usage());
        return redb_commits(&args[1], &args[2], n, &args[4..]);
    }
    if args.len() < 2 || args.len() > 3 {
        usage();
    }
    let state_dir = PathBuf::from(&args[0]);
    let n: u64 = args[1].parse().unwrap_or_else(|_| usage());
    let variants: usize = match args.get(2) {
        Some(v) => v.parse().unwrap_or_else(|_| usage()),
        None => 8,
    };
    if variants < 2 {
        return Err("VARIANTS must be at least 2".into());
    }

    // VARIANTS versions of the fixture, each made by the real editor.
    let blobs = synthetic_apply::variants(variants)?;
    let journal = Journal::open(&state_dir)?;
    let start = Instant::now();
    let first = journal.len()?;
    for i in 0..n {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
        // The calls of Engine::run for `apply --no-gate`, with their durability.
        synthetic_apply::record(&journal, &blobs, (first + i) as usize, now)?;
        if (i + 1) % 10_000 == 0 {
            eprintln!("{} transactions, {:.1?}", i + 1, start.elapsed());
        }
    }
    let total = journal.len()?;
    drop(journal);
    let size = std::fs::metadata(state_dir.join(kharden::journal::DB_FILE))?.len();
    println!(
        "{total} transactions, {size} bytes, {} bytes/transaction, {} distinct blobs, built in {:.1?}",
        size / total.max(1),
        variants,
        start.elapsed()
    );
    Ok(())
}
