//! The gate's side of process events: a [`GateIo`] that adds an event source to another
//! (what [`crate::gate::run_gate`] uses), and the crash bookkeeping of the gate loop. Kept
//! here so that the loop itself changes by a few lines.

use super::{
    running_now, summarize, CrashRecord, CrashTracker, EventSource, EventStream, EventsInfo, Noted,
    Precision, ProcEvent,
};
use crate::gate::{FoundProcess, GateIo, GateParams};
use crate::probe::ProbeOutcome;
use crate::restart::{argv_matches, ProcScanner};
use std::time::{Duration, SystemTime};

/// Another [`GateIo`] (normally [`crate::gate::LiveIo`]) plus process events.
#[derive(Debug)]
pub struct WatchedIo<I> {
    pub inner: I,
    source: Option<EventSource>,
    pending: Vec<ProcEvent>,
    info: Option<EventsInfo>,
}

impl<I: GateIo> WatchedIo<I> {
    /// Start an event source for `params.proc_root` (kernel events, else polling). When none
    /// can start, the gate runs as before and its first observation says why.
    pub fn start(inner: I, params: &GateParams) -> WatchedIo<I> {
        match EventSource::start(&params.proc_root) {
            Ok(src) => WatchedIo::with_source(inner, src, params),
            Err(e) => WatchedIo {
                inner,
                source: None,
                pending: vec![ProcEvent::Lost {
                    at: crate::wall_clock(),
                    detail: format!("no process events at all: {e}"),
                }],
                info: None,
            },
        }
    }

    /// Use a source started earlier: ideally before the write, so that no start of the new
    /// process can be missed. The processes with the expected (or previous) argv already
    /// running are looked up now, so that their exits are recognised.
    pub fn with_source(inner: I, source: EventSource, params: &GateParams) -> WatchedIo<I> {
        let scanner = ProcScanner::new(&params.proc_root);
        let wanted = |a: &[String]| {
            argv_matches(&params.expected_argv, a)
                || params
                    .previous_argv
                    .as_ref()
                    .is_some_and(|p| argv_matches(p, a))
        };
        let pending = running_now(&scanner, wanted).unwrap_or_else(|e| {
            vec![ProcEvent::Lost {
                at: crate::wall_clock(),
                detail: format!("looking up the processes already running: {e}"),
            }]
        });
        WatchedIo {
            inner,
            info: Some(source.info()),
            source: Some(source),
            pending,
        }
    }

    /// The event source, if one runs.
    pub fn source(&self) -> Option<&EventSource> {
        self.source.as_ref()
    }
}

impl<I: GateIo> GateIo for WatchedIo<I> {
    fn find_process(
        &mut self,
        argv: &[String],
        since: Option<SystemTime>,
    ) -> Result<Option<FoundProcess>, String> {
        self.inner.find_process(argv, since)
    }
    fn probe(&mut self, timeout: Duration) -> ProbeOutcome {
        self.inner.probe(timeout)
    }
    fn listens_on(&mut self, pid: u32, port: u16) -> Result<Option<bool>, String> {
        self.inner.listens_on(pid, port)
    }
    fn drain_events(&mut self) -> Vec<ProcEvent> {
        let mut v = std::mem::take(&mut self.pending);
        if let Some(s) = &self.source {
            v.extend(s.drain());
        }
        v
    }
    fn events_source(&self) -> Option<EventsInfo> {
        self.info.clone()
    }
}

/// The crash bookkeeping of one gate run.
#[derive(Debug)]
pub(crate) struct GateCrashes {
    tracker: CrashTracker,
    /// Said once, in the first observation.
    intro: Option<String>,
}

fn times(n: usize) -> String {
    match n {
        1 => "once".into(),
        2 => "twice".into(),
        n => format!("{n} times"),
    }
}

impl GateCrashes {
    pub(crate) fn new(params: &GateParams, info: Option<EventsInfo>) -> GateCrashes {
        let precision = info.as_ref().map_or(Precision::Kernel, |i| i.precision);
        GateCrashes {
            tracker: CrashTracker::new(params.expected_argv.clone(), params.started_after)
                .with_previous_argv(params.previous_argv.clone())
                .with_precision(precision),
            intro: info.map(|i| format!("process events: {}", i.description)),
        }
    }

    /// Take in a round's events: the new crashes of the expected process, and a note for each
    /// event that meant something (crashes, the old instance ending, losses).
    pub(crate) fn absorb(
        &mut self,
        events: Vec<ProcEvent>,
        max_crashes: u32,
    ) -> (Vec<CrashRecord>, Vec<String>) {
        let mut notes: Vec<String> = self.intro.take().into_iter().collect();
        let mut crashes = Vec::new();
        for ev in &events {
            match self.tracker.observe(ev) {
                Some(Noted::Crash(r)) => {
                    let limit = if max_crashes > 0 {
                        format!(" of at most {max_crashes}")
                    } else {
                        String::new()
                    };
                    notes.push(format!(
                        "crash {}{limit}: {}",
                        self.tracker.crash_count(),
                        r.describe()
                    ));
                    crashes.push(r);
                }
                Some(n) => notes.push(n.describe()),
                None => {}
            }
        }
        (crashes, notes)
    }

    /// `max_crashes` crashes seen (0: no limit).
    pub(crate) fn limit_reached(&self, max_crashes: u32) -> bool {
        max_crashes > 0 && self.tracker.crash_count() >= max_crashes
    }

    pub(crate) fn crashes(&self) -> Vec<CrashRecord> {
        self.tracker.crashes().to_vec()
    }

    pub(crate) fn previous_crashes(&self) -> Vec<CrashRecord> {
        self.tracker.previous_crashes().to_vec()
    }

    pub(crate) fn any(&self) -> bool {
        self.tracker.crash_count() > 0
    }

    /// Why the gate ends early: "the process with the expected argv crashed twice (limit 2):
    /// exited with code 2 after 40 ms, twice (pids 11, 12)".
    pub(crate) fn limit_detail(&self, max_crashes: u32) -> String {
        format!(
            "the process with the expected argv crashed {} (limit {max_crashes}): {}",
            times(self.tracker.crashes().len()),
            self.crash_text()
        )
    }

    /// "exited with code 2 after 40 ms, twice (pids 11, 12)", plus what else was seen.
    pub(crate) fn crash_text(&self) -> String {
        let t = &self.tracker;
        let pids: Vec<String> = t.crashes().iter().map(|r| r.pid.to_string()).collect();
        let mut s = format!(
            "{} (pid{} {})",
            t.summary(),
            if pids.len() == 1 { "" } else { "s" },
            pids.join(", ")
        );
        if !t.previous_crashes().is_empty() {
            s.push_str(&format!(
                "; the process with the previous argv crashed too: {}",
                summarize(t.previous_crashes())
            ));
        }
        if !t.lost().is_empty() {
            s.push_str("; process events were lost, there may have been more");
        }
        s
    }

    /// For a verdict at the deadline: "; crashes: ..." when there were any.
    pub(crate) fn deadline_suffix(&self) -> String {
        let t = &self.tracker;
        if t.crash_count() > 0 {
            format!(
                "; crashed {}: {}",
                times(t.crashes().len()),
                self.crash_text()
            )
        } else if !t.previous_crashes().is_empty() {
            format!(
                "; the process with the previous argv crashed: {}",
                summarize(t.previous_crashes())
            )
        } else {
            String::new()
        }
    }
}
