//! CIS Kubernetes Benchmark v1.12 (Kubernetes 1.32-1.34), as kube-bench checks it.
//!
//! Test definitions (ids, flags, operators, values, `set`, `bin_op`, `scored`, `type: manual`)
//! are facts taken from kube-bench's `cfg/cis-1.12/{master,etcd,controlplane}.yaml`. Titles,
//! notes and reasons are our own words. Only checks that read a component's command line
//! (kube-bench's `ps -ef | grep <binary>` audits) are here: 1.2.28 reads the encryption
//! configuration file, not a flag, and is left out.
//!
//! Automation policy (see docs/cis-catalog.md): a fix is automated when it is a pure flag
//! change, or a flag plus a file kharden writes itself, that cannot lock the control plane
//! out of its own files or peers. Anything that needs node-specific material (certificates,
//! keys, CAs, encryption keys) or that changes what workloads may do is left to a person.

use std::sync::LazyLock;

use super::{
    absent, add_item, at_least, cmp, env, fix, fix_with, manual, mount, present, remove_item, set,
    unset, Def,
};
use crate::model::{Benchmark, BinOp, Component, Control, Op};
use crate::remediation::{ExtraFile, Guard};

/// Host path of the audit policy kharden writes for 3.2.1.
pub const AUDIT_POLICY_PATH: &str = "/etc/kubernetes/audit-policy.yaml";
/// Host directory of the audit log (1.2.16), mounted writable.
pub const AUDIT_LOG_DIR: &str = "/var/log/kubernetes/audit";
/// The audit log file inside [`AUDIT_LOG_DIR`].
pub const AUDIT_LOG_PATH: &str = "/var/log/kubernetes/audit/audit.log";
/// Host path of the admission configuration kharden writes for 1.2.9.
pub const ADMISSION_CONFIG_PATH: &str = "/etc/kubernetes/admission-control-config.yaml";

/// The audit policy (3.2.1): metadata for everything, request bodies for workload changes,
/// never bodies of secrets, config maps or tokens.
pub const AUDIT_POLICY: &str = include_str!("files/audit-policy.yaml");
/// The admission configuration (1.2.9): EventRateLimit with generous server, namespace and
/// user limits.
pub const ADMISSION_CONFIG: &str = include_str!("files/admission-config.yaml");

/// The strong TLS 1.2 suites kharden sets for 1.2.29: ECDHE key exchange with AEAD ciphers
/// only, every one of them in kube-bench's allowed list. (TLS 1.3 suites are not
/// configurable in Go and need not be listed.)
pub const STRONG_CIPHERS: &str = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,\
TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,\
TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,\
TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256";

const ALLOWED_CIPHERS: &str = "TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384,\
TLS_CHACHA20_POLY1305_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,\
TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,\
TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,\
TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,\
TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256";

const NEEDS_FILES: &str = "the value is a path to key or certificate material that must \
already exist on this node and match the rest of the cluster's PKI; kharden cannot create or \
guess it (kubeadm sets it at install time)";

/// The benchmark, built on first use.
pub static BENCHMARK: LazyLock<Benchmark> = LazyLock::new(|| Benchmark {
    id: "cis-1.12",
    kubernetes_versions: &["1.32", "1.33", "1.34"],
    controls: controls(),
});

fn api(
    id: &'static str,
    title: &'static str,
    scored: bool,
    bin_op: BinOp,
    tests: Vec<crate::model::TestItem>,
    fix: crate::model::Fix,
) -> Control {
    Def {
        id,
        title,
        component: Component::ApiServer,
        scored,
        bin_op,
        tests,
        fix,
    }
    .into()
}

fn component(c: Component, mut control: Control) -> Control {
    control.component = c;
    control
}

