//! The real container runtime: images built with podman, the injector's own
//! output played as pods (`podman kube play`) and terminated in the
//! kubelet's order (see tests/podman/mod.rs), side by side with the
//! original tool's shell loops. Needs root, podman, runc, catatonit and
//! busybox-static, which `tests/run` installs; SKIPPED otherwise.
//!
//! The pods run the release build of graceful-wait, as the image ships it:
//! the debug build (about 100 MB) does not fit the 32 Mi memory limit the
//! injector gives the init container. So the played-pod tests are ignored
//! by a plain `cargo test`, and `tests/run` runs them with `GW_BINARY`
//! naming the release build.

#[path = "podman/kubelet.rs"]
mod kubelet;
mod podman;
mod scenarios;
mod support;

use podman::Podman;
use scenarios::*;
use std::{path::Path, time::Duration};
use support::kubelet::Timeline;
use support::*;

#[test]
#[ignore = "re-exec entry point: the tests run it as their helper process"]
fn helper_process() {
    helper_main();
    roles::main();
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
    podman.build_init_image(Path::new(bin()));
    let size = podman.size(INIT_IMAGE);
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
    let out = podman.run_restricted(&[
        "--rm",
        "--network",
        "none",
        "-v",
        &mount,
        INIT_IMAGE,
        "install",
        "/install",
    ]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("installed /install/graceful-wait"), "{log}");
    let meta = std::fs::metadata(volume.path().join("graceful-wait")).unwrap();
    assert_eq!(meta.len(), binary, "the whole binary");
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&meta),
        65532,
        "written by the image's user"
    );
    // What the proxy's hook runs from that volume runs restricted too: a
    // wait that sees nothing listening in a fresh network namespace returns
    // at once, without falling back from netlink.
    let out = podman.run_restricted(&[
        "--rm",
        "--user",
        "1337",
        "--network",
        "none",
        INIT_IMAGE,
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

/// Every scenario, each terminated `runs` times in the kubelet's order; a
/// table of callbacks delivered, hook reaction and termination time.
#[test]
#[ignore = "needs the release build and takes minutes: tests/run runs it with GW_BINARY"]
fn real_pods_terminated_as_the_kubelet_does() {
    let test = "real_pods_terminated_as_the_kubelet_does";
    assert!(
        std::env::var_os("GW_BINARY").is_some(),
        "run with GW_BINARY naming the release build (cargo build --release -p graceful-wait), as tests/run does"
    );
    let Some(podman) = Podman::new_or_skip(test) else {
        return;
    };
    if !skip::have("/bin/busybox", &["true"]) {
        skipped(
            test,
            "Debian's busybox-static is needed for the original loop's image (tests/run installs it as root)",
        );
        return;
    }
    podman.build_init_image(Path::new(bin()));
    kubelet::build_lab_images(&podman);
    let upstream = kubelet::start_receiver(&podman);
    let grace = Duration::from_secs(30);
    let only = std::env::var("GW_RUNTIME_ONLY").ok();
    let mut table = Vec::new();
    let mut failures = Vec::new();
    for (n, scenario) in scenarios().into_iter().enumerate() {
        if only.as_deref().is_some_and(|o| !scenario.name.contains(o)) {
            continue;
        }
        let mut m = Measured::new();
        for run in 0..scenario.runs {
            let before = kubelet::callbacks(&podman);
            let pod = kubelet::play(&podman, &format!("s{n}r{run}"), &(scenario.spec)(&upstream));
            let timeline: Timeline = pod.terminate(grace);
            // The receiver's log is read after every container has exited:
            // whatever was sent has arrived or never will.
            let got = kubelet::callbacks(&podman) - before;
            m.delivered += got;
            m.sent += scenario.callbacks;
            let app = &pod.members[0].container.name;
            let proxy = format!("{}-istio-proxy", pod.name);
            if let (Some(exited), Some(term)) = (
                timeline.when(app, "exited"),
                timeline.when(&proxy, "SIGTERM"),
            ) {
                m.reaction.push(ms(exited, term));
            }
            let first = timeline.events.first().map(|e| e.0).unwrap();
            let last = timeline.events.last().map(|e| e.0).unwrap();
            m.termination.push(ms(first, last));
            // The hook's own view: its "condition met" line (copied into
            // the proxy's log, where `kubectl logs` shows it) against the
            // app's exit; the driver's adds `podman exec` returning.
            let proxy_log = pod.logs(&proxy);
            if let (Some(exited), Some(seen)) = (
                timeline.when(app, "exited"),
                proxy_log
                    .lines()
                    .find(|l| l.contains("INFO condition met"))
                    .and_then(rfc3339),
            ) {
                m.seen.push(ms(exited, seen));
            }
            let held = timeline.has(&proxy, "preStop ended: exit 0");
            if scenario.expect == Expect::All && (got != scenario.callbacks || !held) {
                failures.push(format!(
                    "{} run {run}: {got} of {} callbacks, hook ended by its condition: {held}\n{timeline}\napp: {}\nproxy: {}",
                    scenario.name,
                    scenario.callbacks,
                    pod.logs(app),
                    proxy_log,
                ));
            }
            if scenario.expect == Expect::None && got != 0 {
                failures.push(format!(
                    "{} run {run}: the callback arrived, so the pod no longer reproduces the bug\n{timeline}",
                    scenario.name
                ));
            }
        }
        let row = m.row(scenario.name);
        println!("{row}");
        table.push(row);
    }
    println!(
        "\nreal runtime (podman 4.3 + runc), terminations in the kubelet's order:\n{TABLE_HEAD}\n{}",
        table.join("\n")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
