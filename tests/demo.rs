//! `kharden demo` runs to the end, tells its story, and leaves no process behind, also when
//! interrupted with Ctrl-C (SIGINT).

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use assert_cmd::cargo::cargo_bin;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if e.file_name().to_string_lossy().parse::<u32>().is_err() {
            continue;
        }
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(needle) {
                out.push(format!("{}: {c}", e.file_name().to_string_lossy()));
            }
        }
    }
    out
}

fn demo_root(stdout: &str) -> String {
    let start = stdout
        .find("/kharden-demo-")
        .expect("the demo names its node");
    let begin = stdout[..start].rfind(' ').map(|i| i + 1).unwrap_or(0);
    let end = stdout[start..]
        .find([':', ' ', '\n'])
        .map(|i| start + i)
        .unwrap_or(stdout.len());
    stdout[begin..end].to_string()
}

fn wait_gone(root: &str) {
    let t0 = Instant::now();
    loop {
        let left = processes_mentioning(root);
        if left.is_empty() {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "processes left behind: {left:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_demo_runs_to_the_end_and_leaves_nothing_running() {
    let out = Command::new(cargo_bin("kharden"))
        .arg("demo")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // Child commands report rollbacks on stderr, as an operator sees them: read both.
    let stdout =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "1. Audit",
        "2. Harden",
        "3. A bad change",
        "4. A crash",
        "5. The journal",
        "6. The audit again",
        "7. A worker node",
        "8. Audit the worker",
        "9. Harden the kubelet",
        "10. A configuration the kubelet refuses",
        "11. The worker's journal",
        "Nothing is left running",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
    assert!(stdout.contains("ROLLED BACK"), "{stdout}");
    assert!(
        !stdout.contains("NEEDS MANUAL"),
        "a rollback was not proven: {stdout}"
    );
    assert!(
        stdout.contains("before restored (the last known-good wins) -> rolled-back"),
        "{stdout}"
    );
    assert!(
        stdout.contains("automatable controls still failing: none"),
        "{stdout}"
    );
    assert!(stdout.contains("journal OK"), "{stdout}");
    // The worker: the drop-in disagreement explained, the kubelet hardened through a gated
    // restart, the refused cipher suite rolled back with the old kubelet proven healthy.
    assert!(stdout.contains("kube-bench never reads"), "{stdout}");
    assert!(
        stdout.contains("restored, and the old component was proven running and healthy again"),
        "{stdout}"
    );
    assert!(
        stdout.contains("restarted kubelet.service (Before side written)"),
        "{stdout}"
    );
    // The worker's harden fixes its own files and the kubelet, and says nothing of the
    // control plane's files (1.1 is the master target's, not applicable on a worker).
    let worker = stdout
        .split("Harden the kubelet")
        .nth(1)
        .and_then(|s| s.split("A configuration the kubelet refuses").next())
        .unwrap_or_default();
    assert!(worker.contains("4.2.4, 4.2.12"), "{worker}");
    assert!(
        !worker.contains("1.1."),
        "a control-plane file check on a worker:\n{worker}"
    );
    let root = demo_root(&stdout);
    wait_gone(&root);
    assert!(
        !std::path::Path::new(&root).exists(),
        "the node directory was not removed"
    );
}

#[test]
fn ctrl_c_stops_the_demo_and_every_process_it_started() {
    let mut child = Command::new(cargo_bin("kharden"))
        .arg("demo")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(6));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the demo did not stop after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert!(!status.success());
    let root = demo_root(&stdout);
    wait_gone(&root);
}
