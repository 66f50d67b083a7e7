//! The hook's last step: exit without paying for a slow close.
//!
//! The kubelet (and the bench) sees a hook end when its process exits, and a
//! process's exit closes its files first. Closing an inotify instance waits
//! for an SRCU grace period (`fsnotify_destroy_group` flushes the mark
//! reaper, which calls `synchronize_srcu`): measured at 5–20 ms in a third
//! of the file waits' exits here, after the marker had been seen within a
//! millisecond. So such a file descriptor is parked here instead of closed,
//! and [`exit`] hands the file table to a child that shares it
//! (`clone(CLONE_FILES)`): the hook's own exit then only drops its reference,
//! and the child, killed the moment its parent is gone
//! (`PR_SET_PDEATHSIG`), closes everything on its own time. Its standard
//! output and error are closed before the parked instance (descriptors close
//! in order), so whoever reads the hook's output sees the end at once.
//!
//! The child is reparented to the container's PID 1 and is a zombie until
//! that reaps it (the proxy container is being stopped anyway). If it cannot
//! be created, the exit simply pays for the close, as before.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};

static PARKED: AtomicBool = AtomicBool::new(false);

/// Keeps `fd` open until the process exits, to be closed by [`exit`]'s
/// helper rather than on the hook's critical path.
pub fn park(fd: OwnedFd) {
    std::mem::forget(fd);
    PARKED.store(true, Ordering::SeqCst);
}

/// Exits with `status`; with a parked descriptor, after handing the file
/// table to a child that outlives the exit.
pub fn exit(status: i32) -> ! {
    if PARKED.load(Ordering::SeqCst) {
        hand_over_files();
    }
    std::process::exit(status)
}

fn hand_over_files() {
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: a fork-like clone (no CLONE_VM, so the child gets a copy of
    // this stack and memory) that shares only the file table. The child runs
    // nothing but raw system calls (prctl, getppid, pause, _exit), which is
    // all a child of a multithreaded process may do.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::CLONE_FILES | libc::SIGCHLD,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid == 0 {
        // SAFETY: raw system calls only, see above; _exit never returns.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            // The parent may already be gone (then nothing would kill us).
            if libc::getppid() != parent {
                libc::_exit(0);
            }
            loop {
                libc::pause();
            }
        }
    }
    // pid < 0: no helper; the exit closes the files itself.
}
