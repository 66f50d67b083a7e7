//! What the integration tests share: the built binary, a child process whose
//! log lines the test can wait for (events, not sleeps), real listeners, and a
//! helper process made by re-running the test binary itself.
#![allow(dead_code)] // each test file uses its own part of this module

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{Ipv4Addr, Ipv6Addr, TcpListener, TcpStream},
    process::{Child, ChildStdin, Command, ExitStatus, Stdio},
    sync::mpsc::{channel, Receiver, RecvTimeoutError},
    thread,
    time::{Duration, Instant},
};
use wait_timeout::ChildExt;

pub mod cgroup;
pub mod docs;
pub mod kubelet;
pub mod roles;
pub mod skip;

pub use skip::skipped;

/// The lists of a pod spec that hold containers, main containers first.
pub const CONTAINER_LISTS: [&str; 2] = ["containers", "initContainers"];

/// The container named `name` of a pod spec, in either list.
pub fn container_in<'a>(spec: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    CONTAINER_LISTS
        .iter()
        .filter_map(|list| spec[list].as_array())
        .flatten()
        .find(|c| c["name"] == name)
}

/// [`container_in`], to change it.
pub fn container_in_mut<'a>(
    spec: &'a mut serde_json::Value,
    name: &str,
) -> Option<&'a mut serde_json::Value> {
    let list = CONTAINER_LISTS.iter().find(|list| {
        spec[list]
            .as_array()
            .is_some_and(|l| l.iter().any(|c| c["name"] == name))
    })?;
    spec[list]
        .as_array_mut()?
        .iter_mut()
        .find(|c| c["name"] == name)
}

/// A bound on how long a test waits for something that should happen at once.
/// It guards against a hang; it is never what a test asserts.
pub const HANG_GUARD: Duration = Duration::from_secs(30);

/// The binary under test: the one cargo built for this test run, or the one
/// `GW_BINARY` names (.ci/run points it at the release build the Dockerfile copies).
pub fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("GW_BINARY")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_graceful-wait").to_string())
    })
}

pub fn graceful_wait(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("GRACEFUL_WAIT_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Runs to the end (bounded by [`HANG_GUARD`]); returns status and stderr.
pub fn run(cmd: &mut Command) -> (i32, String) {
    let w = Watched::spawn(cmd);
    w.finish()
}

/// A running graceful-wait whose stderr lines arrive on a channel.
pub struct Watched {
    child: Child,
    lines: Receiver<String>,
    log: Vec<String>,
}

impl Watched {
    pub fn spawn(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn graceful-wait");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Blocks until a log line contains `text`; panics with the log so far if
    /// the process ends or the hang guard passes first.
    pub fn expect_line(&mut self, text: &str) -> String {
        let until = Instant::now() + HANG_GUARD;
        loop {
            match self
                .lines
                .recv_timeout(until.saturating_duration_since(Instant::now()))
            {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no line with {text:?}; log:\n{}", self.log.join("\n"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "exited before logging {text:?}; log:\n{}",
                        self.log.join("\n")
                    )
                }
            }
        }
    }

    /// Whether it has not exited yet.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for the exit (bounded by [`HANG_GUARD`]); returns status and the whole log.
    /// True while the process has not exited.
    pub fn still_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn finish(mut self) -> (i32, String) {
        let status = match self.child.wait_timeout(HANG_GUARD).expect("wait") {
            Some(s) => s,
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "graceful-wait did not exit within {HANG_GUARD:?}; log:\n{}",
                    self.log.join("\n")
                );
            }
        };
        self.log.extend(self.lines.iter());
        (code(status), self.log.join("\n"))
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

pub fn listen_v4() -> TcpListener {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0")
}

pub fn listen_v6() -> Option<TcpListener> {
    TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).ok()
}

/// A port nothing listens on right now (bound, then released).
pub fn free_port() -> u16 {
    listen_v4().local_addr().unwrap().port()
}

