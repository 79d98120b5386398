//! Running the emulator as a child process, killed on drop.
//!
//! Why: a test that fails (panics) must not leave an apiserver listening or an etcd writing.
//! [`KubeletProcess`] owns the emulator child; dropping it sends SIGTERM (the emulator then
//! stops its pods gracefully), and SIGKILL after a timeout. The emulator's pods carry
//! `PR_SET_PDEATHSIG=SIGKILL`, so they die with it even when it is SIGKILLed.
//!
//! The emulator itself gets `PR_SET_PDEATHSIG=SIGTERM` too, tied to the thread that spawned it
//! (a test's thread), so even a test process that aborts without unwinding takes it down.

use crate::kubelet::KubeletOptions;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An emulator child process; stopped on drop.
#[derive(Debug)]
pub struct KubeletProcess {
    child: Option<Child>,
    event_log: PathBuf,
    grace: Duration,
}

impl KubeletProcess {
    /// Spawn `exe prefix_args... <opts as args>`: for the testnode binary `prefix_args` is
    /// `["kubelet"]`; for kharden it is `["__kubelet"]`. When `opts.event_log` is `None` it is
    /// set to `<root>/var/log/kubelet-emulator.log` so that [`KubeletProcess::events`] works.
    pub fn spawn<S: AsRef<OsStr>>(
        exe: &Path,
        prefix_args: &[S],
        opts: &KubeletOptions,
    ) -> std::io::Result<KubeletProcess> {
        let mut opts = opts.clone();
        let event_log = opts
            .event_log
            .get_or_insert_with(|| opts.root.join("var/log/kubelet-emulator.log"))
            .clone();
        if let Some(d) = event_log.parent() {
            std::fs::create_dir_all(d)?;
        }
        let mut cmd = Command::new(exe);
        cmd.args(prefix_args)
            .args(opts.to_args())
            .stdin(Stdio::null())
            .process_group(0);
        let parent = nix::unistd::getpid();
        // SAFETY: runs in the forked child before exec; only plain syscalls, no allocation.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)
                    .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
                if nix::unistd::getppid() != parent {
                    return Err(std::io::Error::other("parent exited"));
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        Ok(KubeletProcess {
            child: Some(child),
            event_log,
            grace: opts.grace_period,
        })
    }

    /// The emulator's PID.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The event log written so far.
    pub fn events(&self) -> String {
        std::fs::read_to_string(&self.event_log).unwrap_or_default()
    }

    /// Path of the event log.
    pub fn event_log(&self) -> &Path {
        &self.event_log
    }

    /// Wait until the event log contains a line for which `pred` holds; returns that line.
    pub fn wait_for_event(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&str) -> bool,
    ) -> Option<String> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(l) = self.events().lines().find(|l| pred(l)) {
                return Some(l.to_string());
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop the emulator: SIGTERM, wait for it to stop its pods, SIGKILL after the pods' grace
    /// period plus 3 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let end = Instant::now() + self.grace + Duration::from_secs(3);
        while Instant::now() < end {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for KubeletProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
