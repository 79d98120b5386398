//! Choosing the benchmark from a Kubernetes version, as kube-bench's `version_mapping` does
//! (with kharden's 1.35 -> cis-2.0), for Kubernetes 1.25 to 1.36 and the spellings nodes report.

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use kharden_catalog::{
    benchmark_for_kubernetes, parse_kubernetes_version, select_benchmark, SelectError,
};

#[test]
fn versions_1_25_to_1_36() {
    #[rustfmt::skip]
    let table: &[(&str, Option<&str>, bool)] = &[
        // (version, benchmark, fell back to a lower minor)
        ("1.25", None, false),
        ("1.26", Some("cis-1.8"), false),
        ("1.27", Some("cis-1.9"), false),
        ("1.28", Some("cis-1.10"), false),
        ("1.29", Some("cis-1.11"), false),
        ("1.30", Some("cis-1.11"), false),
        ("1.31", Some("cis-1.11"), false),
        ("1.32", Some("cis-1.12"), false),
        ("1.33", Some("cis-1.12"), false),
        ("1.34", Some("cis-1.12"), false),
        ("1.35", Some("cis-2.0"), false),
        ("1.36", Some("cis-2.0"), true),
    ];
    for (v, want, fallback) in table {
        match (select_benchmark(v), want) {
            (Ok(s), Some(id)) => {
                assert_eq!(s.benchmark.id, *id, "{v}");
                assert_eq!(s.kubernetes, *v);
                assert_eq!(s.mapped_from != *v, *fallback, "{v}");
                assert!(s.reason.contains(id), "{v}: {}", s.reason);
                assert!(s
                    .benchmark
                    .kubernetes_versions
                    .contains(&s.mapped_from.as_str()));
            }
            (Err(e), None) => {
                assert_eq!(
                    e,
                    SelectError::TooOld {
                        version: v.to_string(),
                        kube_bench: "cis-1.7"
                    }
                );
                assert!(e.to_string().contains("cis-1.7"), "{e}");
                assert!(e.to_string().contains("older"), "{e}");
            }
            (got, _) => panic!("{v}: {got:?}"),
        }
    }
    let s = select_benchmark("1.36").expect("mapped");
    assert!(
        s.reason.contains("nearest lower version, 1.35"),
        "{}",
        s.reason
    );
    let s = select_benchmark("1.35").expect("mapped");
    assert!(s.reason.contains("kharden's mapping"), "{}", s.reason);
    let s = select_benchmark("1.34").expect("mapped");
    assert!(
        s.reason.contains("kube-bench's version_mapping"),
        "{}",
        s.reason
    );
    // Far newer minors keep falling back, far older ones are too old.
    assert_eq!(
        benchmark_for_kubernetes("1.99").map(|b| b.id),
        Some("cis-2.0")
    );
    assert!(matches!(
        select_benchmark("1.20"),
        Err(SelectError::TooOld {
            kube_bench: "cis-1.20",
            ..
        })
    ));
    assert!(matches!(
        select_benchmark("1.10"),
        Err(SelectError::NoMapping { .. })
    ));
    assert!(matches!(
        select_benchmark("2.0"),
        Err(SelectError::NoMapping { .. })
    ));
}

#[test]
fn version_spellings() {
    for (input, want) in [
        ("1.33", (1, 33)),
        ("v1.33.2", (1, 33)),
        ("1.33.2-eks-1234", (1, 33)),
        ("v1.35.0+k3s1", (1, 35)),
        ("1.33+", (1, 33)),
        ("Kubernetes v1.29.4", (1, 29)),
        (" v1.30.0\n", (1, 30)),
    ] {
        assert_eq!(parse_kubernetes_version(input), Ok(want), "{input}");
    }
    for bad in ["", "1", "v1", "x.y", "1.x", "1.33a", "one.two", "1..2"] {
        assert!(
            matches!(
                parse_kubernetes_version(bad),
                Err(SelectError::Unparseable { .. })
            ),
            "{bad:?}"
        );
    }
    assert_eq!(
        select_benchmark("v1.33.2").map(|s| s.benchmark.id),
        Ok("cis-1.12")
    );
}
