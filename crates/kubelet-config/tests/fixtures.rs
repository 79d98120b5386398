//! Realistic files: kubeadm's `/var/lib/kubelet/config.yaml`, a hand-written file (comments,
//! 4-space indentation, flow lists, quotes), a CRLF file with a byte-order mark, pretty and
//! compact JSON; the CIS 4.2 hardening edits on each, snapshotted; and the refusals.

// Test code: a panic is how it fails, and it reads and writes its fixtures directly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

mod common;

use common::{checked, env_checked, fixture, list, set, unset};
use kharden_kubelet_config::{
    edit_config, ConfigChange, ConfigDoc, ErrorKind, FlagChange, Format, Scalar,
};

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// The benchmark's safe kubelet settings, as `kharden harden` would ask for them.
fn harden() -> Vec<ConfigChange> {
    vec![
        set("authentication.anonymous.enabled", Scalar::Bool(false)),
        set("authentication.webhook.enabled", Scalar::Bool(true)),
        set("authorization.mode", Scalar::Str("Webhook".into())),
        set("readOnlyPort", Scalar::Int(0)),
        set(
            "streamingConnectionIdleTimeout",
            Scalar::Str("4h0m0s".into()),
        ),
        set("makeIPTablesUtilChains", Scalar::Bool(true)),
        set("eventRecordQPS", Scalar::Int(5)),
        set("rotateCertificates", Scalar::Bool(true)),
        set(
            "featureGates.RotateKubeletServerCertificate",
            Scalar::Bool(true),
        ),
        set("protectKernelDefaults", Scalar::Bool(true)),
        set("podPidsLimit", Scalar::Int(4096)),
        list(
            "tlsCipherSuites",
            &[
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            ],
        ),
    ]
}

#[test]
fn kubeadm_config_harden() {
    let input = fixture("kubeadm-config.yaml");
    let e = checked(&input, &harden()).unwrap();
    assert_eq!(e.format, Format::Yaml);
    insta::assert_snapshot!(text(&e.output));
}

#[test]
fn kubeadm_config_unset_and_emptied_mapping() {
    let input = fixture("kubeadm-config.yaml");
    let e = checked(
        &input,
        &[
            unset("authentication.x509.clientCAFile"),
            unset("logging"),
            unset("clusterDNS"),
            unset("nonexistent.key"),
        ],
    )
    .unwrap();
    let out = text(&e.output);
    assert!(out.contains("  x509: {}\n"), "{out}");
    assert!(!out.contains("logging") && !out.contains("10.96.0.10"));
    assert!(out.contains("cgroupDriver: systemd\nclusterDomain: cluster.local\n"));
}

#[test]
fn kubeadm_config_noop_is_byte_identical() {
    let input = fixture("kubeadm-config.yaml");
    let e = checked(
        &input,
        &[
            set("authentication.anonymous.enabled", Scalar::Bool(false)),
            set("authorization.mode", Scalar::Str("Webhook".into())),
            set("healthzPort", Scalar::Int(10248)),
            list("clusterDNS", &["10.96.0.10"]),
            unset("readOnlyPort"),
        ],
    )
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&e.output),
        String::from_utf8_lossy(&input)
    );
    assert!(e.unchanged());
}

#[test]
fn hand_written_harden() {
    let input = fixture("hand-written.yaml");
    let mut changes = harden();
    changes.push(set(
        "evictionHard[memory.available]",
        Scalar::Str("100Mi".into()),
    ));
    changes.push(set(
        "authentication.x509.clientCAFile",
        Scalar::Str("/etc/kubernetes/pki/kubelet-ca.crt".into()),
    ));
    changes.push(set("address", Scalar::Str("10.0.3.17".into())));
    let e = checked(&input, &changes).unwrap();
    let out = text(&e.output);
    assert!(out.contains("readOnlyPort: 0   # TODO: close this once the old metrics agent is gone"));
    assert!(
        out.contains("    webhook:\n        enabled: true\n"),
        "{out}"
    );
    assert!(out.contains("clientCAFile: '/etc/kubernetes/pki/kubelet-ca.crt'"));
    assert!(out.contains("memory.available: \"100Mi\""));
    assert!(out.contains("address: \"10.0.3.17\""));
    insta::assert_snapshot!(out);
}

