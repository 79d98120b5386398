//! Property tests: generated KubeletConfiguration files in many styles (indentation steps,
//! block/indentless/flow lists, flow maps, quoting, comments, CRLF, BOM, `---`, missing final
//! newline, sorted or unsorted keys, pretty and compact JSON) and environment files (quoting,
//! escapes, comments, several variables, duplicates), with arbitrary changes. Every edit is
//! either refused with a reason (never a failed verification) or satisfies the properties of
//! `common::checked` / `common::env_checked`: bytes outside the replaced ranges untouched,
//! idempotent, the re-parse equals the intended document, values read back typed as intended.

// Test code: a panic is how it fails, and it reads and writes its fixtures directly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

mod common;

use common::{checked, env_checked};
use kharden_kubelet_config::{ConfigChange, FlagChange, KeyPath, Scalar};
use proptest::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

static OUTCOMES: [AtomicUsize; 6] = [const { AtomicUsize::new(0) }; 6];

fn count<T, E>(base: usize, r: &Result<T, E>, unchanged: impl Fn(&T) -> bool) {
    let i = match r {
        Ok(t) if unchanged(t) => 1,
        Ok(_) => 0,
        Err(_) => 2,
    };
    OUTCOMES[base + i].fetch_add(1, Ordering::Relaxed);
}

/// Runs after the proptests (same binary, named to sort last): how the generated edits ended.
#[test]
fn zz_report() {
    let n: Vec<usize> = OUTCOMES.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    println!(
        "config edits: {} changed, {} unchanged, {} refused; env edits: {} changed, {} unchanged, {} refused",
        n[0], n[1], n[2], n[3], n[4], n[5]
    );
}

#[derive(Debug, Clone)]
enum Node {
    Scalar(String),
    Map(Vec<(String, Node)>),
    List(Vec<String>),
    FlowMap(Vec<(String, String)>),
}

#[derive(Debug, Clone)]
struct Style {
    step: usize,
    list: u8, // 0 indentless, 1 indented, 2 flow
    crlf: bool,
    bom: bool,
    doc_start: bool,
    final_newline: bool,
    comments: bool,
    json: u8, // 0 yaml, 1 pretty json, 2 compact json
}

const SCALARS: &[&str] = &[
    "true",
    "false",
    "0",
    "10255",
    "\"0\"",
    "'on'",
    "Webhook",
    "4h0m0s",
    "0s",
    "/etc/kubernetes/pki/ca.crt",
    "\"quoted\"",
    "'single'",
    "10.96.0.10",
    "~",
    "yes",
    "\"é\"",
    "!!str on",
    "&anchor v",
    "",
];
const ITEMS: &[&str] = &["A", "'B'", "\"C\"", "10.96.0.10", "TLS_AES_128_GCM_SHA256"];

fn node(depth: u32) -> BoxedStrategy<Node> {
    let leaf = prop_oneof![
        4 => proptest::sample::select(SCALARS).prop_map(|s| Node::Scalar(s.to_string())),
        1 => proptest::collection::vec(proptest::sample::select(ITEMS).prop_map(String::from), 0..4).prop_map(Node::List),
        1 => proptest::collection::vec((proptest::sample::select(&["X", "Y", "RotateKubeletServerCertificate"][..]).prop_map(String::from), proptest::sample::select(&["true", "false"][..]).prop_map(String::from)), 0..3)
            .prop_map(|v| { let mut v = v; v.sort(); v.dedup_by(|a, b| a.0 == b.0); Node::FlowMap(v) }),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        3 => leaf,
        1 => proptest::collection::vec((proptest::sample::select(KEYS).prop_map(String::from), node(depth - 1)), 1..4)
            .prop_map(|v| Node::Map(dedup(v))),
    ]
    .boxed()
}

const KEYS: &[&str] = &[
    "authentication",
    "anonymous",
    "enabled",
    "webhook",
    "x509",
    "clientCAFile",
    "authorization",
    "mode",
    "readOnlyPort",
    "featureGates",
    "tlsCipherSuites",
    "clusterDNS",
    "evictionHard",
    "logging",
    "zeta",
];

fn dedup(v: Vec<(String, Node)>) -> Vec<(String, Node)> {
    let mut out: Vec<(String, Node)> = Vec::new();
    for (k, n) in v {
        if !out.iter().any(|(o, _)| *o == k) {
            out.push((k, n));
        }
    }
    out
}

fn json_scalar(s: &str) -> String {
    match s {
        "true" | "false" | "0" | "10255" => s.to_string(),
        "~" => "null".into(),
        s => {
            let inner = s.trim_matches(['"', '\'']);
            format!("\"{}\"", inner.replace('\\', "\\\\").replace('"', "\\\""))
        }
    }
}

