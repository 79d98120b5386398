//! The kubelet's gate: after `systemctl restart kubelet`, prove that a *new* kubelet runs the
//! configuration just written, stays healthy, and that the node's static pods kept running.
//!
//! Each rule closes a way a broken kubelet change could pass (DESIGN.md, "The health gate" 6):
//! - **Restart proof.** A kubelet process (`argv[0]` named `kubelet`, of the node under
//!   `--root`) that started after the write, with the command line its unit gives now (computed
//!   from the unit and the environment files as they are after the write: an edited flag must
//!   be on it). The old kubelet answered `/healthz` a moment ago; without this, its answer would
//!   pass a configuration the new one refuses.
//! - **Health.** `GET /healthz` on the side's `healthzBindAddress:healthzPort` (the after side
//!   forward, the before side in a rollback: a change may move it) answers `200 ok`, from a
//!   socket the proven process owns, through the stability window, with the same process. The
//!   loop is the gate crate's ([`kharden_gate::run_gate_with`]): a crash loop resets the
//!   streak, and every start and exit is seen through process events, so `--max-crashes`
//!   crashes (a kubelet refusing its configuration exits within milliseconds, systemd starts it
//!   again every `RestartSec`) end the gate at once.
//! - **The static pods.** The containers belong to the runtime, not to the kubelet: they must be
//!   the same processes, and healthy by their own probes, throughout ([`KeepWatch::look`] each
//!   round). A kept pod that exits ends the gate.
//! - **The Node.** When the API server answers with the kubelet's own credentials (its
//!   kubeconfig's server, CA and client certificate), the Node's `Ready` condition must be
//!   `True`. When it cannot be asked (no route, credentials refused, no such Node), the round's
//!   detail says so once, and the gate goes on without it: a worker must be hardenable while
//!   the control plane is down.

use super::keep::{KeepWatch, Look};
use super::{GateRequest, GateVerdict, Observation, Purpose};
use crate::assess::procs;
use crate::journal::GateTarget;
use crate::kubelet::kubeconfig::Kubeconfig;
use crate::root::HostRoot;
use kharden_gate::{
    argv_matches, fetch, parse_url, pid_listens_on, probe_with, started_at_or_after,
    ClientCertFiles, Clock, EventSource, FailReason, FoundProcess, GateIo, GateParams, ProbeClass,
    ProbeOutcome, ProbeTarget, ProcScanner, Scheme, TlsSettings, WatchedIo,
};
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

/// How long one look at a kept static pod may take.
const KEEP_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one question to the API server may take.
const API_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest Node object read.
const NODE_LIMIT: u64 = 1 << 20;

/// What the API server said about the Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeAnswer {
    Ready,
    /// It answered, and the Node is not Ready: why.
    NotReady(String),
    /// It could not be asked: why.
    Unknown(String),
}

/// The question about the Node's `Ready` condition, with the kubelet's credentials.
#[derive(Debug, Clone)]
pub struct NodeCheck {
    node: String,
    target: ProbeTarget,
    tls: TlsSettings,
    /// Verify the server's certificate against this name instead of the URL's host (kubeadm's
    /// API server certificate carries `kubernetes`; the kubelet's kubeconfig may name an IP
    /// the certificate lacks): found on the first TLS error.
    fallback_name: bool,
}

impl NodeCheck {
    /// From the kubelet's kubeconfig (host path) and Node name. `Err`: why it cannot be asked.
    pub fn new(root: &HostRoot, kubeconfig: &str, node: &str) -> Result<NodeCheck, String> {
        let k = Kubeconfig::read(root, kubeconfig)?;
        let server = k
            .server
            .ok_or_else(|| format!("{kubeconfig} names no API server"))?;
        let mut target = parse_url(&server).map_err(|e| format!("{server}: {e}"))?;
        if target.scheme != Scheme::Https {
            return Err(format!("{server}: not HTTPS"));
        }
        if let Some(p) = k.ca_problem {
            return Err(p);
        }
        target.path = format!("{}/api/v1/nodes/{node}", target.path.trim_end_matches('/'));
        let client_cert = match (k.client_cert, k.client_key) {
            (Some(cert), Some(key)) => Some(ClientCertFiles { cert, key }),
            _ => None,
        };
        Ok(NodeCheck {
            node: node.to_string(),
            target,
            tls: TlsSettings {
                ca_file: k.ca_file,
                server_name: None,
                client_cert,
            },
            fallback_name: false,
        })
    }

