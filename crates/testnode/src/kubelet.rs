//! A kubelet emulator: the static pod source and a crude container runtime, as processes.
//!
//! Why: kharden's guarantees are about what kubelet does with a manifest directory (it loads
//! every non-dot file, restarts a pod when its file changes, stops it when the file goes,
//! crash-loops a container that exits). Tests and `kharden demo` need that behaviour on a
//! machine with no kubelet and no container runtime, with knobs a real kubelet lacks: a
//! configurable delay before it notices a change ("slow to restart") and short back-offs.
//!
//! What it does, per file in the manifests directory (polled every `poll_interval`):
//! - ignores names starting with `.` (as kubelet does) and non-regular files; every other file
//!   is a pod, whatever its extension (kubelet loads `x.yaml.bak` too);
//! - parses it with serde_yaml; a file that does not parse, is not `kind: Pod` or has no
//!   `command`/`args` in its first container counts as no pod (kubelet drops a pod whose file
//!   stops parsing), and the event log says why;
//! - runs the FIRST container's `command` + `args` as a child process with the literal `env`
//!   values, `argv[0]` exactly as written (resolved against `path` for exec only, so
//!   `/proc/PID/cmdline` shows what the manifest says), in its own process group, with
//!   `PR_SET_PDEATHSIG=SIGKILL` so it cannot outlive the emulator, stdout+stderr appended to
//!   `<log_dir>/<file name>.log`;
//! - restarts the process when the parsed pod changes (a comment-only edit does not restart it,
//!   as kubelet's pod hash does not change), after `restart_delay`: SIGTERM to the process
//!   group, SIGKILL after `grace_period`;
//! - restarts a process that exits (restartPolicy Always) after an exponential back-off:
//!   `backoff_initial`, doubled each time, capped at `backoff_max`, reset when the process ran
//!   for `backoff_reset_after`;
//! - stops the process when the file disappears.
//!
//! On stop (SIGTERM/SIGINT/SIGHUP to the emulator, the `stop` flag, or `stop_file` appearing)
//! it stops every child the same way and returns.
//!
//! One event per line goes to `event_log` (or stderr): `<unix secs.millis> <event> pod=<file>
//! key=value...`, e.g. `1712345678.123 started pod=kube-apiserver.yaml pid=4242 argv=[...]`.
//!
//! Caveat: `PR_SET_PDEATHSIG` fires when the *thread* that spawned the child exits. The loop
//! spawns every child from the thread that called [`run_kubelet`], which lives until the
//! emulator stops, so this holds; do not call it from a short-lived thread.

use serde_yaml::Value;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Options of the emulator. [`KubeletOptions::to_args`] and [`KubeletOptions::from_args`]
/// round-trip them through a command line, for running it as a child process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletOptions {
    /// The simulated host's root.
    pub root: PathBuf,
    /// Default `<root>/etc/kubernetes/manifests`.
    pub manifests_dir: Option<PathBuf>,
    /// Where children's stdout/stderr go. Default `<root>/var/log/pods`.
    pub log_dir: Option<PathBuf>,
    /// Event log file (appended). Default: stderr.
    pub event_log: Option<PathBuf>,
    /// `PATH` used to resolve `argv[0]` and given to children. Default: the emulator's `PATH`.
    pub path: Option<OsString>,
    /// Extra environment for every child (before the manifest's own `env`), e.g.
    /// `FAKE_REJECT_FLAGS`. Children do not inherit the emulator's environment otherwise.
    pub env: Vec<(String, String)>,
    pub poll_interval: Duration,
    /// Delay between noticing a change of a file and acting on it.
    pub restart_delay: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub backoff_reset_after: Duration,
    /// SIGTERM to SIGKILL.
    pub grace_period: Duration,
    /// The emulator stops when this file exists.
    pub stop_file: Option<PathBuf>,
}

