//! Power-loss simulation for kharden (issue 7).
//!
//! Killing the process keeps the page cache; a power cut does not. This crate runs kharden's
//! real transaction engine, journal (redb) and recovery on a simulated disk that keeps, per file
//! and per directory, what is durable and what is only in memory ([`sim`]), cuts the power at
//! every storage operation, builds the disks a power cut may leave ([`crash`]), runs
//! `kharden recover` on each and checks DESIGN.md's invariants ([`check`]).
//!
//! - [`explore`]: bounded exhaustive exploration of one workload (every crash point, a documented
//!   family of post-crash disks), and of recovery itself;
//! - [`vopr`]: seeded random schedules in the style of TigerBeetle's VOPR (transactions, gate
//!   and audit failures, EIO and ENOSPC, power cuts, power cuts during recovery); a failure
//!   prints the seed that replays it;
//! - [`scenarios`]: the workloads the tests and the `vopr` example use.
//!
//! What is and is not simulated is written down in `docs/crash-safety.md` ("Power loss").
// A test tool: `KHARDEN_SIM_TRACE=1` traces every simulated operation on stderr.
#![allow(clippy::print_stderr)]

pub mod check;
pub mod crash;
pub mod explore;
pub mod harness;
pub mod scenarios;
pub mod sim;
pub mod vopr;
