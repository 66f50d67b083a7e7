//! Sockets from the kernel's `sock_diag` netlink interface (see sock_diag(7)).
//!
//! One dump per watched port, filtered in the kernel by
//! state (LISTEN for `tcp`, the serving states for `connections`) and by
//! local port (the request's `idiag_sport`, which the kernel has compared
//! since its first sock_diag): only the watched port's sockets are ever
//! sent, however many others the pod holds. For LISTEN the kernel walks
//! only its listening hash, so the cost stays flat however many connections
//! the host carries, unlike reading /proc/net/tcp. The netlink socket is
//! opened once and reused for every look.
//!
//! Each look is one request for both address families: the original
//! inet_diag request (`TCPDIAG_GETSOCK`), which the kernel still answers by
//! dumping with family `AF_UNSPEC` (`inet_diag_dump_compat`), so it walks
//! its socket tables once instead of once per family. That halves a
//! `connections` look, whose walk of the established hash (shared by every
//! namespace of the node) is most of its cost. A kernel that refuses it gets
//! the per-family `SOCK_DIAG_BY_FAMILY` requests instead, from then on.
//!
//! A socket a dump found can also be asked about again by its addresses
//! ([`SockDiag::recheck`]): an exact request, which the kernel answers with
//! a hash lookup instead of a walk. The `connections` wait looks that way
//! between walks ([`crate::wait::connections`]).

use super::{Socket, Source, State};
use crate::error::Error;
use netlink_packet_core::{
    Emitable, NetlinkBuffer, NetlinkHeader, NetlinkMessage, Parseable, NLMSG_DONE, NLMSG_ERROR,
    NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::{
    constants::{
        AF_INET, AF_INET6, IPPROTO_TCP, SOCK_DIAG_BY_FAMILY, TCP_CLOSE_WAIT, TCP_CLOSING,
        TCP_ESTABLISHED, TCP_FIN_WAIT1, TCP_LAST_ACK, TCP_LISTEN, TCP_SYN_RECV, TCP_SYN_SENT,
    },
    inet::{ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags},
    SockDiagMessage,
};
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket as NlSocket, SocketAddr as NlAddr};
use std::{io, net::SocketAddr};

/// `TCPDIAG_GETSOCK` (linux/inet_diag.h): the original request's type.
const TCPDIAG_GETSOCK: u16 = 18;

pub struct SockDiag {
    socket: NlSocket,
    sequence: u32,
    /// Whether the kernel answers the one-walk request (until it refuses).
    compat: bool,
    request: Vec<u8>,
    reply: Vec<u8>,
}

/// How long one read of the kernel's answers may take in all (each receive
/// is bounded by a second on its own): a failed look past it, retried.
const READ_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

