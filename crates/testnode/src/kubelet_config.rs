//! How the kubelet emulator loads its configuration: `--config`, `--config-dir` drop-ins and
//! flags, decoded, merged, defaulted and validated the way the kubelet (v1.30+) does.
//!
//! Why: kharden's kubelet transactions edit a `KubeletConfiguration` file, a drop-in or a flag in
//! an environment file, restart the kubelet and gate on it. The tests are only worth something if
//! the thing restarted reacts like the kubelet: refuses what the kubelet refuses (and exits, so
//! systemd restarts it forever), accepts what it accepts (with the same warnings), and ends up
//! with the same *effective* value, given the same precedence rules. This module is that
//! adversary. It is deliberately independent of kharden's own editors and readers (it is what
//! they are tested against): it decodes with serde_yaml into its own typed structs.
//!
//! The order is cmd/kubelet/app/server.go's:
//! 1. flags are parsed (pflag rules: `--name=value`, `--name value`, a bare boolean flag is
//!    `true`, `_` and `-` are the same, the last occurrence wins, an unknown flag or a stray
//!    argument is fatal) over the *legacy* flag defaults (`anonymous-auth=true`,
//!    `authorization-mode=AlwaysAllow`, `read-only-port=10255`, webhook authentication off);
//! 2. `--config FILE` replaces that configuration: the file is decoded strictly, and when that
//!    fails only because of unknown fields, leniently with a warning (a syntax error, a wrong type
//!    or a duplicated key is fatal); the v1beta1 defaults are applied (a Go zero value counts as
//!    unset for non-pointer fields, so `eventBurst: 0` becomes 100 while `eventRecordQPS: 0`
//!    stays 0);
//! 3. `--config-dir DIR`: every `*.conf` file under DIR, in lexical order of the walk (sub
//!    directories included), must carry `apiVersion`/`kind` and is applied as a JSON merge patch
//!    (RFC 7386: maps merged, lists replaced, `null` deletes) over the JSON of the configuration so
//!    far; the result is decoded again and defaulted again;
//! 4. when a file or a drop-in directory was given, the command line is applied again over the
//!    result, so flags win (feature gates set only in the file are kept);
//! 5. validation (pkg/kubelet/apis/config/validation), then what the kubelet checks while it
//!    builds its dependencies: the TLS cipher suite names and minimum version, the authorization
//!    mode, webhook authentication/authorization needing an API client (`--kubeconfig`).
//!
//! Known differences, all on the side of being stricter or simpler: YAML is read as YAML 1.2
//! (the kubelet's sigs.k8s.io/yaml is YAML 1.1: a plain `yes` is a boolean there and a string
//! here); a duplicated key is fatal here (the kubelet warns and keeps the last); feature gate
//! names are not checked against the kubelet's list; fields this release does not know are
//! reported as unknown like any other.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// The only configuration version the kubelet reads.
pub const API_VERSION: &str = "kubelet.config.k8s.io/v1beta1";
/// The kind of a kubelet configuration document.
pub const KIND: &str = "KubeletConfiguration";

// ---------------------------------------------------------------------------------------------
// Go durations (metav1.Duration)
// ---------------------------------------------------------------------------------------------

/// A Go `time.Duration` as metav1.Duration carries it in JSON: a string parsed by
/// `time.ParseDuration`, printed by `Duration.String()` (`4h0m0s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct GoDuration(pub i64);

impl GoDuration {
    /// Parse like Go's `time.ParseDuration`.
    pub fn parse(s: &str) -> Result<GoDuration, String> {
        parse_go_duration(s).map(GoDuration)
    }

    /// Nanoseconds.
    pub fn nanos(self) -> i64 {
        self.0
    }

    /// As a std duration (negative durations have none).
    pub fn to_std(self) -> Option<std::time::Duration> {
        u64::try_from(self.0)
            .ok()
            .map(std::time::Duration::from_nanos)
    }

    fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&go_duration_string(self.0))
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<GoDuration, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = GoDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"10s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GoDuration, E> {
                GoDuration::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

const NS_UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Go's `time.ParseDuration`, with its error messages.
pub fn parse_go_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration \"{orig}\"");
    let mut s = orig;
    let mut neg = false;
    if let Some(r) = s.strip_prefix('-') {
        neg = true;
        s = r;
    } else if let Some(r) = s.strip_prefix('+') {
        s = r;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    // Accumulate in nanoseconds as u128 to detect overflow past i64.
    let mut total: u128 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let int_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let int_part = &s[..int_end];
        s = &s[int_end..];
        let mut frac_part = "";
        if let Some(r) = s.strip_prefix('.') {
            let fe = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            frac_part = &r[..fe];
            s = &r[fe..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_end = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        let unit = &s[..unit_end];
        s = &s[unit_end..];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration \"{orig}\""));
        }
        let Some(&(_, scale)) = NS_UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(format!(
                "time: unknown unit \"{unit}\" in duration \"{orig}\""
            ));
        };
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        let mut v = int.checked_mul(scale).ok_or_else(invalid)?;
        if !frac_part.is_empty() {
            // Go truncates the fraction to what the unit can represent.
            let mut f: u128 = 0;
            let mut div: u128 = 1;
            for c in frac_part.bytes().take(30) {
                f = f * 10 + u128::from(c - b'0');
                div *= 10;
            }
            v += f * scale / div;
        }
        total = total.checked_add(v).ok_or_else(invalid)?;
        if total > i64::MAX as u128 + u128::from(neg) {
            return Err(invalid());
        }
    }
    let t = total as i128;
    Ok((if neg { -t } else { t }) as i64)
}

/// Go's `time.Duration.String()`.
pub fn go_duration_string(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let sign = if d < 0 { "-" } else { "" };
    let u = d.unsigned_abs();
    fn frac(v: u64, prec: u32) -> String {
        let p = 10u64.pow(prec);
        let int = v / p;
        let rest = v % p;
        if rest == 0 {
            int.to_string()
        } else {
            let digits = format!("{rest:0width$}", width = prec as usize);
            format!("{int}.{}", digits.trim_end_matches('0'))
        }
    }
    if u < 1_000_000_000 {
        let (unit, prec) = if u < 1_000 {
            ("ns", 0)
        } else if u < 1_000_000 {
            ("µs", 3)
        } else {
            ("ms", 6)
        };
        return format!("{sign}{}{unit}", frac(u, prec));
    }
    let secs = frac(u % 60_000_000_000, 9);
    let mins = u / 60_000_000_000;
    let (h, m) = (mins / 60, mins % 60);
    if h > 0 {
        format!("{sign}{h}h{m}m{secs}s")
    } else if m > 0 {
        format!("{sign}{m}m{secs}s")
    } else {
        format!("{sign}{secs}s")
    }
}

// ---------------------------------------------------------------------------------------------
// The typed configuration (KubeletConfiguration v1beta1)
// ---------------------------------------------------------------------------------------------

/// `authentication.x509`.
#[allow(non_snake_case)]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct X509Authentication {
    pub clientCAFile: Option<String>,
}

/// `authentication.webhook`.
#[allow(non_snake_case)]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookAuthentication {
    pub enabled: Option<bool>,
    pub cacheTTL: Option<GoDuration>,
}

/// `authentication.anonymous`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnonymousAuthentication {
    pub enabled: Option<bool>,
}

/// `authentication`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Authentication {
    pub x509: Option<X509Authentication>,
    pub webhook: Option<WebhookAuthentication>,
    pub anonymous: Option<AnonymousAuthentication>,
}

/// `authorization.webhook`.
#[allow(non_snake_case)]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookAuthorization {
    pub cacheAuthorizedTTL: Option<GoDuration>,
    pub cacheUnauthorizedTTL: Option<GoDuration>,
}

/// `authorization`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Authorization {
    pub mode: Option<String>,
    pub webhook: Option<WebhookAuthorization>,
}

/// `memorySwap`.
#[allow(non_snake_case)]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemorySwap {
    pub swapBehavior: Option<String>,
}

/// `crashLoopBackOff`.
#[allow(non_snake_case)]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CrashLoopBackOff {
    pub maxContainerRestartPeriod: Option<GoDuration>,
}

/// One entry of `shutdownGracePeriodByPodPriority`.
#[allow(non_snake_case)]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShutdownGracePeriodByPodPriority {
    pub priority: i32,
    pub shutdownGracePeriodSeconds: i64,
}

/// A node taint (`registerWithTaints`).
#[allow(non_snake_case)]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Taint {
    pub key: String,
    pub value: Option<String>,
    pub effect: String,
    pub timeAdded: Option<String>,
}

/// `logging` (component-base LoggingConfiguration; the nested options are kept opaque).
#[allow(non_snake_case)]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Logging {
    pub format: Option<String>,
    pub flushFrequency: Option<Yaml>,
    pub verbosity: Option<u32>,
    pub vmodule: Option<Yaml>,
    pub options: Option<Yaml>,
}

