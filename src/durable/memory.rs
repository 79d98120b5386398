//! [`Storage`] in memory: the engine, recovery and `harden` run on it in unit tests, with
//! scripted faults, without touching a file system.
//!
//! It keeps the contract of [`super::RealStorage`] where the engine relies on it: a
//! replace or a remove checks its [`Expect`] at the last moment, temp files are named by
//! [`TempName`] and only those are removed, an injected failure leaves nothing written.
#![allow(clippy::disallowed_methods)] // durable/: see the module docs of `durable`

use super::{
    hash, DurableError, Expect, FileMeta, FileState, Inode, Storage, TempName, DIRECTORY_HASH,
};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An in-memory file tree.
#[derive(Debug, Default)]
pub struct MemStorage {
    files: RefCell<BTreeMap<PathBuf, FileState>>,
    /// Directories with their metadata (only those a test puts: a file's parent need not be
    /// one).
    dirs: RefCell<BTreeMap<PathBuf, FileMeta>>,
    /// Paths that are something else (a FIFO, a symlink): `inode` refuses them.
    others: RefCell<BTreeMap<PathBuf, bool>>,
    temps: RefCell<BTreeMap<PathBuf, Vec<u8>>>,
    /// Fail the N-th replace/remove (1-based) with EIO.
    fail_at: Cell<Option<usize>>,
    ops: Cell<usize>,
    /// Paths made durable by `sync` (found on the target side rather than written).
    synced: RefCell<Vec<PathBuf>>,
    /// Replaces and removes done, in order.
    written: RefCell<Vec<PathBuf>>,
}

impl MemStorage {
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// Put a file (mode 0640, root's), as an operator or kubeadm would have left it.
    pub fn put(&self, p: impl AsRef<Path>, c: &[u8]) {
        self.put_meta(
            p,
            c,
            FileMeta {
                mode: 0o640,
                uid: 0,
                gid: 0,
            },
        );
    }

    pub fn put_meta(&self, p: impl AsRef<Path>, c: &[u8], meta: FileMeta) {
        self.files.borrow_mut().insert(
            p.as_ref().to_path_buf(),
            FileState {
                contents: c.to_vec(),
                meta,
                nlink: 1,
            },
        );
    }

    /// Put a directory with its metadata.
    pub fn put_dir(&self, p: impl AsRef<Path>, meta: FileMeta) {
        self.dirs
            .borrow_mut()
            .insert(p.as_ref().to_path_buf(), meta);
    }

    /// Put a symlink (`true`) or a FIFO (`false`) at `p`.
    pub fn put_other(&self, p: impl AsRef<Path>, symlink: bool) {
        self.others
            .borrow_mut()
            .insert(p.as_ref().to_path_buf(), symlink);
    }

    /// Change a file's or a directory's metadata behind kharden's back.
    pub fn chmod(&self, p: impl AsRef<Path>, meta: FileMeta) {
        if let Some(f) = self.files.borrow_mut().get_mut(p.as_ref()) {
            f.meta = meta;
        }
        if let Some(d) = self.dirs.borrow_mut().get_mut(p.as_ref()) {
            *d = meta;
        }
    }

    /// Give a file another hard link (its link count only: names are not modelled).
    pub fn link(&self, p: impl AsRef<Path>) {
        if let Some(f) = self.files.borrow_mut().get_mut(p.as_ref()) {
            f.nlink += 1;
        }
    }

    pub fn delete(&self, p: impl AsRef<Path>) {
        self.files.borrow_mut().remove(p.as_ref());
    }

    pub fn get(&self, p: impl AsRef<Path>) -> Option<Vec<u8>> {
        self.files
            .borrow()
            .get(p.as_ref())
            .map(|f| f.contents.clone())
    }

    /// A file's or a directory's metadata.
    pub fn meta(&self, p: impl AsRef<Path>) -> Option<FileMeta> {
        let p = p.as_ref();
        self.files
            .borrow()
            .get(p)
            .map(|f| f.meta)
            .or_else(|| self.dirs.borrow().get(p).copied())
    }

    /// Leave a temp file, as a process killed before its rename would.
    pub fn put_temp(&self, p: impl AsRef<Path>, c: &[u8]) {
        self.temps
            .borrow_mut()
            .insert(p.as_ref().to_path_buf(), c.to_vec());
    }

    pub fn temps(&self) -> Vec<PathBuf> {
        self.temps.borrow().keys().cloned().collect()
    }

    /// Make the `n`-th replace or remove from now (1-based) fail with EIO.
    pub fn fail_op(&self, n: usize) {
        self.fail_at.set(Some(self.ops.get() + n));
    }

