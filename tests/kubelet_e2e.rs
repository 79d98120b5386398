//! End to end through the `kharden` binary on a simulated kubeadm node run by the service
//! manager emulator: `kubelet.service` from kubeadm's unit and drop-in, the kubelet emulator
//! loading its configuration like the kubelet (and refusing what it refuses), the fake
//! `systemctl`, real processes, real signals. kharden changes the kubelet's configuration,
//! restarts it, gates it, audits it, and rolls back what it does not survive.
//!
//! Every test has its own temp root and free ports; the service manager is owned by a guard that
//! stops it, the kubelet and the pods when the test ends, pass or fail. Waits are on conditions
//! with generous deadlines; nothing asserts a duration.

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
    http_get, read_effective_config, wait_until, write_node, write_worker_node, KubeletNode,
    KubeletNodeOptions, KubeletOptions, NodeOptions, NodePorts, ServiceManagerOptions,
    ServiceManagerProcess,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(90);

struct Sim {
    kubelet: KubeletNode,
    sm: ServiceManagerProcess,
    state: PathBuf,
    dir: tempfile::TempDir,
}

/// A node name of its own per test: the kubelets of the tests running in parallel on this
/// machine then have different command lines (`--hostname-override`), as the kubelets of
/// different machines do, and the gate's crash tracking (by command line, through the kernel's
/// process events) counts this node's kubelet only.
fn unique_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "node-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn fast() -> KubeletNodeOptions {
    KubeletNodeOptions {
        node_name: unique_name(),
        restart_sec: Duration::from_millis(300),
        ..KubeletNodeOptions::default()
    }
}

fn kubelet_opts(root: &Path, env: &[(&str, String)]) -> KubeletOptions {
    let mut k = KubeletOptions::simulated_node(root, &cargo_bin("kharden")).unwrap();
    k.grace_period = Duration::from_secs(2);
    for (n, v) in env {
        k.env.push((n.to_string(), v.clone()));
    }
    k
}