/// `KubeletConfiguration` (kubelet.config.k8s.io/v1beta1), every field optional so that "not
/// set" is visible. Field names are the JSON names.
#[allow(non_snake_case)]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KubeletConfiguration {
    pub apiVersion: Option<String>,
    pub kind: Option<String>,
    pub enableServer: Option<bool>,
    pub staticPodPath: Option<String>,
    pub podLogsDir: Option<String>,
    pub syncFrequency: Option<GoDuration>,
    pub fileCheckFrequency: Option<GoDuration>,
    pub httpCheckFrequency: Option<GoDuration>,
    pub staticPodURL: Option<String>,
    pub staticPodURLHeader: Option<BTreeMap<String, Vec<String>>>,
    pub address: Option<String>,
    pub port: Option<i32>,
    pub readOnlyPort: Option<i32>,
    pub tlsCertFile: Option<String>,
    pub tlsPrivateKeyFile: Option<String>,
    pub tlsCipherSuites: Option<Vec<String>>,
    pub tlsCurvePreferences: Option<Vec<i32>>,
    pub tlsMinVersion: Option<String>,
    pub rotateCertificates: Option<bool>,
    pub serverTLSBootstrap: Option<bool>,
    pub authentication: Option<Authentication>,
    pub authorization: Option<Authorization>,
    pub registryPullQPS: Option<i32>,
    pub registryBurst: Option<i32>,
    pub imagePullCredentialsVerificationPolicy: Option<String>,
    pub preloadedImagesVerificationAllowlist: Option<Vec<String>>,
    pub eventRecordQPS: Option<i32>,
    pub eventBurst: Option<i32>,
    pub enableDebuggingHandlers: Option<bool>,
    pub enableContentionProfiling: Option<bool>,
    pub healthzPort: Option<i32>,
    pub healthzBindAddress: Option<String>,
    pub oomScoreAdj: Option<i32>,
    pub clusterDomain: Option<String>,
    pub clusterDNS: Option<Vec<String>>,
    pub streamingConnectionIdleTimeout: Option<GoDuration>,
    pub nodeStatusUpdateFrequency: Option<GoDuration>,
    pub nodeStatusReportFrequency: Option<GoDuration>,
    pub nodeLeaseDurationSeconds: Option<i32>,
    pub imageMinimumGCAge: Option<GoDuration>,
    pub imageMaximumGCAge: Option<GoDuration>,
    pub imageGCHighThresholdPercent: Option<i32>,
    pub imageGCLowThresholdPercent: Option<i32>,
    pub volumeStatsAggPeriod: Option<GoDuration>,
    pub kubeletCgroups: Option<String>,
    pub systemCgroups: Option<String>,
    pub cgroupRoot: Option<String>,
    pub cgroupsPerQOS: Option<bool>,
    pub cgroupDriver: Option<String>,
    pub cpuManagerPolicy: Option<String>,
    pub singleProcessOOMKill: Option<bool>,
    pub cpuManagerPolicyOptions: Option<BTreeMap<String, String>>,
    pub cpuManagerReconcilePeriod: Option<GoDuration>,
    pub memoryManagerPolicy: Option<String>,
    pub topologyManagerPolicy: Option<String>,
    pub topologyManagerScope: Option<String>,
    pub topologyManagerPolicyOptions: Option<BTreeMap<String, String>>,
    pub qosReserved: Option<BTreeMap<String, String>>,
    pub runtimeRequestTimeout: Option<GoDuration>,
    pub hairpinMode: Option<String>,
    pub maxPods: Option<i32>,
    pub podCIDR: Option<String>,
    pub podPidsLimit: Option<i64>,
    pub resolvConf: Option<String>,
    pub runOnce: Option<bool>,
    pub cpuCFSQuota: Option<bool>,
    pub cpuCFSQuotaPeriod: Option<GoDuration>,
    pub nodeStatusMaxImages: Option<i32>,
    pub maxOpenFiles: Option<i64>,
    pub contentType: Option<String>,
    pub kubeAPIQPS: Option<i32>,
    pub kubeAPIBurst: Option<i32>,
    pub serializeImagePulls: Option<bool>,
    pub maxParallelImagePulls: Option<i32>,
    pub evictionHard: Option<BTreeMap<String, String>>,
    pub evictionSoft: Option<BTreeMap<String, String>>,
    pub evictionSoftGracePeriod: Option<BTreeMap<String, String>>,
    pub evictionPressureTransitionPeriod: Option<GoDuration>,
    pub evictionMaxPodGracePeriod: Option<i32>,
    pub evictionMinimumReclaim: Option<BTreeMap<String, String>>,
    pub mergeDefaultEvictionSettings: Option<bool>,
    pub podsPerCore: Option<i32>,
    pub enableControllerAttachDetach: Option<bool>,
    pub protectKernelDefaults: Option<bool>,
    pub makeIPTablesUtilChains: Option<bool>,
    pub iptablesMasqueradeBit: Option<i32>,
    pub iptablesDropBit: Option<i32>,
    pub featureGates: Option<BTreeMap<String, bool>>,
    pub failSwapOn: Option<bool>,
    pub memorySwap: Option<MemorySwap>,
    pub containerLogMaxSize: Option<String>,
    pub containerLogMaxFiles: Option<i32>,
    pub containerLogMaxWorkers: Option<i32>,
    pub containerLogMonitorInterval: Option<GoDuration>,
    pub configMapAndSecretChangeDetectionStrategy: Option<String>,
    pub systemReserved: Option<BTreeMap<String, String>>,
    pub kubeReserved: Option<BTreeMap<String, String>>,
    pub reservedSystemCPUs: Option<String>,
    pub showHiddenMetricsForVersion: Option<String>,
    pub systemReservedCgroup: Option<String>,
    pub kubeReservedCgroup: Option<String>,
    pub enforceNodeAllocatable: Option<Vec<String>>,
    pub allowedUnsafeSysctls: Option<Vec<String>>,
    pub defaultPodSysctls: Option<BTreeMap<String, String>>,
    pub volumePluginDir: Option<String>,
    pub providerID: Option<String>,
    pub kernelMemcgNotification: Option<bool>,
    pub logging: Option<Logging>,
    pub enableSystemLogHandler: Option<bool>,
    pub enableSystemLogQuery: Option<bool>,
    pub shutdownGracePeriod: Option<GoDuration>,
    pub shutdownGracePeriodCriticalPods: Option<GoDuration>,
    pub shutdownGracePeriodByPodPriority: Option<Vec<ShutdownGracePeriodByPodPriority>>,
    pub crashLoopBackOff: Option<CrashLoopBackOff>,
    pub reservedMemory: Option<Vec<Yaml>>,
    pub enableProfilingHandler: Option<bool>,
    pub enableDebugFlagsHandler: Option<bool>,
    pub seccompDefault: Option<bool>,
    pub memoryThrottlingFactor: Option<f64>,
    pub memoryReservationPolicy: Option<String>,
    pub registerWithTaints: Option<Vec<Taint>>,
    pub registerNode: Option<bool>,
    pub tracing: Option<Yaml>,
    pub localStorageCapacityIsolation: Option<bool>,
    pub containerRuntimeEndpoint: Option<String>,
    pub imageServiceEndpoint: Option<String>,
    pub failCgroupV1: Option<bool>,
    pub userNamespaces: Option<Yaml>,
}

/// Defaults the kubelet applies to `evictionHard` when the file leaves it out (Linux).
pub fn default_eviction_hard() -> BTreeMap<String, String> {
    [
        ("memory.available", "100Mi"),
        ("nodefs.available", "10%"),
        ("nodefs.inodesFree", "5%"),
        ("imagefs.available", "15%"),
        ("imagefs.inodesFree", "5%"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn unset_str(v: &Option<String>) -> bool {
    v.as_deref().unwrap_or("").is_empty()
}

fn unset_i32(v: &Option<i32>) -> bool {
    v.unwrap_or(0) == 0
}

fn unset_dur(v: &Option<GoDuration>) -> bool {
    v.is_none_or(GoDuration::is_zero)
}

fn secs(s: i64) -> GoDuration {
    GoDuration(s * 1_000_000_000)
}

impl KubeletConfiguration {
    /// `SetDefaults_KubeletConfiguration` (pkg/kubelet/apis/config/v1beta1/defaults.go) for the
    /// fields modelled here. A non-pointer Go field at its zero value counts as unset; a pointer
    /// field only when absent.
    pub fn set_defaults(&mut self) {
        macro_rules! ptr {
            ($f:ident, $v:expr) => {
                if self.$f.is_none() {
                    self.$f = Some($v);
                }
            };
        }
        macro_rules! s {
            ($f:ident, $v:expr) => {
                if unset_str(&self.$f) {
                    self.$f = Some($v.to_string());
                }
            };
        }
        macro_rules! i {
            ($f:ident, $v:expr) => {
                if unset_i32(&self.$f) {
                    self.$f = Some($v);
                }
            };
        }
        macro_rules! d {
            ($f:ident, $v:expr) => {
                if unset_dur(&self.$f) {
                    self.$f = Some($v);
                }
            };
        }
        ptr!(enableServer, true);
        d!(syncFrequency, secs(60));
        d!(fileCheckFrequency, secs(20));
        d!(httpCheckFrequency, secs(20));
        s!(address, "0.0.0.0");
        i!(port, 10250);
        let authn = self.authentication.get_or_insert_with(Default::default);
        let anon = authn.anonymous.get_or_insert_with(Default::default);
        anon.enabled.get_or_insert(false);
        let wh = authn.webhook.get_or_insert_with(Default::default);
        wh.enabled.get_or_insert(true);
        if unset_dur(&wh.cacheTTL) {
            wh.cacheTTL = Some(secs(120));
        }
        authn.x509.get_or_insert_with(Default::default);
        let authz = self.authorization.get_or_insert_with(Default::default);
        if unset_str(&authz.mode) {
            authz.mode = Some("Webhook".into());
        }
        let awh = authz.webhook.get_or_insert_with(Default::default);
        if unset_dur(&awh.cacheAuthorizedTTL) {
            awh.cacheAuthorizedTTL = Some(secs(300));
        }
        if unset_dur(&awh.cacheUnauthorizedTTL) {
            awh.cacheUnauthorizedTTL = Some(secs(30));
        }
        ptr!(registryPullQPS, 5);
        i!(registryBurst, 10);
        ptr!(eventRecordQPS, 50);
        i!(eventBurst, 100);
        ptr!(enableDebuggingHandlers, true);
        ptr!(healthzPort, 10248);
        s!(healthzBindAddress, "127.0.0.1");
        ptr!(oomScoreAdj, -999);
        d!(streamingConnectionIdleTimeout, secs(4 * 3600));
        if unset_dur(&self.nodeStatusReportFrequency) {
            self.nodeStatusReportFrequency = Some(if unset_dur(&self.nodeStatusUpdateFrequency) {
                secs(300)
            } else {
                self.nodeStatusUpdateFrequency.unwrap_or_default()
            });
        }
        d!(nodeStatusUpdateFrequency, secs(10));
        i!(nodeLeaseDurationSeconds, 40);
        d!(imageMinimumGCAge, secs(120));
        ptr!(imageGCHighThresholdPercent, 85);
        ptr!(imageGCLowThresholdPercent, 80);
        d!(volumeStatsAggPeriod, secs(60));
        ptr!(cgroupsPerQOS, true);
        s!(cgroupDriver, "cgroupfs");
        s!(cpuManagerPolicy, "none");
        d!(cpuManagerReconcilePeriod, secs(10));
        s!(memoryManagerPolicy, "None");
        s!(topologyManagerPolicy, "none");
        s!(topologyManagerScope, "container");
        d!(runtimeRequestTimeout, secs(120));
        s!(hairpinMode, "promiscuous-bridge");
        i!(maxPods, 110);
        if self.podPidsLimit.is_none_or(|v| v < 0) {
            self.podPidsLimit = Some(-1);
        }
        ptr!(resolvConf, "/etc/resolv.conf".to_string());
        ptr!(cpuCFSQuota, true);
        ptr!(cpuCFSQuotaPeriod, GoDuration(100_000_000));
        ptr!(nodeStatusMaxImages, 50);
        if self.maxOpenFiles.unwrap_or(0) == 0 {
            self.maxOpenFiles = Some(1_000_000);
        }
        s!(contentType, "application/vnd.kubernetes.protobuf");
        ptr!(kubeAPIQPS, 50);
        i!(kubeAPIBurst, 100);
        if self.serializeImagePulls.is_none() {
            let parallel = self.maxParallelImagePulls.is_some_and(|n| n >= 2);
            self.serializeImagePulls = Some(!parallel);
        }
        d!(evictionPressureTransitionPeriod, secs(300));
        ptr!(mergeDefaultEvictionSettings, false);
        ptr!(enableControllerAttachDetach, true);
        ptr!(makeIPTablesUtilChains, true);
        ptr!(iptablesMasqueradeBit, 14);
        ptr!(iptablesDropBit, 15);
        ptr!(failSwapOn, true);
        s!(containerLogMaxSize, "10Mi");
        ptr!(containerLogMaxFiles, 5);
        ptr!(containerLogMaxWorkers, 1);
        ptr!(containerLogMonitorInterval, secs(10));
        s!(configMapAndSecretChangeDetectionStrategy, "Watch");
        ptr!(enforceNodeAllocatable, vec!["pods".to_string()]);
        s!(
            volumePluginDir,
            "/usr/libexec/kubernetes/kubelet-plugins/volume/exec/"
        );
        let logging = self.logging.get_or_insert_with(Default::default);
        if unset_str(&logging.format) {
            logging.format = Some("text".into());
        }
        ptr!(enableSystemLogHandler, true);
        ptr!(enableProfilingHandler, true);
        ptr!(enableDebugFlagsHandler, true);
        ptr!(seccompDefault, false);
        ptr!(failCgroupV1, false);
        ptr!(memoryThrottlingFactor, 0.9);
        ptr!(registerNode, true);
        ptr!(localStorageCapacityIsolation, true);
        s!(
            containerRuntimeEndpoint,
            "unix:///run/containerd/containerd.sock"
        );
        s!(podLogsDir, "/var/log/pods");
        s!(memoryReservationPolicy, "None");
        // Go zero values with no default, made explicit so that the effective configuration
        // says what the benchmark asks about (the kubelet omits them from /configz).
        ptr!(readOnlyPort, 0);
        ptr!(rotateCertificates, false);
        ptr!(serverTLSBootstrap, false);
        ptr!(protectKernelDefaults, false);
    }

    /// The configuration the kubelet starts from before any file: the v1beta1 defaults with the
    /// legacy flag defaults on top (`options.NewKubeletConfiguration` + `applyLegacyDefaults`).
    pub fn legacy_flag_defaults() -> KubeletConfiguration {
        let mut c = KubeletConfiguration::default();
        c.set_defaults();
        c.set_anonymous(true);
        c.set_webhook_authn(false);
        c.set_authz_mode("AlwaysAllow");
        c.readOnlyPort = Some(10255);
        c.evictionHard = Some(default_eviction_hard());
        c
    }

    fn set_anonymous(&mut self, v: bool) {
        let a = self.authentication.get_or_insert_with(Default::default);
        a.anonymous.get_or_insert_with(Default::default).enabled = Some(v);
    }

    fn set_webhook_authn(&mut self, v: bool) {
        let a = self.authentication.get_or_insert_with(Default::default);
        a.webhook.get_or_insert_with(Default::default).enabled = Some(v);
    }

    fn webhook_authn_mut(&mut self) -> &mut WebhookAuthentication {
        let a = self.authentication.get_or_insert_with(Default::default);
        a.webhook.get_or_insert_with(Default::default)
    }

    fn set_client_ca(&mut self, v: String) {
        let a = self.authentication.get_or_insert_with(Default::default);
        a.x509.get_or_insert_with(Default::default).clientCAFile = Some(v);
    }

    fn set_authz_mode(&mut self, v: &str) {
        self.authorization.get_or_insert_with(Default::default).mode = Some(v.to_string());
    }

    fn authz_webhook_mut(&mut self) -> &mut WebhookAuthorization {
        let a = self.authorization.get_or_insert_with(Default::default);
        a.webhook.get_or_insert_with(Default::default)
    }

    /// `authentication.anonymous.enabled` (false when unset, the v1beta1 default).
    pub fn anonymous_enabled(&self) -> bool {
        self.authentication
            .as_ref()
            .and_then(|a| a.anonymous.as_ref())
            .and_then(|a| a.enabled)
            .unwrap_or(false)
    }

    /// `authentication.webhook.enabled`.
    pub fn webhook_authn_enabled(&self) -> bool {
        self.authentication
            .as_ref()
            .and_then(|a| a.webhook.as_ref())
            .and_then(|a| a.enabled)
            .unwrap_or(true)
    }

    /// `authentication.x509.clientCAFile`, if not empty.
    pub fn client_ca_file(&self) -> Option<&str> {
        self.authentication
            .as_ref()
            .and_then(|a| a.x509.as_ref())
            .and_then(|a| a.clientCAFile.as_deref())
            .filter(|s| !s.is_empty())
    }

    /// `authorization.mode`.
    pub fn authorization_mode(&self) -> &str {
        self.authorization
            .as_ref()
            .and_then(|a| a.mode.as_deref())
            .unwrap_or("")
    }

    /// The JSON the kubelet would marshal (`/configz`'s `kubeletconfig`): unset fields left out.
    pub fn to_json(&self) -> Json {
        // Serializing plain data structs into serde_json::Value cannot fail (all keys are strings,
        // floats are finite or become null).
        let mut v = serde_json::to_value(self).unwrap_or(Json::Null);
        strip_nulls(&mut v);
        v
    }
}

fn strip_nulls(v: &mut Json) {
    match v {
        Json::Object(m) => {
            m.retain(|_, x| !x.is_null());
            for x in m.values_mut() {
                strip_nulls(x);
            }
        }
        Json::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding a configuration document
// ---------------------------------------------------------------------------------------------

/// A decoded document: the typed configuration, what it literally contained (for merging), and
/// the fields the strict decoder refused.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub config: KubeletConfiguration,
    /// The document as JSON (for a drop-in: the merge patch).
    pub raw: Json,
    /// Paths of unknown fields (`authentication.anonymous.enabeld`).
    pub unknown_fields: Vec<String>,
}

/// Decode one `KubeletConfiguration` document (YAML or JSON): a syntax error, a duplicated key,
/// a missing or wrong `kind`/`apiVersion`, a wrong type or an invalid duration is an error;
/// unknown fields are returned (the kubelet's lenient fallback).
pub fn decode(bytes: &[u8]) -> Result<Decoded, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("invalid UTF-8: {e}"))?;
    let doc: Yaml = serde_yaml::from_str(text).map_err(|e| format!("yaml: {e}"))?;
    let raw = yaml_to_json(&doc)?;
    let obj = match &raw {
        Json::Object(m) => m,
        Json::Null => return Err("Object 'Kind' is missing in 'null'".into()),
        other => {
            return Err(format!(
                "couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }}",
                json_kind(other)
            ))
        }
    };
    let kind = obj.get("kind").and_then(Json::as_str).unwrap_or("");
    let api_version = obj.get("apiVersion").and_then(Json::as_str).unwrap_or("");
    if kind.is_empty() {
        return Err(format!("Object 'Kind' is missing in '{raw}'"));
    }
    if kind != KIND || api_version != API_VERSION {
        return Err(format!(
            "no kind \"{kind}\" is registered for version \"{api_version}\" in scheme \"pkg/kubelet/apis/config/scheme/scheme.go:34\""
        ));
    }
    let config: KubeletConfiguration =
        serde_yaml::from_value(doc).map_err(|e| format!("decoding: {e}"))?;
    let mut unknown_fields = Vec::new();
    unknown(&raw, &config.to_json(), "", &mut unknown_fields);
    Ok(Decoded {
        config,
        raw,
        unknown_fields,
    })
}

fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "bool",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// YAML to JSON as sigs.k8s.io/yaml does it (keys become strings).
fn yaml_to_json(v: &Yaml) -> Result<Json, String> {
    Ok(match v {
        Yaml::Null => Json::Null,
        Yaml::Bool(b) => Json::Bool(*b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Json::from(i)
            } else if let Some(u) = n.as_u64() {
                Json::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Json::Number)
                    .ok_or_else(|| format!("yaml: {f} cannot be represented in JSON"))?
            }
        }
        Yaml::String(s) => Json::String(s.clone()),
        Yaml::Sequence(items) => {
            Json::Array(items.iter().map(yaml_to_json).collect::<Result<_, _>>()?)
        }
        Yaml::Mapping(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Bool(b) => b.to_string(),
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Null => "null".into(),
                    _ => return Err("yaml: a mapping key is not a scalar".into()),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Json::Object(out)
        }
        Yaml::Tagged(t) => yaml_to_json(&t.value)?,
    })
}

