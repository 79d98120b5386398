//! Property checks shared by the fixture, corpus and proptest suites (the fuzz targets check
//! the same properties).
#![allow(dead_code)]

use kharden_manifest::{edit, inspect, Change, EditError, Edited, Flags, Mount};

/// Check every property of a successful edit; returns the edit result unchanged.
pub fn checked(
    input: &[u8],
    container: Option<&str>,
    change: &Change,
) -> Result<Edited, EditError> {
    let res = edit(input, container, std::slice::from_ref(change));
    let Ok(e) = &res else {
        let err = res.as_ref().err().unwrap();
        assert!(!err.reason.is_empty(), "a refusal must say why");
        return res;
    };
    let out = &e.output;
    // unchanged <=> no replaced ranges
    assert_eq!(
        e.unchanged(),
        out.as_slice() == input,
        "unchanged() must match the bytes ({change})"
    );
    // bytes outside the replaced ranges are identical and in order
    let mut at = 0usize;
    let mut prev_end = 0usize;
    for r in &e.replaced {
        assert!(
            r.start >= prev_end && r.end <= input.len(),
            "ranges sorted and in bounds"
        );
        let keep = &input[prev_end..r.start];
        let found =
            find(&out[at..], keep).unwrap_or_else(|| panic!("kept bytes missing ({change})"));
        if prev_end == 0 {
            assert_eq!(found, 0, "prefix must be identical ({change})");
        }
        at += found + keep.len();
        prev_end = r.end;
    }
    assert!(
        out.ends_with(&input[prev_end..]),
        "suffix must be identical ({change})"
    );
    if e.replaced.len() == 1 {
        let r = &e.replaced[0];
        assert!(out.starts_with(&input[..r.start]));
    }
    // no CR unless the input had CRLF
    if !contains(input, b"\r\n") {
        assert!(!out.contains(&b'\r'), "a CR appeared ({change})");
    }
    // the output reads back to the reported argv
    let again = inspect(out, container).expect("the output must inspect");
    assert_eq!(
        again.argv, e.after.argv,
        "after.argv must be what the file says ({change})"
    );
    assert_eq!(again.flags_start, e.after.flags_start);
    // applying the change again changes nothing
    let twice = edit(out, container, std::slice::from_ref(change))
        .unwrap_or_else(|err| panic!("second application of {change} failed: {err}"));
    assert!(
        twice.unchanged(),
        "{change} is not idempotent:\n{}",
        String::from_utf8_lossy(&twice.output)
    );
    // the change is in effect (last occurrence wins)
    if let Some(name) = change.flag_name() {
        let fl = &e.after.argv[e.after.flags_start..];
        match change {
            Change::Set { value, .. } => {
                assert_eq!(effective(fl, name), Some(value.clone()), "{change}")
            }
            Change::Unset { .. } => assert_eq!(effective(fl, name), None, "{change}"),
            _ => {}
        }
    }
    res
}

/// Setting a flag to its current value is byte-identical; add-then-remove restores the input
/// when the add was a pure insertion.
pub fn round_trips(input: &[u8], container: Option<&str>, name: &str, item: &str) {
    let Ok(info) = inspect(input, container) else {
        return;
    };
    let fl = &info.argv[info.flags_start..];
    let parsed = Flags::parse(fl);
    let occ: Vec<_> = parsed.all(name).collect();
    if occ.len() == 1 {
        if let Some(v) = occ[0].value.as_str() {
            let set = Change::Set {
                name: name.into(),
                value: Some(v.to_string()),
            };
            if let Ok(e) = edit(input, container, &[set]) {
                assert!(
                    e.unchanged(),
                    "setting --{name} to its value changed the file"
                );
            }
        }
    }
    // `--name=` (an empty list) is the one case where add-then-remove cannot restore the
    // bytes: removing the last item removes the flag, by definition of remove-item.
    if occ.iter().any(|f| f.value.as_str() == Some("")) {
        return;
    }
    let add = Change::AddItem {
        name: name.into(),
        item: item.into(),
    };
    let Ok(added) = edit(input, container, &[add]) else {
        return;
    };
    if added.unchanged() || !added.replaced.iter().all(|r| r.is_empty()) {
        return;
    }
    let rm = Change::RemoveItem {
        name: name.into(),
        item: item.into(),
        if_empty: None,
    };
    let removed = edit(&added.output, container, &[rm]).expect("remove after add");
    assert_eq!(
        String::from_utf8_lossy(&removed.output),
        String::from_utf8_lossy(input),
        "add then remove of {item} in --{name} did not restore the bytes"
    );
}

