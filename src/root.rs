//! Host paths under `--root` (as `kubeadm --rootfs` does), never escaping it.
//!
//! Why: in a Kubernetes Job the host is mounted at `/host` and kharden runs with
//! `--root /host`; tests run whole nodes in a temp dir. A host path (`/etc/kubernetes/...`)
//! is resolved *as the host sees it*: a symbolic link on the host (`/etc/kubernetes ->
//! /data/kubernetes`) means `/host/data/kubernetes`, not the container's `/data/kubernetes`,
//! and a link that climbs with `..` stops at the root. Without this, `R/etc -> /elsewhere/etc`
//! made `kharden --root R harden` edit files outside R (DESIGN.md invariant 9).
//!
//! Resolution follows every symbolic link of the *directories* on the way, with the root as
//! `/` (the kernel's `openat2(RESOLVE_IN_ROOT)` where it has it, else a component-by-component
//! walk that refuses a link escaping the root), and never follows the last component: a
//! managed file that is a symbolic link is refused by `durable` instead. The result is a
//! path with no symbolic link between the root and the file's directory, which the storage
//! layer then opens without following links.
//!
//! Paths an operator typed on the command line are not host paths: they are used as given.

use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::path::{Component, Path, PathBuf};

/// How many symbolic links one resolution may follow (the kernel's limit).
const MAX_LINKS: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("--root {root}: {source}")]
    Root {
        root: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: a symbolic link on the way ({link} -> {target}) leads outside --root {root}; kharden never follows it")]
    Escapes {
        path: PathBuf,
        link: PathBuf,
        target: PathBuf,
        root: PathBuf,
    },
    #[error("{path}: too many symbolic links on the way under --root {root}")]
    Loop { path: PathBuf, root: PathBuf },
    #[error("{path}: resolving under --root {root}: {source}")]
    Io {
        path: PathBuf,
        root: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where host paths live: `/` normally, `/host` in a Job with the host mounted, a temp dir in
/// tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot {
    /// Canonical (no symbolic links), absolute.
    root: PathBuf,
    /// Use the component walk even where `openat2` exists (tests of the fallback).
    walk_only: bool,
}

impl HostRoot {
    /// The root `/`.
    pub fn system() -> HostRoot {
        HostRoot {
            root: PathBuf::from("/"),
            walk_only: false,
        }
    }

    /// `root` (canonicalized), or `/`.
    pub fn new(root: Option<&Path>) -> Result<HostRoot, RootError> {
        let Some(r) = root else {
            return Ok(Self::system());
        };
        let root = std::fs::canonicalize(r).map_err(|source| RootError::Root {
            root: r.to_path_buf(),
            source,
        })?;
        Ok(HostRoot {
            root,
            walk_only: false,
        })
    }

    /// The same root, resolved by the component walk only (to test it where the kernel has
    /// `openat2`).
    pub fn walk_only(mut self) -> HostRoot {
        self.walk_only = true;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn is_system(&self) -> bool {
        self.root == Path::new("/")
    }

    /// `host` (an absolute host path, or one already under the root) resolved under the root.
    pub fn resolve(&self, host: impl AsRef<Path>) -> Result<PathBuf, RootError> {
        let host = host.as_ref();
        let rel = match host.strip_prefix(&self.root) {
            Ok(r) if !self.is_system() => r,
            _ => host.strip_prefix("/").unwrap_or(host),
        };
        if self.is_system() {
            // Nothing to escape from: the host's own links are the host's.
            return Ok(self.root.join(rel));
        }
        let (dir, name) = match (rel.parent(), rel.file_name()) {
            (Some(d), Some(n)) => (d.to_path_buf(), Some(n.to_os_string())),
            _ => (rel.to_path_buf(), None),
        };
        let dir = if self.walk_only {
            self.walk(&dir, host)?
        } else {
            match self.openat2_dir(&dir, host) {
                Ok(d) => d,
                Err(None) => self.walk(&dir, host)?,
                Err(Some(e)) => return Err(e),
            }
        };
        Ok(match name {
            Some(n) => dir.join(n),
            None => dir,
        })
    }

    pub fn manifests_dir(&self) -> Result<PathBuf, RootError> {
        self.resolve("/etc/kubernetes/manifests")
    }

    pub fn pki_dir(&self) -> Result<PathBuf, RootError> {
        self.resolve("/etc/kubernetes/pki")
    }

    /// `/proc` is the running kernel's, shared by every root: a Job with hostPID sees the
    /// host's processes in its own `/proc`.
    pub fn proc_dir(&self) -> PathBuf {
        PathBuf::from("/proc")
    }

    /// The directory `rel` (relative to the root) through `openat2(RESOLVE_IN_ROOT)`, when it
    /// exists. `Err(None)`: the kernel has no `openat2`, or the directory does not exist (a
    /// missing directory may be a dangling link, which only the walk can follow without
    /// leaving the root).
    fn openat2_dir(&self, rel: &Path, shown: &Path) -> Result<PathBuf, Option<RootError>> {
        use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
        let io = |source: std::io::Error| {
            Some(RootError::Io {
                path: shown.to_path_buf(),
                root: self.root.clone(),
                source,
            })
        };
        let rootfd = nix::fcntl::open(
            &self.root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| io(e.into()))?;
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        match openat2(&rootfd, rel, how) {
            Ok(fd) => {
                let real =
                    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(io)?;
                if real.starts_with(&self.root) {
                    Ok(real)
                } else {
                    // RESOLVE_IN_ROOT cannot leave the root; a bind mount could make the
                    // kernel's name for it look outside. Refuse rather than guess.
                    Err(Some(RootError::Escapes {
                        path: shown.to_path_buf(),
                        link: self.root.join(rel),
                        target: real,
                        root: self.root.clone(),
                    }))
                }
            }
            Err(nix::errno::Errno::ENOSYS | nix::errno::Errno::ENOENT) => Err(None),
            Err(nix::errno::Errno::ELOOP) => Err(Some(RootError::Loop {
                path: shown.to_path_buf(),
                root: self.root.clone(),
            })),
            Err(e) => Err(io(e.into())),
        }
    }

    /// The component walk: follow each directory's link with the root as `/`; refuse a link
    /// whose target climbs out of the root.
    fn walk(&self, rel: &Path, shown: &Path) -> Result<PathBuf, RootError> {
        let mut todo: Vec<OsString> = Vec::new();
        push_components(&mut todo, rel);
        todo.reverse();
        let mut cur: Vec<OsString> = Vec::new();
        let mut links = 0;
        while let Some(c) = todo.pop() {
            if c == ".." {
                cur.pop();
                continue;
            }
            if c == "." || c.is_empty() {
                continue;
            }
            let mut next = self.root.clone();
            next.extend(&cur);
            next.push(&c);
            match std::fs::symlink_metadata(&next) {
                Ok(md) if md.file_type().is_symlink() => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(RootError::Loop {
                            path: shown.to_path_buf(),
                            root: self.root.clone(),
                        });
                    }
                    let target = std::fs::read_link(&next).map_err(|source| RootError::Io {
                        path: shown.to_path_buf(),
                        root: self.root.clone(),
                        source,
                    })?;
                    // Where the link points, read with the root as `/`.
                    let mut base: Vec<OsString> = if target.is_absolute() {
                        Vec::new()
                    } else {
                        cur.clone()
                    };
                    let mut tcomps = Vec::new();
                    push_components(&mut tcomps, &target);
                    for t in &tcomps {
                        if t == ".." {
                            if base.pop().is_none() {
                                return Err(RootError::Escapes {
                                    path: shown.to_path_buf(),
                                    link: next,
                                    target,
                                    root: self.root.clone(),
                                });
                            }
                        } else if t != "." && !t.is_empty() {
                            base.push(t.clone());
                        }
                    }
                    cur = Vec::new();
                    // Re-walk the link's target from the root (its own links are followed too).
                    for b in base.into_iter().rev() {
                        todo.push(b);
                    }
                }
                _ => cur.push(c),
            }
        }
        let mut out = self.root.clone();
        out.extend(&cur);
        Ok(out)
    }
}

