//! `kharden harden`: fix every failing control that can be fixed safely, as gated
//! transactions.
//!
//! The library does the whole command: it assesses the node from its manifests, chooses the
//! controls, groups them into transactions, plans each transaction's file operations on the
//! files as they are when it starts (a rollback of an earlier one is taken into account), runs
//! them through the [`Engine`], and returns a typed [`HardenReport`]. The CLI only parses and
//! renders; tests run it on the in-memory storage with a scripted gate.
//!
//! A control whose edit the editor refuses (a manifest shape it will not touch) changes
//! nothing: it is reported as `blocked` with the reason, the other controls go on, and the
//! command ends with a non-zero exit code.

use crate::assess::gather::scan_node;
use crate::assess::procs::NodeProcess;
use crate::assess::{self, ControlResult, Found, SourcePolicy, Unreadable, HARDEN_ORDER};
use crate::durable::{hash, Storage};
use crate::error::{Error, Result};
use crate::exit;
use crate::files::{self, FilesPlan};
use crate::journal::GateTarget;
use crate::journal::{AuditSpec, GateSpec, TxId, TxnKind};
use crate::root::HostRoot;
use crate::txn::{Engine, FileOp, Outcome, Plan, PlanOptions, TxnError};
use kharden_catalog::{Benchmark, Control, Status, Target};
use std::path::PathBuf;

/// How controls are grouped into transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Grouping {
    /// One transaction (one restart, one gate) per control.
    PerControl,
    /// One transaction per component; a group the component does not survive is bisected.
    PerComponent,
}

/// What `harden` is asked to do.
#[derive(Debug, Clone)]
pub struct HardenRequest {
    pub bench: &'static Benchmark,
    /// Why this benchmark (the node's version, or the operator's choice), for the report.
    pub benchmark_reason: String,
    pub manifests_dir: PathBuf,
    pub root: HostRoot,
    /// Only these control ids (empty: all).
    pub only: Vec<String>,
    pub skip: Vec<String>,
    pub grouping: Grouping,
    /// Go on after a rollback (the default stops at the first one).
    pub keep_going: bool,
    pub gate: GateSpec,
    pub audit: AuditSpec,
    pub options: PlanOptions,
    /// The node's running processes (`/proc`): the file checks are planned on what runs, and
    /// no running component may lose access to a file it uses. Empty: none runs.
    pub processes: Vec<NodeProcess>,
    /// How to restart the kubelet, to fix its 4.2 checks too (`None`: the static pods only).
    pub kubelet: Option<crate::kubelet::KubeletService>,
}

/// The component name of the steps that change files' metadata.
pub const FILES: &str = "files";

/// What happened to one unit of work (a control, or a component's controls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepOutcome {
    /// Committed.
    Fixed,
    /// `--dry-run`: what would be done.
    Planned,
    Unchanged,
    RolledBack,
    NeedsManual,
    /// A signal stopped it (rolled back, or left for `kharden recover`).
    Interrupted,
    /// Another writer changed a file first: nothing written.
    Aborted,
    /// Refused before any change (a file of an unresolved needs-manual transaction, a
    /// hard-linked file, ...): journaled.
    Refused,
    /// Not attempted: a guard of the control, or the editor, refused it.
    Blocked,
}

/// One step of the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepResult {
    pub controls: Vec<&'static str>,
    pub component: &'static str,
    #[serde(rename = "result")]
    pub outcome: StepOutcome,
    pub txid: Option<TxId>,
    pub reason: Option<String>,
    /// The unified diff of the step's files (planned or written).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub diff: String,
    #[serde(skip)]
    pub exit_code: u8,
    /// A group the component did not survive, split to find the culprits (its controls are
    /// reported again in the steps that follow).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub bisected: bool,
    /// A control bisection isolated: the component does not survive it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub culprit: bool,
}

impl StepResult {
    pub(crate) fn new(
        controls: Vec<&'static str>,
        component: &'static str,
        outcome: StepOutcome,
    ) -> Self {
        StepResult {
            controls,
            component,
            outcome,
            txid: None,
            reason: None,
            diff: String::new(),
            exit_code: exit::SUCCESS,
            bisected: false,
            culprit: false,
        }
    }
}

/// A control and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reasoned {
    pub id: &'static str,
    pub reason: String,
}

