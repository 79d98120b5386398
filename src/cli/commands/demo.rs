//! `kharden demo`: a self-contained run on a simulated control-plane node, then on a simulated
//! worker node.
//!
//! It builds a node in a temp dir (kubeadm-shaped manifests, generated certificates), starts
//! the kubelet emulator (this very binary, `__kubelet`) which runs the fake control-plane
//! components (this binary again, through symlinks) and the real etcd when installed, then
//! runs kharden's own commands against it, as an operator would, and narrates. The worker
//! node (below the first one's directory) is kubeadm's kubelet run by the service-manager
//! emulator (this binary as `systemd`, `systemctl` and `kubelet`), whose configuration kharden
//! audits, hardens and rolls back. Every process it starts dies with it (`PR_SET_PDEATHSIG`
//! down the tree), also on Ctrl-C.
// The demo builds a simulated node in a temp dir (its fixtures are not managed files) and
// times its narration with the wall clock.
#![allow(clippy::disallowed_methods)]

use super::Ctx;
use crate::cli::args::DemoArgs;
use crate::cli::Output;
use kharden::exit;
use kharden::Error as CliError;
use kharden_testnode::{
    etcd_binary, write_node, write_worker_node, KubeletNodeOptions, KubeletOptions, KubeletProcess,
    NodeOptions, NodePorts, ServiceManagerOptions, ServiceManagerProcess,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

struct Demo {
    exe: PathBuf,
    root: PathBuf,
    state: PathBuf,
    reject_file: PathBuf,
    start: Instant,
    /// The worker's `systemctl` (the service-manager emulator's), for kubelet changes.
    systemctl: Option<PathBuf>,
}

impl Demo {
    fn kharden(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.exe);
        c.env("KHARDEN_STATE_DIR", &self.state)
            .env("KHARDEN_ROOT", &self.root)
            .env_remove("KHARDEN_CRASH_AT")
            .args(args)
            .stdin(Stdio::null());
        match &self.systemctl {
            Some(s) => c.env("KHARDEN_SYSTEMCTL", s),
            None => c.env_remove("KHARDEN_SYSTEMCTL"),
        };
        c
    }

    fn say(&self, text: &str) {
        println!(
            "\n\x1b[1m━━ [{:>4.1}s] {text}\x1b[0m",
            self.start.elapsed().as_secs_f32()
        );
    }

    /// Run a kharden command, show it and its output, return its exit code.
    fn run(&self, args: &[&str]) -> Result<i32, CliError> {
        check_interrupt()?;
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.replace(&self.root.display().to_string(), "$NODE"))
            .collect();
        println!("$ kharden {}", shown.join(" "));
        let status = self
            .kharden(args)
            .status()
            .map_err(|e| CliError::Other(format!("running {}: {e}", self.exe.display())))?;
        let code = status.code().unwrap_or(-1);
        if code != 0 {
            println!("(exit code {code})");
        }
        check_interrupt()?;
        Ok(code)
    }
}

fn check_interrupt() -> Result<(), CliError> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        return Err(CliError::Other(
            "interrupted; the simulated node is stopped".into(),
        ));
    }
    Ok(())
}

fn wait_healthy(root: &Path, manifest: &Path, timeout: Duration) -> Result<(), CliError> {
    let spec = kharden::journal::GateSpec {
        enabled: true,
        timeout_secs: timeout.as_secs(),
        stable_for_secs: 1,
        ..Default::default()
    };
    let contents = std::fs::read(manifest)
        .map_err(|e| CliError::Other(format!("{}: {e}", manifest.display())))?;
    let mut p = kharden::gate::params_for(
        &kharden::root::HostRoot::new(Some(root))?,
        &spec,
        &contents,
        None,
        SystemTime::now() + timeout,
    )
    .map_err(CliError::Other)?;
    p.poll_interval = Duration::from_millis(200);
    let v = kharden_gate::run_gate(&p, &mut |_| check_interrupt_silent());
    if v.passed() {
        Ok(())
    } else {
        check_interrupt()?;
        Err(CliError::Other(format!(
            "{} did not become healthy: {v:?}",
            manifest.display()
        )))
    }
}

fn check_interrupt_silent() {}

pub fn run(ctx: &Ctx<'_>, a: &DemoArgs) -> Result<Output, CliError> {
    let _ = ctx;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        let action = nix::sys::signal::SigAction::new(
            nix::sys::signal::SigHandler::Handler(on_sigint),
            nix::sys::signal::SaFlags::empty(),
            nix::sys::signal::SigSet::empty(),
        );
        let _ = nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGINT, &action);
        let _ = nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGTERM, &action);
    }
    let exe = std::env::current_exe().map_err(|e| CliError::Other(format!("current_exe: {e}")))?;
    let tmp = tempfile::Builder::new()
        .prefix("kharden-demo-")
        .tempdir()
        .map_err(|e| CliError::Other(format!("temp dir: {e}")))?;
    let root = tmp.path().to_path_buf();
    let result = run_demo(&exe, &root);
    if a.keep {
        let kept = tmp.keep();
        println!(
            "\nkept the node at {} (export KHARDEN_ROOT={0} KHARDEN_STATE_DIR={0}/var/lib/kharden, then try `kharden journal log`); its processes are stopped",
            kept.display()
        );
    }
    result
}

