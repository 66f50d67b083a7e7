//! The parts a test binary plays when a test re-runs it (`GW_ROLE`) inside
//! a pod — the pod lab's namespaces or a real container under podman: the
//! app that calls back through its proxy on SIGTERM, the proxy stand-in, and
//! the external service that counts the callbacks.

use super::answer;
use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::{mpsc::channel, Arc},
    thread,
    time::Duration,
};

/// Where the app sends its callback: the proxy, on the pod's loopback.
pub const PROXY_PORT: u16 = 15001;

/// Plays the role `GW_ROLE` names, if it names one of these.
pub fn main() {
    match std::env::var("GW_ROLE").as_deref() {
        Ok("app") => app(),
        Ok("external") => external(),
        Ok("proxy") => proxy(),
        _ => {}
    }
}

// ---------------------------------------------------------------- the app

static TERM_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_sigterm(_: libc::c_int) {
    let fd = TERM_PIPE.load(std::sync::atomic::Ordering::Relaxed);
    // SAFETY: write(2) is async-signal-safe; the fd is the pipe set up below.
    unsafe { libc::write(fd, b"t".as_ptr().cast(), 1) };
}

/// An app that serves TCP and an HTTP health endpoint on `GW_APP_PORT` and, on
/// SIGTERM, finishes `GW_WORK_MS` of work, sends its termination callback
/// through the proxy, then stops listening and exits. With `GW_STUBBORN` it
/// never stops listening (the kubelet's SIGKILL ends it). With
/// `GW_CLOSE_FIRST` it stops accepting at once on SIGTERM and then works and
/// calls back — a common, correct shutdown that a port-based wait misreads.
pub fn app() {
    let port: u16 = std::env::var("GW_APP_PORT").unwrap().parse().unwrap();
    let work =
        Duration::from_millis(std::env::var("GW_WORK_MS").map_or(300, |w| w.parse().unwrap()));
    let stubborn = std::env::var_os("GW_STUBBORN").is_some();
    let close_first = std::env::var_os("GW_CLOSE_FIRST").is_some();
    // A real handler: as PID 1 of its namespace, SIGTERM with the default
    // action would simply be dropped.
    let mut fds = [0; 2];
    // SAFETY: plain syscalls; the handler only writes to the pipe.
    unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        TERM_PIPE.store(fds[1], std::sync::atomic::Ordering::Relaxed);
        libc::signal(libc::SIGTERM, on_sigterm as *const () as libc::sighandler_t);
    }
    let listener = TcpListener::bind(("0.0.0.0", port)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let closing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let accept_closing = closing.clone();
    let (closed_tx, closed) = channel::<()>();
    thread::spawn(move || {
        // Non-blocking accepts, so the listener can be closed on request.
        while !accept_closing.load(std::sync::atomic::Ordering::Relaxed) {
            match listener.accept() {
                Ok((conn, _)) => {
                    conn.set_nonblocking(false).unwrap();
                    thread::spawn(move || answer(conn, 200));
                }
                Err(_) => thread::sleep(Duration::from_millis(2)),
            }
        }
        drop(listener);
        let _ = closed_tx.send(());
    });
    say("GW_APP ready");
    let mut byte = [0u8; 1];
    // SAFETY: reading one byte from our own pipe.
    while unsafe { libc::read(fds[0], byte.as_mut_ptr().cast(), 1) } != 1 {}
    say("GW_APP sigterm");
    if close_first {
        closing.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = closed.recv();
        say("GW_APP stopped listening");
    }
    thread::sleep(work); // the app's own shutdown work (draining, flushing)
    let result = callback();
    say(&format!("GW_APP callback {result}"));
    if stubborn {
        loop {
            thread::park();
        }
    }
    say("GW_APP exit");
    std::process::exit(0); // closes the listener, ends the container
}

pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\n{line}");
    let _ = out.flush();
}

/// POST /callback through the proxy; "ok" only on a 200 from the far end.
fn callback() -> String {
    let attempt = || -> std::io::Result<String> {
        let addr = format!("127.0.0.1:{PROXY_PORT}").parse().unwrap();
        let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        let body = "terminated: drained 3 requests";
        // The path names the pod, so a cluster's receiver can tell whose
        // callback arrived.
        let pod = std::env::var("POD_NAME").unwrap_or_default();
        write!(conn, "POST /callback/{pod} HTTP/1.1\r\nHost: external\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
        let mut response = String::new();
        conn.read_to_string(&mut response)?;
        Ok(response.lines().next().unwrap_or("no response").to_string())
    };
    match attempt() {
        Ok(status) if status.starts_with("HTTP/1.1 200") => "ok".into(),
        Ok(status) => format!("failed: {status}"),
        Err(e) => format!("failed: {e}"),
    }
}

// --------------------------------------------------- the external service

/// Counts callbacks: prints `GW_FROM <path>` and `GW_CALLBACK <body>` for
/// each, answers 200.
pub fn external() {
    let listener = TcpListener::bind(("0.0.0.0", 8080)).unwrap();
    say("GW_EXT ready");
    for mut conn in listener.incoming().map_while(Result::ok) {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        let body = loop {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break None,
                Ok(n) => data.extend_from_slice(&buf[..n]),
            }
            let text = String::from_utf8_lossy(&data).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    break Some((
                        head.lines().next().unwrap_or_default().to_string(),
                        body.to_string(),
                    ));
                }
            }
        };
        if let Some((request_line, body)) = body {
            if request_line.starts_with("POST /callback") {
                // Whose (the path), then what.
                let path = request_line.split_whitespace().nth(1).unwrap_or_default();
                say(&format!("GW_FROM {path}"));
                say(&format!("GW_CALLBACK {body}"));
            }
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    }
}

