//! One metadata transaction over N files, through the real engine, storage and journal, for
//! docs/performance.md ("Metadata transactions"):
//!
//! ```text
//! cargo run --release --example metadata_txn -- N DIR
//! ```
//!
//! makes `DIR/pki` with N certificate-sized files (1.2 KiB, mode 0644, owner 1000:1000 when
//! run as root), then runs one transaction that sets every one to 0600 root:root (no gate, no
//! audit: what is measured is the transaction itself) and prints, as `key value` lines: the
//! wall time of the transaction, the journal's size before and after, and the process's peak
//! resident memory. `scripts/perf_metadata.sh` adds the fsync count (strace) for N = 30 and
//! N = 3000.

// A measuring tool: it prints, writes its fixtures and reads the clock directly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use kharden::audit::NoAudit;
use kharden::durable::{FileMeta, RealStorage};
use kharden::gate::NoGate;
use kharden::journal::{AuditSpec, GateSpec, Journal, JournalRead, TxnKind};
use kharden::txn::{Engine, FileOp, Outcome, Plan, PlanOptions, SystemClock};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Instant;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: metadata_txn N DIR");
    let dir = PathBuf::from(args.next().expect("usage: metadata_txn N DIR"));
    let pki = dir.join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    let root = nix::unistd::geteuid().is_root();
    let body = "-----BEGIN CERTIFICATE-----\n".to_string() + &"A".repeat(1200) + "\n";
    let mut paths = Vec::with_capacity(n);
    for i in 0..n {
        let p = pki.join(format!("cert-{i:05}.crt"));
        std::fs::write(&p, &body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        if root {
            std::os::unix::fs::chown(&p, Some(1000), Some(1000)).unwrap();
        }
        paths.push(p);
    }
    let state = dir.join("state");
    let journal = Journal::open(&state).unwrap();
    let db = state.join("journal.redb");
    let size_before = std::fs::metadata(&db).unwrap().len();
    let engine = Engine::new(&journal, &RealStorage, &NoGate, &NoAudit, &SystemClock);
    let target = FileMeta {
        mode: 0o600,
        uid: 0,
        gid: if root {
            0
        } else {
            nix::unistd::getegid().as_raw()
        },
    };
    let target = if root {
        target
    } else {
        FileMeta {
            uid: nix::unistd::geteuid().as_raw(),
            ..target
        }
    };
    let plan = Plan {
        kind: TxnKind::Harden {
            controls: vec!["1.1.20".into()],
        },
        summary: format!("{n} files"),
        ops: paths
            .iter()
            .map(|p| FileOp::metadata(p.clone(), target))
            .collect(),
        gate: GateSpec::default(),
        audit: AuditSpec::default(),
        options: PlanOptions::default(),
        restart: None,
    };
    let t = Instant::now();
    let out = engine.run(plan).unwrap();
    let elapsed = t.elapsed();
    let Outcome::Committed { txid } = out else {
        panic!("{out:?}")
    };
    let rec = journal.get(txid).unwrap();
    let record_bytes = kharden::journal::schema::encode(&rec).unwrap().len();
    let events = journal.events(txid).unwrap();
    let event_bytes: usize = events
        .iter()
        .map(|e| kharden::journal::schema::encode(e).unwrap().len())
        .sum();
    drop(journal);
    let size_after = std::fs::metadata(&db).unwrap().len();
    println!("files {n}");
    println!("transaction_ms {:.1}", elapsed.as_secs_f64() * 1000.0);
    println!("record_bytes {record_bytes}");
    println!("events {}", events.len());
    println!("event_bytes {event_bytes}");
    println!("journal_bytes_before {size_before}");
    println!("journal_bytes_after {size_after}");
    println!("peak_rss_kib {}", peak_rss_kib());
}
