//! Benchmark versions, one module per version, compiled into the binary.
//!
//! Each version is plain Rust data built once on first use (a `LazyLock`), so a typo in a
//! flag name or an operator is a compile error or a failing unit test, never a runtime parse
//! error on a production node. Helpers here keep the data files short and readable.

pub mod cis_1_12;

use kharden_manifest::{Change, Mount};

use crate::model::{BinOp, Compare, Component, Control, Fix, Op, TestItem};
use crate::remediation::{ExtraFile, Guard, Remediation};

/// `flag` must be present (any value).
pub(crate) fn present(flag: &'static str) -> TestItem {
    TestItem {
        flag,
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

/// A control; `fix` says what harden may do.
pub(crate) struct Def {
    pub id: &'static str,
    pub title: &'static str,
    pub component: Component,
    pub scored: bool,
    pub bin_op: BinOp,
    pub tests: Vec<TestItem>,
    pub fix: Fix,
}

impl From<Def> for Control {
    fn from(d: Def) -> Control {
        Control {
            id: d.id,
            title: d.title,
            component: d.component,
            scored: d.scored,
            manual_check: false,
            bin_op: d.bin_op,
            tests: d.tests,
            fix: d.fix,
        }
    }
}

pub(crate) fn manual(reason: &'static str) -> Fix {
    Fix::Manual { reason }
}

pub(crate) fn fix(changes: Vec<Change>, note: &'static str) -> Fix {
    Fix::Automated(Remediation {
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
    Fix::Automated(Remediation {
        changes,
        files,
        guards,
        note,
    })
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
