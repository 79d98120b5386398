//! Process starts and exits, however short-lived: the evidence behind "crashes end the gate
//! early" (DESIGN.md, "The health gate", point 5; issue 16).
//!
//! # Why
//!
//! The gate's restart proof polls `/proc` every 500 ms. A component that rejects a flag exits
//! within milliseconds of each start, so polling never sees it: the gate then waits for its
//! deadline (68 s measured with a rejected etcd flag) while the component, and with it the
//! control plane, is down. The kernel reports every `exec` and every exit, with the exit
//! status, to whoever listens on the *process events connector*; with that, the gate knows
//! within milliseconds that the new process exited, with which code, after how long, and can
//! fail after `max_crashes` crashes instead of at the deadline.
//!
//! # Sources
//!
//! - [`ProcessWatcher`] (`netlink`): a `NETLINK_CONNECTOR` socket bound to the `CN_IDX_PROC`
//!   multicast group and subscribed with `PROC_CN_MCAST_LISTEN`. It needs `CAP_NET_ADMIN` in
//!   the initial user namespace (root), the host's network namespace (the connector exists only
//!   there: a pod needs `hostNetwork`), the host's PID namespace (the kernel ignores, without
//!   answering, subscriptions from other PID namespaces: `hostPID`), and a kernel with
//!   `CONFIG_PROC_EVENTS`. The subscription is confirmed by the kernel's acknowledgement
//!   (matched by the cookie in the connector message's `ack` field: the kernel overwrites
//!   `seq`); without one within [`ACK_TIMEOUT`] the connector counts as unavailable. That first
//!   subscription is the classic 4-byte one, because a socket with a filter never receives
//!   acknowledgements. On Linux 6.6+ the socket is then narrowed to exec and exit events (a
//!   second subscription carrying a `proc_input` filter, which older kernels ignore), so that
//!   forks and thread creations of a busy node do not fill its buffer. Dropping the watcher sends `PROC_CN_MCAST_IGNORE`,
//!   stops and joins its thread.
//! - [`ProcPoller`] (fallback): scans `/proc` on a thread every [`DEFAULT_POLL_INTERVAL`].
//!   It sees a process only if it lives across a scan, so it **cannot see processes that live
//!   a few milliseconds** (a rejected flag); the exit status is known only when the process is
//!   caught as a zombie (its parent had not reaped it yet), otherwise it is
//!   [`ExitStatus::Unknown`], and times are those of the scan. [`EventSource::start`] uses it
//!   when the connector is unavailable and keeps the reason, for the journal.
//!
//! # Reading argv in time
//!
//! An exec event carries only the PID. The argv is read from `/proc/PID/cmdline` by the thread
//! that receives the event, at once, before anything else: that thread does nothing but
//! receive, decode and read `cmdline` (matching and bookkeeping happen on the consumer's side
//! of a channel). A process that exits within microseconds may still be missed: its
//! `cmdline` then reads empty (a zombie) or not at all (reaped), and the event says so
//! ([`ArgvUnreadable`], with the command name from `/proc/PID/comm` when it could be read).
//! A PID could in theory be reused between the event and the read; with 4 million PIDs this
//! is not a practical concern and is not checked. On a loaded machine the reader must get the
//! CPU at once: it asks for `SCHED_FIFO` priority 1 (root), and leaves that class for good if
//! events come faster than 5000 a second. Measured on 2 cores kept busy by two spinning
//! processes: the argv of processes living 0.4 ms was read for 158 of 160 with it, about 60%
//! without; unloaded, for all.
//!
//! # Completeness
//!
//! The kernel drops events when the socket's receive buffer is full (`ENOBUFS`, under a storm
//! of process starts); the consumer channel is bounded too. Both are reported as
//! [`ProcEvent::Lost`], never hidden: a crash count after a loss is a lower bound.
//!
//! # Times
//!
//! Kernel timestamps are `CLOCK_MONOTONIC` nanoseconds; they are turned into wall-clock time
//! with the offset between the two clocks taken when the watcher started, so lifetimes
//! (exit - exec) are exact to the nanosecond and absolute times are as good as the wall clock
//! was at the start. Exec is the moment the process took its argv (a fork that has not yet
//! exec'd is not the component).
//!
//! # Crashes, and the gate
//!
//! [`CrashTracker`] turns the events into [`CrashRecord`]s for one expected argv and one
//! write time: see its docs. [`crate::gate::run_gate`] wraps its I/O in a [`WatchedIo`], which
//! starts an [`EventSource`] and first looks up the processes with the expected argv already
//! running (as [`ProcEvent::Running`], so that their exits are recognised); the gate loop
//! drains the events once per round through [`crate::gate::GateIo::drain_events`] (scripted
//! in tests) and fails after `max_crashes` crashes. The source starts when the gate starts,
//! shortly after the write: a process that started *and* exited in between is not seen. A
//! caller that wants none missed starts the source before the write and hands it over with
//! [`WatchedIo::with_source`].
//!
//! # Why no netlink crate
//!
//! The protocol is four fixed structures ([`decode`], tested on hand-built buffers). The
//! general netlink crates model routing and generic netlink, not the connector's structures,
//! so they would bring a second socket layer (nix already has one) and leave the decoding to
//! this module anyway; the socket itself is `libc::socket` (nix has no `NETLINK_CONNECTOR`
//! protocol), the rest is nix.

