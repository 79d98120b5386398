//! Which benchmark `kharden audit` runs, and why: the node's Kubernetes version mapped the way
//! kube-bench's `version_mapping` maps it ([`kharden_catalog::select_benchmark`]).
//!
//! The order (docs/reports.md, "Which benchmark"):
//!
//! 1. `--benchmark ID`, or `--kubernetes-version V` (not both: kube-bench refuses both too).
//! 2. The control-plane images' tags in the static pod manifests (kube-apiserver,
//!    kube-controller-manager, kube-scheduler; etcd's image carries etcd's own version). When
//!    they agree, that is the version of the API server this node runs, which is what kube-bench
//!    asks first (its REST API, then `kubectl version`), read without network or credentials.
//!    When they disagree, the node is in the middle of an upgrade: the report says so and the API
//!    server's `/version` decides (its manifest's tag when it cannot be asked).
//! 3. The kubelet binary's `--version` (a worker node: kube-bench's fallback).
//! 4. The API server's `/version`, when the manifests name no version (an image without a tag).
//! 5. Otherwise the default benchmark, and the report says the version could not be read.
//!
//! The evidence gathered is kept in the report, with a note when the kubelet and the control
//! plane differ (a supported skew, or an upgrade not finished).

use super::gather::NodeScan;
use super::yaml::{container_image, image_tag};
use crate::error::{Error, Result};
use kharden_catalog::{parse_kubernetes_version, select_benchmark, Component, SelectError};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where a version was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum VersionSource {
    /// `kubelet --version`.
    KubeletBinary { path: String },
    /// A control-plane container's image tag.
    ManifestImage {
        component: Component,
        manifest: String,
        image: String,
    },
    /// The API server's `GET /version` (`gitVersion`).
    ApiServer { url: String },
}

impl std::fmt::Display for VersionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionSource::KubeletBinary { path } => write!(f, "`{path} --version`"),
            VersionSource::ManifestImage {
                component, image, ..
            } => write!(f, "{component}'s image {image}"),
            VersionSource::ApiServer { url } => write!(f, "the API server's {url}"),
        }
    }
}

/// One reading of the version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub source: VersionSource,
    /// As read (`v1.30.2`); `None` when it could not be read.
    pub version: Option<String>,
    pub error: Option<String>,
}

impl Evidence {
    fn minor(&self) -> Option<(u32, u32)> {
        self.version
            .as_deref()
            .and_then(|v| parse_kubernetes_version(v).ok())
    }
}

/// How the benchmark was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChoiceKind {
    /// `--benchmark`.
    Benchmark,
    /// `--kubernetes-version`.
    KubernetesVersion,
    /// From the version the node runs.
    Detected,
    /// The version could not be read: the default benchmark.
    Default,
}

/// The benchmark of a report, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BenchmarkChoice {
    pub benchmark: &'static str,
    pub how: ChoiceKind,
    /// The Kubernetes version the choice rests on, as read or given (`v1.30.2`, `1.30`).
    pub kubernetes_version: Option<String>,
    /// kube-bench's `detected_version`: `MAJOR.MINOR` when detected, else `none`.
    pub detected_version: String,
    /// One paragraph for the report.
    pub reason: String,
    /// Set when the control-plane manifests disagree: what they say.
    pub mid_upgrade: Option<String>,
    /// Every reading made, in the order of the rules.
    pub evidence: Vec<Evidence>,
}

/// What the node is asked for its version (a trait, so that the choice is tested without
/// processes or sockets).
pub trait VersionProbe {
    /// `kubelet --version`: `None` when no kubelet binary is found.
    fn kubelet(&self) -> Option<Evidence>;
    /// `GET /version` of the API server: `None` when the node has no API server to ask.
    fn api_server(&self) -> Option<Evidence>;
}

/// The control-plane images of the manifests found, as evidence.
pub fn manifest_evidence(scan: &NodeScan) -> Vec<Evidence> {
    let mut out = Vec::new();
    for c in [
        Component::ApiServer,
        Component::ControllerManager,
        Component::Scheduler,
    ] {
        let Some(f) = scan.manifest(c) else { continue };
        let Some(image) = container_image(&f.contents, &f.info.container) else {
            continue;
        };
        let tag = image_tag(&image).map(str::to_string);
        let (version, error) = match tag {
            Some(t) if parse_kubernetes_version(&t).is_ok() => (Some(t), None),
            Some(t) => (None, Some(format!("tag {t:?} is not a Kubernetes version"))),
            None => (None, Some("the image has no tag".to_string())),
        };
        out.push(Evidence {
            source: VersionSource::ManifestImage {
                component: c,
                manifest: scan.host_path(&f.manifest),
                image,
            },
            version,
            error,
        });
    }
    out
}

