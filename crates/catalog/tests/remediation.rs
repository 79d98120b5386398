//! Every automated remediation, applied to argvs that fail its control, makes it pass.
//!
//! The changes are applied by a tiny argv-level simulator written here (last occurrence
//! wins, as the Kubernetes flag parser reads flags), not by the manifest editor, so this
//! tests the catalog's data on its own.

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

use common::{argv, CASES};
use kharden_catalog::{benchmark, evaluate, is_automatable, Control, Fix, Status};
use kharden_manifest::Change;

fn cis() -> &'static [Control] {
    &benchmark("cis-1.12").expect("compiled in").controls
}

/// Index and value of the last `--name[=value]`; a bare flag reads as `None`.
fn last(argv: &[String], name: &str) -> Option<(usize, Option<String>)> {
    let eq = format!("--{name}=");
    let bare = format!("--{name}");
    argv.iter().enumerate().rev().find_map(|(i, a)| {
        if let Some(v) = a.strip_prefix(&eq) {
            Some((i, Some(v.to_string())))
        } else if *a == bare {
            Some((i, None))
        } else {
            None
        }
    })
}

fn remove_all(argv: &mut Vec<String>, name: &str) -> Option<usize> {
    let eq = format!("--{name}=");
    let bare = format!("--{name}");
    let first = argv.iter().position(|a| a.starts_with(&eq) || *a == bare);
    argv.retain(|a| !(a.starts_with(&eq) || *a == bare));
    first
}

fn put(argv: &mut Vec<String>, name: &str, value: Option<&str>) {
    let at = remove_all(argv, name).unwrap_or(argv.len());
    let item = match value {
        Some(v) => format!("--{name}={v}"),
        None => format!("--{name}"),
    };
    argv.insert(at, item);
}

