//! The progress line on a terminal: the library reports gate observations and steps through
//! [`kharden::txn::Progress`]; drawing them is the command line's business.

use kharden::gate::{Observation, Purpose};
use kharden::journal::TxId;
use kharden::txn::{Clock, Progress, SystemClock};
use std::cell::Cell;
use std::io::{IsTerminal, Write};
use std::time::SystemTime;

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// A spinner on stderr while a gate runs (only on a terminal, never with `-o json`), and one
/// line per step of a longer command.
pub struct Spinner {
    draw: bool,
    tick: Cell<usize>,
}

impl Spinner {
    pub fn new(json: bool) -> Spinner {
        Spinner {
            draw: !json && std::io::stderr().is_terminal(),
            tick: Cell::new(0),
        }
    }
}

impl Progress for Spinner {
    fn observed(&self, _txid: TxId, purpose: Purpose, deadline: SystemTime, o: &Observation) {
        if !self.draw {
            return;
        }
        let left = deadline
            .duration_since(SystemClock.now())
            .unwrap_or_default()
            .as_secs();
        let pid = o
            .pid
            .map(|p| format!("pid {p}"))
            .unwrap_or_else(|| "waiting for the restart".into());
        let what = match purpose {
            Purpose::Forward => "new",
            Purpose::Rollback => "restored",
        };
        let t = self.tick.get();
        self.tick.set(t + 1);
        let mut e = std::io::stderr();
        let _ = write!(
            e,
            "\r\x1b[2K{} gate ({what}): {pid}, {:?}, {left}s left",
            SPINNER[t % SPINNER.len()],
            o.class
        );
        let _ = e.flush();
    }

    fn gate_done(&self, _txid: TxId) {
        if self.draw {
            let mut e = std::io::stderr();
            let _ = write!(e, "\r\x1b[2K");
            let _ = e.flush();
        }
    }

    fn step(&self, what: &str) {
        let _ = writeln!(std::io::stderr(), "kharden: {what}");
    }
}
