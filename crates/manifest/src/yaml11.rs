//! How a string must be written so that every YAML reader on the way reads it back as the same
//! string.
//!
//! Why it exists: kubelet decodes manifests with a YAML 1.1 resolver (go-yaml v2 through
//! sigs.k8s.io/yaml), which reads plain `on`, `no`, `y`, `0x1F`, `1_000`, `1:30` or `2001-12-14`
//! as booleans, numbers or timestamps, while the parsers used here follow YAML 1.2. A value we
//! write plain must be a string to all of them, and a value that is not safe plain is quoted.
//! This module also refuses values that cannot be written on one line at all.

use crate::{EditError, EditErrorKind};

/// Words that YAML 1.1 or 1.2 resolve to a bool or null (compared case-insensitively, which
/// quotes a few harmless spellings like `yEs` too).
const NON_STRING_WORDS: &[&str] = &[
    "", "~", "null", "y", "n", "yes", "no", "on", "off", "true", "false", ".inf", "-.inf", "+.inf",
    ".nan", "<<", "=",
];

/// True when a YAML 1.1 (kubelet) or YAML 1.2 core parser could read the plain scalar `s` as
/// something other than a string: null, bool, int (decimal, `0x`, `0o`, `0b`, octal,
/// underscores, sexagesimal `1:30`), float (`1e3`, `.5`, `.inf`, `.nan`) or timestamp.
///
/// Numbers and timestamps are matched generously: an optional sign followed only by digits,
/// the letters `a-f`, `x`, `o`, `b`, `e`, `t`, `z`, and `_ : . + -` with at least one digit, or
/// anything with a digit that starts like a timestamp. Quoting a string that did not need it
/// is harmless; the converse is not.
pub(crate) fn resolves_non_string(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    if NON_STRING_WORDS.contains(&lower.as_str()) {
        return true;
    }
    let body = lower
        .strip_prefix('+')
        .or_else(|| lower.strip_prefix('-'))
        .unwrap_or(&lower);
    if body.is_empty() || !body.bytes().any(|b| b.is_ascii_digit()) {
        return false;
    }
    let numeric_chars = body.bytes().all(|b| {
        b.is_ascii_digit()
            || matches!(
                b,
                b'a'..=b'f' | b'x' | b'o' | b'_' | b':' | b'.' | b'+' | b'-' | b't' | b'z'
            )
    });
    // Timestamps: 2001-12-14t21:59:43.10-05:00, 2001-12-14 21:59:43.10 -5
    let timestamp = body.len() >= 8
        && body.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && body.as_bytes()[4] == b'-';
    numeric_chars || timestamp
}

/// True when `s` can be written as a plain scalar and read back as the same string by YAML 1.1
/// and 1.2 parsers, in block context (`flow == false`) or inside `[...]` (`flow == true`).
/// Deliberately stricter than the YAML grammar.
pub(crate) fn plain_ok(s: &str, flow: bool) -> bool {
    let b = s.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return false;
    };
    if resolves_non_string(s) || first == b' ' || last == b' ' || last == b':' {
        return false;
    }
    if !b.iter().all(|&c| (0x20..0x7f).contains(&c)) {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    let flow_indicator = |c: u8| matches!(c, b',' | b'[' | b']' | b'{' | b'}');
    if flow
        && b.iter()
            .any(|&c| flow_indicator(c) || c == b':' || c == b'#')
    {
        return false;
    }
    match first {
        b'-' | b'?' | b':' => match b.get(1) {
            Some(&c) => c != b' ' && !(flow && flow_indicator(c)),
            None => false,
        },
        b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\''
        | b'"' | b'%' | b'@' | b'`' => false,
        _ => true,
    }
}

/// How to write a scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quote {
    Plain,
    Single,
    Double,
}

