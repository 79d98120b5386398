//! `kharden audit` on simulated nodes that run: a worker node whose kubelet runs under the
//! service-manager emulator (found in /proc by its binary, its version asked through its own
//! executable, its flags and configuration file read as kube-bench reads them, its credentials
//! reported), and a control plane in the middle of an upgrade whose running API server answers
//! `/version`.

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use assert_cmd::cargo::cargo_bin;
use kharden_testnode::{
    write_node, write_worker_node, KubeletNodeOptions, KubeletOptions, KubeletProcess, NodeOptions,
    NodePorts, ServiceManagerOptions, ServiceManagerProcess,
};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn kharden(root: &Path) -> Command {
    let mut c = Command::new(cargo_bin("kharden"));
    c.env("KHARDEN_ROOT", root)
        .env("KHARDEN_STATE_DIR", root.join("var/lib/kharden"))
        .env_remove("KHARDEN_TESTNODE_KUBELET_VERSION");
    c
}

fn audit_json(root: &Path, extra_env: &[(&str, &str)]) -> Value {
    let out = kharden(root)
        .envs(extra_env.iter().copied())
        .args(["-o", "json", "audit"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("{id}"))
}

#[test]
fn a_running_kubelet_is_found_asked_for_its_version_and_audited_like_kube_bench() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_worker_node(
        root,
        &KubeletNodeOptions {
            restart_sec: Duration::from_millis(300),
            ..KubeletNodeOptions::default()
        },
    )
    .unwrap();
    let exe = cargo_bin("kharden");
    let mut k = KubeletOptions::simulated_node(root, &exe).unwrap();
    k.grace_period = Duration::from_secs(2);
    let sm = ServiceManagerProcess::spawn(&exe, &ServiceManagerOptions::new(root), &k).unwrap();
    let shown = sm
        .wait_for("kubelet.service", Duration::from_secs(60), |p| {
            p.get("ActiveState").map(String::as_str) == Some("active")
                && p.get("MainPID").is_some_and(|m| m != "0")
        })
        .unwrap_or_else(|| panic!("kubelet never active: {}", sm.events()));
    let pid: u32 = shown["MainPID"].parse().unwrap();
    // The binary answers `--version` with what the emulator is told to be.
    let v = audit_json(root, &[("KHARDEN_TESTNODE_KUBELET_VERSION", "v1.33.1")]);
    let b = &v["benchmark"];
    assert_eq!(b["benchmark"], "cis-1.12", "{b}");
    assert_eq!(b["kubernetes_version"], "v1.33.1");
    assert_eq!(
        b["evidence"][0]["source"]["path"],
        format!("kubelet (process {pid})").as_str(),
        "{b}"
    );
    let kubelet = v["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == "kubelet")
        .unwrap();
    assert_eq!(kubelet["pid"], pid);
    assert_eq!(kubelet["uid"], nix::unistd::geteuid().as_raw());
    assert!(kubelet["source"]
        .as_str()
        .unwrap()
        .contains("running process"));
    // kube-bench's reading: the flags from `ps`, else kubeadm's config.yaml (no defaults).
    // authentication.anonymous.enabled: false and authorization.mode: Webhook are in the file.
    for id in ["4.2.1", "4.2.2", "4.2.3"] {
        let c = check(&v, id);
        assert_eq!(c["kube_bench_status"], "PASS", "{c}");
    }
    // --hostname-override is on the command line (kubeadm-flags.env): the unscored 4.2.7
    // fails.
    let c = check(&v, "4.2.7");
    assert_eq!(c["kube_bench_status"], "WARN", "{c}");
    assert!(c["actual_value"]
        .as_str()
        .unwrap()
        .contains("--hostname-override=testnode"));
    // rotateCertificates: true is in the file.
    assert_eq!(check(&v, "4.2.10")["kube_bench_status"], "PASS");
    // The effective reading: the kubelet's own merge (kharden-kubelet-config), which agrees
    // with kube-bench here; the read-only port is closed by the v1beta1 default that kube-bench
    // does not apply (it passes 4.2.4 for the absent key anyway).
    let c = check(&v, "4.2.1");
    assert_eq!(c["effective"], true, "{c}");
    assert!(c["disagreement"].is_null(), "{c}");
    assert_eq!(check(&v, "4.2.4")["effective"], true);
    assert_eq!(
        check(&v, "4.2.13")["effective"],
        false,
        "podPidsLimit -1 by default"
    );
    // The kubelet's --config is the file kube-bench reads: 4.1.9's effective reading judges
    // it, 4.1.7's CA comes from $kubeletcafile.
    assert_eq!(check(&v, "4.1.9")["kube_bench_status"], "FAIL");
    assert_eq!(check(&v, "4.1.9")["effective"], false);
    drop(sm);
}

#[test]
fn in_the_middle_of_an_upgrade_the_running_api_server_decides() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let node = write_node(
        root,
        NodePorts::free(),
        &NodeOptions {
            scheduler: true,
            controller_manager: false,
            kubernetes_version: "v1.32.1".into(),
            image_tags: vec![("kube-scheduler".into(), "v1.31.3".into())],
            ..NodeOptions::default()
        },
    )
    .unwrap();
    let exe = cargo_bin("kharden");
    let mut opts = KubeletOptions::simulated_node(root, &exe).unwrap();
    opts.grace_period = Duration::from_secs(2);
    let kubelet = KubeletProcess::spawn(&exe, &["__kubelet"], &opts).unwrap();
    // Wait for the API server to answer.
    let manifest = node.apiserver_manifest.clone().unwrap();
    let hroot = kharden::root::HostRoot::new(Some(root)).unwrap();
    let spec = kharden::journal::GateSpec {
        enabled: true,
        timeout_secs: 30,
        stable_for_secs: 1,
        ..Default::default()
    };
    let mut p = kharden::gate::params_for(
        &hroot,
        &spec,
        &std::fs::read(&manifest).unwrap(),
        None,
        std::time::SystemTime::now() + Duration::from_secs(60),
    )
    .unwrap();
    p.poll_interval = Duration::from_millis(200);
    assert!(
        kharden_gate::run_gate(&p, &mut |_| {}).passed(),
        "{}",
        kubelet.events()
    );
    let end = Instant::now() + Duration::from_secs(30);
    let v = loop {
        let v = audit_json(root, &[]);
        let answered = v["benchmark"]["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["source"]["kind"] == "api-server" && !e["version"].is_null());
        if answered || Instant::now() > end {
            break v;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let b = &v["benchmark"];
    assert!(
        b["mid_upgrade"]
            .as_str()
            .unwrap()
            .contains("kube-scheduler v1.31.3"),
        "{b}"
    );
    let api = b["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source"]["kind"] == "api-server")
        .unwrap();
    assert_eq!(api["version"], "v1.32.1", "{b}");
    assert!(api["source"]["url"].as_str().unwrap().ends_with("/version"));
    assert!(b["reason"]
        .as_str()
        .unwrap()
        .contains("the API server answers /version with v1.32.1"));
    assert_eq!(b["benchmark"], "cis-1.12");
    // The running processes are what the flag checks read.
    let api_src = v["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == "kube-apiserver")
        .unwrap();
    assert!(api_src["pid"].is_u64(), "{api_src}");
    drop(kubelet);
}
