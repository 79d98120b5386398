//! The crash suite for kubelet transactions: `kharden kubelet set` SIGKILLed at every failpoint
//! (the restart of the kubelet included: `engine.restart.before`/`.after`, forward and in the
//! rollback), then `kharden recover`, on a simulated kubeadm worker run by the service-manager
//! emulator. Needs `--features failpoints`.
//!
//! Checked after every recovery (DESIGN.md invariants 1, 2, 4, 6, and the restart as an
//! effect): the configuration file is byte-identical to one side; a committed transaction left
//! the after side; no temp file beside it; its mode is kept; no transaction is left open and
//! `journal verify` passes; a second `recover` does nothing; and the kubelet that runs runs the
//! file's configuration (a recovery that restored the files without restarting a kubelet
//! running the after side would leave the node on a configuration no file holds).
#![cfg(feature = "failpoints")]
// Test code: a panic is how it fails; it prints, writes its fixtures and reads the clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use assert_cmd::cargo::cargo_bin;
use kharden_testnode::{
    read_effective_config, write_worker_node, KubeletNode, KubeletNodeOptions, KubeletOptions,
    ServiceManagerOptions, ServiceManagerProcess,
};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

struct Sim {
    kubelet: KubeletNode,
    sm: ServiceManagerProcess,
    state: PathBuf,
    dir: tempfile::TempDir,
}

fn start(name: &str) -> Sim {
    let dir = tempfile::tempdir().unwrap();
    let kubelet = write_worker_node(
        dir.path(),
        &KubeletNodeOptions {
            // Command lines of their own: the tests run in parallel (see kubelet_e2e.rs).
            node_name: format!("{name}-{}", std::process::id()),
            restart_sec: Duration::from_millis(300),
            ..KubeletNodeOptions::default()
        },
    )
    .unwrap();
    let mut k = KubeletOptions::simulated_node(dir.path(), &cargo_bin("kharden")).unwrap();
    k.grace_period = Duration::from_secs(2);
    let sm = ServiceManagerProcess::spawn(
        &cargo_bin("kharden"),
        &ServiceManagerOptions::new(dir.path()),
        &k,
    )
    .unwrap();
    let state = dir.path().join("var/lib/kharden");
    Sim {
        kubelet,
        sm,
        state,
        dir,
    }
}

impl Sim {
    fn kharden(&self) -> Command {
        let mut c = Command::new(cargo_bin("kharden"));
        c.env("KHARDEN_STATE_DIR", &self.state)
            .env("KHARDEN_ROOT", self.dir.path())
            .env("KHARDEN_SYSTEMCTL", self.sm.systemctl_path())
            .env_remove("KHARDEN_CRASH_AT")
            .env_remove("KHARDEN_FAILPOINT_TRACE");
        c
    }

    fn set(&self, value: &str, crash_at: Option<usize>, trace: bool) -> Output {
        let mut c = self.kharden();
        c.args([
            "kubelet",
            "set",
            &format!("eventRecordQPS={value}"),
            "--stable-for",
            "1",
            "--health-timeout",
            "60",
        ]);
        if let Some(n) = crash_at {
            c.env("KHARDEN_CRASH_AT", n.to_string());
        }
        if trace {
            c.env("KHARDEN_FAILPOINT_TRACE", "1");
        }
        c.output().unwrap()
    }

    fn config(&self) -> Vec<u8> {
        std::fs::read(&self.kubelet.config).unwrap()
    }

