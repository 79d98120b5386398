//! A kubelet emulator: the static pod source and a crude container runtime, as processes.
//!
//! Why: kharden's guarantees are about what kubelet does with a manifest directory (it loads
//! every non-dot file, restarts a pod when its file changes, stops it when the file goes,
//! crash-loops a container that exits) and, for kubelet transactions, about what the kubelet
//! does with its own configuration (refuses it and exits, or comes back healthy with it).
//! Tests and `kharden demo` need that behaviour on a machine with no kubelet and no container
//! runtime, with knobs a real kubelet lacks: a configurable delay before it notices a change
//! ("slow to restart") and short back-offs.
//!
//! # Two ways to run it
//! - **Node mode** ([`run_kubelet`], `kharden-testnode kubelet --root DIR ...`, spawned by
//!   [`crate::KubeletProcess`]): the emulator is the whole node. Its options come from
//!   [`KubeletOptions`]; pods are its own children (`PR_SET_PDEATHSIG=SIGKILL`) and stop with it.
//! - **Kubelet-binary mode** ([`kubelet_main`], a process whose `argv[0]` is named `kubelet`,
//!   started by the service-manager emulator from the unit's `ExecStart=`): the emulator is the
//!   kubelet. It loads its configuration like the kubelet ([`crate::kubelet_config`]: `--config`,
//!   `--config-dir`, flags; strict decoding with a lenient fallback; validation) and exits 1 with
//!   the kubelet's message when it refuses it; checks what the kubelet checks while it builds
//!   its dependencies (the kubeconfig, the client CA file, the serving certificate, the kernel
//!   tunables with `protectKernelDefaults`, the container runtime endpoint); writes its effective
//!   configuration to [`effective_config_path`]; serves `GET /healthz` → `200 ok` on
//!   `healthzBindAddress:healthzPort`; and runs the static pods of `staticPodPath` through the
//!   container runtime of the service manager ([`crate::systemd`]), so that they survive its own
//!   restart: after a restart it lists the running containers and adopts those whose pod hash
//!   is still the manifest's (a changed manifest is restarted, a removed one stopped), as the
//!   kubelet does with containerd. Its emulator knobs come from the file named by
//!   `$KHARDEN_TESTNODE_KUBELET_OPTS`, the simulated root from `$KHARDEN_TESTNODE_ROOT`: every
//!   host path it reads (flags, config, manifests) is resolved under that root.
//!
//! What it does, per file in the manifests directory (polled every `poll_interval`):
//! - ignores names starting with `.` (as kubelet does) and non-regular files; every other file
//!   is a pod, whatever its extension (kubelet loads `x.yaml.bak` too);
//! - parses it with serde_yaml; a file that does not parse, is not `kind: Pod` or has no
//!   `command`/`args` in its first container counts as no pod (kubelet drops a pod whose file
//!   stops parsing), and the event log says why;
//! - runs the FIRST container's `command` + `args` as a process with the literal `env`
//!   values, `argv[0]` exactly as written (resolved against `path` for exec only, so
//!   `/proc/PID/cmdline` shows what the manifest says), in its own process group,
//!   stdout+stderr appended to `<log_dir>/<file name>.log`;
//! - restarts the process when the parsed pod changes (a comment-only edit does not restart it,
//!   as kubelet's pod hash does not change), after `restart_delay`: SIGTERM to the process
//!   group, SIGKILL after `grace_period`;
//! - restarts a process that exits (restartPolicy Always) after an exponential back-off:
//!   `backoff_initial`, doubled each time, capped at `backoff_max`, reset when the process ran
//!   for `backoff_reset_after`;
//! - stops the process when the file disappears.
//!
//! On stop (SIGTERM/SIGINT/SIGHUP to the emulator, the `stop` flag, or `stop_file` appearing)
//! it returns; in node mode it first stops every pod the same way (in kubelet-binary mode the
//! pods keep running, as containers do when the kubelet stops).
//!
//! One event per line goes to `event_log` (or stderr): `<unix secs.millis> <event> pod=<file>
//! key=value...`, e.g. `1712345678.123 started pod=kube-apiserver.yaml pid=4242 argv=[...]`.
//!
//! Caveat: `PR_SET_PDEATHSIG` fires when the *thread* that spawned the child exits. In node mode
//! the loop spawns every child from the thread that called [`run_kubelet`], which lives until
//! the emulator stops, so this holds; do not call it from a short-lived thread.

