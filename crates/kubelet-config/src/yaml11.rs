//! YAML 1.1's typing of plain scalars and the quoting it calls for
//! ([`kharden_yaml_span::yaml11`]), a refused value made this crate's error.

use crate::error::{err, Error, ErrorKind};
pub(crate) use kharden_yaml_span::yaml11::*;

/// Refuse a value that cannot be written on one line.
pub(crate) fn check_value(what: &str, s: &str) -> Result<(), Error> {
    kharden_yaml_span::yaml11::check_value(what, s).map_err(|r| err(ErrorKind::Value, None, r))
}
