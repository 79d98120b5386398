//! Arbitrary bytes as a kubelet environment file (kubeadm-flags.env, /etc/default/kubelet)
//! plus arbitrary flag changes.
//!
//! Input layout: `FILE \0 CHANGES` where CHANGES are lines `set NAME=VALUE` (optionally
//! followed by `>VAR`, the variable to append to) or `unset NAME`; the kubelet's variables are
//! `KUBELET_KUBEADM_ARGS KUBELET_EXTRA_ARGS A B`. Without a `\0` the change is
//! `set read-only-port=0`. Checked (crates/kubelet-config/tests/common/mod.rs): no panic or
//! hang; a refusal is never a failed verification; a successful edit changes only the replaced
//! ranges, is idempotent, and leaves the flag exactly once with its value (or absent).
#![no_main]

use kharden_kubelet_config::{split_exec_words, EnvFile, FlagChange};
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/kubelet-config/tests/common/mod.rs"]
#[allow(dead_code, unused_imports)]
mod common;

const VARS: &[&str] = &["KUBELET_KUBEADM_ARGS", "KUBELET_EXTRA_ARGS", "A", "B"];

fn parse_change(line: &str) -> Option<FlagChange> {
    let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
    match kind {
        "unset" => Some(FlagChange::Unset {
            name: rest.to_string(),
        }),
        "set" => {
            let (rest, to) = match rest.rsplit_once(" >") {
                Some((r, t)) => (r, Some(t.to_string())),
                None => (rest, None),
            };
            let (n, v) = rest.split_once('=')?;
            Some(FlagChange::Set {
                name: n.to_string(),
                value: v.to_string(),
                append_to: to,
            })
        }
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let (file, rest) = match data.iter().position(|&b| b == 0) {
        Some(p) => (&data[..p], &data[p + 1..]),
        None => (data, &b"set read-only-port=0"[..]),
    };
    if let Ok(env) = EnvFile::parse(file) {
        for a in env.assignments() {
            let _ = split_exec_words(&a.value);
        }
    }
    let rest = String::from_utf8_lossy(rest);
    let changes: Vec<FlagChange> = rest.lines().take(6).filter_map(parse_change).collect();
    if changes.is_empty() {
        return;
    }
    let _ = common::env_checked(file, VARS, &changes);
    for c in &changes {
        let _ = common::env_checked(file, VARS, std::slice::from_ref(c));
    }
});
