//! The CIS Kubernetes Benchmark as data, for every supported version and every section, with
//! kube-bench's evaluation semantics and the components' own.
//!
//! This crate is pure (no I/O). It holds, per benchmark version (cis-1.8 ... cis-1.12, and
//! cis-2.0 with cis-1.12's checks), every check kube-bench runs on the five targets (master,
//! etcd, controlplane, node, policies), with:
//!
//! - the test exactly as kube-bench defines it ([`Audit`]: flags on a command line, `stat` of
//!   files, a kubelet key read from the command line or the configuration file, or something
//!   kharden does not reproduce), so that `kharden audit` predicts what an auditor's kube-bench
//!   run prints;
//! - a [`Fix`]: manifest changes ([`Remediation`]), a file's mode and owner ([`FileFix`]), a
//!   kubelet configuration key ([`KubeletFix`]), or the reason a person must do it.
//!
//! Versions share definitions ([`CheckDef`]: one test, the ids it has in each version);
//! a [`Benchmark`] is a view of them. [`select_benchmark`] picks one from a Kubernetes version as
//! kube-bench's `version_mapping` does.
//!
//! # Two readings of every check
//!
//! Evaluation takes facts the caller gathered ([`NodeFacts`]: processes' flags, `lstat` of
//! files, the kubelet's configuration as kube-bench parses it and as the kubelet really uses
//! it) and reads them twice ([`evaluate_check`], or [`evaluate`] for a command line alone): the
//! [`Status`] follows kube-bench, and the effective reading says whether the control really
//! holds, with `disagreement` explaining the difference. For command lines:
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
//! For files, kube-bench's `stat` output is rebuilt and tested (a missing file fails, a symlink
//! is reported as itself, owners are substrings) while the effective reading judges the files the
//! components really use ([`file_requests`] says what to `lstat`, [`plan_file_fix`] what to
//! change). For the kubelet, kube-bench
//! reads a flag from `ps`, else a key of the file `$kubeletconf` resolves to, without defaults,
//! while the effective reading takes the kubelet's own merge of flags, drop-ins, file and
//! defaults.
//!
//! Not modelled: kube-bench's fallback to the process environment for etcd's `ETCD_*`
//! variables (recorded in [`TestItem::env`]; kharden manages flags, and kubeadm's etcd takes no
//! configuration from the environment); other processes that kube-bench's `grep` may add to
//! the audited line (`grep etcd` also matches the API server's `--etcd-servers`); the `ps`
//! columns before the command; the `regex` operator (unused here).
//!
//! See docs/cis-catalog.md for the catalog's automation decisions.

pub mod audit;
pub mod benchmarks;
pub mod config_path;
pub mod effective;
mod eval;
mod eval_config;
mod eval_files;
pub mod facts;
pub mod kube_bench;
mod model;
pub mod paths;
mod remediation;
mod result;
mod version;

pub use audit::{
    Audit, AuditKind, ConfigTest, EffectiveRule, FileFix, FileRole, FileSet, FileTest, FlagTest,
    ForeignSource, KubeletFix, KubeletSetting, KubeletValue, NotEvaluated, Owner, StatFormat,
};
pub use eval::{evaluate, Evaluation, Reading, Status};
pub use eval_config::ConfigReading;
pub use eval_files::{
    file_requests, plan_file_fix, FileBlocked, FileChange, FilePlan, FileReading, FileRequest,
};
pub use facts::{
    Accounts, ConfigContent, ConfigDoc, ConfigFacts, ConfigValue, EffectiveValue, FileFact,
    FileFacts, FileKind, Located, Meta, NodeFacts, ValueSource,
};
pub use model::{
    id_key, section_of, section_title, Appearance, Benchmark, BinOp, Check, CheckDef, Cis, Compare,
    Component, Control, Fix, Op, Section, Target, TestItem,
};
pub use paths::{ComponentPaths, PathKind, Resolution, ResolvedPath};
pub use remediation::{Blocked, ExtraFile, Guard, Remediation};
pub use result::{evaluate_all, evaluate_check, CheckResult, Detail, MissingFact};
pub use version::{
    parse_kubernetes_version, select_benchmark, SelectError, Selection, VERSION_MAPPING,
};

