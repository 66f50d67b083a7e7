//! Measured where the API server measures it: 1,000 pod creations with the
//! webhook and without, from the API server's, the webhook's and the
//! kubelet's own figures.

use super::*;

/// What the API server measured over 1,000 pod creations.
pub struct Load {
    mode: &'static str,
    seconds: f64,
    create: Histogram,
    webhook: Histogram,
    rejected: f64,
    fail_open: f64,
    /// The webhook's own CPU seconds and resident memory (its /metrics),
    /// and the kubelet's view (CPU seconds, working set), summed over pods.
    own: Option<(f64, f64)>,
    kubelet: Option<(f64, f64)>,
}

/// Creates 1,000 pods (a Deployment scaled 0 → 100 → 0 ten times) that are
/// admitted and never scheduled; the API server's figures for them.
pub fn load(cluster: &Cluster, upstream: &str, mode: &'static str) -> Load {
    let ns = "gw-load";
    cluster.namespace(ns, "restricted");
    let spec = admitted_only(plain(upstream));
    cluster.apply(&deployment(ns, "load", spec, 0, json!({})));
    let before = cluster.ok(&["get", "--raw", "/metrics"]);
    let own_before = webhook_own(cluster);
    let kubelet_before = webhook_kubelet();
    let began = Instant::now();
    for _ in 0..10 {
        for (replicas, want) in [(100, 100), (0, 0)] {
            cluster.ok(&[
                "scale",
                "deployment",
                "load",
                "-n",
                ns,
                &format!("--replicas={replicas}"),
            ]);
            cluster.until(&format!("{want} pods in {ns}"), || {
                let pods = cluster.json(&["get", "pods", "-n", ns]);
                pods["items"].as_array().unwrap().len() == want
            });
        }
    }
    let seconds = began.elapsed().as_secs_f64();
    let after = cluster.ok(&["get", "--raw", "/metrics"]);
    let create_labels = [("verb", "POST"), ("resource", "pods"), ("subresource", "")];
    let hook_labels = [("name", HOOK_NAME), ("operation", "CREATE")];
    let own_after = webhook_own(cluster);
    let kubelet_after = webhook_kubelet();
    let delta = |a: Option<(f64, f64)>, b: Option<(f64, f64)>| match (a, b) {
        (Some(a), Some(b)) => Some((b.0 - a.0, b.1)),
        _ => None,
    };
    cluster.ok(&["delete", "namespace", ns, "--wait=false"]);
    Load {
        mode,
        seconds,
        create: Histogram::of(&after, "apiserver_request_duration_seconds", &create_labels).minus(
            &Histogram::of(
                &before,
                "apiserver_request_duration_seconds",
                &create_labels,
            ),
        ),
        webhook: Histogram::of(
            &after,
            "apiserver_admission_webhook_admission_duration_seconds",
            &hook_labels,
        )
        .minus(&Histogram::of(
            &before,
            "apiserver_admission_webhook_admission_duration_seconds",
            &hook_labels,
        )),
        rejected: metric_sum(
            &after,
            "apiserver_admission_webhook_rejection_count",
            &[("name", HOOK_NAME)],
        ) - metric_sum(
            &before,
            "apiserver_admission_webhook_rejection_count",
            &[("name", HOOK_NAME)],
        ),
        fail_open: metric_sum(
            &after,
            "apiserver_admission_webhook_fail_open_count",
            &[("name", HOOK_NAME)],
        ) - metric_sum(
            &before,
            "apiserver_admission_webhook_fail_open_count",
            &[("name", HOOK_NAME)],
        ),
        own: delta(own_before, own_after),
        kubelet: delta(kubelet_before, kubelet_after),
    }
}

/// The webhook pods' own figures from their /metrics (through the API
/// server's pod proxy): CPU seconds and resident bytes, summed.
pub fn webhook_own(cluster: &Cluster) -> Option<(f64, f64)> {
    let pods = webhook_pods(cluster);
    if pods.is_empty() {
        return None;
    }
    let (mut cpu, mut rss) = (0.0, 0.0);
    for p in pods {
        let name = p["metadata"]["name"].as_str().unwrap();
        let text = cluster.ok(&[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/{RELEASE_NS}/pods/{name}:8080/proxy/metrics"),
        ]);
        cpu += metric_sum(&text, "process_cpu_seconds_total", &[]);
        rss += metric_sum(&text, "process_resident_memory_bytes", &[]);
    }
    Some((cpu, rss))
}