impl KubeletOptions {
    /// Defaults for a simulated node at `root`.
    pub fn new(root: impl Into<PathBuf>) -> KubeletOptions {
        KubeletOptions {
            root: root.into(),
            manifests_dir: None,
            log_dir: None,
            event_log: None,
            path: None,
            env: Vec::new(),
            poll_interval: Duration::from_millis(150),
            restart_delay: Duration::ZERO,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(5),
            backoff_reset_after: Duration::from_secs(10),
            grace_period: Duration::from_secs(2),
            stop_file: None,
        }
    }

    /// Options for a quick simulated node (tests, `kharden demo`): the fake control-plane
    /// binaries installed in `<root>/bin` as links to `exe` (see [`crate::install_fake_binaries`])
    /// and first on `PATH`, 100 ms polling, restarts backed off from 200 ms to 1 s.
    pub fn simulated_node(root: &Path, exe: &Path) -> std::io::Result<KubeletOptions> {
        let bin = root.join("bin");
        crate::install_fake_binaries(&bin, exe)?;
        let mut path = bin.into_os_string();
        path.push(":/usr/bin:/bin");
        let mut opts = KubeletOptions::new(root);
        opts.path = Some(path);
        opts.poll_interval = Duration::from_millis(100);
        opts.backoff_initial = Duration::from_millis(200);
        opts.backoff_max = Duration::from_secs(1);
        Ok(opts)
    }

    /// The manifests directory in effect.
    pub fn manifests_dir(&self) -> PathBuf {
        self.manifests_dir
            .clone()
            .unwrap_or_else(|| self.root.join("etc/kubernetes/manifests"))
    }

    /// The pod log directory in effect.
    pub fn log_dir(&self) -> PathBuf {
        self.log_dir
            .clone()
            .unwrap_or_else(|| self.root.join("var/log/pods"))
    }

    /// Command-line form, parsed back by [`KubeletOptions::from_args`].
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["--root".into(), self.root.clone().into()];
        let mut push = |k: &str, v: OsString| {
            a.push(k.into());
            a.push(v);
        };
        if let Some(d) = &self.manifests_dir {
            push("--manifests", d.clone().into());
        }
        if let Some(d) = &self.log_dir {
            push("--log-dir", d.clone().into());
        }
        if let Some(f) = &self.event_log {
            push("--event-log", f.clone().into());
        }
        if let Some(p) = &self.path {
            push("--path", p.clone());
        }
        for (k, v) in &self.env {
            push("--env", format!("{k}={v}").into());
        }
        let ms = |d: Duration| OsString::from(d.as_millis().to_string());
        push("--poll-ms", ms(self.poll_interval));
        push("--restart-delay-ms", ms(self.restart_delay));
        push("--backoff-initial-ms", ms(self.backoff_initial));
        push("--backoff-max-ms", ms(self.backoff_max));
        push("--backoff-reset-ms", ms(self.backoff_reset_after));
        push("--grace-ms", ms(self.grace_period));
        if let Some(f) = &self.stop_file {
            push("--stop-file", f.clone().into());
        }
        a
    }

    /// Parse the form written by [`KubeletOptions::to_args`] (`--name value` pairs).
    pub fn from_args(args: &[String]) -> Result<KubeletOptions, String> {
        let mut root = None;
        let mut o = KubeletOptions::new(PathBuf::new());
        let mut it = args.iter();
        while let Some(k) = it.next() {
            let v = it
                .next()
                .ok_or_else(|| format!("{k}: missing value"))?
                .clone();
            let ms = |v: &str| {
                v.parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|e| format!("{k}: {e}"))
            };
            match k.as_str() {
                "--root" => root = Some(PathBuf::from(v)),
                "--manifests" => o.manifests_dir = Some(v.into()),
                "--log-dir" => o.log_dir = Some(v.into()),
                "--event-log" => o.event_log = Some(v.into()),
                "--path" => o.path = Some(v.into()),
                "--env" => {
                    let (a, b) = v
                        .split_once('=')
                        .ok_or_else(|| format!("--env {v:?}: expected NAME=VALUE"))?;
                    o.env.push((a.to_string(), b.to_string()));
                }
                "--poll-ms" => o.poll_interval = ms(&v)?,
                "--restart-delay-ms" => o.restart_delay = ms(&v)?,
                "--backoff-initial-ms" => o.backoff_initial = ms(&v)?,
                "--backoff-max-ms" => o.backoff_max = ms(&v)?,
                "--backoff-reset-ms" => o.backoff_reset_after = ms(&v)?,
                "--grace-ms" => o.grace_period = ms(&v)?,
                "--stop-file" => o.stop_file = Some(v.into()),
                _ => return Err(format!("unknown option {k}")),
            }
        }
        o.root = root.ok_or("--root is required")?;
        Ok(o)
    }
}

