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
//!   `NodeRestriction`), or, for a `KEY=VALUE` operand, the last value of `KEY` in a
//!   `K=V,K=V` map flag such as `--feature-gates`.

use kharden_manifest::flags::parse_flags;

use crate::kube_bench;
use crate::model::{Compare, Op, TestItem};

/// The effective value of `name` (without dashes): `None` when absent.
pub fn value(argv: &[String], name: &str) -> Option<String> {
    let occ = parse_flags(argv)
        .into_iter()
        .rev()
        .find(|f| f.name == name)?;
    Some(match occ.value {
        Some(v) => v,
        None => match argv.get(occ.index + 1) {
            Some(next) if !next.starts_with('-') => next.clone(),
            _ => "true".to_string(),
        },
    })
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

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower.clone())
    };
    // Underscores are only allowed with a base prefix, between digits (the prefix counts as
    // a digit, so one may follow it directly).
    let digits = if radix != 10 && digits.contains('_') {
        if digits.ends_with('_') || digits.contains("__") {
            return None;
        }
        digits.replace('_', "")
    } else {
        digits
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(&digits, radix).ok()?;
    let v = if neg { -magnitude } else { magnitude };
    i64::try_from(v).ok()
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
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
        Some((key, want)) => {
            let last = list(actual)
                .filter_map(|kv| kv.split_once('='))
                .filter(|(k, _)| k.trim() == key)
                .last()
                .map(|(_, v)| v.trim());
            last.is_some_and(|v| equals(v, want))
        }
        None => list(actual).any(|item| item == expected),
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
    fn go_integers_and_booleans() {
        assert_eq!(parse_int("30"), Some(30));
        assert_eq!(parse_int("0x1e"), Some(30));
        assert_eq!(parse_int("036"), Some(30));
        assert_eq!(parse_int("0o36"), Some(30));
        assert_eq!(parse_int("-5"), Some(-5));
        assert_eq!(parse_int("0x_1e"), Some(30));
        assert_eq!(parse_int("3_0"), None);
        assert_eq!(parse_int(" 30"), None);
        assert_eq!(parse_int("0"), Some(0));
        assert_eq!(parse_bool("F"), Some(false));
        assert_eq!(parse_bool("no"), None);
    }

    #[test]
    fn membership_not_substring() {
        let c = |op, value| Compare { op, value };
        assert!(!compare(c(Op::Has, "Node"), "NodeRestriction,RBAC"));
        assert!(compare(c(Op::Has, "Node"), "Node, RBAC"));
        let gate = c(Op::NotHave, "RotateKubeletServerCertificate=false");
        assert!(!compare(gate, "RotateKubeletServerCertificate=False"));
        assert!(compare(
            gate,
            "RotateKubeletServerCertificate=false,RotateKubeletServerCertificate=true"
        ));
    }
}
