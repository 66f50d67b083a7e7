//! `graceful-wait file --exists PATH`: the app (or `graceful-wait exec
//! --done-file`) writes a marker on the shared volume when it has really
//! finished; the proxy's hook returns when it appears.
//!
//! inotify on the marker's folder wakes the wait the moment the file is
//! created or moved in; where inotify cannot be used (no such folder yet, a
//! filesystem without it, a kernel limit), the wait looks every interval.

use super::{Schedule, Wait};
use crate::{error::Error, retry::Look};
use graceful_wait_shared::cli::FileArgs;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::{
    io,
    os::fd::{AsFd, AsRawFd, RawFd},
    path::{Path, PathBuf},
};
use tokio::io::unix::AsyncFd;

/// tokio's AsyncFd wants AsRawFd; nix's Inotify offers AsFd.
struct Watch(Inotify);

impl AsRawFd for Watch {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// The file wait.
pub struct Marker {
    path: PathBuf,
    events: Option<AsyncFd<Watch>>,
}

pub fn open(args: &FileArgs) -> Result<Marker, Error> {
    Ok(Marker::new(args.exists.clone()))
}

impl Marker {
    pub fn new(path: PathBuf) -> Marker {
        let events = match watch(&path) {
            Ok(fd) => Some(fd),
            Err(e) => {
                tracing::warn!(
                    "inotify unavailable for {} ({e}); looking every interval instead",
                    path.display()
                );
                None
            }
        };
        Marker { path, events }
    }
}

impl Wait for Marker {
    /// Whether inotify wakes this wait (false: it polls).
    fn event_driven(&self) -> bool {
        self.events.is_some()
    }

    fn announce(&self, schedule: &Schedule) {
        tracing::info!(
            path = %self.path.display(),
            inotify = self.event_driven(),
            timeout_ms = schedule.timeout_ms(),
            interval_ms = schedule.interval_ms(),
            "waiting for the marker file"
        );
    }

    /// Done when the path exists.
    async fn look(&mut self) -> Result<Look, Error> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(_) => Ok(Look::Done(format!("{} exists", self.path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Ok(Look::Pending(format!("no {} yet", self.path.display())))
            }
            Err(e) => Err(Error::transient(format!(
                "cannot look for {}: {e}",
                self.path.display()
            ))),
        }
    }

    /// Resolves when something was created, moved in, written or changed in
    /// the marker's folder (the next look checks the path itself).
    async fn changed(&mut self) {
        let Some(events) = &self.events else {
            return std::future::pending().await;
        };
        match events.readable().await {
            Ok(mut guard) => {
                // Drain what arrived: one look answers them all.
                let _ = guard.get_inner().0.read_events();
                guard.clear_ready();
            }
            Err(e) => {
                tracing::warn!(error = %e, "inotify failed, looking every interval from now on");
                self.events = None;
            }
        }
    }
}

/// The inotify instance is not closed here: its close waits for the
/// kernel's SRCU grace period, which would delay the hook's end after the
/// marker was seen. It is parked for the process's exit (crate::teardown).
impl Drop for Marker {
    fn drop(&mut self) {
        if let Some(events) = self.events.take() {
            let Watch(inotify) = events.into_inner();
            crate::teardown::park(inotify.into());
        }
    }
}

fn watch(path: &Path) -> Result<AsyncFd<Watch>, String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let inotify =
        Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).map_err(|e| e.to_string())?;
    inotify
        .add_watch(
            dir,
            AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_CLOSE_WRITE
                | AddWatchFlags::IN_ATTRIB,
        )
        .map_err(|e| format!("watch {}: {e}", dir.display()))?;
    // SAFETY: the fd is owned by the Inotify inside Watch, which the AsyncFd
    // owns: it stays open and the same for the AsyncFd's whole life.
    unsafe { AsyncFd::register_with_interest(Watch(inotify), tokio::io::Interest::READABLE) }
        .map_err(|e| e.to_string())
}
