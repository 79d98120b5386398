//! The editor on the project's own fixture manifests (tests/fixtures): every change kind, in
//! LF, CRLF, BOM and no-final-newline variants, plus the refusals and specific behaviours.

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

use common::{changes_for, checked, diff, round_trips};
use kharden_manifest::{edit, inspect, Change, EditErrorKind, HttpGetProbe, Mount};
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn c(kind: &str, arg: &str) -> Change {
    Change::parse_cli(kind, arg).unwrap()
}

fn edit_str(input: &[u8], container: Option<&str>, changes: &[Change]) -> String {
    let e = edit(input, container, changes).unwrap_or_else(|e| panic!("edit failed: {e}"));
    String::from_utf8(e.output).unwrap()
}

const EDITABLE: &[(&str, &str)] = &[
    ("kubeadm-apiserver.yaml", "kube-apiserver"),
    ("kubeadm-controller-manager.yaml", "kube-controller-manager"),
    ("kubeadm-scheduler.yaml", "kube-scheduler"),
    ("kubeadm-etcd.yaml", "etcd"),
    ("kops-go-runner-apiserver.yaml", "kube-apiserver"),
    ("flow-style-scheduler.yaml", "kube-scheduler"),
    ("hand-written-apiserver.yaml", "kube-apiserver"),
    ("multi-doc-apiserver.yaml", "kube-apiserver"),
    ("bom-no-final-newline-scheduler.yaml", "kube-scheduler"),
    ("crlf-controller-manager.yaml", "kube-controller-manager"),
];

/// Line-ending and framing variants of a fixture.
fn variants(input: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let text = String::from_utf8(input.to_vec()).unwrap();
    let lf = text.replace("\r\n", "\n");
    let lf = lf.strip_prefix('\u{feff}').unwrap_or(&lf).to_string();
    let crlf = lf.replace('\n', "\r\n");
    let bom = format!("\u{feff}{lf}");
    let no_eol = lf.trim_end_matches('\n').to_string();
    vec![
        ("as is", input.to_vec()),
        ("crlf", crlf.into_bytes()),
        ("bom", bom.into_bytes()),
        ("no final newline", no_eol.into_bytes()),
    ]
}

#[test]
fn every_change_kind_on_every_fixture_and_variant() {
    let mut count = 0;
    for (name, component) in EDITABLE {
        for (variant, input) in variants(&fixture(name)) {
            let info = inspect(&input, None).unwrap_or_else(|e| panic!("{name} ({variant}): {e}"));
            assert_eq!(info.component.as_deref(), Some(*component), "{name}");
            for ch in changes_for(Some(component)) {
                match checked(&input, None, &ch) {
                    Ok(_) => count += 1,
                    Err(e) => {
                        // Only the mount may be refused, and only where the fixture has no
                        // block volume lists.
                        assert!(
                            matches!(ch, Change::Mount(_))
                                && matches!(
                                    *name,
                                    "flow-style-scheduler.yaml"
                                        | "multi-doc-apiserver.yaml"
                                        | "bom-no-final-newline-scheduler.yaml"
                                        | "hand-written-apiserver.yaml"
                                ),
                            "{name} ({variant}): {ch} refused: {e}"
                        );
                        assert_eq!(e.kind, EditErrorKind::Unsupported);
                        assert!(e.line.is_some());
                    }
                }
            }
            for (flag, item) in [
                ("enable-admission-plugins", "AlwaysPullImages"),
                ("authorization-mode", "Webhook"),
                ("kharden-new", "x"),
                ("controllers", "-foo"),
            ] {
                round_trips(&input, None, flag, item);
            }
        }
    }
    println!("{count} checked edits");
}

