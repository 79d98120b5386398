//! The process events watcher against real, short-lived processes, and its `/proc` fallback.
//!
//! Tests of the kernel connector need root in the host's namespaces: without it they print a
//! SKIP line, or fail when `CI` is set (CI must run them). The tests run one at a time (a
//! lock): every watcher sees every process of the machine, and one test counts threads.

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use kharden_gate::events::{
    CrashTracker, EventSource, EventStream, ExitStatus, Precision, ProcEvent, ProcessWatcher,
    WatchOptions, DEFAULT_POLL_INTERVAL,
};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The connector, or `None` after a SKIP line (a panic under CI).
fn watcher_or_skip(test: &str) -> Option<ProcessWatcher> {
    match ProcessWatcher::start() {
        Ok(w) => Some(w),
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "{test}: the process events connector is unavailable: {e}. CI must run this \
                     test as root in the host's network and PID namespaces"
                );
            }
            eprintln!(
                "SKIP {test}: the process events connector is unavailable: {e} (run as root)"
            );
            None
        }
    }
}

/// Events until `done` says so or `timeout` passes.
fn collect(
    src: &impl EventStream,
    timeout: Duration,
    mut done: impl FnMut(&[ProcEvent]) -> bool,
) -> Vec<ProcEvent> {
    let end = Instant::now() + timeout;
    let mut v = Vec::new();
    while !done(&v) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if let Some(e) = src.next_timeout(left.min(Duration::from_millis(50))) {
            v.push(e);
        }
    }
    v
}

fn exit_of(evs: &[ProcEvent], pid: u32) -> Option<(ExitStatus, SystemTime)> {
    evs.iter().find_map(|e| match e {
        ProcEvent::Exit { pid: p, status, at } if *p == pid => Some((*status, *at)),
        _ => None,
    })
}

type ExecSeen<'a> = (
    &'a Result<Vec<String>, kharden_gate::events::ArgvUnreadable>,
    SystemTime,
);

fn exec_of(evs: &[ProcEvent], pid: u32) -> Option<ExecSeen<'_>> {
    evs.iter().find_map(|e| match e {
        ProcEvent::Exec { pid: p, argv, at } if *p == pid => Some((argv, *at)),
        _ => None,
    })
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Kernel timestamps become wall-clock time through the monotonic clock: allow for the
/// rounding of the offset.
const SLACK: Duration = Duration::from_millis(5);

#[test]
fn sh_exit_3_is_seen_with_its_code() {
    let _g = serial();
    let Some(w) = watcher_or_skip("sh_exit_3_is_seen_with_its_code") else {
        return;
    };
    let before = SystemTime::now();
    let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
    let pid = child.id();
    assert_eq!(child.wait().unwrap().code(), Some(3));
    let after = SystemTime::now();
    let evs = collect(&w, Duration::from_secs(5), |v| exit_of(v, pid).is_some());
    let (argv, exec_at) = exec_of(&evs, pid).expect("exec seen");
    let (status, exit_at) = exit_of(&evs, pid).expect("exit seen");
    assert_eq!(status, ExitStatus::Code(3));
    assert!(exec_at <= exit_at);
    assert!(
        exec_at + SLACK >= before && exit_at <= after + SLACK,
        "{exec_at:?} {exit_at:?}"
    );
    match argv {
        Ok(a) => assert_eq!(*a, s(&["sh", "-c", "exit 3"])),
        Err(u) => eprintln!("note: argv of the 'sh -c exit 3' not read in time: {u:?}"),
    }
    eprintln!(
        "sh -c 'exit 3': lived {:?} from exec to exit",
        exit_at.duration_since(exec_at).unwrap_or_default()
    );
    // The tracker turns that into a crash record.
    let mut c = CrashTracker::new(s(&["sh", "-c", "exit 3"]), Some(before));
    for e in &evs {
        c.observe(e);
    }
    if argv.is_ok() {
        assert_eq!(c.crash_count(), 1, "{evs:?}");
        assert!(
            c.summary().starts_with("exited with code 3 after "),
            "{}",
            c.summary()
        );
    } else {
        // Exited before its argv could be read (a loaded machine): reported, not counted, when
        // its name could still be read (a zombie), unknown when it was already reaped.
        assert_eq!(c.crash_count(), 0);
        let named = matches!(argv, Err(u) if u.comm.as_deref() == Some("sh"));
        assert_eq!(c.unidentified().len(), usize::from(named));
    }
    w.stop().unwrap();
}

