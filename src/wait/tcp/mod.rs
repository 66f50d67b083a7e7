//! `graceful-wait tcp`: returns when no TCP socket in this network namespace
//! LISTENs on the watched port(s). The socket tables it reads also serve the
//! `connections` wait ([`super::connections`]), which counts the
//! connections the app still serves instead.
//!
//! All containers of a pod share one network namespace, so the proxy's hook
//! sees the app's sockets here. Two sources give the same answer:
//!
//! - [`netlink`]: a `sock_diag` dump filtered in the kernel by state and port.
//!   Its cost does not grow with the pod's other sockets. With it, the wait
//!   is woken by [`events`]: the kernel announces each socket it destroys, so
//!   the wait looks again the moment a watched port's socket closes, and
//!   otherwise only every interval (2s by default) as a safety net.
//! - [`procnet`]: `/proc/net/tcp` and `/proc/net/tcp6`, for kernels or sandboxes
//!   where `NETLINK_SOCK_DIAG` is unavailable. Reading them makes the kernel walk
//!   the whole host-wide established hash, which is why it is the fallback.
//!
//! Only the local port of a socket in the wanted state counts: not a remote
//! port, not another state, not UDP (neither source lists UDP), not a port
//! that merely shares digits. A failed look is an error, never "port closed".

pub mod events;
pub mod netlink;
pub mod procnet;

use super::{Schedule, Wait};
use crate::{error::Error, retry::Look};
use events::{Closed, Closes, Wanted};
use graceful_wait_shared::cli::{SocketArgs, SocketSource, TcpArgs};
use std::{net::SocketAddr, path::PathBuf};

/// The TCP state a wait looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// A listener: the app still accepts connections.
    Listen,
    /// A connection the app still serves: data may still flow from it.
    /// ESTABLISHED; SYN_RECV (being accepted); CLOSE_WAIT (the client has
    /// half-closed, the app still writes its answer); FIN_WAIT1, CLOSING and
    /// LAST_ACK (the app has closed, its last bytes are not yet acknowledged).
    /// Not FIN_WAIT2 or TIME_WAIT: the app's side is done.
    Connected,
}

/// One socket of the pod: its local address, the user that owns it, and its
/// inode (what a process's `/proc/PID/fd` links to as `socket:[INODE]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Socket {
    pub addr: SocketAddr,
    pub uid: u32,
    pub inode: u64,
}

/// A table of the pod's TCP sockets in one state, IPv4 and IPv6 — those on
/// `ports` (every port if empty), and maybe others (which the caller then
/// leaves out, as [`busy_ports`] does).
pub trait Source {
    fn name(&self) -> &'static str;
    fn sockets(&mut self, state: State, ports: &[u16], out: &mut Vec<Socket>) -> Result<(), Error>;
    /// The netlink source's own questions, which /proc cannot answer.
    fn sock_diag(&mut self) -> Option<&mut netlink::SockDiag> {
        None
    }
}

/// The ports of `wanted` that some socket's local address has, in `wanted` order.
pub fn busy_ports(sockets: &[Socket], wanted: &[u16]) -> Vec<u16> {
    wanted
        .iter()
        .copied()
        .filter(|p| sockets.iter().any(|s| s.addr.port() == *p))
        .collect()
}

/// Reads ports through one source, switching from netlink to /proc once if
/// netlink fails under `auto`.
pub struct Sockets {
    choice: SocketSource,
    source: Box<dyn Source>,
    proc_net: PathBuf,
    buf: Vec<Socket>,
}

impl Sockets {
    /// Opens the source the flags choose.
    pub fn open(args: &SocketArgs) -> Result<Self, Error> {
        let proc_net = args.proc_net.clone();
        let source: Box<dyn Source> = match args.source {
            SocketSource::Proc => Box::new(procnet::ProcNet::new(proc_net.clone())),
            SocketSource::Netlink => Box::new(netlink::SockDiag::open()?),
            SocketSource::Auto => match netlink::SockDiag::open() {
                Ok(s) => Box::new(s),
                Err(e) => {
                    tracing::warn!(error = %e, "netlink sock_diag unavailable, reading /proc/net instead");
                    Box::new(procnet::ProcNet::new(proc_net.clone()))
                }
            },
        };
        Ok(Self {
            choice: args.source,
            source,
            proc_net,
            buf: Vec::new(),
        })
    }

    pub fn source_name(&self) -> &'static str {
        self.source.name()
    }

    /// The netlink source, while it is the one in use.
    pub fn sock_diag(&mut self) -> Option<&mut netlink::SockDiag> {
        self.source.sock_diag()
    }

    /// The ports of `wanted` that still have a socket in `state`.
    pub fn busy(&mut self, state: State, wanted: &[u16]) -> Result<Vec<u16>, Error> {
        Ok(busy_ports(self.read(state, wanted)?, wanted))
    }

    /// The sockets in `state` on `ports` (every port if empty), and maybe others.
    pub fn read(&mut self, state: State, ports: &[u16]) -> Result<&[Socket], Error> {
        self.buf.clear();
        match self.source.sockets(state, ports, &mut self.buf) {
            Ok(()) => Ok(&self.buf),
            Err(e) if self.choice == SocketSource::Auto && self.source.name() == "netlink" => {
                tracing::warn!(error = %e, "netlink query failed, reading /proc/net from now on");
                self.source = Box::new(procnet::ProcNet::new(self.proc_net.clone()));
                self.read(state, ports)
            }
            Err(e) => Err(e),
        }
    }
}

