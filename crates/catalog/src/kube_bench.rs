//! kube-bench's reading of a command line, reproduced exactly, quirks included.
//!
//! kube-bench runs `ps -ef | grep <binary>` and tests the text of that line, not an argv. So
//! this module first joins the argv with single spaces and then does what kube-bench's
//! `flagTestItem.findValue` and `compareOp` do (check/test.go, kube-bench v0.15.x):
//!
//! - a flag is "present" when its text occurs *anywhere* in the line, so a longer flag that
//!   starts with the same text counts: `--encryption-provider-config-automatic-reload=true`
//!   alone passes a presence test for `--encryption-provider-config` (and its value reads as
//!   `-automatic-reload=true`);
//! - the value is read at the *first* occurrence, after any run of `=` or `:` + spaces, up to
//!   the next whitespace; an empty value (`--flag`, `--flag value`, `--flag=`) reads as `true`;
//! - `eq`/`noteq` lower-case the value only when it is `true`/`false` in some case;
//! - `gt`/`gte`/`lt`/`lte` need both sides to be decimal integers, otherwise the item fails;
//! - `has`/`nothave` are substring tests;
//! - a `compare` on a flag that is not found fails the item; `set: false` passes when the flag
//!   text is nowhere in the line.
//!
//! The same rules test every kind of audit output: a file test's `stat` lines
//! ([`execute_text`], with `use_multiple_values` splitting the output into lines that must all
//! pass; an empty output, which is what a missing file prints, finds nothing and fails every
//! item that must be present), and a configuration path's printed value ([`evaluate_path`]).
//! [`compare_op`] also returns kube-bench's `expected_result` text, for reports in kube-bench's
//! own format.
//!
//! Why reproduce bugs: auditors run kube-bench, and `kharden audit` must predict what they
//! will see. The flag parser's view is computed separately ([`crate::effective`]) and the two
//! are reported side by side.

use crate::model::{BinOp, Compare, Op, TestItem};

/// The `ps` line kube-bench would test (without the `ps` columns and binary path, which
/// contain no `--` flag text).
pub fn audit_line(argv: &[String]) -> String {
    argv.join(" ").trim_end_matches([' ', '\n']).to_string()
}

/// Go's `\s` (RE2): `[\t\n\f\r ]`.
fn is_go_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

/// kube-bench's `findValue`: `None` when the flag text does not occur in `line`, otherwise
/// the value read at its first occurrence.
pub fn find_value(line: &str, flag: &str) -> Option<String> {
    if line.is_empty() || flag.is_empty() {
        return None;
    }
    let start = line.find(flag)?;
    // `(flag)(=|: *)*([^\s]*)`: leftmost match is the first occurrence of the literal flag.
    let mut rest = &line[start + flag.len()..];
    loop {
        if let Some(r) = rest.strip_prefix('=') {
            rest = r;
        } else if let Some(r) = rest.strip_prefix(':') {
            rest = r.trim_start_matches(' ');
        } else {
            break;
        }
    }
    let end = rest.find(is_go_space).unwrap_or(rest.len());
    let value = &rest[..end];
    if !value.is_empty() {
        Some(value.to_string())
    } else if flag.starts_with("--") {
        Some("true".to_string())
    } else {
        // kube-bench returns the flag text itself for a non-dashed flag.
        Some(flag.to_string())
    }
}

/// One test item under kube-bench's rules, given what [`find_value`] returned.
pub fn item_passes(item: &TestItem, found: Option<&str>) -> bool {
    outcome(item, item.flag, found.map(str::to_string)).pass
}

/// kube-bench's `compareOp` (the verdict only).
pub fn compare(c: Compare, flag_val: &str) -> bool {
    compare_op(c, flag_val, "").0
}

/// The result of one test item, as kube-bench's `testItem.evaluate` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemOutcome {
    pub pass: bool,
    /// kube-bench's `flagFound`: the flag (or path) gave a value.
    pub found: bool,
    /// The value read, when found.
    pub value: Option<String>,
    /// kube-bench's `expected_result` text for this item (empty when the item failed on an
    /// error, as kube-bench's `failTestItem` leaves it).
    pub expected: String,
}

fn outcome(item: &TestItem, name: &str, found: Option<String>) -> ItemOutcome {
    let (pass, expected) = if item.set {
        match (&found, item.compare) {
            (Some(v), Some(c)) => compare_op(c, v, name),
            _ => (found.is_some(), format!("'{name}' is present")),
        }
    } else {
        (found.is_none(), format!("'{name}' is not present"))
    };
    ItemOutcome {
        pass,
        found: found.is_some(),
        value: found,
        expected,
    }
}

/// `testItem.evaluate` on an audit command's output (the flag searched as text).
pub fn evaluate_text(item: &TestItem, s: &str) -> ItemOutcome {
    outcome(item, item.flag, find_value(s, item.flag))
}

/// `testItem.execute` on an audit command's output: with `multiple`
/// (`use_multiple_values`), every line must pass and the first failing line decides.
pub fn execute_text(item: &TestItem, output: &str, multiple: bool) -> ItemOutcome {
    let s = output.trim_end_matches([' ', '\n']);
    if !multiple {
        return evaluate_text(item, s);
    }
    let mut last = evaluate_text(item, "");
    for line in s.split('\n') {
        last = evaluate_text(item, line);
        if !last.pass {
            break;
        }
    }
    last
}

