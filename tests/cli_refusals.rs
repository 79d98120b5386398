//! The exact words of refusals (issue 12, item 6): DESIGN.md requires every refusal to name the
//! file, the line and the reason, so the whole of what an operator sees is pinned: the exit
//! code, stdout and stderr, with the temp directory written `$NODE`. Each case also checks
//! that the refusal changed nothing (the manifest byte-identical, no temp file left).
//!
//! A snapshot that changes is reviewed with `cargo insta review` (or by reading the `.snap.new`
//! file beside it): a refusal's words are part of the interface.

// Test code: a panic is how it fails, and it writes its fixtures directly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

mod common;

use common::*;

/// Run `args` on `node` and render what the operator sees, paths normalised.
fn seen(node: &Node, args: &[&str]) -> String {
    let before = std::fs::read(&node.manifest).ok();
    let entries = node.manifest_dir_entries();
    let out = node.kharden().args(args).output().unwrap();
    assert_eq!(
        std::fs::read(&node.manifest).ok(),
        before,
        "a refusal changed the manifest"
    );
    assert_eq!(
        node.manifest_dir_entries(),
        entries,
        "a refusal left a file"
    );
    let dir = node.dir.path().to_str().unwrap();
    // The node's path also appears canonicalised (/tmp may be a link on some systems).
    let canon = std::fs::canonicalize(node.dir.path()).unwrap();
    let norm = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .replace(canon.to_str().unwrap(), "$NODE")
            .replace(dir, "$NODE")
    };
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status
            .code()
            .map_or_else(|| "signal".to_string(), |c| c.to_string()),
        norm(&out.stdout),
        norm(&out.stderr)
    )
}

fn manifest(node: &Node) -> String {
    node.manifest.to_str().unwrap().to_string()
}

#[test]
fn refusal_invalid_yaml_names_the_file_and_the_line() {
    let node = Node::new();
    std::fs::write(
        &node.manifest,
        b"apiVersion: v1\nkind: Pod\nspec: [unclosed\n",
    )
    .unwrap();
    let m = manifest(&node);
    insta::assert_snapshot!(seen(
        &node,
        &["apply", &m, "--set", "profiling=false", "--no-gate"]
    ));
}

#[test]
fn refusal_flag_inside_a_shell_string() {
    let node = Node::new();
    std::fs::write(
        &node.manifest,
        b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\nspec:\n  containers:\n  - name: kube-apiserver\n    command:\n    - /bin/sh\n    - -c\n    - kube-apiserver --profiling=true\n",
    )
    .unwrap();
    let m = manifest(&node);
    insta::assert_snapshot!(seen(
        &node,
        &["apply", &m, "--set", "profiling=false", "--no-gate"]
    ));
}

#[test]
fn refusal_value_with_a_newline() {
    let node = Node::new();
    let m = manifest(&node);
    insta::assert_snapshot!(seen(
        &node,
        &["apply", &m, "--set", "profiling=fal\nse", "--no-gate"]
    ));
}

#[test]
fn refusal_a_change_that_cannot_be_gated() {
    let node = Node::new();
    let no_probe: Vec<u8> = String::from_utf8_lossy(APISERVER)
        .replace("livenessProbe:", "x-liveness:")
        .replace("readinessProbe:", "x-readiness:")
        .replace("startupProbe:", "x-startup:")
        .into_bytes();
    std::fs::write(&node.manifest, &no_probe).unwrap();
    let m = manifest(&node);
    insta::assert_snapshot!(seen(&node, &["apply", &m, "--set", "profiling=false"]));
}

#[test]
fn refusal_a_symbolic_link() {
    let node = Node::new();
    let link = node.manifests.join("link.yaml");
    std::os::unix::fs::symlink(&node.manifest, &link).unwrap();
    insta::assert_snapshot!(seen(
        &node,
        &[
            "apply",
            link.to_str().unwrap(),
            "--set",
            "profiling=false",
            "--no-gate"
        ]
    ));
}

#[test]
fn refusal_a_corrupted_journal() {
    let node = Node::new();
    std::fs::create_dir_all(&node.state).unwrap();
    let journal = node.state.join("journal.redb");
    std::fs::write(&journal, vec![0x5a; 8192]).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&node.state, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o600)).unwrap();
    let m = manifest(&node);
    insta::assert_snapshot!(seen(
        &node,
        &["apply", &m, "--set", "profiling=false", "--no-gate"]
    ));
}

#[test]
fn refusal_an_unknown_control() {
    let node = Node::new();
    insta::assert_snapshot!(seen(
        &node,
        &["harden", "--only", "9.9.9", "--benchmark", "cis-1.12"]
    ));
}

#[test]
fn refusal_an_unknown_benchmark() {
    let node = Node::new();
    insta::assert_snapshot!(seen(&node, &["audit", "--benchmark", "cis-0.1"]));
}

#[test]
fn refusal_rollback_of_a_transaction_that_does_not_exist() {
    let node = Node::new();
    insta::assert_snapshot!(seen(&node, &["rollback", "42"]));
}

#[test]
fn refusal_a_journal_open_to_others() {
    let node = Node::new();
    std::fs::create_dir_all(&node.state).unwrap();
    std::fs::write(node.state.join("journal.redb"), b"").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&node.state, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(
        node.state.join("journal.redb"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let m = manifest(&node);
    insta::assert_snapshot!(seen(
        &node,
        &["apply", &m, "--set", "profiling=false", "--no-gate"]
    ));
}

#[test]
fn refusal_a_kubelet_value_of_the_wrong_type() {
    let node = Node::new();
    insta::assert_snapshot!(seen(&node, &["kubelet", "set", "readOnlyPort=none"]));
}

#[test]
fn refusal_a_kubelet_change_without_a_kubelet() {
    let node = Node::new();
    insta::assert_snapshot!(seen(&node, &["kubelet", "set", "readOnlyPort=0"]));
}

#[test]
fn refusal_a_health_url_for_the_kubelet() {
    let node = Node::new();
    insta::assert_snapshot!(seen(
        &node,
        &[
            "kubelet",
            "set",
            "readOnlyPort=0",
            "--health-url",
            "https://127.0.0.1:6443/livez"
        ]
    ));
}

#[test]
fn refusal_a_manifests_directory_that_does_not_exist() {
    let node = Node::new();
    insta::assert_snapshot!(seen(
        &node,
        &[
            "harden",
            "--manifests",
            "/nonexistent/manifests",
            "--dry-run"
        ]
    ));
}
