//! Section 1.2: the API server's command line.
//!
//! Test definitions (ids, flags, operators, values, `set`, `bin_op`, `scored`, `type: manual`)
//! are facts taken from kube-bench's `cfg/cis-*/master.yaml`. Titles, notes and reasons are our
//! own words. cis-1.8 carries one more check (1.2.12, SecurityContextDeny or PodSecurityPolicy),
//! so its ids from 1.2.13 on are one higher than from cis-1.9 on. The cipher-suite check's
//! allowed list changed twice (cis-1.10 dropped 3DES and plain-RSA suites, cis-1.12 the CBC
//! ones): three definitions, one fix, since the suites kharden sets are in every list.
//!
//! Automation policy (see docs/cis-catalog.md): a fix is automated when it is a pure flag
//! change, or a flag plus a file kharden writes itself, that cannot lock the control plane out
//! of its own files or peers. Anything that needs node-specific material (certificates, keys,
//! CAs, encryption keys) or that changes what workloads may do is left to a person.

use super::{
    absent, add_item, at_least, check, cmp, fix, fix_with, flags, manual, mount, present,
    remove_item, set,
};
use crate::audit::{Audit, ForeignSource, NotEvaluated};
use crate::model::{BinOp, CheckDef, Cis, Component, Op};
use crate::remediation::{ExtraFile, Guard};

use BinOp::{And, Or};
use Cis::{V1_10, V1_11, V1_12, V1_8, V1_9};
use Component::ApiServer;

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

/// The strong TLS 1.2 suites kharden sets for the cipher-suite check: ECDHE key exchange with
/// AEAD ciphers only, every one of them in each version's allowed list. (TLS 1.3 suites are
/// not configurable in Go and need not be listed.)
pub const STRONG_CIPHERS: &str = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,\
TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,\
TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,\
TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256";

/// cis-1.8 and cis-1.9's allowed list.
const ALLOWED_CIPHERS_1_8: &str = "TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384,\
TLS_CHACHA20_POLY1305_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,\
TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,\
TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,\
TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA,\
TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,\
TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,\
TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,\
TLS_RSA_WITH_3DES_EDE_CBC_SHA,TLS_RSA_WITH_AES_128_CBC_SHA,TLS_RSA_WITH_AES_128_GCM_SHA256,\
TLS_RSA_WITH_AES_256_CBC_SHA,TLS_RSA_WITH_AES_256_GCM_SHA384";

/// cis-1.10 and cis-1.11's allowed list (no 3DES, no RSA key exchange).
const ALLOWED_CIPHERS_1_10: &str = "TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384,\
TLS_CHACHA20_POLY1305_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,\
TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,\
TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,\
TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,\
TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,\
TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,\
TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256";

/// cis-1.12's allowed list (AEAD suites only).
const ALLOWED_CIPHERS_1_12: &str = "TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384,\
TLS_CHACHA20_POLY1305_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,\
TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,\
TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,\
TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,\
TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256";

pub(crate) const NEEDS_FILES: &str = "the value is a path to key or certificate material that \
must already exist on this node and match the rest of the cluster's PKI; kharden cannot create \
or guess it (kubeadm sets it at install time)";

const AUTHZ_NOTE: &str = "Adds the Node and RBAC authorizers (kubeadm's default `Node,RBAC`). \
Adding an authorizer only grants more, except when the flag was absent: the default is then \
AlwaysAllow, and the change replaces it, so every client needs an RBAC binding (system:masters \
keeps full access).";

const CIPHERS_TITLE: &str = "API server offers only strong TLS cipher suites";
const CIPHERS_NOTE: &str = "Restricts TLS 1.2 to ECDHE key exchange with AES-GCM or \
ChaCha20-Poly1305 (any list already set is replaced). Clients limited to RSA key exchange or CBC \
suites can no longer connect; Go clients (kubectl, kubelet) are unaffected.";

fn authz() -> Vec<kharden_manifest::Change> {
    vec![
        add_item("authorization-mode", "Node"),
        add_item("authorization-mode", "RBAC"),
    ]
}

fn api(bin_op: BinOp, items: Vec<crate::model::TestItem>) -> Audit {
    flags(ApiServer, bin_op, items)
}

