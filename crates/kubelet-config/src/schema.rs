//! The kubelet settings kharden knows: their `KubeletConfiguration` key, their command-line
//! flag, their type and their default.
//!
//! Why it exists: the same setting has two names (`--anonymous-auth` and
//! `authentication.anonymous.enabled`), a type the kubelet enforces, and a default that depends
//! on where it would come from. The CIS benchmark (section 4.2) names either; kube-bench reads
//! the flag or the file and applies no default; the kubelet applies its own rules. This table is
//! the one place that ties them together, checked against the kubelet's source
//! (`cmd/kubelet/app/options/options.go` for the flags, `pkg/kubelet/apis/config/v1beta1/
//! defaults.go` for the defaults).
//!
//! Defaults come in kinds, as in `SetDefaults_KubeletConfiguration`: a pointer field in v1beta1
//! is defaulted only when absent (`eventRecordQPS: 0` stays 0); a plain field is defaulted when
//! absent *or* zero (`streamingConnectionIdleTimeout: 0s` becomes `4h0m0s`); `podPidsLimit`
//! becomes -1 when absent or negative. Defaulting runs on the `--config` file only; drop-ins
//! and flags are applied after it, as written. Without `--config` the kubelet starts from its
//! command-line defaults, which keep four legacy values (`applyLegacyDefaults`): anonymous
//! authentication on, webhook authentication off, `AlwaysAllow`, read-only port 10255.

use crate::duration::GoDuration;
use kharden_manifest::flags;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The type of a setting, as the kubelet decodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValueType {
    Bool,
    /// `int32` in the kubelet (pflag `Int32Var`).
    Int32,
    /// `int64` in the kubelet (pflag `Int64Var`).
    Int64,
    Str,
    /// A file path: relative paths in the `--config` file are resolved against its directory.
    Path,
    /// A Go duration (`metav1.Duration`, pflag `DurationVar`).
    Duration,
    /// A list of strings (pflag `StringSliceVar`: comma-separated, repeated flags accumulate).
    StringList,
    /// One feature gate: `featureGates.NAME` in the file, `--feature-gates=NAME=BOOL` on the
    /// command line (repeated flags accumulate).
    FeatureGate,
}

/// An effective value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Str(String),
    Duration(GoDuration),
    List(Vec<String>),
}

impl fmt::Display for Value {
    /// As the kubelet would print the flag's value: `true`, `10250`, `4h0m0s`, `A,B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => f.write_str(s),
            Value::Duration(d) => write!(f, "{d}"),
            Value::List(l) => f.write_str(&l.join(",")),
        }
    }
}

impl Value {
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this is the zero value of its type (what Go's defaulting tests).
    pub fn is_zero(&self) -> bool {
        match self {
            Value::Bool(b) => !b,
            Value::Int(i) => *i == 0,
            Value::Str(s) => s.is_empty(),
            Value::Duration(d) => d.is_zero(),
            Value::List(l) => l.is_empty(),
        }
    }
}

impl ValueType {
    /// The zero value of the type (an unset field without a default).
    pub fn zero(self) -> Value {
        match self {
            ValueType::Bool | ValueType::FeatureGate => Value::Bool(false),
            ValueType::Int32 | ValueType::Int64 => Value::Int(0),
            ValueType::Str | ValueType::Path => Value::Str(String::new()),
            ValueType::Duration => Value::Duration(GoDuration(0)),
            ValueType::StringList => Value::List(Vec::new()),
        }
    }

