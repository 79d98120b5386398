//! The state directory: created 0700, refused when others could write to it.
//!
//! The journal decides what kharden writes into the files that run the control plane; anyone
//! who can write the journal can make recovery "restore" anything. So the directory must be
//! root's alone when kharden runs as root.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
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
            fsync_dir(parent).map_err(|e| match e {
                super::JournalError::Io { path, source } => StateDirError::Io { path, source },
                other => io(dir, std::io::Error::other(other.to_string())),
            })?;
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

/// Create the database file 0600 if it does not exist. Returns whether it was created.
pub(crate) fn create_db_file(path: &Path) -> Result<bool, super::JournalError> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(super::JournalError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

pub(crate) fn fsync_dir(dir: &Path) -> Result<(), super::JournalError> {
    let f = std::fs::File::open(dir).map_err(|source| super::JournalError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    f.sync_all().map_err(|source| super::JournalError::Io {
        path: dir.to_path_buf(),
        source,
    })
}
