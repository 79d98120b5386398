//! A health probe that probes like kubelet but verifies like a client should.
//!
//! Why: kubelet's own HTTPS probes skip certificate verification; kharden's gate must not (an
//! impostor on the port would pass it). So HTTPS verifies the chain against the cluster CA and
//! the *name* against one the certificate carries. kubeadm's serving certificate has no
//! `127.0.0.1` SAN, but kubelet probes `127.0.0.1` (or the advertise address): the gate connects
//! to the probe's host and verifies the name given in [`TlsSettings::server_name`] (the
//! manifest's `--advertise-address`, or `kubernetes`).
//!
//! How the name substitution works with ureq 3: the request URL carries the *verification*
//! name (`https://kubernetes:6443/livez`), and a custom [`Resolver`] maps it to the *connect*
//! address (`127.0.0.1:6443`). ureq's rustls connector takes the TLS server name from the URL,
//! so webpki verifies exactly that name, with no custom certificate verifier. The `Host` header
//! then says `kubernetes:6443`, which the apiserver does not care about.
//!
//! Outcome classes are kept apart ([`ProbeClass`]) because they mean different things to an
//! operator: refused (down), 401/403 (up but the gate is not authorised: e.g. after
//! `--anonymous-auth=false` without a client certificate), 5xx, timeout, TLS failure.
//! Only 2xx is healthy (kubelet also accepts 3xx; health endpoints never redirect, and a
//! redirect to elsewhere would be suspicious).

use serde::{Deserialize, Serialize};
use std::io::Read;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::tls::{Certificate, ClientCert as UreqClientCert, PrivateKey, RootCerts, TlsConfig};
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// `HTTP` or `HTTPS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Where to probe: the connect address and the request path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeTarget {
    pub scheme: Scheme,
    /// Host to connect to (an IP or a resolvable name).
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl ProbeTarget {
    /// The URL as a person would write it (connect host, not the verification name).
    pub fn url(&self) -> String {
        format!(
            "{}://{}:{}{}",
            self.scheme.as_str(),
            bracket(&self.host),
            self.port,
            self.path
        )
    }
}

impl std::fmt::Display for ProbeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url())
    }
}

fn bracket(host: &str) -> String {
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// A client certificate and key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// TLS settings of the probe (ignored for HTTP).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsSettings {
    /// CA bundle (PEM) to verify the server with: the cluster CA. `None` uses ureq's bundled
    /// public web roots, which never sign a cluster's serving certificate: always pass the CA.
    pub ca_file: Option<PathBuf>,
    /// Name the server certificate must carry (a DNS name or an IP); `None`: the connect host.
    pub server_name: Option<String>,
    pub client_cert: Option<ClientCertFiles>,
}

/// Class of a probe outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeClass {
    /// 2xx.
    Healthy(u16),
    /// Connection refused: nothing listens.
    Down,
    /// 401 or 403: up, but the probe is not authorised.
    Unauthorized(u16),
    /// 5xx.
    ServerError(u16),
    /// No answer in time.
    Timeout,
    /// Any other status (1xx, 3xx, 4xx other than 401/403).
    OtherStatus(u16),
    /// Handshake or certificate verification failed (wrong CA, wrong name, client cert
    /// refused), or the TLS settings could not be loaded.
    TlsError,
    /// Anything else (connection reset, name resolution, protocol error).
    Error,
}

impl ProbeClass {
    pub fn is_healthy(self) -> bool {
        matches!(self, ProbeClass::Healthy(_))
    }
}

impl std::fmt::Display for ProbeClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeClass::Healthy(s) => write!(f, "healthy ({s})"),
            ProbeClass::Down => f.write_str("down (connection refused)"),
            ProbeClass::Unauthorized(s) => write!(f, "up but not authorised ({s})"),
            ProbeClass::ServerError(s) => write!(f, "unhealthy ({s})"),
            ProbeClass::Timeout => f.write_str("unhealthy (timeout)"),
            ProbeClass::OtherStatus(s) => write!(f, "unexpected status {s}"),
            ProbeClass::TlsError => f.write_str("TLS error"),
            ProbeClass::Error => f.write_str("error"),
        }
    }
}

/// Result of one probe: its class and a human-readable detail (the error, or the start of the
/// body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeOutcome {
    pub class: ProbeClass,
    pub detail: String,
}

impl ProbeOutcome {
    fn new(class: ProbeClass, detail: impl Into<String>) -> ProbeOutcome {
        ProbeOutcome {
            class,
            detail: detail.into(),
        }
    }
}

/// Maps every URI to the probe's connect address, so that the URL can carry the name to
/// verify (see module docs).
#[derive(Debug)]
struct ConnectTo {
    host: String,
    port: u16,
}

