//! The checks of every benchmark version, as shared definitions, compiled into the binary.
//!
//! One module per section holds its [`CheckDef`]s; each definition lists the kube-bench
//! versions and ids under which that same test appears (`.at("1.2.16", V1_8, V1_8)
//! .at("1.2.15", V1_9, V1_12)`), so a test shared by five versions is written once. When kube-bench
//! changes a test (a bitmask from 600 to 644, a longer cipher list, a second admin kubeconfig),
//! the new test is a new definition with its own versions; titles and fixes that do not change
//! are shared through constants.
//!
//! The benchmarks ([`crate::benchmarks()`]) are views built once on first use (a `LazyLock`)
//! from these definitions: cis-1.8 ... cis-1.12 each from kube-bench's definitions of the same
//! name, and cis-2.0 from cis-1.12's (kube-bench's cis-2.0 has the same checks). A typo in a
//! flag name or an operator is a compile error or a failing unit test, never a runtime parse
//! error on a production node.

pub mod apiserver;
mod controllers;
mod controlplane;
mod etcd;
mod kubelet;
mod master_files;
mod node_files;
mod policies;

use std::sync::LazyLock;

use kharden_manifest::{Change, Mount};

use crate::audit::{
    Audit, ConfigTest, EffectiveRule, FileFix, FileRole, FileSet, FileTest, FlagTest,
    ForeignSource, KubeletFix, KubeletSetting, NotEvaluated, Owner, StatFormat,
};
use crate::model::{
    id_key, section_of, Appearance, Benchmark, BinOp, Check, CheckDef, Cis, Compare, Component,
    Control, Fix, Op, Target, TestItem,
};
use crate::remediation::{ExtraFile, Guard, Remediation};

pub use apiserver::{
    ADMISSION_CONFIG, ADMISSION_CONFIG_PATH, AUDIT_LOG_DIR, AUDIT_LOG_PATH, AUDIT_POLICY,
    AUDIT_POLICY_PATH, STRONG_CIPHERS,
};
pub use kubelet::KUBELET_STRONG_CIPHERS;

/// Every shared definition, in no particular order.
pub fn definitions() -> &'static [CheckDef] {
    &DEFS
}

static DEFS: LazyLock<Vec<CheckDef>> = LazyLock::new(|| {
    let mut all = Vec::new();
    all.extend(master_files::defs());
    all.extend(apiserver::defs());
    all.extend(controllers::defs());
    all.extend(etcd::defs());
    all.extend(controlplane::defs());
    all.extend(node_files::defs());
    all.extend(kubelet::defs());
    all.extend(policies::defs());
    all
});

/// One benchmark id and the definitions it runs.
struct Spec {
    id: &'static str,
    checks_of: Cis,
    kubernetes_versions: &'static [&'static str],
}

const SPECS: &[Spec] = &[
    Spec {
        id: "cis-1.8",
        checks_of: Cis::V1_8,
        kubernetes_versions: &["1.26"],
    },
    Spec {
        id: "cis-1.9",
        checks_of: Cis::V1_9,
        kubernetes_versions: &["1.27"],
    },
    Spec {
        id: "cis-1.10",
        checks_of: Cis::V1_10,
        kubernetes_versions: &["1.28"],
    },
    Spec {
        id: "cis-1.11",
        checks_of: Cis::V1_11,
        kubernetes_versions: &["1.29", "1.30", "1.31"],
    },
    Spec {
        id: "cis-1.12",
        checks_of: Cis::V1_12,
        kubernetes_versions: &["1.32", "1.33", "1.34"],
    },
    Spec {
        id: "cis-2.0",
        checks_of: Cis::V1_12,
        kubernetes_versions: &["1.35"],
    },
];

pub(crate) static BENCHMARKS: LazyLock<Vec<Benchmark>> =
    LazyLock::new(|| SPECS.iter().map(build).collect());

