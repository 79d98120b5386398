//! The kubelet's effective configuration, for the effective reading of the 4.2 checks: the
//! one place where `kharden audit` asks what value the kubelet really uses for a key.
//!
//! The kubelet's rules (flags over `--config-dir` drop-ins over the `--config` file over the
//! `KubeletConfiguration` v1beta1 defaults, lists replaced, not merged) belong to the
//! kubelet-config crate ([`kharden_kubelet_config::effective`]); this module only hands it what
//! the gathering read from the node ([`KubeletSources`]) and returns its answer in the catalog's
//! shape, with the source of each value named as a person would look for it (the flag, the
//! drop-in's host path, the config file's host path, the default). The same computation decides
//! where `kharden kubelet set` writes ([`crate::kubelet::plan`]), so the audit and the change
//! never disagree about which source wins.

use kharden_catalog::{EffectiveValue, ValueSource};
use kharden_kubelet_config::{effective, ConfigSource, Source, Sources, Value};
use kharden_manifest::Flags;
use std::collections::BTreeMap;

/// One configuration file as read from the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The host path (`/var/lib/kubelet/config.yaml`).
    pub path: String,
    pub contents: Vec<u8>,
}

/// Everything the kubelet's effective configuration is computed from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KubeletSources {
    /// The running kubelet's own flags (argv after the binary).
    pub flags: Vec<String>,
    /// The file its `--config` names, when it exists.
    pub config: Option<SourceFile>,
    /// The `*.conf` files of its `--config-dir` (host paths), in any order: the kubelet's order
    /// is computed from their names relative to the directory.
    pub drop_ins: Vec<SourceFile>,
}

/// A value as the catalog compares it: `None` for an empty string or list (unset).
fn text(v: &Value) -> Option<String> {
    let t = v.to_string();
    (!t.is_empty()).then_some(t)
}

/// The value the kubelet uses for each `KubeletConfiguration` key (dotted paths:
/// `authentication.anonymous.enabled`, `featureGates.RotateKubeletServerCertificate`), with
/// where it comes from. `Err`: the kubelet would refuse these sources (a value of the wrong
/// type, an empty drop-in, a malformed flag), with why.
pub fn kubelet_effective(
    sources: &KubeletSources,
) -> Result<BTreeMap<String, EffectiveValue>, String> {
    let flags = Flags::parse(&sources.flags);
    let dir = flags
        .effective("config-dir")
        .map(|d| format!("{}/", d.trim_end_matches('/')));
    // The kubelet orders drop-ins by their path relative to --config-dir.
    let names: Vec<(String, &SourceFile)> = sources
        .drop_ins
        .iter()
        .map(|d| {
            let rel = dir
                .as_deref()
                .and_then(|p| d.path.strip_prefix(p))
                .unwrap_or_else(|| d.path.rsplit('/').next().unwrap_or(&d.path));
            (rel.to_string(), d)
        })
        .collect();
    let src = Sources {
        config: sources.config.as_ref().map(|c| ConfigSource {
            name: &c.path,
            bytes: &c.contents,
        }),
        dropins: names
            .iter()
            .map(|(n, d)| ConfigSource {
                name: n,
                bytes: &d.contents,
            })
            .collect(),
        flags: &flags,
    };
    let eff = effective(&src).map_err(|e| e.to_string())?;
    let config_path = sources.config.as_ref().map(|c| c.path.clone());
    let mut out = BTreeMap::new();
    for s in &eff.settings {
        let Some(key) = s.path else { continue };
        let value = text(&s.value);
        let source = match &s.source {
            Source::Flag => ValueSource::Flag {
                flag: format!("--{}", s.flag.unwrap_or(key)),
            },
            Source::DropIn { name, .. } => ValueSource::DropIn {
                path: names
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, d)| d.path.clone())
                    .unwrap_or_else(|| name.clone()),
            },
            Source::ConfigFile => ValueSource::ConfigFile {
                path: config_path.clone().unwrap_or_default(),
            },
            Source::Default | Source::FlagDefault if value.is_none() => ValueSource::Unset,
            Source::Default | Source::FlagDefault => ValueSource::Default,
        };
        out.insert(key.to_string(), EffectiveValue { value, source });
    }
    Ok(out)
}

/// True when [`kubelet_effective`] computes values (for the reports' wording).
pub const KUBELET_EFFECTIVE_WIRED: bool = true;

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_over_dropins_over_the_file_over_the_defaults() {
        let src = KubeletSources {
            flags: s(&[
                "--config=/var/lib/kubelet/config.yaml",
                "--config-dir=/etc/kubernetes/kubelet.conf.d",
                "--event-qps=7",
            ]),
            config: Some(SourceFile {
                path: "/var/lib/kubelet/config.yaml".into(),
                contents: b"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nreadOnlyPort: 10255\nstreamingConnectionIdleTimeout: 0s\neventRecordQPS: 1\nauthentication:\n  anonymous:\n    enabled: true\n".to_vec(),
            }),
            drop_ins: vec![SourceFile {
                path: "/etc/kubernetes/kubelet.conf.d/50-cis.conf".into(),
                contents: b"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nreadOnlyPort: 0\n".to_vec(),
            }],
        };
        let m = kubelet_effective(&src).unwrap();
        assert_eq!(
            m["readOnlyPort"],
            EffectiveValue {
                value: Some("0".into()),
                source: ValueSource::DropIn {
                    path: "/etc/kubernetes/kubelet.conf.d/50-cis.conf".into()
                }
            }
        );
        assert_eq!(
            m["eventRecordQPS"].source,
            ValueSource::Flag {
                flag: "--event-qps".into()
            }
        );
        assert_eq!(m["eventRecordQPS"].value.as_deref(), Some("7"));
        // A zero duration in the file is replaced by the default.
        assert_eq!(
            m["streamingConnectionIdleTimeout"],
            EffectiveValue {
                value: Some("4h0m0s".into()),
                source: ValueSource::Default
            }
        );
        assert_eq!(
            m["authentication.anonymous.enabled"].source,
            ValueSource::ConfigFile {
                path: "/var/lib/kubelet/config.yaml".into()
            }
        );
        assert_eq!(m["tlsCertFile"].source, ValueSource::Unset);
        assert_eq!(
            m["featureGates.RotateKubeletServerCertificate"]
                .value
                .as_deref(),
            Some("true")
        );
        // What the kubelet refuses is an error, not a guess.
        let bad = KubeletSources {
            config: Some(SourceFile {
                path: "/c".into(),
                contents: b"readOnlyPort: \"x\"\n".to_vec(),
            }),
            flags: s(&["--config=/c"]),
            ..KubeletSources::default()
        };
        assert!(kubelet_effective(&bad).is_err());
    }
}
