//! Plan a change of the kubelet's configuration on the source that wins.
//!
//! Why "the source that wins": a setting can be written in four places (a flag, a `--config-dir`
//! drop-in, the `--config` file, nowhere: the default), and only the one with the highest
//! precedence decides. Editing another one changes a file and nothing the kubelet does, and the
//! audit would then fail after a restart for nothing. So, for `KEY=VALUE`:
//!
//! 1. a flag sets it: the flag is edited in the environment file its word comes from
//!    (format-preserving: quoting and the other flags untouched; other occurrences in other
//!    files removed); a flag written in the unit itself (`ExecStart=`, `Environment=`) is refused
//!    with that reason: a unit change needs `systemctl daemon-reload`, which kharden does not
//!    journal;
//! 2. a `--config-dir` drop-in sets it: the last one in the kubelet's merge order is edited;
//! 3. the kubelet has a `--config-dir`: kharden's own drop-in, [`KHARDEN_DROPIN`], is created or
//!    edited. `kubeadm upgrade` rewrites `config.yaml` from the `kubelet-config` ConfigMap and
//!    leaves the directory alone, so the change survives it;
//! 4. else the `--config` file.
//!
//! `--unset KEY` removes the key from every place that sets it (the default applies then).
//! After editing, the effective configuration is computed again from the files as they would
//! be, and every intended value must be in effect (no flag or drop-in overriding it, no
//! defaulting of a zero value): otherwise the change is refused before anything is written.
//! Values the kubelet validates at start (cipher names, negative rates) are *not* refused
//! here: proving them is the gate's job, and a refusal is rolled back.

use super::locate::{ConfigSources, DropIn, KubeletError, Located, SourceFile};
use super::unit::Origin;
use crate::durable::hash;
use crate::journal::{AuditSpec, GateSpec, GateTarget, Kept, Restart, TxnKind};
use crate::root::HostRoot;
use crate::txn::{FileOp, Plan, PlanOptions};
use kharden_kubelet_config::{
    dropin_order, edit_config, edit_env_flags, feature_gate, key, ConfigChange, ConfigDoc,
    Effective, FlagChange, KeyPath, KeySpec, Scalar, Value, ValueType,
};
use kharden_manifest::{Change, Flags};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The name of kharden's own drop-in in the kubelet's `--config-dir` (late in the merge order,
/// so that it wins over the drop-ins kubeadm or an operator writes with lower numbers).
pub const KHARDEN_DROPIN: &str = "99-kharden.conf";

/// What a new drop-in starts as: the kubelet refuses a drop-in without `apiVersion` and `kind`.
const DROPIN_HEADER: &str = "# Written by kharden: KubeletConfiguration settings applied over the kubelet's --config.\n# Every change here is a journaled transaction (kharden journal log).\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

/// The host path kubeadm writes the kubelet's configuration to.
const KUBEADM_CONFIG: &str = "/var/lib/kubelet/config.yaml";
/// The environment file kubeadm writes the kubelet's flags to.
const KUBEADM_FLAGS: &str = "/var/lib/kubelet/kubeadm-flags.env";

/// What one planned file is to the kubelet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileRole {
    /// The `--config` file.
    Config,
    /// A `--config-dir` drop-in (`created`: kharden's own, new).
    DropIn { created: bool },
    /// An environment file holding flags.
    EnvFile,
}

/// One file the change writes.
#[derive(Debug, Clone)]
pub struct PlannedFile {
    pub host: String,
    pub path: PathBuf,
    pub role: FileRole,
    /// `None`: created.
    pub before: Option<Vec<u8>>,
    pub after: Vec<u8>,
    pub settings: Vec<ConfigChange>,
    pub flags: Vec<Change>,
}

/// Where one requested change went, and why there.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Placement {
    pub change: String,
    pub file: String,
    pub why: String,
}

/// A planned kubelet transaction, before it is run.
#[derive(Debug, Clone)]
pub struct KubeletPlan {
    pub files: Vec<PlannedFile>,
    pub placements: Vec<Placement>,
    /// What a `kubeadm upgrade` (or re-join) would undo.
    pub upgrade_notes: Vec<String>,
    pub healthz_before: String,
    pub healthz_after: String,
    pub keep: Vec<Kept>,
    pub kubeconfig: Option<String>,
    pub node: Option<String>,
    /// The unified diff of every file.
    pub diff: String,
}