/// The effective value of a flag (last occurrence wins), reading `--name value` (two items)
/// as a value: an oracle written apart from `kharden_manifest::Flags`, which the editor's own
/// verification uses.
pub fn effective(fl: &[String], name: &str) -> Option<Option<String>> {
    let mut found = None;
    let mut i = 0;
    while i < fl.len() {
        let item = &fl[i];
        if item == "--" {
            break;
        }
        let body = item.strip_prefix("--").or_else(|| item.strip_prefix('-'));
        let Some(body) = body.filter(|b| !b.is_empty() && !b.starts_with('-')) else {
            i += 1;
            continue;
        };
        let (n, v) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let next = fl.get(i + 1).filter(|n| v.is_none() && !n.starts_with('-'));
        if n.replace('_', "-") == name.replace('_', "-") {
            found = Some(v.or_else(|| next.cloned()));
        }
        i += if next.is_some() { 2 } else { 1 };
    }
    found
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// A unified line diff of an edit (one line of context), for snapshots. Carriage returns
/// show as `␍`, a missing final newline as `⏎`.
pub fn diff(before: &[u8], after: &[u8]) -> String {
    let show = |b: &[u8]| String::from_utf8_lossy(b).replace('\r', "␍");
    let (b, a) = (show(before), show(after));
    let d = similar::TextDiff::from_lines(&b, &a);
    let mut out = String::new();
    for group in d.grouped_ops(1) {
        for op in group {
            for ch in d.iter_changes(&op) {
                let sign = match ch.tag() {
                    similar::ChangeTag::Delete => "-",
                    similar::ChangeTag::Insert => "+",
                    similar::ChangeTag::Equal => " ",
                };
                let line = ch.value();
                out.push_str(&format!(
                    "{sign}{:>4} {line}",
                    ch.old_index().or(ch.new_index()).map_or(0, |i| i + 1)
                ));
                if !line.ends_with('\n') {
                    out.push_str("⏎\n");
                }
            }
        }
        out.push_str("...\n");
    }
    out
}

/// Changes that make sense for a component (flags it has, lists it uses).
pub fn changes_for(component: Option<&str>) -> Vec<Change> {
    let c = |k: &str, a: &str| Change::parse_cli(k, a).unwrap();
    let mut v = vec![
        c("set", "profiling=false"),
        c("set", "v=4"),
        c("set", "kharden-test-flag=on"),
        c("set", "kharden-bare"),
        c("unset", "profiling"),
        c("unset", "v"),
        c("at-least", "v=3"),
        c(
            "set-key",
            "feature-gates=RotateKubeletServerCertificate=true",
        ),
        Change::Mount(Mount {
            name: "kharden-test".into(),
            host_path: "/etc/kubernetes/kharden".into(),
            mount_path: "/etc/kubernetes/kharden".into(),
            read_only: true,
            path_type: Some("DirectoryOrCreate".into()),
        }),
    ];
    match component {
        Some("kube-apiserver") => v.extend([
            c("set", "anonymous-auth=false"),
            c("add-item", "enable-admission-plugins=NodeRestriction"),
            c("add-item", "enable-admission-plugins=AlwaysPullImages"),
            c("remove-item", "enable-admission-plugins=AlwaysAdmit"),
            c("remove-item", "authorization-mode=AlwaysAllow"),
            c("add-item", "authorization-mode=Node"),
            c("at-least", "audit-log-maxage=30"),
            c("set", "audit-log-path=/var/log/apiserver/audit.log"),
            c("set", "tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        ]),
        Some("kube-controller-manager") => v.extend([
            c("set", "use-service-account-credentials=true"),
            c("at-least", "terminated-pod-gc-threshold=10"),
            c("set", "bind-address=127.0.0.1"),
        ]),
        Some("kube-scheduler") => v.extend([c("set", "bind-address=127.0.0.1")]),
        Some("etcd") => v.extend([
            c("set", "client-cert-auth=true"),
            c("unset", "auto-tls"),
            c("set", "peer-auto-tls=false"),
        ]),
        _ => {}
    }
    v
}
