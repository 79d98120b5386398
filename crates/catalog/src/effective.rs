//! The value the component itself uses: the Kubernetes flag parser's (spf13/pflag) view.
//!
//! This is what actually protects the cluster, so `kharden audit` computes it next to
//! kube-bench's reading and reports when they disagree. Rules:
//!
//! - exact flag names only (no substring matches);
//! - the *last* occurrence of a repeated flag wins;
//! - `--flag value` (two argv items) takes the next item as the value when it does not start
//!   with `-` (a control-plane component accepts no positional arguments, so that is the only
//!   reading under which the process runs); a bare `--flag` is a boolean `true`;
//!   `--flag=` is the empty string;
//! - booleans are compared the way Go's `strconv.ParseBool` reads them (`0`, `f`, `FALSE`...);
//! - integers are Go `ParseInt(s, 0, 64)` (decimal, `0x`, `0o`, `0b`, `_` separators);
//! - `has`/`nothave` test membership of a comma-separated list (`Node` is not in
//!   `NodeRestriction`; items are not trimmed, as pflag's `StringSlice` does not), or, for a
//!   `KEY=VALUE` operand, the last value of `KEY` in a `K=V,K=V` map flag such as
//!   `--feature-gates` (keys and values trimmed, as the feature-gate parser does).
//!
//! The reading itself (`Flags`, `parse_bool`, `parse_int`) is `kharden_manifest::flags`, the
//! one reader of a flag's value that the editor and the audit use too.

use kharden_manifest::flags::{list_items, map_value, parse_bool, parse_int, Flags};

use crate::kube_bench;
use crate::model::{Compare, Op, TestItem};

/// The effective value of `name` (without dashes) in a component's own flags: `None` when
/// absent, `"true"` for a bare flag. Read by [`Flags`], the reader the editor and the audit use.
pub fn value(argv: &[String], name: &str) -> Option<String> {
    Flags::parse(argv).effective(name).map(str::to_string)
}

/// One test item under the flag parser's rules, given [`value`].
pub fn item_passes(item: &TestItem, found: Option<&str>) -> bool {
    if !item.set {
        return found.is_none();
    }
    match (found, item.compare) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(v), Some(c)) => compare(c, v),
    }
}

/// Equality, with booleans compared as booleans when the expected value is one.
fn equals(actual: &str, expected: &str) -> bool {
    match (parse_bool(expected), parse_bool(actual)) {
        (Some(e), Some(a)) => e == a,
        _ => actual == expected,
    }
}

/// `has` under the flag parser: list membership, or map lookup for `KEY=VALUE`.
fn has(actual: &str, expected: &str) -> bool {
    match expected.split_once('=') {
        Some((key, want)) => map_value(actual, key).is_some_and(|v| equals(v, want)),
        None => list_items(actual).contains(&expected),
    }
}

/// The operators under the flag parser's rules.
pub fn compare(c: Compare, actual: &str) -> bool {
    match c.op {
        Op::Eq => equals(actual, c.value),
        Op::NotEq => !equals(actual, c.value),
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
            let (Some(a), Some(b)) = (parse_int(actual), parse_int(c.value)) else {
                return false;
            };
            match c.op {
                Op::Gt => a > b,
                Op::Gte => a >= b,
                Op::Lt => a < b,
                _ => a <= b,
            }
        }
        Op::Has => has(actual, c.value),
        Op::NotHave => !has(actual, c.value),
        Op::ValidElements | Op::Bitmask => kube_bench::compare(c, actual),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn last_occurrence_and_two_item_values() {
        let a = argv(&["--p=true", "--x", "7", "--p=false", "--b", "--e="]);
        assert_eq!(value(&a, "p").as_deref(), Some("false"));
        assert_eq!(value(&a, "x").as_deref(), Some("7"));
        assert_eq!(value(&a, "b").as_deref(), Some("true"));
        assert_eq!(value(&a, "e").as_deref(), Some(""));
        assert_eq!(value(&a, "q"), None);
    }

    #[test]
    fn membership_not_substring() {
        let c = |op, value| Compare { op, value };
        assert!(!compare(c(Op::Has, "Node"), "NodeRestriction,RBAC"));
        assert!(compare(c(Op::Has, "Node"), "Node, RBAC"));
        // List items are not trimmed (pflag's StringSlice keeps the space).
        assert!(!compare(c(Op::Has, "RBAC"), "Node, RBAC"));
        let gate = c(Op::NotHave, "RotateKubeletServerCertificate=false");
        assert!(!compare(gate, "RotateKubeletServerCertificate=False"));
        assert!(compare(
            gate,
            "RotateKubeletServerCertificate=false,RotateKubeletServerCertificate=true"
        ));
    }
}
