//! A simulated control-plane node on disk: kubeadm-shaped manifests and PKI under a root.
//!
//! Why: kharden's `--root` resolves host paths under another root; tests and the demo build a
//! node in a temporary directory and let the emulator run it. The manifests follow kubeadm's
//! shape (hostNetwork, `command:` list, probes with `httpGet` on 127.0.0.1, hostPath volumes),
//! but every path they name is the real path under the root (there is no container mount
//! namespace here, so `--tls-cert-file` must point at the file the fake really opens), and
//! every port is a free loopback port so tests run in parallel.
//!
//! The advertise address is [`crate::pki::DEFAULT_ADVERTISE_ADDRESS`] (TEST-NET-1, never
//! connected to): it is in the apiserver certificate and in `--advertise-address`, while probes
//! and binds use 127.0.0.1, which the certificate deliberately does not carry.

use crate::pki::{generate_pki_with, Pki, PkiError, PkiOptions};
use std::fmt::Write as _;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// A free TCP port on 127.0.0.1, as the kernel hands it out for port 0. The port is released
/// before returning, so another process could take it in between: good enough for tests, which
/// all use ephemeral ports the kernel does not hand out twice in a row.
pub fn free_port() -> u16 {
    // Binding 127.0.0.1:0 only fails when the loopback interface is missing or ports are
    // exhausted; there is nothing a test could do then, so say so loudly.
    let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind 127.0.0.1:0: {e}"));
    l.local_addr()
        .unwrap_or_else(|e| panic!("local_addr of a bound socket: {e}"))
        .port()
}

/// Ports of a simulated node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodePorts {
    pub apiserver: u16,
    pub controller_manager: u16,
    pub scheduler: u16,
    pub etcd_client: u16,
    pub etcd_peer: u16,
    pub etcd_metrics: u16,
}

impl NodePorts {
    /// All free (distinct) ports.
    pub fn free() -> NodePorts {
        let mut seen = Vec::new();
        let mut next = || loop {
            let p = free_port();
            if !seen.contains(&p) {
                seen.push(p);
                return p;
            }
        };
        NodePorts {
            apiserver: next(),
            controller_manager: next(),
            scheduler: next(),
            etcd_client: next(),
            etcd_peer: next(),
            etcd_metrics: next(),
        }
    }
}

/// Which manifests [`write_node`] writes.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    pub pki: PkiOptions,
    pub apiserver: bool,
    pub controller_manager: bool,
    pub scheduler: bool,
    /// etcd (the real binary; see [`etcd_binary`]).
    pub etcd: bool,
    /// Extra flags appended to kube-apiserver's command.
    pub extra_apiserver_args: Vec<String>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            pki: PkiOptions::default(),
            apiserver: true,
            controller_manager: true,
            scheduler: true,
            etcd: false,
            extra_apiserver_args: Vec::new(),
        }
    }
}

/// What [`write_node`] created.
#[derive(Debug, Clone)]
pub struct Node {
    pub root: PathBuf,
    pub manifests_dir: PathBuf,
    pub pki: Pki,
    pub ports: NodePorts,
    pub advertise_address: String,
    pub apiserver_manifest: Option<PathBuf>,
    pub controller_manager_manifest: Option<PathBuf>,
    pub scheduler_manifest: Option<PathBuf>,
    pub etcd_manifest: Option<PathBuf>,
    /// etcd's data directory (`<root>/var/lib/etcd`).
    pub etcd_data_dir: PathBuf,
}

