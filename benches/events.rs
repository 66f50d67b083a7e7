//! The event-driven waits beside the original tool's shell loops, in one run,
//! in a network namespace of their own (root: `cargo bench --bench events`;
//! `benches/run.sh` runs it). Elsewhere it prints SKIPPED.
//!
//! - Reaction: from the moment the app's last sign goes (its listener closes,
//!   its last connection closes, its marker appears, its process exits) to
//!   the wait's exit, over 50 such moments each, at random points in time
//!   (a poller looks at fixed times; a close at a fixed delay after its start
//!   would flatter it). The pod holds 500 other listeners and 1,000
//!   connections meanwhile.
//! - CPU: what the waiting process uses (user + system, from wait4's rusage,
//!   which includes the loop's children) while waiting 6 s for a port that
//!   stays open, with 10 and with 20,000 other sockets in the pod, and while
//!   10,000 connections a second close on other ports.
//!
//! - Listeners (`GW_BENCH_ONLY=listeners`): the zero-config `listeners` wait
//!   run as the proxy's preStop, in the proxy's container (its cgroup), while
//!   the proxy holds 1,000 sockets (50 listeners, 475 connections) and the
//!   app, in a cgroup of its own, listens on one port: reaction to the app's
//!   close and CPU while waiting, beside the same wait by uid
//!   (`--exclude-uid 0`, the app as uid 1000), today's figures.
//!
//! The shell loops are the original tool's, with only the port changed:
//! `netstat -tulpn | grep LISTEN | grep :PORT` and `curl localhost:PORT/health`,
//! each followed by `sleep 1`.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{Ipv4Addr, Shutdown, TcpListener, TcpStream},
    os::{fd::AsRawFd, unix::process::CommandExt},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc::{channel, Receiver},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

#[path = "../tests/support/cgroup.rs"]
mod cgroup;
use cgroup::Cgroup;

const BIN: &str = env!("CARGO_BIN_EXE_graceful-wait");
const RUNS: usize = 50;
const WAIT: Duration = Duration::from_secs(6);

