//! Termination callbacks: tell another service "this pod is going away" (or
//! "done draining"), reliably. Each URL gets its own request, all sent at
//! once; each is retried with backoff until it succeeds (2xx) or the deadline
//! passes. A 4xx other than 408/429 is final: retrying cannot fix it.
//!
//! Hooks may run more than once (a kubelet retry, a wrapper and a hook both
//! firing), so every request carries an `Idempotency-Key` that is the same on
//! every retry *and* every run for the same pod, URL and body: derived from
//! them, not random.

pub mod expand;

use crate::{
    error::Error,
    http_client::{self, Outgoing},
    retry::{self, Look, Outcome, Pace},
};
use bytes::Bytes;
use expand::expand;
use graceful_wait_shared::cli::CallbackOptions;
use http::{header, HeaderName, HeaderValue, Method, Uri};
use std::{
    hash::{Hash, Hasher},
    time::Duration,
};
use tokio::time::{timeout, Instant};

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The first retry comes this soon; each failure doubles it, up to the maximum.
const BACKOFF: Pace = Pace::Backoff {
    first: Duration::from_millis(100),
    max: Duration::from_secs(2),
};

/// What to send, before expansion (as the flags give it).
#[derive(Clone, Debug, Default)]
pub struct Spec {
    pub urls: Vec<String>,
    pub method: String,
    pub headers: Vec<String>,
    /// A string, or `@PATH` to read the body from a file.
    pub data: Option<String>,
    pub idempotency_key: Option<String>,
    /// See `--retry-untrusted`.
    pub retry_untrusted: bool,
}

impl Spec {
    /// The callbacks to `urls`, sent the way `options` say.
    pub fn new(urls: Vec<String>, options: &CallbackOptions) -> Spec {
        Spec {
            urls,
            method: options.method.clone(),
            headers: options.headers.clone(),
            data: options.data.clone(),
            idempotency_key: options.idempotency_key.clone(),
            retry_untrusted: options.retry_untrusted,
        }
    }
}

/// How hard to try.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub deadline: Option<Instant>,
    pub request_timeout: Duration,
}

/// `graceful-wait callback`: builds, sends, and returns the exit status.
pub fn run(args: graceful_wait_shared::cli::CallbackArgs) -> i32 {
    let spec = Spec::new(args.urls, &args.send);
    let requests = match build(&spec) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("{e}");
            return crate::exit::of_error(&e);
        }
    };
    let runtime = match crate::runtime::new() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("{e}");
            return crate::exit::of_error(&e);
        }
    };
    let outcomes = runtime.block_on(async {
        let policy = Policy {
            deadline: Some(Instant::now() + args.timeout),
            request_timeout: args.send.request_timeout,
        };
        send_all(&requests, policy).await
    });
    // An existing preStop the callbacks were put in front of runs after them.
    let chained = (!args.then.is_empty()).then(|| crate::wait::chain::run(&args.then));
    crate::exit::combine(crate::exit::of_callbacks(&outcomes), chained)
}

