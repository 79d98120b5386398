//! Issue 11, "Nothing lost, nothing escaped": each defect found by attacking kharden, pinned
//! through the real binary by a test named for what it proves. (Engine-level ones are also in
//! src/txn/tests.rs; the first journal creation is in tests/crash.rs.)

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
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn run(mut c: assert_cmd::Command) -> (i32, String, String) {
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn no_panic(stderr: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "a panic reached the user:\n{stderr}"
    );
}

fn one_json(stdout: &str) -> serde_json::Value {
    let mut it = serde_json::Deserializer::from_str(stdout).into_iter::<serde_json::Value>();
    let doc = it
        .next()
        .unwrap_or_else(|| panic!("no JSON document in {stdout:?}"))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout:?}"));
    assert!(
        it.next().is_none(),
        "more than one JSON document: {stdout:?}"
    );
    doc
}

// 1 ------------------------------------------------------------------------------------

#[test]
fn a_hand_edit_during_the_audit_is_kept_and_the_transaction_needs_manual() {
    let node = Node::new();
    // The audit script edits the manifest by hand, then fails: the rollback must not
    // overwrite the edit.
    let edit = script(
        node.dir.path(),
        "edit.sh",
        &format!(
            "#!/bin/sh\nprintf '# hand edit\\n' >> {}\nexit 1\n",
            node.manifest.display()
        ),
    );
    let (code, out, err) = run({
        let mut c = node.kharden();
        c.arg("apply").arg(&node.manifest).args([
            "--set",
            "profiling=false",
            "--no-gate",
            "--audit-script",
        ]);
        c.arg(&edit);
        c
    });
    no_panic(&err);
    assert_eq!(code, 5, "{out}\n{err}");
    assert!(err.contains("matched neither"), "{err}");
    let now = node.read();
    assert!(now.ends_with(b"# hand edit\n"), "the hand edit is kept");
    let log = node.log();
    assert_eq!(log["transactions"][0]["state"], "needs-manual");
    let show = run({
        let mut c = node.kharden();
        c.args(["-o", "json", "journal", "show", "1"]);
        c
    });
    let doc = one_json(&show.1);
    let conflict = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"]["Conflict"].is_object())
        .expect("a conflict event");
    assert_eq!(
        conflict["kind"]["Conflict"]["found"]
            .as_array()
            .unwrap()
            .len(),
        32,
        "the hand edit's hash, its contents kept as a blob"
    );
}

#[test]
fn force_lets_the_rollback_restore_over_a_hand_edit() {
    let node = Node::new();
    let edit = script(
        node.dir.path(),
        "edit.sh",
        &format!(
            "#!/bin/sh\nprintf '# hand edit\\n' >> {}\nexit 1\n",
            node.manifest.display()
        ),
    );
    let (code, out, err) = run({
        let mut c = node.kharden();
        c.arg("apply").arg(&node.manifest).args([
            "--set",
            "profiling=false",
            "--no-gate",
            "--force",
            "--audit-script",
        ]);
        c.arg(&edit);
        c
    });
    assert_eq!(code, 4, "{out}\n{err}");
    assert_eq!(node.read(), APISERVER);
}

// 2 ------------------------------------------------------------------------------------

#[test]
fn root_symlinks_never_lead_harden_outside_the_root() {
    for (name, absolute) in [("absolute", true), ("relative", false)] {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let elsewhere = d.path().join("elsewhere");
        let m = elsewhere.join("etc/kubernetes/manifests");
        std::fs::create_dir_all(&m).unwrap();
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(m.join("kube-apiserver.yaml"), APISERVER).unwrap();
        let target = if absolute {
            elsewhere.join("etc")
        } else {
            Path::new("../elsewhere/etc").to_path_buf()
        };
        std::os::unix::fs::symlink(&target, root.join("etc")).unwrap();
        let out = Command::new(assert_cmd::cargo::cargo_bin("kharden"))
            .arg("--root")
            .arg(&root)
            .arg("--state-dir")
            .arg(d.path().join("state"))
            .args(["harden", "--no-gate"])
            .output()
            .unwrap();
        no_panic(&String::from_utf8_lossy(&out.stderr));
        assert!(
            std::fs::read(m.join("kube-apiserver.yaml")).unwrap() == APISERVER,
            "{name} link: the file outside the root was changed"
        );
        let names: Vec<_> = std::fs::read_dir(&m).unwrap().collect();
        assert_eq!(names.len(), 1, "{name}: nothing written beside it");
    }
}