    /// Parse a value written on the command line (a flag's value, or `kharden kubelet set
    /// KEY=VALUE`), with pflag's parsers: Go's `ParseBool`, `ParseInt(s, 0, bits)`,
    /// `ParseDuration`; lists split at commas.
    pub fn parse_text(self, s: &str) -> Result<Value, String> {
        match self {
            ValueType::Bool | ValueType::FeatureGate => flags::parse_bool(s)
                .map(Value::Bool)
                .ok_or_else(|| format!("{s:?} is not a boolean (true/false)")),
            ValueType::Int32 => flags::parse_int(s)
                .filter(|i| i32::try_from(*i).is_ok())
                .map(Value::Int)
                .ok_or_else(|| format!("{s:?} is not a 32-bit integer")),
            ValueType::Int64 => flags::parse_int(s)
                .map(Value::Int)
                .ok_or_else(|| format!("{s:?} is not an integer")),
            ValueType::Str | ValueType::Path => Ok(Value::Str(s.to_string())),
            ValueType::Duration => GoDuration::parse(s).map(Value::Duration),
            ValueType::StringList => Ok(Value::List(
                flags::list_items(s)
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ValueType::Bool | ValueType::FeatureGate => "a boolean",
            ValueType::Int32 => "a 32-bit integer",
            ValueType::Int64 => "an integer",
            ValueType::Str => "a string",
            ValueType::Path => "a path",
            ValueType::Duration => "a duration string (like 4h0m0s)",
            ValueType::StringList => "a list of strings",
        }
    }
}

/// A literal default in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lit {
    Bool(bool),
    Int(i64),
    Str(&'static str),
    /// Nanoseconds.
    Duration(i64),
}

impl Lit {
    pub fn value(self) -> Value {
        match self {
            Lit::Bool(b) => Value::Bool(b),
            Lit::Int(i) => Value::Int(i),
            Lit::Str(s) => Value::Str(s.to_string()),
            Lit::Duration(ns) => Value::Duration(GoDuration(ns)),
        }
    }
}

/// How the kubelet defaults a setting of the `--config` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultRule {
    /// No defaulting: the zero value of the type.
    Zero,
    /// A pointer field: the default applies only when the key is absent (or null).
    IfAbsent(Lit),
    /// A plain field: the default applies when the key is absent or holds the zero value.
    IfZero(Lit),
    /// `podPidsLimit`: absent or negative becomes this value.
    IfAbsentOrNegative(i64),
    /// A feature gate's own default (not a configuration default).
    Gate(bool),
    /// A flag without a configuration key: the flag's default.
    FlagOnly(Lit),
}

const SEC: i64 = 1_000_000_000;

/// One setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    /// The `KubeletConfiguration` key path, `None` for a flag-only setting.
    pub path: Option<&'static str>,
    /// The command-line flag (without dashes) that sets it, if any.
    pub flag: Option<&'static str>,
    /// For [`ValueType::FeatureGate`]: the gate's name (the key inside `--feature-gates`).
    pub gate: Option<&'static str>,
    pub ty: ValueType,
    pub default: DefaultRule,
    /// The value when the kubelet runs without `--config`, when it differs from the default
    /// (the kubelet's legacy command-line defaults).
    pub without_config: Option<Lit>,
    /// CIS Kubernetes Benchmark checks (1.8-1.12 node sections) that look at this setting.
    pub cis: &'static [&'static str],
}

impl KeySpec {
    /// How to name the setting to a person: the key path, else `--flag`.
    pub fn name(&self) -> String {
        match (self.path, self.flag) {
            (Some(p), _) => p.to_string(),
            (None, Some(f)) => format!("--{f}"),
            (None, None) => "?".into(),
        }
    }

    /// The default when nothing sets the key: with a `--config` file, the v1beta1 default;
    /// without one, the command-line default.
    pub fn default_value(&self, with_config: bool) -> Value {
        if !with_config {
            if let Some(l) = self.without_config {
                return l.value();
            }
        }
        match self.default {
            DefaultRule::Zero => self.ty.zero(),
            DefaultRule::IfAbsent(l) | DefaultRule::IfZero(l) | DefaultRule::FlagOnly(l) => {
                l.value()
            }
            DefaultRule::IfAbsentOrNegative(i) => Value::Int(i),
            DefaultRule::Gate(b) => Value::Bool(b),
        }
    }
}

macro_rules! key {
    ($path:expr, $flag:expr, $ty:ident, $def:expr, $legacy:expr, [$($cis:expr),*]) => {
        KeySpec {
            path: $path,
            flag: $flag,
            gate: None,
            ty: ValueType::$ty,
            default: $def,
            without_config: $legacy,
            cis: &[$($cis),*],
        }
    };
}

use DefaultRule::{FlagOnly, IfAbsent, IfAbsentOrNegative, IfZero, Zero};

