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
//! Why reproduce bugs: auditors run kube-bench, and `kharden audit` must predict what they
//! will see. The flag parser's view is computed separately ([`crate::effective`]) and the two
//! are reported side by side.

use crate::model::{Compare, Op, TestItem};

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
    if !item.set {
        return found.is_none();
    }
    match (found, item.compare) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(v), Some(c)) => compare(c, v),
    }
}

/// kube-bench's `compareOp`.
pub fn compare(c: Compare, flag_val: &str) -> bool {
    let expected = c.value;
    match c.op {
        Op::Eq | Op::NotEq => {
            let lower = flag_val.to_lowercase();
            let equal = if lower == "true" || lower == "false" {
                lower == expected
            } else {
                flag_val == expected
            };
            if c.op == Op::Eq {
                equal
            } else {
                !equal
            }
        }
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
            let (Some(a), Some(b)) = (go_atoi(flag_val), go_atoi(expected)) else {
                return false;
            };
            match c.op {
                Op::Gt => a > b,
                Op::Gte => a >= b,
                Op::Lt => a < b,
                _ => a <= b,
            }
        }
        Op::Has => flag_val.contains(expected),
        Op::NotHave => !flag_val.contains(expected),
        Op::ValidElements => valid_elements(flag_val, expected),
        Op::Bitmask => {
            let (Ok(requested), Ok(max)) = (
                i64::from_str_radix(flag_val, 8),
                i64::from_str_radix(expected, 8),
            ) else {
                return false;
            };
            max & requested == requested
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
