//! Real containers for the tests of both packages: podman (4.3, Debian)
//! with runc, the project's settings (`containers.conf` beside this file,
//! given with `CONTAINERS_CONF`) and storage of the test's own
//! (`--root`/`--runroot` under target/podman), so nothing on the machine
//! changes. Images are built offline (`--pull=never`), `FROM scratch`.
//! The pods and the kubelet's termination order are in `kubelet.rs`.

#![allow(dead_code)] // each test uses its own part

// support/mod.rs has it too in the graceful-wait tests; the injector's
// tests include this file alone.
#[allow(clippy::duplicate_mod)]
#[path = "../support/skip.rs"]
pub mod skip;

use skip::skipped;
use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc::{channel, Receiver},
    thread,
    time::{Duration, Instant},
};

/// A bound on waiting for a container's line; it guards against a hang.
const HANG_GUARD: Duration = Duration::from_secs(30);

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|p| p.join("tests/podman/containers.conf").is_file())
        .unwrap()
}

/// podman with the project's settings and storage of its own, removed on
/// drop (containers, pods, volumes, images).
pub struct Podman {
    pub dir: tempfile::TempDir,
    /// One podman at a time in a test process: instances with storage of
    /// their own still share the kernel's SHM lock segment.
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Podman {
    /// None, with a SKIPPED line, where podman cannot run.
    pub fn new_or_skip(test: &str) -> Option<Self> {
        if !skip::is_root() {
            skipped(
                test,
                "needs root (podman with runc, as CI runs it; rootless podman needs subuids this machine has not)",
            );
            return None;
        }
        for (tool, package) in [
            ("podman", "podman"),
            ("runc", "runc"),
            ("catatonit", "catatonit"),
        ] {
            if !skip::have(tool, &["--version"]) {
                skipped(
                    test,
                    &format!("`{tool}` is not installed (tests/run installs {package} as root)"),
                );
                return None;
            }
        }
        // Under the target folder, not /tmp: overlay storage wants a real
        // file system, and a tmpfs /tmp may not be one.
        let base = repo().join("target/podman");
        std::fs::create_dir_all(&base).unwrap();
        static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        Some(Self {
            dir: tempfile::tempdir_in(base).unwrap(),
            _serial: serial,
        })
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.env(
            "CONTAINERS_CONF",
            repo().join("tests/podman/containers.conf"),
        )
        .arg("--root")
        .arg(self.dir.path().join("root"))
        .arg("--runroot")
        .arg(self.dir.path().join("run"))
        // libpod's state (default /run/libpod) and the network definitions
        // (default /etc/containers/networks, which a reset empties) per
        // instance too, so that test processes running side by side do not
        // meet.
        .arg("--tmpdir")
        .arg(self.dir.path().join("tmp"))
        .arg("--network-config-dir")
        .arg(self.dir.path().join("networks"))
        .stdin(Stdio::null());
        cmd
    }

    /// The podman options that run a container as a restricted pod's:
    /// read-only root, every capability dropped, no new privileges (the
    /// runtime's default seccomp profile applies unless told otherwise).
    pub const RESTRICTED: [&'static str; 5] = [
        "--read-only",
        "--cap-drop",
        "all",
        "--security-opt",
        "no-new-privileges",
    ];

    /// `podman run` restricted, with `rest` (more options, the image, its
    /// command); its output, which must be a success.
    pub fn run_restricted(&self, rest: &[&str]) -> Output {
        let mut args = vec!["run"];
        args.extend(Self::RESTRICTED);
        args.extend(rest);
        self.ok(&args)
    }

    /// Runs podman; its output, which must be a success.
    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn text(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.ok(args).stdout)
            .trim()
            .to_string()
    }

    /// `podman build`, offline, from `dockerfile` in `context`.
    pub fn build(&self, context: &Path, dockerfile: &Path, target: Option<&str>, tag: &str) {
        let mut cmd = self.cmd();
        cmd.args(["build", "--pull=never", "-q", "-t", tag]);
        if let Some(target) = target {
            cmd.args(["--target", target]);
        }
        let out = cmd.arg("-f").arg(dockerfile).arg(context).output().unwrap();
        assert!(
            out.status.success(),
            "podman build {}: {}",
            dockerfile.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn size(&self, tag: &str) -> u64 {
        self.text(&["image", "inspect", "--format", "{{.Size}}", tag])
            .parse()
            .unwrap()
    }

    /// The init-container image, from `docker/Dockerfile`'s `prebuilt`
    /// target, holding `binary` (the release build, as it ships).
    pub fn build_init_image(&self, binary: &Path) {
        let ctx = tempfile::tempdir().unwrap();
        let at: PathBuf = ctx.path().join("target/x86_64-unknown-linux-gnu/release");
        std::fs::create_dir_all(&at).unwrap();
        std::fs::copy(binary, at.join("graceful-wait")).unwrap();
        self.build(
            ctx.path(),
            &repo().join("docker/Dockerfile"),
            Some("prebuilt"),
            INIT_IMAGE,
        );
    }

    /// A container's output lines as they come (`podman logs -f`).
    pub fn follow(&self, container: &str) -> Lines {
        let mut child = self
            .cmd()
            .args(["logs", "-f", container])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = channel();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Lines { child, rx }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Containers first, then the storage (overlay mounts would keep it).
        let _ = self.cmd().args(["pod", "rm", "-af", "-t", "0"]).output();
        let _ = self.cmd().args(["rm", "-af", "-t", "0"]).output();
        let _ = self.cmd().args(["system", "reset", "-f"]).output();
    }
}

pub const INIT_IMAGE: &str = "localhost/graceful-wait:test";

/// Lines of a running `podman logs -f`.
pub struct Lines {
    child: Child,
    rx: Receiver<String>,
}

impl Lines {
    /// Blocks until a line contains `text` (bounded by the hang guard).
    pub fn expect(&mut self, text: &str) -> String {
        let until = Instant::now() + HANG_GUARD;
        let mut seen = Vec::new();
        loop {
            match self
                .rx
                .recv_timeout(until.saturating_duration_since(Instant::now()))
            {
                Ok(l) if l.contains(text) => return l,
                Ok(l) => seen.push(l),
                Err(e) => panic!("never saw {text:?} ({e}); saw {seen:?}"),
            }
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