    /// Ask once.
    pub fn ask(&mut self, timeout: Duration) -> NodeAnswer {
        let (mut out, mut body) = fetch(&self.target, &self.tls, timeout, true, NODE_LIMIT);
        if out.class == ProbeClass::TlsError
            && !self.fallback_name
            && self.target.host.parse::<std::net::IpAddr>().is_ok()
        {
            self.fallback_name = true;
            self.tls.server_name = Some("kubernetes".into());
            (out, body) = fetch(&self.target, &self.tls, timeout, true, NODE_LIMIT);
            if out.class == ProbeClass::TlsError {
                self.tls.server_name = None;
            }
        }
        let url = self.target.url();
        match out.class {
            ProbeClass::Healthy(_) => node_ready(&self.node, &body),
            ProbeClass::Unauthorized(c) => NodeAnswer::Unknown(format!(
                "the API server at {url} refused the kubelet's credentials ({c})"
            )),
            ProbeClass::OtherStatus(404) => {
                NodeAnswer::Unknown(format!("the API server has no Node named {}", self.node))
            }
            c => NodeAnswer::Unknown(format!(
                "the API server at {url} did not answer ({c}: {})",
                out.detail
            )),
        }
    }
}

/// The `Ready` condition of a Node object (JSON).
pub fn node_ready(node: &str, body: &[u8]) -> NodeAnswer {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return NodeAnswer::Unknown(format!("the Node {node} the API server sent is not JSON"));
    };
    let conds = v["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let Some(ready) = conds.iter().find(|c| c["type"] == "Ready") else {
        return NodeAnswer::Unknown(format!("the Node {node} has no Ready condition yet"));
    };
    match ready["status"].as_str() {
        Some("True") => NodeAnswer::Ready,
        s => NodeAnswer::NotReady(format!(
            "Node {node} is Ready={} ({}: {})",
            s.unwrap_or("?"),
            ready["reason"].as_str().unwrap_or("no reason"),
            ready["message"].as_str().unwrap_or("")
        )),
    }
}

/// What the gate loop's rounds found beside the kubelet's own answer.
#[derive(Default)]
struct Shared {
    /// Observations of the kept static pods, journaled before the round's.
    pending: Vec<Observation>,
    /// A kept static pod exited or was restarted: the gate ends.
    lost: Option<String>,
}

/// The kubelet's gate I/O: the process lookup, `/healthz`, the kept pods and the Node.
struct KubeletIo<'a> {
    root: HostRoot,
    scanner: ProcScanner,
    proc_dir: PathBuf,
    expected: Option<Vec<String>>,
    healthz: ProbeTarget,
    keep: KeepWatch,
    clock: &'a dyn Clock,
    node: Result<NodeCheck, String>,
    /// The Node's state was said to be unknown (said once).
    node_said: bool,
    shared: Rc<RefCell<Shared>>,
}