fn ciphers_fix() -> crate::model::Fix {
    fix(vec![set("tls-cipher-suites", STRONG_CIPHERS)], CIPHERS_NOTE)
}

pub(super) fn defs() -> Vec<CheckDef> {
    vec![
        check(
            "apiserver-anonymous-auth",
            "API server rejects anonymous requests",
            api(And, vec![cmp("--anonymous-auth", Op::Eq, "false")]),
        )
        .all("1.2.1")
        .fix(manual(
            "turning anonymous access off makes kubelet's unauthenticated liveness and \
             readiness probes of the API server (and load-balancer health checks) get 401, so \
             the pod is restarted in a loop unless the probes are changed first or anonymous \
             access is limited to health endpoints with an AuthenticationConfiguration",
        )),
        check(
            "apiserver-token-auth-file",
            "No static token file for authentication",
            api(And, vec![absent("--token-auth-file")]),
        )
        .all("1.2.2")
        .scored()
        .fix(manual(
            "removing the token file revokes every static token at once; users and automation \
             that log in with them lose access, which no health probe notices. Move them to \
             another authentication method first",
        )),
        // cis-1.8 writes no bin_op (and); later versions `or`: with one item, the same test.
        check(
            "apiserver-deny-external-ips",
            "DenyServiceExternalIPs admission plugin is enabled",
            api(
                Or,
                vec![cmp(
                    "--enable-admission-plugins",
                    Op::Has,
                    "DenyServiceExternalIPs",
                )],
            ),
        )
        .all("1.2.3")
        .fix(manual(
            "the plugin rejects every Service that sets externalIPs, including updates to \
             existing ones; check that no workload relies on them before enabling it",
        )),
        check(
            "apiserver-kubelet-client-cert",
            "API server authenticates to kubelets with a client certificate",
            api(
                And,
                vec![
                    present("--kubelet-client-certificate"),
                    present("--kubelet-client-key"),
                ],
            ),
        )
        .all("1.2.4")
        .scored()
        .fix(manual(NEEDS_FILES)),
        check(
            "apiserver-kubelet-ca",
            "API server verifies kubelet serving certificates",
            api(And, vec![present("--kubelet-certificate-authority")]),
        )
        .all("1.2.5")
        .scored()
        .fix(manual(
            "the API server would then reject every kubelet whose serving certificate is not \
             signed by that CA; kubeadm's kubelets use self-signed serving certificates unless \
             serverTLSBootstrap is on, so logs, exec and port-forward would break",
        )),
        check(
            "apiserver-authz-not-always-allow",
            "Authorization mode is not AlwaysAllow",
            api(
                And,
                vec![cmp("--authorization-mode", Op::NotHave, "AlwaysAllow")],
            ),
        )
        .all("1.2.6")
        .scored()
        .fix(fix(
            {
                let mut c = authz();
                c.push(remove_item("authorization-mode", "AlwaysAllow"));
                c
            },
            "Removes AlwaysAllow and makes sure Node and RBAC are there, so that the list \
             never ends up empty (an absent flag means AlwaysAllow). Clients that relied on \
             AlwaysAllow need RBAC bindings.",
        )),
        check(
            "apiserver-authz-node",
            "Authorization mode includes Node",
            api(And, vec![cmp("--authorization-mode", Op::Has, "Node")]),
        )
        .all("1.2.7")
        .scored()
        .fix(fix(authz(), AUTHZ_NOTE)),
        check(
            "apiserver-authz-rbac",
            "Authorization mode includes RBAC",
            api(And, vec![cmp("--authorization-mode", Op::Has, "RBAC")]),
        )
        .all("1.2.8")
        .scored()
        .fix(fix(authz(), AUTHZ_NOTE)),
        check(
            "apiserver-event-rate-limit",
            "EventRateLimit admission plugin is enabled",
            api(
                And,
                vec![cmp("--enable-admission-plugins", Op::Has, "EventRateLimit")],
            ),
        )
        .all("1.2.9")
        .fix(fix_with(
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
                contents: ADMISSION_CONFIG,
                mode: 0o600,
            }],
            vec![Guard::AbsentOrEquals {
                flag: "admission-control-config-file",
                value: ADMISSION_CONFIG_PATH,
                why: "already names another admission configuration; add an EventRateLimit \
                      entry to that file by hand instead of replacing it",
            }],
            "Writes an AdmissionConfiguration with EventRateLimit limits (server 100/s, per \
             namespace 50/s, per user 20/s, with bursts), mounts it read-only into the API \
             server pod, points --admission-control-config-file at it and enables the plugin. \
             Clients over the limit get 429 for Event creation only.",
        )),
        check(
            "apiserver-no-always-admit",
            "AlwaysAdmit admission plugin is not enabled",
            api(
                Or,
                vec![
                    cmp("--enable-admission-plugins", Op::NotHave, "AlwaysAdmit"),
                    absent("--enable-admission-plugins"),
                ],
            ),
        )
        .all("1.2.10")
        .scored()
        .fix(fix(
            vec![remove_item("enable-admission-plugins", "AlwaysAdmit")],
            "Removes AlwaysAdmit from the enabled plugins (the flag is dropped if nothing else \
             is left: the default plugin set then applies).",
        )),
        check(
            "apiserver-always-pull-images",
            "AlwaysPullImages admission plugin is enabled",
            api(
                And,
                vec![cmp(
                    "--enable-admission-plugins",
                    Op::Has,
                    "AlwaysPullImages",
                )],
            ),
        )
        .all("1.2.11")
        .fix(manual(
            "every pod then pulls its images from the registry on each start: air-gapped nodes, \
             pre-loaded images and registry outages make pods fail to start, which the \
             control-plane health gate cannot see",
        )),
        check(
            "apiserver-security-context-deny",
            "SecurityContextDeny or PodSecurityPolicy admission plugin is enabled",
            api(
                Or,
                vec![
                    cmp("--enable-admission-plugins", Op::Has, "SecurityContextDeny"),
                    cmp("--enable-admission-plugins", Op::Has, "PodSecurityPolicy"),
                ],
            ),
        )
        .at("1.2.12", V1_8, V1_8)
        .fix(manual(
            "PodSecurityPolicy was removed in Kubernetes 1.25 (an API server that enables it \
             does not start) and SecurityContextDeny rejects every pod that sets a security \
             context (and was removed in 1.30); pod security is a cluster policy (Pod Security \
             Admission, section 5.2), not a flag to flip",
        )),
        check(
            "apiserver-service-account-plugin",
            "ServiceAccount admission plugin is not disabled",
            api(
                Or,
                vec![
                    cmp("--disable-admission-plugins", Op::NotHave, "ServiceAccount"),
                    absent("--disable-admission-plugins"),
                ],
            ),
        )
        .at("1.2.13", V1_8, V1_8)
        .at("1.2.12", V1_9, V1_12)
        .scored()
        .fix(fix(
            vec![remove_item("disable-admission-plugins", "ServiceAccount")],
            "Takes ServiceAccount off the disabled plugins (it is on by default); the flag is \
             dropped if nothing else is left.",
        )),
        check(
            "apiserver-namespace-lifecycle-plugin",
            "NamespaceLifecycle admission plugin is not disabled",
            api(
                Or,
                vec![
                    cmp(
                        "--disable-admission-plugins",
                        Op::NotHave,
                        "NamespaceLifecycle",
                    ),
                    absent("--disable-admission-plugins"),
                ],
            ),
        )
        .at("1.2.14", V1_8, V1_8)
        .at("1.2.13", V1_9, V1_12)
        .scored()
        .fix(fix(
            vec![remove_item(
                "disable-admission-plugins",
                "NamespaceLifecycle",
            )],
            "Takes NamespaceLifecycle off the disabled plugins (it is on by default); the flag \
             is dropped if nothing else is left.",
        )),
        check(
            "apiserver-node-restriction",
            "NodeRestriction admission plugin is enabled",
            api(
                And,
                vec![cmp(
                    "--enable-admission-plugins",
                    Op::Has,
                    "NodeRestriction",
                )],
            ),
        )
        .at("1.2.15", V1_8, V1_8)
        .at("1.2.14", V1_9, V1_12)
        .scored()
        .fix(fix(
            vec![add_item("enable-admission-plugins", "NodeRestriction")],
            "Adds NodeRestriction (kubeadm's default): kubelets may then only change their own \
             Node and the pods bound to it.",
        )),
        check(
            "apiserver-profiling",
            "API server profiling endpoints are off",
            api(And, vec![cmp("--profiling", Op::Eq, "false")]),
        )
        .at("1.2.16", V1_8, V1_8)
        .at("1.2.15", V1_9, V1_12)
        .scored()
        .fix(fix(
            vec![set("profiling", "false")],
            "Turns off /debug/pprof.",
        )),
        check(
            "apiserver-audit-log-path",
            "API server writes an audit log",
            api(And, vec![present("--audit-log-path")]),
        )
        .at("1.2.17", V1_8, V1_8)
        .at("1.2.16", V1_9, V1_12)
        .scored()
        .fix(fix(
            vec![
                mount(
                    "kharden-audit-log",
                    AUDIT_LOG_DIR,
                    false,
                    "DirectoryOrCreate",
                ),
                set("audit-log-path", AUDIT_LOG_PATH),
            ],
            "Logs to /var/log/kubernetes/audit/audit.log on the host (a writable hostPath \
             directory mount). Events are only recorded once an audit policy is set (3.2.1).",
        )),
        check(
            "apiserver-audit-log-maxage",
            "Audit log files are kept at least 30 days",
            api(And, vec![cmp("--audit-log-maxage", Op::Gte, "30")]),
        )
        .at("1.2.18", V1_8, V1_8)
        .at("1.2.17", V1_9, V1_12)
        .scored()
        .fix(fix(
            vec![at_least("audit-log-maxage", 30)],
            "Raises the retention to 30 days when it is lower or unset.",
        )),
        check(
            "apiserver-audit-log-maxbackup",
            "At least 10 rotated audit log files are kept",
            api(And, vec![cmp("--audit-log-maxbackup", Op::Gte, "10")]),
        )
        .at("1.2.19", V1_8, V1_8)
        .at("1.2.18", V1_9, V1_12)
        .scored()
        .fix(fix(
            vec![at_least("audit-log-maxbackup", 10)],
            "Raises the number of kept files to 10 when it is lower or unset.",
        )),
        check(
            "apiserver-audit-log-maxsize",
            "Audit log files rotate at 100 MB or more",
            api(And, vec![cmp("--audit-log-maxsize", Op::Gte, "100")]),
        )
        .at("1.2.20", V1_8, V1_8)
        .at("1.2.19", V1_9, V1_12)
        .scored()
        .fix(fix(
            vec![at_least("audit-log-maxsize", 100)],
            "Raises the rotation size to 100 MB when it is lower or unset (with the backup \
             count: up to about 1 GB of audit logs on the host).",
        )),
        check(
            "apiserver-request-timeout",
            "Request timeout is appropriate",
            api(And, Vec::new()),
        )
        .at("1.2.21", V1_8, V1_8)
        .at("1.2.20", V1_9, V1_12)
        .manual_type()
        .fix(manual(
            "kube-bench runs no test for it (`type: manual`): the right timeout depends on the \
             cluster's clients; the default of 60s is usually fine",
        )),
        check(
            "apiserver-service-account-lookup",
            "Service account tokens are checked against etcd",
            api(
                Or,
                vec![
                    absent("--service-account-lookup"),
                    cmp("--service-account-lookup", Op::Eq, "true"),
                ],
            ),
        )
        .at("1.2.22", V1_8, V1_8)
        .at("1.2.21", V1_9, V1_12)
        .scored()
        .fix(fix(
            vec![set("service-account-lookup", "true")],
            "Sets the lookup explicitly on (also the default), so deleted service accounts' \
             tokens stop working.",
        )),
        check(
            "apiserver-service-account-key",
            "Service account token verification key is set",
            api(And, vec![present("--service-account-key-file")]),
        )
        .at("1.2.23", V1_8, V1_8)
        .at("1.2.22", V1_9, V1_12)
        .scored()
        .fix(manual(NEEDS_FILES)),
        check(
            "apiserver-etcd-client-cert",
            "API server authenticates to etcd with a client certificate",
            api(
                And,
                vec![present("--etcd-certfile"), present("--etcd-keyfile")],
            ),
        )
        .at("1.2.24", V1_8, V1_8)
        .at("1.2.23", V1_9, V1_12)
        .scored()
        .fix(manual(NEEDS_FILES)),
        check(
            "apiserver-tls-cert",
            "API server serves TLS with its own certificate",
            api(
                And,
                vec![
                    present("--tls-cert-file"),
                    present("--tls-private-key-file"),
                ],
            ),
        )
        .at("1.2.25", V1_8, V1_8)
        .at("1.2.24", V1_9, V1_12)
        .scored()
        .fix(manual(NEEDS_FILES)),
        check(
            "apiserver-client-ca",
            "API server trusts a client CA",
            api(And, vec![present("--client-ca-file")]),
        )
        .at("1.2.26", V1_8, V1_8)
        .at("1.2.25", V1_9, V1_12)
        .scored()
        .fix(manual(NEEDS_FILES)),
        check(
            "apiserver-etcd-ca",
            "API server verifies etcd's certificate",
            api(And, vec![present("--etcd-cafile")]),
        )
        .at("1.2.27", V1_8, V1_8)
        .at("1.2.26", V1_9, V1_12)
        .scored()
        .fix(manual(NEEDS_FILES)),
        check(
            "apiserver-encryption-config",
            "Secrets are encrypted at rest",
            api(And, vec![present("--encryption-provider-config")]),
        )
        .at("1.2.28", V1_8, V1_8)
        .at("1.2.27", V1_9, V1_12)
        .fix(manual(
            "encryption at rest needs keys that someone generates, stores, backs up and \
             rotates; losing them loses every Secret, so kharden does not invent them",
        )),
        check(
            "apiserver-encryption-providers",
            "Encryption at rest uses a strong provider",
            Audit::NotEvaluated(NotEvaluated {
                source: ForeignSource::FileContents,
                reason: "kube-bench greps the provider out of the file named by \
                         --encryption-provider-config; kharden does not read that file, which \
                         holds or names the encryption keys",
            }),
        )
        .at("1.2.29", V1_8, V1_8)
        .at("1.2.28", V1_9, V1_12)
        .fix(manual(
            "the provider is part of the encryption configuration, whose keys someone must \
             generate, store and rotate; changing providers also means rewriting every Secret",
        )),
        check(
            "apiserver-tls-ciphers-1.8",
            CIPHERS_TITLE,
            api(
                And,
                vec![cmp(
                    "--tls-cipher-suites",
                    Op::ValidElements,
                    ALLOWED_CIPHERS_1_8,
                )],
            ),
        )
        .at("1.2.30", V1_8, V1_8)
        .at("1.2.29", V1_9, V1_9)
        .fix(ciphers_fix()),
        check(
            "apiserver-tls-ciphers-1.10",
            CIPHERS_TITLE,
            api(
                And,
                vec![cmp(
                    "--tls-cipher-suites",
                    Op::ValidElements,
                    ALLOWED_CIPHERS_1_10,
                )],
            ),
        )
        .at("1.2.29", V1_10, V1_11)
        .fix(ciphers_fix()),
        check(
            "apiserver-tls-ciphers",
            CIPHERS_TITLE,
            api(
                And,
                vec![cmp(
                    "--tls-cipher-suites",
                    Op::ValidElements,
                    ALLOWED_CIPHERS_1_12,
                )],
            ),
        )
        .at("1.2.29", V1_12, V1_12)
        .fix(ciphers_fix()),
        check(
            "apiserver-extend-token-expiration",
            "Service account tokens are not silently extended",
            api(
                And,
                vec![cmp(
                    "--service-account-extend-token-expiration",
                    Op::Eq,
                    "false",
                )],
            ),
        )
        .at("1.2.30", V1_11, V1_12)
        .scored()
        .fix(fix(
            vec![set("service-account-extend-token-expiration", "false")],
            "Projected service account tokens then expire when they say they do. Clients that \
             never reload their token fail after it expires (about an hour), which is after the \
             health gate has passed: check old client libraries first.",
        )),
    ]
}
