//! Finding the target document, pod spec, container and argv items in the syntax tree.
//!
//! Why it exists: every change starts by answering "which bytes are this container's argv?".
//! This module picks the document that is a Pod (or holds a pod template), the container (by
//! `--container`, else the only one, else the one that runs a known component), reads its
//! `command` and `args`, and refuses whatever it cannot read with certainty: anchors, aliases,
//! tags or merge keys on the path, duplicated keys, non-string argv items, flags inside block
//! scalars or a `sh -c` string. It also reads what `inspect` reports (probes, env, ...).

use crate::argv::{self, Launch};
use crate::tree::{Kind, Node, Style};
use crate::{EditError, EditErrorKind, HttpGetProbe, PodInfo};

/// One step of a path from a document root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Key(&'static str),
    Index(usize),
}

/// Which list an argv item is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListKind {
    Command,
    Args,
}

impl ListKind {
    pub(crate) fn key(self) -> &'static str {
        match self {
            ListKind::Command => "command",
            ListKind::Args => "args",
        }
    }
}

/// One item of the effective argv.
#[derive(Debug)]
pub(crate) struct ArgItem<'t> {
    pub list: ListKind,
    /// Position inside its list.
    pub pos: usize,
    pub node: &'t Node,
    pub value: &'t str,
}

/// The target container, found.
#[derive(Debug)]
pub(crate) struct Located<'t> {
    pub doc_index: usize,
    pub doc: &'t Node,
    pub pod_spec: &'t Node,
    /// Path from the document root to the pod spec.
    pub spec_path: &'static [Step],
    pub container_index: usize,
    pub container: &'t Node,
    pub name: String,
    pub command: Option<&'t Node>,
    pub args: Option<&'t Node>,
    pub argv: Vec<ArgItem<'t>>,
    pub flags_start: usize,
    pub component: Option<&'static str>,
}

impl Located<'_> {
    /// Path from the document root to the container.
    pub(crate) fn container_path(&self) -> Vec<Step> {
        let mut p = self.spec_path.to_vec();
        p.push(Step::Key("containers"));
        p.push(Step::Index(self.container_index));
        p
    }

    pub(crate) fn argv_strings(&self) -> Vec<String> {
        self.argv.iter().map(|a| a.value.to_string()).collect()
    }

    pub(crate) fn list(&self, kind: ListKind) -> Option<&Node> {
        match kind {
            ListKind::Command => self.command,
            ListKind::Args => self.args,
        }
    }
}

pub(crate) fn err(
    kind: EditErrorKind,
    line: Option<usize>,
    reason: impl Into<String>,
) -> EditError {
    EditError {
        line,
        kind,
        reason: reason.into(),
    }
}

fn unsupported(node: &Node, reason: impl Into<String>) -> EditError {
    err(EditErrorKind::Unsupported, Some(node.line), reason)
}

/// Refuse a node on the path that is an alias or carries an anchor or tag.
fn plain_node<'t>(node: &'t Node, what: &str) -> Result<&'t Node, EditError> {
    if matches!(node.kind, Kind::Alias) {
        return Err(unsupported(
            node,
            format!("{what} is an alias; refusing to edit through aliases"),
        ));
    }
    if node.props {
        return Err(unsupported(
            node,
            format!("{what} carries an anchor or tag; refusing to edit it"),
        ));
    }
    Ok(node)
}

/// `map[key]`, refusing duplicated keys, merge keys and properties on the value.
pub(crate) fn get<'t>(map: &'t Node, key: &str) -> Result<Option<&'t Node>, EditError> {
    let Some(pairs) = map.map_pairs() else {
        return Ok(None);
    };
    let mut found = None;
    for (k, v) in pairs {
        match k.scalar() {
            Some("<<") if k.style() == Some(Style::Plain) => {
                return Err(unsupported(
                    k,
                    "merge key `<<` on the path; refusing to edit it",
                ));
            }
            Some(s) if s == key => {
                if found.is_some() {
                    return Err(unsupported(k, format!("key `{key}` appears twice")));
                }
                if k.props {
                    return Err(unsupported(
                        k,
                        format!("key `{key}` carries an anchor or tag"),
                    ));
                }
                found = Some(plain_node(v, &format!("`{key}`"))?);
            }
            _ => {}
        }
    }
    Ok(found)
}

/// A scalar value at `map[key]` (None when absent or not a scalar).
fn get_str<'t>(map: &'t Node, key: &str) -> Result<Option<&'t str>, EditError> {
    Ok(get(map, key)?.and_then(Node::scalar))
}

