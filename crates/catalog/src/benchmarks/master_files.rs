//! Section 1.1: permissions and ownership of the control-plane node's files.
//!
//! The files are found the way kube-bench finds them ([`crate::audit::FileSet`]): config.yaml
//! variables (`$apiserverconf`, `$etcdconf`, `$schedulerkubeconfig`, ...), literal paths
//! (admin.conf, and from cis-1.9 on super-admin.conf as well), `find` over the PKI directory,
//! etcd's `--data-dir`, the kubelet's `--cni-conf-dir`. Two tests changed between versions and
//! are separate definitions: the admin kubeconfig checks (one file and plain `stat` output in
//! cis-1.8, both files with their names from cis-1.9) and the PKI certificates' bitmask (600 up
//! to cis-1.10, 644 from cis-1.11).
//!
//! Fixes: remove the forbidden bits (`new = old & allowed`, never loosening) or set root:root.
//! Left manual: the CNI files (1.1.9/1.1.10), which belong to the network plugin; and 1.1.12
//! (`etcd:etcd`) when the node has no `etcd` user or group.

use super::{check, chmod, chown, manual, owned, perms, var, ROOT};
use crate::audit::{FileFix, FileRole, FileSet, Owner, StatFormat};
use crate::model::{CheckDef, Cis, Fix, Op};

use super::cmp;
use Cis::{V1_10, V1_11, V1_12, V1_8, V1_9};
use FileRole::*;

const ETCD: Owner = Owner {
    user: "etcd",
    group: "etcd",
};

const PKI: &str = "/etc/kubernetes/pki/";
const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";
const ADMIN_CONFS: &[&str] = &[
    "/etc/kubernetes/admin.conf",
    "/etc/kubernetes/super-admin.conf",
];

const MANIFEST_MODE: &str = "Removes the group and other permission bits (new mode = old mode & \
0600). The kubelet reads static pod manifests as root; a manifest's mode is not part of the pod, \
so nothing restarts.";
const MANIFEST_OWNER: &str = "Gives the manifest to root:root (kubeadm's default). The kubelet \
reads it as root; nothing restarts.";
const KUBECONFIG_MODE: &str = "Removes the group and other permission bits (new mode = old mode \
& 0600): the file holds a client key. The component reads it as root on kubeadm; the caller \
refuses the change if a running component would lose access.";
const KUBECONFIG_OWNER: &str = "Gives the file to root:root (kubeadm's default); the caller \
refuses the change if a running component would lose access.";
const CNI_REASON: &str = "the files belong to the network plugin, which rewrites them with its \
own modes (its configuration whenever its agent restarts, the IPAM reservations under \
/var/lib/cni/networks on every pod start and stop): a change does not stick, and a transaction \
over a set of files that changes under it conflicts. Set the modes in the plugin's installer or \
configuration instead";

fn pki_cert_mode(key: &'static str, mode: &'static str, bits: u32) -> super::Def {
    check(
        key,
        "PKI certificates are not writable by group or others",
        perms(
            PkiCertificates,
            FileSet::Find {
                dir: PKI,
                name: Some("*.crt"),
            },
            mode,
        )
        .multiple()
        .audit(),
    )
    .with_fix(chmod(
        bits,
        "Removes the forbidden bits of every *.crt under /etc/kubernetes/pki (new mode = old \
         mode & allowed); certificates are public, so only a non-root reader could notice, and \
         the caller refuses the change if a running component would lose access.",
    ))
}

