//! Cost of one in-process `tcp` check, netlink vs /proc, with 10, 1,000 and
//! 20,000 TCP sockets in the network namespace (half of them ESTABLISHED
//! client ends, half the accepted server ends, plus one listener).
//!
//! As root the benchmark moves itself into a fresh network namespace first,
//! so the counts are exact; otherwise it runs in the current namespace and
//! says so. The client ends live in a child process (this benchmark re-run
//! with `GW_BENCH_CONNECT`), because one process may hold only 20,000 files
//! here. Run: `cargo bench --bench check`.

use criterion::{BenchmarkId, Criterion};
use graceful_wait::wait::tcp::{Sockets, State};
use graceful_wait_shared::cli::{SocketArgs, SocketSource};
use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

fn private_namespace() -> bool {
    // SAFETY: plain syscalls on this process; a failure leaves everything as it was.
    unsafe {
        if libc::geteuid() != 0 || libc::unshare(libc::CLONE_NEWNET) != 0 {
            eprintln!("benchmark runs in the current network namespace (not root): other sockets add to the counts");
            return false;
        }
    }
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status();
    assert!(
        matches!(up, Ok(s) if s.success()),
        "cannot bring lo up in the new namespace"
    );
    true
}

/// Holds `total` sockets open: one listener here, and (total-1)/2 connected
/// pairs, the accepted ends here and the client ends in a child process.
fn sockets(total: usize) -> (TcpListener, Vec<TcpStream>, Child) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let pairs = (total - 1) / 2;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("GW_BENCH_CONNECT", format!("{addr} {pairs}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let held: Vec<TcpStream> = (0..pairs).map(|_| listener.accept().unwrap().0).collect();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "connected", "client holder failed");
    (listener, held, child)
}

/// The child's side: connect `pairs` times, say so, hold until stdin closes.
fn hold_clients(spec: &str) {
    let (addr, pairs) = spec.split_once(' ').unwrap();
    let addr: SocketAddr = addr.parse().unwrap();
    let held: Vec<TcpStream> = (0..pairs.parse::<usize>().unwrap())
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    println!("connected");
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(held);
}

fn bench(c: &mut Criterion) {
    let private = private_namespace();
    let mut group = c.benchmark_group(if private {
        "tcp_check_private_netns"
    } else {
        "tcp_check_current_netns"
    });
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for total in [10usize, 1_000, 20_000] {
        let (listener, held, mut clients) = sockets(total);
        let port = listener.local_addr().unwrap().port();
        for source in [SocketSource::Netlink, SocketSource::Proc] {
            let mut checker = Sockets::open(&SocketArgs {
                source,
                proc_net: PathBuf::from("/proc/net"),
            })
            .unwrap();
            // The check must see the listener, or the figure means nothing.
            assert_eq!(checker.busy(State::Listen, &[port]).unwrap(), [port]);
            group.bench_with_input(BenchmarkId::new(source.name(), total), &port, |b, &port| {
                b.iter(|| checker.busy(State::Listen, &[port]).unwrap())
            });
        }
        drop(clients.stdin.take());
        clients.wait().unwrap();
        drop((listener, held));
    }
    group.finish();
}

fn main() {
    if let Ok(spec) = std::env::var("GW_BENCH_CONNECT") {
        return hold_clients(&spec);
    }
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
