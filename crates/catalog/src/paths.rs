//! Where kube-bench looks for each component's files: the candidate paths of its
//! `cfg/config.yaml`, as data.
//!
//! kube-bench substitutes variables in its audits before running them: `$apiserverconf`,
//! `$kubeletconf`, `$kubeletsvc`, `$etcddatadir`, ... Each is the *first candidate that exists*
//! in config.yaml's list for that component and file kind, else the list's `default*` value, else
//! the component's own name (a relative path that never exists). Which file kube-bench stats or
//! reads is therefore decided by this list and by what exists on the node, not by what the
//! component really uses: a kubelet started with `--config=/etc/kubelet/config.yaml` is audited
//! on `/var/lib/kubelet/config.yaml` if that exists. Keeping the list as data lets kharden
//! predict kube-bench's choice (the caller does the I/O: [`ComponentPaths::resolve`] takes an
//! `exists` test) and explain the difference.
//!
//! The etcd component's `client_cert_file`/`client_key_file` entries (RKE2's) are not carried:
//! no check of the generic benchmarks uses them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Check, Target};

/// A kind of file a component has in config.yaml, and the suffix of its variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PathKind {
    /// `confs` / `defaultconf`: `$<component>conf`.
    Conf,
    /// `kubeconfig` / `defaultkubeconfig`: `$<component>kubeconfig`.
    Kubeconfig,
    /// `svc` / `defaultsvc`: `$<component>svc`.
    Svc,
    /// `cafile` / `defaultcafile`: `$<component>cafile`.
    CaFile,
    /// `datadirs` / `defaultdatadir`: `$<component>datadir`.
    DataDir,
}

impl PathKind {
    pub const ALL: [PathKind; 5] = [
        PathKind::Conf,
        PathKind::Kubeconfig,
        PathKind::Svc,
        PathKind::CaFile,
        PathKind::DataDir,
    ];

    /// The variable suffix kube-bench uses (`conf`, `kubeconfig`, `svc`, `cafile`, `datadir`).
    pub fn suffix(self) -> &'static str {
        match self {
            PathKind::Conf => "conf",
            PathKind::Kubeconfig => "kubeconfig",
            PathKind::Svc => "svc",
            PathKind::CaFile => "cafile",
            PathKind::DataDir => "datadir",
        }
    }
}

/// One component entry of a target's section of config.yaml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ComponentPaths {
    pub target: Target,
    /// config.yaml's component key (`apiserver`, `kubelet`, `proxy`, ...).
    pub component: &'static str,
    /// kube-bench runs the target's checks even when this component is not running.
    pub optional: bool,
    /// Binaries whose running process stands for the component (`$<component>bin`).
    pub bins: &'static [&'static str],
    pub confs: &'static [&'static str],
    pub default_conf: Option<&'static str>,
    pub kubeconfig: &'static [&'static str],
    pub default_kubeconfig: Option<&'static str>,
    pub svc: &'static [&'static str],
    pub default_svc: Option<&'static str>,
    pub datadirs: &'static [&'static str],
    pub default_datadir: Option<&'static str>,
    pub cafile: &'static [&'static str],
    pub default_cafile: Option<&'static str>,
}

/// How a variable was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Resolution {
    /// The candidate at this index of the list exists.
    Candidate { index: usize },
    /// No candidate exists: the `default*` value.
    Default,
    /// No candidate exists and there is no default: kube-bench substitutes the component's
    /// name, a relative path that does not exist.
    ComponentName,
}

/// A variable's value as kube-bench would substitute it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedPath {
    /// The variable without `$` (`kubeletconf`).
    pub var: String,
    pub path: String,
    pub how: Resolution,
}

impl ResolvedPath {
    /// A few words for reports: which candidate, or why the default.
    pub fn explain(&self) -> String {
        match self.how {
            Resolution::Candidate { index } => format!(
                "${} is {} (candidate {} of kube-bench's list, the first that exists)",
                self.var,
                self.path,
                index + 1
            ),
            Resolution::Default => format!(
                "${} is {} (kube-bench's default: none of its candidates exists)",
                self.var, self.path
            ),
            Resolution::ComponentName => format!(
                "${} is {:?} (no candidate exists and there is no default)",
                self.var, self.path
            ),
        }
    }
}

