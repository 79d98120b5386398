//! Fake kube-apiserver, kube-controller-manager and kube-scheduler.
//!
//! Why: the health gate and the transaction must be tested against something that behaves like
//! the real components where it matters to kharden, without a container runtime or a cluster:
//! - flags are parsed like pflag (see [`crate::flags`]): an unknown or invalid flag prints
//!   `Error: ...` and exits 1 before serving, which kubelet turns into a crash loop;
//! - files the real binary reads at start (`--tls-cert-file`, `--client-ca-file`,
//!   `--audit-policy-file`, ...) must exist, or it exits 1;
//! - health endpoints (`/livez`, `/readyz`, `/healthz` and sub-paths) are served over HTTPS on
//!   `--secure-port` with the manifest's own certificate; with `--anonymous-auth=false` a request
//!   without a client certificate verified against `--client-ca-file` gets 401.
//!
//! Knobs for tests (environment of the fake process; the emulator passes
//! [`crate::KubeletOptions::env`] to every child):
//! - `FAKE_REJECT_FLAGS=--profiling,--foo`: treat these otherwise valid flags as unknown.
//! - `FAKE_REJECT_FLAGS_FILE=/path`: same, one flag per line, read at every start (so a test can
//!   change it while the emulator runs).
//! - `FAKE_CRASH_AFTER_MS=N`: exit 1 N ms after start (a crash loop under the emulator).
//! - `FAKE_START_DELAY_MS=N`: wait N ms before listening (slow start).
//! - `FAKE_HEALTH_STATUS=503`: answer health endpoints with this status.
//! - `FAKE_NODE_READY_FILE=/path`: the `Ready` status of every Node the API server serves
//!   (`GET /api/v1/nodes/NAME`, client certificate required): the file's contents (`True`,
//!   `False`, `Unknown`), `True` when absent; read at every request.
//!
//! Differences from the real binaries: `--bind-address` defaults to 127.0.0.1 (the real default
//! is 0.0.0.0; tests must not listen on other interfaces), nothing but health endpoints, the
//! version and Node objects is served (a Node's status comes from the knob above: no kubelet
//! posts it), and authorization is not modelled (anonymous requests to health paths are
//! allowed, as the default `system:public-info-viewer` binding does).

use crate::flags::{self, ComponentSpec, FlagValues};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Errors of the in-process health server.
#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    #[error("{0}")]
    Config(String),
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    #[error("failed to listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Configuration of a [`HealthServer`].
#[derive(Debug, Clone)]
pub struct HealthServerConfig {
    pub bind: SocketAddr,
    /// Serving certificate chain (PEM).
    pub cert_pem: Vec<u8>,
    /// Serving key (PEM).
    pub key_pem: Vec<u8>,
    /// CA bundle (PEM) to verify client certificates with; `None`: client certs are not
    /// requested.
    pub client_ca_pem: Option<Vec<u8>>,
    /// `--anonymous-auth`: when false, requests without a verified client certificate get 401.
    pub anonymous_auth: bool,
    /// Status for health paths (200 normally).
    pub health_status: u16,
}

