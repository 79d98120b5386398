//! End to end through the `kharden` binary: the kubelet emulator runs the fake kube-apiserver
//! (and the real etcd) from a simulated node's manifests; kharden applies changes with the real
//! health gate and audit, and rolls back what the component does not survive.
//!
//! Every test has its own temp root and free ports; the emulator is owned by a guard that
//! kills it and its pods when the test ends, pass or fail.

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

use assert_cmd::cargo::cargo_bin;
use kharden_testnode::{
    etcd_binary, write_node, KubeletOptions, KubeletProcess, Node, NodeOptions, NodePorts,
};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct Sim {
    node: Node,
    kubelet: KubeletProcess,
    state: PathBuf,
    reject_file: PathBuf,
    dir: tempfile::TempDir,
}

fn start(node_opts: NodeOptions, tweak: impl FnOnce(&mut KubeletOptions)) -> Sim {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let node = write_node(root, NodePorts::free(), &node_opts).unwrap();
    let exe = cargo_bin("kharden");
    let reject_file = root.join("reject-flags");
    std::fs::write(&reject_file, "").unwrap();
    let mut opts = KubeletOptions::simulated_node(root, &exe).unwrap();
    opts.grace_period = Duration::from_secs(3);
    opts.env.push((
        "FAKE_REJECT_FLAGS_FILE".into(),
        reject_file.display().to_string(),
    ));
    // The fakes see host paths (a file a remediation writes) under the node's root, as a real
    // pod sees them through its hostPath mounts.
    opts.env
        .push(("FAKE_HOST_ROOT".into(), root.display().to_string()));
    tweak(&mut opts);
    let kubelet = KubeletProcess::spawn(&exe, &["__kubelet"], &opts).unwrap();
    let state = root.join("var/lib/kharden");
    Sim {
        node,
        kubelet,
        state,
        reject_file,
        dir,
    }
}

fn apiserver_only() -> NodeOptions {
    NodeOptions {
        controller_manager: false,
        scheduler: false,
        ..NodeOptions::default()
    }
}

impl Sim {
    fn kharden(&self) -> Command {
        let mut c = Command::new(cargo_bin("kharden"));
        c.env("KHARDEN_STATE_DIR", &self.state)
            .env("KHARDEN_ROOT", self.dir.path())
            .env_remove("KHARDEN_CRASH_AT");
        c
    }

    fn apiserver(&self) -> PathBuf {
        self.node.apiserver_manifest.clone().unwrap()
    }

