//! `kharden apply` and `kharden edit` as a library: read a manifest the way the engine will,
//! run the editor, check that the gate and the audit can run, and build the transaction.
//!
//! Everything that can refuse is checked here, before any change: the file (no symbolic link,
//! a regular file, within the size limit), the edit (the editor's refusals name the line),
//! the gate (a probe to run, or `--health-url`), the audit script (there and executable).

use crate::durable::{hash, Storage};
use crate::error::{Error, Result};
use crate::journal::{AuditSpec, GateSpec, TxnKind};
use crate::root::HostRoot;
use crate::txn::{FileOp, Plan, PlanOptions};
use kharden_manifest::{Change, Edited};
use std::path::{Path, PathBuf};

/// The absolute path of a file named on the command line (its directory canonicalized, the
/// name itself kept, so that a symbolic link is still refused by the storage layer). The
/// journal stores absolute paths: recovery may run from another working directory.
pub fn absolute(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::refused(format!("{}: not a file name", path.display())))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = std::fs::canonicalize(dir)
        .map_err(|e| Error::refused(format!("{}: {e}", dir.display())))?;
    Ok(dir.join(name))
}

/// Read a manifest the way the engine will (no symbolic links, regular files only).
pub fn read_manifest(storage: &dyn Storage, path: &Path) -> Result<Vec<u8>> {
    match storage.read(path)? {
        Some(s) => Ok(s.contents),
        None => Err(Error::refused(format!("{}: no such file", path.display()))),
    }
}

/// Run the editor, turning a refusal into "file: line N: reason".
pub fn run_editor(
    path: &Path,
    contents: &[u8],
    container: Option<&str>,
    changes: &[Change],
) -> Result<Edited> {
    if changes.is_empty() {
        return Err(Error::Usage(
            "no change given (use --set, --unset, --add-item, --remove-item, --at-least or --set-key)"
                .into(),
        ));
    }
    kharden_manifest::edit(contents, container, changes)
        .map_err(|e| Error::refused(format!("{}: {e}", path.display())))
}

/// The one line `journal log` shows for an apply.
pub fn summary(path: &Path, changes: &[Change]) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(
        "apply {name}: {}",
        changes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// What `kharden apply` is asked to do.
#[derive(Debug, Clone)]
pub struct ApplyRequest {
    /// As given on the command line.
    pub manifest: PathBuf,
    pub container: Option<String>,
    pub changes: Vec<Change>,
    pub gate: GateSpec,
    pub audit: AuditSpec,
    pub options: PlanOptions,
    pub root: HostRoot,
}

/// An apply checked and ready to run: the edit and its transaction.
#[derive(Debug, Clone)]
pub struct PreparedApply {
    pub path: PathBuf,
    pub before: Vec<u8>,
    pub edited: Edited,
    pub diff: String,
}

impl PreparedApply {
    pub fn unchanged(&self) -> bool {
        self.edited.unchanged()
    }
}

impl ApplyRequest {
    pub fn summary(&self) -> String {
        summary(&self.manifest, &self.changes)
    }

    /// Every check that can refuse, before any change.
    pub fn prepare(&self, storage: &dyn Storage) -> Result<PreparedApply> {
        let path = absolute(&self.manifest)?;
        let before = read_manifest(storage, &path)?;
        let edited = run_editor(
            &self.manifest,
            &before,
            self.container.as_deref(),
            &self.changes,
        )?;
        if !edited.unchanged() {
            if self.gate.enabled {
                // Refuse before any change when the gate could not run (no probe, no argv).
                crate::gate::params_for(
                    &self.root,
                    &self.gate,
                    &edited.output,
                    None,
                    std::time::UNIX_EPOCH,
                )
                .map_err(|why| {
                    Error::refused(format!(
                        "{}: cannot gate this change: {why}",
                        self.manifest.display()
                    ))
                })?;
            }
            if let Some(script) = &self.audit.script {
                crate::audit::check_script(Path::new(script)).map_err(Error::refused)?;
            }
        }
        let diff = crate::diff::unified(
            &path.display().to_string(),
            Some(&before),
            Some(&edited.output),
        );
        Ok(PreparedApply {
            path,
            before,
            edited,
            diff,
        })
    }

    /// The transaction of a prepared apply.
    pub fn plan(&self, p: &PreparedApply) -> Plan {
        Plan {
            kind: TxnKind::Apply,
            summary: self.summary(),
            ops: vec![FileOp {
                expect_before: Some(Some(hash(&p.before))),
                changes: self.changes.clone(),
                gated: true,
                ..FileOp::contents(p.path.clone(), Some(p.edited.output.clone()))
            }],
            gate: self.gate.clone(),
            audit: self.audit.clone(),
            options: self.options,
            restart: None,
        }
    }
}
