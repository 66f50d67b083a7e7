//! Termination callbacks: tell another service "this pod is going away" (or
//! "done draining"), reliably. Each URL gets its own request, all sent at
//! once; each is retried with backoff until it succeeds (2xx) or the deadline
//! passes. A 4xx other than 408/429 is final: retrying cannot fix it.
//!
//! Hooks may run more than once (a kubelet retry, a wrapper and a hook both
//! firing), so every request carries an `Idempotency-Key` that is the same on
//! every retry *and* every run for the same pod, URL and body: derived from
//! them, not random.

use crate::{client, expand::expand};
use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Method, Uri};
use std::{
    hash::{Hash, Hasher},
    time::Duration,
};
use tokio::time::{sleep, timeout, Instant};

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// What to send, before expansion (as the flags give it).
#[derive(Clone, Debug, Default)]
pub struct Spec {
    pub urls: Vec<String>,
    pub method: String,
    pub headers: Vec<String>,
    /// A string, or `@PATH` to read the body from a file.
    pub data: Option<String>,
    pub idempotency_key: Option<String>,
}

/// How hard to try.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub deadline: Option<Instant>,
    pub request_timeout: Duration,
}

/// Builds the requests: expands `$VARS`, reads `@file` bodies, adds the key.
pub fn build(spec: &Spec) -> Result<Vec<client::Outgoing>, String> {
    let method = Method::from_bytes(spec.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("'{}' is not an HTTP method", spec.method))?;
    let body = match spec.data.as_deref() {
        None => String::new(),
        Some(d) => match d.strip_prefix('@') {
            Some(path) => {
                std::fs::read_to_string(path).map_err(|e| format!("--data @{path}: {e}"))?
            }
            None => d.to_string(),
        },
    };
    let body = expand(&body)?;
    let mut headers = Vec::new();
    for h in &spec.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("header '{h}' is not 'Name: value'"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|e| format!("header '{h}': {e}"))?;
        let value = HeaderValue::from_str(&expand(value.trim())?)
            .map_err(|e| format!("header '{h}': {e}"))?;
        headers.push((name, value));
    }
    let mut out = Vec::new();
    for url in &spec.urls {
        let url = expand(url)?;
        let uri = crate::target::uri(&url).map_err(|e| format!("'{url}' is not a URL: {e}"))?;
        if uri.host().is_none() {
            return Err(format!("'{url}' has no host"));
        }
        let mut headers = headers.clone();
        if !headers.iter().any(|(n, _)| n == IDEMPOTENCY_KEY) {
            let key = match &spec.idempotency_key {
                Some(k) => expand(k)?,
                None => derived_key(&method, &uri, &body),
            };
            headers.push((
                HeaderName::from_static(IDEMPOTENCY_KEY),
                HeaderValue::from_str(&key).map_err(|e| format!("idempotency key: {e}"))?,
            ));
        }
        if !body.is_empty() && !headers.iter().any(|(n, _)| n == header::CONTENT_TYPE) {
            headers.push((
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ));
        }
        out.push(client::Outgoing {
            method: method.clone(),
            uri,
            headers,
            body: Bytes::from(body.clone()),
        });
    }
    Ok(out)
}

/// Same pod, same request, same key — across retries and across hook runs.
fn derived_key(method: &Method, uri: &Uri, body: &str) -> String {
    let pod: Vec<String> = ["POD_UID", "POD_NAMESPACE", "POD_NAME", "HOSTNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .collect();
    let mut halves = [0u64; 2];
    for (salt, half) in halves.iter_mut().enumerate() {
        // DefaultHasher::new() has fixed keys: the same input gives the same
        // key in every run of this binary.
        let mut h = std::hash::DefaultHasher::new();
        (salt, method.as_str(), uri.to_string(), body, &pod).hash(&mut h);
        *half = h.finish();
    }
    format!("gw-{:016x}{:016x}", halves[0], halves[1])
}

/// Why a request finally failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Still failing when the deadline came.
    Deadline(String),
    /// A final answer (a 4xx) or an error retrying cannot fix.
    Final(String),
}

/// Sends every request at once; one result per request, in order.
pub async fn send_all(requests: &[client::Outgoing], policy: Policy) -> Vec<Result<u16, Failure>> {
    let mut set = tokio::task::JoinSet::new();
    for (i, r) in requests.iter().cloned().enumerate() {
        set.spawn(async move { (i, send_with_retries(&r, policy).await) });
    }
    let mut results: Vec<Option<Result<u16, Failure>>> = vec![None; requests.len()];
    while let Some(done) = set.join_next().await {
        if let Ok((i, r)) = done {
            results[i] = Some(r);
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Failure::Final("the request task failed".into()))))
        .collect()
}