#[test]
fn sigkill_is_seen_as_signal_9() {
    let _g = serial();
    let Some(w) = watcher_or_skip("sigkill_is_seen_as_signal_9") else {
        return;
    };
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = child.id();
    let evs = collect(&w, Duration::from_secs(5), |v| exec_of(v, pid).is_some());
    let (argv, exec_at) = exec_of(&evs, pid).expect("exec seen");
    assert_eq!(
        *argv.as_ref().expect("a sleeping process's argv is read"),
        s(&["sleep", "30"])
    );
    child.kill().unwrap();
    let st = child.wait().unwrap();
    assert_eq!(st.signal(), Some(9));
    let evs = collect(&w, Duration::from_secs(5), |v| exit_of(v, pid).is_some());
    let (status, exit_at) = exit_of(&evs, pid).expect("exit seen");
    assert_eq!(
        status,
        ExitStatus::Signal {
            signal: 9,
            core_dumped: false
        }
    );
    assert_eq!(
        status.describe(),
        "was killed by signal 9 (SIGKILL)",
        "{status:?}"
    );
    assert!(exit_at > exec_at);
}

#[test]
fn twenty_quick_true_all_exits_seen() {
    let _g = serial();
    let Some(w) = watcher_or_skip("twenty_quick_true_all_exits_seen") else {
        return;
    };
    let before = SystemTime::now();
    let mut pids = Vec::new();
    for _ in 0..20 {
        let mut c = Command::new("true").spawn().unwrap();
        pids.push(c.id());
        assert!(c.wait().unwrap().success());
    }
    let evs = collect(&w, Duration::from_secs(10), |v| {
        pids.iter().all(|p| exit_of(v, *p).is_some())
    });
    let mut readable = 0;
    let mut shortest = Duration::MAX;
    for p in &pids {
        let (argv, exec_at) = exec_of(&evs, *p).unwrap_or_else(|| panic!("exec of {p} not seen"));
        let (status, exit_at) = exit_of(&evs, *p).unwrap_or_else(|| panic!("exit of {p} not seen"));
        assert_eq!(status, ExitStatus::Code(0));
        shortest = shortest.min(exit_at.duration_since(exec_at).unwrap_or_default());
        match argv {
            Ok(a) => {
                assert_eq!(*a, s(&["true"]));
                readable += 1;
            }
            Err(u) => assert!(u.comm.as_deref().is_none_or(|c| c == "true"), "{u:?}"),
        }
    }
    // Every one is a crash or, when it exited before its argv could be read, an unidentified
    // exit of something named like the expected executable.
    let mut c = CrashTracker::new(s(&["true"]), Some(before));
    for e in &evs {
        c.observe(e);
    }
    let ours = |r: &kharden_gate::CrashRecord| pids.contains(&r.pid);
    let crashes = c.crashes().iter().filter(|r| ours(r)).count();
    let unidentified = c.unidentified().iter().filter(|r| ours(r)).count();
    assert_eq!(crashes, readable);
    eprintln!(
        "20 x true: all 20 exec+exit seen; argv read in time for {readable}; \
         {unidentified} exited before it could be read (name seen); shortest lifetime {shortest:?}; \
         summary: {}",
        c.summary()
    );
    assert!(c.lost().is_empty(), "{:?}", c.lost());
}

#[test]
fn buffer_overflow_is_reported_as_lost_events() {
    let _g = serial();
    let (release, hold) = std::sync::mpsc::channel();
    let w = match ProcessWatcher::start_with_options(
        Path::new("/proc"),
        WatchOptions {
            rcvbuf: Some(1),
            hold_reader: Some(hold),
            ..WatchOptions::default()
        },
    ) {
        Ok(w) => w,
        Err(e) => {
            drop(watcher_or_skip(
                "buffer_overflow_is_reported_as_lost_events",
            ));
            eprintln!("(start_with_options: {e})");
            return;
        }
    };
    // The reader is held: the smallest buffer the kernel allows fills up.
    for _ in 0..50 {
        Command::new("true").status().unwrap();
    }
    release.send(()).unwrap();
    let mut child = Command::new("sh").args(["-c", "exit 5"]).spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let evs = collect(&w, Duration::from_secs(5), |v| exit_of(v, pid).is_some());
    let lost: Vec<_> = evs
        .iter()
        .filter_map(|e| match e {
            ProcEvent::Lost { detail, .. } => Some(detail),
            _ => None,
        })
        .collect();
    assert!(
        lost.iter().any(|d| d.contains("ENOBUFS")),
        "no loss reported: {evs:?}"
    );
    // And the watcher goes on after the loss.
    assert_eq!(exit_of(&evs, pid).map(|e| e.0), Some(ExitStatus::Code(5)));
    let mut c = CrashTracker::new(s(&["x"]), None);
    for e in &evs {
        c.observe(e);
    }
    assert!(!c.lost().is_empty());
}