impl KubeletPlan {
    pub fn unchanged(&self) -> bool {
        self.files.is_empty()
    }

    /// The transaction: the files, the restart of `unit` through `systemctl`, the kubelet's
    /// gate (both sides' healthz, the kubeconfig and the node for `Ready`, the static pods to
    /// keep).
    #[allow(clippy::too_many_arguments)]
    pub fn to_plan(
        &self,
        kind: TxnKind,
        summary: String,
        gate: &GateSpec,
        audit: &AuditSpec,
        options: PlanOptions,
        unit: &str,
        systemctl: &str,
    ) -> Plan {
        Plan {
            kind,
            summary,
            ops: self
                .files
                .iter()
                .map(|f| FileOp {
                    expect_before: Some(f.before.as_deref().map(hash)),
                    settings: f.settings.clone(),
                    changes: f.flags.clone(),
                    ..FileOp::contents(f.path.clone(), Some(f.after.clone()))
                })
                .collect(),
            gate: GateSpec {
                target: GateTarget::Kubelet {
                    healthz_before: self.healthz_before.clone(),
                    healthz_after: self.healthz_after.clone(),
                    kubeconfig: self.kubeconfig.clone(),
                    node: self.node.clone(),
                },
                keep: self.keep.clone(),
                // The operator's --health-url names a static pod's endpoint, not the kubelet's.
                health_url: None,
                ..gate.clone()
            },
            audit: audit.clone(),
            options,
            restart: Some(Restart {
                unit: unit.to_string(),
                systemctl: systemctl.to_string(),
            }),
        }
    }

    /// The one line `journal log` shows: the changes, where they went, and what an upgrade
    /// would undo.
    pub fn summary(&self, what: &str) -> String {
        let places: Vec<String> = self
            .placements
            .iter()
            .map(|p| format!("{} in {}", p.change, p.file))
            .collect();
        let mut s = format!("{what}: {}", places.join(", "));
        if !self.upgrade_notes.is_empty() {
            s.push_str(" (a kubeadm upgrade or re-join would undo it)");
        }
        s
    }
}

/// The spec of a key path (`featureGates.NAME` of a gate kharden does not know gets a spec
/// built here: a boolean, default false).
pub(crate) fn spec_of(path: &KeyPath) -> Option<KeySpec> {
    let p = path.to_string();
    if let Some(g) = p.strip_prefix("featureGates.") {
        return feature_gate(g);
    }
    key(&p)
}