fn render_json(n: &Node, indent: usize, pretty: bool, out: &mut String) {
    let (nl, pad, pad_in, sep, kv) = if pretty {
        (
            "\n",
            " ".repeat(indent),
            " ".repeat(indent + 2),
            ",\n",
            ": ",
        )
    } else {
        ("", String::new(), String::new(), ",", ":")
    };
    match n {
        Node::Scalar(s) => out.push_str(&json_scalar(s)),
        Node::List(items) => {
            let items: Vec<String> = items.iter().map(|i| json_scalar(i)).collect();
            out.push('[');
            out.push_str(&items.join(if pretty { ", " } else { "," }));
            out.push(']');
        }
        Node::FlowMap(pairs) => {
            let p: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("\"{k}\"{kv}{v}"))
                .collect();
            out.push('{');
            out.push_str(&p.join(if pretty { ", " } else { "," }));
            out.push('}');
        }
        Node::Map(pairs) => {
            out.push('{');
            out.push_str(nl);
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                out.push_str(&format!("{pad_in}\"{k}\"{kv}"));
                render_json(v, indent + 2, pretty, out);
            }
            out.push_str(nl);
            out.push_str(&pad);
            out.push('}');
        }
    }
}

fn render_yaml(pairs: &[(String, Node)], col: usize, st: &Style, out: &mut String, n: &mut usize) {
    let pad = " ".repeat(col);
    for (k, v) in pairs {
        *n += 1;
        if st.comments && (*n).is_multiple_of(3) {
            out.push_str(&format!("{pad}# comment {n}\n"));
        }
        match v {
            Node::Scalar(s) => {
                let c = if st.comments && (*n).is_multiple_of(4) {
                    "  # trailing"
                } else {
                    ""
                };
                out.push_str(&format!("{pad}{k}: {s}{c}\n"));
            }
            Node::FlowMap(p) => {
                let p: Vec<String> = p.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                out.push_str(&format!("{pad}{k}: {{{}}}\n", p.join(", ")));
            }
            Node::List(items) if items.is_empty() || st.list == 2 => {
                out.push_str(&format!("{pad}{k}: [{}]\n", items.join(", ")));
            }
            Node::List(items) => {
                out.push_str(&format!("{pad}{k}:\n"));
                let dash = " ".repeat(col + if st.list == 1 { st.step } else { 0 });
                for i in items {
                    out.push_str(&format!("{dash}- {i}\n"));
                }
            }
            Node::Map(p) => {
                out.push_str(&format!("{pad}{k}:\n"));
                render_yaml(p, col + st.step, st, out, n);
            }
        }
    }
}

fn document(top: &[(String, Node)], sorted: bool, st: &Style) -> Vec<u8> {
    let mut pairs: Vec<(String, Node)> = vec![
        (
            "apiVersion".into(),
            Node::Scalar("kubelet.config.k8s.io/v1beta1".into()),
        ),
        ("kind".into(), Node::Scalar("KubeletConfiguration".into())),
    ];
    for (k, v) in top {
        if !pairs.iter().any(|(o, _)| o == k) {
            pairs.push((k.clone(), v.clone()));
        }
    }
    if sorted {
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let mut out = String::new();
    if st.json > 0 {
        render_json(&Node::Map(pairs), 0, st.json == 1, &mut out);
        if st.json == 1 {
            out.push('\n');
        }
        return out.into_bytes();
    }
    if st.doc_start {
        out.push_str("---\n");
    }
    let mut n = 0;
    render_yaml(&pairs, 0, st, &mut out, &mut n);
    if !st.final_newline {
        out.pop();
    }
    if st.crlf {
        out = out.replace('\n', "\r\n");
    }
    if st.bom {
        out.insert(0, '\u{feff}');
    }
    out.into_bytes()
}

const PATHS: &[&str] = &[
    "readOnlyPort",
    "authentication.anonymous.enabled",
    "authentication.webhook",
    "authentication.x509.clientCAFile",
    "authorization.mode",
    "featureGates.RotateKubeletServerCertificate",
    "featureGates.X",
    "tlsCipherSuites",
    "clusterDNS",
    "evictionHard[memory.available]",
    "zeta.enabled",
    "logging",
    "newKey.deep.er",
    "mode",
];
const NEW_STRS: &[&str] = &[
    "x",
    "on",
    "0",
    "010",
    "1e3",
    "4h0m0s",
    "a b",
    "a: b",
    "a #b",
    "é",
    "'q'",
    "\"dq\"",
    "a,b",
    "[x]",
    "{y}",
    "*z",
    "&w",
    "!t",
    "%p",
    "@a",
    "`b",
    "- c",
    "",
    "~",
    "null",
    "2001-12-14",
    "10.96.0.10",
    "\\",
    "-",
];

fn scalar() -> impl Strategy<Value = Scalar> {
    prop_oneof![
        any::<bool>().prop_map(Scalar::Bool),
        prop_oneof![Just(0i64), Just(10255), Just(-1), Just(i64::MAX)].prop_map(Scalar::Int),
        proptest::sample::select(NEW_STRS).prop_map(|s| Scalar::Str(s.to_string())),
    ]
}

fn change() -> impl Strategy<Value = ConfigChange> {
    let path = proptest::sample::select(PATHS).prop_map(|p| KeyPath::parse(p).unwrap());
    prop_oneof![
        3 => (path.clone(), scalar()).prop_map(|(path, value)| ConfigChange::Set { path, value }),
        1 => path.clone().prop_map(|path| ConfigChange::Unset { path }),
        2 => (path, proptest::collection::vec(scalar(), 0..4)).prop_map(|(path, items)| ConfigChange::SetList { path, items }),
    ]
}

fn style() -> impl Strategy<Value = Style> {
    (
        prop_oneof![Just(2usize), Just(4)],
        0u8..3,
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
        prop_oneof![6 => Just(0u8), 1 => Just(1), 1 => Just(2)],
    )
        .prop_map(
            |(step, list, (crlf, bom, doc_start, final_newline, comments), json)| Style {
                step,
                list,
                crlf,
                bom,
                doc_start,
                final_newline,
                comments,
                json,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 768, ..ProptestConfig::default() })]

    #[test]
    fn config_edits_hold_their_properties(
        top in proptest::collection::vec((proptest::sample::select(KEYS).prop_map(String::from), node(2)), 0..6),
        sorted in any::<bool>(),
        st in style(),
        changes in proptest::collection::vec(change(), 1..4),
    ) {
        let input = document(&top, sorted, &st);
        count(0, &checked(&input, &changes), |e| e.unchanged());
        for c in &changes {
            count(0, &checked(&input, std::slice::from_ref(c)), |e| e.unchanged());
        }
    }
}