fn build(spec: &Spec) -> Benchmark {
    let defs: &'static [CheckDef] = &DEFS;
    let mut checks: Vec<Check> = defs
        .iter()
        .filter_map(|d| {
            let id = d.id_in(spec.checks_of)?;
            Some(Check {
                id,
                key: d.key,
                title: d.title,
                // Every id starts with its target's number (a unit test checks it).
                target: Target::of_id(id).unwrap_or(Target::Policies),
                section: section_of(id),
                scored: d.scored,
                manual: d.manual,
                audit: &d.audit,
                fix: &d.fix,
            })
        })
        .collect();
    checks.sort_by_key(|c| id_key(c.id));
    let controls = checks
        .iter()
        .filter_map(|c| match c.audit {
            Audit::Flags(t) if t.component.is_control_plane() => Some(Control {
                id: c.id,
                key: c.key,
                title: c.title,
                component: t.component,
                scored: c.scored,
                manual_check: c.manual,
                bin_op: t.bin_op,
                tests: &t.items,
                fix: c.fix,
            }),
            _ => None,
        })
        .collect();
    Benchmark {
        id: spec.id,
        kubernetes_versions: spec.kubernetes_versions,
        checks_of: spec.checks_of,
        controls,
        checks,
    }
}

// ------------------------------------------------------------------ definition builder

/// A definition under construction: `check(key, title, audit).at(...).scored().fix(...)`.
pub(crate) struct Def {
    def: CheckDef,
}

pub(crate) fn check(key: &'static str, title: &'static str, audit: Audit) -> Def {
    Def {
        def: CheckDef {
            key,
            title,
            scored: false,
            manual: false,
            audit,
            fix: Fix::Manual { reason: "" },
            appears: Vec::new(),
        },
    }
}

impl Def {
    /// Appears as `id` from `since` to `until`.
    pub fn at(mut self, id: &'static str, since: Cis, until: Cis) -> Def {
        self.def.appears.push(Appearance { id, since, until });
        self
    }

    /// Appears as `id` in every version carried.
    pub fn all(self, id: &'static str) -> Def {
        self.at(id, Cis::V1_8, Cis::V1_12)
    }

    /// kube-bench's `scored: true`.
    pub fn scored(mut self) -> Def {
        self.def.scored = true;
        self
    }

    /// kube-bench's `type: manual`.
    pub fn manual_type(mut self) -> Def {
        self.def.manual = true;
        self
    }

    pub fn fix(mut self, fix: Fix) -> CheckDef {
        self.def.fix = fix;
        self.def
    }

    /// Set the fix and keep building (for a helper shared by several definitions).
    pub fn with_fix(mut self, fix: Fix) -> Def {
        self.def.fix = fix;
        self
    }

    pub fn done(self) -> CheckDef {
        self.def
    }
}

// ----------------------------------------------------------------------- test items

/// `flag` must be present (any value).
pub(crate) fn present(flag: &'static str) -> TestItem {
    TestItem {
        flag,
        path: None,
        set: true,
        compare: None,
        env: None,
    }
}

/// `flag` must be absent (`set: false`).
pub(crate) fn absent(flag: &'static str) -> TestItem {
    TestItem {
        set: false,
        ..present(flag)
    }
}

/// `flag` must be present and compare with `op` to `value`.
pub(crate) fn cmp(flag: &'static str, op: Op, value: &'static str) -> TestItem {
    TestItem {
        compare: Some(Compare { op, value }),
        ..present(flag)
    }
}

/// The same item with kube-bench's `env` name recorded.
pub(crate) fn env(item: TestItem, name: &'static str) -> TestItem {
    TestItem {
        env: Some(name),
        ..item
    }
}

/// The same item with kube-bench's configuration `path`.
pub(crate) fn at_path(item: TestItem, path: &'static str) -> TestItem {
    TestItem {
        path: Some(path),
        ..item
    }
}

// --------------------------------------------------------------------------- audits

/// A control-plane component's command line.
pub(crate) fn flags(component: Component, bin_op: BinOp, items: Vec<TestItem>) -> Audit {
    Audit::Flags(FlagTest {
        component,
        bin_op,
        items,
    })
}

pub(crate) const ROOT: Owner = Owner {
    user: "root",
    group: "root",
};