fn spawn(dir: tempfile::TempDir, kubelet: KubeletNode, env: &[(&str, String)]) -> Sim {
    let sm = ServiceManagerProcess::spawn(
        &cargo_bin("kharden"),
        &ServiceManagerOptions::new(dir.path()),
        &kubelet_opts(dir.path(), env),
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

/// A kubeadm worker node, `tweak`ed before its service manager starts.
fn worker(opts: KubeletNodeOptions, tweak: impl FnOnce(&KubeletNode)) -> Sim {
    let dir = tempfile::tempdir().unwrap();
    let kubelet = write_worker_node(dir.path(), &opts).unwrap();
    tweak(&kubelet);
    spawn(dir, kubelet, &[])
}

fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            c.split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

impl Sim {
    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn kharden(&self) -> Command {
        let mut c = Command::new(cargo_bin("kharden"));
        c.env("KHARDEN_STATE_DIR", &self.state)
            .env("KHARDEN_ROOT", self.root())
            .env("KHARDEN_SYSTEMCTL", self.sm.systemctl_path())
            .env_remove("KHARDEN_CRASH_AT")
            .env_remove("KHARDEN_FAILPOINT_TRACE");
        c
    }

    /// `kharden ARGS` with a short gate.
    fn run(&self, args: &[&str]) -> Output {
        let out = self
            .kharden()
            .args(args)
            .args(["--stable-for", "1", "--health-timeout", "60"])
            .output()
            .unwrap();
        eprintln!(
            "kharden {args:?}: {:?}\n--- stdout\n{}\n--- stderr\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn show(&self) -> BTreeMap<String, String> {
        self.sm.show("kubelet.service", &[]).unwrap()
    }

    fn diag(&self) -> String {
        format!(
            "show: {:#?}\nmanager events:\n{}\nkubelet journal:\n{}",
            self.sm.show("kubelet.service", &[]).ok(),
            self.sm.events(),
            self.sm.journal("kubelet"),
        )
    }

    /// kubelet.service active with a kubelet (other than `not`) that wrote its effective
    /// configuration and answers /healthz; its pid.
    fn wait_healthy(&self, not: Option<u32>) -> u32 {
        let end = Instant::now() + LONG;
        loop {
            let p = self.show();
            let pid: u32 = p["MainPID"].parse().unwrap_or(0);
            let ok = p["ActiveState"] == "active"
                && pid != 0
                && Some(pid) != not
                && read_effective_config(self.root()).is_ok_and(|e| e.pid == pid)
                && http_get(self.kubelet.healthz_port, "/healthz") == Some((200, "ok".into()));
            if ok {
                return pid;
            }
            assert!(Instant::now() < end, "kubelet not healthy: {}", self.diag());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn effective(&self) -> serde_json::Value {
        read_effective_config(self.root()).unwrap().kubeletconfig
    }

    fn log(&self) -> Vec<serde_json::Value> {
        let out = self
            .kharden()
            .args(["-o", "json", "journal", "log", "--limit", "100"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["transactions"].as_array().cloned().unwrap_or_default()
    }

    fn journal_show(&self, txid: u64) -> String {
        let out = self
            .kharden()
            .args(["journal", "show", &txid.to_string()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every file kharden may touch, with its bytes (absent: `None`).
    fn files(&self) -> BTreeMap<String, Option<Vec<u8>>> {
        let mut m = BTreeMap::new();
        let mut paths = vec![
            self.kubelet.config.clone(),
            self.kubelet.kubeadm_flags_env.clone(),
            self.kubelet.extra_args_env.clone(),
            self.kubelet.unit.clone(),
            self.kubelet.dropin.clone(),
        ];
        if let Some(d) = &self.kubelet.config_dir {
            for e in std::fs::read_dir(d).unwrap() {
                paths.push(e.unwrap().path());
            }
        }
        for p in paths {
            m.insert(p.display().to_string(), std::fs::read(&p).ok());
        }
        m
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_good_change_commits_and_the_restarted_kubelet_carries_it() {
    let sim = worker(fast(), |_| {});
    let old = sim.wait_healthy(None);
    let config_before = std::fs::read(&sim.kubelet.config).unwrap();
    let out = sim.run(&["kubelet", "set", "eventRecordQPS=5"]);
    assert_eq!(code(&out), 0, "{}", sim.diag());
    let new = sim.wait_healthy(None);
    assert_ne!(new, old, "the kubelet was restarted");
    assert_eq!(sim.effective()["eventRecordQPS"], 5);
    // kubeadm's worker has no --config-dir: config.yaml, edited in place, everything else kept.
    let config = String::from_utf8(std::fs::read(&sim.kubelet.config).unwrap()).unwrap();
    let before = String::from_utf8(config_before).unwrap();
    assert_eq!(
        config.replace("eventRecordQPS: 5\n", ""),
        before,
        "exactly one line added"
    );
    let t = text(&out);
    assert!(
        t.contains("kubeadm upgrade"),
        "says what an upgrade undoes: {t}"
    );
    let log = sim.log();
    assert_eq!(log[0]["state"], "committed", "{log:?}");
    let show = sim.journal_show(log[0]["txid"].as_u64().unwrap());
    assert!(
        show.contains("restarted kubelet.service (After side written)"),
        "{show}"
    );
    assert!(show.contains("audit passed"), "{show}");
    assert!(
        show.contains("the Node's Ready condition could not be checked"),
        "a worker whose API server is down: said once: {show}"
    );
    // Already so: nothing journaled, nothing restarted.
    let again = sim.run(&["kubelet", "set", "eventRecordQPS=5"]);
    assert_eq!(code(&again), 0);
    assert!(text(&again).contains("unchanged"), "{}", text(&again));
    assert_eq!(sim.log().len(), log.len());
    assert_eq!(sim.show()["MainPID"], new.to_string());
}

#[test]
fn a_configuration_the_kubelet_refuses_is_rolled_back_and_the_old_kubelet_proven() {
    let sim = worker(fast(), |_| {});
    let old = sim.wait_healthy(None);
    for (i, bad) in ["tlsCipherSuites=TLS_NOT_A_CIPHER", "eventRecordQPS=-1"]
        .iter()
        .enumerate()
    {
        let before = sim.files();
        let out = sim.run(&["-o", "json", "kubelet", "set", bad]);
        assert_eq!(code(&out), 3, "rolled back after the gate: {}", sim.diag());
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["result"], "rolled-back");
        assert_eq!(report["verified"], "healthy", "{report}");
        assert_eq!(sim.files(), before, "every file byte-identical ({bad})");
        let pid = sim.wait_healthy(Some(old));
        assert_eq!(sim.effective()["eventRecordQPS"], 50);
        let log = sim.log();
        assert_eq!(log.len(), i + 1);
        assert_eq!(log[0]["state"], "rolled-back");
        let show = sim.journal_show(log[0]["txid"].as_u64().unwrap());
        assert!(show.contains("crash: pid"), "crashes journaled: {show}");
        assert!(
            show.contains("restarted kubelet.service (Before side written)"),
            "{show}"
        );
        assert!(cmdline(pid).first().is_some_and(|a| a.ends_with("kubelet")));
    }
}

/// kharden started in the background and SIGKILLed once `ready` holds.
fn kill_during_gate(sim: &Sim, args: &[&str], ready: impl Fn() -> bool) {
    let mut child = sim
        .kharden()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the gate to be under way", LONG, || ready().then_some(())).unwrap();
    // Still gating (the gate cannot pass yet).
    assert!(child.try_wait().unwrap().is_none(), "kharden ended early");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
}

#[test]
fn sigkill_during_the_gate_then_recover_restores_and_restarts_the_running_kubelet() {
    let sim = worker(fast(), |_| {});
    let old = sim.wait_healthy(None);
    let before = sim.files();
    // A refused configuration: the kubelet crash-loops under systemd, kharden waits (no crash
    // limit) and is killed.
    kill_during_gate(
        &sim,
        &[
            "kubelet",
            "set",
            "eventRecordQPS=-1",
            "--max-crashes",
            "0",
            "--health-timeout",
            "600",
        ],
        || {
            sim.show()["NRestarts"].parse::<u32>().unwrap_or(0) >= 2
                && std::fs::read(&sim.kubelet.config).ok()
                    != before[&sim.kubelet.config.display().to_string()]
        },
    );
    assert_ne!(sim.files(), before, "killed with the after side written");
    let out = sim.run(&["recover"]);
    assert_eq!(code(&out), 0, "{}", sim.diag());
    assert_eq!(sim.files(), before, "restored");
    sim.wait_healthy(Some(old));
    assert_eq!(sim.effective()["eventRecordQPS"], 50);
    let log = sim.log();
    assert_eq!(log[0]["state"], "rolled-back", "{log:?}");
    let show = sim.journal_show(log[0]["txid"].as_u64().unwrap());
    assert!(show.contains("was running, so it was restarted"), "{show}");

    // A good change killed during its stability window: the kubelet runs the after side,
    // healthy; recovery restores the last known-good and restarts it on it.
    let old = sim.wait_healthy(None);
    kill_during_gate(
        &sim,
        &[
            "kubelet",
            "set",
            "eventRecordQPS=5",
            "--stable-for",
            "8",
            "--health-timeout",
            "120",
        ],
        || {
            read_effective_config(sim.root())
                .is_ok_and(|e| e.pid != old && e.kubeletconfig["eventRecordQPS"] == 5)
        },
    );
    let out = sim.run(&["recover"]);
    assert_eq!(code(&out), 0);
    assert_eq!(sim.files(), before);
    sim.wait_healthy(Some(old));
    assert_eq!(
        sim.effective()["eventRecordQPS"],
        50,
        "running the restored file"
    );

    // At boot: the kubelet is not running yet; recovery restores the files and restarts
    // nothing (kharden-recover.service runs before kubelet.service).
    kill_during_gate(
        &sim,
        &[
            "kubelet",
            "set",
            "eventRecordQPS=6",
            "--stable-for",
            "8",
            "--health-timeout",
            "120",
        ],
        || read_effective_config(sim.root()).is_ok_and(|e| e.kubeletconfig["eventRecordQPS"] == 6),
    );
    assert_eq!(sim.sm.systemctl(&["stop", "kubelet"]).unwrap().code, 0);
    let out = sim.run(&["recover"]);
    assert_eq!(code(&out), 0);
    assert_eq!(sim.files(), before);
    assert_eq!(
        sim.show()["ActiveState"],
        "inactive",
        "recovery started nothing"
    );
    let show = sim.journal_show(sim.log()[0]["txid"].as_u64().unwrap());
    assert!(
        show.contains("is not running: it starts on the restored files"),
        "{show}"
    );
    assert_eq!(sim.sm.systemctl(&["start", "kubelet"]).unwrap().code, 0);
    sim.wait_healthy(None);
    assert_eq!(sim.effective()["eventRecordQPS"], 50);
}

#[test]
fn a_flag_in_kubelet_extra_args_is_edited_where_it_is() {
    let sim = worker(
        KubeletNodeOptions {
            extra_args: "--event-qps=7 --v=2".into(),
            ..fast()
        },
        |_| {},
    );
    sim.wait_healthy(None);
    assert_eq!(sim.effective()["eventRecordQPS"], 7);
    let config = std::fs::read(&sim.kubelet.config).unwrap();
    let out = sim.run(&["kubelet", "set", "eventRecordQPS=9"]);
    assert_eq!(code(&out), 0, "{}", sim.diag());
    assert_eq!(
        std::fs::read_to_string(&sim.kubelet.extra_args_env).unwrap(),
        "KUBELET_EXTRA_ARGS=--event-qps=9 --v=2\n",
        "the flag edited in place, the other flag and the quoting kept"
    );
    assert_eq!(
        std::fs::read(&sim.kubelet.config).unwrap(),
        config,
        "not the overridden file"
    );
    let pid = sim.wait_healthy(None);
    assert!(cmdline(pid).contains(&"--event-qps=9".to_string()));
    assert_eq!(sim.effective()["eventRecordQPS"], 9);
    assert!(text(&out).contains("a flag sets it"), "{}", text(&out));

    // Drift reads the environment file's flags: another flag added by hand is a change, the
    // flag set back is a revert of kharden's change.
    let drift = |sim: &Sim| {
        let out = sim
            .kharden()
            .args(["-o", "json", "drift"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (code(&out), v["files"][0].clone())
    };
    std::fs::write(
        &sim.kubelet.extra_args_env,
        "KUBELET_EXTRA_ARGS=--event-qps=9 --v=4\n",
    )
    .unwrap();
    let (c, f) = drift(&sim);
    assert_eq!((c, f["status"].as_str()), (10, Some("changed")), "{f}");
    std::fs::write(
        &sim.kubelet.extra_args_env,
        "KUBELET_EXTRA_ARGS=\"--v=2 --event-qps=7\"\n",
    )
    .unwrap();
    let (c, f) = drift(&sim);
    assert_eq!((c, f["status"].as_str()), (10, Some("reverted")), "{f}");
    assert_eq!(f["undone"][0]["change"], "set --event-qps=9", "{f}");
}

#[test]
fn a_flag_written_in_the_unit_is_refused_with_the_reason_and_nothing_changes() {
    let sim = worker(fast(), |k| {
        let d = std::fs::read_to_string(&k.dropin).unwrap();
        std::fs::write(
            &k.dropin,
            d.replace(
                "ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS",
                "ExecStart=/usr/bin/kubelet --event-qps=3 $KUBELET_KUBECONFIG_ARGS",
            ),
        )
        .unwrap();
    });
    let pid = sim.wait_healthy(None);
    let before = sim.files();
    let out = sim.run(&["kubelet", "set", "eventRecordQPS=9"]);
    assert_eq!(code(&out), 1, "refused");
    assert!(text(&out).contains("ExecStart="), "{}", text(&out));
    assert_eq!(sim.files(), before, "byte-identical");
    assert_eq!(sim.show()["MainPID"], pid.to_string(), "not restarted");
    let log = sim.log();
    assert_eq!(log[0]["state"], "aborted");
    assert!(
        log[0]["reason"].as_str().unwrap().contains("ExecStart="),
        "{log:?}"
    );

    // A zero the kubelet replaces by its default would change nothing: refused too.
    let out = sim.run(&["kubelet", "set", "streamingConnectionIdleTimeout=0s"]);
    assert_eq!(code(&out), 1);
    assert!(text(&out).contains("4h0m0s"), "{}", text(&out));
    assert_eq!(sim.files(), before);
    // Unknown keys are a usage error (the kubelet would silently ignore them).
    let out = sim.run(&["kubelet", "set", "readOnlyPorts=0"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn with_a_config_dir_the_change_goes_to_kharden_s_drop_in() {
    let sim = worker(
        KubeletNodeOptions {
            config_dir: Some("/etc/kubernetes/kubelet.conf.d".into()),
            ..fast()
        },
        |_| {},
    );
    sim.wait_healthy(None);
    let config = std::fs::read(&sim.kubelet.config).unwrap();
    let out = sim.run(&[
        "kubelet",
        "set",
        "eventRecordQPS=5",
        "authentication.anonymous.enabled=false",
    ]);
    assert_eq!(code(&out), 0, "{}", sim.diag());
    assert_eq!(std::fs::read(&sim.kubelet.config).unwrap(), config);
    let dropin = sim
        .kubelet
        .config_dir
        .clone()
        .unwrap()
        .join("99-kharden.conf");
    let text_dropin = std::fs::read_to_string(&dropin).unwrap();
    assert!(text_dropin.contains("eventRecordQPS: 5"), "{text_dropin}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dropin).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    sim.wait_healthy(None);
    assert_eq!(sim.effective()["eventRecordQPS"], 5);
    assert!(
        !text(&out).contains("note: "),
        "nothing an upgrade would undo: {}",
        text(&out)
    );

    // `kharden audit` reads it as the kubelet does, and explains kube-bench's other reading.
    let out = sim
        .kharden()
        .args(["-o", "json", "audit", "--targets", "node"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks: Vec<&serde_json::Value> = v["checks"].as_array().unwrap().iter().collect();
    let anon = checks.iter().find(|c| c["id"] == "4.2.1").unwrap();
    assert_eq!(anon["effective"], true, "{anon}");
}

#[test]
fn a_control_plane_kubelet_keeps_its_static_pods_and_asks_the_api_server_about_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = write_node(
        dir.path(),
        NodePorts::free(),
        &NodeOptions {
            controller_manager: false,
            scheduler: false,
            kubelet: Some(fast()),
            ..NodeOptions::default()
        },
    )
    .unwrap();
    let ready_file = dir.path().join("node-ready");
    let sim = spawn(
        dir,
        node.kubelet.clone().unwrap(),
        &[
            ("FAKE_NODE_READY_FILE", ready_file.display().to_string()),
            ("FAKE_HOST_ROOT", node.root.display().to_string()),
        ],
    );
    sim.wait_healthy(None);
    // The API server up, answering the kubelet's client certificate.
    wait_until("the apiserver", LONG, || {
        std::net::TcpStream::connect(("127.0.0.1", node.ports.apiserver))
            .ok()
            .map(|_| ())
    })
    .unwrap();
    let out = sim.run(&["kubelet", "set", "eventRecordQPS=5"]);
    assert_eq!(code(&out), 0, "{}", sim.diag());
    let t = text(&out);
    assert!(t.contains("kube-apiserver (pid"), "kept: {t}");
    let log = sim.log();
    let show = sim.journal_show(log[0]["txid"].as_u64().unwrap());
    assert!(
        show.contains(&format!("Node {} Ready", sim.kubelet.node_name)),
        "{show}"
    );
    assert!(
        show.contains("kube-apiserver (pid"),
        "the static pod watched: {show}"
    );

    // A Node that is NotReady: no change could be proven, none is made.
    std::fs::write(&ready_file, "False\n").unwrap();
    let before = sim.files();
    let out = sim.run(&["kubelet", "set", "eventRecordQPS=6"]);
    assert_eq!(code(&out), 1, "{}", sim.diag());
    assert!(text(&out).contains("Ready=False"), "{}", text(&out));
    assert_eq!(sim.files(), before);
}

/// A worker with a `--config-dir` drop-in that re-opens the read-only port: kube-bench, which
/// never reads drop-ins, passes 4.2.4; the kubelet really serves the port.
fn worker_with_a_legacy_dropin() -> Sim {
    worker(
        KubeletNodeOptions {
            config_dir: Some("/etc/kubernetes/kubelet.conf.d".into()),
            ..fast()
        },
        |k| {
            std::fs::write(
                k.config_dir.as_ref().unwrap().join("50-legacy.conf"),
                "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nreadOnlyPort: 10255\n",
            )
            .unwrap();
        },
    )
}

fn audit_json(sim: &Sim) -> Vec<serde_json::Value> {
    let out = sim
        .kharden()
        .args(["-o", "json", "audit", "--targets", "node"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["checks"].as_array().unwrap().clone()
}

fn check<'a>(checks: &'a [serde_json::Value], id: &str) -> &'a serde_json::Value {
    checks.iter().find(|c| c["id"] == id).unwrap()
}

#[test]
fn kharden_audit_on_a_worker_reads_every_kubelet_check_both_ways() {
    let sim = worker_with_a_legacy_dropin();
    sim.wait_healthy(None);
    assert_eq!(sim.effective()["readOnlyPort"], 10255);
    let checks = audit_json(&sim);
    let ids: Vec<&str> = checks
        .iter()
        .filter_map(|c| c["id"].as_str())
        .filter(|i| i.starts_with("4.2.") || i.starts_with("4.3."))
        .collect();
    assert!(ids.len() >= 15, "every 4.2 and 4.3 check: {ids:?}");
    for id in ids {
        let c = check(&checks, id);
        assert!(c["kube_bench_status"].is_string(), "{c}");
        // Both readings, or why the effective one has no opinion.
        assert!(
            c["effective"].is_boolean() || c["effective_note"].is_string(),
            "{id}: {c}"
        );
    }
    let ro = check(&checks, "4.2.4");
    assert_eq!(ro["kube_bench_status"], "PASS", "{ro}");
    assert_eq!(ro["effective"], false, "{ro}");
    let why = ro["disagreement"].as_str().unwrap();
    assert!(
        why.contains("50-legacy.conf") && why.contains("kube-bench never reads"),
        "{why}"
    );
    // A value the kubelet takes by default, which kube-bench does not apply.
    assert_eq!(check(&checks, "4.2.8")["effective"], true);
    let out = sim
        .kharden()
        .args(["audit", "--targets", "node"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "uses: readOnlyPort=10255 (drop-in /etc/kubernetes/kubelet.conf.d/50-legacy.conf)"
        ),
        "{text}"
    );
}

#[test]
fn kharden_harden_fixes_the_safe_kubelet_checks_through_gated_restarts() {
    let sim = worker_with_a_legacy_dropin();
    let old = sim.wait_healthy(None);
    let dry = sim.run(&["harden", "--dry-run"]);
    assert_eq!(code(&dry), 0);
    let before = sim.files();
    let out = sim.run(&["-o", "json", "harden"]);
    assert_eq!(code(&out), 0, "{}", sim.diag());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fixed: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["result"] == "fixed")
        .flat_map(|s| s["controls"].as_array().unwrap().iter())
        .filter_map(|c| c.as_str())
        .collect();
    assert!(fixed.contains(&"4.2.4") && fixed.contains(&"4.2.12"), "{r}");
    let manual: Vec<&str> = r["manual"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    for id in ["4.2.7", "4.2.9", "4.2.13", "4.2.14"] {
        assert!(manual.contains(&id), "{id} left to a person, with why: {r}");
    }
    assert!(r["still_failing"].as_array().unwrap().is_empty(), "{r}");
    // The read-only port was closed in the drop-in that opened it; the ciphers went to
    // kharden's own drop-in; config.yaml untouched.
    let legacy = sim
        .kubelet
        .config_dir
        .clone()
        .unwrap()
        .join("50-legacy.conf");
    assert!(std::fs::read_to_string(legacy)
        .unwrap()
        .contains("readOnlyPort: 0"));
    let cfg = sim.kubelet.config.display().to_string();
    assert_eq!(sim.files()[&cfg], before[&cfg]);
    sim.wait_healthy(Some(old));
    assert_eq!(sim.effective()["readOnlyPort"], 0);
    let checks = audit_json(&sim);
    for id in ["4.2.4", "4.2.12"] {
        assert_eq!(check(&checks, id)["effective"], true, "{id}");
    }
    // Nothing left to do: a second harden changes nothing.
    let again = sim.run(&["-o", "json", "harden"]);
    assert_eq!(code(&again), 0);
    let r: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert!(r["steps"].as_array().unwrap().is_empty(), "{r}");

    // Drift, judged by the settings: the legacy drop-in written back by someone's tooling
    // (not byte for byte what it was) undoes 4.2.4; kharden's drop-in edited by hand keeps
    // its ciphers (a change, not a revert).
    let dropins = sim.kubelet.config_dir.clone().unwrap();
    std::fs::write(
        dropins.join("50-legacy.conf"),
        "# restored by the image's tooling
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
readOnlyPort: 10255
",
    )
    .unwrap();
    let ours = std::fs::read_dir(&dropins)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap() != "50-legacy.conf")
        .unwrap();
    let mut edited = std::fs::read_to_string(&ours).unwrap();
    edited.push_str("# reviewed by the security team\n");
    std::fs::write(&ours, edited).unwrap();
    let out = sim
        .kharden()
        .args(["-o", "json", "drift"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 10, "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = |name: &str| {
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} in {v}"))
            .clone()
    };
    let legacy = file("50-legacy.conf");
    assert_eq!(legacy["status"], "reverted", "{v}");
    assert_eq!(
        legacy["controls_undone"],
        serde_json::json!(["4.2.4"]),
        "{v}"
    );
    assert_eq!(legacy["undone"][0]["change"], "set readOnlyPort = 0", "{v}");
    let mine = file(ours.file_name().unwrap().to_str().unwrap());
    assert_eq!(mine["status"], "changed", "{v}");
    assert!(mine["controls"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("4.2.12")));
    assert_eq!(v["controls_undone"], serde_json::json!(["4.2.4"]), "{v}");
    // harden re-applies what was undone, and says so.
    let out = sim.run(&["-o", "json", "harden"]);
    assert_eq!(code(&out), 0, "{}", sim.diag());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["reapplied"], serde_json::json!(["4.2.4"]), "{r}");
    let out = sim
        .kharden()
        .args(["-o", "json", "drift"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["controls_undone"].as_array().unwrap().is_empty(), "{v}");
}