fn main() {
    // `cargo test --benches` runs bench targets with --test; stay quick there.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    if std::env::var_os("GW_BENCH_APP").is_some() {
        return app_listener();
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIPPED: events bench: needs root (a network namespace of its own)");
        return;
    }
    if std::env::var_os("GW_BENCH_INSIDE").is_none() {
        // The same program again, in a new network namespace: the socket
        // counts are then exactly the bench's own.
        let status = Command::new("unshare")
            .arg("-n")
            .arg(std::env::current_exe().unwrap())
            .args(std::env::args().skip(1))
            .env("GW_BENCH_INSIDE", "1")
            .status()
            .unwrap();
        std::process::exit(status.code().unwrap_or(1));
    }
    if let Ok(share) = std::env::var("GW_BENCH_HOLD") {
        return hold(&share);
    }
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(up.success());
    raise_fd_limit();

    // GW_BENCH_ONLY=cpu|startup|reaction|listeners runs one section.
    let only = std::env::var("GW_BENCH_ONLY").ok();
    let runs = |section: &str| only.as_deref().is_none_or(|o| o == section);
    if runs("cpu") {
        println!(
        "== CPU while waiting {WAIT:?} on an open port (user + system of the waiting process tree)"
    );
        for others in [10, 20_000] {
            let _pod = Pod::with_other_sockets(others);
            for (name, mut cmd) in cpu_cases() {
                let (total, waiting) = cpu_while_waiting(&mut cmd.0, cmd.1);
                println!(
                "   {others:>6} other sockets  {name:<36} total {:>9.2} ms   after the first look {}",
                ms(total),
                phase(name, waiting)
            );
            }
        }

        println!(
            "== CPU while waiting {WAIT:?}, 10,000 connections a second closing on another port"
        );
        {
            let _pod = Pod::with_other_sockets(10);
            for (name, mut cmd) in cpu_cases() {
                let churn = Churn::start(10_000);
                let (total, waiting) = cpu_while_waiting(&mut cmd.0, cmd.1);
                let rate = churn.stop();
                println!(
                "   {name:<36} total {:>9.2} ms = {:>5.2} % of a core   after the first look {}   (closes achieved: {rate:.0}/s)",
                ms(total),
                100.0 * total.as_secs_f64() / WAIT.as_secs_f64(),
                phase(name, waiting)
            );
            }
        }
    }
    if runs("startup") {
        println!("== start-up: spawn -> exit of `tcp --port P` on a closed port (the first look decides), {RUNS} runs");
        {
            let _pod = Pod::with_listeners_and_connections(500, 1_000);
            let port = port_of(&listen()).to_string();
            let mut times: Vec<Duration> = (0..RUNS)
                .map(|_| {
                    let started = Instant::now();
                    // Reaped by reap()'s wait4, which clippy cannot see.
                    #[allow(clippy::zombie_processes)]
                    let child = spawn(&mut ours(&["tcp", "--port", &port]));
                    reap(&child).0 - started
                })
                .collect();
            times.sort();
            println!(
                "   graceful-wait tcp, nothing listens   median {:>6.2} ms   p99 {:>6.2} ms",
                ms(percentile(&times, 50.0)),
                ms(percentile(&times, 99.0))
            );
        }
    }
    if runs("listeners") {
        listeners_by_container_and_by_uid();
    }
    if !runs("reaction") {
        return;
    }
    println!("== reaction: the app's last sign gone -> the wait's exit, {RUNS} moments at random, 500 other listeners and 1,000 connections");
    let _pod = Pod::with_listeners_and_connections(500, 1_000);
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let loops_runs = 20;
    let base = baseline();
    let compared: Vec<(&str, usize)> = match &base {
        Some(_) => vec![
            ("baseline: graceful-wait connections", RUNS),
            ("baseline: graceful-wait file", RUNS),
        ],
        None => Vec::new(),
    };
    if let Some(path) = &base {
        println!("   (baseline rows: {path})");
    }
    for (name, runs) in compared.into_iter().chain([
        ("graceful-wait tcp", RUNS),
        ("graceful-wait connections", RUNS),
        ("graceful-wait file", RUNS),
        ("graceful-wait process", RUNS),
        ("graceful-wait http", RUNS),
        ("graceful-wait tcp --source proc (polls)", RUNS),
        ("original loop: netstat | grep; sleep 1", loops_runs),
        ("original loop: curl; sleep 1", loops_runs),
    ]) {
        // GW_BENCH_WAITS=connections,file runs only the rows naming one of them.
        if std::env::var("GW_BENCH_WAITS").is_ok_and(|w| !w.split(',').any(|w| name.contains(w))) {
            continue;
        }
        let (on_baseline, wait) = match name.strip_prefix("baseline: ") {
            Some(wait) => (true, wait),
            None => (false, name),
        };
        ON_BASELINE.with(|b| b.set(on_baseline));
        let mut times: Vec<Duration> = (0..runs)
            .map(|_| reaction(wait, random.below(Duration::from_secs(1))))
            .collect();
        ON_BASELINE.with(|b| b.set(false));
        times.sort();
        println!(
            "   {name:<42} median {:>8.2} ms   p99 {:>8.2} ms   min {:>7.2} ms   max {:>8.2} ms   ({runs} runs)",
            ms(percentile(&times, 50.0)),
            ms(percentile(&times, 99.0)),
            ms(times[0]),
            ms(times[times.len() - 1]),
        );
    }
}

