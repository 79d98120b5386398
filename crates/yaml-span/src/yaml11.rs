//! How a YAML 1.1 reader types a plain scalar, and how to write a string so that every reader
//! on the way reads it back as the same string.
//!
//! Why it exists: the kubelet decodes its configuration and its static pod manifests with
//! sigs.k8s.io/yaml, whose resolver is go-yaml v2's (YAML 1.1): plain `on`, `no`, `y` are
//! booleans, `010` is the octal integer 8, `1_000` is 1000, `2001-12-14` is a timestamp;
//! kube-bench reads configuration files with the same resolver. The checking parser of the
//! editors (serde_yaml) follows YAML 1.2. So (1) reading a value the way those Go programs do
//! needs go-yaml v2's rules ([`resolve`], from its `resolve.go`), and (2) a string written plain
//! must be a string to every reader: anything that any of them could read otherwise is quoted
//! ([`plain_ok`]). Values that cannot be written on one line are refused ([`check_value`]).
//! One module for both editors and the audit's reader: they must never disagree on what a
//! scalar is.

/// A plain scalar as go-yaml v2's `resolve` types it.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer beyond `i64` (`ParseUint` succeeds).
    Uint(u64),
    Float(f64),
    /// A timestamp (`2001-12-14`, `2001-12-14t21:59:43.10-05:00`): decoded into `interface{}`
    /// (sigs.k8s.io/yaml, kube-bench) it stays the string as written, "for backward
    /// compatibility" (go-yaml v2's decode.go); a YAML 1.1 reader with a timestamp type reads
    /// it otherwise, so it is never written plain.
    Timestamp,
    Str(String),
}

/// Go's `strconv.ParseInt(s, 0, 64)` (the underscores already removed): sign, then `0x`, `0o`,
/// `0b` or a leading `0` (octal), or decimal.
fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let m = i128::from(go_parse_uint(body)?);
    i64::try_from(if neg { -m } else { m }).ok()
}

/// Go's `strconv.ParseUint(s, 0, 64)` (no sign).
fn go_parse_uint(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// go-yaml v2's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let st = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - st
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// go-yaml v2's `parseTimestamp` shapes (`2006-1-2`, with an optional time part): only the
/// date prefix is checked, which is what decides "not a string".
fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let year = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if year != 4 || b.get(4) != Some(&b'-') {
        return false;
    }
    let rest = &s[5..];
    let mut parts = rest.splitn(3, '-');
    let month = parts.next().unwrap_or("");
    let day_and_time = parts.next().unwrap_or("");
    let day: String = day_and_time
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let after = &day_and_time[day.len()..];
    let ok_num = |p: &str| (1..=2).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_digit());
    ok_num(month) && ok_num(&day) && (after.is_empty() || after.starts_with(['t', 'T', ' ']))
}

/// How go-yaml v2 resolves a **plain** scalar (quoted and block scalars are always strings):
/// the words of its table, then for a scalar that starts like a number a timestamp,
/// `ParseInt(s, 0, 64)` and `ParseUint` with the underscores removed, a YAML-style float, and
/// `0b` binary; a scalar that starts with `.` is a float when Go's `ParseFloat` reads it.
pub fn resolve(s: &str) -> Resolved {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Resolved::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Resolved::Bool(false)
        }
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let Some(&first) = s.as_bytes().first() else {
        return Resolved::Null;
    };
    match first {
        b'.' => {
            if let Ok(f) = s.parse::<f64>() {
                return Resolved::Float(f);
            }
        }
        b'+' | b'-' | b'0'..=b'9' => {
            if looks_like_timestamp(s) {
                return Resolved::Timestamp;
            }
            let plain: String = s.chars().filter(|c| *c != '_').collect();
            if let Some(i) = go_parse_int(&plain) {
                return Resolved::Int(i);
            }
            if let Some(u) = go_parse_uint(&plain) {
                return Resolved::Uint(u);
            }
            if yaml_style_float(&plain) {
                if let Ok(f) = plain.parse::<f64>() {
                    return Resolved::Float(f);
                }
            }
        }
        _ => {}
    }
    Resolved::Str(s.to_string())
}

/// serde_yaml's (YAML 1.2 core) reading of a plain scalar as something other than a string:
/// null, `true`/`false` in three spellings, integers (decimal, `0x`, `0o`, `0b`, signed) and
/// finite floats, where digits with a leading zero (`010`) stay a string.
fn yaml12_non_string(s: &str) -> bool {
    if matches!(
        s,
        "" | "~"
            | "null"
            | "Null"
            | "NULL"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
    ) {
        return true;
    }
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let radix_digits = |p: &str, radix: u32| {
        body.strip_prefix(p)
            .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_digit(radix)))
    };
    if radix_digits("0x", 16) || radix_digits("0o", 8) || radix_digits("0b", 2) {
        return true;
    }
    let leading_zero_digits =
        body.len() > 1 && body.starts_with('0') && body.bytes().all(|b| b.is_ascii_digit());
    if leading_zero_digits {
        return false;
    }
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), ".inf" | ".nan") {
        return true;
    }
    yaml_style_float(s)
}

