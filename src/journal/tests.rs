use super::store::{BLOBS, OPEN};
use super::*;
use crate::durable::FileMeta;
use redb::ReadableTableMetadata;

fn rec(files: Vec<FileRecord>) -> TxnRecord {
    TxnRecord {
        id: 0,
        kind: TxnKind::Apply,
        created_ms: 0,
        updated_ms: 0,
        summary: "t".into(),
        files,
        gate: GateSpec::default(),
        audit: AuditSpec::default(),
        deadline_ms: 0,
        state: State::Prepared,
        rollback_cause: None,
        reason: None,
        restart: None,
        temp_tag: crate::durable::new_temp_tag(),
    }
}

fn file(p: &str, b: &[u8], a: &[u8]) -> FileRecord {
    let meta = FileMeta::NEW_FILE;
    FileRecord {
        path: p.into(),
        before: Some(Image {
            hash: crate::durable::hash(b),
            len: b.len() as u64,
            meta,
        }),
        after: Some(Image {
            hash: crate::durable::hash(a),
            len: a.len() as u64,
            meta,
        }),
        changes: vec![],
        settings: vec![],
        gated: true,
        scope: Scope::Contents,
        controls: Vec::new(),
    }
}

#[test]
fn state_dir_and_db_permissions() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let d = tempfile::tempdir().unwrap();
    let sd = d.path().join("a/b/state");
    let _j = Journal::open(&sd).unwrap();
    assert_eq!(std::fs::metadata(&sd).unwrap().mode() & 0o777, 0o700);
    assert_eq!(
        std::fs::metadata(sd.join(DB_FILE)).unwrap().mode() & 0o777,
        0o600
    );
    drop(_j);
    std::fs::set_permissions(&sd, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert!(matches!(
        Journal::open(&sd),
        Err(JournalError::StateDir(StateDirError::Writable { .. }))
    ));
    std::fs::set_permissions(&sd, std::fs::Permissions::from_mode(0o700)).unwrap();
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&sd, Some(1000), None).unwrap();
        assert!(matches!(
            Journal::open(&sd),
            Err(JournalError::StateDir(StateDirError::NotRoot { .. }))
        ));
    }
}

#[test]
fn blobs_are_deduplicated_and_verified() {
    let d = tempfile::tempdir().unwrap();
    let j = Journal::open(d.path()).unwrap();
    let a = j
        .prepare(rec(vec![file("/x", b"one", b"two")]), &[b"one", b"two"], 1)
        .unwrap();
    let b = j
        .prepare(rec(vec![file("/x", b"two", b"one")]), &[b"two", b"one"], 2)
        .unwrap();
    assert_eq!((a, b), (1, 2));
    let rt = j.begin_read_txn().unwrap();
    assert_eq!(rt.open_table(BLOBS).unwrap().len().unwrap(), 2);
    drop(rt);
    assert_eq!(j.blob(&crate::durable::hash(b"one")).unwrap(), b"one");
    assert!(matches!(
        j.blob(&crate::durable::hash(b"three")),
        Err(JournalError::MissingBlob { .. })
    ));
    // Corrupt a blob behind the journal's back: reads refuse it, verify reports it.
    j.write(|tx| {
        tx.open_table(BLOBS)?
            .insert(&crate::durable::hash(b"one"), b"evil".as_slice())?;
        Ok(())
    })
    .unwrap();
    assert!(matches!(
        j.blob(&crate::durable::hash(b"one")),
        Err(JournalError::CorruptBlob { .. })
    ));
    let mut j = j;
    let faults = j.verify().unwrap();
    assert!(
        faults.iter().any(|f| f.what.contains("hashes to")),
        "{faults:?}"
    );
}

