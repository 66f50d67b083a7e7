//! `graceful-wait process`: with `shareProcessNamespace: true` every
//! container sees every process of the pod, so the proxy's hook can wait for
//! the app's processes themselves to be gone — whatever the app does with its
//! ports. Selected by `--name`, `--pid`, or `--exclude-uid` (every process
//! whose real uid is not listed: `--exclude-uid 1337` is "everything but
//! Istio's proxy").
//!
//! Names match as `pgrep` matches them: the kernel keeps a process's name
//! (`comm`) to 15 bytes, so a longer `--name` matches on its first 15 bytes;
//! `--full-name` matches the whole program name (the last part of `argv[0]` in
//! `/proc/PID/cmdline`) instead.
//!
//! A look that cannot see every process is a failed look, never "gone": a
//! `/proc/PID/status` that cannot be read or parsed, or a /proc mounted with
//! `hidepid` (other users' processes hidden) when this process is not root.
//!
//! Event-driven: each selected process gets a pidfd (pidfd_open(2)), which
//! becomes readable the moment it exits; where the kernel has no pidfd, the
//! wait looks every interval. Never counted as "the app": this process and
//! its ancestors (the hook runner), zombies (already exited), and the pod's
//! infra process (`pause`; podman's `catatonit`).

use super::{Schedule, Wait};
use crate::{error::Error, retry::Look};
use graceful_wait_shared::cli::ProcessArgs;
use procfs_core::{
    process::{MountInfos, Status},
    FromBufRead, FromRead, ProcError,
};
use std::{
    fs,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    path::{Path, PathBuf},
};
use tokio::io::unix::AsyncFd;

/// The pod's infra process, which lives as long as the pod: Kubernetes'
/// `pause` (containerd, CRI-O), podman's `catatonit`. Never "the app".
const INFRA: [&str; 2] = ["pause", "catatonit"];

/// The kernel's limit on a process name (`comm`), in bytes.
const COMM_LEN: usize = 15;

#[derive(Clone, Debug, Default)]
pub struct Selector {
    pub names: Vec<String>,
    /// Match names against the full program name, not the 15-byte comm.
    pub full_name: bool,
    pub pids: Vec<i32>,
    /// Some: select every process whose real uid is not in the list.
    pub exclude_uids: Option<Vec<u32>>,
}

impl Selector {
    /// Whether `name` (from `--name`) is this process's: its comm, compared
    /// as the kernel keeps it, or its full program name.
    fn name_matches(&self, comm: &str, program: impl FnOnce() -> Option<String>) -> bool {
        if self.names.is_empty() {
            return false;
        }
        if self.full_name {
            return program().is_some_and(|p| self.names.contains(&p));
        }
        self.names.iter().any(|n| {
            let n = n.as_bytes();
            n[..n.len().min(COMM_LEN)] == *comm.as_bytes()
        })
    }
}

/// The process wait.
pub struct Processes {
    proc_dir: PathBuf,
    selector: Selector,
    /// Pids never counted: this process and its ancestors.
    ignored: Vec<i32>,
    /// Why this /proc cannot show every process (hidepid), if it cannot.
    hidden: Option<String>,
    /// Whether a look has been made (the first one says more).
    looked: bool,
    /// Whether pidfds are refused (said once: the wait then polls).
    no_pidfds: bool,
    /// A pidfd for each process the last look saw.
    pidfds: Vec<AsyncFd<PidFd>>,
}

/// A process's status: None when it has gone (its folder is no more), an
/// error when it is there but cannot be read or parsed — a failed look.
fn status(proc_dir: &Path, pid: &str) -> Result<Option<Status>, Error> {
    let path = proc_dir.join(pid).join("status");
    match Status::from_file(&path) {
        Ok(s) => Ok(Some(s)),
        Err(ProcError::NotFound(_)) => Ok(None),
        Err(e) => Err(Error::transient(format!(
            "cannot read {}: {e}; without it this process cannot be told apart",
            path.display()
        ))),
    }
}

