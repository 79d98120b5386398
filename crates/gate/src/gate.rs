//! The gate loop: restart proven, then healthy, stably, with the same process, before a
//! deadline.
//!
//! Why each rule (DESIGN.md, "The health gate"):
//! 1. Restart proof: the old process answers probes until kubelet replaces it. Every probe is
//!    still taken and recorded while no process with the expected argv (started at or after
//!    the write) exists, but such observations never count.
//! 2. Probe like kubelet (see [`mod@crate::probe`]).
//! 3. Stability: `min_successes` consecutive healthy probes spanning `stable_for`, all while the
//!    same proven PID exists. The process is looked up before *and* after each probe; a PID
//!    change, a vanished process or a non-healthy outcome resets the streak, so a crash loop
//!    whose period is shorter than `stable_for` cannot pass.
//! 4. Deadline: absolute wall-clock time chosen by the caller (and journaled by it), so a gate
//!    resumed after a crash keeps the original deadline. The gate never passes on an
//!    observation taken after the deadline.
//! 5. Crashes end it early: every exec and exit is seen through process events
//!    ([`crate::events`]: the kernel's connector, or `/proc` polling that says it is a
//!    fallback); a process with the expected argv, started after the write, that exited is a
//!    crash. After `max_crashes` of them the gate fails at once ([`FailReason::CrashLoop`],
//!    with the records in the verdict and in the observations) instead of at the deadline. The
//!    events are drained once per round, so "at once" means within a round (a poll interval
//!    and a probe).
//!
//! Verifying a rollback is the same function with the old manifest's argv as the expected argv.
//! There `started_after` may be `None` when the old process may legitimately still be the one
//! that ran before the transaction (kubelet never restarted it).
//!
//! The I/O (process lookup, probe) and the clock are traits so tests can script them.

use crate::events::gate_io::{GateCrashes, WatchedIo};
use crate::events::{CrashRecord, EventsInfo, ProcEvent};
use crate::probe::{probe_with, ProbeClass, ProbeOutcome, ProbeTarget, TlsSettings};
use crate::restart::{pid_listens_on, ProcScanner};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// What the gate waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateParams {
    /// The argv (command + args) the restarted process must have.
    pub expected_argv: Vec<String>,
    /// The process must have started at or after this time (the manifest write); `None`: any
    /// matching process counts.
    pub started_after: Option<SystemTime>,
    /// Absolute deadline.
    pub deadline: SystemTime,
    /// How long the healthy streak must span.
    pub stable_for: Duration,
    /// How many consecutive healthy probes at least.
    pub min_successes: u32,
    pub poll_interval: Duration,
    /// Timeout of one probe (also capped by the time left).
    pub probe_timeout: Duration,
    pub target: ProbeTarget,
    pub tls: TlsSettings,
    /// Normally `/proc`.
    pub proc_root: PathBuf,
    /// A healthy answer only counts when the proven process owns the listening socket on the
    /// probe's port ([`crate::restart::pid_listens_on`]); when that cannot be told (fd
    /// directory unreadable: not root) it counts, with a note. Default true.
    pub require_listener: bool,
    /// Probe HTTPS without verifying the server certificate, as kubelet does. For
    /// kube-controller-manager and kube-scheduler, whose serving certificates on a kubeadm node
    /// are self-signed at start and so cannot be verified against anything. The proof that the
    /// answer comes from the right process is then the socket ownership check, which becomes
    /// mandatory (unknown ownership does not count). Default false.
    pub insecure_skip_tls_verify: bool,
    /// Fail as soon as the expected process has crashed this many times (see the module
    /// docs, rule 5); 0: only the deadline ends the gate. Default 2: a component may fail
    /// once while its predecessor still holds its port.
    #[serde(default = "default_max_crashes")]
    pub max_crashes: u32,
    /// The argv on the other side of the change (the old one in a forward gate, the rejected
    /// one in a rollback's): its crashes are reported apart, never counted. Default none.
    #[serde(default)]
    pub previous_argv: Option<Vec<String>>,
}

fn default_max_crashes() -> u32 {
    2
}

impl GateParams {
    /// Defaults: 5 s stability window, 3 successes, 500 ms poll, 5 s probe timeout, `/proc`.
    pub fn new(
        expected_argv: Vec<String>,
        started_after: Option<SystemTime>,
        deadline: SystemTime,
        target: ProbeTarget,
        tls: TlsSettings,
    ) -> GateParams {
        GateParams {
            expected_argv,
            started_after,
            deadline,
            stable_for: Duration::from_secs(5),
            min_successes: 3,
            poll_interval: Duration::from_millis(500),
            probe_timeout: Duration::from_secs(5),
            target,
            tls,
            proc_root: PathBuf::from("/proc"),
            require_listener: true,
            insecure_skip_tls_verify: false,
            max_crashes: default_max_crashes(),
            previous_argv: None,
        }
    }
}

/// One probe round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// When the round ended.
    pub at: SystemTime,
    /// The proven process (expected argv, started after the write) seen before and after the
    /// probe, if the same one both times.
    pub pid: Option<u32>,
    pub class: ProbeClass,
    pub detail: String,
    /// Whether this observation extended a healthy streak.
    pub counted: bool,
    /// Length of the healthy streak after this observation.
    pub streak: u32,
    /// Why it did not count, or other context (process events included: crashes, the old
    /// instance ending, lost events, and in the first observation where events come from).
    pub note: String,
    /// Crashes of the expected process seen during this round.
    #[serde(default)]
    pub crashes: Vec<CrashRecord>,
}

