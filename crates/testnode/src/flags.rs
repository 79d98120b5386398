//! Flag tables and a pflag-like parser for the fake control-plane components.
//!
//! Why: the transaction's most important failure mode is "kubelet restarts the component and
//! the component refuses to start". The real binaries use spf13/pflag, which rejects unknown
//! flags with `Error: unknown flag: --foo` and bad values with `Error: invalid argument ...`,
//! and exits 1 before serving anything. The fakes reproduce that for the flags that matter: every
//! flag kubeadm writes, every flag the CIS benchmark (1.12) names, and the commonly used rest.
//!
//! Flags that were *removed* from modern releases (`--insecure-port`, `--insecure-bind-address`,
//! `--kubelet-https`, `--address`, `--port`) are deliberately absent: a v1.30 kube-apiserver
//! rejects them as unknown, and so does the fake.

use std::collections::BTreeMap;

/// How a flag's value is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// Optional value; `--flag` alone means true; value must parse like Go's strconv.ParseBool.
    Bool,
    /// Signed integer (strconv.ParseInt).
    Int,
    /// Go duration (`10s`, `1h30m`, `0`).
    Duration,
    /// Anything.
    Str,
}

/// The flags of one component.
#[derive(Debug)]
pub struct ComponentSpec {
    pub name: &'static str,
    pub default_secure_port: u16,
    strings: &'static [&'static str],
    bools: &'static [&'static str],
    ints: &'static [&'static str],
    durations: &'static [&'static str],
}

impl ComponentSpec {
    /// The kind of flag `name` (without dashes), or `None` if the component does not know it.
    pub fn kind(&self, name: &str) -> Option<FlagKind> {
        if self.bools.contains(&name) {
            Some(FlagKind::Bool)
        } else if self.ints.contains(&name) {
            Some(FlagKind::Int)
        } else if self.durations.contains(&name) {
            Some(FlagKind::Duration)
        } else if self.strings.contains(&name) || COMMON_STRINGS.contains(&name) {
            Some(FlagKind::Str)
        } else if COMMON_INTS.contains(&name) {
            Some(FlagKind::Int)
        } else if COMMON_BOOLS.contains(&name) {
            Some(FlagKind::Bool)
        } else {
            None
        }
    }
}

/// Flags every component has (component-base: logs, metrics, secure serving, authn/z delegation).
const COMMON_STRINGS: &[&str] = &[
    "bind-address",
    "cert-dir",
    "tls-cert-file",
    "tls-private-key-file",
    "tls-cipher-suites",
    "tls-min-version",
    "tls-sni-cert-key",
    "client-ca-file",
    "requestheader-allowed-names",
    "requestheader-client-ca-file",
    "requestheader-extra-headers-prefix",
    "requestheader-group-headers",
    "requestheader-username-headers",
    "requestheader-uid-headers",
    "feature-gates",
    "vmodule",
    "logging-format",
    "allow-metric-labels",
    "allow-metric-labels-manifest",
    "disabled-metrics",
    "show-hidden-metrics-for-version",
    "log-json-info-buffer-size",
    "log-text-info-buffer-size",
    "version",
];
const COMMON_INTS: &[&str] = &["v", "secure-port", "http2-max-streams-per-connection"];
const COMMON_BOOLS: &[&str] = &[
    "help",
    "profiling",
    "contention-profiling",
    "permit-address-sharing",
    "permit-port-sharing",
    "log-json-split-stream",
    "log-text-split-stream",
];

