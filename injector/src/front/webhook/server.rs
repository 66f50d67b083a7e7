//! The HTTPS server: `/mutate` for the API server, `/healthz`, `/readyz` and
//! `/metrics` (also on a plain-HTTP port for the kubelet and Prometheus).
//!
//! Bounds, so that no client can hold it: a TLS handshake has 5 s, a
//! request's headers 5 s (`header_read_timeout`, which hyper also starts
//! when a kept-alive connection falls idle), its body 5 s and at most
//! `max_body` bytes — all well inside the API server's 10 s webhook timeout;
//! at most `max_connections` connections are served at once (64 on the
//! plain port), and one more is closed as soon as it is accepted.
//! A review is answered in well under a millisecond, on the connection's
//! task.
//!
//! On SIGTERM (or SIGINT): `/readyz` fails at once, so the Service stops
//! sending; reviews are still served for `shutdown_delay` while endpoints
//! catch up; then no new connection is accepted, the open ones finish their
//! request in flight (at most 10 s more), and the process exits 0.

use super::{metrics::DecisionLabel, review, tls, Args, Shared};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, header, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tokio_rustls::TlsAcceptor;

const HANDSHAKE: Duration = Duration::from_secs(5);
const HEADERS: Duration = Duration::from_secs(5);
const BODY: Duration = Duration::from_secs(5);
const DRAIN: Duration = Duration::from_secs(10);

pub async fn serve(
    args: &Args,
    shared: Arc<Shared>,
    certs: Arc<tls::Reloading>,
) -> Result<(), String> {
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let health = TcpListener::bind(args.health_listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.health_listen))?;
    let api = Port {
        listener,
        tls: Some(TlsAcceptor::from(tls::server_config(certs)?)),
        reviews: Some(args.max_body),
        slots: Arc::new(Semaphore::new(args.max_connections)),
        max: args.max_connections,
        refused: AtomicU64::new(0),
    };
    let health = Port {
        listener: health,
        tls: None,
        reviews: None,
        slots: Arc::new(Semaphore::new(HEALTH_CONNECTIONS)),
        max: HEALTH_CONNECTIONS,
        refused: AtomicU64::new(0),
    };
    tracing::info!(
        listen = %api.listener.local_addr().map_err(|e| e.to_string())?,
        health = %health.listener.local_addr().map_err(|e| e.to_string())?,
        "serving admission reviews"
    );
    shared.ready.store(true, Ordering::SeqCst);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let stop = stopping();
    tokio::pin!(stop);
    let mut stopping_since: Option<Instant> = None;
    loop {
        let delay = match stopping_since {
            Some(since) => args.shutdown_delay.saturating_sub(since.elapsed()),
            None => Duration::MAX,
        };
        tokio::select! {
            accepted = api.listener.accept() => api.serve(accepted, &shared, &graceful),
            accepted = health.listener.accept() => health.serve(accepted, &shared, &graceful),
            () = &mut stop, if stopping_since.is_none() => {
                tracing::info!(delay_ms = args.shutdown_delay.as_millis() as u64, "stopping: not ready; serving until the delay is over");
                shared.ready.store(false, Ordering::SeqCst);
                stopping_since = Some(Instant::now());
            }
            () = tokio::time::sleep(delay), if stopping_since.is_some() => break,
        }
    }
    drop(api);
    drop(health);
    match tokio::time::timeout(DRAIN, graceful.shutdown()).await {
        Ok(()) => tracing::info!("stopped: every request in flight was answered"),
        Err(_) => tracing::warn!("stopped: connections still open after {DRAIN:?} were closed"),
    }
    Ok(())
}

/// The plain port's limit: the kubelet's probes and Prometheus need a few.
const HEALTH_CONNECTIONS: usize = 64;

/// One listening port: with TLS or not, reviews served there or not, and at
/// most `max` connections at once.
struct Port {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    /// The body limit of a review; None: health and metrics only.
    reviews: Option<usize>,
    slots: Arc<Semaphore>,
    max: usize,
    refused: AtomicU64,
}