#[test]
fn refusals_name_the_line_and_reason() {
    let cases: &[(&str, EditErrorKind, Option<usize>, &str)] = &[
        (
            "refuse/sh-c.yaml",
            EditErrorKind::Unsupported,
            Some(10),
            "sh -c",
        ),
        (
            "refuse/block-scalar.yaml",
            EditErrorKind::Unsupported,
            Some(11),
            "block scalar",
        ),
        (
            "refuse/anchors.yaml",
            EditErrorKind::Unsupported,
            Some(8),
            "anchor",
        ),
        (
            "refuse/alias-item.yaml",
            EditErrorKind::Unsupported,
            Some(10),
            "alias",
        ),
        (
            "refuse/two-pods.yaml",
            EditErrorKind::Container,
            Some(1),
            "2 documents",
        ),
        (
            "refuse/two-components.yaml",
            EditErrorKind::Container,
            Some(7),
            "--container",
        ),
        (
            "refuse/merge-key.yaml",
            EditErrorKind::Unsupported,
            Some(8),
            "merge key",
        ),
        (
            "refuse/duplicate-key.yaml",
            EditErrorKind::Unsupported,
            Some(9),
            "twice",
        ),
        (
            "refuse/not-a-pod.yaml",
            EditErrorKind::Container,
            None,
            "no Pod",
        ),
    ];
    for (name, kind, line, words) in cases {
        let input = fixture(name);
        let e = edit(&input, None, &[c("set", "profiling=false")]).unwrap_err();
        assert_eq!((e.kind, e.line), (*kind, *line), "{name}: {e}");
        assert!(e.to_string().contains(words), "{name}: {e}");
        if let Some(l) = line {
            assert!(
                e.to_string().starts_with(&format!("line {l}: ")),
                "{name}: {e}"
            );
        }
        assert_eq!(inspect(&input, None).unwrap_err().kind, *kind, "{name}");
    }
    // A named container resolves the ambiguity.
    let input = fixture("refuse/two-components.yaml");
    let out = edit_str(
        &input,
        Some("kube-scheduler"),
        &[c("set", "profiling=false")],
    );
    assert!(
        out.contains("command: [kube-scheduler, --profiling=false]"),
        "{out}"
    );
    let e = edit(&input, Some("nope"), &[c("set", "a=b")]).unwrap_err();
    assert_eq!(e.kind, EditErrorKind::Container);
    assert!(
        e.reason.contains("kube-scheduler, kube-controller-manager"),
        "{e}"
    );
}

#[test]
fn bad_bytes_are_refused() {
    let e = edit(b"apiVersion: v1\nkind: \xff\n", None, &[]).unwrap_err();
    assert_eq!((e.kind, e.line), (EditErrorKind::Syntax, Some(2)));
    let e = edit(b"a: [\n", None, &[]).unwrap_err();
    assert_eq!(e.kind, EditErrorKind::Syntax);
    let big = vec![b'#'; kharden_manifest::MAX_MANIFEST_BYTES + 1];
    assert_eq!(
        edit(&big, None, &[]).unwrap_err().kind,
        EditErrorKind::TooLarge
    );
    let e = edit(b"kind: Pod\rspec: {}\r", None, &[]).unwrap_err();
    assert_eq!(e.kind, EditErrorKind::Unsupported);
    // A line break only to YAML 1.1 readers (the kubelet's): the file reads two ways, and the
    // audit's reading (inspect) is refused as well as an edit.
    for sep in ["\u{2028}", "\u{2029}", "\u{85}"] {
        let input = fixture("kubeadm-scheduler.yaml");
        let text = String::from_utf8(input).unwrap();
        let bad = text.replacen("\n", &format!(" # note{sep}\n"), 2);
        let e = edit(bad.as_bytes(), None, &[c("set", "profiling=false")]).unwrap_err();
        assert_eq!(
            (e.kind, e.line),
            (EditErrorKind::Unsupported, Some(1)),
            "{e}"
        );
        assert!(e.reason.contains("reads two ways"), "{e}");
        assert_eq!(
            inspect(bad.as_bytes(), None).unwrap_err().kind,
            EditErrorKind::Unsupported
        );
    }
}

#[test]
fn values_with_line_breaks_or_controls_are_refused() {
    let input = fixture("kubeadm-scheduler.yaml");
    for v in ["a\nb", "a\rb", "a\u{7}", "tab\there", "nel\u{85}"] {
        let e = edit(
            &input,
            None,
            &[Change::Set {
                name: "v".into(),
                value: Some(v.into()),
            }],
        )
        .unwrap_err();
        assert_eq!(e.kind, EditErrorKind::Value, "{v:?}");
    }
    let bad = Change::Set {
        name: "bad name".into(),
        value: Some("1".into()),
    };
    let e = edit(&input, None, &[bad]).unwrap_err();
    assert_eq!(e.kind, EditErrorKind::Value);
}