fn select_error(e: SelectError, given: bool) -> Error {
    let hint = if given {
        String::new()
    } else {
        format!(
            "; give --benchmark ({}) to audit anyway",
            kharden_catalog::benchmark_ids().join(", ")
        )
    };
    let msg = format!("{e}{hint}");
    if given {
        Error::Usage(msg)
    } else {
        Error::refused(msg)
    }
}

fn choice_from_version(
    version: &str,
    how: ChoiceKind,
    why: String,
    mid_upgrade: Option<String>,
    evidence: Vec<Evidence>,
) -> Result<BenchmarkChoice> {
    let s = select_benchmark(version).map_err(|e| select_error(e, how != ChoiceKind::Detected))?;
    Ok(BenchmarkChoice {
        benchmark: s.benchmark.id,
        how,
        kubernetes_version: Some(version.to_string()),
        detected_version: if how == ChoiceKind::Detected {
            s.kubernetes.clone()
        } else {
            "none".into()
        },
        reason: format!("{why}; {}", s.reason),
        mid_upgrade,
        evidence,
    })
}

/// Choose the benchmark (see the module docs for the order).
pub fn choose_benchmark(
    benchmark: Option<&str>,
    kubernetes_version: Option<&str>,
    manifests: Vec<Evidence>,
    probe: &dyn VersionProbe,
) -> Result<BenchmarkChoice> {
    match (benchmark, kubernetes_version) {
        (Some(_), Some(_)) => {
            return Err(Error::Usage(
                "give --benchmark or --kubernetes-version, not both (the benchmark would not \
                 follow from the version)"
                    .into(),
            ))
        }
        (Some(id), None) => {
            let b = kharden_catalog::benchmark(id).ok_or_else(|| {
                Error::Usage(format!(
                    "unknown benchmark {id:?}; known: {}",
                    kharden_catalog::benchmark_ids().join(", ")
                ))
            })?;
            return Ok(BenchmarkChoice {
                benchmark: b.id,
                how: ChoiceKind::Benchmark,
                kubernetes_version: None,
                detected_version: "none".into(),
                reason: format!("--benchmark {} given on the command line", b.id),
                mid_upgrade: None,
                evidence: Vec::new(),
            });
        }
        (None, Some(v)) => {
            return choice_from_version(
                v,
                ChoiceKind::KubernetesVersion,
                format!("--kubernetes-version {v} given on the command line"),
                None,
                Vec::new(),
            );
        }
        (None, None) => {}
    }
    let mut evidence = manifests;
    let kubelet = probe.kubelet();
    let versions: Vec<Evidence> = evidence
        .iter()
        .filter(|e| e.version.is_some())
        .cloned()
        .collect();
    let mut distinct: Vec<&str> = versions
        .iter()
        .filter_map(|e| e.version.as_deref())
        .collect();
    distinct.sort();
    distinct.dedup();
    let skew = |used: Option<(u32, u32)>| -> String {
        match &kubelet {
            Some(k) if k.minor().is_some() && k.minor() != used => format!(
                " (the kubelet is {}, a different minor version: a version skew, or an upgrade \
                 not finished)",
                k.version.as_deref().unwrap_or("?")
            ),
            _ => String::new(),
        }
    };
    if distinct.len() > 1 {
        let said: Vec<String> = versions
            .iter()
            .map(|e| match &e.source {
                VersionSource::ManifestImage { component, .. } => {
                    format!("{component} {}", e.version.as_deref().unwrap_or("?"))
                }
                other => other.to_string(),
            })
            .collect();
        let mid = format!(
            "the control-plane manifests disagree ({}): this node is in the middle of an upgrade",
            said.join(", ")
        );
        let api_manifest = versions
            .iter()
            .find(|e| {
                matches!(e.source, VersionSource::ManifestImage { component, .. } if component == Component::ApiServer)
            })
            .and_then(|e| e.version.clone());
        let api = probe.api_server();
        let answered = api.as_ref().and_then(|a| a.version.clone());
        let api_error = api
            .as_ref()
            .and_then(|a| a.error.clone())
            .unwrap_or_else(|| "no API server to ask".into());
        evidence.extend(api);
        evidence.extend(kubelet.clone());
        let (version, why) = match (answered, api_manifest) {
            (Some(v), _) => (
                v.clone(),
                format!("{mid}; the API server answers /version with {v}, which decides"),
            ),
            (None, Some(v)) => (
                v.clone(),
                format!(
                    "{mid}; the API server could not be asked ({api_error}), so its manifest's \
                     {v} decides"
                ),
            ),
            (None, None) => {
                let v = distinct.last().map(|s| s.to_string()).unwrap_or_default();
                (
                    v.clone(),
                    format!(
                        "{mid}; the API server could not be asked ({api_error}), so the newest \
                         manifest version, {v}, decides"
                    ),
                )
            }
        };
        let why = format!("{why}{}", skew(parse_kubernetes_version(&version).ok()));
        return choice_from_version(&version, ChoiceKind::Detected, why, Some(mid), evidence);
    }
    if let Some(v) = distinct.first().map(|s| s.to_string()) {
        let names: Vec<String> = versions
            .iter()
            .filter_map(|e| match &e.source {
                VersionSource::ManifestImage { component, .. } => Some(component.to_string()),
                _ => None,
            })
            .collect();
        evidence.extend(kubelet.clone());
        let why = format!(
            "the control-plane images in the static pod manifests are {v} ({}): the version of \
             the API server this node runs, which kube-bench asks first{}",
            names.join(", "),
            skew(parse_kubernetes_version(&v).ok())
        );
        return choice_from_version(&v, ChoiceKind::Detected, why, None, evidence);
    }
    if let Some(k) = kubelet.clone().filter(|k| k.version.is_some()) {
        let v = k.version.clone().unwrap_or_default();
        let why = format!(
            "{} says {v}{}",
            k.source,
            if evidence.is_empty() {
                " (no control-plane manifest on this node)"
            } else {
                " (the control-plane manifests name no version)"
            }
        );
        evidence.push(k);
        return choice_from_version(&v, ChoiceKind::Detected, why, None, evidence);
    }
    evidence.extend(kubelet);
    if let Some(api) = probe.api_server() {
        let answered = api.version.clone();
        let source = api.source.to_string();
        evidence.push(api);
        if let Some(v) = answered {
            let why = format!("{source} says {v}");
            return choice_from_version(&v, ChoiceKind::Detected, why, None, evidence);
        }
    }
    let tried: Vec<String> = evidence
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e.source,
                e.error.as_deref().unwrap_or("no version")
            )
        })
        .collect();
    Ok(BenchmarkChoice {
        benchmark: kharden_catalog::DEFAULT_BENCHMARK,
        how: ChoiceKind::Default,
        kubernetes_version: None,
        detected_version: "none".into(),
        reason: format!(
            "the Kubernetes version could not be read from this node ({}): the default {} is \
             used; give --kubernetes-version or --benchmark",
            if tried.is_empty() {
                "no control-plane manifest, no kubelet binary".to_string()
            } else {
                tried.join("; ")
            },
            kharden_catalog::DEFAULT_BENCHMARK
        ),
        mid_upgrade: None,
        evidence,
    })
}

