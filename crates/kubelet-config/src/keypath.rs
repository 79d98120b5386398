//! Key paths into a `KubeletConfiguration`: `authentication.anonymous.enabled`,
//! `featureGates.RotateKubeletServerCertificate`, `evictionHard[memory.available]`.
//!
//! Why it exists: callers (the CLI's `kharden kubelet set KEY=VALUE`, the catalog's checks) name
//! settings the way the benchmark and the kubelet's documentation do, as dotted paths. Map keys
//! that contain dots (eviction signals) are written in brackets.

use crate::error::{err, Error, ErrorKind};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A path of mapping keys from the document root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyPath {
    segments: Vec<String>,
}

/// The longest key a path may name, in characters.
pub const MAX_KEY_CHARS: usize = 256;

impl KeyPath {
    /// A path from its segments (each one mapping key, dots allowed). Refuses an empty path or
    /// segment and keys with control characters.
    pub fn new<S: Into<String>>(segments: impl IntoIterator<Item = S>) -> Result<KeyPath, Error> {
        let segments: Vec<String> = segments.into_iter().map(Into::into).collect();
        if segments.is_empty() {
            return Err(err(ErrorKind::Value, None, "empty key path"));
        }
        for s in &segments {
            if s.is_empty() {
                return Err(err(ErrorKind::Value, None, "empty key in a key path"));
            }
            crate::yaml11::check_value("key", s)?;
            if s.chars().count() > MAX_KEY_CHARS {
                // YAML limits an implicit key to 1024 characters (`"k": v` in a flow mapping
                // is one); no key the kubelet knows comes near (found by the fuzz target).
                return Err(err(
                    ErrorKind::Value,
                    None,
                    format!(
                        "a key of {} characters (at most {MAX_KEY_CHARS})",
                        s.chars().count()
                    ),
                ));
            }
        }
        Ok(KeyPath { segments })
    }

    /// Parse `a.b.c`; a segment in brackets (`evictionHard[memory.available]`) may contain dots.
    pub fn parse(s: &str) -> Result<KeyPath, Error> {
        let bad = |why: &str| {
            err(
                ErrorKind::Value,
                None,
                format!("invalid key path {s:?}: {why}"),
            )
        };
        let mut segs = Vec::new();
        let mut cur = String::new();
        let mut chars = s.chars().peekable();
        // After a `]` only `.`, `[` or the end may follow.
        let mut after_bracket = false;
        while let Some(c) = chars.next() {
            match c {
                '.' => {
                    if cur.is_empty() && !after_bracket {
                        return Err(bad("empty segment"));
                    }
                    if !cur.is_empty() {
                        segs.push(std::mem::take(&mut cur));
                    }
                    after_bracket = false;
                    if chars.peek().is_none() {
                        return Err(bad("ends with a dot"));
                    }
                }
                '[' => {
                    if !cur.is_empty() {
                        segs.push(std::mem::take(&mut cur));
                    } else if segs.is_empty() {
                        return Err(bad("starts with a bracket"));
                    }
                    let mut inner = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == ']' {
                            closed = true;
                            break;
                        }
                        inner.push(c);
                    }
                    if !closed || inner.is_empty() {
                        return Err(bad("unclosed or empty brackets"));
                    }
                    segs.push(inner);
                    after_bracket = true;
                }
                ']' => return Err(bad("unexpected `]`")),
                c => {
                    if after_bracket {
                        return Err(bad("text after `]`"));
                    }
                    cur.push(c);
                }
            }
        }
        if !cur.is_empty() {
            segs.push(cur);
        }
        KeyPath::new(segs)
    }

    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The first `n` segments, as a path (for messages).
    pub(crate) fn prefix(&self, n: usize) -> String {
        KeyPath {
            segments: self.segments[..n.min(self.segments.len())].to_vec(),
        }
        .to_string()
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.segments.iter().enumerate() {
            if s.contains('.') || s.contains('[') || s.contains(']') {
                write!(f, "[{s}]")?;
            } else {
                if i > 0 {
                    f.write_str(".")?;
                }
                f.write_str(s)?;
            }
        }
        Ok(())
    }
}

impl TryFrom<String> for KeyPath {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        KeyPath::parse(&s)
    }
}

impl From<KeyPath> for String {
    fn from(p: KeyPath) -> String {
        p.to_string()
    }
}

impl std::str::FromStr for KeyPath {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        KeyPath::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let p = KeyPath::parse("authentication.anonymous.enabled").unwrap();
        assert_eq!(p.segments(), ["authentication", "anonymous", "enabled"]);
        assert_eq!(p.to_string(), "authentication.anonymous.enabled");
        let p = KeyPath::parse("evictionHard[memory.available]").unwrap();
        assert_eq!(p.segments(), ["evictionHard", "memory.available"]);
        assert_eq!(p.to_string(), "evictionHard[memory.available]");
        assert_eq!(KeyPath::parse(&p.to_string()).unwrap(), p);
        let p = KeyPath::parse("a[b.c].d").unwrap();
        assert_eq!(p.segments(), ["a", "b.c", "d"]);
        for bad in [
            "", ".", "a.", ".a", "a..b", "[a]", "a[", "a[]", "a]b", "a[b]c", "a\nb",
        ] {
            assert!(KeyPath::parse(bad).is_err(), "{bad:?}");
        }
    }
}