/// kube-apiserver (v1.30-ish).
pub static KUBE_APISERVER: ComponentSpec = ComponentSpec {
    name: "kube-apiserver",
    default_secure_port: 6443,
    strings: &[
        "advertise-address",
        "cloud-provider-gce-l7lb-src-cidrs",
        "cors-allowed-origins",
        "external-hostname",
        "goaway-chance",
        "strict-transport-security-directives",
        "encryption-provider-config",
        "etcd-cafile",
        "etcd-certfile",
        "etcd-keyfile",
        "etcd-prefix",
        "etcd-servers",
        "etcd-servers-overrides",
        "storage-backend",
        "storage-media-type",
        "watch-cache-sizes",
        "audit-log-format",
        "audit-log-mode",
        "audit-log-path",
        "audit-log-version",
        "audit-policy-file",
        "audit-webhook-config-file",
        "audit-webhook-mode",
        "audit-webhook-version",
        "audit-log-batch-throttle-qps",
        "audit-webhook-batch-throttle-qps",
        "debug-socket-path",
        "api-audiences",
        "authentication-config",
        "authentication-token-webhook-config-file",
        "authentication-token-webhook-version",
        "oidc-ca-file",
        "oidc-client-id",
        "oidc-groups-claim",
        "oidc-groups-prefix",
        "oidc-issuer-url",
        "oidc-required-claim",
        "oidc-signing-algs",
        "oidc-username-claim",
        "oidc-username-prefix",
        "service-account-issuer",
        "service-account-jwks-uri",
        "service-account-key-file",
        "service-account-signing-key-file",
        "token-auth-file",
        "authorization-config",
        "authorization-mode",
        "authorization-policy-file",
        "authorization-webhook-config-file",
        "authorization-webhook-version",
        "runtime-config",
        "egress-selector-config-file",
        "admission-control",
        "admission-control-config-file",
        "disable-admission-plugins",
        "enable-admission-plugins",
        "tracing-config-file",
        "endpoint-reconciler-type",
        "kubelet-certificate-authority",
        "kubelet-client-certificate",
        "kubelet-client-key",
        "kubelet-preferred-address-types",
        "max-connection-bytes-per-sec",
        "peer-advertise-ip",
        "peer-advertise-port",
        "peer-ca-file",
        "proxy-client-cert-file",
        "proxy-client-key-file",
        "service-cluster-ip-range",
        "service-node-port-range",
        "service-account-max-token-expiration",
        "log-flush-frequency",
        "kubernetes-service-node-port",
    ],
    bools: &[
        "allow-privileged",
        "anonymous-auth",
        "enable-bootstrap-token-auth",
        "service-account-lookup",
        "service-account-extend-token-expiration",
        "enable-aggregator-routing",
        "enable-garbage-collector",
        "enable-priority-and-fairness",
        "encryption-provider-config-automatic-reload",
        "watch-cache",
        "audit-log-compress",
        "audit-log-truncate-enabled",
        "audit-webhook-truncate-enabled",
        "audit-log-batch-throttle-enable",
        "audit-webhook-batch-throttle-enable",
        "aggregator-reject-forwarding-redirect",
        "shutdown-send-retry-after",
    ],
    ints: &[
        "apiserver-count",
        "audit-log-maxage",
        "audit-log-maxbackup",
        "audit-log-maxsize",
        "audit-log-batch-buffer-size",
        "audit-log-batch-max-size",
        "audit-log-batch-throttle-burst",
        "audit-log-truncate-max-batch-size",
        "audit-log-truncate-max-event-size",
        "audit-webhook-batch-buffer-size",
        "audit-webhook-batch-max-size",
        "audit-webhook-batch-throttle-burst",
        "audit-webhook-truncate-max-batch-size",
        "audit-webhook-truncate-max-event-size",
        "default-not-ready-toleration-seconds",
        "default-unreachable-toleration-seconds",
        "delete-collection-workers",
        "lease-reuse-duration-seconds",
        "max-mutating-requests-inflight",
        "max-requests-inflight",
        "min-request-timeout",
        "shutdown-watch-termination-grace-period",
    ],
    durations: &[
        "request-timeout",
        "event-ttl",
        "kubelet-timeout",
        "livez-grace-period",
        "shutdown-delay-duration",
        "storage-initialization-timeout",
        "etcd-compaction-interval",
        "etcd-count-metric-poll-period",
        "etcd-db-metric-poll-interval",
        "etcd-healthcheck-timeout",
        "etcd-readycheck-timeout",
        "audit-log-batch-max-wait",
        "audit-webhook-batch-max-wait",
        "audit-webhook-initial-backoff",
        "audit-webhook-batch-initial-backoff",
        "authentication-token-webhook-cache-ttl",
        "authorization-webhook-cache-authorized-ttl",
        "authorization-webhook-cache-unauthorized-ttl",
    ],
};