    fn log(&self) -> serde_json::Value {
        let out = self
            .kharden()
            .args(["-o", "json", "journal", "log"])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn show(&self, txid: u64) -> String {
        let out = self
            .kharden()
            .args(["journal", "show", &txid.to_string()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Wait until the component of `manifest` runs healthy (the emulator has started it).
    fn wait_healthy(&self, manifest: &Path) {
        let spec = kharden::journal::GateSpec {
            enabled: true,
            timeout_secs: 30,
            stable_for_secs: 1,
            ..Default::default()
        };
        let root = kharden::root::HostRoot::new(Some(self.dir.path())).unwrap();
        let contents = std::fs::read(manifest).unwrap();
        let mut p = kharden::gate::params_for(
            &root,
            &spec,
            &contents,
            None,
            std::time::SystemTime::now() + Duration::from_secs(30),
        )
        .unwrap();
        p.poll_interval = Duration::from_millis(200);
        let v = kharden_gate::run_gate(&p, &mut |_| {});
        assert!(
            v.passed(),
            "component never became healthy: {v:?}\n{}",
            self.kubelet.events()
        );
    }

    fn gate_args(&self) -> Vec<&'static str> {
        vec!["--stable-for", "1", "--health-timeout", "20"]
    }
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_good_change_passes_gate_and_audit_and_commits() {
    let sim = start(apiserver_only(), |_| {});
    let m = sim.apiserver();
    sim.wait_healthy(&m);
    let (code, out, err) = run(sim
        .kharden()
        .arg("apply")
        .arg(&m)
        .args(["--set", "profiling=false"])
        .args(sim.gate_args()));
    assert_eq!(code, 0, "{out}\n{err}\n{}", sim.kubelet.events());
    assert!(out.contains("committed"));
    let show = sim.show(1);
    assert!(show.contains("state gating"), "{show}");
    assert!(
        show.contains("(restarted)") && show.contains("Healthy"),
        "{show}"
    );
    assert!(
        show.contains("audit passed: built-in audit: 1 change(s) in effect on the running process"),
        "{show}"
    );
    assert!(
        show.contains("state audited") && show.contains("state committed"),
        "{show}"
    );
}

#[test]
fn a_flag_the_component_rejects_rolls_back_to_a_healthy_component() {
    let sim = start(apiserver_only(), |_| {});
    let m = sim.apiserver();
    sim.wait_healthy(&m);
    let before = std::fs::read(&m).unwrap();
    std::fs::write(&sim.reject_file, "--audit-log-maxage\n").unwrap();
    let (code, out, err) = run(sim.kharden().arg("apply").arg(&m).args([
        "--set",
        "audit-log-maxage=30",
        "--stable-for",
        "1",
        "--health-timeout",
        "6",
    ]));
    assert_eq!(
        code, 3,
        "exit code: rolled back after the gate failed\n{out}\n{err}"
    );
    assert!(
        err.contains("ROLLED BACK") && err.contains("health gate failed"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&m).unwrap(),
        before,
        "the before-contents are restored"
    );
    let log = sim.log();
    let t = &log["transactions"][0];
    assert_eq!(t["state"], "rolled-back");
    assert_eq!(t["rollback_cause"], "GateFailed");
    let show = sim.show(1);
    assert!(
        show.contains("state rolling-back") && show.contains("state rolled-back"),
        "{show}"
    );
    // The rollback was itself gated: the old component came back healthy (else needs-manual).
    sim.wait_healthy(&m);
    assert!(sim.kubelet.events().contains("audit-log-maxage") || !sim.kubelet.events().is_empty());
}

/// A rollback whose old component does not come back either (here: the old argv is rejected
/// too) ends NeedsManual (exit 5). From then on the file is refused to every change (exit 5,
/// the refusal journaled) until the operator runs `kharden journal resolve`; `journal log`
/// and every `recover` say so.
#[test]
fn needs_manual_holds_its_files_until_the_operator_resolves_it() {
    let sim = start(apiserver_only(), |_| {});
    let m = sim.apiserver();
    sim.wait_healthy(&m);
    // The new flag is rejected, and so is one the original manifest already has: the old
    // component cannot come back.
    std::fs::write(&sim.reject_file, "--audit-log-maxage\n--secure-port\n").unwrap();
    let (code, out, err) = run(sim.kharden().arg("apply").arg(&m).args([
        "--set",
        "audit-log-maxage=30",
        "--stable-for",
        "1",
        "--health-timeout",
        "5",
    ]));
    assert_eq!(code, 5, "needs manual intervention\n{out}\n{err}");
    let held = std::fs::read(&m).unwrap();
    // Any change to that file is now refused, and the refusal is journaled.
    let (code, out, err) =
        run(sim
            .kharden()
            .arg("apply")
            .arg(&m)
            .args(["--set", "profiling=false", "--no-gate"]));
    assert_eq!(code, 5, "{out}\n{err}");
    assert!(
        err.contains("needs manual intervention") && err.contains("kharden journal resolve 1"),
        "{err}"
    );
    assert_eq!(std::fs::read(&m).unwrap(), held, "nothing was written");
    let log = sim.log();
    assert_eq!(log["unresolved"], serde_json::json!([1]));
    assert_eq!(log["transactions"][0]["state"], "aborted");
    assert!(log["transactions"][0]["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("belongs to transaction 1"));
    let (code, out, _) = run(sim.kharden().arg("recover"));
    assert_eq!(code, 0);
    assert!(
        out.contains("transaction 1 still needs manual intervention"),
        "{out}"
    );
    // harden refuses that component too, and says so in its summary.
    let (code, out, err) =
        run(sim
            .kharden()
            .args(["harden", "--no-gate", "--only", "1.2.17,1.2.18"]));
    assert_eq!(code, 5, "{out}\n{err}");
    assert!(
        out.contains("refused:\n") && out.contains("kharden journal resolve 1"),
        "{out}"
    );
    assert_eq!(std::fs::read(&m).unwrap(), held, "nothing was written");
    // The operator fixes the node and says so.
    std::fs::write(&sim.reject_file, "").unwrap();
    let (code, out, err) =
        run(sim
            .kharden()
            .args(["journal", "resolve", "1", "--note", "restarted by hand"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(sim
        .show(1)
        .contains("resolved by the operator: restarted by hand"));
    let (code, _, err) = run(sim.kharden().args(["journal", "resolve", "1"]));
    assert_eq!(code, 1, "resolving twice is an error: {err}");
    let (code, out, err) =
        run(sim
            .kharden()
            .arg("apply")
            .arg(&m)
            .args(["--set", "profiling=false", "--no-gate"]));
    assert_eq!(code, 0, "{out}\n{err}");
}

#[test]
fn a_failing_audit_script_rolls_back() {
    let sim = start(apiserver_only(), |_| {});
    let m = sim.apiserver();
    sim.wait_healthy(&m);
    let before = std::fs::read(&m).unwrap();
    let script = sim.dir.path().join("audit.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"policy says no to $1\"\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (code, out, err) = run(sim
        .kharden()
        .arg("apply")
        .arg(&m)
        .args(["--set", "profiling=false", "--audit-script"])
        .arg(&script)
        .args(sim.gate_args()));
    assert_eq!(code, 4, "{out}\n{err}");
    assert_eq!(std::fs::read(&m).unwrap(), before);
    let show = sim.show(1);
    assert!(
        show.contains("audit FAILED") && show.contains("policy says no"),
        "{show}"
    );
    assert_eq!(
        sim.log()["transactions"][0]["rollback_cause"],
        "AuditFailed"
    );
}

#[test]
fn the_old_process_answering_before_the_restart_does_not_pass_the_gate_early() {
    let delay = Duration::from_secs(3);
    let sim = start(apiserver_only(), |o| o.restart_delay = delay);
    let m = sim.apiserver();
    sim.wait_healthy(&m);
    let t0 = Instant::now();
    let (code, out, err) = run(sim
        .kharden()
        .arg("apply")
        .arg(&m)
        .args(["--set", "profiling=false"])
        .args(sim.gate_args()));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        t0.elapsed() >= delay + Duration::from_secs(1),
        "passed after {:?}",
        t0.elapsed()
    );
    let show = sim.show(1);
    // Probes answered while the old process still ran were journaled but did not count.
    assert!(show.contains("(old or none)"), "{show}");
    assert!(show.contains("(restarted)"), "{show}");
}

#[test]
fn killing_kharden_during_the_gate_then_recover_reverts() {
    let sim = start(apiserver_only(), |_| {});
    let m = sim.apiserver();
    sim.wait_healthy(&m);
    let before = std::fs::read(&m).unwrap();
    // A change the component accepts, and a stability window long enough to be killed in:
    // the transaction is still gating when kharden dies (a rejected flag would now be
    // rolled back within a second, from its crashes).
    let mut child = sim
        .kharden()
        .arg("apply")
        .arg(&m)
        .args([
            "--set",
            "profiling=false",
            "--stable-for",
            "60",
            "--health-timeout",
            "90",
        ])
        .spawn()
        .unwrap();
    // Wait until the write happened and the gate is waiting.
    let t0 = Instant::now();
    while std::fs::read(&m).unwrap() == before {
        assert!(t0.elapsed() < Duration::from_secs(20), "apply never wrote");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9));
    std::fs::write(&sim.reject_file, "").unwrap();
    let (code, out, err) = run(sim.kharden().arg("recover"));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("before restored"), "{out}");
    assert_eq!(std::fs::read(&m).unwrap(), before);
    assert_eq!(sim.log()["transactions"][0]["state"], "rolled-back");
    sim.wait_healthy(&m);
}

#[test]
fn recover_with_resume_policy_gates_and_audits_again_then_commits() {
    let sim = start(apiserver_only(), |_| {});
    let m = sim.apiserver();
    sim.wait_healthy(&m);
    let before = std::fs::read(&m).unwrap();
    let mut child = sim
        .kharden()
        .arg("apply")
        .arg(&m)
        .args([
            "--set",
            "profiling=false",
            "--stable-for",
            "60",
            "--health-timeout",
            "90",
        ])
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while std::fs::read(&m).unwrap() == before {
        assert!(t0.elapsed() < Duration::from_secs(20), "apply never wrote");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    let after = std::fs::read(&m).unwrap();
    // The operator knows the edit is wanted: the component accepts it now.
    std::fs::write(&sim.reject_file, "").unwrap();
    let (code, out, err) = run(sim.kharden().args([
        "recover",
        "--policy",
        "resume",
        "--stable-for",
        "1",
        "--health-timeout",
        "30",
    ]));
    assert_eq!(code, 0, "{out}\n{err}\n{}", sim.kubelet.events());
    assert!(out.contains("committed"), "{out}");
    assert_eq!(std::fs::read(&m).unwrap(), after);
    let show = sim.show(1);
    assert!(
        show.contains("--policy resume")
            && show.contains("(restarted)")
            && show.contains("audit passed"),
        "{show}"
    );
    assert_eq!(sim.log()["transactions"][0]["state"], "committed");
}

#[test]
fn harden_fixes_several_controls_and_rolls_one_back() {
    let sim = start(apiserver_only(), |_| {});
    let m = sim.apiserver();
    sim.wait_healthy(&m);
    std::fs::write(
        &sim.reject_file,
        "--service-account-extend-token-expiration\n",
    )
    .unwrap();
    let (code, out, err) = run(sim
        .kharden()
        .args(["harden", "--only", "1.2.15,1.2.30,1.2.17", "--keep-going"])
        .args(sim.gate_args()));
    assert_eq!(code, 3, "{out}\n{err}");
    let fixed = out
        .split("fixed:")
        .nth(1)
        .unwrap_or_default()
        .split("rolled back:")
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        fixed.contains("1.2.15") && fixed.contains("1.2.17"),
        "{out}"
    );
    let rolled = out.split("rolled back:").nth(1).unwrap_or_default();
    assert!(
        rolled.contains("1.2.30") && rolled.contains("health gate failed"),
        "{out}"
    );
    let text = std::fs::read_to_string(&m).unwrap();
    assert!(text.contains("--profiling=false") && text.contains("--audit-log-maxage=30"));
    assert!(!text.contains("--service-account-extend-token-expiration"));
    sim.wait_healthy(&m);
}

fn etcdctl(sim: &Sim, args: &[&str]) -> (i32, String) {
    let pki = sim.dir.path().join("etc/kubernetes/pki/etcd");
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!(
            "--endpoints=https://127.0.0.1:{}",
            sim.node.ports.etcd_client
        ))
        .arg(format!("--cacert={}", pki.join("ca.crt").display()))
        .arg(format!(
            "--cert={}",
            pki.join("healthcheck-client.crt").display()
        ))
        .arg(format!(
            "--key={}",
            pki.join("healthcheck-client.key").display()
        ))
        .arg("--command-timeout=5s")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn real_etcd_good_change_commits_and_bad_flag_rolls_back_with_data_intact() {
    let have = etcd_binary().is_some() && Command::new("etcdctl").arg("version").output().is_ok();
    if !have {
        if std::env::var_os("CI").is_some() {
            panic!("etcd and etcdctl are required in CI: apt-get install etcd-server etcd-client");
        }
        eprintln!("SKIP real etcd test: etcd or etcdctl not installed (apt-get install etcd-server etcd-client)");
        return;
    }
    let sim = start(
        NodeOptions {
            apiserver: false,
            controller_manager: false,
            scheduler: false,
            etcd: true,
            ..NodeOptions::default()
        },
        |o| o.grace_period = Duration::from_secs(5),
    );
    let m = sim.node.etcd_manifest.clone().unwrap();
    sim.wait_healthy(&m);
    let (c, o) = etcdctl(&sim, &["put", "kharden-test", "before-the-change"]);
    assert_eq!(c, 0, "{o}");
    // A valid change: etcd restarts healthy, the transaction commits.
    let (code, out, err) = run(sim
        .kharden()
        .arg("apply")
        .arg(&m)
        .args(["--set", "snapshot-count=5000"])
        .args(sim.gate_args()));
    assert_eq!(code, 0, "{out}\n{err}\n{}", sim.kubelet.events());
    assert!(sim.show(1).contains("(restarted)"));
    // An invalid flag: etcd refuses to start, the gate fails, the rollback brings it back.
    let before = std::fs::read(&m).unwrap();
    let (code, out, err) = run(sim.kharden().arg("apply").arg(&m).args([
        "--set",
        "no-such-etcd-flag=1",
        "--stable-for",
        "1",
        "--health-timeout",
        "8",
    ]));
    assert_eq!(code, 3, "{out}\n{err}");
    assert_eq!(std::fs::read(&m).unwrap(), before);
    assert_eq!(sim.log()["transactions"][0]["state"], "rolled-back");
    sim.wait_healthy(&m);
    let (c, o) = etcdctl(&sim, &["get", "kharden-test", "--print-value-only"]);
    assert_eq!(c, 0, "{o}");
    assert_eq!(
        o.trim(),
        "before-the-change",
        "data intact after the rollback"
    );
}

/// Issue 11, item 3: SIGTERM during the gate ends in a verified rollback with its own exit
/// code; a second one stops the rollback's gate too and leaves the transaction to `recover`,
/// saying so.
#[test]
fn signals_during_the_gate_roll_back_or_leave_the_transaction_for_recover() {
    let sim = start(apiserver_only(), |_| {});
    let m = sim.apiserver();
    sim.wait_healthy(&m);
    let before = std::fs::read(&m).unwrap();
    for second in [false, true] {
        let mut child = sim
            .kharden()
            .arg("apply")
            .arg(&m)
            .args(["--set", "profiling=false", "--health-timeout", "120"])
            .args(["--stable-for", if second { "60" } else { "2" }])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while std::fs::read(&m).unwrap() == before {
            assert!(t0.elapsed() < Duration::from_secs(30), "apply never wrote");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_secs(1));
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        if second {
            // Wait for the rollback's write, then signal again during its gate.
            let t0 = Instant::now();
            while std::fs::read(&m).unwrap() != before {
                assert!(t0.elapsed() < Duration::from_secs(30), "no rollback write");
                std::thread::sleep(Duration::from_millis(50));
            }
            std::thread::sleep(Duration::from_millis(500));
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        }
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(90),
                "kharden did not stop"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(9), "{err}");
        assert_eq!(
            std::fs::read(&m).unwrap(),
            before,
            "the old manifest is back"
        );
        let log = sim.log();
        let t = &log["transactions"][0];
        if second {
            assert!(
                err.contains("LEFT OPEN") && err.contains("kharden recover"),
                "{err}"
            );
            assert_eq!(t["state"], "rolling-back", "left for recover");
            let (code, out, err) = run(sim.kharden().arg("recover"));
            assert_eq!(code, 0, "{out}\n{err}");
            assert_eq!(sim.log()["transactions"][0]["state"], "rolled-back");
        } else {
            assert!(
                err.contains("ROLLED BACK") && err.contains("interrupted"),
                "{err}"
            );
            assert!(err.contains("proven running and healthy"), "{err}");
            assert_eq!(t["state"], "rolled-back");
            assert_eq!(t["rollback_cause"], "Interrupted");
        }
        sim.wait_healthy(&m);
    }
}

/// Issue 16: harden groups the API server's nine controls into one transaction; when the
/// component does not survive it, bisection isolates the rejected controls (one, then two)
/// and commits every other one. The journal holds every transaction tried; the summary names
/// the culprits with their gate failure.
#[test]
fn bisection_isolates_one_and_two_rejected_controls_among_nine() {
    for rejected in [
        vec!["--profiling"],
        vec!["--profiling", "--tls-cipher-suites"],
    ] {
        let sim = start(apiserver_only(), |_| {});
        let m = sim.apiserver();
        sim.wait_healthy(&m);
        std::fs::write(&sim.reject_file, rejected.join("\n") + "\n").unwrap();
        let out = sim
            .kharden()
            .args(["-o", "json", "harden", "--skip", "1.2.9", "--keep-going"])
            .args(["--stable-for", "1", "--health-timeout", "15"])
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let steps = report["steps"].as_array().unwrap();
        let api: Vec<&serde_json::Value> = steps
            .iter()
            .filter(|s| s["component"] == "kube-apiserver")
            .collect();
        let first = api[0]["controls"].as_array().unwrap().len();
        assert!(
            first >= 8,
            "one group of the API server's controls: {report}"
        );
        assert_eq!(api[0]["bisected"], true, "{report}");
        let culprits: Vec<String> = api
            .iter()
            .filter(|s| s["culprit"] == true)
            .flat_map(|s| s["controls"].as_array().unwrap().iter())
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        let expected: Vec<&str> = rejected
            .iter()
            .map(|f| match *f {
                "--profiling" => "1.2.15",
                _ => "1.2.29",
            })
            .collect();
        let mut c = culprits.clone();
        c.sort();
        assert_eq!(c, expected, "culprits: {report}");
        for s in api.iter().filter(|s| s["culprit"] == true) {
            assert!(
                s["reason"].as_str().unwrap().contains("health gate failed"),
                "{s}"
            );
        }
        // Every other control is committed and in the manifest; the rejected flags are not.
        let text = std::fs::read_to_string(&m).unwrap();
        for f in &rejected {
            assert!(!text.contains(&format!("{f}=")), "{f} left in:\n{text}");
        }
        assert!(text.contains("--audit-log-maxage=30"), "{text}");
        assert!(text.contains("--service-account-extend-token-expiration=false"));
        // The journal holds every transaction tried: the group, and the halves of the
        // bisection; one bad control among n costs at most 1 + 2 * ceil(log2 n).
        let harden_txns = sim.log()["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["summary"].as_str().unwrap().contains("kube-apiserver"))
            .count();
        assert_eq!(
            harden_txns,
            api.iter().filter(|s| s["txid"].is_u64()).count(),
            "every step is a journaled transaction"
        );
        if rejected.len() == 1 {
            assert!(
                harden_txns <= 1 + 2 * 4,
                "{harden_txns} transactions for 1 bad of 9"
            );
        }
        sim.wait_healthy(&m);
    }
}
