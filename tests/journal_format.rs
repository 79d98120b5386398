//! The journal's format is pinned (issue 12, item 2): every later build reads the golden
//! journal and the golden record bytes of every earlier format, written by the build that
//! introduced that format (`examples/golden_journal.rs`), and decodes them to exactly the
//! values they were written from. See "Journal format history" in docs/crash-safety.md.

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use kharden::journal::schema::{decode, encode, RECORD_VERSION};
use kharden::journal::{
    Event, EventKind, GateTarget, Journal, JournalRead, JournalReader, RollbackCause, Scope, State,
    TxnKind, TxnRecord,
};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[path = "golden/v1_values.rs"]
mod v1_values;
#[path = "golden/v2_values.rs"]
mod v2_values;
#[path = "golden/v3_values.rs"]
mod v3_values;

fn golden(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/v{version}"))
}

/// A private state directory holding a copy of the golden journal (never the committed file
/// itself: redb may write to a database it opens).
fn state_with_copy(version: u32) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let db = d.path().join("journal.redb");
    std::fs::copy(golden(version).join("journal.redb"), &db).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    d
}

fn records(version: u32) -> Vec<(String, Vec<u8>)> {
    let text = std::fs::read_to_string(golden(version).join("records.txt")).unwrap();
    text.lines()
        .map(|l| {
            let (name, hex) = l.split_once(' ').unwrap();
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (name.to_string(), bytes)
        })
        .collect()
}

fn check_v1_contents(j: &impl JournalRead, added: u64) {
    // Transactions 1 and 2 were pruned; 3..=9 remain.
    assert_eq!(j.len().unwrap(), 7 + added);
    let states: Vec<State> = (3..=9).map(|id| j.get(id).unwrap().state).collect();
    assert_eq!(
        states,
        vec![
            State::Committed,
            State::RolledBack,
            State::RolledBack,
            State::NeedsManual,
            State::NeedsManual,
            State::Aborted,
            State::Prepared,
        ]
    );
    assert!(matches!(
        j.get(1),
        Err(kharden::journal::JournalError::NotFound(1))
    ));
    assert_eq!(j.open_ids().unwrap()[0], 9);
    assert_eq!(j.unresolved().unwrap(), vec![7]);

    let t3 = j.get(3).unwrap();
    assert_eq!(t3.kind, TxnKind::Apply);
    assert_eq!(t3.files[0].changes, v1_values::every_change());
    assert_eq!(t3.gate, v1_values::gate_spec());
    assert_eq!(t3.audit, v1_values::audit_spec());
    assert_eq!(
        j.blob(&t3.files[0].after.as_ref().unwrap().hash).unwrap(),
        b"apiVersion: v1\nkind: Pod\n# version 3\n"
    );
    let kinds: Vec<EventKind> = j.events(3).unwrap().into_iter().map(|e| e.kind).collect();
    let every = v1_values::every_event_kind();
    assert!(
        kinds.windows(every.len()).any(|w| w == every.as_slice()),
        "transaction 3 holds every event kind, in order: {kinds:?}"
    );
    let t4 = j.get(4).unwrap();
    assert_eq!(
        t4.kind,
        TxnKind::Harden {
            controls: vec!["3.2.1".into(), "1.2.16".into()]
        }
    );
    assert_eq!(t4.rollback_cause, Some(RollbackCause::AuditFailed));
    assert!(t4.files[0].before.is_none(), "a created file");
    assert_eq!(j.get(5).unwrap().kind, TxnKind::Rollback { of: 3 });
    assert_eq!(
        j.get(5).unwrap().rollback_cause,
        Some(RollbackCause::WriteFailed)
    );
    assert_eq!(
        j.get(6).unwrap().rollback_cause,
        Some(RollbackCause::Recovery)
    );
    assert!(j.events(6).unwrap().iter().any(|e| e.kind
        == EventKind::Resolved {
            note: Some("restored by hand".into())
        }));
    assert_eq!(
        j.get(8).unwrap().reason.as_deref(),
        Some("refused: line 3: not valid YAML")
    );
    assert!(j.get(9).unwrap().files[0].after.is_none(), "a deleted file");
}

