//! `kharden audit` chooses the benchmark the way kube-bench's `version_mapping` does, from the
//! version the simulated node runs (the control-plane images' tags, the kubelet binary's
//! `--version`), says why, and runs the targets the node has: control-plane nodes of Kubernetes
//! 1.26 to 1.35, worker nodes of the same versions, a node in the middle of an upgrade, and the
//! command-line overrides.
//!
//! The expected benchmarks are written here by hand from kube-bench's cfg/config.yaml
//! (`version_mapping`, snapshot of shared/cis/SOURCE.md) plus kharden's 1.35 -> cis-2.0; the check
//! ids each target reports are compared with kube-bench's YAML when ../shared/cis is present.

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
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Kubernetes minor -> benchmark (kube-bench's version_mapping; 1.35 is kharden's entry).
const EXPECTED: &[(u32, &str)] = &[
    (26, "cis-1.8"),
    (27, "cis-1.9"),
    (28, "cis-1.10"),
    (29, "cis-1.11"),
    (30, "cis-1.11"),
    (31, "cis-1.11"),
    (32, "cis-1.12"),
    (33, "cis-1.12"),
    (34, "cis-1.12"),
    (35, "cis-2.0"),
];

fn kharden(root: &Path) -> Command {
    let mut c = Command::cargo_bin("kharden").unwrap();
    c.env("KHARDEN_ROOT", root)
        .env("KHARDEN_STATE_DIR", root.join("var/lib/kharden"))
        .env_remove("KHARDEN_TESTNODE_KUBELET_VERSION")
        .env_remove("KHARDEN_CRASH_AT");
    c
}

fn json(root: &Path, args: &[&str]) -> Value {
    let out = kharden(root)
        .args(["-o", "json", "audit"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn control_plane(dir: &Path, name: &str, opts: NodeOptions) -> PathBuf {
    let root = dir.join(name);
    write_node(&root, NodePorts::free(), &opts).unwrap();
    root
}

/// A worker node whose kubelet binary answers `--version` with `version`.
fn worker(dir: &Path, name: &str, version: &str) -> PathBuf {
    let root = dir.join(name);
    write_worker_node(&root, &KubeletNodeOptions::default()).unwrap();
    let bin = root.join("usr/bin/kubelet");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::write(&bin, format!("#!/bin/sh\necho Kubernetes {version}\n")).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    root
}

fn selected(v: &Value) -> Vec<String> {
    v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["selected"] == true)
        .map(|t| t["target"].as_str().unwrap().to_string())
        .collect()
}

fn ids_of(v: &Value, target: &str) -> Vec<String> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["target"] == target)
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

/// The check ids of kube-bench's `cfg/<bench>/<target>.yaml` (cis-2.0 has cis-1.12's), or
/// `None` without ../shared/cis.
fn kube_bench_ids(bench: &str, target: &str) -> Option<Vec<String>> {
    let dir = std::env::var("KHARDEN_CIS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/cis"));
    let b = if bench == "cis-2.0" {
        "cis-1.12"
    } else {
        bench
    };
    let text = std::fs::read_to_string(dir.join(format!("{b}_{target}.yaml"))).ok()?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let mut out = Vec::new();
    for g in doc["groups"].as_sequence().unwrap() {
        for c in g["checks"].as_sequence().unwrap() {
            out.push(match &c["id"] {
                serde_yaml::Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other).unwrap().trim().to_string(),
            });
        }
    }
    Some(out)
}

#[test]
fn control_plane_nodes_of_1_26_to_1_35_get_kube_benchs_benchmark() {
    let dir = tempfile::tempdir().unwrap();
    let mut compared = 0;
    for (minor, bench) in EXPECTED {
        let tag = format!("v1.{minor}.3");
        let root = control_plane(
            dir.path(),
            &format!("cp-{minor}"),
            NodeOptions {
                kubernetes_version: tag.clone(),
                etcd: true,
                ..NodeOptions::default()
            },
        );
        let v = json(&root, &[]);
        let b = &v["benchmark"];
        assert_eq!(b["benchmark"], *bench, "1.{minor}: {b}");
        assert_eq!(b["how"], "detected");
        assert_eq!(b["kubernetes_version"], tag.as_str());
        assert_eq!(b["detected_version"], format!("1.{minor}").as_str());
        let reason = b["reason"].as_str().unwrap();
        assert!(
            reason.contains(&tag) && reason.contains(bench),
            "1.{minor}: the report says why: {reason}"
        );
        assert!(b["mid_upgrade"].is_null());
        assert_eq!(
            selected(&v),
            ["master", "etcd", "controlplane", "node", "policies"],
            "1.{minor}"
        );
        for t in ["master", "etcd", "controlplane", "node", "policies"] {
            if let Some(want) = kube_bench_ids(bench, t) {
                assert_eq!(ids_of(&v, t), want, "1.{minor} {t}");
                compared += 1;
            }
        }
        // kube-bench's own JSON says the same.
        let out = kharden(&root)
            .args(["audit", "--format", "kube-bench-json"])
            .output()
            .unwrap();
        let kb: Value = serde_json::from_slice(&out.stdout).unwrap();
        for c in kb["Controls"].as_array().unwrap() {
            assert_eq!(c["version"], *bench);
            assert_eq!(c["detected_version"], format!("1.{minor}").as_str());
        }
    }
    if compared == 0 {
        println!("skipped: ../shared/cis not found, check ids not compared with kube-bench's YAML");
    }
}

