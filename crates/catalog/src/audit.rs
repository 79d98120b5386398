//! What kube-bench reads for a check (its audit), as data, and the fixes of the file and kubelet
//! checks.
//!
//! kube-bench runs a shell command per check and tests its output. kharden does not run those
//! commands: it models each kind of audit precisely enough to predict kube-bench's verdict from
//! facts the caller gathers (a process's argv, `stat` of a few files, the parsed kubelet
//! configuration), and reads the same facts a second time the way the component itself does.
//! Four kinds cover every check of sections 1 to 4:
//!
//! - [`FlagTest`]: `ps -ef | grep <binary>`, flags searched in the command line;
//! - [`FileTest`]: `stat -c permissions=%a` / `stat -c %U:%G` of files named by config.yaml
//!   variables, literal paths, `find` globs, or read out of a process's flags;
//! - [`ConfigTest`]: the kubelet's (kube-proxy's) command line first, else a JSONPath into the
//!   configuration file kube-bench finds;
//! - [`NotEvaluated`]: kube-bench asks the API server (`kubectl`, section 5) or reads a file's
//!   contents (1.2.28's encryption configuration); kharden lists them and says why it does not
//!   reproduce them.
//!
//! [`Audit::None`] is a `type: manual` check with no audit at all: kube-bench prints WARN.

use serde::Serialize;

use crate::model::{BinOp, Component, TestItem};

/// How kube-bench audits a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Audit {
    /// No audit (a `type: manual` check): kube-bench runs nothing and prints WARN.
    None,
    /// A control-plane component's command line.
    Flags(FlagTest),
    /// Permissions or ownership of files.
    File(FileTest),
    /// The kubelet's or kube-proxy's command line, else its configuration file.
    Config(ConfigTest),
    /// Something kharden does not reproduce.
    NotEvaluated(NotEvaluated),
}

/// The kind of an [`Audit`], for reports and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditKind {
    None,
    Flags,
    File,
    Config,
    NotEvaluated,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::None => "none",
            AuditKind::Flags => "flags",
            AuditKind::File => "file",
            AuditKind::Config => "config",
            AuditKind::NotEvaluated => "not-evaluated",
        }
    }
}

impl Audit {
    pub fn kind(&self) -> AuditKind {
        match self {
            Audit::None => AuditKind::None,
            Audit::Flags(_) => AuditKind::Flags,
            Audit::File(_) => AuditKind::File,
            Audit::Config(_) => AuditKind::Config,
            Audit::NotEvaluated(_) => AuditKind::NotEvaluated,
        }
    }

    /// The process the audit reads, for flag and configuration checks.
    pub fn component(&self) -> Option<Component> {
        match self {
            Audit::Flags(f) => Some(f.component),
            Audit::Config(c) => Some(c.process),
            _ => None,
        }
    }

    /// kube-bench's test items (empty for [`Audit::None`] and [`Audit::NotEvaluated`]).
    pub fn items(&self) -> &[TestItem] {
        match self {
            Audit::Flags(f) => &f.items,
            Audit::File(f) => &f.items,
            Audit::Config(c) => &c.items,
            Audit::None | Audit::NotEvaluated(_) => &[],
        }
    }

    /// The config.yaml variables kube-bench substitutes in this audit (`kubeletconf`, ...),
    /// which [`crate::paths::resolve_for`] resolves.
    pub fn variables(&self) -> Vec<&'static str> {
        match self {
            Audit::File(t) => match t.files {
                FileSet::Var { var } | FileSet::FindVar { var, .. } => vec![var],
                FileSet::EtcdDataDir => vec!["etcddatadir"],
                FileSet::KubeletClientCa => vec!["kubeletcafile"],
                FileSet::Paths { .. } | FileSet::Find { .. } | FileSet::Cni => Vec::new(),
            },
            Audit::Config(c) => c.config_var.into_iter().collect(),
            Audit::None | Audit::Flags(_) | Audit::NotEvaluated(_) => Vec::new(),
        }
    }

    /// kube-bench's `bin_op` (`and` when the audit has no items).
    pub fn bin_op(&self) -> BinOp {
        match self {
            Audit::Flags(f) => f.bin_op,
            Audit::File(f) => f.bin_op,
            Audit::Config(c) => c.bin_op,
            Audit::None | Audit::NotEvaluated(_) => BinOp::And,
        }
    }
}

/// `ps -ef | grep <binary>`: flags in a control-plane component's command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagTest {
    pub component: Component,
    pub bin_op: BinOp,
    pub items: Vec<TestItem>,
}

/// A user and a group, by name (as `stat -c %U:%G` prints them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Owner {
    pub user: &'static str,
    pub group: &'static str,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.user, self.group)
    }
}

