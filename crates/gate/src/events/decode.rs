//! The wire format of the process events connector: pure functions, no I/O.
//!
//! A datagram from the kernel holds one or more netlink messages (`struct nlmsghdr`, 16 bytes,
//! each padded to 4 bytes). The payload of each is a `struct cn_msg` (20 bytes: `cb_id {idx,
//! val}`, `seq`, `ack`, `len: u16`, `flags: u16`) followed by `len` bytes of data, which for
//! `CN_IDX_PROC`/`CN_VAL_PROC` is a `struct proc_event` (`linux/cn_proc.h`):
//!
//! ```text
//! offset  0  what: u32          PROC_EVENT_*
//!         4  cpu: u32
//!         8  timestamp_ns: u64  ktime_get_ns(): CLOCK_MONOTONIC
//!        16  event_data         union; exec: {pid, tgid}; exit: {pid, tgid, exit_code,
//!                               exit_signal, parent_pid, parent_tgid}; fork: {parent_pid,
//!                               parent_tgid, child_pid, child_tgid}; ack: {err}
//! ```
//!
//! Everything is in the host's byte order. `exit_code` is the wait status (`task->exit_code`,
//! as `waitpid(2)` reports it), and `exit_signal` is the signal sent to the parent (SIGCHLD,
//! or -1 for a thread), *not* the signal that killed the process.

/// `NETLINK_CONNECTOR` (`linux/netlink.h`).
pub const NETLINK_CONNECTOR: i32 = 11;
/// The process events connector's id (`linux/connector.h`).
pub const CN_IDX_PROC: u32 = 1;
pub const CN_VAL_PROC: u32 = 1;
/// `enum proc_cn_mcast_op`.
pub const PROC_CN_MCAST_LISTEN: u32 = 1;
pub const PROC_CN_MCAST_IGNORE: u32 = 2;
/// `enum what` / `enum proc_cn_event`.
pub const PROC_EVENT_NONE: u32 = 0;
pub const PROC_EVENT_FORK: u32 = 0x0000_0001;
pub const PROC_EVENT_EXEC: u32 = 0x0000_0002;
pub const PROC_EVENT_EXIT: u32 = 0x8000_0000;

/// Netlink message types (`linux/netlink.h`).
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;

pub const NLMSG_HDRLEN: usize = 16;
pub const CN_MSG_LEN: usize = 20;
/// `what`, `cpu`, `timestamp_ns`.
pub const PROC_EVENT_HDRLEN: usize = 16;

/// One decoded process event, as the kernel sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawEvent {
    /// The reply to a (un)subscription: `seq` and `ack` are the connector message's. `ack` is
    /// the request's `ack` + 1, which identifies the reply: `seq` is the request's on old
    /// kernels only (since 4.x the kernel overwrites it with its event counter). `err` is an
    /// errno (0: done).
    Ack {
        seq: u32,
        ack: u32,
        err: u32,
    },
    Fork {
        parent_tgid: u32,
        child_pid: u32,
        child_tgid: u32,
        ts_ns: u64,
    },
    Exec {
        pid: u32,
        tgid: u32,
        ts_ns: u64,
    },
    /// `pid` is the thread's id: a process ended when `pid == tgid` (its leader exited).
    Exit {
        pid: u32,
        tgid: u32,
        /// The wait status (see [`crate::events::ExitStatus::from_wait_status`]).
        exit_code: u32,
        ts_ns: u64,
    },
    /// Another kind (uid, gid, sid, ptrace, comm, coredump): not used.
    Other {
        what: u32,
    },
}

/// Why (part of) a datagram could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated {what}: {len} bytes where {need} are needed")]
    Truncated {
        what: &'static str,
        len: usize,
        need: usize,
    },
    #[error("netlink error message (errno {0})")]
    Netlink(i32),
    #[error("netlink overrun: the kernel dropped messages")]
    Overrun,
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let a: [u8; 2] = b.get(off..off + 2)?.try_into().ok()?;
    Some(u16::from_ne_bytes(a))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let a: [u8; 4] = b.get(off..off + 4)?.try_into().ok()?;
    Some(u32::from_ne_bytes(a))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    let a: [u8; 8] = b.get(off..off + 8)?.try_into().ok()?;
    Some(u64::from_ne_bytes(a))
}

fn truncated(what: &'static str, len: usize, need: usize) -> DecodeError {
    DecodeError::Truncated { what, len, need }
}

