//! The catalog against kube-bench's own definitions.
//!
//! 1. Hand-written expectations (tests/common): run everywhere.
//! 2. When ../shared/cis (kube-bench's YAML) is beside the repository: for every version, the
//!    catalog's command-line controls must be exactly the flag-testing checks of sections 1.2,
//!    1.3, 1.4, 2 and 3.2.1, and an independent mini-evaluator written here from kube-bench's
//!    check/test.go, driven by the YAML (not by the catalog's data), must agree with `evaluate`
//!    on a corpus of argvs. (tests/all_checks_parity.rs compares every other check.)

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

use std::path::{Path, PathBuf};

use common::{argv, CASES};
use kharden_catalog::{benchmark, evaluate, BinOp, Control, Status};

fn cis() -> &'static [Control] {
    &benchmark("cis-1.12")
        .expect("cis-1.12 is compiled in")
        .controls
}

fn control(id: &str) -> &'static Control {
    cis()
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("{id} missing"))
}

// --------------------------------------------------------------------- hand-written

#[test]
fn hand_table_covers_every_control() {
    let ids: Vec<&str> = CASES.iter().map(|c| c.id).collect();
    let catalog: Vec<&str> = cis().iter().map(|c| c.id).collect();
    assert_eq!(ids, catalog);
    assert_eq!(catalog.len(), 46);
}

#[test]
fn hand_table_fail_and_pass() {
    for case in CASES {
        let c = control(case.id);
        let failing = evaluate(c, &argv(case.fail));
        assert_eq!(
            failing.status, case.fail_status,
            "{} on {:?}",
            case.id, case.fail
        );
        assert_eq!(failing.disagreement, None, "{}", case.id);
        let passing = evaluate(c, &argv(case.pass));
        let want = if case.fail_status == Status::Manual {
            Status::Manual
        } else {
            Status::Pass
        };
        assert_eq!(passing.status, want, "{} on {:?}", case.id, case.pass);
        assert_eq!(passing.disagreement, None, "{}", case.id);
        if want == Status::Pass {
            assert!(passing.kube_bench && passing.flag_parser, "{}", case.id);
            assert!(!failing.kube_bench && !failing.flag_parser, "{}", case.id);
        }
    }
}

/// Cases where kube-bench and the flag parser disagree, with kube-bench's status (what
/// auditors see) and the flag parser's verdict, worked out by hand.
#[test]
fn hand_table_disagreements() {
    #[rustfmt::skip]
    let rows: &[(&str, &[&str], Status, bool)] = &[
        // first occurrence vs last occurrence
        ("1.2.15", &["--profiling=true", "--profiling=false"], Status::Fail, true),
        ("1.2.15", &["--profiling=false", "--profiling=true"], Status::Pass, false),
        ("1.3.7", &["--bind-address=127.0.0.1", "--bind-address=0.0.0.0"], Status::Pass, false),
        ("1.2.17", &["--audit-log-maxage=30", "--audit-log-maxage=1"], Status::Pass, false),
        // `--flag value` reads as "true" for kube-bench
        ("1.2.15", &["--profiling", "false"], Status::Fail, true),
        ("1.2.17", &["--audit-log-maxage", "30"], Status::Fail, true),
        // set: false sees the flag in any form, even two-item or empty
        ("1.2.21", &["--service-account-lookup", "true"], Status::Pass, true),
        // Go booleans and integers
        ("2.2", &["--client-cert-auth=1"], Status::Fail, true),
        ("1.3.3", &["--use-service-account-credentials=0"], Status::Pass, false),
        ("1.2.17", &["--audit-log-maxage=0x1e"], Status::Fail, true),
        // substring flag lookup
        ("1.2.27", &["--encryption-provider-config-automatic-reload=true"], Status::Pass, false),
        // substring `has` vs list membership
        ("1.2.7", &["--authorization-mode=RBAC,NodeX"], Status::Pass, false),
        // feature-gate map: last key wins, Go booleans
        ("1.3.6", &["--feature-gates=RotateKubeletServerCertificate=False"], Status::Pass, false),
        ("1.3.6", &["--feature-gates=RotateKubeletServerCertificate=false,RotateKubeletServerCertificate=true"], Status::Fail, true),
        // an empty value reads as "true" for kube-bench
        ("1.2.30", &["--service-account-extend-token-expiration="], Status::Fail, false),
    ];
    for (id, items, status, fp) in rows {
        let e = evaluate(control(id), &argv(items));
        assert_eq!(e.status, *status, "{id} {items:?}");
        assert_eq!(e.flag_parser, *fp, "{id} {items:?}");
        assert_eq!(
            e.disagreement.is_some(),
            e.kube_bench != e.flag_parser,
            "{id} {items:?}"
        );
    }
    let e = evaluate(
        control("1.2.15"),
        &argv(&["--profiling=true", "--profiling=false"]),
    );
    let d = e.disagreement.expect("disagreement reported");
    assert!(d.contains("\"true\"") && d.contains("\"false\""), "{d}");
    assert_eq!(e.readings.len(), 1);
    assert_eq!(e.readings[0].kube_bench.as_deref(), Some("true"));
    assert_eq!(e.readings[0].flag_parser.as_deref(), Some("false"));
}

