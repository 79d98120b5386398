//! The probe against a local TLS server (kharden-testnode's in-process health server with
//! kubeadm-shaped certificates): name substitution, CA verification, client certificates and
//! the outcome classes.

// Test and tool code: a panic is how it fails, and it prints, writes its fixtures and reads
// the clock directly. The product rules of the workspace lints do not apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use kharden_gate::{
    discover_client_cert, discover_cluster_ca, probe, ClientCertFiles, ProbeClass, ProbeTarget,
    Scheme, TlsSettings,
};
use kharden_testnode::{free_port, generate_pki, HealthServer, HealthServerConfig, Pki};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

fn server(pki: &Pki, anonymous: bool, status: u16) -> HealthServer {
    HealthServer::start(HealthServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        cert_pem: std::fs::read(&pki.apiserver.cert).unwrap(),
        key_pem: std::fs::read(&pki.apiserver.key).unwrap(),
        client_ca_pem: Some(std::fs::read(&pki.ca.cert).unwrap()),
        anonymous_auth: anonymous,
        health_status: status,
    })
    .unwrap()
}

fn target(port: u16, path: &str) -> ProbeTarget {
    ProbeTarget {
        scheme: Scheme::Https,
        host: "127.0.0.1".into(),
        port,
        path: path.into(),
    }
}

fn tls(pki: &Pki, name: Option<&str>) -> TlsSettings {
    TlsSettings {
        ca_file: discover_cluster_ca(&pki.dir),
        server_name: name.map(str::to_string),
        client_cert: None,
    }
}

#[test]
fn healthy_with_name_substitution() {
    let dir = tempfile::tempdir().unwrap();
    let pki = generate_pki(dir.path()).unwrap();
    let s = server(&pki, true, 200);
    let port = s.local_addr().port();
    for name in ["kubernetes", "192.0.2.10", "kubernetes.default.svc"] {
        let o = probe(&target(port, "/livez"), &tls(&pki, Some(name)), T);
        assert_eq!(o.class, ProbeClass::Healthy(200), "{name}: {o:?}");
        assert!(o.detail.contains("ok"));
    }
}

#[test]
fn name_not_in_certificate_is_a_tls_error() {
    let dir = tempfile::tempdir().unwrap();
    let pki = generate_pki(dir.path()).unwrap();
    let s = server(&pki, true, 200);
    let port = s.local_addr().port();
    // Default: verify the connect host, 127.0.0.1, which kubeadm's certificate lacks.
    let o = probe(&target(port, "/livez"), &tls(&pki, None), T);
    assert_eq!(o.class, ProbeClass::TlsError, "{o:?}");
    let o = probe(&target(port, "/livez"), &tls(&pki, Some("evil.example")), T);
    assert_eq!(o.class, ProbeClass::TlsError, "{o:?}");
}

#[test]
fn wrong_ca_is_a_tls_error() {
    let dir = tempfile::tempdir().unwrap();
    let pki = generate_pki(&dir.path().join("a")).unwrap();
    let other = generate_pki(&dir.path().join("b")).unwrap();
    let s = server(&pki, true, 200);
    let o = probe(
        &target(s.local_addr().port(), "/livez"),
        &tls(&other, Some("kubernetes")),
        T,
    );
    assert_eq!(o.class, ProbeClass::TlsError, "{o:?}");
    // Missing CA file: also TLS error, with the path in the detail.
    let mut t = tls(&pki, Some("kubernetes"));
    t.ca_file = Some(dir.path().join("nope.crt"));
    let o = probe(&target(s.local_addr().port(), "/livez"), &t, T);
    assert_eq!(o.class, ProbeClass::TlsError);
    assert!(o.detail.contains("nope.crt"), "{o:?}");
}

#[test]
fn anonymous_disabled_gives_401_and_client_cert_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    let pki = generate_pki(dir.path()).unwrap();
    let s = server(&pki, false, 200);
    let port = s.local_addr().port();
    let mut t = tls(&pki, Some("kubernetes"));
    let o = probe(&target(port, "/readyz"), &t, T);
    assert_eq!(o.class, ProbeClass::Unauthorized(401), "{o:?}");
    t.client_cert = discover_client_cert(&pki.dir);
    assert!(t.client_cert.is_some());
    let o = probe(&target(port, "/readyz"), &t, T);
    assert_eq!(o.class, ProbeClass::Healthy(200), "{o:?}");
    // A client certificate from another CA is refused during the handshake.
    let other = generate_pki(&dir.path().join("other")).unwrap();
    t.client_cert = Some(ClientCertFiles {
        cert: other.apiserver_kubelet_client.cert.clone(),
        key: other.apiserver_kubelet_client.key.clone(),
    });
    let o = probe(&target(port, "/readyz"), &t, T);
    assert!(
        matches!(o.class, ProbeClass::TlsError | ProbeClass::Error),
        "{o:?}"
    );
}

#[test]
fn server_error_and_other_status() {
    let dir = tempfile::tempdir().unwrap();
    let pki = generate_pki(dir.path()).unwrap();
    let s = server(&pki, true, 503);
    let o = probe(
        &target(s.local_addr().port(), "/livez"),
        &tls(&pki, Some("kubernetes")),
        T,
    );
    assert_eq!(o.class, ProbeClass::ServerError(503), "{o:?}");
    let s = server(&pki, true, 200);
    let mut t = tls(&pki, Some("kubernetes"));
    t.client_cert = discover_client_cert(&pki.dir);
    let o = probe(&target(s.local_addr().port(), "/nothing"), &t, T);
    assert_eq!(o.class, ProbeClass::OtherStatus(404), "{o:?}");
}

#[test]
fn refused_is_down() {
    let port = free_port();
    let o = probe(
        &target(port, "/livez"),
        &TlsSettings::default(),
        Duration::from_secs(2),
    );
    assert_eq!(o.class, ProbeClass::Down, "{o:?}");
}

#[test]
fn silent_server_is_a_timeout() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        drop(s);
    });
    let o = probe(
        &ProbeTarget {
            scheme: Scheme::Http,
            host: "127.0.0.1".into(),
            port,
            path: "/health".into(),
        },
        &TlsSettings::default(),
        Duration::from_millis(300),
    );
    assert_eq!(o.class, ProbeClass::Timeout, "{o:?}");
    h.join().unwrap();
}

#[test]
fn plain_http() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\nConnection: close\r\n\r\n{\"health\":\"true\"}")
            .unwrap();
    });
    let o = probe(
        &ProbeTarget {
            scheme: Scheme::Http,
            host: "127.0.0.1".into(),
            port,
            path: "/health".into(),
        },
        &TlsSettings::default(),
        T,
    );
    assert_eq!(o.class, ProbeClass::Healthy(200), "{o:?}");
    h.join().unwrap();
}