fn push_components(out: &mut Vec<OsString>, p: &Path) {
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::ParentDir => out.push("..".into()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let outside = d.path().join("outside");
        std::fs::create_dir_all(root.join("data/kubernetes/manifests")).unwrap();
        std::fs::create_dir_all(outside.join("etc/kubernetes/manifests")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        (d, root, outside)
    }

    fn both(root: &Path) -> [HostRoot; 2] {
        let r = HostRoot::new(Some(root)).unwrap();
        [r.clone(), r.walk_only()]
    }

    #[test]
    fn an_absolute_link_is_read_with_the_root_as_slash() {
        let (_d, root, outside) = setup();
        symlink("/data/kubernetes", root.join("etc/kubernetes")).unwrap();
        let _ = outside;
        let root = std::fs::canonicalize(&root).unwrap();
        for r in both(&root) {
            assert_eq!(
                r.resolve("/etc/kubernetes/manifests/kube-apiserver.yaml")
                    .unwrap(),
                root.join("data/kubernetes/manifests/kube-apiserver.yaml")
            );
        }
    }

    #[test]
    fn a_link_to_an_absolute_path_outside_stays_inside() {
        let (_d, root, outside) = setup();
        // `R/etc/kubernetes -> /…/outside/etc/kubernetes`: read as R/…/outside/…, never the
        // real outside directory.
        symlink(outside.join("etc/kubernetes"), root.join("etc/kubernetes")).unwrap();
        let root = std::fs::canonicalize(&root).unwrap();
        let outside = std::fs::canonicalize(&outside).unwrap();
        for r in both(&root) {
            let p = r.resolve("/etc/kubernetes/manifests/x.yaml").unwrap();
            assert!(p.starts_with(&root), "{p:?}");
            assert!(!p.starts_with(&outside), "{p:?}");
        }
    }

    #[test]
    fn a_relative_link_climbing_out_is_clamped_or_refused() {
        let (_d, root, _outside) = setup();
        symlink("../../outside/etc", root.join("etc/kubernetes")).unwrap();
        let root = std::fs::canonicalize(&root).unwrap();
        let [kernel, walk] = both(&root);
        // The kernel clamps `..` at the root (RESOLVE_IN_ROOT); where that leads nowhere, the
        // walk takes over and refuses the escaping link. Never outside.
        match kernel.resolve("/etc/kubernetes/manifests/x.yaml") {
            Ok(p) => assert!(p.starts_with(&root), "{p:?}"),
            Err(e) => assert!(matches!(e, RootError::Escapes { .. }), "{e}"),
        }
        // `etc/kubernetes -> ../../outside/etc` is `R/outside/etc` with the root as `/`.
        std::fs::create_dir_all(root.join("outside/etc/manifests")).unwrap();
        let p = kernel.resolve("/etc/kubernetes/manifests/x.yaml").unwrap();
        assert_eq!(p, root.join("outside/etc/manifests/x.yaml"));
        // The walk refuses the escaping link.
        assert!(matches!(
            walk.resolve("/etc/kubernetes/manifests/x.yaml"),
            Err(RootError::Escapes { .. })
        ));
    }

    #[test]
    fn the_last_component_is_not_followed_and_missing_dirs_are_fine() {
        let (_d, root, _o) = setup();
        symlink("/etc/passwd", root.join("etc/link.yaml")).unwrap();
        let root = std::fs::canonicalize(&root).unwrap();
        for r in both(&root) {
            assert_eq!(
                r.resolve("/etc/link.yaml").unwrap(),
                root.join("etc/link.yaml")
            );
            assert_eq!(
                r.resolve("/no/such/dir/f").unwrap(),
                root.join("no/such/dir/f")
            );
            assert_eq!(
                r.resolve(root.join("etc/x")).unwrap(),
                root.join("etc/x"),
                "a path already under the root"
            );
        }
    }

    #[test]
    fn link_loops_are_refused() {
        let (_d, root, _o) = setup();
        symlink("b", root.join("etc/a")).unwrap();
        symlink("a", root.join("etc/b")).unwrap();
        let root = std::fs::canonicalize(&root).unwrap();
        for r in both(&root) {
            assert!(matches!(r.resolve("/etc/a/x"), Err(RootError::Loop { .. })));
        }
    }
}

#[cfg(test)]
mod dangling_tests {
    use super::*;

    #[test]
    fn a_dangling_absolute_link_never_resolves_through_the_host() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let outside = d.path().join("outside/etc/kubernetes/manifests");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::create_dir_all(&root).unwrap();
        // On the host, root/etc points outside; read with the root as `/`, it dangles.
        std::os::unix::fs::symlink(d.path().join("outside/etc"), root.join("etc")).unwrap();
        let root = std::fs::canonicalize(&root).unwrap();
        let r = HostRoot::new(Some(&root)).unwrap();
        let p = r.manifests_dir().unwrap();
        assert!(p.starts_with(&root), "{p:?}");
        // No component of the result below the root is a symbolic link.
        let mut cur = root.clone();
        for c in p.strip_prefix(&root).unwrap().components() {
            cur.push(c);
            if let Ok(md) = std::fs::symlink_metadata(&cur) {
                assert!(!md.file_type().is_symlink(), "{cur:?} is a link");
            }
        }
    }
}
