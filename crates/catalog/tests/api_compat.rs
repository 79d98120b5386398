//! The API the main crate uses today (src/cis.rs, src/cli/commands/cis.rs, src/cli/args.rs,
//! tests/harden_corpus.rs), exercised the way it uses it, so that a change here that would break
//! those callers fails in this crate first. The command-line view (`Benchmark::controls`,
//! `evaluate`) keeps its meaning: the control-plane flag checks only.

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use kharden_catalog::{evaluate, Benchmark, Component, Control, Evaluation, Status};

#[derive(Debug, Clone, serde::Serialize)]
struct ControlResult {
    id: &'static str,
    title: &'static str,
    component: Component,
    scored: bool,
    status: Status,
    evaluation: Option<Evaluation>,
    automatable: bool,
    note: Option<String>,
}

fn audit_one(c: &Control, flags: &[String]) -> ControlResult {
    let base = ControlResult {
        id: c.id,
        title: c.title,
        component: c.component,
        scored: c.scored,
        status: Status::Warn,
        evaluation: None,
        automatable: c.is_automatable(),
        note: c.manual_reason().map(str::to_string),
    };
    let ev = evaluate(c, flags);
    ControlResult {
        status: ev.status,
        evaluation: Some(ev),
        ..base
    }
}

fn colour(status: Status) -> &'static str {
    match status {
        Status::Pass => "32",
        Status::Fail => "31",
        Status::Warn => "33",
        Status::Manual => "36",
    }
}

#[test]
fn the_main_crate_s_calls_still_work() {
    const DEFAULT: &str = kharden_catalog::DEFAULT_BENCHMARK;
    let bench: &'static Benchmark = kharden_catalog::benchmark(DEFAULT).expect("default");
    assert!(kharden_catalog::benchmark_ids()
        .join(", ")
        .contains("cis-1.12"));
    assert_eq!(
        Component::from_name("kube-apiserver"),
        Some(Component::ApiServer)
    );
    let flags: Vec<String> = vec!["--profiling=true".into()];
    let results: Vec<ControlResult> = bench
        .controls
        .iter()
        .map(|c| audit_one(c, &flags))
        .collect();
    // The command-line view is what it was: 46 control-plane flag checks, in five sections.
    assert_eq!(results.len(), 46);
    assert!(results.iter().all(|r| r.component.is_control_plane()));
    let r = results.iter().find(|r| r.id == "1.2.15").expect("1.2.15");
    assert_eq!(r.status, Status::Fail);
    assert_eq!(colour(r.status), "31");
    let e = r.evaluation.as_ref().expect("evaluated");
    assert!(!e.kube_bench && !e.flag_parser && e.disagreement.is_none());
    // harden: remediations, guards, files, changes rendered as text.
    let c: &'static Control = bench.control("1.2.9").expect("1.2.9");
    let rem = c.remediation().expect("automated");
    assert!(rem.check_guards(&flags).is_ok());
    let text: Vec<String> = rem.changes.iter().map(ToString::to_string).collect();
    assert!(!text.is_empty());
    let mut changes: Vec<kharden_manifest::Change> = Vec::new();
    changes.extend(rem.changes.iter().cloned());
    assert_eq!(changes.len(), rem.changes.len());
    for x in &rem.files {
        let _path: &String = &x.path;
        let bytes: Vec<u8> = x.contents.as_bytes().to_vec();
        assert!(!bytes.is_empty());
    }
    let names: Vec<String> = rem
        .changes
        .iter()
        .filter_map(|ch| ch.flag_name().map(str::to_string))
        .collect();
    assert!(names.contains(&"enable-admission-plugins".to_string()));
    let manual = bench.control("1.2.1").expect("1.2.1");
    assert!(!manual.is_automatable());
    assert!(manual.manual_reason().is_some());
    assert!(kharden_catalog::is_automatable(c));
    let v = serde_yaml::to_value(&results[0]).expect("serializable");
    // As before: serde spells the variant, `name()` the binary.
    assert_eq!(v["component"].as_str(), Some("api-server"));
}
