//! Which TCP ports have a socket in state LISTEN (for `tcp`) or ESTABLISHED
//! (for `connections`) in this network namespace.
//!
//! All containers of a pod share one network namespace, so the proxy's hook
//! sees the app's listeners here. Two sources give the same answer:
//!
//! - [`netlink`]: a `sock_diag` dump with a kernel-side LISTEN filter. Its cost
//!   does not grow with the number of connections on the host.
//! - [`procnet`]: `/proc/net/tcp` and `/proc/net/tcp6`, for kernels or sandboxes
//!   where `NETLINK_SOCK_DIAG` is unavailable. Reading them makes the kernel walk
//!   the whole host-wide established hash, which is why it is the fallback.
//!
//! Only the local port of a LISTEN socket counts: not a remote port, not an
//! ESTABLISHED socket, not UDP (neither source lists UDP), not a port that
//! merely shares digits. An error is an error, never "port closed".

pub mod netlink;
pub mod procnet;

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr};

/// Which source to read listeners from (`--source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// netlink, falling back to /proc when netlink cannot be used.
    Auto,
    Netlink,
    Proc,
}

impl FromStr for SourceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "netlink" => Ok(Self::Netlink),
            "proc" => Ok(Self::Proc),
            _ => Err(format!("'{s}' is not a source; use auto, netlink or proc")),
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Netlink => "netlink",
            Self::Proc => "proc",
        })
    }
}

/// The TCP state a wait looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// A listener: the app still accepts connections.
    Listen,
    /// A connection: a client is still being served.
    Established,
}

/// The local addresses of every TCP socket in one state (IPv4 and IPv6).
pub trait SocketSource {
    fn name(&self) -> &'static str;
    fn sockets(&mut self, state: State, out: &mut Vec<SocketAddr>) -> Result<(), String>;
}

/// The ports of `wanted` that some socket's local address has, in `wanted` order.
pub fn busy_ports(listeners: &[SocketAddr], wanted: &[u16]) -> Vec<u16> {
    wanted
        .iter()
        .copied()
        .filter(|p| listeners.iter().any(|l| l.port() == *p))
        .collect()
}

/// Checks ports through one source, switching from netlink to /proc once if
/// netlink fails under `auto`.
pub struct Checker {
    kind: SourceKind,
    source: Box<dyn SocketSource>,
    proc_net: PathBuf,
    buf: Vec<SocketAddr>,
}

impl Checker {
    /// Opens the source. `proc_net` is the folder holding `tcp` and `tcp6`.
    pub fn open(kind: SourceKind, proc_net: PathBuf) -> Result<Self, String> {
        let source: Box<dyn SocketSource> = match kind {
            SourceKind::Proc => Box::new(procnet::ProcNet::new(proc_net.clone())),
            SourceKind::Netlink => Box::new(netlink::SockDiag::open()?),
            SourceKind::Auto => match netlink::SockDiag::open() {
                Ok(s) => Box::new(s),
                Err(e) => {
                    tracing::warn!(error = %e, "netlink sock_diag unavailable, reading /proc/net instead");
                    Box::new(procnet::ProcNet::new(proc_net.clone()))
                }
            },
        };
        Ok(Self {
            kind,
            source,
            proc_net,
            buf: Vec::new(),
        })
    }

    pub fn source_name(&self) -> &'static str {
        self.source.name()
    }

    /// The ports of `wanted` that still have a socket in `state`.
    pub fn busy(&mut self, state: State, wanted: &[u16]) -> Result<Vec<u16>, String> {
        self.buf.clear();
        match self.source.sockets(state, &mut self.buf) {
            Ok(()) => Ok(busy_ports(&self.buf, wanted)),
            Err(e) if self.kind == SourceKind::Auto && self.source.name() == "netlink" => {
                tracing::warn!(error = %e, "netlink query failed, reading /proc/net from now on");
                self.source = Box::new(procnet::ProcNet::new(self.proc_net.clone()));
                self.busy(state, wanted)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::busy_ports;

    #[test]
    fn only_exact_ports_count() {
        let listeners = [
            "0.0.0.0:2000".parse().unwrap(),
            "[::]:20001".parse().unwrap(),
        ];
        assert!(busy_ports(&listeners, &[20000]).is_empty());
        assert_eq!(busy_ports(&listeners, &[20001, 2000, 20000]), [20001, 2000]);
    }
}
