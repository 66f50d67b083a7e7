//! Load on `graceful-inject serve` (release build): clients on loopback over
//! TLS with keep-alive, sending AdmissionReviews of realistic pods (the
//! corpus's, before and after Istio's injection; a small built-in pod when
//! the corpus is absent).
//!
//! - throughput: 4 clients as fast as the answers come, 10 s;
//! - latency at a fixed rate of 1,000 reviews/s for 10 s, measured from
//!   each review's scheduled time (so a slow answer also delays the ones
//!   behind it in the figure, as it would for the API server);
//! - memory: the server's RSS every 100,000 reviews over GW_BENCH_REVIEWS
//!   (default 1,000,000).
//!
//! `cargo bench -p graceful-inject --bench webhook`; figures in
//! docs/performance.md.

#[path = "../tests/corpus_support/mod.rs"]
#[allow(dead_code)]
mod corpus_support;
#[path = "../tests/webhook_support/mod.rs"]
#[allow(dead_code)]
mod webhook_support;

use serde_json::{json, Value};
use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use webhook_support::{response_of, review_of, tls_config, Client, Pki, Server};

const CONFIG: &str = "graceful-wait:\n  native-sidecars: wait\ndeployment:\n  \"*\":\n    istio-proxy: auto\nstatefulset:\n  \"*\":\n    istio-proxy: auto\npod:\n  \"*\":\n    istio-proxy: auto\n";

