//! `graceful-wait exec`: the entrypoint wrapper. Statuses pass through,
//! signals reach CMD, no zombie survives when it is PID 1, and the callbacks
//! fire in the documented order.

mod support;
use std::{fs, process::Command};
use support::*;

#[test]
#[ignore = "re-exec entry point: the tests run it as their helper process"]
fn helper_process() {
    helper_main();
}

fn exec(args: &[&str]) -> Command {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    graceful_wait(&all)
}

#[test]
fn exit_statuses_pass_through() {
    assert_eq!(run(&mut exec(&["--", "sh", "-c", "exit 7"])).0, 7);
    assert_eq!(run(&mut exec(&["--", "true"])).0, 0);
    // CMD killed by SIGTERM: 128 + 15.
    assert_eq!(run(&mut exec(&["--", "sh", "-c", "kill -TERM $$"])).0, 143);
    // As a shell says: 127 not found, 126 found but cannot run.
    let (code, log) = run(&mut exec(&["--", "/no/such/app"]));
    assert_eq!(code, 127, "{log}");
    assert!(log.contains("cannot start"), "{log}");
    let (code, log) = run(&mut exec(&["--", "/tmp"]));
    assert_eq!(code, 126, "{log}");
    assert_eq!(run(&mut exec(&[])).0, 2, "CMD is required");
}

#[test]
fn signals_reach_cmd() {
    // The markers are split with "" so the wrapper's own log of the command
    // line cannot be mistaken for them.
    let script = "trap 'echo got\"\"-USR1 >&2' USR1; trap 'echo got\"\"-HUP >&2' HUP; trap 'echo got\"\"-TERM >&2; exit 5' TERM; \
                  echo now\"\"-ready >&2; while :; do sleep 0.01; done";
    let mut w = Watched::spawn(&mut exec(&["--", "sh", "-c", script]));
    w.expect_line("now-ready");
    let pid = w.pid();
    for (sig, line) in [(libc::SIGUSR1, "got-USR1"), (libc::SIGHUP, "got-HUP")] {
        // SAFETY: kill(2) on the wrapper this test started.
        unsafe { libc::kill(pid, sig) };
        w.expect_line(line);
    }
    unsafe { libc::kill(pid, libc::SIGTERM) };
    w.expect_line("got-TERM");
    let (code, log) = w.finish();
    assert_eq!(code, 5, "CMD's own status after its TERM trap: {log}");
}

#[test]
fn as_pid_1_it_reaps_orphans() {
    if !root_or_skip("as_pid_1_it_reaps_orphans") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let orphan = dir.path().join("orphan");
    // The subshell starts a sleep and exits: the sleep is re-parented to PID 1
    // (the wrapper). The script then waits until /proc no longer lists it,
    // which only happens once PID 1 reaps it; a wrapper that does not reap
    // leaves a zombie forever, and the hang guard fails the test.
    let script = format!(
        "(sleep 0.05 & echo $! > {o}); p=$(cat {o}); while [ -e /proc/$p ]; do sleep 0.01; done; exit 7",
        o = orphan.display()
    );
    let (code, log) = run(Command::new("unshare").args([
        "-p",
        "-f",
        "--mount-proc",
        "--kill-child",
        bin(),
        "exec",
        "--",
        "sh",
        "-c",
        &script,
    ]));
    assert_eq!(code, 7, "{log}");
    assert!(log.contains("init=true"), "it ran as PID 1: {log}");
}