/// Words that some YAML reader resolves to a bool, null or merge key, compared
/// case-insensitively (which quotes a few harmless spellings like `yEs` too).
const NON_STRING_WORDS: &[&str] = &[
    "", "~", "null", "y", "n", "yes", "no", "on", "off", "true", "false", ".inf", "-.inf", "+.inf",
    ".nan", "<<", "=",
];

/// True when the kubelet's reader (go-yaml v2, YAML 1.1, [`resolve`]) or the checking parser
/// (serde_yaml, YAML 1.2 core) could read the plain scalar `s` as something other than a
/// string. Both are emulated from their source; the verification step re-reads every edit with
/// serde_yaml itself, and with [`resolve`].
pub fn resolves_non_string(s: &str) -> bool {
    // YAML 1.1's sexagesimal integers (`1:30`) are not implemented by go-yaml v2, but other
    // YAML 1.1 readers do: quoted anyway, it costs nothing.
    let sexagesimal = s.contains(':')
        && s.trim_start_matches(['+', '-'])
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b':' || b == b'.' || b == b'_');
    !matches!(resolve(s), Resolved::Str(_))
        || yaml12_non_string(s)
        || sexagesimal
        || NON_STRING_WORDS.contains(&s.to_ascii_lowercase().as_str())
}

/// True when `s` can be written as a plain scalar and read back as the same string by YAML 1.1
/// and 1.2 parsers, in block context (`flow == false`) or inside `[...]`/`{...}`
/// (`flow == true`). Deliberately stricter than the YAML grammar.
pub fn plain_ok(s: &str, flow: bool) -> bool {
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
        // `?x` and `:x` are plain scalars in YAML 1.2 but not for every reader (libyaml reads
        // `{?x: 1}` differently): always quoted.
        b'?' | b':' => false,
        b'-' => match b.get(1) {
            Some(&c) => c != b' ' && !(flow && flow_indicator(c)),
            None => false,
        },
        b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\''
        | b'"' | b'%' | b'@' | b'`' => false,
        _ => true,
    }
}

/// True when `key` can be written as a plain mapping key.
pub fn plain_key_ok(key: &str, flow: bool) -> bool {
    plain_ok(key, flow) && !key.contains(':') && !key.contains('#')
}

/// How to write a string scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    Plain,
    Single,
    Double,
}