/// kube-controller-manager.
pub static KUBE_CONTROLLER_MANAGER: ComponentSpec = ComponentSpec {
    name: "kube-controller-manager",
    default_secure_port: 10257,
    strings: &[
        "authentication-kubeconfig",
        "authorization-kubeconfig",
        "authorization-always-allow-paths",
        "cloud-config",
        "cloud-provider",
        "cluster-cidr",
        "cluster-name",
        "cluster-signing-cert-file",
        "cluster-signing-key-file",
        "cluster-signing-kube-apiserver-client-cert-file",
        "cluster-signing-kube-apiserver-client-key-file",
        "cluster-signing-kubelet-client-cert-file",
        "cluster-signing-kubelet-client-key-file",
        "cluster-signing-kubelet-serving-cert-file",
        "cluster-signing-kubelet-serving-key-file",
        "cluster-signing-legacy-unknown-cert-file",
        "cluster-signing-legacy-unknown-key-file",
        "controllers",
        "flex-volume-plugin-dir",
        "kube-api-content-type",
        "kube-api-qps",
        "kubeconfig",
        "leader-elect-resource-lock",
        "leader-elect-resource-name",
        "leader-elect-resource-namespace",
        "master",
        "root-ca-file",
        "service-account-private-key-file",
        "service-cluster-ip-range",
        "pv-recycler-pod-template-filepath-hostpath",
        "pv-recycler-pod-template-filepath-nfs",
        "node-eviction-rate",
        "secondary-node-eviction-rate",
        "unhealthy-zone-threshold",
    ],
    bools: &[
        "allocate-node-cidrs",
        "authentication-skip-lookup",
        "authentication-tolerate-lookup-failure",
        "configure-cloud-routes",
        "leader-elect",
        "use-service-account-credentials",
        "enable-dynamic-provisioning",
        "enable-garbage-collector",
        "enable-hostpath-provisioner",
    ],
    ints: &[
        "kube-api-burst",
        "node-cidr-mask-size",
        "node-cidr-mask-size-ipv4",
        "node-cidr-mask-size-ipv6",
        "terminated-pod-gc-threshold",
        "concurrent-deployment-syncs",
        "concurrent-endpoint-syncs",
        "concurrent-gc-syncs",
        "concurrent-namespace-syncs",
        "concurrent-replicaset-syncs",
        "concurrent-service-syncs",
        "concurrent-serviceaccount-token-syncs",
        "large-cluster-size-threshold",
    ],
    durations: &[
        "attach-detach-reconcile-sync-period",
        "authentication-token-webhook-cache-ttl",
        "authorization-webhook-cache-authorized-ttl",
        "authorization-webhook-cache-unauthorized-ttl",
        "cluster-signing-duration",
        "controller-start-interval",
        "leader-elect-lease-duration",
        "leader-elect-renew-deadline",
        "leader-elect-retry-period",
        "min-resync-period",
        "node-monitor-grace-period",
        "node-monitor-period",
        "node-startup-grace-period",
        "route-reconciliation-period",
        "horizontal-pod-autoscaler-sync-period",
    ],
};

/// kube-scheduler.
pub static KUBE_SCHEDULER: ComponentSpec = ComponentSpec {
    name: "kube-scheduler",
    default_secure_port: 10259,
    strings: &[
        "authentication-kubeconfig",
        "authorization-kubeconfig",
        "authorization-always-allow-paths",
        "config",
        "kube-api-content-type",
        "kube-api-qps",
        "kubeconfig",
        "leader-elect-resource-lock",
        "leader-elect-resource-name",
        "leader-elect-resource-namespace",
        "master",
        "write-config-to",
    ],
    bools: &[
        "authentication-skip-lookup",
        "authentication-tolerate-lookup-failure",
        "leader-elect",
    ],
    ints: &["kube-api-burst"],
    durations: &[
        "authentication-token-webhook-cache-ttl",
        "authorization-webhook-cache-authorized-ttl",
        "authorization-webhook-cache-unauthorized-ttl",
        "leader-elect-lease-duration",
        "leader-elect-renew-deadline",
        "leader-elect-retry-period",
        "pod-max-in-unschedulable-pods-duration",
    ],
};

