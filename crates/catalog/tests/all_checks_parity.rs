//! Every check of every benchmark version against kube-bench's YAML, field by field, and
//! config.yaml's paths and version mapping against the catalog's.
//!
//! The YAML is read independently of the catalog: the kind of each audit (command line, file
//! `stat`, kubelet configuration, kubectl, file contents) and the files it reads are recognised
//! here from kube-bench's own shell text. Skipped, with a message, when ../shared/cis is absent
//! (set KHARDEN_CIS_DIR to point elsewhere).

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use std::path::{Path, PathBuf};

use kharden_catalog::paths::{self, PathKind};
use kharden_catalog::{
    benchmark, Audit, AuditKind, BinOp, Check, Component, FileSet, ForeignSource, StatFormat,
    Target, VERSION_MAPPING,
};

fn shared_cis() -> Option<PathBuf> {
    let dir = std::env::var_os("KHARDEN_CIS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/cis"))
        });
    if dir.join("config.yaml").is_file() {
        Some(dir)
    } else {
        println!(
            "skipped: kube-bench definitions not found at {}",
            dir.display()
        );
        None
    }
}

const VERSIONS: [(&str, &str); 5] = [
    ("1.8", "cis-1.8"),
    ("1.9", "cis-1.9"),
    ("1.10", "cis-1.10"),
    ("1.11", "cis-1.11"),
    ("1.12", "cis-1.12"),
];

const TARGETS: [&str; 5] = ["master", "etcd", "controlplane", "node", "policies"];

fn scalar(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) => n.to_string(),
        other => panic!("unexpected scalar {other:?}"),
    }
}

#[derive(Debug, Clone, PartialEq)]
struct YItem {
    flag: String,
    path: Option<String>,
    set: bool,
    op: Option<String>,
    value: Option<String>,
    env: Option<String>,
}

#[derive(Debug, Clone)]
struct YCheck {
    id: String,
    target: String,
    audit: String,
    audit_config: Option<String>,
    manual: bool,
    scored: bool,
    multiple: bool,
    bin_op: Option<String>,
    items: Vec<YItem>,
}

