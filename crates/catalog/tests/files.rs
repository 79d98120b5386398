//! File checks (1.1, 4.1): kube-bench's verdict rebuilt from `lstat` facts, the effective
//! reading, and the planned fix. The expectations are worked out by hand from kube-bench's
//! shell audits and check/test.go (bitmask, substring owners, missing files, `find | xargs
//! stat`, `use_multiple_values`).

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

use common::node::{argv, kubeadm_disk, kubeadm_processes, meta, node, result};
use kharden_catalog::{
    benchmark, evaluate_all, evaluate_check, plan_file_fix, Component, Detail, FileFacts, FileKind,
    Located, MissingFact, NodeFacts, Owner, Status,
};

const B: &str = "cis-1.12";

fn with(disk: FileFacts) -> NodeFacts {
    node(B, &disk, kubeadm_processes())
}

#[test]
fn kubeadm_node_as_installed() {
    let facts = with(kubeadm_disk());
    let bench = benchmark(B).expect("compiled in");
    let results = evaluate_all(&bench.checks, &facts).expect("every fact gathered");
    let status = |id: &str| {
        results
            .iter()
            .find(|r| r.id == id)
            .and_then(|r| r.status)
            .unwrap_or_else(|| panic!("{id}"))
    };
    for id in [
        "1.1.1", "1.1.2", "1.1.3", "1.1.4", "1.1.5", "1.1.6", "1.1.7", "1.1.8", "1.1.11", "1.1.13",
        "1.1.14", "1.1.15", "1.1.16", "1.1.17", "1.1.18", "1.1.19", "1.1.20", "1.1.21", "4.1.5",
        "4.1.6", "4.1.7", "4.1.8", "4.1.10",
    ] {
        assert_eq!(status(id), Status::Pass, "{id}");
    }
    // kubeadm's data dir is root's, its unit drop-in and config.yaml are 0644: kube-bench's
    // well-known failures on a fresh kubeadm node.
    assert_eq!(status("1.1.12"), Status::Fail);
    assert_eq!(status("4.1.1"), Status::Fail);
    assert_eq!(status("4.1.2"), Status::Pass);
    assert_eq!(status("4.1.9"), Status::Fail);
    // No kube-proxy kubeconfig on the host: unscored, WARN; nothing to protect.
    let r = results.iter().find(|r| r.id == "4.1.3").expect("4.1.3");
    assert_eq!(r.status, Some(Status::Warn));
    assert_eq!(r.effective, None);
    assert!(
        r.reason.as_deref().unwrap_or("").contains("does not exist"),
        "{r:?}"
    );
    // No /var/lib/cni/networks and no --cni-conf-dir: kube-bench stats nothing (WARN), while
    // the runtime's CNI configuration really is 0644.
    let r = results.iter().find(|r| r.id == "1.1.9").expect("1.1.9");
    assert_eq!(r.status, Some(Status::Warn));
    assert_eq!(r.effective, Some(false));
    let r = results.iter().find(|r| r.id == "1.1.10").expect("1.1.10");
    assert_eq!(r.status, Some(Status::Warn));
    assert_eq!(r.effective, Some(true));
    assert!(
        r.disagreement
            .as_deref()
            .unwrap_or("")
            .contains("/etc/cni/net.d"),
        "{r:?}"
    );
}

#[test]
fn bitmask_like_kube_bench() {
    let manifest = "/etc/kubernetes/manifests/kube-apiserver.yaml";
    for (mode, want) in [
        (0o600, Status::Pass),
        (0o400, Status::Pass),
        (0o000, Status::Pass),
        (0o644, Status::Fail),
        (0o640, Status::Fail),
        (0o700, Status::Fail),
        (0o4600, Status::Fail),
    ] {
        let facts = with(kubeadm_disk().file(manifest, mode, "root", "root"));
        let r = result(B, "1.1.1", &facts);
        assert_eq!(r.status, Some(want), "{mode:o}");
        assert_eq!(r.effective, Some(want == Status::Pass), "{mode:o}");
        assert_eq!(r.disagreement, None, "{mode:o}");
        assert_eq!(
            r.actual_value.as_deref(),
            Some(format!("permissions={mode:o}").as_str())
        );
    }
    // 1.1.20's bitmask is 644 from cis-1.11, 600 before.
    let disk = kubeadm_disk();
    assert_eq!(
        result(
            "cis-1.12",
            "1.1.20",
            &node("cis-1.12", &disk, kubeadm_processes())
        )
        .status,
        Some(Status::Pass)
    );
    assert_eq!(
        result(
            "cis-1.10",
            "1.1.20",
            &node("cis-1.10", &disk, kubeadm_processes())
        )
        .status,
        Some(Status::Warn)
    );
    let r = result(
        "cis-1.10",
        "1.1.20",
        &node("cis-1.10", &disk, kubeadm_processes()),
    );
    assert_eq!(
        r.expected.as_deref(),
        Some("permissions has permissions 644, expected 600 or more restrictive")
    );
}