impl SockDiag {
    /// Opens the netlink socket. Failing here (no sock_diag in this kernel,
    /// a seccomp filter) will not change by retrying: a permanent error.
    pub fn open() -> Result<Self, Error> {
        let fail = |e: std::io::Error| Error::permanent(format!("netlink sock_diag socket: {e}"));
        let mut socket = NlSocket::new(NETLINK_SOCK_DIAG).map_err(fail)?;
        socket.bind_auto().map_err(fail)?;
        socket.connect(&NlAddr::new(0, 0)).map_err(fail)?;
        // A look is synchronous; a kernel that does not answer must not hold
        // it past the wait's deadline: a receive gives up after a second (a
        // failed look, retried), and the deadline is checked between looks.
        let limit = libc::timeval {
            tv_sec: 1,
            tv_usec: 0,
        };
        // SAFETY: setsockopt on a socket we own, with a correctly sized value.
        let set = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&socket),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &limit as *const libc::timeval as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if set != 0 {
            return Err(fail(std::io::Error::last_os_error()));
        }
        Ok(Self {
            socket,
            sequence: 0,
            compat: true,
            request: Vec::new(),
            // Dumps arrive in datagrams of up to ~32 KiB; a short buffer would
            // truncate one and lose sockets silently.
            reply: vec![0; 64 * 1024],
        })
    }

    /// The states a look asks for (the kernel's filter) and accepts.
    fn states(state: State) -> (StateFlags, &'static [u8]) {
        match state {
            State::Listen => (StateFlags::LISTEN, &[TCP_LISTEN]),
            State::Connected => (
                StateFlags::ESTABLISHED
                    | StateFlags::SYN_RECV
                    | StateFlags::CLOSE_WAIT
                    | StateFlags::FIN_WAIT1
                    | StateFlags::CLOSING
                    | StateFlags::LAST_ACK,
                SERVING,
            ),
        }
    }

    /// One dump of both families with the original inet_diag request.
    fn dump_both(
        &mut self,
        flags: StateFlags,
        port: u16,
        out: &mut Vec<InetResponseHeader>,
    ) -> io::Result<()> {
        /// `struct inet_diag_req`, the original request (linux/inet_diag.h).
        /// netlink-packet-sock-diag speaks only its successor, so it is laid
        /// out here: family, src_len, dst_len, ext (u8 each); the socket id
        /// (sport, dport big-endian u16; src, dst 16 bytes each; interface
        /// u32; cookie 2 × u32); states u32; dbs u32. All zero but the port,
        /// the states and the cookie, which is INET_DIAG_NOCOOKIE (all ones).
        const REQUEST_LEN: usize = 60;
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.length = (16 + REQUEST_LEN) as u32;
        header.message_type = TCPDIAG_GETSOCK;
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = self.sequence;
        self.request.clear();
        self.request.resize(16 + REQUEST_LEN, 0);
        header.emit(&mut self.request[..16]);
        let body = &mut self.request[16..];
        body[4..6].copy_from_slice(&port.to_be_bytes());
        body[44..52].fill(0xff);
        body[52..56].copy_from_slice(&flags.bits().to_ne_bytes());
        self.socket.send(&self.request, 0)?;
        self.replies(TCPDIAG_GETSOCK, 1, None, &mut |_, r| {
            out.push(r);
            Ok(())
        })
    }

    /// A `SOCK_DIAG_BY_FAMILY` request for TCP sockets, appended to the
    /// request buffer: a dump of one family (`id` holds the port) or, with
    /// `exact`, the one socket `id` names.
    fn push_request(&mut self, family: u8, flags: StateFlags, id: SocketId, exact: bool) {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | if exact { 0 } else { NLM_F_DUMP };
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::empty(),
                states: flags,
                socket_id: id,
            })
            .into(),
        );
        packet.finalize();
        let start = self.request.len();
        self.request.resize(start + packet.buffer_len(), 0);
        packet.serialize(&mut self.request[start..]);
    }

    /// One dump of one family with `SOCK_DIAG_BY_FAMILY`.
    fn dump(
        &mut self,
        family: u8,
        flags: StateFlags,
        port: u16,
        out: &mut Vec<InetResponseHeader>,
    ) -> io::Result<()> {
        let mut id = if family == AF_INET {
            SocketId::new_v4()
        } else {
            SocketId::new_v6()
        };
        id.source_port = port;
        self.request.clear();
        self.push_request(family, flags, id, false);
        self.socket.send(&self.request, 0)?;
        self.replies(SOCK_DIAG_BY_FAMILY, 1, None, &mut |_, r| {
            out.push(r);
            Ok(())
        })
    }

    /// Reads the answers to the `count` requests just sent (sequence numbers
    /// up to `self.sequence`) until each has ended. Each socket, a `struct
    /// inet_diag_msg` of type `reply_type` parsed by the crate, goes to
    /// `sink` with the index of its request. A dump ends with its end
    /// message, and an error answer ends the whole read with that error.
    /// Given `exact` (the requests name one socket each), a request ends with
    /// its one socket or its error, which is kept in `exact` with the
    /// request's index.
    fn replies(
        &mut self,
        reply_type: u16,
        count: u32,
        mut exact: Option<&mut Vec<(u32, io::Error)>>,
        sink: &mut dyn FnMut(u32, InetResponseHeader) -> io::Result<()>,
    ) -> io::Result<()> {
        let first = self.sequence.wrapping_sub(count - 1);
        let mut open = count;
        // Every receive is bounded by SO_RCVTIMEO, but a socket that keeps
        // answering without ever completing (a seccomp filter can make
        // recv return 0 at once, forever) must not hold the look either:
        // the read as a whole has a bound too, and an empty datagram, which
        // the kernel never sends, fails it at once.
        let give_up = std::time::Instant::now() + READ_LIMIT;
        while open > 0 {
            if std::time::Instant::now() >= give_up {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no complete sock_diag answer within {READ_LIMIT:?}"),
                ));
            }
            let size = self.socket.recv(&mut &mut self.reply[..], 0)?;
            if size == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the sock_diag socket returned an empty datagram",
                ));
            }
            let mut offset = 0;
            while offset < size {
                let message = NetlinkBuffer::new_checked(&self.reply[offset..size])
                    .map_err(|e| io::Error::other(format!("undecodable reply: {e}")))?;
                let length = message.length() as usize;
                // A late answer to an earlier request is not ours to count.
                let index = message.sequence_number().wrapping_sub(first);
                if index < count {
                    let payload = message.payload();
                    match message.message_type() {
                        NLMSG_DONE => open -= 1,
                        NLMSG_ERROR => {
                            let code = payload
                                .get(..4)
                                .map_or(0, |c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
                            let error = io::Error::from_raw_os_error(-code);
                            let Some(errors) = exact.as_deref_mut() else {
                                return Err(error);
                            };
                            open -= 1;
                            errors.push((index, error));
                        }
                        t if t == reply_type => {
                            let r = InetResponseHeader::parse(payload)
                                .map_err(|e| io::Error::other(format!("undecodable reply: {e}")))?;
                            sink(index, r)?;
                            if exact.is_some() {
                                open -= 1;
                            }
                        }
                        _ => {}
                    }
                }
                if length == 0 {
                    break;
                }
                offset += length;
            }
        }
        Ok(())
    }

    /// The sockets in the states `flags` asks for on one port (every port
    /// if 0), both families: one walk if the kernel answers the original
    /// request, else one per family.
    fn dump_port(
        &mut self,
        flags: StateFlags,
        port: u16,
        out: &mut Vec<InetResponseHeader>,
    ) -> io::Result<()> {
        if self.compat {
            let before = out.len();
            match self.dump_both(flags.clone(), port, out) {
                Ok(()) => return Ok(()),
                // Refused (a kernel without the original request): the
                // per-family requests from now on. What a refused dump may
                // have added is dropped.
                Err(e)
                    if e.raw_os_error().is_some_and(|c| {
                        [libc::EINVAL, libc::ENOENT, libc::EOPNOTSUPP].contains(&c)
                    }) =>
                {
                    out.truncate(before);
                    self.compat = false;
                }
                Err(e) => return Err(e),
            }
        }
        self.dump(AF_INET, flags.clone(), port, out)?;
        // A kernel built without IPv6 answers the AF_INET6 dump with ENOENT
        // (no handler for the family): it then has no IPv6 sockets to report.
        match self.dump(AF_INET6, flags, port, out) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Each port's sockets in `flags`, as the kernel describes them. The
    /// kernel applied the state and port filters; the port is checked again
    /// here, so that no other socket can ever count.
    fn each_port(
        &mut self,
        flags: StateFlags,
        ports: &[u16],
    ) -> Result<Vec<InetResponseHeader>, Error> {
        let fail = |e: io::Error| Error::transient(format!("netlink sock_diag query: {e}"));
        let mut found = Vec::new();
        // Port 0 in the request: every port.
        let every = [0];
        for &port in if ports.is_empty() { &every[..] } else { ports } {
            let before = found.len();
            self.dump_port(flags.clone(), port, &mut found)
                .map_err(fail)?;
            if port != 0 {
                let mut i = before;
                while i < found.len() {
                    if found[i].socket_id.source_port == port {
                        i += 1;
                    } else {
                        found.swap_remove(i);
                    }
                }
            }
        }
        Ok(found)
    }

    /// The connections on `ports` that the app still serves (`serving`),
    /// and every socket that a [`SockDiag::recheck`] must find gone before
    /// the ports can be free of them (`known`): the serving ones, and
    /// connections the app is still opening from a watched port (SYN_SENT),
    /// which will serve once they are open.
    pub fn connections(
        &mut self,
        ports: &[u16],
        serving: &mut Vec<Socket>,
        known: &mut Vec<Known>,
    ) -> Result<(), Error> {
        let (flags, _) = Self::states(State::Connected);
        for r in self.each_port(flags | StateFlags::SYN_SENT, ports)? {
            if !SERVING.contains(&r.state) && r.state != TCP_SYN_SENT {
                continue;
            }
            if SERVING.contains(&r.state) {
                serving.push(Socket {
                    addr: SocketAddr::new(r.socket_id.source_address, r.socket_id.source_port),
                    uid: r.uid,
                    inode: r.inode.into(),
                });
            }
            let mut id = r.socket_id;
            // Found again by its addresses alone (INET_DIAG_NOCOOKIE): a
            // connection being accepted is replaced in the kernel's table by
            // a new socket with the same addresses and another cookie, and
            // that one must still be found.
            id.cookie = [0xff; 8];
            known.push(Known {
                family: r.family,
                id,
            });
        }
        Ok(())
    }

    /// Looks up each of `known` again, by its addresses, in one batch of
    /// exact requests (answered in microseconds each, however many other
    /// sockets the node holds: no table is walked). For each, in order: the
    /// state of the socket now holding those addresses, or None when there
    /// is none.
    pub fn recheck(&mut self, known: &[Known]) -> Result<Vec<Option<u8>>, Error> {
        let fail = |e: io::Error| Error::transient(format!("netlink sock_diag lookup: {e}"));
        let mut states = vec![None; known.len()];
        if known.is_empty() {
            return Ok(states);
        }
        self.request.clear();
        for k in known {
            self.push_request(k.family, StateFlags::all(), k.id.clone(), true);
        }
        self.socket.send(&self.request, 0).map_err(fail)?;
        let mut errors = Vec::new();
        let count = known.len() as u32;
        self.replies(
            SOCK_DIAG_BY_FAMILY,
            count,
            Some(&mut errors),
            &mut |i, r| {
                // The kernel answers a lookup with the socket those addresses
                // lead to, which can be a listener on the port when the
                // connection has gone: a listener is no connection.
                if r.socket_id.source_port == known[i as usize].id.source_port
                    && r.socket_id.destination_port == known[i as usize].id.destination_port
                {
                    states[i as usize] = Some(r.state);
                }
                Ok(())
            },
        )
        .map_err(fail)?;
        // No socket with those addresses: ENOENT. Anything else is a
        // failed look, never "gone".
        if let Some((_, e)) = errors
            .into_iter()
            .find(|(_, e)| e.raw_os_error() != Some(libc::ENOENT))
        {
            return Err(fail(e));
        }
        Ok(states)
    }
}

