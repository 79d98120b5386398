//! The state directory: created 0700, refused when others could write to it.
//!
//! The journal decides what kharden writes into the files that run the control plane; anyone
//! who can write the journal can make recovery "restore" anything. So the directory must be
//! root's alone when kharden runs as root, and so must the journal in it (checked by
//! `store.rs` when it is opened).

use crate::durable::local;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    #[error("state directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state directory {path} is writable by group or others (mode {mode:o}); run: chmod 0700 {path}")]
    Writable { path: PathBuf, mode: u32 },
    #[error("state directory {path} is owned by uid {uid}, not root")]
    NotRoot { path: PathBuf, uid: u32 },
    #[error("state directory {path} is not a directory")]
    NotDir { path: PathBuf },
    #[error("journal {path} {why}; kharden refuses to use it (whoever can change the journal decides what recovery restores)")]
    Journal { path: PathBuf, why: String },
}

fn io(path: &Path, source: std::io::Error) -> StateDirError {
    StateDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Create the state directory (0700) when missing, then check it.
pub fn prepare_state_dir(dir: &Path) -> Result<(), StateDirError> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io(dir, e))?;
        if let Some(parent) = dir.parent() {
            local::fsync_dir(parent).map_err(|e| io(parent, e))?;
        }
    }
    check_state_dir(dir)
}

/// Refuse a state directory that is group- or world-writable, or (as root) not root's.
pub fn check_state_dir(dir: &Path) -> Result<(), StateDirError> {
    let md = std::fs::symlink_metadata(dir).map_err(|e| io(dir, e))?;
    if !md.is_dir() {
        return Err(StateDirError::NotDir {
            path: dir.to_path_buf(),
        });
    }
    let mode = md.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(StateDirError::Writable {
            path: dir.to_path_buf(),
            mode,
        });
    }
    if nix::unistd::geteuid().is_root() && md.uid() != 0 {
        return Err(StateDirError::NotRoot {
            path: dir.to_path_buf(),
            uid: md.uid(),
        });
    }
    Ok(())
}

fn jio(path: &Path, source: std::io::Error) -> super::JournalError {
    super::JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Create the database file 0600 (it must not exist yet).
pub(crate) fn create_db_file(path: &Path) -> Result<(), super::JournalError> {
    match local::create_new_private(path) {
        Ok(true) => Ok(()),
        Ok(false) => Err(jio(
            path,
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "already exists"),
        )),
        Err(e) => Err(jio(path, e)),
    }
}

pub(crate) fn fsync_dir(dir: &Path) -> Result<(), super::JournalError> {
    local::fsync_dir(dir).map_err(|e| jio(dir, e))
}

pub(crate) fn fsync_file(path: &Path) -> Result<(), super::JournalError> {
    local::fsync_file(path).map_err(|e| jio(path, e))
}

pub(crate) fn rename(from: &Path, to: &Path) -> Result<(), super::JournalError> {
    local::rename_synced(from, to).map_err(|e| jio(to, e))
}

pub(crate) fn remove(path: &Path) -> Result<(), super::JournalError> {
    local::remove_if_exists(path).map_err(|e| jio(path, e))
}

/// The marker that says a journal was created in this directory.
pub(crate) fn write_marker(path: &Path) -> Result<(), super::JournalError> {
    local::write_private(
        path,
        b"kharden created journal.redb in this directory; if journal.redb is missing, its transactions are lost: see `kharden journal verify`\n",
    )
    .map_err(|e| jio(path, e))
}
