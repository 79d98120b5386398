//! The span tree both editors share ([`kharden_yaml_span::tree`]), its syntax errors made this
//! crate's.

use crate::error::{err, Error, ErrorKind};
pub(crate) use kharden_yaml_span::tree::*;

/// Parse every document of `text`; each node is a document's root.
pub(crate) fn parse(text: &str) -> Result<Vec<Node>, Error> {
    kharden_yaml_span::tree::parse(text).map_err(|e| err(ErrorKind::Syntax, e.line, e.reason))
}