/// A wait on the pod's sockets: done when no watched port has a socket in
/// the state (LISTEN for `tcp`, the serving states for `connections`).
pub struct SocketWait {
    sockets: Sockets,
    state: State,
    ports: Vec<u16>,
    closes: Option<Closes>,
}

impl SocketWait {
    pub fn open(state: State, ports: &[u16], sockets: &SocketArgs) -> Result<SocketWait, Error> {
        let wanted = match state {
            State::Listen => Wanted::Listeners,
            State::Connected => Wanted::Any,
        };
        // Subscribed first: a close between this and the first look is
        // announced, so it cannot be missed.
        let closes = subscribe_for(sockets, events::Filter::ports(ports, wanted));
        Ok(SocketWait {
            sockets: Sockets::open(sockets)?,
            state,
            ports: ports.to_vec(),
            closes,
        })
    }

    /// The watched ports.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// The netlink source, while it is the one in use.
    pub fn sock_diag(&mut self) -> Option<&mut netlink::SockDiag> {
        self.sockets.sock_diag()
    }
}

/// [`subscribe`] for a wait that reads the pod's sockets: none when it reads
/// /proc, which means no netlink at all (the wait then polls).
pub fn subscribe_for(sockets: &SocketArgs, filter: events::Filter) -> Option<Closes> {
    match sockets.source {
        SocketSource::Proc => None,
        SocketSource::Auto | SocketSource::Netlink => subscribe(filter),
    }
}

/// Subscribes to the closes `filter` wants; None (said in a warning) where
/// this kernel or sandbox has no sock_diag multicast.
pub fn subscribe(filter: events::Filter) -> Option<Closes> {
    Closes::subscribe(filter)
        .inspect_err(|e| {
            tracing::warn!(error = %e, "socket close events unavailable, looking every interval instead")
        })
        .ok()
}

/// Resolves when a watched socket has closed since the last look (or
/// announcements were lost, or the subscription failed: each means "look
/// again"); never without a subscription.
pub async fn closed(closes: &mut Option<Closes>) {
    let Some(subscription) = closes else {
        return std::future::pending().await;
    };
    match subscription.next().await {
        Ok(Closed::Seen) => tracing::debug!("a watched socket closed; looking again"),
        Ok(Closed::Lost) => {
            tracing::debug!("socket close events were lost (queue full); looking again")
        }
        Err(e) => {
            tracing::warn!(error = %e, "socket close events failed, looking every interval from now on");
            *closes = None;
        }
    }
}

/// The tcp wait: done when no watched port has a listener.
pub fn open(args: &TcpArgs) -> Result<SocketWait, Error> {
    SocketWait::open(State::Listen, &args.ports, &args.sockets)
}

impl Wait for SocketWait {
    fn event_driven(&self) -> bool {
        self.closes.is_some()
    }

    fn announce(&self, schedule: &Schedule) {
        let what = match self.state {
            State::Listen => "waiting until no socket listens on the port(s)",
            State::Connected => "waiting until no connection remains on the port(s)",
        };
        tracing::info!(
            ports = ?self.ports,
            source = self.sockets.source_name(),
            events = self.closes.is_some(),
            timeout_ms = schedule.timeout_ms(),
            interval_ms = schedule.interval_ms(),
            "{what}"
        );
    }

    async fn look(&mut self) -> Result<Look, Error> {
        let busy = self.sockets.busy(self.state, &self.ports)?;
        let (busy_text, done_text) = match self.state {
            State::Listen => ("listening on", "no listener on"),
            State::Connected => ("connections on", "no connection on"),
        };
        Ok(if busy.is_empty() {
            Look::Done(format!("{done_text} {:?}", self.ports))
        } else {
            tracing::debug!(?busy, "looked");
            Look::Pending(format!("{busy_text} {busy:?}"))
        })
    }

    async fn changed(&mut self) {
        closed(&mut self.closes).await
    }
}

#[cfg(test)]
mod tests {
    use super::{busy_ports, Socket};

    #[test]
    fn only_exact_ports_count() {
        let listeners = ["0.0.0.0:2000", "[::]:20001"].map(|a| Socket {
            addr: a.parse().unwrap(),
            uid: 0,
            inode: 0,
        });
        assert!(busy_ports(&listeners, &[20000]).is_empty());
        assert_eq!(busy_ports(&listeners, &[20001, 2000, 20000]), [20001, 2000]);
    }
}
