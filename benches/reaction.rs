//! Time from a listener's close to graceful-wait's exit, at the default
//! 100ms interval, over 50 closes per source. Each close lands at a different
//! point of the poll cycle (spread evenly over one interval), as a real app's
//! exit does. Run: `cargo bench --bench reaction`.

use std::{
    io::{BufRead, BufReader},
    net::{Ipv4Addr, TcpListener},
    process::{Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

const RUNS: u64 = 50;

fn one(source: &str, phase: Duration) -> Duration {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_graceful-wait"))
        .args(["tcp", "--port", &port, "--source", source])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // The first look has seen the listener.
    lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("waiting: listening on"))
        .expect("never saw the listener");
    sleep(phase); // where in the poll cycle the app exits
    let closed = Instant::now();
    drop(listener);
    let status = child.wait().unwrap();
    let reaction = closed.elapsed();
    assert!(status.success(), "graceful-wait failed: {status}");
    reaction
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() {
    // `cargo test --benches` runs bench targets with --test; stay quick there.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    for source in ["netlink", "proc"] {
        let mut times: Vec<Duration> = (0..RUNS)
            .map(|i| one(source, Duration::from_millis(i * 100 / RUNS)))
            .collect();
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "reaction/{source}: listener close -> exit over {RUNS} closes: median {:.1} ms, p99 {:.1} ms, min {:.1} ms, max {:.1} ms",
            ms(percentile(&times, 50.0)),
            ms(percentile(&times, 99.0)),
            ms(times[0]),
            ms(times[times.len() - 1]),
        );
    }
}
