//! The waits woken by events: each test sets the interval to an hour, so the
//! safety-net look never comes within the test, and a wait that ends with 0
//! before its deadline has been woken by the kernel's announcement of the
//! close (sock_diag destroy events). Functional assertions only: which exit
//! status, which log lines, never how fast.

mod support;
use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    os::fd::FromRawFd,
};
use support::*;

#[test]
#[ignore = "re-exec entry point: the tests run it as their helper process"]
fn helper_process() {
    helper_main();
}

/// Looks an hour apart, a deadline well past the test's own hang guard:
/// only an event ends such a wait with 0.
const WOKEN_ONLY: [&str; 4] = ["--interval", "1h", "--timeout", "1h"];

fn wait(mode: &str, what: &str, value: &str) -> std::process::Command {
    let mut args = vec!["-v", mode, what, value];
    args.extend_from_slice(&WOKEN_ONLY);
    graceful_wait(&args)
}

fn ends_when_closed(mut w: Watched, first_look: &str, close: impl FnOnce()) {
    w.expect_line(first_look);
    close();
    let (code, log) = w.finish();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("a watched socket closed; looking again"),
        "{log}"
    );
    assert!(log.contains("condition met"), "{log}");
}

#[test]
fn a_closing_listener_wakes_the_tcp_wait_ipv4_and_ipv6() {
    let mut listeners = vec![listen_v4()];
    match listen_v6() {
        Some(l) => listeners.push(l),
        None => skipped("…_ipv6", "no IPv6 loopback on this machine"),
    }
    for listener in listeners {
        let port = port_of(&listener).to_string();
        let w = Watched::spawn(&mut wait("tcp", "--port", &port));
        ends_when_closed(w, &format!("waiting: listening on [{port}]"), || {
            drop(listener)
        });
    }
}

/// A listener with SO_REUSEPORT, so several can share one port.
fn reuseport_listener(port: u16) -> TcpListener {
    // SAFETY: plain socket calls on a new fd that the TcpListener then owns.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let one: libc::c_int = 1;
        let set = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEPORT,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        assert_eq!(set, 0);
        let listener = TcpListener::from_raw_fd(fd);
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        };
        let bound = libc::bind(
            fd,
            &addr as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(bound, 0, "{}", std::io::Error::last_os_error());
        assert_eq!(libc::listen(fd, 16), 0);
        listener
    }
}

#[test]
fn in_a_reuseport_group_only_the_last_listener_closing_ends_the_wait() {
    let first = reuseport_listener(0);
    let port = port_of(&first);
    let second = reuseport_listener(port);
    let mut w = Watched::spawn(&mut wait("tcp", "--port", &port.to_string()));
    w.expect_line(&format!("waiting: listening on [{port}]"));
    drop(first);
    // Woken, it looked again and still saw the other listener.
    w.expect_line("a watched socket closed; looking again");
    w.expect_line(&format!("looked busy=[{port}]"));
    assert!(w.running(), "it ended while a listener was open");
    drop(second);
    let (code, log) = w.finish();
    assert_eq!(code, 0, "{log}");
}

#[test]
fn a_closing_connection_wakes_the_connections_wait() {
    let listener = listen_v4();
    let port = port_of(&listener);
    let client = TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).unwrap();
    let (server, _) = listener.accept().unwrap();
    let w = Watched::spawn(&mut wait("connections", "--port", &port.to_string()));
    ends_when_closed(w, &format!("waiting: connections on [{port}]"), || {
        // The client first: the app's end goes to CLOSE_WAIT (still
        // counted), then closes (LAST_ACK), and is destroyed on the last ACK.
        drop(client);
        drop(server);
    });
}

#[test]
fn a_closing_listener_wakes_the_http_wait() {
    let server = TestServer::start(Answer::Always(200));
    let w = Watched::spawn(&mut wait("http", "--url", &server.url("/health")));
    ends_when_closed(w, "waiting: answering (", || server.close());
}

#[test]
fn the_default_interval_is_2s_with_events_and_100ms_when_polling() {
    let listener = listen_v4();
    let port = port_of(&listener).to_string();
    let (code, log) = run(&mut graceful_wait(&[
        "tcp",
        "--port",
        &port,
        "--timeout",
        "200ms",
    ]));
    assert_eq!(code, 124, "{log}");
    assert!(
        log.contains("events=true") && log.contains("interval_ms=2000"),
        "{log}"
    );
    // /proc/net has no events: the wait polls, and says so.
    let (code, log) = run(&mut graceful_wait(&[
        "tcp",
        "--port",
        &port,
        "--source",
        "proc",
        "--timeout",
        "200ms",
    ]));
    assert_eq!(code, 124, "{log}");
    assert!(
        log.contains("events=false") && log.contains("interval_ms=100"),
        "{log}"
    );
    // An http wait that may end on a status needs its looks.
    let server = TestServer::start(Answer::Always(200));
    let (code, log) = run(&mut graceful_wait(&[
        "http",
        "--url",
        &server.url("/"),
        "--down-status",
        "503",
        "--timeout",
        "200ms",
    ]));
    assert_eq!(code, 124, "{log}");
    assert!(log.contains("interval_ms=100"), "{log}");
}

#[test]
fn the_process_and_file_waits_say_they_are_event_driven() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("done");
    let (code, log) = run(&mut graceful_wait(&[
        "file",
        "--exists",
        marker.to_str().unwrap(),
        "--timeout",
        "200ms",
    ]));
    assert_eq!(code, 124, "{log}");
    assert!(
        log.contains("inotify=true") && log.contains("interval_ms=2000"),
        "{log}"
    );
    // Not this test process: a wait never counts its own ancestors.
    let mut app = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let (code, log) = run(&mut graceful_wait(&[
        "process",
        "--pid",
        &app.id().to_string(),
        "--timeout",
        "200ms",
    ]));
    let _ = app.kill();
    let _ = app.wait();
    assert_eq!(code, 124, "{log}");
    assert!(
        log.contains("pidfds=true") && log.contains("interval_ms=2000"),
        "{log}"
    );
}
