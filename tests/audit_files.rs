//! Every check of sections 1.1 and 4.1 on simulated nodes, with kube-bench's verdict (as its
//! `stat` audits would print it) and the effective one (the files the components really use):
//! a kubeadm control-plane node as installed, then with loosened files; worker nodes with both
//! kubelet unit layouts. The expectations are worked out by hand from kube-bench's cis-*.yaml
//! (the audit command, the test items, `scored`) and the files the test node has.

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use assert_cmd::Command;
use kharden_testnode::{write_node, write_worker_node, KubeletNodeOptions, NodeOptions, NodePorts};
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn kharden(root: &Path) -> Command {
    let mut c = Command::cargo_bin("kharden").unwrap();
    c.env("KHARDEN_ROOT", root)
        .env("KHARDEN_STATE_DIR", root.join("var/lib/kharden"))
        .env_remove("KHARDEN_TESTNODE_KUBELET_VERSION");
    c
}

struct Seen {
    label: String,
    scored: bool,
    effective: Option<bool>,
    disagreement: Option<String>,
    reason: Option<String>,
}

/// id -> what the report says, for the checks of one section prefix.
fn audit(root: &Path, args: &[&str], prefix: &str) -> BTreeMap<String, Seen> {
    let out = kharden(root)
        .args(["-o", "json", "audit"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"].as_str().unwrap().starts_with(prefix))
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                Seen {
                    label: c["kube_bench_status"].as_str().unwrap().to_string(),
                    scored: c["scored"].as_bool().unwrap(),
                    effective: c["effective"].as_bool(),
                    disagreement: c["disagreement"].as_str().map(str::to_string),
                    reason: c["reason"].as_str().map(str::to_string),
                },
            )
        })
        .collect()
}

/// Check kube-bench's verdict (`true`: the test passes) for every id of `want`, and that the
/// report has no other id with that prefix.
fn expect(seen: &BTreeMap<String, Seen>, want: &[(&str, bool)], what: &str) {
    let ids: Vec<&String> = seen.keys().collect();
    let mut want_ids: Vec<String> = want.iter().map(|(i, _)| i.to_string()).collect();
    want_ids.sort();
    let mut got: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    got.sort();
    assert_eq!(got, want_ids, "{what}: the checks reported");
    for (id, pass) in want {
        let s = &seen[*id];
        let label = match (pass, s.scored) {
            (true, _) => "PASS",
            (false, true) => "FAIL",
            (false, false) => "WARN",
        };
        assert_eq!(
            s.label, label,
            "{what} {id}: kube-bench's verdict (reason: {:?})",
            s.reason
        );
    }
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A control-plane node with kubeadm's files and modes: manifests 0600 (etcd's too), etcd's
/// data directory 0700, the four kubeconfigs 0600, the PKI as kubeadm writes it.
fn kubeadm_control_plane(dir: &Path) -> PathBuf {
    let root = dir.join("cp");
    write_node(
        &root,
        NodePorts::free(),
        &NodeOptions {
            etcd: true,
            ..NodeOptions::default()
        },
    )
    .unwrap();
    for m in std::fs::read_dir(root.join("etc/kubernetes/manifests")).unwrap() {
        chmod(&m.unwrap().path(), 0o600);
    }
    for f in [
        "admin.conf",
        "super-admin.conf",
        "scheduler.conf",
        "controller-manager.conf",
    ] {
        let p = root.join("etc/kubernetes").join(f);
        std::fs::write(&p, "apiVersion: v1\nkind: Config\n").unwrap();
        chmod(&p, 0o600);
    }
    root
}