#[test]
fn inspect_reports_probes_env_and_wrappers() {
    let info = inspect(&fixture("kops-go-runner-apiserver.yaml"), None).unwrap();
    assert_eq!(info.flags_start, 4);
    assert_eq!(info.argv[0], "/go-runner");
    assert_eq!(info.argv[3], "/usr/local/bin/kube-apiserver");
    assert_eq!(info.component.as_deref(), Some("kube-apiserver"));
    assert_eq!(info.pod_name.as_deref(), Some("kube-apiserver"));
    assert!(info.host_network);
    assert_eq!(
        info.env,
        vec![("KUBE_FEATURE".to_string(), "on".to_string())]
    );
    assert_eq!(
        info.probes,
        vec![HttpGetProbe {
            kind: "livenessProbe".into(),
            scheme: "HTTPS".into(),
            host: Some("127.0.0.1".into()),
            port: 443,
            path: "/livez".into(),
        }]
    );
    let info = inspect(&fixture("kubeadm-apiserver.yaml"), None).unwrap();
    let kinds: Vec<&str> = info.probes.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(kinds, ["startupProbe", "readinessProbe", "livenessProbe"]);
    assert_eq!(info.probes[1].path, "/readyz");
    assert_eq!(info.probes[1].host.as_deref(), Some("10.20.0.11"));
    let info = inspect(&fixture("hand-written-apiserver.yaml"), None).unwrap();
    assert_eq!(info.container, "kube-apiserver");
    assert_eq!(info.flags_start, 2);
    assert_eq!(info.probes[0].port, 6443);
    assert_eq!(info.probes[0].host, None);
    let info = inspect(&fixture("multi-doc-apiserver.yaml"), None).unwrap();
    assert_eq!(
        info.argv,
        [
            "kube-apiserver",
            "--etcd-servers=https://127.0.0.1:2379",
            "--profiling=true"
        ]
    );
    assert!(!info.host_network);
}

#[test]
fn hand_written_manifest_keeps_its_style() {
    let input = fixture("hand-written-apiserver.yaml");
    // quoted items keep their quotes
    let out = edit_str(&input, None, &[c("set", "secure-port=443")]);
    assert!(out.contains("      - \"--secure-port=443\"\n"), "{out}");
    let out = edit_str(&input, None, &[c("add-item", "authorization-mode=Webhook")]);
    assert!(
        out.contains("      - '--authorization-mode=Node,RBAC,Webhook'\n"),
        "{out}"
    );
    // trailing comments stay with an edited item
    let out = edit_str(&input, None, &[c("set", "bind-address=127.0.0.1")]);
    assert!(
        out.contains("      - --bind-address=127.0.0.1   # all interfaces\n"),
        "{out}"
    );
    // two-item flags are edited as a unit
    let out = edit_str(
        &input,
        None,
        &[c("set", "etcd-servers=https://10.0.0.1:2379")],
    );
    assert!(
        out.contains("      - --etcd-servers\n      - https://10.0.0.1:2379\n"),
        "{out}"
    );
    let out = edit_str(&input, None, &[c("unset", "etcd-servers")]);
    assert!(
        !out.contains("etcd-servers") && !out.contains("127.0.0.1:2379"),
        "{out}"
    );
    let e = edit(&input, None, &[c("set", "etcd-servers")]).unwrap_err();
    assert_eq!(e.kind, EditErrorKind::Unsupported);
    assert_eq!(e.line, Some(26));
    // a two-item value that YAML 1.1 would read as a bool is quoted (siblings are quoted
    // with both styles here, so double quotes win)
    let out = edit_str(&input, None, &[c("set", "etcd-servers=on")]);
    assert!(
        out.contains("      - --etcd-servers\n      - \"on\"\n"),
        "{out}"
    );
    // duplicated flag: the last occurrence is rewritten, the earlier one removed
    let out = edit_str(&input, None, &[c("set", "insecure-port=0")]);
    assert_eq!(out.matches("- --insecure-port=0").count(), 1, "{out}");
    assert!(
        out.contains("      # - --insecure-port=8080\n      - --etcd-servers"),
        "{out}"
    );
    // set-key keeps the spacing a person wrote
    let out = edit_str(
        &input,
        None,
        &[c("set-key", "feature-gates=ExpandCSIVolumes=true")],
    );
    assert!(
        out.contains("--feature-gates=PodSecurity=true,  ExpandCSIVolumes=true\n"),
        "{out}"
    );
    // the new flag copies the indentation of the last flag item
    let out = edit_str(&input, None, &[c("set", "profiling=false")]);
    assert!(
        out.contains("      - --v=2\n      - --profiling=false\n    ports:"),
        "{out}"
    );
}

