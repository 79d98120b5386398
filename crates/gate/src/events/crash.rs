//! From process events to crash records.
//!
//! A **crash** is a process whose argv is the expected one ([`argv_matches`]), that took that
//! argv at or after the write (`started_after`; `None`: any time), and that exited, whatever
//! its status (a component that exits 0 is not running either). Its record has the PID, the
//! exit code or signal, and the lifetime (exit - exec), however short.
//!
//! Not crashes:
//! - The process from *before* the write exiting (expected argv unchanged, or the previous
//!   argv): that is kubelet replacing it, the expected end of the old instance. Reported as
//!   [`Noted::Ended`].
//! - A process with the *previous* argv (see [`CrashTracker::with_previous_argv`]) that started
//!   after the write and exited: kept apart as [`Noted::PreviousCrash`], so that a crash-looping
//!   old component (during a rollback, say) is reported as such.
//! - A process whose argv could not be read before it exited but whose command name is the
//!   expected executable's: [`Noted::Unidentified`], reported, not counted (it is probably the
//!   component, but a gate must not fail on a guess).
//! - Processes whose exec was never seen (started before watching, and not in a
//!   [`ProcEvent::Running`] snapshot): their exits are ignored.

use super::{format_duration, ExitStatus, Precision, ProcEvent};
use crate::restart::{argv_matches, started_at_or_after};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// Which argv a tracked process has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Expected,
    Previous,
    /// Argv unreadable; its command name is the expected executable's.
    MaybeExpected,
}

/// A process that exited, with what is known of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashRecord {
    pub pid: u32,
    /// `None` when it could not be read in time ([`Role::MaybeExpected`]).
    pub argv: Option<Vec<String>>,
    /// The command name, when the argv could not be read.
    pub comm: Option<String>,
    pub role: Role,
    /// When it took the argv (exec), or its start time from `/proc` (see `exact`).
    pub started_at: SystemTime,
    pub exited_at: SystemTime,
    pub lifetime: Duration,
    pub status: ExitStatus,
    /// Times from kernel events (exact); otherwise from `/proc` (start truncated to a clock
    /// tick and taken at the fork, exit at a poll).
    pub exact: bool,
}

impl CrashRecord {
    /// "pid 4242 exited with code 2 after 40 ms".
    pub fn describe(&self) -> String {
        format!(
            "pid {} {} after {}{}",
            self.pid,
            self.status.describe(),
            if self.exact { "" } else { "about " },
            format_duration(self.lifetime)
        )
    }
}

/// What one event meant, when it meant something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Noted {
    Crash(CrashRecord),
    PreviousCrash(CrashRecord),
    /// A process from before the write ended (the replaced instance): not a crash.
    Ended(CrashRecord),
    Unidentified(CrashRecord),
    /// Events were lost: counts are lower bounds from here on.
    Lost(String),
}

impl Noted {
    /// A line for the journal.
    pub fn describe(&self) -> String {
        match self {
            Noted::Crash(r) => format!("crash: {}", r.describe()),
            Noted::PreviousCrash(r) => {
                format!("a process with the previous argv crashed: {}", r.describe())
            }
            Noted::Ended(r) => format!(
                "pid {} (started before the write) {}: the replaced instance ending, not a crash",
                r.pid,
                r.status.describe()
            ),
            Noted::Unidentified(r) => format!(
                "{} before its argv could be read (command name {}): possibly the expected \
                 process, not counted",
                r.describe(),
                r.comm.as_deref().unwrap_or("?")
            ),
            Noted::Lost(d) => format!("process events lost ({d}): crash counts are a lower bound"),
        }
    }
}

#[derive(Debug, Clone)]
struct Live {
    argv: Option<Vec<String>>,
    comm: Option<String>,
    role: Role,
    started_at: SystemTime,
    exact: bool,
}

