//! Sockets from `/proc/net/tcp` and `/proc/net/tcp6`, parsed by `procfs-core`.
//!
//! These files show the network namespace of the process that opens them, so
//! the hook must run with the pod's network namespace *and* a /proc mounted for
//! its own PID namespace (what `nsenter -n -p` or a container gives).

use super::{Socket, Source, State};
use crate::error::Error;
use procfs_core::{
    net::{TcpNetEntries, TcpState},
    ExplicitSystemInfo, FromBufReadSI,
};
use std::{
    fs::File,
    io::{BufRead, BufReader, Read},
    path::PathBuf,
};

pub struct ProcNet {
    dir: PathBuf,
}

impl ProcNet {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

/// The kernel writes addresses as host-order 32-bit words; nothing else in
/// the system info matters to the TCP table parser.
const SYSTEM: ExplicitSystemInfo = ExplicitSystemInfo {
    boot_time_secs: 0,
    ticks_per_second: 100,
    page_size: 4096,
    is_little_endian: cfg!(target_endian = "little"),
};

/// The sockets in `state` in one table, as the kernel formats it.
pub fn parse_sockets(
    table: impl BufRead,
    state: State,
    out: &mut Vec<Socket>,
) -> Result<(), String> {
    // A table always starts with its header line; an empty file (a
    // --proc-net folder of the wrong files, a truncated read) is not "no
    // sockets", and neither is a table without its header.
    let mut table = table;
    let mut header = String::new();
    table.read_line(&mut header).map_err(|e| e.to_string())?;
    if !header.trim_start().starts_with("sl") || !header.contains("local_address") {
        return Err("no table header (sl local_address ...): not a /proc/net/tcp table".into());
    }
    let entries = TcpNetEntries::from_buf_read(header.as_bytes().chain(table), &SYSTEM)
        .map_err(|e| e.to_string())?;
    let wanted = |t: &TcpState| match state {
        State::Listen => *t == TcpState::Listen,
        State::Connected => matches!(
            t,
            TcpState::Established
                | TcpState::SynRecv
                | TcpState::CloseWait
                | TcpState::FinWait1
                | TcpState::Closing
                | TcpState::LastAck
        ),
    };
    out.extend(
        entries
            .0
            .into_iter()
            .filter(|e| wanted(&e.state))
            .map(|e| Socket {
                addr: e.local_address,
                uid: e.uid,
                inode: e.inode,
            }),
    );
    Ok(())
}

impl Source for ProcNet {
    fn name(&self) -> &'static str {
        "proc"
    }

    /// The tables list every socket; the caller keeps the watched ports'.
    fn sockets(&mut self, state: State, _: &[u16], out: &mut Vec<Socket>) -> Result<(), Error> {
        for table in ["tcp", "tcp6"] {
            let path = self.dir.join(table);
            let file = match File::open(&path) {
                Ok(f) => f,
                // A kernel without IPv6 has no tcp6; IPv4 alone is the whole truth there.
                Err(e) if table == "tcp6" && e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(Error::transient(format!(
                        "cannot read {}: {e}; mount /proc for this PID namespace (nsenter -p, or unshare --mount-proc) or use --source netlink",
                        path.display()
                    )))
                }
            };
            parse_sockets(BufReader::new(file), state, out)
                .map_err(|e| Error::transient(format!("cannot parse {}: {e}", path.display())))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_sockets;
    use crate::wait::tcp::{busy_ports, Socket, State};

    fn listeners(fixture: &str) -> Vec<Socket> {
        let mut out = Vec::new();
        parse_sockets(fixture.as_bytes(), State::Listen, &mut out).unwrap();
        out
    }

    // Captured in a fresh network namespace on this machine (see
    // tests/fixtures/README.md): listeners on 2000, 20001 and 8080, an
    // ESTABLISHED pair whose ends are local and remote port 20000 (4E20) with
    // its listener closed, FIN_WAIT2/CLOSE_WAIT on 8080, and a UDP socket on
    // 20000, which the TCP tables cannot show.
    const TCP4: &str = include_str!("../../../tests/fixtures/proc_net_tcp");
    const TCP6: &str = include_str!("../../../tests/fixtures/proc_net_tcp6");
    // The captured local-port-20000 ESTABLISHED row, in every state but LISTEN.
    const STATES: &str = include_str!("../../../tests/fixtures/proc_net_tcp_states");

    fn sorted(v: Vec<Socket>) -> Vec<String> {
        let mut v: Vec<_> = v.iter().map(|s| s.addr).collect();
        v.sort();
        v.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn each_socket_has_its_owner() {
        // The fixture was captured as root.
        assert!(listeners(TCP4).iter().all(|s| s.uid == 0));
    }

    #[test]
    fn ipv4_listeners_only() {
        let got = listeners(TCP4);
        assert_eq!(
            sorted(got.clone()),
            ["0.0.0.0:20001", "127.0.0.1:2000", "127.0.0.1:8080"]
        );
        // 20000 appears only as a remote port and in ESTABLISHED/TIME_WAIT rows.
        assert!(busy_ports(&got, &[20000]).is_empty());
    }

    #[test]
    fn ipv6_and_v4_mapped_listeners() {
        let got = listeners(TCP6);
        assert_eq!(
            sorted(got.clone()),
            ["[::]:20000", "[::1]:15021", "[::ffff:127.0.0.1]:3000"]
        );
        assert_eq!(busy_ports(&got, &[20000, 3000, 2000]), [20000, 3000]);
    }

    #[test]
    fn connections_the_app_still_serves_by_local_port() {
        let mut out = Vec::new();
        parse_sockets(TCP4.as_bytes(), State::Connected, &mut out).unwrap();
        // The ESTABLISHED pair on 20000 (one end has local port 20000), and
        // the CLOSE_WAIT end on 8080: its client has half-closed while the
        // app may still be writing — still being served. The FIN_WAIT2 end
        // (done sending) and the listener on 2000 do not count.
        assert_eq!(busy_ports(&out, &[20000, 2000, 8080]), [20000, 8080]);
        // Every state: the ones that owe bytes count, the others do not.
        let mut out = Vec::new();
        parse_sockets(STATES.as_bytes(), State::Connected, &mut out).unwrap();
        assert_eq!(
            out.len(),
            6,
            "ESTABLISHED, SYN_RECV, FIN_WAIT1, CLOSE_WAIT, LAST_ACK, CLOSING"
        );
    }

    #[test]
    fn an_empty_or_headless_table_is_an_error_not_no_listener() {
        for table in ["", "\n", "  0: 0100007F:4E20 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n"] {
            let mut out = Vec::new();
            assert!(
                parse_sockets(table.as_bytes(), State::Listen, &mut out).is_err(),
                "{table:?}"
            );
        }
    }

    #[test]
    fn no_state_but_listen_counts() {
        assert!(listeners(STATES).is_empty());
        assert_eq!(STATES.lines().count(), 12, "fixture lost rows");
    }

    #[test]
    fn a_table_that_is_not_one_is_an_error() {
        let mut out = Vec::new();
        let garbage = "header\n  0: not-an-address\n";
        assert!(parse_sockets(garbage.as_bytes(), State::Listen, &mut out).is_err());
    }
}
