//! The span tree both editors share ([`kharden_yaml_span::tree`]), its syntax errors made this
//! crate's.

use crate::{EditError, EditErrorKind};
pub(crate) use kharden_yaml_span::tree::*;

/// Parse every document of `text`; each node is a document's root.
pub(crate) fn parse(text: &str) -> Result<Vec<Node>, EditError> {
    kharden_yaml_span::tree::parse(text).map_err(|e| EditError {
        line: e.line,
        kind: EditErrorKind::Syntax,
        reason: e.reason,
    })
}
