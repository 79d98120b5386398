//! Kubelet and kube-proxy checks (4.2, 4.3): kube-bench reads a flag from `ps` first, else the
//! key of the file `$kubeletconf` resolves to, without defaults; the effective reading takes the
//! kubelet's own merge. Expectations worked out by hand from kube-bench's check/check.go and
//! check/test.go.

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

use common::node::{
    argv, kubeadm_disk, kubeadm_kubelet_effective, kubeadm_kubelet_yaml, kubeadm_processes, map,
    node, result, s,
};
use kharden_catalog::{
    benchmark, evaluate_check, Component, ConfigContent, ConfigDoc, ConfigValue, Detail,
    EffectiveValue, Fix, KubeletValue, NodeFacts, Status, ValueSource,
};

const B: &str = "cis-1.12";

/// A kubeadm node whose kubelet runs with `extra` flags, kube-bench reading `yaml` from
/// /var/lib/kubelet/config.yaml, the kubelet really using kubeadm's values changed by
/// `effective`.
fn kubelet_node(
    extra: &[&str],
    yaml: ConfigValue,
    effective: &[(&str, Option<&str>, ValueSource)],
) -> NodeFacts {
    let mut procs = kubeadm_processes();
    for (c, a) in procs.iter_mut() {
        if *c == Component::Kubelet {
            a.extend(argv(extra));
        }
    }
    let mut facts = node(B, &kubeadm_disk(), procs);
    common::node::config_docs(&kubeadm_disk(), &mut facts, yaml);
    facts.kubelet.effective = kubeadm_kubelet_effective();
    facts.kubelet.config_path = Some("/var/lib/kubelet/config.yaml".into());
    for (k, v, src) in effective {
        facts.kubelet.effective.insert(
            k.to_string(),
            EffectiveValue {
                value: v.map(str::to_string),
                source: src.clone(),
            },
        );
    }
    facts
}

fn with_key(key: &str, value: ConfigValue) -> ConfigValue {
    let ConfigValue::Map(mut entries) = kubeadm_kubelet_yaml() else {
        unreachable!("a map")
    };
    entries.retain(|(k, _)| k != key);
    entries.push((key.to_string(), value));
    ConfigValue::Map(entries)
}

fn without_key(key: &str) -> ConfigValue {
    let ConfigValue::Map(mut entries) = kubeadm_kubelet_yaml() else {
        unreachable!("a map")
    };
    entries.retain(|(k, _)| k != key);
    ConfigValue::Map(entries)
}

#[test]
fn kubeadm_kubelet_as_installed() {
    let facts = kubelet_node(&[], kubeadm_kubelet_yaml(), &[]);
    #[rustfmt::skip]
    let table: &[(&str, Status, Option<bool>)] = &[
        ("4.2.1", Status::Pass, Some(true)),
        ("4.2.2", Status::Pass, Some(true)),
        ("4.2.3", Status::Pass, Some(true)),
        ("4.2.4", Status::Pass, Some(true)),
        // kubeadm writes `0s`, which kube-bench's noteq 0 passes; the kubelet defaults it to 4h.
        ("4.2.5", Status::Pass, Some(true)),
        ("4.2.6", Status::Pass, Some(true)),
        ("4.2.7", Status::Pass, Some(true)),
        ("4.2.8", Status::Pass, Some(true)),
        ("4.2.9", Status::Warn, Some(false)),
        ("4.2.10", Status::Pass, Some(true)),
        ("4.2.11", Status::Pass, Some(true)),
        ("4.2.12", Status::Warn, Some(false)),
        ("4.2.13", Status::Warn, Some(false)),
        ("4.2.14", Status::Warn, Some(false)),
    ];
    for (id, status, effective) in table {
        let r = result(B, id, &facts);
        assert_eq!(r.status, Some(*status), "{id}: {r:?}");
        assert_eq!(r.effective, *effective, "{id}: {r:?}");
        assert_eq!(r.disagreement, None, "{id}: {r:?}");
    }
    // kube-proxy is not running on this node: `ps -fC kube-proxy` fails.
    let r = result(B, "4.3.1", &facts);
    assert_eq!(r.status, Some(Status::Fail));
    assert!(
        r.reason.as_deref().unwrap_or("").contains("not running"),
        "{r:?}"
    );
    let r = result(B, "4.2.1", &facts);
    assert_eq!(
        r.expected.as_deref(),
        Some("'{.authentication.anonymous.enabled}' is equal to 'false'")
    );
    let Detail::Config { readings } = &r.detail else {
        panic!("{r:?}")
    };
    assert_eq!(readings[0].kube_bench.as_deref(), Some("false"));
    assert_eq!(
        readings[0].kube_bench_source,
        "/var/lib/kubelet/config.yaml"
    );
    assert_eq!(
        readings[0].key.as_deref(),
        Some("authentication.anonymous.enabled")
    );
}

