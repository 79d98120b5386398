//! YAML 1.1's typing of plain scalars and the quoting it calls for
//! ([`kharden_yaml_span::yaml11`]: the kubelet reads manifests with go-yaml v2's resolver), a
//! refused value made this crate's error.

use crate::{EditError, EditErrorKind};
pub(crate) use kharden_yaml_span::yaml11::*;

/// Refuse a value that cannot be written on one line as a plain YAML string.
pub(crate) fn check_value(what: &str, s: &str) -> Result<(), EditError> {
    kharden_yaml_span::yaml11::check_value(what, s).map_err(|reason| EditError {
        line: None,
        kind: EditErrorKind::Value,
        reason,
    })
}
