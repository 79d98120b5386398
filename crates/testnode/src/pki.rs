//! Certificates for a simulated node, in kubeadm's layout.
//!
//! Why: the health gate must verify the apiserver's certificate against the cluster CA and a
//! name the certificate really carries. kubeadm's serving certificate has no `127.0.0.1` SAN,
//! so a gate that connects to `127.0.0.1` and checks the name naively fails against a real
//! node. The simulated node reproduces that on purpose: the apiserver certificate carries
//! kubeadm's DNS names, the service IP and the advertise address, and NOT 127.0.0.1.
//!
//! Files (under `<root>/etc/kubernetes/pki`, as kubeadm writes them):
//! - `ca.crt`/`ca.key`: the cluster CA (CN `kubernetes`).
//! - `apiserver.crt`/`apiserver.key`: serving certificate, CN `kube-apiserver`.
//! - `apiserver-kubelet-client.crt`/`.key`: client certificate (CN
//!   `kube-apiserver-kubelet-client`, O `kubeadm:cluster-admins`), which the gate uses as its
//!   client identity once `--anonymous-auth=false` is applied.
//! - `sa.key`/`sa.pub`: service-account key pair (the manifest names them).
//! - `etcd/ca.crt`/`etcd/ca.key`, `etcd/server.*`, `etcd/peer.*`,
//!   `etcd/healthcheck-client.*`, `apiserver-etcd-client.*`: for a real etcd with TLS.
//!
//! Keys are ECDSA P-256 in PKCS#8 PEM (rcgen's default), readable by Go and rustls, mode 0600.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The advertise address used by default: TEST-NET-1 (RFC 5737), an address that is never
/// routed, so nothing ever connects to it; it only appears as a SAN and in `--advertise-address`.
pub const DEFAULT_ADVERTISE_ADDRESS: &str = "192.0.2.10";

/// Errors while generating or writing certificates.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Options for [`generate_pki_with`].
#[derive(Debug, Clone)]
pub struct PkiOptions {
    /// The node's advertise address (a SAN of the apiserver certificate).
    pub advertise_address: String,
    /// The node name (a SAN of the apiserver and etcd certificates).
    pub node_name: String,
}

impl Default for PkiOptions {
    fn default() -> Self {
        PkiOptions {
            advertise_address: DEFAULT_ADVERTISE_ADDRESS.to_string(),
            node_name: "testnode".to_string(),
        }
    }
}

/// A certificate/key pair on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Paths of everything [`generate_pki`] wrote.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The pki directory (`<root>/etc/kubernetes/pki`).
    pub dir: PathBuf,
    pub ca: CertPair,
    pub apiserver: CertPair,
    pub apiserver_kubelet_client: CertPair,
    pub apiserver_etcd_client: CertPair,
    pub sa_key: PathBuf,
    pub sa_pub: PathBuf,
    pub etcd_ca: CertPair,
    pub etcd_server: CertPair,
    pub etcd_peer: CertPair,
    pub etcd_healthcheck_client: CertPair,
    /// The SANs of the apiserver serving certificate (DNS names and IPs as strings).
    pub apiserver_sans: Vec<String>,
}

/// Generate a kubeadm-shaped PKI in `dir` (normally `<root>/etc/kubernetes/pki`) with the
/// default options.
pub fn generate_pki(dir: &Path) -> Result<Pki, PkiError> {
    generate_pki_with(dir, &PkiOptions::default())
}