// ------------------------------------------------------ the proxy stand-in

/// Where the proxy stand-in takes `POST /drain` and `/quitquitquit` unless
/// `GW_ADMIN_PORT` says otherwise, as pilot-agent's `request POST drain`
/// reaches Envoy through the agent.
pub const DRAIN_PORT: u16 = 15020;

/// A proxy as Envoy is to the app: it listens on the pod's loopback at
/// [`PROXY_PORT`] and forwards each connection to `GW_UPSTREAM`
/// (host:port). On SIGTERM it says so and exits at once, as Envoy does when
/// nothing holds it: every callback after that is refused. It also listens
/// on the ports `GW_PROXY_PORTS` lists (a mesh's admin, inbound and metrics
/// ports, comma-separated), as its mesh's proxy does, so a wait that counted
/// them as the app's would hold to its timeout.
///
/// On its admin port (`GW_ADMIN_PORT`, [`DRAIN_PORT`] by default):
/// `POST /drain` starts a drain, as a mesh's native sidecar hook does at the
/// start of termination. `GW_DRAIN` says what it stops: `outbound` — new
/// connections from the app are refused (Envoy before 1.34 draining every
/// listener); anything else — inbound only, which a proxy stand-in has none
/// of, so the app's calls go on. `/quitquitquit` exits at once, as the Cloud
/// SQL proxy's does.
pub fn proxy() {
    let upstream = std::env::var("GW_UPSTREAM").expect("GW_UPSTREAM");
    let outbound_drain = std::env::var("GW_DRAIN").is_ok_and(|d| d == "outbound");
    let admin_port: u16 = std::env::var("GW_ADMIN_PORT").map_or(DRAIN_PORT, |p| p.parse().unwrap());
    extern "C" fn quit(_: libc::c_int) {
        const LINE: &[u8] = b"\nGW_PROXY sigterm\n";
        // SAFETY: write(2) and _exit are async-signal-safe.
        unsafe {
            libc::write(1, LINE.as_ptr().cast(), LINE.len());
            libc::_exit(0)
        };
    }
    // SAFETY: installing a handler that only writes and calls _exit.
    unsafe { libc::signal(libc::SIGTERM, quit as *const () as libc::sighandler_t) };
    let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let listener = TcpListener::bind(("127.0.0.1", PROXY_PORT)).unwrap();
    // The default admin port is the pod's loopback's, as pilot-agent's; one
    // set by GW_ADMIN_PORT listens on every address, so the kubelet's own
    // httpGet (sent to the pod's IP) reaches it too.
    let admin_address = if admin_port == DRAIN_PORT {
        "127.0.0.1"
    } else {
        "0.0.0.0"
    };
    let admin = TcpListener::bind((admin_address, admin_port)).unwrap();
    // The mesh's other ports: held open, every connection closed at once.
    let ports = std::env::var("GW_PROXY_PORTS").unwrap_or_default();
    for port in ports.split(',').filter(|p| !p.is_empty()) {
        let port: u16 = port.parse().unwrap();
        if port == PROXY_PORT || port == admin_port {
            continue;
        }
        let held = TcpListener::bind(("0.0.0.0", port)).unwrap();
        thread::spawn(move || for _ in held.incoming() {});
    }
    let drain_flag = draining.clone();
    thread::spawn(move || {
        for mut conn in admin.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 1024];
            let n = conn.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            let path = request.split_whitespace().nth(1).unwrap_or_default();
            if path == "/quitquitquit" {
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                say("GW_PROXY quitquitquit");
                std::process::exit(0);
            }
            if request.starts_with("POST /drain") {
                drain_flag.store(true, std::sync::atomic::Ordering::SeqCst);
                say(&format!(
                    "GW_PROXY draining ({})",
                    if outbound_drain {
                        "outbound too"
                    } else {
                        "inbound only"
                    }
                ));
            }
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    say("GW_PROXY ready");
    for conn in listener.incoming().map_while(Result::ok) {
        if outbound_drain && draining.load(std::sync::atomic::Ordering::SeqCst) {
            // Refused as a drained listener refuses: closed unanswered.
            say("GW_PROXY refused a call (drained)");
            drop(conn);
            continue;
        }
        let upstream = upstream.clone();
        thread::spawn(move || {
            let Ok(far) = TcpStream::connect(&upstream) else {
                return;
            };
            let (mut a, mut b) = (conn.try_clone().unwrap(), far.try_clone().unwrap());
            thread::spawn(move || {
                let _ = std::io::copy(&mut a, &mut b);
                let _ = b.shutdown(std::net::Shutdown::Write);
            });
            let (mut far, mut conn) = (far, conn);
            let _ = std::io::copy(&mut far, &mut conn);
            let _ = conn.shutdown(std::net::Shutdown::Write);
        });
    }
}