/// Errors of [`write_node`].
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The real etcd binary, if installed (Debian's `etcd-server` puts it at `/usr/bin/etcd`).
pub fn etcd_binary() -> Option<PathBuf> {
    ["/usr/bin/etcd", "/usr/local/bin/etcd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Write the PKI and the manifests of a simulated node under `root`.
pub fn write_node(root: &Path, ports: NodePorts, opts: &NodeOptions) -> Result<Node, NodeError> {
    let manifests_dir = root.join("etc/kubernetes/manifests");
    mkdir(&manifests_dir)?;
    let pki = generate_pki_with(&root.join("etc/kubernetes/pki"), &opts.pki)?;
    let etcd_data_dir = root.join("var/lib/etcd");
    let mut node = Node {
        root: root.to_path_buf(),
        manifests_dir: manifests_dir.clone(),
        pki,
        ports,
        advertise_address: opts.pki.advertise_address.clone(),
        apiserver_manifest: None,
        controller_manager_manifest: None,
        scheduler_manifest: None,
        etcd_manifest: None,
        etcd_data_dir,
    };
    let write = |name: &str, text: String| -> Result<PathBuf, NodeError> {
        let p = manifests_dir.join(name);
        fs::write(&p, text).map_err(|source| NodeError::Io {
            path: p.clone(),
            source,
        })?;
        Ok(p)
    };
    if opts.apiserver {
        node.apiserver_manifest = Some(write(
            "kube-apiserver.yaml",
            apiserver_manifest(&node, &opts.extra_apiserver_args),
        )?);
    }
    if opts.controller_manager {
        node.controller_manager_manifest = Some(write(
            "kube-controller-manager.yaml",
            controller_manager_manifest(&node),
        )?);
    }
    if opts.scheduler {
        node.scheduler_manifest = Some(write("kube-scheduler.yaml", scheduler_manifest(&node))?);
    }
    if opts.etcd {
        mkdir(&node.etcd_data_dir)?;
        // etcd insists on 0700 for its data dir.
        set_mode(&node.etcd_data_dir, 0o700)?;
        node.etcd_manifest = Some(write("etcd.yaml", etcd_manifest(&node))?);
    }
    Ok(node)
}

fn mkdir(p: &Path) -> Result<(), NodeError> {
    fs::create_dir_all(p).map_err(|source| NodeError::Io {
        path: p.to_path_buf(),
        source,
    })
}

fn set_mode(p: &Path, mode: u32) -> Result<(), NodeError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).map_err(|source| NodeError::Io {
        path: p.to_path_buf(),
        source,
    })
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// A YAML list item with the value quoted when needed (paths under a temp dir are plain, but
/// keep the output valid whatever the root is).
fn item(out: &mut String, indent: &str, s: &str) {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./,:+".contains(c))
        && !s.contains(": ")
        && !s.ends_with(':');
    if plain {
        let _ = writeln!(out, "{indent}- {s}");
    } else {
        let _ = writeln!(out, "{indent}- '{}'", s.replace('\'', "''"));
    }
}

fn probes(out: &mut String, host: &str, port: u16, scheme: &str, live: &str, ready: &str) {
    for (kind, path, threshold, period) in [
        ("livenessProbe", live, 8, 10),
        ("readinessProbe", ready, 3, 1),
        ("startupProbe", live, 24, 10),
    ] {
        let _ = write!(
            out,
            "    {kind}:\n      failureThreshold: {threshold}\n      httpGet:\n        host: {host}\n        path: {path}\n        port: {port}\n        scheme: {scheme}\n      initialDelaySeconds: 10\n      periodSeconds: {period}\n      timeoutSeconds: 15\n"
        );
    }
}

fn header(out: &mut String, component: &str) {
    let _ = write!(
        out,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  creationTimestamp: null\n  labels:\n    component: {component}\n    tier: control-plane\n  name: {component}\n  namespace: kube-system\nspec:\n  containers:\n  - command:\n"
    );
}

fn footer(out: &mut String, component: &str, image: &str, mounts: &[(&str, String)]) {
    let _ = write!(
        out,
        "    image: registry.k8s.io/{component}:{image}\n    imagePullPolicy: IfNotPresent\n    name: {component}\n    resources:\n      requests:\n        cpu: 250m\n    volumeMounts:\n"
    );
    for (name, path) in mounts {
        let _ = write!(
            out,
            "    - mountPath: {path}\n      name: {name}\n      readOnly: true\n"
        );
    }
    let _ = write!(
        out,
        "  hostNetwork: true\n  priority: 2000001000\n  priorityClassName: system-node-critical\n  securityContext:\n    seccompProfile:\n      type: RuntimeDefault\n  volumes:\n"
    );
    for (name, path) in mounts {
        let _ = write!(
            out,
            "  - hostPath:\n      path: {path}\n      type: DirectoryOrCreate\n    name: {name}\n"
        );
    }
    out.push_str("status: {}\n");
}

/// kube-apiserver's manifest for `node` (kubeadm v1.30 shape).
pub fn apiserver_manifest(node: &Node, extra_args: &[String]) -> String {
    let pki = &node.pki;
    let k = |name: &str| p(&pki.dir.join(name));
    let ports = node.ports;
    let mut out = String::new();
    header(&mut out, "kube-apiserver");
    let args = [
        "kube-apiserver".to_string(),
        format!("--advertise-address={}", node.advertise_address),
        "--allow-privileged=true".into(),
        "--authorization-mode=Node,RBAC".into(),
        "--bind-address=127.0.0.1".into(),
        format!("--client-ca-file={}", k("ca.crt")),
        "--enable-admission-plugins=NodeRestriction".into(),
        "--enable-bootstrap-token-auth=true".into(),
        format!("--etcd-cafile={}", k("etcd/ca.crt")),
        format!("--etcd-certfile={}", k("apiserver-etcd-client.crt")),
        format!("--etcd-keyfile={}", k("apiserver-etcd-client.key")),
        format!("--etcd-servers=https://127.0.0.1:{}", ports.etcd_client),
        format!(
            "--kubelet-client-certificate={}",
            k("apiserver-kubelet-client.crt")
        ),
        format!("--kubelet-client-key={}", k("apiserver-kubelet-client.key")),
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname".into(),
        "--requestheader-allowed-names=front-proxy-client".into(),
        "--requestheader-extra-headers-prefix=X-Remote-Extra-".into(),
        "--requestheader-group-headers=X-Remote-Group".into(),
        "--requestheader-username-headers=X-Remote-User".into(),
        format!("--secure-port={}", ports.apiserver),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
        format!("--service-account-key-file={}", k("sa.pub")),
        format!("--service-account-signing-key-file={}", k("sa.key")),
        "--service-cluster-ip-range=10.96.0.0/12".into(),
        format!("--tls-cert-file={}", k("apiserver.crt")),
        format!("--tls-private-key-file={}", k("apiserver.key")),
    ];
    for a in args.iter().chain(extra_args) {
        item(&mut out, "    ", a);
    }
    probes(
        &mut out,
        "127.0.0.1",
        ports.apiserver,
        "HTTPS",
        "/livez",
        "/readyz",
    );
    footer(
        &mut out,
        "kube-apiserver",
        "v1.30.0",
        &[
            ("ca-certs", "/etc/ssl/certs".to_string()),
            ("k8s-certs", p(&pki.dir)),
        ],
    );
    out
}

/// kube-controller-manager's manifest (serves a self-signed certificate, as the real one does
/// without `--tls-cert-file`).
pub fn controller_manager_manifest(node: &Node) -> String {
    let pki = &node.pki;
    let k = |name: &str| p(&pki.dir.join(name));
    let kubeconfig = p(&node.root.join("etc/kubernetes/controller-manager.conf"));
    let mut out = String::new();
    header(&mut out, "kube-controller-manager");
    let args = [
        "kube-controller-manager".to_string(),
        format!("--authentication-kubeconfig={kubeconfig}"),
        format!("--authorization-kubeconfig={kubeconfig}"),
        "--bind-address=127.0.0.1".into(),
        format!("--client-ca-file={}", k("ca.crt")),
        "--cluster-name=kubernetes".into(),
        format!("--cluster-signing-cert-file={}", k("ca.crt")),
        format!("--cluster-signing-key-file={}", k("ca.key")),
        "--controllers=*,bootstrapsigner,tokencleaner".into(),
        format!("--kubeconfig={kubeconfig}"),
        "--leader-elect=true".into(),
        format!("--root-ca-file={}", k("ca.crt")),
        format!("--secure-port={}", node.ports.controller_manager),
        format!("--service-account-private-key-file={}", k("sa.key")),
        "--use-service-account-credentials=true".into(),
    ];
    for a in &args {
        item(&mut out, "    ", a);
    }
    probes(
        &mut out,
        "127.0.0.1",
        node.ports.controller_manager,
        "HTTPS",
        "/healthz",
        "/healthz",
    );
    footer(
        &mut out,
        "kube-controller-manager",
        "v1.30.0",
        &[("k8s-certs", p(&pki.dir))],
    );
    out
}

/// kube-scheduler's manifest.
pub fn scheduler_manifest(node: &Node) -> String {
    let kubeconfig = p(&node.root.join("etc/kubernetes/scheduler.conf"));
    let mut out = String::new();
    header(&mut out, "kube-scheduler");
    let args = [
        "kube-scheduler".to_string(),
        format!("--authentication-kubeconfig={kubeconfig}"),
        format!("--authorization-kubeconfig={kubeconfig}"),
        "--bind-address=127.0.0.1".into(),
        format!("--kubeconfig={kubeconfig}"),
        "--leader-elect=true".into(),
        format!("--secure-port={}", node.ports.scheduler),
    ];
    for a in &args {
        item(&mut out, "    ", a);
    }
    probes(
        &mut out,
        "127.0.0.1",
        node.ports.scheduler,
        "HTTPS",
        "/healthz",
        "/healthz",
    );
    footer(
        &mut out,
        "kube-scheduler",
        "v1.30.0",
        &[("kubeconfig", kubeconfig.clone())],
    );
    out
}

/// etcd's manifest (kubeadm shape: TLS client and peer URLs on loopback, an HTTP `/health`
/// probe on `--listen-metrics-urls`). Runs the real `etcd` found on PATH.
pub fn etcd_manifest(node: &Node) -> String {
    let pki = &node.pki;
    let k = |name: &str| p(&pki.dir.join(name));
    let ports = node.ports;
    let name = &node.pki.apiserver_sans[0];
    let mut out = String::new();
    out.push_str(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  annotations:\n    kubeadm.kubernetes.io/etcd.advertise-client-urls: https://127.0.0.1:",
    );
    let _ = writeln!(out, "{}", ports.etcd_client);
    out.push_str("  creationTimestamp: null\n  labels:\n    component: etcd\n    tier: control-plane\n  name: etcd\n  namespace: kube-system\nspec:\n  containers:\n  - command:\n");
    let args = [
        "etcd".to_string(),
        format!(
            "--advertise-client-urls=https://127.0.0.1:{}",
            ports.etcd_client
        ),
        format!("--cert-file={}", k("etcd/server.crt")),
        "--client-cert-auth=true".into(),
        format!("--data-dir={}", p(&node.etcd_data_dir)),
        "--experimental-initial-corrupt-check=true".into(),
        format!(
            "--initial-advertise-peer-urls=https://127.0.0.1:{}",
            ports.etcd_peer
        ),
        format!(
            "--initial-cluster={name}=https://127.0.0.1:{}",
            ports.etcd_peer
        ),
        format!("--key-file={}", k("etcd/server.key")),
        format!(
            "--listen-client-urls=https://127.0.0.1:{}",
            ports.etcd_client
        ),
        format!(
            "--listen-metrics-urls=http://127.0.0.1:{}",
            ports.etcd_metrics
        ),
        format!("--listen-peer-urls=https://127.0.0.1:{}", ports.etcd_peer),
        format!("--name={name}"),
        format!("--peer-cert-file={}", k("etcd/peer.crt")),
        "--peer-client-cert-auth=true".into(),
        format!("--peer-key-file={}", k("etcd/peer.key")),
        format!("--peer-trusted-ca-file={}", k("etcd/ca.crt")),
        "--snapshot-count=10000".into(),
        format!("--trusted-ca-file={}", k("etcd/ca.crt")),
    ];
    for a in &args {
        item(&mut out, "    ", a);
    }
    probes(
        &mut out,
        "127.0.0.1",
        ports.etcd_metrics,
        "HTTP",
        "/health?exclude=NOSPACE&serializable=true",
        "/health?serializable=false",
    );
    footer(
        &mut out,
        "etcd",
        "3.5.12-0",
        &[
            ("etcd-certs", k("etcd")),
            ("etcd-data", p(&node.etcd_data_dir)),
        ],
    );
    out
}