async fn send_with_retries(req: &client::Outgoing, policy: Policy) -> Result<u16, Failure> {
    let mut backoff = Duration::from_millis(100);
    for attempt in 1.. {
        let this_try = match policy.deadline {
            Some(d) => policy
                .request_timeout
                .min(d.saturating_duration_since(Instant::now())),
            None => policy.request_timeout,
        };
        let why = match timeout(this_try, client::send(req)).await {
            Ok(Ok(s)) if s.is_success() => {
                tracing::info!(url = %req.uri, status = s.as_u16(), attempt, "callback delivered");
                return Ok(s.as_u16());
            }
            Ok(Ok(s)) if s.is_client_error() && s.as_u16() != 408 && s.as_u16() != 429 => {
                tracing::error!(url = %req.uri, status = s.as_u16(), "callback refused; not retried");
                return Err(Failure::Final(format!("{}: HTTP {s}", req.uri)));
            }
            Ok(Ok(s)) => format!("HTTP {s}"),
            Ok(Err(e)) => e,
            Err(_) => format!("no answer within {this_try:?}"),
        };
        let retry_at = Instant::now() + backoff;
        if policy.deadline.is_some_and(|d| retry_at >= d) {
            tracing::error!(url = %req.uri, attempt, "callback not delivered before the deadline: {why}");
            return Err(Failure::Deadline(format!("{}: {why}", req.uri)));
        }
        tracing::warn!(url = %req.uri, attempt, retry_in_ms = backoff.as_millis() as u64, "callback failed: {why}");
        sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    unreachable!("the loop returns")
}

/// The exit status for a set of results: 0 all delivered, 124 the deadline
/// stopped at least one and nothing failed for good, 1 otherwise.
pub fn status(results: &[Result<u16, Failure>]) -> i32 {
    if results.iter().all(Result::is_ok) {
        crate::exit::MET
    } else if results.iter().any(|r| matches!(r, Err(Failure::Final(_)))) {
        crate::exit::FAILED
    } else {
        crate::exit::DEADLINE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(urls: &[&str]) -> Spec {
        Spec {
            urls: urls.iter().map(|s| s.to_string()).collect(),
            method: "post".into(),
            ..Spec::default()
        }
    }

    #[test]
    fn builds_requests_with_a_stable_key() {
        let mut s = spec(&["hooks.example/done", "https://other.example:8443/x?y=1"]);
        s.data = Some("{\"a\":1}".into());
        s.headers = vec!["Authorization: Bearer t".into()];
        let a = build(&s).unwrap();
        let b = build(&s).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].uri.to_string(), "http://hooks.example/done");
        assert_eq!(a[0].method, Method::POST);
        let key = |r: &client::Outgoing| {
            r.headers
                .iter()
                .find(|(n, _)| n == IDEMPOTENCY_KEY)
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(key(&a[0]), key(&b[0]), "same request, same key");
        assert_ne!(key(&a[0]), key(&a[1]), "another URL, another key");
        assert!(a[0]
            .headers
            .iter()
            .any(|(n, v)| n == header::AUTHORIZATION && v == "Bearer t"));
        assert!(a[0].headers.iter().any(|(n, _)| n == header::CONTENT_TYPE));
    }

    #[test]
    fn bad_specs_are_errors() {
        assert!(build(&Spec {
            method: "P O S T".into(),
            ..spec(&["x"])
        })
        .is_err());
        assert!(build(&Spec {
            headers: vec!["no colon".into()],
            ..spec(&["x"])
        })
        .is_err());
        assert!(build(&Spec {
            data: Some("@/no/such/file".into()),
            ..spec(&["x"])
        })
        .is_err());
        assert!(build(&spec(&["http://"])).is_err());
    }

    #[test]
    fn status_rules() {
        assert_eq!(status(&[Ok(200), Ok(204)]), 0);
        assert_eq!(status(&[Ok(200), Err(Failure::Deadline("x".into()))]), 124);
        assert_eq!(
            status(&[
                Err(Failure::Final("x".into())),
                Err(Failure::Deadline("x".into()))
            ]),
            1
        );
    }
}
