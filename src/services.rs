//! The service manager seam: restart the service a transaction names and ask whether it runs.
//!
//! Why a seam: the kubelet reads its configuration only when it starts, so a kubelet
//! transaction's effect is a file write *and* a restart, and recovery must know whether the
//! kubelet is running on a configuration it is about to restore (then it restarts it, as a
//! rollback does) or not yet started (at boot, before `kubelet.service`: restoring the files is
//! enough). The engine sees only [`Services`]; [`Systemctl`] runs the real `systemctl` (or the
//! program `--systemctl` names: the test node's service-manager emulator answers like
//! systemd), the unit tests and the power-loss explorer script it.

use crate::journal::Restart;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Restarts services and says whether they run.
pub trait Services {
    /// Restart the service and return what the service manager said (for the journal). An
    /// error says why it failed.
    fn restart(&self, service: &Restart) -> Result<String, String>;
    /// Whether the service is running (`active`, `activating` or `reloading`).
    fn is_active(&self, service: &Restart) -> Result<bool, String>;
}

/// No service manager: every restart fails (a transaction that needs one cannot run here).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoServices;

impl Services for NoServices {
    fn restart(&self, service: &Restart) -> Result<String, String> {
        Err(format!(
            "no service manager to restart {} (kharden was built without one for this run)",
            service.unit
        ))
    }
    fn is_active(&self, _service: &Restart) -> Result<bool, String> {
        Ok(false)
    }
}

/// `systemctl` (the program each [`Restart`] names), with a time limit per call.
#[derive(Debug, Clone, Copy)]
pub struct Systemctl {
    /// How long one `systemctl` call may take before it is killed and reported as failed.
    pub timeout: Duration,
}

impl Default for Systemctl {
    fn default() -> Self {
        // systemd's own default for a unit's start (DefaultTimeoutStartSec) is 90 s.
        Systemctl {
            timeout: Duration::from_secs(90),
        }
    }
}

/// What one `systemctl` call did.
struct Ran {
    code: Option<i32>,
    output: String,
}

impl Systemctl {
    fn run(&self, program: &str, args: &[&str]) -> Result<Ran, String> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() >= self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "{program} {} did not finish within {:?}: killed",
                        args.join(" "),
                        self.timeout
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("waiting for {program}: {e}")),
            }
        };
        let mut output = String::new();
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read>),
        ]
        .into_iter()
        .flatten()
        {
            let mut buf = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::Read::take(pipe, 64 * 1024), &mut buf);
            output.push_str(String::from_utf8_lossy(&buf).trim());
            if !output.is_empty() && !output.ends_with('\n') {
                output.push(' ');
            }
        }
        Ok(Ran {
            code: status.code(),
            output: output.trim().to_string(),
        })
    }
}

impl Services for Systemctl {
    fn restart(&self, service: &Restart) -> Result<String, String> {
        let ran = self.run(&service.systemctl, &["restart", &service.unit])?;
        match ran.code {
            Some(0) => Ok(if ran.output.is_empty() {
                format!("{} restart {}: done", service.systemctl, service.unit)
            } else {
                ran.output
            }),
            code => Err(format!(
                "{} restart {} failed ({}){}",
                service.systemctl,
                service.unit,
                code.map_or("killed by a signal".to_string(), |c| format!(
                    "exit code {c}"
                )),
                if ran.output.is_empty() {
                    String::new()
                } else {
                    format!(": {}", ran.output)
                }
            )),
        }
    }

    fn is_active(&self, service: &Restart) -> Result<bool, String> {
        // `is-active` prints the state and exits 0 only when active; read the state, not the
        // code, so that "activating" (a restart in progress) counts as running.
        let ran = self.run(&service.systemctl, &["is-active", &service.unit])?;
        let state = ran.output.lines().next().unwrap_or_default().trim();
        match state {
            "active" | "activating" | "reloading" | "deactivating" => Ok(true),
            "inactive" | "failed" | "unknown" | "" => Ok(false),
            other => Err(format!(
                "{} is-active {} said {other:?}",
                service.systemctl, service.unit
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &std::path::Path, body: &str) -> String {
        let p = dir.join("systemctl");
        #[allow(clippy::disallowed_methods)] // a test fixture, not a managed file
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        #[allow(clippy::disallowed_methods)]
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    }

    fn unit(systemctl: String) -> Restart {
        Restart {
            unit: "kubelet.service".into(),
            systemctl,
        }
    }

    #[test]
    fn restart_reports_success_failure_and_a_hang() {
        let d = tempfile::tempdir().unwrap();
        let ok = unit(script(d.path(), r#"echo "restarted $2""#));
        assert_eq!(
            Systemctl::default().restart(&ok).unwrap(),
            "restarted kubelet.service"
        );
        let d2 = tempfile::tempdir().unwrap();
        let bad = unit(script(
            d2.path(),
            "echo 'Job for kubelet.service failed.' >&2; exit 1",
        ));
        let e = Systemctl::default().restart(&bad).unwrap_err();
        assert!(
            e.contains("exit code 1") && e.contains("Job for kubelet.service failed"),
            "{e}"
        );
        let d3 = tempfile::tempdir().unwrap();
        let hang = unit(script(d3.path(), "exec sleep 30"));
        let e = Systemctl {
            timeout: Duration::from_millis(200),
        }
        .restart(&hang)
        .unwrap_err();
        assert!(e.contains("did not finish"), "{e}");
        let missing = unit("/nonexistent/systemctl".into());
        assert!(Systemctl::default().restart(&missing).is_err());
    }

    #[test]
    fn is_active_reads_the_state_systemd_prints() {
        for (said, code, active) in [
            ("active", 0, Some(true)),
            ("activating", 3, Some(true)),
            ("inactive", 3, Some(false)),
            ("failed", 3, Some(false)),
            ("maintenance?", 3, None),
        ] {
            let d = tempfile::tempdir().unwrap();
            let u = unit(script(d.path(), &format!("echo '{said}'; exit {code}")));
            assert_eq!(Systemctl::default().is_active(&u).ok(), active, "{said}");
        }
    }
}
