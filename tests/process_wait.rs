//! `graceful-wait process`: the app's processes, by pid, by name, and every
//! process of other users in a shared PID namespace.

mod support;
use std::{
    fs,
    process::{Command, Stdio},
};
use support::*;

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