fn controls() -> Vec<Control> {
    use BinOp::{And, Or};
    use Component::{ControllerManager, Etcd, Scheduler};

    let authz = || {
        vec![
            add_item("authorization-mode", "Node"),
            add_item("authorization-mode", "RBAC"),
        ]
    };
    const AUTHZ_NOTE: &str = "Adds the Node and RBAC authorizers (kubeadm's default \
        `Node,RBAC`). Adding an authorizer only grants more, except when the flag was absent: \
        the default is then AlwaysAllow, and the change replaces it, so every client needs an \
        RBAC binding (system:masters keeps full access).";

    let mut all = vec![
        // ---------------------------------------------------------------- 1.2 API server
        api(
            "1.2.1",
            "API server rejects anonymous requests",
            false,
            And,
            vec![cmp("--anonymous-auth", Op::Eq, "false")],
            manual(
                "turning anonymous access off makes kubelet's unauthenticated liveness and \
                 readiness probes of the API server (and load-balancer health checks) get 401, \
                 so the pod is restarted in a loop unless the probes are changed first or \
                 anonymous access is limited to health endpoints with an AuthenticationConfiguration",
            ),
        ),
        api(
            "1.2.2",
            "No static token file for authentication",
            true,
            And,
            vec![absent("--token-auth-file")],
            manual(
                "removing the token file revokes every static token at once; users and \
                 automation that log in with them lose access, which no health probe notices. \
                 Move them to another authentication method first",
            ),
        ),
        api(
            "1.2.3",
            "DenyServiceExternalIPs admission plugin is enabled",
            false,
            Or,
            vec![cmp("--enable-admission-plugins", Op::Has, "DenyServiceExternalIPs")],
            manual(
                "the plugin rejects every Service that sets externalIPs, including updates to \
                 existing ones; check that no workload relies on them before enabling it",
            ),
        ),
        api(
            "1.2.4",
            "API server authenticates to kubelets with a client certificate",
            true,
            And,
            vec![
                present("--kubelet-client-certificate"),
                present("--kubelet-client-key"),
            ],
            manual(NEEDS_FILES),
        ),
        api(
            "1.2.5",
            "API server verifies kubelet serving certificates",
            true,
            And,
            vec![present("--kubelet-certificate-authority")],
            manual(
                "the API server would then reject every kubelet whose serving certificate is \
                 not signed by that CA; kubeadm's kubelets use self-signed serving certificates \
                 unless serverTLSBootstrap is on, so logs, exec and port-forward would break",
            ),
        ),
        api(
            "1.2.6",
            "Authorization mode is not AlwaysAllow",
            true,
            And,
            vec![cmp("--authorization-mode", Op::NotHave, "AlwaysAllow")],
            fix(
                {
                    let mut c = authz();
                    c.push(remove_item("authorization-mode", "AlwaysAllow"));
                    c
                },
                "Removes AlwaysAllow and makes sure Node and RBAC are there, so that the \
                 list never ends up empty (an absent flag means AlwaysAllow). Clients that \
                 relied on AlwaysAllow need RBAC bindings.",
            ),
        ),
        api(
            "1.2.7",
            "Authorization mode includes Node",
            true,
            And,
            vec![cmp("--authorization-mode", Op::Has, "Node")],
            fix(authz(), AUTHZ_NOTE),
        ),
        api(
            "1.2.8",
            "Authorization mode includes RBAC",
            true,
            And,
            vec![cmp("--authorization-mode", Op::Has, "RBAC")],
            fix(authz(), AUTHZ_NOTE),
        ),
        api(
            "1.2.9",
            "EventRateLimit admission plugin is enabled",
            false,
            And,
            vec![cmp("--enable-admission-plugins", Op::Has, "EventRateLimit")],
            fix_with(
                vec![
                    mount(
                        "kharden-admission-config",
                        ADMISSION_CONFIG_PATH,
                        true,
                        "File",
                    ),
                    set("admission-control-config-file", ADMISSION_CONFIG_PATH),
                    add_item("enable-admission-plugins", "EventRateLimit"),
                ],
                vec![ExtraFile {
                    path: ADMISSION_CONFIG_PATH.to_string(),
                    contents: super::cis_1_12::ADMISSION_CONFIG,
                    mode: 0o600,
                }],
                vec![Guard::AbsentOrEquals {
                    flag: "admission-control-config-file",
                    value: ADMISSION_CONFIG_PATH,
                    why: "already names another admission configuration; add an EventRateLimit \
                          entry to that file by hand instead of replacing it",
                }],
                "Writes an AdmissionConfiguration with EventRateLimit limits (server 100/s, \
                 per namespace 50/s, per user 20/s, with bursts), mounts it read-only into the \
                 API server pod, points --admission-control-config-file at it and enables the \
                 plugin. Clients over the limit get 429 for Event creation only.",
            ),
        ),
        api(
            "1.2.10",
            "AlwaysAdmit admission plugin is not enabled",
            true,
            Or,
            vec![
                cmp("--enable-admission-plugins", Op::NotHave, "AlwaysAdmit"),
                absent("--enable-admission-plugins"),
            ],
            fix(
                vec![remove_item("enable-admission-plugins", "AlwaysAdmit")],
                "Removes AlwaysAdmit from the enabled plugins (the flag is dropped if nothing \
                 else is left: the default plugin set then applies).",
            ),
        ),
        api(
            "1.2.11",
            "AlwaysPullImages admission plugin is enabled",
            false,
            And,
            vec![cmp("--enable-admission-plugins", Op::Has, "AlwaysPullImages")],
            manual(
                "every pod then pulls its images from the registry on each start: air-gapped \
                 nodes, pre-loaded images and registry outages make pods fail to start, \
                 which the control-plane health gate cannot see",
            ),
        ),
        api(
            "1.2.12",
            "ServiceAccount admission plugin is not disabled",
            true,
            Or,
            vec![
                cmp("--disable-admission-plugins", Op::NotHave, "ServiceAccount"),
                absent("--disable-admission-plugins"),
            ],
            fix(
                vec![remove_item("disable-admission-plugins", "ServiceAccount")],
                "Takes ServiceAccount off the disabled plugins (it is on by default); the \
                 flag is dropped if nothing else is left.",
            ),
        ),
        api(
            "1.2.13",
            "NamespaceLifecycle admission plugin is not disabled",
            true,
            Or,
            vec![
                cmp("--disable-admission-plugins", Op::NotHave, "NamespaceLifecycle"),
                absent("--disable-admission-plugins"),
            ],
            fix(
                vec![remove_item("disable-admission-plugins", "NamespaceLifecycle")],
                "Takes NamespaceLifecycle off the disabled plugins (it is on by default); \
                 the flag is dropped if nothing else is left.",
            ),
        ),
        api(
            "1.2.14",
            "NodeRestriction admission plugin is enabled",
            true,
            And,
            vec![cmp("--enable-admission-plugins", Op::Has, "NodeRestriction")],
            fix(
                vec![add_item("enable-admission-plugins", "NodeRestriction")],
                "Adds NodeRestriction (kubeadm's default): kubelets may then only change \
                 their own Node and the pods bound to it.",
            ),
        ),
        api(
            "1.2.15",
            "API server profiling endpoints are off",
            true,
            And,
            vec![cmp("--profiling", Op::Eq, "false")],
            fix(
                vec![set("profiling", "false")],
                "Turns off /debug/pprof.",
            ),
        ),
        api(
            "1.2.16",
            "API server writes an audit log",
            true,
            And,
            vec![present("--audit-log-path")],
            fix(
                vec![
                    mount("kharden-audit-log", AUDIT_LOG_DIR, false, "DirectoryOrCreate"),
                    set("audit-log-path", AUDIT_LOG_PATH),
                ],
                "Logs to /var/log/kubernetes/audit/audit.log on the host (a writable hostPath \
                 directory mount). Events are only recorded once an audit policy is set (3.2.1).",
            ),
        ),
        api(
            "1.2.17",
            "Audit log files are kept at least 30 days",
            true,
            And,
            vec![cmp("--audit-log-maxage", Op::Gte, "30")],
            fix(
                vec![at_least("audit-log-maxage", 30)],
                "Raises the retention to 30 days when it is lower or unset.",
            ),
        ),
        api(
            "1.2.18",
            "At least 10 rotated audit log files are kept",
            true,
            And,
            vec![cmp("--audit-log-maxbackup", Op::Gte, "10")],
            fix(
                vec![at_least("audit-log-maxbackup", 10)],
                "Raises the number of kept files to 10 when it is lower or unset.",
            ),
        ),
        api(
            "1.2.19",
            "Audit log files rotate at 100 MB or more",
            true,
            And,
            vec![cmp("--audit-log-maxsize", Op::Gte, "100")],
            fix(
                vec![at_least("audit-log-maxsize", 100)],
                "Raises the rotation size to 100 MB when it is lower or unset (with 1.2.18: up \
                 to about 1 GB of audit logs on the host).",
            ),
        ),
        Control {
            id: "1.2.20",
            title: "Request timeout is appropriate",
            component: Component::ApiServer,
            scored: false,
            manual_check: true,
            bin_op: And,
            tests: Vec::new(),
            fix: manual(
                "kube-bench runs no test for it (`type: manual`): the right timeout depends on \
                 the cluster's clients; the default of 60s is usually fine",
            ),
        },
        api(
            "1.2.21",
            "Service account tokens are checked against etcd",
            true,
            Or,
            vec![
                absent("--service-account-lookup"),
                cmp("--service-account-lookup", Op::Eq, "true"),
            ],
            fix(
                vec![set("service-account-lookup", "true")],
                "Sets the lookup explicitly on (also the default), so deleted service \
                 accounts' tokens stop working.",
            ),
        ),
        api(
            "1.2.22",
            "Service account token verification key is set",
            true,
            And,
            vec![present("--service-account-key-file")],
            manual(NEEDS_FILES),
        ),
        api(
            "1.2.23",
            "API server authenticates to etcd with a client certificate",
            true,
            And,
            vec![present("--etcd-certfile"), present("--etcd-keyfile")],
            manual(NEEDS_FILES),
        ),
        api(
            "1.2.24",
            "API server serves TLS with its own certificate",
            true,
            And,
            vec![present("--tls-cert-file"), present("--tls-private-key-file")],
            manual(NEEDS_FILES),
        ),
        api(
            "1.2.25",
            "API server trusts a client CA",
            true,
            And,
            vec![present("--client-ca-file")],
            manual(NEEDS_FILES),
        ),
        api(
            "1.2.26",
            "API server verifies etcd's certificate",
            true,
            And,
            vec![present("--etcd-cafile")],
            manual(NEEDS_FILES),
        ),
        api(
            "1.2.27",
            "Secrets are encrypted at rest",
            false,
            And,
            vec![present("--encryption-provider-config")],
            manual(
                "encryption at rest needs keys that someone generates, stores, backs up and \
                 rotates; losing them loses every Secret, so kharden does not invent them",
            ),
        ),
        api(
            "1.2.29",
            "API server offers only strong TLS cipher suites",
            false,
            And,
            vec![cmp("--tls-cipher-suites", Op::ValidElements, ALLOWED_CIPHERS)],
            fix(
                vec![set("tls-cipher-suites", STRONG_CIPHERS)],
                "Restricts TLS 1.2 to ECDHE key exchange with AES-GCM or ChaCha20-Poly1305 \
                 (any list already set is replaced). Clients limited to RSA key exchange or \
                 CBC suites can no longer connect; Go clients (kubectl, kubelet) are unaffected.",
            ),
        ),
        api(
            "1.2.30",
            "Service account tokens are not silently extended",
            true,
            And,
            vec![cmp("--service-account-extend-token-expiration", Op::Eq, "false")],
            fix(
                vec![set("service-account-extend-token-expiration", "false")],
                "Projected service account tokens then expire when they say they do. Clients \
                 that never reload their token fail after it expires (about an hour), which \
                 is after the health gate has passed: check old client libraries first.",
            ),
        ),
        // ------------------------------------------------------- 1.3 controller manager
        component(
            ControllerManager,
            api(
                "1.3.1",
                "Terminated pods are garbage-collected",
                false,
                And,
                vec![present("--terminated-pod-gc-threshold")],
                fix(
                    vec![set("terminated-pod-gc-threshold", "12500")],
                    "Writes Kubernetes' own default (12500) explicitly, which satisfies the \
                     check without changing behaviour; lower it by hand if the cluster needs \
                     it.",
                ),
            ),
        ),
        component(
            ControllerManager,
            api(
                "1.3.2",
                "Controller manager profiling endpoints are off",
                true,
                And,
                vec![cmp("--profiling", Op::Eq, "false")],
                fix(vec![set("profiling", "false")], "Turns off /debug/pprof."),
            ),
        ),
        component(
            ControllerManager,
            api(
                "1.3.3",
                "Each controller uses its own service account",
                true,
                And,
                vec![cmp("--use-service-account-credentials", Op::NotEq, "false")],
                fix(
                    vec![set("use-service-account-credentials", "true")],
                    "Controllers then act with their own service accounts and the \
                     system:controller:* roles the API server maintains (kubeadm's default).",
                ),
            ),
        ),
        component(
            ControllerManager,
            api(
                "1.3.4",
                "Service account token signing key is set",
                true,
                And,
                vec![present("--service-account-private-key-file")],
                manual(NEEDS_FILES),
            ),
        ),
        component(
            ControllerManager,
            api(
                "1.3.5",
                "Cluster root CA is published to service accounts",
                true,
                And,
                vec![present("--root-ca-file")],
                manual(NEEDS_FILES),
            ),
        ),
        component(
            ControllerManager,
            api(
                "1.3.6",
                "Kubelet serving certificate rotation is not disabled",
                true,
                Or,
                vec![
                    cmp(
                        "--feature-gates",
                        Op::NotHave,
                        "RotateKubeletServerCertificate=false",
                    ),
                    absent("--feature-gates"),
                ],
                fix(
                    vec![remove_item(
                        "feature-gates",
                        "RotateKubeletServerCertificate=false",
                    )],
                    "Removes the entry that turns the gate off (its default is on); the flag \
                     is dropped if no other gate is left. Nothing names a gate a future \
                     version might not know.",
                ),
            ),
        ),
        component(
            ControllerManager,
            api(
                "1.3.7",
                "Controller manager listens on localhost only",
                true,
                Or,
                vec![
                    cmp("--bind-address", Op::Eq, "127.0.0.1"),
                    absent("--bind-address"),
                ],
                fix(
                    vec![set("bind-address", "127.0.0.1")],
                    "Binds the secure port to 127.0.0.1 (kubeadm's default). Metrics scrapers \
                     on other hosts lose access; probes aimed at another address fail the \
                     health gate and the change is rolled back.",
                ),
            ),
        ),
        // ---------------------------------------------------------------- 1.4 scheduler
        component(
            Scheduler,
            api(
                "1.4.1",
                "Scheduler profiling endpoints are off",
                true,
                And,
                vec![cmp("--profiling", Op::Eq, "false")],
                fix(vec![set("profiling", "false")], "Turns off /debug/pprof."),
            ),
        ),
        component(
            Scheduler,
            api(
                "1.4.2",
                "Scheduler listens on localhost only",
                true,
                Or,
                vec![
                    cmp("--bind-address", Op::Eq, "127.0.0.1"),
                    absent("--bind-address"),
                ],
                fix(
                    vec![set("bind-address", "127.0.0.1")],
                    "Binds the secure port to 127.0.0.1 (kubeadm's default). Metrics scrapers \
                     on other hosts lose access; probes aimed at another address fail the \
                     health gate and the change is rolled back.",
                ),
            ),
        ),
        // ------------------------------------------------------------------------ 2 etcd
        component(
            Etcd,
            api(
                "2.1",
                "etcd serves clients over TLS",
                true,
                And,
                vec![
                    env(present("--cert-file"), "ETCD_CERT_FILE"),
                    env(present("--key-file"), "ETCD_KEY_FILE"),
                ],
                manual(NEEDS_FILES),
            ),
        ),
        component(
            Etcd,
            api(
                "2.2",
                "etcd requires client certificates",
                true,
                And,
                vec![env(
                    cmp("--client-cert-auth", Op::Eq, "true"),
                    "ETCD_CLIENT_CERT_AUTH",
                )],
                manual(
                    "every etcd client (the API server first) must already present a \
                     certificate signed by --trusted-ca-file; otherwise the API server loses \
                     its storage while etcd's own health probe still passes",
                ),
            ),
        ),
        component(
            Etcd,
            api(
                "2.3",
                "etcd does not use self-signed client certificates",
                true,
                Or,
                vec![
                    env(absent("--auto-tls"), "ETCD_AUTO_TLS"),
                    env(cmp("--auto-tls", Op::Eq, "false"), "ETCD_AUTO_TLS"),
                ],
                fix_with(
                    vec![unset("auto-tls")],
                    Vec::new(),
                    vec![
                        Guard::Present {
                            flag: "cert-file",
                            why: "without a real certificate etcd relies on auto-tls to serve \
                                  TLS; set up --cert-file/--key-file (2.1) first",
                        },
                        Guard::Present {
                            flag: "key-file",
                            why: "without a real key etcd relies on auto-tls to serve TLS; \
                                  set up --cert-file/--key-file (2.1) first",
                        },
                    ],
                    "Removes --auto-tls (default off). Only applied when etcd has its own \
                     certificate, which takes precedence over auto-tls anyway.",
                ),
            ),
        ),
        component(
            Etcd,
            api(
                "2.4",
                "etcd peers talk over TLS",
                true,
                And,
                vec![
                    env(present("--peer-cert-file"), "ETCD_PEER_CERT_FILE"),
                    env(present("--peer-key-file"), "ETCD_PEER_KEY_FILE"),
                ],
                manual(NEEDS_FILES),
            ),
        ),
        component(
            Etcd,
            api(
                "2.5",
                "etcd requires peer certificates",
                true,
                And,
                vec![env(
                    cmp("--peer-client-cert-auth", Op::Eq, "true"),
                    "ETCD_PEER_CLIENT_CERT_AUTH",
                )],
                manual(
                    "every member of the etcd cluster must already present a peer certificate \
                     signed by --peer-trusted-ca-file; a member that does not is cut off, \
                     which one member's health probe does not show",
                ),
            ),
        ),
        component(
            Etcd,
            api(
                "2.6",
                "etcd does not use self-signed peer certificates",
                true,
                Or,
                vec![
                    env(absent("--peer-auto-tls"), "ETCD_PEER_AUTO_TLS"),
                    env(cmp("--peer-auto-tls", Op::Eq, "false"), "ETCD_PEER_AUTO_TLS"),
                ],
                fix_with(
                    vec![unset("peer-auto-tls")],
                    Vec::new(),
                    vec![
                        Guard::Present {
                            flag: "peer-cert-file",
                            why: "without a real peer certificate etcd relies on peer-auto-tls; \
                                  set up --peer-cert-file/--peer-key-file (2.4) first",
                        },
                        Guard::Present {
                            flag: "peer-key-file",
                            why: "without a real peer key etcd relies on peer-auto-tls; set up \
                                  --peer-cert-file/--peer-key-file (2.4) first",
                        },
                    ],
                    "Removes --peer-auto-tls (default off). Only applied when etcd has its \
                     own peer certificate, which takes precedence over peer-auto-tls anyway.",
                ),
            ),
        ),
        component(
            Etcd,
            api(
                "2.7",
                "etcd trusts a dedicated CA",
                false,
                And,
                vec![env(present("--trusted-ca-file"), "ETCD_TRUSTED_CA_FILE")],
                manual(
                    "a CA used only for etcd has to be created and every etcd client \
                     certificate reissued from it; the check itself only sees that some CA \
                     file is named",
                ),
            ),
        ),
        // ----------------------------------------------------------------- 3.2 logging
        api(
            "3.2.1",
            "API server has an audit policy",
            false,
            And,
            vec![present("--audit-policy-file")],
            fix_with(
                vec![
                    mount("kharden-audit-policy", AUDIT_POLICY_PATH, true, "File"),
                    set("audit-policy-file", AUDIT_POLICY_PATH),
                ],
                vec![ExtraFile {
                    path: AUDIT_POLICY_PATH.to_string(),
                    contents: AUDIT_POLICY,
                    mode: 0o600,
                }],
                vec![Guard::AbsentOrEquals {
                    flag: "audit-policy-file",
                    value: AUDIT_POLICY_PATH,
                    why: "already names another audit policy; kharden does not replace it",
                }],
                "Writes a minimal audit policy (metadata for all requests, request bodies for \
                 workload changes, never the contents of secrets, config maps or tokens, no \
                 health probes), mounts it read-only and points --audit-policy-file at it. \
                 Events are written once --audit-log-path is set (1.2.16).",
            ),
        ),
    ];
    // Keep id order stable for reports.
    all.sort_by_key(|c| id_key(c.id));
    all
}

/// Numeric sort key of a dotted id (`1.2.10` after `1.2.9`).
pub(crate) fn id_key(id: &str) -> Vec<u32> {
    id.split('.').filter_map(|p| p.parse().ok()).collect()
}
