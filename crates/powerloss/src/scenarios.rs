//! The workloads explored: one transaction over one file and over two (one of them created),
//! a gate failure and its rollback, `kharden rollback TXID`, and `journal prune`.
//!
//! File contents are a few KiB so that a torn write (at a 512-byte sector boundary) is possible
//! and visible.

use crate::explore::Scenario;
use crate::harness::{
    kubelet_config, kubelet_dropin, kubelet_env, kubelet_plan, kubelet_plan_of, manifest,
    meta_plan, plan, FixedAudit, ScriptedGate,
};
use kharden::durable::FileMeta;
use kharden::journal::{AuditSpec, GateSpec};
use kharden::txn::FileOp;
use std::path::PathBuf;

/// The gated manifest.
pub fn apiserver() -> PathBuf {
    manifest("kube-apiserver.yaml")
}

/// A second, non-gated file in another directory (the audit policy a flag names), so that a
/// two-file transaction depends on two directory fsyncs.
pub fn policy() -> PathBuf {
    PathBuf::from("/etc/kubernetes/audit/policy.yaml")
}

/// A third file (a second gated manifest) for the random schedules.
pub fn scheduler() -> PathBuf {
    manifest("kube-scheduler.yaml")
}

/// A manifest-like body of about `len` bytes, distinct per `version`.
pub fn body(version: u32, len: usize) -> Vec<u8> {
    let mut s = format!("apiVersion: v1\nkind: Pod\n# version {version}\nspec:\n  containers:\n  - command:\n    - kube-apiserver\n");
    let mut i = 0;
    while s.len() < len {
        s.push_str(&format!("    - --flag-{i}=value-{version}-{i}\n"));
        i += 1;
    }
    s.into_bytes()
}

/// One file, gate and audit pass: Prepared → Applied → Gating → Auditing → Audited → Committed.
pub fn single_file_commit() -> Scenario {
    Scenario {
        name: "single-file commit",
        files: vec![(apiserver(), Some(body(0, 1500)))],
        setup: None,
        first_run: false,
        workload: Box::new(|ctx| {
            let gate = ScriptedGate::default();
            ctx.run(
                plan(&[(apiserver(), Some(body(1, 1700)))], true, true),
                &gate,
                &FixedAudit(true),
            );
        }),
    }
}

/// Two files, one of them created by the transaction.
pub fn two_file_commit() -> Scenario {
    Scenario {
        name: "two-file commit",
        files: vec![(apiserver(), Some(body(0, 1500))), (policy(), None)],
        setup: None,
        first_run: false,
        workload: Box::new(|ctx| {
            let gate = ScriptedGate::default();
            ctx.run(
                plan(
                    &[
                        (apiserver(), Some(body(1, 1300))),
                        (policy(), Some(body(7, 900))),
                    ],
                    true,
                    true,
                ),
                &gate,
                &FixedAudit(true),
            );
        }),
    }
}

/// Two files; the gate fails, the rollback restores both and its gate passes.
pub fn gate_failure_rollback() -> Scenario {
    Scenario {
        name: "two-file gate failure and rollback",
        files: vec![(apiserver(), Some(body(0, 1500))), (policy(), None)],
        setup: None,
        first_run: false,
        workload: Box::new(|ctx| {
            let gate = ScriptedGate::new(vec![false, true]);
            ctx.run(
                plan(
                    &[
                        (apiserver(), Some(body(1, 1300))),
                        (policy(), Some(body(7, 900))),
                    ],
                    true,
                    true,
                ),
                &gate,
                &FixedAudit(true),
            );
        }),
    }
}

/// `kharden rollback 1` of a committed two-file transaction.
pub fn rollback_command() -> Scenario {
    Scenario {
        name: "rollback command",
        files: vec![(apiserver(), Some(body(0, 1500))), (policy(), None)],
        setup: Some(Box::new(|ctx| {
            let gate = ScriptedGate::default();
            ctx.run(
                plan(
                    &[
                        (apiserver(), Some(body(1, 1300))),
                        (policy(), Some(body(7, 900))),
                    ],
                    true,
                    true,
                ),
                &gate,
                &FixedAudit(true),
            );
        })),
        first_run: false,
        workload: Box::new(|ctx| {
            let gate = ScriptedGate::default();
            let audit = FixedAudit(true);
            let engine = ctx.engine(&gate, &audit);
            if let Ok(p) = engine.rollback_plan(
                1,
                GateSpec {
                    enabled: true,
                    timeout_secs: 60,
                    ..Default::default()
                },
                AuditSpec::default(),
                kharden::txn::PlanOptions::default(),
            ) {
                ctx.run(p, &gate, &audit);
            }
        }),
    }
}

