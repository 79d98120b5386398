//! The gate of a change that restarts nothing: the processes that use the changed files
//! ([`crate::journal::GateSpec::keep`]) must stay the *same* processes (pid and start time)
//! and stay healthy through the stability window.
//!
//! Why: a `chmod`/`chown` takes effect at once and restarts nothing, so there is no new
//! process to prove. What can go wrong is that a component that still needs the file loses
//! access to it: it crashes (kubelet restarts it: another pid, or another start time on the
//! same pid) or turns unhealthy (it reads its kubeconfig or certificate again later). The
//! access check before the change is the first line (it refuses what it can predict); this
//! gate is the proof after it. The kubelet's gate uses the same watch for the static pods,
//! which must keep running while the kubelet restarts.
//!
//! A kept process with a static pod manifest is probed as the static pod gate probes it (its
//! manifest's `httpGet` probe); one without is only watched for being the same process.

use super::{params_for, GateRequest, GateVerdict, Observation};
use crate::journal::{GateSpec, Kept};
use crate::root::HostRoot;
use kharden_gate::{probe_with, Clock, FailReason, ProbeClass, ProbeTarget, TlsSettings};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The start time of a process (clock ticks after boot, `/proc/PID/stat` field 22), or
/// `None` when it does not exist.
pub fn start_ticks(proc_dir: &Path, pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(proc_dir.join(pid.to_string()).join("stat")).ok()?;
    kharden_gate::restart::parse_stat_starttime(&stat)
}

/// How one kept process is probed.
struct Probe {
    target: ProbeTarget,
    tls: TlsSettings,
    verify: bool,
}

/// The processes a gate keeps watching.
pub struct KeepWatch {
    proc_dir: std::path::PathBuf,
    kept: Vec<(Kept, Option<Probe>)>,
    timeout: Duration,
}

/// What one look at the kept processes found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Look {
    /// Every one the same process, and healthy where it has a probe.
    Fine,
    /// A probe did not answer healthy (it may still recover before the deadline).
    Unhealthy(String),
    /// A kept process exited or was restarted: the change cost it its process. Fatal.
    Lost(String),
}

impl KeepWatch {
    /// Watch the processes of `spec.keep`, probing each with its manifest's probe (read
    /// under `root`). A manifest that cannot be read or has no probe leaves that process
    /// watched for being alive only.
    pub fn new(root: &HostRoot, spec: &GateSpec, probe_timeout: Duration) -> KeepWatch {
        let own = GateSpec {
            // The operator's --health-url names the component being changed, not these.
            health_url: None,
            container: None,
            ..spec.clone()
        };
        let kept = spec
            .keep
            .iter()
            .map(|k| {
                let probe = k.manifest.as_ref().and_then(|m| {
                    let bytes = std::fs::read(m).ok()?;
                    let p = params_for(root, &own, &bytes, None, SystemTime::UNIX_EPOCH).ok()?;
                    Some(Probe {
                        target: p.target,
                        tls: p.tls,
                        verify: !p.insecure_skip_tls_verify,
                    })
                });
                (k.clone(), probe)
            })
            .collect();
        KeepWatch {
            proc_dir: root.proc_dir(),
            kept,
            timeout: probe_timeout,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// Look at every kept process once; `observe` gets one observation per process.
    pub fn look(&self, clock: &dyn Clock, observe: &mut dyn FnMut(&Observation)) -> Look {
        let mut worst = Look::Fine;
        for (k, probe) in &self.kept {
            let at = clock.now();
            match start_ticks(&self.proc_dir, k.pid) {
                Some(t) if t == k.start_ticks => {}
                found => {
                    let why = match found {
                        None => format!("{} (pid {}) exited", k.component, k.pid),
                        Some(_) => format!(
                            "{} (pid {}) was restarted (another process has its pid)",
                            k.component, k.pid
                        ),
                    };
                    observe(&Observation::probe(at, None, ProbeClass::Down, &why));
                    return Look::Lost(why);
                }
            }
            let Some(p) = probe else {
                observe(&Observation::probe(
                    at,
                    Some(k.pid),
                    ProbeClass::Healthy(0),
                    &format!("{} (pid {}) still running (no probe)", k.component, k.pid),
                ));
                continue;
            };
            let out = probe_with(&p.target, &p.tls, self.timeout, p.verify);
            let detail = format!("{} (pid {}): {}", k.component, k.pid, out.detail);
            observe(&Observation::probe(
                clock.now(),
                Some(k.pid),
                out.class,
                &detail,
            ));
            if !out.class.is_healthy() && worst == Look::Fine {
                worst = Look::Unhealthy(format!("{}: {}", k.component, out.class));
            }
        }
        worst
    }
}

/// The gate of a change that restarts nothing: every kept process the same and healthy for
/// `stable_for`, or failed at the first lost process or at the deadline.
pub fn wait(
    watch: &KeepWatch,
    req: &GateRequest<'_>,
    clock: &dyn Clock,
    poll: Duration,
    observe: &mut dyn FnMut(&Observation),
) -> GateVerdict {
    let stable_for = Duration::from_secs(req.spec.stable_for_secs);
    let mut healthy_since: Option<SystemTime> = None;
    let mut rounds = 0u32;
    let mut last = String::new();
    loop {
        let now = clock.now();
        if now > req.deadline || req.interrupted() {
            return GateVerdict::failed(
                FailReason::Unhealthy(ProbeClass::Error),
                if last.is_empty() {
                    "the processes that use the changed files were not healthy for the stability window before the deadline".to_string()
                } else {
                    format!("not healthy before the deadline: {last}")
                },
            );
        }
        match watch.look(clock, observe) {
            Look::Lost(why) => return GateVerdict::failed(FailReason::CrashLoop, why),
            Look::Unhealthy(why) => {
                healthy_since = None;
                rounds = 0;
                last = why;
            }
            Look::Fine => {
                rounds += 1;
                let since = *healthy_since.get_or_insert(now);
                let spanned = now.duration_since(since).unwrap_or_default();
                if spanned >= stable_for && rounds >= 2 {
                    return GateVerdict::Passed {
                        pid: None,
                        argv: None,
                        healthy_probes: rounds,
                        stable_for: spanned,
                    };
                }
            }
        }
        clock.sleep(poll);
    }
}
