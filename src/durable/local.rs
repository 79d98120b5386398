//! Durable effects on kharden's own files (the state directory: the journal, its marker, the
//! lock), as opposed to the managed files of [`super::Storage`].
//!
//! Why here: every rename, unlink and write of the program lives in `durable/` (clippy's
//! `disallowed-methods` keeps it so), where the fsync discipline is in one place: a new file is
//! fsync'd before it is relied upon, and a directory is fsync'd after an entry in it was
//! created, renamed or removed.
#![allow(clippy::disallowed_methods)] // durable/: see the module docs of `durable`

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Create `path` 0600, exclusively, without following a symlink. Returns whether it was
/// created (`false`: it already existed).
pub fn create_new_private(path: &Path) -> std::io::Result<bool> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// fsync a file's contents and metadata.
pub fn fsync_file(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

/// fsync a directory (its entries).
pub fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Write a small new file (0600, exclusive or replacing an existing one of ours), fsync it.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// Rename `from` over `to` (same directory), then fsync the directory.
pub fn rename_synced(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::rename(from, to)?;
    match to.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => fsync_dir(dir),
        _ => fsync_dir(Path::new(".")),
    }
}

/// Remove a file of ours; absent is not an error.
pub fn remove_if_exists(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Replace `path` with `contents` atomically, for kharden's own outputs (the metrics textfile
/// of `kharden audit --textfile`), not managed files: a dot-prefixed temp file in the same
/// directory (created exclusively with `mode`, never through a symlink), written and fsync'd,
/// renamed over `path`, then the directory fsync'd. A reader (node_exporter) sees the old file
/// or the new one, never a part of one; on an error the temp file is removed and `path` is
/// left as it was.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path has no file name",
        )
    })?;
    let tmp = dir.join(format!(
        ".{}.kharden-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    // A leftover of an earlier run that had this pid and was killed midway.
    remove_if_exists(&tmp)?;
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        // The umask may have removed bits: the mode asked for is the mode written.
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(contents)?;
        f.sync_all()
    })();
    if let Err(e) = written.and_then(|_| rename_synced(&tmp, path)) {
        let _ = remove_if_exists(&tmp);
        return Err(e);
    }
    Ok(())
}