#[test]
fn flow_lists_keep_their_separators_and_quote_when_needed() {
    let input = fixture("flow-style-scheduler.yaml");
    let out = edit_str(&input, None, &[c("set", "profiling=false")]);
    assert!(out.contains("args: [\"--kubeconfig=/etc/kubernetes/scheduler.conf\", '--leader-elect=true', --v=2, --profiling=false]"), "{out}");
    let out = edit_str(&input, None, &[c("set", "bind-address=127.0.0.1:10259,x")]);
    assert!(
        out.contains(", --v=2, \"--bind-address=127.0.0.1:10259,x\"]"),
        "{out}"
    );
    let out = edit_str(&input, None, &[c("unset", "leader-elect")]);
    assert!(
        out.contains("args: [\"--kubeconfig=/etc/kubernetes/scheduler.conf\", --v=2]"),
        "{out}"
    );
    let out = edit_str(
        &input,
        None,
        &[
            c("unset", "kubeconfig"),
            c("unset", "leader-elect"),
            c("unset", "v"),
        ],
    );
    assert!(out.contains("args: []"), "{out}");
    let out = edit_str(&out.into_bytes(), None, &[c("set", "v=1")]);
    assert!(
        out.contains("command: [\"kube-scheduler\", \"--v=1\"]"),
        "{out}"
    );
}

#[test]
fn several_changes_in_one_edit() {
    let input = fixture("kubeadm-apiserver.yaml");
    let changes = [
        c("set", "anonymous-auth=false"),
        c("set", "profiling=false"),
        c("add-item", "enable-admission-plugins=AlwaysPullImages"),
        c("at-least", "audit-log-maxage=60"),
        c("unset", "enable-bootstrap-token-auth"),
    ];
    let e = edit(&input, None, &changes).unwrap();
    let out = String::from_utf8(e.output.clone()).unwrap();
    assert!(out.contains("    - --tls-private-key-file=/etc/kubernetes/pki/apiserver.key\n    - --anonymous-auth=false\n    - --profiling=false\n    image:"));
    assert!(out.contains("--enable-admission-plugins=NodeRestriction,AlwaysPullImages\n"));
    assert!(out.contains("--audit-log-maxage=60\n"));
    assert!(!out.contains("bootstrap-token"));
    assert_eq!(e.before.argv.len() + 1, e.after.argv.len());
    // replaced ranges are in the original's coordinates
    for r in &e.replaced {
        assert!(r.end <= input.len());
    }
    assert_eq!(e.replaced.len(), 4, "{:?}", e.replaced);
    // the same edit again changes nothing
    assert!(edit(&e.output, None, &changes).unwrap().unchanged());
}

#[test]
fn mount_is_added_once_and_conflicts_are_refused() {
    let input = fixture("kubeadm-scheduler.yaml");
    let m = Mount {
        name: "kharden-cfg".into(),
        host_path: "/etc/kubernetes/kharden.yaml".into(),
        mount_path: "/etc/kubernetes/kharden.yaml".into(),
        read_only: true,
        path_type: Some("File".into()),
    };
    let out = edit_str(&input, None, &[Change::Mount(m.clone())]);
    assert!(out.contains("      readOnly: true\n    - mountPath: /etc/kubernetes/kharden.yaml\n      name: kharden-cfg\n      readOnly: true\n  hostNetwork"), "{out}");
    assert!(out.ends_with("    name: kubeconfig\n  - hostPath:\n      path: /etc/kubernetes/kharden.yaml\n      type: File\n    name: kharden-cfg\n"), "{out}");
    assert!(edit(out.as_bytes(), None, &[Change::Mount(m.clone())])
        .unwrap()
        .unchanged());
    let other = Mount {
        host_path: "/elsewhere".into(),
        ..m.clone()
    };
    let e = edit(out.as_bytes(), None, &[Change::Mount(other)]).unwrap_err();
    assert_eq!(e.kind, EditErrorKind::Unsupported);
    // A pod with no `volumes` and a container with no `volumeMounts`: both are created, at
    // their mapping's key column, the container's first (issue 11, item 18).
    let flow = fixture("flow-style-scheduler.yaml");
    let out = edit_str(&flow, None, &[Change::Mount(m.clone())]);
    assert!(
        out.ends_with("--v=2]\n      volumeMounts:\n      - mountPath: /etc/kubernetes/kharden.yaml\n        name: kharden-cfg\n        readOnly: true\n  volumes:\n  - hostPath:\n      path: /etc/kubernetes/kharden.yaml\n      type: File\n    name: kharden-cfg\n"),
        "{out}"
    );
    assert!(edit(out.as_bytes(), None, &[Change::Mount(m.clone())])
        .unwrap()
        .unchanged());
    // A list written in flow style is still refused, with its line.
    let with_flow_list = String::from_utf8(flow).unwrap().replace(
        "  hostNetwork: true\n",
        "  hostNetwork: true\n  volumes: []\n",
    );
    let e = edit(with_flow_list.as_bytes(), None, &[Change::Mount(m)]).unwrap_err();
    assert!(e.reason.contains("volumes") && e.line == Some(6), "{e}");
}

