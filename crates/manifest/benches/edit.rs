//! One change on a ~5 KB kubeadm apiserver manifest: parse + plan + splice + verify.
//!
//! `cargo bench -p kharden-manifest --bench edit`

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use divan::{black_box, Bencher};
use kharden_manifest::{edit, inspect, Change};

const APISERVER: &[u8] = include_bytes!("../tests/fixtures/kubeadm-apiserver.yaml");

fn main() {
    divan::main();
}

/// Rewrite an existing flag's value (the common case).
#[divan::bench]
fn set_existing_flag(b: Bencher) {
    let change = vec![Change::Set {
        name: "secure-port".into(),
        value: Some("6444".into()),
    }];
    b.bench(|| edit(black_box(APISERVER), None, black_box(&change)).map(|e| e.output.len()));
}

/// Append a new flag.
#[divan::bench]
fn add_new_flag(b: Bencher) {
    let change = vec![Change::Set {
        name: "profiling".into(),
        value: Some("false".into()),
    }];
    b.bench(|| edit(black_box(APISERVER), None, black_box(&change)).map(|e| e.output.len()));
}

/// A change that is already in effect (parse + locate + plan, no verification needed).
#[divan::bench]
fn no_op_change(b: Bencher) {
    let change = vec![Change::Set {
        name: "secure-port".into(),
        value: Some("6443".into()),
    }];
    b.bench(|| edit(black_box(APISERVER), None, black_box(&change)).map(|e| e.output.len()));
}

/// Inspection alone (saphyr parse + locate).
#[divan::bench]
fn inspect_only(b: Bencher) {
    b.bench(|| inspect(black_box(APISERVER), None).map(|i| i.argv.len()));
}

/// For comparison: one serde_yaml parse of the same file (verification needs two: the input and
/// the output).
#[divan::bench]
fn serde_yaml_parse_only(b: Bencher) {
    let text = std::str::from_utf8(APISERVER).unwrap_or_default();
    b.bench(|| serde_yaml::from_str::<serde_yaml::Value>(black_box(text)).is_ok());
}

/// A manifest with `n` repeated `--v=2` flags, consolidated by one `--set v=3`: linear in `n`
/// (issue 11: 69,000 repeats took 12-14 s when every removed item was looked up in the list
/// of all operations).
#[divan::bench(args = [1_000, 10_000, 69_000], sample_count = 3)]
fn consolidate_repeated_flags(b: Bencher, n: usize) {
    let text = std::str::from_utf8(APISERVER).unwrap_or_default();
    let many: String = "    - --v=2\n".repeat(n);
    let input = text.replacen(
        "    - --advertise-address=",
        &format!("{many}    - --advertise-address="),
        1,
    );
    let change = vec![Change::Set {
        name: "v".into(),
        value: Some("3".into()),
    }];
    b.bench(|| edit(black_box(input.as_bytes()), None, black_box(&change)).map(|e| e.output.len()));
}
