//! A simulated node for evaluation tests: a "disk" of `lstat` facts, the processes kubeadm runs,
//! and the caller's gathering steps (resolve kube-bench's variables, ask for files, stat them).
#![allow(dead_code)]

use std::collections::BTreeMap;

use kharden_catalog::paths;
use kharden_catalog::{
    benchmark, file_requests, Benchmark, CheckResult, Component, ConfigContent, ConfigDoc,
    ConfigValue, EffectiveValue, FileFact, FileFacts, Meta, NodeFacts, ValueSource,
};

pub fn map(entries: &[(&str, ConfigValue)]) -> ConfigValue {
    ConfigValue::Map(
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

pub fn s(v: &str) -> ConfigValue {
    ConfigValue::Str(v.to_string())
}

/// The KubeletConfiguration kubeadm writes to /var/lib/kubelet/config.yaml (the keys the
/// benchmark reads; kubeadm writes zero durations such as `streamingConnectionIdleTimeout: 0s`).
pub fn kubeadm_kubelet_yaml() -> ConfigValue {
    map(&[
        ("apiVersion", s("kubelet.config.k8s.io/v1beta1")),
        ("kind", s("KubeletConfiguration")),
        (
            "authentication",
            map(&[
                ("anonymous", map(&[("enabled", ConfigValue::Bool(false))])),
                (
                    "webhook",
                    map(&[("cacheTTL", s("0s")), ("enabled", ConfigValue::Bool(true))]),
                ),
                (
                    "x509",
                    map(&[("clientCAFile", s("/etc/kubernetes/pki/ca.crt"))]),
                ),
            ]),
        ),
        ("authorization", map(&[("mode", s("Webhook"))])),
        ("cgroupDriver", s("systemd")),
        ("rotateCertificates", ConfigValue::Bool(true)),
        ("staticPodPath", s("/etc/kubernetes/manifests")),
        ("streamingConnectionIdleTimeout", s("0s")),
    ])
}

fn eff(value: Option<&str>, source: ValueSource) -> EffectiveValue {
    EffectiveValue {
        value: value.map(str::to_string),
        source,
    }
}

/// What the kubelet really uses with kubeadm's config.yaml and no flags: the file's values and
/// the v1beta1 defaults (a zero duration is defaulted).
pub fn kubeadm_kubelet_effective() -> BTreeMap<String, EffectiveValue> {
    let file = || ValueSource::ConfigFile {
        path: "/var/lib/kubelet/config.yaml".into(),
    };
    [
        (
            "authentication.anonymous.enabled",
            eff(Some("false"), file()),
        ),
        ("authorization.mode", eff(Some("Webhook"), file())),
        (
            "authentication.x509.clientCAFile",
            eff(Some("/etc/kubernetes/pki/ca.crt"), file()),
        ),
        ("readOnlyPort", eff(Some("0"), ValueSource::Default)),
        (
            "streamingConnectionIdleTimeout",
            eff(Some("4h0m0s"), ValueSource::Default),
        ),
        (
            "makeIPTablesUtilChains",
            eff(Some("true"), ValueSource::Default),
        ),
        ("eventRecordQPS", eff(Some("50"), ValueSource::Default)),
        ("tlsCertFile", eff(None, ValueSource::Unset)),
        ("tlsPrivateKeyFile", eff(None, ValueSource::Unset)),
        ("rotateCertificates", eff(Some("true"), file())),
        (
            "featureGates.RotateKubeletServerCertificate",
            eff(Some("true"), ValueSource::Default),
        ),
        ("tlsCipherSuites", eff(None, ValueSource::Unset)),
        ("podPidsLimit", eff(Some("-1"), ValueSource::Default)),
        ("seccompDefault", eff(Some("false"), ValueSource::Default)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

pub fn argv(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub fn meta(kind: kharden_catalog::FileKind, mode: u32, user: &str, group: &str) -> Meta {
    Meta {
        kind,
        mode,
        user: user.into(),
        group: group.into(),
    }
}

/// kubeadm's control-plane node as installed (modes kubeadm really writes).
pub fn kubeadm_disk() -> FileFacts {
    FileFacts::new()
        .dir("/etc/kubernetes/manifests", 0o755, "root", "root")
        .file(
            "/etc/kubernetes/manifests/kube-apiserver.yaml",
            0o600,
            "root",
            "root",
        )
        .file(
            "/etc/kubernetes/manifests/kube-controller-manager.yaml",
            0o600,
            "root",
            "root",
        )
        .file(
            "/etc/kubernetes/manifests/kube-scheduler.yaml",
            0o600,
            "root",
            "root",
        )
        .file("/etc/kubernetes/manifests/etcd.yaml", 0o600, "root", "root")
        .dir("/var/lib/etcd", 0o700, "root", "root")
        .dir("/var/lib/etcd/member", 0o700, "root", "root")
        .file("/etc/kubernetes/admin.conf", 0o600, "root", "root")
        .file("/etc/kubernetes/super-admin.conf", 0o600, "root", "root")
        .file("/etc/kubernetes/scheduler.conf", 0o600, "root", "root")
        .file(
            "/etc/kubernetes/controller-manager.conf",
            0o600,
            "root",
            "root",
        )
        .file("/etc/kubernetes/kubelet.conf", 0o600, "root", "root")
        .dir("/etc/kubernetes/pki", 0o755, "root", "root")
        .file("/etc/kubernetes/pki/ca.crt", 0o644, "root", "root")
        .file("/etc/kubernetes/pki/ca.key", 0o600, "root", "root")
        .file("/etc/kubernetes/pki/apiserver.crt", 0o644, "root", "root")
        .file("/etc/kubernetes/pki/apiserver.key", 0o600, "root", "root")
        .file("/etc/kubernetes/pki/sa.pub", 0o600, "root", "root")
        .dir("/etc/kubernetes/pki/etcd", 0o755, "root", "root")
        .file("/etc/kubernetes/pki/etcd/ca.crt", 0o644, "root", "root")
        .file("/etc/kubernetes/pki/etcd/ca.key", 0o600, "root", "root")
        .dir("/etc/cni/net.d", 0o755, "root", "root")
        .file("/etc/cni/net.d/10-flannel.conflist", 0o644, "root", "root")
        .dir(
            "/etc/systemd/system/kubelet.service.d",
            0o755,
            "root",
            "root",
        )
        .file(
            "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
            0o644,
            "root",
            "root",
        )
        .file("/lib/systemd/system/kubelet.service", 0o644, "root", "root")
        .dir("/var/lib/kubelet", 0o700, "root", "root")
        .file("/var/lib/kubelet/config.yaml", 0o644, "root", "root")
}

pub fn kubeadm_processes() -> Vec<(Component, Vec<String>)> {
    vec![
        (
            Component::ApiServer,
            argv(&[
                "--advertise-address=10.0.0.10",
                "--authorization-mode=Node,RBAC",
                "--client-ca-file=/etc/kubernetes/pki/ca.crt",
                "--enable-admission-plugins=NodeRestriction",
                "--etcd-servers=https://127.0.0.1:2379",
                "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
            ]),
        ),
        (
            Component::ControllerManager,
            argv(&[
                "--authentication-kubeconfig=/etc/kubernetes/controller-manager.conf",
                "--authorization-kubeconfig=/etc/kubernetes/controller-manager.conf",
                "--bind-address=127.0.0.1",
                "--kubeconfig=/etc/kubernetes/controller-manager.conf",
            ]),
        ),
        (
            Component::Scheduler,
            argv(&[
                "--authentication-kubeconfig=/etc/kubernetes/scheduler.conf",
                "--authorization-kubeconfig=/etc/kubernetes/scheduler.conf",
                "--bind-address=127.0.0.1",
                "--kubeconfig=/etc/kubernetes/scheduler.conf",
            ]),
        ),
        (
            Component::Etcd,
            argv(&[
                "--advertise-client-urls=https://10.0.0.10:2379",
                "--cert-file=/etc/kubernetes/pki/etcd/server.crt",
                "--client-cert-auth=true",
                "--data-dir=/var/lib/etcd",
            ]),
        ),
        (
            Component::Kubelet,
            argv(&[
                "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
                "--kubeconfig=/etc/kubernetes/kubelet.conf",
                "--config=/var/lib/kubelet/config.yaml",
                "--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock",
            ]),
        ),
    ]
}

/// The caller's gathering: resolve kube-bench's variables against the disk, ask which files
/// the checks need, and `lstat` them (walking directories as `find` does).
pub fn gather(bench: &Benchmark, disk: &FileFacts, facts: &mut NodeFacts) {
    facts.paths = paths::resolve_for(&bench.checks, |p| disk.get(p).is_some_and(FileFact::exists));
    let mut files = FileFacts::new();
    for r in file_requests(&bench.checks, facts) {
        files.insert(
            &r.path,
            disk.get(&r.path).cloned().unwrap_or_else(FileFact::absent),
        );
        if r.walk {
            for (p, f) in disk.below(&r.path) {
                files.insert(p, f.clone());
            }
        }
    }
    facts.files = files;
}

/// A node with these files and processes, gathered for `bench_id`.
pub fn node(
    bench_id: &str,
    disk: &FileFacts,
    processes: Vec<(Component, Vec<String>)>,
) -> NodeFacts {
    let bench = benchmark(bench_id).expect("compiled in");
    let mut facts = NodeFacts {
        processes: processes.into_iter().collect(),
        ..Default::default()
    };
    gather(bench, disk, &mut facts);
    config_docs(disk, &mut facts, kubeadm_kubelet_yaml());
    facts
}

/// kube-bench's view of `$kubeletconf` (this document when the file exists) and of
/// `$proxykubeconfig` (never a kube-proxy configuration).
pub fn config_docs(disk: &FileFacts, facts: &mut NodeFacts, kubelet: ConfigValue) {
    let doc = |var: &str, value: ConfigValue| {
        let path = facts
            .paths
            .get(var)
            .map(|r| r.path.clone())
            .unwrap_or_default();
        let content = if disk.get(&path).is_some_and(FileFact::exists) {
            ConfigContent::Yaml(value)
        } else {
            ConfigContent::Missing
        };
        ConfigDoc { path, content }
    };
    let k = doc("kubeletconf", kubelet);
    let p = doc(
        "proxykubeconfig",
        map(&[("apiVersion", s("v1")), ("kind", s("Config"))]),
    );
    facts.kubelet.kube_bench_file = Some(k);
    facts.proxy.kube_bench_file = Some(p);
}

pub fn result(bench_id: &str, id: &str, facts: &NodeFacts) -> CheckResult {
    let bench = benchmark(bench_id).expect("compiled in");
    let check = bench.check(id).unwrap_or_else(|| panic!("{id} missing"));
    kharden_catalog::evaluate_check(check, facts).unwrap_or_else(|e| panic!("{id}: {e}"))
}
