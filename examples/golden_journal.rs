//! Write the golden journal and the golden record bytes of the journal format this build
//! writes, for `tests/journal_format.rs` (see "Journal format history" in
//! docs/crash-safety.md).
//!
//! ```text
//! cargo run --example golden_journal -- OUT_DIR
//! ```
//!
//! It writes `OUT_DIR/journal.redb` (a journal holding every record kind, every event kind,
//! a needs-manual transaction resolved and one unresolved, an open transaction and a pruned
//! history) and `OUT_DIR/records.txt` (one line per record: a name, then the record's bytes
//! in hex). Every time is fixed, so the records are the same at every run; the redb file's
//! layout may differ between runs, its contents do not.
//!
//! The files of a format version are written once, by the build that introduced it, and
//! committed under `tests/golden/`; every later build must read them.

use kharden::durable::FileMeta;
use kharden::journal::{
    encode, AuditSpec, Durable, Event, EventKind, FileRecord, GateSpec, Image, Journal, ProbeClass,
    RollbackCause, Side, State, TxnKind, TxnRecord,
};
use kharden_manifest::{Change, Mount};
use std::fmt::Write as _;
use std::path::PathBuf;

const T0: u64 = 1_790_000_000_000;

fn image(contents: &[u8], mode: u32) -> Image {
    Image {
        hash: kharden::durable::hash(contents),
        len: contents.len() as u64,
        meta: FileMeta {
            mode,
            uid: 0,
            gid: 0,
        },
    }
}

fn every_change() -> Vec<Change> {
    vec![
        Change::Set {
            name: "profiling".into(),
            value: Some("false".into()),
        },
        Change::Set {
            name: "anonymous-auth".into(),
            value: None,
        },
        Change::Unset {
            name: "insecure-port".into(),
        },
        Change::AddItem {
            name: "enable-admission-plugins".into(),
            item: "EventRateLimit".into(),
        },
        Change::RemoveItem {
            name: "disable-admission-plugins".into(),
            item: "ServiceAccount".into(),
            if_empty: Some("".into()),
        },
        Change::RemoveItem {
            name: "authorization-mode".into(),
            item: "AlwaysAllow".into(),
            if_empty: None,
        },
        Change::AtLeast {
            name: "audit-log-maxage".into(),
            min: 30,
        },
        Change::SetKey {
            name: "feature-gates".into(),
            key: "RotateKubeletServerCertificate".into(),
            value: "true".into(),
        },
        Change::Mount(Mount {
            name: "audit".into(),
            host_path: "/etc/kubernetes/audit-policy.yaml".into(),
            mount_path: "/etc/kubernetes/audit-policy.yaml".into(),
            read_only: true,
            path_type: Some("File".into()),
        }),
        Change::Mount(Mount {
            name: "audit-log".into(),
            host_path: "/var/log/kubernetes/audit".into(),
            mount_path: "/var/log/kubernetes/audit".into(),
            read_only: false,
            path_type: None,
        }),
    ]
}

fn gate_spec() -> GateSpec {
    GateSpec {
        enabled: true,
        timeout_secs: 60,
        stable_for_secs: 5,
        health_url: Some("https://127.0.0.1:6443/livez".into()),
        cacert: Some("/etc/kubernetes/pki/ca.crt".into()),
        cert: Some("/etc/kubernetes/pki/apiserver-kubelet-client.crt".into()),
        key: Some("/etc/kubernetes/pki/apiserver-kubelet-client.key".into()),
        container: Some("kube-apiserver".into()),
        root: Some("/host".into()),
    }
}

fn audit_spec() -> AuditSpec {
    AuditSpec {
        builtin: true,
        script: Some("/usr/local/bin/check.sh".into()),
        script_timeout_secs: 30,
    }
}