/// Builds the requests: expands `$VARS`, reads `@file` bodies, adds the key.
/// Every failure here is a usage error: the flags say something unsendable.
pub fn build(spec: &Spec) -> Result<Vec<Outgoing>, Error> {
    let method = Method::from_bytes(spec.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| Error::usage(format!("'{}' is not an HTTP method", spec.method)))?;
    let body = match spec.data.as_deref() {
        None => String::new(),
        Some(d) => match d.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| Error::usage(format!("--data @{path}: {e}")))?,
            None => d.to_string(),
        },
    };
    let body = expand(&body)?;
    let mut headers = Vec::new();
    // A header may hold a token: messages name its position and name, never
    // its value.
    for (i, h) in spec.headers.iter().enumerate() {
        let n = i + 1;
        let (name, value) = h.split_once(':').ok_or_else(|| {
            Error::usage(format!("--header #{n} has no ':'; write 'Name: value'"))
        })?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
            Error::usage(format!(
                "--header #{n}: the name is not a valid header name"
            ))
        })?;
        let value = HeaderValue::from_str(
            &expand(value.trim())
                .map_err(|e| Error::usage(format!("--header #{n} ({name}): {}", e.message)))?,
        )
        .map_err(|_| {
            Error::usage(format!(
                "--header #{n} ({name}): the value is not a valid header value"
            ))
        })?;
        headers.push((name, value));
    }
    let mut out = Vec::new();
    for written in &spec.urls {
        // Logs name the URL as written, redacted: an expanded part (a token
        // in $VAR) or a query value is never shown.
        let shown = graceful_wait_shared::url::redact(written);
        let url = expand(written)?;
        let uri = graceful_wait_shared::url::with_default_scheme(&url)
            .map_err(|e| Error::usage(format!("'{shown}' is not a URL: {e}")))?;
        http_client::check_url(&uri, &shown)?;
        let mut headers = headers.clone();
        if !headers.iter().any(|(n, _)| n == IDEMPOTENCY_KEY) {
            let key = match &spec.idempotency_key {
                Some(k) => expand(k)?,
                None => derived_key(&method, &uri, &body),
            };
            headers.push((
                HeaderName::from_static(IDEMPOTENCY_KEY),
                HeaderValue::from_str(&key)
                    .map_err(|e| Error::usage(format!("idempotency key: {e}")))?,
            ));
        }
        if !body.is_empty() && !headers.iter().any(|(n, _)| n == header::CONTENT_TYPE) {
            headers.push((
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ));
        }
        out.push(Outgoing {
            method: method.clone(),
            uri,
            shown,
            headers,
            body: Bytes::from(body.clone()),
            retry_untrusted: spec.retry_untrusted,
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

/// Sends every request at once; one outcome per request, in order.
pub async fn send_all(requests: &[Outgoing], policy: Policy) -> Vec<Outcome> {
    let mut set = tokio::task::JoinSet::new();
    for (i, r) in requests.iter().cloned().enumerate() {
        set.spawn(async move { (i, send_with_retries(&r, policy).await) });
    }
    let mut outcomes: Vec<Option<Outcome>> = vec![None; requests.len()];
    while let Some(done) = set.join_next().await {
        if let Ok((i, outcome)) = done {
            outcomes[i] = Some(outcome);
        }
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| Outcome::Stopped {
                elapsed: Duration::ZERO,
                error: Error::permanent("the request task failed"),
            })
        })
        .collect()
}

/// One attempt: delivered, a final refusal, or worth another try.
async fn attempt(req: Outgoing, policy: Policy) -> Result<Look, Error> {
    let this_try = match policy.deadline {
        Some(d) => policy
            .request_timeout
            .min(d.saturating_duration_since(Instant::now())),
        None => policy.request_timeout,
    };
    match timeout(this_try, http_client::send(&req)).await {
        Ok(Ok(s)) if s.is_success() => Ok(Look::Done(format!("HTTP {s}"))),
        Ok(Ok(s)) if s.is_client_error() && s.as_u16() != 408 && s.as_u16() != 429 => {
            Err(Error::permanent(format!("HTTP {s}, not retried")))
        }
        Ok(Ok(s)) => Ok(Look::Pending(format!("HTTP {s}"))),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Error::transient(format!("no answer within {this_try:?}"))),
    }
}

/// One request, retried with backoff until a 2xx, a final answer, or the
/// deadline. A 4xx other than 408 (timeout) and 429 (too many) is final:
/// the receiver has said no, and asking again will not change that.
async fn send_with_retries(req: &Outgoing, policy: Policy) -> Outcome {
    let what = format!("callback to {}", req.shown);
    // A plain closure that hands each attempt its own copy of the request
    // (an async closure's borrow would keep the spawned task from being Send).
    let owned = req.clone();
    let outcome = retry::until(&what, policy.deadline, BACKOFF, move || {
        attempt(owned.clone(), policy)
    })
    .await;
    match &outcome {
        Outcome::Met { seen, .. } => tracing::info!(url = %req.shown, "callback delivered: {seen}"),
        Outcome::DeadlinePassed { last, .. } => {
            tracing::error!(url = %req.shown, "callback not delivered before the deadline: {last}")
        }
        Outcome::Stopped { error, .. } => {
            tracing::error!(url = %req.shown, "callback failed for good: {error}")
        }
    }
    outcome
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
        let key = |r: &Outgoing| {
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
    fn unsendable_urls_are_usage_errors_before_anything_is_sent() {
        for url in ["ftp://files.example/x", "http://", "gopher://h/"] {
            let err = build(&spec(&[url])).unwrap_err();
            assert_eq!(err.kind, crate::error::Kind::Usage, "{url}: {err}");
        }
    }
}