/// Keys present (and not null) in `input` that the typed decode did not keep.
fn unknown(input: &Json, typed: &Json, path: &str, out: &mut Vec<String>) {
    match (input, typed) {
        (Json::Object(i), Json::Object(t)) => {
            for (k, v) in i {
                if v.is_null() {
                    continue;
                }
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match t.get(k) {
                    Some(tv) => unknown(v, tv, &p, out),
                    None => out.push(p),
                }
            }
        }
        (Json::Array(i), Json::Array(t)) => {
            for (n, (a, b)) in i.iter().zip(t).enumerate() {
                unknown(a, b, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

/// RFC 7386 JSON merge patch (what `jsonpatch.MergePatch` does).
pub fn merge_patch(target: &mut Json, patch: &Json) {
    match patch {
        Json::Object(p) => {
            if !target.is_object() {
                *target = Json::Object(serde_json::Map::new());
            }
            if let Json::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Json::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------------------------

/// How a flag's value is parsed (pflag value types of the kubelet's flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int32,
    Int64,
    Float,
    Duration,
    Str,
    Ip,
    StrSlice,
    MapBool,
    MapStr,
    LangleMap,
    ColonMultimap,
    Taints,
    /// `--version[=raw]`.
    Version,
}

/// Flags of the kubelet that set `KubeletConfiguration` fields (all deprecated upstream, all
/// still honoured, and winning over the file).
fn config_flag_kind(name: &str) -> Option<Kind> {
    use Kind::*;
    Some(match name {
        "fail-swap-on"
        | "fail-cgroupv1"
        | "anonymous-auth"
        | "authentication-token-webhook"
        | "rotate-certificates"
        | "rotate-server-certificates"
        | "enable-debugging-handlers"
        | "contention-profiling"
        | "cgroups-per-qos"
        | "cpu-cfs-quota"
        | "serialize-image-pulls"
        | "protect-kernel-defaults"
        | "make-iptables-util-chains"
        | "enable-server"
        | "register-node"
        | "local-storage-capacity-isolation"
        | "seccomp-default"
        | "kernel-memcg-notification"
        | "runonce"
        | "enable-controller-attach-detach" => Bool,
        "port"
        | "read-only-port"
        | "registry-qps"
        | "registry-burst"
        | "event-qps"
        | "event-burst"
        | "healthz-port"
        | "oom-score-adj"
        | "image-gc-high-threshold"
        | "image-gc-low-threshold"
        | "max-pods"
        | "kube-api-qps"
        | "kube-api-burst"
        | "eviction-max-pod-grace-period"
        | "pods-per-core"
        | "iptables-masquerade-bit"
        | "iptables-drop-bit"
        | "container-log-max-files"
        | "node-status-max-images"
        | "max-parallel-image-pulls"
        | "node-lease-duration-seconds" => Int32,
        "pod-max-pids" | "max-open-files" => Int64,
        "sync-frequency"
        | "file-check-frequency"
        | "http-check-frequency"
        | "authentication-token-webhook-cache-ttl"
        | "authorization-webhook-cache-authorized-ttl"
        | "authorization-webhook-cache-unauthorized-ttl"
        | "streaming-connection-idle-timeout"
        | "node-status-update-frequency"
        | "minimum-image-ttl-duration"
        | "volume-stats-agg-period"
        | "cpu-manager-reconcile-period"
        | "runtime-request-timeout"
        | "cpu-cfs-quota-period"
        | "eviction-pressure-transition-period"
        | "image-maximum-gc-age" => Duration,
        "pod-manifest-path"
        | "manifest-url"
        | "client-ca-file"
        | "authorization-mode"
        | "tls-cert-file"
        | "tls-private-key-file"
        | "tls-min-version"
        | "cluster-domain"
        | "kubelet-cgroups"
        | "system-cgroups"
        | "cgroup-root"
        | "cgroup-driver"
        | "cpu-manager-policy"
        | "topology-manager-policy"
        | "topology-manager-scope"
        | "memory-manager-policy"
        | "hairpin-mode"
        | "pod-cidr"
        | "resolv-conf"
        | "kube-api-content-type"
        | "container-log-max-size"
        | "reserved-cpus"
        | "system-reserved-cgroup"
        | "kube-reserved-cgroup"
        | "volume-plugin-dir"
        | "provider-id"
        | "container-runtime-endpoint"
        | "image-service-endpoint"
        | "show-hidden-metrics-for-version"
        | "pod-logs-dir"
        | "logging-format"
        | "config-map-and-secret-change-detection-strategy" => Str,
        "address" | "healthz-bind-address" => Ip,
        "tls-cipher-suites"
        | "cluster-dns"
        | "enforce-node-allocatable"
        | "allowed-unsafe-sysctls"
        | "tls-curve-preferences" => StrSlice,
        "feature-gates" => MapBool,
        "cpu-manager-policy-options"
        | "topology-manager-policy-options"
        | "qos-reserved"
        | "system-reserved"
        | "kube-reserved"
        | "eviction-soft-grace-period"
        | "eviction-minimum-reclaim" => MapStr,
        "eviction-hard" | "eviction-soft" => LangleMap,
        "manifest-url-header" => ColonMultimap,
        "register-with-taints" => Taints,
        _ => return None,
    })
}

/// Flags that are not part of `KubeletConfiguration` (KubeletFlags, global flags).
fn other_flag_kind(name: &str) -> Option<Kind> {
    use Kind::*;
    Some(match name {
        "config"
        | "config-dir"
        | "kubeconfig"
        | "bootstrap-kubeconfig"
        | "hostname-override"
        | "node-ip"
        | "cert-dir"
        | "root-dir"
        | "cloud-provider"
        | "cloud-config"
        | "pod-infra-container-image"
        | "image-credential-provider-config"
        | "image-credential-provider-bin-dir"
        | "experimental-mounter-path"
        | "lock-file"
        | "seccomp-profile-root"
        | "vmodule"
        | "log-flush-frequency"
        | "log-json-info-buffer-size"
        | "log-text-info-buffer-size"
        | "windows-priorityclass" => Str,
        "help"
        | "really-crash-for-testing"
        | "exit-on-lock-contention"
        | "experimental-allocatable-ignore-eviction"
        | "log-json-split-stream"
        | "log-text-split-stream"
        | "windows-service" => Bool,
        "v" | "maximum-dead-containers-per-container" | "maximum-dead-containers" => Int32,
        "chaos-chance" => Float,
        "minimum-container-ttl-duration" => Duration,
        "node-labels" => MapStr,
        "version" => Version,
        _ => return None,
    })
}

fn flag_kind(name: &str) -> Option<Kind> {
    config_flag_kind(name).or_else(|| other_flag_kind(name))
}

/// Flags that are not configuration fields: the node's identity, where the configuration and
/// the credentials are.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletFlags {
    pub config: Option<String>,
    pub config_dir: Option<String>,
    pub kubeconfig: Option<String>,
    pub bootstrap_kubeconfig: Option<String>,
    pub hostname_override: Option<String>,
    pub node_ip: Option<String>,
    pub cert_dir: Option<String>,
    pub root_dir: Option<String>,
    pub node_labels: BTreeMap<String, String>,
    /// Every other non-configuration flag, last value.
    pub other: BTreeMap<String, String>,
    pub help: bool,
    pub version: bool,
}

/// One `--name=value` of the command line, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagSetting {
    pub name: String,
    pub value: String,
}

/// Parse the command line like pflag (ContinueOnError, WordSepNormalizeFunc), checking every
/// value's syntax. Errors read like the kubelet's (`unknown flag: --foo`).
pub fn parse_flags(args: &[String]) -> Result<Vec<FlagSetting>, String> {
    let mut out = Vec::new();
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
            let (name, val) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            if name.is_empty() || name.starts_with('-') || name.starts_with('=') {
                return Err(format!("bad flag syntax: {a}"));
            }
            let name = name.replace('_', "-");
            let kind = flag_kind(&name).ok_or_else(|| format!("unknown flag: --{name}"))?;
            let value = match val {
                Some(v) => v,
                None if matches!(kind, Kind::Bool) => "true".into(),
                None if matches!(kind, Kind::Version) => "true".into(),
                None => {
                    let Some(v) = args.get(i) else {
                        return Err(format!("flag needs an argument: --{name}"));
                    };
                    i += 1;
                    v.clone()
                }
            };
            check_value(kind, &name, &value)?;
            out.push(FlagSetting { name, value });
        } else if let Some(short) = a.strip_prefix('-').filter(|s| !s.is_empty()) {
            // Shorthands: -h (help), -v LEVEL.
            for (at, c) in short.char_indices() {
                match c {
                    'h' => out.push(FlagSetting {
                        name: "help".into(),
                        value: "true".into(),
                    }),
                    'v' => {
                        let rest = &short[at + 1..];
                        let value = if let Some(v) = rest.strip_prefix('=') {
                            v.to_string()
                        } else if !rest.is_empty() {
                            rest.to_string()
                        } else if let Some(v) = args.get(i) {
                            i += 1;
                            v.clone()
                        } else {
                            return Err("flag needs an argument: 'v' in -v".into());
                        };
                        check_value(Kind::Int32, "v", &value)?;
                        out.push(FlagSetting {
                            name: "v".into(),
                            value,
                        });
                        break;
                    }
                    other => return Err(format!("unknown shorthand flag: '{other}' in {a}")),
                }
            }
        } else {
            positional.push(a.clone());
        }
    }
    if let Some(first) = positional.first() {
        return Err(format!("unknown command {first}"));
    }
    Ok(out)
}

fn invalid_arg(value: &str, name: &str, why: impl fmt::Display) -> String {
    format!("invalid argument \"{value}\" for \"--{name}\" flag: {why}")
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing \"{s}\": invalid syntax"
        )),
    }
}

