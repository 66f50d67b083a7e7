//! `graceful-wait connections`: the inbound drain, through both sources.

mod support;
use std::net::{TcpListener, TcpStream};
use support::*;

/// A listener on loopback with one accepted connection: (listener, its port,
/// the client's end, the server's end).
fn connected() -> (TcpListener, String, TcpStream, TcpStream) {
    let listener = listen_v4();
    let port = port_of(&listener).to_string();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (listener, port, client, server)
}

/// `graceful-wait connections --port PORT --source SOURCE EXTRA...`
fn connections(port: &str, source: &str, extra: &[&str]) -> std::process::Command {
    let mut args = vec!["connections", "--port", port, "--source", source];
    args.extend_from_slice(extra);
    graceful_wait(&args)
}

#[test]
fn connections_waits_for_the_inbound_drain() {
    for source in SOURCES {
        let (_listener, port, client, server) = connected();
        let mut w = Watched::spawn(&mut connections(&port, source, &[]));
        w.expect_line(&format!("waiting: connections on [{port}]"));
        drop((client, server));
        let (code, log) = w.finish();
        assert_eq!(code, 0, "{source}: {log}");
        // The listener alone is not a connection.
        let (code, log) = run(&mut connections(&port, source, &[]));
        assert_eq!(code, 0, "{source}: {log}");
    }
}

/// A client that has half-closed while the app still owes its answer
/// (CLOSE_WAIT on the app's side) is still being served: the wait holds.
#[test]
fn a_half_closed_connection_is_still_being_served() {
    for source in SOURCES {
        let (listener, port, client, server) = connected();
        drop(listener);
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let (code, log) = run(&mut connections(&port, source, &["--timeout", "300ms"]));
        assert_eq!(code, 124, "{source}: {log}");
        drop((client, server));
    }
}

/// Runs `make` on a thread that has joined `ns`: the sockets it opens live
/// in that namespace, whichever thread uses them afterwards.
fn in_netns<T: Send + 'static>(ns: &Netns, make: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{}", ns.0);
    std::thread::spawn(move || {
        let file = std::fs::File::open(path).unwrap();
        // SAFETY: setns on this thread only, with a namespace fd we own.
        let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        make()
    })
    .join()
    .unwrap()
}

/// `connections --port PORT -v` run in `ns`.
fn connections_in(ns: &Netns, port: &str) -> std::process::Command {
    let mut cmd = command(&ns.exec());
    cmd.args([bin(), "connections", "--port", port, "-v"]);
    cmd
}

/// In a quiet pod, the last connection's close is decided by looking that
/// connection up again, without walking the kernel's table: no connection
/// opened since the walk (the namespace's counters say so) and nothing
/// listens, so none can have.
#[test]
fn a_quiet_pods_last_close_is_decided_without_a_walk() {
    if !root_or_skip("a_quiet_pods_last_close_is_decided_without_a_walk") {
        return;
    }
    let ns = Netns::new("conn-quiet");
    let (port, client, server) = in_netns(&ns, || {
        let (listener, port, client, server) = connected();
        drop(listener);
        (port, client, server)
    });
    let mut w = Watched::spawn(&mut connections_in(&ns, &port));
    w.expect_line(&format!("waiting: connections on [{port}]"));
    drop((client, server));
    let (code, log) = w.finish();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("none opened since"), "{log}");
}

/// Looking up the walk's connections alone would miss one that opened after
/// the walk: when the namespace's counters have moved, or something listens,
/// the wait walks again and holds for the new connection.
#[test]
fn a_connection_opened_after_the_walk_holds_the_wait() {
    if !root_or_skip("a_connection_opened_after_the_walk_holds_the_wait") {
        return;
    }
    let ns = Netns::new("conn-new");
    let (listener, port, first_client, first_server) = in_netns(&ns, connected);
    let mut w = Watched::spawn(&mut connections_in(&ns, &port));
    w.expect_line(&format!("waiting: connections on [{port}]"));
    // A second client arrives after the walk; then the listener and the
    // first connection close.
    let (second_client, second_server) = in_netns(&ns, move || {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    });
    drop((first_client, first_server));
    // The first connection's close is announced; looking it up finds it
    // gone, but the counters moved: the walk finds the second one.
    w.expect_line("walked");
    assert!(w.running(), "released with a connection left");
    drop((second_client, second_server));
    let (code, log) = w.finish();
    assert_eq!(code, 0, "{log}");
}
