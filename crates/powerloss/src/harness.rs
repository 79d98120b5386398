//! Running kharden's real engine on the simulated disk: the seams (gate, audit, clock) scripted,
//! the journal opened through redb's backend seam, and every outcome the engine *reported*
//! before a crash recorded, because those are the promises a power cut must not break.

use crate::sim::{lock, Shared, SimBackend, SimStorage};
use kharden::audit::{Audit, AuditRequest, AuditVerdict};
use kharden::gate::{FailReason, Gate, GateRequest, GateVerdict, Observation, ProbeClass};
use kharden::journal::{AuditSpec, GateSpec, Journal, JournalError, TxId, TxnKind};
use kharden::txn::{Clock, Engine, FileOp, Outcome, Plan};
use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The manifests directory of the simulated node.
pub const MANIFESTS: &str = "/etc/kubernetes/manifests";

/// A managed path in the manifests directory.
pub fn manifest(name: &str) -> PathBuf {
    PathBuf::from(MANIFESTS).join(name)
}

/// A clock that advances one millisecond per reading: deterministic, and never still.
#[derive(Debug, Default)]
pub struct SimClock(Cell<u64>);

impl SimClock {
    pub fn new() -> SimClock {
        SimClock(Cell::new(1_700_000_000_000))
    }
}

impl Clock for SimClock {
    fn now(&self) -> SystemTime {
        let t = self.0.get() + 1;
        self.0.set(t);
        UNIX_EPOCH + Duration::from_millis(t)
    }
    fn sleep(&self, d: Duration) {
        self.0.set(self.0.get() + d.as_millis() as u64);
    }
}

/// A gate answering from a script, one verdict per call; passes when the script is empty.
#[derive(Debug, Default)]
pub struct ScriptedGate(RefCell<Vec<bool>>);

impl ScriptedGate {
    pub fn new(verdicts: Vec<bool>) -> ScriptedGate {
        ScriptedGate(RefCell::new(verdicts))
    }
}

impl Gate for ScriptedGate {
    fn wait(&self, req: &GateRequest<'_>, observe: &mut dyn FnMut(&Observation)) -> GateVerdict {
        observe(&Observation::probe(
            req.written_at.unwrap_or(UNIX_EPOCH),
            Some(4242),
            ProbeClass::Healthy(200),
            "simulated",
        ));
        let pass = {
            let mut v = self.0.borrow_mut();
            if v.is_empty() {
                true
            } else {
                v.remove(0)
            }
        };
        if pass {
            GateVerdict::Passed {
                pid: Some(4242),
                argv: None,
                healthy_probes: 1,
                stable_for: std::time::Duration::ZERO,
            }
        } else {
            GateVerdict::failed(FailReason::NotStable, "simulated gate failure")
        }
    }
}

/// The service manager of the simulated machine: a restart runs the kubelet on what its
/// configuration file holds now ([`crate::sim::World::restart_service`], a crash point like a
/// storage operation); the kubelet runs until a power cut.
#[derive(Clone)]
pub struct SimServices {
    pub world: Shared,
}

/// The kubelet's configuration file in the kubelet scenarios.
pub fn kubelet_config() -> PathBuf {
    PathBuf::from("/var/lib/kubelet/config.yaml")
}

/// The environment file whose `KUBELET_EXTRA_ARGS` the kubelet's unit reads.
pub fn kubelet_env() -> PathBuf {
    PathBuf::from("/etc/default/kubelet")
}

/// kharden's own drop-in in the kubelet's `--config-dir`.
pub fn kubelet_dropin() -> PathBuf {
    PathBuf::from("/etc/kubernetes/kubelet.conf.d/99-kharden.conf")
}

/// Every file the simulated kubelet reads when it starts: what it runs is what they held then.
pub fn kubelet_files() -> Vec<PathBuf> {
    vec![kubelet_config(), kubelet_env(), kubelet_dropin()]
}

impl kharden::services::Services for SimServices {
    fn restart(&self, service: &kharden::journal::Restart) -> Result<String, String> {
        lock(&self.world)
            .restart_service(&kubelet_files())
            .map(|()| format!("{} restarted (simulated)", service.unit))
            .map_err(|e| e.to_string())
    }
    fn is_active(&self, _service: &kharden::journal::Restart) -> Result<bool, String> {
        let w = lock(&self.world);
        Ok(w.service.is_some() && !w.bugs.service_never_active)
    }
}

/// An audit with a fixed verdict.
#[derive(Debug, Clone, Copy)]
pub struct FixedAudit(pub bool);

impl Audit for FixedAudit {
    fn check(&self, _req: &AuditRequest<'_>) -> AuditVerdict {
        AuditVerdict {
            passed: self.0,
            detail: if self.0 {
                "ok".into()
            } else {
                "simulated audit failure".into()
            },
            output: None,
        }
    }
}

/// A kubelet transaction on its configuration file: written, the kubelet restarted, gated on it.
pub fn kubelet_plan(after: Vec<u8>) -> Plan {
    kubelet_plan_of(vec![FileOp::contents(kubelet_config(), Some(after))])
}

/// A kubelet transaction writing `ops` (several of the kubelet's files), then restarting it.
pub fn kubelet_plan_of(ops: Vec<FileOp>) -> Plan {
    Plan {
        ops,
        gate: GateSpec {
            enabled: true,
            timeout_secs: 60,
            stable_for_secs: 1,
            target: kharden::journal::GateTarget::Kubelet {
                healthz_before: "http://127.0.0.1:10248/healthz".into(),
                healthz_after: "http://127.0.0.1:10248/healthz".into(),
                kubeconfig: None,
                node: None,
            },
            ..Default::default()
        },
        restart: Some(kharden::journal::Restart {
            unit: "kubelet.service".into(),
            systemctl: "systemctl".into(),
        }),
        ..plan(&[], true, true)
    }
}