/// Threads named like the reader, once the count settles on `want` (a new thread names itself
/// when it starts running) or after a second.
fn reader_threads(want: usize) -> usize {
    let end = Instant::now() + Duration::from_secs(1);
    loop {
        let n = count_reader_threads();
        if n == want || Instant::now() > end {
            return n;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Scheduling policies (`stat` field 41) of the reader threads.
fn reader_policies() -> Vec<u32> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim_end() == "kharden-proc-ev")
        })
        .filter_map(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 1..];
            // After ')' comes field 3: field 41 is the 39th.
            rest.split_whitespace().nth(38)?.parse().ok()
        })
        .collect()
}

fn count_reader_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim_end() == "kharden-proc-ev")
        })
        .count()
}

#[test]
fn stop_and_drop_join_the_reader_thread() {
    let _g = serial();
    let Some(w) = watcher_or_skip("stop_and_drop_join_the_reader_thread") else {
        return;
    };
    assert_eq!(reader_threads(1), 1);
    // As root, the reader runs in SCHED_FIFO (stat field 41, policy: 1).
    if is_root() {
        assert_eq!(reader_policies(), [1], "the reader is not real-time");
    }
    let t = Instant::now();
    w.stop().unwrap();
    // Joined: gone at once.
    assert_eq!(count_reader_threads(), 0);
    let ws: Vec<_> = (0..3).map(|_| ProcessWatcher::start().unwrap()).collect();
    assert_eq!(reader_threads(3), 3);
    drop(ws);
    assert_eq!(count_reader_threads(), 0);
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn event_source_prefers_the_kernel() {
    let _g = serial();
    if watcher_or_skip("event_source_prefers_the_kernel").is_none() {
        return;
    }
    let src = EventSource::start(Path::new("/proc")).unwrap();
    assert!(src.fallback_reason().is_none());
    assert_eq!(src.info().precision, Precision::Kernel);
    // A directory that is not a procfs falls back, saying why.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stat"), "btime 1000\n").unwrap();
    let src = EventSource::start(dir.path()).unwrap();
    let why = src.fallback_reason().unwrap();
    assert!(why.contains("not a procfs"), "{why}");
    assert!(src.info().description.contains("polling"));
}

// --- The /proc fallback ---

fn poller() -> EventSource {
    EventSource::polling(
        Path::new("/proc"),
        DEFAULT_POLL_INTERVAL,
        "forced by the test",
    )
    .unwrap()
}

#[test]
fn fallback_sees_a_300_ms_process() {
    let _g = serial();
    let src = poller();
    assert!(src.info().description.contains("forced by the test"));
    let before = SystemTime::now();
    let mut child = Command::new("sh")
        .args(["-c", "sleep 0.3; exit 4"])
        .spawn()
        .unwrap();
    let pid = child.id();
    assert_eq!(child.wait().unwrap().code(), Some(4));
    let evs = collect(&src, Duration::from_secs(3), |v| exit_of(v, pid).is_some());
    let (argv, started) = exec_of(&evs, pid).expect("start seen by polling");
    assert_eq!(
        *argv.as_ref().unwrap(),
        s(&["sh", "-c", "sleep 0.3; exit 4"])
    );
    // Start time from /proc: the fork, truncated to the clock tick.
    assert!(
        started + Duration::from_millis(20) >= before,
        "{started:?} {before:?}"
    );
    // Reaped at once by wait(): the poller cannot know the status.
    let (status, _) = exit_of(&evs, pid).expect("exit seen by polling");
    assert_eq!(status, ExitStatus::Unknown);
    let mut c = CrashTracker::new(s(&["sh", "-c", "sleep 0.3; exit 4"]), Some(before))
        .with_precision(src.info().precision);
    for e in &evs {
        c.observe(e);
    }
    assert_eq!(c.crash_count(), 1);
    assert!(
        c.summary()
            .starts_with("exited (status unknown) after about "),
        "{}",
        c.summary()
    );
}

#[test]
fn fallback_reads_the_status_of_a_zombie() {
    let _g = serial();
    let src = poller();
    let mut child = Command::new("sh")
        .args(["-c", "sleep 0.2; exit 4"])
        .spawn()
        .unwrap();
    let pid = child.id();
    // Not reaped for a while: a zombie across several scans.
    std::thread::sleep(Duration::from_millis(600));
    let evs = collect(&src, Duration::from_secs(3), |v| exit_of(v, pid).is_some());
    assert_eq!(child.wait().unwrap().code(), Some(4));
    assert_eq!(exit_of(&evs, pid).map(|e| e.0), Some(ExitStatus::Code(4)));
    // Reaping it later reports nothing more for that PID.
    let evs = collect(&src, Duration::from_millis(300), |_| false);
    assert!(exit_of(&evs, pid).is_none(), "{evs:?}");
}

#[test]
fn fallback_cannot_see_millisecond_processes() {
    // Documented limitation: polling every 100 ms misses processes that live a millisecond,
    // which is exactly a component rejecting a flag. That is why the kernel's events are used.
    let _g = serial();
    let src = poller();
    let mut pids = Vec::new();
    for _ in 0..20 {
        let mut c = Command::new("true").spawn().unwrap();
        pids.push(c.id());
        c.wait().unwrap();
    }
    let evs = collect(&src, Duration::from_millis(400), |_| false);
    let seen = pids.iter().filter(|p| exec_of(&evs, **p).is_some()).count();
    eprintln!("polling /proc every 100 ms saw {seen} of 20 'true' processes");
    assert!(
        seen < 20,
        "polling saw every 1 ms process: the test's premise is wrong"
    );
}

/// In a child (this test binary, re-run on one test with `KHARDEN_EVENTS_CHILD` set):
/// starting an event source falls back, and the reason contains `expect`.
fn child_checks_fallback() -> bool {
    let Some(expect) = std::env::var_os("KHARDEN_EVENTS_CHILD") else {
        return false;
    };
    let expect = expect.to_string_lossy().into_owned();
    let src = EventSource::start(Path::new("/proc")).unwrap();
    let why = src
        .fallback_reason()
        .expect("the connector must be unavailable here");
    println!("FALLBACK REASON: {why}");
    assert!(why.contains(&expect), "{why}");
    assert!(matches!(src.info().precision, Precision::Polled { .. }));
    true
}

/// Re-run `test` of this binary through `cmd` (a wrapper such as `unshare`, or the binary
/// itself with another uid); it must print the fallback reason containing `expect`.
fn run_child(test: &str, mut cmd: Command, expect: &str) {
    let out = cmd
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("KHARDEN_EVENTS_CHILD", expect)
        .output();
    let out = match out {
        Ok(o) => o,
        // The test binary is not reachable by nobody (a checkout under a private home): a
        // property of where the tests run, not of the code under test.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!("SKIP {test}: cannot run the test binary in the child: {e}");
            return;
        }
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("{test}: cannot run the child: {e}");
            }
            eprintln!("SKIP {test}: cannot run the child: {e}");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("FALLBACK REASON:"),
        "{}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{test}: {}",
        stdout
            .lines()
            .find(|l| l.contains("FALLBACK REASON"))
            .unwrap_or_default()
    );
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[test]
fn unprivileged_falls_back_with_a_reason() {
    let _g = serial();
    if child_checks_fallback() {
        return;
    }
    if !is_root() {
        // Already unprivileged: check here.
        let src = EventSource::start(Path::new("/proc")).unwrap();
        assert!(src.fallback_reason().unwrap().contains("needs root"));
        return;
    }
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.uid(65534).gid(65534);
    run_child("unprivileged_falls_back_with_a_reason", cmd, "needs root");
}

