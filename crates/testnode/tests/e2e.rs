//! End to end: the kubelet emulator (as a child process) runs the fake kube-apiserver (and a
//! real etcd when installed) from manifests written by `write_node`; kharden-gate decides.
//!
//! Every test uses its own temporary root and free ports, and the emulator is owned by a
//! `KubeletProcess`, which stops it (and so its pods) when the test ends, pass or fail.

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use kharden_gate::{
    discover_client_cert, discover_cluster_ca, probe_target_from_pod, run_gate, FailReason,
    GateParams, GateVerdict, Observation, ProbeClass, ProcScanner, TlsSettings,
};
use kharden_testnode::{
    etcd_binary, write_node, KubeletOptions, KubeletProcess, Node, NodeOptions, NodePorts,
};
use std::path::Path;
use std::time::{Duration, SystemTime};

struct Sim {
    node: Node,
    kubelet: KubeletProcess,
    _dir: tempfile::TempDir,
}

fn start(node_opts: NodeOptions, tweak: impl FnOnce(&mut KubeletOptions)) -> Sim {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let node = write_node(root, NodePorts::free(), &node_opts).unwrap();
    let mut opts =
        KubeletOptions::simulated_node(root, Path::new(env!("CARGO_BIN_EXE_kharden-testnode")))
            .unwrap();
    opts.grace_period = Duration::from_secs(2);
    tweak(&mut opts);
    let kubelet = KubeletProcess::spawn(
        Path::new(env!("CARGO_BIN_EXE_kharden-testnode")),
        &["kubelet"],
        &opts,
    )
    .unwrap();
    Sim {
        node,
        kubelet,
        _dir: dir,
    }
}

fn apiserver_only() -> NodeOptions {
    NodeOptions {
        controller_manager: false,
        scheduler: false,
        ..NodeOptions::default()
    }
}

/// command + args of the first container, with serde_yaml (independent of kharden-manifest).
fn argv_of(manifest: &Path) -> Vec<String> {
    let doc: serde_yaml::Value = serde_yaml::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    let c = &doc["spec"]["containers"][0];
    let mut v: Vec<String> = Vec::new();
    for key in ["command", "args"] {
        if let Some(items) = c[key].as_sequence() {
            v.extend(items.iter().map(|i| i.as_str().unwrap().to_string()));
        }
    }
    v
}

/// Replace the manifest the way kharden does (dot temp file + rename); returns the write time.
fn rewrite(manifest: &Path, f: impl FnOnce(&str) -> String) -> SystemTime {
    let text = std::fs::read_to_string(manifest).unwrap();
    let new = f(&text);
    assert_ne!(text, new, "rewrite changed nothing");
    let tmp = manifest.with_file_name(".kharden-test.tmp");
    std::fs::write(&tmp, new).unwrap();
    let t = SystemTime::now();
    std::fs::rename(&tmp, manifest).unwrap();
    t
}

fn add_flag(flag: &str) -> impl FnOnce(&str) -> String + '_ {
    move |text: &str| {
        let anchor = "    - --service-cluster-ip-range=10.96.0.0/12\n";
        assert!(text.contains(anchor));
        text.replacen(anchor, &format!("{anchor}    - {flag}\n"), 1)
    }
}

fn apiserver_params(
    sim: &Sim,
    argv: Vec<String>,
    since: Option<SystemTime>,
    within: Duration,
    client_cert: bool,
) -> GateParams {
    let target = probe_target_from_pod(
        "HTTPS",
        Some("127.0.0.1"),
        sim.node.ports.apiserver,
        "/livez",
        None,
    )
    .unwrap();
    let tls = TlsSettings {
        ca_file: discover_cluster_ca(&sim.node.pki.dir),
        server_name: Some(sim.node.advertise_address.clone()),
        client_cert: if client_cert {
            discover_client_cert(&sim.node.pki.dir)
        } else {
            None
        },
    };
    GateParams {
        stable_for: Duration::from_secs(1),
        min_successes: 3,
        poll_interval: Duration::from_millis(200),
        probe_timeout: Duration::from_secs(2),
        ..GateParams::new(argv, since, SystemTime::now() + within, target, tls)
    }
}

fn gate(params: &GateParams) -> (GateVerdict, Vec<Observation>) {
    let mut obs = Vec::new();
    let v = run_gate(params, &mut |o| obs.push(o.clone()));
    (v, obs)
}

