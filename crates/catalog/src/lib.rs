//! CIS Kubernetes Benchmark controls for control-plane flags, as data, evaluated with
//! kube-bench's semantics.
//!
//! This crate is pure (no I/O). It holds, per benchmark version, every CIS control of
//! sections 1.2 (API server), 1.3 (controller manager), 1.4 (scheduler), 2 (etcd) and 3.2.1
//! (audit policy) that kube-bench checks on a component's command line, with:
//!
//! - the test exactly as kube-bench defines it ([`TestItem`], [`BinOp`], `scored`,
//!   `type: manual`), so that `kharden audit` predicts what an auditor's kube-bench run says;
//! - a [`Fix`]: either an automated [`Remediation`] (manifest [`kharden_manifest::Change`]s,
//!   hostPath mounts, files to write, guards) or the reason a person must do it.
//!
//! # Two readings of one command line
//!
//! [`evaluate`] reads the argv twice and reports both results ([`Evaluation`]); the
//! [`Status`] follows kube-bench, `disagreement` says when the component's own flag parser
//! would decide otherwise. The differences, all deliberate (kube-bench's are its bugs,
//! reproduced so that the prediction is right):
//!
//! | | kube-bench (`status`, `kube_bench`) | flag parser (`flag_parser`) |
//! |---|---|---|
//! | repeated flag | first occurrence | last occurrence |
//! | flag lookup | substring of the `ps` line (`--encryption-provider-config` is found in `--encryption-provider-config-automatic-reload`) | exact name |
//! | `--flag value` (two items) | `true` | `value` (when it does not start with `-`) |
//! | `--flag=` | `true` | empty string |
//! | value with a space | cut at the space (argv is joined, as `ps` shows it) | whole item |
//! | booleans in `eq`/`noteq` | only `true`/`false` in any case | Go `ParseBool` (`0`, `f`, `F`, `FALSE`, ...) |
//! | integers | decimal `Atoi` after trimming spaces | Go `ParseInt(s, 0, 64)` (`0x1e`, `036`, no spaces) |
//! | `has`/`nothave` | substring (`Node` is in `NodeRestriction`) | list membership; `KEY=VALUE` looks up the last `KEY` of a map flag |
//! | missing flag with a compare | item fails | item fails |
//! | `set: false` | the flag text appears nowhere | no occurrence of the exact flag |
//!
//! Not modelled: kube-bench's fallback to the process environment for etcd's `ETCD_*`
//! variables (the variable names are recorded in [`TestItem::env`]; kharden manages flags,
//! and kubeadm's etcd takes no configuration from the environment); other processes that
//! kube-bench's `grep` may add to the audited line (`grep etcd` also matches the API server's
//! `--etcd-servers`); the `ps` columns before the command; the `regex` operator (unused here).
//!
//! See docs/cis-catalog.md for the catalog's automation decisions.

pub mod benchmarks;
pub mod effective;
mod eval;
pub mod kube_bench;
mod model;
mod remediation;

pub use eval::{evaluate, Evaluation, Observation, Status};
pub use model::{Benchmark, BinOp, Compare, Component, Control, Fix, Op, TestItem};
pub use remediation::{Blocked, ExtraFile, Guard, Remediation};

use std::sync::LazyLock;

/// The benchmark `kharden audit` and `kharden harden` use when none is given.
pub const DEFAULT_BENCHMARK: &str = "cis-1.12";

static ALL: LazyLock<Vec<&'static Benchmark>> =
    LazyLock::new(|| vec![&*benchmarks::cis_1_12::BENCHMARK]);

/// Every benchmark version compiled in, oldest first.
pub fn benchmarks() -> &'static [&'static Benchmark] {
    &ALL
}

/// The ids of [`benchmarks`], e.g. `["cis-1.12"]`.
pub fn benchmark_ids() -> Vec<&'static str> {
    benchmarks().iter().map(|b| b.id).collect()
}

/// The benchmark with this id (`cis-1.12`).
pub fn benchmark(id: &str) -> Option<&'static Benchmark> {
    benchmarks().iter().copied().find(|b| b.id == id)
}

/// The benchmark kube-bench picks for a Kubernetes `MAJOR.MINOR` version (`1.33`).
pub fn benchmark_for_kubernetes(version: &str) -> Option<&'static Benchmark> {
    benchmarks()
        .iter()
        .copied()
        .find(|b| b.kubernetes_versions.contains(&version))
}

/// True when `kharden harden` may fix `control` on its own (its remediation's guards are
/// still to be checked on the actual argv with [`Remediation::check_guards`]).
pub fn is_automatable(control: &Control) -> bool {
    control.is_automatable()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup() {
        assert_eq!(benchmark_ids(), vec!["cis-1.12"]);
        let b = benchmark("cis-1.12").expect("compiled in");
        assert!(benchmark("cis-0.1").is_none());
        assert_eq!(benchmark_for_kubernetes("1.33").map(|b| b.id), Some(b.id));
        assert!(b.control("1.2.15").is_some());
        assert!(b.control("1.2.28").is_none());
        assert_eq!(b.controls_for(Component::Scheduler).count(), 2);
        assert_eq!(Component::from_name("etcd"), Some(Component::Etcd));
    }

    #[test]
    fn ids_are_unique_and_sorted() {
        for b in benchmarks() {
            let keys: Vec<Vec<u32>> = b
                .controls
                .iter()
                .map(|c| benchmarks::cis_1_12::id_key(c.id))
                .collect();
            assert!(keys.windows(2).all(|w| w[0] < w[1]), "{}", b.id);
        }
    }

    #[test]
    fn every_remediation_is_well_formed() {
        for c in &benchmarks()[0].controls {
            match &c.fix {
                Fix::Automated(r) => {
                    assert!(!r.changes.is_empty(), "{}", c.id);
                    assert!(!r.note.is_empty(), "{}", c.id);
                    for f in &r.files {
                        // Every file kharden writes is mounted into the pod and named by a flag.
                        assert!(
                            r.changes.iter().any(|ch| matches!(ch,
                                kharden_manifest::Change::Mount(m) if m.host_path == f.path)),
                            "{}: {} not mounted",
                            c.id,
                            f.path
                        );
                        assert!(
                            r.changes.iter().any(|ch| matches!(ch,
                                kharden_manifest::Change::Set { value: Some(v), .. } if *v == f.path)),
                            "{}: {} not named by a flag",
                            c.id,
                            f.path
                        );
                        assert_eq!(f.mode & 0o077, 0, "{}", c.id);
                    }
                    // Remediations only touch the flags the control tests, or flags that name
                    // the files they write, or the authorizers they must keep consistent.
                    for name in r.flags() {
                        let tested = c.tests.iter().any(|t| t.name() == name);
                        let names_file = r.files.iter().any(|f| {
                            r.changes.iter().any(|ch| {
                                matches!(ch,
                                kharden_manifest::Change::Set { name: n, value: Some(v) }
                                    if n == name && *v == f.path)
                            })
                        });
                        assert!(tested || names_file, "{}: touches --{name}", c.id);
                    }
                }
                Fix::Manual { reason } => assert!(!reason.is_empty(), "{}", c.id),
            }
        }
    }
}
