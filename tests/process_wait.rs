//! `graceful-wait process`: the app's processes, by pid, by name, and every
//! process of other users in a shared PID namespace.

mod support;
use std::{
    fs,
    process::{Command, Stdio},
};
use support::*;

/// `sleep 60` running under `name`: through a symlink, not a copy — the
/// kernel names a process after the path it ran (comm), and no written-to
/// copy can be "text file busy" when a parallel test forks.
fn sleep_named(name: &str) -> (tempfile::TempDir, std::process::Child) {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join(name);
    std::os::unix::fs::symlink("/bin/sleep", &app).unwrap();
    let child = Command::new(&app)
        .arg("60")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    (dir, child)
}

#[test]
fn process_waits_for_a_pid_and_for_a_name() {
    let (_dir, mut child) = sleep_named("gwtestapp");
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

/// A name longer than the kernel's 15-byte comm matches as pgrep matches it
/// (once it never matched, so the wait ended at once while the app ran).
#[test]
fn a_long_name_matches_its_first_15_bytes_or_the_full_program_name() {
    let (_dir, mut child) = sleep_named("envoy-sidecar-helper");
    for extra in [&[][..], &["--full-name"]] {
        let mut args = vec![
            "process",
            "--name",
            "envoy-sidecar-helper",
            "--timeout",
            "300ms",
        ];
        args.extend_from_slice(extra);
        let (code, log) = run(&mut graceful_wait(&args));
        assert_eq!(
            code, 124,
            "{extra:?}: it must hold while the app runs: {log}"
        );
        assert!(log.contains("waiting: running: envoy-sidecar-h"), "{log}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn nothing_selected_at_the_start_is_said_loudly() {
    let (code, log) = run(&mut graceful_wait(&[
        "process",
        "--name",
        "no-such-process-gw",
    ]));
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("no selected process is running now"), "{log}");
}

/// A process whose status cannot be read or parsed is a failed look, never
/// "gone": the wait holds to its deadline and exits 1.
#[test]
fn an_unreadable_status_is_a_failed_look_not_gone() {
    let proc_dir = tempfile::tempdir().unwrap();
    fs::create_dir(proc_dir.path().join("4242")).unwrap();
    fs::write(proc_dir.path().join("4242/status"), "garbage\n").unwrap();
    let (code, log) = run(&mut graceful_wait(&[
        "process",
        "--exclude-uid",
        "1337",
        "--proc",
        proc_dir.path().to_str().unwrap(),
        "--timeout",
        "300ms",
    ]));
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("cannot read") && log.contains("4242"), "{log}");
    assert!(!log.contains("condition met"), "{log}");
}

/// With /proc mounted hidepid=2, other users' processes are invisible to the
/// proxy's uid: their absence proves nothing, so every look fails.
#[test]
fn a_proc_that_hides_other_users_processes_is_a_failed_look() {
    if !root_or_skip("a_proc_that_hides_other_users_processes_is_a_failed_look") {
        return;
    }
    let script = format!(
        "mount -o remount,hidepid=2 /proc || exit 99; sleep 30 & exec setpriv --reuid=65534 --regid=65534 --clear-groups {} process --exclude-uid 65534 --timeout 300ms",
        bin()
    );
    let (code, log) = in_pid_namespace(&script);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("hidepid"), "{log}");
}

/// The deadline cuts a look that waits for an exit: an interval longer than
/// the test's hang guard ends at the 300 ms deadline all the same.
#[test]
fn the_deadline_cuts_a_long_interval() {
    let mut child = Command::new("sleep").arg("60").spawn().unwrap();
    let pid = child.id().to_string();
    let (code, log) = run(&mut graceful_wait(&[
        "process",
        "--pid",
        &pid,
        "--interval",
        "60s",
        "--timeout",
        "300ms",
    ]));
    assert_eq!(code, 124, "{log}");
    child.kill().unwrap();
    child.wait().unwrap();
}
