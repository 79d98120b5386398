//! File effects on managed files: the only code in kharden that changes them.
//!
//! Everything goes through the [`Storage`] trait so that the transaction engine can run on the
//! real file system ([`RealStorage`]) or on a simulated one that models what a power cut keeps
//! and loses (the power-loss explorer). A replace is always: a dot-prefixed temp file in the
//! target's directory (kubelet ignores dot files), the original's mode, owner and xattrs
//! applied before any byte is written, write, fsync, `renameat` over the target, fsync of the
//! directory. An error at any step is returned as it is: never retried, never reported as
//! success (DESIGN.md invariant 8).
//!
//! The one module of the program that writes, renames and unlinks files (clippy's
//! `disallowed-methods` keeps every other module from it).
#![allow(clippy::disallowed_methods)]

pub mod local;
pub mod memory;
mod real;

pub use memory::MemStorage;
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

/// `0644 1000:1000`: the mode in octal, then the numeric owner and group (the CLI names them
/// from the node's user database).
impl std::fmt::Display for FileMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04o} {}:{}", self.mode, self.uid, self.gid)
    }
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
    /// Hard links to the inode (a replace splits them: see [`crate::txn`]).
    pub nlink: u64,
}

/// A managed file or directory as a metadata transaction sees it: what it is, its identity and
/// its metadata. The identity of a regular file is the hash of its contents (a file whose
/// contents changed is not the file the plan read); a directory's is only that it is one
/// (etcd writes into its data directory all the time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inode {
    pub directory: bool,
    /// blake3 of a regular file's contents, streamed (never held whole); [`DIRECTORY_HASH`]
    /// for a directory.
    pub hash: [u8; 32],
    /// Size of a regular file (0 for a directory).
    pub len: u64,
    pub meta: FileMeta,
    pub nlink: u64,
}

/// The identity hash of every directory.
pub const DIRECTORY_HASH: [u8; 32] = [0; 32];

impl Inode {
    /// Whether `other` is the same kind of inode with the same contents (metadata aside).
    pub fn same_identity(&self, other: &Inode) -> bool {
        self.directory == other.directory && self.hash == other.hash
    }
}

/// Hash a reader's contents in chunks (a metadata transaction over a whole tree must not hold
/// the tree's contents in memory).
pub fn hash_reader(mut r: impl std::io::Read) -> std::io::Result<([u8; 32], u64)> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(buf.get(..n).unwrap_or_default());
                len += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((*hasher.finalize().as_bytes(), len))
}

/// What a file must hold right before kharden renames over it or removes it: the read that
/// planned the change, checked again at the last moment (another writer's change in between
/// is refused, not lost).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No file there.
    Absent,
    /// A regular file with these contents (blake3).
    Contents([u8; 32]),
}

impl Expect {
    /// What `found` is, as an expectation.
    pub fn of(found: Option<&[u8]>) -> Expect {
        match found {
            None => Expect::Absent,
            Some(c) => Expect::Contents(hash(c)),
        }
    }

    pub fn holds(&self, found: Option<&[u8]>) -> bool {
        *self == Expect::of(found)
    }
}

/// The names of one transaction's temp files: `.<name>.kharden-<txid>-<tag>-<attempt>`, the
/// tag random per transaction and kept in its journal record, the attempt counting the
/// writes of that file by this process. Unique per attempt, so a stale temp (of a journal
/// that was moved aside, say) is never reused, written over, or removed by kharden: only
/// names that match a journaled transaction's tag are kharden's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TempName {
    pub txid: u64,
    /// [`crate::journal::TEMP_TAG_V1`]: a format-1 transaction, whose only temp name was
    /// `.<name>.kharden-<txid>`.
    pub tag: u64,
}

impl TempName {
    /// The prefix every temp of `path` in this transaction starts with.
    pub fn prefix(&self, path: &Path) -> Option<String> {
        let name = path.file_name()?.to_str()?;
        Some(if self.tag == crate::journal::TEMP_TAG_V1 {
            format!(".{name}.kharden-{}", self.txid)
        } else {
            format!(".{name}.kharden-{}-{:016x}-", self.txid, self.tag)
        })
    }

    /// The temp of `path` for one attempt.
    pub fn path(&self, path: &Path, attempt: u32) -> Option<PathBuf> {
        let prefix = self.prefix(path)?;
        Some(if self.tag == crate::journal::TEMP_TAG_V1 {
            path.with_file_name(prefix)
        } else {
            path.with_file_name(format!("{prefix}{attempt}"))
        })
    }

