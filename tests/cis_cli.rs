//! `kharden audit` output formats and exit codes, and `harden --dry-run`.

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
    node.kharden()
        .args(["audit", "--source", "manifest"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "== 1.2 API Server (kube-apiserver: manifest",
        ))
        .stdout(predicate::str::contains("[FAIL] 1.2.15"))
        .stdout(predicate::str::contains("fix auto: set --profiling=false"))
        .stdout(predicate::str::contains("== 2 etcd"))
        .stdout(predicate::str::contains("== Summary cis-1.12"));
    let out = node
        .kharden()
        .args(["-o", "json", "audit", "--source", "manifest"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let controls = v["controls"].as_array().unwrap();
    assert!(controls.len() >= 40);
    let c = controls.iter().find(|c| c["id"] == "1.2.15").unwrap();
    assert_eq!(c["status"], "FAIL");
    assert_eq!(c["source"]["kind"], "manifest");
    // JUnit: one suite per section, failures for FAIL, skipped for WARN/MANUAL.
    let out = node
        .kharden()
        .args(["audit", "--source", "manifest", "--format", "junit"])
        .output()
        .unwrap();
    let x = String::from_utf8(out.stdout).unwrap();
    assert!(x.starts_with("<?xml"));
    assert!(x.contains("<testsuite name=\"cis-1.12 1.2 API Server\""));
    assert!(x.contains("<testcase classname=\"cis-1.12.1.2\" name=\"1.2.15 API server profiling endpoints are off\"><failure"));
    assert_eq!(x.matches("<testsuite ").count(), 5);
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
    let c = v["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "1.2.15")
        .unwrap()
        .clone();
    assert_eq!(c["status"], "WARN");
    assert!(c["note"].as_str().unwrap().contains("not running"), "{c}");
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
        .stdout(predicate::str::contains(
            "== plan: 1.2.15 on kube-apiserver",
        ))
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