impl Observation {
    /// One round with nothing but a probe's answer (scripted gates; the loop fills the rest).
    pub fn probe(at: SystemTime, pid: Option<u32>, class: ProbeClass, detail: &str) -> Self {
        Observation {
            at,
            pid,
            class,
            detail: detail.to_string(),
            counted: false,
            streak: 0,
            note: String::new(),
            crashes: Vec::new(),
        }
    }
}

/// Why the gate failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailReason {
    /// No process with the expected argv started after the write was ever seen (kubelet did
    /// not restart it, or it exits at once, e.g. on a rejected flag: see its logs).
    NoNewProcess,
    /// Processes with the expected argv came and went: `max_crashes` crashes seen through
    /// process events (the verdict's `crashes` lists them), or several PIDs seen by the
    /// deadline.
    CrashLoop,
    /// The proven process did not answer healthy; the last class seen.
    Unhealthy(ProbeClass),
    /// Healthy, but not for long enough before the deadline.
    NotStable,
    /// The gate could not run at all (no probe to take, an unreadable manifest): the detail
    /// says why.
    Unavailable,
    /// A signal stopped it.
    Interrupted,
}

impl std::fmt::Display for FailReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailReason::NoNewProcess => f.write_str("no restarted process with the new argv"),
            FailReason::CrashLoop => f.write_str("crash loop"),
            FailReason::Unhealthy(c) => write!(f, "not healthy: {c}"),
            FailReason::NotStable => f.write_str("not stable long enough"),
            FailReason::Unavailable => f.write_str("the gate could not run"),
            FailReason::Interrupted => f.write_str("interrupted"),
        }
    }
}

/// The gate's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GateVerdict {
    /// Healthy and stable. `pid` and `argv` are the proven process's (`None`: no gate ran, as
    /// with `--no-gate`, and the transaction's audit reads the file instead).
    Passed {
        pid: Option<u32>,
        argv: Option<Vec<String>>,
        healthy_probes: u32,
        /// Time from the first to the last probe of the streak.
        stable_for: Duration,
    },
    Failed {
        reason: FailReason,
        detail: String,
        /// The last observations (at most [`KEEP_OBSERVATIONS`]), oldest first.
        last_observations: Vec<Observation>,
        /// Every crash of the expected process seen, oldest first.
        #[serde(default)]
        crashes: Vec<CrashRecord>,
        /// Crashes of processes with [`GateParams::previous_argv`].
        #[serde(default)]
        previous_crashes: Vec<CrashRecord>,
    },
}

impl GateVerdict {
    pub fn passed(&self) -> bool {
        matches!(self, GateVerdict::Passed { .. })
    }

    /// No gate ran (`--no-gate`): passed, with no process to show.
    pub fn skipped() -> GateVerdict {
        GateVerdict::Passed {
            pid: None,
            argv: None,
            healthy_probes: 0,
            stable_for: Duration::ZERO,
        }
    }

    /// A failure with no observation behind it (a gate that could not start, a scripted one).
    pub fn failed(reason: FailReason, detail: impl Into<String>) -> GateVerdict {
        GateVerdict::Failed {
            reason,
            detail: detail.into(),
            last_observations: Vec::new(),
            crashes: Vec::new(),
            previous_crashes: Vec::new(),
        }
    }

    /// Why it failed, in one line (`None`: it passed).
    pub fn failure(&self) -> Option<String> {
        match self {
            GateVerdict::Passed { .. } => None,
            GateVerdict::Failed { reason, detail, .. } if detail.is_empty() => {
                Some(reason.to_string())
            }
            GateVerdict::Failed { reason, detail, .. } => Some(format!("{reason}: {detail}")),
        }
    }
}

/// How many observations a failed verdict keeps.
pub const KEEP_OBSERVATIONS: usize = 10;

/// A process found by [`GateIo::find_process`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundProcess {
    pub pid: u32,
    /// Its argv as read from `/proc/PID/cmdline` (`argv[0]` may be a full path; see
    /// [`crate::restart::argv_matches`]).
    pub argv: Vec<String>,
}

/// The gate's I/O.
pub trait GateIo {
    /// The newest process with `argv` that started at or after `since`, if any. An error (e.g.
    /// `/proc` unreadable) is reported in the observation and counts as "none".
    fn find_process(
        &mut self,
        argv: &[String],
        since: Option<SystemTime>,
    ) -> Result<Option<FoundProcess>, String>;
    /// One probe.
    fn probe(&mut self, timeout: Duration) -> ProbeOutcome;
    /// Does `pid` own a listening socket on `port`? `Ok(None)`: cannot tell. The default
    /// cannot tell (scripted tests).
    fn listens_on(&mut self, _pid: u32, _port: u16) -> Result<Option<bool>, String> {
        Ok(None)
    }
    /// Process starts and exits since the last call ([`crate::events`]). The default has
    /// none: crashes are then only inferred at the deadline, from the PIDs seen.
    fn drain_events(&mut self) -> Vec<ProcEvent> {
        Vec::new()
    }
    /// Where the events come from, and how precise they are. Default: no events.
    fn events_source(&self) -> Option<EventsInfo> {
        None
    }
}

/// The clock of kharden: the gate loop's and the transaction engine's (`kharden::txn`
/// re-exports it). Scripted in tests, simulated in the power-loss explorer, the wall clock
/// otherwise ([`SystemClock`]).
pub trait Clock {
    fn now(&self) -> SystemTime;
    fn sleep(&self, d: Duration);
}

