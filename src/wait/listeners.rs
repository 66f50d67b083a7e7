//! `graceful-wait listeners`: the wait that needs no configuration. It
//! returns when no TCP socket listens in the pod's network namespace except
//! those of the excluded users — by default Istio's proxy (uid 1337), whose
//! listeners (15000, 15001, 15006, 15020, 15021, 15090, …) outlive the app by
//! design. The app is gone when its listeners are, whatever its ports.
//!
//! sock_diag reports each socket's owner (`idiag_uid`; /proc/net/tcp's `uid`
//! column says the same), so the same sources, fail-safe rules and events
//! serve as for `tcp`: the subscription's kernel filter passes the close of
//! any listener whose owner is not excluded.
//!
//! A pod's other long-lived listeners that are not the app's — another
//! sidecar's — must be excluded by their uid too, or the wait holds until its
//! deadline; the start line lists what it sees, so it is easy to tell.

use super::{
    tcp::{
        self,
        events::{Closes, Filter, Wanted},
        Sockets, State,
    },
    Schedule, Wait,
};
use crate::{error::Error, retry::Look};
use graceful_wait_shared::cli::ListenersArgs;

/// The listeners wait.
pub struct AppListeners {
    sockets: Sockets,
    exclude_uids: Vec<u32>,
    closes: Option<Closes>,
}

pub fn open(args: &ListenersArgs) -> Result<AppListeners, Error> {
    // Subscribed before the first look, as `tcp` does.
    let closes = tcp::subscribe_for(
        &args.sockets,
        // Every listener's close: an announcement does not say whose it
        // was, so the excluded users' closes wake the wait too (the look
        // leaves them out).
        Filter::ports(&[], Wanted::Listeners),
    );
    Ok(AppListeners {
        sockets: Sockets::open(&args.sockets)?,
        exclude_uids: args.exclude_uids.clone(),
        closes,
    })
}

impl AppListeners {
    /// The ports listened on by users not excluded, with their owners,
    /// sorted and without repeats: "8080 (uid 1000)".
    fn app_ports(&mut self) -> Result<Vec<String>, Error> {
        let mut seen: Vec<(u16, u32)> = self
            .sockets
            .read(State::Listen, &[])?
            .iter()
            .filter(|s| !self.exclude_uids.contains(&s.uid))
            .map(|s| (s.addr.port(), s.uid))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        Ok(seen
            .into_iter()
            .map(|(port, uid)| format!("{port} (uid {uid})"))
            .collect())
    }
}

impl Wait for AppListeners {
    fn event_driven(&self) -> bool {
        self.closes.is_some()
    }

    fn announce(&self, schedule: &Schedule) {
        tracing::info!(
            exclude_uids = ?self.exclude_uids,
            source = self.sockets.source_name(),
            events = self.closes.is_some(),
            timeout_ms = schedule.timeout_ms(),
            interval_ms = schedule.interval_ms(),
            "waiting until nothing listens in the pod but the excluded users' sockets"
        );
    }

    async fn look(&mut self) -> Result<Look, Error> {
        let ports = self.app_ports()?;
        Ok(if ports.is_empty() {
            Look::Done(format!(
                "no listener left but uid {:?}'s",
                self.exclude_uids
            ))
        } else {
            tracing::debug!(?ports, "looked");
            Look::Pending(format!("listening: {}", ports.join(", ")))
        })
    }

    async fn changed(&mut self) {
        tcp::closed(&mut self.closes).await
    }
}