/// Decode every netlink message of a datagram. Messages of other connectors are skipped;
/// a malformed message ends the decoding of the datagram (its length cannot be trusted).
pub fn decode_datagram(buf: &[u8]) -> Vec<Result<RawEvent, DecodeError>> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < buf.len() {
        let rest = &buf[off..];
        let (Some(len), Some(kind)) = (u32_at(rest, 0), u16_at(rest, 4)) else {
            out.push(Err(truncated("netlink header", rest.len(), NLMSG_HDRLEN)));
            break;
        };
        let len = len as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            out.push(Err(truncated(
                "netlink message",
                rest.len(),
                len.max(NLMSG_HDRLEN),
            )));
            break;
        }
        let payload = &rest[NLMSG_HDRLEN..len];
        match kind {
            NLMSG_NOOP => {}
            NLMSG_ERROR => {
                // struct nlmsgerr { int error; struct nlmsghdr msg; }: error is -errno.
                let errno = u32_at(payload, 0).map_or(0, |e| (e as i32).wrapping_neg());
                if errno != 0 {
                    out.push(Err(DecodeError::Netlink(errno)));
                }
            }
            NLMSG_OVERRUN => out.push(Err(DecodeError::Overrun)),
            // The connector sends NLMSG_DONE; accept any other type as a connector message too.
            _ => {
                if let Some(ev) = decode_cn_msg(payload) {
                    out.push(ev);
                }
            }
        }
        // NLMSG_ALIGN: messages are padded to 4 bytes.
        off += (len + 3) & !3;
    }
    out
}

/// Decode one connector message; `None` when it is not a process event.
pub fn decode_cn_msg(cn: &[u8]) -> Option<Result<RawEvent, DecodeError>> {
    if cn.len() < CN_MSG_LEN {
        return Some(Err(truncated("connector message", cn.len(), CN_MSG_LEN)));
    }
    let (idx, val) = (u32_at(cn, 0)?, u32_at(cn, 4)?);
    if idx != CN_IDX_PROC || val != CN_VAL_PROC {
        return None;
    }
    let (seq, ack) = (u32_at(cn, 8)?, u32_at(cn, 12)?);
    let data_len = usize::from(u16_at(cn, 16)?);
    let Some(data) = cn.get(CN_MSG_LEN..CN_MSG_LEN + data_len) else {
        return Some(Err(truncated(
            "connector data",
            cn.len() - CN_MSG_LEN,
            data_len,
        )));
    };
    Some(decode_proc_event(data, seq, ack))
}

/// Decode a `struct proc_event`.
pub fn decode_proc_event(ev: &[u8], seq: u32, ack: u32) -> Result<RawEvent, DecodeError> {
    let need = |n: usize, what: &'static str| {
        if ev.len() < PROC_EVENT_HDRLEN + n {
            Err(truncated(what, ev.len(), PROC_EVENT_HDRLEN + n))
        } else {
            Ok(())
        }
    };
    need(0, "process event")?;
    // The lengths were checked just above; the fallbacks are never taken.
    let what = u32_at(ev, 0).unwrap_or_default();
    let ts_ns = u64_at(ev, 8).unwrap_or_default();
    let d = |i: usize| u32_at(ev, PROC_EVENT_HDRLEN + 4 * i).unwrap_or_default();
    Ok(match what {
        PROC_EVENT_NONE => {
            need(4, "acknowledgement")?;
            RawEvent::Ack {
                seq,
                ack,
                err: d(0),
            }
        }
        PROC_EVENT_FORK => {
            need(16, "fork event")?;
            RawEvent::Fork {
                parent_tgid: d(1),
                child_pid: d(2),
                child_tgid: d(3),
                ts_ns,
            }
        }
        PROC_EVENT_EXEC => {
            need(8, "exec event")?;
            RawEvent::Exec {
                pid: d(0),
                tgid: d(1),
                ts_ns,
            }
        }
        PROC_EVENT_EXIT => {
            need(12, "exit event")?;
            RawEvent::Exit {
                pid: d(0),
                tgid: d(1),
                exit_code: d(2),
                ts_ns,
            }
        }
        other => RawEvent::Other { what: other },
    })
}