fn passed_pid(v: &GateVerdict, sim: &Sim, obs: &[Observation]) -> u32 {
    match v {
        GateVerdict::Passed { pid: Some(pid), .. } => *pid,
        other => panic!(
            "gate failed: {other:#?}\nobservations: {obs:#?}\nemulator events:\n{}",
            sim.kubelet.events()
        ),
    }
}

fn pid_running(pid: u32) -> bool {
    let sc = ProcScanner::default();
    let boot = sc.boot_time().unwrap();
    sc.process(pid, boot).is_some()
}

#[test]
fn flag_change_restarts_apiserver_and_gate_passes_with_new_pid() {
    let sim = start(apiserver_only(), |_| {});
    let manifest = sim.node.apiserver_manifest.clone().unwrap();
    let old_argv = argv_of(&manifest);
    let (v, obs) = gate(&apiserver_params(
        &sim,
        old_argv.clone(),
        None,
        Duration::from_secs(20),
        false,
    ));
    let old_pid = passed_pid(&v, &sim, &obs);

    let written = rewrite(&manifest, add_flag("--profiling=false"));
    let new_argv = argv_of(&manifest);
    assert!(new_argv.contains(&"--profiling=false".to_string()));
    let (v, obs) = gate(&apiserver_params(
        &sim,
        new_argv.clone(),
        Some(written),
        Duration::from_secs(20),
        false,
    ));
    let new_pid = passed_pid(&v, &sim, &obs);
    match &v {
        GateVerdict::Passed { argv, .. } => {
            assert_eq!(argv.as_ref(), Some(&new_argv), "argv read from /proc")
        }
        other => panic!("{other:?}"),
    }
    assert_ne!(old_pid, new_pid);
    assert!(!pid_running(old_pid), "old apiserver still running");
    let sc = ProcScanner::default();
    let found = sc.find(&new_argv, Some(written)).unwrap();
    assert_eq!(found.first().map(|p| p.pid), Some(new_pid));
}

#[test]
fn rejected_flag_fails_by_deadline_and_rollback_is_verified() {
    let sim = start(apiserver_only(), |o| {
        o.env
            .push(("FAKE_REJECT_FLAGS".into(), "--profiling".into()));
    });
    let manifest = sim.node.apiserver_manifest.clone().unwrap();
    let before = std::fs::read(&manifest).unwrap();
    let old_argv = argv_of(&manifest);
    let (v, obs) = gate(&apiserver_params(
        &sim,
        old_argv.clone(),
        None,
        Duration::from_secs(20),
        false,
    ));
    passed_pid(&v, &sim, &obs);

    let written = rewrite(&manifest, add_flag("--profiling=false"));
    let (v, obs) = gate(&apiserver_params(
        &sim,
        argv_of(&manifest),
        Some(written),
        Duration::from_secs(4),
        false,
    ));
    match &v {
        GateVerdict::Failed { reason, .. } => assert!(
            // The rejected process lives for milliseconds: the gate may never see it, see one
            // (then the last answer was "refused") or several.
            matches!(
                reason,
                FailReason::NoNewProcess
                    | FailReason::CrashLoop
                    | FailReason::Unhealthy(ProbeClass::Down)
            ),
            "{reason:?}"
        ),
        other => panic!("gate passed a rejected flag: {other:?}"),
    }
    assert!(obs.iter().all(|o| !o.counted));
    let log = std::fs::read_to_string(sim.node.root.join("var/log/pods/kube-apiserver.yaml.log"))
        .unwrap();
    assert!(log.contains("Error: unknown flag: --profiling"), "{log}");

    // Roll back and verify the old component is back.
    let tmp = manifest.with_file_name(".rollback.tmp");
    std::fs::write(&tmp, &before).unwrap();
    let rolled_back = SystemTime::now();
    std::fs::rename(&tmp, &manifest).unwrap();
    let (v, obs) = gate(&apiserver_params(
        &sim,
        old_argv,
        Some(rolled_back),
        Duration::from_secs(20),
        false,
    ));
    passed_pid(&v, &sim, &obs);
}

