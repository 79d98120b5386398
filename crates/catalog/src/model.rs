//! The shape of a catalog entry.
//!
//! Checks are data, not code: one [`CheckDef`] holds kube-bench's test for a check (what is read,
//! how it is compared), our own short title and what `kharden harden` may do about it ([`Fix`]),
//! and lists the benchmark versions and ids under which kube-bench carries that same test. A
//! benchmark is then a list of light views ([`Check`], and [`Control`] for the command-line
//! checks the older API serves) that point at the shared definitions: ids shift between versions
//! (1.2.16 in cis-1.8 is 1.2.15 from cis-1.9 on), tests rarely do, and a correction made once
//! holds for every version that shares the test.
//!
//! Keeping kube-bench's test definition (flag, path, op, value, `set`, `bin_op`, `scored`,
//! `type: manual`, `use_multiple_values`) verbatim in the data lets the tests compare the catalog
//! field by field with kube-bench's own YAML.

use serde::Serialize;

use crate::audit::{Audit, FileFix, KubeletFix};
use crate::remediation::Remediation;

/// A process whose command line (or configuration) a check inspects.
///
/// The first four are the control-plane static pods; the kubelet and kube-proxy are the node's
/// own components (section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    ApiServer,
    ControllerManager,
    Scheduler,
    Etcd,
    Kubelet,
    KubeProxy,
}

impl Component {
    /// Every component, control plane first, in the order kube-bench reports them.
    pub const ALL: [Component; 6] = [
        Component::ApiServer,
        Component::ControllerManager,
        Component::Scheduler,
        Component::Etcd,
        Component::Kubelet,
        Component::KubeProxy,
    ];

    /// The control-plane components, which run as static pods.
    pub const CONTROL_PLANE: [Component; 4] = [
        Component::ApiServer,
        Component::ControllerManager,
        Component::Scheduler,
        Component::Etcd,
    ];

    /// The binary / static pod name (`kube-apiserver`, ..., `etcd`, `kubelet`, `kube-proxy`), as
    /// `kharden_manifest::PodInfo::component` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Component::ApiServer => "kube-apiserver",
            Component::ControllerManager => "kube-controller-manager",
            Component::Scheduler => "kube-scheduler",
            Component::Etcd => "etcd",
            Component::Kubelet => "kubelet",
            Component::KubeProxy => "kube-proxy",
        }
    }

    /// The inverse of [`Component::name`].
    pub fn from_name(name: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.name() == name)
    }

    /// True for the four static-pod components.
    pub fn is_control_plane(self) -> bool {
        Component::CONTROL_PLANE.contains(&self)
    }
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// kube-bench's comparison operators (`compare.op`).
///
/// `regex` is not modelled: no check of the benchmarks carried here uses it, and a regex engine
/// would be a dependency for nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    #[serde(rename = "noteq")]
    NotEq,
    Gt,
    Gte,
    Lt,
    Lte,
    /// Substring test on the value (kube-bench), list/map membership (flag parser).
    Has,
    /// Negated [`Op::Has`].
    #[serde(rename = "nothave")]
    NotHave,
    /// Every comma-separated element of the value is one of the comma-separated allowed ones.
    ValidElements,
    /// Octal permission bits are a subset of the given ones.
    Bitmask,
}

impl Op {
    /// kube-bench's spelling of the operator.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::NotEq => "noteq",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Has => "has",
            Op::NotHave => "nothave",
            Op::ValidElements => "valid_elements",
            Op::Bitmask => "bitmask",
        }
    }

    /// Parse kube-bench's spelling.
    pub fn parse(s: &str) -> Option<Op> {
        [
            Op::Eq,
            Op::NotEq,
            Op::Gt,
            Op::Gte,
            Op::Lt,
            Op::Lte,
            Op::Has,
            Op::NotHave,
            Op::ValidElements,
            Op::Bitmask,
        ]
        .into_iter()
        .find(|op| op.as_str() == s)
    }
}

/// `compare: { op, value }` of a test item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Compare {
    pub op: Op,
    /// The value exactly as kube-bench reads it (YAML `false` is the string `"false"`).
    pub value: &'static str,
}