/// The same from the kubelet's stats summary: CPU seconds and working set.
pub fn webhook_kubelet() -> Option<(f64, f64)> {
    // The kubelet's own endpoint, as the API server's client: the API
    // server refuses to proxy to a node at a loopback address.
    let pki = state_dir().join("pki");
    let out = std::process::Command::new("curl")
        .arg("-sf")
        .arg("--cacert")
        .arg(pki.join("ca.crt"))
        .arg("--cert")
        .arg(pki.join("apiserver-kubelet-client.crt"))
        .arg("--key")
        .arg(pki.join("apiserver-kubelet-client.key"))
        .arg("https://127.0.0.1:10250/stats/summary")
        .output()
        .ok()?;
    let summary: Value = serde_json::from_slice(&out.stdout).ok()?;
    let (mut cpu, mut mem, mut any) = (0.0, 0.0, false);
    for p in summary["pods"].as_array().into_iter().flatten() {
        if p["podRef"]["namespace"] != RELEASE_NS {
            continue;
        }
        for c in p["containers"].as_array().into_iter().flatten() {
            any = true;
            cpu += c["cpu"]["usageCoreNanoSeconds"].as_f64().unwrap_or(0.0) / 1e9;
            mem += c["memory"]["workingSetBytes"].as_f64().unwrap_or(0.0);
        }
    }
    any.then_some((cpu, mem))
}

pub fn load_table(on: &Load, off: &Load) -> String {
    let row = |l: &Load| {
        let res = |x: Option<(f64, f64)>| {
            x.map_or("—".to_string(), |(cpu, mem)| {
                format!("{cpu:.2} s / {:.1} MiB", mem / 1048576.0)
            })
        };
        format!(
            "| {} | {} in {:.0} s | {:.1} / {:.1} | {} | {} | {} | {} / {} |",
            l.mode,
            l.create.count,
            l.seconds,
            l.create.quantile(0.5) * 1000.0,
            l.create.quantile(0.99) * 1000.0,
            if l.webhook.count == 0.0 {
                "—".to_string()
            } else {
                format!(
                    "{:.1} / {:.1} ({} calls)",
                    l.webhook.quantile(0.5) * 1000.0,
                    l.webhook.quantile(0.99) * 1000.0,
                    l.webhook.count
                )
            },
            res(l.own),
            res(l.kubelet),
            l.rejected,
            l.fail_open,
        )
    };
    format!(
        "1,000 pod creations (a Deployment scaled 0 → 100 → 0 ten times):\n| webhook | pods created | pod create request, p50 / p99 (ms) | webhook admission, p50 / p99 (ms) | webhook CPU / RSS, its /metrics | webhook CPU / working set, kubelet | rejected / failed open |\n|---|---|---|---|---|---|---|\n{}\n{}",
        row(on),
        row(off)
    )
}

/// One histogram of the API server's /metrics, its series matching
/// `labels` summed: upper bounds and cumulative counts.
pub struct Histogram {
    buckets: BTreeMap<u64, (f64, f64)>,
    count: f64,
}

impl Histogram {
    fn of(text: &str, name: &str, labels: &[(&str, &str)]) -> Histogram {
        let mut buckets: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        let mut count = 0.0;
        for (series, value) in samples(text, &format!("{name}_bucket"), labels) {
            let le = series.get("le").map(String::as_str).unwrap_or("+Inf");
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::INFINITY)
            };
            buckets.entry(bound.to_bits()).or_insert((bound, 0.0)).1 += value;
        }
        for (_, value) in samples(text, &format!("{name}_count"), labels) {
            count += value;
        }
        Histogram { buckets, count }
    }

    fn minus(mut self, earlier: &Histogram) -> Histogram {
        for (k, v) in &mut self.buckets {
            v.1 -= earlier.buckets.get(k).map_or(0.0, |e| e.1);
        }
        self.count -= earlier.count;
        self
    }

    /// Prometheus's histogram_quantile: linear within the bucket.
    fn quantile(&self, q: f64) -> f64 {
        let mut sorted: Vec<(f64, f64)> = self.buckets.values().copied().collect();
        sorted.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        let Some(total) = sorted.last().map(|b| b.1) else {
            return f64::NAN;
        };
        if total <= 0.0 {
            return f64::NAN;
        }
        let rank = q * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for (bound, cumulative) in sorted {
            if cumulative >= rank {
                if bound.is_infinite() {
                    return lower;
                }
                return lower
                    + (bound - lower) * (rank - below)
                        / (cumulative - below).max(f64::MIN_POSITIVE);
            }
            (lower, below) = (bound, cumulative);
        }
        lower
    }
}

/// The samples of metric `name` whose labels include `labels`.
pub fn samples(
    text: &str,
    name: &str,
    labels: &[(&str, &str)],
) -> Vec<(BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (head, value) = l.rsplit_once(' ')?;
            let (metric, rest) = head.split_once('{').unwrap_or((head, "}"));
            if metric != name {
                return None;
            }
            let mut series = BTreeMap::new();
            for pair in rest.trim_end_matches('}').split("\",") {
                if let Some((k, v)) = pair.split_once("=\"") {
                    series.insert(
                        k.trim_start_matches(',').to_string(),
                        v.trim_end_matches('"').to_string(),
                    );
                }
            }
            let matches = labels
                .iter()
                .all(|(k, v)| series.get(*k).map(String::as_str).unwrap_or("") == *v);
            matches.then(|| (series, value.parse().unwrap_or(0.0)))
        })
        .collect()
}

pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(text, name, labels).iter().map(|(_, v)| v).sum()
}