/// Errors that stop the emulator.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("installing signal handlers: {0}")]
    Signal(#[from] nix::Error),
}

static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    // Only an atomic store: async-signal-safe.
    SIGNALLED.store(true, Ordering::SeqCst);
}

/// Run the emulator until SIGTERM/SIGINT/SIGHUP or `opts.stop_file` appears. Installs
/// process-wide handlers for those signals: meant for a dedicated process (`kharden __kubelet`
/// or the `kharden-testnode kubelet` binary).
pub fn run_kubelet(opts: KubeletOptions) -> Result<(), KubeletError> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(sig, &action) }?;
    }
    run_kubelet_until(opts, &SIGNALLED)
}

/// Run the emulator until `stop` becomes true or `opts.stop_file` appears (no signal handlers
/// are installed). The calling thread must live until this returns (see module docs).
pub fn run_kubelet_until(opts: KubeletOptions, stop: &AtomicBool) -> Result<(), KubeletError> {
    let mut k = Kubelet::new(opts)?;
    k.event(
        None,
        "emulator-started",
        format_args!("pid={}", std::process::id()),
    );
    let mut first = true;
    loop {
        if stop.load(Ordering::SeqCst) || k.opts.stop_file.as_ref().is_some_and(|f| f.exists()) {
            break;
        }
        k.scan(first);
        first = false;
        k.step();
        std::thread::sleep(k.opts.poll_interval);
    }
    k.shutdown();
    Ok(())
}

/// What a file asks for.
#[derive(Debug, Clone, PartialEq)]
struct Desired {
    /// The parsed document, compared to decide whether the pod changed.
    doc: Value,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    working_dir: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Pod(Box<Desired>),
    Invalid(String),
    Gone,
}

struct Running {
    child: Child,
    started: Instant,
}

struct Pod {
    /// Last content noticed in the directory.
    seen: Seen,
    /// A change noticed and not yet acted upon, with its due time.
    pending: Option<(Seen, Instant)>,
    /// What is being run.
    desired: Option<Desired>,
    running: Option<Running>,
    restarts: u32,
    next_start: Instant,
}

struct Kubelet {
    opts: KubeletOptions,
    manifests: PathBuf,
    log_dir: PathBuf,
    events: Box<dyn Write>,
    pods: BTreeMap<String, Pod>,
    search_path: OsString,
}

impl Kubelet {
    fn new(opts: KubeletOptions) -> Result<Kubelet, KubeletError> {
        let manifests = opts.manifests_dir();
        let log_dir = opts.log_dir();
        fs::create_dir_all(&log_dir).map_err(|source| KubeletError::Io {
            what: "creating",
            path: log_dir.clone(),
            source,
        })?;
        let events: Box<dyn Write> = match &opts.event_log {
            Some(p) => {
                if let Some(d) = p.parent() {
                    let _ = fs::create_dir_all(d);
                }
                Box::new(
                    fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(p)
                        .map_err(|source| KubeletError::Io {
                            what: "opening",
                            path: p.clone(),
                            source,
                        })?,
                )
            }
            None => Box::new(std::io::stderr()),
        };
        let search_path = opts
            .path
            .clone()
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        Ok(Kubelet {
            opts,
            manifests,
            log_dir,
            events,
            pods: BTreeMap::new(),
            search_path,
        })
    }

    fn event(&mut self, pod: Option<&str>, what: &str, rest: std::fmt::Arguments<'_>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let pod = pod.map(|p| format!(" pod={p}")).unwrap_or_default();
        // The event log is best effort: a full disk must not stop the emulator.
        let _ = writeln!(
            self.events,
            "{}.{:03} {what}{pod} {rest}",
            now.as_secs(),
            now.subsec_millis()
        );
        let _ = self.events.flush();
    }