#[test]
fn the_format_1_golden_journal_reads_with_this_build() {
    let d = state_with_copy(1);
    let r = JournalReader::open(d.path()).unwrap().expect("a journal");
    check_v1_contents(&r, 0);
}

#[test]
fn the_format_1_golden_journal_verifies_and_takes_new_transactions() {
    let d = state_with_copy(1);
    let mut j = Journal::open(d.path()).unwrap();
    // Transaction 3 carries every event kind as plain events, two state events among them
    // (gating, then rolling-back) outside its real sequence: verify must find exactly those.
    let faults: Vec<String> = j
        .verify()
        .unwrap()
        .into_iter()
        .map(|f| format!("{:?}: {}", f.txid, f.what))
        .collect();
    assert_eq!(
        faults,
        vec![
            "Some(3): illegal transition prepared -> gating",
            "Some(3): illegal transition rolling-back -> applied"
        ]
    );
    // A new record in this build's format beside format-1 records.
    let mut rec = j.get(3).unwrap();
    rec.summary = "written by this build".into();
    let id = j.prepare(rec, &[], v1_values::T0 + 999_000).unwrap();
    assert_eq!(id, 10);
    assert_eq!(j.get(id).unwrap().summary, "written by this build");
    check_v1_contents(&j, 1);
}

#[test]
fn the_format_1_golden_records_decode_to_their_values() {
    let d = state_with_copy(1);
    let r = JournalReader::open(d.path()).unwrap().expect("a journal");
    let every = v1_values::every_event_kind();
    let mut events = 0;
    for (name, bytes) in records(1) {
        assert_eq!(bytes[0], 1, "{name}: format 1");
        if let Some(id) = name.strip_prefix("txn-") {
            let rec: TxnRecord = decode(&bytes).unwrap();
            assert_eq!(rec, r.get(id.parse().unwrap()).unwrap(), "{name}");
            if RECORD_VERSION == 1 {
                assert_eq!(encode(&rec).unwrap(), bytes, "{name}: re-encoding");
            }
        } else if let Some(i) = name.strip_prefix("event-") {
            let i: usize = i.parse().unwrap();
            let ev: Event = decode(&bytes).unwrap();
            assert_eq!(
                ev,
                Event {
                    time_ms: v1_values::T0 + i as u64,
                    kind: every[i].clone()
                },
                "{name}"
            );
            if RECORD_VERSION == 1 {
                assert_eq!(encode(&ev).unwrap(), bytes, "{name}: re-encoding");
            }
            events += 1;
        }
    }
    assert_eq!(events, every.len(), "one golden record per event kind");
}

fn check_v2_contents(j: &impl JournalRead, added: u64) {
    // Transactions 1 and 2 were pruned; 3..=10 remain.
    assert_eq!(j.len().unwrap(), 8 + added);
    let states: Vec<State> = (3..=10).map(|id| j.get(id).unwrap().state).collect();
    assert_eq!(
        states,
        vec![
            State::Committed,
            State::RolledBack,
            State::RolledBack,
            State::NeedsManual,
            State::NeedsManual,
            State::Aborted,
            State::RolledBack,
            State::Prepared,
        ]
    );
    assert_eq!(j.open_ids().unwrap()[0], 10);
    assert_eq!(j.unresolved().unwrap(), vec![7]);
    let t3 = j.get(3).unwrap();
    assert_eq!(t3.files[0].changes, v1_values::every_change());
    assert_eq!(t3.gate, v2_values::gate_spec());
    assert_eq!(t3.temp_tag, v2_values::TEMP_TAG);
    let kinds: Vec<EventKind> = j.events(3).unwrap().into_iter().map(|e| e.kind).collect();
    let every = v2_values::every_event_kind();
    assert!(
        kinds.windows(every.len()).any(|w| w == every.as_slice()),
        "transaction 3 holds every event kind of format 2, in order: {kinds:?}"
    );
    let t9 = j.get(9).unwrap();
    assert_eq!(t9.rollback_cause, Some(RollbackCause::Interrupted));
    assert!(j.events(9).unwrap().iter().any(|e| e.kind
        == EventKind::Signal {
            signal: 15,
            second: false
        }));
}

