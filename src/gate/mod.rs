//! The health gate seam: after a write, wait until the component kubelet restarted from the
//! new manifest is proven running and healthy, or say why not.
//!
//! The transaction engine only sees the [`Gate`] trait, so tests can script every verdict and
//! the power-loss explorer can run without processes. The real gate ([`live::ProbeGate`])
//! proves the restart from `/proc` and probes like kubelet, with the `kharden-gate` crate.

pub mod keep;
pub mod kubelet;
pub mod live;

pub use live::{params_for, ProbeGate};

use crate::journal::{EventKind, GateSpec, RoundClass, TxId};
use crate::signals::Interrupts;
pub use kharden_gate::{FailReason, GateVerdict, Observation, ProbeClass};
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
    /// The service the transaction restarts (the kubelet's unit), as journaled: a recovery run
    /// without `--kubelet-unit` gates the unit the transaction restarted.
    pub restart: Option<&'a crate::journal::Restart>,
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

/// A failed verdict's detail with the whole expected command line named `(name)` instead (the
/// journal's probe events carry it in full; the reason stays readable), and `suffix` added. A
/// passed verdict is returned as is.
pub(crate) fn name_the_argv(
    verdict: GateVerdict,
    argv: &[String],
    name: &str,
    suffix: &str,
) -> GateVerdict {
    match verdict {
        GateVerdict::Failed {
            reason,
            detail,
            last_observations,
            crashes,
            previous_crashes,
        } => {
            let argv = argv.join(" ");
            let detail = detail
                .replace(&format!("[{argv}]"), &format!("({name})"))
                .replace(&argv, &format!("({name})"));
            GateVerdict::Failed {
                reason,
                detail: format!("{detail}{suffix}"),
                last_observations,
                crashes,
                previous_crashes,
            }
        }
        passed => passed,
    }
}

/// How one gate round is journaled: a crash event per crash seen during the round, then the
/// probe's answer (class, the proven process, the loop's note). The one mapping from the gate's
/// vocabulary to the journal's.
pub fn journal_events(o: &Observation) -> Vec<EventKind> {
    let mut evs: Vec<EventKind> = o
        .crashes
        .iter()
        .map(|c| EventKind::Crash {
            pid: c.pid,
            status: c.status.describe(),
            lifetime_ms: c.lifetime.as_millis().try_into().unwrap_or(u64::MAX),
            exact: c.exact,
        })
        .collect();
    evs.push(EventKind::Probe {
        class: round_class(o.class),
        pid: o.pid.and_then(|p| i32::try_from(p).ok()),
        restarted: o.pid.is_some(),
        detail: if o.note.is_empty() {
            format!("{}: {}", o.class, o.detail)
        } else {
            format!("{}: {} ({})", o.class, o.detail, o.note)
        },
    });
    evs
}

/// The journal keeps a round's class without its status code (the detail has it).
fn round_class(c: ProbeClass) -> RoundClass {
    match c {
        ProbeClass::Healthy(_) => RoundClass::Healthy,
        ProbeClass::Down => RoundClass::Down,
        ProbeClass::Unauthorized(_) => RoundClass::Unauthorized,
        ProbeClass::ServerError(_) => RoundClass::ServerError,
        ProbeClass::Timeout => RoundClass::Timeout,
        ProbeClass::OtherStatus(_) | ProbeClass::Error => RoundClass::OtherStatus,
        ProbeClass::TlsError => RoundClass::TlsError,
    }
}

pub trait Gate {
    /// Called right before a side is written when a gate will follow: start watching what
    /// must not be missed (every start and exit of a process, so that a new process that
    /// crashes within a millisecond of the write is still seen).
    fn arm(&self) {}
    fn wait(&self, req: &GateRequest<'_>, observe: &mut dyn FnMut(&Observation)) -> GateVerdict;
}

/// `--no-gate`: passes at once, with no running argv.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoGate;

impl Gate for NoGate {
    fn wait(&self, _req: &GateRequest<'_>, _observe: &mut dyn FnMut(&Observation)) -> GateVerdict {
        GateVerdict::skipped()
    }
}