#[test]
fn callbacks_fire_in_the_documented_order() {
    let server = TestServer::start(Answer::Always(200));
    let dir = tempfile::tempdir().unwrap();
    let done = dir.path().join("done");
    let script = "trap 'exit 0' TERM; echo now\"\"-ready >&2; while :; do sleep 0.01; done";
    let mut w = Watched::spawn(&mut exec(&[
        "--on-term",
        &server.url("/term"),
        "--on-exit",
        &server.url("/exit"),
        "--quit-proxy",
        &server.url("/quitquitquit"),
        "--done-file",
        done.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        script,
    ]));
    w.expect_line("now-ready");
    // SAFETY: kill(2) on the wrapper this test started.
    unsafe { libc::kill(w.pid(), libc::SIGTERM) };
    let (code, log) = w.finish();
    assert_eq!(code, 0, "{log}");
    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/term", "/exit", "/quitquitquit"], "{log}");
    assert_eq!(fs::read_to_string(&done).unwrap(), "exit 0\n");
    let written = log.find("done file written").expect("done file logged");
    let quit = log.find("quitquitquit").expect("quit logged");
    assert!(
        written < quit,
        "the done file comes before quitting the proxy: {log}"
    );
}

#[test]
fn wait_ready_holds_cmd_until_the_proxy_answers() {
    let proxy = TestServer::start(Answer::FailFirst(3));
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let touch = format!("echo > {}", ran.display());
    let (code, log) = run(&mut exec(&[
        "--wait-ready",
        &proxy.url("/healthz/ready"),
        "--",
        "sh",
        "-c",
        &touch,
    ]));
    assert_eq!(code, 0, "{log}");
    assert!(ran.exists());
    assert_eq!(proxy.requests().len(), 4, "three 503s, then ready: {log}");

    // A proxy that never gets ready: CMD never starts.
    let never = TestServer::start(Answer::Always(503));
    let _ = fs::remove_file(&ran);
    let (code, log) = run(&mut exec(&[
        "--wait-ready",
        &never.url("/"),
        "--ready-timeout",
        "300ms",
        "--",
        "sh",
        "-c",
        &touch,
    ]));
    assert_eq!(code, 1, "{log}");
    assert!(
        !ran.exists(),
        "CMD started although the proxy never was ready"
    );
}

#[test]
fn sigterm_while_waiting_for_the_proxy_ends_without_starting_cmd() {
    let never = TestServer::start(Answer::Always(503));
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let touch = format!("echo > {}", ran.display());
    let mut w = Watched::spawn(&mut exec(&[
        "--wait-ready",
        &never.url("/"),
        "--",
        "sh",
        "-c",
        &touch,
    ]));
    w.expect_line("waiting for the proxy to be ready");
    // SAFETY: kill(2) on the wrapper this test started.
    unsafe { libc::kill(w.pid(), libc::SIGTERM) };
    let (code, log) = w.finish();
    assert_eq!(code, 143, "{log}");
    assert!(log.contains("SIGTERM arrived first"), "{log}");
    assert!(!ran.exists(), "CMD started after SIGTERM");
}

/// An absurd duration is refused before CMD runs (once it overflowed after
/// CMD had run, losing its status and the done file).
#[test]
fn an_absurd_duration_is_refused_before_cmd_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let touch = format!("touch {}", marker.display());
    let (code, log) = run(&mut exec(&[
        "--callback-timeout",
        "500000000000y",
        "--",
        "sh",
        "-c",
        &touch,
    ]));
    assert_eq!(code, 2, "{log}");
    assert!(!marker.exists(), "CMD ran: {log}");
}

/// CMD that never starts still gets its done file (with the status), so the
/// proxy's file wait is not held to its deadline for nothing.
#[test]
fn the_done_file_is_written_when_cmd_never_starts() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("app.done");
    let m = marker.to_str().unwrap();
    let (code, log) = run(&mut exec(&["--done-file", m, "--", "/no/such/app"]));
    assert_eq!(code, 127, "{log}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "exit 127\n");
    std::fs::remove_file(&marker).unwrap();
    let proxy = TestServer::start(Answer::Always(503));
    let (code, log) = run(&mut exec(&[
        "--wait-ready",
        &proxy.url("/ready"),
        "--ready-timeout",
        "300ms",
        "--done-file",
        m,
        "--",
        "true",
    ]));
    assert_eq!(code, 1, "{log}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "exit 1\n");
}