/// `journal prune --keep 1` after three committed transactions.
pub fn prune() -> Scenario {
    Scenario {
        name: "journal prune",
        files: vec![(apiserver(), Some(body(0, 1500)))],
        setup: Some(Box::new(|ctx| {
            for v in 1..=3 {
                let gate = ScriptedGate::default();
                ctx.run(
                    plan(
                        &[(apiserver(), Some(body(v, 1500 + v as usize * 50)))],
                        true,
                        true,
                    ),
                    &gate,
                    &FixedAudit(true),
                );
            }
        })),
        first_run: false,
        workload: Box::new(|ctx| {
            let _ = ctx.journal.prune(1);
        }),
    }
}

/// The first apply on a node: the journal does not exist yet and is created (atomically)
/// inside the explored part, then one transaction commits.
pub fn first_run() -> Scenario {
    Scenario {
        first_run: true,
        name: "first run on an empty state directory",
        ..single_file_commit()
    }
}

/// The metadata of three files in two directories: two chmods and a chown.
fn tightened() -> Vec<(PathBuf, FileMeta)> {
    let m = |mode, uid, gid| FileMeta { mode, uid, gid };
    vec![
        (apiserver(), m(0o600, 0, 0)),
        (policy(), m(0o600, 0, 0)),
        (scheduler(), m(0o640, 1000, 1000)),
    ]
}

fn three_files() -> Vec<(PathBuf, Option<Vec<u8>>)> {
    vec![
        (apiserver(), Some(body(0, 1500))),
        (policy(), Some(body(7, 900))),
        (scheduler(), Some(body(3, 1100))),
    ]
}

/// A metadata transaction over three files commits: each chmod/chown is durable only once
/// its inode is synced.
pub fn metadata_commit() -> Scenario {
    Scenario {
        name: "three-file metadata commit",
        files: three_files(),
        setup: None,
        first_run: false,
        workload: Box::new(|ctx| {
            let gate = ScriptedGate::default();
            ctx.run(meta_plan(&tightened(), true), &gate, &FixedAudit(true));
        }),
    }
}

/// A metadata transaction whose gate fails (a process that used the files lost them): the
/// rollback restores every file's mode and owner.
pub fn metadata_rollback() -> Scenario {
    Scenario {
        name: "three-file metadata gate failure and rollback",
        files: three_files(),
        setup: None,
        first_run: false,
        workload: Box::new(|ctx| {
            let gate = ScriptedGate::new(vec![false, true]);
            ctx.run(meta_plan(&tightened(), true), &gate, &FixedAudit(true));
        }),
    }
}

/// A kubelet transaction (issue 14): the configuration written, the kubelet restarted (a crash
/// point of its own), the gate fails, the rollback restores the file, restarts the kubelet
/// again and its gate passes. Recovery must reason about the restart: after a power cut the
/// kubelet is not running, and recovery (at boot, before it) restores and starts nothing.
pub fn kubelet_restart_rollback() -> Scenario {
    Scenario {
        name: "kubelet restart, gate failure and rollback",
        files: vec![(kubelet_config(), Some(body(0, 1500)))],
        setup: None,
        first_run: false,
        workload: Box::new(|ctx| {
            let gate = ScriptedGate::new(vec![false, true]);
            ctx.run(kubelet_plan(body(1, 1600)), &gate, &FixedAudit(true));
        }),
    }
}

/// A kubelet transaction that commits: written, restarted, gated, audited.
pub fn kubelet_restart_commit() -> Scenario {
    Scenario {
        name: "kubelet restart and commit",
        files: vec![(kubelet_config(), Some(body(0, 1500)))],
        setup: None,
        first_run: false,
        workload: Box::new(|ctx| {
            let gate = ScriptedGate::default();
            ctx.run(kubelet_plan(body(1, 1600)), &gate, &FixedAudit(true));
        }),
    }
}

/// The widest kubelet transaction: a flag edited in its environment file and kharden's own
/// drop-in created in its `--config-dir`, then the restart; the gate fails, the rollback puts
/// the flag back, deletes the drop-in, restarts again and passes. Both files must end on one
/// side, and a running kubelet on what they hold.
pub fn kubelet_two_files_rollback() -> Scenario {
    Scenario {
        name: "kubelet environment file and created drop-in, gate failure and rollback",
        files: vec![
            (kubelet_config(), Some(body(0, 1500))),
            (kubelet_env(), Some(body(5, 120))),
            (kubelet_dropin(), None),
        ],
        setup: None,
        first_run: false,
        workload: Box::new(|ctx| {
            let gate = ScriptedGate::new(vec![false, true]);
            let plan = kubelet_plan_of(vec![
                FileOp::contents(kubelet_env(), Some(body(6, 130))),
                FileOp::contents(kubelet_dropin(), Some(body(8, 300))),
            ]);
            ctx.run(plan, &gate, &FixedAudit(true));
        }),
    }
}

/// Every scenario of the exhaustive suite.
pub fn all() -> Vec<Scenario> {
    vec![
        first_run(),
        single_file_commit(),
        two_file_commit(),
        gate_failure_rollback(),
        rollback_command(),
        prune(),
        metadata_commit(),
        metadata_rollback(),
        kubelet_restart_commit(),
        kubelet_restart_rollback(),
        kubelet_two_files_rollback(),
    ]
}