/// Everything `harden` did or would do.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HardenReport {
    pub benchmark: &'static str,
    /// Why this benchmark was used.
    pub benchmark_reason: String,
    pub dry_run: bool,
    pub passed_before: Vec<&'static str>,
    pub steps: Vec<StepResult>,
    pub manual: Vec<Reasoned>,
    pub not_evaluated: Vec<Reasoned>,
    /// Automatable controls still failing afterwards (not computed for a dry run).
    pub still_failing: Vec<&'static str>,
    /// Controls kharden had committed, found undone since (`kharden drift`), and fixed again
    /// by this run.
    pub reapplied: Vec<String>,
    pub unreadable: Vec<Unreadable>,
    pub exit_code: u8,
}

impl HardenRequest {
    /// Refuse unknown control ids before anything else.
    pub fn validate(&self) -> Result<()> {
        for id in self.only.iter().chain(&self.skip) {
            if self.bench.control(id).is_none()
                && self.bench.check(id).is_none()
                && !crate::kubelet::harden::is_kubelet_check(self, id)
            {
                return Err(Error::Usage(format!(
                    "unknown control {id:?} in {}",
                    self.bench.id
                )));
            }
        }
        Ok(())
    }

    fn selected(&self, id: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|o| o == id))
            && !self.skip.iter().any(|s| s == id)
    }

    /// Whether `--only`/`--skip` select the control or check `id`.
    pub(crate) fn is_selected(&self, id: &str) -> bool {
        self.selected(id)
    }
}

/// The state of the node before: what was found and how it assesses.
struct Before {
    found: Vec<Found>,
    results: Vec<ControlResult>,
    unreadable: Vec<Unreadable>,
}

fn assess_manifests(req: &HardenRequest, storage: &dyn Storage) -> Result<Before> {
    // No manifests directory: no static pod to harden (a node without a control plane; the
    // files and the kubelet are still done). An explicit --manifests that does not exist is
    // refused by the command line before this.
    let listed = storage
        .list(&req.manifests_dir)
        .map_err(|e| Error::Other(format!("{}: {e}", req.manifests_dir.display())))?;
    let (found, unreadable) = match listed {
        None => (Vec::new(), Vec::new()),
        Some(_) => assess::discover(storage, &req.manifests_dir, None)
            .map_err(|e| Error::Other(format!("{}: {e}", req.manifests_dir.display())))?,
    };
    // Plan on the manifests: they are what this command changes.
    let results = assess::assess(req.bench, &found, SourcePolicy::Manifest);
    Ok(Before {
        found,
        results,
        unreadable,
    })
}