impl Resolver for ConnectTo {
    fn resolve(
        &self,
        _uri: &Uri,
        _config: &Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let mut out = self.empty();
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            out.push(SocketAddr::new(ip, self.port));
            return Ok(out);
        }
        // A probe host given as a name (rare: kubelet probes IPs). Resolved with the system
        // resolver; no timeout control here, which is acceptable for loopback-ish names.
        let addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|_| ureq::Error::HostNotFound)?;
        for a in addrs.take(16) {
            out.push(a);
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

fn load_tls(tls: &TlsSettings, verify: bool) -> Result<TlsConfig, String> {
    let mut b = TlsConfig::builder().disable_verification(!verify);
    if let Some(ca) = &tls.ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("reading CA {}: {e}", ca.display()))?;
        let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_, _>>()
            .map_err(|e| format!("parsing CA {}: {e}", ca.display()))?;
        if certs.is_empty() {
            return Err(format!("no certificate in CA file {}", ca.display()));
        }
        b = b.root_certs(RootCerts::new_with_certs(&certs));
    }
    if let Some(cc) = &tls.client_cert {
        let cert_pem = std::fs::read(&cc.cert)
            .map_err(|e| format!("reading client certificate {}: {e}", cc.cert.display()))?;
        let chain: Vec<Certificate<'static>> = ureq::tls::parse_pem(&cert_pem)
            .filter_map(|i| match i {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_, _>>()
            .map_err(|e| format!("parsing client certificate {}: {e}", cc.cert.display()))?;
        let key_pem = std::fs::read(&cc.key)
            .map_err(|e| format!("reading client key {}: {e}", cc.key.display()))?;
        let key = PrivateKey::from_pem(&key_pem)
            .map_err(|e| format!("parsing client key {}: {e}", cc.key.display()))?;
        b = b.client_cert(Some(UreqClientCert::new_with_certs(&chain, key)));
    }
    Ok(b.build())
}

/// Probe `target` once. Never panics and never returns an error: every failure is an
/// outcome class.
pub fn probe(target: &ProbeTarget, tls: &TlsSettings, timeout: Duration) -> ProbeOutcome {
    probe_with(target, tls, timeout, true)
}

/// [`probe`], optionally without verifying the server certificate (`verify == false`, as
/// kubelet's probes do; see [`crate::GateParams::insecure_skip_tls_verify`] for when that is
/// acceptable). A client certificate is still presented.
pub fn probe_with(
    target: &ProbeTarget,
    tls: &TlsSettings,
    timeout: Duration,
    verify: bool,
) -> ProbeOutcome {
    fetch(target, tls, timeout, verify, 512).0
}

/// One GET like [`probe_with`], with up to `limit` bytes of the body kept: for an answer the
/// caller reads (the API server's Node object), not only classifies. The outcome's detail is
/// the status and the start of the body, as a probe's.
pub fn fetch(
    target: &ProbeTarget,
    tls: &TlsSettings,
    timeout: Duration,
    verify: bool,
    limit: u64,
) -> (ProbeOutcome, Vec<u8>) {
    let tls_config = match target.scheme {
        Scheme::Https => match load_tls(tls, verify) {
            Ok(t) => t,
            Err(e) => return (ProbeOutcome::new(ProbeClass::TlsError, e), Vec::new()),
        },
        Scheme::Http => TlsConfig::default(),
    };
    let url_host = match (target.scheme, &tls.server_name) {
        (Scheme::Https, Some(name)) => bracket(name),
        _ => bracket(&target.host),
    };
    let url = format!(
        "{}://{}:{}{}",
        target.scheme.as_str(),
        url_host,
        target.port,
        target.path
    );
    let config = Config::builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .user_agent("kharden-gate")
        .tls_config(tls_config)
        .build();
    let agent = ureq::Agent::with_parts(
        config,
        DefaultConnector::default(),
        ConnectTo {
            host: target.host.clone(),
            port: target.port,
        },
    );
    match agent.get(&url).call() {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let mut body = Vec::new();
            // A read error leaves the body short: the detail says what arrived.
            let _ = resp
                .body_mut()
                .as_reader()
                .take(limit)
                .read_to_end(&mut body);
            let shown = String::from_utf8_lossy(&body[..body.len().min(512)])
                .trim()
                .to_string();
            let detail = format!("{status} {shown}");
            let class = match status {
                200..=299 => ProbeClass::Healthy(status),
                401 | 403 => ProbeClass::Unauthorized(status),
                500..=599 => ProbeClass::ServerError(status),
                s => ProbeClass::OtherStatus(s),
            };
            (ProbeOutcome::new(class, detail), body)
        }
        Err(e) => (classify_error(e), Vec::new()),
    }
}

fn classify_error(e: ureq::Error) -> ProbeOutcome {
    use std::io::ErrorKind;
    let detail = e.to_string();
    let class = match &e {
        ureq::Error::Timeout(_) => ProbeClass::Timeout,
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => ProbeClass::TlsError,
        ureq::Error::Io(io) => {
            let is_tls = io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
            if is_tls {
                ProbeClass::TlsError
            } else {
                match io.kind() {
                    ErrorKind::ConnectionRefused => ProbeClass::Down,
                    ErrorKind::TimedOut | ErrorKind::WouldBlock => ProbeClass::Timeout,
                    _ => ProbeClass::Error,
                }
            }
        }
        _ => ProbeClass::Error,
    };
    ProbeOutcome::new(class, detail)
}