pub fn port_of(l: &TcpListener) -> u16 {
    l.local_addr().unwrap().port()
}

/// A separate process that listens on a TCP port until its stdin closes:
/// the test binary itself, re-run with `GW_HELPER` set (see `helper_main`).
pub struct HelperProcess {
    child: Child,
    _stdin: ChildStdin,
    pub port: u16,
}

impl HelperProcess {
    /// `prefix` runs the helper under another command (e.g. `ip netns exec NS`).
    pub fn listen(arg0: &str, port: u16, prefix: &[&str]) -> Self {
        Self::spawn(arg0, ("GW_HELPER", &port.to_string()), prefix)
    }

    /// The same on one address, e.g. `[::]:9090`.
    pub fn listen_on(arg0: &str, addr: &str, prefix: &[&str]) -> Self {
        Self::spawn(arg0, ("GW_HELPER", addr), prefix)
    }

    /// A DNS server on 127.0.0.1:53 that resolves `name` to 127.0.0.1.
    pub fn dns(name: &str, prefix: &[&str]) -> Self {
        Self::spawn("dns", ("GW_HELPER_DNS", name), prefix)
    }

    fn spawn(arg0: &str, (key, value): (&str, &str), prefix: &[&str]) -> Self {
        use std::os::unix::process::CommandExt;
        let exe = std::env::current_exe().unwrap();
        let mut cmd = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&exe);
                c
            }
            None => {
                let mut c = Command::new(&exe);
                c.arg0(arg0);
                c
            }
        };
        let mut child = cmd
            .args(HELPER_ARGS)
            .env(key, value)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn helper");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // libtest prints "test helper_process ... " before it on the same line.
                if let Some((_, p)) = line.split_once("GW_HELPER_READY ") {
                    let _ = tx.send(p.trim().parse::<u16>().unwrap());
                }
            }
        });
        let port = rx
            .recv_timeout(HANG_GUARD)
            .expect("helper never became ready");
        Self {
            child,
            _stdin: stdin,
            port,
        }
    }
}

impl HelperProcess {
    /// The pid of the process spawned (the prefix's first command, if any).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for HelperProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a test runs its own binary as a helper process: the `helper_process`
/// entry point alone, uncaptured. The entry point is `#[ignore]`d, so that a
/// plain `cargo test` counts only real tests, and run here explicitly.
pub const HELPER_ARGS: [&str; 5] = [
    "--exact",
    "helper_process",
    "--nocapture",
    "--test-threads=1",
    "--ignored",
];

/// The helper's body: call it from a `#[test] fn helper_process()` in each
/// test file. Without `GW_HELPER` it returns at once. With it, it listens on
/// that port (0 = any) on every IPv4 address, or on that address (`[::]:9090`),
/// announces the port, answers each connection with HTTP 200, and exits when
/// its stdin closes.
pub fn helper_main() {
    if let Ok(name) = std::env::var("GW_HELPER_DNS") {
        dns_main(&name);
    }
    let Ok(port) = std::env::var("GW_HELPER") else {
        return;
    };
    let addr: std::net::SocketAddr = match port.parse::<u16>() {
        Ok(p) => (Ipv4Addr::UNSPECIFIED, p).into(),
        Err(_) => port.parse().unwrap(),
    };
    let listener = TcpListener::bind(addr).unwrap();
    println!("GW_HELPER_READY {}", port_of(&listener));
    std::io::stdout().flush().unwrap();
    thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            thread::spawn(move || answer(conn, 200));
        }
    });
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    std::process::exit(0);
}

/// Both listener sources, so every tcp case runs against each.
pub const SOURCES: [&str; 2] = ["netlink", "proc"];

