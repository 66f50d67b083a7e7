//! Prometheus metrics (prometheus-client's text format, at `/metrics`):
//! reviews by decision, how long each took, and reloads.

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{counter::Counter, family::Family, histogram::Histogram},
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
    /// Reviews answered: patched, unchanged, skipped, error.
    pub reviews: Family<DecisionLabel, Counter>,
    /// From the request's arrival to the answer, in seconds.
    pub latency: Histogram,
    pub reloads: Family<ReloadLabel, Counter>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("graceful_inject");
        let reviews = Family::<DecisionLabel, Counter>::default();
        registry.register(
            "reviews",
            "Admission reviews answered, by decision (patched, unchanged, skipped, error)",
            reviews.clone(),
        );
        // 50 µs to ~1.6 s.
        let latency = Histogram::new([
            0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
            0.5, 1.0, 2.5,
        ]);
        registry.register(
            "review_duration_seconds",
            "Time from a review's arrival to its answer",
            latency.clone(),
        );
        let reloads = Family::<ReloadLabel, Counter>::default();
        registry.register(
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
