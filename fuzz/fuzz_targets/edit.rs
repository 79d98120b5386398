//! Arbitrary bytes plus an arbitrary change.
//!
//! Input layout: `MANIFEST \0 CHANGE` where CHANGE is `KIND ARG` as on the command line
//! (`set v=4`, `remove-item enable-admission-plugins=X`, `mount NAME:HOST:MNT[:ro]`), optionally
//! followed by `\0CONTAINER`. Without a `\0`, the whole input is the manifest and the change is
//! `set v=4`. The properties checked are those of the crate's own test suite
//! (crates/manifest/tests/common/mod.rs): no panic or hang; a successful edit re-parses,
//! changes only the replaced ranges, is idempotent, leaves no `\r` unless the input had CRLF;
//! setting a flag to its current value is byte-identical; add then remove restores the bytes.
#![no_main]

use kharden_manifest::{Change, Mount};
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/manifest/tests/common/mod.rs"]
#[allow(dead_code, unused_imports)]
mod common;

fn parse_change(spec: &str) -> Option<Change> {
    let (kind, arg) = spec.split_once(' ').unwrap_or((spec, ""));
    if kind == "mount" {
        let p: Vec<&str> = arg.split(':').collect();
        if p.len() < 3 {
            return None;
        }
        return Some(Change::Mount(Mount {
            name: p[0].into(),
            host_path: p[1].into(),
            mount_path: p[2].into(),
            read_only: p.get(3) == Some(&"ro"),
            path_type: p.get(4).map(|s| s.to_string()),
        }));
    }
    if kind == "remove-item-or" {
        // remove-item-or NAME=ITEM=EMPTY
        let mut it = arg.splitn(3, '=');
        let (n, i, e) = (it.next()?, it.next()?, it.next()?);
        return Some(Change::RemoveItem { name: n.into(), item: i.into(), if_empty: Some(e.into()) });
    }
    Change::parse_cli(kind, arg).ok()
}

fuzz_target!(|data: &[u8]| {
    let (manifest, rest) = match data.iter().position(|&b| b == 0) {
        Some(p) => (&data[..p], &data[p + 1..]),
        None => (data, &b"set v=4"[..]),
    };
    let rest = String::from_utf8_lossy(rest);
    let (spec, container) = match rest.split_once('\0') {
        Some((s, c)) => (s.to_string(), Some(c.to_string())),
        None => (rest.to_string(), None),
    };
    let container = container.as_deref();
    let _ = kharden_manifest::inspect(manifest, container);
    let Some(change) = parse_change(&spec) else {
        return;
    };
    let _ = common::checked(manifest, container, &change);
    if let Some(name) = change.flag_name() {
        let item = match &change {
            Change::AddItem { item, .. } | Change::RemoveItem { item, .. } => item.as_str(),
            _ => "FuzzItem",
        };
        common::round_trips(manifest, container, name, item);
    }
});