#[test]
fn worker_nodes_of_1_26_to_1_35_are_audited_on_the_node_target_alone() {
    let dir = tempfile::tempdir().unwrap();
    for (minor, bench) in EXPECTED {
        let version = format!("v1.{minor}.1");
        let root = worker(dir.path(), &format!("w-{minor}"), &version);
        let v = json(&root, &[]);
        let b = &v["benchmark"];
        assert_eq!(b["benchmark"], *bench, "1.{minor}: {b}");
        assert_eq!(b["kubernetes_version"], version.as_str());
        assert_eq!(b["evidence"][0]["source"]["kind"], "kubelet-binary");
        assert!(b["reason"].as_str().unwrap().contains("--version"), "{b}");
        assert_eq!(selected(&v), ["node"], "1.{minor}");
        let checks = v["checks"].as_array().unwrap();
        assert!(checks.iter().all(|c| c["target"] == "node"));
        if let Some(want) = kube_bench_ids(bench, "node") {
            assert_eq!(ids_of(&v, "node"), want, "1.{minor}");
        }
        // The control-plane targets are said to be not applicable, with the reason.
        let master = v["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["target"] == "master")
            .unwrap();
        assert!(master["why"].as_str().unwrap().contains("not applicable"));
        // Only node in kube-bench's JSON too.
        let out = kharden(&root)
            .args(["audit", "--format", "kube-bench-json"])
            .output()
            .unwrap();
        let kb: Value = serde_json::from_slice(&out.stdout).unwrap();
        let controls = kb["Controls"].as_array().unwrap();
        assert_eq!(controls.len(), 1);
        assert_eq!(controls[0]["node_type"], "node");
        assert_eq!(controls[0]["id"], "4");
    }
}

#[test]
fn a_node_in_the_middle_of_an_upgrade_says_so_and_the_api_server_decides() {
    let dir = tempfile::tempdir().unwrap();
    // kubeadm upgrade apply rewrote the API server's and the controller manager's manifests to
    // 1.32 and not yet the scheduler's. Nothing runs: the API server cannot be asked, so its
    // manifest decides.
    let root = control_plane(
        dir.path(),
        "mid",
        NodeOptions {
            kubernetes_version: "v1.32.0".into(),
            image_tags: vec![("kube-scheduler".into(), "v1.31.4".into())],
            ..NodeOptions::default()
        },
    );
    let v = json(&root, &[]);
    let b = &v["benchmark"];
    assert_eq!(b["benchmark"], "cis-1.12", "{b}");
    assert_eq!(b["kubernetes_version"], "v1.32.0");
    let mid = b["mid_upgrade"].as_str().unwrap();
    assert!(
        mid.contains("kube-scheduler v1.31.4") && mid.contains("kube-apiserver v1.32.0"),
        "{mid}"
    );
    let reason = b["reason"].as_str().unwrap();
    assert!(reason.contains("could not be asked"), "{reason}");
    assert!(b["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["source"]["kind"] == "api-server" && e["version"].is_null()));
    // The text says it too.
    let out = kharden(&root).args(["audit"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("NOTE: the control-plane manifests disagree"),
        "{text}"
    );
}

#[test]
fn the_kubelet_is_asked_when_the_manifests_name_no_version_and_skew_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = control_plane(
        dir.path(),
        "skew",
        NodeOptions {
            kubernetes_version: "v1.32.2".into(),
            ..NodeOptions::default()
        },
    );
    let bin = root.join("usr/bin/kubelet");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::write(&bin, "#!/bin/sh\necho Kubernetes v1.31.0\n").unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let v = json(&root, &[]);
    assert_eq!(v["benchmark"]["benchmark"], "cis-1.12");
    let reason = v["benchmark"]["reason"].as_str().unwrap();
    assert!(reason.contains("the kubelet is v1.31.0"), "{reason}");
    // A kubelet binary that others may write is not run.
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o777)).unwrap();
    let w = worker(dir.path(), "w", "v1.29.0");
    let wbin = w.join("usr/bin/kubelet");
    std::fs::set_permissions(&wbin, std::fs::Permissions::from_mode(0o757)).unwrap();
    let v = json(&w, &[]);
    assert_eq!(v["benchmark"]["how"], "default");
    let reason = v["benchmark"]["reason"].as_str().unwrap();
    assert!(reason.contains("not run"), "{reason}");
}

#[test]
fn overrides_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let root = control_plane(dir.path(), "cp", NodeOptions::default());
    let v = json(&root, &["--kubernetes-version", "1.28"]);
    assert_eq!(v["benchmark"]["benchmark"], "cis-1.10");
    assert_eq!(v["benchmark"]["how"], "kubernetes-version");
    assert_eq!(v["benchmark"]["detected_version"], "none");
    let v = json(&root, &["--kubernetes-version", "v1.36.1"]);
    assert_eq!(v["benchmark"]["benchmark"], "cis-2.0");
    assert!(v["benchmark"]["reason"]
        .as_str()
        .unwrap()
        .contains("nearest lower"));
    let v = json(&root, &["--benchmark", "cis-1.9"]);
    assert_eq!(v["benchmark"]["benchmark"], "cis-1.9");
    assert!(v["benchmark"]["reason"]
        .as_str()
        .unwrap()
        .contains("--benchmark cis-1.9"));
    // Targets: exactly those asked.
    let v = json(&root, &["--targets", "node,etcd"]);
    assert_eq!(selected(&v), ["etcd", "node"]);
    let v = json(&root, &["--targets", "master"]);
    assert_eq!(selected(&v), ["master"]);
    assert!(v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["id"].as_str().unwrap().starts_with("1.")));
    for bad in [
        &["--benchmark", "cis-0.1"][..],
        &["--kubernetes-version", "1.25"],
        &["--kubernetes-version", "banana"],
        &["--kubernetes-version", "1.30", "--benchmark", "cis-1.11"],
        &["--targets", "mastr"],
        &["--format", "json", "--textfile", "/tmp/x.prom"],
    ] {
        kharden(&root).arg("audit").args(bad).assert().code(2);
    }
}
