//! Section 3: authentication and logging of the control plane. Only 3.2.1 has a test (the API
//! server's `--audit-policy-file`); the others are `type: manual` without an audit. Identical in
//! every version carried.

use super::{check, fix_with, flags, manual, mount, present, set};
use crate::audit::Audit;
use crate::benchmarks::apiserver::{AUDIT_POLICY, AUDIT_POLICY_PATH};
use crate::model::{BinOp, CheckDef, Component};
use crate::remediation::{ExtraFile, Guard};

const AUTHN_REASON: &str = "how people authenticate (an OIDC provider, a webhook) is a \
cluster-wide decision with its own infrastructure; kube-bench only asks a person to review it";

pub(super) fn defs() -> Vec<CheckDef> {
    vec![
        check(
            "users-no-client-certs",
            "People do not authenticate with client certificates",
            Audit::None,
        )
        .all("3.1.1")
        .manual_type()
        .fix(manual(AUTHN_REASON)),
        check(
            "users-no-service-account-tokens",
            "People do not authenticate with service account tokens",
            Audit::None,
        )
        .all("3.1.2")
        .manual_type()
        .fix(manual(AUTHN_REASON)),
        check(
            "users-no-bootstrap-tokens",
            "People do not authenticate with bootstrap tokens",
            Audit::None,
        )
        .all("3.1.3")
        .manual_type()
        .fix(manual(AUTHN_REASON)),
        check(
            "apiserver-audit-policy",
            "API server has an audit policy",
            flags(
                Component::ApiServer,
                BinOp::And,
                vec![present("--audit-policy-file")],
            ),
        )
        .all("3.2.1")
        .fix(fix_with(
            vec![
                mount("kharden-audit-policy", AUDIT_POLICY_PATH, true, "File"),
                set("audit-policy-file", AUDIT_POLICY_PATH),
            ],
            vec![ExtraFile {
                path: AUDIT_POLICY_PATH.to_string(),
                contents: AUDIT_POLICY,
                mode: 0o600,
            }],
            vec![Guard::AbsentOrEquals {
                flag: "audit-policy-file",
                value: AUDIT_POLICY_PATH,
                why: "already names another audit policy; kharden does not replace it",
            }],
            "Writes a minimal audit policy (metadata for all requests, request bodies for \
             workload changes, never the contents of secrets, config maps or tokens, no health \
             probes), mounts it read-only and points --audit-policy-file at it. Events are \
             written once --audit-log-path is set (1.2.16).",
        )),
        check(
            "audit-policy-coverage",
            "Audit policy covers the security-relevant requests",
            Audit::None,
        )
        .all("3.2.2")
        .manual_type()
        .fix(manual(
            "whether a policy records what the organisation needs (and no secrets) is a review \
             of that policy against its threat model; kube-bench runs no test for it",
        )),
    ]
}