/// Go's `strconv.ParseInt(s, 0, bits)`.
pub fn parse_go_int(s: &str, bits: u32) -> Result<i64, String> {
    let syntax = || format!("strconv.ParseInt: parsing \"{s}\": invalid syntax");
    let range = || format!("strconv.ParseInt: parsing \"{s}\": value out of range");
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower.clone(), false)
    };
    // Underscores are allowed only with a base prefix, between digits.
    if digits.contains('_') && !prefixed {
        return Err(syntax());
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() {
        return Err(syntax());
    }
    let mag = u128::from_str_radix(&clean, radix).map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow => range(),
        _ => syntax(),
    })?;
    let max = 1u128 << (bits - 1);
    if (!neg && mag >= max) || (neg && mag > max) {
        return Err(range());
    }
    let v = mag as i128;
    Ok((if neg { -v } else { v }) as i64)
}

fn split_csv(v: &str) -> Vec<String> {
    if v.is_empty() {
        return Vec::new();
    }
    v.split(',').map(|s| s.trim().to_string()).collect()
}

fn parse_map(v: &str, sep: char) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    for item in v.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (k, val) = item
            .split_once(sep)
            .ok_or_else(|| format!("malformed pair, expect string{sep}string"))?;
        m.insert(k.trim().to_string(), val.trim().to_string());
    }
    Ok(m)
}

fn parse_map_bool(v: &str) -> Result<BTreeMap<String, bool>, String> {
    let mut m = BTreeMap::new();
    for (k, val) in parse_map(v, '=')? {
        let b =
            parse_go_bool(&val).map_err(|e| format!("invalid value of {k}: {val}, err: {e}"))?;
        m.insert(k, b);
    }
    Ok(m)
}

fn parse_taints(v: &str) -> Result<Vec<Taint>, String> {
    let mut out = Vec::new();
    for spec in v.split(',').filter(|s| !s.is_empty()) {
        let (kv, effect) = spec
            .rsplit_once(':')
            .ok_or_else(|| format!("invalid taint spec: {spec}"))?;
        let (key, value) = match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (kv.to_string(), None),
        };
        if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect) {
            return Err(format!(
                "invalid taint effect: {effect}, unsupported taint effect"
            ));
        }
        out.push(Taint {
            key,
            value,
            effect: effect.to_string(),
            timeAdded: None,
        });
    }
    Ok(out)
}

fn check_value(kind: Kind, name: &str, v: &str) -> Result<(), String> {
    let r = match kind {
        Kind::Bool => parse_go_bool(v).map(drop),
        Kind::Int32 => parse_go_int(v, 32).map(drop),
        Kind::Int64 => parse_go_int(v, 64).map(drop),
        Kind::Float => v
            .parse::<f64>()
            .map(drop)
            .map_err(|_| format!("strconv.ParseFloat: parsing \"{v}\": invalid syntax")),
        Kind::Duration => parse_go_duration(v).map(drop),
        Kind::Ip => {
            if v.parse::<std::net::IpAddr>().is_ok() {
                Ok(())
            } else {
                Err(format!("\"{v}\" is not a valid IP address"))
            }
        }
        Kind::MapBool => parse_map_bool(v).map(drop),
        Kind::MapStr => parse_map(v, '=').map(drop),
        Kind::LangleMap => parse_map(v, '<').map(drop),
        Kind::ColonMultimap => parse_map(v, ':').map(drop),
        Kind::Taints => parse_taints(v).map(drop),
        Kind::Str | Kind::StrSlice | Kind::Version => Ok(()),
    };
    r.map_err(|e| invalid_arg(v, name, e))
}

/// Apply the command line to `cfg` and `flags`, in order. Within one application a list or map
/// flag replaces the value on its first occurrence and adds to it on the next ones (pflag's
/// StringSlice and component-base's map flags).
fn apply_flags(
    settings: &[FlagSetting],
    cfg: &mut KubeletConfiguration,
    flags: &mut KubeletFlags,
) -> Result<(), String> {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for s in settings {
        let first = seen.insert(s.name.as_str());
        apply_one(cfg, flags, &s.name, &s.value, first)
            .map_err(|e| invalid_arg(&s.value, &s.name, e))?;
    }
    Ok(())
}

