//! The kubelet's effective configuration, for the effective reading of the 4.2 checks: the
//! one place where `kharden audit` asks what value the kubelet really uses for a key.
//!
//! The kubelet's rules (flags over `--config-dir` drop-ins over the `--config` file over the
//! `KubeletConfiguration` v1beta1 defaults, lists replaced, not merged) belong to the
//! kubelet-config crate; this module only hands it what the gathering read from the node
//! ([`KubeletSources`]) and returns its answer in the catalog's shape. Until that crate's merge is
//! wired here, [`kubelet_effective`] knows no key: every 4.2 check's effective reading is then
//! "not evaluated" (the report says so), never guessed by a second configuration reader.

use kharden_catalog::EffectiveValue;
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
    /// The `*.conf` files of its `--config-dir`, in the kubelet's order (by name).
    pub drop_ins: Vec<SourceFile>,
}

/// The value the kubelet uses for each `KubeletConfiguration` key (dotted paths:
/// `authentication.anonymous.enabled`, `featureGates.RotateKubeletServerCertificate`), with
/// where it comes from. Empty until the kubelet-config crate's merge is wired here.
pub fn kubelet_effective(sources: &KubeletSources) -> BTreeMap<String, EffectiveValue> {
    let _ = sources;
    BTreeMap::new()
}

/// True when [`kubelet_effective`] computes values (for the reports' wording).
pub const KUBELET_EFFECTIVE_WIRED: bool = false;