#[test]
fn slow_kubelet_does_not_let_the_gate_pass_early() {
    let delay = Duration::from_millis(2500);
    let sim = start(apiserver_only(), |o| o.restart_delay = delay);
    let manifest = sim.node.apiserver_manifest.clone().unwrap();
    let (v, obs) = gate(&apiserver_params(
        &sim,
        argv_of(&manifest),
        None,
        Duration::from_secs(20),
        false,
    ));
    passed_pid(&v, &sim, &obs);

    let written = rewrite(&manifest, add_flag("--audit-log-maxage=30"));
    let params = apiserver_params(
        &sim,
        argv_of(&manifest),
        Some(written),
        Duration::from_secs(30),
        false,
    );
    let (v, obs) = gate(&params);
    passed_pid(&v, &sim, &obs);
    let passed_after = SystemTime::now().duration_since(written).unwrap();
    assert!(
        passed_after >= delay + params.stable_for,
        "passed {passed_after:?} after the write"
    );
    // The old apiserver answered healthy while kubelet was slow; none of that counted.
    let early: Vec<_> = obs.iter().filter(|o| o.pid.is_none()).collect();
    assert!(
        early.iter().any(|o| o.class == ProbeClass::Healthy(200)),
        "{obs:#?}"
    );
    assert!(early.iter().all(|o| !o.counted));
}

#[test]
fn anonymous_auth_false_needs_a_client_certificate() {
    let sim = start(apiserver_only(), |_| {});
    let manifest = sim.node.apiserver_manifest.clone().unwrap();
    let written = rewrite(&manifest, add_flag("--anonymous-auth=false"));
    let argv = argv_of(&manifest);
    let (v, _) = gate(&apiserver_params(
        &sim,
        argv.clone(),
        Some(written),
        // Room for the restart on a loaded CI machine: the verdict is given at the deadline.
        Duration::from_secs(8),
        false,
    ));
    match v {
        GateVerdict::Failed { reason, .. } => {
            assert_eq!(reason, FailReason::Unhealthy(ProbeClass::Unauthorized(401)))
        }
        other => panic!("{other:?}"),
    }
    let (v, obs) = gate(&apiserver_params(
        &sim,
        argv,
        Some(written),
        Duration::from_secs(20),
        true,
    ));
    passed_pid(&v, &sim, &obs);
}

#[test]
fn crash_loop_does_not_pass() {
    let sim = start(apiserver_only(), |o| {
        o.env.push(("FAKE_CRASH_AFTER_MS".into(), "900".into()));
    });
    let manifest = sim.node.apiserver_manifest.clone().unwrap();
    let mut params = apiserver_params(
        &sim,
        argv_of(&manifest),
        None,
        Duration::from_secs(6),
        false,
    );
    params.stable_for = Duration::from_secs(2);
    let (v, obs) = gate(&params);
    match &v {
        GateVerdict::Failed {
            reason, crashes, ..
        } => {
            assert_eq!(*reason, FailReason::CrashLoop, "{obs:#?}");
            // Processes that started, served for their 900 ms and exited: each a crash,
            // seen through process events (or inferred from the PIDs /proc showed).
            if !crashes.is_empty() {
                assert!(crashes.len() >= 2, "{crashes:?}");
                assert!(
                    crashes
                        .iter()
                        .all(|c| c.lifetime >= Duration::from_millis(800)),
                    "{crashes:?}"
                );
            }
        }
        other => panic!("crash loop passed: {other:?}"),
    }
}

#[test]
fn emulator_loads_non_dot_files_and_stops_removed_pods() {
    let sim = start(
        NodeOptions {
            apiserver: false,
            controller_manager: false,
            ..NodeOptions::default()
        },
        |_| {},
    );
    let dir = &sim.node.manifests_dir;
    let sched = sim.node.scheduler_manifest.clone().unwrap();
    assert!(sim
        .kubelet
        .wait_for_event(Duration::from_secs(10), |l| l
            .contains(" started pod=kube-scheduler.yaml "))
        .is_some());
    // A dot file is ignored; a .bak is a pod (and here a second scheduler on another port).
    let text = std::fs::read_to_string(&sched).unwrap();
    let port = sim.node.ports.scheduler.to_string();
    let other = kharden_testnode::free_port().to_string();
    std::fs::write(dir.join(".hidden.yaml"), text.replace(&port, &other)).unwrap();
    std::fs::write(
        dir.join("kube-scheduler.yaml.bak"),
        text.replace(&port, &other),
    )
    .unwrap();
    assert!(sim
        .kubelet
        .wait_for_event(Duration::from_secs(10), |l| l
            .contains(" started pod=kube-scheduler.yaml.bak "))
        .is_some());
    // A comment-only change does not restart.
    std::fs::write(&sched, format!("# comment\n{text}")).unwrap();
    // Removing the file stops the pod.
    std::fs::remove_file(&sched).unwrap();
    assert!(sim
        .kubelet
        .wait_for_event(Duration::from_secs(10), |l| l
            .contains(" stopped pod=kube-scheduler.yaml "))
        .is_some());
    let ev = sim.kubelet.events();
    assert!(!ev.contains(".hidden.yaml"), "{ev}");
    assert_eq!(
        ev.matches(" started pod=kube-scheduler.yaml ").count(),
        1,
        "{ev}"
    );
}

