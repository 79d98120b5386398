//! A simulated Kubernetes control-plane node, for kharden's tests and `kharden demo`.
//!
//! Why: kharden's promises (restart proven, component healthy, rollback verified) are about
//! what kubelet and the control-plane components do with a manifest. This crate provides
//! stand-ins that behave like them where it matters, as real processes:
//! - [`kubelet`]: a kubelet emulator (static pod source + process runner, crash-loop back-off,
//!   optional slowness), run in its own process via [`run_kubelet`] and [`KubeletProcess`];
//! - [`fake`]: fake kube-apiserver, kube-controller-manager and kube-scheduler that parse flags
//!   like pflag and serve health endpoints over HTTPS with client-certificate authentication;
//! - [`pki`]: kubeadm-shaped certificates (the apiserver certificate has no 127.0.0.1 SAN);
//! - [`node`]: kubeadm-shaped manifests for a node under a root directory, with free ports.
//!
//! # Running it from another program
//!
//! One multi-call binary serves everything. In its `main`, first call
//! [`dispatch_fake`] (`argv[0]` named like a component runs the fake), then route a hidden
//! subcommand to [`run_kubelet`] with [`KubeletOptions::from_args`]. `kharden-testnode` (this
//! crate's binary) does exactly that with the subcommand `kubelet`; kharden can do the same
//! with `__kubelet`. Symlink the component names to the binary with
//! [`install_fake_binaries`] and give that directory as [`KubeletOptions::path`].

pub mod fake;
pub mod flags;
pub mod guard;
pub mod kubelet;
pub mod node;
pub mod pki;

pub use fake::{
    dispatch_fake, install_fake_binaries, run_fake_component, HealthServer, HealthServerConfig,
};
pub use guard::KubeletProcess;
pub use kubelet::{
    kubelet_would_load, run_kubelet, run_kubelet_until, KubeletError, KubeletOptions,
};
pub use node::{etcd_binary, free_port, write_node, Node, NodeError, NodeOptions, NodePorts};
pub use pki::{generate_pki, generate_pki_with, CertPair, Pki, PkiError, PkiOptions};

/// Entry point of a multi-call binary: fakes by `argv[0]`, `kubelet ARGS` (or `__kubelet`) for
/// the emulator. Returns the process exit code.
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
        Some("fake") if argv.len() >= 3 => run_fake_component(&argv[2], &argv[3..]),
        _ => {
            eprintln!(
                "usage: kharden-testnode kubelet --root DIR [options]\n       kharden-testnode fake kube-apiserver|kube-controller-manager|kube-scheduler FLAGS...\n       (or invoke through a symlink named like a component)"
            );
            2
        }
    }
}