/// [`generate_pki`] with explicit options.
pub fn generate_pki_with(dir: &Path, opts: &PkiOptions) -> Result<Pki, PkiError> {
    mkdir(dir)?;
    mkdir(&dir.join("etcd"))?;

    let (cluster_ca_params, ca_key) = ca_params("kubernetes")?;
    let ca_cert = cluster_ca_params.self_signed(&ca_key)?;
    let ca = write_pair(dir, "ca", &ca_cert.pem(), &ca_key)?;
    let ca_issuer = Issuer::new(cluster_ca_params, ca_key);

    let apiserver_sans = vec![
        opts.node_name.clone(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
        "kubernetes.default.svc.cluster.local".to_string(),
        "10.96.0.1".to_string(),
        opts.advertise_address.clone(),
    ];
    let apiserver = leaf(
        dir,
        "apiserver",
        "kube-apiserver",
        None,
        &apiserver_sans,
        &[ExtendedKeyUsagePurpose::ServerAuth],
        &ca_issuer,
    )?;
    let apiserver_kubelet_client = leaf(
        dir,
        "apiserver-kubelet-client",
        "kube-apiserver-kubelet-client",
        Some("kubeadm:cluster-admins"),
        &[],
        &[ExtendedKeyUsagePurpose::ClientAuth],
        &ca_issuer,
    )?;

    let sa = KeyPair::generate()?;
    let sa_key = dir.join("sa.key");
    write_file(&sa_key, sa.serialize_pem().as_bytes(), 0o600)?;
    let sa_pub = dir.join("sa.pub");
    write_file(&sa_pub, sa.public_key_pem().as_bytes(), 0o644)?;

    let etcd_dir = dir.join("etcd");
    let (etcd_ca_params, etcd_ca_key) = ca_params("etcd-ca")?;
    let etcd_ca_cert = etcd_ca_params.self_signed(&etcd_ca_key)?;
    let etcd_ca = write_pair(&etcd_dir, "ca", &etcd_ca_cert.pem(), &etcd_ca_key)?;
    let etcd_issuer = Issuer::new(etcd_ca_params, etcd_ca_key);
    let etcd_sans = vec![
        opts.node_name.clone(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let both = [
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let etcd_server = leaf(
        &etcd_dir,
        "server",
        &opts.node_name,
        None,
        &etcd_sans,
        &both,
        &etcd_issuer,
    )?;
    let etcd_peer = leaf(
        &etcd_dir,
        "peer",
        &opts.node_name,
        None,
        &etcd_sans,
        &both,
        &etcd_issuer,
    )?;
    let etcd_healthcheck_client = leaf(
        &etcd_dir,
        "healthcheck-client",
        "kube-etcd-healthcheck-client",
        None,
        &[],
        &[ExtendedKeyUsagePurpose::ClientAuth],
        &etcd_issuer,
    )?;
    let apiserver_etcd_client = leaf(
        dir,
        "apiserver-etcd-client",
        "kube-apiserver-etcd-client",
        None,
        &[],
        &[ExtendedKeyUsagePurpose::ClientAuth],
        &etcd_issuer,
    )?;

    Ok(Pki {
        dir: dir.to_path_buf(),
        ca,
        apiserver,
        apiserver_kubelet_client,
        apiserver_etcd_client,
        sa_key,
        sa_pub,
        etcd_ca,
        etcd_server,
        etcd_peer,
        etcd_healthcheck_client,
        apiserver_sans,
    })
}

/// The kubelet's credentials as kubeadm and the kubelet leave them on a node, under
/// `/var/lib/kubelet/pki`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletPki {
    /// `kubelet-client-current.pem`: a symbolic link to the dated file (certificate and key in
    /// one PEM, mode 0600), as the kubelet's certificate manager writes it.
    pub client_current: PathBuf,
    /// The dated file the link points to.
    pub client_pem: PathBuf,
    /// `kubelet.crt`/`kubelet.key`: the self-signed serving certificate the kubelet generates
    /// when `tlsCertFile` is not set.
    pub serving: CertPair,
}

/// Write a cluster CA certificate to `dir/ca.crt` (0644) WITHOUT its key, as on a worker node;
/// returns the key's PEM, to sign the kubelet's client certificate with.
pub fn generate_worker_ca(dir: &Path) -> Result<(PathBuf, String), PkiError> {
    mkdir(dir)?;
    let (params, key) = ca_params("kubernetes")?;
    let cert = params.self_signed(&key)?;
    let path = dir.join("ca.crt");
    write_file(&path, cert.pem().as_bytes(), 0o644)?;
    Ok((path, key.serialize_pem()))
}

/// The kubelet's client certificate (CN `system:node:NODE`, O `system:nodes`, signed by the
/// cluster CA whose key is `ca_key_pem`) and its self-signed serving certificate, in
/// `kubelet_pki_dir` (normally `<root>/var/lib/kubelet/pki`).
pub fn generate_kubelet_pki(
    kubelet_pki_dir: &Path,
    ca_key_pem: &str,
    node_name: &str,
) -> Result<KubeletPki, PkiError> {
    mkdir(kubelet_pki_dir)?;
    let ca_key = KeyPair::from_pem(ca_key_pem)?;
    let issuer = Issuer::new(ca_params_only("kubernetes")?, ca_key);
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("system:node:{node_name}"));
    dn.push(DnType::OrganizationName, "system:nodes");
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &issuer)?;
    let client_pem = kubelet_pki_dir.join("kubelet-client-2024-01-01-00-00-00.pem");
    let both = format!("{}{}", cert.pem(), key.serialize_pem());
    write_file(&client_pem, both.as_bytes(), 0o600)?;
    let client_current = kubelet_pki_dir.join("kubelet-client-current.pem");
    match fs::remove_file(&client_current) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(PkiError::Io {
                path: client_current,
                source,
            })
        }
    }
    std::os::unix::fs::symlink(&client_pem, &client_current).map_err(|source| PkiError::Io {
        path: client_current.clone(),
        source,
    })?;
    let (sc, sk) = self_signed_pem(&[node_name, "localhost"])?;
    let serving = CertPair {
        cert: kubelet_pki_dir.join("kubelet.crt"),
        key: kubelet_pki_dir.join("kubelet.key"),
    };
    write_file(&serving.cert, sc.as_bytes(), 0o644)?;
    write_file(&serving.key, sk.as_bytes(), 0o600)?;
    Ok(KubeletPki {
        client_current,
        client_pem,
        serving,
    })
}

/// A self-signed serving certificate and key (PEM) for `names`; used by the fake
/// controller-manager and scheduler when no `--tls-cert-file` is given, as the real ones do.
pub fn self_signed_pem(names: &[&str]) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate()?;
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let cert = CertificateParams::new(names)?.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn ca_params(cn: &str) -> Result<(CertificateParams, KeyPair), PkiError> {
    let key = KeyPair::generate()?;
    Ok((ca_params_only(cn)?, key))
}

fn ca_params_only(cn: &str) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn leaf(
    dir: &Path,
    base: &str,
    cn: &str,
    org: Option<&str>,
    sans: &[String],
    ekus: &[ExtendedKeyUsagePurpose],
    issuer: &Issuer<'_, KeyPair>,
) -> Result<CertPair, PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(sans.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    if let Some(o) = org {
        dn.push(DnType::OrganizationName, o);
    }
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = ekus.to_vec();
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, issuer)?;
    write_pair(dir, base, &cert.pem(), &key)
}

fn write_pair(dir: &Path, base: &str, cert_pem: &str, key: &KeyPair) -> Result<CertPair, PkiError> {
    let cert = dir.join(format!("{base}.crt"));
    let keyp = dir.join(format!("{base}.key"));
    write_file(&cert, cert_pem.as_bytes(), 0o644)?;
    write_file(&keyp, key.serialize_pem().as_bytes(), 0o600)?;
    Ok(CertPair { cert, key: keyp })
}

fn mkdir(dir: &Path) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let io = |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    Ok(())
}