mod crash;
pub mod decode;
pub mod gate_io;
mod netlink;
mod poll;

pub use crash::{summarize, CrashRecord, CrashTracker, Noted, Role};
pub use gate_io::WatchedIo;
pub use netlink::{ProcessWatcher, WatchOptions, ACK_TIMEOUT};
pub use poll::{ProcPoller, DEFAULT_POLL_INTERVAL};

use crate::restart::{split_cmdline, ProcInfo};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::{Duration, SystemTime};

/// A process event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcEvent {
    /// A process that was already running when watching began (from a `/proc` scan, see
    /// [`running_now`]; its start time is the fork's, truncated to a clock tick).
    Running {
        pid: u32,
        argv: Vec<String>,
        started_at: SystemTime,
    },
    /// A process called `exec` (kernel events), or was first seen (polling: then `at` is its
    /// start time from `/proc/PID/stat`).
    Exec {
        pid: u32,
        argv: Result<Vec<String>, ArgvUnreadable>,
        at: SystemTime,
    },
    /// A process ended (its thread group leader exited).
    Exit {
        pid: u32,
        status: ExitStatus,
        at: SystemTime,
    },
    /// Events were lost; what follows is incomplete.
    Lost { at: SystemTime, detail: String },
}

/// Why the argv of an exec'd process is not known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgvUnreadable {
    /// The command name (`/proc/PID/comm`: the executable's name, at most 15 bytes), if that
    /// could still be read.
    pub comm: Option<String>,
    pub reason: String,
}

/// How a process ended, decoded from the wait status as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitStatus {
    /// `exit(code)`.
    Code(i32),
    /// Killed by a signal.
    Signal { signal: i32, core_dumped: bool },
    /// Not known (the `/proc` fallback, unless it caught the zombie).
    Unknown,
}

impl ExitStatus {
    /// Decode a wait status (`waitpid(2)`'s, which is also `exit_code` in the kernel's exit
    /// event and field 52 of `/proc/PID/stat`): the low 7 bits are the terminating signal (0:
    /// none), bit 7 says a core was dumped, bits 8-15 are the exit code.
    pub fn from_wait_status(status: u32) -> ExitStatus {
        let signal = status & 0x7f;
        if signal == 0 {
            ExitStatus::Code(((status >> 8) & 0xff) as i32)
        } else {
            ExitStatus::Signal {
                signal: signal as i32,
                core_dumped: status & 0x80 != 0,
            }
        }
    }

