//! SIGTERM, SIGINT and SIGHUP during a gate or an audit (DESIGN.md, "The health gate" 7).
//!
//! Why: a systemd stop, an Ansible timeout or a Ctrl-C used to kill kharden in the middle of a
//! gate, leaving an unverified change live and the transaction open, silently. Now the first
//! signal asks the engine to roll back (the gate and the audit stop at once, the rollback is
//! gated like any other); a second one stops the rollback's gate too, and kharden exits
//! leaving the transaction for `kharden recover`, saying so.
//!
//! The handler only counts (an atomic store is async-signal-safe); the engine asks
//! [`Interrupts::count`] between probes.

use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

/// Signals received, as the engine sees them.
pub trait Interrupts {
    /// How many of the watched signals arrived so far.
    fn count(&self) -> u32;
    /// The last one's number.
    fn last_signal(&self) -> i32;
}

/// No signal ever (tests, commands that write nothing).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoInterrupts;

impl Interrupts for NoInterrupts {
    fn count(&self) -> u32 {
        0
    }
    fn last_signal(&self) -> i32 {
        0
    }
}

static COUNT: AtomicU32 = AtomicU32::new(0);
static LAST: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    LAST.store(sig, Ordering::SeqCst);
    COUNT.fetch_add(1, Ordering::SeqCst);
}

/// The process's SIGTERM, SIGINT and SIGHUP, counted from [`ProcessSignals::install`].
#[derive(Debug, Clone, Copy)]
pub struct ProcessSignals(());

impl ProcessSignals {
    /// Catch SIGTERM, SIGINT and SIGHUP from now on (a command that writes installs this
    /// before its first transaction).
    pub fn install() -> std::io::Result<ProcessSignals> {
        use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            // No SA_RESTART: a blocking sleep or read returns early, so the engine sees the
            // signal within one poll.
            SaFlags::empty(),
            SigSet::empty(),
        );
        for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
            // SAFETY: the handler only does atomic stores, which are async-signal-safe.
            unsafe { sigaction(s, &action) }.map_err(std::io::Error::from)?;
        }
        Ok(ProcessSignals(()))
    }
}

impl Interrupts for ProcessSignals {
    fn count(&self) -> u32 {
        COUNT.load(Ordering::SeqCst)
    }
    fn last_signal(&self) -> i32 {
        LAST.load(Ordering::SeqCst)
    }
}

/// Signals scripted by a test: `count` arrives as soon as `after` questions were asked.
#[derive(Debug, Default)]
pub struct ScriptedInterrupts {
    asked: AtomicU32,
    /// After how many questions each signal arrives (sorted).
    pub at: Vec<u32>,
    pub signal: i32,
}

impl ScriptedInterrupts {
    pub fn new(at: Vec<u32>, signal: i32) -> ScriptedInterrupts {
        ScriptedInterrupts {
            asked: AtomicU32::new(0),
            at,
            signal,
        }
    }
}

impl Interrupts for ScriptedInterrupts {
    fn count(&self) -> u32 {
        let n = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
        self.at.iter().filter(|a| **a <= n).count() as u32
    }
    fn last_signal(&self) -> i32 {
        self.signal
    }
}
