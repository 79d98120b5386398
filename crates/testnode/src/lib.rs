//! A simulated Kubernetes node (control plane or worker), for kharden's tests and `kharden demo`.
//!
//! Why: kharden's promises (restart proven, component healthy, rollback verified) are about
//! what kubelet, systemd and the control-plane components do with a manifest or a kubelet
//! configuration. This crate provides stand-ins that behave like them where it matters, as real
//! processes with real signals and sockets:
//! - [`kubelet`]: a kubelet emulator: the static pod source and a process runner with crash-loop
//!   back-off; in *node mode* ([`run_kubelet`], [`KubeletProcess`]) it is the whole node, in
//!   *kubelet-binary mode* ([`kubelet_main`], `argv[0]` named `kubelet`) it is the kubelet of a
//!   systemd-managed node: it loads its configuration like the kubelet ([`kubelet_config`]),
//!   refuses what the kubelet refuses, serves `/healthz`, and its pods survive its restarts;
//! - [`systemd`]: a service-manager emulator that runs `kubelet.service` from kubeadm's unit and
//!   drop-in (`Restart=always`, `RestartSec`, environment files, `$VAR` splitting) and is the
//!   pods' container runtime, with a fake `systemctl` ([`ServiceManagerProcess`]);
//! - [`mod@unit`]: systemd's unit, environment-file and command-line syntax;
//! - [`fake`]: fake kube-apiserver, kube-controller-manager and kube-scheduler that parse flags
//!   like pflag and serve health endpoints over HTTPS with client-certificate authentication;
//! - [`pki`]: kubeadm-shaped certificates (the apiserver certificate has no 127.0.0.1 SAN);
//! - [`node`]: kubeadm-shaped nodes under a root directory (control plane: manifests, PKI and
//!   the kubelet's files; worker: the kubelet's files only), with free ports.
//!
//! # Running it from another program
//!
//! One multi-call binary serves everything. In its `main`, first call [`dispatch_fake`]: when
//! `argv[0]`'s basename is `kube-apiserver`, `kube-controller-manager`, `kube-scheduler`,
//! `kubelet`, `systemctl` or `systemd`, it runs the corresponding emulator and returns its exit
//! code. Then route a hidden subcommand to [`multicall_main`] (`kharden-testnode kubelet` or
//! `kharden __kubelet` for the node-mode emulator). [`install_fake_binaries`] and
//! [`install_node_binaries`] create the symbolic links (`<root>/bin/kube-apiserver`,
//! `<root>/usr/bin/kubelet`, `<root>/usr/bin/systemctl`, `<root>/usr/lib/systemd/systemd`);
//! [`ServiceManagerProcess::spawn`] does that and starts the node.
//!
//! `kharden-testnode worker --root DIR` ([`serve`]) writes a kubeadm worker under DIR and serves
//! it (service manager, kubelet) until SIGTERM, for scripts: `contrib/ci-check.sh` runs the
//! Ansible worker play against it. [`wait`] has what tests that look at a node from outside
//! share (an HTTP GET, waiting for a condition).

// A test double, not product code: it prints and writes its fixtures like the programs it
// stands in for (kubelet, systemd, the control-plane components), and reads the wall clock as
// they do. The workspace's product rules (no printing, file effects only in kharden's durable
// layer, time through a Clock, no unwrap) do not apply here.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used
)]

pub mod fake;
pub mod flags;
pub mod guard;
pub mod ipc;
pub mod kubelet;
pub mod kubelet_config;
pub mod node;
pub mod pki;
pub mod serve;
pub mod systemd;
pub mod unit;
pub mod wait;

pub use fake::{install_fake_binaries, run_fake_component, HealthServer, HealthServerConfig};
pub use guard::{
    install_node_binaries, node_processes, KubeletProcess, ServiceManagerProcess,
    ServiceManagerProcessError, SystemctlOutput,
};
pub use kubelet::{
    effective_config_path, kubelet_main, kubelet_would_load, read_effective_config, run_kubelet,
    run_kubelet_until, EffectiveConfig, KubeletError, KubeletOptions,
};
pub use node::{
    etcd_binary, free_port, write_accounts, write_node, write_worker_node, KubeletNode,
    KubeletNodeOptions, Node, NodeError, NodeOptions, NodePorts, DEFAULT_KUBERNETES_VERSION,
};
pub use pki::{
    generate_kubelet_pki, generate_pki, generate_pki_with, CertPair, KubeletPki, Pki, PkiError,
    PkiOptions,
};
pub use systemd::{
    run_service_manager, systemctl_main, ServiceManagerError, ServiceManagerOptions,
};
pub use wait::{http_get, wait_until};

fn basename(argv0: &str) -> &str {
    argv0.rsplit('/').next().unwrap_or(argv0)
}

/// If `argv[0]`'s basename names something this crate emulates, run it and return its exit
/// code: the fake control-plane components, `kubelet` (the kubelet emulator in kubelet-binary
/// mode), `systemctl` (the fake systemctl) and `systemd` (the service-manager emulator). Call
/// this first thing in `main` of a multi-call binary (kharden's own, or the testnode binary) so
/// that a symbolic link with one of those names pointing at it becomes the emulator.
pub fn dispatch_fake(argv: &[String]) -> Option<i32> {
    let argv0 = argv.first()?;
    match basename(argv0) {
        "kubelet" => Some(kubelet::kubelet_main(argv)),
        "systemctl" => Some(systemd::systemctl_main(argv)),
        "systemd" => Some(systemd::systemd_main(&argv[1..])),
        _ => fake::dispatch_fake(argv),
    }
}

/// Entry point of a multi-call binary: emulators by `argv[0]` (see [`dispatch_fake`]),
/// `kubelet ARGS` (or `__kubelet`) for the node-mode kubelet emulator, `systemd ARGS` (or
/// `__systemd`) for the service manager, `systemctl ARGS` (or `__systemctl`) for the fake
/// systemctl. Returns the process exit code.
pub fn multicall_main(argv: &[String]) -> i32 {
    if let Some(code) = dispatch_fake(argv) {
        return code;
    }
    match argv.get(1).map(String::as_str) {
        Some("kubelet") | Some("__kubelet") => match KubeletOptions::from_args(&argv[2..]) {
            Ok(opts) => match run_kubelet(opts) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("kubelet emulator: {e}");
                    1
                }
            },
            Err(e) => {
                eprintln!("kubelet emulator: {e}");
                2
            }
        },
        Some("systemd") | Some("__systemd") => systemd::systemd_main(&argv[2..]),
        Some("systemctl") | Some("__systemctl") => systemd::systemctl_main(&argv[1..]),
        Some("fake") if argv.len() >= 3 => run_fake_component(&argv[2], &argv[3..]),
        Some("worker") => match std::env::current_exe() {
            Ok(exe) => serve::serve_worker(&argv[2..], &exe),
            Err(e) => {
                eprintln!("kharden-testnode worker: this program's path: {e}");
                1
            }
        },
        _ => {
            eprintln!(
                "usage: kharden-testnode kubelet --root DIR [options]\n       kharden-testnode worker --root DIR [options]\n       kharden-testnode systemd --root DIR [options]\n       kharden-testnode systemctl ARGS...\n       kharden-testnode fake kube-apiserver|kube-controller-manager|kube-scheduler FLAGS...\n       (or invoke through a symlink named kube-apiserver, kube-controller-manager,\n        kube-scheduler, kubelet, systemctl or systemd)"
            );
            2
        }
    }
}