impl ComponentPaths {
    /// The candidates and default of one file kind.
    pub fn candidates(&self, kind: PathKind) -> (&'static [&'static str], Option<&'static str>) {
        match kind {
            PathKind::Conf => (self.confs, self.default_conf),
            PathKind::Kubeconfig => (self.kubeconfig, self.default_kubeconfig),
            PathKind::Svc => (self.svc, self.default_svc),
            PathKind::CaFile => (self.cafile, self.default_cafile),
            PathKind::DataDir => (self.datadirs, self.default_datadir),
        }
    }

    /// The variable name of one file kind (`kubeletconf`).
    pub fn var(&self, kind: PathKind) -> String {
        format!("{}{}", self.component, kind.suffix())
    }

    /// kube-bench's choice: the first candidate for which `exists` is true (kube-bench uses
    /// `os.Stat`, which follows symlinks: a dangling link does not exist), else the default,
    /// else the component's name. `exists` receives host paths; the caller resolves them under
    /// its root.
    pub fn resolve(&self, kind: PathKind, mut exists: impl FnMut(&str) -> bool) -> ResolvedPath {
        let (list, default) = self.candidates(kind);
        let var = self.var(kind);
        if let Some(index) = list.iter().position(|p| exists(p)) {
            return ResolvedPath {
                var,
                path: list[index].to_string(),
                how: Resolution::Candidate { index },
            };
        }
        match default {
            Some(d) => ResolvedPath {
                var,
                path: d.to_string(),
                how: Resolution::Default,
            },
            None => ResolvedPath {
                var,
                path: self.component.to_string(),
                how: Resolution::ComponentName,
            },
        }
    }
}

/// Every component entry of config.yaml's master, node, etcd and controlplane sections.
pub fn components() -> &'static [ComponentPaths] {
    COMPONENTS
}

/// The entry of `component` in `target`'s section.
pub fn component(target: Target, component: &str) -> Option<&'static ComponentPaths> {
    COMPONENTS
        .iter()
        .find(|c| c.target == target && c.component == component)
}

/// The component and kind behind a variable of `target`'s section (`kubeletconf` in node).
pub fn var(target: Target, var: &str) -> Option<(&'static ComponentPaths, PathKind)> {
    COMPONENTS
        .iter()
        .filter(|c| c.target == target)
        .find_map(|c| {
            PathKind::ALL
                .into_iter()
                .find(|k| c.var(*k) == var)
                .map(|k| (c, k))
        })
}

/// Resolve a variable of `target`'s section; `None` when config.yaml has no such variable.
pub fn resolve_var(
    target: Target,
    name: &str,
    exists: impl FnMut(&str) -> bool,
) -> Option<ResolvedPath> {
    var(target, name).map(|(c, k)| c.resolve(k, exists))
}

/// Resolve every variable the checks use, each in its check's target section, with the
/// caller's `exists` test (`os.Stat` semantics: follows symlinks). The result is what
/// [`crate::NodeFacts::paths`] holds.
pub fn resolve_for<'a>(
    checks: impl IntoIterator<Item = &'a Check>,
    mut exists: impl FnMut(&str) -> bool,
) -> BTreeMap<String, ResolvedPath> {
    let mut out = BTreeMap::new();
    for c in checks {
        for v in c.audit.variables() {
            if out.contains_key(v) {
                continue;
            }
            if let Some(r) = resolve_var(c.target, v, &mut exists) {
                out.insert(v.to_string(), r);
            }
        }
    }
    out
}

const NONE: &[&str] = &[];

const fn entry(target: Target, component: &'static str) -> ComponentPaths {
    ComponentPaths {
        target,
        component,
        optional: false,
        bins: NONE,
        confs: NONE,
        default_conf: None,
        kubeconfig: NONE,
        default_kubeconfig: None,
        svc: NONE,
        default_svc: None,
        datadirs: NONE,
        default_datadir: None,
        cafile: NONE,
        default_cafile: None,
    }
}

const APISERVER_BINS: &[&str] = &[
    "kube-apiserver",
    "hyperkube apiserver",
    "hyperkube kube-apiserver",
    "apiserver",
    "openshift start master api",
    "hypershift openshift-kube-apiserver",
];

const ETCD_DATADIRS: &[&str] = &[
    "/var/lib/etcd/default.etcd",
    "/var/lib/etcd/data.etcd",
    "/var/lib/rancher/k3s/server/db/etcd",
];