/// True when this process may create namespaces; otherwise prints the
/// SKIPPED line the project promises instead of a silent pass.
pub fn root_or_skip(test: &str) -> bool {
    if !skip::is_root() {
        skipped(
            test,
            "needs root for network/mount/PID namespaces (CI runs as root)",
        );
        return false;
    }
    for tool in ["ip", "unshare", "chroot"] {
        if Command::new(tool).arg("--version").output().is_err() {
            skipped(
                test,
                &format!("`{tool}` is not installed (tests/run installs iproute2 and util-linux as root)"),
            );
            return false;
        }
    }
    true
}

/// A network namespace (`ip netns add`, loopback up), deleted on drop even
/// when the test fails.
pub struct Netns(pub String);

impl Netns {
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "gw-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let ok = |c: &mut Command| assert!(c.status().expect("run ip").success(), "{c:?} failed");
        ok(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns(name);
        ok(Command::new("ip").args(["-n", &ns.0, "link", "set", "lo", "up"]));
        ns
    }

    /// `ip netns exec NAME`, to put in front of a command.
    pub fn exec(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.0]
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A folder that holds what a bare image holds: the static binary and an empty
/// `proc/` — no libc, no shell, no /etc. Removed on drop.
pub struct EmptyRoot(pub std::path::PathBuf);

impl EmptyRoot {
    pub fn with_binary(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("gw-root-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("proc")).unwrap();
        std::fs::copy(bin(), dir.join("graceful-wait")).unwrap();
        EmptyRoot(dir)
    }
}

impl Drop for EmptyRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `cmd[0] cmd[1..]` as a Command.
pub fn command(argv: &[&str]) -> Command {
    let mut c = Command::new(argv[0]);
    c.args(&argv[1..]);
    c
}

/// A request as the test server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How the test server answers each request.
#[derive(Clone, Copy)]
pub enum Answer {
    /// This status, always.
    Always(u16),
    /// 503 to the first N requests, then 200.
    FailFirst(usize),
    /// Read the request, never answer.
    Never,
    /// Read the request, close without a response.
    Hangup,
    /// Read the request, reset the connection (SO_LINGER 0).
    Reset,
    /// Read the request, answer with something that is not HTTP/1.
    Garbage,
}

/// A real HTTP (or HTTPS) listener on loopback that records every request
/// and serves until closed or dropped; then its port refuses connections.
/// Its HTTP is a fixed response line: enough to be a peer for the client
/// under test, which is hyper.
pub struct TestServer {
    pub port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Request>>>,
    /// PEM of the self-signed certificate, for HTTPS servers.
    pub cert_pem: Option<String>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start(answer: Answer) -> TestServer {
        Self::start_inner(answer, None)
    }

    pub fn start_https(answer: Answer) -> TestServer {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![ck.cert.der().clone()], key)
            .unwrap();
        let mut server = Self::start_inner(answer, Some(std::sync::Arc::new(config)));
        server.cert_pem = Some(ck.cert.pem());
        server
    }