fn octal(mode: &'static str) -> Option<u32> {
    u32::from_str_radix(mode, 8).ok()
}

/// `stat -c permissions=%a` tested with `bitmask MODE` (the most common file test).
pub(crate) fn perms(role: FileRole, files: FileSet, mode: &'static str) -> FileTest {
    FileTest {
        role,
        files,
        format: StatFormat::Permissions,
        multiple: false,
        bin_op: BinOp::And,
        items: vec![cmp("permissions", Op::Bitmask, mode)],
        if_missing: None,
        allowed_mode: octal(mode),
        owner: None,
    }
}

/// `stat -c %U:%G` tested for the text `root:root` (no compare: a substring test).
pub(crate) fn owned(role: FileRole, files: FileSet, owner: Owner, text: &'static str) -> FileTest {
    FileTest {
        role,
        files,
        format: StatFormat::Owner,
        multiple: false,
        bin_op: BinOp::And,
        items: vec![present(text)],
        if_missing: None,
        allowed_mode: None,
        owner: Some(owner),
    }
}

impl FileTest {
    /// kube-bench's `use_multiple_values: true`.
    pub(crate) fn multiple(mut self) -> FileTest {
        self.multiple = true;
        self
    }

    pub(crate) fn bin_op(mut self, op: BinOp) -> FileTest {
        self.bin_op = op;
        self
    }

    pub(crate) fn items(mut self, items: Vec<TestItem>) -> FileTest {
        self.items = items;
        self
    }

    pub(crate) fn format(mut self, format: StatFormat) -> FileTest {
        self.format = format;
        self
    }

    pub(crate) fn if_missing(mut self, text: &'static str) -> FileTest {
        self.if_missing = Some(text);
        self
    }

    pub(crate) fn audit(self) -> Audit {
        Audit::File(self)
    }
}

pub(crate) fn var(var: &'static str) -> FileSet {
    FileSet::Var { var }
}

/// A kubelet check: command line, else `$kubeletconf`.
pub(crate) fn kubelet_config(
    bin_op: BinOp,
    items: Vec<TestItem>,
    effective: EffectiveRule,
) -> Audit {
    Audit::Config(ConfigTest {
        process: Component::Kubelet,
        config_var: Some("kubeletconf"),
        bin_op,
        items,
        effective,
    })
}

/// A check kube-bench audits through the API.
pub(crate) fn via_kubectl(reason: &'static str) -> Audit {
    Audit::NotEvaluated(NotEvaluated {
        source: ForeignSource::Kubectl,
        reason,
    })
}

// ---------------------------------------------------------------------------- fixes

pub(crate) fn manual(reason: &'static str) -> Fix {
    Fix::Manual { reason }
}

pub(crate) fn fix(changes: Vec<Change>, note: &'static str) -> Fix {
    Fix::Manifest(Remediation {
        changes,
        files: Vec::new(),
        guards: Vec::new(),
        note,
    })
}

pub(crate) fn fix_with(
    changes: Vec<Change>,
    files: Vec<ExtraFile>,
    guards: Vec<Guard>,
    note: &'static str,
) -> Fix {
    Fix::Manifest(Remediation {
        changes,
        files,
        guards,
        note,
    })
}

const OWNER_MISSING: &str = "kharden only gives files to users and groups that exist; \
    creating one is the operator's decision";

/// Remove the permission bits outside `mode` (`new = old & mode`).
pub(crate) fn chmod(mode: u32, note: &'static str) -> Fix {
    Fix::File(FileFix {
        allowed_mode: Some(mode),
        owner: None,
        account_missing: OWNER_MISSING,
        note,
    })
}

/// Set the owner and group.
pub(crate) fn chown(owner: Owner, note: &'static str) -> Fix {
    Fix::File(FileFix {
        allowed_mode: None,
        owner: Some(owner),
        account_missing: OWNER_MISSING,
        note,
    })
}

/// Set kubelet configuration keys.
pub(crate) fn kubelet_fix(settings: Vec<KubeletSetting>, note: &'static str) -> Fix {
    Fix::Kubelet(KubeletFix { settings, note })
}

