//! Sections 1.3 (controller manager) and 1.4 (scheduler): their command lines. Identical ids
//! and tests in every version carried.

use super::{check, cmp, fix, flags, manual, present, remove_item, set};
use crate::benchmarks::apiserver::NEEDS_FILES;
use crate::model::{BinOp, CheckDef, Component, Op};

use super::absent;
use BinOp::{And, Or};
use Component::{ControllerManager, Scheduler};

const BIND_NOTE: &str = "Binds the secure port to 127.0.0.1 (kubeadm's default). Metrics \
scrapers on other hosts lose access; probes aimed at another address fail the health gate and \
the change is rolled back.";

pub(super) fn defs() -> Vec<CheckDef> {
    vec![
        check(
            "controller-manager-pod-gc-threshold",
            "Terminated pods are garbage-collected",
            flags(
                ControllerManager,
                And,
                vec![present("--terminated-pod-gc-threshold")],
            ),
        )
        .all("1.3.1")
        .fix(fix(
            vec![set("terminated-pod-gc-threshold", "12500")],
            "Writes Kubernetes' own default (12500) explicitly, which satisfies the check \
             without changing behaviour; lower it by hand if the cluster needs it.",
        )),
        check(
            "controller-manager-profiling",
            "Controller manager profiling endpoints are off",
            flags(
                ControllerManager,
                And,
                vec![cmp("--profiling", Op::Eq, "false")],
            ),
        )
        .all("1.3.2")
        .scored()
        .fix(fix(
            vec![set("profiling", "false")],
            "Turns off /debug/pprof.",
        )),
        check(
            "controller-manager-service-account-credentials",
            "Each controller uses its own service account",
            flags(
                ControllerManager,
                And,
                vec![cmp("--use-service-account-credentials", Op::NotEq, "false")],
            ),
        )
        .all("1.3.3")
        .scored()
        .fix(fix(
            vec![set("use-service-account-credentials", "true")],
            "Controllers then act with their own service accounts and the system:controller:* \
             roles the API server maintains (kubeadm's default).",
        )),
        check(
            "controller-manager-service-account-key",
            "Service account token signing key is set",
            flags(
                ControllerManager,
                And,
                vec![present("--service-account-private-key-file")],
            ),
        )
        .all("1.3.4")
        .scored()
        .fix(manual(NEEDS_FILES)),
        check(
            "controller-manager-root-ca",
            "Cluster root CA is published to service accounts",
            flags(ControllerManager, And, vec![present("--root-ca-file")]),
        )
        .all("1.3.5")
        .scored()
        .fix(manual(NEEDS_FILES)),
        check(
            "controller-manager-rotate-server-certs",
            "Kubelet serving certificate rotation is not disabled",
            flags(
                ControllerManager,
                Or,
                vec![
                    cmp(
                        "--feature-gates",
                        Op::NotHave,
                        "RotateKubeletServerCertificate=false",
                    ),
                    absent("--feature-gates"),
                ],
            ),
        )
        .all("1.3.6")
        .scored()
        .fix(fix(
            vec![remove_item(
                "feature-gates",
                "RotateKubeletServerCertificate=false",
            )],
            "Removes the entry that turns the gate off (its default is on); the flag is \
             dropped if no other gate is left. Nothing names a gate a future version might not \
             know.",
        )),
        check(
            "controller-manager-bind-address",
            "Controller manager listens on localhost only",
            flags(
                ControllerManager,
                Or,
                vec![
                    cmp("--bind-address", Op::Eq, "127.0.0.1"),
                    absent("--bind-address"),
                ],
            ),
        )
        .all("1.3.7")
        .scored()
        .fix(fix(vec![set("bind-address", "127.0.0.1")], BIND_NOTE)),
        check(
            "scheduler-profiling",
            "Scheduler profiling endpoints are off",
            flags(Scheduler, And, vec![cmp("--profiling", Op::Eq, "false")]),
        )
        .all("1.4.1")
        .scored()
        .fix(fix(
            vec![set("profiling", "false")],
            "Turns off /debug/pprof.",
        )),
        check(
            "scheduler-bind-address",
            "Scheduler listens on localhost only",
            flags(
                Scheduler,
                Or,
                vec![
                    cmp("--bind-address", Op::Eq, "127.0.0.1"),
                    absent("--bind-address"),
                ],
            ),
        )
        .all("1.4.2")
        .scored()
        .fix(fix(vec![set("bind-address", "127.0.0.1")], BIND_NOTE)),
    ]
}