    pub fn synced(&self) -> Vec<PathBuf> {
        self.synced.borrow().clone()
    }

    pub fn written(&self) -> Vec<PathBuf> {
        self.written.borrow().clone()
    }

    fn tick(&self, p: &Path) -> Result<(), DurableError> {
        let n = self.ops.get() + 1;
        self.ops.set(n);
        if self.fail_at.get() == Some(n) {
            return Err(DurableError::io(
                p,
                "write temp file",
                std::io::Error::from_raw_os_error(libc::EIO),
            ));
        }
        Ok(())
    }

    fn check(&self, path: &Path, expect: Expect) -> Result<(), DurableError> {
        let files = self.files.borrow();
        if expect.holds(files.get(path).map(|f| f.contents.as_slice())) {
            Ok(())
        } else {
            Err(DurableError::Moved {
                path: path.to_path_buf(),
            })
        }
    }
}

impl Storage for MemStorage {
    fn read(&self, path: &Path) -> Result<Option<FileState>, DurableError> {
        Ok(self.files.borrow().get(path).cloned())
    }

    fn replace(
        &self,
        path: &Path,
        contents: &[u8],
        meta: &FileMeta,
        temp: &TempName,
        expect: Expect,
    ) -> Result<(), DurableError> {
        let _ = temp.path(path, 0).ok_or_else(|| DurableError::BadPath {
            path: path.to_path_buf(),
        })?;
        self.tick(path)?;
        self.check(path, expect)?;
        self.files.borrow_mut().insert(
            path.to_path_buf(),
            FileState {
                contents: contents.to_vec(),
                meta: *meta,
                nlink: 1,
            },
        );
        self.written.borrow_mut().push(path.to_path_buf());
        Ok(())
    }

    fn remove(&self, path: &Path, expect: Expect) -> Result<(), DurableError> {
        self.tick(path)?;
        if self.files.borrow().contains_key(path) {
            self.check(path, expect)?;
        }
        self.files.borrow_mut().remove(path);
        self.written.borrow_mut().push(path.to_path_buf());
        Ok(())
    }

    fn remove_temps(&self, path: &Path, temp: &TempName) -> Result<Vec<PathBuf>, DurableError> {
        let dir = path.parent().unwrap_or(Path::new("/"));
        let doomed: Vec<PathBuf> = self
            .temps
            .borrow()
            .keys()
            .filter(|t| {
                t.parent() == Some(dir)
                    && t.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| temp.matches(path, n))
            })
            .cloned()
            .collect();
        let mut temps = self.temps.borrow_mut();
        for t in &doomed {
            temps.remove(t);
        }
        Ok(doomed)
    }

    fn sync(&self, path: &Path) -> Result<(), DurableError> {
        self.synced.borrow_mut().push(path.to_path_buf());
        Ok(())
    }

    fn inode(&self, path: &Path) -> Result<Option<Inode>, DurableError> {
        if let Some(symlink) = self.others.borrow().get(path) {
            return Err(if *symlink {
                DurableError::Symlink {
                    path: path.to_path_buf(),
                }
            } else {
                DurableError::NotFileOrDirectory {
                    path: path.to_path_buf(),
                }
            });
        }
        if let Some(meta) = self.dirs.borrow().get(path) {
            return Ok(Some(Inode {
                directory: true,
                hash: DIRECTORY_HASH,
                len: 0,
                meta: *meta,
                nlink: 2,
            }));
        }
        Ok(self.files.borrow().get(path).map(|f| Inode {
            directory: false,
            hash: hash(&f.contents),
            len: f.contents.len() as u64,
            meta: f.meta,
            nlink: f.nlink,
        }))
    }

    fn set_meta(&self, path: &Path, meta: &FileMeta, expect: &Inode) -> Result<(), DurableError> {
        let now = self.inode(path)?;
        if !now.is_some_and(|n| n.same_identity(expect) && n.meta == expect.meta) {
            return Err(DurableError::Moved {
                path: path.to_path_buf(),
            });
        }
        self.tick(path)?;
        self.chmod(path, *meta);
        self.written.borrow_mut().push(path.to_path_buf());
        Ok(())
    }

    fn list(&self, dir: &Path) -> Result<Option<Vec<String>>, DurableError> {
        let files = self.files.borrow();
        let temps = self.temps.borrow();
        let mut names: Vec<String> = files
            .keys()
            .chain(temps.keys())
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        if names.is_empty() && !files.keys().any(|p| p.starts_with(dir)) {
            return Ok(None);
        }
        names.sort();
        Ok(Some(names))
    }
}