#[test]
fn snapshots_of_real_edits() {
    let cases: Vec<(&str, &str, Vec<Change>)> = vec![
        (
            "kubeadm_apiserver_harden",
            "kubeadm-apiserver.yaml",
            vec![
                c("set", "anonymous-auth=false"),
                c("add-item", "enable-admission-plugins=AlwaysPullImages"),
                c("set", "profiling=false"),
            ],
        ),
        (
            "kops_go_runner_set_and_unset",
            "kops-go-runner-apiserver.yaml",
            vec![
                c("set", "anonymous-auth=true"),
                c("unset", "v"),
                c(
                    "set",
                    "kubelet-certificate-authority=/srv/kubernetes/ca.crt",
                ),
            ],
        ),
        (
            "hand_written_two_item_and_duplicates",
            "hand-written-apiserver.yaml",
            vec![
                c("set", "etcd-servers=https://10.0.0.1:2379"),
                c("set", "insecure-port=0"),
                c("remove-item", "authorization-mode=RBAC"),
            ],
        ),
        (
            "crlf_controller_manager",
            "crlf-controller-manager.yaml",
            vec![
                c("set", "profiling=false"),
                c("at-least", "terminated-pod-gc-threshold=10"),
            ],
        ),
        (
            "bom_no_final_newline",
            "bom-no-final-newline-scheduler.yaml",
            vec![c("set", "bind-address=127.0.0.1")],
        ),
        (
            "etcd_mount",
            "kubeadm-etcd.yaml",
            vec![Change::Mount(Mount {
                name: "etcd-audit".into(),
                host_path: "/var/log/etcd".into(),
                mount_path: "/var/log/etcd".into(),
                read_only: false,
                path_type: Some("DirectoryOrCreate".into()),
            })],
        ),
        (
            "multi_doc_feature_gate",
            "multi-doc-apiserver.yaml",
            vec![
                c("set-key", "feature-gates=AllAlpha=false"),
                c("set", "profiling=no"),
            ],
        ),
    ];
    for (snap, file, changes) in cases {
        let input = fixture(file);
        let e = edit(&input, None, &changes).unwrap_or_else(|e| panic!("{snap}: {e}"));
        let mut text = format!(
            "{}\n",
            changes
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        );
        text.push_str(&diff(&input, &e.output));
        text.push_str(&format!("replaced: {:?}\n", e.replaced));
        insta::assert_snapshot!(snap, text);
    }
}

#[test]
fn double_dash_ends_the_flags() {
    // Found by the `edit` fuzz target: after `--`, `--v=3` is positional, so `set v=4` adds the
    // flag before the `--` and the audit helpers agree that v is 4.
    let input = b"kind: Pod\nspec:\n  containers:\n  - name: kube-controller-manager\n    command:\n    - kube-controller-manager\n    - --a=1\n    - -- # end of flags\n    - --v=3\n";
    let e = checked(input, None, &c("set", "v=4")).unwrap();
    assert_eq!(
        String::from_utf8(e.output).unwrap(),
        "kind: Pod\nspec:\n  containers:\n  - name: kube-controller-manager\n    command:\n    - kube-controller-manager\n    - --a=1\n    - --v=4\n    - -- # end of flags\n    - --v=3\n"
    );
}

#[test]
fn flow_add_then_remove_with_mixed_separators() {
    // Found by the `edit` fuzz target: the new flag goes after the last flag item (not after a
    // trailing positional item), and removing it takes back exactly what was inserted.
    let input = b"kind: Pod\nspec:\n  containers:\n  - name: kube-scheduler\n    args: [\"--a=1\", '--b=',pos]\n";
    let added = checked(input, None, &c("add-item", "feature-gates=X")).unwrap();
    let out = String::from_utf8(added.output.clone()).unwrap();
    assert!(
        out.contains("args: [\"--a=1\", '--b=', '--feature-gates=X',pos]"),
        "{out}"
    );
    let removed = checked(&added.output, None, &c("remove-item", "feature-gates=X")).unwrap();
    assert_eq!(removed.output, input.to_vec());
}
