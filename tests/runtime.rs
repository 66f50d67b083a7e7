//! The real container runtime: podman (4.3, Debian) with runc, set up by the
//! project (`tests/podman/containers.conf`, storage under the test's own
//! folder, so nothing on the machine changes). Needs root and podman, which
//! `tests/run` installs; SKIPPED otherwise.
//!
//! The image the injected init container runs is built from
//! `docker/Dockerfile`'s `prebuilt` target, offline, and run as a restricted
//! pod runs it: a non-root user, every capability dropped, a read-only root,
//! the runtime's default seccomp profile.

mod support;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};
use support::*;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// podman with the project's settings and storage of its own.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new_or_skip(test: &str) -> Option<Self> {
        if !skip::is_root() {
            skipped(
                test,
                "needs root (podman with runc, as CI runs it; rootless podman needs subuids this machine has not)",
            );
            return None;
        }
        for (tool, package) in [("podman", "podman"), ("runc", "runc")] {
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
        Some(Self {
            dir: tempfile::tempdir_in(base).unwrap(),
        })
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.env(
            "CONTAINERS_CONF",
            repo().join("tests/podman/containers.conf"),
        )
        .arg("--root")
        .arg(self.dir.path().join("root"))
        .arg("--runroot")
        .arg(self.dir.path().join("run"))
        .stdin(std::process::Stdio::null());
        cmd
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `podman build`, offline, from `dockerfile` in `context`.
    fn build(&self, context: &Path, dockerfile: &Path, target: &str, tag: &str) {
        let out = self
            .cmd()
            .args([
                "build",
                "--pull=never",
                "-q",
                "--target",
                target,
                "-t",
                tag,
                "-f",
            ])
            .arg(dockerfile)
            .arg(context)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "podman build {}: {}",
            dockerfile.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn size(&self, tag: &str) -> u64 {
        let out = self.ok(&["image", "inspect", "--format", "{{.Size}}", tag]);
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Containers first, then the storage (overlay mounts would keep it).
        let _ = self.cmd().args(["rm", "-af", "-t", "0"]).output();
        let _ = self.cmd().args(["system", "reset", "-f"]).output();
    }
}

/// A build context laid out as the Dockerfile's `prebuilt` stage expects it:
/// the binary under test at the release build's path.
fn prebuilt_context(binary: &Path) -> tempfile::TempDir {
    let ctx = tempfile::tempdir().unwrap();
    let at: PathBuf = ctx.path().join("target/x86_64-unknown-linux-gnu/release");
    std::fs::create_dir_all(&at).unwrap();
    std::fs::copy(binary, at.join("graceful-wait")).unwrap();
    ctx
}

/// docker/Dockerfile's `prebuilt` target builds with no registry, holds the
/// binary alone, and the binary runs there as the restricted init container
/// does: as 65532 (the image's user), every capability dropped, read-only
/// root, the runtime's default seccomp profile — and installs itself into a
/// volume, which is its job.
#[test]
fn the_init_container_image_builds_offline_and_installs_under_restrictions() {
    let test = "the_init_container_image_builds_offline_and_installs_under_restrictions";
    let Some(podman) = Podman::new_or_skip(test) else {
        return;
    };
    let ctx = prebuilt_context(Path::new(bin()));
    podman.build(
        ctx.path(),
        &repo().join("docker/Dockerfile"),
        "prebuilt",
        "localhost/graceful-wait:test",
    );
    let size = podman.size("localhost/graceful-wait:test");
    let binary = std::fs::metadata(bin()).unwrap().len();
    assert!(
        size < binary + 64 * 1024,
        "the image holds more than the binary: {size} bytes for a {binary}-byte binary"
    );
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("\ninit-container image: {size} bytes ({binary}-byte binary)\n").as_bytes(),
    );

    let volume = tempfile::tempdir().unwrap();
    // The kubelet makes an emptyDir writable by any user (0777).
    std::fs::set_permissions(
        volume.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let mount = format!("{}:/install", volume.path().display());
    let out = podman.ok(&[
        "run",
        "--rm",
        "--read-only",
        "--cap-drop",
        "all",
        "--security-opt",
        "no-new-privileges",
        "--network",
        "none",
        "-v",
        &mount,
        "localhost/graceful-wait:test",
        "install",
        "/install",
    ]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("installed /install/graceful-wait"), "{log}");
    let installed = volume.path().join("graceful-wait");
    let meta = std::fs::metadata(&installed).unwrap();
    assert_eq!(meta.len(), binary, "the whole binary");
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&meta),
        65532,
        "written by the image's user"
    );
    // And what the proxy's hook runs from that volume runs in the image's
    // restricted container too: a wait that sees nothing listening in a
    // fresh network namespace returns at once.
    let out = podman.ok(&[
        "run",
        "--rm",
        "--read-only",
        "--cap-drop",
        "all",
        "--user",
        "1337",
        "--network",
        "none",
        "localhost/graceful-wait:test",
        "tcp",
        "--port",
        "20000",
        "--timeout",
        "10s",
    ]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("condition met"), "{log}");
    assert!(
        !log.contains("WARN"),
        "no fallback under the runtime's default seccomp profile: {log}"
    );
}
