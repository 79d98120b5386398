//! The crash suite: kill `kharden apply` (and then `kharden recover`) at every failpoint with
//! SIGKILL, recover, and check DESIGN.md's invariants 1-6. Needs `--features failpoints`.
#![cfg(feature = "failpoints")]
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
use std::os::unix::process::ExitStatusExt;

/// Run a command with `KHARDEN_CRASH_AT=n`; returns whether it was killed at the point.
fn run_crashing(mut cmd: assert_cmd::Command, n: usize) -> bool {
    let out = cmd.env("KHARDEN_CRASH_AT", n.to_string()).output().unwrap();
    match out.status.signal() {
        Some(9) => true,
        Some(s) => panic!("killed by unexpected signal {s}"),
        None => {
            assert!(
                out.status.code() == Some(0),
                "crash point {n}: exited {:?}: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
            false
        }
    }
}

/// `kharden apply --set profiling=false --no-gate`, killed at the failpoint `point`.
fn apply_killed_at(node: &Node, point: &str) {
    let out = node
        .kharden()
        .args([
            "apply",
            path_str(&node.manifest),
            "--set",
            "profiling=false",
            "--no-gate",
        ])
        .env("KHARDEN_CRASH_AT", point)
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9), "not killed at {point}");
}

/// DESIGN.md invariants after recovery.
fn check_invariants(node: &Node, before: &[u8], after: &[u8], what: &str) {
    let now = node.read();
    // 1: byte-identical to one side, never partial.
    assert!(
        now == before || now == after,
        "{what}: file is neither before nor after ({} bytes)",
        now.len()
    );
    // 2: a committed transaction leaves the after-state.
    let log = node.log();
    for t in log["transactions"].as_array().unwrap() {
        let st = t["state"].as_str().unwrap();
        // no open transaction after recovery
        assert!(
            ["committed", "rolled-back", "aborted"].contains(&st),
            "{what}: transaction {} left {st}",
            t["txid"]
        );
        if st == "committed" && t["kind"] == "apply" {
            assert_eq!(now, after, "{what}: committed but the file is not at after");
        }
    }
    // 4: no stray file kubelet would load, no temp file left.
    assert_eq!(
        node.manifest_dir_entries(),
        vec!["kube-apiserver.yaml".to_string()],
        "{what}"
    );
    // 6: mode and owner kept.
    node.assert_meta_kept();
    // The journal is consistent.
    node.kharden()
        .args(["journal", "verify"])
        .assert()
        .success();
}

#[test]
fn kill_apply_at_every_failpoint_then_recover() {
    let after = edited(APISERVER, &profiling_false());
    let mut n = 1;
    loop {
        let node = Node::new();
        let mut cmd = node.kharden();
        cmd.args([
            "apply",
            path_str(&node.manifest),
            "--set",
            "profiling=false",
            "--no-gate",
        ]);
        let crashed = run_crashing(cmd, n);
        if !crashed {
            // Past the last point: the uncrashed run committed.
            assert_eq!(node.read(), after);
            check_invariants(&node, APISERVER, &after, "no crash");
            assert!(n > 10, "too few failpoints hit ({n})");
            break;
        }
        node.kharden().arg("recover").assert().success();
        check_invariants(
            &node,
            APISERVER,
            &after,
            &format!("apply killed at point {n}"),
        );
        // Recovering again changes nothing.
        let snapshot = node.read();
        node.kharden()
            .arg("recover")
            .assert()
            .success()
            .stdout(predicates::str::contains("nothing to recover"));
        assert_eq!(node.read(), snapshot);
        n += 1;
    }
}

#[test]
fn kill_recover_at_every_failpoint_then_recover_again() {
    let after = edited(APISERVER, &profiling_false());
    // Crash apply right after the rename (the file holds the after side, gate never passed).
    let mut m = 1;
    loop {
        let node = Node::new();
        apply_killed_at(&node, "durable.replace.renamed");
        assert_eq!(node.read(), after);
        let mut rc = node.kharden();
        rc.arg("recover");
        let crashed = run_crashing(rc, m);
        node.kharden().arg("recover").assert().success();
        check_invariants(
            &node,
            APISERVER,
            &after,
            &format!("recover killed at point {m}"),
        );
        assert_eq!(node.read(), APISERVER, "revert policy restores before");
        if !crashed {
            assert!(m > 3, "too few recovery failpoints ({m})");
            break;
        }
        m += 1;
    }
}