    /// Read the directory and record what changed.
    fn scan(&mut self, first: bool) {
        let mut found: BTreeMap<String, Seen> = BTreeMap::new();
        match fs::read_dir(&self.manifests) {
            Ok(rd) => {
                for entry in rd.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') {
                        continue;
                    }
                    let path = entry.path();
                    match fs::metadata(&path) {
                        Ok(m) if m.is_file() => {}
                        _ => continue,
                    }
                    let seen = match fs::read(&path) {
                        Ok(bytes) => match parse_pod(&bytes) {
                            Ok(d) => Seen::Pod(Box::new(d)),
                            Err(e) => Seen::Invalid(e),
                        },
                        // Vanished between listing and reading: the next scan sees it gone.
                        Err(_) => continue,
                    };
                    found.insert(name, seen);
                }
            }
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    let dir = self.manifests.display().to_string();
                    self.event(None, "scan-error", format_args!("dir={dir} error={e}"));
                }
            }
        }
        let now = Instant::now();
        let due = if first {
            now
        } else {
            now + self.opts.restart_delay
        };
        // Files that went away.
        let gone: Vec<String> = self
            .pods
            .iter()
            .filter(|(n, p)| !found.contains_key(*n) && p.seen != Seen::Gone)
            .map(|(n, _)| n.clone())
            .collect();
        for name in gone {
            found.insert(name, Seen::Gone);
        }
        for (name, seen) in found {
            let changed = match self.pods.get(&name) {
                Some(p) => p.seen != seen,
                None => true,
            };
            if !changed {
                continue;
            }
            match &seen {
                Seen::Pod(d) => {
                    let argv = format!("{:?}", d.argv);
                    self.event(Some(&name), "noticed", format_args!("argv={argv}"))
                }
                Seen::Invalid(e) => {
                    let e = e.clone();
                    self.event(Some(&name), "invalid", format_args!("error={e:?}"))
                }
                Seen::Gone => self.event(Some(&name), "removed", format_args!("")),
            }
            let pod = self.pods.entry(name).or_insert_with(|| Pod {
                seen: Seen::Gone,
                pending: None,
                desired: None,
                running: None,
                restarts: 0,
                next_start: now,
            });
            pod.seen = seen.clone();
            // A second change before the first is acted upon keeps the first due time.
            let due = pod.pending.as_ref().map(|(_, d)| *d).unwrap_or(due);
            pod.pending = Some((seen, due));
        }
    }

    /// Act on due changes, reap exits, start what should run.
    fn step(&mut self) {
        let now = Instant::now();
        let names: Vec<String> = self.pods.keys().cloned().collect();
        for name in names {
            // Due change?
            let due = self
                .pods
                .get(&name)
                .and_then(|p| p.pending.as_ref())
                .is_some_and(|(_, d)| *d <= now);
            if due {
                self.stop_pod(&name, "manifest changed");
                if let Some(p) = self.pods.get_mut(&name) {
                    if let Some((seen, _)) = p.pending.take() {
                        p.desired = match seen {
                            Seen::Pod(d) => Some(*d),
                            _ => None,
                        };
                        p.restarts = 0;
                        p.next_start = now;
                    }
                }
            }
            // Exited?
            let exited = self.pods.get_mut(&name).and_then(|p| {
                let r = p.running.as_mut()?;
                match r.child.try_wait() {
                    Ok(Some(status)) => Some((r.child.id(), status, r.started.elapsed())),
                    _ => None,
                }
            });
            if let Some((pid, status, ran)) = exited {
                // Kill what may be left of its process group.
                let _ = kill(Pid::from_raw(-(pid as i32)), Signal::SIGKILL);
                let delay = self.backoff(&name, ran);
                self.event(
                    Some(&name),
                    "exited",
                    format_args!(
                        "pid={pid} status={status} ran_ms={} backoff_ms={}",
                        ran.as_millis(),
                        delay.as_millis()
                    ),
                );
            }
            // Start?
            let start = self.pods.get(&name).and_then(|p| {
                if p.running.is_none() && p.next_start <= now {
                    p.desired.clone()
                } else {
                    None
                }
            });
            if let Some(d) = start {
                match self.spawn(&name, &d) {
                    Ok(child) => {
                        let pid = child.id();
                        if let Some(p) = self.pods.get_mut(&name) {
                            p.running = Some(Running {
                                child,
                                started: Instant::now(),
                            });
                        }
                        let argv = format!("{:?}", d.argv);
                        self.event(
                            Some(&name),
                            "started",
                            format_args!("pid={pid} argv={argv}"),
                        );
                    }
                    Err(e) => {
                        let delay = self.backoff(&name, Duration::ZERO);
                        self.event(
                            Some(&name),
                            "start-failed",
                            format_args!("error={e:?} backoff_ms={}", delay.as_millis()),
                        );
                    }
                }
            }
            // Forget pods whose file is gone and that are stopped.
            if self
                .pods
                .get(&name)
                .is_some_and(|p| p.seen == Seen::Gone && p.pending.is_none() && p.running.is_none())
            {
                self.pods.remove(&name);
            }
        }
    }

    /// Record an exit and schedule the next start; returns the delay.
    fn backoff(&mut self, name: &str, ran: Duration) -> Duration {
        let Some(p) = self.pods.get_mut(name) else {
            return Duration::ZERO;
        };
        p.running = None;
        if ran >= self.opts.backoff_reset_after {
            p.restarts = 0;
        }
        let factor = 1u32 << p.restarts.min(16);
        let delay = self
            .opts
            .backoff_initial
            .saturating_mul(factor)
            .min(self.opts.backoff_max);
        p.restarts = p.restarts.saturating_add(1);
        p.next_start = Instant::now() + delay;
        delay
    }

    fn resolve(&self, argv0: &str) -> Result<PathBuf, String> {
        if argv0.contains('/') {
            return Ok(PathBuf::from(argv0));
        }
        for dir in std::env::split_paths(&self.search_path) {
            let cand = dir.join(argv0);
            if let Ok(m) = fs::metadata(&cand) {
                if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                    return Ok(cand);
                }
            }
        }
        Err(format!("executable file {argv0:?} not found in $PATH"))
    }

    fn spawn(&mut self, name: &str, d: &Desired) -> Result<Child, String> {
        let argv0 = d.argv.first().ok_or("empty argv")?;
        let exe = self.resolve(argv0)?;
        let log_path = self.log_dir.join(format!("{name}.log"));
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("opening {}: {e}", log_path.display()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("opening {}: {e}", log_path.display()))?;
        let mut cmd = Command::new(&exe);
        cmd.arg0(argv0)
            .args(&d.argv[1..])
            .env_clear()
            .env("PATH", &self.search_path)
            .envs(self.opts.env.iter().map(|(k, v)| (k, v)))
            .envs(d.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0);
        let wd = d
            .working_dir
            .as_ref()
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .unwrap_or_else(|| self.opts.root.clone());
        cmd.current_dir(wd);
        let parent = nix::unistd::getpid();
        // SAFETY: runs in the forked child before exec; prctl and getppid are plain syscalls
        // (async-signal-safe), nothing allocates.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
                    .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
                // The parent may have died between fork and prctl.
                if nix::unistd::getppid() != parent {
                    return Err(std::io::Error::other("parent exited"));
                }
                Ok(())
            });
        }
        cmd.spawn()
            .map_err(|e| format!("exec {}: {e}", exe.display()))
    }

    /// SIGTERM the pod's process group, SIGKILL after the grace period, reap.
    fn stop_pod(&mut self, name: &str, why: &str) {
        let Some(mut r) = self.pods.get_mut(name).and_then(|p| p.running.take()) else {
            return;
        };
        let pid = r.child.id();
        let pgid = Pid::from_raw(-(pid as i32));
        self.event(
            Some(name),
            "killing",
            format_args!("pid={pid} reason={why:?}"),
        );
        let _ = kill(pgid, Signal::SIGTERM);
        let deadline = Instant::now() + self.opts.grace_period;
        let mut status = None;
        while Instant::now() < deadline {
            match r.child.try_wait() {
                Ok(Some(s)) => {
                    status = Some(s);
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
        let _ = kill(pgid, Signal::SIGKILL);
        let status = match status {
            Some(s) => Some(s),
            None => r.child.wait().ok(),
        };
        let status = status.map(|s| s.to_string()).unwrap_or_else(|| "?".into());
        self.event(
            Some(name),
            "stopped",
            format_args!("pid={pid} status={status}"),
        );
    }

    fn shutdown(&mut self) {
        let names: Vec<String> = self.pods.keys().cloned().collect();
        for n in names {
            self.stop_pod(&n, "emulator stopping");
        }
        self.event(None, "emulator-stopped", format_args!(""));
    }
}

/// Parse one static pod file into what the emulator runs.
fn parse_pod(bytes: &[u8]) -> Result<Desired, String> {
    let doc: Value = serde_yaml::from_slice(bytes).map_err(|e| e.to_string())?;
    if let Some(kind) = doc.get("kind").and_then(Value::as_str) {
        if kind != "Pod" {
            return Err(format!("kind {kind:?} is not Pod"));
        }
    }
    let c = doc
        .get("spec")
        .and_then(|s| s.get("containers"))
        .and_then(|c| c.get(0))
        .ok_or("no spec.containers[0]")?;
    let strings = |key: &str| -> Result<Vec<String>, String> {
        match c.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Sequence(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    Value::Bool(b) => Ok(b.to_string()),
                    other => Err(format!("{key}: non-scalar item {other:?}")),
                })
                .collect(),
            Some(_) => Err(format!("{key} is not a list")),
        }
    };
    let mut argv = strings("command")?;
    argv.extend(strings("args")?);
    if argv.is_empty() {
        return Err(
            "first container has no command/args (image entrypoints are not emulated)".into(),
        );
    }
    let mut env = Vec::new();
    if let Some(Value::Sequence(items)) = c.get("env") {
        for e in items {
            let name = e.get("name").and_then(Value::as_str);
            let value = e.get("value").and_then(Value::as_str);
            if let (Some(n), Some(v)) = (name, value) {
                env.push((n.to_string(), v.to_string()));
            }
        }
    }
    let working_dir = c
        .get("workingDir")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(Desired {
        doc,
        argv,
        env,
        working_dir,
    })
}

