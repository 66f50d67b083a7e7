//! `graceful-wait http`: returns when the app's HTTP endpoint stops answering.
//!
//! Down means the app is gone: the connection is refused (nothing listens),
//! or a status listed in `--down-status` came. A connection that is accepted
//! and then closed, reset or answered with anything but an HTTP/1 response
//! is *up*: something still listens. An address that cannot exist in this pod (`::1` where
//! IPv6 is off) is skipped; when no address is usable that is an error, never
//! "down". A request that times out is *up*: a busy app is not a finished
//! app. Any HTTP status is up unless `--down-status` lists it, because apps
//! commonly turn readiness to 503 on SIGTERM while they still drain.

use super::{
    tcp::{
        self,
        events::{Closes, Filter, Wanted},
    },
    Schedule, Wait,
};
use crate::{error::Error, http_client, retry::Look};
use bytes::Bytes;
use graceful_wait_shared::{cli::HttpArgs, status_set::StatusSet, url::LocalUrl};
use http::{header, Request};
use http_body_util::Empty;
use std::{io, net::SocketAddr, time::Duration};
use tokio::net::TcpStream;

/// The http wait.
pub struct Http {
    url: LocalUrl,
    /// The URL as logs show it (no credentials or query values).
    shown: String,
    request_timeout: Duration,
    down_status: StatusSet,
    /// Closes of the listener on the URL's port: the app has stopped
    /// listening, so a probe now is refused.
    closes: Option<Closes>,
}

pub fn open(args: &HttpArgs) -> Result<Http, Error> {
    let url = graceful_wait_shared::url::parse_local(&args.url)
        .map_err(|e| Error::usage(format!("--url: {e}")))?;
    // The pod's own sockets are announced; another pod's are not, so a wait
    // on a foreign address polls.
    let closes = match url.addrs.first() {
        Some(first) if url.addrs.iter().any(|a| in_this_pod(a.ip())) => {
            tcp::subscribe(Filter::ports(&[first.port()], Wanted::Listeners))
        }
        _ => None,
    };
    Ok(Http {
        shown: graceful_wait_shared::url::redact(&args.url),
        closes,
        url,
        request_timeout: args.request_timeout,
        down_status: args.down_status.clone().unwrap_or_default(),
    })
}

impl Wait for Http {
    /// A listener's close is the one way to "refused"; a `--down-status`
    /// answer comes without any event, so that wait polls.
    fn event_driven(&self) -> bool {
        self.closes.is_some() && self.down_status.is_empty()
    }

    fn announce(&self, schedule: &Schedule) {
        tracing::info!(
            url = %self.shown,
            request_timeout_ms = self.request_timeout.as_millis() as u64,
            down_status = %self.down_status,
            events = self.closes.is_some(),
            timeout_ms = schedule.timeout_ms(),
            interval_ms = schedule.interval_ms(),
            "waiting until the endpoint stops answering"
        );
    }

    async fn look(&mut self) -> Result<Look, Error> {
        Ok(
            match probe(&self.url, self.request_timeout, &self.down_status).await? {
                Verdict::Up(why) => Look::Pending(format!("answering ({why})")),
                Verdict::Down(why) => Look::Done(why),
            },
        )
    }

    async fn changed(&mut self) {
        tcp::closed(&mut self.closes).await
    }
}

/// Whether `ip` is an address of this network namespace (loopback, the
/// pod's IP): binding to it succeeds only then.
fn in_this_pod(ip: std::net::IpAddr) -> bool {
    std::net::TcpListener::bind((ip, 0)).is_ok()
}

/// What one probe concluded, with a short reason for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Up(String),
    Down(String),
}

/// What one address said; `Unusable` takes no part in the verdict.
enum AtAddr {
    Said(Verdict),
    Unusable(String),
}

/// Probes every address of the URL; up as soon as one answers, down when
/// at least one refuses and none answers.
pub async fn probe(
    target: &LocalUrl,
    request_timeout: Duration,
    down_status: &StatusSet,
) -> Result<Verdict, Error> {
    let mut last_down = None;
    let mut unusable = Vec::new();
    for addr in &target.addrs {
        match tokio::time::timeout(request_timeout, probe_addr(*addr, target, down_status)).await {
            Err(_) => {
                return Ok(Verdict::Up(format!(
                    "{addr}: no answer within {request_timeout:?} (counted as still up)"
                )))
            }
            Ok(Ok(AtAddr::Said(Verdict::Up(why)))) => {
                return Ok(Verdict::Up(format!("{addr}: {why}")))
            }
            Ok(Ok(AtAddr::Said(Verdict::Down(why)))) => last_down = Some(format!("{addr}: {why}")),
            Ok(Ok(AtAddr::Unusable(why))) => unusable.push(format!("{addr}: {why}")),
            Ok(Err(e)) => return Err(e.context(addr)),
        }
    }
    last_down.map(Verdict::Down).ok_or_else(|| {
        Error::transient(format!(
            "no address of {} is reachable from this pod ({})",
            graceful_wait_shared::url::redact(&target.uri.to_string()),
            unusable.join("; ")
        ))
    })
}

async fn probe_addr(
    addr: SocketAddr,
    target: &LocalUrl,
    down_status: &StatusSet,
) -> Result<AtAddr, Error> {
    let stream = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return classify_connect(&e),
    };
    let path = target.uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = target.uri.authority().map_or("", |a| a.as_str());
    let request = Request::get(path)
        .header(header::HOST, authority)
        .header(
            header::USER_AGENT,
            concat!("graceful-wait/", env!("CARGO_PKG_VERSION")),
        )
        .header(header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| Error::permanent(format!("cannot build request: {e}")))?;
    match http_client::round_trip(stream, request).await {
        Ok(status) => {
            let status = status.as_u16();
            Ok(AtAddr::Said(if down_status.contains(status) {
                Verdict::Down(format!("HTTP {status} (listed in --down-status)"))
            } else {
                Verdict::Up(format!("HTTP {status}"))
            }))
        }
        Err(e) => classify_hyper(&e),
    }
}

/// Something accepted the connection (it listens) but no HTTP/1 response
/// came: closed, reset, garbage, a TLS alert, an HTTP/2 frame, half an
/// answer. Whatever it is, it is still there: up, not gone.
fn classify_hyper(e: &hyper::Error) -> Result<AtAddr, Error> {
    Ok(AtAddr::Said(Verdict::Up(format!(
        "accepted the connection but sent no HTTP response ({e}); something still listens"
    ))))
}

/// Refused: nothing listens at this address any more — the one sign, besides
/// a `--down-status`, that the app is gone. No such address family or route
/// in this pod: the address takes no part. Anything else (a connect that
/// times out, an unreachable host) is a failed look, retried.
fn classify_connect(e: &io::Error) -> Result<AtAddr, Error> {
    if e.kind() == io::ErrorKind::ConnectionRefused {
        Ok(AtAddr::Said(Verdict::Down(format!(
            "connection refused: nothing listens ({e})"
        ))))
    } else if matches!(
        e.raw_os_error(),
        Some(libc::EADDRNOTAVAIL | libc::ENETUNREACH | libc::EAFNOSUPPORT)
    ) {
        Ok(AtAddr::Unusable(e.to_string()))
    } else {
        Err(Error::transient(format!("cannot connect: {e}")))
    }
}
