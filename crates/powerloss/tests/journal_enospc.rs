//! Issue 11, item 4: the journal runs out of space after a transaction's file was written.
//! kharden used to report exit 1 ("nothing changed") while the manifest held the
//! after-contents and the transaction was open. Now the file is put back durably, the error
//! says the open transaction is `kharden recover`'s (exit 8), and recovery finishes it, even
//! after a power cut right then.

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use kharden::journal::{JournalRead, State};
use kharden::txn::TxnError;
use kharden_powerloss::check::run_recover;
use kharden_powerloss::harness::{open_journal, plan, with_ctx, FixedAudit, ScriptedGate};
use kharden_powerloss::scenarios::{apiserver, body};
use kharden_powerloss::sim::{lock, Fault, OpKind, Tree, World};
use std::sync::{Arc, Mutex};

fn world_with_manifest() -> kharden_powerloss::sim::Shared {
    let mut t: Tree = World::fresh().durable;
    t.put(
        100,
        &apiserver(),
        &body(0, 1500),
        kharden::durable::FileMeta {
            mode: 0o600,
            uid: 0,
            gid: 0,
        },
    );
    let w = Arc::new(Mutex::new(World::from_tree(t)));
    // The journal exists already (a node that has run kharden before).
    drop(open_journal(&w).unwrap());
    lock(&w).sync_all();
    w
}

/// An apply with a gate and an audit.
fn run_apply(world: &kharden_powerloss::sim::Shared) -> Result<kharden::txn::Outcome, TxnError> {
    with_ctx(world, |ctx| {
        ctx.engine(&ScriptedGate::default(), &FixedAudit(true))
            .run(plan(&[(apiserver(), Some(body(1, 1700)))], true, true))
    })
    .unwrap()
    .0
}

/// The first operation of every journal commit after the manifest's rename, found by a run
/// without faults (a redb commit with `Durability::Immediate` is page writes, a sync, the
/// header write, a sync).
fn commits_after_the_write() -> Vec<u64> {
    let probe = world_with_manifest();
    let start = lock(&probe).op_log.len();
    assert!(run_apply(&probe).is_ok());
    let log = lock(&probe).op_log.clone();
    let rename = start
        + log[start..]
            .iter()
            .position(|k| *k == OpKind::Rename)
            .expect("the manifest is renamed in");
    let mut commits = vec![rename as u64 + 2];
    let mut syncs = 0;
    for (i, k) in log.iter().enumerate().skip(rename + 2) {
        if *k == OpKind::DbSync {
            syncs += 1;
            if syncs % 2 == 0 && i + 1 < log.len() {
                commits.push(i as u64 + 1);
            }
        }
    }
    commits
}

/// The journal runs out of space at the start of each commit after the write, in turn. Before
/// the commit record, kharden puts the file back durably (a power cut right then keeps it) and
/// says the open transaction is `kharden recover`'s (exit 8). At the commit record itself,
/// which may have reached the disk anyway (redb can fail after writing its header), the
/// verified change stays and recovery ends the transaction on the side the journal says. In
/// every case recovery ends on one side, and never contradicts the journal.
#[test]
fn a_journal_out_of_space_after_the_write_is_reported_and_recovered() {
    let (mut put_back, mut left) = (0, 0);
    for at in commits_after_the_write() {
        let world = world_with_manifest();
        lock(&world).faults_at.insert(at, Fault::Enospc);
        let err = match run_apply(&world) {
            // A commit of the journal's clean close, after the transaction ended.
            Ok(_) => continue,
            Err(e) => e,
        };
        let msg = err.to_string();
        assert!(msg.contains("kharden recover"), "{msg}");
        let restored = match &err {
            TxnError::JournalMidway { restored, .. } => {
                assert!(*restored, "{msg}");
                put_back += 1;
                true
            }
            TxnError::CommitUnknown { .. } => {
                left += 1;
                false
            }
            other => panic!("op {at}: {other}"),
        };
        assert_eq!(
            kharden::Error::from(err).exit_code(),
            kharden::exit::JOURNAL_FAULT
        );
        let (want, durable) = {
            let mut w = lock(&world);
            w.faults_at.clear();
            let data = w.live.file(&apiserver()).unwrap().data.clone();
            (data, w.durable.clone())
        };
        if restored {
            assert_eq!(want, body(0, 1500), "op {at}: put back");
            // ... durably: a power cut right now keeps it.
            let cut = Arc::new(Mutex::new(World::from_tree(durable)));
            assert_eq!(
                lock(&cut).live.file(&apiserver()).unwrap().data,
                body(0, 1500),
                "op {at}: the put-back survives a power cut"
            );
        } else {
            assert_eq!(want, body(1, 1700), "op {at}: the verified change stays");
        }
        // Recovery (space freed) ends the transaction, consistently with its files.
        let j = open_journal(&world).unwrap();
        run_recover(&world, &j).unwrap();
        assert!(j.open_ids().unwrap().is_empty(), "op {at}");
        let data = lock(&world).live.file(&apiserver()).unwrap().data.clone();
        match j.get(1).unwrap().state {
            State::Committed => assert_eq!(data, body(1, 1700), "op {at}"),
            State::RolledBack | State::Aborted => assert_eq!(data, body(0, 1500), "op {at}"),
            other => panic!("op {at}: recovery left it {other}"),
        }
    }
    assert!(put_back > 0 && left > 0, "put back {put_back}, left {left}");
}
