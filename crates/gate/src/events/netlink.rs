//! The kernel's process events connector (see the module docs of [`crate::events`]).

use super::decode::{
    decode_datagram, mcast_message, DecodeError, RawEvent, CN_IDX_PROC, NETLINK_CONNECTOR,
    PROC_CN_MCAST_IGNORE, PROC_CN_MCAST_LISTEN, PROC_EVENT_EXEC, PROC_EVENT_EXIT,
};
use super::{
    read_argv, EventError, EventStream, EventsInfo, ExitStatus, Feed, MonoBase, Precision,
    ProcEvent, Unavailable,
};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{bind, recvfrom, sendto, setsockopt, sockopt, MsgFlags, NetlinkAddr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the kernel has to acknowledge the subscription (it answers in microseconds when
/// it answers at all).
pub const ACK_TIMEOUT: Duration = Duration::from_secs(1);

/// Receive buffer asked for (`SO_RCVBUFFORCE`, root): room for a few thousand events while the
/// reader is descheduled. The kernel accounts each event at a few hundred bytes.
const RCVBUF: usize = 8 << 20;

/// Datagrams read per wake-up before the stop signal is looked at again.
const BURST: usize = 1024;

/// The kinds kept by the kernel-side filter (Linux 6.6+).
const FILTER: u32 = PROC_EVENT_EXEC | PROC_EVENT_EXIT;

static SEQ: AtomicU32 = AtomicU32::new(1);

/// A cookie for a subscription message, distinct across the processes and watchers of the
/// host (acknowledgements are multicast: every listener sees every one).
fn next_cookie() -> u32 {
    std::process::id().wrapping_mul(0x9E37_79B1) ^ SEQ.fetch_add(1, Ordering::Relaxed)
}

/// Options of [`ProcessWatcher::start_with_options`].
#[derive(Debug, Default)]
pub struct WatchOptions {
    /// Receive buffer to ask for, in bytes (default 8 MiB).
    pub rcvbuf: Option<usize>,
    /// Keep the reader thread in the normal scheduling class (by default it asks for
    /// `SCHED_FIFO` priority 1, see the module docs).
    pub normal_priority: bool,
    /// For tests: the reader thread waits for a message (or the sender's drop) on this
    /// before reading anything, so that the socket's buffer can be made to overflow.
    #[doc(hidden)]
    pub hold_reader: Option<std::sync::mpsc::Receiver<()>>,
}

/// Kernel process events on a background thread. See [`crate::events`].
#[derive(Debug)]
pub struct ProcessWatcher {
    rx: Receiver<ProcEvent>,
    sock: Arc<OwnedFd>,
    wake: Arc<EventFd>,
    thread: Option<JoinHandle<()>>,
    proc_root: PathBuf,
    stopped: bool,
}

/// The receiving side, owned by the reader thread (and used by `start` while it waits for the
/// acknowledgement, so that events arriving meanwhile are handled the same way).
struct Reader {
    feed: Feed,
    proc_root: PathBuf,
    base: MonoBase,
    buf: Vec<u8>,
    priority: Priority,
}

enum Drained {
    /// The socket is empty (or the burst is done).
    Idle,
    /// The consumer is gone.
    Gone,
    /// Our subscription's acknowledgement, with its errno.
    Ack(u32),
}

impl Reader {
    /// Handle one decoded event. `false`: the consumer is gone.
    fn handle(&mut self, ev: Result<RawEvent, DecodeError>) -> bool {
        self.priority.count();
        match ev {
            Ok(RawEvent::Exec { tgid, ts_ns, .. }) => {
                // First thing: the process may be gone in a millisecond.
                let argv = read_argv(&self.proc_root, tgid);
                let at = self.base.at(ts_ns);
                self.feed.send(ProcEvent::Exec {
                    pid: tgid,
                    argv,
                    at,
                })
            }
            Ok(RawEvent::Exit {
                pid,
                tgid,
                exit_code,
                ts_ns,
            }) if pid == tgid => self.feed.send(ProcEvent::Exit {
                pid: tgid,
                status: ExitStatus::from_wait_status(exit_code),
                at: self.base.at(ts_ns),
            }),
            Ok(_) => true,
            Err(e) => self.feed.lost(format!("undecodable process event: {e}")),
        }
    }

    /// Read what the socket holds, up to [`BURST`] datagrams. With `cookie`, stop at the
    /// acknowledgement of the subscription that carried it and report it.
    fn drain(&mut self, sock: &OwnedFd, cookie: Option<u32>) -> Result<Drained, Errno> {
        for _ in 0..BURST {
            let (n, from) = match recvfrom::<NetlinkAddr>(sock.as_raw_fd(), &mut self.buf) {
                Ok(r) => r,
                Err(Errno::EAGAIN) => return Ok(Drained::Idle),
                Err(Errno::EINTR) => continue,
                Err(Errno::ENOBUFS) => {
                    let alive = self.feed.lost(
                        "the kernel dropped process events: the socket's receive buffer \
                         overflowed (ENOBUFS); some starts and exits are missing"
                            .into(),
                    );
                    if !alive {
                        return Ok(Drained::Gone);
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            // Only the kernel (port 0) speaks for the connector.
            if from.map(|a| a.pid()) != Some(0) {
                continue;
            }
            let mut ack = None;
            for ev in decode_datagram(&self.buf[..n.min(self.buf.len())]) {
                match (ev, cookie) {
                    (Ok(RawEvent::Ack { ack: a, err, .. }), Some(c)) if a == c.wrapping_add(1) => {
                        ack = Some(err)
                    }
                    (ev, _) => {
                        if !self.handle(ev) {
                            return Ok(Drained::Gone);
                        }
                    }
                }
            }
            if let Some(err) = ack {
                return Ok(Drained::Ack(err));
            }
        }
        Ok(Drained::Idle)
    }

    /// The thread's body: wait for datagrams or the stop signal.
    fn run(mut self, sock: Arc<OwnedFd>, wake: Arc<EventFd>) {
        loop {
            let (sock_ready, woken) = {
                let mut fds = [
                    PollFd::new(sock.as_fd(), PollFlags::POLLIN),
                    PollFd::new(wake.as_fd(), PollFlags::POLLIN),
                ];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) => {}
                    Err(Errno::EINTR) => continue,
                    Err(e) => {
                        self.feed.lost(format!(
                            "waiting for process events failed: {e}; no more events"
                        ));
                        return;
                    }
                }
                (fds[0].revents(), fds[1].any().unwrap_or(false))
            };
            if woken {
                return;
            }
            if sock_ready.is_some_and(|r| r.contains(PollFlags::POLLNVAL)) {
                self.feed
                    .lost("the process events socket is no longer valid; no more events".into());
                return;
            }
            match self.drain(&sock, None) {
                Ok(Drained::Idle | Drained::Ack(_)) => {}
                Ok(Drained::Gone) => return,
                Err(e) => {
                    self.feed.lost(format!(
                        "reading process events failed: {e}; no more events"
                    ));
                    return;
                }
            }
        }
    }
}

/// Above this many events in a second, the reader leaves the real-time class (see
/// [`Priority`]): an exec storm must not cost the node more than a fraction of a CPU.
const REALTIME_MAX_EVENTS_PER_SEC: u32 = 5_000;

/// The reader thread's scheduling. On a busy node it must get the CPU at once when an exec
/// arrives, or a process that lives a millisecond exits before its argv is read: measured on
/// 2 cores kept busy by two spinning processes, the argv of 0.4 ms processes was read for 158
/// of 160 with `SCHED_FIFO` priority 1 and for about 60% without (nice -10 did not help). It does
/// little per event, and leaves the real-time class for good above
/// [`REALTIME_MAX_EVENTS_PER_SEC`]. Best effort: needs `CAP_SYS_NICE` (root).
#[derive(Debug)]
struct Priority {
    realtime: bool,
    window: Instant,
    events: u32,
}

/// Set the calling thread's scheduling policy. `pthread_setschedparam`, not
/// `sched_setscheduler`: musl (the static build) implements only the former.
fn set_policy(policy: i32, priority: i32) -> Result<(), Errno> {
    // SAFETY: sched_param is a plain C struct of integers (and, on musl, of timespecs): all
    // zeroes is a valid value. Zeroed, then the priority set, because musl's has fields that
    // glibc's has not (a struct literal compiles on one of them only).
    let mut param: libc::sched_param = unsafe { std::mem::zeroed() };
    param.sched_priority = priority;
    // SAFETY: `pthread_self()` is the calling thread, alive for the call; `param` is a valid
    // sched_param that outlives it. The function returns an error number, it does not set
    // errno.
    let r = unsafe { libc::pthread_setschedparam(libc::pthread_self(), policy, &param) };
    if r == 0 {
        Ok(())
    } else {
        Err(Errno::from_raw(r))
    }
}

impl Priority {
    fn raise() -> Priority {
        let r = set_policy(libc::SCHED_FIFO, 1);
        if let Err(e) = r {
            tracing::debug!("process events: the reader stays in the normal scheduling class: {e}");
        }
        Priority {
            realtime: r.is_ok(),
            window: Instant::now(),
            events: 0,
        }
    }

    fn normal() -> Priority {
        Priority {
            realtime: false,
            window: Instant::now(),
            events: 0,
        }
    }

    /// Count one event; leave the real-time class when they come too fast.
    fn count(&mut self) {
        if !self.realtime {
            return;
        }
        if self.window.elapsed() >= Duration::from_secs(1) {
            self.window = Instant::now();
            self.events = 0;
        }
        self.events += 1;
        if self.events > REALTIME_MAX_EVENTS_PER_SEC {
            let r = set_policy(libc::SCHED_OTHER, 0);
            tracing::info!(
                "process events: more than {REALTIME_MAX_EVENTS_PER_SEC} events in a second; \
                 the reader leaves the real-time class ({})",
                r.map_or_else(|e| e.to_string(), |()| "done".into())
            );
            self.realtime = false;
        }
    }
}

fn send_op(sock: &OwnedFd, op: u32, filter: Option<u32>, cookie: u32) -> Result<(), Errno> {
    let msg = mcast_message(op, filter, cookie);
    sendto(
        sock.as_raw_fd(),
        &msg,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )
    .map(|_| ())
}

fn open_socket() -> Result<OwnedFd, Unavailable> {
    // SAFETY: socket(2) takes no pointers; it returns a new descriptor or -1 with errno set.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            NETLINK_CONNECTOR,
        )
    };
    if fd < 0 {
        return Err(Unavailable::Socket(Errno::last()));
    }
    // SAFETY: `fd` was just returned by socket(2): it is open and owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl ProcessWatcher {
    /// Subscribe to the kernel's process events of the live system (`/proc`).
    pub fn start() -> Result<ProcessWatcher, Unavailable> {
        ProcessWatcher::start_with(Path::new("/proc"))
    }

    /// Subscribe, reading argv from `proc_root` (the host's `/proc`, wherever it is mounted).
    pub fn start_with(proc_root: &Path) -> Result<ProcessWatcher, Unavailable> {
        ProcessWatcher::start_with_options(proc_root, WatchOptions::default())
    }

    /// [`ProcessWatcher::start_with`], with options.
    pub fn start_with_options(
        proc_root: &Path,
        opts: WatchOptions,
    ) -> Result<ProcessWatcher, Unavailable> {
        let base = MonoBase::now().map_err(|e| Unavailable::Clock(e.to_string()))?;
        let sock = open_socket()?;
        // A large buffer makes ENOBUFS (lost events) rarer; without privilege the kernel caps
        // SO_RCVBUF at rmem_max, and that is still worth asking for.
        let rcvbuf = opts.rcvbuf.unwrap_or(RCVBUF);
        if setsockopt(&sock, sockopt::RcvBufForce, &rcvbuf).is_err() {
            let _ = setsockopt(&sock, sockopt::RcvBuf, &rcvbuf);
        }
        bind(
            sock.as_raw_fd(),
            &NetlinkAddr::new(0, 1 << (CN_IDX_PROC - 1)),
        )
        .map_err(Unavailable::Bind)?;
        let wake = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| Unavailable::Thread(e.into()))?;

        let (feed, rx) = Feed::channel();
        let mut reader = Reader {
            feed,
            proc_root: proc_root.to_path_buf(),
            base,
            buf: vec![0u8; 64 * 1024],
            priority: Priority::normal(),
        };
        // The classic 4-byte subscription: every kernel acknowledges it.
        let cookie = next_cookie();
        send_op(&sock, PROC_CN_MCAST_LISTEN, None, cookie).map_err(Unavailable::Subscribe)?;
        let unsubscribe = |sock: &OwnedFd| {
            let _ = send_op(sock, PROC_CN_MCAST_IGNORE, None, next_cookie());
        };
        if let Err(e) = wait_for_ack(&mut reader, &sock, cookie) {
            // A subscription the kernel took without answering must not leak.
            unsubscribe(&sock);
            return Err(e);
        }
        // Narrow to exec and exit events where the kernel can (6.6+); older kernels ignore a
        // message of that size, and this socket keeps receiving everything.
        if let Err(e) = send_op(&sock, PROC_CN_MCAST_LISTEN, Some(FILTER), next_cookie()) {
            tracing::debug!("process events: could not set the kernel-side filter: {e}");
        }

        let sock = Arc::new(sock);
        let wake = Arc::new(wake);
        let (s2, w2) = (Arc::clone(&sock), Arc::clone(&wake));
        let thread = std::thread::Builder::new()
            .name("kharden-proc-events".into())
            .spawn(move || {
                reader.priority = if opts.normal_priority {
                    Priority::normal()
                } else {
                    Priority::raise()
                };
                if let Some(hold) = opts.hold_reader {
                    let _ = hold.recv();
                }
                reader.run(s2, w2)
            });
        match thread {
            Ok(t) => Ok(ProcessWatcher {
                rx,
                sock,
                wake,
                thread: Some(t),
                proc_root: proc_root.to_path_buf(),
                stopped: false,
            }),
            Err(e) => {
                unsubscribe(&sock);
                Err(Unavailable::Thread(e))
            }
        }
    }

    /// Where argv is read from.
    pub fn proc_root(&self) -> &Path {
        &self.proc_root
    }

    /// Unsubscribe, stop and join the reader thread, reporting what went wrong (dropping the
    /// watcher does the same and logs it).
    pub fn stop(mut self) -> Result<(), EventError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), EventError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let mut result = send_op(&self.sock, PROC_CN_MCAST_IGNORE, None, next_cookie())
            .map_err(EventError::Unsubscribe);
        match self.wake.write(1) {
            Ok(_) => {
                if let Some(t) = self.thread.take() {
                    if t.join().is_err() {
                        result = Err(EventError::ThreadPanicked("process events reader"));
                    }
                }
            }
            Err(e) => {
                // Cannot happen with a fresh eventfd (the counter would have to overflow);
                // joining would then wait forever, so the thread is left to end with the
                // process.
                tracing::warn!("process events: cannot wake the reader thread to stop it: {e}");
                self.thread.take();
            }
        }
        result
    }
}

