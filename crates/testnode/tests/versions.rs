//! The version a simulated node runs, as `kharden audit` reads it: the control-plane images'
//! tags in the manifests (one per component during an upgrade), the kubelet emulator's
//! `--version`, the fake API server's `GET /version` (the tag of the image it was started
//! from); and the node's accounts (`/etc/passwd`, `/etc/group`) for owner names.

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use kharden_gate::probe::{probe_with, ProbeTarget, Scheme, TlsSettings};
use kharden_testnode::fake::{served_version, HealthServer, HealthServerConfig};
use kharden_testnode::kubelet::{IMAGE_ENV, KUBELET_VERSION_ENV};
use kharden_testnode::{
    write_node, write_worker_node, KubeletNodeOptions, NodeOptions, NodePorts,
    DEFAULT_KUBERNETES_VERSION,
};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kharden-testnode"))
}

#[test]
fn manifests_carry_the_node_version_and_an_upgrade_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let node = write_node(
        dir.path(),
        NodePorts::free(),
        &NodeOptions {
            kubernetes_version: "v1.33.2".into(),
            image_tags: vec![("kube-scheduler".into(), "v1.32.5".into())],
            ..NodeOptions::default()
        },
    )
    .unwrap();
    let read = |p: &Option<PathBuf>| std::fs::read_to_string(p.as_ref().unwrap()).unwrap();
    assert!(
        read(&node.apiserver_manifest).contains("image: registry.k8s.io/kube-apiserver:v1.33.2\n")
    );
    assert!(read(&node.controller_manager_manifest)
        .contains("image: registry.k8s.io/kube-controller-manager:v1.33.2\n"));
    assert!(
        read(&node.scheduler_manifest).contains("image: registry.k8s.io/kube-scheduler:v1.32.5\n")
    );
    assert_eq!(node.image_tag("kube-scheduler"), "v1.32.5");
    assert_eq!(node.image_tag("kube-apiserver"), "v1.33.2");
    // Unless told otherwise, what the node always had.
    let d2 = tempfile::tempdir().unwrap();
    let n2 = write_node(d2.path(), NodePorts::free(), &NodeOptions::default()).unwrap();
    assert!(std::fs::read_to_string(n2.apiserver_manifest.unwrap())
        .unwrap()
        .contains(&format!("kube-apiserver:{DEFAULT_KUBERNETES_VERSION}\n")));
    // Owners have names, as on a real node.
    let passwd = std::fs::read_to_string(dir.path().join("etc/passwd")).unwrap();
    assert!(passwd.starts_with("root:x:0:0:"));
    let group = std::fs::read_to_string(dir.path().join("etc/group")).unwrap();
    assert!(group.starts_with("root:x:0:"));
    let w = tempfile::tempdir().unwrap();
    write_worker_node(w.path(), &KubeletNodeOptions::default()).unwrap();
    assert!(w.path().join("etc/passwd").is_file() && w.path().join("etc/group").is_file());
}

#[test]
fn the_kubelet_emulator_answers_version_before_loading_anything() {
    let out = Command::new(exe())
        .arg0("kubelet")
        .arg("--version")
        .env(KUBELET_VERSION_ENV, "v1.27.9")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Kubernetes v1.27.9\n");
    let out = Command::new(exe())
        .arg0("kubelet")
        .arg("--version")
        .env_remove(KUBELET_VERSION_ENV)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("Kubernetes {DEFAULT_KUBERNETES_VERSION}\n")
    );
}

#[test]
fn the_fake_api_server_reports_the_tag_of_its_image() {
    let out = Command::new(exe())
        .arg0("kube-apiserver")
        .arg("--version")
        .env(IMAGE_ENV, "registry.k8s.io/kube-apiserver:v1.31.7")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Kubernetes v1.31.7\n");
    // In this process: GET /version over TLS, anonymous allowed.
    std::env::set_var(
        IMAGE_ENV,
        "registry.k8s.io/kube-apiserver:v1.34.0@sha256:00",
    );
    assert_eq!(served_version(), "v1.34.0");
    let (cert, key) = kharden_testnode::pki::self_signed_pem(&["localhost", "127.0.0.1"]).unwrap();
    let server = HealthServer::start(HealthServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        cert_pem: cert.into_bytes(),
        key_pem: key.into_bytes(),
        client_ca_pem: None,
        anonymous_auth: true,
        health_status: 200,
    })
    .unwrap();
    let target = ProbeTarget {
        scheme: Scheme::Https,
        host: "127.0.0.1".into(),
        port: server.local_addr().port(),
        path: "/version".into(),
    };
    let out = probe_with(
        &target,
        &TlsSettings::default(),
        Duration::from_secs(5),
        false,
    );
    assert!(out.class.is_healthy(), "{out:?}");
    assert!(
        out.detail.contains("\"gitVersion\": \"v1.34.0\"")
            && out.detail.contains("\"minor\": \"34\""),
        "{}",
        out.detail
    );
}