/// A subscription message: `op` is [`PROC_CN_MCAST_LISTEN`] or [`PROC_CN_MCAST_IGNORE`];
/// `cookie` goes in the connector message's `ack` field, and comes back + 1 in the kernel's
/// acknowledgement.
/// With `filter`, the data is a `struct proc_input {op, event_type}` (Linux 6.6+: only the
/// given event kinds are delivered to this socket; older kernels silently ignore a message
/// of that size); without, the classic 4-byte op (all events, every kernel).
pub fn mcast_message(op: u32, filter: Option<u32>, cookie: u32) -> Vec<u8> {
    let mut data = op.to_ne_bytes().to_vec();
    if let Some(f) = filter {
        data.extend_from_slice(&f.to_ne_bytes());
    }
    let total = NLMSG_HDRLEN + CN_MSG_LEN + data.len();
    let mut m = Vec::with_capacity(total);
    // nlmsghdr: len, type, flags, seq, pid (0: the kernel fills in the port).
    m.extend_from_slice(&(total as u32).to_ne_bytes());
    m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&cookie.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // cn_msg: idx, val, seq, ack, len, flags.
    m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m.extend_from_slice(&cookie.to_ne_bytes());
    m.extend_from_slice(&cookie.to_ne_bytes());
    m.extend_from_slice(&(data.len() as u16).to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&data);
    m
}

#[cfg(test)]
pub(crate) mod build {
    //! Hand-built datagrams, as the kernel lays them out.
    use super::*;

    pub fn proc_event(what: u32, ts_ns: u64, data: &[u32]) -> Vec<u8> {
        let mut ev = Vec::new();
        ev.extend_from_slice(&what.to_ne_bytes());
        ev.extend_from_slice(&1u32.to_ne_bytes()); // cpu
        ev.extend_from_slice(&ts_ns.to_ne_bytes());
        for d in data {
            ev.extend_from_slice(&d.to_ne_bytes());
        }
        // The union is 24 bytes whatever the member.
        ev.resize(PROC_EVENT_HDRLEN + 24, 0);
        ev
    }

