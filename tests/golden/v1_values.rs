//! The values the golden journal of format 1 was written with (tests/golden/v1/): shared by
//! the generator (examples/golden_journal.rs) and the reader (tests/journal_format.rs), so
//! that the test checks the bytes decode to exactly what was encoded.
//!
//! Frozen with the format: a later format adds its own values beside these, never edits them.

use kharden::journal::{AuditSpec, EventKind, GateSpec, GateTarget, RoundClass, Side, State};
use kharden_manifest::{Change, Mount};

/// The base of every time in the golden journal (ms since the epoch).
pub const T0: u64 = 1_790_000_000_000;

pub fn every_change() -> Vec<Change> {
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

pub fn gate_spec() -> GateSpec {
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
        // Format 1 had no --max-crashes: its gates read as waiting for the deadline.
        max_crashes: 0,
        // Formats 1 and 2 gated static pods only, and watched no other process.
        target: GateTarget::StaticPods,
        keep: Vec::new(),
    }
}

pub fn audit_spec() -> AuditSpec {
    AuditSpec {
        builtin: true,
        script: Some("/usr/local/bin/check.sh".into()),
        script_timeout_secs: 30,
    }
}

pub fn every_event_kind() -> Vec<EventKind> {
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
        RoundClass::NoProcess,
        RoundClass::Down,
        RoundClass::Unauthorized,
        RoundClass::ServerError,
        RoundClass::Timeout,
        RoundClass::TlsError,
        RoundClass::OtherStatus,
        RoundClass::Healthy,
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