fn wait_for_ack(reader: &mut Reader, sock: &OwnedFd, cookie: u32) -> Result<(), Unavailable> {
    let deadline = Instant::now() + ACK_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Unavailable::NoAck(ACK_TIMEOUT));
        }
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(Unavailable::Receive(e)),
        }
        match reader
            .drain(sock, Some(cookie))
            .map_err(Unavailable::Receive)?
        {
            Drained::Ack(0) => return Ok(()),
            Drained::Ack(err) => {
                return Err(Unavailable::Refused(Errno::from_raw(err as i32)));
            }
            // The receiver is held by `start`: cannot be gone.
            Drained::Idle | Drained::Gone => {}
        }
    }
}

impl Drop for ProcessWatcher {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!("process events: stopping the watcher: {e}");
        }
    }
}

impl EventStream for ProcessWatcher {
    fn try_next(&self) -> Option<ProcEvent> {
        self.rx.try_recv().ok()
    }
    fn next_timeout(&self, timeout: Duration) -> Option<ProcEvent> {
        self.rx.recv_timeout(timeout).ok()
    }
    fn info(&self) -> EventsInfo {
        EventsInfo {
            description: "kernel process events (netlink connector): every exec and exit, \
                          with exit status"
                .into(),
            precision: Precision::Kernel,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_leaves_the_realtime_class_in_a_storm() {
        // On a thread of its own: the policy change applies to the calling thread.
        std::thread::spawn(|| {
            let mut p = Priority {
                realtime: true,
                window: Instant::now(),
                events: 0,
            };
            for _ in 0..REALTIME_MAX_EVENTS_PER_SEC {
                p.count();
            }
            assert!(p.realtime);
            p.count();
            assert!(!p.realtime);
            // A slow trickle keeps the class: the window restarts every second.
            let mut q = Priority {
                realtime: true,
                window: Instant::now() - Duration::from_secs(2),
                events: REALTIME_MAX_EVENTS_PER_SEC,
            };
            q.count();
            assert!(q.realtime);
            assert_eq!(q.events, 1);
        })
        .join()
        .unwrap();
    }
}
