//! Journal micro-benchmarks (divan): what one transaction costs the journal, on a disk (every
//! durable commit is real fdatasyncs) and on a tmpfs (fdatasync is free, so what is left is
//! redb's and postcard's CPU), and whether reading the journal stays flat as history grows.
//!
//! ```text
//! cargo bench -p kharden --bench journal
//! ```
//!
//! The end-to-end figures (the CLI against Ansible and sed, fsyncs per transaction, journals of
//! 100k transactions) are in docs/performance.md and come from scripts/perf.sh.

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use divan::Bencher;
use kharden::journal::{Journal, JournalRead};
use std::path::{Path, PathBuf};

#[path = "support/synthetic_apply.rs"]
mod synthetic_apply;

const VARIANTS: usize = 8;

fn main() {
    divan::main();
}

/// Versions of the fixture that differ by one flag, made by the real editor.
fn variants() -> Vec<Vec<u8>> {
    synthetic_apply::variants(VARIANTS).expect("the fixture edits")
}

/// The journal calls of one `apply --no-gate` (benches/support/synthetic_apply.rs): two
/// durable commits (prepare, committed), the progress records in between queued.
fn transaction(j: &Journal, blobs: &[Vec<u8>], i: usize) {
    synthetic_apply::record(j, blobs, i, 1_700_000_000_000 + i as u64).unwrap();
}

/// A fresh state directory on a disk (under target/) or on a tmpfs (/dev/shm).
fn state_dir(tmpfs: bool) -> tempfile::TempDir {
    let base: PathBuf = if tmpfs && Path::new("/dev/shm").is_dir() {
        "/dev/shm".into()
    } else {
        option_env!("CARGO_TARGET_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
    };
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix("kharden-bench-")
        .tempdir_in(base)
        .unwrap()
}

fn journal_with(n: usize, tmpfs: bool) -> (tempfile::TempDir, Journal) {
    let dir = state_dir(tmpfs);
    let blobs = variants();
    let j = Journal::open(&dir.path().join("state")).unwrap();
    for i in 0..n {
        transaction(&j, &blobs, i);
    }
    (dir, j)
}

/// One transaction's journal work (prepare .. committed) on a disk: fdatasync-bound.
#[divan::bench(sample_count = 30, sample_size = 1)]
fn transaction_disk(bencher: Bencher) {
    let (_dir, j) = journal_with(0, false);
    let blobs = variants();
    let mut i = 0;
    bencher.bench_local(|| {
        transaction(&j, &blobs, i);
        i += 1;
    });
}

/// The same on a tmpfs: the CPU cost of a transaction's records without the disk.
#[divan::bench(sample_count = 50, sample_size = 10)]
fn transaction_tmpfs(bencher: Bencher) {
    let (_dir, j) = journal_with(0, true);
    let blobs = variants();
    let mut i = 0;
    bencher.bench_local(|| {
        transaction(&j, &blobs, i);
        i += 1;
    });
}

const HISTORY: [usize; 3] = [100, 1_000, 10_000];

/// `journal log --limit 20`'s read: the newest 20 records, with N in history.
#[divan::bench(args = HISTORY, sample_count = 50)]
fn list_newest_20(bencher: Bencher, n: usize) {
    let (_dir, j) = journal_with(n, true);
    bencher.bench_local(|| divan::black_box(j.list(20, None).unwrap().len()));
}

/// `recover`'s read: the open-transaction index, with N committed transactions in history.
#[divan::bench(args = HISTORY, sample_count = 50)]
fn open_ids(bencher: Bencher, n: usize) {
    let (_dir, j) = journal_with(n, true);
    bencher.bench_local(|| divan::black_box(j.open_ids().unwrap().len()));
}
