//! `graceful-wait listeners`: the wait that needs no configuration. It
//! returns when no TCP socket listens in the pod's network namespace except
//! the ones that are not the app's:
//!
//! - by default, **this container's own sockets** — those held by the
//!   processes of the container the hook runs in ([`super::container`]): run
//!   as the proxy's preStop, the proxy's listeners (Istio's 15000–15090,
//!   Linkerd's 4140–4191, …) outlive the app by design, whatever uid the
//!   proxy runs as — 1337, 2102, 0 under TPROXY, a namespace-chosen uid on
//!   OpenShift, or 65532 like the app itself;
//! - with `--exclude-uid`, the sockets of those users instead (sock_diag's
//!   `idiag_uid`; /proc/net/tcp's `uid` column says the same).
//!
//! Never early: a listener whose owner cannot be told (a process of this
//! container whose descriptors may not be read) counts as the app's, and the
//! wait says so once in its log. The same sources, fail-safe rules and
//! events serve as for `tcp`: the subscription's kernel filter passes the
//! close of any listener.
//!
//! A pod's other long-lived listeners that are not the app's — another
//! sidecar's, in a container of its own — keep the wait until its deadline;
//! the start line and every look name what still listens, so it is easy to
//! tell, and `--exclude-uid` takes them out.

use super::{
    container,
    tcp::{
        self,
        events::{Closes, Filter, Wanted},
        Socket, Sockets, State,
    },
    Schedule, Wait,
};
use crate::{error::Error, retry::Look};
use graceful_wait_shared::cli::ListenersArgs;
use std::{collections::HashSet, path::PathBuf};

/// Which listeners are not the app's.
enum NotTheApp {
    /// Those this container's processes hold (read from this /proc).
    OwnContainer {
        proc: PathBuf,
        /// The processes whose sockets could not be read, already said in
        /// the log.
        said: Vec<i32>,
        /// Listeners already told apart, by inode: the container's, and the
        /// others (the app's, or unknown). A socket keeps its inode while it
        /// lives and no process hands its listener to another container, so
        /// only a listener not seen before needs the container's processes
        /// read again — the first look pays for the scan, not every look.
        /// Both hold only listeners still listening, so an inode number
        /// used again by a later socket is read afresh, never taken from a
        /// closed one.
        ours: HashSet<u64>,
        others: HashSet<u64>,
    },
    /// Those of these users.
    Users(Vec<u32>),
}

/// The listeners wait.
pub struct AppListeners {
    sockets: Sockets,
    not_the_app: NotTheApp,
    closes: Option<Closes>,
}

pub fn open(args: &ListenersArgs) -> Result<AppListeners, Error> {
    // Subscribed before the first look, as `tcp` does.
    let closes = tcp::subscribe_for(
        &args.sockets,
        // Every listener's close: an announcement does not say whose it
        // was, so the proxy's own closes wake the wait too (the look leaves
        // them out).
        Filter::ports(&[], Wanted::Listeners),
    );
    let not_the_app = if args.exclude_uids.is_empty() {
        NotTheApp::OwnContainer {
            proc: args.proc.clone(),
            said: Vec::new(),
            ours: HashSet::new(),
            others: HashSet::new(),
        }
    } else {
        NotTheApp::Users(args.exclude_uids.clone())
    };
    Ok(AppListeners {
        sockets: Sockets::open(&args.sockets)?,
        not_the_app,
        closes,
    })
}

impl AppListeners {
    /// The app's listeners among `listening`: every one that is not known
    /// to be another's.
    fn the_apps(&mut self, listening: Vec<Socket>) -> Result<Vec<Socket>, Error> {
        match &mut self.not_the_app {
            NotTheApp::Users(uids) => Ok(listening
                .into_iter()
                .filter(|s| !uids.contains(&s.uid))
                .collect()),
            NotTheApp::OwnContainer {
                proc,
                said,
                ours,
                others,
            } => {
                let new: Vec<u64> = listening
                    .iter()
                    .map(|s| s.inode)
                    .filter(|i| !ours.contains(i) && !others.contains(i))
                    .collect();
                let held = if new.is_empty() {
                    container::Held::default()
                } else {
                    container::sockets_held(proc, &new).map_err(|e| {
                        Error::transient(format!(
                            "cannot read this container's processes in {}: {e}",
                            proc.display()
                        ))
                    })?
                };
                let listening_now: HashSet<u64> = listening.iter().map(|s| s.inode).collect();
                ours.retain(|i| listening_now.contains(i));
                others.retain(|i| listening_now.contains(i));
                for inode in new {
                    if held.inodes.contains(&inode) {
                        ours.insert(inode);
                    } else {
                        others.insert(inode);
                    }
                }
                let apps: Vec<Socket> = listening
                    .into_iter()
                    .filter(|s| !ours.contains(&s.inode))
                    .collect();
                // A listener nobody visible holds may be a process's whose
                // descriptors are hidden: it counts as the app's, and the
                // log says why once per process.
                if !apps.is_empty() {
                    for (pid, why) in &held.unreadable {
                        if !said.contains(pid) {
                            said.push(*pid);
                            tracing::warn!(
                                pid,
                                error = %why,
                                "cannot read the sockets of a process of this container; a listener it may hold counts as the app's"
                            );
                        }
                    }
                }
                Ok(apps)
            }
        }
    }

    /// The ports the app listens on, with their owners, sorted and without
    /// repeats: "8080 (uid 1000)".
    fn app_ports(&mut self) -> Result<Vec<String>, Error> {
        let listening = self.sockets.read(State::Listen, &[])?.to_vec();
        let mut seen: Vec<(u16, u32)> = self
            .the_apps(listening)?
            .iter()
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
        let source = self.sockets.source_name();
        let events = self.closes.is_some();
        let (timeout_ms, interval_ms) = (schedule.timeout_ms(), schedule.interval_ms());
        match &self.not_the_app {
            NotTheApp::OwnContainer { .. } => tracing::info!(
                source,
                events,
                timeout_ms,
                interval_ms,
                "waiting until nothing listens in the pod but this container's own sockets"
            ),
            NotTheApp::Users(exclude_uids) => tracing::info!(
                ?exclude_uids,
                source,
                events,
                timeout_ms,
                interval_ms,
                "waiting until nothing listens in the pod but the excluded users' sockets"
            ),
        }
    }

    async fn look(&mut self) -> Result<Look, Error> {
        let ports = self.app_ports()?;
        Ok(if ports.is_empty() {
            Look::Done(match &self.not_the_app {
                NotTheApp::OwnContainer { .. } => {
                    "no listener left but this container's own".to_string()
                }
                NotTheApp::Users(uids) => format!("no listener left but uid {uids:?}'s"),
            })
        } else {
            tracing::debug!(?ports, "looked");
            Look::Pending(format!("listening: {}", ports.join(", ")))
        })
    }

    async fn changed(&mut self) {
        tcp::closed(&mut self.closes).await
    }
}
