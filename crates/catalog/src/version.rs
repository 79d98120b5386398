//! Choosing the benchmark for a Kubernetes version, the way kube-bench's `version_mapping` does.
//!
//! kube-bench maps a Kubernetes `MAJOR.MINOR` to a benchmark through the table in its
//! `cfg/config.yaml`; a minor version it does not list falls back to the nearest lower one it
//! does (`decrementVersion`, one minor at a time). kharden carries the same table (the generic
//! CIS entries of the snapshot described in `shared/cis/SOURCE.md`) so that `kharden audit`
//! picks what an auditor's kube-bench picks, plus one entry of its own:
//!
//! - **1.35 -> cis-2.0.** The snapshot stops at 1.34 (-> cis-1.12), so kube-bench would run
//!   cis-1.12 on 1.35 by fallback. CIS Kubernetes Benchmark 2.0.1 is the one written for
//!   1.34-1.35, and kube-bench's definitions of cis-2.0 are those of cis-1.12 (only remediation
//!   texts changed): the verdicts are identical, only the name in the report differs, and the
//!   name an auditor expects for 1.35 is cis-2.0.
//! - **1.34 stays cis-1.12**, as the snapshot says: a report must name what the auditor's
//!   kube-bench names. `--benchmark cis-2.0` selects cis-2.0 for 1.34 explicitly.
//! - **Newer minors** (1.36, ...) fall back to 1.35, hence cis-2.0, as kube-bench falls back.
//! - **Older than 1.26**: kube-bench maps 1.25 to cis-1.7 (and older ones further back), which
//!   kharden does not carry: an error that says so.

use serde::Serialize;

use crate::model::Benchmark;

/// kube-bench's `version_mapping` for the generic CIS benchmarks, plus kharden's 1.35 entry.
pub const VERSION_MAPPING: &[(&str, &str)] = &[
    ("1.15", "cis-1.5"),
    ("1.16", "cis-1.6"),
    ("1.17", "cis-1.6"),
    ("1.18", "cis-1.6"),
    ("1.19", "cis-1.20"),
    ("1.20", "cis-1.20"),
    ("1.21", "cis-1.20"),
    ("1.22", "cis-1.23"),
    ("1.23", "cis-1.23"),
    ("1.24", "cis-1.24"),
    ("1.25", "cis-1.7"),
    ("1.26", "cis-1.8"),
    ("1.27", "cis-1.9"),
    ("1.28", "cis-1.10"),
    ("1.29", "cis-1.11"),
    ("1.30", "cis-1.11"),
    ("1.31", "cis-1.11"),
    ("1.32", "cis-1.12"),
    ("1.33", "cis-1.12"),
    ("1.34", "cis-1.12"),
    // kharden's addition (see the module docs).
    ("1.35", "cis-2.0"),
];

/// The entry kharden adds to kube-bench's snapshot.
pub const KHARDEN_MAPPING: (&str, &str) = ("1.35", "cis-2.0");

/// Why a version selects no benchmark.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum SelectError {
    #[error("{input:?} is not a Kubernetes version (expected MAJOR.MINOR, e.g. 1.33 or v1.33.2)")]
    Unparseable { input: String },
    #[error(
        "Kubernetes {version} is older than every benchmark kharden carries (the oldest, \
         cis-1.8, is for 1.26); kube-bench would use {kube_bench}"
    )]
    TooOld {
        version: String,
        kube_bench: &'static str,
    },
    #[error("no benchmark is mapped to Kubernetes {version} or any lower minor version")]
    NoMapping { version: String },
}

/// The benchmark chosen for a Kubernetes version, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Selection {
    pub benchmark: &'static Benchmark,
    /// The version asked, as `MAJOR.MINOR`.
    pub kubernetes: String,
    /// The mapping entry used (lower than `kubernetes` after a fallback).
    pub mapped_from: String,
    /// One sentence for the report.
    pub reason: String,
}

/// `MAJOR.MINOR` out of `1.33`, `v1.33.2`, `1.33.2-eks-abc`, `v1.35.0+k3s1`, `1.33+` (GKE's
/// minor), or the kubelet's `Kubernetes v1.33.2`.
pub fn parse_kubernetes_version(input: &str) -> Result<(u32, u32), SelectError> {
    let bad = || SelectError::Unparseable {
        input: input.to_string(),
    };
    let s = input.trim();
    let s = s.strip_prefix("Kubernetes ").unwrap_or(s).trim();
    let s = s.strip_prefix('v').unwrap_or(s);
    let mut parts = s.splitn(3, '.');
    let major = parts.next().ok_or_else(bad)?;
    let minor_part = parts.next().ok_or_else(bad)?;
    let minor: String = minor_part
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let rest = &minor_part[minor.len()..];
    if !(rest.is_empty() || rest.starts_with(['+', '-'])) {
        return Err(bad());
    }
    if major.is_empty() || !major.bytes().all(|b| b.is_ascii_digit()) || minor.is_empty() {
        return Err(bad());
    }
    let major: u32 = major.parse().map_err(|_| bad())?;
    let minor: u32 = minor.parse().map_err(|_| bad())?;
    Ok((major, minor))
}

/// The benchmark for a Kubernetes version: kube-bench's mapping, falling back one minor
/// version at a time to the nearest lower mapped one.
pub fn select_benchmark(version: &str) -> Result<Selection, SelectError> {
    let (major, minor) = parse_kubernetes_version(version)?;
    let asked = format!("{major}.{minor}");
    let mut m = minor;
    loop {
        let key = format!("{major}.{m}");
        if let Some((_, id)) = VERSION_MAPPING.iter().find(|(k, _)| *k == key) {
            let Some(benchmark) = crate::benchmark(id) else {
                return Err(SelectError::TooOld {
                    version: asked,
                    kube_bench: id,
                });
            };
            let origin = if (key.as_str(), *id) == KHARDEN_MAPPING {
                "kharden's mapping: kube-bench's snapshot stops at 1.34, and CIS 2.0.1 is the \
                 benchmark for 1.34-1.35, with cis-1.12's checks"
            } else {
                "kube-bench's version_mapping"
            };
            let reason = if m == minor {
                format!("Kubernetes {asked} maps to {id} ({origin})")
            } else {
                format!(
                    "Kubernetes {asked} is not in the mapping; like kube-bench, the nearest \
                     lower version, {key}, is used: {id} ({origin})"
                )
            };
            return Ok(Selection {
                benchmark,
                kubernetes: asked,
                mapped_from: key,
                reason,
            });
        }
        // kube-bench's decrementVersion gives up below minor 2.
        if m <= 1 {
            return Err(SelectError::NoMapping { version: asked });
        }
        m -= 1;
    }
}
