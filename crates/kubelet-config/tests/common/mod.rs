//! Property checks shared by the fixture and proptest suites (the fuzz targets check the same
//! properties).
#![allow(dead_code)]

use kharden_kubelet_config::{
    edit_config, edit_env_flags, ConfigChange, ConfigDoc, ConfigEdited, EnvEdited, EnvFile, Error,
    ErrorKind, FlagChange, Scalar, YamlValue,
};
use kharden_manifest::Flags;
use std::ops::Range;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The bytes outside `replaced` are identical and in order in `out`.
pub fn outside_untouched(input: &[u8], out: &[u8], replaced: &[Range<usize>], what: &str) {
    let mut at = 0usize;
    let mut prev_end = 0usize;
    for (i, r) in replaced.iter().enumerate() {
        assert!(
            r.start >= prev_end && r.end <= input.len(),
            "ranges sorted and in bounds ({what})"
        );
        let keep = &input[prev_end..r.start];
        let found = find(&out[at..], keep).unwrap_or_else(|| panic!("kept bytes missing ({what})"));
        if i == 0 {
            assert_eq!(found, 0, "prefix must be identical ({what})");
        }
        at += found + keep.len();
        prev_end = r.end;
    }
    assert!(
        out.ends_with(&input[prev_end..]),
        "suffix must be identical ({what})"
    );
}

fn reads_as(v: &YamlValue, want: &Scalar) -> bool {
    match (v, want) {
        (YamlValue::Bool(a), Scalar::Bool(b)) => a == b,
        (YamlValue::Int(a), Scalar::Int(b)) => a == b,
        (YamlValue::Str(a), Scalar::Str(b)) => a == b,
        _ => false,
    }
}

/// A refusal must say why, and must never be a failed verification (that is a bug).
pub fn good_refusal(e: &Error, what: &str) {
    assert!(!e.reason.is_empty(), "a refusal must say why ({what})");
    assert_ne!(
        e.kind,
        ErrorKind::Verification,
        "verification failed: {e} ({what})"
    );
}

/// Edit, then check every property of a successful edit; returns the result.
pub fn checked(input: &[u8], changes: &[ConfigChange]) -> Result<ConfigEdited, Error> {
    let what = changes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let res = edit_config(input, changes);
    let e = match res {
        Ok(e) => e,
        Err(err) => {
            good_refusal(&err, &what);
            return Err(err);
        }
    };
    let out = &e.output;
    assert_eq!(
        e.unchanged(),
        out.as_slice() == input,
        "unchanged() matches the bytes ({what})"
    );
    outside_untouched(input, out, &e.replaced, &what);
    if !input.windows(2).any(|w| w == b"\r\n") {
        assert!(!out.contains(&b'\r'), "no CR introduced ({what})");
    }
    // Idempotent: the same changes again change nothing (when no two changes touch the same
    // path: `unset x; set x` rewrites `x` every time).
    let overlapping = changes.iter().enumerate().any(|(i, a)| {
        changes[i + 1..].iter().any(|b| {
            let (a, b) = (a.path().segments(), b.path().segments());
            let n = a.len().min(b.len());
            a[..n] == b[..n]
        })
    });
    if !overlapping {
        let again = edit_config(out, changes)
            .unwrap_or_else(|e| panic!("second run refused: {e} ({what})"));
        assert!(
            again.unchanged(),
            "not idempotent ({what}):\n{}",
            String::from_utf8_lossy(out)
        );
    }
    // The final state of every path reads back (YAML 1.1 typing) as intended.
    let doc = ConfigDoc::parse(out).unwrap_or_else(|e| panic!("output unreadable: {e} ({what})"));
    for (i, c) in changes.iter().enumerate() {
        let later = changes[i + 1..].iter().any(|l| {
            let (a, b) = (l.path().segments(), c.path().segments());
            let n = a.len().min(b.len());
            a[..n] == b[..n]
        });
        if later {
            continue;
        }
        let got = doc
            .get(c.path())
            .unwrap_or_else(|e| panic!("get: {e} ({what})"));
        match c {
            ConfigChange::Unset { .. } => assert!(got.is_none(), "{c} left a value ({what})"),
            ConfigChange::Set { value, .. } => {
                let got = got.unwrap_or_else(|| panic!("{c}: missing ({what})"));
                assert!(
                    reads_as(&got.value, value),
                    "{c}: reads {:?} ({what})",
                    got.value
                );
            }
            ConfigChange::SetList { items, .. } => {
                let got = got.unwrap_or_else(|| panic!("{c}: missing ({what})"));
                match &got.value {
                    YamlValue::List(l) => {
                        assert_eq!(l.len(), items.len(), "{c} ({what})");
                        for (g, w) in l.iter().zip(items) {
                            assert!(reads_as(g, w), "{c}: item {g:?} ({what})");
                        }
                    }
                    other => panic!("{c}: reads {other:?} ({what})"),
                }
            }
        }
    }
    if e.format == kharden_kubelet_config::Format::Json {
        let t = String::from_utf8_lossy(out);
        let t = t.strip_prefix('\u{feff}').unwrap_or(&t);
        serde_json::from_str::<serde_json::Value>(t).expect("JSON stays JSON");
    }
    Ok(e)
}

/// Environment-file edit with its properties checked.
pub fn env_checked(
    input: &[u8],
    vars: &[&str],
    changes: &[FlagChange],
) -> Result<EnvEdited, Error> {
    let what = format!("{changes:?}");
    let res = edit_env_flags(input, vars, changes);
    let e = match res {
        Ok(e) => e,
        Err(err) => {
            good_refusal(&err, &what);
            return Err(err);
        }
    };
    let out = &e.output;
    assert_eq!(
        e.unchanged(),
        out.as_slice() == input,
        "unchanged() ({what})"
    );
    outside_untouched(input, out, &e.replaced, &what);
    let norm = |n: &str| kharden_manifest::flags::normalize(n);
    let overlapping = changes.iter().enumerate().any(|(i, a)| {
        changes[i + 1..]
            .iter()
            .any(|b| norm(a.name()) == norm(b.name()))
    });
    if !overlapping {
        let again = edit_env_flags(out, vars, changes)
            .unwrap_or_else(|e| panic!("second run refused: {e} ({what})"));
        assert!(
            again.unchanged(),
            "not idempotent ({what}):\n{}",
            String::from_utf8_lossy(out)
        );
    }
    let env = EnvFile::parse(out).expect("output reads back");
    let words: Vec<String> = vars.iter().flat_map(|v| env.words(v)).collect();
    let flags = Flags::parse(&words);
    if let Some(last) = changes.last() {
        match last {
            FlagChange::Set { name, value, .. } => {
                assert_eq!(flags.all(name).count(), 1, "{name} once ({what})");
                assert_eq!(
                    flags.last(name).and_then(|f| f.value.as_str()),
                    Some(value.as_str()),
                    "({what})"
                );
            }
            FlagChange::Unset { name } => assert!(!flags.has(name), "({what})"),
        }
    }
    Ok(e)
}

pub fn set(path: &str, value: Scalar) -> ConfigChange {
    ConfigChange::Set {
        path: path.parse().unwrap(),
        value,
    }
}

pub fn unset(path: &str) -> ConfigChange {
    ConfigChange::Unset {
        path: path.parse().unwrap(),
    }
}

pub fn list(path: &str, items: &[&str]) -> ConfigChange {
    ConfigChange::SetList {
        path: path.parse().unwrap(),
        items: items.iter().map(|s| Scalar::Str(s.to_string())).collect(),
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
