//! A simulated node on disk: kubeadm-shaped manifests, PKI and kubelet files under a root.
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
//!
//! # The kubelet's files
//! Every node, control plane ([`write_node`]) or worker ([`write_worker_node`]), gets what
//! `kubeadm init`/`join` and the kubeadm packages leave for the kubelet, with kubeadm's modes:
//! `/var/lib/kubelet/config.yaml` (0644, kubeadm's KubeletConfiguration with a free
//! `healthzPort`), `/var/lib/kubelet/kubeadm-flags.env` (0644, `KUBELET_KUBEADM_ARGS`),
//! `/etc/default/kubelet` (0644, `KUBELET_EXTRA_ARGS`), `/etc/kubernetes/kubelet.conf` (0600,
//! client certificate in `/var/lib/kubelet/pki/kubelet-client-current.pem`),
//! `/etc/kubernetes/pki/ca.crt` (0644; a worker has no CA key), the unit
//! `/usr/lib/systemd/system/kubelet.service` and its drop-in `kubelet.service.d/10-kubeadm.conf`
//! (0644; or the older `/lib/systemd/system` + `/etc/systemd/system/kubelet.service.d` layout).
//! Unlike the manifests, these files name HOST paths (`/var/lib/kubelet/config.yaml`), exactly as
//! on a real node: the service manager and the kubelet emulator resolve them under the root, and
//! so must kharden (`--root`). The kubeconfig's server is on 127.0.0.1 (a free port on a worker),
//! never the advertise address: nothing may ever try to reach TEST-NET.

use crate::pki::{
    generate_kubelet_pki, generate_pki_with, generate_worker_ca, KubeletPki, Pki, PkiError,
    PkiOptions,
};
use std::fmt::Write as _;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// The kubelet's files (`None`: none are written).
    pub kubelet: Option<KubeletNodeOptions>,
    /// The tag of the control-plane images (`registry.k8s.io/kube-apiserver:TAG`, and the
    /// controller manager's and scheduler's), as kubeadm writes the cluster's version there.
    pub kubernetes_version: String,
    /// Per component (`kube-scheduler`, ...), a tag other than `kubernetes_version`: a node in
    /// the middle of `kubeadm upgrade apply`, which rewrites one manifest at a time.
    pub image_tags: Vec<(String, String)>,
}

impl NodeOptions {
    /// The image tag of a control-plane component's manifest.
    pub fn image_tag(&self, component: &str) -> &str {
        self.image_tags
            .iter()
            .find(|(c, _)| c == component)
            .map(|(_, t)| t.as_str())
            .unwrap_or(&self.kubernetes_version)
    }
}

/// The Kubernetes version of a simulated node unless told otherwise.
pub const DEFAULT_KUBERNETES_VERSION: &str = "v1.30.0";

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            pki: PkiOptions::default(),
            apiserver: true,
            controller_manager: true,
            scheduler: true,
            etcd: false,
            extra_apiserver_args: Vec::new(),
            kubelet: Some(KubeletNodeOptions::default()),
            kubernetes_version: DEFAULT_KUBERNETES_VERSION.into(),
            image_tags: Vec::new(),
        }
    }
}

/// How [`write_node`] and [`write_worker_node`] write the kubelet's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletNodeOptions {
    /// The node's name (`--hostname-override`, the client certificate's CN).
    pub node_name: String,
    /// `healthzPort` in config.yaml; `None`: a free port (the real default, 10248, would make
    /// parallel tests collide).
    pub healthz_port: Option<u16>,
    /// `RestartSec=` of the unit (kubeadm's: 10 s; tests want it short).
    pub restart_sec: Duration,
    /// `KUBELET_EXTRA_ARGS` in `/etc/default/kubelet` (written as is, unquoted).
    pub extra_args: String,
    /// A `--config-dir` (host path) to create and pass in kubeadm-flags.env.
    pub config_dir: Option<String>,
    /// The pre-2023 package layout: the unit in `/lib/systemd/system`, the drop-in in
    /// `/etc/systemd/system/kubelet.service.d`.
    pub legacy_unit_paths: bool,
    /// Write the kernel tunables `protectKernelDefaults: true` requires under `<root>/proc/sys`
    /// (the kubelet emulator reads them there, else from the host's /proc/sys).
    pub kernel_tunables_set: bool,
    /// The kubeconfig's server (`None`: the node's apiserver on 127.0.0.1, or a free, closed
    /// port on 127.0.0.1 for a worker).
    pub api_server: Option<String>,
}

