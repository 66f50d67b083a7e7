//! `graceful-wait tcp` against real sockets on loopback, through both sources.
//!
//! Each original-loop failure mode has a test: the shell loop
//! `netstat -tulpn | grep LISTEN | grep :20000` matches text, so it waits
//! forever on a process named `app:20000`, on ports that share digits, and
//! exits 0 at once when netstat is missing. The binary matches the local port
//! of LISTEN sockets only.

mod support;
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use support::*;

#[test]
#[ignore = "re-exec entry point: the tests run it as their helper process"]
fn helper_process() {
    helper_main();
}

fn tcp(port: u16, source: &str, extra: &[&str]) -> std::process::Command {
    let port = port.to_string();
    let mut args = vec!["tcp", "--port", &port, "--source", source];
    args.extend_from_slice(extra);
    graceful_wait(&args)
}

#[test]
fn returns_once_the_listener_closes() {
    for source in SOURCES {
        let listener = listen_v4();
        let port = port_of(&listener);
        let mut w = Watched::spawn(&mut tcp(port, source, &[]));
        // It has looked and seen the listener: now close it.
        w.expect_line(&format!("waiting: listening on [{port}]"));
        drop(listener);
        let (code, log) = w.finish();
        assert_eq!(code, 0, "{source}: {log}");
        assert!(log.contains("condition met"), "{source}: {log}");
    }
}

#[test]
fn does_not_return_while_a_listener_is_open() {
    for source in SOURCES {
        let listener = listen_v4();
        let (code, log) = run(&mut tcp(
            port_of(&listener),
            source,
            &["--timeout", "500ms"],
        ));
        assert_eq!(
            code, 124,
            "{source}: must still be waiting at the deadline: {log}"
        );
        assert!(log.contains("deadline passed"), "{source}: {log}");
    }
}

#[test]
fn ipv6_listeners_count() {
    let Some(listener) = listen_v6() else {
        skipped("ipv6_listeners_count", "no IPv6 loopback on this machine");
        return;
    };
    for source in SOURCES {
        let (code, log) = run(&mut tcp(
            port_of(&listener),
            source,
            &["--timeout", "300ms"],
        ));
        assert_eq!(code, 124, "{source}: {log}");
    }
}

#[test]
fn any_of_several_ports_keeps_it_waiting() {
    let open = listen_v4();
    let closed = free_port();
    let ports = format!("{closed},{}", port_of(&open));
    let (code, log) =
        run(graceful_wait(&["tcp", "--timeout", "300ms"]).env("GRACEFUL_WAIT_TCP_PORT", &ports));
    assert_eq!(code, 124, "{log}");
    assert!(
        log.contains(&format!("listening on [{}]", port_of(&open))),
        "{log}"
    );
}

#[test]
fn a_process_named_like_the_port_does_not_count() {
    // The original loop greps netstat -p output, where this process's name shows.
    let other = HelperProcess::listen("app:20000", 0, &[]);
    let watched = free_port();
    for source in SOURCES {
        let (code, log) = run(&mut tcp(watched, source, &["--timeout", "5s"]));
        assert_eq!(
            code, 0,
            "{source}: a listener on {} is not one on {watched}: {log}",
            other.port
        );
    }
    // And the helper really listens (so the test could fail):
    let (code, log) = run(&mut tcp(other.port, "netlink", &["--timeout", "300ms"]));
    assert_eq!(code, 124, "{log}");
}

/// Three ports P, P/10 and P*10+1 (like 20000, 2000, 20001): the shorter and
/// longer ones listen, P does not.
fn digit_sharing_ports() -> (u16, TcpListener, TcpListener) {
    for base in (2000u16..6553).step_by(37) {
        let watched = base * 10;
        let (Ok(short), Ok(long)) = (
            TcpListener::bind((Ipv4Addr::LOCALHOST, base)),
            TcpListener::bind((Ipv4Addr::LOCALHOST, watched + 1)),
        ) else {
            continue;
        };
        if TcpListener::bind((Ipv4Addr::UNSPECIFIED, watched)).is_ok() {
            return (watched, short, long);
        }
    }
    panic!("no free trio of digit-sharing ports on this machine");
}

#[test]
fn ports_that_share_digits_do_not_count() {
    let (watched, short, long) = digit_sharing_ports();
    for source in SOURCES {
        let (code, log) = run(&mut tcp(watched, source, &["--timeout", "5s"]));
        assert_eq!(code, 0, "{source}: {log}");
        for other in [&short, &long] {
            let (code, log) = run(&mut tcp(port_of(other), source, &["--timeout", "300ms"]));
            assert_eq!(code, 124, "{source}: {log}");
        }
    }
}

#[test]
fn a_udp_socket_on_the_port_does_not_count() {
    let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = udp.local_addr().unwrap().port();
    for source in SOURCES {
        let (code, log) = run(&mut tcp(port, source, &["--timeout", "5s"]));
        assert_eq!(code, 0, "{source}: {log}");
    }
}

#[test]
fn established_sockets_on_or_to_the_port_do_not_count() {
    // A connection whose server end has local port P and whose client end has
    // remote port P; the listener is closed after accept, so nothing LISTENs.
    let listener = listen_v4();
    let port = port_of(&listener);
    let client = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    let (server, _) = listener.accept().unwrap();
    drop(listener);
    for source in SOURCES {
        let (code, log) = run(&mut tcp(port, source, &["--timeout", "5s"]));
        assert_eq!(code, 0, "{source}: {log}");
    }
    drop((client, server));
}

