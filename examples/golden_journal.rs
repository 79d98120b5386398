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

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use kharden::durable::FileMeta;
use kharden::journal::schema::encode;
use kharden::journal::{
    Durable, Event, EventKind, FileRecord, Image, Journal, JournalRead, JournalReader,
    RollbackCause, Scope, State, Transition, TxnKind, TxnRecord,
};
use std::fmt::Write as _;
use std::path::PathBuf;

#[path = "../tests/golden/v1_values.rs"]
mod v1_values;
#[allow(dead_code)] // format 2's own values (its temp tag) are for the reader
#[path = "../tests/golden/v2_values.rs"]
mod v2_values;
#[path = "../tests/golden/v3_values.rs"]
mod v3_values;
// The values of the format this build writes.
use v1_values::{audit_spec, every_change, T0};
use v3_values::{every_event_kind, gate_spec, TEMP_TAG};

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
        restart: None,
        temp_tag: TEMP_TAG,
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
            settings: Vec::new(),
            gated,
            scope: Scope::Contents,
            controls: Vec::new(),
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
        j.transition(id, Transition::to(s), now())?;
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
    j.transition(id, Transition::to(State::Applied), now())?;
    j.transition(id, Transition::to(State::Gating), now())?;
    j.transition(
        id,
        Transition::to(State::RollingBack)
            .because("health gate failed")
            .cause(RollbackCause::GateFailed),
        now(),
    )?;
    j.transition(
        id,
        Transition::to(State::RolledBack).because("health gate failed"),
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
        j.transition(id3, Transition::to(s), now())?;
    }
    j.transition(id3, Transition::to(State::Committed), now())?;

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
        j.transition(id4, Transition::to(s), now())?;
    }
    j.transition(
        id4,
        Transition::to(State::RollingBack)
            .because("audit failed")
            .cause(RollbackCause::AuditFailed),
        now(),
    )?;
    j.transition(id4, Transition::to(State::RolledBack), now())?;

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
    j.transition(
        id5,
        Transition::to(State::RollingBack)
            .because("write failed")
            .cause(RollbackCause::WriteFailed),
        now(),
    )?;
    j.transition(id5, Transition::to(State::RolledBack), now())?;

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
    j.transition(id6, Transition::to(State::Applied), now())?;
    j.transition(
        id6,
        Transition::to(State::RollingBack)
            .because("recovery")
            .cause(RollbackCause::Recovery),
        now(),
    )?;
    j.transition(
        id6,
        Transition::to(State::NeedsManual).because("the old component did not come back"),
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
    j.transition(
        id7,
        Transition::to(State::RollingBack)
            .because("health gate failed")
            .cause(RollbackCause::GateFailed),
        now(),
    )?;
    j.transition(
        id7,
        Transition::to(State::NeedsManual).because("restoring failed"),
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

    // 9: rolled back after a signal during the gate.
    let id9 = j.prepare(
        record(
            TxnKind::Apply,
            "apply kube-apiserver.yaml: interrupted",
            vec![file(&apiserver, Some(&v(3)), Some(&v(8)), vec![], true)],
            None,
        ),
        &[&v(3), &v(8)],
        now(),
    )?;
    j.transition(id9, Transition::to(State::Applied), now())?;
    j.transition(id9, Transition::to(State::Gating), now())?;
    j.add_events(
        id9,
        vec![EventKind::Signal {
            signal: 15,
            second: false,
        }],
        Durable::Yes,
        now(),
    )?;
    j.transition(
        id9,
        Transition::to(State::RollingBack)
            .because("interrupted by signal 15 during the health gate")
            .cause(RollbackCause::Interrupted),
        now(),
    )?;
    j.transition(id9, Transition::to(State::RolledBack), now())?;

    // 10 (format 3): a metadata change of a key and of the pki directory, committed after
    // the processes that use them stayed up.
    let key = "/etc/kubernetes/pki/apiserver.key";
    let (key_before, key_after) = v3_values::metadata_sides(b"-----BEGIN KEY-----\n");
    let (dir_before, dir_after) = v3_values::directory_sides();
    let id10 = j.prepare(
        TxnRecord {
            gate: v3_values::gate_spec_nothing(),
            ..record(
                TxnKind::Harden {
                    controls: vec!["1.1.20".into(), "1.1.19".into()],
                },
                "harden files: 1.1.20, 1.1.19",
                vec![
                    FileRecord {
                        path: key.into(),
                        before: Some(key_before),
                        after: Some(key_after),
                        changes: Vec::new(),
                        settings: Vec::new(),
                        gated: false,
                        scope: Scope::Metadata { directory: false },
                        controls: vec!["1.1.20".into(), "1.1.19".into()],
                    },
                    FileRecord {
                        path: "/etc/kubernetes/pki".into(),
                        before: Some(dir_before),
                        after: Some(dir_after),
                        changes: Vec::new(),
                        settings: Vec::new(),
                        gated: false,
                        scope: Scope::Metadata { directory: true },
                        controls: vec!["1.1.19".into()],
                    },
                ],
                None,
            )
        },
        &[],
        now(),
    )?;
    for s in [State::Applied, State::Gating, State::Committed] {
        j.transition(id10, Transition::to(s), now())?;
    }

    // 11 (format 3): a kubelet change (its config file and a flag in its environment file),
    // restarted, rolled back because the restart failed.
    let config = b"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";
    let config2 =
        b"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nreadOnlyPort: 0\n";
    let env = b"KUBELET_KUBEADM_ARGS=\"--read-only-port=10255\"\n";
    let env2 = b"KUBELET_KUBEADM_ARGS=\"--read-only-port=0\"\n";
    let id11 = j.prepare(
        TxnRecord {
            restart: Some(v3_values::restart()),
            ..record(
                TxnKind::Apply,
                "kubelet: set readOnlyPort=0",
                vec![
                    FileRecord {
                        settings: v3_values::every_setting(),
                        ..file(
                            "/var/lib/kubelet/config.yaml",
                            Some(config),
                            Some(config2),
                            vec![],
                            false,
                        )
                    },
                    file(
                        "/var/lib/kubelet/kubeadm-flags.env",
                        Some(env),
                        Some(env2),
                        vec![every_change()[0].clone()],
                        false,
                    ),
                ],
                None,
            )
        },
        &[config, config2, env, env2],
        now(),
    )?;
    j.transition(id11, Transition::to(State::Applied), now())?;
    j.add_events(
        id11,
        vec![EventKind::Note(
            "restarting kubelet.service failed: exit code 1".into(),
        )],
        Durable::Later,
        now(),
    )?;
    j.transition(
        id11,
        Transition::to(State::RollingBack)
            .because("restarting kubelet.service failed")
            .cause(RollbackCause::RestartFailed),
        now(),
    )?;
    j.add_events(
        id11,
        vec![EventKind::Restarted {
            unit: "kubelet.service".into(),
            side: kharden::journal::Side::Before,
            detail: "done".into(),
        }],
        Durable::Later,
        now(),
    )?;
    j.transition(id11, Transition::to(State::RolledBack), now())?;

    // 12: left open in Prepared (a delete of a file).
    let _id12 = j.prepare(
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
    let j = JournalReader::open(&state)?.ok_or("journal vanished")?;
    for id in [id3, id4, id5, id6, id7, id9, id10, id11] {
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