fn apply_one(
    c: &mut KubeletConfiguration,
    f: &mut KubeletFlags,
    name: &str,
    v: &str,
    first: bool,
) -> Result<(), String> {
    let b = || parse_go_bool(v);
    let i32v = || parse_go_int(v, 32).map(|x| x as i32);
    let i64v = || parse_go_int(v, 64);
    let d = || GoDuration::parse(v);
    let s = || Some(v.to_string());
    fn list(dst: &mut Option<Vec<String>>, v: &str, first: bool) {
        let items = split_csv(v);
        match dst {
            Some(l) if !first => l.extend(items),
            _ => *dst = Some(items),
        }
    }
    fn map(
        dst: &mut Option<BTreeMap<String, String>>,
        items: BTreeMap<String, String>,
        first: bool,
    ) {
        match dst {
            Some(m) if !first => m.extend(items),
            _ => *dst = Some(items),
        }
    }
    match name {
        // Not configuration.
        "config" => f.config = s(),
        "config-dir" => f.config_dir = s(),
        "kubeconfig" => f.kubeconfig = s(),
        "bootstrap-kubeconfig" => f.bootstrap_kubeconfig = s(),
        "hostname-override" => f.hostname_override = s(),
        "node-ip" => f.node_ip = s(),
        "cert-dir" => f.cert_dir = s(),
        "root-dir" => f.root_dir = s(),
        "node-labels" => {
            if first {
                f.node_labels.clear();
            }
            f.node_labels.extend(parse_map(v, '=')?);
        }
        "help" => f.help = b()?,
        "version" => f.version = v != "false",
        // Configuration.
        "fail-swap-on" => c.failSwapOn = Some(b()?),
        "fail-cgroupv1" => c.failCgroupV1 = Some(b()?),
        "pod-manifest-path" => c.staticPodPath = s(),
        "pod-logs-dir" => c.podLogsDir = s(),
        "sync-frequency" => c.syncFrequency = Some(d()?),
        "file-check-frequency" => c.fileCheckFrequency = Some(d()?),
        "http-check-frequency" => c.httpCheckFrequency = Some(d()?),
        "manifest-url" => c.staticPodURL = s(),
        "manifest-url-header" => {
            let mut m = if first {
                BTreeMap::new()
            } else {
                c.staticPodURLHeader.take().unwrap_or_default()
            };
            for (k, val) in parse_map(v, ':')? {
                m.entry(k).or_insert_with(Vec::new).push(val);
            }
            c.staticPodURLHeader = Some(m);
        }
        "address" => c.address = s(),
        "port" => c.port = Some(i32v()?),
        "read-only-port" => c.readOnlyPort = Some(i32v()?),
        "anonymous-auth" => c.set_anonymous(b()?),
        "authentication-token-webhook" => c.set_webhook_authn(b()?),
        "authentication-token-webhook-cache-ttl" => c.webhook_authn_mut().cacheTTL = Some(d()?),
        "client-ca-file" => c.set_client_ca(v.to_string()),
        "authorization-mode" => c.set_authz_mode(v),
        "authorization-webhook-cache-authorized-ttl" => {
            c.authz_webhook_mut().cacheAuthorizedTTL = Some(d()?)
        }
        "authorization-webhook-cache-unauthorized-ttl" => {
            c.authz_webhook_mut().cacheUnauthorizedTTL = Some(d()?)
        }
        "tls-cert-file" => c.tlsCertFile = s(),
        "tls-private-key-file" => c.tlsPrivateKeyFile = s(),
        "tls-cipher-suites" => list(&mut c.tlsCipherSuites, v, first),
        "tls-curve-preferences" => {
            let mut l: Option<Vec<String>> = None;
            list(&mut l, v, true);
            let ids = l
                .unwrap_or_default()
                .iter()
                .map(|x| parse_go_int(x, 32).map(|n| n as i32))
                .collect::<Result<Vec<_>, _>>()?;
            match &mut c.tlsCurvePreferences {
                Some(cur) if !first => cur.extend(ids),
                dst => *dst = Some(ids),
            }
        }
        "tls-min-version" => c.tlsMinVersion = s(),
        "rotate-certificates" => c.rotateCertificates = Some(b()?),
        "rotate-server-certificates" => c.serverTLSBootstrap = Some(b()?),
        "registry-qps" => c.registryPullQPS = Some(i32v()?),
        "registry-burst" => c.registryBurst = Some(i32v()?),
        "event-qps" => c.eventRecordQPS = Some(i32v()?),
        "event-burst" => c.eventBurst = Some(i32v()?),
        "enable-debugging-handlers" => c.enableDebuggingHandlers = Some(b()?),
        "contention-profiling" => c.enableContentionProfiling = Some(b()?),
        "healthz-port" => c.healthzPort = Some(i32v()?),
        "healthz-bind-address" => c.healthzBindAddress = s(),
        "oom-score-adj" => c.oomScoreAdj = Some(i32v()?),
        "cluster-domain" => c.clusterDomain = s(),
        "cluster-dns" => list(&mut c.clusterDNS, v, first),
        "streaming-connection-idle-timeout" => c.streamingConnectionIdleTimeout = Some(d()?),
        "node-status-update-frequency" => c.nodeStatusUpdateFrequency = Some(d()?),
        "node-lease-duration-seconds" => c.nodeLeaseDurationSeconds = Some(i32v()?),
        "minimum-image-ttl-duration" => c.imageMinimumGCAge = Some(d()?),
        "image-maximum-gc-age" => c.imageMaximumGCAge = Some(d()?),
        "image-gc-high-threshold" => c.imageGCHighThresholdPercent = Some(i32v()?),
        "image-gc-low-threshold" => c.imageGCLowThresholdPercent = Some(i32v()?),
        "volume-stats-agg-period" => c.volumeStatsAggPeriod = Some(d()?),
        "feature-gates" => {
            let m = parse_map_bool(v)?;
            match &mut c.featureGates {
                Some(cur) if !first => cur.extend(m),
                dst => *dst = Some(m),
            }
        }
        "kubelet-cgroups" => c.kubeletCgroups = s(),
        "system-cgroups" => c.systemCgroups = s(),
        "cgroup-root" => c.cgroupRoot = s(),
        "cgroups-per-qos" => c.cgroupsPerQOS = Some(b()?),
        "cgroup-driver" => c.cgroupDriver = s(),
        "cpu-manager-policy" => c.cpuManagerPolicy = s(),
        "cpu-manager-policy-options" => {
            map(&mut c.cpuManagerPolicyOptions, parse_map(v, '=')?, first)
        }
        "cpu-manager-reconcile-period" => c.cpuManagerReconcilePeriod = Some(d()?),
        "memory-manager-policy" => c.memoryManagerPolicy = s(),
        "topology-manager-policy" => c.topologyManagerPolicy = s(),
        "topology-manager-scope" => c.topologyManagerScope = s(),
        "topology-manager-policy-options" => map(
            &mut c.topologyManagerPolicyOptions,
            parse_map(v, '=')?,
            first,
        ),
        "qos-reserved" => map(&mut c.qosReserved, parse_map(v, '=')?, first),
        "runtime-request-timeout" => c.runtimeRequestTimeout = Some(d()?),
        "hairpin-mode" => c.hairpinMode = s(),
        "max-pods" => c.maxPods = Some(i32v()?),
        "pod-cidr" => c.podCIDR = s(),
        "pod-max-pids" => c.podPidsLimit = Some(i64v()?),
        "resolv-conf" => c.resolvConf = s(),
        "runonce" => c.runOnce = Some(b()?),
        "cpu-cfs-quota" => c.cpuCFSQuota = Some(b()?),
        "cpu-cfs-quota-period" => c.cpuCFSQuotaPeriod = Some(d()?),
        "node-status-max-images" => c.nodeStatusMaxImages = Some(i32v()?),
        "max-open-files" => c.maxOpenFiles = Some(i64v()?),
        "kube-api-content-type" => c.contentType = s(),
        "kube-api-qps" => c.kubeAPIQPS = Some(i32v()?),
        "kube-api-burst" => c.kubeAPIBurst = Some(i32v()?),
        "serialize-image-pulls" => c.serializeImagePulls = Some(b()?),
        "max-parallel-image-pulls" => c.maxParallelImagePulls = Some(i32v()?),
        "eviction-hard" => map(&mut c.evictionHard, parse_map(v, '<')?, first),
        "eviction-soft" => map(&mut c.evictionSoft, parse_map(v, '<')?, first),
        "eviction-soft-grace-period" => {
            map(&mut c.evictionSoftGracePeriod, parse_map(v, '=')?, first)
        }
        "eviction-pressure-transition-period" => c.evictionPressureTransitionPeriod = Some(d()?),
        "eviction-max-pod-grace-period" => c.evictionMaxPodGracePeriod = Some(i32v()?),
        "eviction-minimum-reclaim" => map(&mut c.evictionMinimumReclaim, parse_map(v, '=')?, first),
        "pods-per-core" => c.podsPerCore = Some(i32v()?),
        "enable-controller-attach-detach" => c.enableControllerAttachDetach = Some(b()?),
        "protect-kernel-defaults" => c.protectKernelDefaults = Some(b()?),
        "make-iptables-util-chains" => c.makeIPTablesUtilChains = Some(b()?),
        "iptables-masquerade-bit" => c.iptablesMasqueradeBit = Some(i32v()?),
        "iptables-drop-bit" => c.iptablesDropBit = Some(i32v()?),
        "container-log-max-size" => c.containerLogMaxSize = s(),
        "container-log-max-files" => c.containerLogMaxFiles = Some(i32v()?),
        "config-map-and-secret-change-detection-strategy" => {
            c.configMapAndSecretChangeDetectionStrategy = s()
        }
        "system-reserved" => map(&mut c.systemReserved, parse_map(v, '=')?, first),
        "kube-reserved" => map(&mut c.kubeReserved, parse_map(v, '=')?, first),
        "reserved-cpus" => c.reservedSystemCPUs = s(),
        "show-hidden-metrics-for-version" => c.showHiddenMetricsForVersion = s(),
        "system-reserved-cgroup" => c.systemReservedCgroup = s(),
        "kube-reserved-cgroup" => c.kubeReservedCgroup = s(),
        "enforce-node-allocatable" => list(&mut c.enforceNodeAllocatable, v, first),
        "allowed-unsafe-sysctls" => list(&mut c.allowedUnsafeSysctls, v, first),
        "volume-plugin-dir" => c.volumePluginDir = s(),
        "provider-id" => c.providerID = s(),
        "kernel-memcg-notification" => c.kernelMemcgNotification = Some(b()?),
        "local-storage-capacity-isolation" => c.localStorageCapacityIsolation = Some(b()?),
        "container-runtime-endpoint" => c.containerRuntimeEndpoint = s(),
        "image-service-endpoint" => c.imageServiceEndpoint = s(),
        "enable-server" => c.enableServer = Some(b()?),
        "register-node" => c.registerNode = Some(b()?),
        "register-with-taints" => {
            let t = parse_taints(v)?;
            match &mut c.registerWithTaints {
                Some(cur) if !first => cur.extend(t),
                dst => *dst = Some(t),
            }
        }
        "seccomp-default" => c.seccompDefault = Some(b()?),
        "logging-format" => c.logging.get_or_insert_with(Default::default).format = s(),
        "v" => {
            let n = parse_go_int(v, 32)?;
            c.logging.get_or_insert_with(Default::default).verbosity =
                Some(u32::try_from(n).map_err(|_| "negative verbosity".to_string())?);
        }
        other => {
            f.other.insert(other.to_string(), v.to_string());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// TLS cipher suite names the kubelet accepts (Go's `tls.CipherSuites()` and
/// `tls.InsecureCipherSuites()`, plus component-base's two legacy names).
pub const TLS_CIPHER_SUITES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
];

/// The subset Go calls insecure (the kubelet logs a warning for each).
const INSECURE_CIPHER_SUITES: &[&str] = &[
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
];

fn gate(c: &KubeletConfiguration, name: &str, default: bool) -> bool {
    c.featureGates
        .as_ref()
        .and_then(|g| g.get(name).copied())
        .unwrap_or(default)
}

fn valid_port(p: i32) -> bool {
    (1..=65535).contains(&p)
}

/// `ValidateKubeletConfiguration` for what is modelled here: every message the kubelet would
/// print, in its order.
pub fn validate(c: &KubeletConfiguration) -> Vec<String> {
    let mut e = Vec::new();
    let mut err = |s: String| e.push(format!("invalid configuration: {s}"));
    let i = |v: Option<i32>| v.unwrap_or(0);
    if i(c.nodeLeaseDurationSeconds) <= 0 {
        err("nodeLeaseDurationSeconds must be greater than 0".into());
    }
    if !unset_str(&c.systemCgroups) && unset_str(&c.cgroupRoot) {
        err("systemCgroups (--system-cgroups) was specified and cgroupRoot (--cgroup-root) was not specified".into());
    }
    if i(c.eventBurst) < 0 {
        err(format!(
            "eventBurst (--event-burst) {} must not be a negative number",
            i(c.eventBurst)
        ));
    }
    if i(c.eventRecordQPS) < 0 {
        err(format!(
            "eventRecordQPS (--event-qps) {} must not be a negative number",
            i(c.eventRecordQPS)
        ));
    }
    let hp = i(c.healthzPort);
    if hp != 0 && !valid_port(hp) {
        err(format!(
            "healthzPort (--healthz-port) {hp} must be between 1 and 65535, inclusive"
        ));
    }
    let quota_period = c.cpuCFSQuotaPeriod.unwrap_or(GoDuration(100_000_000));
    if !gate(c, "CustomCPUCFSQuotaPeriod", false) && quota_period != GoDuration(100_000_000) {
        err(format!("cpuCFSQuotaPeriod (--cpu-cfs-quota-period) {quota_period} requires feature gate CustomCPUCFSQuotaPeriod"));
    }
    let hi = i(c.imageGCHighThresholdPercent);
    let lo = i(c.imageGCLowThresholdPercent);
    if !(0..=100).contains(&hi) {
        err(format!("imageGCHighThresholdPercent (--image-gc-high-threshold) {hi} must be between 0 and 100, inclusive"));
    }
    if !(0..=100).contains(&lo) {
        err(format!("imageGCLowThresholdPercent (--image-gc-low-threshold) {lo} must be between 0 and 100, inclusive"));
    }
    if lo >= hi {
        err(format!("imageGCLowThresholdPercent (--image-gc-low-threshold) {lo} must be less than imageGCHighThresholdPercent (--image-gc-high-threshold) {hi}"));
    }
    let min_age = c.imageMinimumGCAge.unwrap_or_default();
    let max_age = c.imageMaximumGCAge.unwrap_or_default();
    if min_age.0 < 0 {
        err(format!("imageMinimumGCAge {min_age} must not be negative"));
    }
    if max_age.0 < 0 {
        err(format!("imageMaximumGCAge {max_age} must not be negative"));
    }
    if max_age.0 > 0 && max_age <= min_age {
        err(format!(
            "imageMaximumGCAge {max_age} must be greater than imageMinimumGCAge {min_age}"
        ));
    }
    for (name, flag, v) in [
        (
            "iptablesDropBit",
            "--iptables-drop-bit",
            i(c.iptablesDropBit),
        ),
        (
            "iptablesMasqueradeBit",
            "--iptables-masquerade-bit",
            i(c.iptablesMasqueradeBit),
        ),
    ] {
        if !(0..=31).contains(&v) {
            err(format!(
                "{name} ({flag}) {v} must be between 0 and 31, inclusive"
            ));
        }
    }
    for (name, flag, v) in [
        ("kubeAPIBurst", "--kube-api-burst", i(c.kubeAPIBurst)),
        ("kubeAPIQPS", "--kube-api-qps", i(c.kubeAPIQPS)),
    ] {
        if v < 0 {
            err(format!("{name} ({flag}) {v} must not be a negative number"));
        }
    }
    if i(c.nodeStatusMaxImages) < -1 {
        err(format!(
            "nodeStatusMaxImages (--node-status-max-images) {} must be -1 or greater",
            i(c.nodeStatusMaxImages)
        ));
    }
    if c.maxOpenFiles.unwrap_or(0) < 0 {
        err(format!(
            "maxOpenFiles (--max-open-files) {} must not be a negative number",
            c.maxOpenFiles.unwrap_or(0)
        ));
    }
    if i(c.maxPods) < 0 {
        err(format!(
            "maxPods (--max-pods) {} must not be a negative number",
            i(c.maxPods)
        ));
    }
    let oom = i(c.oomScoreAdj);
    if !(-1000..=1000).contains(&oom) {
        err(format!(
            "oomScoreAdj (--oom-score-adj) {oom} must be between -1000 and 1000, inclusive"
        ));
    }
    if i(c.podsPerCore) < 0 {
        err(format!(
            "podsPerCore (--pods-per-core) {} must not be a negative number",
            i(c.podsPerCore)
        ));
    }
    if !valid_port(i(c.port)) {
        err(format!(
            "port (--port) {} must be between 1 and 65535, inclusive",
            i(c.port)
        ));
    }
    let rop = i(c.readOnlyPort);
    if rop != 0 && !valid_port(rop) {
        err(format!(
            "readOnlyPort (--read-only-port) {rop} must be between 0 and 65535, inclusive"
        ));
    }
    if i(c.registryBurst) < 0 {
        err(format!(
            "registryBurst (--registry-burst) {} must not be a negative number",
            i(c.registryBurst)
        ));
    }
    if i(c.registryPullQPS) < 0 {
        err(format!(
            "registryPullQPS (--registry-qps) {} must not be a negative number",
            i(c.registryPullQPS)
        ));
    }
    if let Some(n) = c.maxParallelImagePulls {
        if n < 1 {
            err(format!(
                "maxParallelImagePulls {n} must be a positive number"
            ));
        }
        if c.serializeImagePulls.unwrap_or(true) && n > 1 {
            err("maxParallelImagePulls cannot be larger than 1 unless SerializeImagePulls (--serialize-image-pulls) is set to false".into());
        }
    }
    if c.serverTLSBootstrap.unwrap_or(false) && !gate(c, "RotateKubeletServerCertificate", true) {
        err("serverTLSBootstrap true requires feature gate RotateKubeletServerCertificate".into());
    }
    if c.runOnce.unwrap_or(false) {
        err(
            "runOnce (--runOnce) true, Runonce mode has been deprecated and should not be set"
                .into(),
        );
    }
    for t in c.registerWithTaints.iter().flatten() {
        if t.key.is_empty()
            || !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&t.effect.as_str())
        {
            e.push(format!("invalid taint: {}:{}", t.key, t.effect));
        }
        if t.timeAdded.is_some() {
            e.push("invalid configuration: taint.TimeAdded is not nil".into());
        }
    }
    let mut err = |s: String| e.push(format!("invalid configuration: {s}"));
    let tmp = c.topologyManagerPolicy.as_deref().unwrap_or("");
    if !["none", "best-effort", "restricted", "single-numa-node"].contains(&tmp) {
        err(format!("topologyManagerPolicy (--topology-manager-policy) \"{tmp}\" must be one of: [\"none\" \"best-effort\" \"restricted\" \"single-numa-node\"]"));
    }
    let tms = c.topologyManagerScope.as_deref().unwrap_or("");
    if !["container", "pod"].contains(&tms) {
        err(format!("topologyManagerScope (--topology-manager-scope) \"{tms}\" must be one of: \"container\", or \"pod\""));
    }
    let sgp = c.shutdownGracePeriod.unwrap_or_default();
    let sgpc = c.shutdownGracePeriodCriticalPods.unwrap_or_default();
    if sgpc > sgp {
        err(format!(
            "shutdownGracePeriodCriticalPods {sgpc} must be <= shutdownGracePeriod {sgp}"
        ));
    }
    for (name, v) in [
        ("shutdownGracePeriod", sgp),
        ("shutdownGracePeriodCriticalPods", sgpc),
    ] {
        if v.0 < 0 || (v.0 > 0 && v.0 < 1_000_000_000) {
            err(format!(
                "{name} {v} must be either zero or otherwise >= 1 sec"
            ));
        }
    }
    if !c
        .shutdownGracePeriodByPodPriority
        .as_deref()
        .unwrap_or_default()
        .is_empty()
        && (sgp.0 > 0 || sgpc.0 > 0)
    {
        err("Cannot specify both shutdownGracePeriodByPodPriority and shutdownGracePeriod at the same time".into());
    }
    let swap = c
        .memorySwap
        .as_ref()
        .and_then(|m| m.swapBehavior.as_deref())
        .unwrap_or("");
    if !["", "NoSwap", "LimitedSwap"].contains(&swap) {
        err(format!("memorySwap.swapBehavior \"{swap}\" must be one of: \"\", \"LimitedSwap\" or \"NoSwap\""));
    }
    let enforce = c.enforceNodeAllocatable.as_deref().unwrap_or_default();
    let mut uniq = BTreeSet::new();
    for val in enforce {
        if !uniq.insert(val.as_str()) {
            err(format!("duplicated enforcements \"{val}\" in enforceNodeAllocatable (--enforce-node-allocatable)"));
            continue;
        }
        match val.as_str() {
            "pods" => {}
            "system-reserved" | "system-reserved-compressible" => {
                if unset_str(&c.systemReservedCgroup) {
                    err("systemReservedCgroup (--system-reserved-cgroup) must be specified when \"system-reserved\" or \"system-reserved-compressible\" included in enforceNodeAllocatable (--enforce-node-allocatable)".into());
                }
            }
            "kube-reserved" | "kube-reserved-compressible" => {
                if unset_str(&c.kubeReservedCgroup) {
                    err("kubeReservedCgroup (--kube-reserved-cgroup) must be specified when \"kube-reserved\" or \"kube-reserved-compressible\" included in enforceNodeAllocatable (--enforce-node-allocatable)".into());
                }
            }
            "none" => {
                if enforce.len() > 1 {
                    err("enforceNodeAllocatable (--enforce-node-allocatable) may not contain additional enforcements when \"none\" is specified".into());
                }
                continue;
            }
            other => {
                err(format!("option \"{other}\" specified for enforceNodeAllocatable (--enforce-node-allocatable). Valid options are \"pods\", \"system-reserved\", \"system-reserved-compressible\", \"kube-reserved\", \"kube-reserved-compressible\" or \"none\""));
                continue;
            }
        }
        if !c.cgroupsPerQOS.unwrap_or(true) {
            err(format!("cgroupsPerQOS (--cgroups-per-qos) must be set to true when \"{val}\" contained in enforceNodeAllocatable (--enforce-node-allocatable)"));
        }
    }
    let hm = c.hairpinMode.as_deref().unwrap_or("");
    if !["none", "hairpin-veth", "promiscuous-bridge"].contains(&hm) {
        err(format!("option \"{hm}\" specified for hairpinMode (--hairpin-mode). Valid options are \"none\", \"hairpin-veth\" or \"promiscuous-bridge\""));
    }
    let format = c
        .logging
        .as_ref()
        .and_then(|l| l.format.as_deref())
        .unwrap_or("text");
    if !["text", "json"].contains(&format) {
        e.push(format!(
            "logging.format: Unsupported value: \"{format}\": supported values: \"text\", \"json\""
        ));
    }
    let mut err = |s: String| e.push(format!("invalid configuration: {s}"));
    if let Some(f) = c.memoryThrottlingFactor {
        if f <= 0.0 || f > 1.0 {
            err(format!(
                "memoryThrottlingFactor {f} must be greater than 0 and less than or equal to 1.0"
            ));
        }
    }
    let mrp = c.memoryReservationPolicy.as_deref().unwrap_or("None");
    if !["None", "TieredReservation"].contains(&mrp) {
        err(format!("option \"{mrp}\" specified for memoryReservationPolicy. Valid options are \"None\" or \"TieredReservation\""));
    }
    if unset_str(&c.containerRuntimeEndpoint) {
        err("the containerRuntimeEndpoint was not specified or empty".into());
    }
    if c.enableSystemLogQuery.unwrap_or(false) && !c.enableSystemLogHandler.unwrap_or(true) {
        err("enableSystemLogHandler is required for enableSystemLogQuery".into());
    }
    if i(c.containerLogMaxWorkers) < 1 {
        err("containerLogMaxWorkers must be greater than or equal to 1".into());
    }
    if c.containerLogMonitorInterval.unwrap_or_default().0 < 3_000_000_000 {
        err("containerLogMonitorInterval must be a positive time duration greater than or equal to 3s".into());
    }
    if i(c.containerLogMaxFiles) <= 1 {
        err("containerLogMaxFiles must be greater than 1".into());
    }
    let pld = c.podLogsDir.as_deref().unwrap_or("");
    if pld.is_empty() {
        err("podLogsDir was not specified".into());
    }
    if !pld.starts_with('/') {
        err(format!("pod logs path \"{pld}\" must be absolute path"));
    }
    let clean = Path::new(pld)
        .components()
        .collect::<PathBuf>()
        .to_string_lossy()
        .into_owned();
    if !pld.is_empty() && (clean != pld || pld.contains("/./") || pld.contains("/../")) {
        err(format!("pod logs path \"{pld}\" must be normalized"));
    }
    e
}

/// What `InitializeTLS` checks: every cipher suite name known, the minimum version known.
/// Returns the warnings it logs (insecure ciphers) or the error that stops the kubelet.
pub fn check_tls(c: &KubeletConfiguration) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    for s in c.tlsCipherSuites.iter().flatten() {
        if !TLS_CIPHER_SUITES.contains(&s.as_str()) {
            return Err(format!("Cipher suite {s} not supported or doesn't exist"));
        }
        if INSECURE_CIPHER_SUITES.contains(&s.as_str()) {
            warnings.push(format!(
                "\"Use of insecure cipher detected.\" cipher=\"{s}\""
            ));
        }
    }
    let v = c.tlsMinVersion.as_deref().unwrap_or("");
    if !v.is_empty()
        && ![
            "VersionTLS10",
            "VersionTLS11",
            "VersionTLS12",
            "VersionTLS13",
        ]
        .contains(&v)
    {
        return Err(format!("unknown tls version \"{v}\""));
    }
    Ok(warnings)
}