// 3 ------------------------------------------------------------------------------------

/// `apply` whose audit script waits: a signal arrives while it runs.
fn apply_with_waiting_audit(node: &Node) -> (std::process::Child, std::path::PathBuf) {
    let started = node.dir.path().join("audit-started");
    let audit = script(
        node.dir.path(),
        "wait.sh",
        &format!("#!/bin/sh\ntouch {}\nexec sleep 60\n", started.display()),
    );
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("kharden"));
    c.env("KHARDEN_STATE_DIR", &node.state)
        .env("KHARDEN_ROOT", node.dir.path())
        .arg("apply")
        .arg(&node.manifest)
        .args(["--set", "profiling=false", "--no-gate", "--audit-script"])
        .arg(&audit)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    let t0 = Instant::now();
    while !started.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the audit never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, started)
}

#[test]
fn sigterm_during_the_audit_rolls_back_and_exits_9() {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        let node = Node::new();
        let (child, _) = apply_with_waiting_audit(&node);
        assert_ne!(node.read(), APISERVER, "the change is written");
        unsafe { libc::kill(child.id() as i32, sig) };
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(9), "signal {sig}: {err}");
        assert!(
            err.contains("ROLLED BACK") && err.contains("interrupted"),
            "{err}"
        );
        assert!(
            err.contains("no gate ran"),
            "says exactly what was verified: {err}"
        );
        assert_eq!(node.read(), APISERVER, "signal {sig}: restored");
        let log = node.log();
        assert_eq!(log["transactions"][0]["state"], "rolled-back");
        assert_eq!(log["transactions"][0]["rollback_cause"], "Interrupted");
    }
}

// 4: see kharden-powerloss (tests/journal_enospc.rs): the journal runs out of space after
// the write, on the simulated disk where ENOSPC can be injected exactly there.

// 5 ------------------------------------------------------------------------------------

#[test]
fn a_corrupted_journal_is_a_fault_with_exit_8_never_a_panic() {
    for (what, damage) in [
        ("garbage", b"this is not a database".repeat(100)),
        ("truncated", Vec::new()),
        ("cut", b"redb".to_vec()),
    ] {
        let node = Node::new();
        // A real journal first.
        let (code, ..) = run({
            let mut c = node.kharden();
            c.arg("apply")
                .arg(&node.manifest)
                .args(["--set", "profiling=false", "--no-gate"]);
            c
        });
        assert_eq!(code, 0);
        let db = node.state.join("journal.redb");
        let damaged = if what == "cut" {
            let mut b = std::fs::read(&db).unwrap();
            b.truncate(4096);
            b
        } else {
            damage.clone()
        };
        std::fs::write(&db, &damaged).unwrap();
        let before = node.read();
        for args in [
            vec!["journal", "verify"],
            vec!["journal", "log"],
            vec!["recover"],
        ] {
            let (code, out, err) = run({
                let mut c = node.kharden();
                c.args(["-o", "json"]).args(&args);
                c
            });
            no_panic(&err);
            assert_eq!(code, 8, "{what} {args:?}: {out}\n{err}");
            assert_eq!(one_json(&out)["exit_code"], 8);
        }
        let (code, out, err) = run({
            let mut c = node.kharden();
            c.arg("apply")
                .arg(&node.manifest)
                .args(["--set", "profiling=true", "--no-gate"]);
            c
        });
        no_panic(&err);
        assert_eq!(code, 8, "{what}: {out}\n{err}");
        assert!(err.contains("move it aside"), "says how to get out: {err}");
        assert_eq!(node.read(), before, "{what}: nothing changed");
        assert_eq!(
            std::fs::read(&db).unwrap(),
            damaged,
            "{what}: journal untouched"
        );
    }
}

// 7 ------------------------------------------------------------------------------------

