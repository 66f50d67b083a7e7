//! `graceful-inject serve`: the mutating admission webhook. Every pod the
//! API server creates passes through it (as its webhook configuration
//! selects), and gets what `graceful-inject` would write into its manifest:
//!
//! - [`review`]: one AdmissionReview in, an answer out — the same planning
//!   and verification as the command line, sent as a JSON Patch; always
//!   allowed;
//! - [`owner`]: which workload's rule applies (a pod names only its owner);
//! - [`tls`]: the serving certificate, swapped when its files change;
//! - [`server`]: HTTPS with bounds on every read, health, readiness and
//!   graceful shutdown;
//! - [`metrics`]: what Prometheus reads.
//!
//! The config file is read again every `reload_every`; a config that does
//! not parse is logged and the last good one kept (at start, with none, the
//! webhook answers every review unchanged with a warning saying why).

pub mod json_diff;
pub mod metrics;
pub mod owner;
pub mod review;
pub mod server;
pub mod tls;

use crate::config::{self, Config};
use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{atomic::AtomicBool, Arc, RwLock},
    time::Duration,
};

/// What `serve` is told on its command line.
#[derive(Clone, Debug)]
pub struct Args {
    pub config: PathBuf,
    pub tls: tls::Files,
    pub listen: SocketAddr,
    pub health_listen: SocketAddr,
    pub reload_every: Duration,
    pub shutdown_delay: Duration,
    pub max_body: usize,
    pub max_connections: usize,
}

/// The config in force.
pub struct State {
    pub config: Config,
    /// Set when no config could ever be read: every review is answered
    /// unchanged, with this reason.
    pub config_error: Option<String>,
    /// The text it was read from, to notice a change.
    text: String,
}

/// What every connection shares.
pub struct Shared {
    state: RwLock<Arc<State>>,
    pub ready: AtomicBool,
    pub metrics: metrics::Metrics,
}

impl Shared {
    pub fn state(&self) -> Arc<State> {
        match self.state.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

fn read_config(path: &std::path::Path) -> Result<(String, Config), String> {
    let text = crate::files::read_text(path)?;
    let config =
        config::parse(&text).map_err(|e| format!("{}:{}: {}", path.display(), e.pos, e.message))?;
    Ok((text, config))
}

/// Reads the config again; replaces the state when it changed and parses.
fn reload_config(args: &Args, shared: &Shared) {
    let current = shared.state();
    let (what, result) = match read_config(&args.config) {
        Ok((text, _)) if text == current.text && current.config_error.is_none() => return,
        Ok((text, config)) => {
            tracing::info!(config = %args.config.display(), "config reloaded");
            let next = Arc::new(State {
                config,
                config_error: None,
                text,
            });
            match shared.state.write() {
                Ok(mut s) => *s = next,
                Err(poisoned) => *poisoned.into_inner() = next,
            }
            ("config", "ok")
        }
        Err(e) => {
            if current.config_error.as_deref() == Some(e.as_str()) {
                return;
            }
            tracing::error!(error = %e, "config not reloaded; keeping the one in force");
            ("config", "error")
        }
    };
    shared
        .metrics
        .reloads
        .get_or_create(&metrics::ReloadLabel { what, result })
        .inc();
}

fn reload_certificate(certs: &tls::Reloading, shared: &Shared) {
    let result = match certs.refresh() {
        Ok(false) => return,
        Ok(true) => {
            tracing::info!("certificate reloaded");
            "ok"
        }
        Err(e) => {
            tracing::error!(error = %e, "certificate not reloaded; keeping the one in force");
            "error"
        }
    };
    shared
        .metrics
        .reloads
        .get_or_create(&metrics::ReloadLabel {
            what: "certificate",
            result,
        })
        .inc();
}

/// Runs the webhook until SIGTERM; returns the exit status.
pub fn run(args: Args) -> Result<i32, String> {
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_writer(std::io::stderr)
        .try_init();
    // Without a certificate there is nothing to serve: the pod restarts
    // (and the API server, with failurePolicy: Ignore, admits pods meanwhile).
    let certs = tls::Reloading::new(args.tls.clone())?;
    let state = match read_config(&args.config) {
        Ok((text, config)) => State {
            config,
            config_error: None,
            text,
        },
        Err(e) => {
            tracing::error!(error = %e, "no config: every review is answered unchanged until it can be read");
            State {
                config: Config::default(),
                config_error: Some(e),
                text: String::new(),
            }
        }
    };
    let shared = Arc::new(Shared {
        state: RwLock::new(Arc::new(state)),
        ready: AtomicBool::new(false),
        metrics: metrics::Metrics::new(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let reloader = {
            let (args, shared, certs) = (args.clone(), shared.clone(), certs.clone());
            tokio::spawn(async move {
                let mut every = tokio::time::interval(args.reload_every);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    reload_certificate(&certs, &shared);
                    reload_config(&args, &shared);
                }
            })
        };
        let served = server::serve(&args, shared, certs).await;
        reloader.abort();
        served
    })?;
    Ok(0)
}