/// Turns [`ProcEvent`]s into crash records for one expected argv (see the module docs).
#[derive(Debug, Clone)]
pub struct CrashTracker {
    expected: Vec<String>,
    /// `/proc/PID/comm` of the expected executable: basename of argv[0], at most 15 bytes.
    expected_comm: Option<String>,
    previous: Option<Vec<String>>,
    started_after: Option<SystemTime>,
    precision: Precision,
    tick: Duration,
    live: HashMap<u32, Live>,
    crashes: Vec<CrashRecord>,
    previous_crashes: Vec<CrashRecord>,
    ended: Vec<CrashRecord>,
    unidentified: Vec<CrashRecord>,
    lost: Vec<String>,
}

impl CrashTracker {
    /// Crashes of processes with `expected` argv that took it at or after `started_after`.
    /// Kernel precision is assumed; see [`CrashTracker::with_precision`].
    pub fn new(expected: Vec<String>, started_after: Option<SystemTime>) -> CrashTracker {
        let expected_comm = expected.first().map(|a0| {
            let base = a0.rsplit('/').next().unwrap_or(a0);
            // TASK_COMM_LEN is 16 with the NUL; cut on a char boundary.
            let mut end = base.len().min(15);
            while !base.is_char_boundary(end) {
                end -= 1;
            }
            base[..end].to_string()
        });
        CrashTracker {
            expected,
            expected_comm,
            previous: None,
            started_after,
            precision: Precision::Kernel,
            tick: Duration::from_millis(10),
            live: HashMap::new(),
            crashes: Vec::new(),
            previous_crashes: Vec::new(),
            ended: Vec::new(),
            unidentified: Vec::new(),
            lost: Vec::new(),
        }
    }

    /// Also follow processes of the argv before the change (reported apart, never counted).
    pub fn with_previous_argv(mut self, previous: Option<Vec<String>>) -> CrashTracker {
        self.previous = previous.filter(|p| !p.is_empty());
        self
    }

    /// The precision of the source the events come from.
    pub fn with_precision(mut self, precision: Precision) -> CrashTracker {
        self.precision = precision;
        if let Precision::Polled { tick, .. } = precision {
            self.tick = tick;
        }
        self
    }

    fn role_of(&self, argv: &[String]) -> Option<Role> {
        if argv_matches(&self.expected, argv) {
            Some(Role::Expected)
        } else if self
            .previous
            .as_ref()
            .is_some_and(|p| argv_matches(p, argv))
        {
            Some(Role::Previous)
        } else {
            None
        }
    }

    fn after_write(&self, started_at: SystemTime, exact: bool) -> bool {
        match self.started_after {
            None => true,
            Some(t) if exact => started_at >= t,
            // Truncated to a tick: see restart::started_at_or_after.
            Some(t) => started_at_or_after(started_at, t, self.tick),
        }
    }

    /// Take one event into account; says what it meant, if anything.
    pub fn observe(&mut self, ev: &ProcEvent) -> Option<Noted> {
        let kernel = self.precision == Precision::Kernel;
        match ev {
            ProcEvent::Running {
                pid,
                argv,
                started_at,
            } => {
                if !self.live.contains_key(pid) {
                    if let Some(role) = self.role_of(argv) {
                        self.live.insert(
                            *pid,
                            Live {
                                argv: Some(argv.clone()),
                                comm: None,
                                role,
                                started_at: *started_at,
                                exact: false,
                            },
                        );
                    }
                }
                None
            }
            ProcEvent::Exec { pid, argv, at } => {
                let live = match argv {
                    Ok(a) => self.role_of(a).map(|role| Live {
                        argv: Some(a.clone()),
                        comm: None,
                        role,
                        started_at: *at,
                        exact: kernel,
                    }),
                    Err(u) => (u.comm.is_some() && u.comm == self.expected_comm).then(|| Live {
                        argv: None,
                        comm: u.comm.clone(),
                        role: Role::MaybeExpected,
                        started_at: *at,
                        exact: kernel,
                    }),
                };
                // An exec replaces whatever the PID ran before.
                match live {
                    Some(l) => self.live.insert(*pid, l),
                    None => self.live.remove(pid),
                };
                None
            }
            ProcEvent::Exit { pid, status, at } => {
                let l = self.live.remove(pid)?;
                let after = self.after_write(l.started_at, l.exact);
                let rec = CrashRecord {
                    pid: *pid,
                    argv: l.argv,
                    comm: l.comm,
                    role: l.role,
                    started_at: l.started_at,
                    exited_at: *at,
                    lifetime: at.duration_since(l.started_at).unwrap_or_default(),
                    status: *status,
                    exact: l.exact && kernel,
                };
                match (l.role, after) {
                    (Role::Expected, true) => {
                        self.crashes.push(rec.clone());
                        Some(Noted::Crash(rec))
                    }
                    (Role::Previous, true) => {
                        self.previous_crashes.push(rec.clone());
                        Some(Noted::PreviousCrash(rec))
                    }
                    (Role::Expected | Role::Previous, false) => {
                        self.ended.push(rec.clone());
                        Some(Noted::Ended(rec))
                    }
                    (Role::MaybeExpected, true) => {
                        self.unidentified.push(rec.clone());
                        Some(Noted::Unidentified(rec))
                    }
                    (Role::MaybeExpected, false) => None,
                }
            }
            ProcEvent::Lost { detail, .. } => {
                self.lost.push(detail.clone());
                Some(Noted::Lost(detail.clone()))
            }
        }
    }

