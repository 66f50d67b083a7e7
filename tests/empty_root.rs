//! The binary as it runs in a bare image: its own network namespace (the pod),
//! a new mount and PID namespace with /proc mounted for it, chrooted into a
//! root that holds nothing but the binary and `proc/`. Needs root; prints
//! SKIPPED otherwise (CI runs it as root).

mod support;
use support::*;

#[test]
#[ignore = "re-exec entry point: the tests run it as their helper process"]
fn helper_process() {
    helper_main();
}

/// `ip netns exec NS unshare -m -p -f [--mount-proc=ROOT/proc] chroot ROOT /graceful-wait ARGS`
fn in_container(ns: &Netns, root: &EmptyRoot, mount_proc: bool, args: &[&str]) -> (i32, String) {
    let mount = format!("--mount-proc={}", root.0.join("proc").display());
    let root_dir = root.0.display().to_string();
    let mut argv: Vec<&str> = ns.exec().to_vec();
    argv.extend(["unshare", "-m", "-p", "-f"]);
    if mount_proc {
        argv.push(&mount);
    }
    argv.extend(["chroot", &root_dir, "/graceful-wait"]);
    argv.extend_from_slice(args);
    run(&mut command(&argv))
}

/// `graceful-wait tcp --port PORT --source SOURCE --timeout T` in the container.
fn tcp_in_container(
    ns: &Netns,
    root: &EmptyRoot,
    port: &str,
    source: &str,
    timeout: &str,
) -> (i32, String) {
    in_container(
        ns,
        root,
        true,
        &[
            "tcp",
            "--port",
            port,
            "--source",
            source,
            "--timeout",
            timeout,
        ],
    )
}

#[test]
fn runs_in_an_empty_root_inside_a_pod_namespace() {
    if !root_or_skip("runs_in_an_empty_root_inside_a_pod_namespace") {
        return;
    }
    let ns = Netns::new("root");
    let root = EmptyRoot::with_binary("tcp");
    let app = HelperProcess::listen("app", 0, &ns.exec());
    let port = app.port.to_string();
    let url = format!("localhost:{port}/health");

    // The app listens in the pod: every way of looking sees it.
    for source in SOURCES {
        let (code, log) = tcp_in_container(&ns, &root, &port, source, "300ms");
        assert_eq!(
            code, 124,
            "{source}: the listener in the pod was not seen: {log}"
        );
    }
    let (code, log) = in_container(
        &ns,
        &root,
        true,
        &["http", "--url", &url, "--timeout", "300ms"],
    );
    assert_eq!(
        code, 124,
        "localhost must resolve with no /etc/hosts: {log}"
    );
    assert!(log.contains("HTTP 200"), "{log}");

    // The app is gone: the waits end with 0.
    drop(app);
    for source in SOURCES {
        let (code, log) = tcp_in_container(&ns, &root, &port, source, "10s");
        assert_eq!(code, 0, "{source}: {log}");
    }
    let (code, log) = in_container(
        &ns,
        &root,
        true,
        &["http", "--url", &url, "--timeout", "10s"],
    );
    assert_eq!(code, 0, "{log}");
}

#[test]
fn a_listener_outside_the_pod_does_not_count() {
    if !root_or_skip("a_listener_outside_the_pod_does_not_count") {
        return;
    }
    let ns = Netns::new("outside");
    let root = EmptyRoot::with_binary("outside");
    let host_listener = listen_v4();
    let port = port_of(&host_listener).to_string();
    for source in SOURCES {
        let (code, log) = tcp_in_container(&ns, &root, &port, source, "10s");
        assert_eq!(
            code, 0,
            "{source}: the host's listener is not in the pod: {log}"
        );
    }
}

#[test]
fn without_proc_the_proc_source_fails_loudly() {
    if !root_or_skip("without_proc_the_proc_source_fails_loudly") {
        return;
    }
    let ns = Netns::new("noproc");
    let root = EmptyRoot::with_binary("noproc");
    let (code, log) = in_container(
        &ns,
        &root,
        false,
        &[
            "tcp",
            "--port",
            "20000",
            "--source",
            "proc",
            "--timeout",
            "300ms",
        ],
    );
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("cannot read /proc/net/tcp"), "{log}");
    assert!(
        log.contains("deadline passed while looks were failing"),
        "{log}"
    );
    // netlink needs no /proc at all.
    let (code, log) = in_container(
        &ns,
        &root,
        false,
        &[
            "tcp",
            "--port",
            "20000",
            "--source",
            "netlink",
            "--timeout",
            "10s",
        ],
    );
    assert_eq!(code, 0, "{log}");
}
