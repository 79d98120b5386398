//! Process exit codes: stable, documented in the README, and the only place they are defined.
//! Each comes from a typed result ([`crate::Error::exit_code`], an outcome's `exit_code`),
//! never from a call site's memory.

/// Success: the change was made, or everything was already so.
pub const SUCCESS: u8 = 0;
/// An error, and the files are as they were: before any change (bad input, refused edit, I/O
/// error before the first write), or a write or service restart that failed and was undone.
pub const ERROR: u8 = 1;
/// Command-line usage error (clap's own code).
pub const USAGE: u8 = 2;
/// The health gate failed; the change was rolled back and the old component is healthy.
pub const ROLLED_BACK_GATE: u8 = 3;
/// The audit failed; the change was rolled back and the old component is healthy.
pub const ROLLED_BACK_AUDIT: u8 = 4;
/// A rollback could not be verified, or a file matched neither side: a person must look at
/// the files the journal names.
pub const NEEDS_MANUAL: u8 = 5;
/// Recovery found a managed file that matches neither side of its transaction.
pub const CONFLICT: u8 = 6;
/// Another kharden holds the lock.
pub const LOCKED: u8 = 7;
/// The journal is damaged, missing or not kharden's to use.
pub const JOURNAL_FAULT: u8 = 8;
/// Interrupted by a signal (SIGTERM, SIGINT, SIGHUP) during the gate or the audit: the change
/// was rolled back (verified), or, after a second signal, left for `kharden recover`.
pub const INTERRUPTED: u8 = 9;
/// `kharden drift` found a committed change undone or changed since.
pub const DRIFT: u8 = 10;
/// An internal error (a bug in kharden): the journal and `kharden recover` say where any open
/// transaction stands.
pub const INTERNAL: u8 = 70;
