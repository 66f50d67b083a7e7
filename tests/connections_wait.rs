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

/// A socket connecting out *from* the watched port (SYN_SENT) when the wait
/// walks, which opens afterwards: its opening was counted before the walk,
/// and its peer's in another namespace, so the counters do not move. It is
/// followed by its addresses, so the wait holds for it when the walk's other
/// connection closes.
#[test]
fn a_connection_opening_from_the_port_at_the_walk_is_followed() {
    if !root_or_skip("a_connection_opening_from_the_port_at_the_walk_is_followed") {
        return;
    }
    let pod = Netns::new("conn-open");
    let remote = Netns::new("conn-remote");
    let ip = |args: &[&str]| {
        let status = std::process::Command::new("ip")
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "ip {args:?}");
    };
    ip(&[
        "link",
        "add",
        "gwpod0",
        "type",
        "veth",
        "peer",
        "name",
        "gwremote0",
    ]);
    ip(&["link", "set", "gwpod0", "netns", &pod.0]);
    ip(&["link", "set", "gwremote0", "netns", &remote.0]);
    for (ns, dev, addr) in [
        (&pod, "gwpod0", "10.77.0.1/24"),
        (&remote, "gwremote0", "10.77.0.2/24"),
    ] {
        ip(&["-n", &ns.0, "addr", "add", addr, "dev", dev]);
        ip(&["-n", &ns.0, "link", "set", dev, "up"]);
    }
    // The remote service's accept queue is full (backlog 0, one connection
    // waiting), so it drops new handshakes until that one is accepted.
    let service = in_netns(&remote, || {
        let service = TcpListener::bind("10.77.0.2:0").unwrap();
        // SAFETY: listen(2) on our own listening socket, to shrink its backlog.
        assert_eq!(
            unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&service), 0) },
            0
        );
        service
    });
    let service_addr = service.local_addr().unwrap();
    let (port, filler, first_client, first_server, opening) = in_netns(&pod, move || {
        let filler = TcpStream::connect(service_addr).unwrap();
        let (listener, port, client, server) = connected();
        drop(listener);
        // From 10.77.0.1:PORT to the service, without waiting: SYN_SENT.
        let opening = connect_from(&format!("10.77.0.1:{port}"), service_addr);
        (port, filler, client, server, opening)
    });
    let mut w = Watched::spawn(&mut connections_in(&pod, &port));
    w.expect_line(&format!("waiting: connections on [{port}]"));
    // Room in the service's queue: the retried handshake opens the
    // connection (about a second later), which from then on serves.
    let (queued, _) = service.accept().unwrap();
    let mut ready = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&opening),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: poll(2) on one pollfd we own.
    assert_eq!(
        unsafe { libc::poll(&mut ready, 1, 30_000) },
        1,
        "never opened"
    );
    assert_eq!(opening.take_error().unwrap().map(|e| e.to_string()), None);
    // The walk's serving connection closes: looked up, the other is found.
    abort(first_server);
    abort(first_client);
    w.expect_line("looked up");
    assert!(w.running(), "released with a connection left");
    drop(opening);
    let (code, log) = w.finish();
    assert_eq!(code, 0, "{log}");
    drop((queued, filler));
}

/// A TCP socket bound to `from` (SO_REUSEADDR), connecting to `to` without
/// waiting for the handshake.
fn connect_from(from: &str, to: std::net::SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let (from, to): (std::net::SocketAddrV4, std::net::SocketAddrV4) =
        match (from.parse().unwrap(), to) {
            (std::net::SocketAddr::V4(f), std::net::SocketAddr::V4(t)) => (f, t),
            other => panic!("IPv4 only: {other:?}"),
        };
    let sockaddr = |a: std::net::SocketAddrV4| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a new socket this function owns (handed to TcpStream), with
    // correctly sized option values and addresses.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        assert!(fd >= 0);
        let one: libc::c_int = 1;
        let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let set = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            size,
        );
        assert_eq!(set, 0);
        let f = sockaddr(from);
        assert_eq!(
            libc::bind(fd, (&f as *const libc::sockaddr_in).cast(), len),
            0,
            "bind: {}",
            std::io::Error::last_os_error()
        );
        let t = sockaddr(to);
        let rc = libc::connect(fd, (&t as *const libc::sockaddr_in).cast(), len);
        assert!(
            rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINPROGRESS)
        );
        TcpStream::from_raw_fd(fd)
    }
}

/// Closes with a reset (SO_LINGER 0): the socket is gone within close().
fn abort(stream: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on our own socket with a correctly sized value.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&stream),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}