/// What `BuildAuth` checks: the authorization mode, and that webhook authentication and
/// authorization have an API client (`--kubeconfig`, i.e. not standalone mode).
pub fn check_auth(c: &KubeletConfiguration, have_client: bool) -> Result<(), String> {
    if c.webhook_authn_enabled() && !have_client {
        return Err("no client provided, cannot use webhook authentication".into());
    }
    match c.authorization_mode() {
        "AlwaysAllow" => Ok(()),
        "Webhook" if have_client => Ok(()),
        "Webhook" => Err("no client provided, cannot use webhook authorization".into()),
        "" => Err("no authorization mode specified".into()),
        other => Err(format!("unknown authorization mode {other}")),
    }
}

// ---------------------------------------------------------------------------------------------
// The whole pipeline
// ---------------------------------------------------------------------------------------------

/// Why the kubelet refuses to start, with the message it would print after `"command failed"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to parse kubelet flag: {0}")]
    Flags(String),
    #[error("failed to load kubelet config file, path: {path}, error: {message}")]
    File { path: String, message: String },
    #[error("failed to merge kubelet configs: {0}")]
    DropIn(String),
    #[error("failed to precedence kubeletConfigFlag: {0}")]
    Precedence(String),
    #[error("failed to validate kubelet configuration, error: {}, path: {path}", fmt_aggregate(.errors))]
    Invalid { errors: Vec<String>, path: String },
    #[error("failed to construct kubelet dependencies: {0}")]
    Tls(String),
    #[error("failed to run Kubelet: {0}")]
    Run(String),
}