const KUBELET_BINS: &[&str] = &["hyperkube kubelet", "kubelet"];

static COMPONENTS: &[ComponentPaths] = &[
    // ----------------------------------------------------------------------------- master
    ComponentPaths {
        bins: APISERVER_BINS,
        confs: &[
            "/etc/kubernetes/manifests/kube-apiserver.yaml",
            "/etc/kubernetes/manifests/kube-apiserver.yml",
            "/etc/kubernetes/manifests/kube-apiserver.manifest",
            "/var/snap/kube-apiserver/current/args",
            "/var/snap/microk8s/current/args/kube-apiserver",
            "/etc/origin/master/master-config.yaml",
            "/etc/kubernetes/manifests/talos-kube-apiserver.yaml",
            "/var/lib/rancher/rke2/agent/pod-manifests/kube-apiserver.yaml",
        ],
        default_conf: Some("/etc/kubernetes/manifests/kube-apiserver.yaml"),
        ..entry(Target::Master, "apiserver")
    },
    ComponentPaths {
        bins: &[
            "kube-scheduler",
            "hyperkube scheduler",
            "hyperkube kube-scheduler",
            "scheduler",
            "openshift start master controllers",
        ],
        confs: &[
            "/etc/kubernetes/manifests/kube-scheduler.yaml",
            "/etc/kubernetes/manifests/kube-scheduler.yml",
            "/etc/kubernetes/manifests/kube-scheduler.manifest",
            "/var/snap/kube-scheduler/current/args",
            "/var/snap/microk8s/current/args/kube-scheduler",
            "/etc/origin/master/scheduler.json",
            "/etc/kubernetes/manifests/talos-kube-scheduler.yaml",
            "/var/lib/rancher/rke2/agent/pod-manifests/kube-scheduler.yaml",
        ],
        default_conf: Some("/etc/kubernetes/manifests/kube-scheduler.yaml"),
        kubeconfig: &[
            "/etc/kubernetes/scheduler.conf",
            "/var/lib/kube-scheduler/kubeconfig",
            "/var/lib/kube-scheduler/config.yaml",
            "/var/lib/rancher/rke2/server/cred/scheduler.kubeconfig",
            "/system/secrets/kubernetes/kube-scheduler/kubeconfig",
        ],
        default_kubeconfig: Some("/etc/kubernetes/scheduler.conf"),
        ..entry(Target::Master, "scheduler")
    },
    ComponentPaths {
        bins: &[
            "kube-controller-manager",
            "kube-controller",
            "hyperkube controller-manager",
            "hyperkube kube-controller-manager",
            "controller-manager",
            "openshift start master controllers",
            "hypershift openshift-controller-manager",
        ],
        confs: &[
            "/etc/kubernetes/manifests/kube-controller-manager.yaml",
            "/etc/kubernetes/manifests/kube-controller-manager.yml",
            "/etc/kubernetes/manifests/kube-controller-manager.manifest",
            "/var/snap/kube-controller-manager/current/args",
            "/var/snap/microk8s/current/args/kube-controller-manager",
            "/etc/kubernetes/manifests/talos-kube-controller-manager.yaml",
            "/var/lib/rancher/rke2/agent/pod-manifests/kube-controller-manager.yaml",
        ],
        default_conf: Some("/etc/kubernetes/manifests/kube-controller-manager.yaml"),
        kubeconfig: &[
            "/etc/kubernetes/controller-manager.conf",
            "/var/lib/kube-controller-manager/kubeconfig",
            "/var/lib/rancher/rke2/server/cred/controller.kubeconfig",
            "/system/secrets/kubernetes/kube-controller-manager/kubeconfig",
        ],
        default_kubeconfig: Some("/etc/kubernetes/controller-manager.conf"),
        ..entry(Target::Master, "controllermanager")
    },
    ComponentPaths {
        optional: true,
        bins: &["etcd", "openshift start etcd"],
        datadirs: ETCD_DATADIRS,
        confs: &[
            "/etc/kubernetes/manifests/etcd.yaml",
            "/etc/kubernetes/manifests/etcd.yml",
            "/etc/kubernetes/manifests/etcd.manifest",
            "/etc/etcd/etcd.conf",
            "/var/snap/etcd/common/etcd.conf.yml",
            "/var/snap/etcd/common/etcd.conf.yaml",
            "/var/snap/microk8s/current/args/etcd",
            "/usr/lib/systemd/system/etcd.service",
            "/var/lib/rancher/rke2/server/db/etcd/config",
            "/var/lib/rancher/k3s/server/db/etcd/config",
        ],
        default_conf: Some("/etc/kubernetes/manifests/etcd.yaml"),
        default_datadir: Some("/var/lib/etcd/default.etcd"),
        ..entry(Target::Master, "etcd")
    },
    ComponentPaths {
        optional: true,
        bins: &["flanneld"],
        default_conf: Some("/etc/sysconfig/flanneld"),
        ..entry(Target::Master, "flanneld")
    },
    ComponentPaths {
        default_conf: Some("/etc/kubernetes/config"),
        ..entry(Target::Master, "kubernetes")
    },
    ComponentPaths {
        optional: true,
        bins: KUBELET_BINS,
        ..entry(Target::Master, "kubelet")
    },
    // ------------------------------------------------------------------------------- node
    ComponentPaths {
        bins: KUBELET_BINS,
        cafile: &[
            "/var/lib/rancher/rke2/agent/client-ca.crt",
            "/var/lib/rancher/rke2/server/tls/server-ca.crt",
            "/etc/kubernetes/pki/ca.crt",
            "/etc/kubernetes/certs/ca.crt",
            "/etc/kubernetes/cert/ca.pem",
            "/var/snap/microk8s/current/certs/ca.crt",
            "/var/lib/rancher/rke2/agent/server.crt",
            "/var/lib/rancher/k3s/agent/client-ca.crt",
        ],
        svc: &[
            "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
            "/etc/systemd/system/kubelet.service",
            "/lib/systemd/system/kubelet.service",
            "/etc/systemd/system/snap.kubelet.daemon.service",
            "/etc/systemd/system/snap.microk8s.daemon-kubelet.service",
            "/etc/systemd/system/atomic-openshift-node.service",
            "/etc/systemd/system/origin-node.service",
        ],
        kubeconfig: &[
            "/etc/kubernetes/kubelet.conf",
            "/etc/kubernetes/kubelet-kubeconfig.conf",
            "/var/lib/kubelet/kubeconfig",
            "/etc/kubernetes/kubelet-kubeconfig",
            "/etc/kubernetes/kubelet/kubeconfig",
            "/etc/kubernetes/ssl/kubecfg-kube-node.yaml",
            "/var/snap/microk8s/current/credentials/kubelet.config",
            "/etc/kubernetes/kubeconfig-kubelet",
            "/var/lib/rancher/rke2/agent/kubelet.kubeconfig",
            "/var/lib/rancher/k3s/agent/kubelet.kubeconfig",
        ],
        confs: &[
            "/etc/kubernetes/kubelet-config.yaml",
            "/etc/kubernetes/kubelet/kubelet-config.json",
            "/var/lib/rancher/rke2/agent/etc/kubelet.conf.d",
            "/var/lib/kubelet/config.yaml",
            "/etc/kubernetes/azure.json",
            "/var/lib/kubelet/config.yml",
            "/etc/kubernetes/kubelet/kubelet-config.json",
            "/etc/kubernetes/kubelet/config.json",
            "/etc/kubernetes/kubelet/config",
            "/home/kubernetes/kubelet-config.yaml",
            "/home/kubernetes/kubelet-config.yml",
            "/etc/default/kubeletconfig.json",
            "/etc/default/kubelet",
            "/var/lib/kubelet/kubeconfig",
            "/var/snap/kubelet/current/args",
            "/var/snap/microk8s/current/args/kubelet",
            "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
            "/etc/systemd/system/kubelet.service",
            "/lib/systemd/system/kubelet.service",
            "/etc/systemd/system/snap.kubelet.daemon.service",
            "/etc/systemd/system/snap.microk8s.daemon-kubelet.service",
            "/etc/kubernetes/kubelet.yaml",
        ],
        default_conf: Some("/var/lib/kubelet/config.yaml"),
        default_svc: Some("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"),
        default_kubeconfig: Some("/etc/kubernetes/kubelet.conf"),
        default_cafile: Some("/etc/kubernetes/pki/ca.crt"),
        ..entry(Target::Node, "kubelet")
    },
    ComponentPaths {
        optional: true,
        bins: &[
            "kube-proxy",
            "hyperkube proxy",
            "hyperkube kube-proxy",
            "proxy",
            "openshift start network",
        ],
        confs: &[
            "/etc/kubernetes/proxy",
            "/etc/kubernetes/addons/kube-proxy-daemonset.yaml",
            "/etc/kubernetes/addons/kube-proxy-daemonset.yml",
            "/var/snap/kube-proxy/current/args",
            "/var/snap/microk8s/current/args/kube-proxy",
        ],
        kubeconfig: &[
            "/etc/kubernetes/kubelet-kubeconfig",
            "/etc/kubernetes/kubelet-kubeconfig.conf",
            "/etc/kubernetes/kubelet/config",
            "/etc/kubernetes/ssl/kubecfg-kube-proxy.yaml",
            "/var/lib/kubelet/kubeconfig",
            "/var/snap/microk8s/current/credentials/proxy.config",
            "/var/lib/rancher/rke2/agent/kubeproxy.kubeconfig",
            "/var/lib/rancher/k3s/agent/kubeproxy.kubeconfig",
        ],
        svc: &[
            "/lib/systemd/system/kube-proxy.service",
            "/etc/systemd/system/snap.microk8s.daemon-proxy.service",
        ],
        default_conf: Some("/etc/kubernetes/addons/kube-proxy-daemonset.yaml"),
        default_kubeconfig: Some("/etc/kubernetes/proxy.conf"),
        ..entry(Target::Node, "proxy")
    },
    ComponentPaths {
        default_conf: Some("/etc/kubernetes/config"),
        ..entry(Target::Node, "kubernetes")
    },
    // ------------------------------------------------------------------------------- etcd
    ComponentPaths {
        bins: &["etcd"],
        datadirs: ETCD_DATADIRS,
        confs: &[
            "/var/lib/rancher/rke2/server/db/etcd/config",
            "/var/lib/rancher/rke2/agent/pod-manifests/etcd.yaml",
            "/etc/kubernetes/manifests/etcd.yaml",
            "/etc/kubernetes/manifests/etcd.yml",
            "/etc/kubernetes/manifests/etcd.manifest",
            "/etc/etcd/etcd.conf",
            "/var/snap/etcd/common/etcd.conf.yml",
            "/var/snap/etcd/common/etcd.conf.yaml",
            "/var/snap/microk8s/current/args/etcd",
            "/usr/lib/systemd/system/etcd.service",
            "/var/lib/rancher/k3s/server/db/etcd/config",
        ],
        default_conf: Some("/etc/kubernetes/manifests/etcd.yaml"),
        default_datadir: Some("/var/lib/etcd/default.etcd"),
        ..entry(Target::Etcd, "etcd")
    },
    // ----------------------------------------------------------------------- controlplane
    ComponentPaths {
        bins: &[
            "kube-apiserver",
            "hyperkube apiserver",
            "hyperkube kube-apiserver",
            "apiserver",
        ],
        ..entry(Target::ControlPlane, "apiserver")
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_kube_bench() {
        let kubelet = component(Target::Node, "kubelet").expect("kubelet");
        // Nothing exists: the default.
        let r = kubelet.resolve(PathKind::Conf, |_| false);
        assert_eq!(r.path, "/var/lib/kubelet/config.yaml");
        assert_eq!(r.how, Resolution::Default);
        // The first existing candidate wins, even when the kubelet uses another file.
        let r = kubelet.resolve(PathKind::Conf, |p| {
            p == "/var/lib/kubelet/config.yaml" || p == "/etc/kubernetes/kubelet.yaml"
        });
        assert_eq!(r.path, "/var/lib/kubelet/config.yaml");
        assert_eq!(r.how, Resolution::Candidate { index: 3 });
        // No default: the component's name.
        let proxy = component(Target::Node, "proxy").expect("proxy");
        let r = proxy.resolve(PathKind::Svc, |_| false);
        assert_eq!(r.path, "proxy");
        assert_eq!(r.how, Resolution::ComponentName);
        assert_eq!(
            var(Target::Master, "etcddatadir").map(|(c, k)| (c.component, k)),
            Some(("etcd", PathKind::DataDir))
        );
        assert!(var(Target::Node, "etcddatadir").is_none());
        assert!(r.explain().contains("$proxysvc"));
    }
}
