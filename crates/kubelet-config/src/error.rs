//! The one error type of this crate.
//!
//! Why one type: every refusal, whether it comes from the YAML editor, the environment-file
//! editor or the effective-configuration computation, reaches an operator as "file, line,
//! reason". Callers prefix the file name; [`Error`]'s `Display` gives `line N: reason`.

use serde::{Deserialize, Serialize};

/// Why something was refused. `Display` gives `line N: reason` (1-based line) when a line is
/// known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{reason}", match .line { Some(l) => format!("line {l}: "), None => String::new() })]
pub struct Error {
    /// 1-based line of the offending text, when known.
    pub line: Option<usize>,
    pub kind: ErrorKind,
    pub reason: String,
}

/// Machine-readable class of an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// Not valid UTF-8, YAML, JSON, or not readable as an environment file.
    Syntax,
    /// Larger than any real configuration file (before or after the edit).
    TooLarge,
    /// Something the editor will not edit around: anchors, aliases, merge keys, tags,
    /// duplicate keys, several documents, block scalars, a layout it cannot splice exactly.
    Unsupported,
    /// A value of the wrong shape: a scalar or list where a mapping is needed, a mapping where
    /// a scalar is needed, a `kind` that is not `KubeletConfiguration`, a value of the wrong
    /// type for the key.
    Type,
    /// The requested value cannot be written (line break, control character) or is not valid
    /// for the key (not a duration, not an integer, an unknown key).
    Value,
    /// The edit did not pass the independent re-read (a bug guard: nothing is written).
    Verification,
    /// The kubelet itself would refuse these sources (effective configuration only).
    KubeletWouldFail,
}

pub(crate) fn err(kind: ErrorKind, line: Option<usize>, reason: impl Into<String>) -> Error {
    Error {
        line,
        kind,
        reason: reason.into(),
    }
}

/// A verification failure: the edit is dropped.
pub(crate) fn failed(reason: impl Into<String>) -> Error {
    err(
        ErrorKind::Verification,
        None,
        format!("verification failed, nothing written: {}", reason.into()),
    )
}

/// 1-based line of byte offset `pos` in `input`.
pub(crate) fn line_of(input: &[u8], pos: usize) -> usize {
    input[..pos.min(input.len())]
        .iter()
        .filter(|&&c| c == b'\n')
        .count()
        + 1
}