#[test]
fn open_index_log_order_and_prune() {
    let d = tempfile::tempdir().unwrap();
    let mut j = Journal::open(d.path()).unwrap();
    for i in 0..5u8 {
        let id = j
            .prepare(
                rec(vec![file("/x", &[i], &[i + 100])]),
                &[&[i], &[i + 100]],
                i as u64,
            )
            .unwrap();
        if i != 2 {
            j.transition(id, Transition::to(State::Applied).later(), 10)
                .unwrap();
            j.transition(id, Transition::to(State::Committed), 11)
                .unwrap();
        }
    }
    assert_eq!(j.open_ids().unwrap(), vec![3]);
    let log: Vec<_> = j.list(10, None).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(log, vec![5, 4, 3, 2, 1]);
    assert_eq!(j.list(2, None).unwrap().len(), 2);
    let open: Vec<_> = j
        .list(10, Some(State::Prepared))
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(open, vec![3]);
    assert!(j.verify().unwrap().is_empty());
    let (t, b) = j.prune(1).unwrap();
    assert_eq!(t, 3, "keeps the newest finished one and the open one");
    assert_eq!(b, 6);
    let left: Vec<_> = j.list(10, None).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(left, vec![5, 3]);
    assert!(j.events(1).unwrap().is_empty());
    assert!(j.verify().unwrap().is_empty(), "{:?}", j.verify().unwrap());
    // Ids are never reused after a prune.
    let id = j
        .prepare(rec(vec![file("/y", b"a", b"b")]), &[b"a", b"b"], 20)
        .unwrap();
    assert_eq!(id, 6);
}

#[test]
fn prune_keeps_what_a_conflict_found_as_long_as_its_transaction() {
    let d = tempfile::tempdir().unwrap();
    let j = Journal::open(d.path()).unwrap();
    let id = j
        .prepare(rec(vec![file("/x", b"one", b"two")]), &[b"one", b"two"], 1)
        .unwrap();
    let found = j.keep_blob(b"hand edit").unwrap();
    j.add_events(
        id,
        vec![EventKind::Conflict {
            path: "/x".into(),
            found: Some(found),
        }],
        Durable::Yes,
        2,
    )
    .unwrap();
    j.transition(id, Transition::to(State::RollingBack), 3)
        .unwrap();
    j.transition(id, Transition::to(State::NeedsManual), 4)
        .unwrap();
    j.resolve(id, None, 5).unwrap();
    // Resolved, but still among the newest kept: its hand edit stays readable.
    j.prune(5).unwrap();
    assert_eq!(j.blob(&found).unwrap(), b"hand edit");
    // Pruned with its transaction.
    j.prune(0).unwrap();
    assert!(j.blob(&found).is_err());
}

#[test]
fn a_metadata_change_keeps_no_blob_and_verifies() {
    let d = tempfile::tempdir().unwrap();
    let mut j = Journal::open(d.path()).unwrap();
    let mut f = file("/etc/kubernetes/pki/ca.key", b"key", b"key");
    f.scope = Scope::Metadata { directory: false };
    if let Some(a) = f.after.as_mut() {
        a.meta.mode = 0o600;
    }
    let id = j.prepare(rec(vec![f]), &[], 1).unwrap();
    assert!(j.blob(&crate::durable::hash(b"key")).is_err());
    assert!(j.verify().unwrap().is_empty(), "{:?}", j.verify().unwrap());
    j.transition(id, Transition::to(State::Committed), 2)
        .unwrap();
    j.prune(0).unwrap();
    assert!(j.verify().unwrap().is_empty());
}

#[test]
fn verify_reports_an_inconsistent_open_index() {
    let d = tempfile::tempdir().unwrap();
    let mut j = Journal::open(d.path()).unwrap();
    let id = j
        .prepare(rec(vec![file("/x", b"a", b"b")]), &[b"a", b"b"], 1)
        .unwrap();
    j.write(|tx| {
        tx.open_table(OPEN)?.remove(id)?;
        Ok(())
    })
    .unwrap();
    let faults = j.verify().unwrap();
    assert!(
        faults
            .iter()
            .any(|f| f.what.contains("missing from the open index")),
        "{faults:?}"
    );
}

#[test]
fn read_only_handle_sees_commits_of_the_writer() {
    let d = tempfile::tempdir().unwrap();
    let j = Journal::open(d.path()).unwrap();
    j.prepare(rec(vec![file("/x", b"a", b"b")]), &[b"a", b"b"], 1)
        .unwrap();
    let ro = JournalReader::open(d.path()).unwrap().unwrap();
    assert_eq!(ro.len().unwrap(), 1);
}