pub(crate) fn set(name: &str, value: &str) -> Change {
    Change::Set {
        name: name.to_string(),
        value: Some(value.to_string()),
    }
}

pub(crate) fn unset(name: &str) -> Change {
    Change::Unset {
        name: name.to_string(),
    }
}

pub(crate) fn add_item(name: &str, item: &str) -> Change {
    Change::AddItem {
        name: name.to_string(),
        item: item.to_string(),
    }
}

pub(crate) fn remove_item(name: &str, item: &str) -> Change {
    Change::RemoveItem {
        name: name.to_string(),
        item: item.to_string(),
        if_empty: None,
    }
}

pub(crate) fn at_least(name: &str, min: i64) -> Change {
    Change::AtLeast {
        name: name.to_string(),
        min,
    }
}

/// A hostPath mount at the same path inside the container.
pub(crate) fn mount(name: &str, path: &str, read_only: bool, path_type: &str) -> Change {
    Change::Mount(Mount {
        name: name.to_string(),
        host_path: path.to_string(),
        mount_path: path.to_string(),
        read_only,
        path_type: Some(path_type.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn definitions_are_consistent() {
        let mut keys = BTreeSet::new();
        for d in definitions() {
            assert!(keys.insert(d.key), "duplicate key {}", d.key);
            assert!(!d.appears.is_empty(), "{} appears nowhere", d.key);
            assert!(!d.title.is_empty(), "{}", d.key);
            for a in &d.appears {
                assert!(a.since <= a.until, "{}", d.key);
                assert!(Target::of_id(a.id).is_some(), "{}: id {}", d.key, a.id);
            }
            // No two appearances of one definition cover the same version.
            for v in Cis::ALL {
                assert!(
                    d.appears.iter().filter(|a| a.covers(v)).count() <= 1,
                    "{} twice in {v:?}",
                    d.key
                );
            }
            // A manual fix always says why; an automated one says what it does.
            match &d.fix {
                Fix::Manual { reason } => assert!(reason.len() > 20, "{}", d.key),
                Fix::Manifest(r) => assert!(!r.note.is_empty(), "{}", d.key),
                Fix::File(f) => {
                    assert!(!f.note.is_empty(), "{}", d.key);
                    assert!(f.allowed_mode.is_some() || f.owner.is_some(), "{}", d.key);
                }
                Fix::Kubelet(k) => {
                    assert!(!k.note.is_empty() && !k.settings.is_empty(), "{}", d.key)
                }
            }
            // Fixes match their audit kind.
            match (&d.audit, &d.fix) {
                (_, Fix::Manual { .. }) => {}
                (Audit::Flags(_), Fix::Manifest(_)) => {}
                (Audit::File(t), Fix::File(f)) => {
                    assert_eq!(f.allowed_mode, t.allowed_mode, "{}", d.key);
                    assert_eq!(f.owner, t.owner, "{}", d.key);
                }
                (Audit::Config(t), Fix::Kubelet(_)) => {
                    assert_eq!(t.process, Component::Kubelet, "{}", d.key)
                }
                _ => panic!("{}: fix does not match the audit", d.key),
            }
            // Every configuration path parses.
            for i in d.audit.items() {
                if let Some(p) = i.path {
                    assert!(crate::config_path::parse(p).is_ok(), "{}: {p}", d.key);
                }
            }
            // Audits without a test are manual.
            if matches!(d.audit, Audit::None) {
                assert!(d.manual, "{}", d.key);
            }
        }
    }

    #[test]
    fn one_id_per_version() {
        for b in crate::benchmarks() {
            let ids: Vec<&str> = b.checks.iter().map(|c| c.id).collect();
            let unique: BTreeSet<&str> = ids.iter().copied().collect();
            assert_eq!(ids.len(), unique.len(), "{}", b.id);
            for c in &b.checks {
                assert_eq!(Target::of_id(c.id), Some(c.target), "{}", c.id);
            }
        }
    }
}