fn run_demo(exe: &Path, root: &Path) -> Result<Output, CliError> {
    let start = Instant::now();
    let with_etcd = etcd_binary().is_some();
    let node = write_node(
        root,
        NodePorts::free(),
        &NodeOptions {
            etcd: with_etcd,
            ..NodeOptions::default()
        },
    )
    .map_err(|e| CliError::Other(format!("building the simulated node: {e}")))?;
    let mut opts = KubeletOptions::simulated_node(root, exe).map_err(|e| {
        CliError::Other(format!(
            "{}: installing the fake binaries: {e}",
            root.join("bin").display()
        ))
    })?;
    let reject_file = root.join("reject-flags");
    std::fs::write(&reject_file, "").map_err(|e| CliError::Other(e.to_string()))?;
    opts.backoff_initial = Duration::from_millis(300);
    opts.backoff_max = Duration::from_secs(2);
    opts.grace_period = Duration::from_secs(3);
    opts.env.push((
        "FAKE_REJECT_FLAGS_FILE".into(),
        reject_file.display().to_string(),
    ));
    // The fakes see host paths (the audit policy kharden writes) under the node's root, as a
    // real pod sees them through its hostPath mounts.
    opts.env
        .push(("FAKE_HOST_ROOT".into(), root.display().to_string()));
    let mut kubelet = KubeletProcess::spawn(exe, &["__kubelet"], &opts)
        .map_err(|e| CliError::Other(format!("starting the kubelet emulator: {e}")))?;
    let demo = Demo {
        exe: exe.to_path_buf(),
        root: root.to_path_buf(),
        state: root.join("var/lib/kharden"),
        reject_file,
        start,
        systemctl: None,
    };
    let result = narrate(&demo, &node, with_etcd);
    kubelet.stop();
    result?;
    worker(exe, &root.join("worker"), start)
}

/// `GET /healthz` on 127.0.0.1:`port` answers `200 ok`.
fn healthz_ok(port: u16) -> bool {
    kharden_testnode::http_get(port, "/healthz") == Some((200, "ok".into()))
}

/// The worker node's part: its kubelet audited, hardened, and a refused configuration rolled
/// back in seconds.
fn worker(exe: &Path, root: &Path, start: Instant) -> Result<Output, CliError> {
    let err = |e: String| CliError::Other(e);
    std::fs::create_dir_all(root).map_err(|e| err(e.to_string()))?;
    let k = write_worker_node(
        root,
        &KubeletNodeOptions {
            // A name of its own: another demo on this machine runs a kubelet with another
            // command line.
            node_name: format!("demo-worker-{}", std::process::id()),
            restart_sec: Duration::from_secs(1),
            config_dir: Some("/etc/kubernetes/kubelet.conf.d".into()),
            ..KubeletNodeOptions::default()
        },
    )
    .map_err(|e| err(format!("building the simulated worker: {e}")))?;
    // An operator's drop-in from long ago, re-opening the read-only port: kube-bench never
    // reads drop-ins.
    let dir = k
        .config_dir
        .clone()
        .ok_or_else(|| err("no --config-dir".into()))?;
    std::fs::write(
        dir.join("50-legacy.conf"),
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nreadOnlyPort: 10255\n",
    )
    .map_err(|e| err(e.to_string()))?;
    let mut opts = KubeletOptions::simulated_node(root, exe)
        .map_err(|e| err(format!("installing the worker's binaries: {e}")))?;
    opts.grace_period = Duration::from_secs(2);
    let mut sm = ServiceManagerProcess::spawn(exe, &ServiceManagerOptions::new(root), &opts)
        .map_err(|e| err(format!("starting the service-manager emulator: {e}")))?;
    let d = Demo {
        exe: exe.to_path_buf(),
        root: root.to_path_buf(),
        state: root.join("var/lib/kharden"),
        reject_file: root.join("reject-flags"),
        start,
        systemctl: Some(sm.systemctl_path()),
    };
    let result = narrate_worker(&d, &k);
    sm.stop();
    result
}

