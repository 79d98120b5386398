//! The kubelet's effective configuration on realistic sources: kubeadm's config.yaml, drop-ins,
//! and flags from kubeadm-flags.env and /etc/default/kubelet.

// Test code: a panic is how it fails, and it reads and writes its fixtures directly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

mod common;

use common::fixture;
use kharden_kubelet_config::{
    effective, env_flags, ConfigSource, Effective, ErrorKind, GoDuration, Note, Source, Sources,
    Value,
};
use kharden_manifest::Flags;

fn flags(words: &[&str]) -> Flags {
    Flags::parse(&words.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

fn eff(config: Option<&[u8]>, dropins: &[(&str, &[u8])], flags: &Flags) -> Effective {
    let src = Sources {
        config: config.map(|b| ConfigSource {
            name: "/var/lib/kubelet/config.yaml",
            bytes: b,
        }),
        dropins: dropins
            .iter()
            .map(|(n, b)| ConfigSource { name: n, bytes: b })
            .collect(),
        flags,
    };
    effective(&src).unwrap()
}

fn val(e: &Effective, k: &str) -> (Value, Source) {
    let s = e.get(k).unwrap_or_else(|| panic!("{k}"));
    (s.value.clone(), s.source.clone())
}

#[test]
fn kubeadm_file_alone() {
    let cfg = fixture("kubeadm-config.yaml");
    let e = eff(Some(&cfg), &[], &Flags::default());
    assert!(e.with_config);
    assert_eq!(
        val(&e, "authentication.anonymous.enabled"),
        (Value::Bool(false), Source::ConfigFile)
    );
    assert_eq!(val(&e, "--anonymous-auth").0, Value::Bool(false));
    assert_eq!(
        val(&e, "authorization.mode"),
        (Value::Str("Webhook".into()), Source::ConfigFile)
    );
    assert_eq!(val(&e, "readOnlyPort"), (Value::Int(0), Source::Default));
    assert_eq!(val(&e, "eventRecordQPS"), (Value::Int(50), Source::Default));
    assert_eq!(
        val(&e, "rotateCertificates"),
        (Value::Bool(true), Source::ConfigFile)
    );
    assert_eq!(
        val(&e, "makeIPTablesUtilChains"),
        (Value::Bool(true), Source::Default)
    );
    assert_eq!(
        val(&e, "healthzBindAddress").0,
        Value::Str("127.0.0.1".into())
    );
    assert_eq!(
        val(&e, "healthzPort"),
        (Value::Int(10248), Source::ConfigFile)
    );
    assert_eq!(val(&e, "podPidsLimit"), (Value::Int(-1), Source::Default));
    assert_eq!(
        val(&e, "featureGates.RotateKubeletServerCertificate"),
        (Value::Bool(true), Source::Default)
    );
    assert_eq!(
        val(&e, "hostname-override"),
        (Value::Str(String::new()), Source::Default)
    );
    // kubeadm writes `streamingConnectionIdleTimeout: 0s`; the kubelet's defaulting makes it 4h.
    let s = e.get("streamingConnectionIdleTimeout").unwrap();
    assert_eq!(s.value.to_string(), "4h0m0s");
    assert_eq!(s.source, Source::Default);
    assert!(s.disputed());
    assert!(matches!(&s.notes[0], Note::ZeroReplaced { written, .. } if written == "0s"));
    assert_eq!(s.layers.len(), 1);
    assert_eq!(s.layers[0].line, Some(46));
    assert!(
        s.notes[0].to_string().contains("replaces"),
        "{}",
        s.notes[0]
    );
    let s = e.get("readOnlyPort").unwrap();
    assert!(matches!(s.notes[..], [Note::Defaulted { .. }]));
}

#[test]
fn dropins_and_flags_in_the_kubelets_order() {
    let cfg = fixture("kubeadm-config.yaml");
    let d10 = fixture("dropin-10-hardening.conf");
    let d20 = fixture("dropin-20-override.conf");
    let kubeadm = fixture("env/kubeadm-flags.env");
    let extra = fixture("env/default-kubelet");
    let sys = fixture("env/sysconfig-kubelet");
    // ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
    let mut words: Vec<String> = vec![
        "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf".into(),
        "--kubeconfig=/etc/kubernetes/kubelet.conf".into(),
        "--config=/var/lib/kubelet/config.yaml".into(),
        "--config-dir=/etc/kubernetes/kubelet.conf.d".into(),
    ];
    for (bytes, var) in [
        (&kubeadm, "KUBELET_KUBEADM_ARGS"),
        (&extra, "KUBELET_EXTRA_ARGS"),
        (&sys, "KUBELET_EXTRA_ARGS"),
    ] {
        let f = env_flags(bytes, &[var]).unwrap();
        words.extend(f.iter().map(|i| match i.value.as_str() {
            Some(v) => format!("{}={v}", i.written),
            None => i.written.clone(),
        }));
    }
    let fl = Flags::parse(&words);
    // Given out of order, with a file the kubelet does not read.
    let e = eff(
        Some(&cfg),
        &[
            ("20-override.conf", &d20),
            ("README", b"x"),
            ("10-hardening.conf", &d10),
        ],
        &fl,
    );
    assert_eq!(e.dropins, ["10-hardening.conf", "20-override.conf"]);
    assert_eq!(e.ignored, ["README"]);
    // readOnlyPort: default 0, drop-in 10 says 0, drop-in 20's null changes nothing, the flag
    // in /etc/default/kubelet says 10255 and wins.
    let s = e.get("readOnlyPort").unwrap();
    assert_eq!(
        (s.value.clone(), s.source.clone()),
        (Value::Int(10255), Source::Flag)
    );
    assert_eq!(s.layers.len(), 2);
    assert!(s.notes.iter().any(|n| matches!(
        n,
        Note::Overridden {
            by: Source::Flag,
            ..
        }
    )));
    // anonymous auth: file false, drop-in 20 true, flag true.
    let s = e.get("authentication.anonymous.enabled").unwrap();
    assert_eq!(
        (s.value.clone(), s.source.clone()),
        (Value::Bool(true), Source::Flag)
    );
    assert_eq!(s.layers.len(), 3);
    assert!(matches!(
        &s.notes[..],
        [Note::Overridden {
            by: Source::DropIn { index: 1, .. },
            source: Source::ConfigFile,
            value: Value::Bool(false)
        }]
    ));
    // A drop-in is not defaulted: its 0s stays 0.
    assert_eq!(
        val(&e, "streamingConnectionIdleTimeout"),
        (
            Value::Duration(GoDuration(0)),
            Source::DropIn {
                index: 0,
                name: "10-hardening.conf".into()
            }
        )
    );
    // Lists are replaced whole.
    assert_eq!(
        val(&e, "tlsCipherSuites").0,
        Value::List(vec![
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(),
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()
        ])
    );
    // The feature gate: drop-in true, then the flag in /etc/sysconfig/kubelet says false.
    let s = e
        .get("featureGates.RotateKubeletServerCertificate")
        .unwrap();
    assert_eq!(
        (s.value.clone(), s.source.clone()),
        (Value::Bool(false), Source::Flag)
    );
    assert_eq!(
        val(&e, "container-runtime-endpoint").0,
        Value::Str("unix:///var/run/containerd/containerd.sock".into())
    );
    assert_eq!(
        val(&e, "kubeconfig"),
        (
            Value::Str("/etc/kubernetes/kubelet.conf".into()),
            Source::Flag
        )
    );
    // Printable explanations.
    for s in &e.settings {
        for n in &s.notes {
            assert!(!n.to_string().is_empty());
        }
    }
}

#[test]
fn without_config_the_legacy_defaults_apply() {
    let e = eff(
        None,
        &[],
        &flags(&["--kubeconfig=/etc/kubernetes/kubelet.conf"]),
    );
    assert!(!e.with_config);
    assert_eq!(
        val(&e, "authentication.anonymous.enabled"),
        (Value::Bool(true), Source::FlagDefault)
    );
    assert_eq!(
        val(&e, "authorization.mode").0,
        Value::Str("AlwaysAllow".into())
    );
    assert_eq!(val(&e, "readOnlyPort").0, Value::Int(10255));
    assert_eq!(
        val(&e, "authentication.webhook.enabled").0,
        Value::Bool(false)
    );
    assert_eq!(
        val(&e, "streamingConnectionIdleTimeout").0.to_string(),
        "4h0m0s"
    );
    let s = e.get("readOnlyPort").unwrap();
    assert!(s.notes.iter().any(|n| matches!(
        n,
        Note::LegacyDefault {
            config_default: Value::Int(0)
        }
    )));
    // Drop-ins over the command-line defaults; flags still win.
    let d20 = fixture("dropin-20-override.conf");
    let d10 = fixture("dropin-10-hardening.conf");
    let e = eff(
        None,
        &[("a.conf", &d10), ("b.conf", &d20)],
        &flags(&["--streaming-connection-idle-timeout=5m"]),
    );
    assert_eq!(val(&e, "readOnlyPort").0, Value::Int(0));
    assert_eq!(
        val(&e, "streamingConnectionIdleTimeout").0.to_string(),
        "5m0s"
    );
}

#[test]
fn flag_parsing_follows_pflag() {
    let cfg = fixture("kubeadm-config.yaml");
    let e = eff(
        Some(&cfg),
        &[],
        &flags(&[
            "--tls-cipher-suites=A,B",
            "--tls-cipher-suites=C",
            "--feature-gates=RotateKubeletServerCertificate=false,Other=true",
            "--feature-gates=Other=false",
            "--read-only-port=0x0",
            "--rotate-certificates",
            "--event_qps=0",
        ]),
    );
    assert_eq!(
        val(&e, "tlsCipherSuites").0,
        Value::List(vec!["A".into(), "B".into(), "C".into()])
    );
    assert!(e
        .get("tlsCipherSuites")
        .unwrap()
        .notes
        .contains(&Note::Accumulated { occurrences: 2 }));
    assert_eq!(
        val(&e, "featureGates.RotateKubeletServerCertificate").0,
        Value::Bool(false)
    );
    assert_eq!(val(&e, "readOnlyPort"), (Value::Int(0), Source::Flag));
    assert_eq!(
        val(&e, "rotateCertificates"),
        (Value::Bool(true), Source::Flag)
    );
    assert_eq!(val(&e, "eventRecordQPS"), (Value::Int(0), Source::Flag));
}

#[test]
fn what_the_kubelet_would_refuse_is_an_error() {
    let cfg = fixture("kubeadm-config.yaml");
    let run = |config: Option<&[u8]>, dropins: &[(&str, &[u8])], f: &Flags| {
        let src = Sources {
            config: config.map(|b| ConfigSource {
                name: "config.yaml",
                bytes: b,
            }),
            dropins: dropins
                .iter()
                .map(|(n, b)| ConfigSource { name: n, bytes: b })
                .collect(),
            flags: f,
        };
        effective(&src).unwrap_err()
    };
    let none = Flags::default();
    let e = run(Some(&cfg), &[], &flags(&["--anonymous-auth", "false"]));
    assert_eq!(e.kind, ErrorKind::KubeletWouldFail);
    assert!(e.reason.contains("refuses the extra argument"), "{e}");
    let e = run(Some(&cfg), &[], &flags(&["--read-only-port=abc"]));
    assert_eq!(e.kind, ErrorKind::KubeletWouldFail);
    let e = run(
        Some(b"kind: KubeletConfiguration\nreadOnlyPort: \"0\"\n"),
        &[],
        &none,
    );
    assert_eq!((e.kind, e.line), (ErrorKind::KubeletWouldFail, Some(2)));
    assert!(
        e.reason
            .starts_with("config.yaml: `readOnlyPort` is a string"),
        "{e}"
    );
    let e = run(
        Some(b"kind: KubeletConfiguration\nstreamingConnectionIdleTimeout: 0\n"),
        &[],
        &none,
    );
    assert!(e.reason.contains("duration"), "{e}");
    let e = run(Some(&cfg), &[("10-empty.conf", b"\n")], &none);
    assert!(e.reason.contains("empty"), "{e}");
    let e = run(
        Some(&cfg),
        &[("10-nokind.conf", b"readOnlyPort: 0\n")],
        &none,
    );
    assert!(e.reason.contains("`apiVersion`"), "{e}");
    let e = run(Some(&fixture("refuse/anchors.yaml")), &[], &none);
    assert_eq!(e.kind, ErrorKind::KubeletWouldFail);
    let e = run(
        Some(b"kind: KubeletConfiguration\nauthentication: webhook\n"),
        &[],
        &none,
    );
    assert_eq!(e.line, Some(2));
}

#[test]
fn yaml11_values_relative_paths_and_nulls() {
    let cfg = b"kind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\nauthentication:\n  anonymous:\n    enabled: yes\n  x509:\n    clientCAFile: pki/../pki/ca.crt\nauthorization:\nreadOnlyPort: 010\npodPidsLimit: -5\neventRecordQPS: ~\n";
    let e = eff(Some(cfg), &[], &Flags::default());
    assert_eq!(
        val(&e, "authentication.anonymous.enabled"),
        (Value::Bool(true), Source::ConfigFile)
    );
    assert_eq!(
        val(&e, "authentication.x509.clientCAFile").0,
        Value::Str("/var/lib/kubelet/pki/ca.crt".into())
    );
    assert_eq!(
        val(&e, "authorization.mode"),
        (Value::Str("Webhook".into()), Source::Default)
    );
    assert_eq!(val(&e, "readOnlyPort").0, Value::Int(8));
    assert_eq!(val(&e, "podPidsLimit").0, Value::Int(-1));
    assert!(e
        .get("podPidsLimit")
        .unwrap()
        .notes
        .iter()
        .any(|n| matches!(n, Note::NegativeReplaced { .. })));
    assert_eq!(val(&e, "eventRecordQPS"), (Value::Int(50), Source::Default));
}

#[test]
fn a_change_holds_in_a_file_as_the_kubelet_reads_it() {
    use kharden_kubelet_config::{ConfigChange, ConfigDoc};
    let doc = ConfigDoc::parse(
        b"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
          authentication:\n  anonymous:\n    enabled: false\nreadOnlyPort: 0\n\
          streamingConnectionIdleTimeout: 4h\nprotectKernelDefaults: \"true\"\n\
          tlsCipherSuites: [A, B]\nfeatureGates:\n  RotateKubeletServerCertificate: yes\n\
          eventRecordQPS: ~\n",
    )
    .unwrap();
    let holds = |arg: &str| ConfigChange::parse_set(arg).unwrap().holds_in(&doc);
    assert!(holds("authentication.anonymous.enabled=false"));
    assert!(!holds("authentication.anonymous.enabled=true"));
    assert!(holds("readOnlyPort=0"));
    assert!(!holds("readOnlyPort=10255"));
    // A duration is compared as one.
    assert!(holds("streamingConnectionIdleTimeout=4h0m0s"));
    assert!(!holds("streamingConnectionIdleTimeout=5m"));
    // A quoted "true" is a string: the kubelet's decoder refuses it for a boolean.
    assert!(!holds("protectKernelDefaults=true"));
    // YAML 1.1: `yes` is a boolean.
    assert!(holds("featureGates.RotateKubeletServerCertificate=true"));
    assert!(holds("tlsCipherSuites=A,B"));
    assert!(!holds("tlsCipherSuites=B,A"));
    assert!(!holds("tlsCipherSuites=A"));
    // Absent, and null, hold nothing set and every unset.
    assert!(!holds("makeIPTablesUtilChains=true"));
    assert!(!holds("eventRecordQPS=5"));
    let unset = |k: &str| ConfigChange::parse_unset(k).unwrap().holds_in(&doc);
    assert!(unset("eventRecordQPS"));
    assert!(unset("makeIPTablesUtilChains"));
    assert!(!unset("readOnlyPort"));
}
