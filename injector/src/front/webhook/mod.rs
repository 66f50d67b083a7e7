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

pub(crate) mod json_diff;
pub(crate) mod metrics;
pub(crate) mod owner;
pub mod review;
pub(crate) mod server;
pub(crate) mod tls;

use crate::config::{self, Config};
use crate::error::Error;
use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{atomic::AtomicBool, Arc, Mutex, RwLock},
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
    /// Set when no config could be read at start: every review is answered
    /// unchanged, with this reason, until one can.
    pub config_error: Option<String>,
}

/// What every connection shares.
pub struct Shared {
    state: RwLock<Arc<State>>,
    pub ready: AtomicBool,
    pub metrics: metrics::Metrics,
    /// What the files held at the last look, to act only on a change.
    config_seen: Seen<String, Error>,
    certificate_seen: Seen<(Vec<u8>, Vec<u8>), String>,
}

impl Shared {
    pub fn state(&self) -> Arc<State> {
        match self.state.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_state(&self, next: State) {
        let next = Arc::new(next);
        match self.state.write() {
            Ok(mut s) => *s = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }

    fn count_reload(&self, what: &'static str, result: &'static str) {
        self.metrics
            .reloads
            .get_or_create(&metrics::ReloadLabel { what, result })
            .inc();
    }
}

/// The outcome of the last read of some files: their bytes, or why they
/// could not be read. A look that reads the same as the last one is not
/// acted on (nor logged again): a broken file is reported once, not at
/// every look.
struct Seen<T, E>(Mutex<Option<Result<T, E>>>);

impl<T: Clone + PartialEq, E: Clone + PartialEq> Seen<T, E> {
    fn new(read: &Result<T, E>) -> Seen<T, E> {
        Seen(Mutex::new(Some(read.clone())))
    }

    /// Whether `read` differs from the last look (which it becomes).
    fn changed(&self, read: &Result<T, E>) -> bool {
        let mut seen = match self.0.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if seen.as_ref() == Some(read) {
            return false;
        }
        *seen = Some(read.clone());
        true
    }
}

fn parse_config(path: &std::path::Path, text: &str) -> Result<Config, Error> {
    config::parse(text).map_err(|e| Error::of_config(e).in_file(path.display().to_string()))
}

/// Reads the config again; when it changed and parses, it is in force.
fn reload_config(args: &Args, shared: &Shared) {
    let read = crate::front::files::read_text(&args.config);
    if !shared.config_seen.changed(&read) {
        return;
    }
    match read.and_then(|text| parse_config(&args.config, &text)) {
        Ok(config) => {
            tracing::info!(config = %args.config.display(), "config reloaded");
            shared.set_state(State {
                config,
                config_error: None,
            });
            shared.count_reload("config", "ok");
        }
        Err(e) => {
            tracing::error!(error = %e, "config not reloaded; keeping the one in force");
            shared.count_reload("config", "error");
        }
    }
}

/// Reads the certificate again; when it changed and is a pair, it is
/// served from the next handshake on.
fn reload_certificate(certs: &tls::Reloading, shared: &Shared) {
    let read = tls::read(&certs.files);
    if !shared.certificate_seen.changed(&read) {
        return;
    }
    match read.and_then(|(cert, key)| tls::parse(&certs.files, &cert, &key)) {
        Ok(key) => {
            certs.swap(key);
            tracing::info!("certificate reloaded");
            shared.count_reload("certificate", "ok");
        }
        Err(e) => {
            tracing::error!(error = %e, "certificate not reloaded; keeping the one in force");
            shared.count_reload("certificate", "error");
        }
    }
}

/// Runs the webhook until SIGTERM; returns the exit status.
pub fn run(args: Args) -> Result<i32, Error> {
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_writer(std::io::stderr)
        .try_init();
    // Without a certificate there is nothing to serve: the pod restarts
    // (and the API server, with failurePolicy: Ignore, admits pods meanwhile).
    let certificate_read = tls::read(&args.tls);
    let (cert, key) = certificate_read.clone().map_err(Error::io)?;
    let key = tls::parse(&args.tls, &cert, &key).map_err(|e| Error::config(None, e))?;
    let certs = tls::Reloading::new(args.tls.clone(), key);
    let config_read = crate::front::files::read_text(&args.config);
    let state = match config_read
        .clone()
        .and_then(|text| parse_config(&args.config, &text))
    {
        Ok(config) => State {
            config,
            config_error: None,
        },
        Err(e) => {
            tracing::error!(error = %e, "no config: every review is answered unchanged until it can be read");
            State {
                config: Config::default(),
                config_error: Some(e.to_string()),
            }
        }
    };
    let shared = Arc::new(Shared {
        state: RwLock::new(Arc::new(state)),
        ready: AtomicBool::new(false),
        metrics: metrics::Metrics::new(),
        config_seen: Seen::new(&config_read),
        certificate_seen: Seen::new(&certificate_read),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io(format!("cannot start the runtime: {e}")))?;
    runtime
        .block_on(async {
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
        })
        .map_err(Error::io)?;
    Ok(0)
}