/// The text of a value as a flag takes it.
fn flag_text(c: &ConfigChange) -> Option<String> {
    match c {
        ConfigChange::Set { value, .. } => Some(match value {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Str(s) => s.clone(),
        }),
        ConfigChange::SetList { items, .. } => Some(
            items
                .iter()
                .map(|i| match i {
                    Scalar::Str(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
        ),
        ConfigChange::Unset { .. } => None,
    }
}

/// The value the kubelet should end up with for a set.
pub(crate) fn intended(spec: &KeySpec, c: &ConfigChange) -> Option<Value> {
    match c {
        ConfigChange::SetList { items, .. } => Some(Value::List(
            items
                .iter()
                .map(|i| match i {
                    Scalar::Str(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
        )),
        ConfigChange::Set { .. } => {
            let ty = if spec.ty == ValueType::FeatureGate {
                ValueType::Bool
            } else {
                spec.ty
            };
            ty.parse_text(&flag_text(c)?).ok()
        }
        ConfigChange::Unset { .. } => None,
    }
}

/// Does this file set `path` (a null value does not)?
fn sets(bytes: &[u8], path: &KeyPath) -> bool {
    ConfigDoc::parse(bytes)
        .ok()
        .and_then(|d| d.get(path).ok().flatten())
        .is_some_and(|v| v.value != kharden_kubelet_config::YamlValue::Null)
}

/// Where one change must go: environment files to edit (file, flag change) and configuration
/// files (host path, role; a new drop-in when `created`). Both empty: nothing sets a key that
/// is to be unset.
#[derive(Default)]
struct Target {
    flags: Vec<(String, FlagChange)>,
    files: Vec<(String, FileRole)>,
}

/// One file being edited.
struct Work {
    role: FileRole,
    path: PathBuf,
    before: Option<Vec<u8>>,
    settings: Vec<ConfigChange>,
    flag_changes: Vec<FlagChange>,
}

/// `http://ADDR:PORT/healthz` of an effective configuration: its `healthzBindAddress` (an
/// unspecified address is probed on the loopback) and `healthzPort`.
pub fn healthz_url(eff: &Effective) -> Result<String, String> {
    let port = eff
        .get("healthzPort")
        .and_then(|s| s.value.as_int())
        .unwrap_or(10248);
    if port <= 0 {
        return Err(format!(
            "healthzPort is {port}: the kubelet serves no /healthz, and kharden proves a kubelet change through it"
        ));
    }
    let addr = eff
        .get("healthzBindAddress")
        .and_then(|s| s.value.as_str().map(str::to_string))
        .unwrap_or_default();
    let host = match addr.as_str() {
        "" | "0.0.0.0" => "127.0.0.1".to_string(),
        "::" => "[::1]".to_string(),
        a if a.contains(':') => format!("[{a}]"),
        a => a.to_string(),
    };
    Ok(format!("http://{host}:{port}/healthz"))
}

/// The node's static pods that run now: the gate keeps watching them through the restart.
pub fn static_pods(root: &HostRoot, eff: &Effective) -> Vec<Kept> {
    let Some(dir) = eff
        .get("staticPodPath")
        .and_then(|s| s.value.as_str().map(str::to_string))
        .filter(|d| !d.is_empty())
    else {
        return Vec::new();
    };
    let Ok(dir) = root.resolve(&dir) else {
        return Vec::new();
    };
    let procs: Vec<kharden_gate::ProcInfo> = crate::assess::procs::scan(&root.proc_dir())
        .iter()
        .filter(|p| p.belongs_to(root))
        .map(|p| p.proc_info())
        .collect();
    let Ok((found, _)) = crate::assess::discover(&crate::durable::RealStorage, &dir, Some(&procs))
    else {
        return Vec::new();
    };
    found
        .into_iter()
        .filter_map(|f| {
            let (pid, _) = f.running?;
            Some(Kept {
                component: f.component.name().to_string(),
                pid,
                start_ticks: crate::gate::keep::start_ticks(&root.proc_dir(), pid)?,
                manifest: Some(f.manifest.display().to_string()),
            })
        })
        .collect()
}

/// Plan `changes` (in order) on the kubelet found by [`super::locate::locate`].
pub fn plan(loc: &Located, changes: &[ConfigChange]) -> Result<KubeletPlan, KubeletError> {
    let refuse = |s: String| KubeletError::Refused(s);
    let before_eff = loc.effective()?;
    let healthz_before = healthz_url(&before_eff).map_err(refuse)?;
    let flags = loc.flags();
    let src = &loc.sources;
    let mut work: BTreeMap<String, Work> = BTreeMap::new();
    let mut placements = Vec::new();
    let dropin_names: Vec<&str> = src.dropins.iter().map(|d| d.name.as_str()).collect();
    let merge_order = dropin_order(&dropin_names);
    for c in changes {
        let path = c.path();
        let spec = spec_of(path);
        if path.to_string() == "healthzPort" && flag_text(c).as_deref() == Some("0") {
            return Err(refuse(
                "healthzPort=0 turns off the kubelet's /healthz, which is how kharden proves the restarted kubelet healthy; refused".into(),
            ));
        }
        let target = target_of(loc, &flags, src, &merge_order, c, spec.as_ref())?;
        if target.flags.is_empty() && target.files.is_empty() {
            placements.push(Placement {
                change: c.to_string(),
                file: "-".into(),
                why: "nothing sets it: the default applies already".into(),
            });
            continue;
        }
        let unset = matches!(c, ConfigChange::Unset { .. });
        let why = if unset {
            "removed from every place that sets it".to_string()
        } else if !target.flags.is_empty() {
            "a flag sets it, and a flag overrides every configuration file: edited where the flag is".to_string()
        } else {
            match target.files.first().map(|(_, r)| *r) {
                Some(FileRole::DropIn { created: true }) => "kharden's drop-in in the kubelet's --config-dir: it wins over the --config file and a kubeadm upgrade leaves it alone".to_string(),
                Some(FileRole::DropIn { .. }) => "the --config-dir drop-in that sets it last (it wins)".to_string(),
                _ => "the kubelet's --config file (it has no --config-dir)".to_string(),
            }
        };
        placements.push(Placement {
            change: c.to_string(),
            file: target
                .flags
                .iter()
                .map(|(f, _)| f.clone())
                .chain(target.files.iter().map(|(f, _)| f.clone()))
                .collect::<Vec<_>>()
                .join(", "),
            why,
        });
        for (file, fc) in target.flags {
            let w = match work.entry(file.clone()) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => v.insert(Work {
                    role: FileRole::EnvFile,
                    path: loc.root.resolve(&file)?,
                    before: super::locate::read_env_file(&loc.root, &file).map_err(|why| {
                        KubeletError::Read {
                            file: file.clone(),
                            why,
                        }
                    })?,
                    settings: Vec::new(),
                    flag_changes: Vec::new(),
                }),
            };
            w.flag_changes.push(fc);
        }
        for (file, role) in target.files {
            let before = match role {
                FileRole::Config => src.config.as_ref().map(|c| c.contents.clone()),
                FileRole::DropIn { .. } => src
                    .dropins
                    .iter()
                    .find(|d| d.file.host == file)
                    .map(|d| d.file.contents.clone()),
                FileRole::EnvFile => None,
            };
            let w = match work.entry(file.clone()) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => v.insert(Work {
                    role,
                    path: loc.root.resolve(&file)?,
                    before,
                    settings: Vec::new(),
                    flag_changes: Vec::new(),
                }),
            };
            w.settings.push(c.clone());
        }
    }

    // Edit every file, then read the result back as the kubelet would.
    let mut files = Vec::new();
    let mut env_after: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (host, w) in work {
        let after = match w.role {
            FileRole::EnvFile => {
                let before = w
                    .before
                    .clone()
                    .ok_or_else(|| refuse(format!("{host}: the environment file is gone")))?;
                let vars = loc
                    .service
                    .variables_from(&host, &mut |h| super::locate::read_env_file(&loc.root, h))?;
                let names: Vec<&str> = vars.iter().map(String::as_str).collect();
                let e = edit_env_flags(&before, &names, &w.flag_changes)
                    .map_err(|e| refuse(format!("{host}: {e}")))?;
                e.output
            }
            _ => {
                let base = w
                    .before
                    .clone()
                    .unwrap_or_else(|| DROPIN_HEADER.as_bytes().to_vec());
                let e =
                    edit_config(&base, &w.settings).map_err(|e| refuse(format!("{host}: {e}")))?;
                e.output
            }
        };
        if w.before.as_deref() == Some(after.as_slice()) {
            continue;
        }
        if w.role == FileRole::EnvFile {
            env_after.insert(host.clone(), after.clone());
        }
        let flags_changed: Vec<Change> = w
            .flag_changes
            .iter()
            .map(|fc| match fc {
                FlagChange::Set { name, value, .. } => Change::Set {
                    name: name.clone(),
                    value: Some(value.clone()),
                },
                FlagChange::Unset { name } => Change::Unset { name: name.clone() },
            })
            .collect();
        files.push(PlannedFile {
            host,
            path: w.path,
            role: w.role,
            before: w.before,
            after,
            settings: w.settings,
            flags: flags_changed,
        });
    }

    // The configuration as it will be: environment files re-expanded, files replaced.
    let words_after = loc.service.expand_with(&mut |h| match env_after.get(h) {
        Some(b) => Ok(Some(b.clone())),
        None => super::locate::read_env_file(&loc.root, h),
    })?;
    let argv_after: Vec<String> = words_after.into_iter().map(|w| w.text).collect();
    let flags_after = Flags::parse(argv_after.get(1..).unwrap_or_default());
    let mut after_src: ConfigSources = src.clone();
    for f in &files {
        match f.role {
            FileRole::Config => {
                if let Some(c) = after_src.config.as_mut() {
                    c.contents = f.after.clone();
                }
            }
            FileRole::DropIn { .. } => {
                match after_src.dropins.iter_mut().find(|d| d.file.host == f.host) {
                    Some(d) => d.file.contents = f.after.clone(),
                    None => after_src.dropins.push(DropIn {
                        name: f
                            .host
                            .rsplit('/')
                            .next()
                            .unwrap_or(KHARDEN_DROPIN)
                            .to_string(),
                        file: SourceFile {
                            host: f.host.clone(),
                            path: f.path.clone(),
                            contents: f.after.clone(),
                        },
                    }),
                }
            }
            FileRole::EnvFile => {}
        }
    }
    let after_eff = after_src.effective(&flags_after).map_err(|e| {
        refuse(format!(
            "the kubelet would refuse its configuration after this change: {e}; nothing was changed"
        ))
    })?;
    for c in changes {
        let Some(spec) = spec_of(c.path()) else {
            continue;
        };
        let name = c.path().to_string();
        let Some(now) = after_eff.get(&name) else {
            continue;
        };
        match c {
            ConfigChange::Unset { .. } => {
                if let Some(l) = now.layers.last() {
                    return Err(refuse(format!(
                        "{name} would still be set by the {} ({}) after removing it: refused",
                        l.source, l.written
                    )));
                }
            }
            _ => {
                if let Some(want) = intended(&spec, c) {
                    if now.value != want {
                        let why = now
                            .notes
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ");
                        return Err(refuse(format!(
                            "after this change {name} would be {} (from the {}), not {want}{}: refused, nothing was changed",
                            now.value,
                            now.source,
                            if why.is_empty() { String::new() } else { format!(": {why}") }
                        )));
                    }
                }
            }
        }
    }
    let healthz_after = healthz_url(&after_eff).map_err(refuse)?;

    let mut upgrade_notes = Vec::new();
    for f in &files {
        if f.host == KUBEADM_CONFIG {
            upgrade_notes.push(format!(
                "`kubeadm upgrade` rewrites {KUBEADM_CONFIG} from the cluster's kubelet-config ConfigMap: put the change in the ConfigMap too, or it is undone at the next upgrade (`kharden drift` tells)"
            ));
        }
        if f.host == KUBEADM_FLAGS {
            upgrade_notes.push(format!(
                "kubeadm writes {KUBEADM_FLAGS} at `kubeadm join` (and `init`): a re-join undoes this; keep the flag in the cluster's kubeadm configuration (nodeRegistration.kubeletExtraArgs) too"
            ));
        }
    }
    let mut diff = String::new();
    for f in &files {
        diff.push_str(&crate::diff::unified(
            &f.path.display().to_string(),
            f.before.as_deref(),
            Some(&f.after),
        ));
    }
    Ok(KubeletPlan {
        files,
        placements,
        upgrade_notes,
        healthz_before,
        healthz_after,
        keep: static_pods(&loc.root, &before_eff),
        kubeconfig: loc.kubeconfig.clone(),
        node: loc.node_name.clone(),
        diff,
    })
}

/// Where `c` must be written.
fn target_of(
    loc: &Located,
    flags: &Flags,
    src: &ConfigSources,
    merge_order: &[&str],
    c: &ConfigChange,
    spec: Option<&KeySpec>,
) -> Result<Target, KubeletError> {
    let refuse = |s: String| KubeletError::Refused(s);
    let path = c.path();
    let name = path.to_string();
    let mut target = Target::default();
    // 1. Flags.
    let gate = name.strip_prefix("featureGates.");
    let flag = match (spec.and_then(|s| s.flag), gate) {
        (_, Some(_)) => Some("feature-gates"),
        (f, None) => f,
    };
    if let Some(flag) = flag {
        let occurrences: Vec<&kharden_manifest::FlagItem> = flags
            .all(flag)
            .filter(|o| match gate {
                Some(g) => o
                    .value
                    .as_str()
                    .is_some_and(|v| kharden_manifest::flags::map_value(v, g).is_some()),
                None => true,
            })
            .collect();
        if let Some(last) = occurrences.last() {
            if gate.is_some() {
                return Err(refuse(format!(
                    "{name} is set by {} on the kubelet's command line: kharden does not edit one gate inside --feature-gates; change it there by hand (or remove it and run again)",
                    last.written
                )));
            }
            // Argv indices: the flags were parsed from argv[1..].
            let mut per_file: Vec<(String, bool)> = Vec::new();
            for o in &occurrences {
                for i in o.indices() {
                    let w = loc.words.get(i + 1).ok_or_else(|| {
                        refuse(format!("{name}: the command line changed while reading it"))
                    })?;
                    match &w.origin {
                        Origin::EnvFile { file, .. } => {
                            let is_last = std::ptr::eq(*o, *last);
                            match per_file.iter_mut().find(|(f, _)| f == file) {
                                Some((_, l)) => *l |= is_last,
                                None => per_file.push((file.clone(), is_last)),
                            }
                        }
                        other => {
                            return Err(refuse(format!(
                                "{name} is set by `{}` in {}: kharden changes flags in environment files only (a unit change needs `systemctl daemon-reload`, outside the journal). Move the flag to an environment file, or change it by hand",
                                w.text,
                                other.describe()
                            )))
                        }
                    }
                }
            }
            let flags_target: Vec<(String, FlagChange)> = per_file
                .into_iter()
                .map(|(file, holds_last)| {
                    let fc = match (flag_text(c), holds_last) {
                        (Some(value), true) => FlagChange::Set {
                            name: flag.to_string(),
                            value,
                            append_to: None,
                        },
                        _ => FlagChange::Unset {
                            name: flag.to_string(),
                        },
                    };
                    (file, fc)
                })
                .collect();
            if !matches!(c, ConfigChange::Unset { .. }) {
                return Ok(Target {
                    flags: flags_target,
                    files: Vec::new(),
                });
            }
            target.flags = flags_target;
        }
    }
    // 2-4. Files.
    let setting_dropins: Vec<&DropIn> = merge_order
        .iter()
        .filter_map(|n| src.dropin(n))
        .filter(|d| sets(&d.file.contents, path))
        .collect();
    let config_sets = src.config.as_ref().is_some_and(|c| sets(&c.contents, path));
    if let ConfigChange::Unset { .. } = c {
        let mut v: Vec<(String, FileRole)> = setting_dropins
            .iter()
            .map(|d| (d.file.host.clone(), FileRole::DropIn { created: false }))
            .collect();
        if config_sets {
            if let Some(cf) = &src.config {
                v.push((cf.host.clone(), FileRole::Config));
            }
        }
        target.files = v;
        return Ok(target);
    }
    let file = |host: String, role| Target {
        flags: Vec::new(),
        files: vec![(host, role)],
    };
    if let Some(d) = setting_dropins.last() {
        return Ok(file(
            d.file.host.clone(),
            FileRole::DropIn { created: false },
        ));
    }
    if let Some((dir, _)) = &src.config_dir {
        let host = format!("{dir}/{KHARDEN_DROPIN}");
        let created = src.dropin(KHARDEN_DROPIN).is_none();
        return Ok(file(host, FileRole::DropIn { created }));
    }
    if let Some(cf) = &src.config {
        return Ok(file(cf.host.clone(), FileRole::Config));
    }
    Err(refuse(format!(
        "{name}: the kubelet runs without --config and without --config-dir, so there is no KubeletConfiguration to change; set the flag {} in an environment file by hand",
        spec.and_then(|s| s.flag)
            .map(|f| format!("--{f}"))
            .unwrap_or_else(|| "for it".into())
    )))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // the tests write a simulated node's files
mod tests {
    use super::*;
    use crate::assess::procs::NodeProcess;
    use crate::kubelet::locate::ConfigSources;
    use crate::kubelet::unit;

    const DROPIN: &str = "[Service]\nEnvironment=\"KUBELET_KUBECONFIG_ARGS=--kubeconfig=/etc/kubernetes/kubelet.conf\"\nEnvironment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"\nEnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\nEnvironmentFile=-/etc/default/kubelet\nExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS\n";
    const CONFIG: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nhealthzPort: 10248\nreadOnlyPort: 10255\nstreamingConnectionIdleTimeout: 0s\n";

    /// A kubeadm-shaped node under a temp root, and the kubelet "found" on it (its command line
    /// is what the unit expands to).
    fn node(
        kubeadm_args: &str,
        extra: &str,
        config_dir: Option<&[(&str, &str)]>,
    ) -> (tempfile::TempDir, Located) {
        let d = tempfile::tempdir().unwrap();
        let root = HostRoot::new(Some(d.path())).unwrap();
        let r = root.root().to_path_buf();
        let put = |host: &str, text: &str| {
            let p = r.join(host.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        put(
            "/usr/lib/systemd/system/kubelet.service",
            "[Service]\nExecStart=/usr/bin/kubelet\n",
        );
        put(
            "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
            DROPIN,
        );
        put("/var/lib/kubelet/config.yaml", CONFIG);
        let mut args = kubeadm_args.to_string();
        if let Some(files) = config_dir {
            args.push_str(" --config-dir=/etc/kubernetes/kubelet.conf.d");
            std::fs::create_dir_all(r.join("etc/kubernetes/kubelet.conf.d")).unwrap();
            for (name, text) in files {
                put(&format!("/etc/kubernetes/kubelet.conf.d/{name}"), text);
            }
        }
        put(
            "/var/lib/kubelet/kubeadm-flags.env",
            &format!("KUBELET_KUBEADM_ARGS=\"{args}\"\n"),
        );
        put(
            "/etc/default/kubelet",
            &format!("KUBELET_EXTRA_ARGS={extra}\n"),
        );
        let service = unit::load(&root, "kubelet.service").unwrap();
        let words = service
            .expand_with(&mut |h| super::super::locate::read_env_file(&root, h))
            .unwrap();
        let argv: Vec<String> = words.iter().map(|w| w.text.clone()).collect();
        let flags = Flags::parse(&argv[1..]);
        let sources = ConfigSources::read(&root, &flags).unwrap();
        let loc = Located {
            root: root.clone(),
            process: NodeProcess {
                pid: 1,
                argv,
                start_ticks: 1,
                uid: Some(0),
                gid: Some(0),
                groups: vec![],
                cwd: None,
                proc_root: None,
            },
            service,
            words,
            sources,
            kubeconfig: None,
            node_name: None,
        };
        (d, loc)
    }

    fn set(s: &str) -> ConfigChange {
        ConfigChange::parse_set(s).unwrap()
    }

    fn after(p: &KubeletPlan, host: &str) -> String {
        let f = p.files.iter().find(|f| f.host == host).unwrap_or_else(|| {
            panic!(
                "{host} not planned: {:?}",
                p.files.iter().map(|f| &f.host).collect::<Vec<_>>()
            )
        });
        String::from_utf8(f.after.clone()).unwrap()
    }

    #[test]
    fn without_a_config_dir_the_config_file_is_edited() {
        let (_d, loc) = node("--node-ip=10.0.0.1", "", None);
        let p = plan(&loc, &[set("readOnlyPort=0")]).unwrap();
        assert_eq!(p.files.len(), 1);
        assert_eq!(
            after(&p, "/var/lib/kubelet/config.yaml"),
            CONFIG.replace("readOnlyPort: 10255", "readOnlyPort: 0")
        );
        assert_eq!(p.files[0].role, FileRole::Config);
        assert_eq!(p.healthz_before, "http://127.0.0.1:10248/healthz");
        assert_eq!(
            p.upgrade_notes.len(),
            1,
            "config.yaml: an upgrade undoes it"
        );
        // Already so: nothing planned.
        let p = plan(&loc, &[set("eventRecordQPS=50")]);
        assert!(p.is_ok());
    }

    #[test]
    fn a_config_dir_gets_kharden_s_drop_in_unless_a_drop_in_sets_the_key() {
        let dropin = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\neventRecordQPS: 3\n";
        let (_d, loc) = node("", "", Some(&[("50-ops.conf", dropin)]));
        let p = plan(&loc, &[set("readOnlyPort=0"), set("eventRecordQPS=5")]).unwrap();
        let ours = after(&p, "/etc/kubernetes/kubelet.conf.d/99-kharden.conf");
        assert!(
            ours.contains("readOnlyPort: 0") && ours.contains("kind: KubeletConfiguration"),
            "{ours}"
        );
        assert!(!ours.contains("eventRecordQPS"), "{ours}");
        assert_eq!(
            after(&p, "/etc/kubernetes/kubelet.conf.d/50-ops.conf"),
            dropin.replace("eventRecordQPS: 3", "eventRecordQPS: 5"),
            "the drop-in that sets it wins and is edited"
        );
        assert!(p
            .files
            .iter()
            .all(|f| f.host != "/var/lib/kubelet/config.yaml"));
        assert!(p.upgrade_notes.is_empty(), "nothing an upgrade rewrites");
    }

    #[test]
    fn a_flag_is_edited_where_it_is_and_other_occurrences_removed() {
        let (_d, loc) = node("--event-qps=1 --v=2", "\"--event-qps=2\"", None);
        let p = plan(&loc, &[set("eventRecordQPS=9")]).unwrap();
        assert_eq!(
            after(&p, "/etc/default/kubelet"),
            "KUBELET_EXTRA_ARGS=\"--event-qps=9\"\n"
        );
        assert_eq!(
            after(&p, "/var/lib/kubelet/kubeadm-flags.env"),
            "KUBELET_KUBEADM_ARGS=\"--v=2\"\n"
        );
        assert!(p.files.iter().all(|f| f.role == FileRole::EnvFile));
        let flags: Vec<String> = p
            .files
            .iter()
            .flat_map(|f| f.flags.iter().map(ToString::to_string))
            .collect();
        assert_eq!(flags.len(), 2, "{flags:?}");
    }

    #[test]
    fn unset_removes_the_key_everywhere_it_is_set() {
        let dropin = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nreadOnlyPort: 10255\n";
        let (_d, loc) = node(
            "--read-only-port=10255",
            "",
            Some(&[("50-ops.conf", dropin)]),
        );
        let p = plan(&loc, &[ConfigChange::parse_unset("readOnlyPort").unwrap()]).unwrap();
        assert_eq!(p.files.len(), 3, "{:?}", p.placements);
        assert!(!after(&p, "/var/lib/kubelet/config.yaml").contains("readOnlyPort"));
        assert!(!after(&p, "/etc/kubernetes/kubelet.conf.d/50-ops.conf").contains("readOnlyPort"));
        assert!(!after(&p, "/var/lib/kubelet/kubeadm-flags.env").contains("read-only-port"));
    }

    #[test]
    fn what_would_not_take_effect_or_cannot_be_proven_is_refused() {
        let (_d, loc) = node("", "", None);
        // The kubelet replaces a zero duration in its --config file by the default.
        let e = plan(&loc, &[set("streamingConnectionIdleTimeout=0s")]).unwrap_err();
        assert!(e.to_string().contains("4h0m0s"), "{e}");
        let e = plan(&loc, &[set("healthzPort=0")]).unwrap_err();
        assert!(e.to_string().contains("/healthz"), "{e}");
        let (_d, loc) = node(
            "--feature-gates=RotateKubeletServerCertificate=false",
            "",
            None,
        );
        let e = plan(
            &loc,
            &[set("featureGates.RotateKubeletServerCertificate=true")],
        )
        .unwrap_err();
        assert!(e.to_string().contains("--feature-gates"), "{e}");
    }

    #[test]
    fn a_flag_in_the_unit_is_refused() {
        let (d, _) = node("", "", None);
        let root = HostRoot::new(Some(d.path())).unwrap();
        let p = root
            .root()
            .join("usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf");
        std::fs::write(
            &p,
            DROPIN.replace(
                "$KUBELET_CONFIG_ARGS $",
                "$KUBELET_CONFIG_ARGS --event-qps=3 $",
            ),
        )
        .unwrap();
        let service = unit::load(&root, "kubelet.service").unwrap();
        let words = service
            .expand_with(&mut |h| super::super::locate::read_env_file(&root, h))
            .unwrap();
        let argv: Vec<String> = words.iter().map(|w| w.text.clone()).collect();
        let flags = Flags::parse(&argv[1..]);
        let loc = Located {
            root: root.clone(),
            process: NodeProcess {
                pid: 1,
                argv,
                start_ticks: 1,
                uid: None,
                gid: None,
                groups: vec![],
                cwd: None,
                proc_root: None,
            },
            sources: ConfigSources::read(&root, &flags).unwrap(),
            service,
            words,
            kubeconfig: None,
            node_name: None,
        };
        let e = plan(&loc, &[set("eventRecordQPS=9")]).unwrap_err();
        assert!(
            e.to_string().contains(
                "ExecStart= of /usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"
            ),
            "{e}"
        );
    }
}
