//! One life cycle for every command that writes: check where the state lives, take the lock,
//! open the journal, finish what a crash left open, build the engine.
//!
//! Modelled on jj's `Workspace::start_transaction`: a command that changes files opens a
//! [`Session`] and runs its plans through [`Session::engine`]; it never assembles the lock, the
//! journal, recovery and the seams itself (five commands used to, each slightly differently).
//! Inspection commands do not open a session: they read through a
//! [`crate::journal::JournalReader`].

use crate::audit::{Audit, NoAudit};
use crate::durable::RealStorage;
use crate::error::{Error, Result};
use crate::gate::Gate;
use crate::journal::{prepare_state_dir, Journal, JournalRead};
use crate::lock::{self, StateLock};
use crate::root::HostRoot;
use crate::services::Systemctl;
use crate::txn::{self, Engine, Policy, Progress, RecoverReport, SystemClock};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a session needs to know.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub state_dir: PathBuf,
    pub root: HostRoot,
    /// How long to wait for another kharden's lock.
    pub wait: Duration,
    /// Directories the state directory must not be in (besides the root's manifests
    /// directory): kubelet loads every file there as a pod.
    pub protected: Vec<PathBuf>,
    /// Recover open transactions (revert policy, no gate) before anything else.
    pub recover: bool,
}

/// The service manager of every session: `systemctl` (the program each transaction's restart
/// names), with systemd's own start timeout.
static SYSTEMCTL: Systemctl = Systemctl {
    timeout: Duration::from_secs(90),
};

/// A locked, open journal with nothing left open in it (unless `recover` was off).
pub struct Session {
    journal: Journal,
    root: HostRoot,
    _lock: StateLock,
    /// What automatic recovery did (empty when nothing was open).
    pub recovered: RecoverReport,
}

/// The longest existing ancestor of `p`, canonicalized, with the rest appended: where `p`
/// really is (or would be), through any symbolic link.
fn real_location(p: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut cur = p.to_path_buf();
    loop {
        if let Ok(c) = std::fs::canonicalize(&cur) {
            let mut out = c;
            for m in missing.iter().rev() {
                out.push(m);
            }
            return out;
        }
        match (cur.file_name(), cur.parent()) {
            (Some(n), Some(parent)) => {
                missing.push(n.to_os_string());
                cur = parent.to_path_buf();
            }
            _ => return p.to_path_buf(),
        }
    }
}

/// Refuse a state directory in (or equal to) a manifests directory: `journal.redb` and `lock`
/// would be loaded by kubelet as pods (DESIGN.md invariant 4).
pub fn check_state_dir_placement(state_dir: &Path, protected: &[PathBuf]) -> Result<()> {
    let state = real_location(state_dir);
    for dir in protected {
        let dir = real_location(dir);
        if state.starts_with(&dir) {
            return Err(Error::Usage(format!(
                "--state-dir {} is inside {}, a static pod manifests directory: kubelet would load the journal and the lock as pods. Use a directory of its own, such as /var/lib/kharden",
                state_dir.display(),
                dir.display()
            )));
        }
    }
    Ok(())
}

impl Session {
    pub fn open(opts: &SessionOptions) -> Result<Session> {
        let mut protected = opts.protected.clone();
        protected.push(opts.root.manifests_dir()?);
        check_state_dir_placement(&opts.state_dir, &protected)?;
        prepare_state_dir(&opts.state_dir)?;
        let lock = lock::acquire(&opts.state_dir, opts.wait)?;
        let journal = Journal::open(&opts.state_dir)?;
        let mut s = Session {
            journal,
            root: opts.root.clone(),
            _lock: lock,
            recovered: RecoverReport::default(),
        };
        if opts.recover {
            s.recovered = s.recover_before_change()?;
        }
        Ok(s)
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The engine over the real file system, clock and service manager, with these gate,
    /// audit and progress.
    pub fn engine<'a>(
        &'a self,
        gate: &'a dyn Gate,
        audit: &'a dyn Audit,
        progress: &'a dyn Progress,
    ) -> Engine<'a> {
        Engine::new(&self.journal, &RealStorage, gate, audit, &SystemClock)
            .with_progress(progress)
            .with_services(&SYSTEMCTL)
    }

    /// Recovery (revert policy, no audit, no network for static pods) before a command that
    /// changes files. A kubelet transaction whose kubelet runs on the configuration being
    /// restored is restarted and gated as a rollback is (the real gate: its proof is the
    /// kubelet's own `/healthz`); anything else is restored without a gate. Refuses to go on
    /// when a conflict remains; files of an unresolved needs-manual transaction are refused by
    /// the engine itself.
    fn recover_before_change(&self) -> Result<RecoverReport> {
        if self.journal.open_ids()?.is_empty() {
            return Ok(RecoverReport::default());
        }
        tracing::warn!("open transactions found: running recovery first");
        let gate = crate::gate::ProbeGate::new(self.root.clone());
        let engine = Engine::new(&self.journal, &RealStorage, &gate, &NoAudit, &SystemClock)
            .with_services(&SYSTEMCTL);
        let report = txn::recover(&engine, Policy::Revert, false)?;
        for t in &report.transactions {
            tracing::warn!("recovered transaction {}: {}", t.txid, t.action.text());
        }
        if report.has_conflicts() {
            return Err(Error::Conflict(
                "recovery found files that match neither side of an open transaction; nothing was changed. Run `kharden recover` for details".into(),
            ));
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_dir_in_a_manifests_dir_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let m = d.path().join("etc/kubernetes/manifests");
        std::fs::create_dir_all(&m).unwrap();
        for bad in [m.clone(), m.join("kharden"), m.join("a/b")] {
            assert!(
                matches!(
                    check_state_dir_placement(&bad, std::slice::from_ref(&m)),
                    Err(Error::Usage(_))
                ),
                "{bad:?}"
            );
        }
        // Through a symbolic link too.
        std::os::unix::fs::symlink(&m, d.path().join("alias")).unwrap();
        assert!(
            check_state_dir_placement(&d.path().join("alias/x"), std::slice::from_ref(&m)).is_err()
        );
        check_state_dir_placement(&d.path().join("var/lib/kharden"), &[m]).unwrap();
    }
}