/// The waiting phase's CPU, for ours (the loops are many processes).
fn phase(name: &str, waiting: Duration) -> String {
    if name.starts_with("graceful-wait") {
        format!("{:>8.3} ms", ms(waiting))
    } else {
        "       —".into()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A fixed-seed xorshift: the same random moments on every run.
struct Random(u64);

impl Random {
    fn below(&mut self, limit: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_nanos(self.0 % limit.as_nanos() as u64)
    }
}

/// The soft limit on open files raised to the hard one (the pod's other
/// sockets are held by helper processes, each within it).
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
}

/// `GW_BENCH_HOLD=L,C`: a helper that opens L listeners and C connections
/// (both ends), says so, and holds them until its stdin closes.
fn hold(share: &str) {
    raise_fd_limit();
    let (l, c) = share.split_once(',').unwrap();
    let (listeners, connections) = (l.parse::<usize>().unwrap(), c.parse::<usize>().unwrap());
    let listeners: Vec<TcpListener> = (0..listeners.max(1)).map(|_| listen()).collect();
    let to = listeners[0].local_addr().unwrap();
    let connections: Vec<(TcpStream, TcpStream)> = (0..connections)
        .map(|_| {
            let client = TcpStream::connect(to).unwrap();
            let (server, _) = listeners[0].accept().unwrap();
            (client, server)
        })
        .collect();
    println!("held");
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop((listeners, connections));
}

fn listen() -> TcpListener {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap()
}

fn port_of(l: &TcpListener) -> u16 {
    l.local_addr().unwrap().port()
}

/// The pod's other sockets, held open by helper processes while it lives
/// (this process may not hold 20,000 files: no CAP_SYS_RESOURCE here).
struct Pod {
    holders: Vec<Child>,
}

impl Pod {
    fn with_listeners_and_connections(listeners: usize, connections: usize) -> Pod {
        // At most 8,000 sockets a helper.
        let parts = (listeners + 2 * connections).div_ceil(8_000).max(1);
        let holders = (0..parts)
            .map(|i| {
                let share = |n: usize| n / parts + usize::from(i < n % parts);
                let mut holder = Command::new(std::env::current_exe().unwrap())
                    .env(
                        "GW_BENCH_HOLD",
                        format!("{},{}", share(listeners), share(connections)),
                    )
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut line = String::new();
                BufReader::new(holder.stdout.take().unwrap())
                    .read_line(&mut line)
                    .unwrap();
                assert_eq!(line.trim(), "held", "a socket holder failed");
                holder
            })
            .collect();
        Pod { holders }
    }

    /// `n` other sockets: a twentieth of them listeners, the rest both ends
    /// of connections.
    fn with_other_sockets(n: usize) -> Pod {
        let listeners = (n / 20).max(2);
        Pod::with_listeners_and_connections(listeners, (n - listeners) / 2)
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        for mut holder in self.holders.drain(..) {
            drop(holder.stdin.take());
            let _ = holder.wait();
        }
    }
}

/// Something that answers HTTP on its port until closed.
struct HttpApp {
    listener: Arc<TcpListener>,
    thread: thread::JoinHandle<()>,
}

impl HttpApp {
    fn start() -> HttpApp {
        let listener = Arc::new(listen());
        let serving = listener.clone();
        let thread = thread::spawn(move || {
            for conn in serving.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n",
                );
            }
        });
        HttpApp { listener, thread }
    }

    fn port(&self) -> u16 {
        port_of(&self.listener)
    }

    /// Stops listening, as an app does on its way out: the accept loop is
    /// woken and ends, and the socket closes with the last reference.
    fn close(self) {
        // SAFETY: shutdown(2) on the listener's own fd.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        let _ = self.thread.join();
        drop(self.listener);
    }
}

/// Closes `rate` connections a second on a port nobody waits for.
struct Churn {
    stop: Arc<AtomicBool>,
    closed: Arc<AtomicU64>,
    started: Instant,
    thread: thread::JoinHandle<()>,
}

