//! `graceful-wait connections`: returns when no TCP connection the app still
//! serves has the watched local port(s) — ESTABLISHED, SYN_RECV, CLOSE_WAIT,
//! FIN_WAIT1, CLOSING, LAST_ACK (see [`State::Connected`]): the clients being
//! served have gone (the inbound drain is over). The same socket tables and
//! wait as `tcp` ([`super::tcp`]), counting connections instead of listeners.
//!
//! # Looking without walking the node's table
//!
//! The kernel lists connections only by walking its established hash, which
//! every network namespace of the node shares (262,144 buckets on a small
//! node): about a millisecond a look, however few connections the pod has.
//! So, with netlink, a walk is done only when the answer may have become
//! "none left"; otherwise the connections the last walk found are looked up
//! again one by one, by their addresses, which costs microseconds:
//!
//! - While one of them still serves, the ports are busy: a new connection
//!   can only add to that.
//! - When all of them have gone, the ports are free only if no connection
//!   on them can have opened since that walk. A connection opens in one of
//!   two ways, and the namespace counts both (`/proc/net/snmp`, `Tcp:`):
//!   `ActiveOpens` when it connects out (a watched port's socket still
//!   connecting at the walk, SYN_SENT, is kept and looked up too), and
//!   `PassiveOpens` when an accepted one is created, before it replaces its
//!   handshake entry under the same addresses (so a handshake the walk found
//!   is followed by its addresses, into the connection). A connection still
//!   in its handshake is not counted yet, and needs a listener on the port:
//!   so the ports are free when the counters are what they were just before
//!   the walk and nothing listens on them now. Otherwise the wait walks.
//!
//! The counters are the namespace's, so any other connection opening in the
//! pod also sends the wait to a walk: it is never wrong, only slower, in a
//! busy pod. Where `/proc/net/snmp` cannot be read, or a walk finds more
//! than [`MAX_KNOWN`] connections, every look walks.

use super::tcp::{
    busy_ports,
    netlink::{Known, SockDiag, SERVING},
    SocketWait, State,
};
use super::{Schedule, Wait};
use crate::{error::Error, retry::Look};
use graceful_wait_shared::cli::ConnectionsArgs;
use netlink_packet_sock_diag::constants::TCP_SYN_SENT;

/// Above this many connections a walk is cheaper than asking about each.
pub const MAX_KNOWN: usize = 64;

/// The namespace's counters of TCP connections opened (`/proc/net/snmp`).
const SNMP: &str = "/proc/net/snmp";

pub fn open(args: &ConnectionsArgs) -> Result<ConnectionsWait, Error> {
    Ok(ConnectionsWait {
        sockets: SocketWait::open(State::Connected, &args.ports, &args.sockets)?,
        since: None,
    })
}

/// The connections wait: a [`SocketWait`] for [`State::Connected`] that
/// walks the kernel's table only when it must (see the module's text).
pub struct ConnectionsWait {
    sockets: SocketWait,
    /// What the last walk found, while the lookups can stand in for a walk.
    since: Option<Walked>,
}

/// What a walk found, and the counters read just before it.
struct Walked {
    known: Vec<Known>,
    opens: Opens,
}

/// Connections opened in this network namespace so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Opens {
    active: u64,
    passive: u64,
}

impl Opens {
    /// None where the counters cannot be read: every look then walks.
    fn read() -> Option<Opens> {
        let opens = std::fs::read_to_string(SNMP)
            .map_err(|e| e.to_string())
            .and_then(|text| Opens::parse(&text).ok_or_else(|| "no Tcp: counters".into()));
        opens
            .inspect_err(
                |e| tracing::debug!(error = %e, "cannot read {SNMP}; every look walks the table"),
            )
            .ok()
    }

    /// The two counters from the text of `/proc/net/snmp`: its `Tcp:` lines,
    /// one of names and one of values. Read here rather than with
    /// procfs-core's `Snmp`, which parses every one of the file's hundred
    /// counters into a map: twice the time, in the path from the last close
    /// to the release, and 48 KB of the binary, for two numbers (a test
    /// checks both readings agree).
    fn parse(text: &str) -> Option<Opens> {
        let mut tcp = text.lines().filter_map(|l| l.strip_prefix("Tcp:"));
        let (names, values) = (tcp.next()?, tcp.next()?);
        let (mut active, mut passive) = (None, None);
        for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
            match name {
                "ActiveOpens" => active = value.parse().ok(),
                "PassiveOpens" => passive = value.parse().ok(),
                _ => {}
            }
        }
        Some(Opens {
            active: active?,
            passive: passive?,
        })
    }
}