    fn log(&self) -> Vec<serde_json::Value> {
        let out = self
            .kharden()
            .args(["-o", "json", "journal", "log", "--limit", "1000"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["transactions"].as_array().cloned().unwrap_or_default()
    }

    /// The kubelet, once it runs and answers, runs `qps` (the file's value).
    fn wait_running(&self, qps: i64, what: &str) {
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let p = self.sm.show("kubelet.service", &[]).unwrap();
            let pid: u32 = p["MainPID"].parse().unwrap_or(0);
            if p["ActiveState"] == "active" && pid != 0 {
                if let Ok(e) = read_effective_config(self.dir.path()) {
                    if e.pid == pid && e.kubeletconfig["eventRecordQPS"] == qps {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < end,
                "{what}: the kubelet does not run the file's configuration (eventRecordQPS {qps}): {:?}",
                read_effective_config(self.dir.path()).map(|e| e.kubeletconfig["eventRecordQPS"].clone())
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn check(&self, before: &[u8], after: &[u8], after_qps: i64, what: &str) {
        let now = self.config();
        assert!(
            now == before || now == after,
            "{what}: config.yaml is neither side"
        );
        for t in self.log() {
            let st = t["state"].as_str().unwrap();
            assert!(
                ["committed", "rolled-back", "aborted"].contains(&st),
                "{what}: transaction {} left {st}",
                t["txid"]
            );
        }
        let last = self.log().into_iter().next();
        if last
            .as_ref()
            .is_some_and(|t| t["state"] == "committed" && t["kind"] == "apply")
        {
            assert_eq!(now, after, "{what}: committed, not at after");
        }
        let dir = self.kubelet.config.parent().unwrap();
        let temps: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.') && n.contains("kharden"))
            .collect();
        assert!(temps.is_empty(), "{what}: temp files left: {temps:?}");
        assert_eq!(
            std::fs::metadata(&self.kubelet.config)
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o644,
            "{what}: mode"
        );
        assert!(
            self.kharden()
                .args(["journal", "verify"])
                .status()
                .unwrap()
                .success(),
            "{what}: journal verify"
        );
        let again = self.kharden().arg("recover").output().unwrap();
        assert!(
            String::from_utf8_lossy(&again.stdout).contains("nothing to recover"),
            "{what}: a second recover acted: {}",
            String::from_utf8_lossy(&again.stdout)
        );
        self.wait_running(if now == after { after_qps } else { 50 }, what);
    }
}

fn killed(o: &Output) -> bool {
    o.status.signal() == Some(9)
}

fn trace_names(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("failpoint: "))
        .filter(|l| !l.starts_with("killed"))
        .filter_map(|l| l.split_once(' ').map(|(_, n)| n.to_string()))
        .collect()
}

/// Kill `kharden kubelet set eventRecordQPS=VALUE` at every point from `from` (1-based) to the
/// end, recover, check; a committed one is undone with `kharden rollback` before the next.
/// Returns the names of the points killed at.
fn kill_everywhere(sim: &Sim, value: &str, after_qps: i64, from: usize, to: usize) -> Vec<String> {
    let before = sim.config();
    let change =
        kharden_kubelet_config::ConfigChange::parse_set(&format!("eventRecordQPS={value}"))
            .unwrap();
    let after = kharden_kubelet_config::edit_config(&before, &[change])
        .unwrap()
        .output;
    let mut names = Vec::new();
    for n in from..=to {
        let out = sim.set(value, Some(n), true);
        let point = String::from_utf8_lossy(&out.stderr)
            .lines()
            .find_map(|l| l.strip_prefix("failpoint: killed at ").map(str::to_string))
            .unwrap_or_default();
        assert!(
            killed(&out),
            "point {n} not reached: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        names.push(point.clone());
        let r = sim
            .kharden()
            .args(["recover", "--stable-for", "1"])
            .output()
            .unwrap();
        assert!(
            r.status.success(),
            "recover after {point}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let what = format!("kubelet set killed at {point}");
        sim.check(&before, &after, after_qps, &what);
        if sim.config() == after {
            // Committed before the kill: undo it as a new transaction for the next point.
            let txid = sim.log()[0]["txid"].as_u64().unwrap();
            let r = sim
                .kharden()
                .args(["rollback", &txid.to_string(), "--stable-for", "1"])
                .output()
                .unwrap();
            assert!(
                r.status.success(),
                "rollback {txid}: {}",
                String::from_utf8_lossy(&r.stderr)
            );
            assert_eq!(sim.config(), before);
            sim.wait_running(50, &format!("{what}, rolled back"));
        }
    }
    names
}

#[test]
fn kill_a_kubelet_change_at_every_failpoint_then_recover() {
    let sim = start("crash-good");
    sim.wait_running(50, "start");
    // The points of an uncrashed run (on a journal that exists already, as in the loop).
    let warm = sim.set("50", None, false);
    assert!(warm.status.success());
    let _ = sim
        .kharden()
        .args(["rollback", "1", "--stable-for", "1"])
        .output()
        .unwrap();
    sim.wait_running(50, "warm-up rolled back");
    // What was written and undone is not the original file: start from what is there now.
    let trace = sim.set("5", None, true);
    assert!(
        trace.status.success(),
        "{}",
        String::from_utf8_lossy(&trace.stderr)
    );
    let points = trace_names(&trace);
    assert!(
        points.iter().any(|p| p == "engine.restart.before"),
        "{points:?}"
    );
    assert!(
        points.iter().any(|p| p == "engine.restart.after"),
        "{points:?}"
    );
    let txid = sim.log()[0]["txid"].as_u64().unwrap();
    assert!(sim
        .kharden()
        .args(["rollback", &txid.to_string(), "--stable-for", "1"])
        .status()
        .unwrap()
        .success());
    sim.wait_running(50, "trace run rolled back");
    let names = kill_everywhere(&sim, "5", 5, 1, points.len());
    for p in [
        "engine.restart.before",
        "engine.restart.after",
        "journal.state.committed.after",
    ] {
        assert!(
            names.iter().any(|n| n.ends_with(p)),
            "never killed at {p}: {names:?}"
        );
    }
}

#[test]
fn kill_the_rollback_of_a_refused_kubelet_change_at_every_failpoint_then_recover() {
    let sim = start("crash-bad");
    sim.wait_running(50, "start");
    let warm = sim.set("50", None, false);
    assert!(warm.status.success());
    let _ = sim
        .kharden()
        .args(["rollback", "1", "--stable-for", "1"])
        .output()
        .unwrap();
    sim.wait_running(50, "warm-up rolled back");
    // A configuration the kubelet refuses: forward gate fails, the rollback restores, restarts
    // and proves the old kubelet.
    let trace = sim.set("-1", None, true);
    assert_eq!(
        trace.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&trace.stderr)
    );
    let points = trace_names(&trace);
    let first = points
        .iter()
        .position(|p| p == "journal.state.rolling-back.before")
        .expect("a rollback")
        + 1;
    sim.wait_running(50, "refused change rolled back");
    let names = kill_everywhere(&sim, "-1", 50, first, points.len());
    assert!(
        names.iter().any(|n| n.ends_with("engine.restart.before")),
        "the rollback's restart: {names:?}"
    );
    assert!(
        names.iter().any(|n| n.ends_with("engine.restart.after")),
        "{names:?}"
    );
}

/// Issue 14's widest kubelet transaction, killed everywhere: one `kubelet set` that edits a
/// flag in an environment file (`KUBELET_EXTRA_ARGS=--event-qps=50` in /etc/default/kubelet,
/// the source that wins for eventRecordQPS) and creates kharden's own drop-in in the
/// `--config-dir` (eventBurst, which nothing sets yet). After every kill and `recover`: both
/// files on the same side (the flag at 50 and no drop-in, or the flag at 5 and the drop-in
/// holding eventBurst), no temp file in either directory, the environment file's mode kept,
/// nothing open, and the running kubelet on what the files say.
#[test]
fn kill_a_two_file_kubelet_change_at_every_failpoint_then_recover() {
    let dir = tempfile::tempdir().unwrap();
    let kubelet = write_worker_node(
        dir.path(),
        &KubeletNodeOptions {
            node_name: format!("crash-two-{}", std::process::id()),
            restart_sec: Duration::from_millis(300),
            extra_args: "--event-qps=50".into(),
            config_dir: Some("/etc/kubernetes/kubelet.conf.d".into()),
            ..KubeletNodeOptions::default()
        },
    )
    .unwrap();
    let mut k = KubeletOptions::simulated_node(dir.path(), &cargo_bin("kharden")).unwrap();
    k.grace_period = Duration::from_secs(2);
    let sm = ServiceManagerProcess::spawn(
        &cargo_bin("kharden"),
        &ServiceManagerOptions::new(dir.path()),
        &k,
    )
    .unwrap();
    let sim = Sim {
        kubelet,
        sm,
        state: dir.path().join("var/lib/kharden"),
        dir,
    };
    let env = sim.kubelet.extra_args_env.clone();
    let conf_dir = sim.kubelet.config_dir.clone().unwrap();
    let ours = conf_dir.join("99-kharden.conf");
    let env_mode = std::fs::metadata(&env).unwrap().permissions().mode() & 0o7777;
    let set = |crash_at: Option<usize>, trace: bool| {
        let mut c = sim.kharden();
        c.args([
            "kubelet",
            "set",
            "eventRecordQPS=5",
            "eventBurst=20",
            "--stable-for",
            "1",
            "--health-timeout",
            "60",
        ]);
        if let Some(n) = crash_at {
            c.env("KHARDEN_CRASH_AT", n.to_string());
        }
        if trace {
            c.env("KHARDEN_FAILPOINT_TRACE", "1");
        }
        c.output().unwrap()
    };
    let read = |p: &std::path::Path| std::fs::read(p).ok();
    let rollback_last = |what: &str| {
        let txid = sim.log()[0]["txid"].as_u64().unwrap();
        let r = sim
            .kharden()
            .args(["rollback", &txid.to_string(), "--stable-for", "1"])
            .output()
            .unwrap();
        assert!(
            r.status.success(),
            "{what}: rollback {txid}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
    };
    sim.wait_running(50, "start");
    let env_before = read(&env).unwrap();
    assert!(read(&ours).is_none());
    // A first run creates the journal (points of its own): the loop runs on one that exists.
    assert!(set(None, false).status.success());
    rollback_last("warm-up");
    sim.wait_running(50, "warm-up rolled back");
    // An uncrashed run: the points, and the after side of both files.
    let trace = set(None, true);
    assert!(
        trace.status.success(),
        "{}",
        String::from_utf8_lossy(&trace.stderr)
    );
    let points = trace_names(&trace);
    let env_after = read(&env).unwrap();
    let ours_after = read(&ours).expect("the drop-in was created");
    assert_ne!(env_after, env_before);
    assert!(String::from_utf8_lossy(&ours_after).contains("eventBurst: 20"));
    sim.wait_running(5, "trace run");
    rollback_last("trace run");
    assert_eq!(read(&env).unwrap(), env_before);
    assert!(
        read(&ours).is_none(),
        "the rollback left the created drop-in"
    );
    sim.wait_running(50, "trace run rolled back");

    let mut names = Vec::new();
    for n in 1..=points.len() {
        let out = set(Some(n), true);
        assert!(
            killed(&out),
            "point {n} not reached: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let point = String::from_utf8_lossy(&out.stderr)
            .lines()
            .find_map(|l| l.strip_prefix("failpoint: killed at ").map(str::to_string))
            .unwrap_or_default();
        let what = format!("two-file kubelet set killed at {point}");
        names.push(point);
        let r = sim
            .kharden()
            .args(["recover", "--stable-for", "1"])
            .output()
            .unwrap();
        assert!(
            r.status.success(),
            "{what}: recover: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let (e, o) = (read(&env).unwrap(), read(&ours));
        let at_after = if e == env_before {
            assert!(
                o.is_none(),
                "{what}: the flag is back but the drop-in stays"
            );
            false
        } else {
            assert_eq!(e, env_after, "{what}: the environment file is neither side");
            assert_eq!(o.as_ref(), Some(&ours_after), "{what}: the drop-in");
            true
        };
        for d in [env.parent().unwrap(), conf_dir.as_path()] {
            let temps: Vec<String> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.') && n.contains("kharden"))
                .collect();
            assert!(temps.is_empty(), "{what}: temp files left: {temps:?}");
        }
        assert_eq!(
            std::fs::metadata(&env).unwrap().permissions().mode() & 0o7777,
            env_mode,
            "{what}: mode"
        );
        for t in sim.log() {
            let st = t["state"].as_str().unwrap();
            assert!(
                ["committed", "rolled-back", "aborted"].contains(&st),
                "{what}: transaction {} left {st}",
                t["txid"]
            );
        }
        assert!(
            sim.kharden()
                .args(["journal", "verify"])
                .status()
                .unwrap()
                .success(),
            "{what}: journal verify"
        );
        sim.wait_running(if at_after { 5 } else { 50 }, &what);
        if at_after {
            rollback_last(&what);
            assert_eq!(read(&env).unwrap(), env_before, "{what}: rolled back");
            assert!(read(&ours).is_none(), "{what}: rolled back");
            sim.wait_running(50, &format!("{what}, rolled back"));
        }
    }
    for p in [
        "engine.restart.before",
        "engine.restart.after",
        "journal.state.committed.after",
    ] {
        assert!(
            names.iter().any(|n| n.ends_with(p)),
            "never killed at {p}: {names:?}"
        );
    }
}