/// Errors building a probe target.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("unsupported probe scheme {0:?} (HTTP or HTTPS)")]
    Scheme(String),
    #[error("invalid health URL {url:?}: {why}")]
    Url { url: String, why: String },
}

/// Build the probe target from a manifest probe's `httpGet` fields (as in
/// `kharden_manifest::HttpGetProbe`: scheme, host, port, path), or from `override_url`
/// (`--health-url`) when given, which wins.
///
/// kubelet's default host is the pod IP; for a hostNetwork static pod that is the node's IP,
/// so an absent host becomes `127.0.0.1` (same node, and what kubeadm's probes use in recent
/// releases). An empty path becomes `/`.
pub fn probe_target_from_pod(
    scheme: &str,
    host: Option<&str>,
    port: u16,
    path: &str,
    override_url: Option<&str>,
) -> Result<ProbeTarget, TargetError> {
    if let Some(url) = override_url {
        return parse_url(url);
    }
    let scheme = match scheme.to_ascii_uppercase().as_str() {
        "" | "HTTP" => Scheme::Http,
        "HTTPS" => Scheme::Https,
        other => return Err(TargetError::Scheme(other.to_string())),
    };
    let host = host
        .filter(|h| !h.is_empty())
        .unwrap_or("127.0.0.1")
        .to_string();
    let path = if path.is_empty() {
        "/".to_string()
    } else if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    Ok(ProbeTarget {
        scheme,
        host,
        port,
        path,
    })
}

/// Parse `http(s)://host[:port][/path]`.
pub fn parse_url(url: &str) -> Result<ProbeTarget, TargetError> {
    let err = |why: &str| TargetError::Url {
        url: url.to_string(),
        why: why.to_string(),
    };
    let uri: Uri = url
        .parse()
        .map_err(|e: ureq::http::uri::InvalidUri| err(&e.to_string()))?;
    let scheme = match uri.scheme_str() {
        Some("http") => Scheme::Http,
        Some("https") => Scheme::Https,
        _ => return Err(err("scheme must be http or https")),
    };
    let host = uri
        .host()
        .ok_or_else(|| err("no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(match scheme {
        Scheme::Http => 80,
        Scheme::Https => 443,
    });
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/".to_string());
    Ok(ProbeTarget {
        scheme,
        host,
        port,
        path,
    })
}

/// The name to verify the apiserver's certificate against: the manifest's
/// `--advertise-address` when known (kubeadm puts it in the certificate), else `kubernetes`
/// (always a SAN of a kubeadm apiserver certificate).
pub fn default_server_name(advertise_address: Option<&str>) -> String {
    advertise_address
        .filter(|a| !a.is_empty())
        .unwrap_or("kubernetes")
        .to_string()
}

/// The client certificate kubeadm leaves for the apiserver's own use,
/// `<pki_dir>/apiserver-kubelet-client.{crt,key}`, if both files exist. It is signed by the
/// cluster CA and (kubeadm) in a group bound to cluster-admin, so the apiserver authenticates
/// and authorises it; the gate uses it once `--anonymous-auth=false` turns anonymous probes
/// into 401. `pki_dir` is `<root>/etc/kubernetes/pki`. Reading the key needs root, like
/// everything kharden does.
pub fn discover_client_cert(pki_dir: &Path) -> Option<ClientCertFiles> {
    let cert = pki_dir.join("apiserver-kubelet-client.crt");
    let key = pki_dir.join("apiserver-kubelet-client.key");
    (cert.is_file() && key.is_file()).then_some(ClientCertFiles { cert, key })
}

/// The cluster CA, `<pki_dir>/ca.crt`, if present.
pub fn discover_cluster_ca(pki_dir: &Path) -> Option<PathBuf> {
    let ca = pki_dir.join("ca.crt");
    ca.is_file().then_some(ca)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_from_pod_defaults() {
        let t = probe_target_from_pod("HTTPS", None, 6443, "/livez", None).unwrap();
        assert_eq!(t.url(), "https://127.0.0.1:6443/livez");
        let t = probe_target_from_pod("", Some("::1"), 2381, "health", None).unwrap();
        assert_eq!(t.url(), "http://[::1]:2381/health");
        assert!(probe_target_from_pod("TCP", None, 1, "/", None).is_err());
        let t = probe_target_from_pod(
            "HTTPS",
            None,
            6443,
            "/livez",
            Some("https://10.0.0.1:7443/readyz?verbose"),
        )
        .unwrap();
        assert_eq!(t.host, "10.0.0.1");
        assert_eq!(t.port, 7443);
        assert_eq!(t.path, "/readyz?verbose");
        assert!(parse_url("ftp://x/").is_err());
        assert_eq!(parse_url("https://h").unwrap().port, 443);
    }

    #[test]
    fn server_name_default() {
        assert_eq!(default_server_name(None), "kubernetes");
        assert_eq!(default_server_name(Some("192.0.2.10")), "192.0.2.10");
    }
}
