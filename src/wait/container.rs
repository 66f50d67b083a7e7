//! The container the hook runs in, and the sockets its processes hold.
//!
//! A preStop hook runs inside its container: in the container's cgroup and,
//! unless the pod shares one PID namespace (`shareProcessNamespace`), in the
//! container's own PID namespace, where every process it can see is the
//! container's. With a shared namespace it also sees the other containers'
//! processes; each container has a cgroup of its own, so a process is this
//! container's when its `/proc/PID/cgroup` reads as the hook's own.
//!
//! A socket is this container's when one of those processes holds it: its
//! `/proc/PID/fd` links to `socket:[INODE]`. What cannot be told is never
//! taken for this container's: a process of the container whose descriptors
//! the hook may not read (another user, no `ptrace` access) leaves its
//! sockets unknown, and the caller counts them as the app's.

use procfs_core::process::FDTarget;
use std::{
    collections::HashSet,
    fs,
    io::ErrorKind,
    path::{Path, PathBuf},
    str::FromStr,
};

/// The sockets of this container's processes, as far as they can be seen.
#[derive(Debug, Default)]
pub struct Held {
    /// Inodes of the sockets they hold.
    pub inodes: HashSet<u64>,
    /// This container's processes whose descriptors could not be read, with
    /// why: any socket not found may be theirs.
    pub unreadable: Vec<(i32, String)>,
}

/// Reads which sockets this container's processes hold, from `proc` (the
/// container's /proc). Stops early once every inode of `wanted` is found.
pub fn sockets_held(proc: &Path, wanted: &[u64]) -> std::io::Result<Held> {
    let own = fs::read(proc.join("self/cgroup"))?;
    let mut held = Held::default();
    let mut missing: HashSet<u64> = wanted.iter().copied().collect();
    for entry in fs::read_dir(proc)? {
        let Some(pid) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let dir = proc.join(pid.to_string());
        // Gone since the listing, or its cgroup is hidden: not known to be
        // this container's.
        match fs::read(dir.join("cgroup")) {
            Ok(cgroup) if cgroup == own => {}
            _ => continue,
        }
        match fds(&dir) {
            Ok(inodes) => {
                for inode in inodes {
                    missing.remove(&inode);
                    held.inodes.insert(inode);
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => held.unreadable.push((pid, e.to_string())),
        }
        if !wanted.is_empty() && missing.is_empty() {
            break;
        }
    }
    Ok(held)
}

/// The socket inodes one process's descriptors link to.
fn fds(process: &Path) -> std::io::Result<Vec<u64>> {
    let mut inodes = Vec::new();
    for fd in fs::read_dir(process.join("fd"))? {
        let link: PathBuf = match fs::read_link(fd?.path()) {
            Ok(l) => l,
            // Closed since the listing.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if let Some(FDTarget::Socket(inode)) =
            link.to_str().and_then(|l| FDTarget::from_str(l).ok())
        {
            inodes.push(inode);
        }
    }
    Ok(inodes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::unix::fs::MetadataExt;

    /// This test process is "the container": a listener it holds is found by
    /// its inode, in its own /proc.
    #[test]
    fn a_listener_this_process_holds_is_found() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
        let inode = fs::metadata(format!("/proc/self/fd/{fd}")).unwrap().ino();
        let held = sockets_held(Path::new("/proc"), &[inode]).unwrap();
        assert!(held.inodes.contains(&inode), "{held:?}");
        let held = sockets_held(Path::new("/proc"), &[]).unwrap();
        assert!(held.inodes.contains(&inode), "{held:?}");
    }

    /// A /proc without this process's cgroup is an error, not "nothing
    /// held".
    #[test]
    fn a_proc_without_self_is_an_error() {
        let empty = tempfile::tempdir().unwrap();
        assert!(sockets_held(empty.path(), &[]).is_err());
    }
}