/// A rollback killed right after its rename leaves the before side in the page cache only (the
/// directory was not fsync'd). The next `recover` finds the file already at before: it must make
/// that durable (fsync the file and the directory) before it journals RolledBack, or a power
/// cut after it can bring the after side back under a journal that says otherwise (the core
/// bug the power-loss VOPR found, seeds 1359 and 1964).
#[test]
fn recovery_syncs_a_state_it_found_before_journaling_it() {
    let node = Node::new();
    apply_killed_at(&node, "durable.replace.renamed");
    // First recovery: killed right after the restore's rename.
    let out = node
        .kharden()
        .arg("recover")
        .env("KHARDEN_CRASH_AT", "durable.replace.renamed")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9));
    assert_eq!(node.read(), APISERVER, "the restore was renamed in");
    // Second recovery: finds before, syncs it, then records the end of the rollback.
    let out = node
        .kharden()
        .arg("recover")
        .env("KHARDEN_FAILPOINT_TRACE", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
    let trace = String::from_utf8_lossy(&out.stderr);
    let pos = |name: &str| {
        trace
            .lines()
            .position(|l| l.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("no failpoint {name} in:\n{trace}"))
    };
    assert!(
        pos("durable.sync.done") < pos("journal.state.rolled-back.before"),
        "RolledBack journaled before the found state was synced:\n{trace}"
    );
    assert!(
        !trace.contains("durable.replace.before_create"),
        "the file was already at before: synced, not rewritten:\n{trace}"
    );
    check_invariants(&node, APISERVER, &edited(APISERVER, &profiling_false()), "");
}

#[test]
fn a_file_edited_behind_our_back_is_a_conflict_and_untouched() {
    let node = Node::new();
    apply_killed_at(&node, "durable.replace.dir_synced");
    let hand = b"# edited by an operator during the outage\n".to_vec();
    std::fs::write(&node.manifest, &hand).unwrap();
    node.kharden()
        .arg("recover")
        .assert()
        .code(6)
        .stdout(predicates::str::contains("CONFLICT"));
    assert_eq!(node.read(), hand, "a conflicting file is never overwritten");
    // Every command that changes files refuses while the conflict stands.
    node.kharden()
        .args([
            "apply",
            path_str(&node.manifest),
            "--set",
            "profiling=true",
            "--no-gate",
        ])
        .assert()
        .code(6);
    assert_eq!(node.read(), hand);
    let show = node
        .kharden()
        .args(["journal", "show", "1"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&show.stdout).contains("conflict"));
    // --force restores the before side.
    node.kharden()
        .args(["recover", "--force"])
        .assert()
        .success();
    assert_eq!(node.read(), APISERVER);
}