fn items(v: &str) -> Vec<String> {
    v.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Apply one change; returns the mounts seen (they do not touch argv).
fn apply(argv: &mut Vec<String>, change: &Change) {
    let current = |argv: &Vec<String>, name: &str| last(argv, name).and_then(|(_, v)| v);
    match change {
        Change::Set { name, value } => put(argv, name, value.as_deref()),
        Change::Unset { name } => {
            remove_all(argv, name);
        }
        Change::AddItem { name, item } => {
            let mut list = current(argv, name).map(|v| items(&v)).unwrap_or_default();
            if !list.contains(item) {
                list.push(item.clone());
            }
            put(argv, name, Some(&list.join(",")));
        }
        Change::RemoveItem {
            name,
            item,
            if_empty,
        } => {
            let Some(v) = current(argv, name) else { return };
            let list: Vec<String> = items(&v).into_iter().filter(|i| i != item).collect();
            match (list.is_empty(), if_empty) {
                (false, _) => put(argv, name, Some(&list.join(","))),
                (true, Some(e)) => put(argv, name, Some(e)),
                (true, None) => {
                    remove_all(argv, name);
                }
            }
        }
        Change::AtLeast { name, min } => {
            let now = current(argv, name).and_then(|v| v.parse::<i64>().ok());
            if now.is_none_or(|n| n < *min) {
                put(argv, name, Some(&min.to_string()));
            }
        }
        Change::SetKey { name, key, value } => {
            let mut list = current(argv, name).map(|v| items(&v)).unwrap_or_default();
            list.retain(|kv| kv.split_once('=').map(|(k, _)| k) != Some(key.as_str()));
            list.push(format!("{key}={value}"));
            put(argv, name, Some(&list.join(",")));
        }
        Change::Mount(_) => {}
    }
}

/// More failing argvs per control than the hand table's: kubeadm-like lines, repeats.
fn extra_failing(id: &str) -> Vec<Vec<String>> {
    let kubeadm_api = [
        "--advertise-address=10.0.0.10",
        "--allow-privileged=true",
        "--authorization-mode=Node,RBAC",
        "--client-ca-file=/etc/kubernetes/pki/ca.crt",
        "--enable-admission-plugins=NodeRestriction",
        "--enable-bootstrap-token-auth=true",
        "--secure-port=6443",
    ];
    let with = |extra: &[&str]| {
        let mut a = argv(&kubeadm_api);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    match id {
        "1.2.6" => vec![
            with(&["--authorization-mode=AlwaysAllow"]),
            argv(&["--v=2"]),
            argv(&["--authorization-mode=RBAC,AlwaysAllow"]),
        ],
        "1.2.7" | "1.2.8" => vec![
            argv(&["--v=2"]),
            argv(&["--authorization-mode=AlwaysAllow"]),
        ],
        "1.2.9" | "1.2.11" => vec![with(&[]), argv(&["--v=2"])],
        "1.2.10" => vec![argv(&["--enable-admission-plugins=AlwaysAdmit"])],
        "1.2.12" => vec![argv(&[
            "--disable-admission-plugins=ServiceAccount,NamespaceLifecycle",
        ])],
        "1.2.14" => vec![argv(&["--v=2"])],
        "1.2.15" | "1.3.2" | "1.4.1" => vec![
            with(&["--profiling=true"]),
            argv(&["--profiling=false", "--profiling=true"]),
            argv(&["--profiling=true", "--profiling=false"]),
        ],
        "1.2.17" => vec![
            argv(&["--v=2"]),
            argv(&["--audit-log-maxage=30", "--audit-log-maxage=1"]),
        ],
        "1.2.21" => vec![argv(&[
            "--service-account-lookup=false",
            "--service-account-lookup=false",
        ])],
        "1.2.29" => vec![argv(&["--v=2"])],
        "1.3.3" => vec![argv(&[
            "--use-service-account-credentials=true",
            "--use-service-account-credentials=false",
        ])],
        "1.3.6" => vec![argv(&[
            "--feature-gates=Foo=true,RotateKubeletServerCertificate=false",
        ])],
        "1.3.7" | "1.4.2" => vec![argv(&[
            "--bind-address=127.0.0.1",
            "--bind-address=0.0.0.0",
        ])],
        "2.3" => vec![argv(&["--cert-file=/c", "--key-file=/k", "--auto-tls"])],
        "2.6" => vec![argv(&[
            "--peer-cert-file=/c",
            "--peer-key-file=/k",
            "--peer-auto-tls=true",
        ])],
        _ => vec![],
    }
}

#[test]
fn remediations_fix_their_control() {
    let mut fixed = 0;
    for control in cis().iter().filter(|c| is_automatable(c)) {
        let remediation = control.remediation().expect("automatable");
        let case = CASES
            .iter()
            .find(|k| k.id == control.id)
            .expect("hand case");
        let mut failing = vec![argv(case.fail)];
        failing.extend(extra_failing(control.id));
        for before in failing {
            let e = evaluate(control, &before);
            assert!(
                !e.kube_bench || !e.flag_parser,
                "{}: {before:?} is not failing",
                control.id
            );
            remediation
                .check_guards(&before)
                .unwrap_or_else(|b| panic!("{}: guards block {before:?}: {b:?}", control.id));
            let mut after = before.clone();
            for change in &remediation.changes {
                apply(&mut after, change);
            }
            let e = evaluate(control, &after);
            assert_eq!(
                e.status,
                Status::Pass,
                "{}: {before:?} -> {after:?}",
                control.id
            );
            assert!(e.flag_parser, "{}: {after:?}", control.id);
            assert_eq!(e.disagreement, None, "{}: {after:?}", control.id);
            // Idempotent: a second application changes nothing.
            let mut again = after.clone();
            for change in &remediation.changes {
                apply(&mut again, change);
            }
            assert_eq!(again, after, "{}", control.id);
            fixed += 1;
        }
    }
    assert!(fixed >= 26, "{fixed}");
}

#[test]
fn automation_split() {
    let automated: Vec<&str> = cis()
        .iter()
        .filter(|c| is_automatable(c))
        .map(|c| c.id)
        .collect();
    assert_eq!(
        automated,
        [
            "1.2.6", "1.2.7", "1.2.8", "1.2.9", "1.2.10", "1.2.12", "1.2.13", "1.2.14", "1.2.15",
            "1.2.16", "1.2.17", "1.2.18", "1.2.19", "1.2.21", "1.2.29", "1.2.30", "1.3.1", "1.3.2",
            "1.3.3", "1.3.6", "1.3.7", "1.4.1", "1.4.2", "2.3", "2.6", "3.2.1",
        ]
    );
    for c in cis() {
        if let Fix::Manual { reason } = &c.fix {
            assert!(reason.len() > 20, "{}", c.id);
        }
    }
}

#[test]
fn guards_protect_operator_choices() {
    let b = benchmark("cis-1.12").expect("compiled in");
    let r = b
        .control("1.2.9")
        .and_then(|c| c.remediation())
        .expect("automated");
    let other = argv(&["--admission-control-config-file=/etc/kubernetes/psa.yaml"]);
    let blocked = r
        .check_guards(&other)
        .expect_err("must not replace another file");
    assert_eq!(blocked[0].flag, "admission-control-config-file");
    assert!(r
        .check_guards(&argv(&[
            "--admission-control-config-file=/etc/kubernetes/admission-control-config.yaml"
        ]))
        .is_ok());

    let r = b
        .control("3.2.1")
        .and_then(|c| c.remediation())
        .expect("automated");
    assert!(r
        .check_guards(&argv(&["--audit-policy-file=/srv/policy.yaml"]))
        .is_err());

    let r = b
        .control("2.3")
        .and_then(|c| c.remediation())
        .expect("automated");
    let blocked = r
        .check_guards(&argv(&["--auto-tls=true"]))
        .expect_err("needs certs");
    assert_eq!(blocked.len(), 2);
    assert!(blocked[0].to_string().starts_with("--cert-file: "));
}

#[test]
fn files_are_valid_yaml_and_mounted() {
    let b = benchmark("cis-1.12").expect("compiled in");
    for id in ["1.2.9", "3.2.1"] {
        let r = b
            .control(id)
            .and_then(|c| c.remediation())
            .expect("automated");
        assert_eq!(r.files.len(), 1, "{id}");
        let doc: serde_yaml::Value = serde_yaml::from_str(r.files[0].contents).expect("YAML");
        assert!(doc["apiVersion"].as_str().is_some(), "{id}");
        assert_eq!(r.files[0].mode, 0o600);
    }
    let r = b
        .control("1.2.16")
        .and_then(|c| c.remediation())
        .expect("automated");
    let mount = r
        .changes
        .iter()
        .find_map(|c| match c {
            Change::Mount(m) => Some(m),
            _ => None,
        })
        .expect("log dir mount");
    assert!(!mount.read_only);
    assert_eq!(mount.path_type.as_deref(), Some("DirectoryOrCreate"));
}

/// Every version's automated command-line fixes, on argvs that fail them there: the hand
/// case of the cis-1.12 control with the same definition, and a line without the flags.
#[test]
fn remediations_fix_every_version() {
    let latest = benchmark("cis-1.12").expect("compiled in");
    let mut fixed = 0;
    for b in kharden_catalog::benchmarks() {
        for control in b.controls.iter().filter(|c| is_automatable(c)) {
            let remediation = control.remediation().expect("automatable");
            let mut candidates = vec![argv(&["--v=2"])];
            if let Some(case) = latest
                .controls
                .iter()
                .find(|c| c.key == control.key)
                .and_then(|c| CASES.iter().find(|k| k.id == c.id))
            {
                candidates.push(argv(case.fail));
            }
            candidates.extend(extra_failing(control.id));
            for before in candidates {
                let e = evaluate(control, &before);
                if e.kube_bench && e.flag_parser {
                    continue;
                }
                if remediation.check_guards(&before).is_err() {
                    continue;
                }
                let mut after = before.clone();
                for change in &remediation.changes {
                    apply(&mut after, change);
                }
                let e = evaluate(control, &after);
                assert_eq!(
                    e.status,
                    Status::Pass,
                    "{} {}: {before:?} -> {after:?}",
                    b.id,
                    control.id
                );
                assert!(e.flag_parser, "{} {}: {after:?}", b.id, control.id);
                fixed += 1;
            }
        }
    }
    assert!(fixed >= 150, "{fixed}");
}
