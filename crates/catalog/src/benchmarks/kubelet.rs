//! Sections 4.2 (the kubelet) and 4.3 (kube-proxy): command line first, else the configuration
//! file kube-bench finds.
//!
//! Each test item names the flag kube-bench searches in `ps -fC kubelet` and the JSONPath it
//! reads from `$kubeletconf` when the flag is absent. The effective reading uses the kubelet's
//! real configuration (flags over `--config-dir` drop-ins over `--config` over the v1beta1
//! defaults) with, for a few checks, a rule closer to the control than kube-bench's test
//! ([`EffectiveRule`]).
//!
//! Automated fixes set a `KubeletConfiguration` key (or the flag that wins over it). Left
//! manual, each with its reason: the client CA and the serving certificate (node-specific
//! material), certificate rotation (it needs the cluster to approve the kubelet's CSRs), the
//! node's identity (`--hostname-override`), the PID limit and the default seccomp profile (they
//! change what workloads may do), `IPAddressDeny` (a systemd directive, not a kubelet setting)
//! and kube-proxy (configured by a cluster-wide ConfigMap on kubeadm).

use super::{absent, at_path, check, cmp, kubelet_config, kubelet_fix, manual, present};
use crate::audit::{Audit, ConfigTest, EffectiveRule, KubeletSetting, KubeletValue};
use crate::model::{BinOp, CheckDef, Cis, Component, Op, TestItem};

use BinOp::{And, Or};
use Cis::{V1_11, V1_12, V1_8, V1_9};
use EffectiveRule::Items;

/// The TLS 1.2 suites kharden sets for 4.2.12: ECDHE with AEAD ciphers, spelled as every
/// version's allowed list spells them (the kubelet accepts these legacy ChaCha20 names).
pub const KUBELET_STRONG_CIPHERS: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
];

const CIPHERS_1_8: &str = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,\
TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,\
TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,\
TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_RSA_WITH_AES_256_GCM_SHA384,\
TLS_RSA_WITH_AES_128_GCM_SHA256";

const CIPHERS_1_12: &str = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,\
TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,\
TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,\
TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384";

const CIPHER_PATH: &str = "{range .tlsCipherSuites[:]}{}{','}{end}";

const CERTS: &str = "the value is a path to certificate or key material that must exist on this \
node and be signed by the cluster's CA; kharden cannot create or guess it";

fn k(item: TestItem, path: &'static str) -> TestItem {
    at_path(item, path)
}

fn setting(key: &'static str, value: KubeletValue, flag: &'static str) -> KubeletSetting {
    KubeletSetting { key, value, flag }
}

fn ciphers(key: &'static str, allowed: &'static str) -> super::Def {
    check(
        key,
        "Kubelet offers only strong TLS cipher suites",
        kubelet_config(
            And,
            vec![k(
                cmp("--tls-cipher-suites", Op::ValidElements, allowed),
                CIPHER_PATH,
            )],
            Items,
        ),
    )
    .with_fix(kubelet_fix(
        vec![setting(
            "tlsCipherSuites",
            KubeletValue::List(KUBELET_STRONG_CIPHERS),
            "--tls-cipher-suites",
        )],
        "Restricts the kubelet's TLS 1.2 suites to ECDHE with AES-GCM or ChaCha20-Poly1305 (any \
         list already set is replaced). Its clients (the API server, metrics-server, Prometheus) \
         are Go programs that support them.",
    ))
}