/// A plan writing `ops` (path, new contents or `None` to delete); the manifest is gated.
pub fn plan(ops: &[(PathBuf, Option<Vec<u8>>)], gate: bool, audit: bool) -> Plan {
    Plan {
        kind: TxnKind::Apply,
        summary: "power-loss simulation".into(),
        ops: ops
            .iter()
            .map(|(p, a)| FileOp {
                gated: p.extension().is_some_and(|e| e == "yaml")
                    && p.to_string_lossy().contains("kube-"),
                ..FileOp::contents(p.clone(), a.clone())
            })
            .collect(),
        gate: GateSpec {
            enabled: gate,
            timeout_secs: 60,
            stable_for_secs: 1,
            ..Default::default()
        },
        audit: AuditSpec {
            builtin: audit,
            script: None,
            script_timeout_secs: 5,
        },
        options: kharden::txn::PlanOptions::default(),
        restart: None,
    }
}

/// A plan setting the mode and owner of `ops`, gated on one process that must stay up (the
/// scripted gate answers for it).
pub fn meta_plan(ops: &[(PathBuf, kharden::durable::FileMeta)], gate: bool) -> Plan {
    Plan {
        ops: ops
            .iter()
            .map(|(p, m)| FileOp::metadata(p.clone(), *m))
            .collect(),
        gate: GateSpec {
            enabled: gate,
            timeout_secs: 60,
            stable_for_secs: 1,
            target: kharden::journal::GateTarget::Nothing,
            keep: vec![kharden::journal::Kept {
                component: "etcd".into(),
                pid: 4242,
                start_ticks: 1,
                manifest: None,
            }],
            ..Default::default()
        },
        ..plan(&[], false, false)
    }
}

/// Open the journal on the world's journal file.
pub fn open_journal(world: &Shared) -> Result<Journal, JournalError> {
    if !lock(world).journal_exists() {
        // The first run on an empty state directory: build the journal under a temp name and
        // rename it in, as `journal/store.rs` does, so that a power cut at any point leaves
        // either no journal or a whole one.
        let io = |e: std::io::Error| JournalError::Io {
            path: PathBuf::from(crate::sim::STATE_DIR),
            source: e,
        };
        lock(world).begin_journal_creation().map_err(io)?;
        drop(Journal::with_backend(SimBackend {
            world: world.clone(),
        })?);
        lock(world).finish_journal_creation().map_err(io)?;
    }
    Journal::with_backend(SimBackend {
        world: world.clone(),
    })
}

/// What one workload reported before the machine went down.
pub type Reported = Vec<(TxId, Outcome)>;

/// Everything a workload needs: the journal, the storage, and the place to record reports.
pub struct Ctx<'a> {
    pub world: &'a Shared,
    pub journal: &'a Journal,
    pub storage: &'a SimStorage,
    pub clock: &'a SimClock,
    pub services: SimServices,
    pub reported: RefCell<Reported>,
}

impl<'a> Ctx<'a> {
    pub fn engine<'b>(&'b self, gate: &'b dyn Gate, audit: &'b dyn Audit) -> Engine<'b> {
        Engine::new(self.journal, self.storage, gate, audit, self.clock)
            .with_services(&self.services)
    }

    /// Whether the power is still on (outcomes returned after a crash were never seen).
    pub fn alive(&self) -> bool {
        lock(self.world).crashed.is_none()
    }

    /// Record an outcome the engine returned, if the machine was still up to report it.
    pub fn report(&self, outcome: &Outcome) {
        if !self.alive() {
            return;
        }
        let id = match outcome {
            Outcome::Unchanged => return,
            Outcome::Committed { txid } => *txid,
            Outcome::RolledBack { txid, .. } => *txid,
            Outcome::NeedsManual { txid, .. }
            | Outcome::LeftOpen { txid, .. }
            | Outcome::Aborted { txid, .. } => *txid,
        };
        self.reported.borrow_mut().push((id, outcome.clone()));
    }

    /// Run a plan and record its outcome.
    pub fn run(&self, plan: Plan, gate: &dyn Gate, audit: &dyn Audit) -> Option<Outcome> {
        match self.engine(gate, audit).run(plan) {
            Ok(o) => {
                self.report(&o);
                Some(o)
            }
            Err(_) => None,
        }
    }
}

/// Run `f` with a journal opened on `world` (`None` when the journal does not open, e.g. the
/// power went off during the open).
pub fn with_ctx<R>(
    world: &Shared,
    f: impl FnOnce(&Ctx<'_>) -> R,
) -> Result<(R, Reported), JournalError> {
    let journal = open_journal(world)?;
    let storage = SimStorage {
        world: world.clone(),
    };
    let clock = SimClock::new();
    let ctx = Ctx {
        world,
        journal: &journal,
        storage: &storage,
        clock: &clock,
        services: SimServices {
            world: world.clone(),
        },
        reported: RefCell::new(Vec::new()),
    };
    let r = f(&ctx);
    let reported = ctx.reported.into_inner();
    drop(journal);
    Ok((r, reported))
}

/// Run `f` on an already open journal (a long-running process between power cuts).
pub fn with_ctx_journal<R>(
    world: &Shared,
    journal: &Journal,
    storage: &SimStorage,
    f: impl FnOnce(&Ctx<'_>) -> R,
) -> (R, Reported) {
    let clock = SimClock::new();
    let ctx = Ctx {
        world,
        journal,
        storage,
        clock: &clock,
        services: SimServices {
            world: world.clone(),
        },
        reported: RefCell::new(Vec::new()),
    };
    let r = f(&ctx);
    (r, ctx.reported.into_inner())
}
