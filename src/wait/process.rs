//! `graceful-wait process`: with `shareProcessNamespace: true` every
//! container sees every process of the pod, so the proxy's hook can wait for
//! the app's processes themselves to be gone — whatever the app does with its
//! ports. Selected by `--name` (the kernel's `comm`, as `ps -o comm` shows it,
//! 15 characters at most), `--pid`, or `--exclude-uid` (every process whose
//! real uid is not listed: `--exclude-uid 1337` is "everything but Istio's proxy").
//!
//! Event-driven: each selected process gets a pidfd (pidfd_open(2)), which
//! becomes readable the moment it exits; where the kernel has no pidfd, the
//! wait looks every interval. Never counted as "the app": this process and
//! its ancestors (the hook runner), zombies (already exited), and the pod's
//! `pause` process.

use super::{Schedule, Wait};
use crate::{error::Error, retry::Look};
use graceful_wait_shared::cli::ProcessArgs;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use procfs_core::{process::Status, FromRead};
use std::{
    fs,
    os::fd::{AsFd, FromRawFd, OwnedFd},
    path::PathBuf,
    time::Duration,
};

#[derive(Clone, Debug, Default)]
pub struct Selector {
    pub names: Vec<String>,
    pub pids: Vec<i32>,
    /// Some: select every process whose real uid is not in the list.
    pub exclude_uids: Option<Vec<u32>>,
}

/// The process wait.
pub struct Processes {
    proc_dir: PathBuf,
    interval: Duration,
    selector: Selector,
    /// Pids never counted: this process and its ancestors.
    ignored: Vec<i32>,
}

fn status(proc_dir: &std::path::Path, pid: &str) -> Option<Status> {
    Status::from_file(proc_dir.join(pid).join("status")).ok()
}

pub fn open(args: &ProcessArgs, schedule: &Schedule) -> Result<Processes, Error> {
    let selector = Selector {
        names: args.names.clone(),
        pids: args.pids.clone(),
        exclude_uids: (!args.exclude_uids.is_empty()).then(|| args.exclude_uids.clone()),
    };
    Ok(Processes::new(
        args.proc.clone(),
        selector,
        schedule.interval,
    ))
}

impl Processes {
    pub fn new(proc_dir: PathBuf, selector: Selector, interval: Duration) -> Processes {
        let mut ignored = Vec::new();
        let mut pid = std::process::id() as i32;
        // Our ancestors (nsenter, the runtime's exec shim) are not the app.
        while pid > 1 && !ignored.contains(&pid) {
            ignored.push(pid);
            match status(&proc_dir, &pid.to_string()) {
                Some(s) => pid = s.ppid,
                None => break,
            }
        }
        Processes {
            proc_dir,
            interval,
            selector,
            ignored,
        }
    }

    /// The selected processes alive now: (pid, name).
    pub fn scan(&self) -> Result<Vec<(i32, String)>, Error> {
        let entries = fs::read_dir(&self.proc_dir).map_err(|e| {
            Error::transient(format!(
                "cannot list {}: {e}; the hook needs the pod's /proc (shareProcessNamespace: true)",
                self.proc_dir.display()
            ))
        })?;
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            if self.ignored.contains(&pid) {
                continue;
            }
            // A process that ended since the listing is simply gone.
            let Some(s) = status(&self.proc_dir, &name.to_string_lossy()) else {
                continue;
            };
            if s.state.starts_with('Z') || s.state.starts_with('X') {
                continue;
            }
            let sel = &self.selector;
            let chosen = sel.pids.contains(&pid)
                || sel.names.contains(&s.name)
                || sel
                    .exclude_uids
                    .as_ref()
                    .is_some_and(|ex| !ex.contains(&s.ruid) && s.name != "pause");
            if chosen {
                found.push((pid, s.name));
            }
        }
        found.sort();
        Ok(found)
    }
}

impl Wait for Processes {
    fn announce(&self, schedule: &Schedule) {
        tracing::info!(
            names = ?self.selector.names,
            pids = ?self.selector.pids,
            exclude_uids = ?self.selector.exclude_uids,
            timeout_ms = schedule.timeout_ms(),
            interval_ms = schedule.interval_ms(),
            "waiting until the selected processes are gone"
        );
    }

    /// Done when none is left; otherwise waits up to the interval for one to exit.
    async fn look(&mut self) -> Result<Look, Error> {
        let interval = self.interval;
        let alive = self.scan()?;
        if alive.is_empty() {
            return Ok(Look::Done("no selected process is left".into()));
        }
        let waiting = format!(
            "running: {}",
            alive
                .iter()
                .map(|(p, n)| format!("{n}[{p}]"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let fds: Vec<OwnedFd> = alive.iter().filter_map(|(pid, _)| pidfd(*pid)).collect();
        if fds.len() < alive.len() {
            // No pidfd (old kernel, or it just exited): look again after the interval.
            tokio::time::sleep(interval).await;
            return Ok(Look::Pending(waiting));
        }
        let ms = interval.as_millis().min(i32::MAX as u128) as i32;
        let exited = tokio::task::spawn_blocking(move || {
            let mut polls: Vec<PollFd> = fds
                .iter()
                .map(|f| PollFd::new(f.as_fd(), PollFlags::POLLIN))
                .collect();
            nix::poll::poll(
                &mut polls,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::NONE),
            )
            .unwrap_or(0)
                > 0
        })
        .await
        .unwrap_or(false);
        Ok(if exited {
            Look::Again(waiting)
        } else {
            Look::Pending(waiting)
        })
    }
}

/// A pidfd for `pid`, or None where the kernel has none or the process is gone.
fn pidfd(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a non-negative return is a new fd that we now own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
