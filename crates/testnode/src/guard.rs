//! Running the emulator as a child process, killed on drop.
//!
//! Why: a test that fails (panics) must not leave an apiserver listening or an etcd writing.
//! [`KubeletProcess`] owns the emulator child; dropping it sends SIGTERM (the emulator then
//! stops its pods gracefully), and SIGKILL after a timeout. The emulator's pods carry
//! `PR_SET_PDEATHSIG=SIGKILL`, so they die with it even when it is SIGKILLed.
//!
//! The emulator itself gets `PR_SET_PDEATHSIG=SIGTERM` too, tied to the thread that spawned it
//! (a test's thread), so even a test process that aborts without unwinding takes it down.
//!
//! [`ServiceManagerProcess`] does the same for the service-manager emulator, which runs the
//! kubelet emulator as `kubelet.service` and owns the pods (so that they survive a kubelet
//! restart, as containers do); [`node_processes`] finds whatever a node left running.

use crate::kubelet::KubeletOptions;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An emulator child process; stopped on drop.
#[derive(Debug)]
pub struct KubeletProcess {
    child: Option<Child>,
    event_log: PathBuf,
    grace: Duration,
}

impl KubeletProcess {
    /// Spawn `exe prefix_args... <opts as args>`: for the testnode binary `prefix_args` is
    /// `["kubelet"]`; for kharden it is `["__kubelet"]`. When `opts.event_log` is `None` it is
    /// set to `<root>/var/log/kubelet-emulator.log` so that [`KubeletProcess::events`] works.
    pub fn spawn<S: AsRef<OsStr>>(
        exe: &Path,
        prefix_args: &[S],
        opts: &KubeletOptions,
    ) -> std::io::Result<KubeletProcess> {
        let mut opts = opts.clone();
        let event_log = opts
            .event_log
            .get_or_insert_with(|| opts.root.join("var/log/kubelet-emulator.log"))
            .clone();
        if let Some(d) = event_log.parent() {
            std::fs::create_dir_all(d)?;
        }
        let mut cmd = Command::new(exe);
        cmd.args(prefix_args)
            .args(opts.to_args())
            .stdin(Stdio::null())
            .process_group(0);
        let parent = nix::unistd::getpid();
        // SAFETY: runs in the forked child before exec; only plain syscalls, no allocation.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)
                    .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
                if nix::unistd::getppid() != parent {
                    return Err(std::io::Error::other("parent exited"));
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        Ok(KubeletProcess {
            child: Some(child),
            event_log,
            grace: opts.grace_period,
        })
    }

    /// The emulator's PID.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The event log written so far.
    pub fn events(&self) -> String {
        std::fs::read_to_string(&self.event_log).unwrap_or_default()
    }

    /// Path of the event log.
    pub fn event_log(&self) -> &Path {
        &self.event_log
    }

    /// Wait until the event log contains a line for which `pred` holds; returns that line.
    pub fn wait_for_event(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&str) -> bool,
    ) -> Option<String> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(l) = self.events().lines().find(|l| pred(l)) {
                return Some(l.to_string());
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop the emulator: SIGTERM, wait for it to stop its pods, SIGKILL after the pods' grace
    /// period plus 3 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let end = Instant::now() + self.grace + Duration::from_secs(3);
        while Instant::now() < end {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for KubeletProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a `systemctl` command answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemctlOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Errors of [`ServiceManagerProcess`].
#[derive(Debug, thiserror::Error)]
pub enum ServiceManagerProcessError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the service manager did not come up: {0}")]
    NotReady(String),
    #[error(transparent)]
    Ipc(#[from] crate::ipc::IpcError),
    #[error("unexpected answer from the service manager: {0}")]
    Protocol(String),
}

/// Install the simulated node's binaries as symbolic links to `exe` (a multi-call binary whose
/// `main` calls [`crate::dispatch_fake`] first): `<root>/usr/bin/kubelet` (the kubelet emulator),
/// `<root>/usr/bin/systemctl` (the fake systemctl), `<root>/usr/lib/systemd/systemd` (the service
/// manager), and the fake control-plane components in `<root>/bin`.
pub fn install_node_binaries(root: &Path, exe: &Path) -> std::io::Result<()> {
    crate::install_fake_binaries(&root.join("bin"), exe)?;
    for link in [
        "usr/bin/kubelet",
        "usr/bin/systemctl",
        "usr/lib/systemd/systemd",
    ] {
        let p = root.join(link);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)?;
        }
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::os::unix::fs::symlink(exe, &p)?;
    }
    Ok(())
}

/// The service-manager emulator ([`crate::systemd`]) as a child process, which starts and
/// supervises `kubelet.service` (the kubelet emulator in kubelet-binary mode) and owns the pods;
/// stopped on drop.
///
/// Nothing outlives it: dropping it (also while a test unwinds from a panic) sends SIGTERM, the
/// manager stops the kubelet, the pods and anything reparented to it, and SIGKILL follows after
/// a timeout; the manager has `PR_SET_PDEATHSIG=SIGTERM` tied to the thread that spawned it, and
/// everything it starts has `PR_SET_PDEATHSIG=SIGKILL` tied to the manager.
#[derive(Debug)]
pub struct ServiceManagerProcess {
    child: Option<Child>,
    root: PathBuf,
    socket: PathBuf,
    event_log: PathBuf,
    grace: Duration,
}

impl ServiceManagerProcess {
    /// Install the node's binaries (see [`install_node_binaries`]), write the kubelet emulator's
    /// options, start the manager and wait until it answers on its socket (the units it starts
    /// may still be starting: wait for them with [`ServiceManagerProcess::wait_for`]).
    pub fn spawn(
        exe: &Path,
        opts: &crate::ServiceManagerOptions,
        kubelet: &KubeletOptions,
    ) -> Result<ServiceManagerProcess, ServiceManagerProcessError> {
        let root = opts.root.clone();
        let io = |what, path: PathBuf| {
            move |source| ServiceManagerProcessError::Io { what, path, source }
        };
        install_node_binaries(&root, exe).map_err(io("installing binaries in", root.clone()))?;
        let mut kopts = kubelet.clone();
        kopts.root = root.clone();
        kopts
            .event_log
            .get_or_insert_with(|| root.join("var/log/kubelet-emulator.log"));
        let mut opts = opts.clone();
        let opts_file = opts
            .kubelet_options_file
            .get_or_insert_with(|| root.join("run/kharden-testnode/kubelet-emulator.opts"))
            .clone();
        crate::systemd::write_kubelet_options(&opts_file, &kopts)
            .map_err(io("writing", opts_file.clone()))?;
        opts.pod_grace_period = kopts.grace_period;
        let event_log = opts.event_log();
        let log_dir = root.join("var/log");
        std::fs::create_dir_all(&log_dir).map_err(io("creating", log_dir.clone()))?;
        let stderr_path = log_dir.join("systemd-emulator.stderr");
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .map_err(io("opening", stderr_path.clone()))?;
        let systemd = root.join("usr/lib/systemd/systemd");
        let mut cmd = Command::new(&systemd);
        cmd.args(opts.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0);
        crate::systemd::die_with_parent(&mut cmd, Signal::SIGTERM);
        let child = cmd.spawn().map_err(io("starting", systemd.clone()))?;
        let mut me = ServiceManagerProcess {
            child: Some(child),
            socket: crate::unit::under_root(&root, crate::ipc::SYSTEMD_SOCKET),
            root,
            event_log,
            grace: kopts.grace_period,
        };
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            if crate::ipc::call(
                &me.socket,
                &crate::ipc::Request::Ping,
                Some(Duration::from_secs(5)),
            )
            .is_ok()
            {
                return Ok(me);
            }
            let exited = me.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                return Err(ServiceManagerProcessError::NotReady(format!(
                    "exited with {status}: {err}"
                )));
            }
            if Instant::now() >= end {
                me.stop();
                return Err(ServiceManagerProcessError::NotReady(
                    "no answer on its socket within 60 s".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The manager's PID.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The simulated root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The fake `systemctl` (`<root>/usr/bin/systemctl`), for `kharden --systemctl`.
    pub fn systemctl_path(&self) -> PathBuf {
        self.root.join("usr/bin/systemctl")
    }

    /// Run `systemctl ARGS` in-process (the same request the fake `systemctl` sends).
    pub fn systemctl(&self, args: &[&str]) -> Result<SystemctlOutput, ServiceManagerProcessError> {
        let req = crate::ipc::Request::Systemctl {
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        match crate::ipc::call(&self.socket, &req, None)? {
            crate::ipc::Response::Systemctl {
                code,
                stdout,
                stderr,
            } => Ok(SystemctlOutput {
                code,
                stdout,
                stderr,
            }),
            other => Err(ServiceManagerProcessError::Protocol(format!("{other:?}"))),
        }
    }

    /// `systemctl show UNIT -p A,B,...` as a map.
    pub fn show(
        &self,
        unit: &str,
        props: &[&str],
    ) -> Result<std::collections::BTreeMap<String, String>, ServiceManagerProcessError> {
        let p = props.join(",");
        let mut args = vec!["show", unit];
        if !props.is_empty() {
            args.push("-p");
            args.push(&p);
        }
        let out = self.systemctl(&args)?;
        Ok(out
            .stdout
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    /// Poll `systemctl show UNIT` until `pred` holds (`None` at the deadline).
    pub fn wait_for(
        &self,
        unit: &str,
        timeout: Duration,
        mut pred: impl FnMut(&std::collections::BTreeMap<String, String>) -> bool,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        let end = Instant::now() + timeout;
        loop {
            if let Ok(p) = self.show(unit, &[]) {
                if pred(&p) {
                    return Some(p);
                }
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The manager's event log.
    pub fn events(&self) -> String {
        std::fs::read_to_string(&self.event_log).unwrap_or_default()
    }

    /// What a unit's processes wrote on stdout/stderr (`<root>/var/log/journal/UNIT.log`).
    pub fn journal(&self, unit: &str) -> String {
        let unit = crate::unit::normalize_unit_name(unit);
        std::fs::read_to_string(self.root.join(format!("var/log/journal/{unit}.log")))
            .unwrap_or_default()
    }

    /// The kubelet emulator's event log (all instances, appended).
    pub fn kubelet_events(&self) -> String {
        std::fs::read_to_string(self.root.join("var/log/kubelet-emulator.log")).unwrap_or_default()
    }

    /// Stop the manager and everything it runs: SIGTERM, then SIGKILL after the pods' grace
    /// period plus the kubelet's stop timeout budget (15 s).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let end = Instant::now() + self.grace + Duration::from_secs(15);
        while Instant::now() < end {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ServiceManagerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Processes that belong to the simulated node at `root`: those whose environment carries
/// `KHARDEN_TESTNODE_ROOT=<root>` (the kubelet emulator and every pod) or whose command line
/// mentions `root` (the service manager, node-mode emulators). For leak checks in tests.
pub fn node_processes(root: &Path) -> Vec<(u32, String)> {
    let needle_env = format!("{}={}", crate::systemd::ROOT_ENV, root.display());
    let needle = root.display().to_string();
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        if cmdline.is_empty() {
            // A zombie or a kernel thread.
            continue;
        }
        let environ = std::fs::read(e.path().join("environ")).unwrap_or_default();
        let in_env = environ
            .split(|b| *b == 0)
            .any(|v| v == needle_env.as_bytes());
        if in_env || cmdline.contains(&needle) {
            out.push((pid, cmdline));
        }
    }
    out
}