/// What a file test's files are, independently of how kube-bench finds them: the key under
/// which a caller says where the files really are ([`crate::facts::Located`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileRole {
    ApiServerManifest,
    ControllerManagerManifest,
    SchedulerManifest,
    EtcdManifest,
    /// CNI configuration and the host-local IPAM state.
    CniFiles,
    EtcdDataDir,
    /// `admin.conf` and, from Kubernetes 1.29, `super-admin.conf`.
    AdminKubeconfig,
    SchedulerKubeconfig,
    ControllerManagerKubeconfig,
    /// The PKI directory and everything in it.
    PkiTree,
    PkiCertificates,
    PkiKeys,
    /// The kubelet's systemd unit and its drop-ins.
    KubeletUnit,
    ProxyKubeconfig,
    KubeletKubeconfig,
    /// The CA the kubelet verifies client certificates with.
    KubeletClientCa,
    /// The kubelet's `--config` file (and `--config-dir` drop-ins).
    KubeletConfig,
}

impl FileRole {
    /// A few words for reports.
    pub fn describe(self) -> &'static str {
        match self {
            FileRole::ApiServerManifest => "the API server's static pod manifest",
            FileRole::ControllerManagerManifest => "the controller manager's static pod manifest",
            FileRole::SchedulerManifest => "the scheduler's static pod manifest",
            FileRole::EtcdManifest => "etcd's static pod manifest",
            FileRole::CniFiles => "the CNI configuration and IPAM files",
            FileRole::EtcdDataDir => "etcd's data directory",
            FileRole::AdminKubeconfig => "the administrator kubeconfigs",
            FileRole::SchedulerKubeconfig => "the scheduler's kubeconfig",
            FileRole::ControllerManagerKubeconfig => "the controller manager's kubeconfig",
            FileRole::PkiTree => "the PKI directory",
            FileRole::PkiCertificates => "the PKI certificates",
            FileRole::PkiKeys => "the PKI private keys",
            FileRole::KubeletUnit => "the kubelet's systemd unit and drop-ins",
            FileRole::ProxyKubeconfig => "kube-proxy's kubeconfig",
            FileRole::KubeletKubeconfig => "the kubelet's kubeconfig",
            FileRole::KubeletClientCa => "the kubelet's client CA",
            FileRole::KubeletConfig => "the kubelet's configuration file",
        }
    }
}

/// How kube-bench finds the files a file test stats (its shell, modelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum FileSet {
    /// `if test -e $VAR; then stat ... $VAR; fi`: the file a config.yaml variable resolves to
    /// (`apiserverconf`, `kubeletconf`, ...). Missing: nothing printed.
    Var { var: &'static str },
    /// `if test -e $VAR; then find $VAR -name GLOB | xargs stat ...; fi` (1.1.7, 1.1.8).
    /// A file found but not matching `GLOB` leaves `stat` without operands: the audit fails.
    FindVar {
        var: &'static str,
        name: &'static str,
    },
    /// `for f in PATHS; do if test -e $f; then stat ... $f; fi; done`.
    Paths { paths: &'static [&'static str] },
    /// `find DIR [-name GLOB] | xargs stat ...` (the PKI checks): DIR itself and everything
    /// below it whose name matches. Nothing found (or DIR missing): the audit fails.
    Find {
        dir: &'static str,
        name: Option<&'static str>,
    },
    /// 1.1.11/1.1.12: the last `--data-dir` of the running etcd that is a directory, else
    /// `$etcddatadir`; `stat` fails when that does not exist.
    EtcdDataDir,
    /// 1.1.9/1.1.10: everything below the kubelet's `--cni-conf-dir` (when the kubelet has
    /// that flag, which it lost in 1.24), plus the regular files under `/var/lib/cni/networks`.
    Cni,
    /// 4.1.7/4.1.8: the kubelet's `--client-ca-file=` (first occurrence, `=` form only), else
    /// `$kubeletcafile`.
    KubeletClientCa,
}

/// The IPAM state directory kube-bench's CNI checks read.
pub const CNI_NETWORKS_DIR: &str = "/var/lib/cni/networks";
/// The CNI configuration directory container runtimes use by default (containerd, CRI-O):
/// what the CNI checks mean when the kubelet has no `--cni-conf-dir`.
pub const CNI_CONF_DIR: &str = "/etc/cni/net.d";

/// What `stat -c FORMAT` prints per file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatFormat {
    /// `permissions=%a`
    Permissions,
    /// `%U:%G`
    Owner,
    /// `permissions=%a %n`
    PermissionsAndName,
    /// `ownership=%U:%G %n`
    OwnershipAndName,
}

impl StatFormat {
    /// The `stat -c` format string.
    pub fn format(self) -> &'static str {
        match self {
            StatFormat::Permissions => "permissions=%a",
            StatFormat::Owner => "%U:%G",
            StatFormat::PermissionsAndName => "permissions=%a %n",
            StatFormat::OwnershipAndName => "ownership=%U:%G %n",
        }
    }
}