#[test]
fn hand_written_shrinking_flow_list_and_feature_gate_map() {
    let input = fixture("hand-written.yaml");
    let e = checked(
        &input,
        &[
            list(
                "tlsCipherSuites",
                &["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
            ),
            set(
                "featureGates.RotateKubeletServerCertificate",
                Scalar::Bool(true),
            ),
        ],
    )
    .unwrap();
    let out = text(&e.output);
    assert!(out.contains("tlsCipherSuites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n"));
    assert!(out.contains(
        "featureGates: {GracefulNodeShutdown: true, RotateKubeletServerCertificate: true}"
    ));
    let e = checked(&input, &[list("tlsCipherSuites", &[])]).unwrap();
    assert!(text(&e.output).contains("tlsCipherSuites: []\n"));
}

#[test]
fn crlf_bom_keeps_line_endings() {
    let input = fixture("crlf-bom.yaml");
    let e = checked(
        &input,
        &[
            set("authentication.anonymous.enabled", Scalar::Bool(false)),
            list("clusterDNS", &["10.96.0.10", "fd00::a", "10.96.0.11"]),
            set("eventRecordQPS", Scalar::Int(5)),
            set("readOnlyPort", Scalar::Int(0)),
            set("authorization.mode", Scalar::Str("Webhook".into())),
        ],
    )
    .unwrap();
    let out = text(&e.output);
    assert!(out.starts_with('\u{feff}'));
    assert!(!out.replace("\r\n", "").contains('\n'), "{out:?}");
    insta::assert_snapshot!(out.replace('\r', "<CR>").replace('\u{feff}', "<BOM>"));
}

#[test]
fn pretty_json_stays_pretty_json() {
    let input = fixture("pretty.json");
    let e = checked(
        &input,
        &[
            set("authentication.anonymous.enabled", Scalar::Bool(false)),
            set(
                "authentication.x509.clientCAFile",
                Scalar::Str("/etc/kubernetes/pki/ca.crt".into()),
            ),
            set("authorization.mode", Scalar::Str("Webhook".into())),
            set("readOnlyPort", Scalar::Int(0)),
            list(
                "tlsCipherSuites",
                &["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
            ),
            unset("authentication.webhook"),
            list("clusterDNS", &["10.96.0.10", "10.96.0.11"]),
        ],
    )
    .unwrap();
    assert_eq!(e.format, Format::Json);
    insta::assert_snapshot!(text(&e.output));
}

#[test]
fn compact_json_stays_compact() {
    let input = fixture("compact.json");
    let e = checked(
        &input,
        &[
            set("authentication.anonymous.enabled", Scalar::Bool(false)),
            set("readOnlyPort", Scalar::Int(0)),
            set(
                "featureGates.RotateKubeletServerCertificate",
                Scalar::Bool(true),
            ),
            list(
                "tlsCipherSuites",
                &["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"],
            ),
        ],
    )
    .unwrap();
    assert_eq!(
        text(&e.output),
        r#"{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"KubeletConfiguration","authentication":{"anonymous":{"enabled":false}},"tlsCipherSuites":["TLS_AES_128_GCM_SHA256","TLS_AES_256_GCM_SHA384"],"readOnlyPort":0,"featureGates":{"RotateKubeletServerCertificate":true}}"#
    );
}

#[test]
fn yaml11_quoting_of_strings() {
    let input = b"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nauthorization:\n  mode: Webhook\n";
    for (v, want) in [
        ("on", "mode: \"on\"\n"),
        ("0", "mode: \"0\"\n"),
        ("010", "mode: \"010\"\n"),
        ("2001-12-14", "mode: \"2001-12-14\"\n"),
        ("a: b", "mode: \"a: b\"\n"),
        ("AlwaysAllow", "mode: AlwaysAllow\n"),
        ("quote\"d", "mode: quote\"d\n"),
    ] {
        let e = checked(input, &[set("authorization.mode", Scalar::Str(v.into()))]).unwrap();
        assert!(text(&e.output).ends_with(want), "{v}: {}", text(&e.output));
    }
    // Typed values replace a quoted string plainly.
    let input = b"kind: KubeletConfiguration\nreadOnlyPort: \"10255\"\n";
    let e = checked(input, &[set("readOnlyPort", Scalar::Int(0))]).unwrap();
    assert_eq!(
        text(&e.output),
        "kind: KubeletConfiguration\nreadOnlyPort: 0\n"
    );
    // A YAML 1.1 boolean spelled `yes` is rewritten to `true` (both readers agree then).
    let input = b"kind: KubeletConfiguration\nrotateCertificates: yes\n";
    let e = checked(input, &[set("rotateCertificates", Scalar::Bool(true))]).unwrap();
    assert_eq!(
        text(&e.output),
        "kind: KubeletConfiguration\nrotateCertificates: true\n"
    );
}

#[test]
fn empty_values_final_newlines_and_unsorted_files() {
    let input = b"kind: KubeletConfiguration\nreadOnlyPort:\nport: 10250";
    let e = checked(
        input,
        &[
            set("readOnlyPort", Scalar::Int(0)),
            set("eventRecordQPS", Scalar::Int(5)),
        ],
    )
    .unwrap();
    assert_eq!(
        text(&e.output),
        "kind: KubeletConfiguration\nreadOnlyPort: 0\nport: 10250\neventRecordQPS: 5"
    );
    let e = checked(input, &[unset("port")]).unwrap();
    assert_eq!(text(&e.output), "kind: KubeletConfiguration\nreadOnlyPort:");
    // A new nested path in a file with no nested mapping: two-space indentation.
    let e = checked(
        input,
        &[set("authentication.anonymous.enabled", Scalar::Bool(false))],
    )
    .unwrap();
    assert_eq!(
        text(&e.output),
        "kind: KubeletConfiguration\nreadOnlyPort:\nport: 10250\nauthentication:\n  anonymous:\n    enabled: false"
    );
}

#[test]
fn cli_parsing_is_typed_by_the_schema() {
    let p = |s: &str| ConfigChange::parse_set(s);
    assert_eq!(
        p("readOnlyPort=0").unwrap(),
        set("readOnlyPort", Scalar::Int(0))
    );
    assert_eq!(
        p("read-only-port=0x0").unwrap(),
        set("readOnlyPort", Scalar::Int(0))
    );
    assert_eq!(
        p("anonymous-auth=false").unwrap(),
        set("authentication.anonymous.enabled", Scalar::Bool(false))
    );
    assert_eq!(
        p("streamingConnectionIdleTimeout=5m").unwrap(),
        set("streamingConnectionIdleTimeout", Scalar::Str("5m".into()))
    );
    assert_eq!(
        p("featureGates.RotateKubeletServerCertificate=true").unwrap(),
        set(
            "featureGates.RotateKubeletServerCertificate",
            Scalar::Bool(true)
        )
    );
    assert_eq!(
        p("tlsCipherSuites=A,B").unwrap(),
        list("tlsCipherSuites", &["A", "B"])
    );
    for bad in [
        "readOnlyPort=abc",
        "readOnlyPort=99999999999",
        "streamingConnectionIdleTimeout=5",
        "authentication.anonymous.enabled=yes",
        "hostname-override=node1",
        "readOnlyport=0",
        "readOnlyPort",
        "authorization.mode=a\nb",
    ] {
        let e = p(bad).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Value, "{bad}: {e}");
    }
    assert_eq!(
        ConfigChange::parse_unset("readOnlyPort").unwrap(),
        unset("readOnlyPort")
    );
}

#[test]
fn refusals_name_the_line_and_the_reason() {
    let change = [set("authentication.anonymous.enabled", Scalar::Bool(false))];
    for (file, kind, line) in [
        ("refuse/anchors.yaml", ErrorKind::Unsupported, 6),
        ("refuse/merge-key.yaml", ErrorKind::Unsupported, 6),
        ("refuse/duplicate-key.yaml", ErrorKind::Unsupported, 6),
        ("refuse/two-documents.yaml", ErrorKind::Unsupported, 5),
        ("refuse/tagged.yaml", ErrorKind::Unsupported, 3),
        ("refuse/wrong-kind.yaml", ErrorKind::Type, 1),
        ("refuse/scalar-authentication.yaml", ErrorKind::Type, 3),
    ] {
        let e = edit_config(&fixture(file), &change).unwrap_err();
        assert_eq!((e.kind, e.line), (kind, Some(line)), "{file}: {e}");
        assert!(e.to_string().starts_with(&format!("line {line}: ")), "{e}");
        // The reader refuses the same files.
        if kind != ErrorKind::Type || file.contains("kind") {
            assert!(ConfigDoc::parse(&fixture(file))
                .and_then(|d| d.get(change[0].path()))
                .is_err());
        }
    }
    let bad = [
        (b"\xff\xfe".to_vec(), ErrorKind::Syntax),
        (b"a: [".to_vec(), ErrorKind::Syntax),
        (b"".to_vec(), ErrorKind::Type),
        (b"- a\n".to_vec(), ErrorKind::Type),
        (
            b"kind: KubeletConfiguration\r".to_vec(),
            ErrorKind::Unsupported,
        ),
        (vec![b' '; 300 * 1024], ErrorKind::TooLarge),
    ];
    for (input, kind) in bad {
        assert_eq!(edit_config(&input, &change).unwrap_err().kind, kind);
    }
    let input = b"kind: KubeletConfiguration\nauthorization:\n  mode: |\n    Webhook\n";
    let e = edit_config(
        input,
        &[set("authorization.mode", Scalar::Str("Webhook".into()))],
    )
    .unwrap_err();
    assert_eq!((e.kind, e.line), (ErrorKind::Unsupported, Some(3)));
    let e = edit_config(input, &[list("authorization", &["x"])]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Type);
    let e = edit_config(input, &[set("authorization", Scalar::Bool(true))]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Type);
    let e = edit_config(input, &[set("x", Scalar::Str("a\u{7}".into()))]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Value);
    // Found by fuzzing: `apiVersion` and `kind` are not settings.
    for p in ["apiVersion", "kind"] {
        let e = edit_config(input, &[list(p, &[])]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Value);
    }
}

#[test]
fn env_files_harden() {
    let kubeadm = fixture("env/kubeadm-flags.env");
    let e = env_checked(
        &kubeadm,
        &["KUBELET_KUBEADM_ARGS"],
        &[FlagChange::Set {
            name: "rotate-certificates".into(),
            value: "true".into(),
            append_to: None,
        }],
    )
    .unwrap();
    assert_eq!(
        text(&e.output),
        "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.9 --rotate-certificates=true\"\n"
    );
    let default = fixture("env/default-kubelet");
    let e = env_checked(
        &default,
        &["KUBELET_EXTRA_ARGS"],
        &[
            FlagChange::Set {
                name: "read-only-port".into(),
                value: "0".into(),
                append_to: None,
            },
            FlagChange::Unset {
                name: "anonymous-auth".into(),
            },
        ],
    )
    .unwrap();
    assert_eq!(
        text(&e.output),
        "# Managed by the node image. Extra arguments for the kubelet.\nKUBELET_EXTRA_ARGS=--node-ip=10.0.3.17 --read-only-port=0\n"
    );
    let sys = fixture("env/sysconfig-kubelet");
    let e = env_checked(
        &sys,
        &["KUBELET_EXTRA_ARGS"],
        &[FlagChange::Set {
            name: "feature-gates".into(),
            value: "RotateKubeletServerCertificate=true".into(),
            append_to: None,
        }],
    )
    .unwrap();
    assert_eq!(
        text(&e.output),
        "# /etc/sysconfig/kubelet\nKUBELET_EXTRA_ARGS='--node-labels=node.kubernetes.io/pool=gpu,tier=batch --feature-gates=RotateKubeletServerCertificate=true'\n"
    );
    assert_eq!(e.replaced.len(), 1);
}

/// Found by fuzzing (`kubelet_config_edit`): a new key that sorts before every key of a sorted
/// file goes first, and a second insertion after it keeps the bytes between them (the property
/// helper used to misread a leading pure insertion).
#[test]
fn new_first_key_in_a_sorted_file() {
    let input = b"authorization: {}\nkind: KubeletConfiguration\nreadOnlyPort: 0\nzeta: 1\n";
    let e = checked(
        input,
        &[
            list("tlsCipherSuites", &["TLS_AES_128_GCM_SHA256"]),
            list("anonymous", &[]),
        ],
    )
    .unwrap();
    assert_eq!(
        text(&e.output),
        "anonymous: []\nauthorization: {}\nkind: KubeletConfiguration\nreadOnlyPort: 0\ntlsCipherSuites:\n  - TLS_AES_128_GCM_SHA256\nzeta: 1\n"
    );
    assert_eq!(e.replaced, vec![0..0, 61..61]);
}

/// Found by fuzzing: in a YAML flow mapping written with JSON's `"key":value` (no blank after the
/// colon), a new *plain* key still needs `: ` (`x:"on"` would be one plain scalar).
#[test]
fn flow_mapping_with_json_separators_and_plain_keys() {
    let input = b"{\"apiVersion\":\"kubelet.config.k8s.io/v1beta1\", kind: KubeletConfiguration,\n  \"readOnlyPort\": 10255\n}\n";
    let e = checked(
        input,
        &[
            set("authorization.mode", Scalar::Str("on".into())),
            set("x", Scalar::Str("on".into())),
        ],
    )
    .unwrap();
    assert_eq!(
        text(&e.output),
        // The keys are sorted: `authorization` goes after `apiVersion`.
        "{\"apiVersion\":\"kubelet.config.k8s.io/v1beta1\",\n  authorization: {\n    mode: \"on\"\n  }, kind: KubeletConfiguration,\n  \"readOnlyPort\": 10255,\n  x: \"on\"\n}\n"
    );
}

/// Found by fuzzing: a tagged block mapping (`!!map`) was taken for a flow mapping, so a key
/// inserted after it landed inside the next mapping.
#[test]
fn insertion_after_a_tagged_block_mapping() {
    let input = b"apiVersion: kubelet.config.k8s.io/v1beta1\nauthentication: !!map\n  anonymous:\n    enabled: true\nevictionHard:\n  memory.available: 100Mi\n";
    let e = checked(input, &[set("cgroupDriver", Scalar::Str("systemd".into()))]).unwrap();
    assert_eq!(
        text(&e.output),
        "apiVersion: kubelet.config.k8s.io/v1beta1\nauthentication: !!map\n  anonymous:\n    enabled: true\ncgroupDriver: systemd\nevictionHard:\n  memory.available: 100Mi\n"
    );
}

/// Found by fuzzing: an implicit null in a flow mapping (`{a: 1, b}`) has no text; saphyr gives
/// it the span of the token after it.
#[test]
fn flow_mapping_with_an_implicit_null_entry() {
    let input = b"{\n  \"kind\": \"KubeletConfiguration\",\n  \"b\": 1,\n  healthz\n}\n";
    let e = checked(input, &[set("readOnlyPort", Scalar::Int(0))]).unwrap();
    assert_eq!(
        text(&e.output),
        "{\n  \"kind\": \"KubeletConfiguration\",\n  \"b\": 1,\n  healthz,\n  readOnlyPort: 0\n}\n"
    );
    let e = checked(input, &[unset("healthz")]).unwrap();
    assert_eq!(
        text(&e.output),
        "{\n  \"kind\": \"KubeletConfiguration\",\n  \"b\": 1\n}\n"
    );
}

/// Found by fuzzing: a tagged empty value (`"readOnlyPort":!10255` is the tag `!10255` on an
/// empty scalar) ends where its tag ends.
#[test]
fn tagged_empty_value_in_a_flow_mapping() {
    let input = b"{\n  \"kind\": \"KubeletConfiguration\",\n  \"readOnlyPort\":!10255\n}\n";
    let e = checked(
        input,
        &[set("tlsMinVersion", Scalar::Str("VersionTLS12".into()))],
    )
    .unwrap();
    assert_eq!(
        text(&e.output),
        "{\n  \"kind\": \"KubeletConfiguration\",\n  \"readOnlyPort\":!10255,\n  tlsMinVersion: VersionTLS12\n}\n"
    );
    let e = edit_config(input, &[set("readOnlyPort", Scalar::Int(0))]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
}

/// Found by fuzzing: a block list whose only item is empty (`-` at the end of a CRLF file
/// without a final newline) still ends after its dash.
#[test]
fn list_with_an_empty_item_at_the_end() {
    let input = b"\xef\xbb\xbfkind: KubeletConfiguration\r\nauthentication:\r\n  anonymous:\r\nx:\r\n  clusterDNS:\r\n  -";
    let e = checked(input, &[set("readOnlyPort", Scalar::Int(0))]).unwrap();
    assert_eq!(
        text(&e.output),
        "\u{feff}kind: KubeletConfiguration\r\nauthentication:\r\n  anonymous:\r\nx:\r\n  clusterDNS:\r\n  -\r\nreadOnlyPort: 0"
    );
}

/// Found by fuzzing: a key starting with `?` is quoted (libyaml reads `{?x: 1}` otherwise).
#[test]
fn keys_starting_with_indicators_are_quoted() {
    let input = b"{\neadOnlyPort\":'10255,\nauthen: {\n  enablPort: 5\n}\n}\n";
    let e = checked(input, &[set("auth_tius.?nabled", Scalar::Bool(false))]).unwrap();
    assert!(
        text(&e.output).contains("\"?nabled\": false"),
        "{}",
        text(&e.output)
    );
    let e = checked(
        b"kind: KubeletConfiguration\n",
        &[set(":x", Scalar::Str("?y".into()))],
    )
    .unwrap();
    assert_eq!(
        text(&e.output),
        "kind: KubeletConfiguration\n\":x\": \"?y\"\n"
    );
}

/// Found by fuzzing: an empty value whose `:` is followed by a comment (`"k":# c`) ends after
/// the colon, and new text before a `#` keeps it a comment.
#[test]
fn empty_value_before_a_comment_in_a_flow_mapping() {
    let input = b"{\n  \"kind\": \"KubeletConfiguration\",\n  \"readOnlyPort\":# 10255\n}\n";
    let e = checked(input, &[list("tlsCipherSuites", &["TLS_AES"])]).unwrap();
    assert_eq!(
        text(&e.output),
        "{\n  \"kind\": \"KubeletConfiguration\",\n  \"readOnlyPort\":,\n  tlsCipherSuites: [TLS_AES] # 10255\n}\n"
    );
    let e = checked(input, &[set("readOnlyPort", Scalar::Int(0))]).unwrap();
    assert_eq!(
        text(&e.output),
        "{\n  \"kind\": \"KubeletConfiguration\",\n  \"readOnlyPort\": 0 # 10255\n}\n"
    );
}

/// Found by fuzzing: separators with tabs (`"k":<TAB>{`) are not copied (a new entry gets `: `).
#[test]
fn tabs_in_flow_separators_are_not_copied() {
    let input = b"{\n ymous\":\t{\n  },KubeletConfiadOnlyPort\": 10256\n}\n";
    let e = checked(
        input,
        &[
            set("authorizan.mode", Scalar::Str("on".into())),
            set("authen.enablPort", Scalar::Int(5)),
        ],
    )
    .unwrap();
    assert!(!text(&e.output).contains(":\t\""), "{}", text(&e.output));
}

/// Found by fuzzing: a mapping with a complex key (`? {kind: ...}`) is refused: new keys would
/// land inside the key.
#[test]
fn complex_keys_are_refused() {
    let input = b"?\n  \"kind\": \"KubeletConfiguration\"\n";
    let e = edit_config(input, &[list("tlsCipherSuites", &["A"])]).unwrap_err();
    assert_eq!((e.kind, e.line), (ErrorKind::Unsupported, Some(2)));
}

/// Found by fuzzing: saphyr's end of a flow mapping may cover a comment after its `}`; the
/// next entry goes right after the brace, before the comment.
#[test]
fn entry_after_a_flow_mapping_followed_by_a_comment() {
    let input = b"{\n  \"a\": {\"mode\": \"x\"} #c\n}\n";
    let e = checked(input, &[list("clu.x", &["s"])]).unwrap();
    assert_eq!(
        text(&e.output),
        "{\n  \"a\": {\"mode\": \"x\"},\n  clu: {\n    x: [s]\n  } #c\n}\n"
    );
}

/// Found by fuzzing: a mapping with an explicit `? key` is refused (new keys would land inside
/// the key's text).
#[test]
fn explicit_keys_are_refused() {
    let input = b"?\n igu \"onfiguration\",\n ";
    let e = edit_config(input, &[set("readOnlyPort", Scalar::Int(0))]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    let e = edit_config(b"? a\n: 1\nb: 2\n", &[set("c", Scalar::Int(0))]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
}

/// Found by fuzzing: a comment right after a flow mapping's `{` (saphyr's start event covers it)
/// must not make it look like a block mapping.
#[test]
fn comment_after_an_opening_brace() {
    let input = b"{ # a comment\n  \"kind\": \"KubeletConfiguration\",\n  \"port\": 10250\n}\n";
    let e = checked(input, &[set("readOnlyPort", Scalar::Int(0))]).unwrap();
    assert_eq!(
        text(&e.output),
        "{ # a comment\n  \"kind\": \"KubeletConfiguration\",\n  \"port\": 10250,\n  readOnlyPort: 0\n}\n"
    );
}

/// Found by fuzzing: a `?` that ends the previous value (`a: b?`) is not an explicit key.
#[test]
fn question_mark_ending_a_value_is_not_an_explicit_key() {
    let input = b"kind: KubeletConfiguration\nx: :?\n";
    let e = checked(input, &[set("zz", Scalar::Int(0))]).unwrap();
    assert_eq!(
        text(&e.output),
        "kind: KubeletConfiguration\nx: :?\nzz: 0\n"
    );
}

/// Found by fuzzing: a key path deeper than the parser accepts is refused up front.
#[test]
fn very_deep_key_paths_are_refused() {
    let deep = vec!["a"; 70].join(".");
    let e = edit_config(
        b"kind: KubeletConfiguration\n",
        &[set(&deep, Scalar::Int(0))],
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Value);
}

/// Found by fuzzing: a dangling `? ` at the end of the file; explicit keys refuse the file.
#[test]
fn dangling_explicit_key_is_refused() {
    let input = b"apiVersion: kubelet.config.k8s.io/v1beta1\nauthentication:\n  anonymous:\n    ? ";
    let e = edit_config(input, &[list("tlsCipherSuites", &["A"])]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
}

/// Found by fuzzing: flow mappings with trailing commas; a collection ends at its own bracket.
#[test]
fn flow_mappings_with_trailing_commas() {
    let input = b"{\n  \"kind\": \"KubeletConfiguration\",\n  \"authentication\": {\n    \"x\": {\n      \"enabled\": true\n    },\n    },\n \n}\n";
    let e = checked(input, &[set("zz.mode", Scalar::Str("on".into()))]).unwrap();
    assert!(
        text(&e.output).contains("    },\n    },\n  zz: {"),
        "{}",
        text(&e.output)
    );
}

/// Found by the fuzz target: a key appended after a flow mapping's last entry whose value is
/// empty (`{a: }`) was written right after the colon (`{a:, k: v}`), which no parser reads; the
/// verification refused it (nothing written), but a refusal must never be a failed
/// verification. The colon now keeps a blank after it.
#[test]
fn a_key_after_an_empty_flow_value_keeps_a_blank_after_the_colon() {
    for (input, want) in [
        (&b"{a25: }\n"[..], "{a25: , readOnlyPort: 0 }\n"),
        (b"{a: 1, b: }\n", "{a: 1, b: , readOnlyPort: 0 }\n"),
        (b"{\na25: }\n", "{\na25: ,\nreadOnlyPort: 0 }\n"),
        (
            b"{\n \r\n\xef\xb6\xbfa25: }\n",
            "{\n \r\n\u{fdbf}a25: ,\n \r\nreadOnlyPort: 0 }\n",
        ),
    ] {
        let out = checked(input, &[set("readOnlyPort", Scalar::Int(0))]).unwrap();
        assert_eq!(text(&out.output), want);
    }
}

/// Found by the fuzz target: a comment ending in ` ?` before a new key made that key look like
/// an explicit `? key`, and the second run of the same edit refused the file it had written.
#[test]
fn a_comment_ending_in_a_question_mark_is_not_an_explicit_key() {
    let input = b"M Kubeletsion: kule #bet.iguration for the GPUc ?";
    let out = checked(input, &[set("readOnlyPort", Scalar::Int(0))]).unwrap();
    assert_eq!(
        text(&out.output),
        "M Kubeletsion: kule #bet.iguration for the GPUc ?\nreadOnlyPort: 0"
    );
}

/// Found by the fuzz target: the properties of an empty value may span lines (`&a` then `!t` on
/// the next line); the value ended after the first, and a key appended after it split them.
#[test]
fn properties_on_two_lines_end_where_the_last_one_does() {
    let input = b"kind: KubeletConfiguration\nlefaults: &auth\n !a0 # c: onk";
    let out = checked(input, &[set("readOnlyPort", Scalar::Int(5))]).unwrap();
    assert_eq!(
        text(&out.output),
        "kind: KubeletConfiguration\nlefaults: &auth\n !a0 # c: onk\nreadOnlyPort: 5"
    );
}

/// Found by the fuzz target: a map key over YAML's 1024-character limit of implicit keys made
/// an output no parser reads; keys are limited (kharden_kubelet_config::keypath) and refused.
#[test]
fn a_key_too_long_for_yaml_is_refused() {
    let long = format!("evictionHard[{}]", "m".repeat(300));
    let e = long.parse::<kharden_kubelet_config::KeyPath>().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Value);
    assert!(e.reason.contains("at most 256"), "{e}");
    assert!(format!("evictionHard[{}]", "m".repeat(200))
        .parse::<kharden_kubelet_config::KeyPath>()
        .is_ok());
}

/// Found by the fuzz target: a block list with an empty item (`-` alone, or before a comment)
/// was replaced wrongly (the verification refused it); it is refused with its line now.
#[test]
fn a_list_with_an_empty_item_is_refused() {
    for input in [
        &b"tlsCipherSuites:\n- #LS\nx: true\n"[..],
        b"tlsCipherSuites:\n-\nx: true\n",
    ] {
        let e = checked(input, &[list("tlsCipherSuites", &["TLS_AES"])]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unsupported, "{e}");
        assert_eq!(e.line, Some(2));
    }
}

/// Found by the fuzz target: a file that ends, without a final line break, in a block scalar
/// (`0: >\r\n ~`). A key added after it would give the scalar a final line break (a new value):
/// refused with the line of the scalar's text. Removing the key after one keeps the scalar's line break.
#[test]
fn a_block_scalar_at_the_end_without_a_line_break() {
    for (input, line) in [
        (&b"0: >\r\n ~"[..], 2),
        (b"a: |\n  text", 2),
        (b"a: |+\n  text", 2),
        (b"x: 1\na:\n  b: |\n    text", 4),
        (b"x: 1\nl:\n- 1\n- >\n  text  ", 5),
    ] {
        let e = checked(input, &[set("readOnlyPort", Scalar::Int(0))]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unsupported, "{e}");
        assert_eq!(e.line, Some(line), "{e}");
        assert!(e.reason.contains("final line break"), "{e}");
    }
    // With a final line break, the key is added after it.
    let out = checked(b"a: |\n  text\n", &[set("readOnlyPort", Scalar::Int(0))]).unwrap();
    assert_eq!(out.output, b"a: |\n  text\nreadOnlyPort: 0\n");
    // Removing the last key after a block scalar leaves the scalar's line break.
    for (input, want) in [
        (
            &b"a: |\n  text\nreadOnlyPort: 1"[..],
            &b"a: |\n  text\n"[..],
        ),
        (b"a: |+\n  text\n\nreadOnlyPort: 1", b"a: |+\n  text\n\n"),
        (b"a: 1\nreadOnlyPort: 1", b"a: 1"),
    ] {
        let out = checked(input, &[unset("readOnlyPort")]).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.output),
            String::from_utf8_lossy(want)
        );
    }
}

/// Found by the fuzz target: an explicit key whose `?` is followed by a comment, the key on the
/// next line (`? #,`), was not seen as one; a key added after it made the output unreadable
/// (the verification refused it). The file is refused as every file with an explicit key is.
#[test]
fn an_explicit_key_behind_a_comment_is_refused() {
    let input = b"{\n #  N #10\"\n  ? #,\n  \"rea{\n \n\ne\n\no\": 10255\n}\n";
    for change in [
        set(
            "streamingConnectionIdleTimeout",
            Scalar::Str("4h0m0s".into()),
        ),
        set("readOnlyPort", Scalar::Int(0)),
    ] {
        let e = checked(input, &[change]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unsupported, "{e}");
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.reason.contains("explicit"), "{e}");
    }
}

/// Found by the fuzz target: a key added before blank lines that end the file (`a: x\n  \t`)
/// put a line holding a tab after a deeper new line, where the tab is a bad indentation. Blank
/// lines after an entry now stay with it, which also keeps a keep-chomped block scalar's own.
#[test]
fn blank_lines_after_an_entry_stay_with_it() {
    let out = checked(
        b"a: x\n  \t",
        &[set("evictionHard[m]", Scalar::Str("100Mi".into()))],
    )
    .unwrap();
    assert_eq!(out.output, b"a: x\n  \t\nevictionHard:\n  m: 100Mi");
    let out = checked(
        b"hentica#ion: !!map\n  anonou\n  \t",
        &[set(
            "evictionHard[memory.available]",
            Scalar::Str("100Mi".into()),
        )],
    );
    assert!(out.is_ok(), "{out:?}");
    // Between two keys: after the blank lines that follow the first (a keep-chomped block
    // scalar keeps its trailing line breaks).
    let out = checked(
        b"a: |+\n  text\n\n\nz: 1\n",
        &[set("readOnlyPort", Scalar::Int(0))],
    )
    .unwrap();
    assert_eq!(out.output, b"a: |+\n  text\n\n\nreadOnlyPort: 0\nz: 1\n");
}

/// Found by the fuzz target: a block scalar with no text (`0: >` and the next key at the
/// mapping's column) has no place of its own in the parser's spans: keys added or removed next to
/// one landed in the wrong place (the verification refused them). Such files are refused.
#[test]
fn an_empty_block_scalar_is_refused() {
    for (input, line) in [
        (&b"0: >\ne: 1\n"[..], 1),
        (b"0: > # c\ne: 1\n", 1),
        (b"a: 1\n0: |\ne:\n  m: 1\n", 2),
        (b"a: 1\n0: >\n", 2),
        (b"l:\n- |\n- x\n", 2),
    ] {
        for change in [set("readOnlyPort", Scalar::Int(0)), unset("0")] {
            let e = checked(input, &[change]).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Unsupported, "{e}");
            assert_eq!(e.line, Some(line), "{e}");
            assert!(e.reason.contains("no text"), "{e}");
        }
    }
    // One with text is edited.
    let out = checked(b"a: >\n  x\ne: 1\n", &[unset("a")]).unwrap();
    assert_eq!(out.output, b"e: 1\n");
}