use crate::ipc::{self, ContainerInfo, Request, Response, RunContainer};
use crate::kubelet_config::{self, ConfigError, Loaded};
use crate::systemd::{self, die_with_parent};
use crate::unit::under_root;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
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
    /// Default `<root>/etc/kubernetes/manifests`. Node mode only: in kubelet-binary mode the
    /// manifests are `staticPodPath`'s.
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
    /// Kubelet-binary mode only: wait this long after start-up before serving `/healthz` (a
    /// kubelet slow to become healthy).
    pub healthz_delay: Duration,
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
            healthz_delay: Duration::ZERO,
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
        push("--healthz-delay-ms", ms(self.healthz_delay));
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
                "--healthz-delay-ms" => o.healthz_delay = ms(&v)?,
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

fn install_signal_handlers() -> Result<(), nix::Error> {
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
    Ok(())
}

/// Run the emulator until SIGTERM/SIGINT/SIGHUP or `opts.stop_file` appears. Installs
/// process-wide handlers for those signals: meant for a dedicated process (`kharden __kubelet`
/// or the `kharden-testnode kubelet` binary).
pub fn run_kubelet(opts: KubeletOptions) -> Result<(), KubeletError> {
    install_signal_handlers()?;
    run_kubelet_until(opts, &SIGNALLED)
}

