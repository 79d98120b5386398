//! [`Storage`] on the real file system, with every fsync the design asks for.
#![allow(clippy::disallowed_methods)] // durable/: see the module docs of `durable`

use super::{
    hash_reader, DurableError, Expect, FileMeta, FileState, Inode, Storage, TempName,
    DIRECTORY_HASH, MAX_FILE_BYTES,
};
use crate::failpoint;
use nix::fcntl::{openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstatat, Mode, SFlag};
use nix::unistd::{fchown, unlinkat, Gid, Uid, UnlinkatFlags};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealStorage;

fn split(path: &Path) -> Result<(&Path, &std::ffi::OsStr), DurableError> {
    let bad = || DurableError::BadPath {
        path: path.to_path_buf(),
    };
    let name = path.file_name().ok_or_else(bad)?;
    let dir = match path.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
        None => return Err(bad()),
    };
    Ok((dir, name))
}

fn open_dir(dir: &Path, path: &Path) -> Result<OwnedFd, DurableError> {
    nix::fcntl::open(
        dir,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| DurableError::io(path, "open directory", e.into()))
}

fn fsync_dir(dirfd: &OwnedFd, path: &Path) -> Result<(), DurableError> {
    nix::unistd::fsync(dirfd).map_err(|e| DurableError::io(path, "fsync directory", e.into()))
}