    /// Crashes of the expected process, oldest first.
    pub fn crashes(&self) -> &[CrashRecord] {
        &self.crashes
    }

    pub fn crash_count(&self) -> u32 {
        u32::try_from(self.crashes.len()).unwrap_or(u32::MAX)
    }

    /// Crashes of processes with the previous argv that started after the write.
    pub fn previous_crashes(&self) -> &[CrashRecord] {
        &self.previous_crashes
    }

    /// Processes from before the write that ended (not crashes).
    pub fn ended(&self) -> &[CrashRecord] {
        &self.ended
    }

    /// Exits of processes that may have been the expected one (argv unreadable).
    pub fn unidentified(&self) -> &[CrashRecord] {
        &self.unidentified
    }

    /// Every loss reported by the source. Empty: the record is complete.
    pub fn lost(&self) -> &[String] {
        &self.lost
    }

    /// "exited with code 2 after 40 ms, twice" (see [`summarize`]).
    pub fn summary(&self) -> String {
        summarize(&self.crashes)
    }
}

/// Crashes grouped by exit status, in order of first appearance: "exited with code 2 after
/// 40 ms, twice; was killed by signal 9 (SIGKILL) after 1.2 s". Lifetimes that read the same
/// are given once, otherwise as a range; "about" when any is approximate.
pub fn summarize(records: &[CrashRecord]) -> String {
    if records.is_empty() {
        return "no crash".into();
    }
    let mut groups: Vec<(ExitStatus, Vec<&CrashRecord>)> = Vec::new();
    for r in records {
        match groups.iter_mut().find(|(s, _)| *s == r.status) {
            Some((_, v)) => v.push(r),
            None => groups.push((r.status, vec![r])),
        }
    }
    groups
        .iter()
        .map(|(status, rs)| {
            let min = rs.iter().map(|r| r.lifetime).min().unwrap_or_default();
            let max = rs.iter().map(|r| r.lifetime).max().unwrap_or_default();
            let (lo, hi) = (format_duration(min), format_duration(max));
            let life = if lo == hi {
                lo
            } else {
                format!("{lo} to {hi}")
            };
            let about = if rs.iter().all(|r| r.exact) {
                ""
            } else {
                "about "
            };
            let times = match rs.len() {
                1 => String::new(),
                2 => ", twice".into(),
                n => format!(", {n} times"),
            };
            format!("{} after {about}{life}{times}", status.describe())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::super::ArgvUnreadable;
    use super::*;
    use std::time::UNIX_EPOCH;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }
    fn t(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_000_000 + ms)
    }
    fn exec(pid: u32, argv: &[&str], ms: u64) -> ProcEvent {
        ProcEvent::Exec {
            pid,
            argv: Ok(s(argv)),
            at: t(ms),
        }
    }
    fn exit(pid: u32, status: ExitStatus, ms: u64) -> ProcEvent {
        ProcEvent::Exit {
            pid,
            status,
            at: t(ms),
        }
    }
    const NEW: &[&str] = &["etcd", "--heartbeat-interval=notanumber"];
    const OLD: &[&str] = &["etcd", "--heartbeat-interval=100"];

    #[test]
    fn crash_loop_of_the_new_process() {
        let mut c = CrashTracker::new(s(NEW), Some(t(0))).with_previous_argv(Some(s(OLD)));
        // The old process, running before the write, is replaced: not a crash.
        c.observe(&ProcEvent::Running {
            pid: 10,
            argv: s(OLD),
            started_at: t(0) - Duration::from_secs(3600),
        });
        let n = c.observe(&exit(10, ExitStatus::Code(0), 500));
        assert!(matches!(n, Some(Noted::Ended(_))), "{n:?}");
        // The new one, full path, exits with code 2 after 40 ms, twice.
        c.observe(&exec(11, &["/usr/local/bin/etcd", NEW[1]], 1_000));
        let n = c.observe(&exit(11, ExitStatus::Code(2), 1_040)).unwrap();
        assert!(n
            .describe()
            .starts_with("crash: pid 11 exited with code 2 after 40 ms"));
        // Unrelated processes and their exits change nothing.
        c.observe(&exec(50, &["sh", "-c", "true"], 1_100));
        assert_eq!(c.observe(&exit(50, ExitStatus::Code(1), 1_101)), None);
        assert_eq!(c.observe(&exit(999, ExitStatus::Code(1), 1_102)), None);
        c.observe(&exec(12, NEW, 2_000));
        c.observe(&exit(12, ExitStatus::Code(2), 2_040));
        assert_eq!(c.crash_count(), 2);
        assert_eq!(c.summary(), "exited with code 2 after 40 ms, twice");
        let r = &c.crashes()[1];
        assert_eq!(
            (r.pid, r.lifetime, r.exact),
            (12, Duration::from_millis(40), true)
        );
        assert_eq!(r.status, ExitStatus::Code(2));
        assert_eq!(c.ended().len(), 1);
        assert!(c.previous_crashes().is_empty() && c.lost().is_empty());
    }

    #[test]
    fn a_one_millisecond_process_and_a_signal() {
        let mut c = CrashTracker::new(s(NEW), Some(t(0)));
        c.observe(&exec(11, NEW, 10));
        c.observe(&exit(11, ExitStatus::Code(1), 11));
        c.observe(&exec(12, NEW, 20));
        c.observe(&exit(
            12,
            ExitStatus::Signal {
                signal: 9,
                core_dumped: false,
            },
            1_220,
        ));
        assert_eq!(
            c.summary(),
            "exited with code 1 after 1 ms; was killed by signal 9 (SIGKILL) after 1.2 s"
        );
    }

    #[test]
    fn the_old_instance_with_the_same_argv_is_not_a_crash() {
        // A restart that keeps the argv (a kubelet configuration file changed).
        let mut c = CrashTracker::new(s(OLD), Some(t(0)));
        // Exec'd 1 ms before the write (kernel time: exact).
        c.observe(&ProcEvent::Exec {
            pid: 10,
            argv: Ok(s(OLD)),
            at: t(0) - Duration::from_millis(1),
        });
        assert!(matches!(
            c.observe(&exit(10, ExitStatus::Code(0), 100)),
            Some(Noted::Ended(_))
        ));
        assert_eq!(c.crash_count(), 0);
        // Running snapshot (tick precision): a start in the tick of the write counts as after.
        c.observe(&ProcEvent::Running {
            pid: 20,
            argv: s(OLD),
            started_at: t(0) - Duration::from_millis(5),
        });
        assert!(matches!(
            c.observe(&exit(20, ExitStatus::Code(1), 100)),
            Some(Noted::Crash(CrashRecord { exact: false, .. }))
        ));
        c.observe(&ProcEvent::Running {
            pid: 21,
            argv: s(OLD),
            started_at: t(0) - Duration::from_millis(15),
        });
        assert!(matches!(
            c.observe(&exit(21, ExitStatus::Code(1), 100)),
            Some(Noted::Ended(_))
        ));
        // Without a write time, every exit of the expected process is a crash.
        let mut any = CrashTracker::new(s(OLD), None);
        any.observe(&ProcEvent::Running {
            pid: 30,
            argv: s(OLD),
            started_at: t(0) - Duration::from_secs(99),
        });
        assert!(matches!(
            any.observe(&exit(30, ExitStatus::Code(1), 1)),
            Some(Noted::Crash(_))
        ));
    }

    #[test]
    fn previous_argv_crash_loop_is_reported_apart() {
        // A rollback: the expected argv is the old one; the new (rejected) one still crashes.
        let mut c = CrashTracker::new(s(OLD), Some(t(0))).with_previous_argv(Some(s(NEW)));
        c.observe(&exec(11, NEW, 100));
        assert!(matches!(
            c.observe(&exit(11, ExitStatus::Code(2), 140)),
            Some(Noted::PreviousCrash(_))
        ));
        assert_eq!(c.crash_count(), 0);
        assert_eq!(c.previous_crashes().len(), 1);
        // And the old component crash-looping is the crash count itself.
        c.observe(&exec(12, OLD, 1_000));
        c.observe(&exit(12, ExitStatus::Code(1), 1_010));
        assert_eq!(c.crash_count(), 1);
    }

    #[test]
    fn unreadable_argv_is_reported_not_counted() {
        let mut c = CrashTracker::new(
            s(&["/usr/local/bin/kube-controller-manager", "--x"]),
            Some(t(0)),
        );
        c.observe(&ProcEvent::Exec {
            pid: 11,
            argv: Err(ArgvUnreadable {
                comm: Some("kube-controller".into()),
                reason: "empty cmdline".into(),
            }),
            at: t(10),
        });
        let n = c.observe(&exit(11, ExitStatus::Code(1), 11)).unwrap();
        assert!(matches!(n, Noted::Unidentified(_)), "{n:?}");
        assert!(n.describe().contains("kube-controller"), "{}", n.describe());
        assert_eq!(c.crash_count(), 0);
        // Another name: ignored.
        c.observe(&ProcEvent::Exec {
            pid: 12,
            argv: Err(ArgvUnreadable {
                comm: Some("true".into()),
                reason: "gone".into(),
            }),
            at: t(10),
        });
        assert_eq!(c.observe(&exit(12, ExitStatus::Code(1), 11)), None);
    }

    #[test]
    fn re_exec_and_losses() {
        let mut c = CrashTracker::new(s(NEW), Some(t(0)));
        // A wrapper execs the component: the lifetime counts from the component's exec.
        c.observe(&exec(11, &["sh", "-c", "exec etcd ..."], 10));
        c.observe(&exec(11, NEW, 15));
        c.observe(&exit(11, ExitStatus::Code(2), 55));
        assert_eq!(c.crashes()[0].lifetime, Duration::from_millis(40));
        // The component execs something else: that one's exit is not the component's.
        c.observe(&exec(12, NEW, 100));
        c.observe(&exec(12, &["other"], 110));
        assert_eq!(c.observe(&exit(12, ExitStatus::Code(1), 120)), None);
        let n = c.observe(&ProcEvent::Lost {
            at: t(130),
            detail: "ENOBUFS".into(),
        });
        assert!(n.unwrap().describe().contains("lower bound"));
        assert_eq!(c.lost(), ["ENOBUFS".to_string()]);
    }

    #[test]
    fn polled_times_are_approximate() {
        let mut c = CrashTracker::new(s(NEW), Some(t(0))).with_precision(Precision::Polled {
            interval: Duration::from_millis(100),
            tick: Duration::from_millis(10),
        });
        c.observe(&exec(11, NEW, 0));
        c.observe(&exit(11, ExitStatus::Unknown, 300));
        c.observe(&exec(12, NEW, 1_000));
        c.observe(&exit(12, ExitStatus::Unknown, 1_400));
        assert_eq!(
            c.summary(),
            "exited (status unknown) after about 300 ms to 400 ms, twice"
        );
        assert!(!c.crashes()[0].exact);
        assert_eq!(summarize(&[]), "no crash");
    }
}