/// A tiny HTTPS server answering health endpoints like a control-plane component; usable
/// in-process by tests and by [`run_fake_component`]. Stops (and joins) on drop.
pub struct HealthServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HealthServer {
    /// Bind and start serving in a background thread.
    pub fn start(cfg: HealthServerConfig) -> Result<HealthServer, FakeError> {
        let tls = Arc::new(server_config(&cfg)?);
        let listener = TcpListener::bind(cfg.bind).map_err(|source| FakeError::Listen {
            addr: cfg.bind,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| FakeError::Listen {
            addr: cfg.bind,
            source,
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let anonymous = cfg.anonymous_auth;
        let status = cfg.health_status;
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(sock) = conn else { continue };
                let tls = tls.clone();
                std::thread::spawn(move || {
                    // Errors on one connection (bad client, handshake failure) only end it.
                    let _ = handle(sock, tls, anonymous, status);
                });
            }
        });
        Ok(HealthServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Block until the server thread ends (it only ends when the server is dropped elsewhere,
    /// so for a process that serves until killed this blocks forever).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config(cfg: &HealthServerConfig) -> Result<ServerConfig, FakeError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cfg.cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| FakeError::Config(format!("bad certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(FakeError::Config("no certificate in PEM".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&cfg.key_pem)
        .map_err(|e| FakeError::Config(format!("bad private key PEM: {e}")))?;
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match &cfg.client_ca_pem {
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(pem) {
                let c = c.map_err(|e| FakeError::Config(format!("bad client CA PEM: {e}")))?;
                roots.add(c)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| FakeError::Config(format!("client verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    Ok(builder.with_single_cert(certs, key)?)
}

fn handle(
    sock: TcpStream,
    tls: Arc<ServerConfig>,
    anonymous: bool,
    status: u16,
) -> std::io::Result<()> {
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    sock.set_write_timeout(Some(Duration::from_secs(5)))?;
    let conn = ServerConnection::new(tls).map_err(std::io::Error::other)?;
    let mut stream = StreamOwned::new(conn, sock);
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 16 * 1024 {
            return Ok(());
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let target = head.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/");
    // A client certificate is only present here if the verifier accepted it.
    let authenticated = stream
        .conn
        .peer_certificates()
        .is_some_and(|c| !c.is_empty());
    let is_health = ["/livez", "/readyz", "/healthz"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")));
    let (code, body) = if !anonymous && !authenticated {
        (
            401,
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#.to_string(),
        )
    } else if path == "/version" {
        (200, version_body())
    } else if let (Some(name), true) = (path.strip_prefix("/api/v1/nodes/"), authenticated) {
        (200, node_body(name))
    } else if is_health {
        if status == 200 {
            (200, "ok".to_string())
        } else {
            (status, format!("{path} check failed"))
        }
    } else if authenticated {
        (404, "404 page not found".to_string())
    } else {
        (403, "forbidden".to_string())
    };
    let resp = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reason(code),
        body.len()
    );
    stream.write_all(resp.as_bytes())?;
    stream.flush()?;
    stream.conn.send_close_notify();
    let _ = stream.flush();
    Ok(())
}

/// The version this process runs: the tag of the image the emulated runtime started it from
/// ([`crate::kubelet::IMAGE_ENV`]), as a real control-plane binary reports its own build.
pub fn served_version() -> String {
    std::env::var(crate::kubelet::IMAGE_ENV)
        .ok()
        .and_then(|image| {
            let name = image.split('@').next().unwrap_or(&image).to_string();
            let last = name.rsplit('/').next().unwrap_or(&name).to_string();
            last.split_once(':').map(|(_, t)| t.to_string())
        })
        .filter(|t| t.starts_with('v'))
        .unwrap_or_else(|| crate::node::DEFAULT_KUBERNETES_VERSION.to_string())
}

/// `GET /version`, shaped like the API server's (`version.Info`).
fn version_body() -> String {
    let v = served_version();
    let core = v.trim_start_matches('v');
    let mut parts = core.split(['.', '-', '+']);
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("0");
    format!(
        "{{\n  \"major\": \"{major}\",\n  \"minor\": \"{minor}\",\n  \"gitVersion\": \"{v}\",\n  \"gitCommit\": \"0000000000000000000000000000000000000000\",\n  \"gitTreeState\": \"clean\",\n  \"buildDate\": \"2024-01-01T00:00:00Z\",\n  \"goVersion\": \"go1.22.0\",\n  \"compiler\": \"gc\",\n  \"platform\": \"linux/amd64\"\n}}"
    )
}

/// `GET /api/v1/nodes/NAME`: a Node whose `Ready` condition is `True`, or what the file named
/// by `FAKE_NODE_READY_FILE` says (`False`, `Unknown`; read at every request, so a test can
/// change it). The fake runs no node lifecycle controller: every name is a registered Node.
fn node_body(name: &str) -> String {
    let status = std::env::var("FAKE_NODE_READY_FILE")
        .ok()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "True".into());
    let (reason, message) = if status == "True" {
        ("KubeletReady", "kubelet is posting ready status")
    } else {
        (
            "KubeletNotReady",
            "container runtime network not ready (fake)",
        )
    };
    serde_json::json!({
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {"name": name},
        "status": {"conditions": [
            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
            {"type": "Ready", "status": status, "reason": reason, "message": message}
        ]}
    })
    .to_string()
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// If `argv[0]`'s basename is a component the fakes emulate, run it and return its exit code.
/// Call this first thing in `main` of a multi-call binary (kharden's own, or the testnode
/// binary) so that a symlink named `kube-apiserver` pointing at it becomes the fake.
pub fn dispatch_fake(argv: &[String]) -> Option<i32> {
    let argv0 = argv.first()?;
    flags::spec_for(argv0)?;
    Some(run_fake_component(argv0, &argv[1..]))
}

/// Run the fake component named by `argv0` (basename `kube-apiserver`,
/// `kube-controller-manager` or `kube-scheduler`) with `args`. Blocks while serving (until the
/// process is killed); returns the exit code on a start-up failure.
pub fn run_fake_component(argv0: &str, args: &[String]) -> i32 {
    let Some(spec) = flags::spec_for(argv0) else {
        eprintln!("Error: {argv0:?} is not a component this fake emulates");
        return 1;
    };
    match start_fake(spec, args) {
        Ok(Some(server)) => {
            server.wait();
            0
        }
        Ok(None) => 0,
        Err(msg) => {
            eprintln!("Error: {msg}");
            1
        }
    }
}

fn env_ms(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

fn rejected_flags() -> Vec<String> {
    let mut out = Vec::new();
    let norm = |s: &str| s.trim().trim_start_matches('-').to_string();
    if let Ok(v) = std::env::var("FAKE_REJECT_FLAGS") {
        out.extend(
            v.split([',', ' ', '\n'])
                .filter(|s| !s.trim().is_empty())
                .map(norm),
        );
    }
    if let Ok(path) = std::env::var("FAKE_REJECT_FLAGS_FILE") {
        if let Ok(text) = std::fs::read_to_string(path) {
            out.extend(text.lines().filter(|s| !s.trim().is_empty()).map(norm));
        }
    }
    out
}

/// Read a file a flag names. A real pod sees host files through its hostPath mounts; the fake
/// runs unconfined, so with `FAKE_HOST_ROOT` set (the simulated node's root), a path that does
/// not exist as given is looked up under that root, as the mount would show it.
fn read_file(flag: &str, path: &str) -> Result<Vec<u8>, String> {
    match std::fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) => match std::env::var_os("FAKE_HOST_ROOT") {
            Some(root) if Path::new(path).is_absolute() => {
                let under = Path::new(&root).join(path.trim_start_matches('/'));
                std::fs::read(&under).map_err(|_| format!("--{flag}: open {path}: {e}"))
            }
            _ => Err(format!("--{flag}: open {path}: {e}")),
        },
    }
}

/// Parse, validate and start serving; `Ok(None)` for `--help`/`--version`.
fn start_fake(
    spec: &'static ComponentSpec,
    args: &[String],
) -> Result<Option<HealthServer>, String> {
    let rejected = rejected_flags();
    for a in args {
        if let Some(body) = a.strip_prefix("--") {
            let name = body.split('=').next().unwrap_or(body);
            if rejected.iter().any(|r| r == name) {
                return Err(format!("unknown flag: --{name}"));
            }
        }
    }
    let f: FlagValues = flags::parse(spec, args)?;
    if f.contains_key("help") {
        println!("Usage of {} (kharden-testnode fake)", spec.name);
        return Ok(None);
    }
    if f.contains_key("version") {
        println!("Kubernetes {}", served_version());
        return Ok(None);
    }
    // Files the real binaries read at start.
    for flag in [
        "audit-policy-file",
        "encryption-provider-config",
        "admission-control-config-file",
        "authentication-config",
        "authorization-config",
        "egress-selector-config-file",
        "tracing-config-file",
        "token-auth-file",
        "requestheader-client-ca-file",
        "kubelet-certificate-authority",
    ] {
        if let Some(p) = f.get(flag) {
            read_file(flag, p)?;
        }
    }
    if let Some(ms) = env_ms("FAKE_START_DELAY_MS") {
        std::thread::sleep(Duration::from_millis(ms));
    }
    let port: u16 = match f.get("secure-port") {
        // Validated as 0..=65535 by flags::parse.
        Some(p) => p.parse().map_err(|e| format!("--secure-port: {e}"))?,
        None => spec.default_secure_port,
    };
    let bind_ip = f
        .get("bind-address")
        .map(String::as_str)
        .unwrap_or("127.0.0.1");
    let bind: SocketAddr = format!("{bind_ip}:{port}")
        .parse()
        .or_else(|_| format!("[{bind_ip}]:{port}").parse())
        .map_err(|_| format!("invalid --bind-address {bind_ip:?}"))?;
    let (cert_pem, key_pem) = match (f.get("tls-cert-file"), f.get("tls-private-key-file")) {
        (Some(c), Some(k)) => (read_file("tls-cert-file", c)?, read_file("tls-private-key-file", k)?),
        (None, None) if spec.name != "kube-apiserver" => {
            let (c, k) = crate::pki::self_signed_pem(&["localhost", "127.0.0.1"])
                .map_err(|e| e.to_string())?;
            (c.into_bytes(), k.into_bytes())
        }
        _ => {
            return Err(
                "--tls-cert-file and --tls-private-key-file are required (this fake does not generate certificates for kube-apiserver)"
                    .to_string(),
            )
        }
    };
    let client_ca_pem = match f.get("client-ca-file") {
        Some(p) => Some(read_file("client-ca-file", p)?),
        None => None,
    };
    let anonymous_auth = f
        .get("anonymous-auth")
        .and_then(|v| flags::parse_go_bool(v))
        .unwrap_or(true);
    let health_status = env_ms("FAKE_HEALTH_STATUS")
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(200);
    let server = HealthServer::start(HealthServerConfig {
        bind,
        cert_pem,
        key_pem,
        client_ca_pem,
        anonymous_auth,
        health_status,
    })
    .map_err(|e| e.to_string())?;
    eprintln!(
        "{}: Serving securely on {} (pid {}, anonymous-auth={anonymous_auth})",
        spec.name,
        server.local_addr(),
        std::process::id()
    );
    if let Some(ms) = env_ms("FAKE_CRASH_AFTER_MS") {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(ms));
            eprintln!("fake crash after {ms} ms (FAKE_CRASH_AFTER_MS)");
            std::process::exit(1);
        });
    }
    Ok(Some(server))
}

/// Create `bin_dir/{kube-apiserver,kube-controller-manager,kube-scheduler}` as symlinks to
/// `exe`, a multi-call binary that calls [`dispatch_fake`] first in `main`.
pub fn install_fake_binaries(bin_dir: &Path, exe: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(bin_dir)?;
    for name in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        let link = bin_dir.join(name);
        match std::fs::remove_file(&link) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::os::unix::fs::symlink(exe, &link)?;
    }
    Ok(())
}