#[test]
fn control_plane_files_as_kubeadm_installs_them_then_loosened() {
    let dir = tempfile::tempdir().unwrap();
    let root = kubeadm_control_plane(dir.path());
    let seen = audit(&root, &["--benchmark", "cis-1.12"], "1.1.");
    #[rustfmt::skip]
    let want = [
        ("1.1.1", true), ("1.1.2", true), ("1.1.3", true), ("1.1.4", true),
        ("1.1.5", true), ("1.1.6", true),
        // find $etcdconf -name '*etcd*': the etcd manifest itself.
        ("1.1.7", true), ("1.1.8", true),
        // No CNI on the node and no --cni-conf-dir (gone since 1.24): nothing printed, the
        // unscored test fails.
        ("1.1.9", false), ("1.1.10", false),
        // The data directory from etcd's --data-dir (the manifest's argv: nothing runs).
        ("1.1.11", true),
        // kubeadm runs etcd as root: root:root is not etcd:etcd.
        ("1.1.12", false),
        ("1.1.13", true), ("1.1.14", true), ("1.1.15", true), ("1.1.16", true),
        ("1.1.17", true), ("1.1.18", true), ("1.1.19", true),
        // cis-1.12: certificates bitmask 644, keys 600.
        ("1.1.20", true), ("1.1.21", true),
    ];
    expect(&seen, &want, "kubeadm control plane");
    assert_eq!(seen["1.1.1"].effective, Some(true));
    assert_eq!(seen["1.1.12"].effective, Some(false));
    assert!(seen.values().all(|s| s.disagreement.is_none()));

    // cis-1.10 asked for certificates at 600 (kubeadm writes 644): 1.1.20 fails there.
    let old = audit(&root, &["--benchmark", "cis-1.10"], "1.1.");
    assert_eq!(old["1.1.20"].label, "WARN", "{:?}", old["1.1.20"].reason);
    // cis-1.8 has only admin.conf in 1.1.13.
    let v18 = audit(&root, &["--benchmark", "cis-1.8"], "1.1.");
    assert_eq!(v18["1.1.13"].label, "PASS");

    // Loosened: a 0644 manifest, a world-readable key, a PKI file of another user, etcd's data
    // directory 0755, a symlinked key, scheduler.conf gone, CNI configuration 0644.
    let pki = root.join("etc/kubernetes/pki");
    chmod(
        &root.join("etc/kubernetes/manifests/kube-apiserver.yaml"),
        0o644,
    );
    chmod(&pki.join("sa.key"), 0o644);
    std::os::unix::fs::chown(pki.join("apiserver.crt"), Some(1000), Some(1000)).unwrap();
    chmod(&root.join("var/lib/etcd"), 0o755);
    std::os::unix::fs::symlink("front-proxy-ca.key", pki.join("front-proxy.key")).unwrap();
    std::fs::write(pki.join("front-proxy-ca.key"), "k").unwrap();
    chmod(&pki.join("front-proxy-ca.key"), 0o600);
    std::fs::remove_file(root.join("etc/kubernetes/scheduler.conf")).unwrap();
    let cni = root.join("etc/cni/net.d");
    std::fs::create_dir_all(&cni).unwrap();
    std::fs::write(cni.join("10-flannel.conflist"), "{}").unwrap();
    chmod(&cni.join("10-flannel.conflist"), 0o644);
    let seen = audit(&root, &["--benchmark", "cis-1.12"], "1.1.");
    #[rustfmt::skip]
    let want = [
        ("1.1.1", false), ("1.1.2", true), ("1.1.3", true), ("1.1.4", true),
        ("1.1.5", true), ("1.1.6", true), ("1.1.7", true), ("1.1.8", true),
        ("1.1.9", false), ("1.1.10", false),
        ("1.1.11", false), ("1.1.12", false),
        ("1.1.13", true), ("1.1.14", true),
        // Missing: kube-bench's `test -e` prints nothing and the test fails.
        ("1.1.15", false), ("1.1.16", false),
        ("1.1.17", true), ("1.1.18", true),
        // 1000:1000 has no name on the node: stat prints UNKNOWN:UNKNOWN.
        ("1.1.19", false),
        ("1.1.20", true),
        // sa.key 0644, and the symlink's own mode (777).
        ("1.1.21", false),
    ];
    expect(&seen, &want, "loosened control plane");
    assert_eq!(seen["1.1.1"].effective, Some(false));
    assert_eq!(seen["1.1.15"].effective, None, "nothing to protect");
    // The CNI files kube-bench does not look at: 0644 does not hold, and both fail.
    assert_eq!(seen["1.1.9"].effective, Some(false));
    chmod(&cni.join("10-flannel.conflist"), 0o600);
    chmod(&pki.join("sa.key"), 0o600);
    let seen = audit(&root, &["--benchmark", "cis-1.12"], "1.1.");
    assert_eq!(seen["1.1.9"].label, "WARN");
    assert_eq!(seen["1.1.9"].effective, Some(true));
    let d = seen["1.1.9"].disagreement.as_deref().unwrap();
    assert!(d.contains("/etc/cni/net.d/10-flannel.conflist"), "{d}");
    // Only the symlink is left for 1.1.21: kube-bench fails it, the key it points to holds.
    assert_eq!(seen["1.1.21"].label, "WARN");
    let d = seen["1.1.21"].disagreement.as_deref().unwrap_or_default();
    assert!(d.contains("symlink"), "{d}");
}