#[test]
fn inspection_never_creates_a_journal_and_a_lost_one_is_a_fault() {
    let node = Node::new();
    // Nothing here yet: nothing to verify, nothing created.
    let (code, out, _) = run({
        let mut c = node.kharden();
        c.args(["journal", "verify"]);
        c
    });
    assert_eq!(code, 0, "{out}");
    assert!(!node.state.join("journal.redb").exists());
    // A journal that existed and is gone.
    let (code, ..) = run({
        let mut c = node.kharden();
        c.arg("apply")
            .arg(&node.manifest)
            .args(["--set", "profiling=false", "--no-gate"]);
        c
    });
    assert_eq!(code, 0);
    std::fs::remove_file(node.state.join("journal.redb")).unwrap();
    for args in [
        vec!["journal", "verify"],
        vec!["journal", "log"],
        vec!["recover"],
    ] {
        let (code, out, err) = run({
            let mut c = node.kharden();
            c.args(&args);
            c
        });
        assert_eq!(code, 8, "{args:?}: {out}\n{err}");
        assert!(err.contains("missing"), "{err}");
        assert!(!node.state.join("journal.redb").exists(), "not re-created");
    }
    // A zero-length journal is not "OK" either.
    std::fs::write(node.state.join("journal.redb"), b"").unwrap();
    std::fs::set_permissions(
        node.state.join("journal.redb"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let (code, _, err) = run({
        let mut c = node.kharden();
        c.args(["journal", "verify"]);
        c
    });
    assert_eq!(code, 8, "{err}");
    assert_eq!(std::fs::read(node.state.join("journal.redb")).unwrap(), b"");
}

// 9 ------------------------------------------------------------------------------------

#[test]
fn a_closed_pipe_ends_the_output_and_a_full_disk_is_reported_with_the_real_outcome() {
    let node = Node::new();
    // `| head -0`: the reader is gone before kharden writes.
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("kharden"))
        .env("KHARDEN_STATE_DIR", &node.state)
        .env("KHARDEN_ROOT", node.dir.path())
        .arg("apply")
        .arg(&node.manifest)
        .args(["--set", "profiling=false", "--no-gate"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    no_panic(&err);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(node.states(), vec!["committed"]);
    // stdout on a full disk: the transaction's outcome and code, on stderr.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(assert_cmd::cargo::cargo_bin("kharden"))
        .env("KHARDEN_STATE_DIR", &node.state)
        .env("KHARDEN_ROOT", node.dir.path())
        .arg("apply")
        .arg(&node.manifest)
        .args(["--set", "profiling=true", "--no-gate"])
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    no_panic(&err);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("could not write the result") && err.contains("committed"),
        "{err}"
    );
}

// 10 -----------------------------------------------------------------------------------

#[test]
fn json_output_is_one_document_even_for_usage_errors() {
    let node = Node::new();
    for args in [
        vec!["-o", "json", "apply", "--bogus"],
        vec!["-o", "json", "no-such-command"],
        vec![
            "--output=json",
            "apply",
            "x.yaml",
            "--health-timeout",
            "abc",
        ],
        vec!["-ojson", "journal", "show", "not-a-number"],
        vec!["-o", "json", "apply", "x.yaml"],
    ] {
        let (code, out, err) = run({
            let mut c = node.kharden();
            c.args(&args);
            c
        });
        no_panic(&err);
        let doc = one_json(&out);
        assert_eq!(doc["exit_code"], code, "{args:?}");
        assert!(code == 2 || code == 1, "{args:?}: {code}");
    }
    let (code, out, _) = run({
        let mut c = node.kharden();
        c.args(["-o", "json", "--help"]);
        c
    });
    assert_eq!(code, 0);
    assert_eq!(one_json(&out)["result"], "help");
}

// 11 -----------------------------------------------------------------------------------

#[test]
fn durations_and_counts_are_bounded_at_parse_time() {
    let node = Node::new();
    for bad in [
        vec!["--health-timeout", "18446744073709551615"],
        vec!["--health-timeout", "0"],
        vec!["--health-timeout", "86401"],
        vec!["--stable-for", "100000"],
        vec!["--audit-timeout", "0"],
        vec!["--health-timeout", "5", "--stable-for", "10"],
    ] {
        let (code, out, err) = run({
            let mut c = node.kharden();
            c.arg("apply")
                .arg(&node.manifest)
                .args(["--set", "profiling=false"])
                .args(&bad);
            c
        });
        no_panic(&err);
        assert_eq!(code, 2, "{bad:?}: {out}\n{err}");
        assert_eq!(node.read(), APISERVER);
    }
    let (code, _, err) = run({
        let mut c = node.kharden();
        c.args(["--wait", "99999999999", "journal", "log"]);
        c
    });
    no_panic(&err);
    assert_eq!(code, 2);
}

// 12 -----------------------------------------------------------------------------------

#[test]
fn an_edit_whose_result_is_over_the_size_limit_is_refused() {
    let node = Node::new();
    let v = "x".repeat(120 * 1024);
    let mut c = node.kharden();
    c.arg("apply").arg(&node.manifest);
    for i in 0..9 {
        c.arg("--set").arg(format!("big-{i}={v}"));
    }
    c.arg("--no-gate");
    let (code, out, err) = run(c);
    no_panic(&err);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("limit"), "{err}");
    assert_eq!(node.read(), APISERVER);
}

#[test]
fn a_manifest_with_many_repeated_flags_is_edited_or_refused_promptly() {
    // 69,000 repeated flags used to take 12-14 s (quadratic: every removed item looked up in
    // the list of all ops). The editor is linear now; how fast is measured in the editor's
    // benchmark (crates/manifest/benches/edit.rs), not asserted here.
    let node = Node::new();
    let text = String::from_utf8(APISERVER.to_vec()).unwrap();
    let mut many = String::new();
    for _ in 0..69_000 {
        many.push_str("    - --v=2\n");
    }
    let text = text.replacen(
        "    - --advertise-address=",
        &format!("{many}    - --advertise-address="),
        1,
    );
    std::fs::write(&node.manifest, &text).unwrap();
    // Setting the repeated flag consolidates its 69,000 occurrences into one.
    let (code, out, err) = run({
        let mut c = node.kharden();
        c.arg("edit").arg(&node.manifest).args(["--set", "v=3"]);
        c
    });
    no_panic(&err);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("--v=").count(), 1);
    assert!(out.contains("    - --v=3\n"));
}

