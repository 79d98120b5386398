//! The `/proc` polling fallback (see the module docs of [`crate::events`]).
//!
//! Each scan lists `<proc_root>` and reads `/proc/PID/stat` of every process: a PID not seen
//! before (or seen with another start time: a reused PID) is a start, reported with its argv
//! and its start time; a PID that disappeared is an exit, with an unknown status, at the time
//! of the scan; a process caught as a zombie (exited, not yet reaped by its parent) is an exit
//! with its status (`stat` field 52, the wait status). Kernel threads are left out. The first
//! scan, done by [`ProcPoller::start`], only records what is already running.

use super::{
    read_argv, ArgvUnreadable, EventError, EventStream, EventsInfo, ExitStatus, Feed, Precision,
    ProcEvent,
};
use crate::restart::ProcScanner;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// Default time between two scans: short enough to see a process that lives a few hundred
/// milliseconds, long enough to cost little (a `stat` read per process per scan).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// `PF_KTHREAD` in `stat` field 9 (flags).
const PF_KTHREAD: u64 = 0x0020_0000;

/// Polls `/proc` on a background thread.
#[derive(Debug)]
pub struct ProcPoller {
    rx: Receiver<ProcEvent>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    interval: Duration,
    tick: Duration,
}

/// Fields of `/proc/PID/stat` the poller uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stat {
    pub comm: String,
    pub state: char,
    pub flags: u64,
    pub start_ticks: u64,
    /// Field 52 (Linux 3.5+): the wait status, meaningful for a zombie.
    pub exit_code: Option<u32>,
}

/// Parse `/proc/PID/stat`. The command name (field 2) is in parentheses and may contain
/// anything, so fields are counted after the last `)`.
pub(crate) fn parse_stat(s: &str) -> Option<Stat> {
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s.get(open + 1..close)?.to_string();
    let f: Vec<&str> = s.get(close + 1..)?.split_whitespace().collect();
    // f[0] is field 3 (state): field N is f[N - 3].
    Some(Stat {
        comm,
        state: f.first()?.chars().next()?,
        flags: f.get(6)?.parse().ok()?,
        start_ticks: f.get(19)?.parse().ok()?,
        exit_code: f.get(49).and_then(|v| v.parse().ok()),
    })
}

#[derive(Debug, Clone, Copy)]
struct Known {
    start_ticks: u64,
    /// Its exit was reported (caught as a zombie), or it is a kernel thread (never reported).
    quiet: bool,
}

struct Scanner {
    proc_root: PathBuf,
    boot: SystemTime,
    tick: Duration,
    known: HashMap<u32, Known>,
    feed: Feed,
}

impl Scanner {
    fn started_at(&self, ticks: u64) -> SystemTime {
        let nanos = (self.tick.as_nanos() as u64).saturating_mul(ticks);
        self.boot + Duration::from_nanos(nanos)
    }