fn fmt_aggregate(errs: &[String]) -> String {
    if errs.len() == 1 {
        errs[0].clone()
    } else {
        format!("[{}]", errs.join(", "))
    }
}

/// The outcome of loading: the effective configuration and what else the kubelet knows.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: KubeletConfiguration,
    pub flags: KubeletFlags,
    pub settings: Vec<FlagSetting>,
    /// Warnings the kubelet logs (lenient decoding, insecure ciphers, skipped drop-ins).
    pub warnings: Vec<String>,
    /// Drop-in files applied, in order (host paths as found).
    pub dropins: Vec<PathBuf>,
}

/// Load the configuration from the command line `args` (without `argv[0]`). `resolve` maps a
/// host path read from a flag to the file to open (the simulated root). Help and version
/// requests are reported through `flags.help`/`flags.version` (nothing else is done).
pub fn load(args: &[String], resolve: &dyn Fn(&str) -> PathBuf) -> Result<Loaded, ConfigError> {
    let settings = parse_flags(args).map_err(ConfigError::Flags)?;
    let mut flags = KubeletFlags::default();
    let mut config = KubeletConfiguration::legacy_flag_defaults();
    apply_flags(&settings, &mut config, &mut flags).map_err(ConfigError::Flags)?;
    let mut warnings = Vec::new();
    let mut dropins = Vec::new();
    if flags.help || flags.version {
        return Ok(Loaded {
            config,
            flags,
            settings,
            warnings,
            dropins,
        });
    }
    if let Some(file) = flags.config.clone().filter(|f| !f.is_empty()) {
        let fail = |message: String| ConfigError::File {
            path: file.clone(),
            message: format!("failed to load Kubelet config file {file}, error {message}"),
        };
        let bytes = std::fs::read(resolve(&file)).map_err(|e| {
            fail(format!(
                "failed to read kubelet config file \"{file}\", error: {}",
                go_io_error(&file, "open", &e)
            ))
        })?;
        let d = decode(&bytes).map_err(|e| {
            fail(format!(
                "failed to decode kubelet config file \"{file}\", error: {e}"
            ))
        })?;
        if !d.unknown_fields.is_empty() {
            warnings.push(lenient_warning(&file, &d.unknown_fields));
        }
        config = d.config;
        config.set_defaults();
        if config.evictionHard.is_none() {
            config.evictionHard = Some(default_eviction_hard());
        } else if config.mergeDefaultEvictionSettings == Some(true) {
            let hard = config.evictionHard.get_or_insert_with(BTreeMap::new);
            for (k, v) in default_eviction_hard() {
                hard.entry(k).or_insert(v);
            }
        }
    }
    if let Some(dir) = flags.config_dir.clone().filter(|d| !d.is_empty()) {
        let mut files = Vec::new();
        walk_dir(&resolve(&dir), &mut files).map_err(|e| {
            ConfigError::DropIn(format!(
                "failed to walk through kubelet dropin directory \"{dir}\": {}",
                go_io_error(&dir, "lstat", &e)
            ))
        })?;
        let mut merged = config.to_json();
        for path in files {
            if path.extension().and_then(|e| e.to_str()) != Some("conf") {
                warnings.push(format!(
                    "\"Skipped file in drop-in directory (does not have .conf extension)\" file=\"{}\"",
                    path.display()
                ));
                continue;
            }
            let shown = path.display().to_string();
            let fail = |m: String| {
                ConfigError::DropIn(format!(
                    "failed to walk through kubelet dropin directory \"{dir}\": failed to load kubelet dropin file, path: {shown}, error: {m}"
                ))
            };
            let bytes = std::fs::read(&path).map_err(|e| fail(go_io_error(&shown, "open", &e)))?;
            let d = decode(&bytes).map_err(|e| {
                if e.starts_with("Object 'Kind' is missing") {
                    fail("no apiVersion/kind".into())
                } else {
                    fail(e)
                }
            })?;
            if !d.unknown_fields.is_empty() {
                warnings.push(lenient_warning(&shown, &d.unknown_fields));
            }
            merge_patch(&mut merged, &d.raw);
            dropins.push(path);
        }
        let mut c: KubeletConfiguration = serde_json::from_value(merged).map_err(|e| {
            ConfigError::DropIn(format!(
                "failed to unmarshal merged JSON into kubelet configuration: {e}"
            ))
        })?;
        c.set_defaults();
        config = c;
    }
    if flags.config.as_deref().is_some_and(|s| !s.is_empty())
        || flags.config_dir.as_deref().is_some_and(|s| !s.is_empty())
    {
        let original = config.featureGates.clone();
        let mut scratch = KubeletFlags::default();
        apply_flags(&settings, &mut config, &mut scratch).map_err(ConfigError::Precedence)?;
        if let Some(orig) = original {
            let gates = config.featureGates.get_or_insert_with(BTreeMap::new);
            for (k, v) in orig {
                gates.entry(k).or_insert(v);
            }
        }
    }
    let errors = validate(&config);
    if !errors.is_empty() {
        return Err(ConfigError::Invalid {
            errors,
            path: "&TypeMeta{Kind:,APIVersion:,}".into(),
        });
    }
    warnings.extend(check_tls(&config).map_err(ConfigError::Tls)?);
    Ok(Loaded {
        config,
        flags,
        settings,
        warnings,
        dropins,
    })
}

fn lenient_warning(file: &str, unknown: &[String]) -> String {
    let fields: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \\\"{f}\\\""))
        .collect();
    format!(
        "\"using lenient decoding as strict decoding failed\" path=\"{file}\" err=\"strict decoding error: {}\"",
        fields.join(", ")
    )
}