    /// Whether `file_name` (in `path`'s directory) is one of this transaction's temps of
    /// `path`.
    pub fn matches(&self, path: &Path, file_name: &str) -> bool {
        let Some(prefix) = self.prefix(path) else {
            return false;
        };
        if self.tag == crate::journal::TEMP_TAG_V1 {
            return file_name == prefix;
        }
        file_name
            .strip_prefix(&prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }
}

/// A new random temp tag (never [`crate::journal::TEMP_TAG_V1`]).
pub fn new_temp_tag() -> u64 {
    let mut buf = [0u8; 8];
    // SAFETY: getrandom writes at most `buf.len()` bytes into the buffer it is given.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    let tag = if n == 8 {
        u64::from_ne_bytes(buf)
    } else {
        // No getrandom: the time and the pid still make a collision with a stale temp of
        // another journal practically impossible.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        t ^ (u64::from(std::process::id()) << 32)
    };
    tag.max(1)
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
    #[error("{path}: not a regular file or a directory (a FIFO, a socket or a device); kharden changes the metadata of regular files and directories only")]
    NotFileOrDirectory { path: PathBuf },
    #[error("{path}: {len} bytes is too large for a managed file (limit {limit})")]
    TooLarge { path: PathBuf, len: u64, limit: u64 },
    #[error("{path}: has no parent directory or file name")]
    BadPath { path: PathBuf },
    #[error("{path}: changed by another writer while kharden was writing it; nothing was written over it")]
    Moved { path: PathBuf },
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

/// The largest managed file kharden reads or writes: the one size limit, shared with the
/// editor (a static pod manifest, a kubelet configuration or an audit policy is KiBs).
pub const MAX_FILE_BYTES: u64 = kharden_manifest::MAX_MANIFEST_BYTES as u64;

/// File effects, real or simulated.
pub trait Storage {
    /// Read a managed file. `Ok(None)` when it does not exist; an error for a symlink or a
    /// non-regular file.
    fn read(&self, path: &Path) -> Result<Option<FileState>, DurableError>;

    /// Durably replace (or create) `path` with `contents` and `meta`, through a temp file
    /// named by `temp` (attempt numbers are the storage's to choose). Right before the rename,
    /// `path` must still be as `expect` says, or nothing is written over it
    /// ([`DurableError::Moved`]).
    fn replace(
        &self,
        path: &Path,
        contents: &[u8],
        meta: &FileMeta,
        temp: &TempName,
        expect: Expect,
    ) -> Result<(), DurableError>;

    /// Durably remove `path` (unlink, then fsync its directory), if it is still as `expect`
    /// says. Absent is not an error.
    fn remove(&self, path: &Path, expect: Expect) -> Result<(), DurableError>;

    /// Remove every temp file of `path` that `temp` names (and nothing else). Returns the
    /// names removed.
    fn remove_temps(&self, path: &Path, temp: &TempName) -> Result<Vec<PathBuf>, DurableError>;

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

    /// The names in directory `dir`, sorted (`None`: no such directory). For finding the
    /// static pod manifests as kubelet does.
    fn list(&self, dir: &Path) -> Result<Option<Vec<String>>, DurableError>;

    /// What stands at `path`, for a metadata transaction, without following a symlink: a
    /// regular file (its contents hashed as they stream) or a directory. `Ok(None)` when
    /// absent; an error for a symlink ([`DurableError::Symlink`]) or any other kind of file
    /// ([`DurableError::NotFileOrDirectory`]).
    fn inode(&self, path: &Path) -> Result<Option<Inode>, DurableError>;

    /// Durably set the mode, owner and group of `path`, if it is still exactly `expect` (same
    /// kind, same contents, same metadata); otherwise nothing is changed
    /// ([`DurableError::Moved`]). On the real file system: an `O_NOFOLLOW` descriptor, `fchown`
    /// (when the owner or group changes), then `fchmod` (a chown clears the set-id bits), then
    /// `fsync` of the inode: a chmod is durable only once its inode is synced.
    fn set_meta(&self, path: &Path, meta: &FileMeta, expect: &Inode) -> Result<(), DurableError>;
}

/// The blake3 hash of some contents, as kept in the journal.
pub fn hash(contents: &[u8]) -> [u8; 32] {
    *blake3::hash(contents).as_bytes()
}