/// A permissions or ownership test of files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileTest {
    pub role: FileRole,
    pub files: FileSet,
    pub format: StatFormat,
    /// kube-bench's `use_multiple_values`: every output line (file) must pass.
    pub multiple: bool,
    pub bin_op: BinOp,
    /// kube-bench's test items, tested on the `stat` output.
    pub items: Vec<TestItem>,
    /// What the audit prints when the file does not exist (4.1.2 prints `File not found`,
    /// which its second item accepts); `None`: nothing, so the test fails.
    pub if_missing: Option<&'static str>,
    /// The permission bits allowed (the `bitmask` value), for a permissions test.
    pub allowed_mode: Option<u32>,
    /// The owner and group required, for an ownership test.
    pub owner: Option<Owner>,
}

/// A kubelet (or kube-proxy) check: the command line first, else a key of the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigTest {
    /// [`Component::Kubelet`] or [`Component::KubeProxy`].
    pub process: Component,
    /// The config.yaml variable naming the file kube-bench reads for `path` items
    /// (`kubeletconf`, or `proxykubeconfig` for 4.3.1); `None`: command line only (4.2.7).
    pub config_var: Option<&'static str>,
    pub bin_op: BinOp,
    pub items: Vec<TestItem>,
    /// How the component's effective configuration is judged.
    pub effective: EffectiveRule,
}

/// How the effective reading of a configuration check decides whether the control really holds.
///
/// Most checks apply kube-bench's own items to the effective values (defaults applied, Go
/// booleans and integers, list membership). A few of kube-bench's tests are a poor proxy for the
/// control and get a rule of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum EffectiveRule {
    /// kube-bench's items, read with the component's parser against the effective values; an
    /// item with `set: false` passes when the key has no value even after defaults.
    Items,
    /// A Go duration that must not be zero (`0s` is zero; kube-bench compares the text with `0`).
    DurationNotZero { key: &'static str },
    /// An integer that must be above zero (`podPidsLimit`: -1 and 0 mean no limit, yet
    /// kube-bench only asks for presence).
    PositiveInt { key: &'static str },
    /// A boolean that must be true (kube-bench only asks for presence, or that it is not
    /// `false`).
    BoolTrue { key: &'static str },
    /// A `host:port` address whose host must be this one.
    HostIs {
        key: &'static str,
        host: &'static str,
    },
    /// The effective value cannot be read from the component's configuration.
    Unknown { reason: &'static str },
}

/// A check kube-bench runs but kharden does not reproduce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotEvaluated {
    /// What kube-bench reads.
    pub source: ForeignSource,
    /// Why kharden does not.
    pub reason: &'static str,
}

/// What a [`NotEvaluated`] check's audit reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForeignSource {
    /// The Kubernetes API (`kubectl`, with `jq`).
    Kubectl,
    /// A file's contents, found through a process's flag.
    FileContents,
}

/// An automated fix of a file check: remove the permission bits the check forbids and/or set
/// the owner and group. The new mode is always `old & allowed_mode`, so a fix never loosens a
/// file (a 0400 key stays 0400).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileFix {
    /// Permission bits to keep; `None`: the mode is not changed.
    pub allowed_mode: Option<u32>,
    /// Owner and group to set; `None`: not changed.
    pub owner: Option<Owner>,
    /// Why the fix is left to a person when the owner or group does not exist on the node.
    pub account_missing: &'static str,
    /// What the fix does and what an operator should know, in our words.
    pub note: &'static str,
}

/// A value of a `KubeletConfiguration` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum KubeletValue {
    Bool(bool),
    Int(i64),
    Str(&'static str),
    List(&'static [&'static str]),
}

impl std::fmt::Display for KubeletValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KubeletValue::Bool(b) => write!(f, "{b}"),
            KubeletValue::Int(i) => write!(f, "{i}"),
            KubeletValue::Str(s) => f.write_str(s),
            KubeletValue::List(l) => f.write_str(&l.join(",")),
        }
    }
}

/// One key the fix sets, with the flag that sets the same thing (for when a flag wins over the
/// file and must be edited instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KubeletSetting {
    /// The `KubeletConfiguration` field path (`authentication.anonymous.enabled`).
    pub key: &'static str,
    pub value: KubeletValue,
    /// The flag with its dashes (`--anonymous-auth`).
    pub flag: &'static str,
}

impl KubeletSetting {
    /// The flag's spelling of the value (`--tls-cipher-suites=A,B`).
    pub fn flag_value(&self) -> String {
        self.value.to_string()
    }
}

/// An automated fix of a kubelet check: keys set in its configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KubeletFix {
    pub settings: Vec<KubeletSetting>,
    /// What the fix does and what an operator should know, in our words.
    pub note: &'static str,
}