/// The node asked for real: the kubelet binary run with `--version`, the API server's
/// `/version` probed like the health gate probes it.
pub struct LiveVersionProbe<'a> {
    pub scan: &'a NodeScan,
    pub timeout: Duration,
}

/// Where a kubelet binary may be, besides the running kubelet's own executable.
const KUBELET_PATHS: [&str; 4] = [
    "/usr/bin/kubelet",
    "/usr/local/bin/kubelet",
    "/bin/kubelet",
    "/opt/bin/kubelet",
];

impl LiveVersionProbe<'_> {
    /// A binary under the root that kharden is willing to run: a regular, executable file,
    /// owned by root or by kharden's user, writable by nobody else.
    fn runnable(&self, host: &str) -> Option<Result<PathBuf, String>> {
        use std::os::unix::fs::MetadataExt;
        let real = match super::gather::follow(&self.scan.root, host) {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        let md = std::fs::metadata(&real).ok()?;
        if !md.is_file() || md.mode() & 0o111 == 0 {
            return None;
        }
        let me = nix::unistd::geteuid().as_raw();
        if (md.uid() != 0 && md.uid() != me) || md.mode() & 0o022 != 0 {
            return Some(Err(format!(
                "{host}: not run: owned by uid {} with mode {:04o} (kharden runs only a binary \
                 that root owns and nobody else may write)",
                md.uid(),
                md.mode() & 0o7777
            )));
        }
        Some(Ok(real))
    }

    fn run_version(&self, exe: &Path, shown: &str) -> Evidence {
        let source = VersionSource::KubeletBinary {
            path: shown.to_string(),
        };
        match run_with_timeout(exe, "kubelet", &["--version"], self.timeout) {
            Ok(out) => {
                let line = out.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                match parse_kubernetes_version(line) {
                    Ok(_) => Evidence {
                        source,
                        version: line.split_whitespace().last().map(str::to_string),
                        error: None,
                    },
                    Err(_) => Evidence {
                        source,
                        version: None,
                        error: Some(format!("unexpected output {:?}", line.trim())),
                    },
                }
            }
            Err(e) => Evidence {
                source,
                version: None,
                error: Some(e),
            },
        }
    }
}

