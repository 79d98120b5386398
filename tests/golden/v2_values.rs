//! The values the golden journal of format 2 was written with (tests/golden/v2/): format 1's
//! (`super::v1_values`, included beside this module) plus what format 2 added. Shared by the
//! generator (examples/golden_journal.rs) and the reader (tests/journal_format.rs).
//!
//! Frozen with the format: a later format adds its own values beside these, never edits them.

use super::v1_values;
use kharden::journal::{EventKind, GateSpec};

/// The temp tag every format-2 golden transaction carries.
pub const TEMP_TAG: u64 = 0x5eed_0000_0000_0001;

pub fn gate_spec() -> GateSpec {
    GateSpec {
        max_crashes: 2,
        ..v1_values::gate_spec()
    }
}

/// Every event kind of format 2: format 1's, then the new ones.
pub fn every_event_kind() -> Vec<EventKind> {
    let mut v = v1_values::every_event_kind();
    v.extend([
        EventKind::Signal {
            signal: 15,
            second: false,
        },
        EventKind::Signal {
            signal: 2,
            second: true,
        },
        EventKind::Crash {
            pid: 4242,
            status: "exited with code 2".into(),
            lifetime_ms: 40,
            exact: true,
        },
        EventKind::Crash {
            pid: 4243,
            status: "was killed by signal 9 (SIGKILL)".into(),
            lifetime_ms: 1200,
            exact: false,
        },
    ]);
    v
}
