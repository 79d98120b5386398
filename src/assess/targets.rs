//! Which of kube-bench's targets apply to this node, from what runs and what exists.
//!
//! - master and controlplane: an API server, controller manager or scheduler runs or has a
//!   static pod manifest (kube-bench's `isMaster`, which looks for the running binaries);
//! - etcd: etcd runs or has a manifest (kube-bench's `isEtcd`);
//! - node: a kubelet runs, or one of its files kube-bench looks for exists (its configuration,
//!   unit or kubeconfig): every node of a cluster has one;
//! - policies: with the control plane (cluster-wide objects, audited once, from a control-plane
//!   node; kharden reports them and evaluates none).
//!
//! A worker node is thus audited on the node target alone, as kube-bench's `node` target does.
//! `--targets` overrides the choice: exactly the targets given run, whatever the node has.

use super::gather::{NodeFiles, NodeScan};
use kharden_catalog::paths::{self, PathKind};
use kharden_catalog::{Component, Target};
use serde::Serialize;

/// A target and whether it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetChoice {
    pub target: Target,
    pub selected: bool,
    /// Why it runs, or why it is not applicable.
    pub why: String,
}

/// Parse `--targets` (kube-bench's names; `worker` is `node`, as kube-bench translates it).
pub fn parse_targets(list: &[String]) -> Result<Vec<Target>, String> {
    let mut out = Vec::new();
    for t in list.iter().flat_map(|s| s.split(',')).map(str::trim) {
        if t.is_empty() {
            continue;
        }
        let name = if t.eq_ignore_ascii_case("worker") {
            "node".to_string()
        } else {
            t.to_ascii_lowercase()
        };
        let target = Target::from_name(&name).ok_or_else(|| {
            format!(
                "unknown target {t:?}; known: {}",
                Target::ALL.map(Target::name).join(", ")
            )
        })?;
        if !out.contains(&target) {
            out.push(target);
        }
    }
    if out.is_empty() {
        return Err("--targets names no target".into());
    }
    Ok(out)
}

fn seen(scan: &NodeScan, c: Component) -> Option<String> {
    if let Some(s) = scan.components.get(&c) {
        if s.process.is_some() {
            return Some(format!("{c} runs ({})", s.source));
        }
    }
    scan.manifest(c).map(|f| {
        format!(
            "{c} has a static pod manifest ({})",
            scan.host_path(&f.manifest)
        )
    })
}

/// The targets of this node, or exactly `given`.
pub fn choose_targets(
    given: Option<&[Target]>,
    scan: &NodeScan,
    files: &mut NodeFiles<'_>,
) -> Vec<TargetChoice> {
    if let Some(given) = given {
        return Target::ALL
            .iter()
            .map(|t| TargetChoice {
                target: *t,
                selected: given.contains(t),
                why: if given.contains(t) {
                    "asked for with --targets".into()
                } else {
                    "not asked for (--targets)".into()
                },
            })
            .collect();
    }
    let control_plane = [
        Component::ApiServer,
        Component::ControllerManager,
        Component::Scheduler,
    ]
    .iter()
    .find_map(|c| seen(scan, *c));
    let etcd = seen(scan, Component::Etcd);
    let node = match scan.kubelet() {
        Some(p) => Some(format!("the kubelet runs (process {})", p.pid)),
        None => paths::component(Target::Node, "kubelet").and_then(|k| {
            [PathKind::Conf, PathKind::Svc, PathKind::Kubeconfig]
                .iter()
                .flat_map(|kind| k.candidates(*kind).0.iter())
                .find(|p| files.exists(p))
                .map(|p| format!("the kubelet is not running, but its file {p} exists"))
        }),
    };
    let cp_why = || {
        control_plane.clone().unwrap_or_else(|| {
            "not applicable: no API server, controller manager or scheduler runs or has a \
             static pod manifest on this node (a worker node)"
                .into()
        })
    };
    Target::ALL
        .iter()
        .map(|t| {
            let (selected, why) = match t {
                Target::Master | Target::ControlPlane => (control_plane.is_some(), cp_why()),
                Target::Policies => (
                    control_plane.is_some(),
                    if control_plane.is_some() {
                        "a control-plane node: cluster policies are audited from it (through \
                         the API; kharden lists them and evaluates none)"
                            .into()
                    } else {
                        "not applicable: cluster policies are audited from a control-plane node"
                            .into()
                    },
                ),
                Target::Etcd => (
                    etcd.is_some(),
                    etcd.clone().unwrap_or_else(|| {
                        "not applicable: etcd neither runs nor has a static pod manifest on this \
                         node"
                            .into()
                    }),
                ),
                Target::Node => (
                    node.is_some(),
                    node.clone().unwrap_or_else(|| {
                        "not applicable: no kubelet runs and none of its files exists".into()
                    }),
                ),
            };
            TargetChoice {
                target: *t,
                selected,
                why,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kube_bench_target_names() {
        assert_eq!(
            parse_targets(&["master,node".into(), "worker".into()]).unwrap(),
            vec![Target::Master, Target::Node]
        );
        assert!(parse_targets(&["mastr".into()])
            .unwrap_err()
            .contains("known"));
        assert!(parse_targets(&[",".into()]).is_err());
    }
}
