//! Hand-written expectations, read off kube-bench's cfg/cis-1.12/*.yaml by a person, not
//! generated from the catalog: for every control, an argv that fails it (and the status
//! kube-bench prints then) and one that passes it. They run without ../shared.
#![allow(dead_code)]

pub mod node;

use kharden_catalog::Status;

pub struct Case {
    pub id: &'static str,
    pub fail: &'static [&'static str],
    /// FAIL for scored checks, WARN for unscored ones, MANUAL for `type: manual`.
    pub fail_status: Status,
    pub pass: &'static [&'static str],
}

use Status::{Fail, Manual, Warn};

const NOTHING: &[&str] = &["--v=2"];

pub const CASES: &[Case] = &[
    Case { id: "1.2.1", fail: &["--anonymous-auth=true"], fail_status: Warn, pass: &["--anonymous-auth=false"] },
    Case { id: "1.2.2", fail: &["--token-auth-file=/etc/kubernetes/tokens.csv"], fail_status: Fail, pass: NOTHING },
    Case { id: "1.2.3", fail: &["--enable-admission-plugins=NodeRestriction"], fail_status: Warn, pass: &["--enable-admission-plugins=NodeRestriction,DenyServiceExternalIPs"] },
    Case { id: "1.2.4", fail: &["--kubelet-client-certificate=/pki/c.crt"], fail_status: Fail, pass: &["--kubelet-client-certificate=/pki/c.crt", "--kubelet-client-key=/pki/c.key"] },
    Case { id: "1.2.5", fail: NOTHING, fail_status: Fail, pass: &["--kubelet-certificate-authority=/pki/ca.crt"] },
    Case { id: "1.2.6", fail: &["--authorization-mode=AlwaysAllow"], fail_status: Fail, pass: &["--authorization-mode=Node,RBAC"] },
    Case { id: "1.2.7", fail: &["--authorization-mode=RBAC"], fail_status: Fail, pass: &["--authorization-mode=Node,RBAC"] },
    Case { id: "1.2.8", fail: &["--authorization-mode=Node"], fail_status: Fail, pass: &["--authorization-mode=Node,RBAC"] },
    Case { id: "1.2.9", fail: &["--enable-admission-plugins=NodeRestriction"], fail_status: Warn, pass: &["--enable-admission-plugins=NodeRestriction,EventRateLimit"] },
    Case { id: "1.2.10", fail: &["--enable-admission-plugins=AlwaysAdmit,NodeRestriction"], fail_status: Fail, pass: &["--enable-admission-plugins=NodeRestriction"] },
    Case { id: "1.2.11", fail: &["--enable-admission-plugins=NodeRestriction"], fail_status: Warn, pass: &["--enable-admission-plugins=NodeRestriction,AlwaysPullImages"] },
    Case { id: "1.2.12", fail: &["--disable-admission-plugins=ServiceAccount"], fail_status: Fail, pass: &["--disable-admission-plugins=DefaultStorageClass"] },
    Case { id: "1.2.13", fail: &["--disable-admission-plugins=NamespaceLifecycle,DefaultStorageClass"], fail_status: Fail, pass: NOTHING },
    Case { id: "1.2.14", fail: &["--enable-admission-plugins=AlwaysPullImages"], fail_status: Fail, pass: &["--enable-admission-plugins=NodeRestriction"] },
    Case { id: "1.2.15", fail: NOTHING, fail_status: Fail, pass: &["--profiling=false"] },
    Case { id: "1.2.16", fail: NOTHING, fail_status: Fail, pass: &["--audit-log-path=/var/log/audit.log"] },
    Case { id: "1.2.17", fail: &["--audit-log-maxage=7"], fail_status: Fail, pass: &["--audit-log-maxage=30"] },
    Case { id: "1.2.18", fail: &["--audit-log-maxbackup=3"], fail_status: Fail, pass: &["--audit-log-maxbackup=10"] },
    Case { id: "1.2.19", fail: &["--audit-log-maxsize=50"], fail_status: Fail, pass: &["--audit-log-maxsize=200"] },
    // type: manual: kube-bench runs no test and prints WARN whatever the flags are.
    Case { id: "1.2.20", fail: &["--request-timeout=300s"], fail_status: Manual, pass: NOTHING },
    Case { id: "1.2.21", fail: &["--service-account-lookup=false"], fail_status: Fail, pass: &["--service-account-lookup=true"] },
    Case { id: "1.2.22", fail: NOTHING, fail_status: Fail, pass: &["--service-account-key-file=/pki/sa.pub"] },
    Case { id: "1.2.23", fail: &["--etcd-keyfile=/pki/e.key"], fail_status: Fail, pass: &["--etcd-certfile=/pki/e.crt", "--etcd-keyfile=/pki/e.key"] },
    Case { id: "1.2.24", fail: &["--tls-cert-file=/pki/a.crt"], fail_status: Fail, pass: &["--tls-cert-file=/pki/a.crt", "--tls-private-key-file=/pki/a.key"] },
    Case { id: "1.2.25", fail: NOTHING, fail_status: Fail, pass: &["--client-ca-file=/pki/ca.crt"] },
    Case { id: "1.2.26", fail: NOTHING, fail_status: Fail, pass: &["--etcd-cafile=/pki/etcd/ca.crt"] },
    Case { id: "1.2.27", fail: NOTHING, fail_status: Warn, pass: &["--encryption-provider-config=/etc/kubernetes/enc.yaml"] },
    Case { id: "1.2.29", fail: &["--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_AES_128_CBC_SHA"], fail_status: Warn, pass: &["--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"] },
    Case { id: "1.2.30", fail: &["--service-account-extend-token-expiration=true"], fail_status: Fail, pass: &["--service-account-extend-token-expiration=false"] },
    Case { id: "1.3.1", fail: NOTHING, fail_status: Warn, pass: &["--terminated-pod-gc-threshold=10"] },
    Case { id: "1.3.2", fail: &["--profiling=true"], fail_status: Fail, pass: &["--profiling=false"] },
    Case { id: "1.3.3", fail: &["--use-service-account-credentials=false"], fail_status: Fail, pass: &["--use-service-account-credentials=true"] },
    Case { id: "1.3.4", fail: NOTHING, fail_status: Fail, pass: &["--service-account-private-key-file=/pki/sa.key"] },
    Case { id: "1.3.5", fail: NOTHING, fail_status: Fail, pass: &["--root-ca-file=/pki/ca.crt"] },
    Case { id: "1.3.6", fail: &["--feature-gates=RotateKubeletServerCertificate=false"], fail_status: Fail, pass: &["--feature-gates=RotateKubeletServerCertificate=true"] },
    Case { id: "1.3.7", fail: &["--bind-address=0.0.0.0"], fail_status: Fail, pass: &["--bind-address=127.0.0.1"] },
    Case { id: "1.4.1", fail: &["--profiling=true"], fail_status: Fail, pass: &["--profiling=false"] },
    Case { id: "1.4.2", fail: &["--bind-address=0.0.0.0"], fail_status: Fail, pass: NOTHING },
    Case { id: "2.1", fail: &["--cert-file=/pki/etcd/server.crt"], fail_status: Fail, pass: &["--cert-file=/pki/etcd/server.crt", "--key-file=/pki/etcd/server.key"] },
    Case { id: "2.2", fail: &["--client-cert-auth=false"], fail_status: Fail, pass: &["--client-cert-auth=true"] },
    Case { id: "2.3", fail: &["--cert-file=/pki/etcd/server.crt", "--key-file=/pki/etcd/server.key", "--auto-tls=true"], fail_status: Fail, pass: &["--auto-tls=false"] },
    Case { id: "2.4", fail: &["--peer-key-file=/pki/etcd/peer.key"], fail_status: Fail, pass: &["--peer-cert-file=/pki/etcd/peer.crt", "--peer-key-file=/pki/etcd/peer.key"] },
    Case { id: "2.5", fail: NOTHING, fail_status: Fail, pass: &["--peer-client-cert-auth=true"] },
    Case { id: "2.6", fail: &["--peer-cert-file=/pki/etcd/peer.crt", "--peer-key-file=/pki/etcd/peer.key", "--peer-auto-tls=true"], fail_status: Fail, pass: NOTHING },
    Case { id: "2.7", fail: NOTHING, fail_status: Warn, pass: &["--trusted-ca-file=/pki/etcd/ca.crt"] },
    Case { id: "3.2.1", fail: NOTHING, fail_status: Warn, pass: &["--audit-policy-file=/etc/kubernetes/audit-policy.yaml"] },
];

pub fn argv(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}