/// The last part of `argv[0]`: the program's full name.
fn program(proc_dir: &Path, pid: i32) -> Option<String> {
    let cmdline = fs::read(proc_dir.join(pid.to_string()).join("cmdline")).ok()?;
    let argv0 = cmdline.split(|b| *b == 0).next()?;
    let argv0 = String::from_utf8_lossy(argv0);
    Some(argv0.rsplit('/').next().unwrap_or(&argv0).to_string())
}

/// Why the /proc at `proc_dir` hides other users' processes from this one
/// (mounted with `hidepid`, and this process is not root), if it does.
fn hidden_processes(proc_dir: &Path) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return None;
    }
    let mounts = fs::File::open(proc_dir.join("self/mountinfo")).ok()?;
    let mounts = MountInfos::from_buf_read(std::io::BufReader::new(mounts)).ok()?;
    let at = fs::canonicalize(proc_dir).unwrap_or_else(|_| proc_dir.to_path_buf());
    let mount = mounts
        .0
        .iter()
        .rev()
        .find(|m| m.fs_type == "proc" && m.mount_point == at)?;
    let hidepid = mount.super_options.get("hidepid")?.clone()?;
    let hides = !matches!(hidepid.as_str(), "0" | "off");
    hides.then(|| {
        format!(
            "{} is mounted with hidepid={hidepid}: other users' processes are hidden from this one, so their absence proves nothing; mount it without hidepid, or run the hook as root",
            proc_dir.display()
        )
    })
}

pub fn open(args: &ProcessArgs) -> Result<Processes, Error> {
    let selector = Selector {
        names: args.names.clone(),
        full_name: args.full_name,
        pids: args.pids.clone(),
        exclude_uids: (!args.exclude_uids.is_empty()).then(|| args.exclude_uids.clone()),
    };
    Ok(Processes::new(args.proc.clone(), selector))
}

impl Processes {
    pub fn new(proc_dir: PathBuf, selector: Selector) -> Processes {
        let mut ignored = Vec::new();
        let mut pid = std::process::id() as i32;
        // Our ancestors (nsenter, the runtime's exec shim) are not the app.
        while pid > 1 && !ignored.contains(&pid) {
            ignored.push(pid);
            match status(&proc_dir, &pid.to_string()) {
                Ok(Some(s)) => pid = s.ppid,
                _ => break,
            }
        }
        Processes {
            hidden: hidden_processes(&proc_dir),
            looked: false,
            no_pidfds: pidfds_refused(),
            pidfds: Vec::new(),
            proc_dir,
            selector,
            ignored,
        }
    }

    /// The selected processes alive now: (pid, name).
    pub fn scan(&self) -> Result<Vec<(i32, String)>, Error> {
        if let Some(why) = &self.hidden {
            return Err(Error::permanent(why.clone()));
        }
        let entries = fs::read_dir(&self.proc_dir).map_err(|e| {
            Error::transient(format!(
                "cannot list {}: {e}; the hook needs the pod's /proc (shareProcessNamespace: true)",
                self.proc_dir.display()
            ))
        })?;
        // Chosen by pid alone: only those pids need reading.
        let by_pid_only = self.selector.names.is_empty() && self.selector.exclude_uids.is_none();
        let pids: Vec<i32> = if by_pid_only {
            self.selector.pids.clone()
        } else {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .collect()
        };
        let mut found = Vec::new();
        for pid in pids {
            let name = pid.to_string();
            if self.ignored.contains(&pid) {
                continue;
            }
            // A process that ended since the listing is simply gone; one
            // that cannot be read is a failed look.
            let Some(s) = status(&self.proc_dir, &name)? else {
                continue;
            };
            if s.state.starts_with('Z') || s.state.starts_with('X') {
                continue;
            }
            let sel = &self.selector;
            let chosen = sel.pids.contains(&pid)
                || sel.name_matches(&s.name, || program(&self.proc_dir, pid))
                || sel
                    .exclude_uids
                    .as_ref()
                    .is_some_and(|ex| !ex.contains(&s.ruid) && !INFRA.contains(&s.name.as_str()));
            if chosen {
                found.push((pid, s.name));
            }
        }
        found.sort();
        Ok(found)
    }
}

