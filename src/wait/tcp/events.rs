//! Socket closes as events: the kernel's sock_diag announces every TCP
//! socket it destroys to the multicast groups `SKNLGRP_INET_TCP_DESTROY` and
//! `SKNLGRP_INET6_TCP_DESTROY` (linux/sock_diag.h; `ss -E` listens to them).
//! Joining needs no privilege (sock_diag lets any user receive), and only
//! this network namespace's sockets are announced: the pod's.
//!
//! A wait subscribes before its first look, then looks again only when a
//! socket on a watched port has closed: an app's listener closing is seen
//! within a fraction of a millisecond instead of half a poll interval later.
//! What the events cannot show — a listener `shutdown(2)` but not closed, a
//! connection that leaves a counted state without being destroyed
//! (FIN_WAIT1 → FIN_WAIT2 while the app keeps its end open) — the wait's
//! interval looks still catch.
//!
//! A busy pod closes thousands of connections a second on other ports. A
//! classic BPF socket filter on the subscription drops their announcements
//! in the kernel, before they are queued, so the waiting process is not
//! woken for them at all. Each announcement is one message: a netlink
//! header followed by `struct inet_diag_msg`, whose `idiag_sport` and
//! `idiag_dport` (network byte order) the filter reads.
//!
//! A full receive queue loses announcements; the kernel then fails the next
//! receive with ENOBUFS, and the wait looks again at once.

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket};
use std::{io, os::fd::AsRawFd};
use tokio::io::unix::AsyncFd;

/// linux/sock_diag.h: the groups that announce destroyed TCP sockets.
const SKNLGRP_INET_TCP_DESTROY: u32 = 1;
const SKNLGRP_INET6_TCP_DESTROY: u32 = 3;

/// Offsets in an announcement: the 16-byte netlink header, then
/// `inet_diag_msg` (family, state, timer, retrans: 4 bytes; then sport, dport).
const SPORT_OFFSET: u32 = 16 + 4;
const DPORT_OFFSET: u32 = SPORT_OFFSET + 2;

/// Datagrams read in one go before the wait yields to its deadline.
const DRAIN_LIMIT: usize = 4096;

/// Which sockets' closes wake the wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// Listeners only (`tcp`, `http`, `listeners`): a listener has no peer
    /// (dport 0), so the many connections the app closes on its own port
    /// while it drains do not wake the wait.
    Listeners,
    /// Every socket (`connections`).
    Any,
}

/// The closes a subscription wants: on these ports (every port if empty),
/// of these sockets. Not by owner: the kernel's announcement of a destroyed
/// socket carries no owner (`idiag_uid` is 0 whoever owned it, seen as a
/// non-root user), so a wait that leaves some users out (`listeners
/// --exclude-uid`) is woken by their closes too, and its look leaves them
/// out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub ports: Vec<u16>,
    pub wanted: Wanted,
}

impl Filter {
    /// Closes of `wanted` sockets on `ports`, whoever owns them.
    pub fn ports(ports: &[u16], wanted: Wanted) -> Filter {
        Filter {
            ports: ports.to_vec(),
            wanted,
        }
    }

    /// The same test as the kernel-side program, for announcements read
    /// without it.
    fn wants(&self, sport: u16, dport: u16) -> bool {
        (self.ports.is_empty() || self.ports.contains(&sport))
            && (self.wanted == Wanted::Any || dport == 0)
    }
}

/// What arrived since the last look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// A socket on a watched port was destroyed.
    Seen,
    /// The queue overflowed: announcements were lost, so look again.
    Lost,
}

/// A subscription to the destroy announcements of the watched ports.
pub struct Closes {
    socket: AsyncFd<Socket>,
    filter: Filter,
    /// Whether the kernel filters (else every close is read and checked here).
    filtered: bool,
    buf: Vec<u8>,
}

