//! The values the golden journal of format 3 was written with (tests/golden/v3/): format 2's
//! (`super::v2_values`, included beside this module) plus what format 3 added. Shared by the
//! generator (examples/golden_journal.rs) and the reader (tests/journal_format.rs).
//!
//! Frozen with the format: a later format adds its own values beside these, never edits them.

use super::v2_values;
use kharden::durable::FileMeta;
use kharden::journal::{EventKind, GateSpec, GateTarget, Image, Kept, Restart, Side};
use kharden_kubelet_config::{ConfigChange, KeyPath, Scalar};

/// The temp tag every format-3 golden transaction carries.
pub const TEMP_TAG: u64 = 0x5eed_0000_0000_0003;

/// A gate of format 3: the kubelet's, keeping the static pods up meanwhile.
pub fn gate_spec() -> GateSpec {
    GateSpec {
        target: GateTarget::Kubelet {
            healthz_before: "http://127.0.0.1:10248/healthz".into(),
            healthz_after: "http://127.0.0.1:10250/healthz".into(),
            kubeconfig: Some("/etc/kubernetes/kubelet.conf".into()),
            node: Some("worker-1".into()),
        },
        keep: vec![
            Kept {
                component: "kube-apiserver".into(),
                pid: 4100,
                start_ticks: 123_456,
                manifest: Some("/etc/kubernetes/manifests/kube-apiserver.yaml".into()),
            },
            Kept {
                component: "kube-proxy".into(),
                pid: 4200,
                start_ticks: 654_321,
                manifest: None,
            },
        ],
        ..v2_values::gate_spec()
    }
}

/// The gate of a change that restarts nothing (a metadata transaction).
pub fn gate_spec_nothing() -> GateSpec {
    GateSpec {
        target: GateTarget::Nothing,
        keep: vec![Kept {
            component: "etcd".into(),
            pid: 4300,
            start_ticks: 777,
            manifest: Some("/etc/kubernetes/manifests/etcd.yaml".into()),
        }],
        ..v2_values::gate_spec()
    }
}

pub fn restart() -> Restart {
    Restart {
        unit: "kubelet.service".into(),
        systemctl: "/usr/bin/systemctl".into(),
    }
}

/// Every kind of `KubeletConfiguration` change.
pub fn every_setting() -> Vec<ConfigChange> {
    let path = |s: &str| KeyPath::parse(s).unwrap();
    vec![
        ConfigChange::Set {
            path: path("readOnlyPort"),
            value: Scalar::Int(0),
        },
        ConfigChange::Set {
            path: path("authentication.anonymous.enabled"),
            value: Scalar::Bool(false),
        },
        ConfigChange::Set {
            path: path("streamingConnectionIdleTimeout"),
            value: Scalar::Str("4h0m0s".into()),
        },
        ConfigChange::Set {
            path: path("evictionHard[memory.available]"),
            value: Scalar::Str("100Mi".into()),
        },
        ConfigChange::Unset {
            path: path("featureGates.RotateKubeletServerCertificate"),
        },
        ConfigChange::SetList {
            path: path("tlsCipherSuites"),
            items: vec![
                Scalar::Str("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()),
                Scalar::Str("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384".into()),
            ],
        },
    ]
}

/// The two sides of a metadata change: the same contents, another mode and owner.
pub fn metadata_sides(contents: &[u8]) -> (Image, Image) {
    let side = |mode, uid, gid| Image {
        hash: kharden::durable::hash(contents),
        len: contents.len() as u64,
        meta: FileMeta { mode, uid, gid },
    };
    (side(0o644, 1000, 1000), side(0o600, 0, 0))
}

/// The sides of a directory's metadata change.
pub fn directory_sides() -> (Image, Image) {
    let side = |mode| Image {
        hash: kharden::durable::DIRECTORY_HASH,
        len: 0,
        meta: FileMeta {
            mode,
            uid: 0,
            gid: 0,
        },
    };
    (side(0o775), side(0o755))
}

/// Every event kind of format 3: format 2's, then the new ones.
pub fn every_event_kind() -> Vec<EventKind> {
    let mut v = v2_values::every_event_kind();
    v.extend([
        EventKind::Restarted {
            unit: "kubelet.service".into(),
            side: Side::After,
            detail: "systemctl restart kubelet.service: done".into(),
        },
        EventKind::Restarted {
            unit: "kubelet.service".into(),
            side: Side::Before,
            detail: String::new(),
        },
    ]);
    v
}