/// Every setting kharden reads, in the benchmark's order first. Defaults are those of
/// Kubernetes 1.28-1.33 (v1beta1).
pub static KEYS: &[KeySpec] = &[
    key!(
        Some("authentication.anonymous.enabled"),
        Some("anonymous-auth"),
        Bool,
        IfAbsent(Lit::Bool(false)),
        Some(Lit::Bool(true)),
        ["4.2.1"]
    ),
    key!(
        Some("authorization.mode"),
        Some("authorization-mode"),
        Str,
        IfZero(Lit::Str("Webhook")),
        Some(Lit::Str("AlwaysAllow")),
        ["4.2.2"]
    ),
    key!(
        Some("authentication.x509.clientCAFile"),
        Some("client-ca-file"),
        Path,
        Zero,
        None,
        ["4.2.3"]
    ),
    key!(
        Some("readOnlyPort"),
        Some("read-only-port"),
        Int32,
        Zero,
        Some(Lit::Int(10255)),
        ["4.2.4"]
    ),
    key!(
        Some("streamingConnectionIdleTimeout"),
        Some("streaming-connection-idle-timeout"),
        Duration,
        IfZero(Lit::Duration(4 * 3600 * SEC)),
        None,
        ["4.2.5"]
    ),
    key!(
        Some("makeIPTablesUtilChains"),
        Some("make-iptables-util-chains"),
        Bool,
        IfAbsent(Lit::Bool(true)),
        None,
        ["4.2.6"]
    ),
    key!(
        None,
        Some("hostname-override"),
        Str,
        FlagOnly(Lit::Str("")),
        None,
        ["4.2.7"]
    ),
    key!(
        Some("eventRecordQPS"),
        Some("event-qps"),
        Int32,
        IfAbsent(Lit::Int(50)),
        None,
        ["4.2.8"]
    ),
    key!(
        Some("tlsCertFile"),
        Some("tls-cert-file"),
        Path,
        Zero,
        None,
        ["4.2.9"]
    ),
    key!(
        Some("tlsPrivateKeyFile"),
        Some("tls-private-key-file"),
        Path,
        Zero,
        None,
        ["4.2.9"]
    ),
    key!(
        Some("rotateCertificates"),
        Some("rotate-certificates"),
        Bool,
        Zero,
        None,
        ["4.2.10"]
    ),
    KeySpec {
        path: Some("featureGates.RotateKubeletServerCertificate"),
        flag: Some("feature-gates"),
        gate: Some("RotateKubeletServerCertificate"),
        ty: ValueType::FeatureGate,
        default: DefaultRule::Gate(true),
        without_config: None,
        cis: &["4.2.11"],
    },
    key!(
        Some("serverTLSBootstrap"),
        Some("rotate-server-certificates"),
        Bool,
        Zero,
        None,
        ["4.2.11"]
    ),
    key!(
        Some("tlsCipherSuites"),
        Some("tls-cipher-suites"),
        StringList,
        Zero,
        None,
        ["4.2.12"]
    ),
    key!(
        Some("tlsMinVersion"),
        Some("tls-min-version"),
        Str,
        Zero,
        None,
        []
    ),
    key!(
        Some("podPidsLimit"),
        Some("pod-max-pids"),
        Int64,
        IfAbsentOrNegative(-1),
        None,
        ["4.2.13"]
    ),
    key!(
        Some("seccompDefault"),
        Some("seccomp-default"),
        Bool,
        IfAbsent(Lit::Bool(false)),
        None,
        ["4.2.14"]
    ),
    key!(
        Some("protectKernelDefaults"),
        Some("protect-kernel-defaults"),
        Bool,
        Zero,
        None,
        []
    ),
    key!(
        Some("authentication.webhook.enabled"),
        Some("authentication-token-webhook"),
        Bool,
        IfAbsent(Lit::Bool(true)),
        Some(Lit::Bool(false)),
        []
    ),
    key!(
        Some("authentication.webhook.cacheTTL"),
        Some("authentication-token-webhook-cache-ttl"),
        Duration,
        IfZero(Lit::Duration(120 * SEC)),
        None,
        []
    ),
    key!(
        Some("authorization.webhook.cacheAuthorizedTTL"),
        Some("authorization-webhook-cache-authorized-ttl"),
        Duration,
        IfZero(Lit::Duration(300 * SEC)),
        None,
        []
    ),
    key!(
        Some("authorization.webhook.cacheUnauthorizedTTL"),
        Some("authorization-webhook-cache-unauthorized-ttl"),
        Duration,
        IfZero(Lit::Duration(30 * SEC)),
        None,
        []
    ),
    key!(
        Some("eventBurst"),
        Some("event-burst"),
        Int32,
        IfZero(Lit::Int(100)),
        None,
        []
    ),
    key!(
        Some("address"),
        Some("address"),
        Str,
        IfZero(Lit::Str("0.0.0.0")),
        None,
        []
    ),
    key!(
        Some("port"),
        Some("port"),
        Int32,
        IfZero(Lit::Int(10250)),
        None,
        []
    ),
    key!(
        Some("healthzBindAddress"),
        Some("healthz-bind-address"),
        Str,
        IfZero(Lit::Str("127.0.0.1")),
        None,
        []
    ),
    key!(
        Some("healthzPort"),
        Some("healthz-port"),
        Int32,
        IfAbsent(Lit::Int(10248)),
        None,
        []
    ),
    key!(
        Some("staticPodPath"),
        Some("pod-manifest-path"),
        Path,
        Zero,
        None,
        []
    ),
    key!(
        Some("containerRuntimeEndpoint"),
        Some("container-runtime-endpoint"),
        Str,
        IfZero(Lit::Str("unix:///run/containerd/containerd.sock")),
        None,
        []
    ),
    key!(
        Some("cgroupDriver"),
        Some("cgroup-driver"),
        Str,
        IfZero(Lit::Str("cgroupfs")),
        None,
        []
    ),
    key!(
        Some("clusterDNS"),
        Some("cluster-dns"),
        StringList,
        Zero,
        None,
        []
    ),
    key!(
        Some("clusterDomain"),
        Some("cluster-domain"),
        Str,
        Zero,
        None,
        []
    ),
    key!(
        Some("enableDebuggingHandlers"),
        Some("enable-debugging-handlers"),
        Bool,
        IfAbsent(Lit::Bool(true)),
        None,
        []
    ),
    key!(
        Some("failSwapOn"),
        Some("fail-swap-on"),
        Bool,
        IfAbsent(Lit::Bool(true)),
        None,
        []
    ),
    key!(
        Some("maxPods"),
        Some("max-pods"),
        Int32,
        IfZero(Lit::Int(110)),
        None,
        []
    ),
    key!(
        Some("resolvConf"),
        Some("resolv-conf"),
        Path,
        IfAbsent(Lit::Str("/etc/resolv.conf")),
        None,
        []
    ),
    key!(
        None,
        Some("kubeconfig"),
        Path,
        FlagOnly(Lit::Str("")),
        None,
        []
    ),
    key!(
        None,
        Some("cert-dir"),
        Path,
        FlagOnly(Lit::Str("/var/lib/kubelet/pki")),
        None,
        []
    ),
];

