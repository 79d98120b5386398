//! Section 4.1: permissions and ownership of the worker node's files (every node, control plane
//! included): the kubelet's unit, kubeconfig, configuration and client CA, kube-proxy's
//! kubeconfig.
//!
//! kube-bench finds them through config.yaml's node variables (`$kubeletsvc`,
//! `$kubeletkubeconfig`, `$kubeletconf`, `$proxykubeconfig`, `$kubeletcafile`) and the kubelet's
//! `--client-ca-file=` flag. The client CA's bitmask changed from 600 to 644 in cis-1.11: two
//! definitions. Every fix is automated: root-owned configuration the kubelet reads as root.

use super::{check, chmod, chown, cmp, owned, perms, present, var, ROOT};
use crate::audit::{FileRole, FileSet};
use crate::model::{BinOp, CheckDef, Cis, Op};

use Cis::{V1_10, V1_11, V1_12, V1_8};
use FileRole::*;

const UNIT_MODE: &str = "Removes the group and other permission bits of the kubelet's unit file \
(new mode = old mode & 0600). systemd reads it as root; nothing restarts. A package upgrade may \
put a packaged unit's mode back (`kharden drift` shows it).";
const UNIT_OWNER: &str = "Gives the kubelet's unit file to root:root; systemd reads it as root.";
const MODE_600: &str = "Removes the group and other permission bits (new mode = old mode & \
0600). The kubelet reads the file as root; nothing restarts.";
const OWNER_ROOT: &str = "Gives the file to root:root; the kubelet reads it as root.";
const CA_MODE: &str = "Removes the forbidden permission bits of the kubelet's client CA (new \
mode = old mode & allowed). A CA certificate is public: only non-root readers could notice, and \
the caller refuses the change if a running component would lose access.";

fn client_ca_mode(key: &'static str, mode: &'static str, bits: u32) -> super::Def {
    check(
        key,
        "Kubelet client CA file is not writable by group or others",
        perms(KubeletClientCa, FileSet::KubeletClientCa, mode).audit(),
    )
    .with_fix(chmod(bits, CA_MODE))
}

pub(super) fn defs() -> Vec<CheckDef> {
    vec![
        check(
            "kubelet-unit-mode",
            "Kubelet unit file is mode 600 or stricter",
            perms(KubeletUnit, var("kubeletsvc"), "600").audit(),
        )
        .all("4.1.1")
        .scored()
        .fix(chmod(0o600, UNIT_MODE)),
        check(
            "kubelet-unit-owner",
            "Kubelet unit file is owned by root:root",
            owned(KubeletUnit, var("kubeletsvc"), ROOT, "root:root")
                .bin_op(BinOp::Or)
                .items(vec![present("root:root"), present("File not found")])
                .if_missing("File not found")
                .audit(),
        )
        .all("4.1.2")
        .scored()
        .fix(chown(ROOT, UNIT_OWNER)),
        check(
            "proxy-kubeconfig-mode",
            "kube-proxy kubeconfig, if present, is mode 600 or stricter",
            perms(ProxyKubeconfig, var("proxykubeconfig"), "600")
                .bin_op(BinOp::Or)
                .audit(),
        )
        .all("4.1.3")
        .fix(chmod(
            0o600,
            "Removes the group and other permission bits of kube-proxy's kubeconfig on the \
             host (new mode = old mode & 0600). On kubeadm, kube-proxy's kubeconfig lives in a \
             ConfigMap and there is usually no such file.",
        )),
        check(
            "proxy-kubeconfig-owner",
            "kube-proxy kubeconfig, if present, is owned by root:root",
            owned(ProxyKubeconfig, var("proxykubeconfig"), ROOT, "root:root")
                .bin_op(BinOp::Or)
                .audit(),
        )
        .all("4.1.4")
        .fix(chown(ROOT, OWNER_ROOT)),
        check(
            "kubelet-kubeconfig-mode",
            "Kubelet kubeconfig is mode 600 or stricter",
            perms(KubeletKubeconfig, var("kubeletkubeconfig"), "600").audit(),
        )
        .all("4.1.5")
        .scored()
        .fix(chmod(0o600, MODE_600)),
        check(
            "kubelet-kubeconfig-owner",
            "Kubelet kubeconfig is owned by root:root",
            owned(
                KubeletKubeconfig,
                var("kubeletkubeconfig"),
                ROOT,
                "root:root",
            )
            .audit(),
        )
        .all("4.1.6")
        .scored()
        .fix(chown(ROOT, OWNER_ROOT)),
        client_ca_mode("kubelet-client-ca-mode-600", "600", 0o600)
            .at("4.1.7", V1_8, V1_10)
            .done(),
        client_ca_mode("kubelet-client-ca-mode", "644", 0o644)
            .at("4.1.7", V1_11, V1_12)
            .done(),
        check(
            "kubelet-client-ca-owner",
            "Kubelet client CA file is owned by root:root",
            owned(KubeletClientCa, FileSet::KubeletClientCa, ROOT, "root:root")
                .items(vec![cmp("root:root", Op::Eq, "root:root")])
                .audit(),
        )
        .all("4.1.8")
        .fix(chown(ROOT, OWNER_ROOT)),
        check(
            "kubelet-config-mode",
            "Kubelet configuration file is mode 600 or stricter",
            perms(KubeletConfig, var("kubeletconf"), "600").audit(),
        )
        .all("4.1.9")
        .scored()
        .fix(chmod(0o600, MODE_600)),
        check(
            "kubelet-config-owner",
            "Kubelet configuration file is owned by root:root",
            owned(KubeletConfig, var("kubeletconf"), ROOT, "root:root").audit(),
        )
        .all("4.1.10")
        .scored()
        .fix(chown(ROOT, OWNER_ROOT)),
    ]
}
