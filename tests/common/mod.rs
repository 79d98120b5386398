//! Shared helpers of the integration tests: a temp "node" with a manifests directory, a state
//! directory, and a kharden command bound to both.
#![allow(dead_code)]

use assert_cmd::Command;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const APISERVER: &[u8] = include_bytes!("../fixtures/kube-apiserver.yaml");

pub struct Node {
    pub dir: tempfile::TempDir,
    pub manifests: PathBuf,
    pub state: PathBuf,
    pub manifest: PathBuf,
}

impl Node {
    /// A node with the kube-apiserver fixture, mode 0640 and (as root) owner 1234:2345, so
    /// that tests can check that both survive.
    pub fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let manifests = dir.path().join("etc/kubernetes/manifests");
        std::fs::create_dir_all(&manifests).unwrap();
        let manifest = manifests.join("kube-apiserver.yaml");
        std::fs::write(&manifest, APISERVER).unwrap();
        std::fs::set_permissions(&manifest, std::fs::Permissions::from_mode(0o640)).unwrap();
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&manifest, Some(1234), Some(2345)).unwrap();
        }
        let state = dir.path().join("var/lib/kharden");
        Node {
            manifests,
            state,
            manifest,
            dir,
        }
    }

    pub fn kharden(&self) -> Command {
        let mut c = Command::cargo_bin("kharden").unwrap();
        c.env("KHARDEN_STATE_DIR", &self.state)
            .env("KHARDEN_ROOT", self.dir.path())
            .env_remove("KHARDEN_CRASH_AT")
            .env_remove("KHARDEN_FAILPOINT_TRACE");
        c
    }

    pub fn read(&self) -> Vec<u8> {
        std::fs::read(&self.manifest).unwrap()
    }

    /// Every entry of the manifests directory (kubelet would load every non-dot one).
    pub fn manifest_dir_entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.manifests)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Invariant 6: mode and owner as the original's.
    pub fn assert_meta_kept(&self) {
        let md = std::fs::metadata(&self.manifest).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o640, "mode changed");
        if nix::unistd::geteuid().is_root() {
            assert_eq!((md.uid(), md.gid()), (1234, 2345), "owner changed");
        }
    }

    /// `journal log -o json` parsed.
    pub fn log(&self) -> serde_json::Value {
        let out = self
            .kharden()
            .args(["-o", "json", "journal", "log", "--limit", "1000"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "journal log failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn states(&self) -> Vec<String> {
        self.log()["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["state"].as_str().unwrap().to_string())
            .collect()
    }
}

/// The after-contents of `--set profiling=false` on the fixture, computed by the editor.
pub fn edited(input: &[u8], changes: &[kharden_manifest::Change]) -> Vec<u8> {
    kharden_manifest::edit(input, None, changes).unwrap().output
}

pub fn profiling_false() -> Vec<kharden_manifest::Change> {
    vec![kharden_manifest::Change::Set {
        name: "profiling".into(),
        value: Some("false".into()),
    }]
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}
