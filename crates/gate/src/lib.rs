//! kharden's health gate: the I/O half, independent of the journal.
//!
//! Why a separate crate: the transaction core must be testable without processes or sockets,
//! and the gate must be testable without a journal. The core calls [`run_gate`] (or
//! [`run_gate_with`] with scripted I/O) and journals the [`Observation`]s and the
//! [`GateVerdict`] itself.
//!
//! - [`restart`]: restart proof from `/proc` (argv + start time).
//! - [`mod@probe`]: a kubelet-like HTTP(S) probe with CA and name verification and an optional
//!   client certificate; outcome classes kept apart.
//! - [`gate`]: the loop (restart proof, probes, stability with the same PID, deadline,
//!   crashes).
//! - [`events`]: every start and exit of processes (the kernel's process events connector, or
//!   `/proc` polling) and crash records built from them.

pub mod events;
pub mod gate;
pub mod probe;
pub mod restart;

pub use events::{
    ArgvUnreadable, CrashRecord, CrashTracker, EventSource, EventStream, EventsInfo, ExitStatus,
    ProcEvent, ProcPoller, ProcessWatcher, Unavailable, WatchOptions, WatchedIo,
};
pub use gate::{
    run_gate, run_gate_with, Clock, FailReason, FoundProcess, GateIo, GateParams, GateVerdict,
    LiveIo, Observation, SystemClock,
};
pub use probe::{
    default_server_name, discover_client_cert, discover_cluster_ca, fetch, parse_url, probe,
    probe_target_from_pod, probe_with, ClientCertFiles, ProbeClass, ProbeOutcome, ProbeTarget,
    Scheme, TargetError, TlsSettings,
};
pub use restart::{argv_matches, pid_listens_on, started_at_or_after, ProcInfo, ProcScanner};

/// The wall clock, read in one place: the gate loop's [`SystemClock`], the stamps of process
/// events as they arrive, and the boot time behind `/proc` start times. Everything that
/// decides reads time through a [`Clock`], so tests control it.
#[allow(clippy::disallowed_methods)] // the one reading of the wall clock in this crate
pub fn wall_clock() -> std::time::SystemTime {
    std::time::SystemTime::now()
}