impl ConnectionsWait {
    /// A look without a walk, from the last walk's connections: Some when
    /// it decides, None when only a walk can.
    fn lookup(
        diag: &mut SockDiag,
        walked: &mut Walked,
        ports: &[u16],
    ) -> Result<Option<Look>, Error> {
        let states = diag.recheck(&walked.known)?;
        let serves = |s: &Option<u8>| s.is_some_and(|s| SERVING.contains(&s));
        let opening = |s: &Option<u8>| *s == Some(TCP_SYN_SENT);
        if states.iter().any(serves) {
            let busy: Vec<u16> = ports
                .iter()
                .copied()
                .filter(|p| {
                    (walked.known.iter().zip(&states)).any(|(k, s)| k.port() == *p && serves(s))
                })
                .collect();
            // The gone ones are not asked about again.
            let mut keep = states.iter().map(|s| serves(s) || opening(s));
            walked.known.retain(|_| keep.next().unwrap_or(false));
            tracing::debug!(?busy, "looked up");
            return Ok(Some(Look::Pending(format!("connections on {busy:?}"))));
        }
        if states.iter().any(opening) {
            return Ok(None);
        }
        // Every connection the walk found has gone. Nothing new can have
        // opened if nothing listens and the counters have not moved.
        let mut listeners = Vec::new();
        crate::wait::tcp::Source::sockets(diag, State::Listen, ports, &mut listeners)?;
        if busy_ports(&listeners, ports).is_empty() && Opens::read() == Some(walked.opens) {
            return Ok(Some(Look::Done(format!(
                "no connection on {ports:?} (the last walk's connections have gone, none opened since)"
            ))));
        }
        Ok(None)
    }

    /// A walk of the kernel's table, remembered for the lookups that follow.
    fn walk(diag: &mut SockDiag, ports: &[u16]) -> Result<(Look, Option<Walked>), Error> {
        // Read before the walk: a connection that opens during it moves them.
        let opens = Opens::read();
        let mut serving = Vec::new();
        let mut known = Vec::new();
        diag.connections(ports, &mut serving, &mut known)?;
        let busy = busy_ports(&serving, ports);
        // A socket still connecting from a watched port (SYN_SENT) serves
        // nothing yet: it does not hold the wait, it is only followed.
        let look = if busy.is_empty() {
            Look::Done(format!("no connection on {ports:?}"))
        } else {
            tracing::debug!(?busy, "walked");
            Look::Pending(format!("connections on {busy:?}"))
        };
        let walked = opens
            .filter(|_| known.len() <= MAX_KNOWN)
            .map(|opens| Walked { known, opens });
        Ok((look, walked))
    }
}

impl Wait for ConnectionsWait {
    fn event_driven(&self) -> bool {
        self.sockets.event_driven()
    }

    fn announce(&self, schedule: &Schedule) {
        self.sockets.announce(schedule)
    }

    async fn look(&mut self) -> Result<Look, Error> {
        let ports = self.sockets.ports().to_vec();
        let Some(diag) = self.sockets.sock_diag() else {
            // /proc: its table has no identities to look up.
            self.since = None;
            return self.sockets.look().await;
        };
        if let Some(walked) = &mut self.since {
            match Self::lookup(diag, walked, &ports) {
                Ok(Some(look)) => return Ok(look),
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "lookup failed; walking instead");
                    self.since = None;
                }
            }
        }
        match Self::walk(diag, &ports) {
            Ok((look, walked)) => {
                self.since = walked;
                Ok(look)
            }
            // The plain look, which falls back to /proc under `--source auto`.
            Err(_) => {
                self.since = None;
                self.sockets.look().await
            }
        }
    }

    async fn changed(&mut self) {
        self.sockets.changed().await
    }
}

#[cfg(test)]
mod tests {
    use super::Opens;
    use procfs_core::{net::Snmp, FromRead};

    /// The two counters read here are those procfs-core reads from the same text.
    #[test]
    fn the_counters_are_read_as_procfs_reads_them() {
        let text = std::fs::read_to_string(super::SNMP).unwrap();
        let theirs = Snmp::from_read(text.as_bytes()).unwrap();
        assert_eq!(
            Opens::parse(&text),
            Some(Opens {
                active: theirs.tcp_active_opens,
                passive: theirs.tcp_passive_opens,
            })
        );
        // A file without them is not read as zeros.
        assert_eq!(Opens::parse("Ip: Forwarding\nIp: 1\n"), None);
        assert_eq!(Opens::parse("Tcp: ActiveOpens\nTcp: x\n"), None);
    }
}
