//! Property tests: generated manifests in many styles (block and flow lists, quoting, comments,
//! CRLF, BOM, `---`, missing final newline, wrappers, two-item and duplicated flags) and
//! arbitrary changes. Every edit either is refused with a reason or satisfies the properties
//! checked in `common::checked` (the same ones the fuzz targets check).

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

use common::{checked, round_trips};
use kharden_manifest::{edit, inspect, Change, EditErrorKind};
use proptest::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

static CHANGED: AtomicUsize = AtomicUsize::new(0);
static UNCHANGED: AtomicUsize = AtomicUsize::new(0);
static REFUSED: AtomicUsize = AtomicUsize::new(0);

/// Runs after the proptest below (same binary, named to sort last): how the cases ended.
#[test]
fn zz_report() {
    println!(
        "generated edits so far: {} changed, {} unchanged, {} refused",
        CHANGED.load(Ordering::Relaxed),
        UNCHANGED.load(Ordering::Relaxed),
        REFUSED.load(Ordering::Relaxed)
    );
}

const NAMES: &[&str] = &["a", "b-c", "feature-gates", "list", "n", "v", "new"];
const VALUES: &[&str] = &[
    "1",
    "x",
    "A,B",
    "K=true,L=false",
    "on",
    "",
    "/p/q",
    "10",
    "http://h:1/x",
    "a b",
    "é",
    "no",
];
const NEW_VALUES: &[&str] = &[
    "1",
    "x",
    "on",
    "OFF",
    "1e3",
    "0x1F",
    "1:30",
    "~",
    "",
    "a b",
    "x: y",
    "a #b",
    "é",
    "'q'",
    "\"dq\"",
    "a,b",
    "K=V",
    "-5",
    "null",
    "2001-12-14",
    "[x]",
    "{y}",
    "*z",
    "&w",
    "!t",
    "%p",
    "@a",
    "`b",
    "| c",
    "> d",
    "\\",
    "-",
    "--",
    "?",
];

#[derive(Debug, Clone)]
enum Form {
    Eq(usize),
    Bare,
    TwoItem(usize),
}

#[derive(Debug, Clone)]
struct Flag {
    name: usize,
    form: Form,
    quote: u8, // 0 plain (when safe), 1 single, 2 double
    comment_before: bool,
    trailing_comment: bool,
}

#[derive(Debug, Clone)]
struct Spec {
    bom: bool,
    doc_start: bool,
    crlf: bool,
    final_newline: bool,
    flow: bool,
    flow_sep: usize,
    indent_items: bool,
    dash_spaces: usize,
    layout: usize, // 0 command only, 1 command+args, 2 go-runner, 3 hyperkube, 4 args only
    flags: Vec<Flag>,
}

fn flag() -> impl Strategy<Value = Flag> {
    (
        0..NAMES.len(),
        prop_oneof![
            (0..VALUES.len()).prop_map(Form::Eq),
            Just(Form::Bare),
            (0..VALUES.len()).prop_map(Form::TwoItem)
        ],
        0u8..3,
        proptest::bool::weighted(0.2),
        proptest::bool::weighted(0.2),
    )
        .prop_map(
            |(name, form, quote, comment_before, trailing_comment)| Flag {
                name,
                form,
                quote,
                comment_before,
                trailing_comment,
            },
        )
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        (
            proptest::bool::weighted(0.3),
            0usize..3,
            any::<bool>(),
            1usize..3,
            0usize..5,
        ),
        proptest::collection::vec(flag(), 0..8),
    )
        .prop_map(
            |(
                (bom, doc_start, crlf, final_newline),
                (flow, flow_sep, indent_items, dash_spaces, layout),
                flags,
            )| Spec {
                bom,
                doc_start,
                crlf,
                final_newline,
                flow,
                flow_sep,
                indent_items,
                dash_spaces,
                layout,
                flags,
            },
        )
}

fn safe_plain(s: &str, flow: bool) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-=/._".contains(c) || (!flow && c == ','))
        && !s.chars().next().is_some_and(|c| c.is_ascii_digit())
        && !["on", "no", "x"].contains(&s.to_ascii_lowercase().as_str()) // keep YAML 1.1 words quoted
}

fn quote(s: &str, q: u8, flow: bool) -> String {
    match q {
        0 if safe_plain(s, flow) => s.to_string(),
        1 => format!("'{}'", s.replace('\'', "''")),
        _ => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
    }
}

struct Item {
    text: String,
    comment_before: bool,
    trailing_comment: bool,
}

fn render(spec: &Spec) -> String {
    let mut items: Vec<Item> = Vec::new();
    let plain = |t: &str| Item {
        text: t.to_string(),
        comment_before: false,
        trailing_comment: false,
    };
    for f in &spec.flags {
        let name = NAMES[f.name];
        let (first, second) = match f.form {
            Form::Eq(v) => (format!("--{name}={}", VALUES[v]), None),
            Form::Bare => (format!("--{name}"), None),
            Form::TwoItem(v) => (format!("--{name}"), Some(VALUES[v].to_string())),
        };
        items.push(Item {
            text: quote(&first, f.quote, spec.flow),
            comment_before: f.comment_before,
            trailing_comment: f.trailing_comment,
        });
        if let Some(s) = second {
            items.push(Item {
                text: quote(&s, f.quote, spec.flow),
                comment_before: false,
                trailing_comment: false,
            });
        }
    }
    let (command, args): (Vec<Item>, Option<Vec<Item>>) = match spec.layout {
        0 => {
            let mut c = vec![plain("kube-apiserver")];
            c.extend(items);
            (c, None)
        }
        1 => (vec![plain("kube-apiserver")], Some(items)),
        2 => {
            let mut a = vec![
                plain("--log-file=/var/log/x.log"),
                plain("--also-stdout"),
                plain("/usr/local/bin/kube-apiserver"),
            ];
            a.extend(items);
            (vec![plain("/go-runner")], Some(a))
        }
        3 => {
            let mut c = vec![plain("/hyperkube"), plain("apiserver")];
            c.extend(items);
            (c, None)
        }
        _ => {
            let mut a = vec![plain("--first=1")];
            a.extend(items);
            return render_doc(spec, None, Some(a));
        }
    };
    render_doc(spec, Some(command), args)
}