impl GateIo for KubeletIo<'_> {
    fn find_process(
        &mut self,
        _argv: &[String],
        since: Option<SystemTime>,
    ) -> Result<Option<FoundProcess>, String> {
        let boot = self.scanner.boot_time().map_err(|e| e.to_string())?;
        let tick = self.scanner.tick();
        let mut best: Option<(u64, FoundProcess)> = None;
        for p in procs::scan(&self.proc_dir) {
            if p.binary() != "kubelet" || !p.belongs_to(&self.root) {
                continue;
            }
            if let Some(e) = &self.expected {
                if !argv_matches(e, &p.argv) {
                    continue;
                }
            }
            let Some(info) = self.scanner.process(p.pid, boot) else {
                continue;
            };
            if since.is_some_and(|t| !started_at_or_after(info.started_at, t, tick)) {
                continue;
            }
            if best.as_ref().is_none_or(|(t, _)| info.start_ticks > *t) {
                best = Some((
                    info.start_ticks,
                    FoundProcess {
                        pid: p.pid,
                        argv: p.argv,
                    },
                ));
            }
        }
        Ok(best.map(|(_, p)| p))
    }

    fn probe(&mut self, timeout: Duration) -> ProbeOutcome {
        let out = probe_with(&self.healthz, &TlsSettings::default(), timeout, false);
        if !out.class.is_healthy() {
            return out;
        }
        if out.detail.trim() != "200 ok" {
            return ProbeOutcome {
                class: ProbeClass::OtherStatus(200),
                detail: format!("/healthz answered {:?}, not `ok`", out.detail),
            };
        }
        if !self.keep.is_empty() {
            let shared = self.shared.clone();
            let look = self.keep.look(self.clock, &mut |o| {
                shared.borrow_mut().pending.push(o.clone());
            });
            match look {
                Look::Fine => {}
                Look::Unhealthy(why) => {
                    return ProbeOutcome {
                        class: ProbeClass::Error,
                        detail: format!("/healthz ok, but a static pod is not healthy: {why}"),
                    }
                }
                Look::Lost(why) => {
                    self.shared.borrow_mut().lost = Some(why.clone());
                    return ProbeOutcome {
                        class: ProbeClass::Error,
                        detail: format!("a static pod was lost: {why}"),
                    };
                }
            }
        }
        let mut detail = "200 ok".to_string();
        match &mut self.node {
            Ok(n) => match n.ask(API_TIMEOUT.min(timeout)) {
                NodeAnswer::Ready => detail.push_str(&format!("; Node {} Ready", n.node)),
                NodeAnswer::NotReady(why) => {
                    return ProbeOutcome {
                        class: ProbeClass::Error,
                        detail: format!("/healthz ok, but {why}"),
                    }
                }
                NodeAnswer::Unknown(why) if !self.node_said => {
                    self.node_said = true;
                    detail.push_str(&format!(
                        "; the Node's Ready condition could not be checked: {why}"
                    ));
                }
                NodeAnswer::Unknown(_) => {}
            },
            Err(why) if !self.node_said => {
                self.node_said = true;
                detail.push_str(&format!(
                    "; the Node's Ready condition could not be checked: {why}"
                ));
            }
            Err(_) => {}
        }
        ProbeOutcome {
            class: ProbeClass::Healthy(200),
            detail,
        }
    }

    fn listens_on(&mut self, pid: u32, port: u16) -> Result<Option<bool>, String> {
        pid_listens_on(&self.proc_dir, pid, port).map_err(|e| e.to_string())
    }
}

/// The loop's clock, cut short by a signal or by a lost static pod.
struct KubeletClock<'a> {
    req: &'a GateRequest<'a>,
    shared: Rc<RefCell<Shared>>,
}

impl KubeletClock<'_> {
    fn stop(&self) -> bool {
        self.req.interrupted() || self.shared.borrow().lost.is_some()
    }
}

impl Clock for KubeletClock<'_> {
    fn now(&self) -> SystemTime {
        if self.stop() {
            self.req.deadline + Duration::from_secs(1)
        } else {
            crate::txn::Clock::now(&crate::txn::SystemClock)
        }
    }
    fn sleep(&self, d: Duration) {
        let slice = Duration::from_millis(50);
        let mut left = d;
        while !left.is_zero() && !self.stop() {
            let s = left.min(slice);
            std::thread::sleep(s);
            left = left.saturating_sub(s);
        }
    }
}