/// Wall clock and `thread::sleep`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        crate::wall_clock()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
}

/// `/proc` and the real probe.
#[derive(Debug, Clone)]
pub struct LiveIo {
    pub scanner: ProcScanner,
    pub proc_root: PathBuf,
    pub target: ProbeTarget,
    pub tls: TlsSettings,
    /// Verify the server certificate (see [`GateParams::insecure_skip_tls_verify`]).
    pub verify_tls: bool,
}

impl LiveIo {
    pub fn new(params: &GateParams) -> LiveIo {
        LiveIo {
            scanner: ProcScanner::new(&params.proc_root),
            proc_root: params.proc_root.clone(),
            target: params.target.clone(),
            tls: params.tls.clone(),
            verify_tls: !params.insecure_skip_tls_verify,
        }
    }
}

impl GateIo for LiveIo {
    fn find_process(
        &mut self,
        argv: &[String],
        since: Option<SystemTime>,
    ) -> Result<Option<FoundProcess>, String> {
        self.scanner
            .find(argv, since)
            .map(|v| {
                v.into_iter().next().map(|p| FoundProcess {
                    pid: p.pid,
                    argv: p.argv,
                })
            })
            .map_err(|e| e.to_string())
    }
    fn probe(&mut self, timeout: Duration) -> ProbeOutcome {
        probe_with(&self.target, &self.tls, timeout, self.verify_tls)
    }
    fn listens_on(&mut self, pid: u32, port: u16) -> Result<Option<bool>, String> {
        pid_listens_on(&self.proc_root, pid, port).map_err(|e| e.to_string())
    }
}

/// Run the gate against the live system (`/proc`, process events, real probes, wall clock).
pub fn run_gate(params: &GateParams, on_observation: &mut dyn FnMut(&Observation)) -> GateVerdict {
    let mut io = WatchedIo::start(LiveIo::new(params), params);
    run_gate_with(params, &mut io, &SystemClock, on_observation)
}

struct Streak {
    pid: u32,
    since: SystemTime,
    count: u32,
}

/// Run the gate with injected I/O and clock.
pub fn run_gate_with(
    params: &GateParams,
    io: &mut dyn GateIo,
    clock: &dyn Clock,
    on_observation: &mut dyn FnMut(&Observation),
) -> GateVerdict {
    let mut streak: Option<Streak> = None;
    let mut last: VecDeque<Observation> = VecDeque::new();
    let mut proven_pids: Vec<u32> = Vec::new();
    let mut last_proven_class: Option<ProbeClass> = None;
    let mut crashes = GateCrashes::new(params, io.events_source());
    // The argv of the proven process as last read from /proc, for the verdict.
    let mut proven_argv: Vec<String> = params.expected_argv.clone();
    let mut lookup = |io: &mut dyn GateIo| {
        let found = io.find_process(&params.expected_argv, params.started_after)?;
        Ok::<_, String>(found.map(|f| {
            proven_argv = f.argv;
            f.pid
        }))
    };
    loop {
        let now = clock.now();
        let Ok(left) = params.deadline.duration_since(now) else {
            return fail(params, &last, &proven_pids, last_proven_class, &crashes);
        };
        if left.is_zero() {
            return fail(params, &last, &proven_pids, last_proven_class, &crashes);
        }
        let before = lookup(io);
        let outcome = io.probe(params.probe_timeout.min(left));
        let after = lookup(io);
        let at = clock.now();

        let mut note = String::new();
        let pid = match (&before, &after) {
            (Ok(Some(a)), Ok(Some(b))) if a == b => Some(*b),
            (Ok(Some(a)), Ok(Some(b))) => {
                note = format!("process changed during the probe ({a} -> {b})");
                None
            }
            (Ok(None), Ok(Some(b))) => {
                note = format!("process {b} appeared during the probe");
                None
            }
            (Ok(Some(a)), Ok(None)) => {
                note = format!("process {a} vanished during the probe");
                None
            }
            (Ok(None), Ok(None)) => {
                note = if params.started_after.is_some() {
                    "no process with the expected argv started after the write: the answer \
                     (if any) came from an unproven process and does not count"
                        .to_string()
                } else {
                    "no process with the expected argv".to_string()
                };
                None
            }
            (Err(e), _) | (_, Err(e)) => {
                note = format!("process lookup failed: {e}");
                None
            }
        };
        for p in [&before, &after] {
            if let Ok(Some(p)) = p {
                if !proven_pids.contains(p) {
                    proven_pids.push(*p);
                }
            }
        }
        // A probe the deadline cut short (its timeout below --probe-timeout) that timed out
        // says nothing about the component: the verdict keeps the answer before it.
        let cut_short = params.probe_timeout > left && outcome.class == ProbeClass::Timeout;
        if pid.is_some() && !(cut_short && last_proven_class.is_some()) {
            last_proven_class = Some(outcome.class);
        }
        let mut listener_ok = true;
        if let (Some(p), true) = (pid, outcome.class.is_healthy()) {
            if params.require_listener || params.insecure_skip_tls_verify {
                let port = params.target.port;
                match io.listens_on(p, port) {
                    Ok(Some(true)) => {}
                    Ok(Some(false)) => {
                        listener_ok = false;
                        note = format!(
                            "healthy answer, but process {p} does not own the listening socket on port {port}: another process answered"
                        );
                    }
                    Ok(None) if params.insecure_skip_tls_verify => {
                        listener_ok = false;
                        note = format!(
                            "TLS not verified and the owner of port {port} cannot be told: does not count"
                        );
                    }
                    Ok(None) => note = format!("owner of port {port} cannot be told"),
                    Err(e) => {
                        listener_ok = false;
                        note = format!("checking the owner of port {port}: {e}");
                    }
                }
            }
        }
        let (new_crashes, event_notes) = crashes.absorb(io.drain_events(), params.max_crashes);
        if !event_notes.is_empty() {
            let events = event_notes.join("; ");
            note = if note.is_empty() {
                events
            } else {
                format!("{note}; {events}")
            };
        }
        let counted = match (pid, outcome.class.is_healthy() && listener_ok) {
            (Some(p), true) => {
                match &mut streak {
                    Some(s) if s.pid == p => s.count += 1,
                    _ => {
                        streak = Some(Streak {
                            pid: p,
                            since: at,
                            count: 1,
                        })
                    }
                }
                true
            }
            _ => {
                streak = None;
                false
            }
        };
        let obs = Observation {
            at,
            pid,
            class: outcome.class,
            detail: outcome.detail,
            counted,
            streak: streak.as_ref().map_or(0, |s| s.count),
            note,
            crashes: new_crashes,
        };
        on_observation(&obs);
        last.push_back(obs);
        if last.len() > KEEP_OBSERVATIONS {
            last.pop_front();
        }

        if crashes.limit_reached(params.max_crashes) {
            return GateVerdict::Failed {
                reason: FailReason::CrashLoop,
                detail: crashes.limit_detail(params.max_crashes),
                last_observations: last.iter().cloned().collect(),
                crashes: crashes.crashes(),
                previous_crashes: crashes.previous_crashes(),
            };
        }
        if let Some(s) = &streak {
            let spanned = at.duration_since(s.since).unwrap_or_default();
            if s.count >= params.min_successes
                && spanned >= params.stable_for
                && at <= params.deadline
            {
                return GateVerdict::Passed {
                    pid: Some(s.pid),
                    argv: Some(proven_argv),
                    healthy_probes: s.count,
                    stable_for: spanned,
                };
            }
        }
        let now = clock.now();
        match params.deadline.duration_since(now) {
            Ok(left) if !left.is_zero() => clock.sleep(params.poll_interval.min(left)),
            _ => return fail(params, &last, &proven_pids, last_proven_class, &crashes),
        }
    }
}