    /// "exited with code 2", "was killed by signal 9 (SIGKILL)".
    pub fn describe(&self) -> String {
        match self {
            ExitStatus::Code(c) => format!("exited with code {c}"),
            ExitStatus::Signal {
                signal,
                core_dumped,
            } => {
                let name = nix::sys::signal::Signal::try_from(*signal)
                    .map(|s| format!(" ({})", s.as_str()))
                    .unwrap_or_default();
                let core = if *core_dumped { ", core dumped" } else { "" };
                format!("was killed by signal {signal}{name}{core}")
            }
            ExitStatus::Unknown => "exited (status unknown)".to_string(),
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// How precise the times of a source are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Precision {
    /// Kernel timestamps: every exec and exit, to the nanosecond.
    Kernel,
    /// `/proc` polling: starts to the clock tick (from the fork), exits to the scan interval;
    /// processes shorter than the interval may be missed.
    Polled { interval: Duration, tick: Duration },
}

/// What a source of events is, for the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsInfo {
    /// E.g. "kernel process events (netlink connector)" or "polling /proc every 100 ms: the
    /// process events connector is unavailable (...)".
    pub description: String,
    pub precision: Precision,
}

/// The process events connector cannot be used; the text says why (for the journal).
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error("cannot open a NETLINK_CONNECTOR socket: {0} (kernel without CONFIG_CONNECTOR?)")]
    Socket(#[source] nix::Error),
    #[error(
        "cannot join the process events group: {0} (needs root: CAP_NET_ADMIN in the initial user namespace)"
    )]
    Bind(#[source] nix::Error),
    #[error(
        "cannot subscribe to process events: {0} (the connector exists only in the host's network namespace: hostNetwork)"
    )]
    Subscribe(#[source] nix::Error),
    #[error("the kernel refused the subscription to process events: {0}")]
    Refused(nix::Error),
    #[error(
        "no acknowledgement of the subscription to process events within {0:?} (not in the host's PID namespace (hostPID), or a kernel without CONFIG_PROC_EVENTS)"
    )]
    NoAck(Duration),
    #[error("waiting for the subscription's acknowledgement: {0}")]
    Receive(#[source] nix::Error),
    #[error("cannot start the process events thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("{0} is not a procfs: kernel process events name processes of the live system")]
    NotProcfs(PathBuf),
    #[error("{0}")]
    Clock(String),
}

