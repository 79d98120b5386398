//! End to end: the service-manager emulator runs `kubelet.service` from kubeadm's unit and
//! drop-in; the kubelet emulator loads its configuration like the kubelet, serves `/healthz`,
//! refuses what the kubelet refuses (and is restarted every `RestartSec`), and its static pods
//! survive its restarts. Nothing outlives a test.
//!
//! Every test has its own temporary root and free ports. Waits are on conditions with generous
//! deadlines (the machine may be loaded); no assertion is on a wall-clock duration.

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use kharden_testnode::{
    http_get, node_processes, read_effective_config, wait_until, write_node, write_worker_node,
    KubeletNode, KubeletNodeOptions, KubeletOptions, NodeOptions, NodePorts, ServiceManagerOptions,
    ServiceManagerProcess,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(60);

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kharden-testnode"))
}

struct Sim {
    kubelet: KubeletNode,
    sm: ServiceManagerProcess,
    dir: tempfile::TempDir,
}

fn fast() -> KubeletNodeOptions {
    KubeletNodeOptions {
        restart_sec: Duration::from_millis(300),
        ..KubeletNodeOptions::default()
    }
}

fn kubelet_opts(root: &Path) -> KubeletOptions {
    let mut k = KubeletOptions::simulated_node(root, &exe()).unwrap();
    k.grace_period = Duration::from_secs(2);
    k
}

fn start_worker(opts: KubeletNodeOptions) -> Sim {
    let dir = tempfile::tempdir().unwrap();
    let kubelet = write_worker_node(dir.path(), &opts).unwrap();
    let sm = ServiceManagerProcess::spawn(
        &exe(),
        &ServiceManagerOptions::new(dir.path()),
        &kubelet_opts(dir.path()),
    )
    .unwrap();
    Sim { kubelet, sm, dir }
}

fn start_control_plane() -> Sim {
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
    let sm = ServiceManagerProcess::spawn(
        &exe(),
        &ServiceManagerOptions::new(dir.path()),
        &kubelet_opts(dir.path()),
    )
    .unwrap();
    Sim {
        kubelet: node.kubelet.unwrap(),
        sm,
        dir,
    }
}

impl Sim {
    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn show(&self) -> BTreeMap<String, String> {
        self.sm.show("kubelet.service", &[]).unwrap()
    }

