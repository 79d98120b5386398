//! The kubelet's part of `kharden harden`: the 4.2 checks with an automated fix, applied as
//! kubelet transactions (one restart, one gate each), and bisected like a static pod's group
//! when the kubelet does not survive them together.
//!
//! Which checks fail is decided by the *effective* reading (what the kubelet really runs, from
//! the same gathering `kharden audit` uses), not kube-bench's: fixing a check kube-bench fails
//! only because it reads another file than the kubelet's `--config` would change nothing the
//! kubelet does, and a check whose value holds by default needs no file written. The fixes are
//! the catalog's ([`kharden_catalog::KubeletFix`]); those it leaves to a person (certificates,
//! CSR approval, the node's identity, workload-visible limits) are listed as manual with the
//! catalog's reason.

use super::{locate, plan, KubeletService};
use crate::assess::gather;
use crate::assess::{procs, SourcePolicy};
use crate::durable::Storage;
use crate::error::Result;
use crate::exit;
use crate::harden::{step_of, HardenRequest, Reasoned, StepOutcome, StepResult};
use crate::journal::TxnKind;
use crate::txn::{Engine, TxnError};
use kharden_catalog::{evaluate_check, Check, Component, KubeletValue, Target};
use kharden_kubelet_config::{ConfigChange, KeyPath, Scalar};

const COMPONENT: &str = "kubelet";

/// What the kubelet's checks look like on this node.
#[derive(Debug, Default)]
pub struct Assessed {
    pub passed: Vec<&'static str>,
    pub manual: Vec<Reasoned>,
    pub not_evaluated: Vec<Reasoned>,
    /// Failing checks with an automated fix, in id order.
    pub todo: Vec<&'static Check>,
}

/// The kubelet checks of the benchmark.
fn kubelet_checks(req: &HardenRequest) -> Vec<&'static Check> {
    req.bench
        .checks
        .iter()
        .filter(|c| c.target == Target::Node && c.component() == Some(Component::Kubelet))
        .collect()
}

/// Whether `id` names a kubelet check (for `--only`/`--skip`).
pub fn is_kubelet_check(req: &HardenRequest, id: &str) -> bool {
    kubelet_checks(req).iter().any(|c| c.id == id)
}

/// Evaluate the kubelet's checks (the selected ones) on the node.
pub fn assess(req: &HardenRequest, storage: &dyn Storage) -> Result<Assessed> {
    let mut out = Assessed::default();
    let checks: Vec<&'static Check> = kubelet_checks(req)
        .into_iter()
        .filter(|c| req.is_selected(c.id))
        .collect();
    if checks.is_empty() {
        return Ok(out);
    }
    let processes = procs::scan(&req.root.proc_dir());
    let scan = gather::scan_node(
        storage,
        &req.root,
        &req.manifests_dir,
        SourcePolicy::Auto,
        processes,
    )?;
    if scan.kubelet().is_none() {
        // A node without a kubelet of its own (a control plane run by another supervisor):
        // only a request naming kubelet checks hears about it.
        if !req.only.is_empty() {
            for c in checks {
                out.not_evaluated.push(Reasoned {
                    id: c.id,
                    reason: "no kubelet runs on this node".into(),
                });
            }
        }
        return Ok(out);
    }
    let (facts, _) = gather::node_facts(&scan, storage, &checks);
    for c in checks {
        let r = match evaluate_check(c, &facts) {
            Ok(r) => r,
            Err(e) => {
                out.not_evaluated.push(Reasoned {
                    id: c.id,
                    reason: format!("{e:?}"),
                });
                continue;
            }
        };
        match r.effective {
            Some(true) => out.passed.push(c.id),
            Some(false) => match c.kubelet_fix() {
                Some(_) => out.todo.push(c),
                None => out.manual.push(Reasoned {
                    id: c.id,
                    reason: c.manual_reason().unwrap_or_default().to_string(),
                }),
            },
            None if r.failing() => out.not_evaluated.push(Reasoned {
                id: c.id,
                reason: r
                    .effective_note
                    .or(r.reason)
                    .unwrap_or_else(|| "the kubelet's effective value is not known".into()),
            }),
            None => {}
        }
    }
    Ok(out)
}

/// The configuration changes of a check's fix.
fn changes_of(c: &Check) -> Result<Vec<ConfigChange>> {
    let Some(fix) = c.kubelet_fix() else {
        return Ok(Vec::new());
    };
    fix.settings
        .iter()
        .map(|s| {
            let path = KeyPath::parse(s.key)
                .map_err(|e| crate::Error::Other(format!("{}: {}: {e}", c.id, s.key)))?;
            Ok(match s.value {
                KubeletValue::Bool(b) => ConfigChange::Set {
                    path,
                    value: Scalar::Bool(b),
                },
                KubeletValue::Int(i) => ConfigChange::Set {
                    path,
                    value: Scalar::Int(i),
                },
                KubeletValue::Str(v) => ConfigChange::Set {
                    path,
                    value: Scalar::Str(v.to_string()),
                },
                KubeletValue::List(items) => ConfigChange::SetList {
                    path,
                    items: items.iter().map(|i| Scalar::Str(i.to_string())).collect(),
                },
            })
        })
        .collect()
}

fn blocked(id: &'static str, why: String) -> StepResult {
    StepResult {
        reason: Some(why),
        exit_code: exit::ERROR,
        ..StepResult::new(vec![id], COMPONENT, StepOutcome::Blocked)
    }
}