impl Port {
    /// Serves an accepted connection on a task of its own, or closes it at
    /// once when `max` are open.
    fn serve(
        &self,
        accepted: std::io::Result<(TcpStream, SocketAddr)>,
        shared: &Arc<Shared>,
        graceful: &GracefulShutdown,
    ) {
        let Ok((stream, _)) = accepted else { return };
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            // Said once, then every 1,000th: a flood must not flood the log.
            let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
            if refused == 1 || refused.is_multiple_of(1000) {
                tracing::warn!(
                    max = self.max,
                    refused,
                    "connection refused: the most connections are open"
                );
            }
            return;
        };
        // Answers are small and sent whole: no Nagle delay.
        let _ = stream.set_nodelay(true);
        let (tls, reviews, shared, watcher) = (
            self.tls.clone(),
            self.reviews,
            shared.clone(),
            graceful.watcher(),
        );
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(route(req, &shared, reviews).await) }
            });
            match tls {
                Some(acceptor) => {
                    let Ok(Ok(tls)) =
                        tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    let _ = watcher.watch(http1(TokioIo::new(tls), service)).await;
                }
                None => {
                    let _ = watcher.watch(http1(TokioIo::new(stream), service)).await;
                }
            }
        });
    }
}

fn http1<I, S>(io: I, service: S) -> hyper::server::conn::http1::Connection<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<Incoming, ResBody = Full<Bytes>>,
{
    hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADERS)
        .keep_alive(true)
        .serve_connection(io, service)
}

/// Resolves on SIGTERM or SIGINT.
async fn stopping() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn route(
    req: Request<Incoming>,
    shared: &Shared,
    reviews: Option<usize>,
) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path(), reviews) {
        (&Method::POST, "/mutate", Some(max_body)) => mutate(req, shared, max_body).await,
        (&Method::GET, "/healthz", _) => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz", _) if shared.ready.load(Ordering::SeqCst) => {
            text(StatusCode::OK, "ready\n")
        }
        (&Method::GET, "/readyz", _) => text(StatusCode::SERVICE_UNAVAILABLE, "stopping\n"),
        (&Method::GET, "/metrics", _) => {
            let mut r = text(StatusCode::OK, shared.metrics.text());
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            r
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

async fn mutate(req: Request<Incoming>, shared: &Shared, max_body: usize) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let body = tokio::time::timeout(BODY, Limited::new(req.into_body(), max_body).collect()).await;
    let answer = match body {
        Ok(Ok(collected)) => {
            let state = shared.state();
            match &state.config_error {
                // The config could not be read at start: no pod is changed,
                // and every creator is told why.
                Some(e) => review::unconfigured(&collected.to_bytes(), e),
                None => review::answer(&collected.to_bytes(), &state.config),
            }
        }
        Ok(Err(e)) => review::unreadable(&format!(
            "the request body could not be read ({e}); at most {max_body} bytes"
        )),
        Err(_) => review::unreadable(&format!("the request body did not arrive within {BODY:?}")),
    };
    let elapsed = started.elapsed();
    shared
        .metrics
        .reviews
        .get_or_create(&DecisionLabel {
            decision: answer.decision.label(),
        })
        .inc();
    shared.metrics.latency.observe(elapsed.as_secs_f64());
    let s = &answer.subject;
    let reason = match &answer.decision {
        review::Decision::Skipped(why)
        | review::Decision::Refused(why)
        | review::Decision::Invalid(why)
        | review::Decision::Error(why) => why.as_str(),
        _ => "",
    };
    tracing::info!(
        namespace = %s.namespace,
        pod = %s.pod,
        owner = %s.owner,
        decision = answer.decision.label(),
        reason,
        micros = elapsed.as_micros() as u64,
        "review"
    );
    let mut r = Response::new(Full::new(Bytes::from(answer.body)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}