#[test]
fn a_flag_wins_over_the_file() {
    let facts = kubelet_node(
        &["--anonymous-auth=true", "--read-only-port=10255"],
        kubeadm_kubelet_yaml(),
        &[
            (
                "authentication.anonymous.enabled",
                Some("true"),
                ValueSource::Flag {
                    flag: "--anonymous-auth".into(),
                },
            ),
            (
                "readOnlyPort",
                Some("10255"),
                ValueSource::Flag {
                    flag: "--read-only-port".into(),
                },
            ),
        ],
    );
    let r = result(B, "4.2.1", &facts);
    assert_eq!(r.status, Some(Status::Fail));
    assert_eq!(r.effective, Some(false));
    assert_eq!(
        r.actual_value
            .as_deref()
            .map(|v| v.contains("--anonymous-auth=true")),
        Some(true)
    );
    let r = result(B, "4.2.4", &facts);
    assert_eq!(r.status, Some(Status::Warn));
    assert_eq!(r.effective, Some(false));
    // kube-bench reads `--event-qps 5` (two items) as `true`, which gte cannot parse.
    let facts = kubelet_node(
        &["--event-qps", "5"],
        kubeadm_kubelet_yaml(),
        &[(
            "eventRecordQPS",
            Some("5"),
            ValueSource::Flag {
                flag: "--event-qps".into(),
            },
        )],
    );
    let r = result(B, "4.2.8", &facts);
    assert_eq!(r.status, Some(Status::Warn));
    assert_eq!(r.effective, Some(true));
    let d = r.disagreement.expect("disagreement");
    assert!(
        d.contains("kube-bench reads \"true\" from the command line"),
        "{d}"
    );
    // The feature gate found as text in `--feature-gates=...`.
    let facts = kubelet_node(
        &["--feature-gates=RotateKubeletServerCertificate=false"],
        kubeadm_kubelet_yaml(),
        &[(
            "featureGates.RotateKubeletServerCertificate",
            Some("false"),
            ValueSource::Flag {
                flag: "--feature-gates".into(),
            },
        )],
    );
    let r = result(B, "4.2.11", &facts);
    assert_eq!(r.status, Some(Status::Warn));
    assert_eq!(r.effective, Some(false));
    // --hostname-override is read from the command line only.
    let facts = kubelet_node(&["--hostname-override=node-1"], kubeadm_kubelet_yaml(), &[]);
    let r = result(B, "4.2.7", &facts);
    assert_eq!(r.status, Some(Status::Warn));
    assert_eq!(r.effective, Some(false));
}