#[test]
fn the_format_2_golden_journal_reads_verifies_and_takes_new_transactions() {
    let d = state_with_copy(2);
    let r = JournalReader::open(d.path()).unwrap().expect("a journal");
    check_v2_contents(&r, 0);
    drop(r);
    let mut j = Journal::open(d.path()).unwrap();
    let faults: Vec<String> = j
        .verify()
        .unwrap()
        .into_iter()
        .map(|f| format!("{:?}: {}", f.txid, f.what))
        .collect();
    assert_eq!(
        faults,
        vec![
            "Some(3): illegal transition prepared -> gating",
            "Some(3): illegal transition rolling-back -> applied"
        ]
    );
    let mut rec = j.get(3).unwrap();
    rec.summary = "written by this build".into();
    assert_eq!(j.prepare(rec, &[], v1_values::T0 + 999_000).unwrap(), 11);
    check_v2_contents(&j, 1);
}

#[test]
fn the_format_2_golden_records_decode_to_their_values() {
    let d = state_with_copy(2);
    let r = JournalReader::open(d.path()).unwrap().expect("a journal");
    let every = v2_values::every_event_kind();
    let mut events = 0;
    for (name, bytes) in records(2) {
        assert_eq!(bytes[0], 2, "{name}: format 2");
        if let Some(id) = name.strip_prefix("txn-") {
            let rec: TxnRecord = decode(&bytes).unwrap();
            assert_eq!(rec, r.get(id.parse().unwrap()).unwrap(), "{name}");
            if RECORD_VERSION == 2 {
                assert_eq!(encode(&rec).unwrap(), bytes, "{name}: re-encoding");
            }
        } else if let Some(i) = name.strip_prefix("event-") {
            let i: usize = i.parse().unwrap();
            let ev: Event = decode(&bytes).unwrap();
            assert_eq!(
                ev,
                Event {
                    time_ms: v1_values::T0 + i as u64,
                    kind: every[i].clone()
                },
                "{name}"
            );
            if RECORD_VERSION == 2 {
                assert_eq!(encode(&ev).unwrap(), bytes, "{name}: re-encoding");
            }
            events += 1;
        }
    }
    assert_eq!(events, every.len(), "one golden record per event kind");
}

fn check_v3_contents(j: &impl JournalRead, added: u64) {
    // Transactions 1 and 2 were pruned; 3..=12 remain.
    assert_eq!(j.len().unwrap(), 10 + added);
    let states: Vec<State> = (3..=12).map(|id| j.get(id).unwrap().state).collect();
    assert_eq!(
        states,
        vec![
            State::Committed,
            State::RolledBack,
            State::RolledBack,
            State::NeedsManual,
            State::NeedsManual,
            State::Aborted,
            State::RolledBack,
            State::Committed,
            State::RolledBack,
            State::Prepared,
        ]
    );
    assert_eq!(j.open_ids().unwrap()[0], 12);
    assert_eq!(j.unresolved().unwrap(), vec![7]);
    let t3 = j.get(3).unwrap();
    assert_eq!(t3.files[0].changes, v1_values::every_change());
    assert_eq!(t3.files[0].scope, Scope::Contents);
    assert_eq!(t3.gate, v3_values::gate_spec());
    assert_eq!(t3.temp_tag, v3_values::TEMP_TAG);
    assert_eq!(t3.restart, None);
    let kinds: Vec<EventKind> = j.events(3).unwrap().into_iter().map(|e| e.kind).collect();
    let every = v3_values::every_event_kind();
    assert!(
        kinds.windows(every.len()).any(|w| w == every.as_slice()),
        "transaction 3 holds every event kind of format 3, in order: {kinds:?}"
    );
    // The metadata transaction: no blob, the identity hash on both sides.
    let t10 = j.get(10).unwrap();
    assert_eq!(t10.gate, v3_values::gate_spec_nothing());
    assert_eq!(t10.gate.target, GateTarget::Nothing);
    let (kb, ka) = v3_values::metadata_sides(b"-----BEGIN KEY-----\n");
    assert_eq!(t10.files[0].scope, Scope::Metadata { directory: false });
    assert_eq!(
        (t10.files[0].before.as_ref(), t10.files[0].after.as_ref()),
        (Some(&kb), Some(&ka))
    );
    assert!(
        j.blob(&kb.hash).is_err(),
        "a metadata change keeps no contents"
    );
    let (db, da) = v3_values::directory_sides();
    assert_eq!(t10.files[1].scope, Scope::Metadata { directory: true });
    assert_eq!(
        (t10.files[1].before.as_ref(), t10.files[1].after.as_ref()),
        (Some(&db), Some(&da))
    );
    // The kubelet transaction: settings, a restart, rolled back because it failed.
    let t11 = j.get(11).unwrap();
    assert_eq!(t11.restart, Some(v3_values::restart()));
    assert_eq!(t11.files[0].settings, v3_values::every_setting());
    assert_eq!(
        t11.files[1].changes,
        vec![v1_values::every_change()[0].clone()]
    );
    assert_eq!(t11.rollback_cause, Some(RollbackCause::RestartFailed));
    assert!(j
        .events(11)
        .unwrap()
        .iter()
        .any(|e| matches!(e.kind, EventKind::Restarted { .. })));
}

