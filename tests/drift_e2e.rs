//! `kharden drift` end to end on a simulated control-plane node: harden it, then undo the
//! hardening the ways it is undone in production (`kubeadm upgrade` rewriting a manifest from
//! its template with a new image tag, a colleague's hand edit, kharden's own rollback), and check
//! what drift reports (text, JSON, exit code 10, the Prometheus metrics) and that `harden`
//! restores what was undone.
//!
//! The gate is off (`--no-gate --no-audit`): no component runs here; what is tested is the
//! journal's record of committed contents against the files.

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
use kharden_testnode::{write_node, NodeOptions, NodePorts};
use serde_json::Value;
use std::path::{Path, PathBuf};

struct Sim {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Sim {
    fn new() -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("node");
        write_node(&root, NodePorts::free(), &NodeOptions::default()).unwrap();
        Sim { _dir: dir, root }
    }

    fn kharden(&self) -> Command {
        let mut c = Command::cargo_bin("kharden").unwrap();
        c.env("KHARDEN_ROOT", &self.root)
            .env("KHARDEN_STATE_DIR", self.root.join("var/lib/kharden"))
            .env_remove("KHARDEN_CRASH_AT")
            .env_remove("KHARDEN_TESTNODE_KUBELET_VERSION");
        c
    }

    fn apiserver(&self) -> PathBuf {
        self.root
            .join("etc/kubernetes/manifests/kube-apiserver.yaml")
    }

    fn harden(&self) -> Value {
        let out = self
            .kharden()
            .args([
                "-o",
                "json",
                "harden",
                "--no-gate",
                "--no-audit",
                "--benchmark",
                "cis-1.12",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "harden: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `kharden -o json drift`, with its exit code.
    fn drift(&self) -> (i32, Value) {
        let out = self
            .kharden()
            .args(["-o", "json", "drift"])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap(), v)
    }

    fn file<'a>(&self, v: &'a Value, path: &Path) -> &'a Value {
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path.to_str().unwrap())
            .unwrap_or_else(|| panic!("{} not in {v}", path.display()))
    }
}