const POD_SPEC: &[Step] = &[Step::Key("spec")];
const TEMPLATE_SPEC: &[Step] = &[Step::Key("spec"), Step::Key("template"), Step::Key("spec")];
const CRONJOB_SPEC: &[Step] = &[
    Step::Key("spec"),
    Step::Key("jobTemplate"),
    Step::Key("spec"),
    Step::Key("template"),
    Step::Key("spec"),
];

fn walk<'t>(root: &'t Node, path: &[Step]) -> Result<Option<&'t Node>, EditError> {
    let mut cur = root;
    for step in path {
        let next = match step {
            Step::Key(k) => get(cur, k)?,
            Step::Index(i) => cur.seq_items().and_then(|items| items.get(*i)),
        };
        match next {
            Some(n) => cur = plain_node(n, "a node on the path to the container")?,
            None => return Ok(None),
        }
    }
    Ok(Some(cur))
}

struct Candidate<'t> {
    doc_index: usize,
    doc: &'t Node,
    is_pod: bool,
    spec_path: &'static [Step],
    spec: &'t Node,
    containers: &'t [Node],
}

fn candidate(doc_index: usize, doc: &Node) -> Result<Option<Candidate<'_>>, EditError> {
    if doc.map_pairs().is_none() {
        return Ok(None);
    }
    let kind = get_str(doc, "kind")?;
    let (is_pod, spec_path) = match kind {
        None | Some("Pod") => (true, POD_SPEC),
        Some(
            "Deployment"
            | "DaemonSet"
            | "StatefulSet"
            | "ReplicaSet"
            | "Job"
            | "ReplicationController"
            | "PodTemplate",
        ) => (false, TEMPLATE_SPEC),
        Some("CronJob") => (false, CRONJOB_SPEC),
        Some(_) => return Ok(None),
    };
    let spec_path = if kind == Some("PodTemplate") {
        &TEMPLATE_SPEC[1..]
    } else {
        spec_path
    };
    let Some(spec) = walk(doc, spec_path)? else {
        return Ok(None);
    };
    let Some(containers) = get(spec, "containers")? else {
        return Ok(None);
    };
    let Some(items) = containers.seq_items() else {
        return Ok(None);
    };
    if items.is_empty() {
        return Ok(None);
    }
    Ok(Some(Candidate {
        doc_index,
        doc,
        is_pod,
        spec_path,
        spec,
        containers: items,
    }))
}

fn container_name(c: &Node) -> Option<&str> {
    c.map_pairs()?
        .iter()
        .find(|(k, _)| k.scalar() == Some("name"))
        .and_then(|(_, v)| v.scalar())
}

/// The argv strings of a container, leniently (for choosing among containers).
fn quick_argv(c: &Node) -> (Vec<&str>, bool) {
    let mut out = Vec::new();
    let mut has_command = false;
    for key in ["command", "args"] {
        let list = c
            .map_pairs()
            .and_then(|p| p.iter().find(|(k, _)| k.scalar() == Some(key)))
            .and_then(|(_, v)| v.seq_items());
        if let Some(items) = list {
            if key == "command" {
                has_command = true;
            }
            out.extend(items.iter().filter_map(Node::scalar));
        }
    }
    (out, has_command)
}

/// The component a container runs, from its name or its argv.
fn container_component(c: &Node) -> Option<&'static str> {
    if let Some(name) = container_name(c) {
        if let Some(comp) = argv::COMPONENTS.iter().copied().find(|x| *x == name) {
            return Some(comp);
        }
    }
    let (argv, has_command) = quick_argv(c);
    let owned: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    match argv::analyse(&owned, has_command) {
        Launch::Flags {
            binary: Some(b), ..
        } => owned.get(b).and_then(|s| argv::component_of_binary(s)),
        _ => None,
    }
}

/// The component the pod itself names (kubeadm's `component` label, `k8s-app`, or its name).
fn pod_component(doc: &Node) -> Option<&'static str> {
    let meta = doc
        .map_pairs()?
        .iter()
        .find(|(k, _)| k.scalar() == Some("metadata"))
        .map(|(_, v)| v)?;
    let field = |m: &Node, key: &str| -> Option<String> {
        m.map_pairs()?
            .iter()
            .find(|(k, _)| k.scalar() == Some(key))
            .and_then(|(_, v)| v.scalar())
            .map(str::to_string)
    };
    let labels = meta
        .map_pairs()?
        .iter()
        .find(|(k, _)| k.scalar() == Some("labels"))
        .map(|(_, v)| v);
    let mut hints = Vec::new();
    if let Some(l) = labels {
        hints.extend(field(l, "component"));
        hints.extend(field(l, "k8s-app"));
    }
    hints.extend(field(meta, "name"));
    for h in hints {
        for c in argv::COMPONENTS {
            if h == *c || h.starts_with(&format!("{c}-")) {
                return Some(c);
            }
        }
    }
    None
}

