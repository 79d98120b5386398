//! Section 5: cluster policies (RBAC, pod security, network policies, secrets, admission,
//! namespaces). Every check is unscored. kube-bench runs no test for most (`type: manual`) and
//! audits the others through the Kubernetes API (`kubectl`, `jq`); more of them got an API audit
//! over the versions (5.1.1-5.1.6 in cis-1.9, 5.2.2-5.2.6 and 5.2.9 in cis-1.10), so those are
//! two definitions each. cis-1.12 dropped 5.2.9 (added capabilities) and renumbered the rest;
//! cis-1.11 renumbered 5.7 to 5.6.
//!
//! kharden lists them so that its reports are complete, evaluates none of the API audits, and
//! fixes nothing here: these are cluster-wide objects, not a node's files.

use super::{check, manual, via_kubectl, Def};
use crate::audit::Audit;
use crate::model::{CheckDef, Cis};

use Cis::{V1_10, V1_11, V1_12, V1_8, V1_9};

const POLICY: &str = "a cluster-wide policy (RBAC, admission, workload specifications) that its \
owners review and change through the API; kharden changes one node's files and processes";

const VIA_API: &str = "kube-bench audits it through the Kubernetes API (kubectl and jq); kharden \
reads one node's processes and files and does not query the cluster";

fn policy(key: &'static str, title: &'static str) -> Def {
    check(key, title, Audit::None).manual_type()
}

fn api_policy(key: &'static str, title: &'static str) -> Def {
    check(key, title, via_kubectl(VIA_API))
}

