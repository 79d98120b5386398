//! The audit seam: after the gate, check that every intended change is in effect on the
//! running process (the built-in check, as kube-bench reads `ps`), and/or run an external
//! script (argv, no shell, with a timeout; exit 0 passes; output kept, bounded).

use crate::journal::{AuditSpec, FileRecord, GateSpec, GateTarget, TxId};
use crate::signals::Interrupts;
use kharden_manifest::{Change, Flags};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the audit checks.
#[derive(Clone)]
pub struct AuditRequest<'a> {
    pub txid: TxId,
    pub spec: &'a AuditSpec,
    /// The transaction's gate: what it restarted (a kubelet transaction is audited on the
    /// kubelet's effective configuration) and the root its paths are under.
    pub gate: &'a GateSpec,
    pub files: &'a [FileRecord],
    /// The restarted process's argv, when the gate proved one.
    pub running_argv: Option<Vec<String>>,
    /// The after-manifest's argv and where its flags start, when the target is a manifest.
    pub manifest_argv: Option<(Vec<String>, usize)>,
    /// A signal stops the audit script (it is killed) and fails the audit.
    pub interrupts: &'a dyn Interrupts,
}

/// Check an audit script before any change (`--audit-script`): it must exist, be a regular
/// file, and be executable by kharden. Otherwise the change would be written and restarted
/// twice for nothing.
pub fn check_script(script: &Path) -> Result<(), String> {
    let md = std::fs::metadata(script)
        .map_err(|e| format!("--audit-script {}: {e}", script.display()))?;
    if !md.is_file() {
        return Err(format!(
            "--audit-script {}: not a regular file",
            script.display()
        ));
    }
    if nix::unistd::access(script, nix::unistd::AccessFlags::X_OK).is_err() {
        return Err(format!(
            "--audit-script {}: not executable (chmod +x it, or give an interpreter's script to a wrapper)",
            script.display()
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerdict {
    pub passed: bool,
    pub detail: String,
    pub output: Option<String>,
}

pub trait Audit {
    fn check(&self, req: &AuditRequest<'_>) -> AuditVerdict;
}

/// `--no-audit`.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoAudit;

impl Audit for NoAudit {
    fn check(&self, _req: &AuditRequest<'_>) -> AuditVerdict {
        AuditVerdict {
            passed: true,
            detail: "audit disabled".into(),
            output: None,
        }
    }
}

/// The built-in audit plus, when the spec names one, the external script.
#[derive(Debug, Default, Clone, Copy)]
pub struct StandardAudit;

impl Audit for StandardAudit {
    fn check(&self, req: &AuditRequest<'_>) -> AuditVerdict {
        let mut details = Vec::new();
        if req.spec.builtin {
            let v = builtin(req);
            if !v.passed {
                return v;
            }
            details.push(v.detail);
        }
        if let Some(script) = &req.spec.script {
            let v = run_script(
                Path::new(script),
                req,
                Duration::from_secs(req.spec.script_timeout_secs.max(1)),
            );
            if !v.passed {
                return v;
            }
            details.push(v.detail);
            return AuditVerdict {
                passed: true,
                detail: details.join("; "),
                output: v.output,
            };
        }
        AuditVerdict {
            passed: true,
            detail: details.join("; "),
            output: None,
        }
    }
}

/// The changes not in effect on a component's own flags, under the flag parser's rules
/// ([`Change::holds_in`], the same question the editor's verification asks).
pub fn unmet_changes(changes: &[Change], flags: &[String]) -> Vec<String> {
    let flags = Flags::parse(flags);
    changes
        .iter()
        .filter(|c| !c.holds_in(&flags))
        .map(ToString::to_string)
        .collect()
}

fn builtin(req: &AuditRequest<'_>) -> AuditVerdict {
    if matches!(req.gate.target, GateTarget::Kubelet { .. }) {
        return crate::kubelet::audit::audit(req);
    }
    let changes: Vec<Change> = req
        .files
        .iter()
        .filter(|f| f.gated)
        .flat_map(|f| f.changes.iter().cloned())
        .collect();
    let (argv, start, source) = match (&req.running_argv, &req.manifest_argv) {
        (Some(run), Some((_, start))) => (run.clone(), *start, "running process"),
        (Some(run), None) => (run.clone(), 0, "running process"),
        (None, Some((m, start))) => (m.clone(), *start, "manifest (no running process was gated)"),
        (None, None) => {
            return AuditVerdict {
                passed: true,
                detail: "built-in audit: no flag changes to check".into(),
                output: None,
            }
        }
    };
    let flags: Vec<String> = argv
        .get(start.min(argv.len())..)
        .unwrap_or_default()
        .to_vec();
    let unmet = unmet_changes(&changes, &flags);
    let seen = Flags::parse(&flags).len();
    if unmet.is_empty() {
        AuditVerdict {
            passed: true,
            detail: format!(
                "built-in audit: {} change(s) in effect on the {source} ({seen} flags read)",
                changes.len()
            ),
            output: None,
        }
    } else {
        AuditVerdict {
            passed: false,
            detail: format!(
                "built-in audit on the {source}: not in effect: {}",
                unmet.join(", ")
            ),
            output: None,
        }
    }
}

/// Output kept in the journal from an audit script, per stream.
pub const SCRIPT_OUTPUT_LIMIT: usize = 16 * 1024;

fn read_bounded(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<(Vec<u8>, bool)> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut truncated = false;
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = SCRIPT_OUTPUT_LIMIT.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                    truncated |= n > room;
                }
            }
        }
        (kept, truncated)
    })
}