/// Fix `todo` through `engine` (`None`: a dry run, every step planned on the files as they
/// are). Returns whether the command must stop (a rollback without `--keep-going`, a
/// needs-manual or a signal).
pub fn run(
    req: &HardenRequest,
    service: &KubeletService,
    todo: &[&'static Check],
    engine: Option<&Engine<'_>>,
    steps: &mut Vec<StepResult>,
) -> Result<bool> {
    if todo.is_empty() {
        return Ok(false);
    }
    let loc = match locate(&req.root, &service.unit) {
        Ok(l) => l,
        Err(e) => {
            let why = e.to_string();
            for c in todo {
                steps.push(blocked(c.id, why.clone()));
            }
            return Ok(false);
        }
    };
    // Each check planned alone first: one the planner refuses is blocked alone.
    let mut units: Vec<&'static Check> = Vec::new();
    for c in todo {
        match changes_of(c).and_then(|ch| Ok(plan(&loc, &ch)?)) {
            Ok(p) if p.unchanged() => {}
            Ok(_) => units.push(c),
            Err(e) => steps.push(blocked(c.id, e.to_string())),
        }
    }
    let groups: Vec<Vec<&'static Check>> = match req.grouping {
        crate::harden::Grouping::PerComponent => vec![units],
        crate::harden::Grouping::PerControl => units.into_iter().map(|u| vec![u]).collect(),
    };
    let mut culprit = false;
    for g in groups {
        if g.is_empty() {
            continue;
        }
        match solve(req, service, &g, engine, steps)? {
            Flow::Go => {}
            Flow::Culprit => culprit = true,
            Flow::Stop => return Ok(true),
        }
    }
    Ok(culprit && !req.keep_going)
}

enum Flow {
    Go,
    Culprit,
    Stop,
}

/// One transaction for `group`; bisected when the kubelet does not survive it.
fn solve(
    req: &HardenRequest,
    service: &KubeletService,
    group: &[&'static Check],
    engine: Option<&Engine<'_>>,
    steps: &mut Vec<StepResult>,
) -> Result<Flow> {
    let ids: Vec<&'static str> = group.iter().map(|c| c.id).collect();
    // Planned on the files as they are now (an earlier step may have changed them).
    let loc = locate(&req.root, &service.unit)?;
    let mut changes = Vec::new();
    for c in group {
        changes.extend(changes_of(c)?);
    }
    let p = match plan(&loc, &changes) {
        Ok(p) => p,
        Err(e) => {
            let why = e.to_string();
            for id in &ids {
                steps.push(blocked(id, why.clone()));
            }
            return Ok(Flow::Go);
        }
    };
    if p.unchanged() {
        steps.push(StepResult::new(ids, COMPONENT, StepOutcome::Unchanged));
        return Ok(Flow::Go);
    }
    if engine.is_some() && req.gate.enabled {
        if let Err(e) = super::preflight(&req.root, &p) {
            let why = e.to_string();
            for id in &ids {
                steps.push(blocked(id, why.clone()));
            }
            return Ok(Flow::Go);
        }
    }
    let Some(engine) = engine else {
        steps.push(StepResult {
            diff: p.diff.clone(),
            reason: (!p.upgrade_notes.is_empty()).then(|| p.upgrade_notes.join("; ")),
            ..StepResult::new(ids, COMPONENT, StepOutcome::Planned)
        });
        return Ok(Flow::Go);
    };
    engine
        .progress
        .step(&format!("fixing {} on the kubelet ...", ids.join(", ")));
    let plan = p.to_plan(
        TxnKind::Harden {
            controls: ids.iter().map(|s| s.to_string()).collect(),
        },
        p.summary(&format!("harden kubelet: {}", ids.join(", "))),
        &req.gate,
        &req.audit,
        req.options,
        &service.unit,
        &service.systemctl,
    );
    let mut step = match engine.run(plan) {
        Ok(outcome) => step_of(ids.clone(), COMPONENT, &outcome, p.diff.clone()),
        Err(e @ (TxnError::Recorded { .. } | TxnError::Changed { .. })) => {
            let reason = e.to_string();
            let code = crate::Error::from(e).exit_code();
            StepResult {
                reason: Some(reason),
                exit_code: code,
                ..StepResult::new(ids.clone(), COMPONENT, StepOutcome::Refused)
            }
        }
        Err(e) => return Err(e.into()),
    };
    match step.outcome {
        StepOutcome::RolledBack if group.len() > 1 => {
            step.bisected = true;
            step.exit_code = exit::SUCCESS;
            steps.push(step);
            let (left, right) = group.split_at(group.len() / 2);
            let mut flow = Flow::Go;
            for half in [left, right] {
                match solve(req, service, half, Some(engine), steps)? {
                    Flow::Go => {}
                    Flow::Culprit => flow = Flow::Culprit,
                    Flow::Stop => return Ok(Flow::Stop),
                }
            }
            Ok(flow)
        }
        StepOutcome::RolledBack => {
            step.culprit = true;
            steps.push(step);
            Ok(Flow::Culprit)
        }
        StepOutcome::NeedsManual | StepOutcome::Interrupted => {
            steps.push(step);
            Ok(Flow::Stop)
        }
        StepOutcome::Aborted if !req.keep_going => {
            steps.push(step);
            Ok(Flow::Stop)
        }
        _ => {
            steps.push(step);
            Ok(Flow::Go)
        }
    }
}