pub(super) fn defs() -> Vec<CheckDef> {
    let m = manual(POLICY);
    let mut out = Vec::new();
    // 5.1.1-5.1.6: manual in cis-1.8, API audits from cis-1.9.
    for (id, key, title) in [
        (
            "5.1.1",
            "rbac-cluster-admin",
            "cluster-admin is bound only where needed",
        ),
        (
            "5.1.2",
            "rbac-secrets-access",
            "Access to Secrets is minimal",
        ),
        (
            "5.1.3",
            "rbac-wildcards",
            "Roles and ClusterRoles avoid wildcards",
        ),
        (
            "5.1.4",
            "rbac-create-pods",
            "Permission to create pods is minimal",
        ),
        (
            "5.1.5",
            "default-service-accounts-unused",
            "Default service accounts are not used",
        ),
        (
            "5.1.6",
            "service-account-token-mounts",
            "Service account tokens are mounted only where needed",
        ),
    ] {
        out.push(
            policy(manual_key(key), title)
                .at(id, V1_8, V1_8)
                .fix(m.clone()),
        );
        out.push(api_policy(key, title).at(id, V1_9, V1_12).fix(m.clone()));
    }
    for (id, key, title) in [
        (
            "5.1.7",
            "rbac-system-masters",
            "The system:masters group is not used",
        ),
        (
            "5.1.8",
            "rbac-bind-impersonate-escalate",
            "Bind, impersonate and escalate permissions are limited",
        ),
        (
            "5.1.9",
            "rbac-create-persistent-volumes",
            "Permission to create persistent volumes is minimal",
        ),
        (
            "5.1.10",
            "rbac-nodes-proxy",
            "Access to the nodes/proxy subresource is minimal",
        ),
        (
            "5.1.11",
            "rbac-csr-approval",
            "Access to CSR approval is minimal",
        ),
        (
            "5.1.12",
            "rbac-webhook-configurations",
            "Access to webhook configurations is minimal",
        ),
        (
            "5.1.13",
            "rbac-service-account-tokens",
            "Permission to create service account tokens is minimal",
        ),
        (
            "5.2.1",
            "pod-security-mechanism",
            "At least one pod security mechanism is active",
        ),
        (
            "5.2.7",
            "pod-security-root",
            "Root containers are not admitted",
        ),
        (
            "5.2.8",
            "pod-security-net-raw",
            "Containers with NET_RAW are not admitted",
        ),
        (
            "5.3.1",
            "cni-network-policies",
            "The CNI plugin supports NetworkPolicies",
        ),
        (
            "5.3.2",
            "namespace-network-policies",
            "Every namespace has NetworkPolicies",
        ),
        (
            "5.4.1",
            "secrets-as-files",
            "Secrets are mounted as files, not environment variables",
        ),
        (
            "5.4.2",
            "external-secret-storage",
            "External secret storage is considered",
        ),
        (
            "5.5.1",
            "image-provenance",
            "Image provenance is enforced (ImagePolicyWebhook)",
        ),
    ] {
        out.push(policy(key, title).all(id).fix(m.clone()));
    }
    // 5.2.2-5.2.6 and 5.2.9: manual up to cis-1.9, API audits from cis-1.10 (5.2.9 until 1.11).
    for (id, key, title, until) in [
        (
            "5.2.2",
            "pod-security-privileged",
            "Privileged containers are not admitted",
            V1_12,
        ),
        (
            "5.2.3",
            "pod-security-host-pid",
            "Containers sharing the host PID namespace are not admitted",
            V1_12,
        ),
        (
            "5.2.4",
            "pod-security-host-ipc",
            "Containers sharing the host IPC namespace are not admitted",
            V1_12,
        ),
        (
            "5.2.5",
            "pod-security-host-network",
            "Containers sharing the host network namespace are not admitted",
            V1_12,
        ),
        (
            "5.2.6",
            "pod-security-privilege-escalation",
            "Containers allowing privilege escalation are not admitted",
            V1_12,
        ),
        (
            "5.2.9",
            "pod-security-added-capabilities",
            "Containers adding capabilities are not admitted",
            V1_11,
        ),
    ] {
        out.push(
            policy(manual_key(key), title)
                .at(id, V1_8, V1_9)
                .fix(m.clone()),
        );
        out.push(api_policy(key, title).at(id, V1_10, until).fix(m.clone()));
    }
    // Renumbered in cis-1.12 after 5.2.9 was dropped.
    for (old, new, key, title) in [
        (
            "5.2.10",
            "5.2.9",
            "pod-security-capabilities",
            "Containers with capabilities assigned are not admitted",
        ),
        (
            "5.2.11",
            "5.2.10",
            "pod-security-windows-host-process",
            "Windows HostProcess containers are not admitted",
        ),
        (
            "5.2.12",
            "5.2.11",
            "pod-security-host-path",
            "HostPath volumes are not admitted",
        ),
        (
            "5.2.13",
            "5.2.12",
            "pod-security-host-ports",
            "Containers using host ports are not admitted",
        ),
    ] {
        out.push(
            policy(key, title)
                .at(old, V1_8, V1_11)
                .at(new, V1_12, V1_12)
                .fix(m.clone()),
        );
    }
    // General policies: 5.7 up to cis-1.10, 5.6 from cis-1.11.
    for (old, new, key, title) in [
        (
            "5.7.1",
            "5.6.1",
            "namespace-boundaries",
            "Namespaces separate resources",
        ),
        (
            "5.7.2",
            "5.6.2",
            "pod-seccomp-profile",
            "Pods use the default seccomp profile",
        ),
        (
            "5.7.3",
            "5.6.3",
            "pod-security-context",
            "Pods and containers set a security context",
        ),
        (
            "5.7.4",
            "5.6.4",
            "default-namespace-unused",
            "The default namespace is not used",
        ),
    ] {
        out.push(
            policy(key, title)
                .at(old, V1_8, V1_10)
                .at(new, V1_11, V1_12)
                .fix(m.clone()),
        );
    }
    out
}

/// The key of the `type: manual` definition of a check that later got an API audit.
fn manual_key(key: &'static str) -> &'static str {
    match key {
        "rbac-cluster-admin" => "rbac-cluster-admin-manual",
        "rbac-secrets-access" => "rbac-secrets-access-manual",
        "rbac-wildcards" => "rbac-wildcards-manual",
        "rbac-create-pods" => "rbac-create-pods-manual",
        "default-service-accounts-unused" => "default-service-accounts-unused-manual",
        "service-account-token-mounts" => "service-account-token-mounts-manual",
        "pod-security-privileged" => "pod-security-privileged-manual",
        "pod-security-host-pid" => "pod-security-host-pid-manual",
        "pod-security-host-ipc" => "pod-security-host-ipc-manual",
        "pod-security-host-network" => "pod-security-host-network-manual",
        "pod-security-privilege-escalation" => "pod-security-privilege-escalation-manual",
        "pod-security-added-capabilities" => "pod-security-added-capabilities-manual",
        _ => key,
    }
}