    /// One scan. `baseline`: record only. `Ok(false)`: the consumer is gone.
    fn scan(&mut self, baseline: bool) -> Result<bool, EventError> {
        let rd = std::fs::read_dir(&self.proc_root).map_err(|source| EventError::Proc {
            path: self.proc_root.clone(),
            source,
        })?;
        let now = crate::wall_clock();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Some(stat) = std::fs::read_to_string(e.path().join("stat"))
                .ok()
                .and_then(|s| parse_stat(&s))
            else {
                continue; // vanished meanwhile: an exit, found as such below
            };
            seen.insert(pid);
            let zombie = stat.state == 'Z';
            let status = || {
                stat.exit_code
                    .map_or(ExitStatus::Unknown, ExitStatus::from_wait_status)
            };
            match self.known.get_mut(&pid) {
                Some(k) if k.start_ticks == stat.start_ticks => {
                    if zombie && !k.quiet {
                        k.quiet = true;
                        out.push(ProcEvent::Exit {
                            pid,
                            status: status(),
                            at: now,
                        });
                    }
                    continue;
                }
                // A reused PID: the previous process ended.
                Some(k) if !k.quiet => out.push(ProcEvent::Exit {
                    pid,
                    status: ExitStatus::Unknown,
                    at: now,
                }),
                Some(_) | None => {}
            }
            let kthread = stat.flags & PF_KTHREAD != 0;
            if !baseline && !kthread {
                let argv = if zombie {
                    Err(ArgvUnreadable {
                        comm: Some(stat.comm.clone()),
                        reason: "it had already exited when first seen".into(),
                    })
                } else {
                    read_argv(&self.proc_root, pid)
                };
                out.push(ProcEvent::Exec {
                    pid,
                    argv,
                    at: self.started_at(stat.start_ticks),
                });
                if zombie {
                    out.push(ProcEvent::Exit {
                        pid,
                        status: status(),
                        at: now,
                    });
                }
            }
            self.known.insert(
                pid,
                Known {
                    start_ticks: stat.start_ticks,
                    quiet: kthread || zombie,
                },
            );
        }
        let gone: Vec<u32> = self
            .known
            .keys()
            .filter(|p| !seen.contains(p))
            .copied()
            .collect();
        for pid in gone {
            if let Some(k) = self.known.remove(&pid) {
                if !k.quiet {
                    out.push(ProcEvent::Exit {
                        pid,
                        status: ExitStatus::Unknown,
                        at: now,
                    });
                }
            }
        }
        for ev in out {
            if !self.feed.send(ev) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl ProcPoller {
    /// Record what runs now, then report starts and exits every `interval` on a thread.
    pub fn start(proc_root: &Path, interval: Duration) -> Result<ProcPoller, EventError> {
        let ps = ProcScanner::new(proc_root);
        let boot = ps
            .boot_time()
            .map_err(|e| EventError::Clock(e.to_string()))?;
        let tick = ps.tick();
        let (feed, rx) = Feed::channel();
        let mut scanner = Scanner {
            proc_root: proc_root.to_path_buf(),
            boot,
            tick,
            known: HashMap::new(),
            feed,
        };
        scanner.scan(true)?;
        let (stop, stopped) = channel::<()>();
        let thread = std::thread::Builder::new()
            .name("kharden-proc-poll".into())
            .spawn(move || loop {
                match stopped.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => {}
                    // Stop asked (a message or the sender dropped).
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
                match scanner.scan(false) {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => {
                        if !scanner.feed.lost(format!("a /proc scan failed: {e}")) {
                            return;
                        }
                    }
                }
            })
            .map_err(EventError::PollerStart)?;
        Ok(ProcPoller {
            rx,
            stop: Some(stop),
            thread: Some(thread),
            interval,
            tick,
        })
    }

    /// Stop and join the thread, reporting a panic (dropping does the same and logs it).
    pub fn stop(mut self) -> Result<(), EventError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), EventError> {
        // Dropping the sender wakes the thread at once.
        self.stop.take();
        match self.thread.take().map(JoinHandle::join) {
            Some(Err(_)) => Err(EventError::ThreadPanicked("/proc poller")),
            _ => Ok(()),
        }
    }
}

impl Drop for ProcPoller {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!("process events: stopping the poller: {e}");
        }
    }
}

impl EventStream for ProcPoller {
    fn try_next(&self) -> Option<ProcEvent> {
        self.rx.try_recv().ok()
    }
    fn next_timeout(&self, timeout: Duration) -> Option<ProcEvent> {
        self.rx.recv_timeout(timeout).ok()
    }
    fn info(&self) -> EventsInfo {
        EventsInfo {
            description: format!(
                "polling /proc every {} ms: processes that live less than that may not be \
                 seen at all, exit statuses are mostly unknown and times approximate",
                self.interval.as_millis()
            ),
            precision: Precision::Polled {
                interval: self.interval,
                tick: self.tick,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields() {
        // 52 fields; comm with spaces and parentheses; a zombie with exit status 3 << 8.
        let mut f: Vec<String> = (3..=52).map(|i| i.to_string()).collect();
        f[0] = "Z".into();
        f[6] = "4194560".into(); // 0x400100: not a kernel thread
        f[19] = "123456".into();
        f[49] = "768".into();
        let line = format!("77 (a (b) c) {}", f.join(" "));
        let s = parse_stat(&line).unwrap();
        assert_eq!(s.comm, "a (b) c");
        assert_eq!(s.state, 'Z');
        assert_eq!(s.start_ticks, 123456);
        assert_eq!(s.exit_code, Some(768));
        assert_eq!(
            ExitStatus::from_wait_status(s.exit_code.unwrap()),
            ExitStatus::Code(3)
        );
        assert_eq!(s.flags & PF_KTHREAD, 0);
        // Old kernels: no field 52.
        let short = format!("77 (x) {}", f[..20].join(" "));
        assert_eq!(parse_stat(&short).unwrap().exit_code, None);
        assert!(parse_stat("77 (x) S").is_none());
        // The live kernel: our own stat parses, kthreadd (pid 2) is a kernel thread.
        let me = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(parse_stat(&me).unwrap().start_ticks > 0);
        if let Ok(k) = std::fs::read_to_string("/proc/2/stat") {
            let k = parse_stat(&k).unwrap();
            if k.comm == "kthreadd" {
                assert_ne!(k.flags & PF_KTHREAD, 0);
            }
        }
    }
}
