//! The service-manager emulator's sockets: `systemctl` talks to it over `<root>/run/systemd/private`
//! (as the real one talks to systemd), the kubelet emulator over the container runtime endpoint
//! (`<root>/run/containerd/containerd.sock`), as the kubelet talks to containerd over CRI.
//!
//! Why a socket and not signals or files: `systemctl restart` must block until the job is done
//! and return systemd's exit code and output; the kubelet must be able to ask "what is running"
//! after its own restart. One JSON request per connection, one JSON response, no state in the
//! connection: a client that dies mid-request leaves nothing behind.
//!
//! Unix socket paths are limited to 107 bytes; a simulated root in a deep temporary directory
//! can exceed that, so a long path is reached through `/proc/self/fd/N/<name>` (N an `O_PATH`
//! descriptor of the directory), which the kernel resolves like any other path.

use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Host path of systemd's private socket.
pub const SYSTEMD_SOCKET: &str = "/run/systemd/private";
/// Host path of the container runtime socket (containerd's default).
pub const RUNTIME_SOCKET: &str = "/run/containerd/containerd.sock";

/// A request to the service manager.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// `systemctl ARGS...` (without `argv[0]`).
    Systemctl { args: Vec<String> },
    /// Start a container (a pod's first container) and keep it running past the kubelet.
    RunContainer(RunContainer),
    /// Every container the runtime knows, running or exited and not yet removed.
    ListContainers,
    /// Forget an exited container (after the kubelet has seen its exit).
    RemoveContainer { pid: u32 },
    /// Is anyone listening?
    Ping,
}

/// What the kubelet asks the runtime to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunContainer {
    /// The pod's file name in the manifests directory.
    pub name: String,
    /// The pod's hash (a change of spec is a new hash).
    pub hash: String,
    /// Executable to run (already resolved against the pod's `PATH`).
    pub exe: PathBuf,
    /// argv, `argv[0]` as the manifest writes it.
    pub argv: Vec<String>,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// stdout and stderr are appended here.
    pub log: PathBuf,
}

/// A container as the runtime reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    pub pid: u32,
    pub name: String,
    pub hash: String,
    /// CLOCK_MONOTONIC at start, in milliseconds.
    pub started_mono_ms: u64,
    /// Exit status (`exit status: 1`, `signal: 9 (SIGKILL)`) once it has exited.
    pub exited: Option<String>,
}

/// The service manager's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Response {
    Systemctl {
        code: i32,
        stdout: String,
        stderr: String,
    },
    Started {
        pid: u32,
    },
    Containers {
        containers: Vec<ContainerInfo>,
    },
    Ok,
    Error {
        message: String,
    },
}

/// Errors talking to the service manager.
#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    #[error("connect {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: bad message: {message}")]
    Protocol { path: PathBuf, message: String },
}

fn short_path(path: &Path) -> std::io::Result<(PathBuf, Option<std::fs::File>)> {
    if path.as_os_str().len() < 100 {
        return Ok((path.to_path_buf(), None));
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("socket path has no file name"))?;
    let f = std::fs::File::open(dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd())).join(name);
    Ok((short, Some(f)))
}

/// Bind a listening socket at `path` (replacing a stale one).
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let (p, _dir) = short_path(path)?;
    UnixListener::bind(p)
}

/// Connect to the socket at `path`.
pub fn connect(path: &Path) -> std::io::Result<UnixStream> {
    let (p, _dir) = short_path(path)?;
    UnixStream::connect(p)
}

/// Send one request and wait for its response (no timeout when `timeout` is `None`: a
/// `systemctl restart` waits for its job like the real one).
pub fn call(path: &Path, req: &Request, timeout: Option<Duration>) -> Result<Response, IpcError> {
    let io = |source| IpcError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut s = connect(path).map_err(|source| IpcError::Connect {
        path: path.to_path_buf(),
        source,
    })?;
    s.set_read_timeout(timeout).map_err(io)?;
    s.set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(io)?;
    let mut line = serde_json::to_vec(req).map_err(|e| IpcError::Protocol {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    line.push(b'\n');
    s.write_all(&line).map_err(io)?;
    s.flush().map_err(io)?;
    let mut r = BufReader::new(s);
    let mut resp = String::new();
    r.read_line(&mut resp).map_err(io)?;
    serde_json::from_str(&resp).map_err(|e| IpcError::Protocol {
        path: path.to_path_buf(),
        message: format!("{e} in {resp:?}"),
    })
}

/// Server side: read one request from a connection.
pub fn read_request(s: &UnixStream) -> std::io::Result<Option<Request>> {
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    serde_json::from_str(&line)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Server side: answer.
pub fn write_response(mut s: &UnixStream, resp: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(resp).map_err(std::io::Error::other)?;
    line.push(b'\n');
    s.write_all(&line)?;
    s.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_socket_paths_work() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a".repeat(60)).join("b".repeat(60));
        let sock = deep.join("s.sock");
        assert!(sock.as_os_str().len() > 108);
        let l = bind(&sock).unwrap();
        let t = std::thread::spawn(move || {
            let (c, _) = l.accept().unwrap();
            let req = read_request(&c).unwrap().unwrap();
            assert!(matches!(req, Request::Ping));
            write_response(&c, &Response::Ok).unwrap();
        });
        let r = call(&sock, &Request::Ping, Some(Duration::from_secs(10))).unwrap();
        assert!(matches!(r, Response::Ok));
        t.join().unwrap();
    }
}