/// Run `exe` (as `argv0`) with `args`, stdin closed, and return its stdout; killed after
/// `timeout`.
fn run_with_timeout(
    exe: &Path,
    argv0: &str,
    args: &[&str],
    timeout: Duration,
) -> std::result::Result<String, String> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let mut child = Command::new(exe)
        .arg0(argv0)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    let end = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {} s", timeout.as_secs()));
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        // Bounded: a version line is short.
        let _ = o.by_ref().take(64 * 1024).read_to_string(&mut out);
    }
    if !status.success() {
        return Err(format!("exited with {status}"));
    }
    Ok(out)
}

/// `"gitVersion": "v1.30.2"` out of a `/version` body.
fn git_version(body: &str) -> Option<String> {
    let at = body.find("\"gitVersion\"")?;
    let rest = &body[at + "\"gitVersion\"".len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

impl VersionProbe for LiveVersionProbe<'_> {
    fn kubelet(&self) -> Option<Evidence> {
        if let Some(p) = self.scan.kubelet() {
            let exe = self
                .scan
                .root
                .proc_dir()
                .join(p.pid.to_string())
                .join("exe");
            let e = self.run_version(&exe, &format!("kubelet (process {})", p.pid));
            if e.version.is_some() {
                return Some(e);
            }
        }
        let mut refused = None;
        for host in KUBELET_PATHS {
            match self.runnable(host) {
                None => continue,
                Some(Ok(real)) => return Some(self.run_version(&real, host)),
                Some(Err(e)) => {
                    refused.get_or_insert(Evidence {
                        source: VersionSource::KubeletBinary {
                            path: host.to_string(),
                        },
                        version: None,
                        error: Some(e),
                    });
                }
            }
        }
        refused
    }

    fn api_server(&self) -> Option<Evidence> {
        let f = self.scan.manifest(Component::ApiServer)?;
        let spec = crate::journal::GateSpec {
            enabled: true,
            ..Default::default()
        };
        let params = match crate::gate::params_for(
            &self.scan.root,
            &spec,
            &f.contents,
            None,
            std::time::UNIX_EPOCH,
        ) {
            Ok(p) => p,
            Err(e) => {
                return Some(Evidence {
                    source: VersionSource::ApiServer {
                        url: "/version".into(),
                    },
                    version: None,
                    error: Some(e),
                })
            }
        };
        let mut target = params.target.clone();
        target.path = "/version".into();
        let source = VersionSource::ApiServer { url: target.url() };
        let out = kharden_gate::probe::probe_with(
            &target,
            &params.tls,
            self.timeout,
            !params.insecure_skip_tls_verify,
        );
        Some(match (out.class, git_version(&out.detail)) {
            (kharden_gate::ProbeClass::Healthy(_), Some(v)) => Evidence {
                source,
                version: Some(v),
                error: None,
            },
            (class, _) => Evidence {
                source,
                version: None,
                error: Some(format!("{class}: {}", out.detail)),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        kubelet: Option<&'static str>,
        api: Option<Option<&'static str>>,
    }

    impl VersionProbe for Fake {
        fn kubelet(&self) -> Option<Evidence> {
            self.kubelet.map(|v| Evidence {
                source: VersionSource::KubeletBinary {
                    path: "/usr/bin/kubelet".into(),
                },
                version: Some(v.into()),
                error: None,
            })
        }
        fn api_server(&self) -> Option<Evidence> {
            self.api.map(|v| Evidence {
                source: VersionSource::ApiServer {
                    url: "https://127.0.0.1:6443/version".into(),
                },
                version: v.map(str::to_string),
                error: v.is_none().then(|| "connection refused".to_string()),
            })
        }
    }

    fn image(c: Component, v: &str) -> Evidence {
        Evidence {
            source: VersionSource::ManifestImage {
                component: c,
                manifest: format!("/etc/kubernetes/manifests/{c}.yaml"),
                image: format!("registry.k8s.io/{c}:{v}"),
            },
            version: Some(v.into()),
            error: None,
        }
    }

    #[test]
    fn the_order_of_the_rules() {
        let none = Fake {
            kubelet: None,
            api: None,
        };
        // Flags first; both is a usage error.
        assert!(matches!(
            choose_benchmark(Some("cis-1.9"), Some("1.30"), vec![], &none),
            Err(Error::Usage(_))
        ));
        let c = choose_benchmark(Some("cis-2.0"), None, vec![], &none).unwrap();
        assert_eq!((c.benchmark, c.how), ("cis-2.0", ChoiceKind::Benchmark));
        assert_eq!(c.detected_version, "none");
        let c = choose_benchmark(None, Some("v1.28.3"), vec![], &none).unwrap();
        assert_eq!(c.benchmark, "cis-1.10");
        assert!(matches!(
            choose_benchmark(None, Some("1.25"), vec![], &none),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            choose_benchmark(Some("cis-0.1"), None, vec![], &none),
            Err(Error::Usage(_))
        ));
        // Agreeing manifests win over the kubelet, and the skew is said.
        let k = Fake {
            kubelet: Some("v1.31.4"),
            api: Some(Some("v1.33.0")),
        };
        let c = choose_benchmark(
            None,
            None,
            vec![
                image(Component::ApiServer, "v1.32.1"),
                image(Component::Scheduler, "v1.32.1"),
            ],
            &k,
        )
        .unwrap();
        assert_eq!((c.benchmark, c.how), ("cis-1.12", ChoiceKind::Detected));
        assert_eq!(c.detected_version, "1.32");
        assert!(c.reason.contains("v1.31.4"), "{}", c.reason);
        assert!(c.mid_upgrade.is_none());
        // Disagreeing manifests: the API server decides, else its manifest.
        let mixed = || {
            vec![
                image(Component::ApiServer, "v1.32.0"),
                image(Component::ControllerManager, "v1.31.2"),
            ]
        };
        let c = choose_benchmark(None, None, mixed(), &k).unwrap();
        assert_eq!(c.kubernetes_version.as_deref(), Some("v1.33.0"));
        assert!(c
            .mid_upgrade
            .as_deref()
            .unwrap()
            .contains("middle of an upgrade"));
        let down = Fake {
            kubelet: None,
            api: Some(None),
        };
        let c = choose_benchmark(None, None, mixed(), &down).unwrap();
        assert_eq!(c.kubernetes_version.as_deref(), Some("v1.32.0"));
        assert!(c.reason.contains("connection refused"), "{}", c.reason);
        // A worker: the kubelet.
        let c = choose_benchmark(None, None, vec![], &k).unwrap();
        assert_eq!(c.benchmark, "cis-1.11");
        // Nothing: the default, said so.
        let c = choose_benchmark(None, None, vec![], &none).unwrap();
        assert_eq!((c.benchmark, c.how), ("cis-1.12", ChoiceKind::Default));
        assert!(c.reason.contains("could not be read"));
        // A detected version older than every benchmark is refused with a hint.
        let old = Fake {
            kubelet: Some("v1.25.0"),
            api: None,
        };
        match choose_benchmark(None, None, vec![], &old) {
            Err(e @ Error::Refused { .. }) => assert!(e.to_string().contains("--benchmark")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn git_version_of_a_version_body() {
        assert_eq!(
            git_version("200 {\n  \"major\": \"1\",\n  \"gitVersion\": \"v1.31.0\",\n").as_deref(),
            Some("v1.31.0")
        );
        assert_eq!(git_version("403 forbidden"), None);
    }
}