impl Closes {
    /// Subscribes. Fails where this kernel or sandbox has no sock_diag
    /// multicast; the wait then polls.
    pub fn subscribe(filter: Filter) -> io::Result<Closes> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        // The filter goes on before joining, so no unfiltered announcement
        // is ever queued.
        let filtered = match program(&filter) {
            Some(program) => {
                attach(&socket, &program)?;
                true
            }
            None => false,
        };
        socket.add_membership(SKNLGRP_INET_TCP_DESTROY)?;
        match socket.add_membership(SKNLGRP_INET6_TCP_DESTROY) {
            // A kernel without IPv6 has no IPv6 sockets to announce.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            other => other?,
        }
        socket.set_non_blocking(true)?;
        // SAFETY: the AsyncFd owns the socket, so its fd stays open and the
        // same for the AsyncFd's whole life.
        let socket =
            unsafe { AsyncFd::register_with_interest(socket, tokio::io::Interest::READABLE) }?;
        Ok(Closes {
            socket,
            filter,
            filtered,
            // One announcement a datagram, a few hundred bytes: a larger
            // buffer would only add to the hook's memory.
            buf: vec![0; 8 * 1024],
        })
    }

    /// Waits until a socket on a watched port has closed since the last
    /// call (or announcements were lost). Everything queued is read, so a
    /// burst of closes wakes the wait once.
    pub async fn next(&mut self) -> io::Result<Closed> {
        loop {
            let mut guard = self.socket.readable().await?;
            let mut seen = false;
            let mut lost = false;
            // A drain ends at WouldBlock, or after a bounded number of
            // datagrams so that a socket that never runs dry cannot keep
            // the runtime (and with it the wait's deadline) from running.
            for _ in 0..DRAIN_LIMIT {
                match guard.get_inner().recv(&mut &mut self.buf[..], 0) {
                    // The kernel never announces with an empty datagram; an
                    // endless run of them (a seccomp filter that answers
                    // recv with 0) would spin here: the events are off.
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the sock_diag subscription returned an empty datagram",
                        ))
                    }
                    Ok(size) => {
                        seen |= self.filtered || watched(&self.buf[..size], &self.filter);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        guard.clear_ready();
                        break;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => lost = true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if lost {
                return Ok(Closed::Lost);
            }
            if seen {
                return Ok(Closed::Seen);
            }
            // Not drained, nothing watched: yield before reading on.
            tokio::task::yield_now().await;
        }
    }
}

/// Whether an announcement (read without the kernel's filter) is one the
/// wait wants: the same test as the filter's.
fn watched(datagram: &[u8], filter: &Filter) -> bool {
    let Ok(message) = <NetlinkMessage<SockDiagMessage>>::deserialize(datagram) else {
        // Not understood: looking again is the safe answer.
        return true;
    };
    match message.payload {
        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
            let id = &r.header.socket_id;
            filter.wants(id.source_port, id.destination_port)
        }
        _ => true,
    }
}

/// Where a filter instruction jumps.
#[derive(Clone, Copy)]
enum To {
    Next,
    Drop,
    /// The instruction at this index.
    At(usize),
}

/// The socket filter, as [`Filter::wants`] says it: accept an announcement
/// whose source port is watched and whose destination port is 0 for
/// listeners; drop the rest. None when it does not fit
/// classic BPF's forward jumps of at most 255 instructions: announcements are
/// then checked here instead.
fn program(filter: &Filter) -> Option<Vec<libc::sock_filter>> {
    let load_half = libc::BPF_LD | libc::BPF_H | libc::BPF_ABS;
    let jump_eq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    let mut ops: Vec<(u32, To, To, u32)> = Vec::new();
    if !filter.ports.is_empty() {
        ops.push((load_half, To::Next, To::Next, SPORT_OFFSET));
        let after = ops.len() + filter.ports.len();
        for (i, port) in filter.ports.iter().enumerate() {
            let last = i + 1 == filter.ports.len();
            let otherwise = if last { To::Drop } else { To::Next };
            ops.push((jump_eq, To::At(after), otherwise, u32::from(*port)));
        }
    }
    if filter.wanted == Wanted::Listeners {
        ops.push((load_half, To::Next, To::Next, DPORT_OFFSET));
        ops.push((jump_eq, To::Next, To::Drop, 0));
    }
    // Then: accept (what falls through every test), drop.
    let accept = ops.len();
    let drop = accept + 1;
    let mut program = Vec::with_capacity(drop + 1);
    for (i, (code, jt, jf, k)) in ops.into_iter().enumerate() {
        let offset = |to: To| {
            let target = match to {
                To::Next => i + 1,
                To::Drop => drop,
                To::At(n) => n,
            };
            u8::try_from(target - (i + 1)).ok()
        };
        let (jt, jf) = if code == jump_eq {
            (offset(jt)?, offset(jf)?)
        } else {
            (0, 0)
        };
        program.push(libc::sock_filter {
            code: code as u16,
            jt,
            jf,
            k,
        });
    }
    for k in [u32::MAX, 0] {
        program.push(libc::sock_filter {
            code: ret as u16,
            jt: 0,
            jf: 0,
            k,
        });
    }
    Some(program)
}

