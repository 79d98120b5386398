//! Unit tests of every state transition and every row of the recovery table, on an in-memory
//! storage with a scripted gate and audit.

#![allow(clippy::disallowed_methods)] // tests time real writes

use super::*;
use crate::audit::{AuditVerdict, NoAudit};
use crate::durable::{FileState, MemStorage, TempName};
use crate::gate::NoGate;
use crate::journal::{AuditSpec, GateSpec, Journal};
use crate::journal::{JournalRead, Transition};
use std::cell::RefCell;

/// A gate that answers from a script: one verdict per call, in order.
struct ScriptedGate(RefCell<Vec<GateVerdict>>, RefCell<Vec<Purpose>>);

impl ScriptedGate {
    fn new(v: Vec<GateVerdict>) -> Self {
        ScriptedGate(RefCell::new(v), RefCell::new(Vec::new()))
    }
}

impl Gate for ScriptedGate {
    fn wait(&self, req: &GateRequest<'_>, observe: &mut dyn FnMut(&Observation)) -> GateVerdict {
        self.1.borrow_mut().push(req.purpose);
        observe(&Observation::probe(
            SystemTime::now(),
            Some(42),
            crate::gate::ProbeClass::Healthy(200),
            "scripted",
        ));
        let mut v = self.0.borrow_mut();
        if v.is_empty() {
            failed("script exhausted")
        } else {
            v.remove(0)
        }
    }
}

struct FixedAudit(bool);
impl Audit for FixedAudit {
    fn check(&self, _req: &AuditRequest<'_>) -> AuditVerdict {
        AuditVerdict {
            passed: self.0,
            detail: if self.0 {
                "ok".into()
            } else {
                "flag not in effect".into()
            },
            output: Some("script said so".into()),
        }
    }
}

fn passed() -> GateVerdict {
    GateVerdict::Passed {
        pid: Some(42),
        argv: Some(vec!["kube-apiserver".into()]),
        healthy_probes: 3,
        stable_for: Duration::from_secs(10),
    }
}

fn failed(why: &str) -> GateVerdict {
    GateVerdict::failed(crate::gate::FailReason::NotStable, why)
}

fn journal() -> (tempfile::TempDir, Journal) {
    let d = tempfile::tempdir().unwrap();
    let j = Journal::open(&d.path().join("state")).unwrap();
    (d, j)
}

const M: &str = "/m/kube-apiserver.yaml";
const P: &str = "/m/audit-policy.yaml";

fn plan(ops: Vec<(&str, Option<&[u8]>)>, gate: bool, audit: bool) -> Plan {
    Plan {
        kind: TxnKind::Apply,
        summary: "test".into(),
        ops: ops
            .into_iter()
            .map(|(p, a)| FileOp {
                gated: p == M,
                ..FileOp::contents(p, a.map(<[u8]>::to_vec))
            })
            .collect(),
        gate: GateSpec {
            enabled: gate,
            timeout_secs: 60,
            stable_for_secs: 1,
            ..Default::default()
        },
        audit: AuditSpec {
            builtin: audit,
            script: None,
            script_timeout_secs: 5,
        },
        options: PlanOptions::default(),
        restart: None,
    }
}

fn states(j: &Journal, id: TxId) -> Vec<State> {
    j.events(id)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::State { state, .. } => Some(state),
            _ => None,
        })
        .collect()
}

fn engine<'a>(j: &'a Journal, s: &'a MemStorage, g: &'a dyn Gate, a: &'a dyn Audit) -> Engine<'a> {
    Engine::new(j, s, g, a, &SystemClock)
}

#[test]
fn nothing_to_change_is_not_journaled() {
    let (_d, j) = journal();
    let s = MemStorage::default();
    s.put(M, b"same");
    let out = engine(&j, &s, &NoGate, &NoAudit)
        .run(plan(vec![(M, Some(b"same"))], false, false))
        .unwrap();
    assert_eq!(out, Outcome::Unchanged);
    assert!(j.is_empty().unwrap());
}

#[test]
fn prepared_applied_committed_without_gate() {
    let (_d, j) = journal();
    let s = MemStorage::default();
    s.put(M, b"old");
    let out = engine(&j, &s, &NoGate, &NoAudit)
        .run(plan(vec![(M, Some(b"new"))], false, false))
        .unwrap();
    let Outcome::Committed { txid } = out else {
        panic!("{out:?}")
    };
    assert_eq!(
        states(&j, txid),
        vec![State::Prepared, State::Applied, State::Committed]
    );
    assert_eq!(s.get(M).unwrap(), b"new");
    assert!(j.open_ids().unwrap().is_empty());
    assert!(j.open_ids().unwrap().is_empty());
}

#[test]
fn full_path_through_gating_auditing_audited() {
    let (_d, j) = journal();
    let s = MemStorage::default();
    s.put(M, b"old");
    let g = ScriptedGate::new(vec![passed()]);
    let out = engine(&j, &s, &g, &FixedAudit(true))
        .run(plan(vec![(M, Some(b"new"))], true, true))
        .unwrap();
    let Outcome::Committed { txid } = out else {
        panic!("{out:?}")
    };
    assert_eq!(
        states(&j, txid),
        vec![
            State::Prepared,
            State::Applied,
            State::Gating,
            State::Auditing,
            State::Audited,
            State::Committed
        ]
    );
    let evs = j.events(txid).unwrap();
    assert!(evs
        .iter()
        .any(|e| matches!(e.kind, EventKind::Probe { pid: Some(42), .. })));
    assert!(evs.iter().any(|e| matches!(&e.kind, EventKind::Audit { passed: true, output: Some(o), .. } if o.contains("script said"))));
}

