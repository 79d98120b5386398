//! Issue 16's measurements, on the test node's kubelet emulator with the real etcd and the
//! fake API server, for docs/performance.md ("Fast verdicts"):
//!
//! ```text
//! cargo build --release && cargo run --release --example fast_verdicts -- [RUNS]
//! ```
//!
//! 1. **A change etcd cannot start with**, `kharden apply etcd.yaml --set
//!    heartbeat-interval=notanumber` with the default gate options (`--health-timeout 60`,
//!    `--stable-for 5`, `--max-crashes 2`), under the emulator with the kubelet's own restart
//!    back-off (CrashLoopBackOff: 10 s, doubling) and with the emulator's quick one (0.5 s): the
//!    time from the write to the first healthy probe of the old etcd (the component is back),
//!    and to the rolled-back verdict (after the rollback's stability window). From the journal's
//!    event times.
//! 2. **harden of the API server's nine controls** with 0, 1 and 2 flags the (fake) API server
//!    rejects, one transaction per component (bisection) and `--one-per-control`: restarts
//!    (writes of the manifest, forward and back) and wall time, with `--stable-for 2`.
//!
//! Needs `target/release/kharden` (the kharden binary is also the emulator) and etcd
//! (`apt-get install etcd-server`).

// A measuring tool: it prints, writes its fixtures and reads the clock directly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use kharden_testnode::{
    etcd_binary, write_node, KubeletOptions, KubeletProcess, NodeOptions, NodePorts,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

fn exe() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/kharden");
    assert!(p.exists(), "build it first: cargo build --release");
    p
}

struct Sim {
    dir: tempfile::TempDir,
    kubelet: KubeletProcess,
    manifest: PathBuf,
    reject: PathBuf,
}

impl Sim {
    fn new(opts: NodeOptions, backoff: Duration, manifest: &str) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_node(root, NodePorts::free(), &opts).unwrap();
        let reject = root.join("reject-flags");
        std::fs::write(&reject, "").unwrap();
        let mut k = KubeletOptions::simulated_node(root, &exe()).unwrap();
        k.backoff_initial = backoff;
        k.backoff_max = backoff * 30;
        k.grace_period = Duration::from_secs(3);
        k.env.push((
            "FAKE_REJECT_FLAGS_FILE".into(),
            reject.display().to_string(),
        ));
        k.env
            .push(("FAKE_HOST_ROOT".into(), root.display().to_string()));
        let kubelet = KubeletProcess::spawn(&exe(), &["__kubelet"], &k).unwrap();
        let manifest = root.join("etc/kubernetes/manifests").join(manifest);
        let sim = Sim {
            dir,
            kubelet,
            manifest,
            reject,
        };
        sim.wait_healthy();
        sim
    }

    fn kharden(&self) -> Command {
        let mut c = Command::new(exe());
        c.env("KHARDEN_STATE_DIR", self.dir.path().join("var/lib/kharden"))
            .env("KHARDEN_ROOT", self.dir.path());
        c
    }

    fn wait_healthy(&self) {
        let spec = kharden::journal::GateSpec {
            enabled: true,
            timeout_secs: 60,
            stable_for_secs: 1,
            ..Default::default()
        };
        let root = kharden::root::HostRoot::new(Some(self.dir.path())).unwrap();
        let contents = std::fs::read(&self.manifest).unwrap();
        let p = kharden::gate::params_for(
            &root,
            &spec,
            &contents,
            None,
            SystemTime::now() + Duration::from_secs(60),
        )
        .unwrap();
        let v = kharden_gate::run_gate(&p, &mut |_| {});
        assert!(
            v.passed(),
            "never healthy: {v:?}\n{}",
            self.kubelet.events()
        );
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self
            .kharden()
            .arg("-o")
            .arg("json")
            .args(args)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.kubelet.stop();
    }
}

