//! A service-manager emulator ("fake systemd") for the kubelet, and the container runtime the
//! kubelet emulator's pods live in; plus a fake `systemctl` that talks to it.
//!
//! Why: a kubelet configuration change takes effect only through `systemctl restart
//! kubelet.service`, and what happens then is systemd's business: the unit and its drop-ins
//! (read at start-up and `daemon-reload` only) give `ExecStart=` and `EnvironmentFile=`, the
//! environment files are read at every start and `$VAR` split into words, a kubelet that refuses
//! its configuration exits and is started again every `RestartSec` (`Restart=always`, forever
//! with kubeadm's `StartLimitInterval=0`), `systemctl show` tells `MainPID`, `NRestarts`,
//! `ExecMainStartTimestampMonotonic`. kharden's kubelet transactions are tested against that.
//!
//! And pods must survive a kubelet restart: on a real node containers belong to the container
//! runtime, not to the kubelet. So this process is also the runtime: the kubelet emulator asks it
//! (over the runtime socket) to run a pod's process, lists what runs after its own restart and
//! adopts it. Pods are children of this process, not of the kubelet.
//!
//! # Nothing outlives it
//! - it is a child subreaper (`PR_SET_CHILD_SUBREAPER`): any orphaned descendant is reparented
//!   to it, and on shutdown it kills every child it has;
//! - the kubelet and every pod are spawned from its main thread with `PR_SET_PDEATHSIG=SIGKILL`,
//!   so they die with it even if it is SIGKILLed (the flag fires when the spawning *thread*
//!   exits, hence the main thread, which lives until the process ends);
//! - it gets `PR_SET_PDEATHSIG=SIGTERM` itself from [`crate::ServiceManagerProcess`], so a test
//!   that dies takes it down, and it then stops the kubelet, the pods and everything else;
//! - on SIGTERM/SIGINT/SIGHUP: SIGTERM the services (SIGKILL after their stop timeout, at most
//!   10 s), SIGTERM every pod's process group (SIGKILL after the pods' grace period), SIGKILL what
//!   is left among its children, remove its sockets, exit.
//!
//! # What it emulates, and what not
//! Only `Type=simple` services. `systemctl start|stop|restart|try-restart|is-active|is-failed|
//! is-enabled|show|status|cat|daemon-reload|reset-failed` with `-p/--property`, `-P`, `--value`,
//! `-q`, `--no-block`. `systemctl show` prints `Key=value` lines (the properties a gate needs,
//! not all of systemd's). Exit codes: 0; 1 for a failed job or a bad command line; 3 for
//! `is-active`/`status` of a unit that is not active; 5 for an unknown unit. Start limits
//! (`StartLimitIntervalSec`, `StartLimitBurst`, default 10 s / 5) apply as in systemd.
//! A `systemctl start` of a simple service succeeds once the process is forked, even when the
//! binary cannot be executed (systemd.service(5)); the service then fails with status 203.
//! Paths in units are host paths, resolved under the simulated root.

use crate::ipc::{self, ContainerInfo, Request, Response, RunContainer};
use crate::kubelet::KubeletOptions;
use crate::unit::{self, ServiceUnit};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Environment variable naming the simulated root, given to every service and pod.
pub const ROOT_ENV: &str = "KHARDEN_TESTNODE_ROOT";
/// Environment variable naming the file with the kubelet emulator's options.
pub const KUBELET_OPTS_ENV: &str = "KHARDEN_TESTNODE_KUBELET_OPTS";
/// Environment variable overriding where the fake `systemctl` finds the service manager.
pub const SOCKET_ENV: &str = "KHARDEN_TESTNODE_SYSTEMD_SOCKET";

/// Options of the service manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceManagerOptions {
    /// The simulated host's root.
    pub root: PathBuf,
    /// Units started at boot (default `kubelet.service`).
    pub units: Vec<String>,
    /// Start them (else they wait for `systemctl start`).
    pub start: bool,
    /// File holding the kubelet emulator's options (see [`write_kubelet_options`]); handed to
    /// services as `KHARDEN_TESTNODE_KUBELET_OPTS`.
    pub kubelet_options_file: Option<PathBuf>,
    /// Event log (appended). Default `<root>/var/log/systemd-emulator.log`.
    pub event_log: Option<PathBuf>,
    /// Grace period of pods at shutdown (SIGTERM to SIGKILL).
    pub pod_grace_period: Duration,
}

impl ServiceManagerOptions {
    /// Defaults for a node at `root`: manage and start `kubelet.service`.
    pub fn new(root: impl Into<PathBuf>) -> ServiceManagerOptions {
        ServiceManagerOptions {
            root: root.into(),
            units: vec!["kubelet.service".into()],
            start: true,
            kubelet_options_file: None,
            event_log: None,
            pod_grace_period: Duration::from_secs(2),
        }
    }

    /// The event log in effect.
    pub fn event_log(&self) -> PathBuf {
        self.event_log
            .clone()
            .unwrap_or_else(|| self.root.join("var/log/systemd-emulator.log"))
    }

    /// Command-line form, parsed back by [`ServiceManagerOptions::from_args`].
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["--root".into(), self.root.clone().into()];
        for u in &self.units {
            a.push("--unit".into());
            a.push(u.into());
        }
        if !self.start {
            a.push("--no-start".into());
        }
        if let Some(f) = &self.kubelet_options_file {
            a.push("--kubelet-options".into());
            a.push(f.clone().into());
        }
        if let Some(f) = &self.event_log {
            a.push("--event-log".into());
            a.push(f.clone().into());
        }
        a.push("--pod-grace-ms".into());
        a.push(self.pod_grace_period.as_millis().to_string().into());
        a
    }

    /// Parse the form written by [`ServiceManagerOptions::to_args`].
    pub fn from_args(args: &[String]) -> Result<ServiceManagerOptions, String> {
        let mut o = ServiceManagerOptions::new(PathBuf::new());
        o.units.clear();
        let mut root = None;
        let mut it = args.iter();
        while let Some(k) = it.next() {
            if k == "--no-start" {
                o.start = false;
                continue;
            }
            let v = it
                .next()
                .ok_or_else(|| format!("{k}: missing value"))?
                .clone();
            match k.as_str() {
                "--root" => root = Some(PathBuf::from(v)),
                "--unit" => o.units.push(unit::normalize_unit_name(&v)),
                "--kubelet-options" => o.kubelet_options_file = Some(v.into()),
                "--event-log" => o.event_log = Some(v.into()),
                "--pod-grace-ms" => {
                    o.pod_grace_period = Duration::from_millis(
                        v.parse().map_err(|e| format!("--pod-grace-ms: {e}"))?,
                    )
                }
                _ => return Err(format!("unknown option {k}")),
            }
        }
        o.root = root.ok_or("--root is required")?;
        if o.units.is_empty() {
            o.units.push("kubelet.service".into());
        }
        Ok(o)
    }
}