/// Is `path` a file kubelet's static pod source would load (regular file, name not starting
/// with `.`)?
pub fn kubelet_would_load(path: &Path) -> bool {
    let dot = path
        .file_name()
        .map(|n| n.to_string_lossy().starts_with('.'))
        .unwrap_or(true);
    !dot && fs::metadata(path).map(|m| m.is_file()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip() {
        let mut o = KubeletOptions::new("/tmp/x");
        o.env
            .push(("FAKE_REJECT_FLAGS".into(), "--profiling".into()));
        o.restart_delay = Duration::from_millis(1500);
        o.stop_file = Some("/tmp/x/stop".into());
        o.path = Some("/a:/b".into());
        let args: Vec<String> = o
            .to_args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(KubeletOptions::from_args(&args).unwrap(), o);
    }

    #[test]
    fn parses_first_container() {
        let d = parse_pod(
            b"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n    command: [kube-apiserver]\n    args: ['--x=1', 2]\n    env:\n    - {name: A, value: b}\n    - name: C\n      valueFrom: {}\n  - name: b\n    command: [other]\n",
        )
        .unwrap();
        assert_eq!(d.argv, ["kube-apiserver", "--x=1", "2"]);
        assert_eq!(d.env, [("A".to_string(), "b".to_string())]);
        assert!(parse_pod(b"kind: Deployment\n").is_err());
        assert!(parse_pod(b"spec: [").is_err());
    }

    #[test]
    fn comment_only_change_is_same_pod() {
        let a = parse_pod(b"spec:\n  containers:\n  - command: [x, --a]\n").unwrap();
        let b = parse_pod(b"# hi\nspec:\n  containers:\n  - command: [x,   --a] # c\n").unwrap();
        assert_eq!(a, b);
    }
}
