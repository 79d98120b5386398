//! Synthetic `apply --no-gate` transactions for the journal benchmarks (`benches/journal.rs`)
//! and for building large journals (`examples/make_journal.rs`): one module, so that both
//! measure exactly the same journal calls.
//!
//! A transaction is what `Engine::run` records for `apply --no-gate` with the built-in audit:
//! the Prepared record with both blobs (durable), the file-written event, Applied, Auditing,
//! the audit event and Audited (queued), then Committed (durable). The blobs are versions of
//! the kubeadm apiserver fixture that differ by one flag (`--audit-log-maxage=30..`), made by
//! the real editor; transaction `i` goes from version `i` to `i + 1`, so the blob table
//! deduplicates to a few entries, as on a node where a few flags are changed over and over.

use kharden::durable::{hash, FileMeta};
use kharden::journal::{
    AuditSpec, Durable, EventKind, FileRecord, GateSpec, Image, Journal, Scope, Side, State,
    Transition, TxId, TxnKind, TxnRecord,
};
use kharden_manifest::Change;

pub const FIXTURE: &[u8] = include_bytes!("../../tests/fixtures/kube-apiserver.yaml");
pub const MANIFEST: &str = "/etc/kubernetes/manifests/kube-apiserver.yaml";

fn change(k: usize) -> Change {
    Change::Set {
        name: "audit-log-maxage".into(),
        value: Some((30 + k).to_string()),
    }
}

/// `n` versions of the fixture, each made by the real editor.
pub fn variants(n: usize) -> Result<Vec<Vec<u8>>, kharden_manifest::EditError> {
    (0..n)
        .map(|k| Ok(kharden_manifest::edit(FIXTURE, None, &[change(k)])?.output))
        .collect()
}

/// Record transaction number `i` (from version `i` to `i + 1` of `blobs`) at time `now_ms`.
pub fn record(
    journal: &Journal,
    blobs: &[Vec<u8>],
    i: usize,
    now_ms: u64,
) -> kharden::journal::Result<TxId> {
    let n = blobs.len();
    let k = i % n;
    let (before, after) = (&blobs[k], &blobs[(k + 1) % n]);
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
    let rec = TxnRecord {
        id: 0,
        kind: TxnKind::Apply,
        created_ms: 0,
        updated_ms: 0,
        summary: format!("{MANIFEST}: --set audit-log-maxage={}", 30 + (k + 1) % n),
        files: vec![FileRecord {
            path: MANIFEST.into(),
            before: Some(image(before)),
            after: Some(image(after)),
            changes: vec![change((k + 1) % n)],
            settings: vec![],
            gated: true,
            scope: Scope::Contents,
            controls: Vec::new(),
        }],
        gate: GateSpec {
            enabled: false,
            timeout_secs: 60,
            stable_for_secs: 5,
            ..GateSpec::default()
        },
        audit: AuditSpec {
            builtin: true,
            script: None,
            script_timeout_secs: 30,
        },
        deadline_ms: now_ms + 60_000,
        state: State::Prepared,
        rollback_cause: None,
        reason: None,
        restart: None,
        temp_tag: kharden::durable::new_temp_tag(),
    };
    let id = journal.prepare(rec, &[before, after], now_ms)?;
    journal.add_events(
        id,
        vec![EventKind::FileWritten {
            path: MANIFEST.into(),
            side: Side::After,
        }],
        Durable::Later,
        now_ms,
    )?;
    for s in [State::Applied, State::Auditing] {
        journal.transition(id, Transition::to(s).later(), now_ms)?;
    }
    journal.add_events(
        id,
        vec![EventKind::Audit {
            passed: true,
            detail: "audit-log-maxage is in effect in the manifest's argv".into(),
            output: None,
        }],
        Durable::Later,
        now_ms,
    )?;
    journal.transition(id, Transition::to(State::Audited).later(), now_ms)?;
    journal.transition(id, Transition::to(State::Committed), now_ms)?;
    Ok(id)
}
