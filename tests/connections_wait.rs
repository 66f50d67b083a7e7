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
