//! Host paths under `--root` (as `kubeadm --rootfs` does).
//!
//! Default locations (the manifests and pki directories) are looked up under the root; a path
//! that an operator typed on the command line is used exactly as given.

use std::path::{Path, PathBuf};

/// Where host paths live: `/` normally, `/host` in a Job with the host mounted, a temp dir in
/// tests.
#[derive(Debug, Clone)]
pub struct HostRoot(PathBuf);

impl HostRoot {
    pub fn new(root: Option<&Path>) -> Self {
        HostRoot(
            root.map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("/")),
        )
    }

    /// `host` (an absolute host path) resolved under the root.
    pub fn resolve(&self, host: impl AsRef<Path>) -> PathBuf {
        let host = host.as_ref();
        let rel = host.strip_prefix("/").unwrap_or(host);
        self.0.join(rel)
    }

    pub fn root(&self) -> &Path {
        &self.0
    }

    pub fn manifests_dir(&self) -> PathBuf {
        self.resolve("/etc/kubernetes/manifests")
    }

    pub fn pki_dir(&self) -> PathBuf {
        self.resolve("/etc/kubernetes/pki")
    }

    pub fn proc_dir(&self) -> PathBuf {
        // /proc is the running kernel's, shared by every root: a Job with hostPID sees the
        // host's processes in its own /proc.
        PathBuf::from("/proc")
    }
}