/// Run an external audit script: `PATH MANIFEST...`, no shell, environment
/// `KHARDEN_TXID` and `KHARDEN_RUNNING_ARGV` (JSON), killed at the timeout.
pub fn run_script(script: &Path, req: &AuditRequest<'_>, timeout: Duration) -> AuditVerdict {
    let mut cmd = Command::new(script);
    // The files the component reads: the gated manifests, or every file of a kubelet change.
    let kubelet = matches!(req.gate.target, GateTarget::Kubelet { .. });
    for f in req.files.iter().filter(|f| f.gated || kubelet) {
        cmd.arg(&f.path);
    }
    cmd.env("KHARDEN_TXID", req.txid.to_string());
    if let Some(argv) = &req.running_argv {
        cmd.env(
            "KHARDEN_RUNNING_ARGV",
            serde_json::to_string(argv).unwrap_or_default(),
        );
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return AuditVerdict {
                passed: false,
                detail: format!("audit script {}: cannot run: {e}", script.display()),
                output: None,
            }
        }
    };
    let out = child.stdout.take().map(read_bounded);
    let err = child.stderr.take().map(read_bounded);
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Ok(s),
            Ok(None) if req.interrupts.count() > 0 => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "was killed: kharden was interrupted by signal {}",
                    req.interrupts.last_signal()
                ));
            }
            Ok(None) if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "timed out after {}s and was killed",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => break Err(format!("wait: {e}")),
        }
    };
    let mut output = String::new();
    for (name, h) in [("stdout", out), ("stderr", err)] {
        if let Some(h) = h {
            if let Ok((bytes, truncated)) = h.join() {
                if !bytes.is_empty() {
                    output.push_str(&format!(
                        "--- {name}{}\n",
                        if truncated { " (truncated)" } else { "" }
                    ));
                    output.push_str(&String::from_utf8_lossy(&bytes));
                    if !output.ends_with('\n') {
                        output.push('\n');
                    }
                }
            }
        }
    }
    let output = (!output.is_empty()).then_some(output);
    match status {
        Ok(s) if s.success() => AuditVerdict {
            passed: true,
            detail: format!("audit script {} passed", script.display()),
            output,
        },
        Ok(s) => AuditVerdict {
            passed: false,
            detail: format!("audit script {} failed ({s})", script.display()),
            output,
        },
        Err(why) => AuditVerdict {
            passed: false,
            detail: format!("audit script {} {why}", script.display()),
            output,
        },
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // the tests write their scripts
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn last_occurrence_wins() {
        let set = Change::Set {
            name: "profiling".into(),
            value: Some("false".into()),
        };
        assert!(unmet_changes(
            std::slice::from_ref(&set),
            &v(&["--profiling=true", "--profiling=false"])
        )
        .is_empty());
        assert_eq!(
            unmet_changes(&[set], &v(&["--profiling=false", "--profiling=true"])).len(),
            1
        );
    }

    #[test]
    fn list_and_key_changes() {
        let flags = v(&[
            "--enable-admission-plugins=NodeRestriction,EventRateLimit",
            "--feature-gates=A=true,B=false",
        ]);
        let ok = [
            Change::AddItem {
                name: "enable-admission-plugins".into(),
                item: "EventRateLimit".into(),
            },
            Change::RemoveItem {
                name: "enable-admission-plugins".into(),
                item: "AlwaysAdmit".into(),
                if_empty: None,
            },
            Change::SetKey {
                name: "feature-gates".into(),
                key: "B".into(),
                value: "false".into(),
            },
            Change::Unset {
                name: "insecure-port".into(),
            },
        ];
        assert!(unmet_changes(&ok, &flags).is_empty());
        let bad = [Change::AtLeast {
            name: "audit-log-maxage".into(),
            min: 30,
        }];
        assert_eq!(unmet_changes(&bad, &flags).len(), 1);
        assert!(unmet_changes(&bad, &v(&["--audit-log-maxage=31"])).is_empty());
    }

    #[test]
    fn script_exit_code_output_and_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let spec = AuditSpec {
            builtin: false,
            script: None,
            script_timeout_secs: 5,
        };
        let gate = GateSpec::default();
        let req = AuditRequest {
            txid: 1,
            spec: &spec,
            gate: &gate,
            files: &[],
            running_argv: None,
            manifest_argv: None,
            interrupts: &crate::signals::NoInterrupts,
        };
        let write = |name: &str, body: &str| {
            use std::os::unix::fs::PermissionsExt;
            let p = dir.path().join(name);
            std::fs::write(&p, body).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p
        };
        let pass = write("pass.sh", "#!/bin/sh\necho fine\nexit 0\n");
        let v = run_script(&pass, &req, Duration::from_secs(5));
        assert!(v.passed);
        assert!(v.output.unwrap().contains("fine"));
        let fail = write("fail.sh", "#!/bin/sh\necho bad >&2\nexit 3\n");
        let v = run_script(&fail, &req, Duration::from_secs(5));
        assert!(!v.passed);
        assert!(v.output.unwrap().contains("bad"));
        let slow = write("slow.sh", "#!/bin/sh\nexec sleep 30\n");
        let t = Instant::now();
        let v = run_script(&slow, &req, Duration::from_secs(1));
        assert!(!v.passed && v.detail.contains("timed out"), "{v:?}");
        assert!(t.elapsed() < Duration::from_secs(10));
        let noisy = write(
            "noisy.sh",
            "#!/bin/sh\nhead -c 200000 /dev/zero | tr '\\0' x\nexit 0\n",
        );
        let v = run_script(&noisy, &req, Duration::from_secs(5));
        assert!(v.passed);
        assert!(v.output.unwrap().len() < SCRIPT_OUTPUT_LIMIT + 100);
    }
}
