//! The formats of `kharden audit`, all from one report: kube-bench's JSON (checked key by key,
//! type by type and in order against kube-bench's Go structs), the Prometheus text exposition
//! format 0.0.4 (parsed), the atomic textfile, JUnit and text.

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use assert_cmd::Command;
use kharden_testnode::{write_node, NodeOptions, NodePorts};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn kharden(root: &Path) -> Command {
    let mut c = Command::cargo_bin("kharden").unwrap();
    c.env("KHARDEN_ROOT", root)
        .env("KHARDEN_STATE_DIR", root.join("var/lib/kharden"))
        .env_remove("KHARDEN_TESTNODE_KUBELET_VERSION");
    c
}

fn node(dir: &Path) -> PathBuf {
    let root = dir.join("n");
    write_node(
        &root,
        NodePorts::free(),
        &NodeOptions {
            etcd: true,
            ..NodeOptions::default()
        },
    )
    .unwrap();
    root
}

/// JSON with the order of object keys kept (serde_json's `Value` sorts them).
#[derive(Debug, Clone, PartialEq)]
enum J {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl<'de> Deserialize<'de> for J {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<J, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = J;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<J, E> {
                Ok(J::Bool(b))
            }
            fn visit_u64<E>(self, n: u64) -> Result<J, E> {
                Ok(J::Num(n as f64))
            }
            fn visit_i64<E>(self, n: i64) -> Result<J, E> {
                Ok(J::Num(n as f64))
            }
            fn visit_f64<E>(self, n: f64) -> Result<J, E> {
                Ok(J::Num(n))
            }
            fn visit_str<E>(self, s: &str) -> Result<J, E> {
                Ok(J::Str(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<J, E> {
                Ok(J::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<J, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(J::Arr(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<J, A::Error> {
                let mut v = Vec::new();
                while let Some((k, x)) = a.next_entry()? {
                    v.push((k, x));
                }
                Ok(J::Obj(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Copy)]
enum Ty {
    Str,
    Int,
    Bool,
    StrArray,
    Array,
    Object,
}

fn type_ok(j: &J, t: Ty) -> bool {
    match (j, t) {
        (J::Str(_), Ty::Str) | (J::Bool(_), Ty::Bool) | (J::Obj(_), Ty::Object) => true,
        (J::Num(n), Ty::Int) => n.fract() == 0.0 && *n >= 0.0,
        (J::Arr(a), Ty::StrArray) => a.iter().all(|x| matches!(x, J::Str(_))),
        (J::Arr(_), Ty::Array) => true,
        _ => false,
    }
}

/// The object's keys must be exactly `fields` (name, type, omitempty), in order; an omitempty
/// field may be absent, and is never present empty.
fn check_object<'a>(j: &'a J, fields: &[(&str, Ty, bool)], what: &str) -> &'a [(String, J)] {
    let J::Obj(entries) = j else {
        panic!("{what}: not an object: {j:?}")
    };
    let mut want = fields.iter().peekable();
    for (k, v) in entries {
        loop {
            let Some((name, ty, omit)) = want.next() else {
                panic!("{what}: unexpected key {k:?} (or out of kube-bench's order)")
            };
            if name == k {
                assert!(type_ok(v, *ty), "{what}.{k}: {v:?} is not {ty:?}");
                if *omit {
                    assert!(
                        !matches!(v, J::Str(s) if s.is_empty()),
                        "{what}.{k}: omitempty"
                    );
                }
                break;
            }
            assert!(*omit, "{what}: missing key {name:?} before {k:?}");
        }
    }
    for (name, _, omit) in want {
        assert!(*omit, "{what}: missing key {name:?}");
    }
    entries
}

fn get<'a>(entries: &'a [(String, J)], k: &str) -> &'a J {
    &entries.iter().find(|(n, _)| n == k).unwrap().1
}

fn num(j: &J) -> u64 {
    match j {
        J::Num(n) => *n as u64,
        other => panic!("{other:?}"),
    }
}

// kube-bench's structs (check/controls.go and check/check.go of the snapshot in
// shared/cis/SOURCE.md), field by field: json tag (or the Go field name without one), type,
// omitempty. `json:"-"` fields (Tests, Set, AuditOutput, ...) are not written.
//
//   type OverallControls struct { Controls []*Controls; Totals Summary }
const OVERALL: &[(&str, Ty, bool)] = &[
    ("Controls", Ty::Array, false),
    ("Totals", Ty::Object, false),
];
//   type Summary struct { Pass int `json:"total_pass"`; Fail `total_fail`; Warn `total_warn`;
//                         Info `total_info` }
const SUMMARY: &[(&str, Ty, bool)] = &[
    ("total_pass", Ty::Int, false),
    ("total_fail", Ty::Int, false),
    ("total_warn", Ty::Int, false),
    ("total_info", Ty::Int, false),
];
//   type Controls struct { ID `json:"id"`; Version `json:"version"`;
//     DetectedVersion `json:"detected_version,omitempty"`; Text `json:"text"`;
//     Type NodeType `json:"node_type"`; Groups []*Group `json:"tests"`; Summary (embedded) }
const CONTROLS: &[(&str, Ty, bool)] = &[
    ("id", Ty::Str, false),
    ("version", Ty::Str, false),
    ("detected_version", Ty::Str, true),
    ("text", Ty::Str, false),
    ("node_type", Ty::Str, false),
    ("tests", Ty::Array, false),
    ("total_pass", Ty::Int, false),
    ("total_fail", Ty::Int, false),
    ("total_warn", Ty::Int, false),
    ("total_info", Ty::Int, false),
];
//   type Group struct { ID `json:"section"`; Type `json:"type"`; Pass `json:"pass"`;
//     Fail `json:"fail"`; Warn `json:"warn"`; Info `json:"info"`; Text `json:"desc"`;
//     Checks []*Check `json:"results"` }
const GROUP: &[(&str, Ty, bool)] = &[
    ("section", Ty::Str, false),
    ("type", Ty::Str, false),
    ("pass", Ty::Int, false),
    ("fail", Ty::Int, false),
    ("warn", Ty::Int, false),
    ("info", Ty::Int, false),
    ("desc", Ty::Str, false),
    ("results", Ty::Array, false),
];
//   type Check struct { ID `json:"test_number"`; Text `json:"test_desc"`; Audit `json:"audit"`;
//     AuditEnv (no json tag); AuditConfig (no json tag); Type `json:"type"`;
//     Remediation `json:"remediation"`; TestInfo []string `json:"test_info"`;
//     State `json:"status"`; ActualValue `json:"actual_value"`; Scored bool `json:"scored"`;
//     IsMultiple bool (no json tag); ExpectedResult `json:"expected_result"`;
//     Reason `json:"reason,omitempty"` }
const CHECK: &[(&str, Ty, bool)] = &[
    ("test_number", Ty::Str, false),
    ("test_desc", Ty::Str, false),
    ("audit", Ty::Str, false),
    ("AuditEnv", Ty::Str, false),
    ("AuditConfig", Ty::Str, false),
    ("type", Ty::Str, false),
    ("remediation", Ty::Str, false),
    ("test_info", Ty::StrArray, false),
    ("status", Ty::Str, false),
    ("actual_value", Ty::Str, false),
    ("scored", Ty::Bool, false),
    ("IsMultiple", Ty::Bool, false),
    ("expected_result", Ty::Str, false),
    ("reason", Ty::Str, true),
];

#[test]
fn kube_bench_json_has_kube_benchs_shape_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let root = node(dir.path());
    let out = kharden(&root)
        .args(["audit", "--format", "kube-bench-json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().count(),
        1,
        "one document on one line, as kube-bench prints it"
    );
    let doc: J = serde_json::from_str(&text).unwrap();
    let top = check_object(&doc, OVERALL, "OverallControls");
    let totals = check_object(get(top, "Totals"), SUMMARY, "Totals");
    let J::Arr(controls) = get(top, "Controls") else {
        unreachable!()
    };
    let ids: Vec<String> = controls
        .iter()
        .map(|c| match get(check_object(c, CONTROLS, "Controls"), "id") {
            J::Str(s) => s.clone(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        ids,
        ["1", "2", "3", "4", "5"],
        "sorted by id, as kube-bench writes them"
    );
    let mut sum = [0u64; 4];
    let mut seen_ids = BTreeSet::new();
    let mut statuses = BTreeSet::new();
    let remediations_with_cis_words = ["Edit the API server pod specification file"];
    for c in controls {
        let ce = check_object(c, CONTROLS, "Controls");
        assert_eq!(get(ce, "version"), &J::Str("cis-1.11".into()));
        assert_eq!(get(ce, "detected_version"), &J::Str("1.30".into()));
        let J::Arr(groups) = get(ce, "tests") else {
            unreachable!()
        };
        let mut csum = [0u64; 4];
        for g in groups {
            let ge = check_object(g, GROUP, "Group");
            assert_eq!(get(ge, "type"), &J::Str(String::new()));
            let J::Arr(results) = get(ge, "results") else {
                unreachable!()
            };
            let mut gsum = [0u64; 4];
            for r in results {
                let re = check_object(r, CHECK, "Check");
                let J::Str(id) = get(re, "test_number") else {
                    unreachable!()
                };
                assert!(seen_ids.insert(id.clone()), "{id} twice");
                let J::Str(status) = get(re, "status") else {
                    unreachable!()
                };
                statuses.insert(status.clone());
                let i = ["PASS", "FAIL", "WARN", "INFO"]
                    .iter()
                    .position(|s| s == status)
                    .unwrap_or_else(|| panic!("{id}: status {status}"));
                gsum[i] += 1;
                let J::Str(rem) = get(re, "remediation") else {
                    unreachable!()
                };
                assert!(!rem.is_empty(), "{id}: a remediation");
                for w in remediations_with_cis_words {
                    assert!(!rem.contains(w), "{id}: CIS words in the remediation");
                }
                // kube-bench appends the remediation to test_info.
                assert_eq!(get(re, "test_info"), &J::Arr(vec![J::Str(rem.clone())]));
                match get(re, "type") {
                    J::Str(t) if t.is_empty() || t == "manual" => {}
                    other => panic!("{id}: type {other:?}"),
                }
                if let J::Str(t) = get(re, "type") {
                    if t == "manual" {
                        assert_eq!(status, "WARN", "{id}: a manual check is WARN");
                    }
                }
            }
            for (k, n) in ["pass", "fail", "warn", "info"].iter().zip(gsum) {
                assert_eq!(num(get(ge, k)), n, "group {k}");
            }
            for i in 0..4 {
                csum[i] += gsum[i];
            }
        }
        for (k, n) in ["total_pass", "total_fail", "total_warn", "total_info"]
            .iter()
            .zip(csum)
        {
            assert_eq!(num(get(ce, k)), n, "controls {k}");
        }
        for i in 0..4 {
            sum[i] += csum[i];
        }
    }
    for (k, n) in ["total_pass", "total_fail", "total_warn", "total_info"]
        .iter()
        .zip(sum)
    {
        assert_eq!(num(get(totals, k)), n, "Totals {k}");
    }
    assert!(statuses.contains("PASS") && statuses.contains("FAIL") && statuses.contains("WARN"));
    assert!(seen_ids.contains("1.1.1") && seen_ids.contains("4.2.1") && seen_ids.contains("5.1.1"));

    // And it round-trips through kharden's own typed mirror of the structs.
    let typed: kharden::assess::kube_bench_json::OverallControls =
        serde_json::from_str(&text).unwrap();
    assert_eq!(serde_json::to_string(&typed).unwrap(), text.trim_end());
    // A check of a file test carries IsMultiple like kube-bench's use_multiple_values.
    let multi = typed
        .controls
        .iter()
        .flat_map(|c| &c.tests)
        .flat_map(|g| &g.results)
        .find(|r| r.test_number == "1.1.13")
        .unwrap();
    assert!(multi.is_multiple);
    assert!(
        multi.audit.contains("/etc/kubernetes/admin.conf"),
        "{}",
        multi.audit
    );
    let kubelet = typed
        .controls
        .iter()
        .flat_map(|c| &c.tests)
        .flat_map(|g| &g.results)
        .find(|r| r.test_number == "4.2.1")
        .unwrap();
    assert_eq!(
        kubelet.audit_config,
        "/bin/cat /var/lib/kubelet/config.yaml"
    );
}

/// One parsed sample of the text exposition format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// A strict parser of the text exposition format 0.0.4, for what kharden writes (gauges, no
/// timestamps): HELP and TYPE once per family, before its samples; samples of a family
/// together; names and label names valid; label values escaped; every series once.
fn parse_exposition(text: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
    let name_ok = |n: &str| {
        let mut c = n.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
            && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
    };
    let label_ok = |n: &str| {
        let mut c = n.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
            && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
    };
    assert!(text.ends_with('\n'), "the last line ends with a newline");
    let mut help: BTreeMap<String, String> = BTreeMap::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut series = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (n, h) = rest.split_once(' ').unwrap();
            assert!(name_ok(n), "{n}");
            assert!(help.insert(n.into(), h.into()).is_none(), "HELP {n} twice");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (n, t) = rest.split_once(' ').unwrap();
            assert_eq!(t, "gauge", "{n}");
            assert!(types.insert(n.into(), t.into()).is_none(), "TYPE {n} twice");
            assert!(!done.contains(n), "TYPE {n} after its samples");
            if let Some(c) = current.take() {
                done.insert(c);
            }
            current = Some(n.into());
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
        // name{labels} value
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => panic!("{line}"),
        };
        assert!(name_ok(name), "{name}");
        assert_eq!(
            current.as_deref(),
            Some(name),
            "samples of {name} together, after TYPE"
        );
        let mut labels = Vec::new();
        let mut rest = rest;
        if let Some(r) = rest.strip_prefix('{') {
            let c: Vec<char> = r.chars().collect();
            let mut k = 0;
            while c[k] != '}' {
                let start = k;
                while c[k] != '=' {
                    k += 1;
                }
                let lname: String = c[start..k].iter().collect();
                assert!(label_ok(&lname), "label {lname:?}");
                assert_eq!(c[k + 1], '"', "{line}");
                k += 2;
                let mut value = String::new();
                loop {
                    match c[k] {
                        '\\' => {
                            value.push(match c[k + 1] {
                                '\\' => '\\',
                                '"' => '"',
                                'n' => '\n',
                                x => panic!("bad escape \\{x}"),
                            });
                            k += 2;
                        }
                        '"' => {
                            k += 1;
                            break;
                        }
                        x => {
                            value.push(x);
                            k += 1;
                        }
                    }
                }
                labels.push((lname, value));
                match c[k] {
                    ',' => k += 1,
                    '}' => {}
                    x => panic!("after a label: {x:?} in {line}"),
                }
            }
            let used: usize = c[..=k].iter().map(|x| x.len_utf8()).sum();
            rest = &r[used..];
        }
        let v = rest.strip_prefix(' ').unwrap();
        assert!(!v.contains(' '), "no timestamp: {line}");
        let value: f64 = match v {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            _ => v.parse().unwrap_or_else(|_| panic!("value {v:?}")),
        };
        let key = format!("{name}{labels:?}");
        assert!(series.insert(key.clone()), "series twice: {key}");
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    for n in types.keys() {
        assert!(help.contains_key(n), "HELP of {n}");
    }
    (samples, types)
}

fn label<'a>(s: &'a Sample, k: &str) -> Option<&'a str> {
    s.labels
        .iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
}

#[test]
fn prometheus_exposition_parses_and_the_textfile_is_written_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let root = node(dir.path());
    let out = kharden(&root)
        .args(["audit", "--format", "prometheus"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let (samples, types) = parse_exposition(&text);
    for f in [
        "kharden_audit_check_status",
        "kharden_audit_check_effective",
        "kharden_audit_checks",
        "kharden_audit_benchmark_info",
        "kharden_audit_timestamp_seconds",
        "kharden_journal_open_transactions",
        "kharden_journal_unresolved_transactions",
        "kharden_drift_files",
        "kharden_drift_file",
        "kharden_drift_controls_undone",
    ] {
        assert!(types.contains_key(f), "{f}");
    }
    // The alerting rules of contrib/prometheus only use metrics kharden writes.
    let rules = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/prometheus/kharden-alerts.yml"),
    )
    .unwrap();
    let rules: serde_yaml::Value = serde_yaml::from_str(&rules).unwrap();
    let mut used = 0;
    for r in rules["groups"][0]["rules"].as_sequence().unwrap() {
        let expr = r["expr"].as_str().unwrap();
        assert!(r["alert"].as_str().is_some() && r["annotations"]["summary"].is_string());
        for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("kharden_") {
                assert!(types.contains_key(word), "{word} in {expr}");
                used += 1;
            }
        }
    }
    assert!(used >= 7);
    // One series per check and status, exactly one of them 1.
    let mut per_check: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for s in samples
        .iter()
        .filter(|s| s.name == "kharden_audit_check_status")
    {
        assert_eq!(label(s, "benchmark"), Some("cis-1.11"));
        per_check
            .entry(label(s, "id").unwrap().to_string())
            .or_default()
            .push((label(s, "status").unwrap().to_string(), s.value));
    }
    assert!(per_check.len() > 100, "{}", per_check.len());
    for (id, v) in &per_check {
        assert_eq!(v.len(), 3, "{id}");
        assert_eq!(
            v.iter().filter(|(_, x)| *x == 1.0).count(),
            1,
            "{id}: {v:?}"
        );
        assert!(v.iter().all(|(_, x)| *x == 0.0 || *x == 1.0));
    }
    let total = |st: &str| {
        samples
            .iter()
            .find(|s| s.name == "kharden_audit_checks" && label(s, "status") == Some(st))
            .unwrap()
            .value
    };
    let ones = |st: &str| {
        per_check
            .values()
            .filter(|v| v.iter().any(|(s, x)| s == st && *x == 1.0))
            .count() as f64
    };
    for st in ["PASS", "FAIL", "WARN"] {
        assert_eq!(total(st), ones(st), "{st}");
    }
    let ts = samples
        .iter()
        .find(|s| s.name == "kharden_audit_timestamp_seconds")
        .unwrap()
        .value;
    assert!(ts > 1.6e9 && ts < 5e9, "{ts}");
    let info = samples
        .iter()
        .find(|s| s.name == "kharden_audit_benchmark_info")
        .unwrap();
    assert_eq!(label(info, "kubernetes_version"), Some("v1.30.0"));
    assert_eq!(label(info, "how"), Some("detected"));
    // No journal yet: said, and no transaction open.
    let present = samples
        .iter()
        .find(|s| s.name == "kharden_journal_present")
        .unwrap();
    assert_eq!(present.value, 0.0);

    // --textfile: written atomically, 0644, nothing else left in the directory.
    let tf = dir.path().join("textfile");
    std::fs::create_dir(&tf).unwrap();
    let prom = tf.join("kharden.prom");
    std::fs::write(&prom, "old\n").unwrap();
    let out = kharden(&root)
        .args(["audit", "--format", "prometheus", "--textfile"])
        .arg(&prom)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("written to"));
    let written = std::fs::read_to_string(&prom).unwrap();
    let (again, _) = parse_exposition(&written);
    assert_eq!(again.len(), samples.len());
    let mode = std::fs::metadata(&prom).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o644);
    let names: Vec<String> = std::fs::read_dir(&tf)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["kharden.prom"]);
    // Bad textfiles change nothing.
    kharden(&root)
        .args(["audit", "--format", "prometheus", "--textfile"])
        .arg(tf.join("kharden.txt"))
        .assert()
        .code(2);
    kharden(&root)
        .args(["audit", "--format", "prometheus", "--textfile"])
        .arg(dir.path().join("no/such/dir/k.prom"))
        .assert()
        .code(1);
    assert_eq!(std::fs::read_to_string(&prom).unwrap(), written);
}

#[test]
fn text_json_and_junit_come_from_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let root = node(dir.path());
    let out = kharden(&root).args(["audit"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("kharden audit: benchmark cis-1.11"), "{text}");
    assert!(text.contains("why: the control-plane images"), "{text}");
    assert!(text.contains("== 1.1 Control plane node configuration files [master]"));
    assert!(text.contains("== 1.2 API server [master] (kube-apiserver: manifest "));
    assert!(text.contains("[FAIL]   FAILS 1.2.15"), "{text}");
    assert!(text.contains("fix auto: set --profiling=false"));
    assert!(text.contains("== Summary cis-1.11:"));
    let out = kharden(&root)
        .args(["-o", "json", "audit", "--format", "kube-bench-json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["checks"].is_array(), "-o json is kharden's own report");
    assert_eq!(v["exit_code"], 0);
    let n = v["checks"].as_array().unwrap().len();
    let out = kharden(&root)
        .args(["audit", "--format", "junit"])
        .output()
        .unwrap();
    let x = String::from_utf8(out.stdout).unwrap();
    assert!(x.starts_with("<?xml"));
    assert_eq!(x.matches("<testcase ").count(), n);
    assert!(x.contains("<testsuite name=\"cis-1.11 1.2 API server\""));
    assert!(x.contains("name=\"1.2.15 API server profiling endpoints are off\"><failure"));
    assert!(x.contains("<property name=\"benchmark_reason\" value=\"the control-plane images"));
    // kube-bench's --exit-code convention.
    kharden(&root)
        .args(["audit", "--exit-code", "9"])
        .assert()
        .code(9);
}
