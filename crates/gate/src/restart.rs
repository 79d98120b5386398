//! Restart proof from `/proc`.
//!
//! Why: right after a manifest is replaced, the *old* process still answers health probes;
//! kubelet may take seconds to notice the change. A probe alone would pass a change that was
//! never applied. So the gate requires a process whose argv is the new manifest's
//! command+args and which started at or after the write.
//!
//! Matching rules:
//! - argv is compared item by item, exactly (no normalisation of flags: the audit decides what
//!   flags mean; here the question is only "is this the process the new manifest describes").
//! - `argv[0]` may differ in one way: one side may be a path whose last component equals the
//!   other (`/usr/local/bin/kube-apiserver` vs `kube-apiserver`), because a runtime or a
//!   wrapper may exec by full path. Nothing else is tolerated.
//! - Zombies and kernel threads have an empty cmdline and never match.
//!
//! Start time: `/proc/PID/stat` field 22 is the start time in clock ticks
//! (`sysconf(_SC_CLK_TCK)`, normally 100 per second) since boot, truncated to the tick. It is
//! turned into wall-clock time with the boot time. `/proc/stat`'s `btime` is whole seconds
//! (truncated), which would misplace a start by up to a second, enough to take a process that
//! started half a second after the write for the old one. So when `proc_root` is a procfs
//! (`/proc`, or the host's `/proc` mounted at `/host/proc`: same kernel), the boot time is
//! computed as `now(CLOCK_REALTIME) - now(CLOCK_BOOTTIME)` (the clock the kernel uses for
//! starttime), precise to microseconds. Only when `proc_root` is not a procfs (a directory of
//! fake entries in tests) is `btime` from `<proc_root>/stat` used.
//!
//! Granularity: because starttime is truncated to a tick, a process that started after the
//! write can show a start up to one tick *before* the write. [`started_at_or_after`] therefore
//! accepts a start within one tick before the given time. The cost is that a process started in
//! the same 10 ms as the write, but before it, counts as after; it would also need to have the
//! new argv, which before the write no process has, except when the argv did not change.