#[test]
fn ownership_like_kube_bench() {
    let manifest = "/etc/kubernetes/manifests/kube-scheduler.yaml";
    let facts = with(kubeadm_disk().file(manifest, 0o600, "kube", "root"));
    let r = result(B, "1.1.6", &facts);
    assert_eq!(r.status, Some(Status::Fail));
    assert_eq!(r.effective, Some(false));
    // kube-bench searches `root:root` as a substring of `user:group`.
    let facts = with(kubeadm_disk().file(manifest, 0o600, "xroot", "root"));
    let r = result(B, "1.1.6", &facts);
    assert_eq!(r.status, Some(Status::Pass));
    assert_eq!(r.effective, Some(false));
    let d = r.disagreement.expect("disagreement");
    assert!(d.contains("substring"), "{d}");
    // 4.1.8 compares with eq after finding the text: `root:rootx` is found, then reads `x`.
    let facts = with(kubeadm_disk().file("/etc/kubernetes/pki/ca.crt", 0o644, "root", "rootx"));
    assert_eq!(result(B, "4.1.8", &facts).status, Some(Status::Warn));
    let facts = with(kubeadm_disk().file("/etc/kubernetes/pki/ca.crt", 0o644, "root", "root"));
    assert_eq!(result(B, "4.1.8", &facts).status, Some(Status::Pass));
}

#[test]
fn multiple_files_must_all_pass() {
    // admin.conf fine, super-admin.conf loose: cis-1.12 checks both, cis-1.8 only admin.conf.
    let disk = kubeadm_disk().file("/etc/kubernetes/super-admin.conf", 0o644, "root", "root");
    let r = result(B, "1.1.13", &with(disk.clone()));
    assert_eq!(r.status, Some(Status::Fail));
    assert_eq!(
        r.actual_value.as_deref(),
        Some(
            "permissions=600 /etc/kubernetes/admin.conf\n\
             permissions=644 /etc/kubernetes/super-admin.conf"
        )
    );
    let old = node("cis-1.8", &disk, kubeadm_processes());
    assert_eq!(result("cis-1.8", "1.1.13", &old).status, Some(Status::Pass));
    // Before 1.29 there is no super-admin.conf: admin.conf alone decides.
    let disk = kubeadm_disk().missing("/etc/kubernetes/super-admin.conf");
    let r = result(B, "1.1.14", &with(disk));
    assert_eq!(r.status, Some(Status::Pass));
    // One loose key among many fails 1.1.21 (unscored: WARN); an owner anywhere in the tree
    // fails 1.1.19.
    let disk = kubeadm_disk().file("/etc/kubernetes/pki/etcd/ca.key", 0o644, "root", "root");
    let r = result(B, "1.1.21", &with(disk));
    assert_eq!(r.status, Some(Status::Warn));
    assert_eq!(r.effective, Some(false));
    assert!(r
        .effective_note
        .as_deref()
        .unwrap_or("")
        .contains("/etc/kubernetes/pki/etcd/ca.key is 0644"));
    let disk = kubeadm_disk().dir("/etc/kubernetes/pki/etcd", 0o755, "etcd", "etcd");
    assert_eq!(result(B, "1.1.19", &with(disk)).status, Some(Status::Fail));
    // Every .crt in the tree, directories excluded.
    let r = result(B, "1.1.20", &with(kubeadm_disk()));
    let Detail::Files { files, .. } = &r.detail else {
        panic!("{r:?}")
    };
    assert_eq!(files.len(), 3, "{files:?}");
}

