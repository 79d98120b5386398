//! File effects on managed files: the only code in kharden that changes them.
//!
//! Everything goes through the [`Storage`] trait so that the transaction engine can run on the
//! real file system ([`RealStorage`]) or on a simulated one that models what a power cut keeps
//! and loses (the power-loss explorer). A replace is always: a dot-prefixed temp file in the
//! target's directory (kubelet ignores dot files), the original's mode, owner and xattrs
//! applied before any byte is written, write, fsync, `renameat` over the target, fsync of the
//! directory. An error at any step is returned as it is: never retried, never reported as
//! success (DESIGN.md invariant 8).

pub mod local;
mod real;

pub use real::RealStorage;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Ownership and permissions of a managed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl FileMeta {
    /// What a file kharden creates gets: 0600 root:root.
    pub const NEW_FILE: FileMeta = FileMeta {
        mode: 0o600,
        uid: 0,
        gid: 0,
    };
}

/// A managed file as read from storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    pub contents: Vec<u8>,
    pub meta: FileMeta,
}

/// Errors of file effects. Each names the path and the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    #[error("{path}: {step}: {source}")]
    Io {
        path: PathBuf,
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: is a symbolic link; kharden only manages regular files")]
    Symlink { path: PathBuf },
    #[error("{path}: not a regular file")]
    NotRegular { path: PathBuf },
    #[error("{path}: {len} bytes is too large for a managed file (limit {limit})")]
    TooLarge { path: PathBuf, len: u64, limit: u64 },
    #[error("{path}: has no parent directory or file name")]
    BadPath { path: PathBuf },
}

impl DurableError {
    pub(crate) fn io(path: &Path, step: &'static str, source: std::io::Error) -> Self {
        DurableError::Io {
            path: path.to_path_buf(),
            step,
            source,
        }
    }
}

/// The largest managed file kharden reads (manifests and their config files are KiBs).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// File effects, real or simulated.
pub trait Storage {
    /// Read a managed file. `Ok(None)` when it does not exist; an error for a symlink or a
    /// non-regular file.
    fn read(&self, path: &Path) -> Result<Option<FileState>, DurableError>;

    /// Durably replace (or create) `path` with `contents` and `meta`, through the temp file
    /// named by [`temp_path`]`(path, tag)`.
    fn replace(
        &self,
        path: &Path,
        contents: &[u8],
        meta: &FileMeta,
        tag: &str,
    ) -> Result<(), DurableError>;

    /// Durably remove `path` (unlink, then fsync its directory). Absent is not an error.
    fn remove(&self, path: &Path) -> Result<(), DurableError>;

    /// Remove the temp file a replace of `path` with `tag` may have left. Returns whether one
    /// was there.
    fn remove_temp(&self, path: &Path, tag: &str) -> Result<bool, DurableError>;

    /// Make what `path` holds now durable, whatever it is: fsync the file (when it exists)
    /// and its directory.
    ///
    /// Why: a file found already on the side a transaction is going to is not proof that this
    /// side is on disk. A `replace` whose directory fsync failed (EIO), or whose process died
    /// after the rename, leaves the new name in the page cache only; a later power cut can
    /// bring the old one back. Before a terminal state is journaled on the strength of a file
    /// that was *found* rather than *written*, the engine syncs it (found by the power-loss
    /// simulation, VOPR seeds 1359 and 1964).
    fn sync(&self, path: &Path) -> Result<(), DurableError>;
}

/// The temp file used to replace `path`: `.<name>.kharden-<tag>` beside it. The leading dot
/// keeps kubelet from loading it as a pod (DESIGN.md invariant 4).
pub fn temp_path(path: &Path, tag: &str) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    Some(path.with_file_name(format!(".{name}.kharden-{tag}")))
}

/// The blake3 hash of some contents, as kept in the journal.
pub fn hash(contents: &[u8]) -> [u8; 32] {
    *blake3::hash(contents).as_bytes()
}