/// The states of a connection the app still serves (see [`State::Connected`]).
pub const SERVING: &[u8] = &[
    TCP_ESTABLISHED,
    TCP_SYN_RECV,
    TCP_CLOSE_WAIT,
    TCP_FIN_WAIT1,
    TCP_CLOSING,
    TCP_LAST_ACK,
];

/// A socket as the kernel can be asked about it again: its family and its
/// addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    family: u8,
    id: SocketId,
}

impl Known {
    /// Its local port.
    pub fn port(&self) -> u16 {
        self.id.source_port
    }
}

impl Source for SockDiag {
    fn name(&self) -> &'static str {
        "netlink"
    }

    fn sockets(&mut self, state: State, ports: &[u16], out: &mut Vec<Socket>) -> Result<(), Error> {
        let (flags, want) = Self::states(state);
        for r in self.each_port(flags, ports)? {
            if want.contains(&r.state) {
                out.push(Socket {
                    addr: SocketAddr::new(r.socket_id.source_address, r.socket_id.source_port),
                    uid: r.uid,
                    inode: r.inode.into(),
                });
            }
        }
        Ok(())
    }

    fn sock_diag(&mut self) -> Option<&mut SockDiag> {
        Some(self)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_skip as skip;
    use std::net::TcpListener;

    /// The one-walk request finds IPv4 and IPv6 listeners, only on the
    /// ports asked for, with their owner; the per-family requests agree.
    #[test]
    fn one_walk_for_both_families_finds_what_two_walks_find() {
        let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
        let Ok(v6) = TcpListener::bind("[::1]:0") else {
            skip::skipped("one_walk_for_both_families", "no IPv6 loopback here");
            return;
        };
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let ports = [
            v4.local_addr().unwrap().port(),
            v6.local_addr().unwrap().port(),
        ];
        let mut diag = SockDiag::open().unwrap();
        let mut one = Vec::new();
        diag.sockets(State::Listen, &ports, &mut one).unwrap();
        assert!(diag.compat, "the kernel refused the original request");
        diag.compat = false;
        let mut two = Vec::new();
        diag.sockets(State::Listen, &ports, &mut two).unwrap();
        let key = |s: &Socket| (s.addr, s.uid);
        one.sort_by_key(key);
        two.sort_by_key(key);
        assert_eq!(one, two);
        let mut want = vec![v4.local_addr().unwrap(), v6.local_addr().unwrap()];
        want.sort();
        assert_eq!(one.iter().map(|s| s.addr).collect::<Vec<_>>(), want);
        assert!(one.iter().all(|s| s.uid == unsafe { libc::getuid() }));
        assert!(!one.iter().any(|s| s.addr == other.local_addr().unwrap()));
    }

    /// A connection the walk found is found again by its addresses while it
    /// lasts (IPv4 and IPv6), and not once it has gone, even though a
    /// listener on its port still answers a lookup of those addresses.
    #[test]
    fn a_walked_connection_is_looked_up_until_it_goes() {
        use std::net::TcpStream;
        // IPv4, IPv6, and IPv4 through a dual-stack listener (an IPv6 socket
        // with IPv4-mapped addresses).
        for (any, to) in [
            ("127.0.0.1:0", "127.0.0.1"),
            ("[::1]:0", "::1"),
            ("[::]:0", "127.0.0.1"),
        ] {
            let Ok(listener) = TcpListener::bind(any) else {
                skip::skipped(
                    "a_walked_connection_is_looked_up",
                    &format!("no {any} here"),
                );
                continue;
            };
            let port = listener.local_addr().unwrap().port();
            let to: std::net::IpAddr = to.parse().unwrap();
            let client = TcpStream::connect((to, port)).unwrap();
            let (server, _) = listener.accept().unwrap();
            let mut diag = SockDiag::open().unwrap();
            let (mut serving, mut known) = (Vec::new(), Vec::new());
            diag.connections(&[port], &mut serving, &mut known).unwrap();
            assert_eq!(serving.len(), 1, "{any}: {serving:?}");
            assert_eq!(serving[0].addr, server.local_addr().unwrap());
            assert_eq!(known.len(), 1);
            assert_eq!(known[0].port(), port);
            assert_eq!(diag.recheck(&known).unwrap(), [Some(TCP_ESTABLISHED)]);
            // The client leaves: the app's end is half-closed, still serving.
            drop(client);
            let state = diag.recheck(&known).unwrap();
            assert!(state[0].is_some_and(|s| SERVING.contains(&s)), "{state:?}");
            // The app aborts it (SO_LINGER 0): a reset, and the socket is
            // destroyed within close().
            super::super::events::tests::reset_on_close(&server);
            drop(server);
            assert_eq!(diag.recheck(&known).unwrap(), [None], "{any}");
            // Many at once: one batch, answers in order.
            let twice = [known[0].clone(), known[0].clone()];
            assert_eq!(diag.recheck(&twice).unwrap(), [None, None]);
        }
    }
}