pub(super) fn defs() -> Vec<CheckDef> {
    vec![
        check(
            "kubelet-anonymous-auth",
            "Kubelet rejects anonymous requests",
            kubelet_config(
                And,
                vec![k(
                    cmp("--anonymous-auth", Op::Eq, "false"),
                    "{.authentication.anonymous.enabled}",
                )],
                Items,
            ),
        )
        .all("4.2.1")
        .scored()
        .fix(kubelet_fix(
            vec![setting(
                "authentication.anonymous.enabled",
                KubeletValue::Bool(false),
                "--anonymous-auth",
            )],
            "Requests to the kubelet's API without credentials then get 401 (kubeadm's \
             default). The health endpoint on port 10248 is separate and keeps answering; a \
             scraper that reads port 10250 anonymously stops getting data.",
        )),
        check(
            "kubelet-authorization-mode",
            "Kubelet does not authorize every request",
            kubelet_config(
                And,
                vec![k(
                    cmp("--authorization-mode", Op::NotHave, "AlwaysAllow"),
                    "{.authorization.mode}",
                )],
                Items,
            ),
        )
        .all("4.2.2")
        .scored()
        .fix(kubelet_fix(
            vec![setting(
                "authorization.mode",
                KubeletValue::Str("Webhook"),
                "--authorization-mode",
            )],
            "The kubelet then asks the API server (SubjectAccessReview) whether each caller may \
             use its API (kubeadm's default). The API server's own kubelet client is allowed \
             through kubeadm's system:kubelet-api-admin binding; other callers need RBAC.",
        )),
        check(
            "kubelet-client-ca",
            "Kubelet verifies client certificates against a CA",
            kubelet_config(
                And,
                vec![k(
                    present("--client-ca-file"),
                    "{.authentication.x509.clientCAFile}",
                )],
                Items,
            ),
        )
        .all("4.2.3")
        .scored()
        .fix(manual(CERTS)),
        check(
            "kubelet-read-only-port",
            "Kubelet's unauthenticated read-only port is off",
            kubelet_config(
                Or,
                vec![
                    k(cmp("--read-only-port", Op::Eq, "0"), "{.readOnlyPort}"),
                    k(absent("--read-only-port"), "{.readOnlyPort}"),
                ],
                Items,
            ),
        )
        .all("4.2.4")
        .fix(kubelet_fix(
            vec![setting(
                "readOnlyPort",
                KubeletValue::Int(0),
                "--read-only-port",
            )],
            "Closes port 10255, which serves pod and node data without authentication \
             (kubeadm's default). Monitoring that scrapes it must move to the authenticated \
             port 10250.",
        )),
        check(
            "kubelet-streaming-idle-timeout",
            "Kubelet closes idle streaming connections",
            kubelet_config(
                Or,
                vec![
                    k(
                        cmp("--streaming-connection-idle-timeout", Op::NotEq, "0"),
                        "{.streamingConnectionIdleTimeout}",
                    ),
                    k(
                        absent("--streaming-connection-idle-timeout"),
                        "{.streamingConnectionIdleTimeout}",
                    ),
                ],
                EffectiveRule::DurationNotZero {
                    key: "streamingConnectionIdleTimeout",
                },
            ),
        )
        .all("4.2.5")
        .fix(kubelet_fix(
            vec![setting(
                "streamingConnectionIdleTimeout",
                KubeletValue::Str("4h0m0s"),
                "--streaming-connection-idle-timeout",
            )],
            "Sets the kubelet's default idle timeout, 4 hours, for exec, attach and \
             port-forward streams.",
        )),
        check(
            "kubelet-iptables-util-chains",
            "Kubelet manages its iptables utility chains",
            kubelet_config(
                Or,
                vec![
                    k(
                        cmp("--make-iptables-util-chains", Op::Eq, "true"),
                        "{.makeIPTablesUtilChains}",
                    ),
                    k(
                        absent("--make-iptables-util-chains"),
                        "{.makeIPTablesUtilChains}",
                    ),
                ],
                Items,
            ),
        )
        .all("4.2.6")
        .scored()
        .fix(kubelet_fix(
            vec![setting(
                "makeIPTablesUtilChains",
                KubeletValue::Bool(true),
                "--make-iptables-util-chains",
            )],
            "Lets the kubelet keep its iptables utility chains in place (the default).",
        )),
        check(
            "kubelet-hostname-override",
            "Kubelet does not override the node's hostname",
            Audit::Config(ConfigTest {
                process: Component::Kubelet,
                config_var: None,
                bin_op: And,
                items: vec![absent("--hostname-override")],
                effective: Items,
            }),
        )
        .all("4.2.7")
        .fix(manual(
            "the flag is the node's identity: without it the kubelet registers under another \
             name, a new Node object appears, the old one goes NotReady, and certificates bound \
             to the name stop matching; clouds and some CNIs need it. Remove it only when \
             re-joining the node",
        )),
        check(
            "kubelet-event-qps",
            "Kubelet event rate limit is a valid level",
            kubelet_config(
                Or,
                vec![
                    k(cmp("--event-qps", Op::Gte, "0"), "{.eventRecordQPS}"),
                    k(absent("--event-qps"), "{.eventRecordQPS}"),
                ],
                Items,
            ),
        )
        .all("4.2.8")
        .fix(kubelet_fix(
            vec![setting(
                "eventRecordQPS",
                KubeletValue::Int(50),
                "--event-qps",
            )],
            "Writes the kubelet's default, 50 events per second (the check only fails for a \
             value that is not a non-negative integer).",
        )),
        check(
            "kubelet-tls-cert",
            "Kubelet serves TLS with a certificate of its own",
            kubelet_config(
                And,
                vec![
                    k(present("--tls-cert-file"), "{.tlsCertFile}"),
                    k(present("--tls-private-key-file"), "{.tlsPrivateKeyFile}"),
                ],
                Items,
            ),
        )
        .all("4.2.9")
        .fix(manual(CERTS)),
        check(
            "kubelet-rotate-certificates",
            "Kubelet client certificate rotation is not disabled",
            kubelet_config(
                Or,
                vec![
                    k(
                        cmp("--rotate-certificates", Op::Eq, "true"),
                        "{.rotateCertificates}",
                    ),
                    k(absent("--rotate-certificates"), "{.rotateCertificates}"),
                ],
                Items,
            ),
        )
        .all("4.2.10")
        .scored()
        .fix(manual(
            "rotation only works when the cluster approves the kubelet's certificate signing \
             requests (kubeadm's auto-approval binding, or an approver); whether it does is a \
             cluster fact kharden cannot see from the node, and unapproved requests pile up \
             while the kubelet's certificate still expires",
        )),
        check(
            "kubelet-rotate-server-certificates",
            "Kubelet serving certificate rotation is not disabled",
            kubelet_config(
                Or,
                vec![
                    k(
                        cmp("RotateKubeletServerCertificate", Op::NotHave, "false"),
                        "{.featureGates.RotateKubeletServerCertificate}",
                    ),
                    k(
                        absent("RotateKubeletServerCertificate"),
                        "{.featureGates.RotateKubeletServerCertificate}",
                    ),
                ],
                EffectiveRule::BoolTrue {
                    key: "featureGates.RotateKubeletServerCertificate",
                },
            ),
        )
        .all("4.2.11")
        .fix(manual(
            "serving certificates from the cluster (serverTLSBootstrap) must be approved by a \
             person or an approver the cluster trusts, since the kubelet asks for its own names \
             and addresses; until they are, logs, exec and port-forward to the node fail",
        )),
        ciphers("kubelet-tls-ciphers-1.8", CIPHERS_1_8)
            .at("4.2.12", V1_8, V1_11)
            .done(),
        ciphers("kubelet-tls-ciphers", CIPHERS_1_12)
            .at("4.2.12", V1_12, V1_12)
            .done(),
        check(
            "kubelet-pod-pids-limit",
            "Kubelet limits the number of PIDs per pod",
            kubelet_config(
                And,
                vec![k(present("--pod-max-pids"), "{.podPidsLimit}")],
                EffectiveRule::PositiveInt {
                    key: "podPidsLimit",
                },
            ),
        )
        .all("4.2.13")
        .fix(manual(
            "the right limit depends on the node's workloads: too low and pods that start \
             many threads or processes (JVMs, build jobs) fail in ways the kubelet's health \
             does not show",
        )),
        check(
            "kubelet-seccomp-default",
            "Kubelet applies the runtime's default seccomp profile",
            kubelet_config(
                And,
                vec![k(present("--seccomp-default"), "{.seccompDefault}")],
                EffectiveRule::BoolTrue {
                    key: "seccompDefault",
                },
            ),
        )
        .at("4.2.14", V1_11, V1_12)
        .fix(manual(
            "it changes what every workload without a seccomp profile may do (system calls the \
             runtime's default profile blocks then fail); test the workloads first",
        )),
        check(
            "kubelet-ip-address-deny",
            "Kubelet service denies network access by default",
            kubelet_config(
                And,
                vec![k(present("--IPAddressDeny"), "{.IPAddressDeny}")],
                EffectiveRule::Unknown {
                    reason: "IPAddressDeny is a systemd directive of the kubelet's unit, not a \
                             kubelet flag or configuration key; the effective value is not read",
                },
            ),
        )
        .at("4.2.15", V1_11, V1_11)
        .fix(manual(
            "a systemd IP filter on the kubelet's unit must allow exactly the addresses the \
             kubelet needs (API server, registries, node network); a wrong list cuts the node \
             off",
        )),
        check(
            "proxy-metrics-bind-address",
            "kube-proxy metrics listen on localhost only",
            Audit::Config(ConfigTest {
                process: Component::KubeProxy,
                config_var: Some("proxykubeconfig"),
                bin_op: Or,
                items: vec![
                    k(
                        cmp("--metrics-bind-address", Op::Has, "127.0.0.1"),
                        "{.metricsBindAddress}",
                    ),
                    k(absent("--metrics-bind-address"), "{.metricsBindAddress}"),
                ],
                effective: EffectiveRule::HostIs {
                    key: "metricsBindAddress",
                    host: "127.0.0.1",
                },
            }),
        )
        .at("4.3.1", V1_9, V1_12)
        .scored()
        .fix(manual(
            "on kubeadm kube-proxy runs as a DaemonSet configured by the kube-proxy ConfigMap, a \
             cluster-wide object that kharden, working on one node's files, does not change",
        )),
    ]
}
