//! The shape of a catalog entry.
//!
//! Controls are data, not code: the same [`Control`] value drives `kharden audit` (through
//! [`crate::evaluate`]) and `kharden harden` (through its [`Fix`]). Keeping the kube-bench test
//! definition (flag, op, value, `set`, `bin_op`, `scored`, `type: manual`) verbatim in the data
//! lets the tests compare the catalog field by field with kube-bench's own YAML.

use serde::Serialize;

use crate::remediation::Remediation;

/// A control-plane component whose command line a control inspects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    ApiServer,
    ControllerManager,
    Scheduler,
    Etcd,
}

impl Component {
    /// Every component, in the order kube-bench reports them.
    pub const ALL: [Component; 4] = [
        Component::ApiServer,
        Component::ControllerManager,
        Component::Scheduler,
        Component::Etcd,
    ];

    /// The binary / static pod name (`kube-apiserver`, ..., `etcd`), as
    /// `kharden_manifest::PodInfo::component` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Component::ApiServer => "kube-apiserver",
            Component::ControllerManager => "kube-controller-manager",
            Component::Scheduler => "kube-scheduler",
            Component::Etcd => "etcd",
        }
    }

    /// The inverse of [`Component::name`].
    pub fn from_name(name: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// kube-bench's comparison operators (`compare.op`).
///
/// `regex` is not modelled: no control of the sections in this catalog uses it, and a regex
/// engine would be a dependency for nothing.
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
    /// The flag as kube-bench spells it, with its leading dashes (`--profiling`).
    pub flag: &'static str,
    /// kube-bench's `set` (default `true`): `false` means "the flag must be absent".
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

/// What `kharden harden` may do about a failing control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Fix {
    /// Safe and self-contained: the changes and files fix it.
    Automated(Remediation),
    /// Needs a person: `reason` says why (in our words, not CIS text).
    Manual { reason: &'static str },
}

/// One CIS control that tests a component's command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Control {
    /// CIS / kube-bench id, e.g. `1.2.15`.
    pub id: &'static str,
    /// A short title in our own words.
    pub title: &'static str,
    pub component: Component,
    /// kube-bench's `scored`: an unscored failing control is reported WARN, not FAIL.
    pub scored: bool,
    /// kube-bench's `type: manual`: no test is run, the result is always WARN.
    pub manual_check: bool,
    pub bin_op: BinOp,
    pub tests: Vec<TestItem>,
    pub fix: Fix,
}

impl Control {
    pub fn component(&self) -> Component {
        self.component
    }

    /// True when `kharden harden` may apply [`Control::remediation`] on its own.
    pub fn is_automatable(&self) -> bool {
        matches!(self.fix, Fix::Automated(_))
    }

    /// The automated remediation, if any.
    pub fn remediation(&self) -> Option<&Remediation> {
        match &self.fix {
            Fix::Automated(r) => Some(r),
            Fix::Manual { .. } => None,
        }
    }

    /// Why this control is left to a person, if it is.
    pub fn manual_reason(&self) -> Option<&'static str> {
        match self.fix {
            Fix::Manual { reason } => Some(reason),
            Fix::Automated(_) => None,
        }
    }

    /// The distinct flags the tests read, in order (with dashes).
    pub fn flags(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for t in &self.tests {
            if !out.contains(&t.flag) {
                out.push(t.flag);
            }
        }
        out
    }
}

/// One benchmark version: its id (`cis-1.12`) and its controls in id order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Benchmark {
    pub id: &'static str,
    /// Kubernetes minor versions kube-bench maps to this benchmark (`cfg/config.yaml`).
    pub kubernetes_versions: &'static [&'static str],
    pub controls: Vec<Control>,
}

impl Benchmark {
    /// The control with this id.
    pub fn control(&self, id: &str) -> Option<&Control> {
        self.controls.iter().find(|c| c.id == id)
    }

    /// The controls about one component, in id order.
    pub fn controls_for(&self, component: Component) -> impl Iterator<Item = &Control> {
        self.controls
            .iter()
            .filter(move |c| c.component == component)
    }
}
