//! CIS catalog (work in progress).
