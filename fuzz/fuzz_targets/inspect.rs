//! Arbitrary bytes through `inspect` and a fixed sequence of changes through `edit`: never a
//! panic, a hang or an unbounded allocation, whatever the input.
#![no_main]

use kharden_manifest::{edit, inspect, Change};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = inspect(data, None);
    let _ = inspect(data, Some("kube-apiserver"));
    let changes = [
        Change::Set { name: "profiling".into(), value: Some("false".into()) },
        Change::AddItem { name: "enable-admission-plugins".into(), item: "NodeRestriction".into() },
        Change::Unset { name: "insecure-port".into() },
        Change::AtLeast { name: "audit-log-maxage".into(), min: 30 },
        Change::SetKey { name: "feature-gates".into(), key: "A".into(), value: "true".into() },
        Change::Set { name: "kharden".into(), value: None },
    ];
    if let Ok(e) = edit(data, None, &changes) {
        // The output must itself be editable and the same changes must then be a no-op.
        let again = edit(&e.output, None, &changes).expect("edited output must stay editable");
        assert!(again.unchanged(), "the change sequence is not idempotent");
    }
});
