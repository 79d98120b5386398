//! Command-line tests: the "done when" of the core (apply, journal, unchanged, rollback), the
//! refusals (byte-identical file, a clear message, the journal says why), the lock, and the
//! output formats.

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

fn apply(node: &Node, args: &[&str]) -> assert_cmd::assert::Assert {
    let mut c = node.kharden();
    c.arg("apply").arg(&node.manifest).args(args);
    c.assert()
}

#[test]
fn apply_commits_journal_shows_it_unchanged_twice_and_rollback_restores_bytes() {
    let node = Node::new();
    apply(
        &node,
        &["--set", "profiling=false", "--no-gate", "--no-audit"],
    )
    .success()
    .stdout(predicate::str::contains("+    - --profiling=false"))
    .stdout(predicate::str::contains("transaction 1 committed"));
    let after = node.read();
    assert_eq!(after, edited(APISERVER, &profiling_false()));
    node.assert_meta_kept();

    node.kharden()
        .args(["journal", "log"])
        .assert()
        .success()
        .stdout(predicate::str::contains("1 committed"))
        .stdout(predicate::str::contains("set --profiling=false"));
    node.kharden()
        .args(["journal", "show", "1"])
        .assert()
        .success()
        .stdout(predicate::str::contains("state prepared"))
        .stdout(predicate::str::contains("state committed"))
        .stdout(predicate::str::contains("mode 0640"));
    node.kharden()
        .args(["journal", "diff", "1"])
        .assert()
        .success()
        .stdout(predicate::str::contains("+    - --profiling=false"));
    node.kharden()
        .args(["journal", "verify"])
        .assert()
        .success()
        .stdout(predicate::str::contains("journal OK"));

    // A second identical apply: unchanged, not journaled.
    apply(&node, &["--set", "profiling=false", "--no-gate"])
        .success()
        .stdout(predicate::str::contains("unchanged"));
    assert_eq!(node.states(), vec!["committed"]);

    // Rollback restores the original bytes, as a new transaction.
    node.kharden()
        .args(["rollback", "1", "--no-gate"])
        .assert()
        .success();
    assert_eq!(node.read(), APISERVER);
    node.assert_meta_kept();
    assert_eq!(node.states(), vec!["committed", "committed"]);
    let log = node.log();
    assert_eq!(log["transactions"][0]["kind"], "rollback of 1");
    // Rolling back 1 again: the file no longer holds its after side.
    node.kharden()
        .args(["rollback", "1", "--no-gate"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "no longer holds transaction 1's after-contents",
        ));
    assert_eq!(node.read(), APISERVER);
    assert_eq!(node.manifest_dir_entries(), vec!["kube-apiserver.yaml"]);
}

#[test]
fn dry_run_prints_a_diff_and_journals_nothing() {
    let node = Node::new();
    apply(&node, &["--set", "profiling=false", "--dry-run"])
        .success()
        .stdout(predicate::str::contains("@@"))
        .stdout(predicate::str::contains("+    - --profiling=false"));
    assert_eq!(node.read(), APISERVER);
    assert!(
        !node.state.join("journal.redb").exists(),
        "dry-run created a journal"
    );
}