/// Errors of the event sources beyond the connector's availability.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("cannot start the /proc poller: {0}")]
    PollerStart(#[source] std::io::Error),
    #[error("reading {path}: {source}")]
    Proc {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Clock(String),
    #[error("unsubscribing from process events: {0}")]
    Unsubscribe(#[source] nix::Error),
    #[error("the {0} thread panicked")]
    ThreadPanicked(&'static str),
}

/// How many events may wait for the consumer; beyond that they are dropped and reported as
/// [`ProcEvent::Lost`] (the reader must never block: it has argv to read).
pub const CHANNEL_CAPACITY: usize = 16_384;

/// The sending side of a source's channel: never blocks, counts what it had to drop.
#[derive(Debug)]
pub(crate) struct Feed {
    tx: SyncSender<ProcEvent>,
    dropped: u64,
}

impl Feed {
    pub(crate) fn channel() -> (Feed, Receiver<ProcEvent>) {
        let (tx, rx) = sync_channel(CHANNEL_CAPACITY);
        (Feed { tx, dropped: 0 }, rx)
    }

    /// Queue an event. `false`: the consumer is gone.
    pub(crate) fn send(&mut self, ev: ProcEvent) -> bool {
        if self.dropped > 0 {
            let lost = ProcEvent::Lost {
                at: crate::wall_clock(),
                detail: format!(
                    "{} process events dropped: the consumer did not keep up",
                    self.dropped
                ),
            };
            match self.tx.try_send(lost) {
                Ok(()) => self.dropped = 0,
                Err(TrySendError::Full(_)) => {
                    self.dropped += 1;
                    return true;
                }
                Err(TrySendError::Disconnected(_)) => return false,
            }
        }
        match self.tx.try_send(ev) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.dropped += 1;
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Queue a [`ProcEvent::Lost`]. `false`: the consumer is gone.
    pub(crate) fn lost(&mut self, detail: String) -> bool {
        tracing::warn!("process events: {detail}");
        self.send(ProcEvent::Lost {
            at: crate::wall_clock(),
            detail,
        })
    }
}

/// A stream of process events, whatever the source.
pub trait EventStream {
    /// The next event if one is waiting.
    fn try_next(&self) -> Option<ProcEvent>;
    /// The next event, waiting at most `timeout`. `None`: none came (or the source stopped:
    /// then a [`ProcEvent::Lost`] came first).
    fn next_timeout(&self, timeout: Duration) -> Option<ProcEvent>;
    /// Every event waiting now.
    fn drain(&self) -> Vec<ProcEvent> {
        std::iter::from_fn(|| self.try_next()).collect()
    }
    fn info(&self) -> EventsInfo;
}

/// The kernel's events if possible, else `/proc` polling with the reason.
#[derive(Debug)]
pub enum EventSource {
    Kernel(ProcessWatcher),
    Polling {
        poller: ProcPoller,
        /// Why the connector is not used.
        reason: String,
    },
}

impl EventSource {
    /// Start watching the processes of `proc_root` (normally `/proc`; the host's `/proc` in a
    /// pod): kernel events if available, else polling. `Err` only when the poller cannot
    /// start either.
    pub fn start(proc_root: &Path) -> Result<EventSource, EventError> {
        let attempt = if is_procfs(proc_root) {
            ProcessWatcher::start_with(proc_root)
        } else {
            Err(Unavailable::NotProcfs(proc_root.to_path_buf()))
        };
        match attempt {
            Ok(w) => Ok(EventSource::Kernel(w)),
            Err(why) => {
                tracing::info!("process events: falling back to polling /proc: {why}");
                EventSource::polling(proc_root, DEFAULT_POLL_INTERVAL, why.to_string())
            }
        }
    }

    /// The `/proc` poller, with the reason it is used.
    pub fn polling(
        proc_root: &Path,
        interval: Duration,
        reason: impl Into<String>,
    ) -> Result<EventSource, EventError> {
        Ok(EventSource::Polling {
            poller: ProcPoller::start(proc_root, interval)?,
            reason: reason.into(),
        })
    }

    /// Why the kernel's events are not used, if they are not.
    pub fn fallback_reason(&self) -> Option<&str> {
        match self {
            EventSource::Kernel(_) => None,
            EventSource::Polling { reason, .. } => Some(reason),
        }
    }
}

impl EventStream for EventSource {
    fn try_next(&self) -> Option<ProcEvent> {
        match self {
            EventSource::Kernel(w) => w.try_next(),
            EventSource::Polling { poller, .. } => poller.try_next(),
        }
    }
    fn next_timeout(&self, timeout: Duration) -> Option<ProcEvent> {
        match self {
            EventSource::Kernel(w) => w.next_timeout(timeout),
            EventSource::Polling { poller, .. } => poller.next_timeout(timeout),
        }
    }
    fn info(&self) -> EventsInfo {
        match self {
            EventSource::Kernel(w) => w.info(),
            EventSource::Polling { poller, reason } => {
                let mut i = poller.info();
                i.description = format!(
                    "{}; the process events connector is unavailable: {reason}",
                    i.description
                );
                i
            }
        }
    }
}

/// `Running` events for the processes of `proc_root` whose argv `keep` accepts (a snapshot to
/// put before a watcher's events: processes that started before it).
pub fn running_now(
    scanner: &crate::restart::ProcScanner,
    mut keep: impl FnMut(&[String]) -> bool,
) -> Result<Vec<ProcEvent>, crate::restart::ProcError> {
    Ok(scanner
        .processes()?
        .into_iter()
        .filter(|p| keep(&p.argv))
        .map(
            |ProcInfo {
                 pid,
                 argv,
                 started_at,
                 ..
             }| ProcEvent::Running {
                pid,
                argv,
                started_at,
            },
        )
        .collect())
}

/// Read `<proc_root>/PID/cmdline` (see the module docs on timing).
pub fn read_argv(proc_root: &Path, pid: u32) -> Result<Vec<String>, ArgvUnreadable> {
    let dir = proc_root.join(pid.to_string());
    let comm = || {
        std::fs::read_to_string(dir.join("comm"))
            .ok()
            .map(|c| c.trim_end_matches('\n').to_string())
    };
    match std::fs::read(dir.join("cmdline")) {
        Ok(raw) if !raw.is_empty() => Ok(split_cmdline(&raw)),
        Ok(_) => Err(ArgvUnreadable {
            comm: comm(),
            reason: "empty cmdline: the process had already exited".into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ArgvUnreadable {
            comm: None,
            reason: "the process had already exited and been reaped".into(),
        }),
        Err(e) => Err(ArgvUnreadable {
            comm: comm(),
            reason: format!("reading its cmdline: {e}"),
        }),
    }
}

/// Is `p` a procfs? (Unlike [`crate::restart::ProcScanner`], a path that cannot be examined
/// does not count: kernel events would name processes that cannot be looked up there.)
pub(crate) fn is_procfs(p: &Path) -> bool {
    nix::sys::statfs::statfs(p)
        .map(|fs| fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
        .unwrap_or(false)
}

/// Turns `CLOCK_MONOTONIC` nanoseconds (kernel event timestamps) into wall-clock time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MonoBase {
    /// Wall-clock time at monotonic zero.
    zero: SystemTime,
}

impl MonoBase {
    pub(crate) fn now() -> Result<MonoBase, EventError> {
        let mono = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map_err(|e| EventError::Clock(format!("clock_gettime(MONOTONIC): {e}")))?;
        let wall = crate::wall_clock();
        let zero = wall
            .checked_sub(Duration::from(mono))
            .ok_or_else(|| EventError::Clock("monotonic clock ahead of the epoch".into()))?;
        Ok(MonoBase { zero })
    }

    pub(crate) fn at(&self, ts_ns: u64) -> SystemTime {
        self.zero + Duration::from_nanos(ts_ns)
    }
}

/// "40 ms", "0.3 ms", "1.5 s", "2 min 5 s".
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{} ms", ms.round() as u64)
    } else if d < Duration::from_secs(60) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} min {} s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn wait_status_decoding_matches_libc_and_std() {
        for status in (0u32..=0xffff)
            .step_by(7)
            .chain([0, 0x300, 0x9, 0x8b, 0xff00])
        {
            let s = status as i32;
            let ours = ExitStatus::from_wait_status(status);
            let std = std::process::ExitStatus::from_raw(s);
            if libc::WIFEXITED(s) {
                assert_eq!(ours, ExitStatus::Code(libc::WEXITSTATUS(s)), "{status:#x}");
                assert_eq!(std.code(), Some(libc::WEXITSTATUS(s)));
            } else if libc::WIFSIGNALED(s) {
                assert_eq!(
                    ours,
                    ExitStatus::Signal {
                        signal: libc::WTERMSIG(s),
                        core_dumped: libc::WCOREDUMP(s)
                    },
                    "{status:#x}"
                );
                assert_eq!(std.signal(), Some(libc::WTERMSIG(s)));
            }
        }
        // The spec's formula, on the cases that matter.
        assert_eq!(ExitStatus::from_wait_status(3 << 8), ExitStatus::Code(3));
        assert_eq!(
            ExitStatus::from_wait_status(255 << 8),
            ExitStatus::Code(255)
        );
        assert_eq!(
            ExitStatus::from_wait_status(9),
            ExitStatus::Signal {
                signal: 9,
                core_dumped: false
            }
        );
        assert_eq!(
            ExitStatus::from_wait_status(0x80 | 11),
            ExitStatus::Signal {
                signal: 11,
                core_dumped: true
            }
        );
        assert_eq!(
            ExitStatus::from_wait_status(0).describe(),
            "exited with code 0"
        );
        assert_eq!(
            ExitStatus::from_wait_status(9).describe(),
            "was killed by signal 9 (SIGKILL)"
        );
        assert_eq!(
            ExitStatus::from_wait_status(0x8b).describe(),
            "was killed by signal 11 (SIGSEGV), core dumped"
        );
    }

    #[test]
    fn a_full_channel_drops_and_says_so() {
        let ev = |pid| ProcEvent::Exit {
            pid,
            status: ExitStatus::Code(0),
            at: crate::wall_clock(),
        };
        let (mut f, rx) = Feed::channel();
        for pid in 0..CHANNEL_CAPACITY as u32 {
            assert!(f.send(ev(pid)));
        }
        // Full: dropped and counted, never blocking.
        assert!(f.send(ev(1_000_000)));
        assert!(f.send(ev(1_000_001)));
        assert_eq!(f.dropped, 2);
        // Room for one: the loss notice goes first.
        assert!(rx.recv().is_ok());
        assert!(f.send(ev(1_000_002)));
        let rest: Vec<ProcEvent> = rx.try_iter().collect();
        assert_eq!(rest.len(), CHANNEL_CAPACITY);
        assert!(matches!(
            rest.last(),
            Some(ProcEvent::Lost { detail, .. }) if detail.starts_with("2 process events dropped")
        ));
        assert_eq!(f.dropped, 1);
        drop(rx);
        assert!(!f.send(ev(7)));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(Duration::from_micros(400)), "0.4 ms");
        assert_eq!(format_duration(Duration::from_millis(40)), "40 ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(format_duration(Duration::from_secs(125)), "2 min 5 s");
    }

    #[test]
    fn argv_of_a_live_and_a_gone_process() {
        let me = read_argv(Path::new("/proc"), std::process::id()).unwrap();
        assert!(!me.is_empty());
        // PIDs above pid_max's ceiling never exist.
        let gone = read_argv(Path::new("/proc"), 4_194_304 + 7).unwrap_err();
        assert!(gone.reason.contains("reaped"), "{gone:?}");
        assert!(is_procfs(Path::new("/proc")));
        assert!(!is_procfs(Path::new("/")));
    }
}
