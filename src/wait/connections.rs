//! `graceful-wait connections`: returns when no ESTABLISHED TCP connection
//! has the watched local port(s): the clients being served have gone (the
//! inbound drain is over). It reads the same socket tables as `tcp`.

use super::tcp::{Sockets, State};
use super::{Schedule, Wait};
use crate::{error::Error, retry::Look};
use graceful_wait_shared::cli::ConnectionsArgs;

pub struct Connections {
    sockets: Sockets,
    ports: Vec<u16>,
}

impl Connections {
    pub fn open(args: &ConnectionsArgs) -> Result<Connections, Error> {
        Ok(Connections {
            sockets: Sockets::open(&args.sockets)?,
            ports: args.ports.clone(),
        })
    }
}

impl Wait for Connections {
    fn announce(&self, schedule: &Schedule) {
        tracing::info!(
            ports = ?self.ports,
            source = self.sockets.source_name(),
            timeout_ms = schedule.timeout_ms(),
            interval_ms = schedule.interval_ms(),
            "waiting until no connection remains on the port(s)"
        );
    }

    async fn look(&mut self) -> Result<Look, Error> {
        let busy = self.sockets.busy(State::Established, &self.ports)?;
        Ok(if busy.is_empty() {
            Look::Done(format!("no connection on {:?}", self.ports))
        } else {
            Look::Pending(format!("connections on {busy:?}"))
        })
    }
}