/// The spec for a component binary name (basename), if it is one the fakes emulate.
pub fn spec_for(argv0: &str) -> Option<&'static ComponentSpec> {
    let base = argv0.rsplit('/').next().unwrap_or(argv0);
    match base {
        "kube-apiserver" => Some(&KUBE_APISERVER),
        "kube-controller-manager" => Some(&KUBE_CONTROLLER_MANAGER),
        "kube-scheduler" => Some(&KUBE_SCHEDULER),
        _ => None,
    }
}

/// Parsed flags: last occurrence wins, as in pflag. Values of bare bools are `"true"`.
pub type FlagValues = BTreeMap<String, String>;

/// Parse `args` (without `argv[0]`) like pflag + cobra would for `spec`; `Err` carries the exact
/// message the real binary prints after `Error: `.
pub fn parse(spec: &ComponentSpec, args: &[String]) -> Result<FlagValues, String> {
    let mut out = FlagValues::new();
    let mut positional = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            positional.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(body) = a.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let Some(kind) = spec.kind(name) else {
                return Err(format!("unknown flag: --{name}"));
            };
            let value = match (kind, inline) {
                (_, Some(v)) => v,
                (FlagKind::Bool, None) => "true".to_string(),
                (_, None) if name == "version" => "true".to_string(),
                (_, None) => match args.get(i) {
                    Some(v) => {
                        i += 1;
                        v.clone()
                    }
                    None => return Err(format!("flag needs an argument: --{name}")),
                },
            };
            validate(kind, name, &value)?;
            out.insert(name.to_string(), value);
        } else if let Some(short) = a.strip_prefix('-').filter(|s| !s.is_empty()) {
            let (c, inline) = match short.split_once('=') {
                Some((c, v)) => (c, Some(v.to_string())),
                None => (short, None),
            };
            match c {
                "h" => {
                    out.insert("help".into(), "true".into());
                }
                "v" => {
                    let value = match inline {
                        Some(v) => v,
                        None => match args.get(i) {
                            Some(v) => {
                                i += 1;
                                v.clone()
                            }
                            None => {
                                return Err("flag needs an argument: 'v' in -v".to_string());
                            }
                        },
                    };
                    validate(FlagKind::Int, "v", &value)?;
                    out.insert("v".into(), value);
                }
                _ => {
                    let first = c.chars().next().unwrap_or('-');
                    return Err(format!("unknown shorthand flag: '{first}' in {a}"));
                }
            }
        } else {
            positional.push(a.clone());
        }
    }
    if !positional.is_empty() {
        return Err(format!(
            "{:?} does not take any arguments, got {:?}",
            spec.name, positional
        ));
    }
    validate_values(&out)?;
    Ok(out)
}

fn invalid(value: &str, name: &str, why: String) -> String {
    format!("invalid argument {value:?} for \"--{name}\" flag: {why}")
}

fn validate(kind: FlagKind, name: &str, value: &str) -> Result<(), String> {
    match kind {
        FlagKind::Bool => {
            if parse_go_bool(value).is_none() {
                return Err(invalid(
                    value,
                    name,
                    format!("strconv.ParseBool: parsing {value:?}: invalid syntax"),
                ));
            }
        }
        FlagKind::Int => {
            if value.parse::<i64>().is_err() {
                return Err(invalid(
                    value,
                    name,
                    format!("strconv.ParseInt: parsing {value:?}: invalid syntax"),
                ));
            }
        }
        FlagKind::Duration => {
            if !is_go_duration(value) {
                return Err(invalid(
                    value,
                    name,
                    format!("time: invalid duration {value:?}"),
                ));
            }
        }
        FlagKind::Str => {}
    }
    Ok(())
}