/// Write `contents` over `path` as kubeadm does (a new file, 0600 as kubeadm writes static pod
/// manifests, renamed into place).
fn rewrite(path: &Path, contents: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_file_name(".kubeadm-upgrade.tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_kubeadm_upgrade_reverts_the_hardening_drift_says_so_and_harden_restores_it() {
    let sim = Sim::new();
    // Nothing committed yet: nothing to report, exit 0.
    let (code, v) = sim.drift();
    assert_eq!(code, 0);
    assert_eq!(v["journal"], false);

    let original = std::fs::read(sim.apiserver()).unwrap();
    let h = sim.harden();
    let fixed: Vec<String> = h["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["result"] == "fixed")
        .flat_map(|s| strings(&s["controls"]))
        .collect();
    assert!(fixed.contains(&"1.2.15".to_string()), "{h}");
    let (code, v) = sim.drift();
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["drifted"], 0);
    let api = sim.file(&v, &sim.apiserver());
    assert_eq!(api["status"], "unchanged");
    assert!(strings(&api["controls"]).contains(&"1.2.15".to_string()));

    // kubeadm upgrade: the manifest from its template again (kharden's flags gone), with the
    // new version's image.
    let upgraded = String::from_utf8(original)
        .unwrap()
        .replace("kube-apiserver:v1.30.0", "kube-apiserver:v1.31.0");
    rewrite(&sim.apiserver(), upgraded.as_bytes());
    let (code, v) = sim.drift();
    assert_eq!(code, 10, "exit code DRIFT: {v}");
    assert_eq!(v["exit_code"], 10);
    let api = sim.file(&v, &sim.apiserver());
    assert_eq!(api["status"], "reverted", "{api}");
    let undone = strings(&api["controls_undone"]);
    assert!(
        undone.contains(&"1.2.15".to_string()) && undone.contains(&"1.2.16".to_string()),
        "{api}"
    );
    assert!(api["undone"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["control"] == "1.2.15" && u["change"] == "set --profiling=false"));
    let diff = api["diff"].as_str().unwrap();
    assert!(diff.contains("-    - --profiling=false"), "{diff}");
    assert!(
        diff.contains("+    image: registry.k8s.io/kube-apiserver:v1.31.0"),
        "{diff}"
    );
    assert_eq!(strings(&v["controls_undone"]), undone);
    // The files kharden wrote beside the manifest are untouched.
    let policy = sim.root.join("etc/kubernetes/audit-policy.yaml");
    assert_eq!(sim.file(&v, &policy)["status"], "unchanged");

    // The text says it, with the diff.
    let out = sim.kharden().arg("drift").output().unwrap();
    assert_eq!(out.status.code(), Some(10));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("kube-apiserver.yaml: REVERTED"), "{text}");
    assert!(
        text.contains("no longer in effect: 1.2.15 (set --profiling=false)"),
        "{text}"
    );
    assert!(text.contains("`kharden harden` re-applies them"), "{text}");

    // The metrics say it too.
    let out = sim
        .kharden()
        .args(["audit", "--format", "prometheus", "--benchmark", "cis-1.12"])
        .output()
        .unwrap();
    let m = String::from_utf8(out.stdout).unwrap();
    assert!(
        m.contains("kharden_drift_files{status=\"reverted\"} 1"),
        "{m}"
    );
    assert!(m.contains(&format!(
        "kharden_drift_file{{path=\"{}\",status=\"reverted\"}} 1",
        sim.apiserver().display()
    )));
    assert!(m.contains(&format!("kharden_drift_controls_undone {}", undone.len())));
    assert!(m.contains("kharden_journal_present 1"));
    assert!(m.contains("kharden_journal_open_transactions 0"));

    // harden restores it, as a new transaction; then nothing has drifted.
    let h = sim.harden();
    let again: Vec<String> = h["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["result"] == "fixed")
        .flat_map(|s| strings(&s["controls"]))
        .collect();
    for id in &undone {
        assert!(again.contains(id), "{id} re-applied: {h}");
    }
    // And it says they were re-applied after drift.
    assert_eq!(strings(&h["reapplied"]), undone, "{h}");
    let after = std::fs::read_to_string(sim.apiserver()).unwrap();
    assert!(after.contains("--profiling=false") && after.contains(":v1.31.0"));
    let (code, v) = sim.drift();
    assert_eq!(code, 0, "{v}");
    assert_eq!(sim.file(&v, &sim.apiserver())["status"], "unchanged");
}

#[test]
fn a_hand_edit_that_keeps_kharden_flags_is_a_change_and_a_rollback_is_taken_into_account() {
    let sim = Sim::new();
    let path = sim
        .root
        .join("etc/kubernetes/manifests/kube-scheduler.yaml");
    // Loosened before harden: its file check (1.1.5) is then one of kharden's changes too.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    sim.harden();
    let hardened = std::fs::read_to_string(&path).unwrap();
    assert!(hardened.contains("--profiling=false"));
    // A colleague raises the log level: kharden's flag still holds.
    let edited = hardened.replace(
        "    - --leader-elect=true\n",
        "    - --leader-elect=true\n    - --v=4\n",
    );
    assert_ne!(edited, hardened);
    rewrite(&path, edited.as_bytes());
    let (code, v) = sim.drift();
    assert_eq!(code, 10);
    let f = sim.file(&v, &path);
    assert_eq!(f["status"], "changed", "{f}");
    assert!(f["controls_undone"].as_array().unwrap().is_empty());
    assert!(f["diff"].as_str().unwrap().contains("+    - --v=4"), "{f}");
    assert!(
        strings(&f["controls"]).contains(&"1.4.1".to_string()),
        "{f}"
    );
    // Mode changed by hand too: tightened further, the file check harden fixed (1.1.5: 600
    // or more restrictive) still holds: a change; loosened, it is undone.
    rewrite(&path, hardened.as_bytes());
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o400)).unwrap();
    let (_, v) = sim.drift();
    let f = sim.file(&v, &path);
    assert_eq!(f["status"], "changed", "{f}");
    assert!(
        f["meta_change"].as_str().unwrap().contains("-> 0400"),
        "{f}"
    );
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let (_, v) = sim.drift();
    let f = sim.file(&v, &path);
    assert_eq!(f["status"], "reverted", "{f}");
    assert_eq!(strings(&f["controls_undone"]), ["1.1.5"], "{f}");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let (code, _) = sim.drift();
    assert_eq!(code, 0);

    // kharden's own rollback of the scheduler's transaction: the file holds the rollback's
    // contents, which is what is expected of it now; its controls are no longer expected.
    let log = sim
        .kharden()
        .args(["-o", "json", "journal", "log"])
        .output()
        .unwrap();
    let log: Value = serde_json::from_slice(&log.stdout).unwrap();
    let txid = log["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| {
            t["files"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["path"] == path.to_str().unwrap())
        })
        .unwrap()["txid"]
        .as_u64()
        .unwrap();
    sim.kharden()
        .args(["rollback", &txid.to_string(), "--no-gate", "--no-audit"])
        .assert()
        .success();
    let (code, v) = sim.drift();
    assert_eq!(code, 0, "{v}");
    let f = sim.file(&v, &path);
    assert_eq!(f["status"], "unchanged");
    // The scheduler's flag controls are no longer expected; the file check of its mode,
    // committed by another transaction, still is.
    assert_eq!(strings(&f["controls"]), ["1.1.5"], "{f}");
}

#[test]
fn undone_controls_is_the_library_answer_harden_can_use() {
    let sim = Sim::new();
    sim.harden();
    let state = sim.root.join("var/lib/kharden");
    let j = kharden::journal::JournalReader::open(&state)
        .unwrap()
        .unwrap();
    let storage = kharden::durable::RealStorage;
    assert!(kharden::drift::undone_controls(&j, &storage)
        .unwrap()
        .is_empty());
    let path = sim
        .root
        .join("etc/kubernetes/manifests/kube-controller-manager.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    rewrite(
        &path,
        text.replace("    - --profiling=false\n", "").as_bytes(),
    );
    drop(j);
    let j = kharden::journal::JournalReader::open(&state)
        .unwrap()
        .unwrap();
    assert_eq!(
        kharden::drift::undone_controls(&j, &storage).unwrap(),
        ["1.3.2"]
    );
}