#[test]
fn unreadable_proc_net_is_an_error_not_port_closed() {
    let empty = std::env::temp_dir().join(format!("gw-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let (code, log) = run(&mut tcp(
        free_port(),
        "proc",
        &["--proc-net", empty.to_str().unwrap(), "--timeout", "300ms"],
    ));
    std::fs::remove_dir(&empty).unwrap();
    // It holds until the deadline (a failed look never releases the proxy
    // early), then says the looks were failing: 1, not 124 and never 0.
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("deadline passed while looks were failing"),
        "{log}"
    );
    assert!(log.contains("cannot read") && log.contains("tcp"), "{log}");
    assert!(!log.contains("condition met"), "{log}");
}

#[test]
fn the_chained_command_runs_after_the_wait_whatever_its_outcome() {
    let dir = std::env::temp_dir().join(format!("gw-chain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let marker = dir.join("ran");
    let touch = format!("echo ran > {}", marker.display());

    // Condition met, CMD fails: CMD's status is the exit status.
    let (code, log) = run(&mut tcp(
        free_port(),
        "netlink",
        &["--", "sh", "-c", "exit 3"],
    ));
    assert_eq!(code, 3, "{log}");
    assert!(log.contains("chained command failed"), "{log}");

    // Deadline passed: CMD still runs, and the status stays 124.
    let listener = listen_v4();
    let (code, log) = run(&mut tcp(
        port_of(&listener),
        "netlink",
        &["--timeout", "200ms", "--", "sh", "-c", &touch],
    ));
    assert_eq!(code, 124, "{log}");
    assert!(marker.exists(), "CMD did not run after the deadline: {log}");

    // CMD that does not exist: 127, as a shell says; never success.
    let (code, log) = run(&mut tcp(
        free_port(),
        "netlink",
        &["--", "/no/such/command"],
    ));
    assert_eq!(code, 127, "{log}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["tcp"][..],
        &["tcp", "--port", "0"],
        &["tcp", "--port", "70000"],
        &["tcp", "--port", "1", "--timeout", "soon"],
        &["tcp", "--port", "1", "--source", "magic"],
        &["nonsense"],
    ] {
        let (code, log) = run(&mut graceful_wait(args));
        assert_eq!(code, 2, "{args:?}: {log}");
    }
}

#[test]
fn json_logs_are_one_object_per_line() {
    let (code, log) = run(&mut tcp(free_port(), "netlink", &["--log-format", "json"]));
    assert_eq!(code, 0, "{log}");
    for line in log.lines() {
        assert!(
            line.starts_with('{') && line.ends_with('}'),
            "not JSON: {line}"
        );
    }
    let (code, log) = run(&mut tcp(free_port(), "netlink", &["-q"]));
    assert_eq!(
        (code, log.as_str()),
        (0, ""),
        "-q prints only warnings and errors"
    );
}

#[test]
fn log_copy_writes_the_same_lines_to_a_file() {
    let path = std::env::temp_dir().join(format!("gw-copy-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let (code, log) = run(&mut tcp(
        free_port(),
        "netlink",
        &["--log-copy", path.to_str().unwrap()],
    ));
    let copy = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("condition met"), "{log}");
    assert_eq!(copy.trim_end(), log.trim_end());
}

/// Every deadline is kept, whatever else blocks: a --log-copy FIFO nobody
/// reads does not hold the hook (it would block in open forever), and an
/// absurd duration is a usage error, not an overflow.
#[test]
fn nothing_blocks_the_hook_past_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let (code, log) = run(&mut graceful_wait(&[
        "--log-copy",
        fifo.to_str().unwrap(),
        "tcp",
        "--port",
        &free_port().to_string(),
    ]));
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("cannot open --log-copy"), "{log}");
    for args in [
        &["tcp", "--port", "1", "--timeout", "500000000000y"][..],
        &["tcp", "--port", "1", "--interval", "500000000000y"],
        &[
            "callback",
            "--url",
            "localhost:1/",
            "--timeout",
            "500000000000y",
        ],
    ] {
        let (code, log) = run(&mut graceful_wait(args));
        assert_eq!(code, 2, "{args:?}: {log}");
        assert!(log.contains("maximum"), "{log}");
    }
}

/// A seccomp filter that answers every receive with 0 bytes without running
/// it (as a runtime's filter can): the netlink reads must see that, not spin
/// on it. The wait says why, reads /proc/net instead, and still ends at its
/// deadline — here 124, since the listener it can see there stays open.
#[test]
fn a_netlink_socket_that_answers_with_nothing_cannot_hold_the_wait() {
    const SECCOMP_EXEC: &str = "import seccomp, os, sys
f = seccomp.SyscallFilter(seccomp.ALLOW)
for name in ('recvfrom', 'recvmsg'):
    f.add_rule(seccomp.ERRNO(0), name)
f.load()
os.execv(sys.argv[1], sys.argv[1:])";
    let test = "a_netlink_socket_that_answers_with_nothing_cannot_hold_the_wait";
    if !skip::have("/usr/bin/python3", &["-c", "import seccomp"]) {
        skipped(
            test,
            "python3-seccomp is not installed (tests/run installs it as root)",
        );
        return;
    }
    let listener = listen_v4();
    let port = port_of(&listener).to_string();
    let mut cmd = std::process::Command::new("/usr/bin/python3");
    cmd.args(["-c", SECCOMP_EXEC, bin(), "tcp", "--port", &port])
        .args(["--timeout", "1s"]);
    // support::run fails the test if it is still running at the hang guard.
    let (code, log) = run(&mut cmd);
    assert_eq!(code, 124, "{log}");
    assert!(
        log.contains("empty datagram"),
        "the reason is logged: {log}"
    );
}
