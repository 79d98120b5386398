//! The health gate seam: after a write, wait until the component kubelet restarted from the
//! new manifest is proven running and healthy, or say why not.
//!
//! The transaction engine only sees the [`Gate`] trait, so tests can script every verdict and
//! the power-loss explorer can run without processes. The real gate ([`live::ProbeGate`])
//! proves the restart from `/proc` and probes like kubelet, with the `kharden-gate` crate.

pub mod live;

pub use live::{params_for, ProbeGate};

use crate::journal::{GateSpec, ProbeClass, TxId};
use crate::signals::Interrupts;
use std::path::PathBuf;
use std::time::SystemTime;

/// Why the gate runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// After writing the after-contents.
    Forward,
    /// After restoring the before-contents: proves the old component is back.
    Rollback,
}

/// What the gate is asked to wait for.
#[derive(Clone)]
pub struct GateRequest<'a> {
    pub txid: TxId,
    pub spec: &'a GateSpec,
    /// The gated manifests with the contents now on disk.
    pub manifests: Vec<(PathBuf, &'a [u8])>,
    /// The same manifests as they were on the side being left (`None`: absent), so that the
    /// gate can tell the component being replaced from the one it waits for.
    pub previous: Vec<Option<&'a [u8]>>,
    /// When the write happened: a process started before it is the old one. `None` when
    /// nothing was written (a rollback that found the files already restored): then any
    /// process with the expected argv counts.
    pub written_at: Option<SystemTime>,
    pub deadline: SystemTime,
    pub purpose: Purpose,
    /// Signals: the gate stops waiting when one asks it to (the engine decides what follows).
    pub interrupts: &'a dyn Interrupts,
}

impl GateRequest<'_> {
    /// Whether a signal asks this gate to stop: the first one stops a forward gate, the second
    /// one a rollback's.
    pub fn interrupted(&self) -> bool {
        let need = match self.purpose {
            Purpose::Forward => 1,
            Purpose::Rollback => 2,
        };
        self.interrupts.count() >= need
    }
}

/// One observation of the gate, journaled as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub time: SystemTime,
    pub class: ProbeClass,
    pub pid: Option<i32>,
    /// Whether `pid` is a process proven started after the write with the new argv.
    pub restarted: bool,
    pub detail: String,
    /// Processes with the expected argv that exited during this round.
    pub crashes: Vec<Crash>,
}

/// A crash of the process the gate waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash {
    pub pid: u32,
    pub status: String,
    pub lifetime_ms: u64,
    pub exact: bool,
}

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateVerdict {
    /// Healthy and stable. `argv` is the running process's argv, for the audit.
    Passed {
        pid: Option<i32>,
        argv: Option<Vec<String>>,
    },
    Failed {
        reason: String,
    },
}

pub trait Gate {
    fn wait(&self, req: &GateRequest<'_>, observe: &mut dyn FnMut(Observation)) -> GateVerdict;
}

/// `--no-gate`: passes at once, with no running argv.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoGate;

impl Gate for NoGate {
    fn wait(&self, _req: &GateRequest<'_>, _observe: &mut dyn FnMut(Observation)) -> GateVerdict {
        GateVerdict::Passed {
            pid: None,
            argv: None,
        }
    }
}