/// Write the kubelet emulator's options for services started by the service manager (one
/// argument per line, as [`KubeletOptions::to_args`] writes them). Values with a newline are
/// refused.
pub fn write_kubelet_options(path: &Path, opts: &KubeletOptions) -> std::io::Result<()> {
    let mut text = String::new();
    for a in opts.to_args() {
        let s = a
            .into_string()
            .map_err(|a| std::io::Error::other(format!("non-UTF-8 option {a:?}")))?;
        if s.contains('\n') {
            return Err(std::io::Error::other(format!(
                "option with a newline: {s:?}"
            )));
        }
        text.push_str(&s);
        text.push('\n');
    }
    if let Some(d) = path.parent() {
        fs::create_dir_all(d)?;
    }
    fs::write(path, text)
}

/// Read what [`write_kubelet_options`] wrote.
pub fn read_kubelet_options(path: &Path) -> Result<KubeletOptions, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let args: Vec<String> = text.lines().map(str::to_string).collect();
    KubeletOptions::from_args(&args)
}

/// Errors that stop the service manager.
#[derive(Debug, thiserror::Error)]
pub enum ServiceManagerError {
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

/// CLOCK_MONOTONIC now, in microseconds (what systemd's `*TimestampMonotonic` properties hold).
pub fn monotonic_us() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000)
        .unwrap_or(0)
}

#[derive(Debug, Clone, Copy)]
struct Stamp {
    real: SystemTime,
    mono_us: u64,
}

impl Stamp {
    fn now() -> Stamp {
        Stamp {
            real: SystemTime::now(),
            mono_us: monotonic_us(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Dead,
    Failed,
    Running {
        pid: u32,
    },
    Stopping {
        pid: u32,
        deadline: Instant,
        killed: bool,
        then_start: bool,
    },
    AutoRestart {
        due: Instant,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobKind {
    Start,
    Stop,
    Restart,
}

struct Waiter {
    kind: JobKind,
    reply: mpsc::Sender<Response>,
    stderr: String,
}

struct Service {
    name: String,
    unit: Option<ServiceUnit>,
    load_error: Option<String>,
    phase: Phase,
    n_restarts: u32,
    flush_n_restarts: bool,
    exec_main_pid: u32,
    exec_main_start: Option<Stamp>,
    exec_main_exit: Option<Stamp>,
    exec_main_code: i32,
    exec_main_status: i32,
    result: &'static str,
    invocation_id: String,
    active_enter: Option<Stamp>,
    active_exit: Option<Stamp>,
    inactive_enter: Option<Stamp>,
    inactive_exit: Option<Stamp>,
    state_change: Option<Stamp>,
    starts: VecDeque<Instant>,
    waiters: Vec<Waiter>,
    last_argv: Vec<String>,
}

struct Container {
    info: ContainerInfo,
    started: Instant,
}

type Incoming = (Request, mpsc::Sender<Response>);

struct Manager {
    opts: ServiceManagerOptions,
    services: BTreeMap<String, Service>,
    containers: BTreeMap<u32, Container>,
    events: Option<fs::File>,
    invocations: u64,
}

/// Run the service manager until SIGTERM/SIGINT/SIGHUP. Installs process-wide signal handlers
/// and makes the process a child subreaper: meant for a dedicated process (see
/// [`crate::ServiceManagerProcess`]).
pub fn run_service_manager(opts: ServiceManagerOptions) -> Result<(), ServiceManagerError> {
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
    nix::sys::prctl::set_child_subreaper(true)?;
    let root = opts.root.clone();
    let io = |what, path: PathBuf| move |source| ServiceManagerError::Io { what, path, source };
    for d in ["var/log/journal", "run/systemd", "run/containerd"] {
        let p = root.join(d);
        fs::create_dir_all(&p).map_err(io("creating", p.clone()))?;
    }
    let event_log = opts.event_log();
    if let Some(d) = event_log.parent() {
        fs::create_dir_all(d).map_err(io("creating", d.to_path_buf()))?;
    }
    let events = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&event_log)
        .map_err(io("opening", event_log.clone()))?;
    let (tx, rx) = mpsc::channel::<Incoming>();
    let sockets = [
        unit::under_root(&root, ipc::SYSTEMD_SOCKET),
        unit::under_root(&root, ipc::RUNTIME_SOCKET),
    ];
    for path in &sockets {
        let listener = ipc::bind(path).map_err(io("binding", path.clone()))?;
        let tx = tx.clone();
        std::thread::spawn(move || serve(listener, tx));
    }
    let mut m = Manager {
        opts,
        services: BTreeMap::new(),
        containers: BTreeMap::new(),
        events: Some(events),
        invocations: 0,
    };
    m.event(format_args!(
        "manager-started pid={} root={}",
        std::process::id(),
        root.display()
    ));
    for u in m.opts.units.clone() {
        m.load(&u);
        if m.opts.start {
            m.start(&u);
        }
    }
    while !SIGNALLED.load(Ordering::SeqCst) {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok((req, reply)) => m.handle(req, reply),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        m.reap();
        m.tick();
    }
    m.shutdown();
    for s in &sockets {
        let _ = fs::remove_file(s);
    }
    Ok(())
}

/// Accept connections; each request is handed to the main thread (which alone spawns and reaps
/// processes) and answered when the main thread replies.
fn serve(listener: std::os::unix::net::UnixListener, tx: mpsc::Sender<Incoming>) {
    for conn in listener.incoming() {
        let Ok(sock) = conn else { continue };
        let tx = tx.clone();
        std::thread::spawn(move || {
            let req = match ipc::read_request(&sock) {
                Ok(Some(r)) => r,
                Ok(None) => return,
                Err(e) => {
                    let _ = ipc::write_response(
                        &sock,
                        &Response::Error {
                            message: e.to_string(),
                        },
                    );
                    return;
                }
            };
            let (rtx, rrx) = mpsc::channel();
            if tx.send((req, rtx)).is_err() {
                return;
            }
            if let Ok(resp) = rrx.recv() {
                let _ = ipc::write_response(&sock, &resp);
            }
        });
    }
}

fn ctl(code: i32, stdout: String, stderr: String) -> Response {
    Response::Systemctl {
        code,
        stdout,
        stderr,
    }
}

fn status_string(code: i32, status: i32) -> String {
    match code {
        1 => format!("exit status: {status}"),
        2 | 3 => {
            let name = Signal::try_from(status)
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|_| "?".into());
            let core = if code == 3 { " (core dumped)" } else { "" };
            format!("signal: {status} ({name}){core}")
        }
        _ => "?".into(),
    }
}

impl Manager {
    fn event(&mut self, rest: std::fmt::Arguments<'_>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        if let Some(f) = self.events.as_mut() {
            // Best effort: a full disk must not stop the service manager.
            let _ = writeln!(f, "{}.{:03} {rest}", now.as_secs(), now.subsec_millis());
            let _ = f.flush();
        }
    }

    fn root(&self) -> &Path {
        &self.opts.root
    }

    /// Load (or reload) a unit's definition.
    fn load(&mut self, name: &str) {
        let (unit, err) = match unit::load_service(&self.opts.root, name) {
            Ok(u) => (u, None),
            Err(e) => (None, Some(e.to_string())),
        };
        if let Some(e) = &err {
            let e = e.clone();
            self.event(format_args!("load-failed unit={name} error={e:?}"));
        }
        if let Some(u) = &unit {
            for w in u.warnings.clone() {
                self.event(format_args!("unit-warning unit={name} {w}"));
            }
        }
        let s = self
            .services
            .entry(name.to_string())
            .or_insert_with(|| Service {
                name: name.to_string(),
                unit: None,
                load_error: None,
                phase: Phase::Dead,
                n_restarts: 0,
                flush_n_restarts: false,
                exec_main_pid: 0,
                exec_main_start: None,
                exec_main_exit: None,
                exec_main_code: 0,
                exec_main_status: 0,
                result: "success",
                invocation_id: String::new(),
                active_enter: None,
                active_exit: None,
                inactive_enter: None,
                inactive_exit: None,
                state_change: None,
                starts: VecDeque::new(),
                waiters: Vec::new(),
                last_argv: Vec::new(),
            });
        s.unit = unit;
        s.load_error = err;
    }

    fn service(&mut self, name: &str) -> &mut Service {
        if !self.services.contains_key(name) {
            self.load(name);
        }
        // Just inserted by load() when missing.
        self.services
            .get_mut(name)
            .unwrap_or_else(|| unreachable!("load() inserts the service"))
    }

    fn handle(&mut self, req: Request, reply: mpsc::Sender<Response>) {
        match req {
            Request::Ping => {
                let _ = reply.send(Response::Ok);
            }
            Request::Systemctl { args } => self.systemctl(args, reply),
            Request::RunContainer(rc) => {
                let _ = reply.send(self.run_container(rc));
            }
            Request::ListContainers => {
                let containers = self.containers.values().map(|c| c.info.clone()).collect();
                let _ = reply.send(Response::Containers { containers });
            }
            Request::RemoveContainer { pid } => {
                if self
                    .containers
                    .get(&pid)
                    .is_some_and(|c| c.info.exited.is_some())
                {
                    self.containers.remove(&pid);
                }
                let _ = reply.send(Response::Ok);
            }
        }
    }

    // ----- the container runtime -----

    fn run_container(&mut self, rc: RunContainer) -> Response {
        let open = |p: &Path| {
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("opening {}: {e}", p.display()))
        };
        let (log, log2) = match open(&rc.log).and_then(|f| {
            let g = f.try_clone().map_err(|e| e.to_string())?;
            Ok((f, g))
        }) {
            Ok(x) => x,
            Err(message) => return Response::Error { message },
        };
        let mut cmd = Command::new(&rc.exe);
        if let Some(a0) = rc.argv.first() {
            cmd.arg0(a0);
        }
        cmd.args(rc.argv.iter().skip(1))
            .env_clear()
            .envs(rc.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&rc.cwd)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0);
        die_with_parent(&mut cmd, Signal::SIGKILL);
        match cmd.spawn() {
            Ok(child) => {
                let pid = child.id();
                // Reaped by waitpid(-1) in reap(); the Child handle is not needed.
                drop(child);
                self.containers.insert(
                    pid,
                    Container {
                        info: ContainerInfo {
                            pid,
                            name: rc.name.clone(),
                            hash: rc.hash.clone(),
                            started_mono_ms: monotonic_us() / 1000,
                            exited: None,
                        },
                        started: Instant::now(),
                    },
                );
                self.event(format_args!(
                    "container-started name={} pid={pid} hash={}",
                    rc.name, rc.hash
                ));
                Response::Started { pid }
            }
            Err(e) => Response::Error {
                message: format!("exec {}: {e}", rc.exe.display()),
            },
        }
    }