fn pick_container<'t>(
    cand: &Candidate<'t>,
    wanted: Option<&str>,
) -> Result<(usize, &'t Node), EditError> {
    let items = cand.containers;
    let names = || {
        items
            .iter()
            .map(|c| container_name(c).unwrap_or("?"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // `candidate` only returns pods with a non-empty `containers` list.
    let line = Some(items[0].line);
    if let Some(w) = wanted {
        let matches: Vec<(usize, &Node)> = items
            .iter()
            .enumerate()
            .filter(|(_, c)| container_name(c) == Some(w))
            .collect();
        return match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(err(
                EditErrorKind::Container,
                line,
                format!("no container named {w:?} (containers: {})", names()),
            )),
            _ => Err(err(
                EditErrorKind::Container,
                line,
                format!("several containers are named {w:?}"),
            )),
        };
    }
    if let [only] = items {
        return Ok((0, only));
    }
    let comps: Vec<(usize, &Node, &'static str)> = items
        .iter()
        .enumerate()
        .filter_map(|(i, c)| container_component(c).map(|comp| (i, c, comp)))
        .collect();
    if let [(i, c, _)] = comps.as_slice() {
        return Ok((*i, c));
    }
    if let Some(pc) = pod_component(cand.doc) {
        let m: Vec<_> = comps.iter().filter(|(_, _, comp)| *comp == pc).collect();
        if let [(i, c, _)] = m.as_slice() {
            return Ok((*i, c));
        }
    }
    Err(err(
        EditErrorKind::Container,
        line,
        format!(
            "{} containers ({}) and none is clearly the control-plane component; name one with --container",
            items.len(),
            names()
        ),
    ))
}

fn pick_document<'t>(docs: &'t [Node], wanted: Option<&str>) -> Result<Candidate<'t>, EditError> {
    let mut cands = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        if let Some(c) = candidate(i, d)? {
            cands.push(c);
        }
    }
    if cands.is_empty() {
        return Err(err(
            EditErrorKind::Container,
            None,
            "no Pod (or pod template) with containers in this file",
        ));
    }
    if let Some(w) = wanted {
        if cands
            .iter()
            .any(|c| c.containers.iter().any(|x| container_name(x) == Some(w)))
        {
            cands.retain(|c| c.containers.iter().any(|x| container_name(x) == Some(w)));
        }
    }
    if cands.len() == 1 {
        return cands
            .pop()
            .ok_or_else(|| err(EditErrorKind::Container, None, "no document"));
    }
    let pods: Vec<usize> = (0..cands.len()).filter(|&i| cands[i].is_pod).collect();
    if let [one] = pods.as_slice() {
        return Ok(cands.swap_remove(*one));
    }
    // Here `cands` holds at least two documents (zero and one returned above).
    let lines: Vec<String> = cands.iter().map(|c| c.doc.line.to_string()).collect();
    Err(err(
        EditErrorKind::Container,
        Some(cands[0].doc.line),
        format!(
            "{} documents hold pods (starting on lines {}); refusing to guess which one to edit",
            cands.len(),
            lines.join(", ")
        ),
    ))
}

fn argv_list<'t>(container: &'t Node, key: &'static str) -> Result<Option<&'t Node>, EditError> {
    let Some(n) = get(container, key)? else {
        return Ok(None);
    };
    match &n.kind {
        Kind::Seq { .. } => Ok(Some(n)),
        Kind::Scalar {
            value,
            style: Style::Plain,
        } if value.is_empty() || value == "~" || value == "null" => Ok(None),
        _ => Err(unsupported(n, format!("`{key}` is not a list"))),
    }
}