/// `testItem.evaluate` on a configuration path: `Ok(text)` as printed by the JSONPath (empty:
/// not set), `Err` when the file could not be decoded or the path failed (the item fails,
/// whatever its `set`).
pub fn evaluate_path(item: &TestItem, value: Result<&str, &str>) -> ItemOutcome {
    match value {
        Err(_) => ItemOutcome {
            pass: false,
            found: false,
            value: None,
            expected: String::new(),
        },
        Ok(v) => outcome(
            item,
            item.path.unwrap_or(item.flag),
            (!v.is_empty()).then(|| v.to_string()),
        ),
    }
}

/// `tests.execute`'s combination of the items' results, with kube-bench's joined
/// `expected_result`.
pub fn combine(bin_op: BinOp, outcomes: &[ItemOutcome]) -> (bool, String) {
    let texts: Vec<&str> = outcomes.iter().map(|o| o.expected.as_str()).collect();
    match bin_op {
        BinOp::And => (outcomes.iter().all(|o| o.pass), texts.join(" AND ")),
        BinOp::Or => (outcomes.iter().any(|o| o.pass), texts.join(" OR ")),
    }
}

/// kube-bench's `compareOp`: the verdict and its `expected_result` text for `flag_name`.
pub fn compare_op(c: Compare, flag_val: &str, flag_name: &str) -> (bool, String) {
    let expected = c.value;
    let text = |pattern: &str| {
        pattern
            .replacen("{n}", flag_name, 1)
            .replacen("{v}", expected, 1)
    };
    match c.op {
        Op::Eq | Op::NotEq => {
            let lower = flag_val.to_lowercase();
            let equal = if lower == "true" || lower == "false" {
                lower == expected
            } else {
                flag_val == expected
            };
            if c.op == Op::Eq {
                (equal, text("'{n}' is equal to '{v}'"))
            } else {
                (!equal, text("'{n}' is not equal to '{v}'"))
            }
        }
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
            let (Some(a), Some(b)) = (go_atoi(flag_val), go_atoi(expected)) else {
                return (
                    false,
                    format!("Invalid Number(s) used for comparison: '{flag_val}' '{expected}'"),
                );
            };
            match c.op {
                Op::Gt => (a > b, text("'{n}' is greater than {v}")),
                Op::Gte => (a >= b, text("'{n}' is greater or equal to {v}")),
                Op::Lt => (a < b, text("'{n}' is lower than {v}")),
                _ => (a <= b, text("'{n}' is lower or equal to {v}")),
            }
        }
        Op::Has => (flag_val.contains(expected), text("'{n}' has '{v}'")),
        Op::NotHave => (
            !flag_val.contains(expected),
            text("'{n}' does not have '{v}'"),
        ),
        Op::ValidElements => (
            valid_elements(flag_val, expected),
            text("'{n}' contains valid elements from '{v}'"),
        ),
        Op::Bitmask => {
            let Ok(requested) = i64::from_str_radix(flag_val, 8) else {
                return (false, format!("Not numeric value - flag: {flag_val}"));
            };
            let Ok(max) = i64::from_str_radix(expected, 8) else {
                return (false, format!("Not numeric value - flag: {expected}"));
            };
            (
                max & requested == requested,
                format!("{flag_name} has permissions {flag_val}, expected {expected} or more restrictive"),
            )
        }
    }
}

/// `strconv.Atoi(strings.TrimSpace(s))`: optional sign, decimal digits, 64-bit.
fn go_atoi(s: &str) -> Option<i64> {
    let t = s.trim_matches(|c: char| c.is_whitespace());
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// kube-bench's `splitAndRemoveLastSeparator` + `allElementsValid`.
pub fn valid_elements(value: &str, allowed: &str) -> bool {
    fn split(s: &str) -> Vec<&str> {
        let clean = s.trim().trim_end_matches(',');
        if clean.is_empty() {
            return Vec::new();
        }
        clean.split(',').map(str::trim).collect()
    }
    let have = split(value);
    let allowed = split(allowed);
    match (have.is_empty(), allowed.is_empty()) {
        (true, true) => true,
        (true, false) | (false, true) => false,
        (false, false) => have.iter().all(|h| allowed.contains(h)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_kube_bench() {
        let l = "--a=1 --tls-x-y=true --tls-x=false --b --c x --d= --e:  7";
        assert_eq!(find_value(l, "--a").as_deref(), Some("1"));
        // Substring match: the first occurrence is the prefix of --tls-x-y.
        assert_eq!(find_value(l, "--tls-x").as_deref(), Some("-y=true"));
        assert_eq!(find_value(l, "--b").as_deref(), Some("true"));
        assert_eq!(find_value(l, "--c").as_deref(), Some("true"));
        assert_eq!(find_value(l, "--d").as_deref(), Some("true"));
        assert_eq!(find_value(l, "--e").as_deref(), Some("7"));
        assert_eq!(find_value(l, "--z"), None);
        assert_eq!(find_value("", "--a"), None);
    }

    #[test]
    fn compares_like_kube_bench() {
        let c = |op, value| Compare { op, value };
        assert!(compare(c(Op::Eq, "false"), "FALSE"));
        assert!(!compare(c(Op::Eq, "false"), "0"));
        assert!(compare(c(Op::NotEq, "false"), "yes"));
        assert!(compare(c(Op::Gte, "30"), " 30 "));
        assert!(!compare(c(Op::Gte, "30"), "30d"));
        assert!(!compare(c(Op::Gte, "30"), "0x1e"));
        assert!(compare(c(Op::Has, "Node"), "NodeRestriction"));
        assert!(compare(c(Op::ValidElements, "a,b"), "a, b,"));
        assert!(!compare(c(Op::ValidElements, "a,b"), "a,c"));
        assert!(!compare(c(Op::ValidElements, "a,b"), ""));
        assert!(compare(c(Op::Bitmask, "600"), "400"));
        assert!(!compare(c(Op::Bitmask, "600"), "644"));
    }
}
