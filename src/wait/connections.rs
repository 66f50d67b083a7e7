//! `graceful-wait connections`: returns when no TCP connection the app still
//! serves has the watched local port(s) — ESTABLISHED, SYN_RECV, CLOSE_WAIT,
//! FIN_WAIT1, CLOSING, LAST_ACK (see [`State::Connected`]): the clients being
//! served have gone (the inbound drain is over). The same socket tables and wait as `tcp`
//! ([`super::tcp`]), counting connections instead of listeners.

use super::tcp::{SocketWait, State};
use crate::error::Error;
use graceful_wait_shared::cli::ConnectionsArgs;

pub fn open(args: &ConnectionsArgs) -> Result<SocketWait, Error> {
    SocketWait::open(State::Connected, &args.ports, &args.sockets)
}
