//! One reader of a flag's value (issue 12, item 1): the editor, the built-in audit and the
//! catalog read a command line the same way, so an apply that the editor wrote correctly is
//! never rolled back by the audit as "not in effect". Through the real binary and engine.

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

use common::*;

/// A manifest whose apiserver flags are written in the ways pflag accepts beyond `--a=b`.
fn node_with(lines: &[&str]) -> Node {
    let node = Node::new();
    let text = String::from_utf8(APISERVER.to_vec()).unwrap();
    let marker = "    - --advertise-address=";
    let at = text.find(marker).expect("fixture has --advertise-address");
    let mut out = text[..at].to_string();
    for l in lines {
        out.push_str(&format!("    - {l}\n"));
    }
    out.push_str(&text[at..]);
    std::fs::write(&node.manifest, out).unwrap();
    node
}

fn apply_ok(node: &Node, args: &[&str]) -> serde_json::Value {
    let out = node
        .kharden()
        .args(["-o", "json", "apply"])
        .arg(&node.manifest)
        .args(args)
        .arg("--no-gate")
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON document ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(
        out.status.code(),
        Some(0),
        "{doc}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(doc["result"], "committed", "{doc}");
    doc
}

#[test]
fn a_two_item_flag_set_by_apply_commits_and_is_audited_in_effect() {
    let node = node_with(&["--bind-address", "0.0.0.0"]);
    apply_ok(&node, &["--set", "bind-address=127.0.0.1"]);
    let text = String::from_utf8(node.read()).unwrap();
    // The value item is replaced in place, plain like the value it replaces: an address is a
    // string to go-yaml v2 (the kubelet's reader) and to YAML 1.2 (kharden_yaml_span::yaml11).
    assert!(
        text.contains("    - --bind-address\n    - 127.0.0.1\n"),
        "the value item is replaced in place:\n{text}"
    );
    assert_eq!(node.states(), vec!["committed"]);
}

#[test]
fn an_underscore_spelling_is_the_same_flag_for_the_editor_and_the_audit() {
    let node = node_with(&["--bind_address=0.0.0.0"]);
    apply_ok(&node, &["--set", "bind-address=127.0.0.1"]);
    let text = String::from_utf8(node.read()).unwrap();
    assert!(text.contains("- --bind_address=127.0.0.1\n"), "{text}");
    assert!(!text.contains("0.0.0.0"), "{text}");
}

#[test]
fn a_repeated_flag_is_consolidated_and_the_last_occurrence_is_audited() {
    let node = node_with(&["--profiling=false", "--profiling=true"]);
    apply_ok(&node, &["--set", "profiling=false"]);
    let text = String::from_utf8(node.read()).unwrap();
    assert_eq!(text.matches("--profiling").count(), 1, "{text}");
}

#[test]
fn a_list_with_spaces_is_read_item_by_item_without_trimming() {
    // `" EventRateLimit"` (with its space) is not the plugin `EventRateLimit` for pflag's
    // StringSlice: the editor adds it, and the audit agrees that the change is in effect.
    let node = node_with(&[]);
    let text = String::from_utf8(node.read()).unwrap().replace(
        "--enable-admission-plugins=NodeRestriction\n",
        "--enable-admission-plugins=NodeRestriction, EventRateLimit\n",
    );
    std::fs::write(&node.manifest, text).unwrap();
    apply_ok(
        &node,
        &["--add-item", "enable-admission-plugins=EventRateLimit"],
    );
    let text = String::from_utf8(node.read()).unwrap();
    assert!(
        text.contains("--enable-admission-plugins=NodeRestriction, EventRateLimit,EventRateLimit"),
        "{text}"
    );
}

#[test]
fn a_two_item_integer_in_go_syntax_already_satisfies_at_least() {
    // pflag reads integers with Go's ParseInt(s, 0, 64): 0x1e is 30.
    let node = node_with(&["--audit-log-maxage", "0x1e"]);
    let before = node.read();
    let out = node
        .kharden()
        .args(["apply"])
        .arg(&node.manifest)
        .args(["--at-least", "audit-log-maxage=30", "--no-gate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("unchanged"));
    assert_eq!(node.read(), before);
}