#[test]
fn a_missing_key_is_not_set_and_defaults_are_not_applied() {
    // rotateCertificates absent: kube-bench passes (set: false), the kubelet's default is false.
    let facts = kubelet_node(
        &[],
        without_key("rotateCertificates"),
        &[("rotateCertificates", Some("false"), ValueSource::Default)],
    );
    let r = result(B, "4.2.10", &facts);
    assert_eq!(r.status, Some(Status::Pass));
    assert_eq!(r.effective, Some(false));
    let d = r.disagreement.expect("disagreement");
    assert!(
        d.contains("default \"false\", which kube-bench does not apply"),
        "{d}"
    );
    // A key absent from the file fails a presence test even though the kubelet has a value.
    let facts = kubelet_node(&[], without_key("authentication"), &[]);
    let r = result(B, "4.2.3", &facts);
    assert_eq!(r.status, Some(Status::Fail));
    assert_eq!(r.effective, Some(true));
    // seccompDefault: false is "set" for kube-bench's presence test, but off.
    let facts = kubelet_node(
        &[],
        with_key("seccompDefault", ConfigValue::Bool(false)),
        &[],
    );
    let r = result(B, "4.2.14", &facts);
    assert_eq!(r.status, Some(Status::Pass));
    assert_eq!(r.effective, Some(false));
    assert!(r.disagreement.is_some());
    // `readOnlyPort:` with no value renders `<nil>`: set, and not 0.
    let facts = kubelet_node(&[], with_key("readOnlyPort", ConfigValue::Null), &[]);
    assert_eq!(result(B, "4.2.4", &facts).status, Some(Status::Warn));
    // `0s` passes kube-bench's text test; a kubelet that kept it would have no timeout.
    let facts = kubelet_node(
        &[],
        kubeadm_kubelet_yaml(),
        &[(
            "streamingConnectionIdleTimeout",
            Some("0s"),
            ValueSource::DropIn {
                path: "/etc/kubernetes/kubelet.conf.d/10-x.conf".into(),
            },
        )],
    );
    let r = result(B, "4.2.5", &facts);
    assert_eq!(r.status, Some(Status::Pass));
    assert_eq!(r.effective, Some(false));
    let d = r.disagreement.expect("disagreement");
    assert!(d.contains("drop-in"), "{d}");
}

#[test]
fn kube_bench_reads_another_file() {
    // The kubelet runs with --config=/etc/kubelet/config.yaml (anonymous on); kube-bench's
    // candidates find kubeadm's stale /var/lib/kubelet/config.yaml (anonymous off).
    let mut facts = kubelet_node(
        &["--config=/etc/kubelet/config.yaml"],
        kubeadm_kubelet_yaml(),
        &[(
            "authentication.anonymous.enabled",
            Some("true"),
            ValueSource::ConfigFile {
                path: "/etc/kubelet/config.yaml".into(),
            },
        )],
    );
    facts.kubelet.config_path = Some("/etc/kubelet/config.yaml".into());
    let r = result(B, "4.2.1", &facts);
    assert_eq!(r.status, Some(Status::Pass));
    assert_eq!(r.effective, Some(false));
    let d = r.disagreement.expect("disagreement");
    assert!(
        d.contains("kube-bench reads /var/lib/kubelet/config.yaml ($kubeletconf), but the kubelet's --config is /etc/kubelet/config.yaml"),
        "{d}"
    );
}

#[test]
fn files_kube_bench_cannot_read() {
    // $kubeletconf resolved to a systemd drop-in: not YAML, every path item fails, even
    // `set: false` ones.
    let mut facts = kubelet_node(&[], kubeadm_kubelet_yaml(), &[]);
    facts.kubelet.kube_bench_file = Some(ConfigDoc {
        path: "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf".into(),
        content: ConfigContent::Unparseable("yaml: line 1: did not find expected key".into()),
    });
    assert_eq!(result(B, "4.2.4", &facts).status, Some(Status::Warn));
    assert_eq!(result(B, "4.2.1", &facts).status, Some(Status::Fail));
    // ... but a flag on the command line is still read.
    let mut facts2 = kubelet_node(&["--anonymous-auth=false"], kubeadm_kubelet_yaml(), &[]);
    facts2.kubelet.kube_bench_file = facts.kubelet.kube_bench_file.clone();
    assert_eq!(result(B, "4.2.1", &facts2).status, Some(Status::Pass));
    // A directory: `cat` fails and so does the whole check.
    facts.kubelet.kube_bench_file = Some(ConfigDoc {
        path: "/var/lib/rancher/rke2/agent/etc/kubelet.conf.d".into(),
        content: ConfigContent::Unreadable("Is a directory".into()),
    });
    let r = result(B, "4.2.4", &facts);
    assert_eq!(r.status, Some(Status::Warn));
    assert!(
        r.reason.as_deref().unwrap_or("").contains("Is a directory"),
        "{r:?}"
    );
    // A missing file: only the command line is read.
    facts.kubelet.kube_bench_file = Some(ConfigDoc {
        path: "/var/lib/kubelet/config.yaml".into(),
        content: ConfigContent::Missing,
    });
    assert_eq!(result(B, "4.2.4", &facts).status, Some(Status::Pass));
    assert_eq!(result(B, "4.2.1", &facts).status, Some(Status::Fail));
    // The kubelet is not running: `ps -fC kubelet` fails.
    facts.processes.remove(&Component::Kubelet);
    let r = result(B, "4.2.4", &facts);
    assert_eq!(r.status, Some(Status::Warn));
    assert_eq!(r.kube_bench, Some(false));
    assert!(r.reason.as_deref().unwrap_or("").contains("not running"));
    // Not given at all: an error, not a guess.
    facts.kubelet.kube_bench_file = None;
    let bench = benchmark(B).expect("compiled in");
    assert!(evaluate_check(bench.check("4.2.1").expect("4.2.1"), &facts).is_err());
}