/// kubeadm's modes with a few loosened, as a node drifts in real life: a world-readable
/// private key, a manifest anyone can read, a public key owned by another user.
fn loosen(node: &kharden_testnode::Node) -> Result<(), CliError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |p: &Path, e: std::io::Error| CliError::Other(format!("{}: {e}", p.display()));
    let key = node.root.join("etc/kubernetes/pki/apiserver.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644))
        .map_err(|e| io(&key, e))?;
    if let Some(m) = &node.scheduler_manifest {
        std::fs::set_permissions(m, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| io(m, e))?;
    }
    let ca = node.root.join("etc/kubernetes/pki/sa.pub");
    if ca.exists() && nix::unistd::geteuid().is_root() {
        // `nobody` (65534) is in the node's /etc/passwd.
        std::os::unix::fs::chown(&ca, Some(65534), Some(65534)).map_err(|e| io(&ca, e))?;
    }
    println!(
        "loosened, as nodes drift: {} 0644, the scheduler's manifest 0644, {} owned by nobody",
        key.display(),
        ca.display()
    );
    Ok(())
}

/// The id of the newest transaction in the journal.
fn last_txid(d: &Demo) -> Result<u64, CliError> {
    let log = d
        .kharden(&["-o", "json", "journal", "log", "--limit", "1"])
        .output()
        .map_err(|e| CliError::Other(e.to_string()))?;
    let v: serde_json::Value = serde_json::from_slice(&log.stdout).unwrap_or_default();
    v["transactions"][0]["txid"]
        .as_u64()
        .ok_or_else(|| CliError::Other("the journal has no transaction".into()))
}