/// `s` in the given style. `Plain` must only be asked for when [`plain_ok`] holds. Double
/// quotes escape only `"` and `\`, which is the same text in YAML and JSON (control characters
/// are refused before we get here).
pub fn encode(s: &str, quote: Quote) -> String {
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

/// A string written in `preferred` style when that is safe, else quoted with `fallback`
/// (double quotes when the fallback is plain too).
pub fn render_str(s: &str, preferred: Quote, fallback: Quote, flow: bool) -> String {
    match preferred {
        Quote::Plain if plain_ok(s, flow) => s.to_string(),
        Quote::Plain if fallback == Quote::Plain => encode(s, Quote::Double),
        Quote::Plain => encode(s, fallback),
        q => encode(s, q),
    }
}

/// A mapping key: plain when safe (and not JSON), else double-quoted.
pub fn render_key(key: &str, flow: bool, json: bool) -> String {
    if !json && plain_key_ok(key, flow) {
        key.to_string()
    } else {
        encode(key, Quote::Double)
    }
}

/// The first character of `text` that YAML 1.1 readers (libyaml, go-yaml v2: the kubelet's and
/// serde_yaml's) take for a line break and YAML 1.2 readers (saphyr, the span tree's) do not:
/// NEL (U+0085), LS (U+2028), PS (U+2029), with its byte offset. A file holding one reads
/// differently in the two (a comment that ends early and lets a key in, found by the fuzz
/// target), so the editors refuse it whole.
pub fn yaml11_only_line_break(text: &str) -> Option<(usize, char)> {
    text.char_indices()
        .find(|(_, c)| matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}'))
}

/// Refuse a value that cannot be written on one line: line breaks (including YAML 1.1's NEL,
/// LS and PS), other control characters, and byte-order marks.
pub fn check_value(what: &str, s: &str) -> Result<(), String> {
    // YAML's printable set excludes U+FFFE and U+FFFF too (libyaml refuses them).
    if let Some(c) = s.chars().find(|&c| {
        c.is_control()
            || matches!(
                c,
                '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
            )
    }) {
        return Err(format!(
            "{what} {s:?} contains {}, which cannot be written safely",
            if matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}') {
                "a line break".to_string()
            } else {
                format!("the control character U+{:04X}", u32::from(c))
            }
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_yaml_v2_resolution() {
        assert_eq!(resolve("yes"), Resolved::Bool(true));
        assert_eq!(resolve("Off"), Resolved::Bool(false));
        assert_eq!(resolve("~"), Resolved::Null);
        assert_eq!(resolve("010"), Resolved::Int(8));
        assert_eq!(resolve("0x1F"), Resolved::Int(31));
        assert_eq!(resolve("1_000"), Resolved::Int(1000));
        assert_eq!(resolve("-5"), Resolved::Int(-5));
        assert_eq!(resolve("+5"), Resolved::Int(5));
        assert_eq!(resolve("08"), Resolved::Float(8.0));
        assert_eq!(resolve("1e3"), Resolved::Float(1000.0));
        assert_eq!(resolve(".5"), Resolved::Float(0.5));
        assert!(matches!(resolve(".inf"), Resolved::Float(f) if f.is_infinite()));
        assert_eq!(resolve("2001-12-14"), Resolved::Timestamp);
        assert_eq!(resolve("18446744073709551615"), Resolved::Uint(u64::MAX));
        assert_eq!(resolve("-0b11"), Resolved::Int(-3));
        for s in [
            "1:30",
            "4h0m0s",
            "0s",
            "Webhook",
            "abc",
            "0x",
            "1.2.3",
            "yEs",
            "-",
            "2001-12-14x",
        ] {
            assert_eq!(resolve(s), Resolved::Str(s.into()), "{s}");
        }
    }

    #[test]
    fn quoting() {
        for s in [
            "on",
            "no",
            "y",
            "010",
            "1e3",
            "2001-12-14",
            "",
            "~",
            "<<",
            "0x1F",
            "0o17",
            "0b1",
            "-5",
            "+5",
            "1.5",
            ".5",
            "5.",
            "1_000",
            "TRUE",
            "NULL",
            ".NaN",
            "-.inf",
            "08",
            "1e999",
        ] {
            assert!(!plain_ok(s, false), "{s:?} must be quoted");
        }
        for s in [
            "4h0m0s",
            "0s",
            "Webhook",
            "/etc/kubernetes/pki/ca.crt",
            "TLS_AES_128_GCM_SHA256",
            "10.96.0.10",
            "127.0.0.1",
            "fd00::a",
            "1.2.3",
            "0x",
            "1e",
        ] {
            assert!(plain_ok(s, false), "{s:?} can be plain");
        }
        assert!(!plain_ok("a,b", true) && plain_ok("a,b", false));
        assert_eq!(
            render_str("on", Quote::Plain, Quote::Plain, false),
            "\"on\""
        );
        assert_eq!(render_str("on", Quote::Plain, Quote::Single, false), "'on'");
        assert_eq!(render_str("x", Quote::Single, Quote::Plain, false), "'x'");
        assert!(!plain_ok("1:30", false));
        assert_eq!(encode("a\"b\\", Quote::Double), "\"a\\\"b\\\\\"");
        assert_eq!(render_key("a:b", false, false), "\"a:b\"");
        assert_eq!(render_key("k", false, true), "\"k\"");
    }

    #[test]
    fn control_characters_are_refused() {
        assert!(check_value("value", "a\nb").is_err());
        assert!(check_value("value", "a\tb").is_err());
        assert!(check_value("value", "ok/é").is_ok());
        assert!(check_value("value", "a\u{ffff}").is_err());
        assert!(check_value("value", "a\u{7f}").is_err());
    }

    /// The manifest editor's cases (from before the two editors shared this module).
    #[test]
    fn manifest_values_quoted_as_before() {
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
        assert_eq!(encode("a'b", Quote::Single), "'a''b'");
        assert_eq!(render_str("x", Quote::Double, Quote::Plain, false), "\"x\"");
        assert!(check_value("value", "a\u{85}b").is_err());
        assert_eq!(
            yaml11_only_line_break("a: 1 # x\u{2028}b: 2"),
            Some((8, '\u{2028}'))
        );
        assert_eq!(yaml11_only_line_break("é\u{85}"), Some((2, '\u{85}')));
        assert_eq!(yaml11_only_line_break("a: \"\\u2028\"\n"), None);
    }
}