/// Found by the fuzz target: a comment holding U+2028 (`#sC<LS>icionHard:`): YAML 1.1 readers
/// (the kubelet's, serde_yaml) end the comment there and read a key after it; the span tree (YAML
/// 1.2) reads one comment. A file with NEL, LS or PS anywhere is refused, edited or read.
#[test]
fn a_line_break_only_yaml_1_1_sees_is_refused() {
    for sep in ["\u{2028}", "\u{2029}", "\u{85}"] {
        let input = format!("readOnlyPort: 1\n#sC{sep}icionHard:\n    memory.ava: 63\n");
        let e = checked(input.as_bytes(), &[list("clusterDNS", &[])]).unwrap_err();
        assert_eq!((e.kind, e.line), (ErrorKind::Unsupported, Some(2)), "{e}");
        assert!(e.reason.contains("reads two ways"), "{e}");
        let e = kharden_kubelet_config::ConfigDoc::parse(input.as_bytes()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unsupported, "{e}");
    }
}

/// Found by the fuzz target: a flow mapping whose key is a plain scalar written over several
/// lines (one of them `-`): text spliced after it joined it. Such keys are refused.
#[test]
fn a_key_over_several_lines_is_refused() {
    for input in [
        &b"{\n  \"kind\": \"KubeletConfiguration\",\n\n 4\"\n\n-\n\n)\nletConfiguration\",\n}\n"[..],
        b"{\"a\nb\": 1}\n",
        b"{a\n b: 1}\n",
    ] {
        let e = checked(
            input,
            &[set(
                "streamingConnectionIdleTimeout",
                Scalar::Str("4h0m0s".into()),
            )],
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unsupported, "{e}");
        assert!(e.reason.contains("several lines"), "{e}");
    }
}

/// Found by the fuzz target: a JSON file with a number of more digits than an f64 holds
/// (`999...9.0`, 45 digits): serde_json's default float parsing rounded it otherwise than
/// serde_yaml's, so the verification saw a difference the edit did not make. serde_json now
/// parses floats exactly (`float_roundtrip`).
#[test]
fn a_json_number_longer_than_a_float_is_edited() {
    let input = b"{\n  \"clusterDNS\": [999999999999999999999999999999999999999999999.0\n  ],\n  \"readOnlyPort\": 10255\n}\n";
    let out = checked(input, &[set("readOnlyPort", Scalar::Int(0))]).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.output),
        "{\n  \"clusterDNS\": [999999999999999999999999999999999999999999999.0\n  ],\n  \"readOnlyPort\": 0\n}\n"
    );
    let out = checked(
        input,
        &[list("tlsCipherSuites", &["TLS_AES_128_GCM_SHA256"])],
    );
    assert!(out.is_ok(), "{out:?}");
}
