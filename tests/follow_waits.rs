//! Waits that follow the app rather than its port: `file` (a marker on the
//! shared volume), `process` (the app's processes, in a shared PID
//! namespace) and `connections` (the inbound drain).

mod support;
use std::{
    fs,
    net::TcpStream,
    process::{Command, Stdio},
};
use support::*;

#[test]
fn helper_process() {
    helper_main();
}

#[test]
fn file_returns_when_the_marker_appears() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("app.done");
    let path = marker.to_str().unwrap();
    let mut w = Watched::spawn(&mut graceful_wait(&["file", "--exists", path]));
    w.expect_line("inotify=true");
    w.expect_line("waiting: no");
    fs::write(&marker, "exit 0\n").unwrap();
    let (code, log) = w.finish();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("exists"), "{log}");
    // Already there: at once. Never there: the deadline.
    assert_eq!(run(&mut graceful_wait(&["file", "--exists", path])).0, 0);
    let (code, log) = run(&mut graceful_wait(&[
        "file",
        "--exists",
        dir.path().join("never").to_str().unwrap(),
        "--timeout",
        "300ms",
    ]));
    assert_eq!(code, 124, "{log}");
}

#[test]
fn file_in_a_missing_folder_polls_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("later/app.done");
    let mut w = Watched::spawn(&mut graceful_wait(&[
        "file",
        "--exists",
        marker.to_str().unwrap(),
        "--interval",
        "20ms",
    ]));
    w.expect_line("inotify unavailable");
    w.expect_line("inotify=false");
    fs::create_dir(dir.path().join("later")).unwrap();
    fs::write(&marker, "").unwrap();
    let (code, log) = w.finish();
    assert_eq!(code, 0, "{log}");
}

#[test]
fn process_waits_for_a_pid_and_for_a_name() {
    let dir = tempfile::tempdir().unwrap();
    // A process with a name of its own: a copy of sleep.
    let app = dir.path().join("gwtestapp");
    fs::copy("/bin/sleep", &app).unwrap();
    let mut child = Command::new(&app)
        .arg("60")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    for args in [
        ["process", "--pid", &pid],
        ["process", "--name", "gwtestapp"],
    ] {
        let mut w = Watched::spawn(&mut graceful_wait(&args));
        w.expect_line(&format!("gwtestapp[{pid}]"));
        drop(w); // not done: it is still waiting for the running app
    }
    let mut w = Watched::spawn(&mut graceful_wait(&["process", "--name", "gwtestapp"]));
    w.expect_line("waiting: running: gwtestapp");
    child.kill().unwrap();
    child.wait().unwrap();
    let (code, log) = w.finish();
    assert_eq!(code, 0, "{log}");
    // Nothing selected at all: done at once; a selector is required.
    assert_eq!(
        run(&mut graceful_wait(&[
            "process",
            "--name",
            "no-such-process-gw"
        ]))
        .0,
        0
    );
    assert_eq!(run(&mut graceful_wait(&["process"])).0, 2);
}

/// `sh -c SCRIPT` as PID 1 of a new PID namespace with its own /proc.
fn in_pid_namespace(script: &str) -> (i32, String) {
    run(Command::new("unshare").args([
        "-p",
        "-f",
        "--mount-proc",
        "--kill-child",
        "sh",
        "-c",
        script,
    ]))
}

#[test]
fn process_exclude_uid_selects_everything_else() {
    if !root_or_skip("process_exclude_uid_selects_everything_else") {
        return;
    }
    // A new PID namespace: PID 1 is the shell (an ancestor, never counted),
    // a root-owned sleep is "the app", the wait runs as uid 65534 (the proxy).
    let wait = format!(
        "sleep 0.3 & exec setpriv --reuid=65534 --regid=65534 --clear-groups {} process --exclude-uid 65534",
        bin()
    );
    let (code, log) = in_pid_namespace(&wait);
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("waiting: running: sleep["),
        "it saw the app: {log}"
    );
    let hold = format!("sleep 30 & exec setpriv --reuid=65534 --regid=65534 --clear-groups {} process --exclude-uid 65534 --timeout 300ms", bin());
    let (code, log) = in_pid_namespace(&hold);
    assert_eq!(code, 124, "{log}");
}

#[test]
fn connections_waits_for_the_inbound_drain() {
    for source in SOURCES {
        let listener = listen_v4();
        let port = port_of(&listener).to_string();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let mut w = Watched::spawn(&mut graceful_wait(&[
            "connections",
            "--port",
            &port,
            "--source",
            source,
        ]));
        w.expect_line(&format!("waiting: connections on [{port}]"));
        drop((client, server));
        let (code, log) = w.finish();
        assert_eq!(code, 0, "{source}: {log}");
        // The listener alone is not a connection.
        let (code, log) = run(&mut graceful_wait(&[
            "connections",
            "--port",
            &port,
            "--source",
            source,
        ]));
        assert_eq!(code, 0, "{source}: {log}");
    }
}