/// `filepath.WalkDir` order: lexical within each directory, descending into directories where
/// they sort.
fn walk_dir(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        if e.file_type()?.is_dir() {
            walk_dir(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// An I/O error as Go prints it: `open /x: no such file or directory`.
pub fn go_io_error(path: &str, op: &str, e: &std::io::Error) -> String {
    let msg = match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_lowercase(),
        None => e.to_string(),
    };
    format!("{op} {path}: {msg}")
}

// ---------------------------------------------------------------------------------------------
// Kernel tunables (protectKernelDefaults)
// ---------------------------------------------------------------------------------------------

/// The sysctls the kubelet's container manager requires with `protectKernelDefaults: true`
/// (pkg/kubelet/cm/container_manager_linux.go, setupKernelTunables), and their values.
pub const KERNEL_TUNABLES: &[(&str, i64)] = &[
    ("vm/overcommit_memory", 1),
    ("vm/panic_on_oom", 0),
    ("kernel/panic", 10),
    ("kernel/panic_on_oops", 1),
    ("kernel/keys/root_maxkeys", 1_000_000),
    ("kernel/keys/root_maxbytes", 25_000_000),
];

/// With `protectKernelDefaults`, the kubelet refuses to start when a tunable differs. `read`
/// returns a sysctl's current value (`vm/overcommit_memory`).
pub fn check_kernel_tunables(
    c: &KubeletConfiguration,
    read: &dyn Fn(&str) -> Option<i64>,
) -> Result<(), String> {
    if !c.protectKernelDefaults.unwrap_or(false) {
        return Ok(());
    }
    let mut errs = Vec::new();
    for (key, want) in KERNEL_TUNABLES {
        match read(key) {
            Some(v) if v == *want => {}
            Some(v) => errs.push(format!(
                "invalid kernel flag: {key}, expected value: {want}, actual value: {v}"
            )),
            None => errs.push(format!("failed to read kernel flag {key}")),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "failed to create kubelet: {}",
            fmt_aggregate(&errs)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn load_with(files: &[(&str, &str)], argv: &[&str]) -> Result<Loaded, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let p = dir.path().join(name.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let root = dir.path().to_path_buf();
        let resolve = move |p: &str| root.join(p.trim_start_matches('/'));
        load(&args(argv), &resolve)
    }

    const HEAD: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

    #[test]
    fn go_durations() {
        for (s, ns) in [
            ("0", 0),
            ("4h", 4 * 3_600_000_000_000),
            ("1h30m", 5_400_000_000_000),
            ("1.5s", 1_500_000_000),
            ("100ms", 100_000_000),
            ("-2m", -120_000_000_000),
            ("5us", 5_000),
        ] {
            assert_eq!(parse_go_duration(s), Ok(ns), "{s}");
        }
        assert_eq!(
            parse_go_duration("10").unwrap_err(),
            "time: missing unit in duration \"10\""
        );
        assert!(parse_go_duration("1x")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_go_duration("").is_err());
        assert_eq!(go_duration_string(4 * 3_600_000_000_000), "4h0m0s");
        assert_eq!(go_duration_string(90_000_000_000), "1m30s");
        assert_eq!(go_duration_string(100_000_000), "100ms");
        assert_eq!(go_duration_string(1_500_000_000), "1.5s");
        assert_eq!(go_duration_string(0), "0s");
    }

    #[test]
    fn go_ints_and_bools() {
        assert_eq!(parse_go_int("10255", 32), Ok(10255));
        assert_eq!(parse_go_int("0x10", 32), Ok(16));
        assert_eq!(parse_go_int("010", 32), Ok(8));
        assert_eq!(parse_go_int("-5", 32), Ok(-5));
        assert!(parse_go_int("3000000000", 32)
            .unwrap_err()
            .contains("out of range"));
        assert!(parse_go_int("1.5", 32)
            .unwrap_err()
            .contains("invalid syntax"));
        assert_eq!(parse_go_bool("True"), Ok(true));
        assert!(parse_go_bool("yes").is_err());
    }

    #[test]
    fn strict_types_like_go_json() {
        for bad in [
            "readOnlyPort: \"0\"\n",
            "readOnlyPort: 1.5\n",
            "readOnlyPort: 3000000000\n",
            "staticPodPath: 5\n",
            "rotateCertificates: \"true\"\n",
            "streamingConnectionIdleTimeout: 5\n",
            "streamingConnectionIdleTimeout: 5x\n",
            "authentication: []\n",
            "tlsCipherSuites: TLS_AES_128_GCM_SHA256\n",
            "featureGates: {A: 1}\n",
        ] {
            let r = decode(format!("{HEAD}{bad}").as_bytes());
            assert!(r.is_err(), "accepted {bad:?}: {r:?}");
        }
        let ok = decode(format!("{HEAD}readOnlyPort: 0\nstaticPodPath: /x\nrotateCertificates: true\nstreamingConnectionIdleTimeout: 5m\n").as_bytes()).unwrap();
        assert!(ok.unknown_fields.is_empty());
        assert_eq!(ok.config.readOnlyPort, Some(0));
    }

    #[test]
    fn syntax_duplicate_and_kind_errors() {
        assert!(decode(format!("{HEAD}a: [\n").as_bytes()).is_err());
        assert!(decode(format!("{HEAD}port: 1\nport: 2\n").as_bytes()).is_err());
        assert!(decode(b"port: 1\n")
            .unwrap_err()
            .contains("'Kind' is missing"));
        assert!(decode(b"apiVersion: v1\nkind: Pod\n")
            .unwrap_err()
            .contains("no kind \"Pod\""));
        assert!(decode(b"").unwrap_err().contains("'Kind' is missing"));
    }

    #[test]
    fn unknown_fields_are_warnings() {
        let d = decode(
            format!("{HEAD}readOnlyPorts: 0\nauthentication:\n  anonymous:\n    enabeld: false\nfeatureGates: {{AnyGate: true}}\nlogging: {{options: {{json: {{infoBufferSize: \"0\"}}}}}}\n")
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            d.unknown_fields,
            ["authentication.anonymous.enabeld", "readOnlyPorts"]
        );
        let l = load_with(
            &[("/c.yaml", &format!("{HEAD}readOnlyPorts: 0\n"))],
            &["--config=/c.yaml"],
        )
        .unwrap();
        assert!(
            l.warnings[0].contains("lenient decoding"),
            "{:?}",
            l.warnings
        );
        // The typo means the field is not set: the v1beta1 default (0) applies.
        assert_eq!(l.config.readOnlyPort, Some(0));
    }

    #[test]
    fn json_config_is_read_too() {
        let l = load_with(
            &[(
                "/c.json",
                r#"{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"KubeletConfiguration","readOnlyPort":10255,"authentication":{"anonymous":{"enabled":true}}}"#,
            )],
            &["--config", "/c.json"],
        )
        .unwrap();
        assert_eq!(l.config.readOnlyPort, Some(10255));
        assert!(l.config.anonymous_enabled());
    }

    #[test]
    fn legacy_defaults_without_a_file_v1beta1_defaults_with_one() {
        let l = load_with(&[], &["--kubeconfig=/k"]).unwrap();
        assert!(l.config.anonymous_enabled());
        assert_eq!(l.config.authorization_mode(), "AlwaysAllow");
        assert_eq!(l.config.readOnlyPort, Some(10255));
        let l = load_with(
            &[("/c.yaml", HEAD)],
            &["--config=/c.yaml", "--kubeconfig=/k"],
        )
        .unwrap();
        assert!(!l.config.anonymous_enabled());
        assert_eq!(l.config.authorization_mode(), "Webhook");
        assert_eq!(l.config.readOnlyPort, Some(0));
        assert_eq!(l.config.healthzPort, Some(10248));
        assert_eq!(l.config.eventRecordQPS, Some(50));
        assert_eq!(
            l.config.streamingConnectionIdleTimeout,
            Some(GoDuration(4 * 3_600_000_000_000))
        );
        assert_eq!(l.config.makeIPTablesUtilChains, Some(true));
    }

    #[test]
    fn zero_values_follow_go_pointer_rules() {
        let l = load_with(
            &[(
                "/c.yaml",
                &format!("{HEAD}eventRecordQPS: 0\neventBurst: 0\nhealthzPort: 0\nstreamingConnectionIdleTimeout: 0s\n"),
            )],
            &["--config=/c.yaml"],
        )
        .unwrap();
        assert_eq!(l.config.eventRecordQPS, Some(0), "pointer: kept");
        assert_eq!(l.config.eventBurst, Some(100), "non-pointer: defaulted");
        assert_eq!(l.config.healthzPort, Some(0));
        assert_eq!(
            l.config.streamingConnectionIdleTimeout,
            Some(GoDuration(4 * 3_600_000_000_000))
        );
    }

    #[test]
    fn flags_override_file_and_dropins_override_file() {
        let files = [
            (
                "/c.yaml",
                format!("{HEAD}readOnlyPort: 0\ntlsCipherSuites: [TLS_AES_128_GCM_SHA256]\nfeatureGates: {{A: true, B: true}}\neventRecordQPS: 5\n"),
            ),
            (
                "/d/10-a.conf",
                format!("{HEAD}readOnlyPort: 10255\ntlsCipherSuites: [TLS_AES_256_GCM_SHA384]\nfeatureGates: {{B: false}}\n"),
            ),
            ("/d/20-b.conf", format!("{HEAD}readOnlyPort: 10266\n")),
            ("/d/sub/30-c.conf", format!("{HEAD}eventRecordQPS: null\n")),
            ("/d/99-z.yaml", format!("{HEAD}readOnlyPort: 1\n")),
        ];
        let files: Vec<(&str, &str)> = files.iter().map(|(a, b)| (*a, b.as_str())).collect();
        let l = load_with(&files, &["--config=/c.yaml", "--config-dir=/d"]).unwrap();
        assert_eq!(l.config.readOnlyPort, Some(10266), "last drop-in wins");
        assert_eq!(
            l.config.tlsCipherSuites.as_deref(),
            Some(&["TLS_AES_256_GCM_SHA384".to_string()][..]),
            "lists are replaced"
        );
        let gates = l.config.featureGates.clone().unwrap();
        assert_eq!(gates.get("A"), Some(&true), "maps are merged");
        assert_eq!(gates.get("B"), Some(&false));
        assert_eq!(
            l.config.eventRecordQPS,
            Some(50),
            "null deletes, then defaults"
        );
        assert_eq!(l.dropins.len(), 3);
        assert!(l.warnings.iter().any(|w| w.contains("99-z.yaml")));
        let l = load_with(
            &files,
            &[
                "--config=/c.yaml",
                "--config-dir=/d",
                "--read-only-port=0",
                "--feature-gates=C=true",
                "--anonymous_auth",
            ],
        )
        .unwrap();
        assert_eq!(l.config.readOnlyPort, Some(0), "flags win over drop-ins");
        let gates = l.config.featureGates.clone().unwrap();
        assert_eq!(gates.get("C"), Some(&true));
        assert_eq!(gates.get("A"), Some(&true), "file gates kept");
        assert!(l.config.anonymous_enabled());
    }

    #[test]
    fn dropin_without_kind_is_fatal() {
        let e = load_with(
            &[("/c.yaml", HEAD), ("/d/10.conf", "readOnlyPort: 0\n")],
            &["--config=/c.yaml", "--config-dir=/d"],
        )
        .unwrap_err();
        assert!(e.to_string().contains("no apiVersion/kind"), "{e}");
        let e = load_with(
            &[("/c.yaml", HEAD)],
            &["--config=/c.yaml", "--config-dir=/nope"],
        )
        .unwrap_err();
        assert!(e.to_string().contains("no such file"), "{e}");
    }

    #[test]
    fn refusals() {
        let bad = |extra: &str, argv: &[&str]| {
            let text = format!("{HEAD}{extra}");
            let mut a = vec!["--config=/c.yaml"];
            a.extend_from_slice(argv);
            load_with(&[("/c.yaml", &text)], &a)
                .unwrap_err()
                .to_string()
        };
        assert!(bad("eventRecordQPS: -1\n", &[])
            .contains("eventRecordQPS (--event-qps) -1 must not be a negative number"));
        assert!(bad("readOnlyPort: 70000\n", &[]).contains("readOnlyPort (--read-only-port) 70000"));
        assert!(bad("tlsCipherSuites: [TLS_NOPE]\n", &[])
            .contains("Cipher suite TLS_NOPE not supported"));
        assert!(bad("tlsMinVersion: VersionTLS9\n", &[]).contains("unknown tls version"));
        assert!(bad("", &["--no-such-flag"]).contains("unknown flag: --no-such-flag"));
        assert!(bad("", &["--read-only-port=x"])
            .contains("invalid argument \"x\" for \"--read-only-port\""));
        assert!(bad("", &["stray"]).contains("unknown command stray"));
        assert!(bad("", &["--event-qps=-3"]).contains("must not be a negative number"));
        let e = bad("readOnlyPort: -1\neventBurst: -1\n", &[]);
        assert!(e.contains("[invalid configuration:"), "aggregated: {e}");
        // The authorization mode is checked when the server is built.
        let l = load_with(
            &[("/c.yaml", &format!("{HEAD}authorization: {{mode: Nope}}\n"))],
            &["--config=/c.yaml"],
        )
        .unwrap();
        assert_eq!(
            check_auth(&l.config, true).unwrap_err(),
            "unknown authorization mode Nope"
        );
        let l = load_with(&[("/c.yaml", HEAD)], &["--config=/c.yaml"]).unwrap();
        assert!(check_auth(&l.config, false)
            .unwrap_err()
            .contains("webhook authentication"));
        assert!(check_auth(&l.config, true).is_ok());
    }

    #[test]
    fn kernel_tunables() {
        let mut c = KubeletConfiguration {
            protectKernelDefaults: Some(true),
            ..Default::default()
        };
        let good = |k: &str| {
            KERNEL_TUNABLES
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| *v)
        };
        assert!(check_kernel_tunables(&c, &good).is_ok());
        let e = check_kernel_tunables(&c, &|_| Some(0)).unwrap_err();
        assert!(
            e.contains(
                "invalid kernel flag: vm/overcommit_memory, expected value: 1, actual value: 0"
            ),
            "{e}"
        );
        c.protectKernelDefaults = Some(false);
        assert!(check_kernel_tunables(&c, &|_| Some(0)).is_ok());
    }

    #[test]
    fn merge_patch_rfc7386() {
        let mut t: Json = serde_json::json!({"a": {"b": 1, "c": [1, 2]}, "d": 1});
        merge_patch(
            &mut t,
            &serde_json::json!({"a": {"b": null, "c": [3]}, "e": {"f": 1}}),
        );
        assert_eq!(
            t,
            serde_json::json!({"a": {"c": [3]}, "d": 1, "e": {"f": 1}})
        );
    }
}