#[test]
fn emulator_stop_kills_its_pods() {
    let mut sim = start(apiserver_only(), |_| {});
    let manifest = sim.node.apiserver_manifest.clone().unwrap();
    let (v, obs) = gate(&apiserver_params(
        &sim,
        argv_of(&manifest),
        None,
        Duration::from_secs(20),
        false,
    ));
    let pid = passed_pid(&v, &sim, &obs);
    sim.kubelet.stop();
    assert!(!pid_running(pid));
}

#[test]
fn real_etcd_flag_change_restarts_healthy() {
    if etcd_binary().is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("etcd is not installed (/usr/bin/etcd): install Debian's etcd-server; CI must run this test");
        }
        eprintln!("SKIP real_etcd_flag_change_restarts_healthy: /usr/bin/etcd not installed (apt-get install etcd-server)");
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
    let manifest = sim.node.etcd_manifest.clone().unwrap();
    let target = probe_target_from_pod(
        "HTTP",
        Some("127.0.0.1"),
        sim.node.ports.etcd_metrics,
        "/health",
        None,
    )
    .unwrap();
    let params = |argv, since, within| GateParams {
        stable_for: Duration::from_secs(1),
        poll_interval: Duration::from_millis(200),
        probe_timeout: Duration::from_secs(2),
        ..GateParams::new(
            argv,
            since,
            SystemTime::now() + within,
            target.clone(),
            TlsSettings::default(),
        )
    };
    let (v, obs) = gate(&params(argv_of(&manifest), None, Duration::from_secs(30)));
    let old = passed_pid(&v, &sim, &obs);
    let written = rewrite(&manifest, |t| {
        t.replace("--snapshot-count=10000", "--snapshot-count=5000")
    });
    let (v, obs) = gate(&params(
        argv_of(&manifest),
        Some(written),
        Duration::from_secs(30),
    ));
    let new = passed_pid(&v, &sim, &obs);
    assert_ne!(old, new);
}

#[test]
fn pods_die_with_a_sigkilled_emulator() {
    let sim = start(apiserver_only(), |_| {});
    let manifest = sim.node.apiserver_manifest.clone().unwrap();
    let (v, obs) = gate(&apiserver_params(
        &sim,
        argv_of(&manifest),
        None,
        Duration::from_secs(20),
        false,
    ));
    let pid = passed_pid(&v, &sim, &obs);
    let emulator = sim.kubelet.pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(emulator as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let end = std::time::Instant::now() + Duration::from_secs(5);
    while pid_running(pid) && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !pid_running(pid),
        "apiserver {pid} outlived its SIGKILLed emulator"
    );
}

#[test]
fn self_signed_scheduler_needs_insecure_probe_with_listener_proof() {
    let sim = start(
        NodeOptions {
            apiserver: false,
            controller_manager: false,
            ..NodeOptions::default()
        },
        |_| {},
    );
    let manifest = sim.node.scheduler_manifest.clone().unwrap();
    let target = probe_target_from_pod(
        "HTTPS",
        Some("127.0.0.1"),
        sim.node.ports.scheduler,
        "/healthz",
        None,
    )
    .unwrap();
    let tls = TlsSettings {
        ca_file: discover_cluster_ca(&sim.node.pki.dir),
        server_name: None,
        client_cert: None,
    };
    let mut params = GateParams {
        stable_for: Duration::from_secs(1),
        poll_interval: Duration::from_millis(200),
        probe_timeout: Duration::from_secs(2),
        ..GateParams::new(
            argv_of(&manifest),
            None,
            SystemTime::now() + Duration::from_secs(3),
            target,
            tls,
        )
    };
    // Its certificate is self-signed at start: verification against the cluster CA fails.
    let (v, _) = gate(&params);
    assert!(
        matches!(
            v,
            GateVerdict::Failed {
                reason: FailReason::Unhealthy(ProbeClass::TlsError),
                ..
            }
        ),
        "{v:?}"
    );
    params.insecure_skip_tls_verify = true;
    params.deadline = SystemTime::now() + Duration::from_secs(20);
    let (v, obs) = gate(&params);
    passed_pid(&v, &sim, &obs);
}