#[test]
fn json_output_is_one_document() {
    let node = Node::new();
    let out = node
        .kharden()
        .args(["-o", "json", "apply"])
        .arg(&node.manifest)
        .args(["--set", "profiling=false", "--no-gate"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("exactly one JSON document");
    assert_eq!(v["result"], "committed");
    assert_eq!(v["changed"], true);
    assert_eq!(v["txid"], 1);
    let out = node
        .kharden()
        .args(["-o", "json", "journal", "show", "1"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["events"].as_array().unwrap().len() >= 3);
}

/// A refusal: exit 1, the message names the file (and line when there is one), the file is
/// byte-identical, and the journal records why.
fn assert_refused(node: &Node, args: &[&str], message: &str) {
    let before = std::fs::read(&node.manifest).ok();
    let entries = node.manifest_dir_entries();
    apply(node, args)
        .code(1)
        .stderr(predicate::str::contains(message));
    assert_eq!(
        std::fs::read(&node.manifest).ok(),
        before,
        "refused input changed the file"
    );
    assert_eq!(node.manifest_dir_entries(), entries);
    let log = node.log();
    let last = &log["transactions"][0];
    assert_eq!(last["state"], "aborted");
    assert!(
        last["reason"].as_str().unwrap().contains("refused"),
        "{last}"
    );
}

#[test]
fn bad_input_is_refused_byte_identical_and_journaled() {
    let node = Node::new();
    // Invalid YAML.
    std::fs::write(
        &node.manifest,
        b"apiVersion: v1\nkind: Pod\nspec: [unclosed\n",
    )
    .unwrap();
    assert_refused(
        &node,
        &["--set", "profiling=false", "--no-gate"],
        "kube-apiserver.yaml",
    );
    // Invalid UTF-8.
    std::fs::write(&node.manifest, b"kind: Pod\n\xff\xfe\n").unwrap();
    assert_refused(
        &node,
        &["--set", "profiling=false", "--no-gate"],
        "kube-apiserver.yaml",
    );
    // A flag inside a `sh -c` string.
    std::fs::write(
        &node.manifest,
        b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\nspec:\n  containers:\n  - name: kube-apiserver\n    command:\n    - /bin/sh\n    - -c\n    - kube-apiserver --profiling=true\n",
    )
    .unwrap();
    assert_refused(&node, &["--set", "profiling=false", "--no-gate"], "line");
    // A value with a newline.
    std::fs::write(&node.manifest, APISERVER).unwrap();
    assert_refused(
        &node,
        &["--set", "profiling=fal\nse", "--no-gate"],
        "kube-apiserver.yaml",
    );
    // A file too large to be a manifest.
    let mut big = APISERVER.to_vec();
    big.extend(std::iter::repeat_n(b'#', 2 * 1024 * 1024));
    std::fs::write(&node.manifest, &big).unwrap();
    assert_refused(
        &node,
        &["--set", "profiling=false", "--no-gate"],
        "kube-apiserver.yaml",
    );
    std::fs::write(&node.manifest, APISERVER).unwrap();
    // No probe and no --health-url: the gate could not run, so nothing is changed.
    let no_probe: Vec<u8> = String::from_utf8_lossy(APISERVER)
        .replace("livenessProbe:", "x-liveness:")
        .replace("readinessProbe:", "x-readiness:")
        .replace("startupProbe:", "x-startup:")
        .into_bytes();
    std::fs::write(&node.manifest, &no_probe).unwrap();
    assert_refused(
        &node,
        &["--set", "profiling=false"],
        "cannot gate this change",
    );
    std::fs::write(&node.manifest, APISERVER).unwrap();
    node.kharden()
        .args(["journal", "verify"])
        .assert()
        .success();
}

#[test]
fn symlinks_and_non_regular_files_are_refused() {
    let node = Node::new();
    let real = node.dir.path().join("real.yaml");
    std::fs::write(&real, APISERVER).unwrap();
    let link = node.manifests.join("link.yaml");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    node.kharden()
        .arg("apply")
        .arg(&link)
        .args(["--set", "profiling=false", "--no-gate"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("symbolic link"));
    assert_eq!(std::fs::read(&real).unwrap(), APISERVER);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let dir = node.manifests.join("dir.yaml");
    std::fs::create_dir(&dir).unwrap();
    node.kharden()
        .arg("apply")
        .arg(&dir)
        .args(["--set", "profiling=false", "--no-gate"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not a regular file"));
}

#[test]
fn a_second_kharden_is_refused_while_the_lock_is_held() {
    let node = Node::new();
    std::fs::create_dir_all(&node.state).unwrap();
    std::fs::set_permissions(
        &node.state,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let lock = std::fs::File::create(node.state.join("lock")).unwrap();
    lock.try_lock().unwrap();
    apply(&node, &["--set", "profiling=false", "--no-gate"])
        .code(7)
        .stderr(predicate::str::contains("another kharden is running"));
    assert_eq!(node.read(), APISERVER);
    // With --wait, it proceeds once the holder lets go.
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(700));
        drop(lock);
    });
    node.kharden()
        .args(["--wait", "10", "apply"])
        .arg(&node.manifest)
        .args(["--set", "profiling=false", "--no-gate"])
        .assert()
        .success();
    t.join().unwrap();
    assert_eq!(node.read(), edited(APISERVER, &profiling_false()));
}

#[test]
fn two_concurrent_processes_one_proceeds_one_is_refused() {
    // Two real kharden processes racing for the same node: exactly one commits, the other
    // gets the lock's exit code (7) or, if it ran second, finds the change already made.
    for _ in 0..5 {
        let node = Node::new();
        let spawn = |v: &str| {
            let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("kharden"));
            c.env("KHARDEN_STATE_DIR", &node.state)
                .arg("apply")
                .arg(&node.manifest)
                .args(["--set", &format!("profiling={v}"), "--no-gate"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        };
        let a = spawn("false");
        let b = spawn("true");
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let codes = [a.status.code().unwrap(), b.status.code().unwrap()];
        assert!(codes.iter().all(|c| *c == 0 || *c == 7), "{codes:?}");
        assert!(codes.contains(&0));
        for (o, c) in [(&a, codes[0]), (&b, codes[1])] {
            if c == 7 {
                assert!(String::from_utf8_lossy(&o.stderr).contains("another kharden"));
            }
        }
        let now = node.read();
        let f = edited(APISERVER, &profiling_false());
        let t = edited(
            APISERVER,
            &[kharden_manifest::Change::Set {
                name: "profiling".into(),
                value: Some("true".into()),
            }],
        );
        assert!(now == f || now == t);
        node.kharden()
            .args(["journal", "verify"])
            .assert()
            .success();
        assert!(node.states().iter().all(|s| s == "committed"));
    }
}

#[test]
fn usage_errors_exit_2() {
    let node = Node::new();
    apply(&node, &[]).code(2);
    apply(&node, &["--at-least", "audit-log-maxage=lots"]).code(2);
    node.kharden()
        .args(["journal", "log", "--state", "nonsense"])
        .assert()
        .code(2);
    node.kharden().arg("frobnicate").assert().code(2);
    assert_eq!(node.read(), APISERVER);
}

#[test]
fn edit_prints_the_edited_manifest_and_writes_nothing() {
    let node = Node::new();
    let out = node
        .kharden()
        .arg("edit")
        .arg(&node.manifest)
        .args([
            "--set",
            "profiling=false",
            "--add-item",
            "enable-admission-plugins=EventRateLimit",
            "--set",
            "audit-log-maxage=30",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(node.read(), APISERVER);
    assert!(!node.state.exists(), "edit touched the state dir");
    let diff = similar::TextDiff::from_lines(
        std::str::from_utf8(APISERVER).unwrap(),
        std::str::from_utf8(&out.stdout).unwrap(),
    )
    .unified_diff()
    .to_string();
    insta::assert_snapshot!(diff);
    let out = node
        .kharden()
        .args(["-o", "json", "edit"])
        .arg(&node.manifest)
        .args(["--unset", "profiling"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["changed"], false);
    assert!(v["argv_before"].as_array().unwrap().len() > 10);
}

#[test]
fn json_logs_go_to_stderr_and_stdout_stays_one_document() {
    let node = Node::new();
    let out = node
        .kharden()
        .args(["-o", "json", "-v", "--log-format", "json", "apply"])
        .arg(&node.manifest)
        .args(["--set", "profiling=false", "--no-gate"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(doc["result"], "committed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.iter().any(|l| l.contains("committed")), "{stderr}");
    for l in lines {
        serde_json::from_str::<serde_json::Value>(l)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"));
    }
}

/// A node with no manifests directory (no control plane, no kubelet here): harden has nothing
/// to do and says so with exit 0 (the worker play runs it on every node).
#[test]
fn harden_on_a_node_without_a_manifests_directory_plans_nothing() {
    let node = Node::new();
    std::fs::remove_dir_all(&node.manifests).unwrap();
    let out = node
        .kharden()
        .args(["-o", "json", "harden", "--no-gate"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["steps"], serde_json::json!([]), "{v}");
}