impl Processes {
    fn poll_from_now(&mut self, error: &str, waiting: String) -> Look {
        tracing::warn!(error, "pidfds unavailable, looking every interval instead");
        self.no_pidfds = true;
        Look::Pending(waiting)
    }
}

impl Wait for Processes {
    fn event_driven(&self) -> bool {
        !self.no_pidfds
    }

    fn announce(&self, schedule: &Schedule) {
        tracing::info!(
            names = ?self.selector.names,
            pids = ?self.selector.pids,
            exclude_uids = ?self.selector.exclude_uids,
            pidfds = !self.no_pidfds,
            timeout_ms = schedule.timeout_ms(),
            interval_ms = schedule.interval_ms(),
            "waiting until the selected processes are gone"
        );
    }

    /// Done when none is left; otherwise opens a pidfd for each, which
    /// [`Wait::changed`] watches.
    async fn look(&mut self) -> Result<Look, Error> {
        self.pidfds.clear();
        let alive = self.scan()?;
        let first = !std::mem::replace(&mut self.looked, true);
        if alive.is_empty() {
            // Nothing selected at the very first look: the wait ends at once.
            // That may be right (the app is gone) or a wrong name; say so, loudly.
            if first {
                tracing::warn!(
                    names = ?self.selector.names,
                    pids = ?self.selector.pids,
                    "no selected process is running now, so the wait ends at once; check the name (the kernel keeps 15 bytes of it, see --full-name) or the pid"
                );
            }
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
        if self.no_pidfds {
            // The retry loop looks again after the interval.
            return Ok(Look::Pending(waiting));
        }
        for (pid, _) in &alive {
            let registered = pidfd(*pid).map(|fd| {
                // SAFETY: the fd is owned by the PidFd inside the AsyncFd: it
                // stays open and the same for the AsyncFd's whole life.
                unsafe { AsyncFd::register_with_interest(PidFd(fd), tokio::io::Interest::READABLE) }
            });
            match registered {
                Ok(Ok(fd)) => self.pidfds.push(fd),
                // It has exited since the scan: look again now.
                Err(nix::errno::Errno::ESRCH) => return Ok(Look::Again(waiting)),
                // ENOSYS (a kernel before 5.3), EPERM (a seccomp profile
                // without pidfd_open), or no room in the runtime's poller:
                // polling still sees the exit, later.
                Err(e) => return Ok(self.poll_from_now(&e.to_string(), waiting)),
                Ok(Err(e)) => return Ok(self.poll_from_now(&e.to_string(), waiting)),
            }
        }
        Ok(Look::Pending(waiting))
    }

    /// Resolves when one of the processes the last look saw has exited: a
    /// pidfd turns readable then. No thread blocks, so the deadline cuts this
    /// exactly.
    async fn changed(&mut self) {
        if self.pidfds.is_empty() {
            return std::future::pending().await;
        }
        futures_first(self.pidfds.iter().map(|fd| fd.readable())).await
    }
}

/// A pidfd, for tokio's AsyncFd (which wants AsRawFd).
struct PidFd(OwnedFd);

impl AsRawFd for PidFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// The first of several futures to finish.
async fn futures_first<F: std::future::Future>(futures: impl Iterator<Item = F>) {
    let mut futures: Vec<_> = futures.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        for f in futures.iter_mut() {
            if f.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Whether this kernel (or a seccomp filter) refuses pidfds, tried on this
/// process before the first look so that the wait knows whether it polls;
/// said once in a warning.
fn pidfds_refused() -> bool {
    match pidfd(std::process::id() as i32) {
        Ok(_) => false,
        Err(e) => {
            tracing::warn!(error = %e, "pidfds unavailable, looking every interval instead");
            true
        }
    }
}

/// A pidfd for `pid`: an error where the kernel (or a seccomp filter) has
/// none, or the process is gone (ESRCH).
fn pidfd(pid: i32) -> Result<OwnedFd, nix::errno::Errno> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(nix::errno::Errno::last());
    }
    // SAFETY: a non-negative return is a new fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
