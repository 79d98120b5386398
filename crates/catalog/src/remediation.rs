//! What an automated fix consists of, as data the transaction layer can journal.
//!
//! A fix is a list of [`Change`]s for the component's manifest (flags and
//! [`Change::Mount`]s), plus whole files to create on the host (an audit policy, an admission
//! configuration) and [`Guard`]s: conditions on the current argv under which the fix must not
//! be applied because it would overwrite something the operator configured (for example a
//! different `--admission-control-config-file`). The catalog never touches the disk: the lead's
//! transaction writes [`ExtraFile`]s and the manifest in one journaled transaction.

use kharden_manifest::Change;
use kharden_manifest::Flags;
use serde::Serialize;

/// A file the fix needs on the host, written before the manifest that names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtraFile {
    /// Host path (resolved under `--root` by the caller), e.g.
    /// `/etc/kubernetes/audit-policy.yaml`.
    pub path: String,
    pub contents: &'static str,
    /// Permission bits for a new file (owner root:root).
    pub mode: u32,
}

/// A condition on the component's current flags (flag-parser view: last occurrence wins)
/// that must hold before the fix is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Guard {
    /// The flag is absent or already has exactly this value: the fix would otherwise replace
    /// a file the operator chose.
    AbsentOrEquals {
        flag: &'static str,
        value: &'static str,
        why: &'static str,
    },
    /// The flag is present with a non-empty value: the fix relies on what it configures.
    Present {
        flag: &'static str,
        why: &'static str,
    },
}

/// Why a fix may not be applied to this argv.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--{flag}: {why}")]
pub struct Blocked {
    /// Flag name without dashes.
    pub flag: &'static str,
    pub why: &'static str,
}

/// The changes and files that make a failing control pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Remediation {
    /// Applied in order to the component's container; mounts are [`Change::Mount`].
    pub changes: Vec<Change>,
    pub files: Vec<ExtraFile>,
    pub guards: Vec<Guard>,
    /// What the fix does and what an operator should know, in our words.
    pub note: &'static str,
}

impl Remediation {
    /// Check every [`Guard`] against the component's own flags (`argv[flags_start..]`).
    /// Returns every guard that does not hold, so that a report can list them all.
    pub fn check_guards(&self, argv: &[String]) -> Result<(), Vec<Blocked>> {
        let flags = Flags::parse(argv);
        let blocked: Vec<Blocked> = self
            .guards
            .iter()
            .filter_map(|g| match *g {
                Guard::AbsentOrEquals { flag, value, why } => match flags.effective(flag) {
                    None => None,
                    Some(v) if v == value => None,
                    Some(_) => Some(Blocked { flag, why }),
                },
                Guard::Present { flag, why } => {
                    match flags.last(flag).and_then(|f| f.value.as_str()) {
                        Some(v) if !v.is_empty() => None,
                        _ => Some(Blocked { flag, why }),
                    }
                }
            })
            .collect();
        if blocked.is_empty() {
            Ok(())
        } else {
            Err(blocked)
        }
    }

    /// The flag names the changes touch (without dashes), in order, without repeats.
    pub fn flags(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for name in self.changes.iter().filter_map(Change::flag_name) {
            if !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }
}