fn load(dir: &Path, version: &str, target: &str) -> Vec<YCheck> {
    let text = std::fs::read_to_string(dir.join(format!("cis-{version}_{target}.yaml")))
        .expect("readable");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
    assert_eq!(doc["type"].as_str(), Some(target));
    let mut out = Vec::new();
    for group in doc["groups"].as_sequence().expect("groups") {
        for c in group["checks"].as_sequence().expect("checks") {
            let tests = &c["tests"];
            let items = tests["test_items"]
                .as_sequence()
                .map(|s| {
                    s.iter()
                        .map(|i| YItem {
                            flag: scalar(&i["flag"]),
                            path: i.get("path").map(scalar),
                            set: i
                                .get("set")
                                .map(|v| v.as_bool().expect("bool"))
                                .unwrap_or(true),
                            op: i.get("compare").map(|c| scalar(&c["op"])),
                            value: i.get("compare").and_then(|c| c.get("value")).map(scalar),
                            env: i.get("env").map(scalar),
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(YCheck {
                id: scalar(&c["id"]),
                target: target.to_string(),
                audit: c
                    .get("audit")
                    .and_then(|a| a.as_str())
                    .unwrap_or("")
                    .to_string(),
                audit_config: c
                    .get("audit_config")
                    .and_then(|a| a.as_str())
                    .map(str::to_string),
                manual: c.get("type").and_then(|t| t.as_str()) == Some("manual"),
                scored: c["scored"].as_bool().expect("scored"),
                multiple: c
                    .get("use_multiple_values")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false),
                bin_op: tests.get("bin_op").map(scalar),
                items,
            });
        }
    }
    out
}

fn load_all(dir: &Path, version: &str) -> Vec<YCheck> {
    TARGETS.iter().flat_map(|t| load(dir, version, t)).collect()
}

/// What kind of audit the YAML's shell text is, recognised here on its own.
#[derive(Debug, PartialEq)]
enum YKind {
    None,
    Flags(Component),
    Config(Component, Option<String>),
    Kubectl,
    FileContents,
    File(YFiles, StatFormat, Option<String>),
}

#[derive(Debug, PartialEq)]
enum YFiles {
    Var(String),
    FindVar(String, String),
    Paths(Vec<String>),
    Find(String, Option<String>),
    EtcdDataDir,
    Cni,
    KubeletClientCa,
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

fn classify(y: &YCheck) -> YKind {
    let a = y.audit.trim();
    if a.is_empty() {
        return YKind::None;
    }
    if a.contains("kubectl") {
        return YKind::Kubectl;
    }
    if a.contains("ENCRYPTION_PROVIDER_CONFIG") {
        return YKind::FileContents;
    }
    if a.starts_with("/bin/ps -fC") {
        let process = if a.contains("$kubeletbin") {
            Component::Kubelet
        } else if a.contains("$proxybin") {
            Component::KubeProxy
        } else {
            panic!("{}: ps -fC of what? {a}", y.id)
        };
        let var = y.audit_config.as_deref().map(|c| {
            let i = c.find('$').expect("a variable");
            c[i + 1..]
                .chars()
                .take_while(|ch| ch.is_ascii_alphanumeric())
                .collect::<String>()
        });
        return YKind::Config(process, var);
    }
    if a.starts_with("/bin/ps -ef") {
        let c = [
            ("$apiserverbin", Component::ApiServer),
            ("$controllermanagerbin", Component::ControllerManager),
            ("$schedulerbin", Component::Scheduler),
            ("$etcdbin", Component::Etcd),
        ]
        .into_iter()
        .find(|(v, _)| a.contains(v))
        .map(|(_, c)| c)
        .unwrap_or_else(|| panic!("{}: ps of what? {a}", y.id));
        return YKind::Flags(c);
    }
    // A file test: what `stat -c` prints, and how the files are found.
    let format = if a.contains("ownership=%U:%G %n") {
        StatFormat::OwnershipAndName
    } else if a.contains("permissions=%a %n") {
        StatFormat::PermissionsAndName
    } else if a.contains("permissions=%a") {
        StatFormat::Permissions
    } else if a.contains("%U:%G") {
        StatFormat::Owner
    } else {
        panic!("{}: stat format of {a}", y.id)
    };
    let if_missing = a
        .contains("File not found")
        .then(|| "File not found".to_string());
    let files = if a.contains("cni-conf-dir") {
        YFiles::Cni
    } else if a.contains("data-dir") {
        YFiles::EtcdDataDir
    } else if a.contains("client-ca-file") {
        YFiles::KubeletClientCa
    } else if let Some(list) = between(a, "for adminconf in ", ";") {
        YFiles::Paths(list.split_whitespace().map(str::to_string).collect())
    } else if a.starts_with("find ") {
        let dir = a.split_whitespace().nth(1).expect("dir").to_string();
        let name = between(a, "-name '", "'").map(str::to_string);
        YFiles::Find(dir, name)
    } else if let Some(var) = between(a, "if test -e $", ";") {
        if a.contains("find $") {
            let name = between(a, "-name '", "'").expect("glob").to_string();
            YFiles::FindVar(var.trim().to_string(), name)
        } else {
            YFiles::Var(var.trim().to_string())
        }
    } else if let Some(path) = between(a, "if test -e ", ";") {
        YFiles::Paths(vec![path.trim().to_string()])
    } else {
        panic!("{}: which files? {a}", y.id)
    };
    YKind::File(files, format, if_missing)
}

fn catalog_kind(c: &Check) -> YKind {
    match c.audit {
        Audit::None => YKind::None,
        Audit::Flags(t) => YKind::Flags(t.component),
        Audit::Config(t) => YKind::Config(t.process, t.config_var.map(str::to_string)),
        Audit::NotEvaluated(n) => match n.source {
            ForeignSource::Kubectl => YKind::Kubectl,
            ForeignSource::FileContents => YKind::FileContents,
        },
        Audit::File(t) => {
            let files = match t.files {
                FileSet::Var { var } => YFiles::Var(var.to_string()),
                FileSet::FindVar { var, name } => {
                    YFiles::FindVar(var.to_string(), name.to_string())
                }
                FileSet::Paths { paths } => {
                    YFiles::Paths(paths.iter().map(|p| p.to_string()).collect())
                }
                FileSet::Find { dir, name } => {
                    YFiles::Find(dir.to_string(), name.map(str::to_string))
                }
                FileSet::EtcdDataDir => YFiles::EtcdDataDir,
                FileSet::Cni => YFiles::Cni,
                FileSet::KubeletClientCa => YFiles::KubeletClientCa,
            };
            YKind::File(files, t.format, t.if_missing.map(str::to_string))
        }
    }
}

#[test]
fn every_check_matches_kube_bench() {
    let Some(dir) = shared_cis() else { return };
    let mut compared = 0;
    for (v, id) in VERSIONS {
        let bench = benchmark(id).expect("compiled in");
        let yaml = load_all(&dir, v);
        let yaml_ids: Vec<&str> = yaml.iter().map(|c| c.id.as_str()).collect();
        let cat_ids: Vec<&str> = bench.checks.iter().map(|c| c.id).collect();
        assert_eq!(yaml_ids, cat_ids, "{id}: same checks, same order");
        for (y, c) in yaml.iter().zip(&bench.checks) {
            let what = format!("{id} {}", y.id);
            assert_eq!(c.target.name(), y.target, "{what} target");
            assert_eq!(c.scored, y.scored, "{what} scored");
            assert_eq!(c.manual, y.manual, "{what} type: manual");
            let kind = classify(y);
            assert_eq!(catalog_kind(c), kind, "{what} audit");
            // kube-bench's type decides whether a test runs; the catalog says the same.
            if y.manual {
                assert!(y.items.is_empty(), "{what}: a manual check with tests");
            }
            let items = c.audit.items();
            match c.audit.kind() {
                AuditKind::NotEvaluated => {
                    assert!(items.is_empty(), "{what}");
                    continue;
                }
                AuditKind::None => {
                    assert!(y.items.is_empty(), "{what}");
                    continue;
                }
                _ => {}
            }
            let multiple = match c.audit {
                Audit::File(t) => t.multiple,
                _ => false,
            };
            assert_eq!(multiple, y.multiple, "{what} use_multiple_values");
            let bin_op = match y.bin_op.as_deref() {
                None | Some("and") => BinOp::And,
                Some("or") => BinOp::Or,
                Some(other) => panic!("{what}: bin_op {other}"),
            };
            if y.items.len() > 1 {
                assert_eq!(c.audit.bin_op(), bin_op, "{what} bin_op");
            }
            let cat_items: Vec<YItem> = items
                .iter()
                .map(|t| YItem {
                    flag: t.flag.to_string(),
                    path: t.path.map(str::to_string),
                    set: t.set,
                    op: t.compare.map(|c| c.op.as_str().to_string()),
                    value: t.compare.map(|c| c.value.to_string()),
                    env: t.env.map(str::to_string),
                })
                .collect();
            assert_eq!(cat_items, y.items, "{what} test items");
            // A file test's typed meaning agrees with its items.
            if let Audit::File(t) = c.audit {
                let bitmask = y
                    .items
                    .iter()
                    .find(|i| i.op.as_deref() == Some("bitmask"))
                    .and_then(|i| i.value.as_deref())
                    .map(|m| u32::from_str_radix(m, 8).expect("octal"));
                assert_eq!(t.allowed_mode, bitmask, "{what} allowed mode");
                let owner = y.items.iter().find_map(|i| match (&i.op, &i.value) {
                    (Some(op), Some(val)) if op == "eq" && val.contains(':') => Some(val.clone()),
                    (None, _) if i.flag.contains(':') => Some(i.flag.clone()),
                    _ => None,
                });
                assert_eq!(t.owner.map(|o| o.to_string()), owner, "{what} owner");
            }
            compared += 1;
        }
    }
    println!("compared {compared} evaluated checks with kube-bench's definitions");
    assert!(compared > 400);
}

#[test]
fn variables_exist_in_config_yaml() {
    for b in kharden_catalog::benchmarks() {
        for c in &b.checks {
            let (target, var) = match c.audit {
                Audit::File(t) => match t.files {
                    FileSet::Var { var } | FileSet::FindVar { var, .. } => (c.target, var),
                    FileSet::EtcdDataDir => (c.target, "etcddatadir"),
                    FileSet::KubeletClientCa => (c.target, "kubeletcafile"),
                    _ => continue,
                },
                Audit::Config(t) => match t.config_var {
                    Some(v) => (c.target, v),
                    None => continue,
                },
                _ => continue,
            };
            assert!(
                paths::var(target, var).is_some(),
                "{} {}: ${var} is not a variable of {target}",
                b.id,
                c.id
            );
        }
    }
}

#[test]
fn cis_2_0_has_the_checks_of_cis_1_12() {
    let a = benchmark("cis-1.12").expect("compiled in");
    let b = benchmark("cis-2.0").expect("compiled in");
    assert_eq!(a.checks, b.checks);
    assert_eq!(a.controls, b.controls);
}

fn strings(v: &serde_yaml::Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| s.iter().map(scalar).collect())
        .unwrap_or_default()
}

#[test]
fn config_yaml_paths_and_mapping() {
    let Some(dir) = shared_cis() else { return };
    let text = std::fs::read_to_string(dir.join("config.yaml")).expect("readable");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
    let mut seen = 0;
    for target in [
        Target::Master,
        Target::Node,
        Target::Etcd,
        Target::ControlPlane,
    ] {
        let section = &doc[target.name()];
        let names = strings(&section["components"]);
        let ours: Vec<&str> = paths::components()
            .iter()
            .filter(|c| c.target == target)
            .map(|c| c.component)
            .collect();
        assert_eq!(
            ours.iter()
                .copied()
                .collect::<std::collections::BTreeSet<_>>(),
            names.iter().map(String::as_str).collect(),
            "{target}: components"
        );
        for name in &names {
            let y = &section[name.as_str()];
            let c = paths::component(target, name).expect("carried");
            let what = format!("{target}.{name}");
            assert_eq!(
                c.optional,
                y.get("optional").and_then(|o| o.as_bool()).unwrap_or(false),
                "{what} optional"
            );
            assert_eq!(
                c.bins.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                strings(&y["bins"]),
                "{what} bins"
            );
            for (kind, list, default) in [
                (PathKind::Conf, "confs", "defaultconf"),
                (PathKind::Kubeconfig, "kubeconfig", "defaultkubeconfig"),
                (PathKind::Svc, "svc", "defaultsvc"),
                (PathKind::CaFile, "cafile", "defaultcafile"),
                (PathKind::DataDir, "datadirs", "defaultdatadir"),
            ] {
                let (ours, our_default) = c.candidates(kind);
                assert_eq!(
                    ours.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                    strings(&y[list]),
                    "{what} {list}"
                );
                assert_eq!(
                    our_default.map(str::to_string),
                    y.get(default).map(scalar),
                    "{what} {default}"
                );
            }
            seen += 1;
        }
    }
    assert_eq!(seen, paths::components().len());
    // version_mapping: every generic entry of kube-bench's, plus kharden's 1.35.
    let mapping = doc["version_mapping"].as_mapping().expect("mapping");
    let theirs: Vec<(String, String)> = mapping
        .iter()
        .map(|(k, v)| (scalar(k), scalar(v)))
        .filter(|(k, v)| k.starts_with("1.") && v.starts_with("cis-"))
        .collect();
    let ours: Vec<(String, String)> = VERSION_MAPPING
        .iter()
        .filter(|(k, _)| *k != "1.35")
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(ours, theirs);
    // Every benchmark kharden carries is a target_mapping entry with all five targets (cis-2.0
    // postdates the snapshot).
    for b in kharden_catalog::benchmarks() {
        if b.id == "cis-2.0" {
            continue;
        }
        let targets = strings(&doc["target_mapping"][b.id]);
        for t in Target::ALL {
            assert!(targets.iter().any(|x| x == t.name()), "{} {t}", b.id);
        }
    }
}