#[test]
fn the_format_3_golden_journal_reads_verifies_and_takes_new_transactions() {
    let d = state_with_copy(3);
    let r = JournalReader::open(d.path()).unwrap().expect("a journal");
    check_v3_contents(&r, 0);
    drop(r);
    let mut j = Journal::open(d.path()).unwrap();
    let faults: Vec<String> = j
        .verify()
        .unwrap()
        .into_iter()
        .map(|f| format!("{:?}: {}", f.txid, f.what))
        .collect();
    assert_eq!(
        faults,
        vec![
            "Some(3): illegal transition prepared -> gating",
            "Some(3): illegal transition rolling-back -> applied"
        ]
    );
    let mut rec = j.get(11).unwrap();
    rec.summary = "written by this build".into();
    assert_eq!(j.prepare(rec, &[], v1_values::T0 + 999_000).unwrap(), 13);
    check_v3_contents(&j, 1);
}

#[test]
fn the_format_3_golden_records_decode_to_their_values() {
    let d = state_with_copy(3);
    let r = JournalReader::open(d.path()).unwrap().expect("a journal");
    let every = v3_values::every_event_kind();
    let mut events = 0;
    for (name, bytes) in records(3) {
        assert_eq!(bytes[0], 3, "{name}: format 3");
        if let Some(id) = name.strip_prefix("txn-") {
            let rec: TxnRecord = decode(&bytes).unwrap();
            assert_eq!(rec, r.get(id.parse().unwrap()).unwrap(), "{name}");
            if RECORD_VERSION == 3 {
                assert_eq!(encode(&rec).unwrap(), bytes, "{name}: re-encoding");
            }
        } else if let Some(i) = name.strip_prefix("event-") {
            let i: usize = i.parse().unwrap();
            let ev: Event = decode(&bytes).unwrap();
            assert_eq!(
                ev,
                Event {
                    time_ms: v1_values::T0 + i as u64,
                    kind: every[i].clone()
                },
                "{name}"
            );
            if RECORD_VERSION == 3 {
                assert_eq!(encode(&ev).unwrap(), bytes, "{name}: re-encoding");
            }
            events += 1;
        }
    }
    assert_eq!(events, every.len(), "one golden record per event kind");
}

/// A format-2 record read by this build keeps what format 2 meant: a contents change of
/// static pod manifests, no service restarted, no other process watched.
#[test]
fn format_2_records_convert_to_what_they_meant() {
    let d = state_with_copy(2);
    let r = JournalReader::open(d.path()).unwrap().expect("a journal");
    for id in 3..=10 {
        let t = r.get(id).unwrap();
        assert_eq!(t.restart, None);
        assert_eq!(t.gate.target, GateTarget::StaticPods);
        assert!(t.gate.keep.is_empty());
        assert!(t
            .files
            .iter()
            .all(|f| f.scope == Scope::Contents && f.settings.is_empty()));
    }
}

/// A format-1 record read by this build keeps what format 1 meant: no temp tag (its temps
/// were `.<name>.kharden-<id>`) and gates that waited for their deadline.
#[test]
fn format_1_records_convert_to_what_they_meant() {
    let d = state_with_copy(1);
    let r = JournalReader::open(d.path()).unwrap().expect("a journal");
    let t = r.get(3).unwrap();
    assert_eq!(t.temp_tag, kharden::journal::TEMP_TAG_V1);
    assert_eq!(t.gate.max_crashes, 0);
}