#[test]
fn kill_a_two_file_harden_at_every_failpoint_then_recover() {
    // 3.2.1 creates /etc/kubernetes/audit-policy.yaml and edits the manifest in one
    // transaction: after any crash and recovery both are on the same side.
    let policy_rel = "etc/kubernetes/audit-policy.yaml";
    let mut n = 1;
    let mut sides = std::collections::BTreeSet::new();
    loop {
        let node = Node::new();
        let policy = node.dir.path().join(policy_rel);
        let mut cmd = node.kharden();
        cmd.args(["harden", "--no-gate", "--batch", "--only", "3.2.1,1.2.15"]);
        let crashed = run_crashing(cmd, n);
        if crashed {
            node.kharden().arg("recover").assert().success();
        }
        let manifest = node.read();
        let at_before = manifest == APISERVER;
        let policy_there = policy.exists();
        assert_eq!(
            at_before, !policy_there,
            "point {n}: manifest before={at_before} but policy file present={policy_there}"
        );
        if policy_there {
            let text = String::from_utf8_lossy(&manifest);
            assert!(
                text.contains("--audit-policy-file=/etc/kubernetes/audit-policy.yaml")
                    && text.contains("--profiling=false")
            );
            assert!(!std::fs::read(&policy).unwrap().is_empty());
        }
        sides.insert(at_before);
        // No temp file anywhere the transaction wrote.
        assert_eq!(
            node.manifest_dir_entries(),
            vec!["kube-apiserver.yaml".to_string()]
        );
        let etc: Vec<String> = std::fs::read_dir(node.dir.path().join("etc/kubernetes"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(etc.is_empty(), "point {n}: temp files left: {etc:?}");
        node.assert_meta_kept();
        node.kharden()
            .args(["journal", "verify"])
            .assert()
            .success();
        assert!(node
            .states()
            .iter()
            .all(|s| s == "committed" || s == "rolled-back" || s == "aborted"));
        if !crashed {
            assert!(n > 20, "too few failpoints ({n})");
            break;
        }
        n += 1;
    }
    assert_eq!(sides.len(), 2, "both outcomes were reached");
}

/// Issue 11, item 6: a kill (or a power cut) while the first apply creates the journal used to
/// leave a `journal.redb` redb could not open ("magic number mismatch"), and every later
/// command failed on that node. The journal is now built under a temp name and renamed in:
/// killed at any point of its creation, the next apply works and recovery finds nothing
/// broken.
#[test]
fn the_first_apply_killed_while_creating_the_journal_leaves_a_node_that_works() {
    let points = [
        "journal.create.before",
        "journal.create.built",
        "journal.create.renamed",
        "journal.create.after",
    ];
    for point in points {
        let node = Node::new();
        assert!(!node.state.exists());
        apply_killed_at(&node, point);
        assert_eq!(node.read(), APISERVER, "{point}: nothing applied yet");
        let out = node.kharden().arg("recover").output().unwrap();
        assert!(
            out.status.success(),
            "{point}: recover: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        node.kharden()
            .args([
                "apply",
                path_str(&node.manifest),
                "--set",
                "profiling=false",
                "--no-gate",
            ])
            .assert()
            .success();
        assert_eq!(
            node.read(),
            edited(APISERVER, &profiling_false()),
            "{point}"
        );
        node.kharden()
            .args(["journal", "verify"])
            .assert()
            .success();
        // No leftover of the killed creation.
        let leftovers: Vec<String> = std::fs::read_dir(&node.state)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("creating"))
            .collect();
        assert!(leftovers.is_empty(), "{point}: {leftovers:?}");
    }
}

/// A node with a kubeadm pki tree of 30 files left loose (certificates 0666, keys 0644, all
/// owned by 1000:1000) and the accounts `root` and `kube`.
fn loose_pki(node: &Node) -> Vec<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let etc = node.dir.path().join("etc");
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/sh\nkube:x:1000:1000::/home/kube:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(etc.join("group"), "root:x:0:\nkube:x:1000:\n").unwrap();
    let pki = etc.join("kubernetes/pki");
    std::fs::create_dir_all(pki.join("etcd")).unwrap();
    let mut files = Vec::new();
    for i in 0..15 {
        let dir = if i % 3 == 0 {
            pki.join("etcd")
        } else {
            pki.clone()
        };
        for (ext, mode) in [("crt", 0o666), ("key", 0o644)] {
            let p = dir.join(format!("c{i}.{ext}"));
            std::fs::write(&p, format!("-----BEGIN {ext} {i}-----\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            std::os::unix::fs::chown(&p, Some(1000), Some(1000)).unwrap();
            files.push(p);
        }
    }
    files
}

/// Every pki file's (mode, uid, gid), in order.
fn metas(files: &[std::path::PathBuf]) -> Vec<(u32, u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    files
        .iter()
        .map(|p| {
            let m = std::fs::symlink_metadata(p).unwrap();
            (m.mode() & 0o7777, m.uid(), m.gid())
        })
        .collect()
}

/// Issue 13: a metadata transaction over 30 files (1.1.19 owner of the pki tree, 1.1.20 and
/// 1.1.21 the modes of its certificates and keys), killed at every failpoint and recovered:
/// every file is entirely on one side (mode and owner together), all files on the same side,
/// contents and every other file untouched.
#[test]
fn kill_a_30_file_metadata_harden_at_every_failpoint_then_recover() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("needs root (chown); CI runs as root");
        return;
    }
    let mut n = 1;
    let mut sides = std::collections::BTreeSet::new();
    loop {
        let node = Node::new();
        let files = loose_pki(&node);
        let before = metas(&files);
        let contents: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
        let mut cmd = node.kharden();
        cmd.args(["harden", "--no-gate", "--only", "1.1.19,1.1.20,1.1.21"]);
        let crashed = run_crashing(cmd, n);
        if crashed {
            node.kharden().arg("recover").assert().success();
        }
        let now = metas(&files);
        let after: Vec<(u32, u32, u32)> = files
            .iter()
            .map(|p| {
                let key = p.extension().is_some_and(|e| e == "key");
                (if key { 0o600 } else { 0o644 }, 0, 0)
            })
            .collect();
        assert!(
            now == before || now == after,
            "point {n}: files on both sides or neither: {now:?}"
        );
        sides.insert(now == before);
        let again: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
        assert_eq!(again, contents, "point {n}: contents changed");
        assert_eq!(node.read(), APISERVER, "point {n}: the manifest changed");
        node.assert_meta_kept();
        node.kharden()
            .args(["journal", "verify"])
            .assert()
            .success();
        assert!(node
            .states()
            .iter()
            .all(|s| s == "committed" || s == "rolled-back" || s == "aborted"));
        if !crashed {
            assert!(n > 60, "too few failpoints ({n}) for a 30-file transaction");
            break;
        }
        n += 1;
    }
    assert_eq!(sides.len(), 2, "both outcomes were reached");
}
