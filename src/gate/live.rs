//! The real health gate: kharden's [`Gate`] over `kharden-gate` (restart proof from `/proc`,
//! a kubelet-like probe, a stability window, a deadline).
//!
//! What is probed comes from the manifest being gated: its container's argv is the restart
//! proof, its `startupProbe`/`readinessProbe`/`livenessProbe` `httpGet` is the probe
//! (`--health-url` overrides). HTTPS verifies against the cluster CA (`--cacert`, else
//! `<root>/etc/kubernetes/pki/ca.crt`) and against a name the certificate carries: for the
//! API server, its `--advertise-address`, else `kubernetes` (kubeadm's serving certificate has
//! no 127.0.0.1 name). A client certificate (`--cert`/`--key`, else kubeadm's
//! `apiserver-kubelet-client`) is presented, so that `--anonymous-auth=false` does not turn
//! the probe into a 401.

use super::keep::{self, KeepWatch};
use super::{Gate, GateRequest, GateVerdict, Observation};
use crate::journal::{GateSpec, GateTarget};
use crate::root::HostRoot;
use kharden_gate::probe::{
    default_server_name, discover_client_cert, discover_cluster_ca, probe_target_from_pod,
    ClientCertFiles, Scheme, TlsSettings,
};
use kharden_gate::{EventSource, FailReason, GateParams, LiveIo, WatchedIo};
use kharden_manifest::Flags;
use std::cell::RefCell;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// The probe gate.
#[derive(Debug)]
pub struct ProbeGate {
    pub root: HostRoot,
    /// Poll interval of the gate loop.
    pub poll: Duration,
    /// Process events started by [`Gate::arm`] before the write, for the next wait.
    armed: RefCell<Option<EventSource>>,
    /// The kubelet's systemd unit (`--kubelet-unit`): the kubelet's gate computes the command
    /// line a restart gives from it.
    pub kubelet_unit: String,
}

impl ProbeGate {
    pub fn new(root: HostRoot) -> Self {
        ProbeGate {
            root,
            poll: Duration::from_millis(500),
            armed: RefCell::new(None),
            kubelet_unit: "kubelet.service".into(),
        }
    }

    /// The gate's I/O: `/proc`, the probe, and every process start and exit, watched from
    /// before the write when the gate was armed (else from now).
    fn io(&self, params: &GateParams) -> WatchedIo<LiveIo> {
        match self.armed.borrow_mut().take() {
            Some(source) => WatchedIo::with_source(LiveIo::new(params), source, params),
            None => WatchedIo::start(LiveIo::new(params), params),
        }
    }

    /// The same gate for a kubelet run by another unit.
    pub fn with_kubelet_unit(mut self, unit: &str) -> Self {
        self.kubelet_unit = unit.to_string();
        self
    }
}

/// The gate loop's clock, cut short by a signal: sleeps in slices and, once the request is
/// interrupted, reads as past the deadline so that the loop ends at its next look.
struct InterruptibleClock<'a> {
    req: &'a GateRequest<'a>,
}

impl kharden_gate::Clock for InterruptibleClock<'_> {
    fn now(&self) -> SystemTime {
        if self.req.interrupted() {
            self.req.deadline + Duration::from_secs(1)
        } else {
            crate::txn::Clock::now(&crate::txn::SystemClock)
        }
    }
    fn sleep(&self, d: Duration) {
        let slice = Duration::from_millis(50);
        let mut left = d;
        while !left.is_zero() && !self.req.interrupted() {
            let s = left.min(slice);
            std::thread::sleep(s);
            left = left.saturating_sub(s);
        }
    }
}