/// (write → old healthy, write → rolled back), in seconds, from the journal of transaction id.
fn rollback_times(sim: &Sim, id: u64) -> (f64, f64) {
    let show = sim.json(&["journal", "show", &id.to_string()]);
    let events = show["events"].as_array().unwrap();
    let t = |e: &Value| e["time_ms"].as_u64().unwrap();
    let written = |side: &str| {
        events
            .iter()
            .find(|e| e["kind"]["FileWritten"]["side"] == side)
    };
    let fwd = t(written("After").expect("the after side was written"));
    let back = written("Before").expect("the before side was written back");
    let back_t = t(back);
    let healthy = events
        .iter()
        .filter(|e| t(e) >= back_t)
        .find(|e| {
            e["kind"]["Probe"]["class"] == "Healthy" && e["kind"]["Probe"]["restarted"] == true
        })
        .map(t)
        .unwrap_or(0);
    let done = events
        .iter()
        .rev()
        .find(|e| e["kind"]["State"]["state"] == "rolled-back")
        .map(t)
        .unwrap_or(0);
    let s = |ms: u64| ms.saturating_sub(fwd) as f64 / 1000.0;
    (s(healthy), s(done))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn etcd_rejected(runs: usize) {
    if etcd_binary().is_none() {
        println!("etcd is not installed (apt-get install etcd-server): part 1 skipped");
        return;
    }
    println!("| supervisor back-off | write → old etcd healthy (median of {runs}) | write → rolled back | runs |");
    println!("|---|---|---|---|");
    for (label, backoff) in [
        ("kubelet's (10 s, doubling)", Duration::from_secs(10)),
        ("0.5 s, doubling", Duration::from_millis(500)),
    ] {
        let (mut healthy, mut done) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let sim = Sim::new(
                NodeOptions {
                    apiserver: false,
                    controller_manager: false,
                    scheduler: false,
                    etcd: true,
                    ..NodeOptions::default()
                },
                backoff,
                "etcd.yaml",
            );
            let out = sim
                .kharden()
                .arg("apply")
                .arg(&sim.manifest)
                .args(["--set", "heartbeat-interval=notanumber"])
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(3),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let (h, d) = rollback_times(&sim, 1);
            healthy.push(h);
            done.push(d);
        }
        let all: Vec<String> = healthy.iter().map(|h| format!("{h:.1}")).collect();
        println!(
            "| {label} | {:.1} s | {:.1} s | {} |",
            median(&mut healthy),
            median(&mut done),
            all.join(", ")
        );
    }
}

fn harden_costs() {
    println!();
    println!(
        "| rejected controls | grouping | transactions | restarts (manifest writes) | wall time |"
    );
    println!("|---|---|---|---|---|");
    for rejected in [
        vec![],
        vec!["--profiling"],
        vec!["--profiling", "--tls-cipher-suites"],
    ] {
        for per_control in [false, true] {
            let sim = Sim::new(
                NodeOptions {
                    controller_manager: false,
                    scheduler: false,
                    ..NodeOptions::default()
                },
                Duration::from_millis(500),
                "kube-apiserver.yaml",
            );
            std::fs::write(&sim.reject, rejected.join("\n") + "\n").unwrap();
            let t0 = Instant::now();
            let mut cmd = sim.kharden();
            cmd.args(["harden", "--keep-going", "--stable-for", "2"]);
            if per_control {
                cmd.arg("--one-per-control");
            }
            cmd.output().unwrap();
            let wall = t0.elapsed();
            let log = sim.json(&["journal", "log", "--limit", "1000"]);
            let txns: Vec<&Value> = log["transactions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["summary"].as_str().unwrap().contains("kube-apiserver"))
                .collect();
            let mut writes = 0;
            for t in &txns {
                let show = sim.json(&["journal", "show", &t["txid"].to_string()]);
                writes += show["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|e| {
                        e["kind"]["FileWritten"]["path"]
                            .as_str()
                            .is_some_and(|p| p.ends_with("kube-apiserver.yaml"))
                    })
                    .count();
            }
            println!(
                "| {} | {} | {} | {writes} | {:.0} s |",
                rejected.len(),
                if per_control {
                    "--one-per-control"
                } else {
                    "per component (default)"
                },
                txns.len(),
                wall.as_secs_f64()
            );
        }
    }
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    etcd_rejected(runs);
    harden_costs();
}