/// Run the emulator until `stop` becomes true or `opts.stop_file` appears (no signal handlers
/// are installed). The calling thread must live until this returns (see module docs).
pub fn run_kubelet_until(opts: KubeletOptions, stop: &AtomicBool) -> Result<(), KubeletError> {
    let manifests = opts.manifests_dir();
    let mut k = Kubelet::new(opts, Some(manifests), Box::new(LocalRuntime::default()))?;
    k.event(
        None,
        "emulator-started",
        format_args!("pid={}", std::process::id()),
    );
    k.run(stop);
    k.shutdown(true);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Container runtimes
// ---------------------------------------------------------------------------------------------

/// What to run for a pod.
#[derive(Debug, Clone)]
struct SpawnSpec {
    exe: PathBuf,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: PathBuf,
    log: PathBuf,
}

/// Where pods run: as the emulator's children (node mode) or in the service manager's runtime
/// (kubelet-binary mode).
trait Runtime {
    fn start(&mut self, name: &str, hash: &str, spec: &SpawnSpec) -> Result<u32, String>;
    /// Fetch the state of every container (once per loop).
    fn refresh(&mut self);
    /// `Some(status)` once `pid` has exited (the container is then forgotten).
    fn exited(&mut self, pid: u32) -> Option<String>;
    /// Containers already running when the emulator starts (to adopt).
    fn existing(&mut self) -> Vec<ContainerInfo>;
    /// Forget exited containers that no pod tracks (left by a previous kubelet).
    fn sweep(&mut self, _tracked: &[u32]) {}
}

#[derive(Default)]
struct LocalRuntime {
    children: BTreeMap<u32, Child>,
}

impl Runtime for LocalRuntime {
    fn start(&mut self, _name: &str, _hash: &str, s: &SpawnSpec) -> Result<u32, String> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&s.log)
            .map_err(|e| format!("opening {}: {e}", s.log.display()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("opening {}: {e}", s.log.display()))?;
        let mut cmd = Command::new(&s.exe);
        if let Some(a0) = s.argv.first() {
            cmd.arg0(a0);
        }
        cmd.args(s.argv.iter().skip(1))
            .env_clear()
            .envs(s.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .current_dir(&s.cwd);
        die_with_parent(&mut cmd, Signal::SIGKILL);
        let child = cmd
            .spawn()
            .map_err(|e| format!("exec {}: {e}", s.exe.display()))?;
        let pid = child.id();
        self.children.insert(pid, child);
        Ok(pid)
    }

    fn refresh(&mut self) {}

    fn exited(&mut self, pid: u32) -> Option<String> {
        let child = self.children.get_mut(&pid)?;
        let status = match child.try_wait() {
            Ok(Some(s)) => s.to_string(),
            Ok(None) => return None,
            Err(_) => "?".to_string(),
        };
        self.children.remove(&pid);
        Some(status)
    }

    fn existing(&mut self) -> Vec<ContainerInfo> {
        Vec::new()
    }
}

struct RemoteRuntime {
    socket: PathBuf,
    cache: BTreeMap<u32, ContainerInfo>,
}

impl RemoteRuntime {
    fn call(&self, req: &Request) -> Result<Response, String> {
        ipc::call(&self.socket, req, Some(Duration::from_secs(30))).map_err(|e| e.to_string())
    }
}

impl Runtime for RemoteRuntime {
    fn start(&mut self, name: &str, hash: &str, s: &SpawnSpec) -> Result<u32, String> {
        let req = Request::RunContainer(RunContainer {
            name: name.to_string(),
            hash: hash.to_string(),
            exe: s.exe.clone(),
            argv: s.argv.clone(),
            env: s.env.clone(),
            cwd: s.cwd.clone(),
            log: s.log.clone(),
        });
        match self.call(&req)? {
            Response::Started { pid } => {
                self.cache.insert(
                    pid,
                    ContainerInfo {
                        pid,
                        name: name.to_string(),
                        hash: hash.to_string(),
                        started_mono_ms: systemd::monotonic_us() / 1000,
                        exited: None,
                    },
                );
                Ok(pid)
            }
            Response::Error { message } => Err(message),
            other => Err(format!("unexpected answer {other:?}")),
        }
    }

    fn refresh(&mut self) {
        if let Ok(Response::Containers { containers }) = self.call(&Request::ListContainers) {
            self.cache = containers.into_iter().map(|c| (c.pid, c)).collect();
        }
    }

    fn exited(&mut self, pid: u32) -> Option<String> {
        let status = match self.cache.get(&pid) {
            // Unknown to the runtime: it is gone (removed, or the runtime restarted).
            None => "?".to_string(),
            Some(c) => c.exited.clone()?,
        };
        self.cache.remove(&pid);
        let _ = self.call(&Request::RemoveContainer { pid });
        Some(status)
    }

    fn existing(&mut self) -> Vec<ContainerInfo> {
        self.refresh();
        self.cache.values().cloned().collect()
    }

    fn sweep(&mut self, tracked: &[u32]) {
        let stale: Vec<u32> = self
            .cache
            .values()
            .filter(|c| c.exited.is_some() && !tracked.contains(&c.pid))
            .map(|c| c.pid)
            .collect();
        for pid in stale {
            self.cache.remove(&pid);
            let _ = self.call(&Request::RemoveContainer { pid });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The pod loop
// ---------------------------------------------------------------------------------------------

/// What a file asks for.
#[derive(Debug, Clone, PartialEq)]
struct Desired {
    /// The parsed document, compared to decide whether the pod changed.
    doc: Value,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    working_dir: Option<String>,
    /// The container's `image`: the emulated runtime tells the process with
    /// [`IMAGE_ENV`] (the fake API server answers `/version` with its tag).
    image: Option<String>,
}

/// The environment variable that carries a pod container's `image` into its process.
pub const IMAGE_ENV: &str = "KHARDEN_TESTNODE_IMAGE";

/// The environment variable that sets what the kubelet emulator's `--version` prints
/// (`v1.31.2`; default [`crate::node::DEFAULT_KUBERNETES_VERSION`]).
pub const KUBELET_VERSION_ENV: &str = "KHARDEN_TESTNODE_KUBELET_VERSION";

/// The version the kubelet emulator reports.
pub fn emulated_kubelet_version() -> String {
    std::env::var(KUBELET_VERSION_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| crate::node::DEFAULT_KUBERNETES_VERSION.to_string())
}

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Pod(Box<Desired>),
    Invalid(String),
    Gone,
}

struct Running {
    pid: u32,
    started: Instant,
    hash: String,
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
    manifests: Option<PathBuf>,
    log_dir: PathBuf,
    events: Box<dyn Write>,
    pods: BTreeMap<String, Pod>,
    search_path: OsString,
    rt: Box<dyn Runtime>,
}

/// A stable hash of a pod's parsed document (key order does not matter), so that a restarted
/// kubelet recognises the pods its predecessor started: FNV-1a over a canonical rendering.
fn pod_hash(d: &Desired) -> String {
    fn canon(v: &Value, out: &mut String) {
        match v {
            Value::Mapping(m) => {
                let mut items: Vec<(String, &Value)> = m
                    .iter()
                    .map(|(k, v)| {
                        let mut ks = String::new();
                        canon(k, &mut ks);
                        (ks, v)
                    })
                    .collect();
                items.sort_by(|a, b| a.0.cmp(&b.0));
                out.push('{');
                for (k, v) in items {
                    out.push_str(&k);
                    out.push(':');
                    canon(v, out);
                    out.push(',');
                }
                out.push('}');
            }
            Value::Sequence(s) => {
                out.push('[');
                for v in s {
                    canon(v, out);
                    out.push(',');
                }
                out.push(']');
            }
            Value::String(s) => {
                out.push('"');
                out.push_str(&s.replace('\\', "\\\\").replace('"', "\\\""));
                out.push('"');
            }
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Null => out.push_str("null"),
            Value::Tagged(t) => {
                out.push_str(&t.tag.to_string());
                canon(&t.value, out);
            }
        }
    }
    let mut s = String::new();
    canon(&d.doc, &mut s);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

impl Kubelet {
    fn new(
        opts: KubeletOptions,
        manifests: Option<PathBuf>,
        rt: Box<dyn Runtime>,
    ) -> Result<Kubelet, KubeletError> {
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
            rt,
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

    fn run(&mut self, stop: &AtomicBool) {
        let mut first = true;
        loop {
            if stop.load(Ordering::SeqCst)
                || self.opts.stop_file.as_ref().is_some_and(|f| f.exists())
            {
                break;
            }
            self.scan(first);
            first = false;
            self.step();
            std::thread::sleep(self.opts.poll_interval);
        }
    }

    /// Take over the containers a previous kubelet left running. Each becomes a pod whose file
    /// has not been read yet: the first scan decides (same hash: keep; changed: restart; file
    /// gone: stop).
    fn adopt_existing(&mut self) {
        let now_ms = systemd::monotonic_us() / 1000;
        for c in self.rt.existing() {
            if let Some(status) = c.exited.clone() {
                let _ = self.rt.exited(c.pid);
                self.event(
                    Some(&c.name),
                    "found-exited",
                    format_args!("pid={} status={status}", c.pid),
                );
                continue;
            }
            let age = Duration::from_millis(now_ms.saturating_sub(c.started_mono_ms));
            let started = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
            if let Some(old) = self.pods.get(&c.name).and_then(|p| p.running.as_ref()) {
                // Two containers for one pod (a kubelet killed mid-restart): keep the newest.
                let older = old.pid;
                let _ = kill(Pid::from_raw(-(older as i32)), Signal::SIGKILL);
            }
            self.event(
                Some(&c.name),
                "found-running",
                format_args!("pid={} hash={}", c.pid, c.hash),
            );
            self.pods.insert(
                c.name.clone(),
                Pod {
                    seen: Seen::Invalid("not read yet".into()),
                    pending: None,
                    desired: None,
                    running: Some(Running {
                        pid: c.pid,
                        started,
                        hash: c.hash.clone(),
                    }),
                    restarts: 0,
                    next_start: Instant::now(),
                },
            );
        }
    }

    /// Read the directory and record what changed.
    fn scan(&mut self, first: bool) {
        let mut found: BTreeMap<String, Seen> = BTreeMap::new();
        let listing = match &self.manifests {
            Some(dir) => fs::read_dir(dir).map_err(|e| (dir.clone(), e)),
            None => Err((
                PathBuf::new(),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )),
        };
        match listing {
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
            Err((dir, e)) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    let dir = dir.display().to_string();
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
        self.rt.refresh();
        let names: Vec<String> = self.pods.keys().cloned().collect();
        for name in names {
            // Due change?
            let due = self
                .pods
                .get(&name)
                .and_then(|p| p.pending.as_ref())
                .is_some_and(|(_, d)| *d <= now);
            if due {
                // The running container already runs this very pod (adopted after a kubelet
                // restart, or the file went back to what runs): keep it.
                let keep = self.pods.get(&name).is_some_and(|p| {
                    match (p.pending.as_ref(), p.running.as_ref()) {
                        (Some((Seen::Pod(d), _)), Some(r)) => pod_hash(d) == r.hash,
                        _ => false,
                    }
                });
                if keep {
                    let pid = self
                        .pods
                        .get(&name)
                        .and_then(|p| p.running.as_ref())
                        .map(|r| r.pid)
                        .unwrap_or(0);
                    self.event(Some(&name), "adopted", format_args!("pid={pid}"));
                } else {
                    self.stop_pod(&name, "manifest changed");
                }
                if let Some(p) = self.pods.get_mut(&name) {
                    if let Some((seen, _)) = p.pending.take() {
                        p.desired = match seen {
                            Seen::Pod(d) => Some(*d),
                            _ => None,
                        };
                        if !keep {
                            p.restarts = 0;
                            p.next_start = now;
                        }
                    }
                }
            }
            // Exited?
            let pid = self
                .pods
                .get(&name)
                .and_then(|p| p.running.as_ref())
                .map(|r| (r.pid, r.started));
            if let Some((pid, started)) = pid {
                if let Some(status) = self.rt.exited(pid) {
                    let ran = started.elapsed();
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
                let hash = pod_hash(&d);
                match self.spawn(&name, &d, &hash) {
                    Ok(pid) => {
                        if let Some(p) = self.pods.get_mut(&name) {
                            p.running = Some(Running {
                                pid,
                                started: Instant::now(),
                                hash,
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
        let tracked: Vec<u32> = self
            .pods
            .values()
            .filter_map(|p| p.running.as_ref().map(|r| r.pid))
            .collect();
        self.rt.sweep(&tracked);
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

    fn spawn(&mut self, name: &str, d: &Desired, hash: &str) -> Result<u32, String> {
        let argv0 = d.argv.first().ok_or("empty argv")?;
        let exe = self.resolve(argv0)?;
        let mut env: Vec<(String, String)> = vec![
            (
                "PATH".into(),
                self.search_path.to_string_lossy().into_owned(),
            ),
            (
                systemd::ROOT_ENV.into(),
                self.opts.root.display().to_string(),
            ),
        ];
        if let Some(image) = &d.image {
            env.push((IMAGE_ENV.into(), image.clone()));
        }
        env.extend(self.opts.env.iter().cloned());
        env.extend(d.env.iter().cloned());
        let cwd = d
            .working_dir
            .as_ref()
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .unwrap_or_else(|| self.opts.root.clone());
        let spec = SpawnSpec {
            exe,
            argv: d.argv.clone(),
            env,
            cwd,
            log: self.log_dir.join(format!("{name}.log")),
        };
        self.rt.start(name, hash, &spec)
    }

    /// SIGTERM the pod's process group, SIGKILL after the grace period, wait for the exit.
    fn stop_pod(&mut self, name: &str, why: &str) {
        let Some(r) = self.pods.get_mut(name).and_then(|p| p.running.take()) else {
            return;
        };
        let pid = r.pid;
        let pgid = Pid::from_raw(-(pid as i32));
        self.event(
            Some(name),
            "killing",
            format_args!("pid={pid} reason={why:?}"),
        );
        let _ = kill(pgid, Signal::SIGTERM);
        let wait = |k: &mut Kubelet, until: Instant| -> Option<String> {
            loop {
                k.rt.refresh();
                if let Some(s) = k.rt.exited(pid) {
                    return Some(s);
                }
                if Instant::now() >= until {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        let mut status = wait(self, Instant::now() + self.opts.grace_period);
        let _ = kill(pgid, Signal::SIGKILL);
        if status.is_none() {
            status = wait(self, Instant::now() + Duration::from_secs(10));
        }
        let status = status.unwrap_or_else(|| "?".into());
        self.event(
            Some(name),
            "stopped",
            format_args!("pid={pid} status={status}"),
        );
    }

    fn shutdown(&mut self, stop_pods: bool) {
        if stop_pods {
            let names: Vec<String> = self.pods.keys().cloned().collect();
            for n in names {
                self.stop_pod(&n, "emulator stopping");
            }
            self.event(None, "emulator-stopped", format_args!(""));
        } else {
            let left = self.pods.values().filter(|p| p.running.is_some()).count();
            self.event(
                None,
                "emulator-stopped",
                format_args!("pods_left_running={left}"),
            );
        }
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
    let image = c.get("image").and_then(Value::as_str).map(str::to_string);
    Ok(Desired {
        doc,
        argv,
        env,
        working_dir,
        image,
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

// ---------------------------------------------------------------------------------------------
// Kubelet-binary mode
// ---------------------------------------------------------------------------------------------

/// Where the kubelet emulator writes its effective configuration (at every start, before it
/// serves `/healthz`): `<root>/var/log/kubelet-emulator/effective-config.json`.
pub fn effective_config_path(root: &Path) -> PathBuf {
    root.join("var/log/kubelet-emulator/effective-config.json")
}

/// What the kubelet emulator started with (the file at [`effective_config_path`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveConfig {
    /// The kubelet process that wrote it.
    pub pid: u32,
    /// Its command line, as `/proc/PID/cmdline` shows it.
    pub argv: Vec<String>,
    /// The non-configuration flags (`config`, `configDir`, `kubeconfig`, `hostnameOverride`...).
    pub flags: serde_json::Value,
    /// Drop-in files applied, in order (paths as opened).
    pub dropins: Vec<String>,
    /// What the kubelet logged as warnings while loading.
    pub warnings: Vec<String>,
    /// The effective `KubeletConfiguration` (v1beta1 JSON, defaults applied).
    pub kubeletconfig: serde_json::Value,
}

/// Read the effective configuration the last kubelet emulator wrote under `root`.
pub fn read_effective_config(root: &Path) -> Result<EffectiveConfig, String> {
    let p = effective_config_path(root);
    let text = fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
}

fn write_effective_config(root: &Path, report: &EffectiveConfig) -> std::io::Result<()> {
    let p = effective_config_path(root);
    if let Some(d) = p.parent() {
        fs::create_dir_all(d)?;
    }
    let tmp = p.with_file_name(format!(".effective-config.{}.tmp", std::process::id()));
    let text = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    fs::write(&tmp, text)?;
    fs::rename(&tmp, &p)
}

/// A klog-formatted line on stderr (`E0514 10:11:12.123456    4242 run.go:72] msg`), as the
/// kubelet writes its logs (the service manager puts them in the unit's journal file).
fn klog(level: char, file: &str, msg: &str) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let stamp = crate::unit::format_timestamp(SystemTime::now());
    // "Tue 2024-05-14 10:11:12 UTC" → month/day and time.
    let date = stamp.get(4..14).unwrap_or("0000-00-00");
    let time = stamp.get(15..23).unwrap_or("00:00:00");
    let mmdd: String = date.get(5..).unwrap_or("00-00").replace('-', "");
    eprintln!(
        "{level}{mmdd} {time}.{:06} {:>7} {file}] {msg}",
        now.subsec_micros(),
        std::process::id()
    );
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Why the kubelet emulator does not run: the kubelet's message.
fn fail(e: impl std::fmt::Display) -> i32 {
    klog(
        'E',
        "run.go:72",
        &format!("\"command failed\" err={}", quote(&e.to_string())),
    );
    1
}

fn read_sysctl(root: &Path, key: &str) -> Option<i64> {
    let sim = root.join("proc/sys").join(key);
    let text = fs::read_to_string(&sim)
        .or_else(|_| fs::read_to_string(Path::new("/proc/sys").join(key)))
        .ok()?;
    text.trim().parse().ok()
}

/// Checks the kubelet makes after loading its configuration and before it runs pods (see the
/// module docs). `Err` is the message the kubelet exits with.
fn preflight(root: &Path, l: &Loaded) -> Result<(), ConfigError> {
    let c = &l.config;
    let run = ConfigError::Run;
    let open = |p: &str| -> Result<Vec<u8>, String> {
        fs::read(under_root(root, p)).map_err(|e| kubelet_config::go_io_error(p, "open", &e))
    };
    let kubeconfig = l.flags.kubeconfig.clone().filter(|k| !k.is_empty());
    if let Some(k) = &kubeconfig {
        let bootstrap_ok = l
            .flags
            .bootstrap_kubeconfig
            .as_deref()
            .is_some_and(|b| under_root(root, b).is_file());
        match open(k) {
            Ok(bytes) => {
                let doc: Value = serde_yaml::from_slice(&bytes)
                    .map_err(|e| run(format!("invalid kubeconfig: {e}")))?;
                if doc.get("clusters").is_none() {
                    return Err(run(format!(
                        "invalid kubeconfig: invalid configuration: no configuration has been provided, try setting KUBERNETES_MASTER environment variable ({k})"
                    )));
                }
            }
            Err(_) if bootstrap_ok => {}
            Err(e) => {
                return Err(run(format!(
                    "invalid kubeconfig: stat {k}: {}",
                    e.rsplit(": ").next().unwrap_or(&e)
                )))
            }
        }
    }
    kubelet_config::check_auth(c, kubeconfig.is_some()).map_err(run)?;
    if let Some(ca) = c.client_ca_file() {
        let bytes =
            open(ca).map_err(|e| run(format!("unable to load client CA file \"{ca}\": {e}")))?;
        if !String::from_utf8_lossy(&bytes).contains("-----BEGIN CERTIFICATE-----") {
            return Err(run(format!(
                "unable to load client CA file \"{ca}\": data does not contain any valid RSA or ECDSA certificates"
            )));
        }
    }
    for f in [&c.tlsCertFile, &c.tlsPrivateKeyFile].into_iter().flatten() {
        if !f.is_empty() {
            open(f).map_err(|e| run(format!("failed to listen and serve: {e}")))?;
        }
    }
    kubelet_config::check_kernel_tunables(c, &|k| read_sysctl(root, k)).map_err(run)?;
    Ok(())
}

fn runtime_socket(root: &Path, endpoint: &str) -> Result<PathBuf, String> {
    let path = endpoint
        .strip_prefix("unix://")
        .ok_or_else(|| format!("protocol {endpoint:?} not supported"))?;
    Ok(under_root(root, path))
}

/// Serve `GET /healthz` → `200 ok` (HTTP/1.1, like the kubelet's healthz server) until the
/// process ends. A failed bind is retried every 5 s, as the kubelet does.
fn serve_healthz(addr: String, delay: Duration) {
    std::thread::spawn(move || {
        let end = Instant::now() + delay;
        while Instant::now() < end {
            if SIGNALLED.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let listener = loop {
            match std::net::TcpListener::bind(&addr) {
                Ok(l) => break l,
                Err(e) => {
                    klog(
                        'E',
                        "server.go:1234",
                        &format!(
                            "\"Failed to start healthz server\" err={}",
                            quote(&format!("listen tcp {addr}: {e}"))
                        ),
                    );
                    std::thread::sleep(Duration::from_secs(5));
                }
            }
        };
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                let target = head.split_whitespace().nth(1).unwrap_or("/");
                let path = target.split('?').next().unwrap_or("/");
                let (code, reason, body) = if path == "/healthz" || path.starts_with("/healthz/") {
                    (200, "OK", "ok")
                } else {
                    (404, "Not Found", "404 page not found\n")
                };
                let resp = format!(
                    "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes());
            });
        }
    });
}

/// Entry point of the kubelet emulator in kubelet-binary mode (`argv[0]` named `kubelet`).
/// Returns the process exit code: 0 after SIGTERM, 1 when it refuses to run (with the
/// kubelet's `"command failed"` message on stderr).
pub fn kubelet_main(argv: &[String]) -> i32 {
    let root = std::env::var_os(systemd::ROOT_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));
    let mut opts = match std::env::var_os(systemd::KUBELET_OPTS_ENV) {
        Some(f) => match systemd::read_kubelet_options(Path::new(&f)) {
            Ok(o) => o,
            Err(e) => return fail(format!("kubelet emulator options: {e}")),
        },
        None => KubeletOptions::new(&root),
    };
    opts.root = root.clone();
    if opts.event_log.is_none() {
        opts.event_log = Some(root.join("var/log/kubelet-emulator.log"));
    }
    // `kubelet --version` answers before anything is loaded, as the real binary does.
    if argv
        .get(1..)
        .unwrap_or_default()
        .iter()
        .any(|a| a == "--version" || a == "-version" || a.starts_with("--version="))
    {
        println!("Kubernetes {}", emulated_kubelet_version());
        return 0;
    }
    if let Err(e) = install_signal_handlers() {
        return fail(e);
    }
    klog(
        'I',
        "server.go:486",
        &format!(
            "\"Kubelet version\" kubeletVersion=\"{}-kharden-testnode\"",
            emulated_kubelet_version()
        ),
    );
    let resolve = |p: &str| {
        if Path::new(p).is_absolute() {
            under_root(&root, p)
        } else {
            root.join(p)
        }
    };
    let args = argv.get(1..).unwrap_or_default();
    let loaded = match kubelet_config::load(args, &resolve) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    if loaded.flags.help {
        println!("Usage:\n  kubelet [flags]\n\n(kharden-testnode kubelet emulator)");
        return 0;
    }
    if loaded.flags.version {
        println!("Kubernetes {}", emulated_kubelet_version());
        return 0;
    }
    for w in &loaded.warnings {
        klog('W', "codec.go:99", w);
    }
    if let Err(e) = preflight(&root, &loaded) {
        return fail(e);
    }
    let c = &loaded.config;
    // The container runtime (PreInitRuntimeService).
    let endpoint = c.containerRuntimeEndpoint.clone().unwrap_or_default();
    let socket = match runtime_socket(&root, &endpoint) {
        Ok(s) => s,
        Err(e) => {
            return fail(ConfigError::Run(format!(
                "failed to create runtime service: {e}"
            )))
        }
    };
    if let Err(e) = ipc::call(&socket, &Request::Ping, Some(Duration::from_secs(10))) {
        let path = endpoint.trim_start_matches("unix://");
        let why = match &e {
            ipc::IpcError::Connect { source, .. } => {
                kubelet_config::go_io_error(path, "connect", source)
            }
            other => other.to_string(),
        };
        return fail(ConfigError::Run(format!(
            "validate service connection: validate CRI v1 runtime API for endpoint \"{endpoint}\": rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial unix {why}\""
        )));
    }
    // Only a kubelet that got this far tells its configuration (the kubelet registers /configz
    // once its runtime answers).
    let report = EffectiveConfig {
        pid: std::process::id(),
        argv: argv.to_vec(),
        flags: serde_json::to_value(&loaded.flags).unwrap_or(serde_json::Value::Null),
        dropins: loaded
            .dropins
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        warnings: loaded.warnings.clone(),
        kubeletconfig: {
            let mut v = c.to_json();
            if let serde_json::Value::Object(m) = &mut v {
                m.insert("apiVersion".into(), kubelet_config::API_VERSION.into());
                m.insert("kind".into(), kubelet_config::KIND.into());
            }
            v
        },
    };
    if let Err(e) = write_effective_config(&root, &report) {
        klog(
            'E',
            "server.go:1",
            &format!(
                "\"writing the effective configuration\" err={}",
                quote(&e.to_string())
            ),
        );
    }
    let manifests = c
        .staticPodPath
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(&resolve);
    let rt = RemoteRuntime {
        socket,
        cache: BTreeMap::new(),
    };
    let mut k = match Kubelet::new(opts.clone(), manifests, Box::new(rt)) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    k.event(
        None,
        "emulator-started",
        format_args!("pid={} mode=kubelet argv={:?}", std::process::id(), argv),
    );
    k.adopt_existing();
    let port = c.healthzPort.unwrap_or(0);
    if port > 0 {
        let bind = c
            .healthzBindAddress
            .clone()
            .unwrap_or_else(|| "127.0.0.1".into());
        let addr = if bind.contains(':') {
            format!("[{bind}]:{port}")
        } else {
            format!("{bind}:{port}")
        };
        serve_healthz(addr, opts.healthz_delay);
    }
    klog('I', "server.go:1000", "\"Started kubelet\"");
    k.run(&SIGNALLED);
    k.shutdown(false);
    0
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
        o.healthz_delay = Duration::from_millis(700);
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
        assert_eq!(pod_hash(&a), pod_hash(&b));
    }

    #[test]
    fn pod_hash_ignores_key_order_not_values() {
        let a = parse_pod(b"kind: Pod\nspec:\n  containers:\n  - command: [x, --a]\n    name: c\n")
            .unwrap();
        let b = parse_pod(b"spec:\n  containers:\n  - name: c\n    command: [x, --a]\nkind: Pod\n")
            .unwrap();
        let c = parse_pod(b"spec:\n  containers:\n  - name: c\n    command: [x, --b]\nkind: Pod\n")
            .unwrap();
        assert_eq!(pod_hash(&a), pod_hash(&b));
        assert_ne!(pod_hash(&a), pod_hash(&c));
    }
}
