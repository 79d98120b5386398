//! `kharden audit` output formats and exit codes, and `harden --dry-run`.

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

mod common;

use common::*;
use predicates::prelude::*;
use std::path::Path;

fn node_with_all_fixtures() -> Node {
    let node = Node::new();
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for n in [
        "kube-controller-manager.yaml",
        "kube-scheduler.yaml",
        "etcd.yaml",
    ] {
        std::fs::copy(fx.join(n), node.manifests.join(n)).unwrap();
    }
    node
}

#[test]
fn audit_text_json_junit_and_exit_code() {
    let node = node_with_all_fixtures();
    // The fixtures' images are v1.33.1: cis-1.12, said in the report.
    node.kharden()
        .args(["audit", "--source", "manifest"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "kharden audit: benchmark cis-1.12",
        ))
        .stdout(predicate::str::contains(
            "== 1.2 API server [master] (kube-apiserver: manifest",
        ))
        .stdout(predicate::str::contains("[FAIL]   FAILS 1.2.15"))
        .stdout(predicate::str::contains("fix auto: set --profiling=false"))
        .stdout(predicate::str::contains("== 2 etcd [etcd]"))
        .stdout(predicate::str::contains("== Summary cis-1.12"));
    let out = node
        .kharden()
        .args(["-o", "json", "audit", "--source", "manifest"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["benchmark"]["benchmark"], "cis-1.12");
    let checks = v["checks"].as_array().unwrap();
    assert!(checks.len() >= 40);
    let c = checks.iter().find(|c| c["id"] == "1.2.15").unwrap();
    assert_eq!(c["status"], "FAIL");
    assert_eq!(c["effective"], false);
    let api = v["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == "kube-apiserver")
        .unwrap();
    assert!(
        api["source"].as_str().unwrap().starts_with("manifest "),
        "{api}"
    );
    // No kubelet and none of its files: the node target does not apply.
    let node_target = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "node")
        .unwrap();
    assert_eq!(node_target["selected"], false);
    // JUnit: one suite per section (master 1.1-1.4, etcd 2, controlplane 3.1-3.2, policies
    // 5.1-5.6), failures for FAIL, skipped for WARN/MANUAL.
    let out = node
        .kharden()
        .args(["audit", "--source", "manifest", "--format", "junit"])
        .output()
        .unwrap();
    let x = String::from_utf8(out.stdout).unwrap();
    assert!(x.starts_with("<?xml"));
    assert!(x.contains("<testsuite name=\"cis-1.12 1.2 API server\""));
    assert!(x.contains("<testcase classname=\"cis-1.12.1.2\" name=\"1.2.15 API server profiling endpoints are off\"><failure"));
    assert_eq!(x.matches("<testsuite ").count(), 13);
    // kube-bench's convention: exit 0 unless --exit-code N and a scored control fails.
    node.kharden()
        .args(["audit", "--source", "manifest", "--exit-code", "9"])
        .assert()
        .code(9);
    node.kharden()
        .args(["audit", "--benchmark", "cis-0.1"])
        .assert()
        .code(2);
}

#[test]
fn audit_says_when_a_component_is_not_running() {
    let node = node_with_all_fixtures();
    let out = node
        .kharden()
        .args(["-o", "json", "audit", "--source", "running"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "1.2.15")
        .unwrap()
        .clone();
    // kube-bench's `ps | grep` finds no line: its audit command fails and the check FAILs.
    assert_eq!(c["status"], "FAIL");
    assert!(c["reason"].as_str().unwrap().contains("not running"), "{c}");
}

#[test]
fn harden_dry_run_prints_plan_and_diffs_and_changes_nothing() {
    let node = node_with_all_fixtures();
    let before: Vec<(String, Vec<u8>)> = node
        .manifest_dir_entries()
        .into_iter()
        .map(|n| (n.clone(), std::fs::read(node.manifests.join(&n)).unwrap()))
        .collect();
    node.kharden()
        .args(["harden", "--dry-run", "--skip", "1.2.29"])
        .assert()
        .success()
        .stdout(
            predicate::str::is_match(r"== plan: [0-9., ]*1\.2\.15[0-9., ]* on kube-apiserver")
                .unwrap(),
        )
        .stdout(predicate::str::contains("+    - --profiling=false"))
        .stdout(
            predicate::str::contains("+++ b/").and(predicate::str::contains("audit-policy.yaml")),
        )
        .stdout(predicate::str::contains("(dry run: nothing changed)"))
        .stdout(
            predicate::str::contains("1.2.29")
                .not()
                .or(predicate::str::contains("plan: 1.2.29").not()),
        );
    for (n, b) in before {
        assert_eq!(
            std::fs::read(node.manifests.join(&n)).unwrap(),
            b,
            "{n} changed in a dry run"
        );
    }
    assert!(!node
        .dir
        .path()
        .join("etc/kubernetes/audit-policy.yaml")
        .exists());
    assert!(
        !node.state.join("journal.redb").exists(),
        "a dry run journals nothing"
    );
    node.kharden()
        .args(["harden", "--only", "9.9.9"])
        .assert()
        .code(2);
}