fn render_list(spec: &Spec, key: &str, items: &[Item], out: &mut Vec<String>) {
    if spec.flow || items.is_empty() {
        let sep = [", ", ",", " , "][spec.flow_sep];
        let body: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
        out.push(format!("    {key}: [{}]", body.join(sep)));
        return;
    }
    out.push(format!("    {key}:"));
    let indent = if spec.indent_items { "      " } else { "    " };
    let dash = format!("-{}", " ".repeat(spec.dash_spaces));
    for it in items {
        if it.comment_before {
            out.push(format!("{indent}# - --commented-out=1"));
        }
        let trailing = if it.trailing_comment { "  # note" } else { "" };
        out.push(format!("{indent}{dash}{}{trailing}", it.text));
    }
}

fn render_doc(spec: &Spec, command: Option<Vec<Item>>, args: Option<Vec<Item>>) -> String {
    let mut lines = Vec::new();
    if spec.doc_start {
        lines.push("---".to_string());
    }
    lines.push("# generated".into());
    lines.push("apiVersion: v1".into());
    lines.push("kind: Pod".into());
    lines.push("metadata:".into());
    lines.push("  name: kube-apiserver".into());
    lines.push("spec:".into());
    lines.push("  containers:".into());
    lines.push("  - name: kube-apiserver".into());
    lines.push("    image: registry.k8s.io/kube-apiserver:v1.30.2".into());
    if let Some(c) = &command {
        render_list(spec, "command", c, &mut lines);
    }
    if let Some(a) = &args {
        render_list(spec, "args", a, &mut lines);
    }
    lines.push("    volumeMounts:".into());
    lines.push("    - mountPath: /etc/kubernetes/pki".into());
    lines.push("      name: k8s-certs".into());
    lines.push("  hostNetwork: true".into());
    lines.push("  volumes:".into());
    lines.push("  - hostPath:".into());
    lines.push("      path: /etc/kubernetes/pki".into());
    lines.push("    name: k8s-certs".into());
    let eol = if spec.crlf { "\r\n" } else { "\n" };
    let mut text = lines.join(eol);
    if spec.final_newline {
        text.push_str(eol);
    }
    if spec.bom {
        text.insert(0, '\u{feff}');
    }
    text
}

fn change() -> impl Strategy<Value = Change> {
    let name = (0..NAMES.len()).prop_map(|i| NAMES[i].to_string());
    let value = (0..NEW_VALUES.len()).prop_map(|i| NEW_VALUES[i].to_string());
    prop_oneof![
        (name.clone(), proptest::option::of(value.clone()))
            .prop_map(|(name, value)| Change::Set { name, value }),
        name.clone().prop_map(|name| Change::Unset { name }),
        (name.clone(), value.clone()).prop_map(|(name, item)| Change::AddItem { name, item }),
        (
            name.clone(),
            value.clone(),
            proptest::option::of(value.clone())
        )
            .prop_map(|(name, item, if_empty)| Change::RemoveItem {
                name,
                item,
                if_empty
            }),
        (name.clone(), -3i64..20).prop_map(|(name, min)| Change::AtLeast { name, min }),
        (name, value.clone(), value).prop_map(|(name, key, value)| Change::SetKey {
            name,
            key,
            value
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn generated_manifests_edit_exactly_or_refuse(spec in spec(), change in change()) {
        let text = render(&spec);
        let input = text.as_bytes();
        let info = inspect(input, None).map_err(|e| TestCaseError::fail(format!("generator made an unreadable manifest: {e}\n{text}")))?;
        prop_assert_eq!(info.container, "kube-apiserver");
        match checked(input, None, &change) {
            Ok(e) => {
                let n = if e.unchanged() { &UNCHANGED } else { &CHANGED };
                n.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => prop_assert!(
                matches!(e.kind, EditErrorKind::Unsupported | EditErrorKind::Value)
                    && REFUSED.fetch_add(1, Ordering::Relaxed) < usize::MAX,
                "{change} refused with {:?}: {e}\n{text}", e.kind
            ),
        }
        for n in NAMES {
            round_trips(input, None, n, "Item");
        }
    }

    #[test]
    fn several_changes_equal_their_sequence(spec in spec(), a in change(), b in change()) {
        let text = render(&spec);
        let input = text.as_bytes();
        let both = edit(input, None, &[a.clone(), b.clone()]);
        let one = edit(input, None, std::slice::from_ref(&a))
            .and_then(|e| edit(&e.output, None, std::slice::from_ref(&b)));
        match (both, one) {
            (Ok(x), Ok(y)) => prop_assert_eq!(x.output, y.output),
            (Err(x), Err(y)) => prop_assert_eq!(x.kind, y.kind),
            (x, y) => prop_assert!(false, "one call and two calls disagree: {:?} vs {:?}", x.map(|e| e.replaced), y.map(|e| e.replaced)),
        }
    }
}