    // ----- processes -----

    fn reap(&mut self) {
        loop {
            let st = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(st) => st,
            };
            let (pid, code, status) = match st {
                WaitStatus::Exited(pid, c) => (pid.as_raw() as u32, 1, c),
                WaitStatus::Signaled(pid, sig, core) => {
                    (pid.as_raw() as u32, if core { 3 } else { 2 }, sig as i32)
                }
                _ => continue,
            };
            if let Some(c) = self.containers.get_mut(&pid) {
                let s = status_string(code, status);
                let ran = c.started.elapsed().as_millis();
                c.info.exited = Some(s.clone());
                let name = c.info.name.clone();
                // Whatever is left of its process group goes with it.
                let _ = kill(Pid::from_raw(-(pid as i32)), Signal::SIGKILL);
                self.event(format_args!(
                    "container-exited name={name} pid={pid} status={s:?} ran_ms={ran}"
                ));
                continue;
            }
            let owner = self.services.iter().find_map(|(n, s)| match s.phase {
                Phase::Running { pid: p } | Phase::Stopping { pid: p, .. } if p == pid => {
                    Some(n.clone())
                }
                _ => None,
            });
            match owner {
                Some(n) => self.main_exited(&n, pid, code, status),
                None => self.event(format_args!(
                    "orphan-reaped pid={pid} status={:?}",
                    status_string(code, status)
                )),
            }
        }
    }

    fn set_phase(&mut self, name: &str, phase: Phase) {
        let now = Stamp::now();
        let s = self.service(name);
        let was_active = matches!(s.phase, Phase::Running { .. });
        let is_active = matches!(phase, Phase::Running { .. });
        let was_inactive = matches!(s.phase, Phase::Dead | Phase::Failed);
        let is_inactive = matches!(phase, Phase::Dead | Phase::Failed);
        if !was_active && is_active {
            s.active_enter = Some(now);
        }
        if was_active && !is_active {
            s.active_exit = Some(now);
        }
        if !was_inactive && is_inactive {
            s.inactive_enter = Some(now);
        }
        if was_inactive && !is_inactive {
            s.inactive_exit = Some(now);
        }
        s.phase = phase;
        s.state_change = Some(now);
    }

    fn main_exited(&mut self, name: &str, pid: u32, code: i32, status: i32) {
        let now = Stamp::now();
        let phase = {
            let s = self.service(name);
            s.exec_main_exit = Some(now);
            s.exec_main_code = code;
            s.exec_main_status = status;
            s.phase
        };
        let st = status_string(code, status);
        self.event(format_args!(
            "main-exited unit={name} pid={pid} status={st:?}"
        ));
        match phase {
            Phase::Stopping {
                killed, then_start, ..
            } => {
                let s = self.service(name);
                s.result = if killed { "timeout" } else { "success" };
                s.flush_n_restarts = true;
                self.set_phase(name, Phase::Dead);
                self.complete(name, &[JobKind::Stop], 0, "");
                if then_start {
                    self.start(name);
                }
            }
            Phase::Running { .. } => {
                let clean_signal = code == 2
                    && [
                        Signal::SIGHUP,
                        Signal::SIGINT,
                        Signal::SIGTERM,
                        Signal::SIGPIPE,
                    ]
                    .iter()
                    .any(|s| *s as i32 == status);
                let clean = (code == 1 && status == 0) || clean_signal;
                let result = match code {
                    1 if status == 0 => "success",
                    1 => "exit-code",
                    3 => "core-dump",
                    _ if clean_signal => "success",
                    _ => "signal",
                };
                self.service(name).result = result;
                self.after_exit(name, clean, code != 1 && !clean_signal);
            }
            _ => {}
        }
    }

    /// The main process is gone while it should run: restart it per `Restart=`, or not.
    fn after_exit(&mut self, name: &str, clean: bool, signal: bool) {
        let (restart, delay) = {
            let s = self.service(name);
            match &s.unit {
                Some(u) => (u.restart.restarts(clean, signal), u.restart_sec),
                None => (false, Duration::ZERO),
            }
        };
        if restart {
            let due = Instant::now() + delay;
            self.set_phase(name, Phase::AutoRestart { due });
            self.event(format_args!(
                "scheduled-restart unit={name} in_ms={}",
                delay.as_millis()
            ));
        } else {
            let s = self.service(name);
            s.flush_n_restarts = true;
            let p = if clean { Phase::Dead } else { Phase::Failed };
            self.set_phase(name, p);
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        let names: Vec<String> = self.services.keys().cloned().collect();
        for n in names {
            match self.service(&n).phase {
                Phase::AutoRestart { due } if due <= now => {
                    self.service(&n).n_restarts += 1;
                    self.start(&n);
                }
                Phase::Stopping {
                    pid,
                    deadline,
                    killed: false,
                    then_start,
                } if deadline <= now => {
                    let _ = kill(Pid::from_raw(-(pid as i32)), Signal::SIGKILL);
                    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                    self.event(format_args!(
                        "stop-timeout unit={n} pid={pid} sending=SIGKILL"
                    ));
                    self.service(&n).phase = Phase::Stopping {
                        pid,
                        deadline,
                        killed: true,
                        then_start,
                    };
                }
                _ => {}
            }
        }
    }

    /// Start (the unit must be known). Completes waiting start and restart jobs.
    fn start(&mut self, name: &str) {
        let root = self.root().to_path_buf();
        let kubelet_opts = self.opts.kubelet_options_file.clone();
        let Some(unit) = self.service(name).unit.clone() else {
            return;
        };
        let now = Instant::now();
        {
            let s = self.service(name);
            if s.flush_n_restarts {
                s.n_restarts = 0;
                s.flush_n_restarts = false;
            }
            if !unit.start_limit_interval.is_zero() {
                while s
                    .starts
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > unit.start_limit_interval)
                {
                    s.starts.pop_front();
                }
                if s.starts.len() >= unit.start_limit_burst as usize {
                    s.result = "start-limit-hit";
                    s.flush_n_restarts = true;
                    self.set_phase(name, Phase::Failed);
                    self.event(format_args!("start-limit-hit unit={name}"));
                    let msg = format!("Job for {name} failed because start of the service was attempted too often.\nSee \"systemctl status {name}\" and \"journalctl -xeu {name}\" for details.\nTo force a start use \"systemctl reset-failed {name}\" followed by \"systemctl start {name}\" again.\n");
                    self.complete(name, &[JobKind::Start, JobKind::Restart], 1, &msg);
                    return;
                }
            }
            s.starts.push_back(now);
        }
        // Environment: the manager's, Environment=, then EnvironmentFile= in order (later
        // files win), read now.
        self.invocations += 1;
        let invocation = format!(
            "{:016x}{:016x}",
            monotonic_us() ^ 0x6b68_6172_6465_6e00,
            (std::process::id() as u64) << 32 | self.invocations
        );
        let mut env: Vec<(String, String)> = vec![
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
            ("INVOCATION_ID".into(), invocation.clone()),
            (ROOT_ENV.into(), root.display().to_string()),
        ];
        if let Some(f) = &kubelet_opts {
            env.push((KUBELET_OPTS_ENV.into(), f.display().to_string()));
        }
        let set = |env: &mut Vec<(String, String)>, k: String, v: String| {
            env.retain(|(n, _)| n != &k);
            env.push((k, v));
        };
        for (k, v) in &unit.environment {
            set(&mut env, k.clone(), v.clone());
        }
        let mut env_error = None;
        for ef in &unit.environment_files {
            match fs::read_to_string(unit::under_root(&root, &ef.path)) {
                Ok(text) => {
                    let (vars, _invalid) = unit::parse_env_file(&text);
                    for (k, v) in vars {
                        set(&mut env, k, v);
                    }
                }
                Err(e) if ef.optional && e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    env_error = Some(format!(
                        "Failed to load environment files: {}: {e}",
                        ef.path
                    ));
                    break;
                }
            }
        }
        let stamp = Stamp::now();
        {
            let s = self.service(name);
            s.invocation_id = invocation;
            s.exec_main_start = Some(stamp);
            s.exec_main_exit = None;
            s.exec_main_code = 0;
            s.exec_main_status = 0;
        }
        if let Some(e) = env_error {
            self.event(format_args!("start-failed unit={name} error={e:?}"));
            self.service(name).result = "resources";
            let msg = format!("Job for {name} failed because of unavailable resources or another system error.\nSee \"systemctl status {name}\" and \"journalctl -xeu {name}\" for details.\n");
            self.complete(name, &[JobKind::Start, JobKind::Restart], 1, &msg);
            self.after_exit(name, false, false);
            return;
        }
        let Some(exec) = unit.exec_start.clone() else {
            self.service(name).result = "resources";
            let msg = format!("Failed to start {name}: Unit {name} has a bad unit file setting.\n");
            self.complete(name, &[JobKind::Start, JobKind::Restart], 1, &msg);
            self.set_phase(name, Phase::Failed);
            return;
        };
        let argv = unit::expand_argv(&exec.argv, &env);
        let exe = unit::under_root(&root, &exec.path);
        let journal = root.join(format!("var/log/journal/{name}.log"));
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal)
            .and_then(|f| Ok((f.try_clone()?, f)));
        let cwd = unit
            .working_directory
            .as_deref()
            .map(|w| unit::under_root(&root, w))
            .unwrap_or_else(|| root.clone());
        let mut cmd = Command::new(&exe);
        if let Some(a0) = argv.first() {
            cmd.arg0(a0);
        }
        cmd.args(argv.iter().skip(1))
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(&cwd)
            .stdin(Stdio::null())
            .process_group(0);
        match out {
            Ok((o, e)) => {
                cmd.stdout(o).stderr(e);
            }
            Err(_) => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        die_with_parent(&mut cmd, Signal::SIGKILL);
        self.service(name).last_argv = argv.clone();
        match cmd.spawn() {
            Ok(child) => {
                let pid = child.id();
                drop(child);
                self.service(name).exec_main_pid = pid;
                self.set_phase(name, Phase::Running { pid });
                self.event(format_args!("started unit={name} pid={pid} argv={argv:?}"));
            }
            Err(e) => {
                // systemd forks first: the start job succeeds and the child exits 203/EXEC.
                self.event(format_args!(
                    "exec-failed unit={name} path={} error={e:?}",
                    exec.path
                ));
                let s = self.service(name);
                s.exec_main_pid = 0;
                s.exec_main_exit = Some(Stamp::now());
                s.exec_main_code = 1;
                s.exec_main_status = 203;
                s.result = "exit-code";
                self.after_exit(name, false, false);
            }
        }
        self.complete(name, &[JobKind::Start, JobKind::Restart], 0, "");
    }

    fn complete(&mut self, name: &str, kinds: &[JobKind], code: i32, stderr: &str) {
        let s = self.service(name);
        let (done, keep): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut s.waiters)
            .into_iter()
            .partition(|w| kinds.contains(&w.kind));
        s.waiters = keep;
        for w in done {
            let _ = w
                .reply
                .send(ctl(code, String::new(), format!("{}{stderr}", w.stderr)));
        }
    }

    fn begin_stop(&mut self, name: &str, then_start: bool) {
        let timeout = self
            .service(name)
            .unit
            .as_ref()
            .map(|u| u.timeout_stop)
            .unwrap_or(Duration::from_secs(90));
        match self.service(name).phase {
            Phase::Running { pid } => {
                let _ = kill(Pid::from_raw(-(pid as i32)), Signal::SIGTERM);
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
                let _ = kill(Pid::from_raw(-(pid as i32)), Signal::SIGCONT);
                self.event(format_args!("stopping unit={name} pid={pid}"));
                let deadline = Instant::now()
                    .checked_add(timeout)
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
                self.set_phase(
                    name,
                    Phase::Stopping {
                        pid,
                        deadline,
                        killed: false,
                        then_start,
                    },
                );
            }
            Phase::Stopping {
                pid,
                deadline,
                killed,
                ..
            } => {
                self.service(name).phase = Phase::Stopping {
                    pid,
                    deadline,
                    killed,
                    then_start,
                };
            }
            Phase::AutoRestart { .. } => {
                self.service(name).flush_n_restarts = true;
                self.set_phase(name, Phase::Dead);
            }
            Phase::Dead | Phase::Failed => {}
        }
    }

    /// Warning systemctl prints when the unit's files changed since they were loaded.
    fn changed_on_disk(&mut self, name: &str) -> String {
        let root = self.root().to_path_buf();
        let s = self.service(name);
        let Some(u) = &s.unit else {
            return String::new();
        };
        let fresh = unit::load_service(&root, name).ok().flatten();
        let same = fresh.is_some_and(|f| f.sources == u.sources);
        if same {
            String::new()
        } else {
            format!("Warning: The unit file, source configuration file or drop-ins of {name} changed on disk. Run 'systemctl daemon-reload' to reload units.\n")
        }
    }

    fn systemctl(&mut self, args: Vec<String>, reply: mpsc::Sender<Response>) {
        let mut props: Vec<String> = Vec::new();
        let mut value_only = false;
        let mut quiet = false;
        let mut no_block = false;
        let mut words: Vec<String> = Vec::new();
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "-p" | "--property" => match it.next() {
                    Some(v) => props.extend(v.split(',').map(str::to_string)),
                    None => {
                        let _ = reply.send(ctl(
                            1,
                            String::new(),
                            format!(
                                "systemctl: option requires an argument -- '{}'\n",
                                a.trim_start_matches('-')
                            ),
                        ));
                        return;
                    }
                },
                "-P" => match it.next() {
                    Some(v) => {
                        props.extend(v.split(',').map(str::to_string));
                        value_only = true;
                    }
                    None => {
                        let _ = reply.send(ctl(
                            1,
                            String::new(),
                            "systemctl: option requires an argument -- 'P'\n".into(),
                        ));
                        return;
                    }
                },
                "--value" => value_only = true,
                "-q" | "--quiet" => quiet = true,
                "--no-block" => no_block = true,
                "--no-pager" | "--no-legend" | "--system" | "--full" | "-l" | "-a" | "--all"
                | "--no-ask-password" | "--plain" => {}
                "--version" => {
                    let _ = reply.send(ctl(
                        0,
                        "systemd 252 (252.30-1~deb12u2) kharden-testnode emulator\n".into(),
                        String::new(),
                    ));
                    return;
                }
                s if s.starts_with("--property=") => {
                    props.extend(s["--property=".len()..].split(',').map(str::to_string))
                }
                s if s.starts_with("-p") && s.len() > 2 => {
                    props.extend(s[2..].split(',').map(str::to_string))
                }
                s if s.starts_with('-') && s.len() > 1 => {
                    let _ = reply.send(ctl(
                        1,
                        String::new(),
                        format!("systemctl: unrecognized option '{s}'\n"),
                    ));
                    return;
                }
                _ => words.push(a),
            }
        }
        let Some(verb) = words.first().cloned() else {
            let _ = reply.send(ctl(1, String::new(), "Too few arguments.\n".into()));
            return;
        };
        let units: Vec<String> = words[1..]
            .iter()
            .map(|u| unit::normalize_unit_name(u))
            .collect();
        let need_units = |reply: &mpsc::Sender<Response>| {
            let _ = reply.send(ctl(1, String::new(), "Too few arguments.\n".into()));
        };
        match verb.as_str() {
            "daemon-reload" | "daemon-reexec" => {
                let names: Vec<String> = self.services.keys().cloned().collect();
                for n in names {
                    self.load(&n);
                }
                self.event(format_args!("daemon-reload"));
                let _ = reply.send(ctl(0, String::new(), String::new()));
            }
            "start" | "stop" | "restart" | "try-restart" | "reload-or-restart" => {
                if units.is_empty() {
                    return need_units(&reply);
                }
                // One unit per job is what kharden uses; several are done in order and the
                // reply comes with the last one.
                let n_units = units.len();
                for (i, name) in units.iter().enumerate() {
                    let last = i + 1 == n_units;
                    let r = if last { Some(reply.clone()) } else { None };
                    self.job(&verb, name, r, no_block);
                }
            }
            "is-active" | "is-failed" => {
                if units.is_empty() {
                    return need_units(&reply);
                }
                let mut out = String::new();
                let mut any = false;
                for u in &units {
                    let state = self.active_state(u);
                    let hit = if verb == "is-active" {
                        state == "active" || state == "reloading"
                    } else {
                        state == "failed"
                    };
                    any |= hit;
                    let _ = writeln!(out, "{state}");
                }
                if quiet {
                    out.clear();
                }
                let _ = reply.send(ctl(if any { 0 } else { 3 }, out, String::new()));
            }
            "is-enabled" => {
                if units.is_empty() {
                    return need_units(&reply);
                }
                let mut out = String::new();
                let mut all = true;
                let mut err = String::new();
                for u in &units {
                    if self.service(u).unit.is_some() {
                        out.push_str("enabled\n");
                    } else {
                        all = false;
                        let _ = writeln!(
                            err,
                            "Failed to get unit file state for {u}: No such file or directory"
                        );
                    }
                }
                if quiet {
                    out.clear();
                }
                let _ = reply.send(ctl(if all { 0 } else { 1 }, out, err));
            }
            "reset-failed" => {
                let targets: Vec<String> = if units.is_empty() {
                    self.services.keys().cloned().collect()
                } else {
                    units
                };
                for u in targets {
                    let s = self.service(&u);
                    s.starts.clear();
                    s.n_restarts = 0;
                    if s.phase == Phase::Failed {
                        s.phase = Phase::Dead;
                        s.result = "success";
                    }
                }
                let _ = reply.send(ctl(0, String::new(), String::new()));
            }
            "show" => {
                if units.is_empty() {
                    // The manager's own properties.
                    let mut out = String::new();
                    for (k, v) in [
                        ("Version", "252.30-1~deb12u2"),
                        ("SystemState", "running"),
                        ("DefaultRestartUSec", "100ms"),
                        ("DefaultStartLimitIntervalUSec", "10s"),
                        ("DefaultStartLimitBurst", "5"),
                    ] {
                        if props.is_empty() || props.iter().any(|p| p == k) {
                            if value_only {
                                let _ = writeln!(out, "{v}");
                            } else {
                                let _ = writeln!(out, "{k}={v}");
                            }
                        }
                    }
                    let _ = reply.send(ctl(0, out, String::new()));
                    return;
                }
                let targets = units;
                let mut out = String::new();
                for (i, u) in targets.iter().enumerate() {
                    if i > 0 {
                        out.push('\n');
                    }
                    for (k, v) in self.properties(u) {
                        if !props.is_empty() && !props.iter().any(|p| p == &k) {
                            continue;
                        }
                        if value_only {
                            let _ = writeln!(out, "{v}");
                        } else {
                            let _ = writeln!(out, "{k}={v}");
                        }
                    }
                }
                let _ = reply.send(ctl(0, out, String::new()));
            }
            "status" => {
                if units.is_empty() {
                    return need_units(&reply);
                }
                let (code, out, err) = self.status(&units[0]);
                let _ = reply.send(ctl(code, out, err));
            }
            "cat" => {
                if units.is_empty() {
                    return need_units(&reply);
                }
                let mut out = String::new();
                let mut err = String::new();
                for u in &units {
                    match &self.service(u).unit {
                        Some(unit) => {
                            for (i, (file, text)) in unit.sources.iter().enumerate() {
                                if i > 0 {
                                    out.push('\n');
                                }
                                let _ = writeln!(out, "# {file}");
                                out.push_str(text);
                            }
                        }
                        None => {
                            let _ = writeln!(err, "No files found for {u}.");
                        }
                    }
                }
                let code = if err.is_empty() { 0 } else { 1 };
                let _ = reply.send(ctl(code, out, err));
            }
            other => {
                let _ = reply.send(ctl(
                    1,
                    String::new(),
                    format!("Unknown command verb '{other}'.\n"),
                ));
            }
        }
    }

    fn job(
        &mut self,
        verb: &str,
        name: &str,
        reply: Option<mpsc::Sender<Response>>,
        no_block: bool,
    ) {
        let send = |reply: &Option<mpsc::Sender<Response>>, code: i32, err: String| {
            if let Some(r) = reply {
                let _ = r.send(ctl(code, String::new(), err));
            }
        };
        if self.service(name).unit.is_none() {
            // A unit whose file disappeared may still be loaded from before: systemd keeps the
            // old definition until daemon-reload, so only an unknown name is refused.
            let what = match verb {
                "stop" => format!("Failed to stop {name}: Unit {name} not loaded.\n"),
                "try-restart" => format!("Failed to try-restart {name}: Unit {name} not found.\n"),
                v => format!("Failed to {v} {name}: Unit {name} not found.\n"),
            };
            let why = self.service(name).load_error.clone();
            let what = match why {
                Some(e) => format!(
                    "Failed to {verb} {name}: Unit {name} has a bad unit file setting.\n{e}\n"
                ),
                None => what,
            };
            return send(&reply, 5, what);
        }
        let warning = if matches!(
            verb,
            "start" | "restart" | "try-restart" | "reload-or-restart"
        ) {
            self.changed_on_disk(name)
        } else {
            String::new()
        };
        self.event(format_args!("job verb={verb} unit={name}"));
        let phase = self.service(name).phase;
        let wait = |m: &mut Manager, kind: JobKind| {
            if let Some(r) = reply.clone() {
                if no_block {
                    let _ = r.send(ctl(0, String::new(), warning.clone()));
                } else {
                    m.service(name).waiters.push(Waiter {
                        kind,
                        reply: r,
                        stderr: warning.clone(),
                    });
                }
            }
        };
        match (verb, phase) {
            ("start", Phase::Running { .. }) => send(&reply, 0, warning.clone()),
            ("start", Phase::Stopping { .. }) => {
                wait(self, JobKind::Start);
                self.begin_stop(name, true);
            }
            ("start", _) => {
                wait(self, JobKind::Start);
                self.start(name);
            }
            ("stop", Phase::Running { .. }) | ("stop", Phase::Stopping { .. }) => {
                wait(self, JobKind::Stop);
                self.begin_stop(name, false);
            }
            ("stop", _) => {
                self.begin_stop(name, false);
                send(&reply, 0, String::new());
            }
            ("try-restart", Phase::Dead | Phase::Failed) => send(&reply, 0, warning.clone()),
            (_, Phase::Running { .. }) | (_, Phase::Stopping { .. }) => {
                wait(self, JobKind::Restart);
                self.begin_stop(name, true);
            }
            _ => {
                // A restart job is a stop then a start: the stop ends any pending automatic
                // restart, and the counter of automatic restarts starts again from zero.
                wait(self, JobKind::Restart);
                self.service(name).flush_n_restarts = true;
                self.start(name);
            }
        }
    }

    fn active_state(&mut self, name: &str) -> &'static str {
        let s = self.service(name);
        if s.unit.is_none() {
            return "inactive";
        }
        match s.phase {
            Phase::Dead => "inactive",
            Phase::Failed => "failed",
            Phase::Running { .. } => "active",
            Phase::Stopping { .. } => "deactivating",
            Phase::AutoRestart { .. } => "activating",
        }
    }

    fn properties(&mut self, name: &str) -> Vec<(String, String)> {
        let active = self.active_state(name);
        let s = self.service(name);
        let ts = |t: Option<Stamp>| {
            t.map(|t| unit::format_timestamp(t.real))
                .unwrap_or_else(|| "n/a".into())
        };
        let mono = |t: Option<Stamp>| t.map(|t| t.mono_us).unwrap_or(0).to_string();
        let sub = match (&s.unit, s.phase) {
            (None, _) => "dead",
            (_, Phase::Dead) => "dead",
            (_, Phase::Failed) => "failed",
            (_, Phase::Running { .. }) => "running",
            (_, Phase::Stopping { killed: false, .. }) => "stop-sigterm",
            (_, Phase::Stopping { killed: true, .. }) => "stop-sigkill",
            (_, Phase::AutoRestart { .. }) => "auto-restart",
        };
        let main_pid = match s.phase {
            Phase::Running { pid } | Phase::Stopping { pid, .. } => pid,
            _ => 0,
        };
        let mut p: Vec<(String, String)> = Vec::new();
        let mut add = |k: &str, v: String| p.push((k.to_string(), v));
        let u = s.unit.as_ref();
        add(
            "Type",
            u.map(|u| u.service_type.clone())
                .unwrap_or_else(|| "simple".into()),
        );
        add(
            "Restart",
            u.map(|u| u.restart.as_str()).unwrap_or("no").into(),
        );
        add("NotifyAccess", "none".into());
        add(
            "RestartUSec",
            unit::format_timespan(
                u.map(|u| u.restart_sec)
                    .unwrap_or(Duration::from_millis(100)),
            ),
        );
        add(
            "TimeoutStopUSec",
            unit::format_timespan(u.map(|u| u.timeout_stop).unwrap_or(Duration::from_secs(90))),
        );
        add("Result", s.result.into());
        add("MainPID", main_pid.to_string());
        add("ControlPID", "0".into());
        add("NRestarts", s.n_restarts.to_string());
        add("ExecMainStartTimestamp", ts(s.exec_main_start));
        add("ExecMainStartTimestampMonotonic", mono(s.exec_main_start));
        add("ExecMainExitTimestamp", ts(s.exec_main_exit));
        add("ExecMainExitTimestampMonotonic", mono(s.exec_main_exit));
        add("ExecMainPID", s.exec_main_pid.to_string());
        add("ExecMainCode", s.exec_main_code.to_string());
        add("ExecMainStatus", s.exec_main_status.to_string());
        if let Some(e) = u.and_then(|u| u.exec_start.as_ref()) {
            let pid = if s.exec_main_start.is_some() {
                s.exec_main_pid
            } else {
                0
            };
            let code = match s.exec_main_code {
                0 => "(null)",
                1 => "exited",
                2 => "killed",
                _ => "dumped",
            };
            add(
                "ExecStart",
                format!(
                    "{{ path={} ; argv[]={} ; ignore_errors={} ; start_time=[{}] ; stop_time=[{}] ; pid={pid} ; code={code} ; status={}/{} }}",
                    e.path,
                    e.argv.join(" "),
                    if e.ignore_errors { "yes" } else { "no" },
                    ts(s.exec_main_start),
                    ts(s.exec_main_exit),
                    s.exec_main_status,
                    if s.exec_main_code == 1 { "0" } else { "" }
                ),
            );
        }
        if let Some(u) = u {
            let env: Vec<String> = u
                .environment
                .iter()
                .map(|(k, v)| {
                    let a = format!("{k}={v}");
                    if a.contains(char::is_whitespace) {
                        format!("\"{a}\"")
                    } else {
                        a
                    }
                })
                .collect();
            add("Environment", env.join(" "));
            for f in &u.environment_files {
                add(
                    "EnvironmentFiles",
                    format!(
                        "{} (ignore_errors={})",
                        f.path,
                        if f.optional { "yes" } else { "no" }
                    ),
                );
            }
        }
        add("Id", s.name.clone());
        add("Names", s.name.clone());
        add(
            "Description",
            u.map(|u| u.description.clone())
                .unwrap_or_else(|| s.name.clone()),
        );
        add(
            "LoadState",
            match (u, &s.load_error) {
                (Some(_), _) => "loaded",
                (None, Some(_)) => "bad-setting",
                (None, None) => "not-found",
            }
            .into(),
        );
        add("ActiveState", active.into());
        add("SubState", sub.into());
        add(
            "FragmentPath",
            u.map(|u| u.fragment.clone()).unwrap_or_default(),
        );
        add(
            "DropInPaths",
            u.map(|u| u.dropins.join(" ")).unwrap_or_default(),
        );
        add(
            "UnitFileState",
            if u.is_some() { "enabled" } else { "" }.into(),
        );
        add("StateChangeTimestamp", ts(s.state_change));
        add("StateChangeTimestampMonotonic", mono(s.state_change));
        add("InactiveExitTimestamp", ts(s.inactive_exit));
        add("InactiveExitTimestampMonotonic", mono(s.inactive_exit));
        add("ActiveEnterTimestamp", ts(s.active_enter));
        add("ActiveEnterTimestampMonotonic", mono(s.active_enter));
        add("ActiveExitTimestamp", ts(s.active_exit));
        add("ActiveExitTimestampMonotonic", mono(s.active_exit));
        add("InactiveEnterTimestamp", ts(s.inactive_enter));
        add("InactiveEnterTimestampMonotonic", mono(s.inactive_enter));
        add("CanStart", "yes".into());
        add("CanStop", "yes".into());
        add(
            "StartLimitIntervalUSec",
            unit::format_timespan(
                u.map(|u| u.start_limit_interval)
                    .unwrap_or(Duration::from_secs(10)),
            ),
        );
        add(
            "StartLimitBurst",
            u.map(|u| u.start_limit_burst).unwrap_or(5).to_string(),
        );
        add("InvocationID", s.invocation_id.clone());
        p
    }

    fn status(&mut self, name: &str) -> (i32, String, String) {
        let active = self.active_state(name);
        let props: BTreeMap<String, String> = self.properties(name).into_iter().collect();
        let s = self.service(name);
        let Some(u) = s.unit.clone() else {
            return (
                4,
                String::new(),
                format!("Unit {name} could not be found.\n"),
            );
        };
        let get = |k: &str| props.get(k).cloned().unwrap_or_default();
        let mut out = String::new();
        let dot = if active == "active" { "●" } else { "○" };
        let _ = writeln!(out, "{dot} {name} - {}", u.description);
        let _ = writeln!(
            out,
            "     Loaded: loaded ({}; enabled; preset: enabled)",
            u.fragment
        );
        if !u.dropins.is_empty() {
            let mut first = true;
            for d in &u.dropins {
                let (dir, file) = d.rsplit_once('/').unwrap_or(("", d));
                if first {
                    let _ = writeln!(out, "    Drop-In: {dir}");
                    first = false;
                }
                let _ = writeln!(out, "             └─{file}");
            }
        }
        let since = match active {
            "active" => get("ActiveEnterTimestamp"),
            _ => get("StateChangeTimestamp"),
        };
        let _ = writeln!(
            out,
            "     Active: {active} ({}) since {since}",
            get("SubState")
        );
        if get("MainPID") != "0" {
            let _ = writeln!(out, "   Main PID: {} (kubelet)", get("MainPID"));
        } else if s.exec_main_start.is_some() {
            let _ = writeln!(
                out,
                "    Process: {} ExecStart={} (code={}, status={})",
                s.exec_main_pid,
                u.exec_start.as_ref().map(|e| e.path.as_str()).unwrap_or(""),
                match s.exec_main_code {
                    1 => "exited",
                    2 => "killed",
                    _ => "dumped",
                },
                s.exec_main_status
            );
        }
        let code = if active == "active" { 0 } else { 3 };
        (code, out, String::new())
    }

    fn shutdown(&mut self) {
        self.event(format_args!("manager-stopping"));
        let names: Vec<String> = self.services.keys().cloned().collect();
        for n in &names {
            self.begin_stop(n, false);
        }
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end
            && self
                .services
                .values()
                .any(|s| matches!(s.phase, Phase::Stopping { .. }))
        {
            self.reap();
            std::thread::sleep(Duration::from_millis(20));
        }
        for s in self.services.values() {
            if let Phase::Stopping { pid, .. } = s.phase {
                let _ = kill(Pid::from_raw(-(pid as i32)), Signal::SIGKILL);
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
        // Pods: SIGTERM their process groups, SIGKILL after the grace period.
        let running: Vec<u32> = self
            .containers
            .values()
            .filter(|c| c.info.exited.is_none())
            .map(|c| c.info.pid)
            .collect();
        for pid in &running {
            let _ = kill(Pid::from_raw(-(*pid as i32)), Signal::SIGTERM);
        }
        let end = Instant::now() + self.opts.pod_grace_period;
        while Instant::now() < end && self.containers.values().any(|c| c.info.exited.is_none()) {
            self.reap();
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in &running {
            let _ = kill(Pid::from_raw(-(*pid as i32)), Signal::SIGKILL);
        }
        // Everything else that is (or was reparented to be) our child.
        for _ in 0..50 {
            let kids = children_of(std::process::id());
            if kids.is_empty() {
                break;
            }
            for k in kids {
                let _ = kill(Pid::from_raw(k as i32), Signal::SIGKILL);
            }
            self.reap();
            std::thread::sleep(Duration::from_millis(20));
        }
        self.reap();
        self.event(format_args!("manager-stopped"));
    }
}

/// PIDs whose parent is `ppid` (from /proc).
pub fn children_of(ppid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // The command name is in parentheses and may contain spaces: parse after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // fields[0] = state, fields[1] = ppid
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(ppid) {
            out.push(pid);
        }
    }
    out
}

/// `PR_SET_PDEATHSIG` in the child, and refuse to start if the parent is already gone. The
/// child starts with no signal blocked, whatever its parent blocks (`kharden-testnode worker`
/// blocks SIGTERM to wait for it: a manager inheriting that mask could not stop its kubelet).
pub(crate) fn die_with_parent(cmd: &mut Command, sig: Signal) {
    let parent = nix::unistd::getpid();
    // SAFETY: runs in the forked child before exec; prctl, sigprocmask and getppid are plain
    // syscalls (async-signal-safe), nothing allocates.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::signal::SigSet::empty()
                .thread_set_mask()
                .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
            nix::sys::prctl::set_pdeathsig(sig)
                .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
            // The parent may have died between fork and prctl.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other("parent exited"));
            }
            Ok(())
        });
    }
}