use nix::time::{clock_gettime, ClockId};
use nix::unistd::{sysconf, SysconfVar};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A process seen in `/proc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: u32,
    pub argv: Vec<String>,
    /// Start time in clock ticks since boot (stat field 22).
    pub start_ticks: u64,
    /// Start time as wall-clock time (see module docs for precision).
    pub started_at: SystemTime,
}

/// Errors reading `/proc` as a whole (single processes that vanish are skipped).
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Parse(String),
}

/// How the boot time is determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootClock {
    /// `CLOCK_REALTIME - CLOCK_BOOTTIME`, now (live `/proc` only).
    Live,
    /// `btime` from `<proc_root>/stat`.
    Btime,
}

/// Reads processes from a proc filesystem.
#[derive(Debug, Clone)]
pub struct ProcScanner {
    proc_root: PathBuf,
    ticks_per_sec: u64,
    boot_clock: BootClock,
}

impl Default for ProcScanner {
    fn default() -> Self {
        ProcScanner::new("/proc")
    }
}

impl ProcScanner {
    /// A scanner of `proc_root` (normally `/proc`). The live boot clock is used when
    /// `proc_root` is a procfs (or cannot be examined), `btime` otherwise (see module docs).
    pub fn new(proc_root: impl Into<PathBuf>) -> ProcScanner {
        let proc_root = proc_root.into();
        let boot_clock = if is_procfs(&proc_root) {
            BootClock::Live
        } else {
            BootClock::Btime
        };
        // _SC_CLK_TCK is 100 on every Linux ABI kharden runs on; fall back to that.
        let ticks_per_sec = sysconf(SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .and_then(|t| u64::try_from(t).ok())
            .filter(|t| *t > 0)
            .unwrap_or(100);
        ProcScanner {
            proc_root,
            ticks_per_sec,
            boot_clock,
        }
    }

    /// Override how the boot time is found.
    pub fn with_boot_clock(mut self, c: BootClock) -> ProcScanner {
        self.boot_clock = c;
        self
    }

    /// Override the clock tick rate (tests).
    pub fn with_ticks_per_sec(mut self, t: u64) -> ProcScanner {
        self.ticks_per_sec = t.max(1);
        self
    }

    /// Length of one clock tick.
    pub fn tick(&self) -> Duration {
        Duration::from_nanos(1_000_000_000 / self.ticks_per_sec)
    }

    /// The boot time as wall-clock time.
    pub fn boot_time(&self) -> Result<SystemTime, ProcError> {
        match self.boot_clock {
            BootClock::Live => {
                let boot = clock_gettime(ClockId::CLOCK_BOOTTIME)
                    .map_err(|e| ProcError::Parse(format!("clock_gettime(BOOTTIME): {e}")))?;
                let now = crate::wall_clock();
                let since_boot = Duration::from(boot);
                now.checked_sub(since_boot)
                    .ok_or_else(|| ProcError::Parse("boot time before the epoch".into()))
            }
            BootClock::Btime => {
                let path = self.proc_root.join("stat");
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| ProcError::Io { path, source })?;
                let secs = text
                    .lines()
                    .find_map(|l| l.strip_prefix("btime "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or_else(|| ProcError::Parse("no btime in stat".into()))?;
                Ok(UNIX_EPOCH + Duration::from_secs(secs))
            }
        }
    }

    /// One process, or `None` if it vanished, is a zombie/kernel thread, or is unreadable.
    pub fn process(&self, pid: u32, boot: SystemTime) -> Option<ProcInfo> {
        let dir = self.proc_root.join(pid.to_string());
        let cmdline = std::fs::read(dir.join("cmdline")).ok()?;
        let argv = split_cmdline(&cmdline);
        if argv.is_empty() {
            return None;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        let start_ticks = parse_stat_starttime(&stat)?;
        let started_at = boot
            + Duration::from_secs(start_ticks / self.ticks_per_sec)
            + Duration::from_nanos(
                (start_ticks % self.ticks_per_sec) * 1_000_000_000 / self.ticks_per_sec,
            );
        Some(ProcInfo {
            pid,
            argv,
            start_ticks,
            started_at,
        })
    }

    /// Every readable process.
    pub fn processes(&self) -> Result<Vec<ProcInfo>, ProcError> {
        let boot = self.boot_time()?;
        let rd = std::fs::read_dir(&self.proc_root).map_err(|source| ProcError::Io {
            path: self.proc_root.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(p) = self.process(pid, boot) {
                out.push(p);
            }
        }
        out.sort_by_key(|p| p.pid);
        Ok(out)
    }

    /// Processes whose argv matches `expected` ([`argv_matches`]) and, when `since` is given,
    /// that started at or after it ([`started_at_or_after`]); newest first.
    pub fn find(
        &self,
        expected: &[String],
        since: Option<SystemTime>,
    ) -> Result<Vec<ProcInfo>, ProcError> {
        let tick = self.tick();
        let mut v: Vec<ProcInfo> = self
            .processes()?
            .into_iter()
            .filter(|p| argv_matches(expected, &p.argv))
            .filter(|p| since.is_none_or(|t| started_at_or_after(p.started_at, t, tick)))
            .collect();
        v.sort_by(|a, b| b.start_ticks.cmp(&a.start_ticks).then(b.pid.cmp(&a.pid)));
        Ok(v)
    }
}

/// Is `p` a mounted procfs? A path that cannot be examined counts as one (the live clock is
/// the right choice for every real proc filesystem; reading it then fails with a clear error).
fn is_procfs(p: &Path) -> bool {
    match nix::sys::statfs::statfs(p) {
        Ok(fs) => fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC,
        Err(_) => true,
    }
}

/// Split `/proc/PID/cmdline` (NUL-terminated items) into argv.
pub fn split_cmdline(raw: &[u8]) -> Vec<String> {
    if raw.is_empty() {
        return Vec::new();
    }
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    raw.split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// Field 22 (starttime) of `/proc/PID/stat`. The command name (field 2) is in parentheses and
/// may itself contain spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat_starttime(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ')' comes field 3 (state); starttime is field 22, i.e. index 19 from there.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Does a process's argv match the expected argv? Exact, except `argv[0]` may be a path on one
/// side whose basename is the other side's `argv[0]` (see module docs).
pub fn argv_matches(expected: &[String], actual: &[String]) -> bool {
    if expected.len() != actual.len() || expected.is_empty() {
        return false;
    }
    if expected[1..] != actual[1..] {
        return false;
    }
    let (e, a) = (&expected[0], &actual[0]);
    if e == a {
        return true;
    }
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    (a.contains('/') && !e.contains('/') && base(a) == *e)
        || (e.contains('/') && !a.contains('/') && base(e) == *a)
}

/// Did a process that shows start time `start` (truncated to `tick`) start at or after `t`?
/// True when `start > t - tick` (see module docs).
pub fn started_at_or_after(start: SystemTime, t: SystemTime, tick: Duration) -> bool {
    match t.checked_sub(tick) {
        Some(lower) => start > lower,
        None => true,
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // the tests write fake /proc trees
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn argv_rules() {
        let e = s(&["kube-apiserver", "--a=1"]);
        assert!(argv_matches(&e, &s(&["kube-apiserver", "--a=1"])));
        assert!(argv_matches(
            &e,
            &s(&["/usr/local/bin/kube-apiserver", "--a=1"])
        ));
        assert!(argv_matches(&s(&["/usr/bin/x", "-v"]), &s(&["x", "-v"])));
        assert!(!argv_matches(&e, &s(&["kube-apiserver", "--a=2"])));
        assert!(!argv_matches(&e, &s(&["kube-apiserver", "--a=1", "--b"])));
        assert!(!argv_matches(&e, &s(&["/bin/other", "--a=1"])));
        assert!(!argv_matches(&s(&["/a/x"]), &s(&["/b/x"])));
        assert!(!argv_matches(&[], &[]));
    }

    #[test]
    fn stat_and_cmdline() {
        let stat = "4242 (kube (api) server) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 123456 1000 10 18446744073709551615";
        assert_eq!(parse_stat_starttime(stat), Some(123456));
        assert_eq!(split_cmdline(b"a\0\0b\0"), s(&["a", "", "b"]));
        assert!(split_cmdline(b"").is_empty());
    }

    #[test]
    fn tick_granularity() {
        let t = UNIX_EPOCH + Duration::from_millis(10_005);
        let tick = Duration::from_millis(10);
        // Truncated to the tick containing the write: still counts.
        assert!(started_at_or_after(
            UNIX_EPOCH + Duration::from_millis(10_000),
            t,
            tick
        ));
        assert!(!started_at_or_after(
            UNIX_EPOCH + Duration::from_millis(9_990),
            t,
            tick
        ));
        assert!(started_at_or_after(
            UNIX_EPOCH + Duration::from_secs(11),
            t,
            tick
        ));
    }

    #[test]
    fn finds_itself_in_live_proc() {
        let me = std::process::id();
        let scanner = ProcScanner::default();
        let boot = scanner.boot_time().unwrap();
        let p = scanner.process(me, boot).unwrap();
        assert!(p.started_at <= crate::wall_clock());
        let found = scanner.find(&p.argv, None).unwrap();
        assert!(found.iter().any(|q| q.pid == me));
        let later = crate::wall_clock() + Duration::from_secs(5);
        assert!(!scanner
            .find(&p.argv, Some(later))
            .unwrap()
            .iter()
            .any(|q| q.pid == me));
    }

    #[test]
    fn fake_proc_root_uses_btime() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stat"), "cpu 1 2 3\nbtime 1000\n").unwrap();
        let pd = dir.path().join("77");
        std::fs::create_dir(&pd).unwrap();
        std::fs::write(pd.join("cmdline"), b"kube-apiserver\0--x\0").unwrap();
        let mut fields = vec!["0"; 18];
        fields.push("250");
        std::fs::write(
            pd.join("stat"),
            format!("77 (kube-apiserver) S {}", fields.join(" ")),
        )
        .unwrap();
        let sc = ProcScanner::new(dir.path()).with_ticks_per_sec(100);
        let found = sc.find(&s(&["kube-apiserver", "--x"]), None).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].started_at,
            UNIX_EPOCH + Duration::from_millis(1_002_500)
        );
    }
}

/// Does process `pid` own a listening TCP socket on `port` (any address, IPv4 or IPv6)?
///
/// Why: a healthy answer on the probe port proves something listens there, not that it is the
/// proven process. This looks up the LISTEN sockets on `port` in the process's own network
/// namespace (`<proc_root>/PID/net/tcp{,6}`) and checks that one of its file descriptors is
/// that socket (`<proc_root>/PID/fd/*` -> `socket:[inode]`). `Ok(None)` means it cannot be
/// told (the fd directory is not readable: kharden runs as root, so this is for tests and
/// unprivileged use); `Ok(Some(false))` that it does not.
pub fn pid_listens_on(proc_root: &Path, pid: u32, port: u16) -> Result<Option<bool>, ProcError> {
    let dir = proc_root.join(pid.to_string());
    let mut inodes = Vec::new();
    for table in ["net/tcp", "net/tcp6"] {
        let path = dir.join(table);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(ProcError::Io { path, source }),
        };
        inodes.extend(listening_inodes(&text, port));
    }
    if inodes.is_empty() {
        return Ok(Some(false));
    }
    let fd_dir = dir.join("fd");
    let rd = match std::fs::read_dir(&fd_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Ok(None),
        Err(source) => {
            return Err(ProcError::Io {
                path: fd_dir,
                source,
            })
        }
    };
    for e in rd.flatten() {
        if let Ok(target) = std::fs::read_link(e.path()) {
            let t = target.to_string_lossy();
            if let Some(inode) = t
                .strip_prefix("socket:[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse::<u64>().ok())
            {
                if inodes.contains(&inode) {
                    return Ok(Some(true));
                }
            }
        }
    }
    Ok(Some(false))
}

/// Inodes of LISTEN (state `0A`) sockets on `port` in a `/proc/net/tcp`-format table.
pub fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
            let local = f.get(1)?;
            let st = f.get(3)?;
            let inode = f.get(9)?.parse::<u64>().ok()?;
            let p = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            (*st == "0A" && p == port).then_some(inode)
        })
        .collect()
}

#[cfg(test)]
mod listen_tests {
    use super::*;

    #[test]
    fn parses_tcp_table() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1A0B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0 100 0 0 10 0\n   1: 0100007F:1A0B 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 999 1\n";
        assert_eq!(listening_inodes(t, 0x1A0B), vec![12345]);
        assert!(listening_inodes(t, 80).is_empty());
    }

    #[test]
    fn finds_own_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let me = std::process::id();
        let proc_root = Path::new("/proc");
        assert_eq!(pid_listens_on(proc_root, me, port).unwrap(), Some(true));
        drop(l);
        assert_eq!(pid_listens_on(proc_root, me, port).unwrap(), Some(false));
    }
}