/// One kube-bench `test_items` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TestItem {
    /// The text kube-bench searches the audit output for: a flag with its leading dashes
    /// (`--profiling`), or a word of a file test's output (`permissions`, `root:root`).
    pub flag: &'static str,
    /// kube-bench's `path`: a JSONPath into the configuration file (kubelet and kube-proxy
    /// checks), read only when `flag` is not on the command line. See [`crate::config_path`].
    pub path: Option<&'static str>,
    /// kube-bench's `set` (default `true`): `false` means "must be absent".
    pub set: bool,
    pub compare: Option<Compare>,
    /// kube-bench's `env` (etcd's `ETCD_*` variables). Recorded, not evaluated: see the crate
    /// docs.
    pub env: Option<&'static str>,
}

impl TestItem {
    /// The flag name without leading dashes, as `kharden_manifest::Change` names flags.
    pub fn name(&self) -> &'static str {
        self.flag.trim_start_matches('-')
    }
}

/// How a check's test items combine (`bin_op`; kube-bench's default is `and`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BinOp {
    And,
    Or,
}

/// What `kharden harden` may do about a failing check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Fix {
    /// A control-plane static pod's manifest: flags, mounts, files to write, guards.
    Manifest(Remediation),
    /// A file's permissions and/or ownership (sections 1.1 and 4.1).
    File(FileFix),
    /// A `KubeletConfiguration` key (or the equivalent flag) set to a value (section 4.2).
    Kubelet(KubeletFix),
    /// Needs a person: `reason` says why (in our words, not CIS text).
    Manual { reason: &'static str },
}

impl Fix {
    /// True when kharden may apply the fix on its own (a [`FileFix`] may still be held back by
    /// the node's facts: see [`crate::plan_file_fix`]).
    pub fn is_automated(&self) -> bool {
        !matches!(self, Fix::Manual { .. })
    }

    /// Why a person must do it, if so.
    pub fn manual_reason(&self) -> Option<&'static str> {
        match self {
            Fix::Manual { reason } => Some(reason),
            _ => None,
        }
    }
}

/// One of kube-bench's targets (its `node_type`): the five files of a benchmark version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Section 1: control-plane files, API server, controller manager, scheduler.
    Master,
    /// Section 2: etcd.
    Etcd,
    /// Section 3: authentication and logging of the control plane.
    ControlPlane,
    /// Section 4: worker node files, kubelet, kube-proxy.
    Node,
    /// Section 5: cluster policies (RBAC, pod security, ...), audited through the API.
    Policies,
}

impl Target {
    pub const ALL: [Target; 5] = [
        Target::Master,
        Target::Etcd,
        Target::ControlPlane,
        Target::Node,
        Target::Policies,
    ];

    /// kube-bench's name (`--targets`, the report's `node_type`).
    pub fn name(self) -> &'static str {
        match self {
            Target::Master => "master",
            Target::Etcd => "etcd",
            Target::ControlPlane => "controlplane",
            Target::Node => "node",
            Target::Policies => "policies",
        }
    }

    /// The inverse of [`Target::name`].
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The section number (`"1"` ... `"5"`), the first component of every id of the target.
    pub fn number(self) -> &'static str {
        match self {
            Target::Master => "1",
            Target::Etcd => "2",
            Target::ControlPlane => "3",
            Target::Node => "4",
            Target::Policies => "5",
        }
    }

    /// A short title for the target's part of a report.
    pub fn title(self) -> &'static str {
        match self {
            Target::Master => "Control plane components",
            Target::Etcd => "etcd",
            Target::ControlPlane => "Control plane configuration",
            Target::Node => "Worker node",
            Target::Policies => "Cluster policies",
        }
    }

    /// The target a check id belongs to (`1.2.15` -> master).
    pub fn of_id(id: &str) -> Option<Target> {
        let first = id.split('.').next()?;
        Target::ALL.into_iter().find(|t| t.number() == first)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The group (section) a check id belongs to, as kube-bench groups them: `1.2` for `1.2.15`,
/// `2` for every etcd check, `5.7` for `5.7.1`.
pub fn section_of(id: &str) -> String {
    let mut parts = id.split('.');
    match (parts.next(), parts.next()) {
        (Some("2"), _) | (Some(_), None) => id.split('.').next().unwrap_or(id).to_string(),
        (Some(a), Some(b)) => format!("{a}.{b}"),
        (None, _) => String::new(),
    }
}

/// A short title for a section id (`1.1`, `4.2`, ...). Our words; kube-bench's group names
/// are close to these.
pub fn section_title(section: &str) -> &'static str {
    match section {
        "1.1" => "Control plane node configuration files",
        "1.2" => "API server",
        "1.3" => "Controller manager",
        "1.4" => "Scheduler",
        "2" => "etcd",
        "3.1" => "Authentication and authorization",
        "3.2" => "Logging",
        "4.1" => "Worker node configuration files",
        "4.2" => "Kubelet",
        "4.3" => "kube-proxy",
        "5.1" => "RBAC and service accounts",
        "5.2" => "Pod security standards",
        "5.3" => "Network policies and CNI",
        "5.4" => "Secrets management",
        "5.5" => "Extensible admission control",
        "5.6" | "5.7" => "General policies",
        _ => "Other",
    }
}