impl Churn {
    fn start(rate: u64) -> Churn {
        let stop = Arc::new(AtomicBool::new(false));
        let closed = Arc::new(AtomicU64::new(0));
        let (s, c) = (stop.clone(), closed.clone());
        let thread = thread::spawn(move || {
            let listener = listen();
            let to = listener.local_addr().unwrap();
            let started = Instant::now();
            while !s.load(Ordering::Relaxed) {
                // In batches of 100, paced to the rate.
                for _ in 0..100 {
                    let client = TcpStream::connect(to).unwrap();
                    let (server, _) = listener.accept().unwrap();
                    // Reset, not FIN: no TIME_WAIT to exhaust the ports.
                    reset_on_close(&client);
                    reset_on_close(&server);
                }
                let done = c.fetch_add(100, Ordering::Relaxed) + 100;
                let due = started + Duration::from_secs_f64(done as f64 / rate as f64);
                thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        });
        Churn {
            stop,
            closed,
            started: Instant::now(),
            thread,
        }
    }

    /// Stops; returns the closes per second achieved.
    fn stop(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.closed.load(Ordering::Relaxed) as f64 / self.started.elapsed().as_secs_f64()
    }
}

fn reset_on_close(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt with a correctly sized value on our own socket.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

thread_local! {
    /// Whether `ours` runs the baseline binary (GW_BENCH_BASELINE) instead.
    static ON_BASELINE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A build to compare with, side by side in the same run: the path of an
/// earlier `graceful-wait` (e.g. from `git worktree add /tmp/base REV`).
fn baseline() -> Option<String> {
    std::env::var("GW_BENCH_BASELINE")
        .ok()
        .filter(|p| !p.is_empty())
}

fn ours(args: &[&str]) -> Command {
    let bin = match ON_BASELINE.with(|b| b.get()) {
        true => baseline().expect("GW_BENCH_BASELINE"),
        false => BIN.to_string(),
    };
    let mut cmd = Command::new(bin);
    cmd.args(args);
    cmd
}

fn original_netstat_loop(port: u16) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &format!("while [ 1==1 ]; do netstat -tulpn | grep LISTEN | grep :{port}; if [ $? -gt 0 ]; then  break; fi; sleep 1; done")]);
    cmd
}

fn original_curl_loop(port: u16) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &format!("while [ 1==1 ]; do curl localhost:{port}/health; if [ $? -gt 0 ]; then  break; fi; sleep 1; done")]);
    cmd
}

/// The waits whose CPU is measured: each watches a port (a listener the
/// measurement holds open), with what signals its first look.
fn cpu_cases() -> Vec<(&'static str, (PortCommand, FirstSign))> {
    vec![
        (
            "graceful-wait tcp",
            (
                Box::new(|p| ours(&["tcp", "--port", &p.to_string()])),
                FirstSign::Stderr("waiting: "),
            ),
        ),
        (
            "graceful-wait connections",
            (
                Box::new(|p| ours(&["connections", "--port", &p.to_string()])),
                FirstSign::Stderr("waiting: "),
            ),
        ),
        (
            "graceful-wait tcp, polling (100ms)",
            (
                Box::new(|p| ours(&["tcp", "--port", &p.to_string(), "--source", "proc"])),
                FirstSign::Stderr("waiting: "),
            ),
        ),
        (
            "original loop: netstat | grep; sleep 1",
            (Box::new(original_netstat_loop), FirstSign::Stdout),
        ),
    ]
}

type PortCommand = Box<dyn Fn(u16) -> Command>;