fn bodies() -> Vec<Vec<u8>> {
    let mut pods: Vec<Value> = ["istio-kube-inject-inputs", "istio-kube-inject"]
        .iter()
        .filter_map(|f| corpus_support::corpus_objects(f))
        .flatten()
        .filter(|(_, o)| o["kind"] == "Deployment")
        .filter_map(|(_, o)| {
            let mut pod = corpus_support::pod_of(&o)?;
            let name = o["metadata"]["name"].as_str().unwrap_or("web").to_string();
            pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{name}-7d9f8b6c5"), "uid": "0", "controller": true}]);
            pod["metadata"]["labels"]["pod-template-hash"] = json!("7d9f8b6c5");
            pod["metadata"]["namespace"] = json!("shop");
            Some(pod)
        })
        .collect();
    if pods.is_empty() {
        pods.push(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"containers": [{"name": "web", "image": "web", "readinessProbe": {"httpGet": {"path": "/health", "port": 8080}}},
                                    {"name": "istio-proxy", "image": "proxyv2"}]}}));
    }
    pods.iter()
        .enumerate()
        .map(|(i, p)| review_of(&format!("bench-{i}"), p))
        .collect()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p / 100.0).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs it once
    // with neither: then only check it starts.
    let quick = !std::env::args().any(|a| a == "--bench");
    let pki = Pki::new("bench");
    let server = Server::start(&pki, CONFIG, &[]);
    let tls = tls_config(&[&pki.ca_pem]);
    let bodies = Arc::new(bodies());
    let sizes: usize = bodies.iter().map(Vec::len).sum::<usize>() / bodies.len();
    println!(
        "== webhook: {} different reviews (mean {} bytes), server pid {}",
        bodies.len(),
        sizes,
        server.child.id()
    );
    if quick {
        let mut c = Client::connect(server.listen, tls).unwrap();
        let (status, answer) = c.post("/mutate", &bodies[0]).unwrap();
        assert_eq!(status, 200);
        assert_eq!(response_of(&answer).0["allowed"], true);
        return;
    }

    // The review alone, in this process: planning, verification, the
    // patch and its check, without TLS or HTTP; apart for the pods that get
    // a patch (the proxy is in them) and those skipped (no proxy yet).
    let config = graceful_inject::config::parse(CONFIG).unwrap();
    let (mut hooked, mut skipped) = (Vec::new(), Vec::new());
    for b in bodies.iter() {
        match graceful_inject::front::webhook::review::answer(b, &config).decision {
            graceful_inject::front::webhook::review::Decision::Patched(_) => hooked.push(b),
            _ => skipped.push(b),
        }
    }
    for (what, set) in [("patched", &hooked), ("not patched", &skipped)] {
        if set.is_empty() {
            continue;
        }
        let rounds = 20;
        let start = Instant::now();
        for _ in 0..rounds {
            for b in set.iter() {
                std::hint::black_box(graceful_inject::front::webhook::review::answer(b, &config));
            }
        }
        let each = start.elapsed() / (rounds * set.len()) as u32;
        println!(
            "   in-process, one review, {what} ({} of the reviews): {:.1} µs (one core: {:.0} reviews/s)",
            set.len(),
            each.as_secs_f64() * 1e6,
            1.0 / each.as_secs_f64()
        );
    }

    // Throughput.
    let run_for = Duration::from_secs(10);
    let answered = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|t| {
            let (answered, stop, bodies, tls) =
                (answered.clone(), stop.clone(), bodies.clone(), tls.clone());
            let addr = server.listen;
            std::thread::spawn(move || {
                let mut c = Client::connect(addr, tls).unwrap();
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let (status, _) = c.post("/mutate", &bodies[i % bodies.len()]).unwrap();
                    assert_eq!(status, 200);
                    answered.fetch_add(1, Ordering::Relaxed);
                    i += 4;
                }
            })
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(run_for);
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let n = answered.load(Ordering::SeqCst);
    println!(
        "   throughput, 4 keep-alive clients: {n} reviews in {:.1} s = {:.0} reviews/s",
        start.elapsed().as_secs_f64(),
        n as f64 / start.elapsed().as_secs_f64()
    );

    // Latency at 1,000 reviews/s: two clients, each every 2 ms.
    let rate_for = Duration::from_secs(10);
    let per_client = Duration::from_millis(2);
    let lat: Vec<_> = (0..2)
        .map(|t| {
            let (bodies, tls) = (bodies.clone(), tls.clone());
            let addr = server.listen;
            std::thread::spawn(move || {
                let mut c = Client::connect(addr, tls).unwrap();
                let begin = Instant::now() + per_client * t / 2;
                let mut times = Vec::new();
                let mut k = 0u32;
                loop {
                    let due = begin + per_client * k;
                    if due > begin + rate_for {
                        break;
                    }
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let (status, _) = c
                        .post("/mutate", &bodies[k as usize % bodies.len()])
                        .unwrap();
                    assert_eq!(status, 200);
                    times.push(due.elapsed());
                    k += 1;
                }
                times
            })
        })
        .collect();
    let mut times: Vec<Duration> = lat.into_iter().flat_map(|h| h.join().unwrap()).collect();
    times.sort();
    println!(
        "   latency at 1,000 reviews/s ({} reviews): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        times.len(),
        ms(percentile(&times, 50.0)),
        ms(percentile(&times, 99.0)),
        ms(times[times.len() - 1])
    );

    // Memory over many reviews.
    let total: usize = std::env::var("GW_BENCH_REVIEWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let step = (total / 10).max(1);
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let (done, bodies, tls) = (done.clone(), bodies.clone(), tls.clone());
            let addr = server.listen;
            std::thread::spawn(move || {
                let mut c = Client::connect(addr, tls).unwrap();
                let mut i = t;
                while done.fetch_add(1, Ordering::Relaxed) < total {
                    let (status, _) = c.post("/mutate", &bodies[i % bodies.len()]).unwrap();
                    assert_eq!(status, 200);
                    i += 4;
                }
            })
        })
        .collect();
    let pid = server.child.id();
    println!("   RSS of the server, KiB, every {step} reviews:");
    let mut line = format!("     0: {}", rss_kib(pid));
    let mut next = step;
    let started = Instant::now();
    while next <= total {
        while done.load(Ordering::Relaxed) < next {
            std::thread::sleep(Duration::from_millis(20));
        }
        line.push_str(&format!("  {next}: {}", rss_kib(pid)));
        next += step;
    }
    for w in workers {
        w.join().unwrap();
    }
    println!("{line}");
    println!(
        "   {total} reviews in {:.1} s ({:.0} reviews/s); metrics: {}",
        started.elapsed().as_secs_f64(),
        total as f64 / started.elapsed().as_secs_f64(),
        webhook_support::get(server.health, "/metrics")
            .1
            .lines()
            .filter(|l| l.starts_with("graceful_inject_reviews_total"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