fn narrate_worker(d: &Demo, k: &kharden_testnode::KubeletNode) -> Result<Output, CliError> {
    d.say(
        "7. A worker node at $NODE/worker: kubeadm's kubelet.service (unit, 10-kubeadm.conf, kubeadm-flags.env, config.yaml, a --config-dir) run by a service-manager emulator that answers systemctl like systemd (Restart=always, RestartSec=1s); the kubelet emulator loads its configuration like the kubelet and exits on what the kubelet refuses",
    );
    let t0 = Instant::now();
    while !healthz_ok(k.healthz_port) {
        check_interrupt()?;
        if t0.elapsed() > Duration::from_secs(30) {
            return Err(CliError::Other("the worker's kubelet did not start".into()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "the kubelet answers /healthz on 127.0.0.1:{}",
        k.healthz_port
    );

    d.say("8. Audit the worker (sections 4.1 to 4.3): kube-bench's verdict, then what the kubelet really runs (flags over --config-dir drop-ins over config.yaml over the defaults), with the disagreement explained: an old drop-in re-opens the read-only port, which kube-bench never reads");
    d.run(&["audit", "--targets", "node"])?;

    d.say("9. Harden the kubelet: each fix is written where it wins (here the drop-in that sets it, else kharden's own drop-in, which a kubeadm upgrade leaves alone), then one `systemctl restart kubelet`, journaled like a write; the gate proves a new kubelet process with the unit's command line, /healthz ok for 2 s, and the audit checks the restarted kubelet runs every intended value");
    d.run(&["harden", "--stable-for", "2", "--health-timeout", "30"])?;

    d.say("10. A configuration the kubelet refuses: a typo in a cipher suite name. The kubelet exits at start, systemd restarts it every second; kharden sees it crash twice (kernel process events), restores the files, restarts the kubelet again and proves the old one healthy: rolled back in seconds");
    d.run(&[
        "kubelet",
        "set",
        "tlsCipherSuites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA265",
        "--stable-for",
        "2",
        "--health-timeout",
        "30",
    ])?;
    let log = d
        .kharden(&["-o", "json", "journal", "log", "--limit", "1"])
        .output()
        .map_err(|e| CliError::Other(e.to_string()))?;
    let v: serde_json::Value = serde_json::from_slice(&log.stdout).unwrap_or_default();
    if let Some(id) = v["transactions"][0]["txid"].as_u64() {
        d.run(&["journal", "show", &id.to_string()])?;
    }

    d.say("11. The worker's journal");
    d.run(&["journal", "log"])?;
    d.run(&["journal", "verify"])?;
    d.say(&format!(
        "Done in {:.0} s. Nothing is left running.",
        d.start.elapsed().as_secs_f32()
    ));
    Ok(Output {
        json: serde_json::json!({"result": "demo", "exit_code": exit::SUCCESS}),
        text: Vec::new(),
        stderr: String::new(),
        code: exit::SUCCESS,
        outcome: "demo done".into(),
    })
}

fn narrate(d: &Demo, node: &kharden_testnode::Node, with_etcd: bool) -> Result<Output, CliError> {
    let apiserver = node
        .apiserver_manifest
        .clone()
        .ok_or_else(|| CliError::Other("no apiserver manifest".into()))?;
    let api = apiserver.display().to_string();
    d.say(&format!(
        "A simulated control-plane node at {}: kubeadm-shaped manifests, a cluster CA, a kubelet emulator running kube-apiserver, kube-controller-manager, kube-scheduler (fakes that reject unknown flags and serve /livez over TLS){}",
        d.root.display(),
        if with_etcd { " and a real etcd" } else { " (etcd is not installed: apt-get install etcd-server to include it)" }
    ));
    for m in [
        &node.apiserver_manifest,
        &node.controller_manager_manifest,
        &node.scheduler_manifest,
        &node.etcd_manifest,
    ]
    .into_iter()
    .flatten()
    {
        wait_healthy(&d.root, m, Duration::from_secs(30))?;
    }
    println!("every component is running and healthy");
    loosen(node)?;

    d.say("1. Audit: every check of the CIS Kubernetes Benchmark for this node's version (the file checks on what `stat` sees, the flag checks on the running processes, as kube-bench reads `ps`)");
    d.run(&["audit"])?;

    d.say("2. Harden with health gates. First the files: one metadata transaction for every file check (chmod/chown on O_NOFOLLOW descriptors, each inode fsync'd), checked beforehand so that no running component loses access, and gated on the processes that use those files staying the same processes, healthy. Then one transaction per component, etcd first: each write journaled first, kubelet's restart proven from /proc, the new process answering its own probe over TLS for 2 s, the flags of the running process audited");
    d.run(&["harden", "--stable-for", "2", "--health-timeout", "30"])?;

    d.say("3. A bad change: this apiserver is told to reject --enable-aggregator-routing. kharden writes it, the new process crash-loops, the gate fails, and the rollback restores the old manifest and proves the old component healthy again");
    std::fs::write(&d.reject_file, "--enable-aggregator-routing\n")
        .map_err(|e| CliError::Other(e.to_string()))?;
    d.run(&[
        "apply",
        &api,
        "--set",
        "enable-aggregator-routing=true",
        "--stable-for",
        "1",
        "--health-timeout",
        "6",
    ])?;
    let rolled_back = last_txid(d)?;
    d.run(&["journal", "show", &rolled_back.to_string()])?;

    d.say("4. A crash in the middle of a gate: kharden is killed with SIGKILL while it waits for the new apiserver to stay healthy, leaving the manifest written and the transaction open");
    // Accepted this time: the gate waits out its stability window, and is killed inside it.
    std::fs::write(&d.reject_file, "").map_err(|e| CliError::Other(e.to_string()))?;
    let before = std::fs::read(&apiserver).map_err(|e| CliError::Other(e.to_string()))?;
    println!("$ kharden apply $NODE/... --set enable-aggregator-routing=true --stable-for 60 &   # then kill -9");
    let mut child = d
        .kharden(&[
            "-q",
            "apply",
            &api,
            "--set",
            "enable-aggregator-routing=true",
            "--stable-for",
            "60",
            "--health-timeout",
            "90",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| CliError::Other(e.to_string()))?;
    let t0 = Instant::now();
    while std::fs::read(&apiserver).map_err(|e| CliError::Other(e.to_string()))? == before
        && t0.elapsed() < Duration::from_secs(20)
    {
        check_interrupt()?;
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let _ = child.kill();
    let _ = child.wait();
    println!("killed kharden in the middle of its health gate");
    d.run(&["journal", "log", "--limit", "1"])?;
    println!("after a reboot, `kharden recover` runs before kubelet (packaging/kharden-recover.service):");
    d.run(&["recover"])?;
    wait_healthy(&d.root, &apiserver, Duration::from_secs(30))?;
    println!("the apiserver is back on its last known-good manifest and healthy");

    d.say("5. The journal: every transaction, newest first, and the diff of the apiserver's hardening");
    d.run(&["journal", "log", "--limit", "10"])?;
    let log = d
        .kharden(&[
            "-o",
            "json",
            "journal",
            "log",
            "--limit",
            "100",
            "--state",
            "committed",
        ])
        .output()
        .map_err(|e| CliError::Other(e.to_string()))?;
    let v: serde_json::Value = serde_json::from_slice(&log.stdout).unwrap_or_default();
    let harden_api = v["transactions"]
        .as_array()
        .and_then(|ts| {
            ts.iter().find(|t| {
                t["summary"]
                    .as_str()
                    .is_some_and(|s| s.contains("kube-apiserver"))
            })
        })
        .and_then(|t| t["txid"].as_u64());
    if let Some(id) = harden_api {
        d.run(&["journal", "diff", &id.to_string()])?;
    }
    d.run(&["journal", "verify"])?;

    d.say("6. The audit again");
    d.run(&["audit"])?;
    println!("the control-plane node is stopped; now a worker node");
    Ok(Output {
        json: serde_json::json!({"result": "demo", "exit_code": exit::SUCCESS}),
        text: Vec::new(),
        stderr: String::new(),
        code: exit::SUCCESS,
        outcome: "demo done".into(),
    })
}
