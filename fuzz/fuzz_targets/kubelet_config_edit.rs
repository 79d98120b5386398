//! Arbitrary bytes plus arbitrary changes to a KubeletConfiguration file.
//!
//! Input layout: `FILE \0 CHANGES` where CHANGES are lines `set PATH=T:VALUE` (T is `b` for a
//! boolean, `i` for an integer, `s` for a string), `unset PATH`, `list PATH=A,B` (an empty
//! value is an empty list). Without a `\0` the whole input is the file and the change is
//! `set readOnlyPort=i:0`. Checked (crates/kubelet-config/tests/common/mod.rs): no panic or hang;
//! a refusal is never a failed verification; a successful edit changes only the replaced ranges,
//! is idempotent, reads back with the intended types, keeps JSON valid JSON. The same bytes are
//! also read as the kubelet's `--config` file (effective configuration) and as a drop-in.
#![no_main]

use kharden_kubelet_config::{
    effective, ConfigChange, ConfigDoc, ConfigSource, KeyPath, Scalar, Sources,
};
use kharden_manifest::Flags;
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/kubelet-config/tests/common/mod.rs"]
#[allow(dead_code, unused_imports)]
mod common;

fn parse_change(line: &str) -> Option<ConfigChange> {
    let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
    match kind {
        "unset" => Some(ConfigChange::Unset {
            path: KeyPath::parse(rest).ok()?,
        }),
        "set" => {
            let (p, v) = rest.split_once('=')?;
            let path = KeyPath::parse(p).ok()?;
            let value = match v.split_once(':')? {
                ("b", b) => Scalar::Bool(b == "true"),
                ("i", i) => Scalar::Int(i.parse().ok()?),
                ("s", s) => Scalar::Str(s.to_string()),
                _ => return None,
            };
            Some(ConfigChange::Set { path, value })
        }
        "list" => {
            let (p, v) = rest.split_once('=')?;
            let path = KeyPath::parse(p).ok()?;
            let items = if v.is_empty() {
                Vec::new()
            } else {
                v.split(',').map(|s| Scalar::Str(s.to_string())).collect()
            };
            Some(ConfigChange::SetList { path, items })
        }
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let (file, rest) = match data.iter().position(|&b| b == 0) {
        Some(p) => (&data[..p], &data[p + 1..]),
        None => (data, &b"set readOnlyPort=i:0"[..]),
    };
    let rest = String::from_utf8_lossy(rest);
    let changes: Vec<ConfigChange> = rest.lines().take(8).filter_map(parse_change).collect();
    if let Ok(doc) = ConfigDoc::parse(file) {
        let _ = doc.value();
        for c in &changes {
            let _ = doc.get(c.path());
        }
    }
    let flags = Flags::default();
    let _ = effective(&Sources {
        config: Some(ConfigSource {
            name: "/var/lib/kubelet/config.yaml",
            bytes: file,
        }),
        dropins: vec![ConfigSource {
            name: "10-fuzz.conf",
            bytes: file,
        }],
        flags: &flags,
    });
    if changes.is_empty() {
        return;
    }
    let _ = common::checked(file, &changes);
    for c in &changes {
        let _ = common::checked(file, std::slice::from_ref(c));
    }
});