#[test]
fn missing_files_as_kube_bench_treats_them() {
    // A missing manifest prints nothing: FAIL (scored).
    let disk = kubeadm_disk().missing("/etc/kubernetes/manifests/kube-scheduler.yaml");
    let r = result(B, "1.1.5", &with(disk));
    assert_eq!(r.status, Some(Status::Fail));
    assert_eq!(r.kube_bench, Some(false));
    assert_eq!(r.effective, None, "nothing to protect");
    assert_eq!(r.disagreement, None);
    // 4.1.2 prints `File not found` and accepts it.
    let disk = kubeadm_disk()
        .missing("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf")
        .missing("/lib/systemd/system/kubelet.service");
    let facts = with(disk);
    let r = result(B, "4.1.2", &facts);
    assert_eq!(r.status, Some(Status::Pass));
    assert_eq!(r.actual_value.as_deref(), Some("File not found"));
    // ... while 4.1.1 fails on the same missing file.
    assert_eq!(result(B, "4.1.1", &facts).status, Some(Status::Fail));
    // No *.crt at all: `xargs stat` runs without a file and the audit command fails.
    let mut disk = FileFacts::new();
    for (p, f) in kubeadm_disk().iter() {
        if !p.ends_with(".crt") {
            disk.insert(p, f.clone());
        }
    }
    let r = result(B, "1.1.20", &with(disk));
    assert_eq!(r.status, Some(Status::Warn));
    assert!(
        r.reason.as_deref().unwrap_or("").contains("lists nothing"),
        "{r:?}"
    );
    // No PKI directory at all: find fails, scored 1.1.19 fails.
    let mut disk = FileFacts::new();
    for (p, f) in kubeadm_disk().iter() {
        if !p.starts_with("/etc/kubernetes/pki") {
            disk.insert(p, f.clone());
        }
    }
    let r = result(B, "1.1.19", &with(disk));
    assert_eq!(r.status, Some(Status::Fail));
    assert!(
        r.reason.as_deref().unwrap_or("").contains("does not exist"),
        "{r:?}"
    );
    // etcd's manifest found among kube-bench's candidates under a name without `etcd`.
    let mut disk = FileFacts::new();
    for (p, f) in kubeadm_disk().iter() {
        if !p.contains("manifests/etcd") {
            disk.insert(p, f.clone());
        }
    }
    let disk = disk.file(
        "/var/lib/rancher/rke2/server/db/etcd/config",
        0o600,
        "root",
        "root",
    );
    let r = result(B, "1.1.7", &with(disk));
    assert_eq!(r.status, Some(Status::Fail));
    assert!(
        r.reason.as_deref().unwrap_or("").contains("-name '*etcd*'"),
        "{r:?}"
    );
}

#[test]
fn symlinks_are_reported_as_themselves() {
    let target = meta(FileKind::File, 0o600, "root", "root");
    let disk = kubeadm_disk().symlink("/var/lib/kubelet/config.yaml", Some(target));
    let facts = with(disk);
    let r = result(B, "4.1.9", &facts);
    assert_eq!(r.status, Some(Status::Fail));
    assert_eq!(r.actual_value.as_deref(), Some("permissions=777"));
    assert_eq!(r.effective, Some(true));
    let d = r.disagreement.expect("disagreement");
    assert!(d.contains("symlink"), "{d}");
    let bench = benchmark(B).expect("compiled in");
    let plan = plan_file_fix(bench.check("4.1.9").expect("4.1.9"), &facts).expect("facts");
    assert!(plan.changes.is_empty());
    assert_eq!(plan.blocked.len(), 1);
    assert!(plan.blocked[0].why.contains("symlink"));
}

#[test]
fn etcd_data_dir() {
    // From the running etcd's --data-dir.
    let r = result(B, "1.1.11", &with(kubeadm_disk()));
    assert_eq!(r.status, Some(Status::Pass));
    let facts = with(kubeadm_disk().dir("/var/lib/etcd", 0o755, "root", "root"));
    let r = result(B, "1.1.11", &facts);
    assert_eq!(r.status, Some(Status::Fail));
    // The last --data-dir that is a directory; kube-bench's sed reads the last occurrence.
    let mut procs = kubeadm_processes();
    procs.retain(|(c, _)| *c != Component::Etcd);
    procs.push((
        Component::Etcd,
        argv(&["--data-dir=/var/lib/etcd", "--data-dir", "/srv/etcd"]),
    ));
    let disk = kubeadm_disk().dir("/srv/etcd", 0o755, "root", "root");
    let r = result(B, "1.1.11", &node(B, &disk, procs));
    assert_eq!(r.status, Some(Status::Fail));
    assert_eq!(r.effective, Some(false));
    // etcd not running, no default data dir: stat fails, the audit fails.
    let mut procs = kubeadm_processes();
    procs.retain(|(c, _)| *c != Component::Etcd);
    let r = result(B, "1.1.11", &node(B, &kubeadm_disk(), procs));
    assert_eq!(r.status, Some(Status::Fail));
    assert!(
        r.reason
            .as_deref()
            .unwrap_or("")
            .contains("/var/lib/etcd/default.etcd"),
        "{r:?}"
    );
}