fn fail(
    params: &GateParams,
    last: &VecDeque<Observation>,
    proven_pids: &[u32],
    last_proven_class: Option<ProbeClass>,
    crashes: &GateCrashes,
) -> GateVerdict {
    let argv = params.expected_argv.join(" ");
    let (reason, detail) = if proven_pids.is_empty() && crashes.any() {
        // Too short-lived for /proc, seen by the process events.
        (
            FailReason::CrashLoop,
            format!(
                "deadline reached; processes with argv [{argv}] started and exited: {} (check \
                 its logs)",
                crashes.crash_text()
            ),
        )
    } else if proven_pids.is_empty() {
        (
            FailReason::NoNewProcess,
            format!(
                "deadline reached and no process with argv [{argv}] was seen{}; it may exit at \
                 start (check its logs) or kubelet did not restart it",
                if params.started_after.is_some() {
                    " starting after the write"
                } else {
                    ""
                }
            ),
        )
    } else if proven_pids.len() > 1 {
        (
            FailReason::CrashLoop,
            format!(
                "deadline reached; {} different processes with the expected argv were seen (PIDs {:?})",
                proven_pids.len(),
                proven_pids
            ),
        )
    } else {
        match last_proven_class {
            Some(c) if !c.is_healthy() => (
                FailReason::Unhealthy(c),
                format!(
                    "deadline reached; process {} last answered: {c}",
                    proven_pids[0]
                ),
            ),
            // Seen once, never answered a probe of its own: it died at start.
            None => (
                FailReason::CrashLoop,
                format!(
                    "deadline reached; process {} started with the new argv but exited before answering a probe (check its logs)",
                    proven_pids[0]
                ),
            ),
            Some(_) => (
                FailReason::NotStable,
                format!(
                    "deadline reached; process {} was healthy but not for {:?} and {} probes in a row",
                    proven_pids[0], params.stable_for, params.min_successes
                ),
            ),
        }
    };
    let detail = if proven_pids.is_empty() && crashes.any() {
        detail
    } else {
        detail + &crashes.deadline_suffix()
    };
    GateVerdict::Failed {
        reason,
        detail,
        last_observations: last.iter().cloned().collect(),
        crashes: crashes.crashes(),
        previous_crashes: crashes.previous_crashes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Scheme;
    use std::time::UNIX_EPOCH;

    /// Virtual time in ms since T0; sleeping advances it; every probe costs 10 ms.
    struct Script<F: FnMut(u64) -> (Option<u32>, ProbeClass)> {
        t_ms: u64,
        f: F,
    }
    const T0: u64 = 1_000_000;
    impl<F: FnMut(u64) -> (Option<u32>, ProbeClass)> Script<F> {
        fn now(&mut self) -> SystemTime {
            UNIX_EPOCH + Duration::from_millis(T0 + self.t_ms)
        }
        fn sleep(&mut self, d: Duration) {
            self.t_ms += d.as_millis() as u64;
        }
    }
    impl<F: FnMut(u64) -> (Option<u32>, ProbeClass)> GateIo for Script<F> {
        fn find_process(
            &mut self,
            a: &[String],
            _: Option<SystemTime>,
        ) -> Result<Option<FoundProcess>, String> {
            Ok((self.f)(self.t_ms).0.map(|pid| FoundProcess {
                pid,
                argv: a.to_vec(),
            }))
        }
        fn probe(&mut self, _: Duration) -> ProbeOutcome {
            let c = (self.f)(self.t_ms).1;
            self.t_ms += 10;
            ProbeOutcome {
                class: c,
                detail: String::new(),
            }
        }
    }

    /// Run the gate against a script that is both the clock and the I/O (shared through a
    /// RefCell). Returns the verdict, the observations and the virtual time at the end.
    fn run<F: FnMut(u64) -> (Option<u32>, ProbeClass)>(
        deadline_ms: u64,
        f: F,
    ) -> (GateVerdict, Vec<Observation>, u64) {
        let params = GateParams {
            stable_for: Duration::from_secs(2),
            min_successes: 3,
            poll_interval: Duration::from_millis(500),
            ..GateParams::new(
                vec!["kube-apiserver".into(), "--new".into()],
                Some(UNIX_EPOCH + Duration::from_millis(T0)),
                UNIX_EPOCH + Duration::from_millis(T0 + deadline_ms),
                ProbeTarget {
                    scheme: Scheme::Https,
                    host: "127.0.0.1".into(),
                    port: 6443,
                    path: "/livez".into(),
                },
                TlsSettings::default(),
            )
        };
        let script = std::cell::RefCell::new(Script { t_ms: 0, f });
        struct IoRef<'a, F: FnMut(u64) -> (Option<u32>, ProbeClass)>(
            &'a std::cell::RefCell<Script<F>>,
        );
        impl<F: FnMut(u64) -> (Option<u32>, ProbeClass)> GateIo for IoRef<'_, F> {
            fn find_process(
                &mut self,
                a: &[String],
                s: Option<SystemTime>,
            ) -> Result<Option<FoundProcess>, String> {
                self.0.borrow_mut().find_process(a, s)
            }
            fn probe(&mut self, t: Duration) -> ProbeOutcome {
                self.0.borrow_mut().probe(t)
            }
        }
        impl<F: FnMut(u64) -> (Option<u32>, ProbeClass)> Clock for IoRef<'_, F> {
            fn now(&self) -> SystemTime {
                self.0.borrow_mut().now()
            }
            fn sleep(&self, d: Duration) {
                self.0.borrow_mut().sleep(d)
            }
        }
        let mut obs = Vec::new();
        let v = run_gate_with(&params, &mut IoRef(&script), &IoRef(&script), &mut |o| {
            obs.push(o.clone())
        });
        let t = script.borrow().t_ms;
        (v, obs, t)
    }

    const OK: ProbeClass = ProbeClass::Healthy(200);

    #[test]
    fn old_process_answering_before_restart_does_not_count() {
        // kubelet restarts at t=3 s; the old process answers healthy all along.
        let (v, obs, t) = run(30_000, |t| (if t >= 3_000 { Some(42) } else { None }, OK));
        match v {
            GateVerdict::Passed {
                pid,
                healthy_probes,
                stable_for,
                ..
            } => {
                assert_eq!(pid, Some(42));
                assert!(healthy_probes >= 3);
                assert!(stable_for >= Duration::from_secs(2));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            t >= 5_000,
            "passed at {t} ms, before restart + stable window"
        );
        let early: Vec<_> = obs.iter().filter(|o| o.pid.is_none()).collect();
        assert!(!early.is_empty());
        assert!(early.iter().all(|o| !o.counted && o.class == OK));
    }

    #[test]
    fn never_restarted_fails_even_if_healthy() {
        let (v, obs, _) = run(4_000, |_| (None, OK));
        match v {
            GateVerdict::Failed {
                reason,
                last_observations,
                ..
            } => {
                assert_eq!(reason, FailReason::NoNewProcess);
                assert!(!last_observations.is_empty());
            }
            other => panic!("{other:?}"),
        }
        assert!(obs.iter().all(|o| !o.counted));
    }

    #[test]
    fn crash_loop_does_not_pass() {
        // A new PID every 1.5 s, always healthy when up; stable_for is 2 s.
        let (v, _, _) = run(20_000, |t| (Some(100 + (t / 1_500) as u32), OK));
        match v {
            GateVerdict::Failed { reason, .. } => assert_eq!(reason, FailReason::CrashLoop),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn crash_loop_with_down_gaps_does_not_pass() {
        // Up 1.2 s, down 0.8 s, new PID each time.
        let (v, _, _) = run(20_000, |t| {
            let cycle = t / 2_000;
            if t % 2_000 < 1_200 {
                (Some(500 + cycle as u32), OK)
            } else {
                (None, ProbeClass::Down)
            }
        });
        assert!(!v.passed(), "{v:?}");
    }

    #[test]
    fn passes_after_stable_window() {
        let (v, obs, t) = run(30_000, |_| (Some(7), OK));
        assert!(v.passed(), "{v:?}");
        // Probes at 0, 510, 1020, 1530, 2040 ms: the fifth spans >= 2 s.
        assert_eq!(obs.len(), 5);
        assert!((2_000..3_000).contains(&t), "t={t}");
    }

    #[test]
    fn one_bad_probe_resets_the_streak() {
        let (v, obs, _) = run(30_000, |t| {
            (
                Some(7),
                if (1_000..1_100).contains(&t) {
                    ProbeClass::Timeout
                } else {
                    OK
                },
            )
        });
        assert!(v.passed());
        let bad = obs
            .iter()
            .position(|o| o.class == ProbeClass::Timeout)
            .unwrap();
        assert_eq!(obs[bad].streak, 0);
        assert_eq!(obs[bad + 1].streak, 1);
    }

    #[test]
    fn deadline_fails_with_the_class_seen() {
        let (v, _, t) = run(3_000, |_| (Some(7), ProbeClass::ServerError(503)));
        match v {
            GateVerdict::Failed { reason, .. } => {
                assert_eq!(reason, FailReason::Unhealthy(ProbeClass::ServerError(503)))
            }
            other => panic!("{other:?}"),
        }
        assert!(t <= 3_010, "ran past the deadline: {t}");
        let (v, _, _) = run(3_000, |_| (Some(7), ProbeClass::Unauthorized(401)));
        assert!(matches!(
            v,
            GateVerdict::Failed {
                reason: FailReason::Unhealthy(ProbeClass::Unauthorized(401)),
                ..
            }
        ));
    }

    #[test]
    fn a_probe_cut_short_by_the_deadline_does_not_hide_the_answer_before_it() {
        // Every probe answers 401 until the last one, whose timeout the deadline cut to 450 ms
        // (at 2.55 s) and which timed out (a loaded node): the verdict is the 401, not the timeout.
        let (v, obs, _) = run(3_000, |t| {
            (
                Some(7),
                if t >= 2_500 {
                    ProbeClass::Timeout
                } else {
                    ProbeClass::Unauthorized(401)
                },
            )
        });
        assert_eq!(
            obs.last().map(|o| o.class),
            Some(ProbeClass::Timeout),
            "{obs:#?}"
        );
        match v {
            GateVerdict::Failed { reason, .. } => {
                assert_eq!(reason, FailReason::Unhealthy(ProbeClass::Unauthorized(401)))
            }
            other => panic!("{other:?}"),
        }
        // A timeout with the whole probe timeout (5 s) is an answer of its own.
        let (v, _, _) = run(30_000, |t| {
            (
                Some(7),
                if t >= 2_000 {
                    ProbeClass::Timeout
                } else {
                    ProbeClass::Unauthorized(401)
                },
            )
        });
        match v {
            GateVerdict::Failed { reason, .. } => {
                assert_eq!(reason, FailReason::Unhealthy(ProbeClass::Timeout))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn deadline_shorter_than_window_fails_not_stable() {
        let (v, _, _) = run(1_500, |_| (Some(7), OK));
        assert!(
            matches!(
                v,
                GateVerdict::Failed {
                    reason: FailReason::NotStable,
                    ..
                }
            ),
            "{v:?}"
        );
    }

    #[test]
    fn deadline_in_the_past_fails_without_probing() {
        let (v, obs, _) = run(0, |_| (Some(7), OK));
        assert!(!v.passed());
        assert!(obs.is_empty());
    }

    #[test]
    fn healthy_answer_from_a_foreign_listener_does_not_count() {
        struct Foreign {
            t: SystemTime,
            insecure_unknown: bool,
        }
        impl GateIo for Foreign {
            fn find_process(
                &mut self,
                a: &[String],
                _: Option<SystemTime>,
            ) -> Result<Option<FoundProcess>, String> {
                Ok(Some(FoundProcess {
                    pid: 7,
                    argv: a.to_vec(),
                }))
            }
            fn probe(&mut self, _: Duration) -> ProbeOutcome {
                ProbeOutcome {
                    class: OK,
                    detail: String::new(),
                }
            }
            fn listens_on(&mut self, _: u32, _: u16) -> Result<Option<bool>, String> {
                Ok(if self.insecure_unknown {
                    None
                } else {
                    Some(false)
                })
            }
        }
        impl Foreign {
            fn now(&mut self) -> SystemTime {
                self.t
            }
            fn sleep(&mut self, d: Duration) {
                self.t += d;
            }
        }
        for insecure_unknown in [false, true] {
            let t0 = UNIX_EPOCH + Duration::from_secs(1000);
            let mut params = GateParams::new(
                vec!["x".into()],
                None,
                t0 + Duration::from_secs(5),
                ProbeTarget {
                    scheme: Scheme::Https,
                    host: "127.0.0.1".into(),
                    port: 1,
                    path: "/".into(),
                },
                TlsSettings::default(),
            );
            params.insecure_skip_tls_verify = insecure_unknown;
            let clock = std::cell::RefCell::new(Foreign {
                t: t0,
                insecure_unknown,
            });
            struct R<'a>(&'a std::cell::RefCell<Foreign>);
            impl GateIo for R<'_> {
                fn find_process(
                    &mut self,
                    a: &[String],
                    s: Option<SystemTime>,
                ) -> Result<Option<FoundProcess>, String> {
                    self.0.borrow_mut().find_process(a, s)
                }
                fn probe(&mut self, t: Duration) -> ProbeOutcome {
                    self.0.borrow_mut().probe(t)
                }
                fn listens_on(&mut self, p: u32, port: u16) -> Result<Option<bool>, String> {
                    self.0.borrow_mut().listens_on(p, port)
                }
            }
            impl Clock for R<'_> {
                fn now(&self) -> SystemTime {
                    self.0.borrow_mut().now()
                }
                fn sleep(&self, d: Duration) {
                    self.0.borrow_mut().sleep(d)
                }
            }
            let mut obs = Vec::new();
            let v = run_gate_with(&params, &mut R(&clock), &R(&clock), &mut |o| {
                obs.push(o.clone())
            });
            assert!(!v.passed(), "{v:?}");
            assert!(
                obs.iter().all(|o| !o.counted && !o.note.is_empty()),
                "{obs:?}"
            );
        }
    }

    // --- Crashes seen through process events (rule 5) ---

    use crate::events::{ExitStatus, Precision};

    const NEW: [&str; 2] = ["etcd", "--heartbeat-interval=notanumber"];
    const OLD: [&str; 2] = ["etcd", "--heartbeat-interval=100"];

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }
    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(T0 + ms)
    }
    fn exec(pid: u32, a: &[&str], ms: u64) -> (u64, ProcEvent) {
        (
            ms,
            ProcEvent::Exec {
                pid,
                argv: Ok(argv(a)),
                at: at(ms),
            },
        )
    }
    fn exit(pid: u32, status: ExitStatus, ms: u64) -> (u64, ProcEvent) {
        (
            ms,
            ProcEvent::Exit {
                pid,
                status,
                at: at(ms),
            },
        )
    }

    /// Virtual time like [`Script`], plus process events delivered once their time has come.
    struct EvScript<F: FnMut(u64) -> (Option<u32>, ProbeClass)> {
        t_ms: u64,
        f: F,
        events: VecDeque<(u64, ProcEvent)>,
    }
    struct EvRef<'a, F: FnMut(u64) -> (Option<u32>, ProbeClass)>(
        &'a std::cell::RefCell<EvScript<F>>,
    );
    impl<F: FnMut(u64) -> (Option<u32>, ProbeClass)> GateIo for EvRef<'_, F> {
        fn find_process(
            &mut self,
            a: &[String],
            _: Option<SystemTime>,
        ) -> Result<Option<FoundProcess>, String> {
            let mut s = self.0.borrow_mut();
            let t = s.t_ms;
            Ok((s.f)(t).0.map(|pid| FoundProcess {
                pid,
                argv: a.to_vec(),
            }))
        }
        fn probe(&mut self, _: Duration) -> ProbeOutcome {
            let mut s = self.0.borrow_mut();
            let t = s.t_ms;
            let class = (s.f)(t).1;
            s.t_ms += 10;
            ProbeOutcome {
                class,
                detail: String::new(),
            }
        }
        fn drain_events(&mut self) -> Vec<ProcEvent> {
            let mut s = self.0.borrow_mut();
            let t = s.t_ms;
            let mut out = Vec::new();
            while s.events.front().is_some_and(|(ms, _)| *ms <= t) {
                if let Some((_, e)) = s.events.pop_front() {
                    out.push(e);
                }
            }
            out
        }
        fn events_source(&self) -> Option<EventsInfo> {
            Some(EventsInfo {
                description: "scripted events".into(),
                precision: Precision::Kernel,
            })
        }
    }
    impl<F: FnMut(u64) -> (Option<u32>, ProbeClass)> Clock for EvRef<'_, F> {
        fn now(&self) -> SystemTime {
            at(self.0.borrow().t_ms)
        }
        fn sleep(&self, d: Duration) {
            self.0.borrow_mut().t_ms += d.as_millis() as u64;
        }
    }

    fn run_ev<F: FnMut(u64) -> (Option<u32>, ProbeClass)>(
        expected: &[&str],
        previous: Option<&[&str]>,
        max_crashes: u32,
        deadline_ms: u64,
        f: F,
        events: Vec<(u64, ProcEvent)>,
    ) -> (GateVerdict, Vec<Observation>, u64) {
        let params = GateParams {
            stable_for: Duration::from_secs(2),
            min_successes: 3,
            poll_interval: Duration::from_millis(500),
            max_crashes,
            previous_argv: previous.map(argv),
            ..GateParams::new(
                argv(expected),
                Some(at(0)),
                at(deadline_ms),
                ProbeTarget {
                    scheme: Scheme::Http,
                    host: "127.0.0.1".into(),
                    port: 2381,
                    path: "/health".into(),
                },
                TlsSettings::default(),
            )
        };
        let script = std::cell::RefCell::new(EvScript {
            t_ms: 0,
            f,
            events: events.into(),
        });
        let mut obs = Vec::new();
        let v = run_gate_with(&params, &mut EvRef(&script), &EvRef(&script), &mut |o| {
            obs.push(o.clone())
        });
        let t = script.borrow().t_ms;
        (v, obs, t)
    }

    #[test]
    fn crash_looping_change_fails_at_the_second_crash() {
        // A rejected flag: the new process exits with code 2 after 40 ms; /proc never sees it.
        let (v, obs, t) = run_ev(
            &NEW,
            Some(&OLD),
            2,
            60_000,
            |_| (None, ProbeClass::Down),
            vec![
                exec(11, &NEW, 1_000),
                exit(11, ExitStatus::Code(2), 1_040),
                exec(12, &NEW, 2_500),
                exit(12, ExitStatus::Code(2), 2_540),
                exec(13, &NEW, 5_000),
            ],
        );
        let GateVerdict::Failed {
            reason,
            detail,
            crashes,
            previous_crashes,
            ..
        } = &v
        else {
            panic!("{v:?}")
        };
        assert_eq!(*reason, FailReason::CrashLoop);
        assert!(
            detail.contains(
                "crashed twice (limit 2): exited with code 2 after 40 ms, twice (pids 11, 12)"
            ),
            "{detail}"
        );
        assert_eq!(crashes.iter().map(|c| c.pid).collect::<Vec<_>>(), [11, 12]);
        assert!(crashes
            .iter()
            .all(|c| c.lifetime == Duration::from_millis(40)));
        assert!(previous_crashes.is_empty());
        // Failed within a round of the second crash, far from the deadline (virtual time).
        assert!((2_540..3_600).contains(&t), "t = {t}");
        // The observations carry the crashes and say so.
        let with: Vec<_> = obs.iter().filter(|o| !o.crashes.is_empty()).collect();
        assert_eq!(with.len(), 2, "{obs:#?}");
        assert!(with[0]
            .note
            .contains("crash 1 of at most 2: pid 11 exited with code 2 after 40 ms"));
        assert!(
            obs[0].note.contains("process events: scripted events"),
            "{}",
            obs[0].note
        );
    }

    #[test]
    fn the_old_process_ending_is_not_a_crash() {
        let (v, obs, _) = run_ev(
            &NEW,
            Some(&OLD),
            1,
            30_000,
            |t| {
                if t >= 1_500 {
                    (Some(11), OK)
                } else {
                    (None, OK)
                }
            },
            vec![
                (
                    0,
                    ProcEvent::Running {
                        pid: 10,
                        argv: argv(&OLD),
                        started_at: at(0) - Duration::from_secs(3600),
                    },
                ),
                exit(
                    10,
                    ExitStatus::Signal {
                        signal: 15,
                        core_dumped: false,
                    },
                    1_000,
                ),
                exec(11, &NEW, 1_400),
            ],
        );
        assert!(v.passed(), "{v:?}");
        assert!(obs.iter().all(|o| o.crashes.is_empty()));
        assert!(
            obs.iter().any(|o| o.note.contains("pid 10 (started before the write) was killed by signal 15 (SIGTERM): the replaced instance ending, not a crash")),
            "{obs:#?}"
        );
    }

    #[test]
    fn one_crash_then_healthy_passes() {
        // The first new process loses the race for the port; the second one is fine.
        let (v, obs, _) = run_ev(
            &NEW,
            None,
            2,
            30_000,
            |t| {
                if t >= 1_100 {
                    (Some(12), OK)
                } else {
                    (None, ProbeClass::Down)
                }
            },
            vec![
                exec(11, &NEW, 500),
                exit(11, ExitStatus::Code(1), 600),
                exec(12, &NEW, 1_100),
            ],
        );
        assert!(v.passed(), "{v:?}");
        assert_eq!(obs.iter().map(|o| o.crashes.len()).sum::<usize>(), 1);
    }

    #[test]
    fn max_crashes_zero_waits_for_the_deadline() {
        let events = vec![
            exec(11, &NEW, 1_000),
            exit(11, ExitStatus::Code(2), 1_040),
            exec(12, &NEW, 2_500),
            exit(12, ExitStatus::Code(2), 2_540),
        ];
        let (v, _, t) = run_ev(&NEW, None, 0, 8_000, |_| (None, ProbeClass::Down), events);
        let GateVerdict::Failed {
            reason,
            detail,
            crashes,
            ..
        } = &v
        else {
            panic!("{v:?}")
        };
        // Never seen in /proc, but the events say it started and crashed: not "no process".
        assert_eq!(*reason, FailReason::CrashLoop);
        assert!(detail.contains("deadline reached"), "{detail}");
        assert!(
            detail.contains("exited with code 2 after 40 ms, twice"),
            "{detail}"
        );
        assert_eq!(crashes.len(), 2);
        assert!(t >= 8_000);
    }

    #[test]
    fn rollback_reports_a_crash_looping_old_component() {
        // A rollback's gate: the old component itself crash-loops; the rejected new one was
        // still being restarted just after the rollback's write.
        let (v, _, _) = run_ev(
            &OLD,
            Some(&NEW),
            2,
            60_000,
            |_| (None, ProbeClass::Down),
            vec![
                exec(20, &NEW, 100),
                exit(20, ExitStatus::Code(2), 140),
                exec(21, &OLD, 1_000),
                exit(
                    21,
                    ExitStatus::Signal {
                        signal: 6,
                        core_dumped: true,
                    },
                    3_000,
                ),
                exec(22, &OLD, 4_000),
                exit(
                    22,
                    ExitStatus::Signal {
                        signal: 6,
                        core_dumped: true,
                    },
                    6_000,
                ),
            ],
        );
        let GateVerdict::Failed {
            reason,
            detail,
            crashes,
            previous_crashes,
            ..
        } = &v
        else {
            panic!("{v:?}")
        };
        assert_eq!(*reason, FailReason::CrashLoop);
        assert_eq!(crashes.iter().map(|c| c.pid).collect::<Vec<_>>(), [21, 22]);
        assert_eq!(
            previous_crashes.iter().map(|c| c.pid).collect::<Vec<_>>(),
            [20]
        );
        assert!(
            detail.contains("was killed by signal 6 (SIGABRT), core dumped after 2.0 s, twice"),
            "{detail}"
        );
        assert!(
            detail.contains(
                "the process with the previous argv crashed too: exited with code 2 after 40 ms"
            ),
            "{detail}"
        );
    }

    #[test]
    fn lost_events_are_said() {
        let (v, obs, _) = run_ev(
            &NEW,
            None,
            2,
            30_000,
            |_| (Some(7), OK),
            vec![(
                600,
                ProcEvent::Lost {
                    at: at(600),
                    detail: "ENOBUFS".into(),
                },
            )],
        );
        assert!(v.passed());
        assert!(
            obs.iter()
                .any(|o| o.note.contains("process events lost (ENOBUFS)")),
            "{obs:#?}"
        );
    }
}