// 13 -----------------------------------------------------------------------------------

#[test]
fn a_state_dir_inside_a_manifests_dir_is_refused() {
    let node = Node::new();
    for state in [
        node.manifests.clone(),
        node.manifests.join("kharden"),
        node.manifests.join("a/b"),
    ] {
        let (code, out, err) = run({
            let mut c = node.kharden();
            c.arg("--state-dir")
                .arg(&state)
                .arg("apply")
                .arg(&node.manifest)
                .args(["--set", "profiling=false", "--no-gate"]);
            c
        });
        assert_eq!(code, 2, "{state:?}: {out}\n{err}");
        assert!(err.contains("manifests directory"), "{err}");
        assert_eq!(node.manifest_dir_entries(), vec!["kube-apiserver.yaml"]);
        assert_eq!(node.read(), APISERVER);
    }
}

// 14 -----------------------------------------------------------------------------------

#[test]
fn a_journal_that_is_a_symlink_or_not_private_is_refused() {
    let node = Node::new();
    let (code, ..) = run({
        let mut c = node.kharden();
        c.arg("apply")
            .arg(&node.manifest)
            .args(["--set", "profiling=false", "--no-gate"]);
        c
    });
    assert_eq!(code, 0);
    let db = node.state.join("journal.redb");
    // Group- or world-readable.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = run({
        let mut c = node.kharden();
        c.args(["journal", "log"]);
        c
    });
    assert_eq!(code, 8, "{err}");
    assert!(err.contains("chmod 0600"), "{err}");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A symbolic link to a journal elsewhere.
    let elsewhere = node.dir.path().join("other.redb");
    std::fs::rename(&db, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &db).unwrap();
    let (code, _, err) = run({
        let mut c = node.kharden();
        c.arg("apply")
            .arg(&node.manifest)
            .args(["--set", "profiling=true", "--no-gate"]);
        c
    });
    assert_eq!(code, 8, "{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert_ne!(node.read(), APISERVER, "still the first apply's result");
    if nix::unistd::geteuid().is_root() {
        std::fs::remove_file(&db).unwrap();
        std::fs::rename(&elsewhere, &db).unwrap();
        std::os::unix::fs::chown(&db, Some(1000), None).unwrap();
        let (code, _, err) = run({
            let mut c = node.kharden();
            c.args(["journal", "log"]);
            c
        });
        assert_eq!(code, 8, "{err}");
        assert!(err.contains("owned by uid 1000"), "{err}");
    }
}

// 15 -----------------------------------------------------------------------------------