/// Cross-flag and enumerated-value checks, as the real option validation does after parsing.
fn validate_values(flags: &FlagValues) -> Result<(), String> {
    if let Some(modes) = flags.get("authorization-mode") {
        for m in modes.split(',') {
            if ![
                "AlwaysAllow",
                "AlwaysDeny",
                "ABAC",
                "Webhook",
                "RBAC",
                "Node",
            ]
            .contains(&m)
            {
                return Err(format!(
                    "[authorization-mode {m:?} is not a valid mode, supported: AlwaysAllow,AlwaysDeny,ABAC,Webhook,RBAC,Node]"
                ));
            }
        }
    }
    if let Some(f) = flags.get("audit-log-format") {
        if f != "json" && f != "legacy" {
            return Err(format!(
                "[invalid audit log format {f}, allowed formats are \"legacy,json\"]"
            ));
        }
    }
    if let Some(m) = flags.get("audit-log-mode") {
        if !["batch", "blocking", "blocking-strict"].contains(&m.as_str()) {
            return Err(format!(
                "[invalid audit log mode {m}, allowed modes are \"batch,blocking,blocking-strict\"]"
            ));
        }
    }
    if let Some(v) = flags.get("tls-min-version") {
        if ![
            "VersionTLS10",
            "VersionTLS11",
            "VersionTLS12",
            "VersionTLS13",
        ]
        .contains(&v.as_str())
        {
            return Err(format!("unknown tls version {v:?}"));
        }
    }
    if let Some(p) = flags.get("secure-port") {
        match p.parse::<i64>() {
            Ok(n) if (0..=65535).contains(&n) => {}
            _ => {
                return Err(format!(
                    "[--secure-port {p} must be between 0 and 65535, inclusive. 0 for turning off secure port]"
                ))
            }
        }
    }
    Ok(())
}

/// Go's strconv.ParseBool.
pub fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's time.ParseDuration syntax: `0`, or a signed sequence of decimal numbers with units.
pub fn is_go_duration(v: &str) -> bool {
    let s = v.strip_prefix(['-', '+']).unwrap_or(v);
    if s == "0" {
        return true;
    }
    if s.is_empty() {
        return false;
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        if i == start {
            return false;
        }
        let ustart = i;
        while i < b.len() && !(b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        match &s[ustart..i] {
            "ns" | "us" | "µs" | "μs" | "ms" | "s" | "m" | "h" => {}
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<FlagValues, String> {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(&KUBE_APISERVER, &v)
    }

    #[test]
    fn accepts_kubeadm_flags_and_last_wins() {
        let f = p(&[
            "--advertise-address=192.0.2.10",
            "--secure-port",
            "6443",
            "--profiling=false",
            "--anonymous-auth",
            "--anonymous-auth=false",
        ])
        .unwrap();
        assert_eq!(f["secure-port"], "6443");
        assert_eq!(f["anonymous-auth"], "false");
    }

    #[test]
    fn rejects_like_pflag() {
        assert_eq!(p(&["--foo=1"]).unwrap_err(), "unknown flag: --foo");
        assert_eq!(
            p(&["--insecure-port=0"]).unwrap_err(),
            "unknown flag: --insecure-port"
        );
        assert_eq!(
            p(&["--anonymous-auth=maybe"]).unwrap_err(),
            "invalid argument \"maybe\" for \"--anonymous-auth\" flag: strconv.ParseBool: parsing \"maybe\": invalid syntax"
        );
        assert!(p(&["--request-timeout=1x"]).is_err());
        assert!(p(&["--request-timeout=1m30s"]).is_ok());
        assert!(p(&["--authorization-mode=Node,Bogus"]).is_err());
        assert!(p(&["--secure-port"]).is_err());
        assert!(p(&["stray"]).is_err());
    }
}