#[test]
fn etcd_owner_fix_needs_the_etcd_account() {
    let bench = benchmark(B).expect("compiled in");
    let check = bench.check("1.1.12").expect("1.1.12");
    let mut facts = with(kubeadm_disk());
    let plan = plan_file_fix(check, &facts).expect("facts");
    let why = plan.manual.expect("manual without an etcd user");
    assert!(why.contains("kubeadm runs etcd as root"), "{why}");
    assert!(plan.changes.is_empty());
    facts.accounts.users.insert("etcd".into());
    assert!(
        plan_file_fix(check, &facts)
            .expect("facts")
            .manual
            .is_some(),
        "group too"
    );
    facts.accounts.groups.insert("etcd".into());
    let plan = plan_file_fix(check, &facts).expect("facts");
    assert_eq!(plan.manual, None);
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(plan.changes[0].path, "/var/lib/etcd");
    assert_eq!(
        plan.changes[0].new_owner,
        Some(Owner {
            user: "etcd",
            group: "etcd"
        })
    );
    assert_eq!(plan.changes[0].new_mode, None);
}

#[test]
fn fixes_never_loosen() {
    let bench = benchmark(B).expect("compiled in");
    let disk = kubeadm_disk()
        .file("/etc/kubernetes/pki/ca.key", 0o400, "root", "root")
        .file("/etc/kubernetes/pki/apiserver.key", 0o644, "root", "root")
        .file("/etc/kubernetes/pki/etcd/ca.key", 0o4751, "root", "root");
    let facts = with(disk);
    let plan = plan_file_fix(bench.check("1.1.21").expect("1.1.21"), &facts).expect("facts");
    let modes: Vec<(&str, u32, Option<u32>)> = plan
        .changes
        .iter()
        .map(|c| (c.path.as_str(), c.mode, c.new_mode))
        .collect();
    assert_eq!(
        modes,
        [
            ("/etc/kubernetes/pki/apiserver.key", 0o644, Some(0o600)),
            (
                "/etc/kubernetes/pki/etcd/ca.key",
                0o4751,
                Some(0o700 & 0o600)
            ),
        ]
    );
    // Once applied, the check passes under both readings.
    let mut fixed = kubeadm_disk();
    for c in &plan.changes {
        fixed = fixed.file(&c.path, c.new_mode.unwrap_or(c.mode), "root", "root");
    }
    let fixed = fixed.file("/etc/kubernetes/pki/ca.key", 0o400, "root", "root");
    let r = result(B, "1.1.21", &with(fixed));
    assert_eq!(r.status, Some(Status::Pass));
    assert_eq!(r.effective, Some(true));
    // CNI files are left to a person, with the reason.
    let plan = plan_file_fix(bench.check("1.1.9").expect("1.1.9"), &facts).expect("facts");
    assert!(plan.manual.unwrap_or_default().contains("network plugin"));
}