/// Numeric sort key of a dotted id (`1.2.10` after `1.2.9`).
pub fn id_key(id: &str) -> Vec<u32> {
    id.split('.').filter_map(|p| p.parse().ok()).collect()
}

/// The sets of kube-bench check definitions this catalog carries (`cfg/cis-V/`), oldest first.
/// A benchmark id (`cis-2.0`) may use the definitions of another (see [`Benchmark::checks_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Cis {
    #[serde(rename = "cis-1.8")]
    V1_8,
    #[serde(rename = "cis-1.9")]
    V1_9,
    #[serde(rename = "cis-1.10")]
    V1_10,
    #[serde(rename = "cis-1.11")]
    V1_11,
    #[serde(rename = "cis-1.12")]
    V1_12,
}

impl Cis {
    pub const ALL: [Cis; 5] = [Cis::V1_8, Cis::V1_9, Cis::V1_10, Cis::V1_11, Cis::V1_12];

    /// kube-bench's directory name (`cis-1.12`).
    pub fn id(self) -> &'static str {
        match self {
            Cis::V1_8 => "cis-1.8",
            Cis::V1_9 => "cis-1.9",
            Cis::V1_10 => "cis-1.10",
            Cis::V1_11 => "cis-1.11",
            Cis::V1_12 => "cis-1.12",
        }
    }
}

/// Where a shared definition appears: under `id`, in every definition set from `since` to
/// `until` (inclusive; ids only ever shift at a version boundary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Appearance {
    pub id: &'static str,
    pub since: Cis,
    pub until: Cis,
}

impl Appearance {
    pub fn covers(&self, v: Cis) -> bool {
        self.since <= v && v <= self.until
    }
}

/// One check as kube-bench defines it, shared by every version that carries the same test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckDef {
    /// A stable name that does not change when the id does (`apiserver-profiling`).
    pub key: &'static str,
    /// A short title in our own words.
    pub title: &'static str,
    /// kube-bench's `scored`: an unscored failing check is reported WARN, not FAIL.
    pub scored: bool,
    /// kube-bench's `type: manual`: no test is run, the result is always WARN.
    pub manual: bool,
    pub audit: Audit,
    pub fix: Fix,
    /// The versions and ids under which kube-bench carries this test.
    pub appears: Vec<Appearance>,
}

impl CheckDef {
    /// The id under which `v` carries this check, if it does.
    pub fn id_in(&self, v: Cis) -> Option<&'static str> {
        self.appears.iter().find(|a| a.covers(v)).map(|a| a.id)
    }
}

/// One check of one benchmark version: its id there, and the shared definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// CIS / kube-bench id in this version, e.g. `1.2.15`.
    pub id: &'static str,
    /// The definition's stable key (same in every version).
    pub key: &'static str,
    pub title: &'static str,
    pub target: Target,
    /// kube-bench's group id: `1.2`, `2`, `4.1`, ...
    pub section: String,
    pub scored: bool,
    /// kube-bench's `type: manual`.
    pub manual: bool,
    pub audit: &'static Audit,
    pub fix: &'static Fix,
}

impl Check {
    /// The component whose process the check reads, if it reads one (flag and configuration
    /// checks).
    pub fn component(&self) -> Option<Component> {
        self.audit.component()
    }

    /// True when kharden may fix it on its own (see [`crate::plan_file_fix`] for the facts that
    /// can still hold a file fix back).
    pub fn is_automatable(&self) -> bool {
        self.fix.is_automated()
    }