/// Find the service manager's socket for a fake `systemctl` invoked as `argv0`:
/// `$KHARDEN_TESTNODE_SYSTEMD_SOCKET`, else `run/systemd/private` under an ancestor (up to four
/// levels) of the directory `argv0` was found in (`<root>/usr/bin/systemctl` →
/// `<root>/run/systemd/private`). The link is not resolved: it points at the real binary.
pub fn find_systemd_socket(argv0: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(SOCKET_ENV) {
        return Some(PathBuf::from(p));
    }
    let exe = if argv0.contains('/') {
        PathBuf::from(argv0)
    } else {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|d| d.join(argv0))
            .find(|p| p.exists())?
    };
    let mut dir = exe.parent()?.to_path_buf();
    for _ in 0..4 {
        let cand = dir.join("run/systemd/private");
        if cand.exists() {
            return Some(cand);
        }
        dir = dir.parent()?.to_path_buf();
    }
    None
}

/// The fake `systemctl`: send the command line to the service manager, print its answer,
/// return its exit code.
pub fn systemctl_main(argv: &[String]) -> i32 {
    let argv0 = argv.first().map(String::as_str).unwrap_or("systemctl");
    let not_booted = || {
        eprintln!("System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down");
        1
    };
    let Some(sock) = find_systemd_socket(argv0) else {
        return not_booted();
    };
    match ipc::call(
        &sock,
        &Request::Systemctl {
            args: argv[1..].to_vec(),
        },
        None,
    ) {
        Ok(Response::Systemctl {
            code,
            stdout,
            stderr,
        }) => {
            print!("{stdout}");
            eprint!("{stderr}");
            let _ = std::io::stdout().flush();
            code
        }
        Ok(other) => {
            eprintln!("Failed to connect to bus: unexpected answer {other:?}");
            1
        }
        Err(ipc::IpcError::Connect { .. }) => not_booted(),
        Err(e) => {
            eprintln!("Failed to connect to bus: {e}");
            1
        }
    }
}

/// Entry point for `systemd ARGS` (the service manager process).
pub fn systemd_main(args: &[String]) -> i32 {
    match ServiceManagerOptions::from_args(args) {
        Ok(o) => match run_service_manager(o) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("service manager emulator: {e}");
                1
            }
        },
        Err(e) => {
            eprintln!("service manager emulator: {e}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip() {
        let mut o = ServiceManagerOptions::new("/tmp/x");
        o.start = false;
        o.kubelet_options_file = Some("/tmp/x/k".into());
        o.pod_grace_period = Duration::from_millis(1500);
        let args: Vec<String> = o
            .to_args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(ServiceManagerOptions::from_args(&args).unwrap(), o);
    }

    #[test]
    fn status_strings_like_std() {
        assert_eq!(status_string(1, 0), "exit status: 0");
        assert_eq!(status_string(2, 9), "signal: 9 (SIGKILL)");
    }
}
