//! `kharden-testnode worker --root DIR`: a simulated kubeadm worker node, served until SIGTERM
//! or SIGINT, for scripts that drive kharden from outside a Rust test (`contrib/ci-check.sh`
//! runs the Ansible worker play against it for real).
//!
//! It writes the node under DIR ([`write_worker_node`]), starts the service-manager emulator
//! with `kubelet.service` (which starts the kubelet emulator), prints one line of JSON on
//! stdout once the kubelet answers `/healthz` (`{"root", "node_name", "healthz_port",
//! "systemctl", "state_dir"}`: what kharden's `--root`, `--systemctl` and `--state-dir` need),
//! and on SIGTERM or SIGINT stops the service manager, the kubelet and its pods, then exits 0.

use crate::guard::ServiceManagerProcess;
use crate::kubelet::KubeletOptions;
use crate::node::{write_worker_node, KubeletNodeOptions};
use crate::systemd::ServiceManagerOptions;
use crate::wait::{http_get, wait_until};
use nix::sys::signal::{SigSet, Signal};
use std::path::{Path, PathBuf};
use std::time::Duration;

struct Args {
    root: PathBuf,
    node_name: String,
    config_dir: Option<String>,
    restart_sec: Duration,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut out = Args {
        root: PathBuf::new(),
        node_name: format!("worker-{}", std::process::id()),
        config_dir: None,
        restart_sec: Duration::from_millis(500),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--root" => out.root = PathBuf::from(value()?),
            "--node-name" => out.node_name = value()?,
            "--config-dir" => out.config_dir = Some(value()?),
            "--restart-ms" => {
                let v = value()?;
                let ms: u64 = v.parse().map_err(|_| format!("--restart-ms {v:?}"))?;
                out.restart_sec = Duration::from_millis(ms);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if out.root.as_os_str().is_empty() {
        return Err("--root DIR is required".into());
    }
    Ok(out)
}

/// Serve a worker node (see the module docs); `exe` is the multi-call binary the node's
/// `kubelet`, `systemd` and `systemctl` run as. Returns the exit code.
pub fn serve_worker(args: &[String], exe: &Path) -> i32 {
    let a = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "kharden-testnode worker: {e}\nusage: kharden-testnode worker --root DIR [--node-name NAME] [--config-dir HOSTPATH] [--restart-ms MS]"
            );
            return 2;
        }
    };
    match run(&a, exe) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("kharden-testnode worker: {e}");
            1
        }
    }
}

fn run(a: &Args, exe: &Path) -> Result<(), String> {
    // Blocked before any thread or child exists: the signals wait for `sigwait` below. The
    // children inherit the mask through fork, so the service manager clears it before its exec
    // (`systemd::die_with_parent`).
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals
        .thread_block()
        .map_err(|e| format!("blocking signals: {e}"))?;
    std::fs::create_dir_all(&a.root).map_err(|e| format!("{}: {e}", a.root.display()))?;
    let node = write_worker_node(
        &a.root,
        &KubeletNodeOptions {
            node_name: a.node_name.clone(),
            restart_sec: a.restart_sec,
            config_dir: a.config_dir.clone(),
            ..KubeletNodeOptions::default()
        },
    )
    .map_err(|e| format!("writing the worker node: {e}"))?;
    let mut opts = KubeletOptions::simulated_node(&a.root, exe)
        .map_err(|e| format!("installing the node's binaries: {e}"))?;
    opts.grace_period = Duration::from_secs(2);
    let mut sm = ServiceManagerProcess::spawn(exe, &ServiceManagerOptions::new(&a.root), &opts)
        .map_err(|e| format!("starting the service-manager emulator: {e}"))?;
    let healthy = wait_until("the kubelet's /healthz", Duration::from_secs(60), || {
        (http_get(node.healthz_port, "/healthz") == Some((200, "ok".into()))).then_some(())
    });
    if let Err(e) = healthy {
        sm.stop();
        return Err(e);
    }
    let ready = serde_json::json!({
        "root": a.root,
        "node_name": node.node_name,
        "healthz_port": node.healthz_port,
        "systemctl": sm.systemctl_path(),
        "state_dir": a.root.join("var/lib/kharden"),
    });
    println!("{ready}");
    let got = signals.wait();
    sm.stop();
    match got {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("waiting for a signal: {e}")),
    }
}
