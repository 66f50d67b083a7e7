//! Sockets from the kernel's `sock_diag` netlink interface (see sock_diag(7)).
//!
//! One dump per watched port and address family, filtered in the kernel by
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

use super::{Socket, Source, State};
use crate::error::Error;
use netlink_packet_core::{
    Emitable, NetlinkBuffer, NetlinkHeader, NetlinkMessage, Parseable, NLMSG_DONE, NLMSG_ERROR,
    NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::{
    constants::{
        AF_INET, AF_INET6, IPPROTO_TCP, SOCK_DIAG_BY_FAMILY, TCP_CLOSE_WAIT, TCP_CLOSING,
        TCP_ESTABLISHED, TCP_FIN_WAIT1, TCP_LAST_ACK, TCP_LISTEN, TCP_SYN_RECV,
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
                &[
                    TCP_ESTABLISHED,
                    TCP_SYN_RECV,
                    TCP_CLOSE_WAIT,
                    TCP_FIN_WAIT1,
                    TCP_CLOSING,
                    TCP_LAST_ACK,
                ],
            ),
        }
    }

    /// One dump of both families with the original inet_diag request.
    fn dump_both(&mut self, state: State, port: u16, out: &mut Vec<Socket>) -> io::Result<()> {
        /// `struct inet_diag_req`, the original request (linux/inet_diag.h).
        /// netlink-packet-sock-diag speaks only its successor, so it is laid
        /// out here: family, src_len, dst_len, ext (u8 each); the socket id
        /// (sport, dport big-endian u16; src, dst 16 bytes each; interface
        /// u32; cookie 2 × u32); states u32; dbs u32. All zero but the port,
        /// the states and the cookie, which is INET_DIAG_NOCOOKIE (all ones).
        const REQUEST_LEN: usize = 60;
        let (flags, want) = Self::states(state);
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
        self.replies(TCPDIAG_GETSOCK, want, port, out)
    }

    /// One dump of one family with `SOCK_DIAG_BY_FAMILY`.
    fn dump(
        &mut self,
        family: u8,
        state: State,
        port: u16,
        out: &mut Vec<Socket>,
    ) -> io::Result<()> {
        let (flags, want) = Self::states(state);
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = self.sequence;
        let mut socket_id = if family == AF_INET {
            SocketId::new_v4()
        } else {
            SocketId::new_v6()
        };
        socket_id.source_port = port;
        let mut packet = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::empty(),
                states: flags,
                socket_id,
            })
            .into(),
        );
        packet.finalize();
        self.request.resize(packet.buffer_len(), 0);
        packet.serialize(&mut self.request);
        self.socket.send(&self.request, 0)?;
        self.replies(SOCK_DIAG_BY_FAMILY, want, port, out)
    }

    /// Reads the answers to the request just sent until the dump is done:
    /// each a `struct inet_diag_msg` of type `reply_type` (parsed by the
    /// crate), an error, or the end.
    fn replies(
        &mut self,
        reply_type: u16,
        want: &[u8],
        port: u16,
        out: &mut Vec<Socket>,
    ) -> io::Result<()> {
        loop {
            let size = self.socket.recv(&mut &mut self.reply[..], 0)?;
            let mut offset = 0;
            while offset < size {
                let message = NetlinkBuffer::new_checked(&self.reply[offset..size])
                    .map_err(|e| io::Error::other(format!("undecodable reply: {e}")))?;
                let length = message.length() as usize;
                // A late answer to an earlier request is not ours to count.
                if message.sequence_number() == self.sequence {
                    let payload = message.payload();
                    match message.message_type() {
                        NLMSG_DONE => return Ok(()),
                        NLMSG_ERROR => {
                            let code = payload
                                .get(..4)
                                .map_or(0, |c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
                            return Err(io::Error::from_raw_os_error(-code));
                        }
                        t if t == reply_type => {
                            let r = InetResponseHeader::parse(payload)
                                .map_err(|e| io::Error::other(format!("undecodable reply: {e}")))?;
                            // The kernel applied the state and port filters;
                            // both are checked again so that no other socket
                            // can ever count.
                            let addr = SocketAddr::new(
                                r.socket_id.source_address,
                                r.socket_id.source_port,
                            );
                            if want.contains(&r.state) && (port == 0 || addr.port() == port) {
                                out.push(Socket { addr, uid: r.uid });
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
    }
}

impl Source for SockDiag {
    fn name(&self) -> &'static str {
        "netlink"
    }

    fn sockets(&mut self, state: State, ports: &[u16], out: &mut Vec<Socket>) -> Result<(), Error> {
        let fail = |e: io::Error| Error::transient(format!("netlink sock_diag query: {e}"));
        // Port 0 in the request: every port.
        let every = [0];
        for &port in if ports.is_empty() { &every[..] } else { ports } {
            if self.compat {
                let before = out.len();
                match self.dump_both(state, port, out) {
                    Ok(()) => continue,
                    // Refused (a kernel without the original request): the
                    // per-family requests from now on. What a refused dump
                    // may have added is dropped.
                    Err(e)
                        if e.raw_os_error().is_some_and(|c| {
                            [libc::EINVAL, libc::ENOENT, libc::EOPNOTSUPP].contains(&c)
                        }) =>
                    {
                        out.truncate(before);
                        self.compat = false;
                    }
                    Err(e) => return Err(fail(e)),
                }
            }
            self.dump(AF_INET, state, port, out).map_err(fail)?;
            // A kernel built without IPv6 answers the AF_INET6 dump with ENOENT
            // (no handler for the family): it then has no IPv6 sockets to report.
            match self.dump(AF_INET6, state, port, out) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                other => other.map_err(fail)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// The one-walk request finds IPv4 and IPv6 listeners, only on the
    /// ports asked for, with their owner; the per-family requests agree.
    #[test]
    fn one_walk_for_both_families_finds_what_two_walks_find() {
        let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
        let Ok(v6) = TcpListener::bind("[::1]:0") else {
            println!("SKIPPED: one_walk_for_both_families: no IPv6 loopback here");
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
}