/// Build the gate's parameters for one manifest: the argv to prove and the probe to run.
/// Errors say why the gate cannot run (no probe and no `--health-url`, unreadable manifest),
/// so that `apply` can refuse before changing anything.
pub fn params_for(
    root: &HostRoot,
    spec: &GateSpec,
    manifest: &[u8],
    started_after: Option<SystemTime>,
    deadline: SystemTime,
) -> Result<GateParams, String> {
    let info = kharden_manifest::inspect(manifest, spec.container.as_deref())
        .map_err(|e| e.to_string())?;
    let probe = info.probes.first();
    let target = match (&spec.health_url, probe) {
        (Some(url), _) => probe_target_from_pod("", None, 0, "", Some(url)),
        (None, Some(p)) => probe_target_from_pod(&p.scheme, p.host.as_deref(), p.port, &p.path, None),
        (None, None) => {
            return Err(format!(
                "container {} has no httpGet startup, readiness or liveness probe; give --health-url (or --no-gate)",
                info.container
            ))
        }
    }
    .map_err(|e| e.to_string())?;
    let pki = root.pki_dir().map_err(|e| e.to_string())?;
    let flags = info.argv.get(info.flags_start..).unwrap_or_default();
    let tls = if target.scheme == Scheme::Https {
        let advertise = Flags::parse(flags)
            .last("advertise-address")
            .and_then(|f| f.value.as_str().map(str::to_string));
        let is_apiserver = info.component.as_deref() == Some("kube-apiserver");
        TlsSettings {
            ca_file: spec
                .cacert
                .as_ref()
                .map(PathBuf::from)
                .or_else(|| discover_cluster_ca(&pki)),
            server_name: if is_apiserver {
                Some(default_server_name(advertise.as_deref()))
            } else {
                None
            },
            client_cert: match (&spec.cert, &spec.key) {
                (Some(c), Some(k)) => Some(ClientCertFiles {
                    cert: c.into(),
                    key: k.into(),
                }),
                _ if is_apiserver => discover_client_cert(&pki),
                _ => None,
            },
        }
    } else {
        TlsSettings::default()
    };
    let mut p = GateParams::new(info.argv.clone(), started_after, deadline, target, tls);
    // kubeadm's controller manager and scheduler serve a self-signed certificate that no CA
    // vouches for; kubelet's own HTTPS probes never verify. Without an explicit --cacert, do
    // as kubelet does for them, and rely on the listener proof (the restarted process owns
    // the probed socket) instead of the certificate.
    let is_apiserver = info.component.as_deref() == Some("kube-apiserver");
    if p.target.scheme == Scheme::Https && !is_apiserver && spec.cacert.is_none() {
        p.insecure_skip_tls_verify = true;
    }
    p.stable_for = Duration::from_secs(spec.stable_for_secs);
    p.proc_root = root.proc_dir();
    Ok(p)
}

impl Gate for ProbeGate {
    fn arm(&self) {
        match EventSource::start(&self.root.proc_dir()) {
            Ok(source) => *self.armed.borrow_mut() = Some(source),
            // The gate starts its own source (or says why there is none) when it runs.
            Err(e) => tracing::info!("process events not armed before the write: {e}"),
        }
    }

    fn wait(&self, req: &GateRequest<'_>, observe: &mut dyn FnMut(&Observation)) -> GateVerdict {
        let clock = InterruptibleClock { req };
        match &req.spec.target {
            GateTarget::StaticPods => self.static_pods(req, observe),
            GateTarget::Nothing => {
                // No process is expected to start: events armed for this wait are not needed.
                drop(self.armed.borrow_mut().take());
                let watch = KeepWatch::new(&self.root, req.spec, KEEP_PROBE_TIMEOUT);
                keep::wait(&watch, req, &clock, self.poll, observe)
            }
            GateTarget::Kubelet { .. } => {
                let armed = self.armed.borrow_mut().take();
                // The unit the transaction journaled (a recovery may run without
                // --kubelet-unit), else this gate's.
                let unit = req
                    .restart
                    .map_or(self.kubelet_unit.as_str(), |r| r.unit.as_str());
                super::kubelet::wait(&self.root, unit, self.poll, armed, req, observe)
            }
        }
    }
}

/// How long one probe of a kept process may take.
const KEEP_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl ProbeGate {
    /// The static pod gate: the component of the gated manifest restarted with its new argv
    /// and healthy through the stability window.
    fn static_pods(
        &self,
        req: &GateRequest<'_>,
        observe: &mut dyn FnMut(&Observation),
    ) -> GateVerdict {
        let Some((path, manifest)) = req.manifests.first() else {
            return GateVerdict::skipped();
        };
        let mut params =
            match params_for(&self.root, req.spec, manifest, req.written_at, req.deadline) {
                Ok(p) => p,
                Err(why) => {
                    return GateVerdict::failed(
                        FailReason::Unavailable,
                        format!("{}: {why}", path.display()),
                    )
                }
            };
        params.poll_interval = self.poll;
        params.max_crashes = req.spec.max_crashes;
        // The argv being left: its processes ending (or crash-looping) are reported apart.
        params.previous_argv = req
            .previous
            .first()
            .copied()
            .flatten()
            .and_then(|m| kharden_manifest::inspect(m, req.spec.container.as_deref()).ok())
            .map(|i| i.argv);
        let mut io = self.io(&params);
        let clock = InterruptibleClock { req };
        let verdict = kharden_gate::run_gate_with(&params, &mut io, &clock, observe);
        if req.interrupted() {
            return GateVerdict::failed(
                FailReason::Interrupted,
                format!("by signal {} during the gate", req.interrupts.last_signal()),
            );
        }
        match verdict {
            GateVerdict::Passed {
                pid,
                healthy_probes,
                stable_for,
                ..
            } => {
                tracing::info!(
                    "gate passed: pid {pid:?}, {healthy_probes} healthy probes over {stable_for:?}"
                );
                verdict
            }
            failed => {
                super::name_the_argv(failed, &params.expected_argv, "the manifest's command", "")
            }
        }
    }
}