/// [`open_dir`], with `None` when the directory does not exist (then nothing in it does).
fn open_dir_if_exists(dir: &Path, path: &Path) -> Result<Option<OwnedFd>, DurableError> {
    match open_dir(dir, path) {
        Ok(fd) => Ok(Some(fd)),
        Err(DurableError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Open `name` in `dirfd` for reading without following a symlink, and check that it is a
/// regular file (`None`: absent). Returns the file and its status.
fn open_regular(
    dirfd: &OwnedFd,
    name: &std::ffi::OsStr,
    path: &Path,
) -> Result<Option<(File, nix::sys::stat::FileStat)>, DurableError> {
    let fd = match openat(
        dirfd,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return Ok(None),
        Err(nix::errno::Errno::ELOOP) => {
            return Err(DurableError::Symlink {
                path: path.to_path_buf(),
            })
        }
        Err(e) => return Err(DurableError::io(path, "open", e.into())),
    };
    let file = File::from(fd);
    let st = nix::sys::stat::fstat(file.as_fd())
        .map_err(|e| DurableError::io(path, "stat", e.into()))?;
    refuse_non_regular(
        Some(SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())),
        path,
    )?;
    Ok(Some((file, st)))
}

/// Open `name` in `dirfd` for a metadata change: a regular file or a directory, never
/// through a symlink, and never opening anything else (a FIFO or a device is refused from its
/// `lstat`, before any `open` could block or wake a driver). `None`: absent.
fn open_inode(
    dirfd: &OwnedFd,
    name: &std::ffi::OsStr,
    path: &Path,
) -> Result<Option<(File, nix::sys::stat::FileStat, bool)>, DurableError> {
    let kind_of = |mode: u32| SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits());
    let before = match fstatat(dirfd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(nix::errno::Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(DurableError::io(path, "stat", e.into())),
    };
    let kind = kind_of(before.st_mode);
    if kind == SFlag::S_IFLNK {
        return Err(DurableError::Symlink {
            path: path.to_path_buf(),
        });
    }
    if kind != SFlag::S_IFREG && kind != SFlag::S_IFDIR {
        return Err(DurableError::NotFileOrDirectory {
            path: path.to_path_buf(),
        });
    }
    let fd = match openat(
        dirfd,
        name,
        OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return Ok(None),
        Err(nix::errno::Errno::ELOOP) => {
            return Err(DurableError::Symlink {
                path: path.to_path_buf(),
            })
        }
        Err(e) => return Err(DurableError::io(path, "open", e.into())),
    };
    let file = File::from(fd);
    let st = nix::sys::stat::fstat(file.as_fd())
        .map_err(|e| DurableError::io(path, "stat", e.into()))?;
    // Swapped between the lstat and the open: not the inode that was checked.
    if st.st_ino != before.st_ino || st.st_dev != before.st_dev || kind_of(st.st_mode) != kind {
        return Err(DurableError::Moved {
            path: path.to_path_buf(),
        });
    }
    Ok(Some((file, st, kind == SFlag::S_IFDIR)))
}

/// The [`Inode`] of an open file or directory (hashing a regular file's contents from the
/// start, in chunks).
fn inode_of(
    file: &File,
    st: &nix::sys::stat::FileStat,
    directory: bool,
    path: &Path,
) -> Result<Inode, DurableError> {
    let (hash, len) = if directory {
        (DIRECTORY_HASH, 0)
    } else {
        let mut reader = file;
        std::io::Seek::seek(&mut reader, std::io::SeekFrom::Start(0))
            .map_err(|e| DurableError::io(path, "seek", e))?;
        hash_reader(reader).map_err(|e| DurableError::io(path, "read", e))?
    };
    Ok(Inode {
        directory,
        hash,
        len,
        meta: FileMeta {
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
        },
        #[allow(clippy::unnecessary_cast)] // st_nlink is u32 on some targets
        nlink: st.st_nlink as u64,
    })
}

/// Kind of what stands at `name` in `dirfd`, without following a symlink.
fn kind_at(
    dirfd: &OwnedFd,
    name: &std::ffi::OsStr,
    path: &Path,
) -> Result<Option<SFlag>, DurableError> {
    match fstatat(dirfd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(SFlag::from_bits_truncate(
            st.st_mode & SFlag::S_IFMT.bits(),
        ))),
        Err(nix::errno::Errno::ENOENT) => Ok(None),
        Err(e) => Err(DurableError::io(path, "stat", e.into())),
    }
}

fn refuse_non_regular(kind: Option<SFlag>, path: &Path) -> Result<(), DurableError> {
    match kind {
        None => Ok(()),
        Some(k) if k == SFlag::S_IFREG => Ok(()),
        Some(k) if k == SFlag::S_IFLNK => Err(DurableError::Symlink {
            path: path.to_path_buf(),
        }),
        Some(_) => Err(DurableError::NotRegular {
            path: path.to_path_buf(),
        }),
    }
}

/// Close a file descriptor and report the error `close(2)` gives (std's drop ignores it).
fn close_checked(fd: OwnedFd, path: &Path) -> Result<(), DurableError> {
    use std::os::fd::IntoRawFd;
    let raw = fd.into_raw_fd();
    // SAFETY: `raw` was just released from an OwnedFd, so it is open and owned by us alone.
    let rc = unsafe { libc::close(raw) };
    if rc == 0 {
        Ok(())
    } else {
        Err(DurableError::io(
            path,
            "close",
            std::io::Error::last_os_error(),
        ))
    }
}

/// Copy every extended attribute of `from` onto `to` (SELinux labels, IMA, user attributes).
fn copy_xattrs(from: &File, to: &OwnedFd, path: &Path) -> Result<(), DurableError> {
    let from_fd = from.as_raw_fd();
    // SAFETY: flistxattr with a null buffer and size 0 only returns the size needed.
    let size = unsafe { libc::flistxattr(from_fd, std::ptr::null_mut(), 0) };
    if size < 0 {
        let err = std::io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ENOTSUP) => Ok(()),
            _ => Err(DurableError::io(path, "list xattrs", err)),
        };
    }
    if size == 0 {
        return Ok(());
    }
    let mut names = vec![0u8; size as usize];
    // SAFETY: `names` has exactly `size` writable bytes.
    let size = unsafe { libc::flistxattr(from_fd, names.as_mut_ptr().cast(), names.len()) };
    if size < 0 {
        return Err(DurableError::io(
            path,
            "list xattrs",
            std::io::Error::last_os_error(),
        ));
    }
    names.truncate(size as usize);
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let cname = std::ffi::CString::new(name)
            .map_err(|e| DurableError::io(path, "xattr name", std::io::Error::other(e)))?;
        // SAFETY: null buffer, size 0: asks for the value's size.
        let vsize = unsafe { libc::fgetxattr(from_fd, cname.as_ptr(), std::ptr::null_mut(), 0) };
        if vsize < 0 {
            return Err(DurableError::io(
                path,
                "get xattr",
                std::io::Error::last_os_error(),
            ));
        }
        let mut value = vec![0u8; vsize as usize];
        // SAFETY: `value` has `vsize` writable bytes.
        let vsize = unsafe {
            libc::fgetxattr(
                from_fd,
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if vsize < 0 {
            return Err(DurableError::io(
                path,
                "get xattr",
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: `value[..vsize]` is initialised; `cname` is NUL-terminated.
        let rc = unsafe {
            libc::fsetxattr(
                to.as_raw_fd(),
                cname.as_ptr(),
                value.as_ptr().cast(),
                vsize as usize,
                0,
            )
        };
        if rc != 0 {
            return Err(DurableError::io(
                path,
                "set xattr",
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

impl Storage for RealStorage {
    fn read(&self, path: &Path) -> Result<Option<FileState>, DurableError> {
        let (dir, name) = split(path)?;
        let Some(dirfd) = open_dir_if_exists(dir, path)? else {
            return Ok(None);
        };
        let Some((mut file, st)) = open_regular(&dirfd, name, path)? else {
            return Ok(None);
        };
        let len = st.st_size as u64;
        if len > MAX_FILE_BYTES {
            return Err(DurableError::TooLarge {
                path: path.to_path_buf(),
                len,
                limit: MAX_FILE_BYTES,
            });
        }
        let mut contents = Vec::with_capacity(len as usize);
        (&mut file)
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut contents)
            .map_err(|e| DurableError::io(path, "read", e))?;
        if contents.len() as u64 > MAX_FILE_BYTES {
            // It grew between the stat and the read.
            return Err(DurableError::TooLarge {
                path: path.to_path_buf(),
                len: contents.len() as u64,
                limit: MAX_FILE_BYTES,
            });
        }
        Ok(Some(FileState {
            contents,
            meta: FileMeta {
                mode: st.st_mode & 0o7777,
                uid: st.st_uid,
                gid: st.st_gid,
            },
            #[allow(clippy::unnecessary_cast)] // st_nlink is u32 on some targets
            nlink: st.st_nlink as u64,
        }))
    }

    fn replace(
        &self,
        path: &Path,
        contents: &[u8],
        meta: &FileMeta,
        temp: &TempName,
        expect: Expect,
    ) -> Result<(), DurableError> {
        let (dir, name) = split(path)?;
        let bad = || DurableError::BadPath {
            path: path.to_path_buf(),
        };
        if contents.len() as u64 > MAX_FILE_BYTES {
            return Err(DurableError::TooLarge {
                path: path.to_path_buf(),
                len: contents.len() as u64,
                limit: MAX_FILE_BYTES,
            });
        }
        let dirfd = open_dir(dir, path)?;
        refuse_non_regular(kind_at(&dirfd, name, path)?, path)?;
        // The original, opened without following links, to copy its xattrs.
        let original = match openat(
            &dirfd,
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        ) {
            Ok(fd) => Some(File::from(fd)),
            Err(nix::errno::Errno::ENOENT) => None,
            Err(e) => return Err(DurableError::io(path, "open", e.into())),
        };

        failpoint::hit("durable.replace.before_create");
        // A fresh name per attempt: an existing one (a stale temp of another journal) is
        // never opened, written or removed.
        let (temp_path, fd) = {
            let mut attempt = 0u32;
            loop {
                let tp = temp.path(path, attempt).ok_or_else(bad)?;
                let tn = tp.file_name().ok_or_else(bad)?.to_os_string();
                match openat(
                    &dirfd,
                    tn.as_os_str(),
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                ) {
                    Ok(fd) => break (tp, fd),
                    Err(nix::errno::Errno::EEXIST)
                        if attempt < 64 && temp.tag != crate::journal::TEMP_TAG_V1 =>
                    {
                        attempt += 1;
                    }
                    Err(e) => return Err(DurableError::io(&tp, "create temp file", e.into())),
                }
            }
        };
        let temp_name = temp_path.file_name().ok_or_else(bad)?.to_os_string();
        let temp_name = temp_name.as_os_str();
        // Everything up to the rename works on the temp file only; if a step fails, the temp
        // file is removed (best effort) so that no failed write leaves one behind.
        let prepared = (|| {
            // Owner, mode and xattrs before the first byte: the contents are never readable by
            // anyone the original did not allow.
            fchown(
                &fd,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            )
            .map_err(|e| DurableError::io(&temp_path, "chown temp file", e.into()))?;
            fchmod(&fd, Mode::from_bits_truncate(meta.mode))
                .map_err(|e| DurableError::io(&temp_path, "chmod temp file", e.into()))?;
            if let Some(orig) = &original {
                copy_xattrs(orig, &fd, &temp_path)?;
            }
            failpoint::hit("durable.replace.created");
            let mut file = File::from(fd);
            file.write_all(contents)
                .map_err(|e| DurableError::io(&temp_path, "write temp file", e))?;
            failpoint::hit("durable.replace.written");
            file.sync_all()
                .map_err(|e| DurableError::io(&temp_path, "fsync temp file", e))?;
            failpoint::hit("durable.replace.synced");
            close_checked(OwnedFd::from(file), &temp_path)?;
            // The last look before the rename: the target must still be what the plan read
            // (another writer's change in between is refused, not lost; the window left is
            // this check to the rename, see docs/crash-safety.md).
            let now = open_regular(&dirfd, name, path)?
                .map(|(mut f, _)| {
                    let mut buf = Vec::new();
                    (&mut f)
                        .take(MAX_FILE_BYTES + 1)
                        .read_to_end(&mut buf)
                        .map(|_| buf)
                })
                .transpose()
                .map_err(|e| DurableError::io(path, "read before rename", e))?;
            if !expect.holds(now.as_deref()) {
                return Err(DurableError::Moved {
                    path: path.to_path_buf(),
                });
            }
            Ok(())
        })();
        if let Err(e) = prepared {
            let _ = unlinkat(&dirfd, temp_name, UnlinkatFlags::NoRemoveDir);
            return Err(e);
        }
        if let Err(e) = renameat(&dirfd, temp_name, &dirfd, name) {
            let _ = unlinkat(&dirfd, temp_name, UnlinkatFlags::NoRemoveDir);
            return Err(DurableError::io(
                path,
                "rename temp file over target",
                e.into(),
            ));
        }
        failpoint::hit("durable.replace.renamed");
        fsync_dir(&dirfd, path)?;
        failpoint::hit("durable.replace.dir_synced");
        Ok(())
    }

    fn remove(&self, path: &Path, expect: Expect) -> Result<(), DurableError> {
        let (dir, name) = split(path)?;
        let Some(dirfd) = open_dir_if_exists(dir, path)? else {
            return Ok(());
        };
        refuse_non_regular(kind_at(&dirfd, name, path)?, path)?;
        let now = open_regular(&dirfd, name, path)?
            .map(|(mut f, _)| {
                let mut buf = Vec::new();
                (&mut f)
                    .take(MAX_FILE_BYTES + 1)
                    .read_to_end(&mut buf)
                    .map(|_| buf)
            })
            .transpose()
            .map_err(|e| DurableError::io(path, "read before unlink", e))?;
        if now.is_some() && !expect.holds(now.as_deref()) {
            return Err(DurableError::Moved {
                path: path.to_path_buf(),
            });
        }
        failpoint::hit("durable.remove.before");
        match unlinkat(&dirfd, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(DurableError::io(path, "unlink", e.into())),
        }
        failpoint::hit("durable.remove.unlinked");
        fsync_dir(&dirfd, path)?;
        failpoint::hit("durable.remove.dir_synced");
        Ok(())
    }

    fn remove_temps(
        &self,
        path: &Path,
        temp: &TempName,
    ) -> Result<Vec<std::path::PathBuf>, DurableError> {
        let (dir, _) = split(path)?;
        let Some(dirfd) = open_dir_if_exists(dir, path)? else {
            return Ok(Vec::new());
        };
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(DurableError::io(path, "list directory", e)),
        };
        let mut removed = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| DurableError::io(path, "list directory", e))?;
            let fname = entry.file_name();
            let Some(n) = fname.to_str() else { continue };
            if !temp.matches(path, n) {
                continue;
            }
            match unlinkat(&dirfd, fname.as_os_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) => removed.push(dir.join(&fname)),
                Err(nix::errno::Errno::ENOENT) => {}
                Err(e) => {
                    return Err(DurableError::io(
                        &dir.join(&fname),
                        "remove temp file",
                        e.into(),
                    ))
                }
            }
        }
        if !removed.is_empty() {
            fsync_dir(&dirfd, path)?;
        }
        Ok(removed)
    }

    fn list(&self, dir: &Path) -> Result<Option<Vec<String>>, DurableError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DurableError::io(dir, "list directory", e)),
        };
        let mut names = Vec::new();
        for e in entries {
            let e = e.map_err(|e| DurableError::io(dir, "list directory", e))?;
            names.push(e.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(Some(names))
    }

    fn sync(&self, path: &Path) -> Result<(), DurableError> {
        let (dir, name) = split(path)?;
        // No directory: nothing of this path exists to make durable.
        let Some(dirfd) = open_dir_if_exists(dir, path)? else {
            return Ok(());
        };
        // A regular file (contents and metadata) or a directory (a metadata transaction's).
        if let Some((file, _, _)) = open_inode(&dirfd, name, path)? {
            failpoint::hit("durable.sync.before");
            file.sync_all()
                .map_err(|e| DurableError::io(path, "fsync file", e))?;
        }
        fsync_dir(&dirfd, path)?;
        failpoint::hit("durable.sync.done");
        Ok(())
    }

    fn inode(&self, path: &Path) -> Result<Option<Inode>, DurableError> {
        let (dir, name) = split(path)?;
        let Some(dirfd) = open_dir_if_exists(dir, path)? else {
            return Ok(None);
        };
        match open_inode(&dirfd, name, path)? {
            None => Ok(None),
            Some((file, st, directory)) => inode_of(&file, &st, directory, path).map(Some),
        }
    }

    fn set_meta(&self, path: &Path, meta: &FileMeta, expect: &Inode) -> Result<(), DurableError> {
        let (dir, name) = split(path)?;
        let moved = || DurableError::Moved {
            path: path.to_path_buf(),
        };
        let dirfd = open_dir(dir, path)?;
        let (file, st, directory) = open_inode(&dirfd, name, path)?.ok_or_else(moved)?;
        // The last look, on the descriptor that will be changed: the same inode kind, contents
        // and metadata as the plan read (the window left is this check to the fchmod, as for
        // a replace; see docs/crash-safety.md).
        let now = inode_of(&file, &st, directory, path)?;
        if !now.same_identity(expect) || now.meta != expect.meta {
            return Err(moved());
        }
        failpoint::hit("durable.set_meta.before");
        if (meta.uid, meta.gid) != (now.meta.uid, now.meta.gid) {
            fchown(
                &file,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            )
            .map_err(|e| DurableError::io(path, "chown", e.into()))?;
            failpoint::hit("durable.set_meta.chowned");
        }
        // After the chown, which clears the set-user-ID and set-group-ID bits of a file.
        fchmod(&file, Mode::from_bits_truncate(meta.mode))
            .map_err(|e| DurableError::io(path, "chmod", e.into()))?;
        failpoint::hit("durable.set_meta.chmodded");
        file.sync_all()
            .map_err(|e| DurableError::io(path, "fsync", e))?;
        failpoint::hit("durable.set_meta.synced");
        close_checked(OwnedFd::from(file), path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::durable::hash;

    fn tn(txid: u64) -> TempName {
        TempName { txid, tag: 0xabc }
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn replace_keeps_mode_owner_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kube-apiserver.yaml");
        std::fs::write(&p, b"old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let is_root = nix::unistd::geteuid().is_root();
        if is_root {
            std::os::unix::fs::chown(&p, Some(1234), Some(2345)).unwrap();
        }
        let st = RealStorage;
        let before = st.read(&p).unwrap().unwrap();
        st.replace(
            &p,
            b"new",
            &before.meta,
            &tn(7),
            Expect::Contents(hash(b"old")),
        )
        .unwrap();
        let md = std::fs::metadata(&p).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(md.mode() & 0o7777, 0o640);
        if is_root {
            assert_eq!((md.uid(), md.gid()), (1234, 2345));
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn refuses_symlinks_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.yaml");
        std::fs::write(&real, b"x").unwrap();
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let st = RealStorage;
        assert!(matches!(st.read(&link), Err(DurableError::Symlink { .. })));
        assert!(matches!(
            st.replace(&link, b"y", &FileMeta::NEW_FILE, &tn(1), Expect::Absent),
            Err(DurableError::Symlink { .. })
        ));
        assert_eq!(std::fs::read(&real).unwrap(), b"x");
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert!(matches!(
            st.read(&sub),
            Err(DurableError::NotRegular { .. })
        ));
        // `sync` refuses a symlink too, and touches nothing; a directory it syncs (the
        // metadata change of a directory is made durable by its own fsync).
        assert!(matches!(st.sync(&link), Err(DurableError::Symlink { .. })));
        st.sync(&sub).unwrap();
        assert_eq!(std::fs::read(&real).unwrap(), b"x");
    }

    #[test]
    fn sync_makes_what_is_there_durable_present_or_absent() {
        let dir = tempfile::tempdir().unwrap();
        let st = RealStorage;
        let f = dir.path().join("m.yaml");
        std::fs::write(&f, b"contents").unwrap();
        st.sync(&f).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"contents");
        // Absent file: the directory is still fsync'd (an unlink must stick), no error.
        st.sync(&dir.path().join("absent.yaml")).unwrap();
        // Absent directory: nothing to make durable.
        st.sync(&dir.path().join("no-such-dir/x.yaml")).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "sync creates nothing"
        );
    }

    #[test]
    fn create_remove_and_temp_cleanup() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new.yaml");
        let st = RealStorage;
        assert!(st.read(&p).unwrap().is_none());
        st.replace(
            &p,
            b"a",
            &FileMeta {
                mode: 0o600,
                uid: nix::unistd::geteuid().as_raw(),
                gid: nix::unistd::getegid().as_raw(),
            },
            &tn(3),
            Expect::Absent,
        )
        .unwrap();
        assert_eq!(st.read(&p).unwrap().unwrap().contents, b"a");
        let t = tn(3).path(&p, 5).unwrap();
        std::fs::write(&t, b"partial").unwrap();
        // A stale temp of another transaction, or one that only looks like ours: kept.
        let other = tn(4).path(&p, 0).unwrap();
        std::fs::write(&other, b"not ours").unwrap();
        let lookalike = p.with_file_name(format!("{}x", t.file_name().unwrap().to_str().unwrap()));
        std::fs::write(&lookalike, b"not ours").unwrap();
        assert_eq!(st.remove_temps(&p, &tn(3)).unwrap(), vec![t.clone()]);
        assert!(st.remove_temps(&p, &tn(3)).unwrap().is_empty());
        assert!(other.exists() && lookalike.exists());
        st.remove(&p, Expect::Contents(hash(b"a"))).unwrap();
        assert!(st.read(&p).unwrap().is_none());
        st.remove(&p, Expect::Absent).unwrap();
    }

    #[test]
    fn xattrs_are_copied_where_supported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.yaml");
        std::fs::write(&p, b"old").unwrap();
        let cpath = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        let name = c"user.kharden-test";
        // SAFETY: valid C strings and buffer.
        let rc =
            unsafe { libc::setxattr(cpath.as_ptr(), name.as_ptr(), b"v1".as_ptr().cast(), 2, 0) };
        if rc != 0 {
            eprintln!("skipping: user xattrs unsupported here");
            return;
        }
        let st = RealStorage;
        let meta = st.read(&p).unwrap().unwrap().meta;
        st.replace(&p, b"new", &meta, &tn(1), Expect::Contents(hash(b"old")))
            .unwrap();
        let mut buf = [0u8; 8];
        // SAFETY: valid C strings and buffer.
        let n = unsafe {
            libc::getxattr(
                cpath.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        assert_eq!(n, 2);
        assert_eq!(&buf[..2], b"v1");
    }
}

#[cfg(test)]
mod race_tests {
    use super::*;
    use crate::durable::hash;

    #[test]
    fn a_stale_temp_with_our_first_name_is_neither_used_nor_removed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.yaml");
        std::fs::write(&p, b"old").unwrap();
        let t = TempName { txid: 9, tag: 77 };
        let stale = t.path(&p, 0).unwrap();
        std::fs::write(&stale, b"someone else's").unwrap();
        let meta = RealStorage.read(&p).unwrap().unwrap().meta;
        RealStorage
            .replace(&p, b"new", &meta, &t, Expect::Contents(hash(b"old")))
            .unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(std::fs::read(&stale).unwrap(), b"someone else's");
    }

    #[test]
    fn a_target_changed_since_the_plan_is_not_written_over() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.yaml");
        std::fs::write(&p, b"edited by someone").unwrap();
        let meta = RealStorage.read(&p).unwrap().unwrap().meta;
        let t = TempName { txid: 1, tag: 5 };
        assert!(matches!(
            RealStorage.replace(&p, b"new", &meta, &t, Expect::Contents(hash(b"old"))),
            Err(DurableError::Moved { .. })
        ));
        assert_eq!(std::fs::read(&p).unwrap(), b"edited by someone");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp left"
        );
        assert!(matches!(
            RealStorage.remove(&p, Expect::Contents(hash(b"old"))),
            Err(DurableError::Moved { .. })
        ));
        assert!(p.exists());
    }

    fn meta(mode: u32, uid: u32, gid: u32) -> FileMeta {
        FileMeta { mode, uid, gid }
    }

    #[test]
    fn set_meta_changes_a_file_and_a_directory_and_nothing_else() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ca.key");
        std::fs::write(&f, b"key").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let found = RealStorage.inode(&f).unwrap().unwrap();
        assert!(!found.directory);
        assert_eq!(found.hash, hash(b"key"));
        assert_eq!(found.len, 3);
        assert_eq!(found.meta.mode, 0o644);
        let root = nix::unistd::geteuid().is_root();
        let (uid, gid) = if root {
            (1000, 1000)
        } else {
            (found.meta.uid, found.meta.gid)
        };
        RealStorage
            .set_meta(&f, &meta(0o600, uid, gid), &found)
            .unwrap();
        let md = std::fs::metadata(&f).unwrap();
        assert_eq!((md.mode() & 0o7777, md.uid(), md.gid()), (0o600, uid, gid));
        assert_eq!(std::fs::read(&f).unwrap(), b"key");

        let d = dir.path().join("pki");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o775)).unwrap();
        let found = RealStorage.inode(&d).unwrap().unwrap();
        assert!(found.directory);
        assert_eq!(found.hash, DIRECTORY_HASH);
        RealStorage
            .set_meta(&d, &meta(0o755, found.meta.uid, found.meta.gid), &found)
            .unwrap();
        assert_eq!(std::fs::metadata(&d).unwrap().mode() & 0o7777, 0o755);
        RealStorage.sync(&d).unwrap();
        assert_eq!(RealStorage.inode(&dir.path().join("absent")).unwrap(), None);
    }

    #[test]
    fn set_meta_refuses_a_changed_file_a_symlink_and_a_fifo_without_opening_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("admin.conf");
        std::fs::write(&f, b"v1").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let planned = RealStorage.inode(&f).unwrap().unwrap();
        // Contents changed since the plan: the inode is not the one planned.
        std::fs::write(&f, b"v2").unwrap();
        let to = meta(0o600, planned.meta.uid, planned.meta.gid);
        assert!(matches!(
            RealStorage.set_meta(&f, &to, &planned),
            Err(DurableError::Moved { .. })
        ));
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o644
        );
        // Metadata changed since the plan.
        std::fs::write(&f, b"v1").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            RealStorage.set_meta(&f, &to, &planned),
            Err(DurableError::Moved { .. })
        ));
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o640
        );

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(matches!(
            RealStorage.inode(&link),
            Err(DurableError::Symlink { .. })
        ));
        assert!(matches!(
            RealStorage.set_meta(&link, &to, &planned),
            Err(DurableError::Symlink { .. })
        ));
        // A FIFO with no writer: opening it for reading would not block (O_NONBLOCK), but it
        // is refused from its lstat before any open.
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o644)).unwrap();
        assert!(matches!(
            RealStorage.inode(&fifo),
            Err(DurableError::NotFileOrDirectory { .. })
        ));
        assert!(matches!(
            RealStorage.set_meta(&fifo, &to, &planned),
            Err(DurableError::NotFileOrDirectory { .. })
        ));
        assert_eq!(
            std::fs::metadata(&fifo).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn a_chown_keeps_the_mode_it_was_asked_for() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        if !nix::unistd::geteuid().is_root() {
            return; // chown to another user needs root; CI runs as root
        }
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tool");
        std::fs::write(&f, b"#!").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o2750)).unwrap();
        let found = RealStorage.inode(&f).unwrap().unwrap();
        RealStorage
            .set_meta(&f, &meta(0o2750, 0, 1000), &found)
            .unwrap();
        let md = std::fs::metadata(&f).unwrap();
        assert_eq!((md.mode() & 0o7777, md.gid()), (0o2750, 1000));
    }
}