fn attach(socket: &Socket, program: &[libc::sock_filter]) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: setsockopt on a socket we own; the kernel copies the program
    // during the call, and fprog points at it for that long.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &fprog as *const libc::sock_fprog as *const libc::c_void,
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::test_skip as skip;
    use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// SO_LINGER 0: close sends a reset and destroys the socket at once (no
    /// TIME_WAIT), as a busy server's aborted connections do.
    pub(in crate::wait::tcp) fn reset_on_close(stream: &TcpStream) {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt on the test's own socket with a correctly sized value.
        let rc = unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &linger as *const libc::linger as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
    }

    /// Waits for the next announcement, bounded so a broken test fails
    /// instead of hanging.
    fn next(rt: &tokio::runtime::Runtime, closes: &mut Closes) -> Option<Closed> {
        rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(10), closes.next())
                .await
                .ok()
                .map(|r| r.unwrap())
        })
    }

    #[test]
    fn a_listener_closing_on_a_watched_port_is_announced_ipv4_and_ipv6() {
        let rt = runtime();
        let _guard = rt.enter();
        for any in [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()] {
            let Ok(listener) = TcpListener::bind(std::net::SocketAddr::new(any, 0)) else {
                skip::skipped(
                    "a_listener_closing_on_a_watched_port_is_announced",
                    &format!("no {any} here"),
                );
                continue;
            };
            let port = listener.local_addr().unwrap().port();
            let mut closes = Closes::subscribe(Filter::ports(&[port], Wanted::Listeners)).unwrap();
            assert!(closes.filtered);
            drop(listener);
            assert_eq!(next(&rt, &mut closes), Some(Closed::Seen), "{any}");
        }
    }

    #[test]
    fn the_filter_drops_other_ports_and_for_listeners_connections() {
        let rt = runtime();
        let _guard = rt.enter();
        let watched = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = watched.local_addr().unwrap().port();
        let other = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let mut closes = Closes::subscribe(Filter::ports(&[port], Wanted::Listeners)).unwrap();
        // Another port's listener, and connections on the watched port.
        drop(other);
        for _ in 0..3 {
            let client = TcpStream::connect(watched.local_addr().unwrap()).unwrap();
            let (server, _) = watched.accept().unwrap();
            drop(client);
            drop(server);
        }
        // Then the watched listener: the first thing the subscription reads
        // must be the announcement of that close, and only that one.
        drop(watched);
        assert_eq!(next(&rt, &mut closes), Some(Closed::Seen));
        let mut buf = [0u8; 8192];
        let left = closes.socket.get_ref().recv(&mut &mut buf[..], 0);
        assert_eq!(
            left.map_err(|e| e.kind()).err(),
            Some(io::ErrorKind::WouldBlock),
            "something else passed the filter"
        );
    }

    #[test]
    fn connections_closing_are_announced_for_the_connections_wait() {
        let rt = runtime();
        let _guard = rt.enter();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let mut closes = Closes::subscribe(Filter::ports(&[port], Wanted::Any)).unwrap();
        // RST both ends (linger 0), so both sockets are destroyed at once.
        reset_on_close(&server);
        drop(server);
        drop(client);
        assert_eq!(next(&rt, &mut closes), Some(Closed::Seen));
    }

    #[test]
    fn a_full_queue_is_reported_as_lost() {
        let rt = runtime();
        let _guard = rt.enter();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut closes = Closes::subscribe(Filter::ports(&[port], Wanted::Any)).unwrap();
        // The smallest queue the kernel allows holds a few announcements.
        closes.socket.get_ref().set_rx_buf_sz(0).unwrap();
        // A witness with the default queue: the kernel announces each close
        // to every subscriber in one go, so once the witness has read them
        // all, the small queue has overflowed.
        let mut witness = Closes::subscribe(Filter::ports(&[port], Wanted::Any)).unwrap();
        const CONNECTIONS: usize = 40;
        for _ in 0..CONNECTIONS {
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server, _) = listener.accept().unwrap();
            reset_on_close(&server);
            drop(server);
            drop(client);
        }
        // One announcement a connection: the server's end (the client's has
        // another local port).
        let read = rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(10), async {
                let mut read = 0;
                while read < CONNECTIONS {
                    let mut guard = witness.socket.readable().await.unwrap();
                    loop {
                        match guard.get_inner().recv(&mut &mut witness.buf[..], 0) {
                            Ok(_) => read += 1,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                guard.clear_ready();
                                break;
                            }
                            Err(e) => panic!("the witness lost announcements too: {e}"),
                        }
                    }
                }
                read
            })
            .await
        });
        assert_eq!(read, Ok(CONNECTIONS));
        assert_eq!(next(&rt, &mut closes), Some(Closed::Lost));
    }

    #[test]
    fn unfiltered_announcements_are_checked_the_same_way() {
        let rt = runtime();
        let _guard = rt.enter();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let other = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let mut closes = Closes::subscribe(Filter::ports(&[port], Wanted::Listeners)).unwrap();
        closes.filtered = false;
        // SAFETY: setsockopt on the test's own socket; SO_DETACH_FILTER
        // ignores its value, but the kernel wants an int's room.
        let zero: libc::c_int = 0;
        let rc = unsafe {
            libc::setsockopt(
                closes.socket.get_ref().as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_DETACH_FILTER,
                &zero as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
        // The other port's close is read and ignored; the watched one wakes.
        drop(other);
        drop(listener);
        assert_eq!(next(&rt, &mut closes), Some(Closed::Seen));
    }

    #[test]
    fn too_many_ports_for_one_program_go_unfiltered() {
        let ports: Vec<u16> = (1..=300).collect();
        assert!(program(&Filter::ports(&ports, Wanted::Any)).is_none());
        assert_eq!(
            program(&Filter::ports(&[1, 2], Wanted::Any)).unwrap().len(),
            5
        );
        assert_eq!(
            program(&Filter::ports(&[1, 2], Wanted::Listeners))
                .unwrap()
                .len(),
            7
        );
    }
}