    fn start_inner(
        answer: Answer,
        tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    ) -> TestServer {
        let listener = listen_v4();
        let port = port_of(&listener);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop, stopped) = channel::<()>();
        let log = seen.clone();
        let thread = thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.try_recv().is_ok() {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (log, tls) = (log.clone(), tls.clone());
                thread::spawn(move || serve(conn, tls, answer, &log));
            }
            // Dropping the listener here closes it: the port stops answering.
        });
        TestServer {
            port,
            seen,
            cert_pem: None,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/path`, or `https://localhost:PORT/path` (the
    /// name the certificate is for).
    pub fn url(&self, path: &str) -> String {
        match self.cert_pem {
            Some(_) => format!("https://localhost:{}{path}", self.port),
            None => format!("http://127.0.0.1:{}{path}", self.port),
        }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }

    /// Closes the listener and waits for that: the port refuses from now on.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
            // Wake the accept loop so it sees the stop.
            let _ = TcpStream::connect(("127.0.0.1", self.port));
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One connection of the test server: read the request, record it, answer.
fn serve(
    conn: TcpStream,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    answer: Answer,
    log: &std::sync::Mutex<Vec<Request>>,
) {
    if let Answer::Reset = answer {
        // SO_LINGER with a zero timeout: close() sends a reset, not a FIN.
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt on a socket we own, with a correctly sized value.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&conn),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &linger as *const libc::linger as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }
    let mut stream: Box<dyn ReadWrite> = match tls {
        Some(c) => Box::new(rustls::StreamOwned::new(
            rustls::ServerConnection::new(c).unwrap(),
            conn,
        )),
        None => Box::new(conn),
    };
    let Some(req) = read_request(&mut stream) else {
        return;
    };
    let n = {
        let mut l = log.lock().unwrap();
        l.push(req);
        l.len()
    };
    let status = match answer {
        Answer::FailFirst(k) if n <= k => 503,
        Answer::FailFirst(_) => 200,
        Answer::Always(s) => s,
        // The request was read, so closing sends a clean FIN, not a reset.
        Answer::Hangup => return,
        Answer::Reset => {
            drop(stream);
            return;
        }
        Answer::Garbage => {
            let _ = stream.write_all(b"\x15\x03\x03\x00\x02\x02\x28 not HTTP at all\r\n\r\n");
            let _ = stream.flush();
            return;
        }
        Answer::Never => {
            thread::park();
            return;
        }
    };
    respond(&mut stream, status);
}

/// Answers one request the way a real server does (the lab's app uses it too).
pub fn answer(mut conn: TcpStream, code: u16) {
    if read_request(&mut conn).is_some() {
        respond(&mut conn, code);
    }
}

/// Writes the response, then reads until the client closes, so the close
/// never turns into a reset (which the client under test would rightly read
/// as down).
fn respond(stream: &mut dyn ReadWrite, status: u16) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    let _ = stream.flush();
    let mut buf = [0u8; 4096];
    while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
}

fn read_request(conn: &mut impl Read) -> Option<Request> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = conn.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let mut lines = head.lines();
            let mut first = lines.next()?.split_whitespace();
            let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| {
                    l.split_once(':')
                        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                })
                .collect();
            let len = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            if body.len() >= len {
                return Some(Request {
                    method,
                    path,
                    headers,
                    body: body.to_string(),
                });
            }
        }
    }
}

pub trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

/// A DNS server on 127.0.0.1:53 that knows one name (A 127.0.0.1) and
/// answers NXDOMAIN for everything else: a test peer for the client's
/// resolver, in a network namespace of the test's own. Announces itself like
/// the listener helper, exits when stdin closes.
fn dns_main(known: &str) -> ! {
    let socket = std::net::UdpSocket::bind("127.0.0.1:53").unwrap();
    println!("GW_HELPER_READY 53");
    std::io::stdout().flush().unwrap();
    thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let mut buf = [0u8; 512];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let q = &buf[..n];
        if n < 12 {
            continue;
        }
        // The question: labels up to a zero byte, then type and class.
        let (mut i, mut labels) = (12, Vec::new());
        while i < n && q[i] != 0 {
            let len = q[i] as usize;
            labels.push(String::from_utf8_lossy(&q[i + 1..(i + 1 + len).min(n)]).into_owned());
            i += 1 + len;
        }
        let end = i + 5; // zero byte, type, class
        if end > n {
            continue;
        }
        let qtype = u16::from_be_bytes([q[i + 1], q[i + 2]]);
        let name = labels.join(".");
        let found = name.eq_ignore_ascii_case(known.trim_end_matches('.'));
        let mut r = Vec::from(&q[..2]); // id
        r.extend_from_slice(&[0x81, if found { 0x80 } else { 0x83 }]); // response, RD+RA, NOERROR/NXDOMAIN
        r.extend_from_slice(&[0, 1, 0, u8::from(found && qtype == 1), 0, 0, 0, 0]);
        r.extend_from_slice(&q[12..end]);
        if found && qtype == 1 {
            r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
        }
        let _ = socket.send_to(&r, from);
    }
}
