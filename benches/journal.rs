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

use divan::Bencher;
use kharden::durable::{hash, FileMeta};
use kharden::journal::{
    AuditSpec, Durable, EventKind, FileRecord, GateSpec, Image, Journal, Side, State, TxnKind,
    TxnRecord,
};
use kharden_manifest::Change;
use std::path::{Path, PathBuf};

const FIXTURE: &[u8] = include_bytes!("../tests/fixtures/kube-apiserver.yaml");
const MANIFEST: &str = "/etc/kubernetes/manifests/kube-apiserver.yaml";
const VARIANTS: usize = 8;

fn main() {
    divan::main();
}

fn change(k: usize) -> Change {
    Change::Set {
        name: "audit-log-maxage".into(),
        value: Some((30 + k).to_string()),
    }
}

/// Versions of the fixture that differ by one flag, made by the real editor.
fn variants() -> Vec<Vec<u8>> {
    (0..VARIANTS)
        .map(|k| {
            kharden_manifest::edit(FIXTURE, None, &[change(k)])
                .expect("the fixture edits")
                .output
        })
        .collect()
}

/// The journal calls of one `apply --no-gate` (see examples/make_journal.rs): two durable
/// commits (prepare, committed), the progress records in between queued.
fn transaction(j: &Journal, blobs: &[Vec<u8>], i: usize) {
    let k = i % VARIANTS;
    let (before, after) = (&blobs[k], &blobs[(k + 1) % VARIANTS]);
    let meta = FileMeta {
        mode: 0o600,
        uid: 0,
        gid: 0,
    };
    let image = |b: &[u8]| Image {
        hash: hash(b),
        len: b.len() as u64,
        meta,
    };
    let now = 1_700_000_000_000 + i as u64;
    let rec = TxnRecord {
        id: 0,
        kind: TxnKind::Apply,
        created_ms: 0,
        updated_ms: 0,
        summary: format!(
            "apply kube-apiserver.yaml: set --audit-log-maxage={}",
            30 + k
        ),
        files: vec![FileRecord {
            path: MANIFEST.into(),
            before: Some(image(before)),
            after: Some(image(after)),
            changes: vec![change((k + 1) % VARIANTS)],
            gated: true,
        }],
        gate: GateSpec {
            timeout_secs: 60,
            stable_for_secs: 5,
            ..GateSpec::default()
        },
        audit: AuditSpec {
            builtin: true,
            script: None,
            script_timeout_secs: 30,
        },
        deadline_ms: now + 60_000,
        state: State::Prepared,
        rollback_cause: None,
        reason: None,
    };
    let id = j.prepare(rec, &[before, after], now).unwrap();
    j.add_events(
        id,
        vec![EventKind::FileWritten {
            path: MANIFEST.into(),
            side: Side::After,
        }],
        Durable::Later,
        now,
    )
    .unwrap();
    for s in [State::Applied, State::Auditing, State::Audited] {
        j.set_state(id, s, None, None, Durable::Later, now).unwrap();
    }
    j.set_state(id, State::Committed, None, None, Durable::Yes, now)
        .unwrap();
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