/// `unshare` (util-linux) with `args`, running this test binary.
fn unshare(args: &[&str]) -> Option<Command> {
    let found = Command::new("unshare").arg("--version").output().is_ok();
    if !found || !is_root() {
        let why = if found {
            "needs root"
        } else {
            "no unshare(1) (util-linux)"
        };
        if std::env::var_os("CI").is_some() {
            panic!("cannot create namespaces for this test: {why}; CI must run it as root");
        }
        eprintln!("SKIP: cannot create namespaces: {why}");
        return None;
    }
    let mut cmd = Command::new("unshare");
    cmd.args(args).arg(std::env::current_exe().unwrap());
    Some(cmd)
}

#[test]
fn other_network_namespace_falls_back_with_a_reason() {
    let _g = serial();
    if child_checks_fallback() {
        return;
    }
    if let Some(cmd) = unshare(&["--net"]) {
        run_child(
            "other_network_namespace_falls_back_with_a_reason",
            cmd,
            "hostNetwork",
        );
    }
}

#[test]
fn other_pid_namespace_falls_back_with_a_reason() {
    let _g = serial();
    if child_checks_fallback() {
        return;
    }
    // The kernel ignores the subscription without answering: the watcher gives up after
    // ACK_TIMEOUT and says why.
    if let Some(cmd) = unshare(&["--pid", "--fork"]) {
        run_child(
            "other_pid_namespace_falls_back_with_a_reason",
            cmd,
            "hostPID",
        );
    }
}
