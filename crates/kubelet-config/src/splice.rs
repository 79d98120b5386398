//! The byte splices both editors share ([`kharden_yaml_span::splice`]), a misplaced one made
//! this crate's verification error.

use crate::error::{err, Error, ErrorKind};
pub(crate) use kharden_yaml_span::splice::{Provenance, Splice};

/// Apply non-overlapping splices to `text`.
pub(crate) fn apply(text: &str, splices: &mut [Splice]) -> Result<String, Error> {
    kharden_yaml_span::splice::apply(text, splices)
        .map_err(|m| err(ErrorKind::Verification, None, m.to_string()))
}