/// Run the kubelet's gate for `req` (its target must be [`GateTarget::Kubelet`]).
pub fn wait(
    root: &HostRoot,
    unit: &str,
    poll: Duration,
    armed: Option<EventSource>,
    req: &GateRequest<'_>,
    observe: &mut dyn FnMut(&Observation),
) -> GateVerdict {
    let GateTarget::Kubelet {
        healthz_before,
        healthz_after,
        kubeconfig,
        node,
    } = &req.spec.target
    else {
        return GateVerdict::failed(FailReason::Unavailable, "not a kubelet transaction");
    };
    let url = match req.purpose {
        Purpose::Forward => healthz_after,
        Purpose::Rollback => healthz_before,
    };
    let healthz = match parse_url(url) {
        Ok(t) => t,
        Err(e) => {
            return GateVerdict::failed(FailReason::Unavailable, format!("healthz {url}: {e}"))
        }
    };
    // The command line a restart gives now (the side just written).
    let expected = crate::kubelet::expected_argv(root, unit);
    let shared = Rc::new(RefCell::new(Shared::default()));
    let clock = KubeletClock {
        req,
        shared: shared.clone(),
    };
    let mut params = GateParams::new(
        expected
            .as_ref()
            .cloned()
            .unwrap_or_else(|_| vec!["kubelet".into()]),
        req.written_at,
        req.deadline,
        healthz.clone(),
        TlsSettings::default(),
    );
    params.poll_interval = poll;
    params.stable_for = Duration::from_secs(req.spec.stable_for_secs);
    params.max_crashes = req.spec.max_crashes;
    params.proc_root = root.proc_dir();
    let node_check = match (kubeconfig, node) {
        (Some(k), Some(n)) => NodeCheck::new(root, k, n),
        (None, _) => Err("the kubelet has no --kubeconfig (standalone)".into()),
        (_, None) => Err("the Node's name is not known".into()),
    };
    let io = KubeletIo {
        root: root.clone(),
        scanner: ProcScanner::new(root.proc_dir()),
        proc_dir: root.proc_dir(),
        expected: expected.as_ref().ok().cloned(),
        healthz,
        keep: KeepWatch::new(root, req.spec, KEEP_PROBE_TIMEOUT),
        clock: &clock,
        node: node_check,
        node_said: false,
        shared: shared.clone(),
    };
    // Events armed before the write (and so before the restart) see every start of the new
    // kubelet, even one that lives a millisecond.
    let mut io = match armed {
        Some(source) => WatchedIo::with_source(io, source, &params),
        None => WatchedIo::start(io, &params),
    };
    let mut first = true;
    let unit_note = expected.as_ref().err().cloned();
    let verdict = kharden_gate::run_gate_with(&params, &mut io, &clock, &mut |o| {
        let kept = std::mem::take(&mut shared.borrow_mut().pending);
        for k in &kept {
            observe(k);
        }
        if first {
            first = false;
            if let Some(why) = &unit_note {
                let mut o = o.clone();
                o.note = format!(
                    "{}{}the command line a restart gives could not be computed ({why}): any kubelet started after the write is taken",
                    o.note,
                    if o.note.is_empty() { "" } else { "; " }
                );
                observe(&o);
                return;
            }
        }
        observe(o);
    });
    if req.interrupted() {
        return GateVerdict::failed(
            FailReason::Interrupted,
            format!("by signal {} during the gate", req.interrupts.last_signal()),
        );
    }
    if let Some(why) = shared.borrow().lost.clone() {
        return GateVerdict::failed(
            FailReason::CrashLoop,
            format!("{why} while the kubelet restarted: the node's static pods must keep running"),
        );
    }
    super::name_the_argv(
        verdict,
        &params.expected_argv,
        "the kubelet's command line",
        &format!(" (see `journalctl -u {unit}` for why it exits)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ready_condition() {
        let ready = br#"{"kind":"Node","status":{"conditions":[{"type":"MemoryPressure","status":"False"},{"type":"Ready","status":"True","reason":"KubeletReady"}]}}"#;
        assert_eq!(node_ready("n", ready), NodeAnswer::Ready);
        let not = br#"{"status":{"conditions":[{"type":"Ready","status":"False","reason":"KubeletNotReady","message":"container runtime network not ready"}]}}"#;
        match node_ready("n", not) {
            NodeAnswer::NotReady(w) => assert!(w.contains("network not ready"), "{w}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(node_ready("n", b"{}"), NodeAnswer::Unknown(_)));
        assert!(matches!(node_ready("n", b"<html>"), NodeAnswer::Unknown(_)));
    }
}
