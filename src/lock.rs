//! One writer at a time (DESIGN.md invariant 7): an advisory lock on `<state-dir>/lock`,
//! taken with `std::fs::File::try_lock` (flock(2)) and held for a whole transaction or
//! recovery. The kernel releases it when the process dies, so a crash never leaves it stuck.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// File name of the lock inside the state directory.
pub const LOCK_FILE: &str = "lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another kharden is running (lock {path} is held); wait for it, or retry with --wait SECS"
    )]
    Held { path: PathBuf },
    #[error("lock {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The held lock; released on drop (or by the kernel at exit).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// Take the lock, waiting up to `wait` for another kharden to finish.
pub fn acquire(state_dir: &Path, wait: Duration) -> Result<StateLock, LockError> {
    let path = state_dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|source| LockError::Io {
            path: path.clone(),
            source,
        })?;
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(StateLock { _file: file }),
            Err(TryLockError::WouldBlock) => {
                if start.elapsed() >= wait {
                    return Err(LockError::Held { path });
                }
                std::thread::sleep(
                    Duration::from_millis(100)
                        .min(wait.saturating_sub(start.elapsed()))
                        .max(Duration::from_millis(1)),
                );
            }
            Err(TryLockError::Error(source)) => return Err(LockError::Io { path, source }),
        }
    }
}

/// Whether the lock is free right now (for read-only commands choosing how to open).
pub fn is_free(state_dir: &Path) -> bool {
    let path = state_dir.join(LOCK_FILE);
    match OpenOptions::new().read(true).open(&path) {
        Ok(f) => f.try_lock_shared().is_ok(),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_then_succeeds_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let a = acquire(dir.path(), Duration::ZERO).unwrap();
        assert!(matches!(
            acquire(dir.path(), Duration::from_millis(150)),
            Err(LockError::Held { .. })
        ));
        drop(a);
        acquire(dir.path(), Duration::ZERO).unwrap();
    }
}