use std::sync::LazyLock;

/// The benchmark `kharden audit` and `kharden harden` use when none is given or selected from
/// the node's version.
pub const DEFAULT_BENCHMARK: &str = "cis-1.12";

static ALL: LazyLock<Vec<&'static Benchmark>> =
    LazyLock::new(|| benchmarks::BENCHMARKS.iter().collect());

/// Every benchmark version compiled in, oldest first.
pub fn benchmarks() -> &'static [&'static Benchmark] {
    &ALL
}

/// The ids of [`benchmarks()`]: `cis-1.8`, ..., `cis-1.12`, `cis-2.0`.
pub fn benchmark_ids() -> Vec<&'static str> {
    benchmarks().iter().map(|b| b.id).collect()
}

/// The benchmark with this id (`cis-1.12`).
pub fn benchmark(id: &str) -> Option<&'static Benchmark> {
    benchmarks().iter().copied().find(|b| b.id == id)
}

/// The benchmark for a Kubernetes version (`1.33`, `v1.33.2`), falling back to the nearest
/// lower mapped minor version: [`select_benchmark`] without the reason.
pub fn benchmark_for_kubernetes(version: &str) -> Option<&'static Benchmark> {
    select_benchmark(version).ok().map(|s| s.benchmark)
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
        assert_eq!(
            benchmark_ids(),
            vec!["cis-1.8", "cis-1.9", "cis-1.10", "cis-1.11", "cis-1.12", "cis-2.0"]
        );
        let b = benchmark("cis-1.12").expect("compiled in");
        assert!(benchmark("cis-0.1").is_none());
        assert_eq!(benchmark_for_kubernetes("1.33").map(|b| b.id), Some(b.id));
        assert!(b.control("1.2.15").is_some());
        assert!(b.control("1.2.28").is_none());
        assert!(b.check("1.2.28").is_some());
        assert_eq!(b.controls_for(Component::Scheduler).count(), 2);
        assert_eq!(Component::from_name("etcd"), Some(Component::Etcd));
        assert_eq!(b.controls.len(), 46);
        assert_eq!(b.checks.len(), 131);
        let two = benchmark("cis-2.0").expect("compiled in");
        assert_eq!(two.checks_of, Cis::V1_12);
        assert_eq!(
            two.checks.iter().map(|c| c.id).collect::<Vec<_>>(),
            b.checks.iter().map(|c| c.id).collect::<Vec<_>>()
        );
    }

    #[test]
    fn ids_are_unique_and_sorted() {
        for b in benchmarks() {
            let keys: Vec<Vec<u32>> = b.checks.iter().map(|c| id_key(c.id)).collect();
            assert!(keys.windows(2).all(|w| w[0] < w[1]), "{}", b.id);
            let keys: Vec<Vec<u32>> = b.controls.iter().map(|c| id_key(c.id)).collect();
            assert!(keys.windows(2).all(|w| w[0] < w[1]), "{}", b.id);
        }
    }

    #[test]
    fn every_remediation_is_well_formed() {
        for b in benchmarks() {
            for c in &b.controls {
                match c.fix {
                    Fix::Manifest(r) => {
                        assert!(!r.changes.is_empty(), "{}", c.id);
                        assert!(!r.note.is_empty(), "{}", c.id);
                        for f in &r.files {
                            // Every file kharden writes is mounted into the pod and named by a
                            // flag.
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
                        // Remediations only touch the flags the control tests, or flags that
                        // name the files they write.
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
                    other => panic!("{}: a command-line control with fix {other:?}", c.id),
                }
            }
        }
    }
}