impl Default for KubeletNodeOptions {
    fn default() -> Self {
        KubeletNodeOptions {
            node_name: "testnode".into(),
            healthz_port: None,
            restart_sec: Duration::from_secs(10),
            extra_args: String::new(),
            config_dir: None,
            legacy_unit_paths: false,
            kernel_tunables_set: true,
            api_server: None,
        }
    }
}

/// The kubelet's files of a simulated node (paths under the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletNode {
    pub root: PathBuf,
    pub node_name: String,
    /// `/var/lib/kubelet/config.yaml`.
    pub config: PathBuf,
    /// `/var/lib/kubelet/kubeadm-flags.env`.
    pub kubeadm_flags_env: PathBuf,
    /// `/etc/default/kubelet`.
    pub extra_args_env: PathBuf,
    /// `/etc/kubernetes/kubelet.conf`.
    pub kubeconfig: PathBuf,
    /// `/etc/kubernetes/pki/ca.crt`.
    pub ca_cert: PathBuf,
    /// The unit file.
    pub unit: PathBuf,
    /// The kubeadm drop-in.
    pub dropin: PathBuf,
    /// The `--config-dir`, if any.
    pub config_dir: Option<PathBuf>,
    /// `/etc/kubernetes/manifests` (`staticPodPath`).
    pub manifests_dir: PathBuf,
    pub healthz_port: u16,
    pub pki: KubeletPki,
}

impl KubeletNode {
    /// `http://127.0.0.1:PORT/healthz`.
    pub fn healthz_url(&self) -> String {
        format!("http://127.0.0.1:{}/healthz", self.healthz_port)
    }

    /// A path under the root for a host path.
    pub fn host(&self, host_path: &str) -> PathBuf {
        crate::unit::under_root(&self.root, host_path)
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
    /// The kubelet's files, when written.
    pub kubelet: Option<KubeletNode>,
    /// The image tag of each control-plane manifest written.
    pub image_tags: Vec<(String, String)>,
}

impl Node {
    /// The image tag of a control-plane component's manifest.
    pub fn image_tag(&self, component: &str) -> &str {
        self.image_tags
            .iter()
            .find(|(c, _)| c == component)
            .map(|(_, t)| t.as_str())
            .unwrap_or(DEFAULT_KUBERNETES_VERSION)
    }
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
    write_accounts(root)?;
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
        kubelet: None,
        image_tags: [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
        ]
        .iter()
        .map(|c| (c.to_string(), opts.image_tag(c).to_string()))
        .collect(),
    };
    // kubeadm writes the static pod manifests 0600.
    let write = |name: &str, text: String| -> Result<PathBuf, NodeError> {
        let p = manifests_dir.join(name);
        fs::write(&p, text).map_err(|source| NodeError::Io {
            path: p.clone(),
            source,
        })?;
        set_mode(&p, 0o600)?;
        Ok(p)
    };
    // kubeadm's kubeconfigs of the control plane, 0600 root:root as kubeadm writes them.
    for (name, user) in [
        ("admin.conf", "kubernetes-admin"),
        ("super-admin.conf", "kubernetes-super-admin"),
        ("controller-manager.conf", "system:kube-controller-manager"),
        ("scheduler.conf", "system:kube-scheduler"),
    ] {
        write_mode(
            &root.join("etc/kubernetes").join(name),
            &control_plane_kubeconfig(ports.apiserver, user),
            0o600,
        )?;
    }
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
    if let Some(k) = &opts.kubelet {
        let ca_key = fs::read_to_string(&node.pki.ca.key).map_err(|source| NodeError::Io {
            path: node.pki.ca.key.clone(),
            source,
        })?;
        let server = k
            .api_server
            .clone()
            .unwrap_or_else(|| format!("https://127.0.0.1:{}", ports.apiserver));
        node.kubelet = Some(write_kubelet_files(
            root,
            k,
            &node.pki.ca.cert,
            &ca_key,
            &server,
        )?);
    }
    Ok(node)
}

/// A control-plane kubeconfig as kubeadm writes it (the credentials are not used by the fakes:
/// they are files for the file checks and the access check to see).
fn control_plane_kubeconfig(apiserver_port: u16, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority: /etc/kubernetes/pki/ca.crt\n    server: https://127.0.0.1:{apiserver_port}\n  name: kubernetes\ncontexts:\n- context:\n    cluster: kubernetes\n    user: {user}\n  name: {user}@kubernetes\ncurrent-context: {user}@kubernetes\npreferences: {{}}\nusers:\n- name: {user}\n  user: {{}}\n"
    )
}