/// A transaction's plan for some controls of one component, on top of `contents`.
struct StepPlan {
    ops: Vec<FileOp>,
    planned: Vec<&'static str>,
    blocked: Vec<(&'static str, String)>,
    edited: Vec<u8>,
}

/// Plan `controls` on `contents`: each control's changes are applied in turn, so a control
/// the editor refuses is blocked alone and the others go on.
fn plan_controls(
    req: &HardenRequest,
    storage: &dyn Storage,
    f: &Found,
    contents: &[u8],
    controls: &[&'static Control],
) -> Result<StepPlan> {
    let info = kharden_manifest::inspect(contents, None)
        .map_err(|e| Error::refused(format!("{}: {e}", f.manifest.display())))?;
    let flags = info
        .argv
        .get(info.flags_start..)
        .unwrap_or_default()
        .to_vec();
    let mut changes = Vec::new();
    let mut files: Vec<FileOp> = Vec::new();
    let mut planned = Vec::new();
    let mut blocked = Vec::new();
    let mut edited = contents.to_vec();
    'controls: for c in controls {
        let Some(r) = c.remediation() else { continue };
        if let Err(b) = r.check_guards(&flags) {
            blocked.push((
                c.id,
                b.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
            continue;
        }
        let mut mine = Vec::new();
        for x in &r.files {
            let path = req.root.resolve(&x.path)?;
            if files.iter().any(|o| o.path == path) {
                continue;
            }
            match storage.read(&path)? {
                Some(s) if s.contents == x.contents.as_bytes() => {}
                Some(_) => {
                    blocked.push((
                        c.id,
                        format!(
                            "{} exists with other contents; kharden will not replace it",
                            path.display()
                        ),
                    ));
                    continue 'controls;
                }
                None => mine.push(FileOp {
                    expect_before: Some(None),
                    ..FileOp::contents(path, Some(x.contents.as_bytes().to_vec()))
                }),
            }
        }
        match kharden_manifest::edit(&edited, None, &r.changes) {
            Ok(e) => edited = e.output,
            Err(e) => {
                blocked.push((c.id, format!("{}: {e}", f.manifest.display())));
                continue;
            }
        }
        files.extend(mine);
        changes.extend(r.changes.iter().cloned());
        planned.push(c.id);
    }
    files.push(FileOp {
        expect_before: Some(Some(hash(contents))),
        changes,
        gated: true,
        ..FileOp::contents(f.manifest.clone(), Some(edited.clone()))
    });
    Ok(StepPlan {
        ops: files,
        planned,
        blocked,
        edited,
    })
}

fn diff_of(storage: &dyn Storage, ops: &[FileOp]) -> String {
    crate::diff::ops(storage, ops, &crate::users::Names::default())
}

/// Controls that must be applied together: a control whose guard reads a flag that another
/// control of the group changes stays with it (a flag and the file or mount it names are one
/// control's remediation already). Bisection splits between units, never inside one.
fn dependency_units(todo: &[&'static Control]) -> Vec<Vec<&'static Control>> {
    let mut units: Vec<Vec<&'static Control>> = Vec::new();
    for c in todo {
        let reads: Vec<&str> = c
            .remediation()
            .map(|r| {
                r.guards
                    .iter()
                    .map(|g| match g {
                        kharden_catalog::Guard::AbsentOrEquals { flag, .. }
                        | kharden_catalog::Guard::Present { flag, .. } => *flag,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let linked = units.iter().position(|u| {
            u.iter().any(|o| {
                o.remediation().is_some_and(|r| {
                    r.flags().iter().any(|f| reads.contains(f))
                        || c.remediation().is_some_and(|cr| {
                            cr.flags().iter().any(|f| {
                                r.guards.iter().any(|g| match g {
                                    kharden_catalog::Guard::AbsentOrEquals { flag, .. }
                                    | kharden_catalog::Guard::Present { flag, .. } => flag == f,
                                })
                            })
                        })
                })
            })
        });
        match linked {
            Some(i) => units[i].push(c),
            None => units.push(vec![c]),
        }
    }
    units
}

/// What the component's loop does after a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Go,
    /// Bisection isolated a control the component does not survive (rolled back); the others
    /// of the group were tried and committed.
    Culprit,
    NextComponent,
    Stop,
}

fn push_blocked(
    steps: &mut Vec<StepResult>,
    blocked: &[(&'static str, String)],
    component: &'static str,
    seen: &mut Vec<&'static str>,
) {
    for (id, why) in blocked {
        if seen.contains(id) {
            continue;
        }
        seen.push(id);
        steps.push(StepResult {
            reason: Some(why.clone()),
            exit_code: exit::ERROR,
            ..StepResult::new(vec![id], component, StepOutcome::Blocked)
        });
    }
}

/// One component's transactions, and the bisection of a group the component did not survive.
struct Runner<'r, 'e> {
    req: &'r HardenRequest,
    engine: &'r Engine<'e>,
    found: &'r Found,
    steps: &'r mut Vec<StepResult>,
    /// Controls reported blocked already (a bisection plans them again).
    blocked: Vec<&'static str>,
}

impl Runner<'_, '_> {
    /// Apply `units` as one transaction; when the component does not survive it (the gate or
    /// the audit fails and it is rolled back), split the units in halves and apply each as its
    /// own transaction, recursively, until the controls it does not survive are isolated.
    /// With one bad unit among n, that is at most 1 + 2 * ceil(log2 n) transactions.
    fn solve(&mut self, units: &[Vec<&'static Control>]) -> Result<Flow> {
        let controls: Vec<&'static Control> = units.concat();
        let comp = self.found.component.name();
        let storage = self.engine.storage;
        let current = storage
            .read(&self.found.manifest)?
            .map(|s| s.contents)
            .unwrap_or_default();
        let plan = plan_controls(self.req, storage, self.found, &current, &controls)?;
        push_blocked(self.steps, &plan.blocked, comp, &mut self.blocked);
        if plan.planned.is_empty() {
            return Ok(Flow::Go);
        }
        let diff = diff_of(storage, &plan.ops);
        self.engine
            .progress
            .step(&format!("fixing {} on {comp} ...", plan.planned.join(", ")));
        let result = self.engine.run(Plan {
            kind: TxnKind::Harden {
                controls: plan.planned.iter().map(|s| s.to_string()).collect(),
            },
            summary: format!("harden {comp}: {}", plan.planned.join(", ")),
            ops: plan.ops,
            gate: self.req.gate.clone(),
            audit: self.req.audit.clone(),
            options: self.req.options,
            restart: None,
        });
        let mut step = match result {
            Ok(outcome) => step_of(plan.planned.clone(), comp, &outcome, diff),
            // Refused before any change (journaled by the engine): other components' files
            // are still free to fix.
            Err(e @ (TxnError::Recorded { .. } | TxnError::Changed { .. })) => {
                let reason = e.to_string();
                let code = Error::from(e).exit_code();
                StepResult {
                    reason: Some(reason),
                    exit_code: code,
                    ..StepResult::new(plan.planned.clone(), comp, StepOutcome::Refused)
                }
            }
            Err(e) => return Err(e.into()),
        };
        let planned_units: Vec<Vec<&'static Control>> = units
            .iter()
            .map(|u| {
                u.iter()
                    .copied()
                    .filter(|c| plan.planned.contains(&c.id))
                    .collect::<Vec<_>>()
            })
            .filter(|u| !u.is_empty())
            .collect();
        match step.outcome {
            StepOutcome::RolledBack if planned_units.len() > 1 => {
                step.bisected = true;
                // Found and isolated below: this group's own rollback is not the command's
                // result.
                step.exit_code = exit::SUCCESS;
                self.steps.push(step);
                let (left, right) = planned_units.split_at(planned_units.len() / 2);
                let mut flow = Flow::Go;
                for half in [left, right] {
                    match self.solve(half)? {
                        Flow::Go => {}
                        Flow::Culprit => flow = Flow::Culprit,
                        other => return Ok(other),
                    }
                }
                Ok(flow)
            }
            StepOutcome::RolledBack => {
                step.culprit = true;
                self.steps.push(step);
                Ok(Flow::Culprit)
            }
            StepOutcome::NeedsManual | StepOutcome::Interrupted => {
                self.steps.push(step);
                Ok(Flow::Stop)
            }
            StepOutcome::Refused => {
                self.steps.push(step);
                Ok(Flow::NextComponent)
            }
            StepOutcome::Aborted => {
                self.steps.push(step);
                Ok(if self.req.keep_going {
                    Flow::NextComponent
                } else {
                    Flow::Stop
                })
            }
            _ => {
                self.steps.push(step);
                Ok(Flow::Go)
            }
        }
    }
}

/// The file checks (1.1, 4.1): one metadata transaction for all of them (per control with
/// `--one-per-control`), gated on the processes that use the files; a group they do not
/// survive is bisected like a component's. Runs before the components: it restarts nothing.
struct FilesPhase<'r> {
    req: &'r HardenRequest,
    plan: FilesPlan,
    names: crate::users::Names,
}

impl FilesPhase<'_> {
    fn new<'r>(req: &'r HardenRequest, storage: &dyn Storage) -> Result<FilesPhase<'r>> {
        let scan = scan_node(
            storage,
            &req.root,
            &req.manifests_dir,
            SourcePolicy::Auto,
            req.processes.clone(),
        )
        .map_err(|e| Error::Other(format!("{}: {e}", req.manifests_dir.display())))?;
        // Only the targets this node has (a worker has no control-plane files to fix), chosen
        // as the audit chooses them.
        let mut node_files = crate::assess::gather::NodeFiles::new(&scan.root, storage);
        let targets: Vec<Target> =
            crate::assess::targets::choose_targets(None, &scan, &mut node_files)
                .into_iter()
                .filter(|t| t.selected)
                .map(|t| t.target)
                .collect();
        let applies = |id: &str| {
            req.bench
                .check(id)
                .is_some_and(|c| targets.contains(&c.target))
        };
        let plan = files::plan(req.bench, &scan, storage, &|id| {
            req.selected(id) && applies(id)
        });
        let names = crate::users::Names::of_root(&req.root, storage);
        Ok(FilesPhase { req, plan, names })
    }

    /// Held controls: the manual ones to the report's manual list, the others (a component
    /// would lose access, a symlink, ...) as blocked steps, each refusal recorded in the
    /// journal (when the run changes the node) so that it says why nothing happened.
    fn report_held(
        &self,
        engine: Option<&Engine<'_>>,
        steps: &mut Vec<StepResult>,
        manual: &mut Vec<Reasoned>,
    ) -> Result<()> {
        for h in &self.plan.held {
            if h.manual {
                manual.push(Reasoned {
                    id: h.id,
                    reason: h.reason.clone(),
                });
                continue;
            }
            let txid = match engine {
                Some(e) => Some(e.refuse(
                    TxnKind::Harden {
                        controls: vec![h.id.to_string()],
                    },
                    format!("harden files: {}", h.id),
                    h.reason.clone(),
                )?),
                None => None,
            };
            steps.push(StepResult {
                reason: Some(h.reason.clone()),
                exit_code: exit::ERROR,
                txid,
                ..StepResult::new(vec![h.id], FILES, StepOutcome::Blocked)
            });
        }
        Ok(())
    }

    fn groups(&self) -> Vec<Vec<&'static str>> {
        match self.req.grouping {
            Grouping::PerComponent => vec![self.plan.controls.clone()],
            Grouping::PerControl => self.plan.controls.iter().map(|c| vec![*c]).collect(),
        }
        .into_iter()
        .filter(|g| !g.is_empty())
        .collect()
    }

    /// The plan's changes as metadata diffs, with host paths.
    fn diff(&self, plan: &FilesPlan) -> String {
        plan.changes
            .iter()
            .map(|c| crate::diff::metadata(&c.host, c.before, c.after, &self.names))
            .collect()
    }

    fn dry_run(&self, steps: &mut Vec<StepResult>) {
        for group in self.groups() {
            let sub = self.plan.only(&group);
            steps.push(StepResult {
                diff: self.diff(&sub),
                ..StepResult::new(group, FILES, StepOutcome::Planned)
            });
        }
    }

    fn run(&self, engine: &Engine<'_>, steps: &mut Vec<StepResult>) -> Result<Flow> {
        let mut flow = Flow::Go;
        for group in self.groups() {
            match self.solve(engine, &group, steps)? {
                Flow::Go => {}
                Flow::Culprit => flow = Flow::Culprit,
                other => return Ok(other),
            }
        }
        Ok(flow)
    }

    /// One transaction for `controls`; bisected when the processes that use the files do not
    /// survive it.
    fn solve(
        &self,
        engine: &Engine<'_>,
        controls: &[&'static str],
        steps: &mut Vec<StepResult>,
    ) -> Result<Flow> {
        let sub = self.plan.only(controls);
        if sub.changes.is_empty() {
            return Ok(Flow::Go);
        }
        let ops = sub.ops();
        let diff = self.diff(&sub);
        engine.progress.step(&format!(
            "fixing {} ({} files) ...",
            controls.join(", "),
            ops.len()
        ));
        let result = engine.run(Plan {
            kind: TxnKind::Harden {
                controls: controls.iter().map(|s| s.to_string()).collect(),
            },
            summary: format!("harden files: {}", controls.join(", ")),
            ops,
            gate: GateSpec {
                target: GateTarget::Nothing,
                keep: sub.keep.clone(),
                ..self.req.gate.clone()
            },
            audit: self.req.audit.clone(),
            options: self.req.options,
            restart: None,
        });
        let mut step = match result {
            Ok(outcome) => step_of(controls.to_vec(), FILES, &outcome, diff),
            Err(e @ (TxnError::Recorded { .. } | TxnError::Changed { .. })) => {
                let reason = e.to_string();
                let code = Error::from(e).exit_code();
                steps.push(StepResult {
                    reason: Some(reason),
                    exit_code: code,
                    ..StepResult::new(controls.to_vec(), FILES, StepOutcome::Refused)
                });
                return Ok(Flow::Go);
            }
            Err(e) => return Err(e.into()),
        };
        match step.outcome {
            StepOutcome::RolledBack if controls.len() > 1 => {
                step.bisected = true;
                step.exit_code = exit::SUCCESS;
                steps.push(step);
                let (left, right) = controls.split_at(controls.len() / 2);
                let mut flow = Flow::Go;
                for half in [left, right] {
                    match self.solve(engine, half, steps)? {
                        Flow::Go => {}
                        Flow::Culprit => flow = Flow::Culprit,
                        other => return Ok(other),
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
            _ => {
                steps.push(step);
                Ok(Flow::Go)
            }
        }
    }
}

/// Plan every step without changing anything (`--dry-run`): edits chain in memory.
pub fn dry_run(req: &HardenRequest, storage: &dyn Storage) -> Result<HardenReport> {
    execute(req, storage, None)
}

/// Run every step through `engine`.
pub fn run(req: &HardenRequest, engine: &Engine<'_>) -> Result<HardenReport> {
    execute(req, engine.storage, Some(engine))
}

fn execute(
    req: &HardenRequest,
    storage: &dyn Storage,
    engine: Option<&Engine<'_>>,
) -> Result<HardenReport> {
    req.validate()?;
    let before = assess_manifests(req, storage)?;
    let passed_before: Vec<&'static str> = before
        .results
        .iter()
        .filter(|r| r.status == Status::Pass)
        .map(|r| r.id)
        .collect();
    let manual: Vec<Reasoned> = before
        .results
        .iter()
        .filter(|r| req.selected(r.id) && r.failing() && !r.automatable)
        .map(|r| Reasoned {
            id: r.id,
            reason: r.note.clone().unwrap_or_default(),
        })
        .collect();
    // A worker (no static pod manifest at all) has no control plane to report as missing.
    let worker = before.found.is_empty() && req.kubelet.is_some();
    let not_evaluated: Vec<Reasoned> = before
        .results
        .iter()
        .filter(|r| req.selected(r.id) && r.evaluation.is_none() && !worker)
        .map(|r| Reasoned {
            id: r.id,
            reason: r.note.clone().unwrap_or_default(),
        })
        .collect();
    // The kubelet's checks, read on its effective configuration (see `kubelet::harden`).
    let kubelet = match &req.kubelet {
        Some(_) => Some(crate::kubelet::harden::assess(req, storage)?),
        None => None,
    };
    let mut passed_before = passed_before;
    let mut manual = manual;
    let mut not_evaluated = not_evaluated;
    if let Some(k) = &kubelet {
        passed_before.extend(k.passed.iter().copied());
        manual.extend(k.manual.iter().cloned());
        not_evaluated.extend(k.not_evaluated.iter().cloned());
    }
    // What drifted since kharden committed it: fixed again below, and said so.
    let undone = match engine {
        Some(e) => crate::drift::undone_controls(e.journal, storage).unwrap_or_default(),
        None => Vec::new(),
    };
    let mut steps: Vec<StepResult> = Vec::new();
    let files_phase = FilesPhase::new(req, storage)?;
    files_phase.report_held(engine, &mut steps, &mut manual)?;
    let files_flow = match engine {
        None => {
            files_phase.dry_run(&mut steps);
            Flow::Go
        }
        Some(engine) => files_phase.run(engine, &mut steps)?,
    };
    let go_on = match files_flow {
        Flow::Go | Flow::NextComponent => true,
        Flow::Culprit => req.keep_going,
        Flow::Stop => false,
    };
    // Once a step stops the run, the later ones (the kubelet last of all) wait for an
    // operator who has read why.
    let mut stopped = !go_on;
    'components: for comp in HARDEN_ORDER {
        if stopped {
            break;
        }
        let Some(f) = before.found.iter().find(|f| f.component == comp) else {
            continue;
        };
        let todo: Vec<&'static Control> = before
            .results
            .iter()
            .filter(|r| r.component == comp && req.selected(r.id) && r.failing() && r.automatable)
            .filter_map(|r| req.bench.control(r.id))
            .collect();
        if todo.is_empty() {
            continue;
        }
        let units = dependency_units(&todo);
        let groups: Vec<Vec<Vec<&'static Control>>> = match req.grouping {
            Grouping::PerComponent => vec![units],
            Grouping::PerControl => units.into_iter().map(|u| vec![u]).collect(),
        };
        let Some(engine) = engine else {
            // A dry run: every group planned on the previous one's result, in memory.
            let mut current = f.contents.clone();
            for group in groups {
                let plan = plan_controls(req, storage, f, &current, &group.concat())?;
                push_blocked(&mut steps, &plan.blocked, comp.name(), &mut Vec::new());
                if plan.planned.is_empty() {
                    continue;
                }
                steps.push(StepResult {
                    diff: diff_of(storage, &plan.ops),
                    ..StepResult::new(plan.planned, comp.name(), StepOutcome::Planned)
                });
                current = plan.edited;
            }
            continue;
        };
        let mut run = Runner {
            req,
            engine,
            found: f,
            steps: &mut steps,
            blocked: Vec::new(),
        };
        let mut culprit = false;
        for group in groups {
            match run.solve(&group)? {
                Flow::Go => {}
                Flow::Culprit => culprit = true,
                Flow::NextComponent => continue 'components,
                Flow::Stop => {
                    stopped = true;
                    break 'components;
                }
            }
        }
        if culprit && !req.keep_going {
            // The component's other controls are committed; the next components wait for an
            // operator who has read why (or --keep-going).
            stopped = true;
            break 'components;
        }
    }
    // The kubelet last: it restarts the static pods' supervisor, once they are all fixed.
    if let (false, Some(service), Some(k)) = (stopped, &req.kubelet, &kubelet) {
        crate::kubelet::harden::run(req, service, &k.todo, engine, &mut steps)?;
    }
    let still_failing: Vec<&'static str> = if engine.is_some() {
        let after = assess_manifests(req, storage)?;
        let files_after = FilesPhase::new(req, storage)?;
        let mut v: Vec<&'static str> = after
            .results
            .iter()
            .filter(|r| r.failing() && r.automatable)
            .map(|r| r.id)
            .chain(files_after.plan.controls.iter().copied())
            .chain(
                files_after
                    .plan
                    .held
                    .iter()
                    .filter(|h| !h.manual)
                    .map(|h| h.id),
            )
            .collect();
        if kubelet.as_ref().is_some_and(|k| !k.todo.is_empty()) {
            v.extend(
                crate::kubelet::harden::assess(req, storage)?
                    .todo
                    .iter()
                    .map(|c| c.id),
            );
        }
        v
    } else {
        Vec::new()
    };
    let exit_code = exit_code(&steps);
    let reapplied: Vec<String> = undone
        .into_iter()
        .filter(|id| {
            steps
                .iter()
                .any(|s| s.outcome == StepOutcome::Fixed && s.controls.contains(&id.as_str()))
        })
        .collect();
    Ok(HardenReport {
        benchmark: req.bench.id,
        benchmark_reason: req.benchmark_reason.clone(),
        dry_run: engine.is_none(),
        passed_before,
        steps,
        manual,
        not_evaluated,
        still_failing,
        reapplied,
        unreadable: before.unreadable,
        exit_code,
    })
}

pub(crate) fn step_of(
    controls: Vec<&'static str>,
    component: &'static str,
    outcome: &Outcome,
    diff: String,
) -> StepResult {
    let (o, reason) = match outcome {
        Outcome::Unchanged => (StepOutcome::Unchanged, None),
        Outcome::Committed { .. } => (StepOutcome::Fixed, None),
        Outcome::RolledBack {
            cause: crate::journal::RollbackCause::Interrupted,
            reason,
            ..
        } => (StepOutcome::Interrupted, Some(reason.clone())),
        Outcome::RolledBack { reason, .. } => (StepOutcome::RolledBack, Some(reason.clone())),
        Outcome::NeedsManual { reason, .. } => (StepOutcome::NeedsManual, Some(reason.clone())),
        Outcome::LeftOpen { reason, .. } => (StepOutcome::Interrupted, Some(reason.clone())),
        Outcome::Aborted { reason, .. } => (StepOutcome::Aborted, Some(reason.clone())),
    };
    StepResult {
        txid: outcome.txid(),
        reason,
        diff,
        exit_code: outcome.exit_code(),
        ..StepResult::new(controls, component, o)
    }
}

/// The command's exit code: the most serious step's (needs-manual first, then a signal, a
/// rollback, a refusal).
fn exit_code(steps: &[StepResult]) -> u8 {
    let rank = |c: u8| match c {
        exit::NEEDS_MANUAL => 6,
        exit::INTERRUPTED => 5,
        exit::ROLLED_BACK_GATE | exit::ROLLED_BACK_AUDIT => 4,
        exit::ERROR => 3,
        exit::SUCCESS => 0,
        _ => 2,
    };
    steps
        .iter()
        .map(|s| s.exit_code)
        .max_by_key(|c| rank(*c))
        .unwrap_or(exit::SUCCESS)
}
