//! The audit of a kubelet transaction: after the gate proved a restarted, healthy kubelet,
//! check that it really runs with what was written.
//!
//! Three questions, each a way the change could have been written and still not be in effect:
//! 1. does the restarted kubelet read the files written (its `--config` is the file, or its
//!    `--config-dir` holds the drop-in)? A kubelet started with another `--config` (a unit edited
//!    meanwhile) reads something else;
//! 2. do those files hold the transaction's after-contents (nobody rewrote them in between)?
//! 3. is every intended setting in effect: the effective configuration, computed from the
//!    running command line and the files it names (flags over drop-ins over the file over the
//!    defaults), has each value set, and no source left for each key removed; every flag
//!    changed in an environment file holds on the running command line (the project's one flag
//!    reader, [`kharden_manifest::Change::holds_in`]).

use super::locate::{running_kubelet, ConfigSources};
use super::plan::{intended, spec_of};
use crate::audit::{AuditRequest, AuditVerdict};
use crate::durable::hash;
use crate::root::HostRoot;
use kharden_kubelet_config::ConfigChange;
use kharden_manifest::Flags;
use std::path::Path;

fn fail(detail: String) -> AuditVerdict {
    AuditVerdict {
        passed: false,
        detail: format!("built-in audit of the kubelet: {detail}"),
        output: None,
    }
}

/// Audit a kubelet transaction (see the module docs).
pub fn audit(req: &AuditRequest<'_>) -> AuditVerdict {
    let root = match HostRoot::new(req.gate.root.as_deref().map(Path::new)) {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    let (argv, whose) = match &req.running_argv {
        Some(a) => (a.clone(), "the restarted kubelet"),
        None => match running_kubelet(&root) {
            Some(p) => (p.argv, "the running kubelet (no gate proved one)"),
            None => return fail("no kubelet is running to audit".into()),
        },
    };
    let flags = Flags::parse(argv.get(1..).unwrap_or_default());
    let sources = match ConfigSources::read(&root, &flags) {
        Ok(s) => s,
        Err(e) => return fail(format!("reading {whose}'s configuration: {e}")),
    };
    let mut unmet: Vec<String> = Vec::new();
    let mut settings: Vec<&ConfigChange> = Vec::new();
    let mut flag_changes = 0;
    for f in req.files.iter().filter(|f| !f.is_metadata()) {
        let path = Path::new(&f.path);
        let now = std::fs::read(path).ok();
        if now.as_deref().map(hash) != f.after.as_ref().map(|a| a.hash) {
            unmet.push(format!(
                "{} no longer holds the contents the transaction wrote",
                f.path
            ));
        }
        if !f.settings.is_empty() {
            let is_config = sources.config.as_ref().is_some_and(|c| c.path == path);
            let in_dir = sources
                .config_dir
                .as_ref()
                .is_some_and(|(_, d)| path.starts_with(d));
            if !(is_config || in_dir) {
                unmet.push(format!(
                    "{whose} does not read {} (its --config is {}, its --config-dir {})",
                    f.path,
                    flags.effective("config").unwrap_or("not given"),
                    flags.effective("config-dir").unwrap_or("not given"),
                ));
            }
            settings.extend(f.settings.iter());
        }
        for c in &f.changes {
            flag_changes += 1;
            if !c.holds_in(&flags) {
                unmet.push(format!("{c} is not on {whose}'s command line"));
            }
        }
    }
    let eff = match sources.effective(&flags) {
        Ok(e) => e,
        Err(e) => return fail(format!("{whose}'s configuration cannot be read: {e}")),
    };
    for c in &settings {
        let name = c.path().to_string();
        let (Some(spec), Some(now)) = (spec_of(c.path()), eff.get(&name)) else {
            continue;
        };
        match c {
            ConfigChange::Unset { .. } => {
                if let Some(l) = now.layers.last() {
                    unmet.push(format!(
                        "{name} is still set by the {} ({})",
                        l.source, l.written
                    ));
                }
            }
            _ => {
                if let Some(want) = intended(&spec, c) {
                    if now.value != want {
                        unmet.push(format!(
                            "{name} is {} in effect (from the {}), not {want}",
                            now.value, now.source
                        ));
                    }
                }
            }
        }
    }
    if unmet.is_empty() {
        AuditVerdict {
            passed: true,
            detail: format!(
                "built-in audit: {} setting(s) and {flag_changes} flag change(s) in effect on {whose}, which reads the files written",
                settings.len()
            ),
            output: None,
        }
    } else {
        fail(unmet.join("; "))
    }
}