/// Every known setting.
pub fn keys() -> &'static [KeySpec] {
    KEYS
}

/// The setting named by a key path (`readOnlyPort`), a flag (`read-only-port`,
/// `--read-only-port`), or a feature gate path (`featureGates.NAME`, any gate: a gate without a
/// table entry gets one built on the fly with the default `false`, unknown to kharden).
pub fn key(name: &str) -> Option<KeySpec> {
    if let Some(k) = KEYS.iter().find(|k| k.path == Some(name)) {
        return Some(*k);
    }
    if name.starts_with('-') {
        let n = flags::normalize(name);
        return KEYS
            .iter()
            .find(|k| k.flag == Some(n.as_str()) && k.gate.is_none())
            .copied();
    }
    if let Some(k) = KEYS
        .iter()
        .find(|k| k.flag == Some(name) && k.gate.is_none())
    {
        return Some(*k);
    }
    None
}

/// The table entry of the feature gate `gate`, if kharden knows it.
pub fn feature_gate(gate: &str) -> Option<KeySpec> {
    KEYS.iter().find(|k| k.gate == Some(gate)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cis_4_2_setting_is_known() {
        for id in [
            "4.2.1", "4.2.2", "4.2.3", "4.2.4", "4.2.5", "4.2.6", "4.2.7", "4.2.8", "4.2.9",
            "4.2.10", "4.2.11", "4.2.12", "4.2.13", "4.2.14",
        ] {
            assert!(KEYS.iter().any(|k| k.cis.contains(&id)), "{id}");
        }
    }

    #[test]
    fn lookup_by_path_flag_and_gate() {
        assert_eq!(
            key("readOnlyPort").and_then(|k| k.flag),
            Some("read-only-port")
        );
        assert_eq!(
            key("--anonymous-auth").and_then(|k| k.path),
            Some("authentication.anonymous.enabled")
        );
        assert_eq!(key("hostname-override").map(|k| k.path), Some(None));
        assert!(key("feature-gates").is_none());
        assert_eq!(
            feature_gate("RotateKubeletServerCertificate").map(|k| k.ty),
            Some(ValueType::FeatureGate)
        );
        let paths: Vec<_> = KEYS.iter().filter_map(|k| k.path).collect();
        let mut dedup = paths.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(paths.len(), dedup.len(), "duplicate paths");
    }

    #[test]
    fn defaults() {
        let k = key("authentication.anonymous.enabled").unwrap();
        assert_eq!(k.default_value(true), Value::Bool(false));
        assert_eq!(k.default_value(false), Value::Bool(true));
        let k = key("streamingConnectionIdleTimeout").unwrap();
        assert_eq!(k.default_value(true).to_string(), "4h0m0s");
        assert_eq!(
            key("readOnlyPort").unwrap().default_value(false),
            Value::Int(10255)
        );
        assert_eq!(
            key("podPidsLimit").unwrap().default_value(true),
            Value::Int(-1)
        );
    }

    #[test]
    fn parse_text_like_pflag() {
        assert_eq!(ValueType::Int32.parse_text("0x10"), Ok(Value::Int(16)));
        assert!(ValueType::Int32.parse_text("3000000000").is_err());
        assert_eq!(ValueType::Bool.parse_text("F"), Ok(Value::Bool(false)));
        assert!(ValueType::Bool.parse_text("yes").is_err());
        assert_eq!(
            ValueType::Duration
                .parse_text("240m")
                .map(|v| v.to_string()),
            Ok("4h0m0s".into())
        );
        assert_eq!(
            ValueType::StringList.parse_text("A,B"),
            Ok(Value::List(vec!["A".into(), "B".into()]))
        );
    }
}