const FLAG_NAMES: &[&str] = &[
    "read-only-port",
    "anonymous-auth",
    "v",
    "node-labels",
    "feature-gates",
    "x",
];
const FLAG_VALUES: &[&str] = &[
    "0",
    "true",
    "a b",
    "it's",
    "q\"uote",
    "$HOME",
    "back\\slash",
    "",
    "-1",
    "k=v,l=w",
    "é",
];

fn env_word() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            proptest::sample::select(FLAG_NAMES),
            proptest::sample::select(&["0", "true", "10255", "x"][..])
        )
            .prop_map(|(n, v)| format!("--{n}={v}")),
        proptest::sample::select(FLAG_NAMES).prop_map(|n| format!("--{n}")),
        proptest::sample::select(&["1", "false", "--", "-"][..]).prop_map(String::from),
    ]
}

/// One assignment in one of systemd's quoting styles.
fn assignment(name: &str, words: &[String], style: u8) -> String {
    let joined = words.join(" ");
    match style {
        0 => format!("{name}=\"{joined}\""),
        1 => format!("{name}='{joined}'"),
        2 => format!("{name}={joined}"),
        3 => format!("  {name} = \"{joined}\"   "),
        _ => {
            // Unquoted with a line continuation between the words.
            format!("{name}={}", words.join(" \\\n"))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn env_edits_hold_their_properties(
        a in proptest::collection::vec(env_word(), 0..5),
        b in proptest::collection::vec(env_word(), 0..4),
        sa in 0u8..5,
        sb in 0u8..5,
        dup in any::<bool>(),
        comments in any::<bool>(),
        crlf in any::<bool>(),
        final_newline in any::<bool>(),
        with_b in any::<bool>(),
        ops in proptest::collection::vec(
            (proptest::sample::select(FLAG_NAMES), proptest::option::of(proptest::sample::select(FLAG_VALUES)), proptest::option::of(proptest::sample::select(&["A", "B"][..]))),
            1..3),
    ) {
        let mut lines = Vec::new();
        if comments {
            lines.push("# kubelet flags".to_string());
        }
        if dup {
            lines.push("A=\"--stale=1\"".to_string());
        }
        lines.push(assignment("A", &a, sa));
        lines.push("OTHER=\"keep me\"".to_string());
        if with_b {
            lines.push(assignment("B", &b, sb));
        }
        if comments {
            lines.push("; trailing comment".to_string());
        }
        let mut text = lines.join("\n");
        if final_newline {
            text.push('\n');
        }
        if crlf {
            text = text.replace('\n', "\r\n");
        }
        let changes: Vec<FlagChange> = ops
            .into_iter()
            .map(|(n, v, to)| match v {
                Some(v) => FlagChange::Set { name: n.into(), value: v.into(), append_to: to.map(String::from) },
                None => FlagChange::Unset { name: n.into() },
            })
            .collect();
        count(3, &env_checked(text.as_bytes(), &["A", "B"], &changes), |e| e.unchanged());
        for c in &changes {
            count(3, &env_checked(text.as_bytes(), &["A", "B"], std::slice::from_ref(c)), |e| e.unchanged());
        }
    }
}