fn every_event_kind() -> Vec<EventKind> {
    let mut v = vec![
        EventKind::State {
            state: State::Gating,
            note: None,
        },
        EventKind::State {
            state: State::RollingBack,
            note: Some("health gate failed".into()),
        },
        EventKind::FileWritten {
            path: "/etc/kubernetes/manifests/kube-apiserver.yaml".into(),
            side: Side::After,
        },
        EventKind::FileRemoved {
            path: "/etc/kubernetes/audit-policy.yaml".into(),
            side: Side::Before,
        },
    ];
    for (i, class) in [
        ProbeClass::NoProcess,
        ProbeClass::Down,
        ProbeClass::Unauthorized,
        ProbeClass::ServerError,
        ProbeClass::Timeout,
        ProbeClass::TlsError,
        ProbeClass::OtherStatus,
        ProbeClass::Healthy,
    ]
    .into_iter()
    .enumerate()
    {
        v.push(EventKind::Probe {
            class,
            pid: (i % 2 == 0).then_some(4000 + i as i32),
            restarted: i % 2 == 0,
            detail: format!("probe {i}"),
        });
    }
    v.extend([
        EventKind::Audit {
            passed: true,
            detail: "built-in audit: 1 change(s) in effect".into(),
            output: None,
        },
        EventKind::Audit {
            passed: false,
            detail: "audit script failed".into(),
            output: Some("--- stdout\nbad\n".into()),
        },
        EventKind::Recovery {
            action: "written but never gated: restoring before".into(),
        },
        EventKind::Conflict {
            path: "/etc/kubernetes/manifests/kube-scheduler.yaml".into(),
            found: Some(kharden::durable::hash(b"hand edit")),
        },
        EventKind::Conflict {
            path: "/etc/kubernetes/manifests/etcd.yaml".into(),
            found: None,
        },
        EventKind::TempRemoved {
            path: "/etc/kubernetes/manifests/kube-apiserver.yaml".into(),
        },
        EventKind::Note("write failed: No space left on device".into()),
        EventKind::Resolved { note: None },
        EventKind::Resolved {
            note: Some("restored by hand".into()),
        },
    ]);
    v
}

