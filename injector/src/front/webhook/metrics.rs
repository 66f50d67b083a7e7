//! Prometheus metrics (prometheus-client's text format, at `/metrics`):
//! reviews by decision, how long each took, and reloads; and the process's
//! CPU time and resident memory under their standard names, so the
//! webhook's cost shows beside the API server's figures without a node
//! exporter.

use prometheus_client::{
    collector::Collector,
    encoding::{text::encode, DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::ConstGauge,
        histogram::Histogram,
        MetricType,
    },
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabel {
    pub decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabel {
    /// `certificate` or `config`.
    pub what: &'static str,
    /// `ok` or `error`.
    pub result: &'static str,
}

pub struct Metrics {
    registry: Registry,
    /// Reviews answered: patched, unchanged, skipped, refused, invalid
    /// (the review or the team's annotation), error (the webhook's own).
    pub reviews: Family<DecisionLabel, Counter>,
    /// From the request's arrival to the answer, in seconds.
    pub latency: Histogram,
    pub reloads: Family<ReloadLabel, Counter>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Process));
        let ours = registry.sub_registry_with_prefix("graceful_inject");
        let reviews = Family::<DecisionLabel, Counter>::default();
        ours.register(
            "reviews",
            "Admission reviews answered, by decision (patched, unchanged, skipped, refused, invalid, error)",
            reviews.clone(),
        );
        // 50 µs to ~1.6 s.
        let latency = Histogram::new([
            0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
            0.5, 1.0, 2.5,
        ]);
        ours.register(
            "review_duration_seconds",
            "Time from a review's arrival to its answer",
            latency.clone(),
        );
        let reloads = Family::<ReloadLabel, Counter>::default();
        ours.register(
            "reloads",
            "Certificate and config reloads that changed what is served, and failed reloads",
            reloads.clone(),
        );
        Metrics {
            registry,
            reviews,
            latency,
            reloads,
        }
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The process's CPU time and resident memory, read from `/proc/self/stat`
/// at each scrape (`process_cpu_seconds_total`,
/// `process_resident_memory_bytes`, as Prometheus's client libraries name
/// them). Where /proc is not mounted the two are left out, not made up.
#[derive(Debug)]
struct Process;

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use procfs_core::FromRead;
        let Ok(stat) = procfs_core::process::Stat::from_file("/proc/self/stat") else {
            return Ok(());
        };
        // SAFETY: sysconf has no preconditions; it returns -1 for an
        // unknown name, which these two are not.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        if ticks <= 0 || page <= 0 {
            return Ok(());
        }
        let cpu = ConstCounter::new((stat.utime + stat.stime) as f64 / ticks as f64);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time spent, in seconds",
            None,
            MetricType::Counter,
        )?)?;
        let rss = ConstGauge::new((stat.rss * page as u64) as i64);
        rss.encode(encoder.encode_descriptor(
            "process_resident_memory_bytes",
            "Resident memory size, in bytes",
            None,
            MetricType::Gauge,
        )?)
    }
}