/// Write a kubeadm worker node under `root`: no control-plane manifests (an empty
/// `/etc/kubernetes/manifests`), the cluster CA certificate without its key, and the kubelet's
/// files (see the module docs).
pub fn write_worker_node(root: &Path, opts: &KubeletNodeOptions) -> Result<KubeletNode, NodeError> {
    write_accounts(root)?;
    let pki_dir = root.join("etc/kubernetes/pki");
    let (ca_cert, ca_key) = generate_worker_ca(&pki_dir)?;
    let server = opts
        .api_server
        .clone()
        .unwrap_or_else(|| format!("https://127.0.0.1:{}", free_port()));
    write_kubelet_files(root, opts, &ca_cert, &ca_key, &server)
}

/// The node's accounts, `/etc/passwd` and `/etc/group` (0644), when absent: `root` and
/// `nobody`, as on a minimal host (kubeadm creates no `etcd` user; etcd runs as root), so
/// that owners read under the root have the names `stat` prints on a real node.
pub fn write_accounts(root: &Path) -> Result<(), NodeError> {
    for (file, text) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
    ] {
        let p = root.join(file);
        if !p.exists() {
            write_mode(&p, text, 0o644)?;
        }
    }
    Ok(())
}

fn write_mode(p: &Path, text: &str, mode: u32) -> Result<(), NodeError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| NodeError::Io {
        path: p.to_path_buf(),
        source,
    };
    if let Some(d) = p.parent() {
        mkdir(d)?;
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(p)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    drop(f);
    set_mode(p, mode)
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(T[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn systemd_span(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// kubeadm's KubeletConfiguration (v1.30), with the node's healthz port.
pub fn kubeadm_kubelet_config(healthz_port: u16) -> String {
    format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nauthentication:\n  anonymous:\n    enabled: false\n  webhook:\n    cacheTTL: 0s\n    enabled: true\n  x509:\n    clientCAFile: /etc/kubernetes/pki/ca.crt\nauthorization:\n  mode: Webhook\n  webhook:\n    cacheAuthorizedTTL: 0s\n    cacheUnauthorizedTTL: 0s\ncgroupDriver: systemd\nclusterDNS:\n- 10.96.0.10\nclusterDomain: cluster.local\ncontainerRuntimeEndpoint: \"\"\ncpuManagerReconcilePeriod: 0s\nevictionPressureTransitionPeriod: 0s\nfileCheckFrequency: 0s\nhealthzBindAddress: 127.0.0.1\nhealthzPort: {healthz_port}\nhttpCheckFrequency: 0s\nimageMaximumGCAge: 0s\nimageMinimumGCAge: 0s\nkind: KubeletConfiguration\nlogging:\n  flushFrequency: 0\n  options:\n    json:\n      infoBufferSize: \"0\"\n    text:\n      infoBufferSize: \"0\"\n  verbosity: 0\nmemorySwap: {{}}\nnodeStatusReportFrequency: 0s\nnodeStatusUpdateFrequency: 0s\nrotateCertificates: true\nruntimeRequestTimeout: 0s\nshutdownGracePeriod: 0s\nshutdownGracePeriodCriticalPods: 0s\nstaticPodPath: /etc/kubernetes/manifests\nstreamingConnectionIdleTimeout: 0s\nsyncFrequency: 0s\nvolumeStatsAggPeriod: 0s\n"
    )
}

fn write_kubelet_files(
    root: &Path,
    o: &KubeletNodeOptions,
    ca_cert: &Path,
    ca_key_pem: &str,
    server: &str,
) -> Result<KubeletNode, NodeError> {
    let at = |host: &str| crate::unit::under_root(root, host);
    let manifests_dir = at("/etc/kubernetes/manifests");
    mkdir(&manifests_dir)?;
    let var_lib_kubelet = at("/var/lib/kubelet");
    mkdir(&var_lib_kubelet)?;
    set_mode(&var_lib_kubelet, 0o700)?;
    let pki = generate_kubelet_pki(&at("/var/lib/kubelet/pki"), ca_key_pem, &o.node_name)?;
    let healthz_port = o.healthz_port.unwrap_or_else(free_port);
    let config = at("/var/lib/kubelet/config.yaml");
    write_mode(&config, &kubeadm_kubelet_config(healthz_port), 0o644)?;
    let mut kubeadm_args = format!(
        "--container-runtime-endpoint=unix://{} --hostname-override={} --pod-infra-container-image=registry.k8s.io/pause:3.9",
        crate::ipc::RUNTIME_SOCKET,
        o.node_name
    );
    let config_dir = match &o.config_dir {
        Some(d) => {
            let p = at(d);
            mkdir(&p)?;
            let _ = write!(kubeadm_args, " --config-dir={d}");
            Some(p)
        }
        None => None,
    };
    let kubeadm_flags_env = at("/var/lib/kubelet/kubeadm-flags.env");
    write_mode(
        &kubeadm_flags_env,
        &format!("KUBELET_KUBEADM_ARGS=\"{kubeadm_args}\"\n"),
        0o644,
    )?;
    let extra_args_env = at("/etc/default/kubelet");
    write_mode(
        &extra_args_env,
        &format!("KUBELET_EXTRA_ARGS={}\n", o.extra_args),
        0o644,
    )?;
    let ca_pem = fs::read(ca_cert).map_err(|source| NodeError::Io {
        path: ca_cert.to_path_buf(),
        source,
    })?;
    let user = format!("system:node:{}", o.node_name);
    let kubeconfig = at("/etc/kubernetes/kubelet.conf");
    write_mode(
        &kubeconfig,
        &format!(
            "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: {server}\n  name: kubernetes\ncontexts:\n- context:\n    cluster: kubernetes\n    user: {user}\n  name: {user}@kubernetes\ncurrent-context: {user}@kubernetes\nkind: Config\npreferences: {{}}\nusers:\n- name: {user}\n  user:\n    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem\n    client-key: /var/lib/kubelet/pki/kubelet-client-current.pem\n",
            base64(&ca_pem)
        ),
        0o600,
    )?;
    let (unit_dir, dropin_dir) = if o.legacy_unit_paths {
        (
            "/lib/systemd/system",
            "/etc/systemd/system/kubelet.service.d",
        )
    } else {
        (
            "/usr/lib/systemd/system",
            "/usr/lib/systemd/system/kubelet.service.d",
        )
    };
    let unit = at(&format!("{unit_dir}/kubelet.service"));
    write_mode(
        &unit,
        &format!(
            "[Unit]\nDescription=kubelet: The Kubernetes Node Agent\nDocumentation=https://kubernetes.io/docs/\nWants=network-online.target\nAfter=network-online.target\n\n[Service]\nExecStart=/usr/bin/kubelet\nRestart=always\nStartLimitInterval=0\nRestartSec={}\n\n[Install]\nWantedBy=multi-user.target\n",
            systemd_span(o.restart_sec)
        ),
        0o644,
    )?;
    let dropin = at(&format!("{dropin_dir}/10-kubeadm.conf"));
    write_mode(
        &dropin,
        "# Note: This dropin only works with kubeadm and kubelet v1.11+\n[Service]\nEnvironment=\"KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf\"\nEnvironment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"\n# This is a file that \"kubeadm init\" and \"kubeadm join\" generates at runtime, populating the KUBELET_KUBEADM_ARGS variable dynamically\nEnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\n# This is a file that the user can use for overrides of the kubelet args as a last resort. Preferably, the user should use\n# the .NodeRegistration.KubeletExtraArgs object in the configuration files instead. KUBELET_EXTRA_ARGS should be sourced from this file.\nEnvironmentFile=-/etc/default/kubelet\nExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS\n",
        0o644,
    )?;
    if o.kernel_tunables_set {
        for (key, value) in crate::kubelet_config::KERNEL_TUNABLES {
            write_mode(
                &root.join("proc/sys").join(key),
                &format!("{value}\n"),
                0o644,
            )?;
        }
    }
    Ok(KubeletNode {
        root: root.to_path_buf(),
        node_name: o.node_name.clone(),
        config,
        kubeadm_flags_env,
        extra_args_env,
        kubeconfig,
        ca_cert: ca_cert.to_path_buf(),
        unit,
        dropin,
        config_dir,
        manifests_dir,
        healthz_port,
        pki,
    })
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
        node.image_tag("kube-apiserver"),
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
        node.image_tag("kube-controller-manager"),
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
        node.image_tag("kube-scheduler"),
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