fn record(
    kind: TxnKind,
    summary: &str,
    files: Vec<FileRecord>,
    rollback_cause: Option<RollbackCause>,
) -> TxnRecord {
    TxnRecord {
        id: 0,
        kind,
        created_ms: 0,
        updated_ms: 0,
        summary: summary.into(),
        files,
        gate: gate_spec(),
        audit: audit_spec(),
        deadline_ms: T0 + 60_000,
        state: State::Prepared,
        rollback_cause,
        reason: None,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: golden_journal OUT_DIR")?,
    );
    std::fs::create_dir_all(&out)?;
    let state = out.join("state");
    if state.exists() {
        return Err(format!("{} exists; give an empty OUT_DIR", state.display()).into());
    }
    std::fs::create_dir_all(&state)?;
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    let j = Journal::open(&state)?;
    let mut t = T0;
    let mut now = || {
        t += 1000;
        t
    };

    let apiserver = "/etc/kubernetes/manifests/kube-apiserver.yaml".to_string();
    let scheduler = "/etc/kubernetes/manifests/kube-scheduler.yaml".to_string();
    let policy = "/etc/kubernetes/audit-policy.yaml".to_string();
    let v = |n: u32| format!("apiVersion: v1\nkind: Pod\n# version {n}\n").into_bytes();
    let file =
        |path: &str, before: Option<&[u8]>, after: Option<&[u8]>, changes, gated| FileRecord {
            path: path.to_string(),
            before: before.map(|b| image(b, 0o600)),
            after: after.map(|a| image(a, 0o600)),
            changes,
            gated,
        };

    // 1: pruned later (committed apply).
    let id = j.prepare(
        record(
            TxnKind::Apply,
            "apply kube-apiserver.yaml: set --profiling=false",
            vec![file(&apiserver, Some(&v(0)), Some(&v(1)), vec![], true)],
            None,
        ),
        &[&v(0), &v(1)],
        now(),
    )?;
    for s in [State::Applied, State::Committed] {
        j.set_state(id, s, None, None, Durable::Yes, now())?;
    }
    // 2: pruned later (rolled back: the gate failed).
    let id = j.prepare(
        record(
            TxnKind::Apply,
            "apply kube-apiserver.yaml: set --bad=1",
            vec![file(&apiserver, Some(&v(1)), Some(&v(2)), vec![], true)],
            None,
        ),
        &[&v(1), &v(2)],
        now(),
    )?;
    j.set_state(id, State::Applied, None, None, Durable::Yes, now())?;
    j.set_state(id, State::Gating, None, None, Durable::Yes, now())?;
    j.set_state(
        id,
        State::RollingBack,
        Some("health gate failed".into()),
        Some(RollbackCause::GateFailed),
        Durable::Yes,
        now(),
    )?;
    j.set_state(
        id,
        State::RolledBack,
        Some("health gate failed".into()),
        None,
        Durable::Yes,
        now(),
    )?;
    j.prune(0)?;

    // 3: an apply with every change kind and every event kind, committed after an audit.
    let id3 = j.prepare(
        record(
            TxnKind::Apply,
            "apply kube-apiserver.yaml: every change kind",
            vec![file(
                &apiserver,
                Some(&v(1)),
                Some(&v(3)),
                every_change(),
                true,
            )],
            None,
        ),
        &[&v(1), &v(3)],
        now(),
    )?;
    j.add_events(id3, every_event_kind(), Durable::Later, now())?;
    for s in [
        State::Applied,
        State::Gating,
        State::Auditing,
        State::Audited,
    ] {
        j.set_state(id3, s, None, None, Durable::Yes, now())?;
    }
    j.set_state(id3, State::Committed, None, None, Durable::Yes, now())?;

    // 4: harden over two files (one created), rolled back after the audit failed.
    let id4 = j.prepare(
        record(
            TxnKind::Harden {
                controls: vec!["3.2.1".into(), "1.2.16".into()],
            },
            "harden kube-apiserver: 3.2.1, 1.2.16",
            vec![
                file(&policy, None, Some(b"kind: Policy\n"), vec![], false),
                file(&apiserver, Some(&v(3)), Some(&v(4)), vec![], true),
            ],
            None,
        ),
        &[b"kind: Policy\n", &v(3), &v(4)],
        now(),
    )?;
    for s in [State::Applied, State::Gating, State::Auditing] {
        j.set_state(id4, s, None, None, Durable::Yes, now())?;
    }
    j.set_state(
        id4,
        State::RollingBack,
        Some("audit failed".into()),
        Some(RollbackCause::AuditFailed),
        Durable::Yes,
        now(),
    )?;
    j.set_state(id4, State::RolledBack, None, None, Durable::Yes, now())?;

    // 5: `kharden rollback 3`, rolled back because the write failed.
    let id5 = j.prepare(
        record(
            TxnKind::Rollback { of: id3 },
            "rollback of 3",
            vec![file(&apiserver, Some(&v(3)), Some(&v(1)), vec![], true)],
            None,
        ),
        &[&v(3), &v(1)],
        now(),
    )?;
    j.set_state(
        id5,
        State::RollingBack,
        Some("write failed".into()),
        Some(RollbackCause::WriteFailed),
        Durable::Yes,
        now(),
    )?;
    j.set_state(id5, State::RolledBack, None, None, Durable::Yes, now())?;

    // 6: needs manual, then resolved by the operator.
    let id6 = j.prepare(
        record(
            TxnKind::Apply,
            "apply kube-scheduler.yaml: set --profiling=false",
            vec![file(&scheduler, Some(&v(5)), Some(&v(6)), vec![], true)],
            None,
        ),
        &[&v(5), &v(6)],
        now(),
    )?;
    j.set_state(id6, State::Applied, None, None, Durable::Yes, now())?;
    j.set_state(
        id6,
        State::RollingBack,
        Some("recovery".into()),
        Some(RollbackCause::Recovery),
        Durable::Yes,
        now(),
    )?;
    j.set_state(
        id6,
        State::NeedsManual,
        Some("the old component did not come back".into()),
        None,
        Durable::Yes,
        now(),
    )?;
    j.resolve(id6, Some("restored by hand".into()), now())?;

    // 7: needs manual, not resolved.
    let id7 = j.prepare(
        record(
            TxnKind::Apply,
            "apply kube-scheduler.yaml: set --v=2",
            vec![file(&scheduler, Some(&v(5)), Some(&v(7)), vec![], true)],
            None,
        ),
        &[&v(5), &v(7)],
        now(),
    )?;
    j.set_state(
        id7,
        State::RollingBack,
        Some("health gate failed".into()),
        Some(RollbackCause::GateFailed),
        Durable::Yes,
        now(),
    )?;
    j.set_state(
        id7,
        State::NeedsManual,
        Some("restoring failed".into()),
        None,
        Durable::Yes,
        now(),
    )?;

    // 8: a refusal (Prepared -> Aborted, no file).
    let _id8 = j.record_refusal(
        TxnKind::Apply,
        "apply kube-apiserver.yaml: set --x=1".into(),
        Vec::new(),
        "line 3: not valid YAML".into(),
        now(),
    )?;

    // 9: left open in Prepared (a delete of a file).
    let _id9 = j.prepare(
        record(
            TxnKind::Apply,
            "open at the end: delete a file",
            vec![file(&policy, Some(b"kind: Policy\n"), None, vec![], false)],
            None,
        ),
        &[b"kind: Policy\n"],
        now(),
    )?;
    j.sync()?;
    drop(j);

    // The records, one line each.
    let mut text = String::new();
    let j = Journal::open_read_only(&state)?.ok_or("journal vanished")?;
    for id in [id3, id4, id5, id6, id7] {
        let rec = j.get(id)?;
        writeln!(text, "txn-{id} {}", hex(&encode(&rec)?))?;
    }
    for (i, kind) in every_event_kind().into_iter().enumerate() {
        let ev = Event {
            time_ms: T0 + i as u64,
            kind,
        };
        writeln!(text, "event-{i} {}", hex(&encode(&ev)?))?;
    }
    std::fs::write(out.join("records.txt"), text)?;
    std::fs::rename(state.join("journal.redb"), out.join("journal.redb"))?;
    std::fs::remove_dir_all(&state)?;
    eprintln!("wrote {}/journal.redb and records.txt", out.display());
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