// ------------------------------------------------------------- kube-bench's own YAML

fn shared_cis() -> Option<PathBuf> {
    let dir = std::env::var_os("KHARDEN_CIS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/cis"))
        });
    if dir.join("cis-1.12_master.yaml").is_file() {
        Some(dir)
    } else {
        println!(
            "skipped: kube-bench definitions not found at {}",
            dir.display()
        );
        None
    }
}

#[derive(Debug, Clone)]
struct YItem {
    flag: String,
    set: bool,
    op: Option<String>,
    value: Option<String>,
}

#[derive(Debug, Clone)]
struct YCheck {
    id: String,
    scored: bool,
    manual: bool,
    bin_op: Option<String>,
    items: Vec<YItem>,
}

fn scalar(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) => n.to_string(),
        other => panic!("unexpected scalar {other:?}"),
    }
}

/// The checks of `version` whose audit reads a control-plane process's command line.
fn load_checks(dir: &Path, version: &str) -> Vec<YCheck> {
    let mut out = Vec::new();
    for target in ["master", "etcd", "controlplane"] {
        let file = format!("cis-{version}_{target}.yaml");
        let text = std::fs::read_to_string(dir.join(file)).expect("readable");
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
        for group in doc["groups"].as_sequence().expect("groups") {
            for check in group["checks"].as_sequence().expect("checks") {
                let id = scalar(&check["id"]);
                let audit = check["audit"].as_str().unwrap_or("");
                // A command-line check audits `ps -ef | grep <binary>` and nothing else
                // (the encryption-providers check also runs ps, but to find a file whose
                // contents it then tests).
                if !audit.trim().starts_with("/bin/ps -ef") {
                    continue;
                }
                let tests = &check["tests"];
                let items = tests["test_items"]
                    .as_sequence()
                    .map(|s| {
                        s.iter()
                            .map(|i| YItem {
                                flag: scalar(&i["flag"]),
                                set: i
                                    .get("set")
                                    .map(|v| v.as_bool().expect("bool"))
                                    .unwrap_or(true),
                                op: i.get("compare").map(|c| scalar(&c["op"])),
                                value: i.get("compare").and_then(|c| c.get("value")).map(scalar),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(YCheck {
                    id,
                    scored: check["scored"].as_bool().expect("scored"),
                    manual: check.get("type").and_then(|t| t.as_str()) == Some("manual"),
                    bin_op: tests.get("bin_op").map(scalar),
                    items,
                });
            }
        }
    }
    out
}

const VERSIONS: [(&str, &str); 5] = [
    ("1.8", "cis-1.8"),
    ("1.9", "cis-1.9"),
    ("1.10", "cis-1.10"),
    ("1.11", "cis-1.11"),
    ("1.12", "cis-1.12"),
];

#[test]
fn catalog_matches_kube_bench_definitions() {
    let Some(dir) = shared_cis() else { return };
    for (v, id) in VERSIONS {
        let bench = benchmark(id).expect("compiled in");
        let checks = load_checks(&dir, v);
        let yaml_ids: Vec<&str> = checks.iter().map(|c| c.id.as_str()).collect();
        let cat_ids: Vec<&str> = bench.controls.iter().map(|c| c.id).collect();
        assert_eq!(yaml_ids, cat_ids, "{id}: same controls, same order");
        for y in &checks {
            let c = bench.control(&y.id).expect("present");
            assert_eq!(c.scored, y.scored, "{id} {} scored", y.id);
            assert_eq!(c.manual_check, y.manual, "{id} {} type: manual", y.id);
            let bin_op = match y.bin_op.as_deref() {
                None | Some("and") => BinOp::And,
                Some("or") => BinOp::Or,
                Some(other) => panic!("{}: bin_op {other}", y.id),
            };
            // With one item, `and` and `or` are the same test (cis-1.8's 1.2.3 omits it).
            if y.items.len() > 1 {
                assert_eq!(c.bin_op, bin_op, "{id} {} bin_op", y.id);
            }
            assert_eq!(c.tests.len(), y.items.len(), "{id} {} items", y.id);
            for (t, yi) in c.tests.iter().zip(&y.items) {
                assert_eq!(t.flag, yi.flag, "{id} {} flag", y.id);
                assert_eq!(t.set, yi.set, "{id} {} set", y.id);
                assert_eq!(
                    t.compare.map(|c| c.op.as_str().to_string()),
                    yi.op,
                    "{id} {} op",
                    y.id
                );
                assert_eq!(
                    t.compare.map(|c| c.value.to_string()),
                    yi.value,
                    "{id} {} value",
                    y.id
                );
            }
        }
    }
}

// An independent reading of kube-bench's check/test.go (flagTestItem.findValue, compareOp,
// tests.execute, Check.run), written against the YAML above.

fn go_space(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\x0c'
}

/// `(FLAG)(=|: *)*([^\s]*) *` at the leftmost position, or None when FLAG is not in `s`.
fn mini_find(s: &str, flag: &str) -> Option<String> {
    if s.is_empty() {
        return None;
    }
    let at = s.find(flag)?;
    let chars: Vec<char> = s[at + flag.len()..].chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '=' => i += 1,
            ':' => {
                i += 1;
                while i < chars.len() && chars[i] == ' ' {
                    i += 1;
                }
            }
            _ => break,
        }
    }
    let value: String = chars[i..].iter().take_while(|c| !go_space(**c)).collect();
    Some(if value.is_empty() {
        "true".into()
    } else {
        value
    })
}

fn mini_compare(op: &str, got: &str, want: &str) -> bool {
    let atoi = |x: &str| -> Option<i64> {
        let t = x.trim();
        let d = t
            .strip_prefix('-')
            .or_else(|| t.strip_prefix('+'))
            .unwrap_or(t);
        (!d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let split = |x: &str| -> Vec<String> {
        let x = x.trim().trim_end_matches(',');
        if x.is_empty() {
            vec![]
        } else {
            x.split(',').map(|p| p.trim().to_string()).collect()
        }
    };
    match op {
        "eq" | "noteq" => {
            let l = got.to_lowercase();
            let same = if l == "true" || l == "false" {
                l == want
            } else {
                got == want
            };
            (op == "eq") == same
        }
        "gt" | "gte" | "lt" | "lte" => match (atoi(got), atoi(want)) {
            (Some(a), Some(b)) => match op {
                "gt" => a > b,
                "gte" => a >= b,
                "lt" => a < b,
                _ => a <= b,
            },
            _ => false,
        },
        "has" => got.contains(want),
        "nothave" => !got.contains(want),
        "valid_elements" => {
            let (g, w) = (split(got), split(want));
            if g.is_empty() || w.is_empty() {
                g.is_empty() && w.is_empty()
            } else {
                g.iter().all(|x| w.contains(x))
            }
        }
        other => panic!("operator {other} not expected in these sections"),
    }
}

/// kube-bench's status for one check on one process line.
fn mini_status(check: &YCheck, argv: &[String]) -> Status {
    if check.manual {
        return Status::Manual;
    }
    let line = argv.join(" ");
    let line = line.trim_end_matches([' ', '\n']);
    let results = check.items.iter().map(|item| {
        let found = mini_find(line, &item.flag);
        if !item.set {
            return found.is_none();
        }
        match (found, &item.op) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(v), Some(op)) => mini_compare(op, &v, item.value.as_deref().unwrap_or("")),
        }
    });
    let ok = match check.bin_op.as_deref() {
        Some("or") => results.collect::<Vec<_>>().contains(&true),
        _ => !results.collect::<Vec<_>>().contains(&false),
    };
    match (ok, check.scored) {
        (true, _) => Status::Pass,
        (false, true) => Status::Fail,
        (false, false) => Status::Warn,
    }
}

/// Argvs built from a check's own flags: every value shape that matters, repeats in both
/// orders, two-item forms, prefixes of longer flags.
fn corpus(check: &YCheck) -> Vec<Vec<String>> {
    let values = [
        None,
        Some("true"),
        Some("false"),
        Some("FALSE"),
        Some("0"),
        Some("1"),
        Some(""),
        Some("5"),
        Some("30"),
        Some("100"),
        Some(" 30"),
        Some("0x1e"),
        Some("127.0.0.1"),
        Some("0.0.0.0"),
        Some("AlwaysAllow"),
        Some("Node,RBAC"),
        Some("RBAC"),
        Some("NodeRestriction,EventRateLimit,AlwaysPullImages,DenyServiceExternalIPs"),
        Some("AlwaysAdmit"),
        Some("SecurityContextDeny"),
        Some("NodeRestriction,PodSecurityPolicy"),
        Some("TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
        Some("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
        Some("ServiceAccount,NamespaceLifecycle"),
        Some("RotateKubeletServerCertificate=false"),
        Some("RotateKubeletServerCertificate=True"),
        Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        Some("TLS_RSA_WITH_RC4_128_SHA"),
        Some("/etc/kubernetes/pki/x"),
    ];
    let mut flags: Vec<&str> = check.items.iter().map(|i| i.flag.as_str()).collect();
    flags.dedup();
    let form = |f: &str, v: Option<&str>| match v {
        None => vec![f.to_string()],
        Some(v) => vec![format!("{f}={v}")],
    };
    let mut out: Vec<Vec<String>> = vec![vec![], vec!["--v=2".into()]];
    for f in &flags {
        for v in values {
            out.push(form(f, v));
            out.push(vec![f.to_string(), v.unwrap_or("x").to_string()]);
            out.push([form(f, v), form(f, Some("false"))].concat());
            out.push([form(f, Some("false")), form(f, v)].concat());
            out.push([form(f, v), form(f, Some("true"))].concat());
            out.push([form(f, Some("true")), form(f, v)].concat());
            out.push(form(&format!("{f}-suffix"), v));
        }
    }
    if flags.len() == 2 {
        out.push(vec![format!("{}=/a", flags[0]), format!("{}=/b", flags[1])]);
        out.push(vec![format!("{}=/b", flags[1])]);
    }
    out
}

#[test]
fn evaluation_matches_independent_kube_bench_reading() {
    let Some(dir) = shared_cis() else { return };
    let mut compared = 0;
    for (v, id) in VERSIONS {
        let bench = benchmark(id).expect("compiled in");
        for check in load_checks(&dir, v) {
            let c = bench.control(&check.id).expect("present");
            for a in corpus(&check) {
                let want = mini_status(&check, &a);
                let got = evaluate(c, &a);
                assert_eq!(got.status, want, "{id} {} on {:?}", check.id, a);
                compared += 1;
            }
            // The hand-written table (written for cis-1.12) agrees with the YAML too.
            if v == "1.12" {
                let case = CASES.iter().find(|k| k.id == check.id).expect("hand case");
                assert_eq!(
                    mini_status(&check, &argv(case.fail)),
                    case.fail_status,
                    "{}",
                    check.id
                );
                let pass = if check.manual {
                    Status::Manual
                } else {
                    Status::Pass
                };
                assert_eq!(mini_status(&check, &argv(case.pass)), pass, "{}", check.id);
            }
        }
    }
    println!("compared {compared} evaluations with the independent reading");
    assert!(compared > 25000);
}