#[test]
fn json_numbers_and_lists() {
    let json = |entries: &[(&str, ConfigValue)]| {
        let mut facts = kubelet_node(&[], kubeadm_kubelet_yaml(), &[]);
        facts.kubelet.kube_bench_file = Some(ConfigDoc {
            path: "/var/lib/kubelet/config.yaml".into(),
            content: ConfigContent::Json(map(entries)),
        });
        facts
    };
    // encoding/json makes 2000000 a float64 that Go prints `2e+06`, which Atoi rejects.
    let facts = json(&[("eventRecordQPS", ConfigValue::Int(2_000_000))]);
    assert_eq!(result(B, "4.2.8", &facts).status, Some(Status::Warn));
    let facts = json(&[("eventRecordQPS", ConfigValue::Int(5))]);
    assert_eq!(result(B, "4.2.8", &facts).status, Some(Status::Pass));
    // A list rendered `A,B,`: valid_elements drops the last comma. cis-1.11 still allows the
    // RSA key-exchange suites, cis-1.12 does not.
    let list = ConfigValue::List(vec![
        s("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        s("TLS_RSA_WITH_AES_128_GCM_SHA256"),
    ]);
    let facts = json(&[("tlsCipherSuites", list)]);
    assert_eq!(result(B, "4.2.12", &facts).status, Some(Status::Warn));
    let old = {
        let mut f = node("cis-1.11", &kubeadm_disk(), kubeadm_processes());
        f.kubelet.kube_bench_file = facts.kubelet.kube_bench_file.clone();
        f
    };
    assert_eq!(
        result("cis-1.11", "4.2.12", &old).status,
        Some(Status::Pass)
    );
    let strong = ConfigValue::List(
        kharden_catalog::benchmarks::KUBELET_STRONG_CIPHERS
            .iter()
            .map(|c| s(c))
            .collect(),
    );
    let facts = json(&[("tlsCipherSuites", strong)]);
    assert_eq!(result(B, "4.2.12", &facts).status, Some(Status::Pass));
}

#[test]
fn kube_proxy_metrics() {
    let mut procs = kubeadm_processes();
    procs.push((
        Component::KubeProxy,
        argv(&[
            "--config=/var/lib/kube-proxy/config.conf",
            "--hostname-override=node-1",
        ]),
    ));
    let mut facts = node(B, &kubeadm_disk(), procs);
    facts.proxy.effective.insert(
        "metricsBindAddress".into(),
        EffectiveValue {
            value: Some("0.0.0.0:10249".into()),
            source: ValueSource::ConfigFile {
                path: "kube-system/kube-proxy ConfigMap".into(),
            },
        },
    );
    let r = result(B, "4.3.1", &facts);
    assert_eq!(r.status, Some(Status::Pass));
    assert_eq!(r.effective, Some(false));
    let d = r.disagreement.expect("disagreement");
    assert!(d.contains("kubeconfig"), "{d}");
    facts.proxy.effective.insert(
        "metricsBindAddress".into(),
        EffectiveValue {
            value: Some("127.0.0.1:10249".into()),
            source: ValueSource::Default,
        },
    );
    let r = result(B, "4.3.1", &facts);
    assert_eq!((r.status, r.effective), (Some(Status::Pass), Some(true)));
    // cis-1.8 has no 4.3.
    assert!(benchmark("cis-1.8")
        .expect("compiled in")
        .check("4.3.1")
        .is_none());
}

#[test]
fn unknown_effective_values_say_so() {
    let mut facts = kubelet_node(&[], kubeadm_kubelet_yaml(), &[]);
    facts.kubelet.effective.clear();
    let r = result(B, "4.2.1", &facts);
    assert_eq!(r.status, Some(Status::Pass));
    assert_eq!(r.effective, None);
    assert!(r.effective_note.is_some());
    let r = result(
        "cis-1.11",
        "4.2.15",
        &node("cis-1.11", &kubeadm_disk(), kubeadm_processes()),
    );
    assert_eq!(r.status, Some(Status::Warn));
    assert_eq!(r.effective, None);
    assert!(r.effective_note.unwrap_or_default().contains("systemd"));
}

#[test]
fn kubelet_fixes() {
    let bench = benchmark(B).expect("compiled in");
    let automated: Vec<&str> = bench
        .checks
        .iter()
        .filter(|c| c.id.starts_with("4.2.") || c.id.starts_with("4.3."))
        .filter(|c| matches!(c.fix, Fix::Kubelet(_)))
        .map(|c| c.id)
        .collect();
    assert_eq!(
        automated,
        ["4.2.1", "4.2.2", "4.2.4", "4.2.5", "4.2.6", "4.2.8", "4.2.12"]
    );
    let fix = bench
        .check("4.2.1")
        .and_then(|c| c.kubelet_fix())
        .expect("automated");
    assert_eq!(fix.settings[0].key, "authentication.anonymous.enabled");
    assert_eq!(fix.settings[0].value, KubeletValue::Bool(false));
    assert_eq!(fix.settings[0].flag, "--anonymous-auth");
    assert_eq!(fix.settings[0].flag_value(), "false");
    // Each fix makes its check pass under kube-bench's reading of the file and the kubelet's.
    for c in bench.checks.iter().filter(|c| c.kubelet_fix().is_some()) {
        let f = c.kubelet_fix().expect("automated");
        let mut yaml = kubeadm_kubelet_yaml();
        let mut eff: Vec<(&str, Option<String>)> = Vec::new();
        for st in &f.settings {
            let v = match st.value {
                KubeletValue::Bool(b) => ConfigValue::Bool(b),
                KubeletValue::Int(i) => ConfigValue::Int(i),
                KubeletValue::Str(x) => s(x),
                KubeletValue::List(l) => ConfigValue::List(l.iter().map(|x| s(x)).collect()),
            };
            let keys: Vec<&str> = st.key.split('.').collect();
            yaml = set_path(yaml, &keys, v);
            eff.push((st.key, Some(st.flag_value())));
        }
        let effective: Vec<(&str, Option<&str>, ValueSource)> = eff
            .iter()
            .map(|(k, v)| {
                (
                    *k,
                    v.as_deref(),
                    ValueSource::ConfigFile {
                        path: "/var/lib/kubelet/config.yaml".into(),
                    },
                )
            })
            .collect();
        let facts = kubelet_node(&[], yaml, &effective);
        let r = result(B, c.id, &facts);
        assert_eq!(r.status, Some(Status::Pass), "{}: {r:?}", c.id);
        assert_eq!(r.effective, Some(true), "{}: {r:?}", c.id);
    }
}

fn set_path(v: ConfigValue, keys: &[&str], value: ConfigValue) -> ConfigValue {
    let Some((first, rest)) = keys.split_first() else {
        return value;
    };
    let mut entries = match v {
        ConfigValue::Map(e) => e,
        _ => Vec::new(),
    };
    let old = entries
        .iter()
        .position(|(k, _)| k == first)
        .map(|i| entries.remove(i).1)
        .unwrap_or(ConfigValue::Map(Vec::new()));
    entries.push((first.to_string(), set_path(old, rest, value)));
    ConfigValue::Map(entries)
}
