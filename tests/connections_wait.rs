//! `graceful-wait connections`: the inbound drain, through both sources.

mod support;
use std::net::TcpStream;
use support::*;

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

/// A client that has half-closed while the app still owes its answer
/// (CLOSE_WAIT on the app's side) is still being served: the wait holds.
#[test]
fn a_half_closed_connection_is_still_being_served() {
    for source in SOURCES {
        let listener = listen_v4();
        let port = port_of(&listener).to_string();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        drop(listener);
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let (code, log) = run(&mut graceful_wait(&[
            "connections",
            "--port",
            &port,
            "--source",
            source,
            "--timeout",
            "300ms",
        ]));
        assert_eq!(code, 124, "{source}: {log}");
        drop((client, server));
    }
}
