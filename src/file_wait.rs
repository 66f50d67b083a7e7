//! `graceful-wait file --exists PATH`: the app (or `graceful-wait exec
//! --done-file`) writes a marker on the shared volume when it has really
//! finished; the proxy's hook returns when it appears.
//!
//! inotify on the marker's folder wakes the wait the moment the file is
//! created or moved in; where inotify cannot be used (no such folder yet, a
//! filesystem without it, a kernel limit), the wait looks every interval.

use crate::poll::Look;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::{
    io,
    os::fd::{AsFd, AsRawFd, RawFd},
    path::{Path, PathBuf},
    time::Duration,
};
use tokio::io::unix::AsyncFd;

/// tokio's AsyncFd wants AsRawFd; nix's Inotify offers AsFd.
struct Watch(Inotify);

impl AsRawFd for Watch {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

pub struct Marker {
    path: PathBuf,
    events: Option<AsyncFd<Watch>>,
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

    /// Whether inotify wakes this wait (false: it polls).
    pub fn event_driven(&self) -> bool {
        self.events.is_some()
    }

    /// Done when the path exists; otherwise waits up to `interval` for a change.
    pub async fn look(&self, interval: Duration) -> Result<Look, String> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(_) => return Ok(Look::Done(format!("{} exists", self.path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot look for {}: {e}", self.path.display())),
        }
        let waiting = format!("no {} yet", self.path.display());
        let Some(events) = &self.events else {
            return Ok(Look::Pending(waiting));
        };
        tokio::select! {
            ready = events.readable() => {
                let mut guard = ready.map_err(|e| format!("inotify: {e}"))?;
                // Drain what arrived; the next look checks the path itself.
                let _ = guard.get_inner().0.read_events();
                guard.clear_ready();
                Ok(Look::Again(waiting))
            }
            _ = tokio::time::sleep(interval) => Ok(Look::Pending(waiting)),
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