#[test]
fn files_kube_bench_misses() {
    // The packaged unit lives under /usr/lib (kube-bench's candidates stop at /lib/...'s unit
    // file), and its kubeadm drop-in is 0644.
    let disk = kubeadm_disk()
        .missing("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf")
        .file("/lib/systemd/system/kubelet.service", 0o600, "root", "root")
        .file(
            "/usr/lib/systemd/system/kubelet.service",
            0o600,
            "root",
            "root",
        )
        .file(
            "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
            0o644,
            "root",
            "root",
        );
    let mut facts = NodeFacts {
        processes: kubeadm_processes().into_iter().collect(),
        ..Default::default()
    };
    facts.located.insert(
        kharden_catalog::FileRole::KubeletUnit,
        Located {
            paths: vec![
                "/usr/lib/systemd/system/kubelet.service".into(),
                "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf".into(),
            ],
            provenance: "systemctl show kubelet: FragmentPath, DropInPaths".into(),
        },
    );
    common::node::gather(benchmark(B).expect("compiled in"), &disk, &mut facts);
    let r = result(B, "4.1.1", &facts);
    assert_eq!(r.status, Some(Status::Pass));
    assert_eq!(r.effective, Some(false));
    let d = r.disagreement.expect("disagreement");
    assert!(
        d.contains("kube-bench stats /lib/systemd/system/kubelet.service"),
        "{d}"
    );
    assert!(d.contains("10-kubeadm.conf"), "{d}");
    let plan = plan_file_fix(
        benchmark(B)
            .expect("compiled in")
            .check("4.1.1")
            .expect("4.1.1"),
        &facts,
    )
    .expect("facts");
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(
        plan.changes[0].path,
        "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"
    );

    // The kubelet's client CA as the kubelet really has it.
    let mut facts = NodeFacts {
        processes: kubeadm_processes().into_iter().collect(),
        ..Default::default()
    };
    facts.kubelet.effective.insert(
        "authentication.x509.clientCAFile".into(),
        kharden_catalog::EffectiveValue {
            value: Some("/etc/kubelet/ca.pem".into()),
            source: kharden_catalog::ValueSource::ConfigFile {
                path: "/var/lib/kubelet/config.yaml".into(),
            },
        },
    );
    let disk = kubeadm_disk().file("/etc/kubelet/ca.pem", 0o666, "root", "root");
    common::node::gather(benchmark(B).expect("compiled in"), &disk, &mut facts);
    let r = result(B, "4.1.7", &facts);
    assert_eq!(
        r.status,
        Some(Status::Pass),
        "kube-bench stats $kubeletcafile"
    );
    assert_eq!(r.effective, Some(false));
    assert!(r
        .disagreement
        .expect("disagreement")
        .contains("/etc/kubelet/ca.pem"));
    // With --client-ca-file= on the command line kube-bench follows it.
    let mut procs = kubeadm_processes();
    procs.retain(|(c, _)| *c != Component::Kubelet);
    procs.push((
        Component::Kubelet,
        argv(&[
            "--client-ca-file=/etc/kubelet/ca.pem",
            "--config=/var/lib/kubelet/config.yaml",
        ]),
    ));
    let r = result(B, "4.1.7", &node(B, &disk, procs));
    assert_eq!(r.status, Some(Status::Warn));

    // CNI: kube-bench reads the IPAM state only; the runtime's configuration is loose.
    let disk = kubeadm_disk()
        .dir("/var/lib/cni/networks", 0o755, "root", "root")
        .dir("/var/lib/cni/networks/cbr0", 0o755, "root", "root")
        .file(
            "/var/lib/cni/networks/cbr0/10.244.0.5",
            0o600,
            "root",
            "root",
        );
    let r = result(B, "1.1.9", &with(disk));
    assert_eq!(r.status, Some(Status::Pass));
    assert_eq!(r.effective, Some(false));
    let d = r.disagreement.expect("disagreement");
    assert!(d.contains("/etc/cni/net.d/10-flannel.conflist"), "{d}");
}

#[test]
fn ungathered_facts_are_errors() {
    let bench = benchmark(B).expect("compiled in");
    let check = bench.check("1.1.1").expect("1.1.1");
    let facts = NodeFacts::default();
    assert_eq!(
        evaluate_check(check, &facts),
        Err(MissingFact::PathVar("apiserverconf".into()))
    );
    let facts = NodeFacts {
        paths: kharden_catalog::paths::resolve_for(&bench.checks, |_| false),
        ..Default::default()
    };
    assert_eq!(
        evaluate_check(check, &facts),
        Err(MissingFact::File(
            "/etc/kubernetes/manifests/kube-apiserver.yaml".into()
        ))
    );
}

#[test]
fn every_version_evaluates_on_a_kubeadm_node() {
    for b in kharden_catalog::benchmarks() {
        let facts = node(b.id, &kubeadm_disk(), kubeadm_processes());
        let results = evaluate_all(&b.checks, &facts).expect("every fact gathered");
        assert_eq!(results.len(), b.checks.len());
        for (r, c) in results.iter().zip(&b.checks) {
            assert_eq!(r.id, c.id);
            match c.audit.kind() {
                kharden_catalog::AuditKind::NotEvaluated if !c.manual => {
                    assert_eq!(r.status, None, "{} {}", b.id, c.id);
                    assert!(r.reason.is_some());
                    assert_eq!(r.kube_bench_label(), "WARN");
                }
                _ if c.manual => assert_eq!(r.status, Some(Status::Manual), "{} {}", b.id, c.id),
                _ => assert!(r.status.is_some(), "{} {}", b.id, c.id),
            }
        }
    }
}
