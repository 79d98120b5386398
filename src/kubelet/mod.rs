//! The kubelet's configuration as gated transactions (CIS 4.2), with a verified last-known-good
//! rollback.
//!
//! Why a module of its own: a static pod changes when its manifest changes (the kubelet restarts
//! it), but the kubelet reads its configuration only when it starts, from up to four places
//! (flags in environment files and in its unit, `--config-dir` drop-ins, the `--config` file,
//! defaults). A kubelet that refuses its new configuration exits, systemd restarts it every
//! `RestartSec` forever, and the node goes NotReady. So a kubelet change is: find the source
//! that wins ([`locate`], [`plan`]), write it as a transaction, restart the kubelet through
//! `systemctl` (journaled like a write, [`crate::services`]), prove the restarted kubelet healthy
//! with its static pods still running ([`crate::gate::kubelet`]), audit that what was written is
//! what it runs ([`audit`]), and roll back (files restored, kubelet restarted again, proven
//! healthy again) on any failure. Recovery at boot, before the kubelet starts, restores the
//! files; a recovery while a kubelet runs restarts and gates it as a rollback does.
//!
//! - [`unit`]: the unit, its drop-ins, environment files, and the command line they expand to,
//!   each word with where it comes from;
//! - [`locate`]: the running kubelet (from `/proc`), matched with its unit, and its sources;
//! - [`plan`]: a change planned on the source that wins, verified on the effective
//!   configuration it would give, as a [`crate::txn::Plan`];
//! - [`audit`]: the transaction's audit on the restarted kubelet;
//! - [`kubeconfig`]: the kubelet's credentials, for the gate's question about the Node;
//! - [`harden`]: the kubelet checks `kharden harden` fixes (see docs/kubelet.md).

pub mod audit;
pub mod harden;
pub mod kubeconfig;
pub mod locate;
pub mod plan;
pub mod unit;

pub use locate::{expected_argv, locate, KubeletError, Located};
pub use plan::{plan, KubeletPlan, Placement, PlannedFile, KHARDEN_DROPIN};

use crate::error::Error;
use crate::journal::{AuditSpec, GateSpec, TxnKind};
use crate::report::TxnReport;
use crate::root::HostRoot;
use crate::txn::{Outcome, Plan, PlanOptions};
use kharden_kubelet_config::ConfigChange;

impl From<KubeletError> for Error {
    fn from(e: KubeletError) -> Error {
        match e {
            KubeletError::Root(r) => Error::Root(r),
            other => Error::refused(other.to_string()),
        }
    }
}

/// How kharden reaches the kubelet's service manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletService {
    /// `kubelet.service` (`--kubelet-unit`).
    pub unit: String,
    /// The `systemctl` program (`--systemctl`, `KHARDEN_SYSTEMCTL`, else `systemctl` on PATH).
    pub systemctl: String,
}

impl Default for KubeletService {
    fn default() -> Self {
        KubeletService {
            unit: "kubelet.service".into(),
            systemctl: "systemctl".into(),
        }
    }
}

/// Refuse to change a kubelet that is not healthy now: its `/healthz` must answer `ok`, and the
/// Node must not be NotReady when the API server can be asked. Why: a rollback is proven by the
/// same gate; on a kubelet already unhealthy no change could ever pass it, and every rollback
/// would end needs-manual.
pub fn preflight(root: &HostRoot, p: &KubeletPlan) -> Result<(), KubeletError> {
    let target = kharden_gate::parse_url(&p.healthz_before)
        .map_err(|e| KubeletError::Refused(format!("{}: {e}", p.healthz_before)))?;
    let out = kharden_gate::probe_with(
        &target,
        &kharden_gate::TlsSettings::default(),
        std::time::Duration::from_secs(5),
        false,
    );
    if !out.class.is_healthy() || out.detail.trim() != "200 ok" {
        return Err(KubeletError::Refused(format!(
            "the kubelet is not healthy before the change ({} answered {}: {}): no change could be proven on it, nor its rollback; nothing was changed",
            p.healthz_before, out.class, out.detail
        )));
    }
    if let (Some(k), Some(n)) = (&p.kubeconfig, &p.node) {
        if let Ok(mut check) = crate::gate::kubelet::NodeCheck::new(root, k, n) {
            if let crate::gate::kubelet::NodeAnswer::NotReady(why) =
                check.ask(std::time::Duration::from_secs(3))
            {
                return Err(KubeletError::Refused(format!(
                    "{why} before the change: the gate requires the Node Ready, so neither the change nor its rollback could pass; nothing was changed"
                )));
            }
        }
    }
    Ok(())
}

/// `kharden kubelet set KEY=VALUE... [--unset KEY]`.
#[derive(Debug, Clone)]
pub struct SetRequest {
    pub root: HostRoot,
    pub service: KubeletService,
    /// In the order given.
    pub changes: Vec<ConfigChange>,
    pub gate: GateSpec,
    pub audit: AuditSpec,
    pub options: PlanOptions,
}

impl SetRequest {
    /// The one line that names the request, before it is planned (a refusal's summary).
    pub fn summary(&self) -> String {
        format!(
            "kubelet set {}",
            self.changes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    /// Find the kubelet and plan the change; every refusal happens here, before any change
    /// (with the gate on, a kubelet that is not healthy now is refused too: see [`preflight`]).
    pub fn prepare(&self) -> Result<KubeletPlan, Error> {
        if self.changes.is_empty() {
            return Err(Error::Usage(
                "no change given: kharden kubelet set KEY=VALUE... [--unset KEY]".into(),
            ));
        }
        let loc = locate(&self.root, &self.service.unit)?;
        let p = plan(&loc, &self.changes)?;
        if self.gate.enabled && !p.unchanged() {
            preflight(&self.root, &p)?;
        }
        Ok(p)
    }

    /// The transaction of a prepared change.
    pub fn plan(&self, p: &KubeletPlan) -> Plan {
        p.to_plan(
            TxnKind::Apply,
            p.summary("kubelet set"),
            &self.gate,
            &self.audit,
            self.options,
            &self.service.unit,
            &self.service.systemctl,
        )
    }
}

/// The result of `kharden kubelet set`: the transaction's, and where each change went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KubeletReport {
    #[serde(flatten)]
    pub txn: TxnReport,
    pub placements: Vec<Placement>,
    /// What a `kubeadm upgrade` (or re-join) would undo.
    pub upgrade_notes: Vec<String>,
    /// The static pods the gate kept watching.
    pub kept: Vec<String>,
}

impl KubeletReport {
    pub fn of(outcome: &Outcome, p: &KubeletPlan) -> KubeletReport {
        KubeletReport {
            txn: TxnReport::of(outcome, "kubelet configuration", &p.diff),
            placements: p.placements.clone(),
            upgrade_notes: p.upgrade_notes.clone(),
            kept: p
                .keep
                .iter()
                .map(|k| format!("{} (pid {})", k.component, k.pid))
                .collect(),
        }
    }

    pub fn dry_run(p: &KubeletPlan) -> KubeletReport {
        KubeletReport {
            txn: if p.unchanged() {
                TxnReport::of(&Outcome::Unchanged, "kubelet configuration", "")
            } else {
                TxnReport::dry_run("kubelet configuration", p.diff.clone())
            },
            ..KubeletReport::of(&Outcome::Unchanged, p)
        }
    }
}