    /// Run the fake systemctl binary, as kharden will (`--systemctl PATH`).
    fn systemctl(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(self.sm.systemctl_path())
            .args(args)
            .env_remove("KHARDEN_TESTNODE_SYSTEMD_SOCKET")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn diag(&self) -> String {
        format!(
            "show: {:#?}\nmanager events:\n{}\nkubelet journal:\n{}\nkubelet events:\n{}",
            self.sm.show("kubelet.service", &[]).ok(),
            self.sm.events(),
            self.sm.journal("kubelet"),
            self.sm.kubelet_events()
        )
    }

    /// Wait until kubelet.service is active with a kubelet (other than `not`) that has written
    /// its effective configuration and answers /healthz; returns its PID.
    fn wait_healthy(&self, not: Option<u32>) -> u32 {
        let end = Instant::now() + LONG;
        loop {
            let p = self.show();
            let pid: u32 = p["MainPID"].parse().unwrap();
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

    fn rewrite(&self, path: &Path, f: impl FnOnce(&str) -> String) {
        let text = std::fs::read_to_string(path).unwrap();
        let new = f(&text);
        assert_ne!(text, new);
        let tmp = path.with_file_name(".test.tmp");
        std::fs::write(&tmp, new).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    fn effective(&self) -> serde_json::Value {
        read_effective_config(self.root()).unwrap().kubeletconfig
    }
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

fn alive(pid: u32) -> bool {
    // A zombie is not alive: its stat state is Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
                .unwrap_or(true)
        })
        .unwrap_or(false)
}

/// The start time of a process (clock ticks since boot), to tell a PID reused from the same one.
fn start_time(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[test]
fn kubeadm_unit_runs_the_kubelet_with_the_flags_a_real_node_has() {
    let sim = start_worker(fast());
    let pid = sim.wait_healthy(None);
    assert_eq!(
        cmdline(pid),
        [
            "/usr/bin/kubelet",
            "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
            "--kubeconfig=/etc/kubernetes/kubelet.conf",
            "--config=/var/lib/kubelet/config.yaml",
            "--container-runtime-endpoint=unix:///run/containerd/containerd.sock",
            "--hostname-override=testnode",
            "--pod-infra-container-image=registry.k8s.io/pause:3.9",
        ]
    );
    let e = sim.effective();
    // kubeadm's file with the v1beta1 defaults applied.
    assert_eq!(e["readOnlyPort"], 0);
    assert_eq!(e["authentication"]["anonymous"]["enabled"], false);
    assert_eq!(e["authorization"]["mode"], "Webhook");
    assert_eq!(e["rotateCertificates"], true);
    assert_eq!(e["streamingConnectionIdleTimeout"], "4h0m0s");
    assert_eq!(e["eventRecordQPS"], 50);
    assert_eq!(
        e["containerRuntimeEndpoint"],
        "unix:///run/containerd/containerd.sock"
    );
    let p = sim.show();
    assert_eq!(p["NRestarts"], "0");
    assert_eq!(p["Restart"], "always");
    assert_eq!(p["RestartUSec"], "300ms");
    assert_eq!(p["FragmentPath"], "/usr/lib/systemd/system/kubelet.service");
    assert_eq!(
        p["DropInPaths"],
        "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"
    );
    assert!(p["ExecStart"].contains("argv[]=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS"), "{p:?}");
    // The fake systemctl binary, found through its location under the root.
    let (code, out, err) =
        sim.systemctl(&["show", "kubelet", "-p", "MainPID,ActiveState,SubState"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&format!("MainPID={pid}").as_str()), "{out}");
    assert!(lines.contains(&"ActiveState=active"), "{out}");
    assert!(lines.contains(&"SubState=running"), "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    let (code, out, _) = sim.systemctl(&["show", "kubelet.service", "-P", "MainPID"]);
    assert_eq!((code, out.trim()), (0, pid.to_string().as_str()));
    let (code, out, _) = sim.systemctl(&["is-active", "kubelet"]);
    assert_eq!((code, out.as_str()), (0, "active\n"));
    // Files and modes as kubeadm leaves them.
    let mode = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    };
    assert_eq!(mode(&sim.kubelet.kubeconfig), 0o600);
    assert_eq!(mode(&sim.kubelet.config), 0o644);
    assert_eq!(mode(&sim.kubelet.ca_cert), 0o644);
    assert_eq!(mode(&sim.kubelet.unit), 0o644);
    assert!(!sim.root().join("etc/kubernetes/pki/ca.key").exists());
    assert_eq!(
        std::fs::read_dir(&sim.kubelet.manifests_dir)
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn accepted_change_then_restart_gives_a_new_kubelet_with_the_new_config() {
    let sim = start_worker(fast());
    let old = sim.wait_healthy(None);
    let before = sim.show();
    sim.rewrite(&sim.kubelet.config, |t| {
        format!("{t}eventRecordQPS: 5\nprotectKernelDefaults: true\ntlsCipherSuites:\n- TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n")
    });
    let (code, _, err) = sim.systemctl(&["restart", "kubelet.service"]);
    assert_eq!(code, 0, "{err}");
    // The job returned: the new process is already the main one.
    let p = sim.show();
    let new: u32 = p["MainPID"].parse().unwrap();
    assert_ne!(new, old);
    assert!(
        p["ExecMainStartTimestampMonotonic"].parse::<u64>().unwrap()
            > before["ExecMainStartTimestampMonotonic"]
                .parse::<u64>()
                .unwrap()
    );
    assert_ne!(p["InvocationID"], before["InvocationID"]);
    assert_eq!(
        p["NRestarts"], "0",
        "a manual restart is not an automatic one"
    );
    assert_eq!(sim.wait_healthy(Some(old)), new);
    assert!(!alive(old), "the old kubelet is gone");
    let e = sim.effective();
    assert_eq!(e["eventRecordQPS"], 5);
    assert_eq!(e["protectKernelDefaults"], true);
    assert_eq!(
        e["tlsCipherSuites"],
        serde_json::json!(["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"])
    );
}

#[test]
fn refused_config_crash_loops_every_restart_sec_until_restored() {
    let sim = start_worker(fast());
    let old = sim.wait_healthy(None);
    let good = std::fs::read(&sim.kubelet.config).unwrap();
    sim.rewrite(&sim.kubelet.config, |t| format!("{t}eventRecordQPS: -1\n"));
    // Type=simple: the job succeeds once the process is forked, whatever it does next.
    let (code, _, err) = sim.systemctl(&["restart", "kubelet"]);
    assert_eq!(code, 0, "{err}");
    let n1 = wait_until("automatic restarts", LONG, || {
        let n: u32 = sim.show()["NRestarts"].parse().ok()?;
        (n >= 2).then_some(n)
    })
    .unwrap();
    // It keeps going.
    wait_until("more automatic restarts", LONG, || {
        let n: u32 = sim.show()["NRestarts"].parse().ok()?;
        (n > n1).then_some(())
    })
    .unwrap();
    assert!(
        http_get(sim.kubelet.healthz_port, "/healthz").is_none(),
        "/healthz is down"
    );
    let p = sim.show();
    assert_eq!(p["Result"], "exit-code", "{p:?}");
    assert_eq!(p["ExecMainStatus"], "1", "{p:?}");
    assert!(!alive(old));
    let journal = sim.sm.journal("kubelet.service");
    assert!(
        journal.contains("\"command failed\"")
            && journal.contains("eventRecordQPS (--event-qps) -1 must not be a negative number"),
        "{journal}"
    );
    // While it crash-loops, is-active is not true most of the time: wait to see it so.
    wait_until("is-active to say activating", LONG, || {
        let (code, out, _) = sim.systemctl(&["is-active", "kubelet"]);
        (code == 3 && out.trim() == "activating").then_some(())
    })
    .unwrap();
    // Roll back: the old file, a restart, and a healthy kubelet again.
    let tmp = sim.kubelet.config.with_file_name(".rollback.tmp");
    std::fs::write(&tmp, &good).unwrap();
    std::fs::rename(&tmp, &sim.kubelet.config).unwrap();
    let (code, _, err) = sim.systemctl(&["restart", "kubelet"]);
    assert_eq!(code, 0, "{err}");
    sim.wait_healthy(None);
    assert_eq!(
        sim.show()["NRestarts"],
        "0",
        "a manual restart resets the counter"
    );
    assert_eq!(sim.effective()["eventRecordQPS"], 50);
}

#[test]
fn other_refusals_unknown_cipher_bad_authz_mode_wrong_type_unknown_flag() {
    let sim = start_worker(fast());
    sim.wait_healthy(None);
    let good = std::fs::read(&sim.kubelet.config).unwrap();
    let good_text = String::from_utf8(good.clone()).unwrap();
    let cases: [(String, &str); 5] = [
        (
            format!("{good_text}tlsCipherSuites: [TLS_NOT_A_CIPHER]\n"),
            "Cipher suite TLS_NOT_A_CIPHER not supported",
        ),
        (
            good_text.replace("  mode: Webhook\n", "  mode: Nope\n"),
            "unknown authorization mode Nope",
        ),
        (
            format!("{good_text}readOnlyPort: \"10255\"\n"),
            "failed to decode kubelet config file",
        ),
        (format!("{good_text}readOnlyPort: [\n"), "yaml:"),
        (
            format!("{good_text}rotateCertificates: false\n"),
            "duplicate",
        ),
    ];
    for (text, message) in cases {
        std::fs::write(&sim.kubelet.config, text).unwrap();
        let (code, _, err) = sim.systemctl(&["restart", "kubelet"]);
        assert_eq!(code, 0, "{err}");
        wait_until(message, LONG, || {
            sim.sm.journal("kubelet").contains(message).then_some(())
        })
        .unwrap();
        std::fs::write(&sim.kubelet.config, &good).unwrap();
    }
    // An unknown flag in KUBELET_EXTRA_ARGS: environment files are read at every start.
    std::fs::write(
        &sim.kubelet.extra_args_env,
        "KUBELET_EXTRA_ARGS=--no-such-flag=1\n",
    )
    .unwrap();
    let (code, _, _) = sim.systemctl(&["restart", "kubelet"]);
    assert_eq!(code, 0);
    wait_until("unknown flag", LONG, || {
        sim.sm
            .journal("kubelet")
            .contains("failed to parse kubelet flag: unknown flag: --no-such-flag")
            .then_some(())
    })
    .unwrap();
    std::fs::write(&sim.kubelet.extra_args_env, "KUBELET_EXTRA_ARGS=\n").unwrap();
    sim.systemctl(&["restart", "kubelet"]);
    sim.wait_healthy(None);
}

#[test]
fn flags_in_kubelet_extra_args_override_the_file() {
    let sim = start_worker(KubeletNodeOptions {
        extra_args: "--read-only-port=10255 --event-qps=7".into(),
        ..fast()
    });
    let pid = sim.wait_healthy(None);
    let argv = cmdline(pid);
    assert!(
        argv.ends_with(&["--read-only-port=10255".into(), "--event-qps=7".into()]),
        "{argv:?}"
    );
    let e = sim.effective();
    assert_eq!(e["readOnlyPort"], 10255);
    assert_eq!(e["eventRecordQPS"], 7);
    // The file says otherwise: the flag still wins.
    sim.rewrite(&sim.kubelet.config, |t| {
        format!("{t}readOnlyPort: 0\neventRecordQPS: 1\n")
    });
    // Quotes in an environment file keep a value with spaces together... and $VAR splitting
    // then splits it at whitespace again, as systemd does.
    std::fs::write(
        &sim.kubelet.extra_args_env,
        "KUBELET_EXTRA_ARGS=\"--read-only-port=10266 --anonymous-auth=true\"\n",
    )
    .unwrap();
    let (code, _, err) = sim.systemctl(&["restart", "kubelet"]);
    assert_eq!(code, 0, "{err}");
    let new = sim.wait_healthy(Some(pid));
    assert!(cmdline(new).ends_with(&[
        "--read-only-port=10266".into(),
        "--anonymous-auth=true".into()
    ]));
    let e = sim.effective();
    assert_eq!(e["readOnlyPort"], 10266);
    assert_eq!(e["eventRecordQPS"], 1, "no flag any more: the file's value");
    assert_eq!(e["authentication"]["anonymous"]["enabled"], true);
}

#[test]
fn config_dir_drop_ins_merge_over_the_file() {
    let sim = start_worker(KubeletNodeOptions {
        config_dir: Some("/etc/kubernetes/kubelet.conf.d".into()),
        ..fast()
    });
    let pid = sim.wait_healthy(None);
    let dir = sim.kubelet.config_dir.clone().unwrap();
    std::fs::write(
        dir.join("50-hardening.conf"),
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nauthentication:\n  webhook:\n    cacheTTL: 1m\nmakeIPTablesUtilChains: false\nunknownField: 1\n",
    )
    .unwrap();
    sim.systemctl(&["restart", "kubelet"]);
    let new = sim.wait_healthy(Some(pid));
    let report = read_effective_config(sim.root()).unwrap();
    let e = &report.kubeletconfig;
    assert_eq!(e["makeIPTablesUtilChains"], false);
    assert_eq!(e["authentication"]["webhook"]["cacheTTL"], "1m0s");
    assert_eq!(
        e["authentication"]["x509"]["clientCAFile"], "/etc/kubernetes/pki/ca.crt",
        "merged, not replaced"
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("unknown field") && w.contains("unknownField")),
        "{:?}",
        report.warnings
    );
    // A drop-in without apiVersion/kind is fatal.
    std::fs::write(dir.join("60-bad.conf"), "readOnlyPort: 0\n").unwrap();
    sim.systemctl(&["restart", "kubelet"]);
    wait_until("drop-in refusal", LONG, || {
        sim.sm
            .journal("kubelet")
            .contains("no apiVersion/kind")
            .then_some(())
    })
    .unwrap();
    std::fs::remove_file(dir.join("60-bad.conf")).unwrap();
    sim.systemctl(&["restart", "kubelet"]);
    sim.wait_healthy(Some(new));
}

#[test]
fn unit_changes_need_daemon_reload_environment_files_do_not() {
    let sim = start_worker(fast());
    let pid = sim.wait_healthy(None);
    // A drop-in adds a flag; without daemon-reload the old definition is used, with a warning.
    let dropin_dir = sim.kubelet.dropin.parent().unwrap().to_path_buf();
    std::fs::write(
        dropin_dir.join("20-extra.conf"),
        "[Service]\nEnvironment=\"KUBELET_EXTRA_ARGS=--event-qps=3\"\n",
    )
    .unwrap();
    let (code, _, err) = sim.systemctl(&["restart", "kubelet"]);
    assert_eq!(code, 0);
    assert!(err.contains("changed on disk"), "{err}");
    let second = sim.wait_healthy(Some(pid));
    assert!(!cmdline(second).contains(&"--event-qps=3".to_string()));
    assert_eq!(sim.systemctl(&["daemon-reload"]).0, 0);
    let (code, _, err) = sim.systemctl(&["restart", "kubelet"]);
    assert_eq!(code, 0);
    assert!(!err.contains("changed on disk"), "{err}");
    // EnvironmentFile= wins over Environment=: /etc/default/kubelet sets KUBELET_EXTRA_ARGS=
    // (empty), which overrides the drop-in's Environment= line.
    let third = sim.wait_healthy(Some(second));
    assert!(
        !cmdline(third).contains(&"--event-qps=3".to_string()),
        "{:?}",
        cmdline(third)
    );
    std::fs::remove_file(&sim.kubelet.extra_args_env).unwrap();
    sim.systemctl(&["restart", "kubelet"]);
    let fourth = sim.wait_healthy(Some(third));
    assert!(
        cmdline(fourth).contains(&"--event-qps=3".to_string()),
        "{:?}",
        cmdline(fourth)
    );
    assert_eq!(sim.effective()["eventRecordQPS"], 3);
}

#[test]
fn systemctl_exit_codes_and_unknown_units() {
    let sim = start_worker(fast());
    sim.wait_healthy(None);
    let (code, out, _) = sim.systemctl(&["show", "nosuch", "-p", "LoadState,ActiveState"]);
    assert_eq!(code, 0);
    assert_eq!(out, "LoadState=not-found\nActiveState=inactive\n");
    let (code, out, _) = sim.systemctl(&["is-active", "nosuch.service"]);
    assert_eq!((code, out.as_str()), (3, "inactive\n"));
    let (code, _, err) = sim.systemctl(&["restart", "nosuch.service"]);
    assert_eq!(code, 5);
    assert_eq!(
        err,
        "Failed to restart nosuch.service: Unit nosuch.service not found.\n"
    );
    let (code, _, err) = sim.systemctl(&["frobnicate", "kubelet"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = sim.systemctl(&["--bogus", "show"]);
    assert_eq!(code, 1, "{err}");
    // stop, is-active, start.
    let (code, _, _) = sim.systemctl(&["stop", "kubelet"]);
    assert_eq!(code, 0);
    let p = sim.show();
    assert_eq!(
        (
            p["ActiveState"].as_str(),
            p["SubState"].as_str(),
            p["MainPID"].as_str()
        ),
        ("inactive", "dead", "0")
    );
    assert_eq!(sim.systemctl(&["is-active", "kubelet"]).0, 3);
    assert!(http_get(sim.kubelet.healthz_port, "/healthz").is_none());
    assert_eq!(sim.systemctl(&["start", "kubelet"]).0, 0);
    sim.wait_healthy(None);
    // Without the manager, systemctl says what the real one says on a host without systemd.
    let out = Command::new(sim.sm.systemctl_path())
        .args(["show", "kubelet"])
        .env(
            "KHARDEN_TESTNODE_SYSTEMD_SOCKET",
            sim.root().join("nope.sock"),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Failed to connect to bus"));
}

fn pod_pid(sim: &Sim, pod: &str, after: usize) -> u32 {
    wait_until("a started pod", LONG, || {
        let ev = sim.sm.kubelet_events();
        ev.lines()
            .skip(after)
            .filter(|l| l.contains(&format!(" started pod={pod} ")))
            .last()
            .and_then(|l| l.split(" pid=").nth(1))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse().ok())
    })
    .unwrap()
}

#[test]
fn static_pods_keep_their_pids_across_kubelet_restarts() {
    let sim = start_control_plane();
    let kubelet1 = sim.wait_healthy(None);
    let pod = pod_pid(&sim, "kube-apiserver.yaml", 0);
    let born = start_time(pod).unwrap();
    assert!(
        cmdline(pod).first().map(String::as_str) == Some("kube-apiserver"),
        "{:?}",
        cmdline(pod)
    );
    let lines = sim.sm.kubelet_events().lines().count();
    assert_eq!(sim.systemctl(&["restart", "kubelet"]).0, 0);
    let kubelet2 = sim.wait_healthy(Some(kubelet1));
    wait_until("adoption", LONG, || {
        sim.sm
            .kubelet_events()
            .lines()
            .skip(lines)
            .any(|l| l.contains(&format!(" adopted pod=kube-apiserver.yaml pid={pod}")))
            .then_some(())
    })
    .unwrap();
    assert!(
        alive(pod) && start_time(pod) == Some(born),
        "the pod was not restarted"
    );
    assert!(!alive(kubelet1));
    // A manifest changed while the kubelet is down is restarted by the next kubelet; the pod
    // kept running meanwhile.
    assert_eq!(sim.systemctl(&["stop", "kubelet"]).0, 0);
    assert!(alive(pod), "pods outlive a stopped kubelet");
    let manifest = sim.kubelet.manifests_dir.join("kube-apiserver.yaml");
    sim.rewrite(&manifest, |t| {
        t.replacen(
            "    - --service-cluster-ip-range=10.96.0.0/12\n",
            "    - --service-cluster-ip-range=10.96.0.0/12\n    - --profiling=false\n",
            1,
        )
    });
    let lines = sim.sm.kubelet_events().lines().count();
    assert_eq!(sim.systemctl(&["start", "kubelet"]).0, 0);
    sim.wait_healthy(Some(kubelet2));
    let new_pod = pod_pid(&sim, "kube-apiserver.yaml", lines);
    assert_ne!(new_pod, pod);
    assert!(cmdline(new_pod).contains(&"--profiling=false".to_string()));
    wait_until("the old pod to go", LONG, || (!alive(pod)).then_some(())).unwrap();
    // A manifest removed while the kubelet is down: its pod is stopped by the next kubelet.
    sim.systemctl(&["stop", "kubelet"]);
    std::fs::remove_file(&manifest).unwrap();
    sim.systemctl(&["start", "kubelet"]);
    wait_until("the removed pod to go", LONG, || {
        (!alive(new_pod)).then_some(())
    })
    .unwrap();
}

#[test]
fn nothing_outlives_the_guard_even_after_sigkill_or_panic() {
    // Drop: every process of the node is gone.
    let sim = start_control_plane();
    sim.wait_healthy(None);
    let pod = pod_pid(&sim, "kube-apiserver.yaml", 0);
    let root = sim.root().to_path_buf();
    assert!(
        node_processes(&root).len() >= 3,
        "{:?}",
        node_processes(&root)
    );
    let Sim {
        kubelet: _,
        sm,
        dir,
    } = sim;
    drop(sm);
    wait_until("no process left", LONG, || {
        node_processes(&root).is_empty().then_some(())
    })
    .unwrap();
    assert!(!alive(pod));
    drop(dir);

    // SIGKILL of the manager: the kubelet and the pods die with it (PR_SET_PDEATHSIG).
    let sim = start_control_plane();
    let kubelet = sim.wait_healthy(None);
    let pod = pod_pid(&sim, "kube-apiserver.yaml", 0);
    let root = sim.root().to_path_buf();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sim.sm.pid().unwrap() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until("no process left after SIGKILL", LONG, || {
        (!alive(kubelet) && !alive(pod) && node_processes(&root).is_empty()).then_some(())
    })
    .unwrap();
    drop(sim);

    // A test that panics with a running node leaves nothing either.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let r = std::thread::spawn({
        let root = root.clone();
        move || {
            let _kubelet = write_worker_node(&root, &fast()).unwrap();
            let _sm = ServiceManagerProcess::spawn(
                &exe(),
                &ServiceManagerOptions::new(&root),
                &kubelet_opts(&root),
            )
            .unwrap();
            wait_until("a kubelet", LONG, || {
                read_effective_config(&root).ok().map(|_| ())
            })
            .unwrap();
            panic!("deliberate");
        }
    })
    .join();
    assert!(r.is_err());
    wait_until("no process left after a panic", LONG, || {
        node_processes(&root).is_empty().then_some(())
    })
    .unwrap();
}

#[test]
fn kubelet_binary_refusals_exit_nonzero_without_a_manager() {
    // Run `<root>/usr/bin/kubelet` directly, as systemd would, but with no runtime: the
    // configuration is checked first, the runtime connection last.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let k = write_worker_node(root, &fast()).unwrap();
    kharden_testnode::install_node_binaries(root, &exe()).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(root.join("usr/bin/kubelet"))
            .args(args)
            .env("KHARDEN_TESTNODE_ROOT", root)
            .env_remove("KHARDEN_TESTNODE_KUBELET_OPTS")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&[
        "--config=/var/lib/kubelet/config.yaml",
        "--kubeconfig=/etc/kubernetes/kubelet.conf",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("validate CRI v1 runtime API"), "{err}");
    std::fs::write(
        &k.config,
        std::fs::read_to_string(&k.config).unwrap() + "readOnlyPort: 70000\n",
    )
    .unwrap();
    let (code, err) = run(&[
        "--config=/var/lib/kubelet/config.yaml",
        "--kubeconfig=/etc/kubernetes/kubelet.conf",
    ]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("\"command failed\"") && err.contains("readOnlyPort (--read-only-port) 70000"),
        "{err}"
    );
    // Webhook authorization needs an API client.
    let (code, err) = run(&["--authorization-mode=Webhook"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot use webhook"), "{err}");
    let (code, err) = run(&["--config=/nope.yaml"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no such file or directory"), "{err}");
}