    /// Why a person must fix it, if so.
    pub fn manual_reason(&self) -> Option<&'static str> {
        self.fix.manual_reason()
    }

    /// kube-bench's check type: `manual` or `automated`.
    pub fn check_type(&self) -> &'static str {
        if self.manual {
            "manual"
        } else {
            "automated"
        }
    }

    /// The manifest remediation, for a command-line check with an automated fix.
    pub fn remediation(&self) -> Option<&'static Remediation> {
        match self.fix {
            Fix::Manifest(r) => Some(r),
            _ => None,
        }
    }

    /// The file fix, for a file check with an automated fix.
    pub fn file_fix(&self) -> Option<&'static FileFix> {
        match self.fix {
            Fix::File(f) => Some(f),
            _ => None,
        }
    }

    /// The kubelet fix, for a kubelet check with an automated fix.
    pub fn kubelet_fix(&self) -> Option<&'static KubeletFix> {
        match self.fix {
            Fix::Kubelet(k) => Some(k),
            _ => None,
        }
    }
}

/// One command-line check of a control-plane component (sections 1.2-1.4, 2 and 3.2.1): the view
/// the first API of this crate served, kept for its callers. [`Benchmark::checks`] holds every
/// check; this is the subset whose audit is a control-plane process's flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Control {
    /// CIS / kube-bench id, e.g. `1.2.15`.
    pub id: &'static str,
    /// The definition's stable key.
    pub key: &'static str,
    /// A short title in our own words.
    pub title: &'static str,
    pub component: Component,
    /// kube-bench's `scored`: an unscored failing control is reported WARN, not FAIL.
    pub scored: bool,
    /// kube-bench's `type: manual`: no test is run, the result is always WARN.
    pub manual_check: bool,
    pub bin_op: BinOp,
    pub tests: &'static [TestItem],
    pub fix: &'static Fix,
}

impl Control {
    pub fn component(&self) -> Component {
        self.component
    }

    /// True when `kharden harden` may apply [`Control::remediation`] on its own.
    pub fn is_automatable(&self) -> bool {
        matches!(self.fix, Fix::Manifest(_))
    }

    /// The automated remediation, if any.
    pub fn remediation(&self) -> Option<&'static Remediation> {
        match self.fix {
            Fix::Manifest(r) => Some(r),
            _ => None,
        }
    }

    /// Why this control is left to a person, if it is.
    pub fn manual_reason(&self) -> Option<&'static str> {
        self.fix.manual_reason()
    }

    /// The distinct flags the tests read, in order (with dashes).
    pub fn flags(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for t in self.tests {
            if !out.contains(&t.flag) {
                out.push(t.flag);
            }
        }
        out
    }
}

/// One section of a benchmark, for grouping reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    /// `1.1`, `2`, `5.7`, ...
    pub id: String,
    pub title: &'static str,
    pub target: Target,
}

/// One benchmark version: its id (`cis-1.12`) and its checks in id order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Benchmark {
    pub id: &'static str,
    /// Kubernetes minor versions that select this benchmark (kube-bench's `version_mapping`,
    /// plus kharden's entry for cis-2.0: see [`crate::select_benchmark`]).
    pub kubernetes_versions: &'static [&'static str],
    /// The kube-bench definitions whose checks this benchmark runs (`cis-1.12` for `cis-2.0`).
    pub checks_of: Cis,
    /// The command-line checks of the control-plane components (1.2-1.4, 2, 3.2.1), the view
    /// [`crate::evaluate`] serves.
    pub controls: Vec<Control>,
    /// Every check of every target, in kube-bench's order.
    pub checks: Vec<Check>,
}

impl Benchmark {
    /// The command-line control with this id.
    pub fn control(&self, id: &str) -> Option<&Control> {
        self.controls.iter().find(|c| c.id == id)
    }

    /// The command-line controls about one component, in id order.
    pub fn controls_for(&self, component: Component) -> impl Iterator<Item = &Control> {
        self.controls
            .iter()
            .filter(move |c| c.component == component)
    }

    /// The check with this id.
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// The check with this definition key.
    pub fn check_by_key(&self, key: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.key == key)
    }

    /// The checks of one target, in id order.
    pub fn checks_for(&self, target: Target) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(move |c| c.target == target)
    }

    /// The sections, in order, each once.
    pub fn sections(&self) -> Vec<Section> {
        let mut out: Vec<Section> = Vec::new();
        for c in &self.checks {
            if out.last().map(|s| s.id.as_str()) != Some(c.section.as_str()) {
                out.push(Section {
                    id: c.section.clone(),
                    title: section_title(&c.section),
                    target: c.target,
                });
            }
        }
        out
    }
}