pub(super) fn defs() -> Vec<CheckDef> {
    vec![
        check(
            "apiserver-manifest-mode",
            "API server manifest is mode 600 or stricter",
            perms(ApiServerManifest, var("apiserverconf"), "600").audit(),
        )
        .all("1.1.1")
        .scored()
        .fix(chmod(0o600, MANIFEST_MODE)),
        check(
            "apiserver-manifest-owner",
            "API server manifest is owned by root:root",
            owned(ApiServerManifest, var("apiserverconf"), ROOT, "root:root").audit(),
        )
        .all("1.1.2")
        .scored()
        .fix(chown(ROOT, MANIFEST_OWNER)),
        check(
            "controller-manager-manifest-mode",
            "Controller manager manifest is mode 600 or stricter",
            perms(
                ControllerManagerManifest,
                var("controllermanagerconf"),
                "600",
            )
            .audit(),
        )
        .all("1.1.3")
        .scored()
        .fix(chmod(0o600, MANIFEST_MODE)),
        check(
            "controller-manager-manifest-owner",
            "Controller manager manifest is owned by root:root",
            owned(
                ControllerManagerManifest,
                var("controllermanagerconf"),
                ROOT,
                "root:root",
            )
            .audit(),
        )
        .all("1.1.4")
        .scored()
        .fix(chown(ROOT, MANIFEST_OWNER)),
        check(
            "scheduler-manifest-mode",
            "Scheduler manifest is mode 600 or stricter",
            perms(SchedulerManifest, var("schedulerconf"), "600").audit(),
        )
        .all("1.1.5")
        .scored()
        .fix(chmod(0o600, MANIFEST_MODE)),
        check(
            "scheduler-manifest-owner",
            "Scheduler manifest is owned by root:root",
            owned(SchedulerManifest, var("schedulerconf"), ROOT, "root:root").audit(),
        )
        .all("1.1.6")
        .scored()
        .fix(chown(ROOT, MANIFEST_OWNER)),
        check(
            "etcd-manifest-mode",
            "etcd manifest is mode 600 or stricter",
            perms(
                EtcdManifest,
                FileSet::FindVar {
                    var: "etcdconf",
                    name: "*etcd*",
                },
                "600",
            )
            .multiple()
            .audit(),
        )
        .all("1.1.7")
        .scored()
        .fix(chmod(0o600, MANIFEST_MODE)),
        check(
            "etcd-manifest-owner",
            "etcd manifest is owned by root:root",
            owned(
                EtcdManifest,
                FileSet::FindVar {
                    var: "etcdconf",
                    name: "*etcd*",
                },
                ROOT,
                "root:root",
            )
            .multiple()
            .audit(),
        )
        .all("1.1.8")
        .scored()
        .fix(chown(ROOT, MANIFEST_OWNER)),
        check(
            "cni-files-mode",
            "CNI files are mode 600 or stricter",
            perms(CniFiles, FileSet::Cni, "600").multiple().audit(),
        )
        .all("1.1.9")
        .fix(manual(CNI_REASON)),
        check(
            "cni-files-owner",
            "CNI files are owned by root:root",
            owned(CniFiles, FileSet::Cni, ROOT, "root:root")
                .multiple()
                .audit(),
        )
        .all("1.1.10")
        .fix(manual(CNI_REASON)),
        check(
            "etcd-data-dir-mode",
            "etcd data directory is mode 700 or stricter",
            perms(EtcdDataDir, FileSet::EtcdDataDir, "700").audit(),
        )
        .all("1.1.11")
        .scored()
        .fix(chmod(
            0o700,
            "Removes the group and other permission bits of the data directory (new mode = old \
             mode & 0700); the files inside are not touched. etcd (root on kubeadm, or the \
             directory's owner) keeps its access.",
        )),
        check(
            "etcd-data-dir-owner",
            "etcd data directory is owned by etcd:etcd",
            owned(EtcdDataDir, FileSet::EtcdDataDir, ETCD, "etcd:etcd").audit(),
        )
        .all("1.1.12")
        .scored()
        .fix(Fix::File(FileFix {
            allowed_mode: None,
            owner: Some(ETCD),
            account_missing: "kubeadm runs etcd as root and creates no etcd user; creating a \
                system user for it (and running etcd as that user) is the operator's decision",
            note: "Gives the data directory (not the files inside) to etcd:etcd. Applied only \
                when that user and group exist; etcd running as root keeps its access.",
        })),
        check(
            "admin-conf-mode",
            "admin.conf is mode 600 or stricter",
            perms(
                AdminKubeconfig,
                FileSet::Paths {
                    paths: &[ADMIN_CONF],
                },
                "600",
            )
            .audit(),
        )
        .at("1.1.13", V1_8, V1_8)
        .scored()
        .fix(chmod(0o600, KUBECONFIG_MODE)),
        check(
            "admin-confs-mode",
            "admin.conf and super-admin.conf are mode 600 or stricter",
            perms(
                AdminKubeconfig,
                FileSet::Paths { paths: ADMIN_CONFS },
                "600",
            )
            .format(StatFormat::PermissionsAndName)
            .multiple()
            .audit(),
        )
        .at("1.1.13", V1_9, V1_12)
        .scored()
        .fix(chmod(0o600, KUBECONFIG_MODE)),
        check(
            "admin-conf-owner",
            "admin.conf is owned by root:root",
            owned(
                AdminKubeconfig,
                FileSet::Paths {
                    paths: &[ADMIN_CONF],
                },
                ROOT,
                "root:root",
            )
            .audit(),
        )
        .at("1.1.14", V1_8, V1_8)
        .scored()
        .fix(chown(ROOT, KUBECONFIG_OWNER)),
        check(
            "admin-confs-owner",
            "admin.conf and super-admin.conf are owned by root:root",
            owned(
                AdminKubeconfig,
                FileSet::Paths { paths: ADMIN_CONFS },
                ROOT,
                "root:root",
            )
            .format(StatFormat::OwnershipAndName)
            .items(vec![cmp("ownership", Op::Eq, "root:root")])
            .multiple()
            .audit(),
        )
        .at("1.1.14", V1_9, V1_12)
        .scored()
        .fix(chown(ROOT, KUBECONFIG_OWNER)),
        check(
            "scheduler-kubeconfig-mode",
            "scheduler.conf is mode 600 or stricter",
            perms(SchedulerKubeconfig, var("schedulerkubeconfig"), "600").audit(),
        )
        .all("1.1.15")
        .scored()
        .fix(chmod(0o600, KUBECONFIG_MODE)),
        check(
            "scheduler-kubeconfig-owner",
            "scheduler.conf is owned by root:root",
            owned(
                SchedulerKubeconfig,
                var("schedulerkubeconfig"),
                ROOT,
                "root:root",
            )
            .audit(),
        )
        .all("1.1.16")
        .scored()
        .fix(chown(ROOT, KUBECONFIG_OWNER)),
        check(
            "controller-manager-kubeconfig-mode",
            "controller-manager.conf is mode 600 or stricter",
            perms(
                ControllerManagerKubeconfig,
                var("controllermanagerkubeconfig"),
                "600",
            )
            .audit(),
        )
        .all("1.1.17")
        .scored()
        .fix(chmod(0o600, KUBECONFIG_MODE)),
        check(
            "controller-manager-kubeconfig-owner",
            "controller-manager.conf is owned by root:root",
            owned(
                ControllerManagerKubeconfig,
                var("controllermanagerkubeconfig"),
                ROOT,
                "root:root",
            )
            .audit(),
        )
        .all("1.1.18")
        .scored()
        .fix(chown(ROOT, KUBECONFIG_OWNER)),
        check(
            "pki-owner",
            "PKI directory and files are owned by root:root",
            owned(
                PkiTree,
                FileSet::Find {
                    dir: PKI,
                    name: None,
                },
                ROOT,
                "root:root",
            )
            .multiple()
            .audit(),
        )
        .all("1.1.19")
        .scored()
        .fix(chown(
            ROOT,
            "Gives every file and directory under /etc/kubernetes/pki to root:root (one \
             transaction). A component running as another user that reads its certificates \
             there (an etcd run as etcd, say) would lose access: the caller checks and refuses.",
        )),
        pki_cert_mode("pki-cert-mode-600", "600", 0o600)
            .at("1.1.20", V1_8, V1_10)
            .done(),
        pki_cert_mode("pki-cert-mode", "644", 0o644)
            .at("1.1.20", V1_11, V1_12)
            .done(),
        check(
            "pki-key-mode",
            "PKI private keys are mode 600 or stricter",
            perms(
                PkiKeys,
                FileSet::Find {
                    dir: PKI,
                    name: Some("*.key"),
                },
                "600",
            )
            .multiple()
            .audit(),
        )
        .all("1.1.21")
        .fix(chmod(
            0o600,
            "Removes the group and other permission bits of every *.key under \
             /etc/kubernetes/pki (new mode = old mode & 0600; a 0400 key stays 0400).",
        )),
    ]
}
