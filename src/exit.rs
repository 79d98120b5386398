//! Process exit codes: stable, documented in the README, and the only place they are defined.

/// Success: the change was made, or everything was already so.
pub const SUCCESS: u8 = 0;
/// An error before any change (bad input, refused edit, I/O error before the first write).
pub const ERROR: u8 = 1;
/// Command-line usage error (clap's own code).
pub const USAGE: u8 = 2;
/// The health gate failed; the change was rolled back and the old component is healthy.
pub const ROLLED_BACK_GATE: u8 = 3;
/// The audit failed; the change was rolled back and the old component is healthy.
pub const ROLLED_BACK_AUDIT: u8 = 4;
/// A rollback could not be verified: a person must restore the files the journal names.
pub const NEEDS_MANUAL: u8 = 5;
/// Recovery found a managed file that matches neither side of its transaction.
pub const CONFLICT: u8 = 6;
/// Another kharden holds the lock.
pub const LOCKED: u8 = 7;
/// `journal verify` found a fault.
pub const JOURNAL_FAULT: u8 = 8;
