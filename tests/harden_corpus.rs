//! `harden --no-gate` on copies of real kubeadm manifests: every automatable control passes
//! `audit` afterwards, and every file changed only where a control required it.
//!
//! Runs on the project's own fixtures always, and on every kubeadm manifest of
//! ../shared/corpus when that folder is present.

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn corpus_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/manifests");
    d.is_dir().then_some(d)
}

/// The corpus's kubeadm manifests, grouped by source repository (one simulated node each),
/// as (target file name, source path).
fn kubeadm_groups(dir: &Path) -> Vec<(String, Vec<(String, PathBuf)>)> {
    let tsv = std::fs::read_to_string(dir.join("SOURCES.tsv")).unwrap();
    let mut groups: Vec<(String, Vec<(String, PathBuf)>)> = Vec::new();
    for line in tsv.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, repo, note) = (cols[0], cols[1], cols[cols.len() - 1]);
        if !note.contains("kubeadm v1") && !note.contains("kubeadm generated")
            || note.contains("NOT")
        {
            continue;
        }
        let name = file.rsplit("manifests_").next().unwrap_or(file).to_string();
        let entry = (name, dir.join(file));
        match groups.iter_mut().find(|(r, _)| r == repo) {
            Some((_, v)) => v.push(entry),
            None => groups.push((repo.to_string(), vec![entry])),
        }
    }
    groups
}

fn own_fixtures() -> Vec<(String, PathBuf)> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    [
        "kube-apiserver.yaml",
        "kube-controller-manager.yaml",
        "kube-scheduler.yaml",
        "etcd.yaml",
    ]
    .iter()
    .map(|n| (n.to_string(), d.join(n)))
    .collect()
}

/// The YAML of a manifest with the target container's command/args and every volume and
/// volumeMount removed: what must not change.
fn without_editable(v: &serde_yaml::Value) -> serde_yaml::Value {
    let mut v = v.clone();
    if let Some(spec) = v.get_mut("spec").and_then(|s| s.as_mapping_mut()) {
        spec.remove("volumes");
        if let Some(cs) = spec.get_mut("containers").and_then(|c| c.as_sequence_mut()) {
            for c in cs.iter_mut().filter_map(|c| c.as_mapping_mut()) {
                c.remove("command");
                c.remove("args");
                c.remove("volumeMounts");
            }
        }
    }
    v
}

fn flag_name(item: &str) -> Option<String> {
    let body = item.strip_prefix("--")?;
    Some(body.split('=').next().unwrap_or(body).to_string())
}

fn check_group(label: &str, files: &[(String, PathBuf)]) {
    let node = common::Node::new();
    std::fs::remove_file(&node.manifest).unwrap();
    let mut before = Vec::new();
    for (name, src) in files {
        let dst = node.manifests.join(name);
        std::fs::copy(src, &dst).unwrap();
        before.push((dst.clone(), std::fs::read(&dst).unwrap()));
    }
    let out = node
        .kharden()
        // The corpus spans Kubernetes 1.16 to 1.33: one benchmark for all, as its audit does.
        .args(["-o", "json", "harden", "--no-gate", "--no-audit"])
        .args(["--benchmark", kharden_catalog::DEFAULT_BENCHMARK])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{label}: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{label}: {report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let blocked: BTreeSet<String> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["result"] == "blocked")
        .flat_map(|s| {
            s["controls"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
        })
        .collect();
    let fixed: Vec<String> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["result"] == "fixed")
        .flat_map(|s| {
            s["controls"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
        })
        .collect();
    // Every automatable control passes the audit afterwards (or was refused with a reason).
    let audit = node
        .kharden()
        .args(["-o", "json", "audit", "--source", "manifest", "--benchmark"])
        .arg(kharden_catalog::DEFAULT_BENCHMARK)
        .output()
        .unwrap();
    let audit: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    // The command-line checks: what harden fixes in manifests.
    for c in audit["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["detail"]["kind"] == "flags")
    {
        let id = c["id"].as_str().unwrap();
        if c["automatable"] == true && c["kube_bench"] == false {
            assert!(
                blocked.contains(id),
                "{label}: automatable control {id} still fails after harden: {c}"
            );
        }
    }
    // Every file changed only where a control required it.
    let bench = kharden_catalog::benchmark(kharden_catalog::DEFAULT_BENCHMARK).unwrap();
    let allowed: BTreeSet<String> = fixed
        .iter()
        .filter_map(|id| bench.control(id))
        .filter_map(|c| c.remediation())
        .flat_map(|r| {
            r.changes
                .iter()
                .filter_map(|ch| ch.flag_name().map(str::to_string))
        })
        .collect();
    for (path, old) in &before {
        let new = std::fs::read(path).unwrap();
        if &new == old {
            continue;
        }
        let ov: serde_yaml::Value = serde_yaml::from_slice(old).unwrap();
        let nv: serde_yaml::Value = serde_yaml::from_slice(&new).unwrap();
        assert_eq!(
            without_editable(&ov),
            without_editable(&nv),
            "{label}: {} changed outside argv and mounts",
            path.display()
        );
        let oi = kharden_manifest::inspect(old, None).unwrap();
        let ni = kharden_manifest::inspect(&new, None).unwrap();
        let o: BTreeSet<&String> = oi.argv.iter().collect();
        let n: BTreeSet<&String> = ni.argv.iter().collect();
        for item in o.symmetric_difference(&n) {
            let name = flag_name(item)
                .unwrap_or_else(|| panic!("{label}: non-flag argv item changed: {item}"));
            assert!(
                allowed.contains(&name),
                "{label}: {} changed --{name}, which no fixed control names",
                path.display()
            );
        }
    }
    // Nothing kubelet would load was left beside the manifests, and the journal is sound.
    let entries = node.manifest_dir_entries();
    assert!(
        entries.iter().all(|e| !e.starts_with('.')),
        "{label}: {entries:?}"
    );
    node.kharden()
        .args(["journal", "verify"])
        .assert()
        .success();
    eprintln!("{label}: fixed {fixed:?}, blocked {blocked:?}");
}

#[test]
fn harden_on_the_projects_own_kubeadm_fixtures() {
    check_group("fixtures", &own_fixtures());
}

#[test]
fn harden_on_every_kubeadm_manifest_of_the_shared_corpus() {
    let Some(dir) = corpus_dir() else {
        eprintln!(
            "SKIP: ../shared/corpus is not present (the project's own fixtures are tested above)"
        );
        return;
    };
    let groups = kubeadm_groups(&dir);
    assert!(
        groups.len() >= 6,
        "expected the corpus's kubeadm manifests, found {}",
        groups.len()
    );
    for (repo, files) in groups {
        check_group(&repo, &files);
    }
}