#[test]
fn a_hard_linked_manifest_is_refused_unless_split_hardlinks() {
    let node = Node::new();
    let other = node.dir.path().join("other-name.yaml");
    std::fs::hard_link(&node.manifest, &other).unwrap();
    let (code, _, err) = run({
        let mut c = node.kharden();
        c.arg("apply")
            .arg(&node.manifest)
            .args(["--set", "profiling=false", "--no-gate"]);
        c
    });
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("hard links") && err.contains("--split-hardlinks"),
        "{err}"
    );
    assert_eq!(node.read(), APISERVER);
    assert_eq!(
        node.log()["transactions"][0]["state"],
        "aborted",
        "journaled"
    );
    let (code, _, err) = run({
        let mut c = node.kharden();
        c.arg("apply").arg(&node.manifest).args([
            "--set",
            "profiling=false",
            "--no-gate",
            "--split-hardlinks",
        ]);
        c
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read(&other).unwrap(),
        APISERVER,
        "the other name kept"
    );
}

// 16 -----------------------------------------------------------------------------------

#[test]
fn a_stale_temp_file_is_neither_used_nor_removed() {
    let node = Node::new();
    for stale in [
        ".kube-apiserver.yaml.kharden-1",
        ".kube-apiserver.yaml.kharden-1-0000000000000001-0",
    ] {
        std::fs::write(node.manifests.join(stale), b"someone else's").unwrap();
    }
    let (code, _, err) = run({
        let mut c = node.kharden();
        c.arg("apply")
            .arg(&node.manifest)
            .args(["--set", "profiling=false", "--no-gate"]);
        c
    });
    assert_eq!(code, 0, "{err}");
    assert_ne!(node.read(), APISERVER);
    let (code, ..) = run({
        let mut c = node.kharden();
        c.arg("recover");
        c
    });
    assert_eq!(code, 0);
    for stale in [
        ".kube-apiserver.yaml.kharden-1",
        ".kube-apiserver.yaml.kharden-1-0000000000000001-0",
    ] {
        assert_eq!(
            std::fs::read(node.manifests.join(stale)).unwrap(),
            b"someone else's",
            "{stale} kept"
        );
    }
}

// 17 -----------------------------------------------------------------------------------

#[test]
fn a_missing_or_non_executable_audit_script_is_refused_before_any_change() {
    let node = Node::new();
    let not_exec = node.dir.path().join("check.sh");
    std::fs::write(&not_exec, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&not_exec, std::fs::Permissions::from_mode(0o644)).unwrap();
    for (script, why) in [
        (node.dir.path().join("missing.sh"), "No such file"),
        (not_exec, "not executable"),
    ] {
        let (code, _, err) = run({
            let mut c = node.kharden();
            c.arg("apply")
                .arg(&node.manifest)
                .args(["--set", "profiling=false", "--no-gate", "--audit-script"])
                .arg(&script);
            c
        });
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(why), "{err}");
        assert_eq!(node.read(), APISERVER, "nothing written");
    }
    let states = node.states();
    assert!(
        states.iter().all(|s| s == "aborted"),
        "refusals journaled: {states:?}"
    );
}

// 18 -----------------------------------------------------------------------------------

#[test]
fn harden_goes_on_past_a_refused_edit_and_exits_non_zero() {
    // A pod written with a flow-style volume list: a control that needs a mount cannot be
    // edited (the editor refuses flow lists); the other controls are still fixed.
    let node = Node::new();
    let text = String::from_utf8(APISERVER.to_vec()).unwrap().replacen(
        "  volumes:\n",
        "  volumes: []\n  oldvolumes:\n",
        1,
    );
    std::fs::write(&node.manifest, &text).unwrap();
    let (code, out, err) = run({
        let mut c = node.kharden();
        c.args(["-o", "json", "harden", "--no-gate", "--no-audit"]);
        c
    });
    no_panic(&err);
    let doc = one_json(&out);
    let steps = doc["steps"].as_array().unwrap();
    assert!(
        steps.iter().any(|s| s["result"] == "blocked"),
        "a refused control is reported: {doc}"
    );
    assert!(
        steps.iter().any(|s| s["result"] == "fixed"),
        "the others are fixed: {doc}"
    );
    assert_ne!(code, 0, "{err}");
}

// 19 -----------------------------------------------------------------------------------

#[test]
fn a_rollback_after_no_gate_says_no_health_was_checked() {
    let node = Node::new();
    let fail = script(node.dir.path(), "fail.sh", "#!/bin/sh\nexit 1\n");
    let (code, out, err) = run({
        let mut c = node.kharden();
        c.arg("apply")
            .arg(&node.manifest)
            .args(["--set", "profiling=false", "--no-gate", "--audit-script"])
            .arg(&fail);
        c
    });
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(!err.contains("healthy"), "{err}");
    assert!(err.contains("its health was not checked"), "{err}");
}
