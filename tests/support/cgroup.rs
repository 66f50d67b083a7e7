//! A cgroup of its own, as a container has one: made in the pids controller
//! of cgroup v1 (or the unified hierarchy), removed on drop. Root only.

use std::path::{Path, PathBuf};

pub struct Cgroup(PathBuf);

impl Cgroup {
    /// A new, empty cgroup named after `tag` and this process.
    pub fn new(tag: &str) -> Cgroup {
        let base = [
            "/sys/fs/cgroup/pids",
            "/sys/fs/cgroup/unified",
            "/sys/fs/cgroup",
        ]
        .into_iter()
        .find(|b| Path::new(b).join("cgroup.procs").exists())
        .expect("no cgroup hierarchy to make a cgroup in");
        let dir = Path::new(base).join(format!("gw-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Cgroup(dir)
    }

    /// Moves process `pid` into it.
    pub fn take(&self, pid: i32) {
        std::fs::write(self.0.join("cgroup.procs"), pid.to_string()).unwrap();
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Its processes have exited by now; an empty cgroup is removed with
        // rmdir.
        let _ = std::fs::remove_dir(&self.0);
    }
}