#[test]
fn worker_node_files_with_both_unit_layouts() {
    let dir = tempfile::tempdir().unwrap();
    // The packages since 2023: /usr/lib/systemd/system, which kube-bench's $kubeletsvc
    // candidates miss.
    let root = dir.path().join("w");
    write_worker_node(&root, &KubeletNodeOptions::default()).unwrap();
    let seen = audit(&root, &["--benchmark", "cis-1.12"], "4.1.");
    #[rustfmt::skip]
    let want = [
        // Nothing at $kubeletsvc: no output, the test fails.
        ("4.1.1", false),
        // `else echo "File not found"`, which the second item accepts.
        ("4.1.2", true),
        // No kube-proxy kubeconfig: unscored tests fail on empty output.
        ("4.1.3", false), ("4.1.4", false),
        ("4.1.5", true), ("4.1.6", true),
        // $kubeletcafile: /etc/kubernetes/pki/ca.crt, 0644 (bitmask 644).
        ("4.1.7", true), ("4.1.8", true),
        // config.yaml is 0644 (kubeadm's): bitmask 600 fails.
        ("4.1.9", false), ("4.1.10", true),
    ];
    expect(&seen, &want, "worker");
    // The unit and drop-in kube-bench missed are what the kubelet uses: 0644, not 600.
    assert_eq!(seen["4.1.1"].effective, Some(false));
    assert_eq!(seen["4.1.2"].effective, Some(true));
    assert_eq!(seen["4.1.3"].effective, None);
    // cis-1.10: the client CA at 600.
    let old = audit(&root, &["--benchmark", "cis-1.10"], "4.1.");
    assert_eq!(old["4.1.7"].label, "WARN");

    // The older layout: /lib/systemd/system plus /etc/systemd/system/kubelet.service.d, which
    // kube-bench finds; a drop-in of /usr/lib it does not see.
    let legacy = dir.path().join("legacy");
    write_worker_node(
        &legacy,
        &KubeletNodeOptions {
            legacy_unit_paths: true,
            ..KubeletNodeOptions::default()
        },
    )
    .unwrap();
    chmod(
        &legacy.join("etc/systemd/system/kubelet.service.d/10-kubeadm.conf"),
        0o600,
    );
    chmod(&legacy.join("lib/systemd/system/kubelet.service"), 0o600);
    chmod(&legacy.join("var/lib/kubelet/config.yaml"), 0o600);
    let seen = audit(&legacy, &["--benchmark", "cis-1.12"], "4.1.");
    assert_eq!(seen["4.1.1"].label, "PASS");
    assert_eq!(seen["4.1.1"].effective, Some(true));
    assert_eq!(seen["4.1.9"].label, "PASS");
    let extra = legacy.join("usr/lib/systemd/system/kubelet.service.d/20-extra.conf");
    std::fs::create_dir_all(extra.parent().unwrap()).unwrap();
    std::fs::write(&extra, "[Service]\n").unwrap();
    chmod(&extra, 0o644);
    let seen = audit(&legacy, &["--benchmark", "cis-1.12"], "4.1.");
    assert_eq!(seen["4.1.1"].label, "PASS");
    assert_eq!(seen["4.1.1"].effective, Some(false));
    let d = seen["4.1.1"].disagreement.as_deref().unwrap();
    assert!(d.contains("20-extra.conf"), "{d}");
}