    pub fn message(idx: u32, seq: u32, ack: u32, data: &[u8]) -> Vec<u8> {
        let total = NLMSG_HDRLEN + CN_MSG_LEN + data.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(total as u32).to_ne_bytes());
        m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&idx.to_ne_bytes());
        m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&ack.to_ne_bytes());
        m.extend_from_slice(&(data.len() as u16).to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(data);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    #[test]
    fn constants_match_libc() {
        assert_eq!(CN_IDX_PROC, libc::CN_IDX_PROC);
        assert_eq!(CN_VAL_PROC, libc::CN_VAL_PROC);
        assert_eq!(PROC_CN_MCAST_LISTEN, libc::PROC_CN_MCAST_LISTEN);
        assert_eq!(PROC_CN_MCAST_IGNORE, libc::PROC_CN_MCAST_IGNORE);
        assert_eq!(PROC_EVENT_EXEC, libc::PROC_EVENT_EXEC);
        assert_eq!(PROC_EVENT_EXIT, libc::PROC_EVENT_EXIT);
        assert_eq!(PROC_EVENT_FORK, libc::PROC_EVENT_FORK);
        assert_eq!(NLMSG_DONE as i32, libc::NLMSG_DONE);
        assert_eq!(NLMSG_ERROR as i32, libc::NLMSG_ERROR);
        assert_eq!(NLMSG_HDRLEN, std::mem::size_of::<libc::nlmsghdr>());
    }

    #[test]
    fn exec_exit_fork_ack() {
        // Captured layout: sh -c 'exit 3' as pid 0x56f2, parent 0x56c9.
        let exit = proc_event(
            PROC_EVENT_EXIT,
            123_456_789,
            &[0x56f2, 0x56f2, 0x300, 17, 0x56c9, 0x56c9],
        );
        let d = message(CN_IDX_PROC, 7, 0, &exit);
        assert_eq!(
            decode_datagram(&d),
            vec![Ok(RawEvent::Exit {
                pid: 0x56f2,
                tgid: 0x56f2,
                exit_code: 0x300,
                ts_ns: 123_456_789
            })]
        );
        let exec = proc_event(PROC_EVENT_EXEC, 5, &[42, 42]);
        let fork = proc_event(PROC_EVENT_FORK, 6, &[1, 1, 43, 43]);
        let ack = proc_event(PROC_EVENT_NONE, 7, &[0]);
        // Several messages in one datagram, each aligned.
        let mut d = message(CN_IDX_PROC, 1, 0, &exec);
        d.extend(message(CN_IDX_PROC, 2, 0, &fork));
        d.extend(message(CN_IDX_PROC, 99, 11, &ack));
        assert_eq!(
            decode_datagram(&d),
            vec![
                Ok(RawEvent::Exec {
                    pid: 42,
                    tgid: 42,
                    ts_ns: 5
                }),
                Ok(RawEvent::Fork {
                    parent_tgid: 1,
                    child_pid: 43,
                    child_tgid: 43,
                    ts_ns: 6
                }),
                Ok(RawEvent::Ack {
                    seq: 99,
                    ack: 11,
                    err: 0
                }),
            ]
        );
        // A thread's exit (pid != tgid) is decoded as such; the watcher ignores it.
        let t = proc_event(PROC_EVENT_EXIT, 8, &[44, 42, 0, u32::MAX]);
        assert!(matches!(
            decode_datagram(&message(CN_IDX_PROC, 3, 0, &t))[..],
            [Ok(RawEvent::Exit {
                pid: 44,
                tgid: 42,
                ..
            })]
        ));
        // Other kinds are named, other connectors skipped.
        let comm = proc_event(0x200, 9, &[42, 42]);
        assert_eq!(
            decode_datagram(&message(CN_IDX_PROC, 4, 0, &comm)),
            vec![Ok(RawEvent::Other { what: 0x200 })]
        );
        assert!(decode_datagram(&message(2, 5, 0, &exec)).is_empty());
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let exec = proc_event(PROC_EVENT_EXEC, 5, &[42, 42]);
        let good = message(CN_IDX_PROC, 1, 0, &exec);
        // Every truncation of a valid datagram.
        for n in 0..good.len() {
            let r = decode_datagram(&good[..n]);
            assert!(r.iter().all(|e| e.is_err()), "{n}: {r:?}");
        }
        // A netlink length that lies.
        let mut bad = good.clone();
        bad[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(matches!(
            decode_datagram(&bad)[..],
            [Err(DecodeError::Truncated { .. })]
        ));
        bad[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(matches!(
            decode_datagram(&bad)[..],
            [Err(DecodeError::Truncated { .. })]
        ));
        // A connector length that lies.
        let mut bad = good.clone();
        bad[NLMSG_HDRLEN + 16..NLMSG_HDRLEN + 18].copy_from_slice(&500u16.to_ne_bytes());
        assert!(matches!(
            decode_datagram(&bad)[..],
            [Err(DecodeError::Truncated { .. })]
        ));
        // An exit event too short for its fields.
        let short = &proc_event(PROC_EVENT_EXIT, 1, &[1, 1, 0])[..PROC_EVENT_HDRLEN + 8];
        assert!(matches!(
            decode_datagram(&message(CN_IDX_PROC, 1, 0, short))[..],
            [Err(DecodeError::Truncated { .. })]
        ));
        // Netlink error and overrun messages.
        let mut e = vec![0u8; NLMSG_HDRLEN + 4];
        let n = e.len() as u32;
        e[0..4].copy_from_slice(&n.to_ne_bytes());
        e[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        e[16..20].copy_from_slice(&(-105i32).to_ne_bytes());
        assert_eq!(decode_datagram(&e), vec![Err(DecodeError::Netlink(105))]);
        e[4..6].copy_from_slice(&NLMSG_OVERRUN.to_ne_bytes());
        assert_eq!(decode_datagram(&e), vec![Err(DecodeError::Overrun)]);
        e[4..6].copy_from_slice(&NLMSG_NOOP.to_ne_bytes());
        assert!(decode_datagram(&e).is_empty());
    }

    #[test]
    fn subscription_message_layout() {
        let m = mcast_message(PROC_CN_MCAST_LISTEN, None, 0xabcd);
        assert_eq!(m.len(), NLMSG_HDRLEN + CN_MSG_LEN + 4);
        assert_eq!(u32_at(&m, 0), Some(m.len() as u32));
        assert_eq!(u16_at(&m, 4), Some(NLMSG_DONE));
        assert_eq!(u32_at(&m, 16), Some(CN_IDX_PROC));
        assert_eq!(u32_at(&m, 20), Some(CN_VAL_PROC));
        assert_eq!(u32_at(&m, 24), Some(0xabcd));
        assert_eq!(u32_at(&m, 28), Some(0xabcd));
        assert_eq!(u16_at(&m, 32), Some(4));
        assert_eq!(u32_at(&m, 36), Some(PROC_CN_MCAST_LISTEN));
        let f = mcast_message(
            PROC_CN_MCAST_LISTEN,
            Some(PROC_EVENT_EXEC | PROC_EVENT_EXIT),
            1,
        );
        assert_eq!(u16_at(&f, 32), Some(8));
        assert_eq!(u32_at(&f, 40), Some(0x8000_0002));
    }
}