#[test]
fn gate_failure_rolls_back_and_regates_the_old_component() {
    let (_d, j) = journal();
    let s = MemStorage::default();
    s.put(M, b"old");
    let g = ScriptedGate::new(vec![failed("crash loop"), passed()]);
    let out = engine(&j, &s, &g, &NoAudit)
        .run(plan(vec![(M, Some(b"new"))], true, false))
        .unwrap();
    let Outcome::RolledBack {
        txid,
        cause,
        reason,
        verified,
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(cause, RollbackCause::GateFailed);
    assert_eq!(verified, Verified::Healthy);
    assert!(reason.contains("crash loop"));
    assert_eq!(s.get(M).unwrap(), b"old");
    assert_eq!(*g.1.borrow(), vec![Purpose::Forward, Purpose::Rollback]);
    assert_eq!(
        states(&j, txid),
        vec![
            State::Prepared,
            State::Applied,
            State::Gating,
            State::RollingBack,
            State::RolledBack
        ]
    );
    let rec = j.get(txid).unwrap();
    assert_eq!(rec.rollback_cause, Some(RollbackCause::GateFailed));
}

#[test]
fn audit_failure_rolls_back() {
    let (_d, j) = journal();
    let s = MemStorage::default();
    s.put(M, b"old");
    let g = ScriptedGate::new(vec![passed(), passed()]);
    let out = engine(&j, &s, &g, &FixedAudit(false))
        .run(plan(vec![(M, Some(b"new"))], true, true))
        .unwrap();
    let Outcome::RolledBack { txid, cause, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(cause, RollbackCause::AuditFailed);
    assert_eq!(s.get(M).unwrap(), b"old");
    assert_eq!(
        states(&j, txid),
        vec![
            State::Prepared,
            State::Applied,
            State::Gating,
            State::Auditing,
            State::RollingBack,
            State::RolledBack
        ]
    );
}

#[test]
fn rollback_whose_old_component_stays_down_needs_manual() {
    let (_d, j) = journal();
    let s = MemStorage::default();
    s.put(M, b"old");
    let g = ScriptedGate::new(vec![failed("down"), failed("still down")]);
    let out = engine(&j, &s, &g, &NoAudit)
        .run(plan(vec![(M, Some(b"new"))], true, false))
        .unwrap();
    let Outcome::NeedsManual { txid, reason } = out else {
        panic!("{out:?}")
    };
    assert!(
        reason.contains("still down") && reason.contains(M),
        "{reason}"
    );
    assert_eq!(*states(&j, txid).last().unwrap(), State::NeedsManual);
    assert!(j.open_ids().unwrap().is_empty());
}

#[test]
fn write_failure_on_second_file_restores_the_first() {
    let (_d, j) = journal();
    let s = MemStorage::default();
    s.put(M, b"old");
    s.fail_op(2); // M written (1), P fails (2)
    let out = engine(&j, &s, &NoGate, &NoAudit)
        .run(plan(
            vec![(M, Some(b"new")), (P, Some(b"policy"))],
            false,
            false,
        ))
        .unwrap();
    let Outcome::RolledBack { cause, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(cause, RollbackCause::WriteFailed);
    assert_eq!(s.get(M).unwrap(), b"old");
    assert!(s.get(P).is_none());
}

#[test]
fn failing_restore_needs_manual_and_names_the_files() {
    let (_d, j) = journal();
    let s = MemStorage::default();
    s.put(M, b"old");
    s.fail_op(2); // forward write ok, restore fails
    let g = ScriptedGate::new(vec![failed("down")]);
    let out = engine(&j, &s, &g, &NoAudit)
        .run(plan(vec![(M, Some(b"new"))], true, false))
        .unwrap();
    let Outcome::NeedsManual { reason, .. } = out else {
        panic!("{out:?}")
    };
    assert!(reason.contains(M));
}

#[test]
fn files_of_an_unresolved_needs_manual_transaction_are_refused_until_resolved() {
    let (_d, mut j) = journal();
    let s = MemStorage::default();
    s.put(M, b"old");
    s.put(P, b"p0");
    s.fail_op(2); // forward write ok, restore fails
    let g = ScriptedGate::new(vec![failed("down")]);
    let out = engine(&j, &s, &g, &NoAudit)
        .run(plan(vec![(M, Some(b"new"))], true, false))
        .unwrap();
    let Outcome::NeedsManual { txid, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(j.unresolved().unwrap(), vec![txid]);
    let held = s.get(M).unwrap();
    let ops_before = s.written().len();
    // The same file: refused before anything is journaled or written.
    let n = j.len().unwrap();
    let err = engine(&j, &s, &NoGate, &NoAudit)
        .run(plan(
            vec![(P, Some(b"p1")), (M, Some(b"other"))],
            false,
            false,
        ))
        .unwrap_err();
    let TxnError::Recorded {
        txid: refusal,
        inner,
    } = &err
    else {
        panic!("{err}")
    };
    assert!(
        matches!(&**inner, TxnError::Unresolved { txid: t, path } if *t == txid && path == M),
        "{err}"
    );
    assert!(err.to_string().contains("kharden journal resolve"));
    assert_eq!(s.get(M).unwrap(), held);
    assert_eq!(
        s.get(P).unwrap(),
        b"p0",
        "nothing of the refused plan was written"
    );
    // The refusal is journaled (by the engine, at its clock), nothing else.
    assert_eq!((j.len().unwrap(), s.written().len()), (n + 1, ops_before));
    let r = j.get(*refusal).unwrap();
    assert_eq!(r.state, State::Aborted);
    assert!(r.files.is_empty());
    assert!(r.reason.unwrap().contains("refused:"));
    // Another file: free to change.
    let out = engine(&j, &s, &NoGate, &NoAudit)
        .run(plan(vec![(P, Some(b"p1"))], false, false))
        .unwrap();
    assert!(matches!(out, Outcome::Committed { .. }), "{out:?}");
    // Prune keeps the unresolved transaction (it says what to restore).
    j.prune(0).unwrap();
    assert_eq!(j.get(txid).unwrap().state, State::NeedsManual);
    assert!(j.verify().unwrap().is_empty());
    // Resolve: recorded as an event, and the file may change again.
    j.resolve(txid, Some("restored by hand".into()), 1).unwrap();
    assert!(j.unresolved().unwrap().is_empty());
    assert!(j
        .events(txid)
        .unwrap()
        .iter()
        .any(|e| matches!(&e.kind, crate::journal::EventKind::Resolved { note: Some(n) } if n == "restored by hand")));
    assert!(matches!(
        j.resolve(txid, None, 2),
        Err(crate::journal::JournalError::NotUnresolved { .. })
    ));
    let out = engine(&j, &s, &NoGate, &NoAudit)
        .run(plan(vec![(M, Some(b"other"))], false, false))
        .unwrap();
    assert!(matches!(out, Outcome::Committed { .. }), "{out:?}");
    assert_eq!(s.get(M).unwrap(), b"other");
    // Once resolved, prune may drop it like any finished transaction.
    j.prune(0).unwrap();
    assert!(j.get(txid).is_err());
    assert!(j.verify().unwrap().is_empty());
}

#[test]
fn a_file_changed_since_it_was_read_is_refused_before_anything() {
    let (_d, j) = journal();
    let s = MemStorage::default();
    s.put(M, b"old");
    let mut p = plan(vec![(M, Some(b"new"))], false, false);
    p.ops[0].expect_before = Some(Some(crate::durable::hash(b"other")));
    assert!(matches!(
        engine(&j, &s, &NoGate, &NoAudit).run(p),
        Err(TxnError::Changed { .. })
    ));
    assert_eq!(s.get(M).unwrap(), b"old");
    assert!(j.is_empty().unwrap());
}

#[test]
fn rollback_command_restores_and_refuses_diverged_files() {
    let (_d, j) = journal();
    let s = MemStorage::default();
    s.put(M, b"old");
    let e = engine(&j, &s, &NoGate, &NoAudit);
    let Outcome::Committed { txid } = e
        .run(plan(
            vec![(M, Some(b"new")), (P, Some(b"pol"))],
            false,
            false,
        ))
        .unwrap()
    else {
        panic!()
    };
    let rb = e
        .rollback_plan(
            txid,
            GateSpec::default(),
            AuditSpec::default(),
            PlanOptions::default(),
        )
        .unwrap();
    let Outcome::Committed { txid: t2 } = e.run(rb).unwrap() else {
        panic!()
    };
    assert_eq!(s.get(M).unwrap(), b"old");
    assert!(
        s.get(P).is_none(),
        "a file the transaction created is removed again"
    );
    assert_eq!(j.get(t2).unwrap().kind, TxnKind::Rollback { of: txid });
    // Rolling back the same transaction again: the files no longer hold its after side.
    assert!(matches!(
        e.rollback_plan(
            txid,
            GateSpec::default(),
            AuditSpec::default(),
            PlanOptions::default()
        ),
        Err(TxnError::Diverged { .. })
    ));
    // A rolled-back transaction is not committed.
    let g = ScriptedGate::new(vec![failed("x"), passed()]);
    let e2 = engine(&j, &s, &g, &NoAudit);
    let Outcome::RolledBack { txid: t3, .. } =
        e2.run(plan(vec![(M, Some(b"zzz"))], true, false)).unwrap()
    else {
        panic!()
    };
    assert!(matches!(
        e2.rollback_plan(
            t3,
            GateSpec::default(),
            AuditSpec::default(),
            PlanOptions::default()
        ),
        Err(TxnError::NotCommitted { .. })
    ));
}

// ---- recovery table: build each open state by hand, with files on each side ----

/// Prepare a transaction and drive it to `state` without running the engine's forward path.
fn open_txn(j: &Journal, s: &MemStorage, state: State, files: &[(&str, &[u8], &[u8])]) -> TxId {
    let mut recs = Vec::new();
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    for (p, b, a) in files {
        let meta = FileMeta {
            mode: 0o640,
            uid: 0,
            gid: 0,
        };
        recs.push(crate::journal::FileRecord {
            path: p.to_string(),
            before: Some(super::image(b, meta)),
            after: Some(super::image(a, meta)),
            changes: vec![],
            settings: vec![],
            gated: *p == M,
            scope: crate::journal::Scope::Contents,
            controls: Vec::new(),
        });
        blobs.push(b.to_vec());
        blobs.push(a.to_vec());
        s.put(p, b);
    }
    let rec = TxnRecord {
        id: 0,
        kind: TxnKind::Apply,
        created_ms: 0,
        updated_ms: 0,
        summary: "hand-made".into(),
        files: recs,
        gate: GateSpec {
            enabled: true,
            timeout_secs: 60,
            stable_for_secs: 1,
            ..Default::default()
        },
        audit: AuditSpec::default(),
        deadline_ms: 0,
        state: State::Prepared,
        rollback_cause: None,
        reason: None,
        restart: None,
        temp_tag: 7,
    };
    let refs: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
    let id = j.prepare(rec, &refs, 1).unwrap();
    let path: &[State] = match state {
        State::Prepared => &[],
        State::Applied => &[State::Applied],
        State::Gating => &[State::Applied, State::Gating],
        State::Auditing => &[State::Applied, State::Gating, State::Auditing],
        State::Audited => &[
            State::Applied,
            State::Gating,
            State::Auditing,
            State::Audited,
        ],
        State::RollingBack => &[State::Applied, State::Gating, State::RollingBack],
        _ => unreachable!(),
    };
    for st in path {
        let t = Transition::to(*st);
        let t = if *st == State::RollingBack {
            t.cause(RollbackCause::GateFailed)
        } else {
            t
        };
        j.transition(id, t, 2).unwrap();
    }
    id
}

fn recover_now(j: &Journal, s: &MemStorage, policy: Policy, force: bool) -> RecoverReport {
    let g = ScriptedGate::new(vec![passed(), passed()]);
    let r = recover(&engine(j, s, &g, &NoAudit), policy, force).unwrap();
    // Idempotent: a second run finds nothing open (or the same conflicts) and changes nothing.
    let snapshot = s.written();
    let again = recover(&engine(j, s, &NoGate, &NoAudit), policy, force).unwrap();
    assert_eq!(s.written(), snapshot, "recover twice changed files");
    if !force {
        assert_eq!(again.has_conflicts(), r.has_conflicts());
    }
    r
}

const EARLY: [State; 4] = [
    State::Prepared,
    State::Applied,
    State::Gating,
    State::Auditing,
];

#[test]
fn row1_early_state_all_before_is_aborted() {
    for st in EARLY {
        let (_d, j) = journal();
        let s = MemStorage::default();
        let id = open_txn(&j, &s, st, &[(M, b"old", b"new"), (P, b"p0", b"p1")]);
        let r = recover_now(&j, &s, Policy::Revert, false);
        assert_eq!(r.transactions[0].ended, Some(State::Aborted), "{st}");
        assert_eq!(j.get(id).unwrap().state, State::Aborted);
        assert_eq!(s.get(M).unwrap(), b"old");
        assert!(j.open_ids().unwrap().is_empty());
        // Found at before, not written: made durable before "aborted" is journaled.
        assert_eq!(s.synced(), vec![PathBuf::from(M), PathBuf::from(P)], "{st}");
    }
}

#[test]
fn row2_early_state_some_or_all_after_restores_before() {
    for st in EARLY {
        for which in [&[M][..], &[P], &[M, P]] {
            let (_d, j) = journal();
            let s = MemStorage::default();
            let id = open_txn(&j, &s, st, &[(M, b"old", b"new"), (P, b"p0", b"p1")]);
            for p in which {
                s.put(p, if *p == M { b"new" } else { b"p1" });
            }
            let r = recover_now(&j, &s, Policy::Revert, false);
            assert_eq!(
                r.transactions[0].ended,
                Some(State::RolledBack),
                "{st} {which:?}"
            );
            assert_eq!(s.get(M).unwrap(), b"old");
            assert_eq!(s.get(P).unwrap(), b"p0");
            assert_eq!(
                j.get(id).unwrap().rollback_cause,
                Some(RollbackCause::Recovery)
            );
            // The file that was still at before is synced, not rewritten.
            let untouched: Vec<PathBuf> = [M, P]
                .iter()
                .filter(|p| !which.contains(p))
                .map(PathBuf::from)
                .collect();
            assert_eq!(s.synced(), untouched, "{st} {which:?}");
        }
    }
}

#[test]
fn row2_with_resume_policy_rolls_forward_through_the_gate() {
    let (_d, j) = journal();
    let s = MemStorage::default();
    let id = open_txn(
        &j,
        &s,
        State::Gating,
        &[(M, b"old", b"new"), (P, b"p0", b"p1")],
    );
    s.put(M, b"new");
    let r = recover_now(&j, &s, Policy::Resume, false);
    assert_eq!(r.transactions[0].ended, Some(State::Committed));
    assert_eq!(s.get(M).unwrap(), b"new");
    assert_eq!(s.get(P).unwrap(), b"p1");
    assert_eq!(j.get(id).unwrap().state, State::Committed);
}

#[test]
fn row3_audited_all_after_is_committed() {
    let (_d, j) = journal();
    let s = MemStorage::default();
    let id = open_txn(&j, &s, State::Audited, &[(M, b"old", b"new")]);
    s.put(M, b"new");
    let r = recover_now(&j, &s, Policy::Revert, false);
    assert_eq!(r.transactions[0].ended, Some(State::Committed));
    assert_eq!(j.get(id).unwrap().state, State::Committed);
    assert_eq!(s.get(M).unwrap(), b"new");
    assert_eq!(s.synced(), vec![PathBuf::from(M)]);
}

#[test]
fn row4_rolling_back_is_finished_from_either_side() {
    for side in [b"old".as_slice(), b"new"] {
        let (_d, j) = journal();
        let s = MemStorage::default();
        let id = open_txn(&j, &s, State::RollingBack, &[(M, b"old", b"new")]);
        s.put(M, side);
        let r = recover_now(&j, &s, Policy::Revert, false);
        assert_eq!(r.transactions[0].ended, Some(State::RolledBack));
        assert_eq!(s.get(M).unwrap(), b"old");
        assert_eq!(
            j.get(id).unwrap().rollback_cause,
            Some(RollbackCause::GateFailed)
        );
    }
}

#[test]
fn row5_a_file_matching_neither_hash_is_a_conflict_and_untouched() {
    for st in [
        State::Prepared,
        State::Gating,
        State::Audited,
        State::RollingBack,
    ] {
        let (_d, j) = journal();
        let s = MemStorage::default();
        let id = open_txn(&j, &s, st, &[(M, b"old", b"new"), (P, b"p0", b"p1")]);
        s.put(M, b"edited by hand");
        s.put(P, b"p1");
        let r = recover_now(&j, &s, Policy::Revert, false);
        assert!(r.has_conflicts());
        assert_eq!(s.get(M).unwrap(), b"edited by hand");
        assert_eq!(
            s.get(P).unwrap(),
            b"p1",
            "nothing of a conflicting transaction is changed"
        );
        assert_eq!(j.get(id).unwrap().state, st, "left open");
        assert!(j
            .events(id)
            .unwrap()
            .iter()
            .any(|e| matches!(e.kind, EventKind::Conflict { .. })));
        // --force restores the before side.
        let r = recover_now(&j, &s, Policy::Revert, true);
        assert!(!r.transactions.is_empty());
        assert_eq!(s.get(M).unwrap(), b"old");
        assert_eq!(s.get(P).unwrap(), b"p0");
        assert!(j.open_ids().unwrap().is_empty());
    }
}

#[test]
fn recovery_removes_temp_files() {
    let (_d, j) = journal();
    let s = MemStorage::default();
    let id = open_txn(&j, &s, State::Prepared, &[(M, b"old", b"new")]);
    let ours = TempName { txid: id, tag: 7 };
    let t = ours.path(Path::new(M), 3).unwrap();
    s.put_temp(&t, b"partial");
    // A stale temp of another journal's transaction with the same id: not ours.
    let stale = TempName { txid: id, tag: 8 }.path(Path::new(M), 0).unwrap();
    s.put_temp(&stale, b"someone else's");
    let r = recover_now(&j, &s, Policy::Revert, false);
    assert_eq!(
        r.transactions[0].temps_removed,
        vec![t.display().to_string()]
    );
    assert_eq!(s.temps(), vec![stale]);
}

#[test]
fn illegal_transitions_are_refused_by_the_journal() {
    let (_d, j) = journal();
    let s = MemStorage::default();
    let id = open_txn(&j, &s, State::Prepared, &[(M, b"old", b"new")]);
    assert!(matches!(
        j.transition(id, Transition::to(State::RolledBack), 3),
        Err(JournalError::BadTransition { .. })
    ));
    j.transition(id, Transition::to(State::Committed), 3)
        .unwrap();
    for st in State::ALL {
        assert!(
            j.transition(id, Transition::to(st), 4).is_err(),
            "committed -> {st}"
        );
    }
}

/// Records when the gate was told the write happened, to check it is not after the rename.
struct WriteTimeGate(RefCell<Vec<Option<SystemTime>>>);

impl Gate for WriteTimeGate {
    fn wait(&self, req: &GateRequest<'_>, _observe: &mut dyn FnMut(&Observation)) -> GateVerdict {
        self.0.borrow_mut().push(req.written_at);
        failed("scripted")
    }
}

/// Storage that notes the time of each replace.
#[derive(Default)]
struct TimedStorage {
    inner: MemStorage,
    times: RefCell<Vec<SystemTime>>,
}

impl Storage for TimedStorage {
    fn read(&self, path: &Path) -> Result<Option<FileState>, DurableError> {
        self.inner.read(path)
    }
    fn replace(
        &self,
        path: &Path,
        contents: &[u8],
        meta: &FileMeta,
        temp: &TempName,
        expect: crate::durable::Expect,
    ) -> Result<(), DurableError> {
        std::thread::sleep(Duration::from_millis(5));
        self.times.borrow_mut().push(SystemClock.now());
        self.inner.replace(path, contents, meta, temp, expect)
    }
    fn remove(&self, path: &Path, expect: crate::durable::Expect) -> Result<(), DurableError> {
        self.inner.remove(path, expect)
    }
    fn remove_temps(&self, path: &Path, temp: &TempName) -> Result<Vec<PathBuf>, DurableError> {
        self.inner.remove_temps(path, temp)
    }
    fn sync(&self, path: &Path) -> Result<(), DurableError> {
        self.inner.sync(path)
    }
    fn list(&self, dir: &Path) -> Result<Option<Vec<String>>, DurableError> {
        self.inner.list(dir)
    }
    fn inode(&self, path: &Path) -> Result<Option<crate::durable::Inode>, DurableError> {
        self.inner.inode(path)
    }
    fn set_meta(
        &self,
        path: &Path,
        meta: &FileMeta,
        expect: &crate::durable::Inode,
    ) -> Result<(), DurableError> {
        self.inner.set_meta(path, meta, expect)
    }
}

#[test]
fn the_restart_proof_time_is_taken_before_the_rename_forward_and_back() {
    // A process kubelet starts between the rename and the return of the write call must
    // count as restarted: the gate's "written at" may not be later than the rename.
    let (_d, j) = journal();
    let s = TimedStorage::default();
    s.inner.put(M, b"old");
    let g = WriteTimeGate(RefCell::new(Vec::new()));
    let e = Engine::new(&j, &s, &g, &NoAudit, &SystemClock);
    let out = e.run(plan(vec![(M, Some(b"new"))], true, false)).unwrap();
    assert!(matches!(out, Outcome::NeedsManual { .. }), "{out:?}");
    let told = g.0.borrow();
    let times = s.times.borrow();
    assert_eq!((told.len(), times.len()), (2, 2));
    for (t, w) in told.iter().zip(times.iter()) {
        assert!(
            t.expect("a write happened") < *w,
            "gate told {t:?}, rename at {w:?}"
        );
    }
}

// ---- issue 11: nothing lost, nothing escaped ----

/// A gate during which an operator edits the manifest by hand, then the gate fails.
struct HandEditGate<'a> {
    storage: &'a MemStorage,
    calls: RefCell<Vec<Purpose>>,
}

impl Gate for HandEditGate<'_> {
    fn wait(&self, req: &GateRequest<'_>, _observe: &mut dyn FnMut(&Observation)) -> GateVerdict {
        self.calls.borrow_mut().push(req.purpose);
        if req.purpose == Purpose::Forward {
            self.storage.put(M, b"hand edit");
            return failed("unhealthy");
        }
        passed()
    }
}

#[test]
fn an_in_process_rollback_never_overwrites_a_hand_edit() {
    let (_d, j) = journal();
    let s = MemStorage::default();
    s.put(M, b"old");
    let g = HandEditGate {
        storage: &s,
        calls: RefCell::new(Vec::new()),
    };
    let out = engine(&j, &s, &g, &NoAudit)
        .run(plan(vec![(M, Some(b"new"))], true, false))
        .unwrap();
    let Outcome::NeedsManual { txid, reason } = out else {
        panic!("{out:?}")
    };
    assert!(
        reason.contains(M) && reason.contains("matched neither"),
        "{reason}"
    );
    assert!(reason.contains("--force"), "{reason}");
    assert_eq!(s.get(M).unwrap(), b"hand edit", "the hand edit is kept");
    assert_eq!(
        *g.calls.borrow(),
        vec![Purpose::Forward],
        "nothing to gate back"
    );
    // Its contents are in the journal, named by the conflict event.
    let h = crate::durable::hash(b"hand edit");
    assert!(j.events(txid).unwrap().iter().any(|e| e.kind
        == EventKind::Conflict {
            path: M.into(),
            found: Some(h)
        }));
    assert_eq!(j.blob(&h).unwrap(), b"hand edit");
    assert_eq!(j.unresolved().unwrap(), vec![txid]);
    assert_eq!(j.get(txid).unwrap().state, State::NeedsManual);
}

#[test]
fn force_lets_a_rollback_overwrite_a_hand_edit_but_keeps_it_in_the_journal() {
    let (_d, j) = journal();
    let s = MemStorage::default();
    s.put(M, b"old");
    let g = HandEditGate {
        storage: &s,
        calls: RefCell::new(Vec::new()),
    };
    let mut p = plan(vec![(M, Some(b"new"))], true, false);
    p.options.force = true;
    let out = engine(&j, &s, &g, &NoAudit).run(p).unwrap();
    assert!(matches!(out, Outcome::RolledBack { .. }), "{out:?}");
    assert_eq!(s.get(M).unwrap(), b"old");
    assert_eq!(
        j.blob(&crate::durable::hash(b"hand edit")).unwrap(),
        b"hand edit"
    );
}

/// Storage on which another writer changes `M` at a chosen moment.
struct RacingStorage {
    inner: MemStorage,
    /// Change `M` right before this read (1-based) ...
    at_read: Option<usize>,
    /// ... or inside the first replace, after kharden's checks.
    in_replace: bool,
    reads: std::cell::Cell<usize>,
}

impl Storage for RacingStorage {
    fn read(&self, path: &Path) -> Result<Option<FileState>, DurableError> {
        let n = self.reads.get() + 1;
        self.reads.set(n);
        if Some(n) == self.at_read {
            self.inner.put(M, b"another writer");
        }
        self.inner.read(path)
    }
    fn replace(
        &self,
        path: &Path,
        contents: &[u8],
        meta: &FileMeta,
        temp: &TempName,
        expect: crate::durable::Expect,
    ) -> Result<(), DurableError> {
        if self.in_replace {
            self.inner.put(M, b"another writer");
        }
        self.inner.replace(path, contents, meta, temp, expect)
    }
    fn remove(&self, path: &Path, expect: crate::durable::Expect) -> Result<(), DurableError> {
        self.inner.remove(path, expect)
    }
    fn remove_temps(&self, path: &Path, temp: &TempName) -> Result<Vec<PathBuf>, DurableError> {
        self.inner.remove_temps(path, temp)
    }
    fn sync(&self, path: &Path) -> Result<(), DurableError> {
        self.inner.sync(path)
    }
    fn list(&self, dir: &Path) -> Result<Option<Vec<String>>, DurableError> {
        self.inner.list(dir)
    }
    fn inode(&self, path: &Path) -> Result<Option<crate::durable::Inode>, DurableError> {
        self.inner.inode(path)
    }
    fn set_meta(
        &self,
        path: &Path,
        meta: &FileMeta,
        expect: &crate::durable::Inode,
    ) -> Result<(), DurableError> {
        self.inner.set_meta(path, meta, expect)
    }
}

fn racing(at_read: Option<usize>, in_replace: bool) -> RacingStorage {
    let s = RacingStorage {
        inner: MemStorage::default(),
        at_read,
        in_replace,
        reads: std::cell::Cell::new(0),
    };
    s.inner.put(M, b"old");
    s
}

#[test]
fn another_writers_change_after_the_plan_is_refused_not_lost() {
    // Read 1 plans the transaction; before read 2 (the check before writing) another writer
    // replaces the file.
    for (at_read, in_replace) in [(Some(2), false), (None, true)] {
        let (_d, j) = journal();
        let s = racing(at_read, in_replace);
        let e = Engine::new(&j, &s, &NoGate, &NoAudit, &SystemClock);
        let out = e.run(plan(vec![(M, Some(b"new"))], false, false)).unwrap();
        let Outcome::Aborted { txid, reason } = out else {
            panic!("{out:?}")
        };
        assert!(reason.contains("another writer"), "{reason}");
        assert_eq!(s.inner.get(M).unwrap(), b"another writer", "not lost");
        assert!(s.inner.written().is_empty(), "nothing written");
        assert_eq!(j.get(txid).unwrap().state, State::Aborted);
        assert_eq!(
            j.blob(&crate::durable::hash(b"another writer")).unwrap(),
            b"another writer"
        );
        assert_eq!(
            Outcome::Aborted { txid, reason }.exit_code(),
            crate::exit::ERROR
        );
    }
}

#[test]
fn a_hard_linked_file_is_refused_unless_split_is_asked_for() {
    let (_d, j) = journal();
    let s = MemStorage::default();
    s.put(M, b"old");
    s.link(M);
    let e = engine(&j, &s, &NoGate, &NoAudit);
    let err = e
        .run(plan(vec![(M, Some(b"new"))], false, false))
        .unwrap_err();
    let TxnError::Recorded { inner, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        matches!(**inner, TxnError::HardLinked { nlink: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("--split-hardlinks"));
    assert_eq!(s.get(M).unwrap(), b"old");
    let mut p = plan(vec![(M, Some(b"new"))], false, false);
    p.options.split_hardlinks = true;
    assert!(matches!(e.run(p).unwrap(), Outcome::Committed { .. }));
}

#[test]
fn a_result_over_the_size_limit_is_refused() {
    let (_d, j) = journal();
    let s = MemStorage::default();
    s.put(M, b"old");
    let big = vec![b'x'; crate::durable::MAX_FILE_BYTES as usize + 1];
    let err = engine(&j, &s, &NoGate, &NoAudit)
        .run(plan(vec![(M, Some(&big))], false, false))
        .unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
    assert_eq!(s.get(M).unwrap(), b"old");
}

#[test]
fn a_signal_during_the_gate_rolls_back_and_a_second_leaves_it_for_recover() {
    use crate::signals::ScriptedInterrupts;
    // One signal (arriving at the engine's first look after the write): rolled back, proven.
    let (_d, j) = journal();
    let s = MemStorage::default();
    s.put(M, b"old");
    let g = ScriptedGate::new(vec![passed(), passed()]);
    let sig = ScriptedInterrupts::new(vec![2], 15);
    let e = engine(&j, &s, &g, &NoAudit).with_interrupts(&sig);
    let out = e.run(plan(vec![(M, Some(b"new"))], true, false)).unwrap();
    let Outcome::RolledBack {
        cause, verified, ..
    } = &out
    else {
        panic!("{out:?}")
    };
    assert_eq!(*cause, RollbackCause::Interrupted);
    assert_eq!(*verified, Verified::Healthy);
    assert_eq!(out.exit_code(), crate::exit::INTERRUPTED);
    assert_eq!(s.get(M).unwrap(), b"old");
    // Two signals: the rollback's gate stops too; the transaction stays open, restored.
    let (_d2, j2) = journal();
    let s2 = MemStorage::default();
    s2.put(M, b"old");
    let g2 = ScriptedGate::new(vec![passed(), passed()]);
    let sig2 = ScriptedInterrupts::new(vec![2, 3], 15);
    let e2 = engine(&j2, &s2, &g2, &NoAudit).with_interrupts(&sig2);
    let out = e2.run(plan(vec![(M, Some(b"new"))], true, false)).unwrap();
    let Outcome::LeftOpen { txid, reason } = &out else {
        panic!("{out:?}")
    };
    assert!(reason.contains("kharden recover"), "{reason}");
    assert_eq!(j2.open_ids().unwrap(), vec![*txid]);
    assert_eq!(j2.get(*txid).unwrap().state, State::RollingBack);
    assert_eq!(s2.get(M).unwrap(), b"old");
    // recover finishes it.
    let r = recover(&engine(&j2, &s2, &NoGate, &NoAudit), Policy::Revert, false).unwrap();
    assert_eq!(r.transactions[0].ended, Some(State::RolledBack));
}

// ---- issue 13: metadata transactions ----

const KEY: &str = "/pki/apiserver.key";
const PKI: &str = "/pki";

fn meta(mode: u32, uid: u32, gid: u32) -> FileMeta {
    FileMeta { mode, uid, gid }
}

/// A node whose key is world-readable and owned by a user, in a 0775 pki directory.
fn loose_node() -> MemStorage {
    let s = MemStorage::default();
    s.put_meta(KEY, b"-----BEGIN KEY-----", meta(0o644, 1000, 1000));
    s.put_dir(PKI, meta(0o775, 0, 0));
    s
}

fn meta_plan(ops: Vec<(&str, FileMeta)>, gate: bool) -> Plan {
    Plan {
        ops: ops
            .into_iter()
            .map(|(p, m)| FileOp::metadata(p, m))
            .collect(),
        gate: GateSpec {
            enabled: gate,
            timeout_secs: 60,
            stable_for_secs: 1,
            target: crate::journal::GateTarget::Nothing,
            keep: vec![crate::journal::Kept {
                component: "kube-apiserver".into(),
                pid: 42,
                start_ticks: 7,
                manifest: Some(M.into()),
            }],
            ..Default::default()
        },
        ..plan(vec![], false, false)
    }
}

#[test]
fn a_metadata_change_commits_after_its_gate_and_keeps_no_contents() {
    let (_d, j) = journal();
    let s = loose_node();
    let g = ScriptedGate::new(vec![passed()]);
    let out = engine(&j, &s, &g, &NoAudit)
        .run(meta_plan(
            vec![(KEY, meta(0o600, 0, 0)), (PKI, meta(0o755, 0, 0))],
            true,
        ))
        .unwrap();
    let Outcome::Committed { txid } = out else {
        panic!("{out:?}")
    };
    assert_eq!(s.meta(KEY), Some(meta(0o600, 0, 0)));
    assert_eq!(s.meta(PKI), Some(meta(0o755, 0, 0)));
    assert_eq!(
        s.get(KEY).unwrap(),
        b"-----BEGIN KEY-----",
        "contents untouched"
    );
    assert_eq!(
        *g.1.borrow(),
        vec![Purpose::Forward],
        "the keep-alive gate ran"
    );
    let rec = j.get(txid).unwrap();
    assert_eq!(rec.files[0].scope, Scope::Metadata { directory: false });
    assert_eq!(rec.files[1].scope, Scope::Metadata { directory: true });
    assert!(j.blob(&hash(b"-----BEGIN KEY-----")).is_err(), "no blob");
    // Already there: nothing to do, nothing journaled.
    let n = j.len().unwrap();
    let again = engine(&j, &s, &NoGate, &NoAudit)
        .run(meta_plan(vec![(KEY, meta(0o600, 0, 0))], false))
        .unwrap();
    assert_eq!(again, Outcome::Unchanged);
    assert_eq!(j.len().unwrap(), n);
}

#[test]
fn a_metadata_change_the_gate_refuses_is_rolled_back_on_every_file() {
    let (_d, j) = journal();
    let s = loose_node();
    let g = ScriptedGate::new(vec![
        failed("kube-apiserver restarted: lost access to the key"),
        passed(),
    ]);
    let out = engine(&j, &s, &g, &NoAudit)
        .run(meta_plan(
            vec![(KEY, meta(0o600, 0, 0)), (PKI, meta(0o755, 0, 0))],
            true,
        ))
        .unwrap();
    let Outcome::RolledBack {
        cause, verified, ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(cause, RollbackCause::GateFailed);
    assert_eq!(verified, Verified::Healthy);
    assert_eq!(s.meta(KEY), Some(meta(0o644, 1000, 1000)));
    assert_eq!(s.meta(PKI), Some(meta(0o775, 0, 0)));
}

#[test]
fn a_metadata_change_refuses_what_it_cannot_change_and_journals_why() {
    let (_d, j) = journal();
    let s = loose_node();
    s.put_other("/pki/link.key", true);
    s.put_other("/pki/fifo", false);
    for (path, what) in [
        ("/pki/link.key", "symbolic link"),
        ("/pki/fifo", "FIFO"),
        ("/pki/absent.key", "does not exist"),
    ] {
        let err = engine(&j, &s, &NoGate, &NoAudit)
            .run(meta_plan(
                vec![(KEY, meta(0o600, 0, 0)), (path, meta(0o600, 0, 0))],
                false,
            ))
            .unwrap_err();
        let TxnError::Recorded { txid, inner } = &err else {
            panic!("{err}")
        };
        assert!(inner.to_string().contains(what), "{err}");
        let rec = j.get(*txid).unwrap();
        assert_eq!(rec.state, State::Aborted);
        assert!(rec.reason.unwrap().contains(what));
        assert_eq!(
            s.meta(KEY),
            Some(meta(0o644, 1000, 1000)),
            "nothing changed"
        );
    }
    // The file changed since the caller planned from it.
    let err = engine(&j, &s, &NoGate, &NoAudit)
        .run(Plan {
            ops: vec![FileOp {
                expect_meta: Some(meta(0o640, 1000, 1000)),
                ..FileOp::metadata(KEY, meta(0o600, 0, 0))
            }],
            ..meta_plan(vec![], false)
        })
        .unwrap_err();
    assert!(matches!(err, TxnError::Changed { .. }), "{err}");
    assert_eq!(s.meta(KEY), Some(meta(0o644, 1000, 1000)));
}

/// A gate during which the key's contents are replaced (a certificate renewal), then fails.
struct RenewGate<'a>(&'a MemStorage);

impl Gate for RenewGate<'_> {
    fn wait(&self, req: &GateRequest<'_>, _observe: &mut dyn FnMut(&Observation)) -> GateVerdict {
        if req.purpose == Purpose::Forward {
            self.0.put_meta(KEY, b"a renewed key", meta(0o600, 0, 0));
            return failed("unhealthy");
        }
        passed()
    }
}

#[test]
fn a_file_whose_contents_changed_is_a_conflict_of_a_metadata_rollback() {
    let (_d, j) = journal();
    let s = loose_node();
    let g = RenewGate(&s);
    let out = engine(&j, &s, &g, &NoAudit)
        .run(meta_plan(
            vec![(KEY, meta(0o600, 0, 0)), (PKI, meta(0o755, 0, 0))],
            true,
        ))
        .unwrap();
    let Outcome::NeedsManual { txid, reason } = out else {
        panic!("{out:?}")
    };
    assert!(reason.contains(KEY), "{reason}");
    // Nothing overwritten: the renewed key keeps its contents and metadata; the directory,
    // restored before the key was looked at, or left: never half.
    assert_eq!(s.get(KEY).unwrap(), b"a renewed key");
    assert_eq!(s.meta(KEY), Some(meta(0o600, 0, 0)));
    let events = j.events(txid).unwrap();
    assert!(
        events.iter().any(|e| matches!(&e.kind,
        EventKind::Note(n) if n.contains("contents changed"))),
        "{events:?}"
    );
}

#[test]
fn recovery_puts_every_file_of_a_metadata_change_on_one_side() {
    let (_d, j) = journal();
    let s = loose_node();
    // A crash after the first file was changed, before the second: split.
    let e = engine(&j, &s, &NoGate, &NoAudit);
    let rec = e
        .prepare(meta_plan(
            vec![(KEY, meta(0o600, 0, 0)), (PKI, meta(0o755, 0, 0))],
            false,
        ))
        .unwrap()
        .unwrap();
    let found = s.inode(Path::new(KEY)).unwrap().unwrap();
    s.set_meta(Path::new(KEY), &meta(0o600, 0, 0), &found)
        .unwrap();
    j.transition(rec.id, Transition::to(State::Applied).later(), 2)
        .unwrap();
    let r = recover_now(&j, &s, Policy::Revert, false);
    assert_eq!(r.transactions[0].placement, Placement::Split);
    assert_eq!(r.transactions[0].action, RecoveryAction::RestoredBefore);
    assert_eq!(s.meta(KEY), Some(meta(0o644, 1000, 1000)));
    assert_eq!(s.meta(PKI), Some(meta(0o775, 0, 0)));
    // A metadata that matches neither side is a conflict: left alone.
    let (_d2, j2) = journal();
    let s2 = loose_node();
    let e2 = engine(&j2, &s2, &NoGate, &NoAudit);
    let rec2 = e2
        .prepare(meta_plan(vec![(KEY, meta(0o600, 0, 0))], false))
        .unwrap()
        .unwrap();
    s2.chmod(KEY, meta(0o400, 0, 0));
    let r2 = recover_now(&j2, &s2, Policy::Revert, false);
    assert_eq!(r2.transactions[0].action, RecoveryAction::LeftConflict);
    assert_eq!(s2.meta(KEY), Some(meta(0o400, 0, 0)));
    let ev = j2.events(rec2.id).unwrap();
    assert!(ev
        .iter()
        .any(|e| matches!(&e.kind, EventKind::Note(n) if n.contains("0400 0:0"))));
}

#[test]
fn the_rollback_command_restores_metadata_and_refuses_a_changed_file() {
    let (_d, j) = journal();
    let s = loose_node();
    let e = engine(&j, &s, &NoGate, &NoAudit);
    let Outcome::Committed { txid } = e
        .run(meta_plan(vec![(KEY, meta(0o600, 0, 0))], false))
        .unwrap()
    else {
        panic!()
    };
    let p = e
        .rollback_plan(
            txid,
            GateSpec::default(),
            AuditSpec::default(),
            PlanOptions::default(),
        )
        .unwrap();
    assert_eq!(p.ops[0].target, Target::Metadata(meta(0o644, 1000, 1000)));
    assert!(matches!(e.run(p).unwrap(), Outcome::Committed { .. }));
    assert_eq!(s.meta(KEY), Some(meta(0o644, 1000, 1000)));
    // Committed again, then changed by hand: the rollback is refused.
    let Outcome::Committed { txid } = e
        .run(meta_plan(vec![(KEY, meta(0o600, 0, 0))], false))
        .unwrap()
    else {
        panic!()
    };
    s.chmod(KEY, meta(0o640, 0, 0));
    assert!(matches!(
        e.rollback_plan(
            txid,
            GateSpec::default(),
            AuditSpec::default(),
            PlanOptions::default()
        ),
        Err(TxnError::Diverged { .. })
    ));
}

// ---- issue 14: a service restarted after each write ----

/// A service manager that records its restarts and fails the ones it is told to.
#[derive(Default)]
struct ScriptedServices {
    /// One answer per restart, in order (`true`: it fails); succeeds when empty.
    fail: RefCell<Vec<bool>>,
    active: std::cell::Cell<bool>,
    restarts: std::cell::Cell<usize>,
}

impl crate::services::Services for ScriptedServices {
    fn restart(&self, r: &crate::journal::Restart) -> Result<String, String> {
        self.restarts.set(self.restarts.get() + 1);
        let fail = {
            let mut f = self.fail.borrow_mut();
            if f.is_empty() {
                false
            } else {
                f.remove(0)
            }
        };
        if fail {
            Err(format!("Job for {} failed", r.unit))
        } else {
            Ok("done".into())
        }
    }
    fn is_active(&self, _r: &crate::journal::Restart) -> Result<bool, String> {
        Ok(self.active.get())
    }
}

const CONFIG: &str = "/var/lib/kubelet/config.yaml";

fn kubelet_plan() -> Plan {
    Plan {
        ops: vec![FileOp::contents(
            CONFIG,
            Some(b"readOnlyPort: 0\n".to_vec()),
        )],
        gate: GateSpec {
            enabled: true,
            timeout_secs: 60,
            stable_for_secs: 1,
            target: crate::journal::GateTarget::Kubelet {
                healthz_before: "http://127.0.0.1:10248/healthz".into(),
                healthz_after: "http://127.0.0.1:10248/healthz".into(),
                kubeconfig: None,
                node: None,
            },
            ..Default::default()
        },
        restart: Some(crate::journal::Restart {
            unit: "kubelet.service".into(),
            systemctl: "systemctl".into(),
        }),
        ..plan(vec![], false, false)
    }
}

fn restarted_sides(j: &Journal, id: TxId) -> Vec<Side> {
    j.events(id)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Restarted { side, .. } => Some(side),
            _ => None,
        })
        .collect()
}

#[test]
fn a_kubelet_change_restarts_then_gates_and_commits() {
    let (_d, j) = journal();
    let s = MemStorage::default();
    s.put(CONFIG, b"readOnlyPort: 10255\n");
    let g = ScriptedGate::new(vec![passed()]);
    let svc = ScriptedServices::default();
    let out = engine(&j, &s, &g, &NoAudit)
        .with_services(&svc)
        .run(kubelet_plan())
        .unwrap();
    let Outcome::Committed { txid } = out else {
        panic!("{out:?}")
    };
    assert_eq!(svc.restarts.get(), 1);
    assert_eq!(restarted_sides(&j, txid), vec![Side::After]);
    assert_eq!(*g.1.borrow(), vec![Purpose::Forward]);
}

#[test]
fn a_kubelet_the_gate_refuses_is_restored_restarted_and_proven() {
    let (_d, j) = journal();
    let s = MemStorage::default();
    s.put(CONFIG, b"readOnlyPort: 10255\n");
    let g = ScriptedGate::new(vec![failed("kubelet exited with code 1, twice"), passed()]);
    let svc = ScriptedServices::default();
    let out = engine(&j, &s, &g, &NoAudit)
        .with_services(&svc)
        .run(kubelet_plan())
        .unwrap();
    let Outcome::RolledBack { txid, verified, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(verified, Verified::Healthy);
    assert_eq!(s.get(CONFIG).unwrap(), b"readOnlyPort: 10255\n");
    assert_eq!(restarted_sides(&j, txid), vec![Side::After, Side::Before]);
    assert_eq!(*g.1.borrow(), vec![Purpose::Forward, Purpose::Rollback]);
}

#[test]
fn a_failed_restart_rolls_back_and_a_failed_restore_restart_needs_manual() {
    let (_d, j) = journal();
    let s = MemStorage::default();
    s.put(CONFIG, b"readOnlyPort: 10255\n");
    let svc = ScriptedServices::default();
    svc.fail.borrow_mut().push(true);
    let g = ScriptedGate::new(vec![passed()]);
    let out = engine(&j, &s, &g, &NoAudit)
        .with_services(&svc)
        .run(kubelet_plan())
        .unwrap();
    let Outcome::RolledBack { cause, .. } = &out else {
        panic!("{out:?}")
    };
    assert_eq!(*cause, RollbackCause::RestartFailed);
    assert_eq!(out.exit_code(), crate::exit::ERROR);
    assert_eq!(s.get(CONFIG).unwrap(), b"readOnlyPort: 10255\n");
    assert_eq!(
        svc.restarts.get(),
        2,
        "restarted again on the restored file"
    );

    let svc = ScriptedServices::default();
    svc.fail.borrow_mut().extend([true, true]);
    let out = engine(&j, &s, &ScriptedGate::new(vec![]), &NoAudit)
        .with_services(&svc)
        .run(kubelet_plan())
        .unwrap();
    let Outcome::NeedsManual { reason, .. } = out else {
        panic!("{out:?}")
    };
    assert!(
        reason.contains("restarting kubelet.service failed"),
        "{reason}"
    );
    assert_eq!(s.get(CONFIG).unwrap(), b"readOnlyPort: 10255\n");
}

#[test]
fn recovery_restarts_the_service_only_when_it_runs() {
    for active in [false, true] {
        let (_d, j) = journal();
        let s = MemStorage::default();
        s.put(CONFIG, b"readOnlyPort: 10255\n");
        let svc = ScriptedServices::default();
        svc.active.set(active);
        let e = engine(&j, &s, &NoGate, &NoAudit).with_services(&svc);
        // Killed during the gate: the file is at after, the kubelet restarted on it.
        let rec = e.prepare(kubelet_plan()).unwrap().unwrap();
        s.put(CONFIG, b"readOnlyPort: 0\n");
        for st in [State::Applied, State::Gating] {
            j.transition(rec.id, Transition::to(st).later(), 2).unwrap();
        }
        let g = ScriptedGate::new(vec![passed()]);
        let e = engine(&j, &s, &g, &NoAudit).with_services(&svc);
        let r = recover(&e, Policy::Revert, false).unwrap();
        assert_eq!(r.transactions[0].action, RecoveryAction::RestoredBefore);
        assert_eq!(s.get(CONFIG).unwrap(), b"readOnlyPort: 10255\n");
        let rec = j.get(rec.id).unwrap();
        assert_eq!(rec.state, State::RolledBack);
        if active {
            assert_eq!(
                svc.restarts.get(),
                1,
                "running: restarted on the restored file"
            );
            assert_eq!(*g.1.borrow(), vec![Purpose::Rollback], "and proven");
            assert!(rec.reason.unwrap().contains("was running"));
        } else {
            assert_eq!(
                svc.restarts.get(),
                0,
                "at boot: it starts on the restored file"
            );
            assert!(g.1.borrow().is_empty());
            assert!(rec.reason.unwrap().contains("is not running"));
        }
    }
}

#[test]
fn a_metadata_change_killed_between_chown_and_chmod_is_ours_not_a_conflict() {
    let (_d, j) = journal();
    let s = loose_node();
    let e = engine(&j, &s, &NoGate, &NoAudit);
    let rec = e
        .prepare(meta_plan(vec![(KEY, meta(0o600, 0, 0))], false))
        .unwrap()
        .unwrap();
    // The owner set, the mode not yet.
    s.chmod(KEY, meta(0o644, 0, 0));
    j.transition(rec.id, Transition::to(State::Applied).later(), 2)
        .unwrap();
    let r = recover_now(&j, &s, Policy::Revert, false);
    assert_eq!(r.transactions[0].placement, Placement::Split);
    assert_eq!(r.transactions[0].action, RecoveryAction::RestoredBefore);
    assert_eq!(s.meta(KEY), Some(meta(0o644, 1000, 1000)));
    // Another owner than either side's is somebody else's: a conflict.
    let (_d2, j2) = journal();
    let s2 = loose_node();
    let e2 = engine(&j2, &s2, &NoGate, &NoAudit);
    let rec2 = e2
        .prepare(meta_plan(vec![(KEY, meta(0o600, 0, 0))], false))
        .unwrap()
        .unwrap();
    s2.chmod(KEY, meta(0o644, 5, 5));
    j2.transition(rec2.id, Transition::to(State::Applied).later(), 2)
        .unwrap();
    let r2 = recover_now(&j2, &s2, Policy::Revert, false);
    assert_eq!(r2.transactions[0].action, RecoveryAction::LeftConflict);
}