/// Find the target container.
pub(crate) fn locate<'t>(docs: &'t [Node], wanted: Option<&str>) -> Result<Located<'t>, EditError> {
    let cand = pick_document(docs, wanted)?;
    plain_node(cand.doc, "the document")?;
    let (container_index, container) = pick_container(&cand, wanted)?;
    plain_node(container, "the container")?;
    if container.map_pairs().is_none() {
        return Err(unsupported(container, "the container is not a mapping"));
    }
    let name = get_str(container, "name")?.unwrap_or_default().to_string();
    let command = argv_list(container, "command")?;
    let args = argv_list(container, "args")?;
    let mut argv = Vec::new();
    for (list, node) in [(ListKind::Command, command), (ListKind::Args, args)] {
        let Some(items) = node.and_then(Node::seq_items) else {
            continue;
        };
        for (pos, item) in items.iter().enumerate() {
            let item = plain_node(item, &format!("an item of `{}`", list.key()))?;
            let Some(value) = item.scalar() else {
                return Err(unsupported(
                    item,
                    format!("an item of `{}` is not a string", list.key()),
                ));
            };
            argv.push(ArgItem {
                list,
                pos,
                node: item,
                value,
            });
        }
    }
    let strings: Vec<String> = argv.iter().map(|a| a.value.to_string()).collect();
    let (flags_start, binary) = match argv::analyse(&strings, command.is_some()) {
        Launch::Flags {
            flags_start,
            binary,
        } => (flags_start, binary),
        Launch::ShellC { index } => {
            // `analyse` returns an index into the argv it was given.
            return Err(unsupported(
                argv[index].node,
                "the flags are inside a `sh -c` script string; kharden does not edit shell scripts",
            ));
        }
    };
    if let Some(b) = argv[flags_start.min(argv.len())..]
        .iter()
        .find(|a| a.node.style() == Some(Style::Block))
    {
        return Err(unsupported(
            b.node,
            "an argv item is a block scalar (`|` or `>`); kharden does not edit flags inside block scalars",
        ));
    }
    let component = argv::COMPONENTS
        .iter()
        .copied()
        .find(|c| *c == name)
        .or_else(|| binary.and_then(|b| argv::component_of_binary(&strings[b])));
    Ok(Located {
        doc_index: cand.doc_index,
        doc: cand.doc,
        pod_spec: cand.spec,
        spec_path: cand.spec_path,
        container_index,
        container,
        name,
        command,
        args,
        argv,
        flags_start,
        component,
    })
}

fn yaml11_true(s: &str) -> bool {
    matches!(s.to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "y")
}

fn probes(loc: &Located<'_>) -> Result<Vec<HttpGetProbe>, EditError> {
    let mut out = Vec::new();
    for kind in ["startupProbe", "readinessProbe", "livenessProbe"] {
        let Some(probe) = get(loc.container, kind)? else {
            continue;
        };
        let Some(http) = get(probe, "httpGet")? else {
            continue;
        };
        let scheme = get_str(http, "scheme")?
            .unwrap_or("HTTP")
            .to_ascii_uppercase();
        let host = get_str(http, "host")?
            .filter(|h| !h.is_empty())
            .map(str::to_string);
        let path = get_str(http, "path")?.unwrap_or("/").to_string();
        let Some(port) = get_str(http, "port")? else {
            continue;
        };
        let port = match port.parse::<u16>() {
            Ok(p) => Some(p),
            Err(_) => named_port(loc.container, port)?,
        };
        if let Some(port) = port {
            out.push(HttpGetProbe {
                kind: kind.to_string(),
                scheme,
                host,
                port,
                path,
            });
        }
    }
    Ok(out)
}

fn named_port(container: &Node, name: &str) -> Result<Option<u16>, EditError> {
    let Some(ports) = get(container, "ports")?.and_then(Node::seq_items) else {
        return Ok(None);
    };
    for p in ports {
        if get_str(p, "name")? == Some(name) {
            return Ok(get_str(p, "containerPort")?.and_then(|s| s.parse().ok()));
        }
    }
    Ok(None)
}

fn env(container: &Node) -> Result<Vec<(String, String)>, EditError> {
    let Some(items) = get(container, "env")?.and_then(Node::seq_items) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for e in items {
        if let (Some(n), Some(v)) = (get_str(e, "name")?, get_str(e, "value")?) {
            out.push((n.to_string(), v.to_string()));
        }
    }
    Ok(out)
}

/// What `inspect` reports about a located container, with `argv` as given.
pub(crate) fn pod_info(
    loc: &Located<'_>,
    argv: Vec<String>,
    flags_start: usize,
) -> Result<PodInfo, EditError> {
    let pod_name = match get(loc.doc, "metadata")? {
        Some(m) => get_str(m, "name")?.map(str::to_string),
        None => None,
    };
    let host_network = get_str(loc.pod_spec, "hostNetwork")?.is_some_and(yaml11_true);
    Ok(PodInfo {
        pod_name,
        container: loc.name.clone(),
        component: loc.component.map(str::to_string),
        argv,
        flags_start,
        probes: probes(loc)?,
        env: env(loc.container)?,
        host_network,
    })
}
