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

use super::{Socket, Source, State};
use crate::error::Error;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::{
    constants::{
        AF_INET, AF_INET6, IPPROTO_TCP, TCP_CLOSE_WAIT, TCP_CLOSING, TCP_ESTABLISHED,
        TCP_FIN_WAIT1, TCP_LAST_ACK, TCP_LISTEN, TCP_SYN_RECV,
    },
    inet::{ExtensionFlags, InetRequest, SocketId, StateFlags},
    SockDiagMessage,
};
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket as NlSocket, SocketAddr as NlAddr};
use std::{io, net::SocketAddr};

pub struct SockDiag {
    socket: NlSocket,
    sequence: u32,
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
            request: Vec::new(),
            // Dumps arrive in datagrams of up to ~32 KiB; a short buffer would
            // truncate one and lose sockets silently.
            reply: vec![0; 64 * 1024],
        })
    }

    fn dump(
        &mut self,
        family: u8,
        state: State,
        port: u16,
        out: &mut Vec<Socket>,
    ) -> io::Result<()> {
        let (flags, want): (StateFlags, &[u8]) = match state {
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
        };
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

        loop {
            let size = self.socket.recv(&mut &mut self.reply[..], 0)?;
            let mut offset = 0;
            while offset < size {
                let message =
                    <NetlinkMessage<SockDiagMessage>>::deserialize(&self.reply[offset..size])
                        .map_err(|e| io::Error::other(format!("undecodable reply: {e}")))?;
                let length = message.header.length as usize;
                // A late answer to an earlier request is not ours to count.
                if message.header.sequence_number == self.sequence {
                    match message.payload {
                        // The kernel applied the state filter; the state is
                        // checked again so that no other socket can ever count.
                        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r))
                            if want.contains(&r.header.state) =>
                        {
                            let id = &r.header.socket_id;
                            out.push(Socket {
                                addr: SocketAddr::new(id.source_address, id.source_port),
                                uid: r.header.uid,
                            });
                        }
                        NetlinkPayload::Done(_) => return Ok(()),
                        NetlinkPayload::Error(e) => return Err(e.to_io()),
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
