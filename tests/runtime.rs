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
    fn build(&self, context: &Path, dockerfile: &Path, target: Option<&str>, tag: &str) {
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
        Some("prebuilt"),
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

/// The injector's own output for the original tool's TCP service (golden
/// case `seed-tcp`), played as a pod by podman: its init container installs
/// the binary into the shared volume as 65532 with every capability
/// dropped; the proxy's preStop, run in the proxy's container as the
/// kubelet runs it (`podman exec`, CRI ExecSync), holds while the app still
/// listens on 20000 in the pod's shared network namespace and returns once
/// the app is gone. Images swapped for local ones: the app and the proxy
/// are busybox (`nc` listening; `sleep`), under a restricted
/// securityContext.
///
/// It installs the release build, as the image ships it: the debug build
/// (about 100 MB) does not fit the 32 Mi memory limit the injector gives the
/// init container. So it is ignored by a plain `cargo test` and run by
/// `tests/run` with `GW_BINARY` naming the release build.
#[test]
#[ignore = "needs the release build: tests/run runs it with GW_BINARY"]
fn the_injected_pod_played_by_podman_holds_the_proxy_until_the_app_is_gone() {
    let test = "the_injected_pod_played_by_podman_holds_the_proxy_until_the_app_is_gone";
    assert!(
        std::env::var_os("GW_BINARY").is_some(),
        "run with GW_BINARY naming the release build (cargo build --release -p graceful-wait), as tests/run does"
    );
    let Some(podman) = Podman::new_or_skip(test) else {
        return;
    };
    let busybox = Path::new("/bin/busybox");
    if !skip::have("/bin/busybox", &["true"]) || !skip::have("catatonit", &["--version"]) {
        skipped(
            test,
            "Debian's busybox-static and catatonit (podman's pod infra) are needed (tests/run installs them as root)",
        );
        return;
    }
    let ctx = prebuilt_context(Path::new(bin()));
    podman.build(
        ctx.path(),
        &repo().join("docker/Dockerfile"),
        Some("prebuilt"),
        "localhost/graceful-wait:test",
    );
    let bb = tempfile::tempdir().unwrap();
    std::fs::copy(busybox, bb.path().join("busybox")).unwrap();
    std::fs::write(
        bb.path().join("Containerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
    )
    .unwrap();
    podman.build(
        bb.path(),
        &bb.path().join("Containerfile"),
        None,
        "localhost/busybox:test",
    );

    // The pod: the injector's pod spec, as written, with local images.
    let text = std::fs::read_to_string(repo().join("config/test/seed-tcp/expected.yaml")).unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let mut spec = docs[0]["spec"]["template"]["spec"].clone();
    let hook = spec["containers"][1]["lifecycle"]["preStop"]["exec"]["command"].clone();
    let hook: Vec<String> = serde_json::from_value(hook).unwrap();
    assert_eq!(spec["containers"][1]["name"], "istio-proxy");
    spec["restartPolicy"] = "Never".into();
    spec["terminationGracePeriodSeconds"] = 30.into();
    spec["initContainers"][0]["image"] = "localhost/graceful-wait:test".into();
    let restricted = |uid: u32| {
        serde_json::json!({
            "runAsNonRoot": true, "runAsUser": uid, "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}
        })
    };
    let app = &mut spec["containers"][0];
    app["image"] = "localhost/busybox:test".into();
    app["command"] = serde_json::json!(["/bin/nc", "-ll", "-p", "20000", "-e", "/bin/cat"]);
    app["securityContext"] = restricted(1000);
    // podman 4.3's kube play publishes a containerPort, which a pod without
    // a network (the shared loopback is all this test needs) refuses.
    app.as_object_mut().unwrap().remove("ports");
    let proxy = &mut spec["containers"][1];
    proxy["image"] = "localhost/busybox:test".into();
    proxy["command"] = serde_json::json!(["/bin/sleep", "3600"]);
    proxy.as_object_mut().unwrap().remove("args");
    proxy["securityContext"] = restricted(1337);
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "seed-tcp"},
        "spec": spec,
    });
    let file = podman.dir.path().join("pod.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&pod).unwrap()).unwrap();
    podman.ok(&["kube", "play", "--network", "none", file.to_str().unwrap()]);
    let app_name = "seed-tcp-test-tcp-svc";
    let proxy_name = "seed-tcp-istio-proxy";

    // The proxy's hook, run in its container as the kubelet runs it.
    let mut exec = podman.cmd();
    exec.args(["exec", proxy_name]).args(&hook);
    let mut w = Watched::spawn(&mut exec);
    w.expect_line("waiting: listening on [20000]");
    assert!(
        w.still_running(),
        "the hook returned while the app was listening"
    );
    // The app stops: SIGTERM, which nc as PID 1 does not handle, then
    // SIGKILL after 2 s, as the kubelet's StopContainer does.
    podman.ok(&["stop", "-t", "2", app_name]);
    let (code, log) = w.finish();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("condition met"), "{log}");
    // The install ran as the image's user into the shared volume.
    let out = podman.ok(&[
        "exec",
        proxy_name,
        "stat",
        "-c",
        "%u %a",
        "/graceful-wait/graceful-wait",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "65532 555");
}
