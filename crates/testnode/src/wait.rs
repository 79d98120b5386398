//! What the end-to-end tests of a simulated node share when they look at it from outside: a
//! plain HTTP `GET` of a component's endpoint, and waiting for a condition with a deadline
//! (tests wait on conditions, never on a fixed duration, so a loaded machine is only slower).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// `GET path` on `127.0.0.1:port` over plain HTTP (the kubelet emulator's `/healthz`):
/// `Some((status, body))`, `None` when nothing answers within a few seconds.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Some((status, body))
}

/// Call `f` every 50 ms until it gives a value; at `timeout`, an error that names `what`.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T, String> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= end {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