/// `s` in the given style. `Plain` must only be asked for when [`plain_ok`] holds.
pub(crate) fn encode(s: &str, quote: Quote) -> String {
    match quote {
        Quote::Plain => s.to_string(),
        Quote::Single => format!("'{}'", s.replace('\'', "''")),
        Quote::Double => {
            let mut out = String::with_capacity(s.len() + 2);
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
    }
}

/// `s` written in `preferred` style when that is safe, else plain when `preferred` is plain and
/// the value is plain-safe, else quoted with `fallback`.
pub(crate) fn render(s: &str, preferred: Quote, fallback: Quote, flow: bool) -> String {
    match preferred {
        Quote::Plain if plain_ok(s, flow) => encode(s, Quote::Plain),
        Quote::Plain => encode(
            s,
            if fallback == Quote::Plain {
                Quote::Double
            } else {
                fallback
            },
        ),
        q => encode(s, q),
    }
}

/// Refuse a value that cannot be written on one line as a plain YAML string: line breaks
/// (including YAML 1.1's NEL, LS and PS), other control characters, and byte-order marks.
pub(crate) fn check_value(what: &str, s: &str) -> Result<(), EditError> {
    if let Some(c) = s
        .chars()
        .find(|&c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}'))
    {
        return Err(EditError {
            line: None,
            kind: EditErrorKind::Value,
            reason: format!(
                "{what} {s:?} contains {}, which cannot be written safely",
                if matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}') {
                    "a line break".to_string()
                } else {
                    format!("the control character U+{:04X}", u32::from(c))
                }
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml11_non_strings_are_detected() {
        for s in [
            "",
            "~",
            "null",
            "NULL",
            "Null",
            "y",
            "Y",
            "n",
            "yes",
            "No",
            "ON",
            "off",
            "true",
            "False",
            "0",
            "10",
            "-1",
            "+1",
            "0x1F",
            "0o17",
            "017",
            "0b101",
            "1_000",
            "1:30",
            "190:20:30",
            "1e3",
            "1.5",
            ".5",
            "-.inf",
            ".NaN",
            "2001-12-14",
            "2001-12-14t21:59:43.10-05:00",
            "2001-12-14 21:59:43.10 -5",
            "<<",
            "=",
        ] {
            assert!(resolves_non_string(s), "{s:?} should be quoted");
            assert!(!plain_ok(s, false), "{s:?} should not be plain");
        }
        for s in [
            "json",
            "Node,RBAC",
            "--v=2",
            "/etc/kubernetes/pki/ca.crt",
            "abc",
            "beef",
            "v1",
        ] {
            assert!(!resolves_non_string(s), "{s:?} is a string");
        }
    }

    #[test]
    fn plain_safety() {
        assert!(plain_ok("--authorization-mode=Node,RBAC", false));
        assert!(!plain_ok("--authorization-mode=Node,RBAC", true));
        assert!(plain_ok("--audit-log-format=\"json\"", false));
        assert!(plain_ok("--etcd-servers=https://127.0.0.1:2379", false));
        assert!(!plain_ok("--etcd-servers=https://127.0.0.1:2379", true));
        assert!(!plain_ok("--x=a #b", false));
        assert!(!plain_ok("--x=a: b", false));
        assert!(plain_ok("--x=", true) && plain_ok("--x=", false));
        assert!(!plain_ok("- x", false));
        assert!(!plain_ok("*x", false));
        assert!(!plain_ok("--x=é", false));
        assert!(!plain_ok("x:", false));
    }

    #[test]
    fn encoding() {
        assert_eq!(encode("a'b", Quote::Single), "'a''b'");
        assert_eq!(encode("a\"b\\c", Quote::Double), "\"a\\\"b\\\\c\"");
        assert_eq!(render("on", Quote::Plain, Quote::Plain, false), "\"on\"");
        assert_eq!(render("on", Quote::Plain, Quote::Single, false), "'on'");
        assert_eq!(render("x", Quote::Double, Quote::Plain, false), "\"x\"");
    }

    #[test]
    fn control_characters_are_refused() {
        assert!(check_value("value", "a\nb").is_err());
        assert!(check_value("value", "a\tb").is_err());
        assert!(check_value("value", "a\u{85}b").is_err());
        assert!(check_value("value", "ok value/é").is_ok());
    }
}