/// How a wait shows that it has made its first look.
#[derive(Clone, Copy)]
enum FirstSign {
    /// Our log line.
    Stderr(&'static str),
    /// The loop's first output (netstat's line, curl's body).
    Stdout,
}

fn spawn(cmd: &mut Command) -> Child {
    // SAFETY: setsid in the child before exec: the loop and its children
    // form one process group, killed together if anything goes wrong.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Lines of a pipe, on a channel.
fn lines(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    thread::spawn(move || {
        // Read to the end even when nobody listens any more: a closed pipe
        // would change how the wait's log writes behave.
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

fn first_look(child: &mut Child, sign: FirstSign) {
    let (rx, want) = match sign {
        FirstSign::Stderr(text) => (lines(child.stderr.take().unwrap()), text),
        FirstSign::Stdout => (lines(child.stdout.take().unwrap()), ""),
    };
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let line = rx
            .recv_timeout(until.saturating_duration_since(Instant::now()))
            .expect("the wait never made its first look");
        if line.contains(want) {
            return;
        }
    }
}

/// Reaps the child; returns when, and the CPU its whole tree used.
fn reap(child: &Child) -> (Instant, Duration) {
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child with valid out-pointers.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let at = Instant::now();
    assert_eq!(pid, child.id() as i32);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (at, tv(usage.ru_utime) + tv(usage.ru_stime))
}

/// Time on the CPU of one (single-threaded) process so far, in ns precision
/// (the first field of /proc/PID/schedstat).
fn on_cpu(pid: u32) -> Duration {
    let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).unwrap();
    Duration::from_nanos(text.split_whitespace().next().unwrap().parse().unwrap())
}

/// The CPU of the whole run (start-up included, children included), and of
/// the waiting alone: from its first look to the close (the process only;
/// meaningful for ours, which is one single-threaded process).
fn cpu_while_waiting(command: &mut PortCommand, sign: FirstSign) -> (Duration, Duration) {
    let app = listen();
    // A connection on the port too, so `connections` has something to wait for.
    let client = TcpStream::connect(app.local_addr().unwrap()).unwrap();
    let (server, _) = app.accept().unwrap();
    let mut child = spawn(&mut command(port_of(&app)));
    first_look(&mut child, sign);
    let looked = on_cpu(child.id());
    thread::sleep(WAIT);
    let waiting = on_cpu(child.id()) - looked;
    drop(app);
    let _ = client.shutdown(Shutdown::Both);
    drop(client);
    drop(server);
    (reap(&child).1, waiting)
}

/// One close at `after` past the wait's first look; the time to its exit.
fn reaction(name: &str, after: Duration) -> Duration {
    let mut keep = None;
    let (mut child, sign, trigger): (Child, FirstSign, Box<dyn FnOnce()>) = match name {
        "graceful-wait tcp" | "graceful-wait tcp --source proc (polls)" => {
            let app = listen();
            let port = port_of(&app).to_string();
            let mut args = vec!["tcp", "--port", &port];
            if name.ends_with("(polls)") {
                args.extend(["--source", "proc"]);
            }
            let child = spawn(&mut ours(&args));
            (
                child,
                FirstSign::Stderr("waiting: "),
                Box::new(move || drop(app)),
            )
        }
        "graceful-wait connections" => {
            let app = listen();
            let client = TcpStream::connect(app.local_addr().unwrap()).unwrap();
            let (server, _) = app.accept().unwrap();
            let port = port_of(&app).to_string();
            let child = spawn(&mut ours(&["connections", "--port", &port]));
            (
                child,
                FirstSign::Stderr("waiting: "),
                Box::new(move || {
                    // The client leaves; the app closes its end.
                    drop(client);
                    drop(server);
                }),
            )
        }
        "graceful-wait file" => {
            let dir = tempfile::tempdir().unwrap();
            let folder = dir.path().to_path_buf();
            // Removed after the wait has exited, not before it has looked.
            keep = Some(dir);
            let marker = folder.join("done");
            let child = spawn(&mut ours(&["file", "--exists", marker.to_str().unwrap()]));
            (
                child,
                FirstSign::Stderr("waiting: "),
                Box::new(move || {
                    // As `exec --done-file` writes it: a temp file renamed in.
                    let temp = folder.join(".done.tmp");
                    std::fs::write(&temp, b"0\n").unwrap();
                    std::fs::rename(&temp, &marker).unwrap();
                }),
            )
        }
        "graceful-wait process" => {
            let app = Command::new("sleep").arg("600").spawn().unwrap();
            let pid = app.id() as i32;
            let child = spawn(&mut ours(&["process", "--pid", &pid.to_string()]));
            (
                child,
                FirstSign::Stderr("waiting: "),
                Box::new(move || {
                    // SAFETY: kill(2) on our own child; it is reaped below,
                    // after the measurement (a zombie counts as gone).
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    thread::spawn(move || {
                        let mut app = app;
                        let _ = app.wait();
                    });
                }),
            )
        }
        "graceful-wait http" => {
            let app = HttpApp::start();
            let url = format!("127.0.0.1:{}/health", app.port());
            let child = spawn(&mut ours(&["http", "--url", &url]));
            (
                child,
                FirstSign::Stderr("waiting: "),
                Box::new(move || app.close()),
            )
        }
        "original loop: netstat | grep; sleep 1" => {
            let app = listen();
            let child = spawn(&mut original_netstat_loop(port_of(&app)));
            (child, FirstSign::Stdout, Box::new(move || drop(app)))
        }
        "original loop: curl; sleep 1" => {
            let app = HttpApp::start();
            let child = spawn(&mut original_curl_loop(app.port()));
            (child, FirstSign::Stdout, Box::new(move || app.close()))
        }
        other => panic!("no such case {other}"),
    };
    first_look(&mut child, sign);
    thread::sleep(after);
    let gone = Instant::now();
    trigger();
    let (exited, _) = reap(&child);
    drop(keep);
    exited - gone
}

/// `GW_BENCH_APP=1`: the app's one listener, in a helper process; says its
/// port, holds it until its stdin closes.
fn app_listener() {
    let l = listen();
    println!("{}", port_of(&l));
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// The app: a listener in a process of its own, in a cgroup of its own (as
/// its container has), as `uid`.
struct App {
    child: Child,
    _cgroup: Cgroup,
}

impl App {
    fn start(uid: u32) -> App {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env("GW_BENCH_APP", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .uid(uid)
            .gid(uid);
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        line.trim().parse::<u16>().expect("the app never listened");
        let cgroup = Cgroup::new(&format!("bench-app-{}", child.id()));
        cgroup.take(child.id() as i32);
        App {
            child,
            _cgroup: cgroup,
        }
    }

    /// Closes its listener (the process exits on its stdin's end), then its
    /// cgroup goes.
    fn close(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The zero-config `listeners` wait beside the same wait by uid, while the
/// proxy (this process's cgroup: the wait's container) holds 1,000 sockets.
fn listeners_by_container_and_by_uid() {
    println!("== listeners: the proxy holds 1,000 sockets (50 listeners, 475 connections); the app listens on one port, in a cgroup of its own");
    let _proxy = Pod::with_listeners_and_connections(50, 475);
    let cases: [(&str, &[&str], u32); 2] = [
        ("listeners (this container's own)", &["listeners"], 0),
        (
            "listeners --exclude-uid 0 (by uid)",
            &["listeners", "--exclude-uid", "0"],
            1000,
        ),
    ];
    let mut random = Random(0x2545_f491_4f6c_dd1d);
    for (name, args, app_uid) in cases {
        let mut times: Vec<Duration> = (0..RUNS)
            .map(|_| {
                let app = App::start(app_uid);
                #[allow(clippy::zombie_processes)] // reaped by reap()'s wait4
                let mut child = spawn(&mut ours(args));
                first_look(&mut child, FirstSign::Stderr("waiting: listening: "));
                thread::sleep(random.below(Duration::from_secs(1)));
                let gone = Instant::now();
                app.close();
                reap(&child).0 - gone
            })
            .collect();
        times.sort();
        println!(
            "   reaction  {name:<38} median {:>6.2} ms   p99 {:>6.2} ms   ({RUNS} runs)",
            ms(percentile(&times, 50.0)),
            ms(percentile(&times, 99.0)),
        );
        let app = App::start(app_uid);
        #[allow(clippy::zombie_processes)] // reaped by reap()'s wait4
        let mut child = spawn(&mut ours(args));
        first_look(&mut child, FirstSign::Stderr("waiting: listening: "));
        let looked = on_cpu(child.id());
        thread::sleep(WAIT);
        let waiting = on_cpu(child.id()) - looked;
        app.close();
        let (_, total) = reap(&child);
        println!(
            "   CPU       {name:<38} total {:>6.2} ms   after the first look {:>6.2} ms (waiting {WAIT:?})",
            ms(total),
            ms(waiting)
        );
    }
}
