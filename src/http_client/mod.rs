//! The HTTP client every mode shares: one request on a fresh HTTP/1
//! connection ([`round_trip`], also the http wait's probe), and one request
//! to a URL ([`send`]) for callbacks and `exec --wait-ready`.
//!
//! Names resolve without libc NSS (the binary may run in an image without
//! it): `localhost` and IP literals in [`graceful_wait_shared::url`], anything else
//! through the pod's DNS as `/etc/resolv.conf` names it, with hickory. TLS is
//! rustls: CA roots from the image when it has a bundle (`SSL_CERT_FILE`, or
//! the usual Debian, RHEL and Alpine paths), the bundled Mozilla roots
//! otherwise. Both come with the `tls-dns` feature (on by default); a build
//! without it speaks plain HTTP to pod-local addresses only, and says so.

use crate::error::Error;
use bytes::Bytes;
use http::{header, Method, Request, StatusCode, Uri};
use http_body_util::Full;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
#[cfg(feature = "tls-dns")]
use {
    rustls_pki_types::{pem::PemObject, CertificateDer, ServerName},
    std::{
        net::IpAddr,
        sync::{Arc, OnceLock},
    },
};

/// A request to send (the same one on every retry).
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub method: Method,
    pub uri: Uri,
    /// The URL as logs and messages show it: as written (before `$VARS`
    /// were expanded), without credentials or query values.
    pub shown: String,
    pub headers: Vec<(header::HeaderName, header::HeaderValue)>,
    pub body: Bytes,
    /// A server certificate that does not verify is worth another try
    /// (false: a final failure, as it will not verify on a retry).
    pub retry_untrusted: bool,
}

/// Where the CA bundle of common base images lives.
#[cfg(feature = "tls-dns")]
const CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine (ca-certificates), distroless
    "/etc/pki/tls/certs/ca-bundle.crt",   // RHEL, Fedora
    "/etc/ssl/cert.pem",                  // Alpine, macOS-style
];

#[cfg(feature = "tls-dns")]
fn tls_config() -> Result<Arc<rustls::ClientConfig>, Error> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, Error>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let from_env = std::env::var("SSL_CERT_FILE").ok();
            let bundle = from_env
                .iter()
                .map(String::as_str)
                .chain(CA_BUNDLES.iter().copied())
                .find(|p| std::path::Path::new(p).exists());
            match bundle {
                Some(path) => {
                    let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
                        Error::permanent(format!("cannot read CA bundle {path}: {e}"))
                    })?;
                    let (added, _ignored) =
                        roots.add_parsable_certificates(certs.filter_map(Result::ok));
                    if added == 0 {
                        return Err(Error::permanent(format!(
                            "CA bundle {path} holds no usable certificate"
                        )));
                    }
                    tracing::debug!(
                        bundle = path,
                        certificates = added,
                        "TLS roots from the image"
                    );
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| Error::permanent(format!("TLS setup: {e}")))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
}

/// The addresses of `host`: pod-local names without any resolver, others via DNS.
pub async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
    if let Some(local) = graceful_wait_shared::url::resolve_local(host, port) {
        return Ok(local);
    }
    resolve_dns(host, port).await
}

#[cfg(not(feature = "tls-dns"))]
async fn resolve_dns(host: &str, _port: u16) -> Result<Vec<SocketAddr>, Error> {
    Err(Error::permanent(format!("cannot resolve {host}: this build has no DNS (built without the tls-dns feature); use an IP address or the default build")))
}

#[cfg(feature = "tls-dns")]
async fn resolve_dns(host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
    static RESOLVER: OnceLock<Result<hickory_resolver::TokioResolver, Error>> = OnceLock::new();
    let resolver = RESOLVER
        .get_or_init(|| {
            // No resolv.conf will not appear by retrying: a permanent error.
            hickory_resolver::TokioResolver::builder_tokio()
                .map(|b| b.build())
                .map_err(|e| Error::permanent(format!("cannot resolve {host}: cannot read the DNS configuration (/etc/resolv.conf): {e}; use an IP address, or mount the pod's resolv.conf")))
        })
        .as_ref()
        .map_err(Clone::clone)?;
    let found = resolver
        .lookup_ip(host)
        .await
        .map_err(|e| Error::transient(format!("cannot resolve {host}: {e}")))?;
    let addrs: Vec<SocketAddr> = found
        .iter()
        .map(|ip: IpAddr| SocketAddr::new(ip, port))
        .collect();
    if addrs.is_empty() {
        return Err(Error::transient(format!("{host} has no address")));
    }
    Ok(addrs)
}

/// Checks that a URL can be sent to at all: http or https, with a host, and
/// no credentials (which would travel in the clear and reach logs). `shown`
/// is how messages name it.
pub fn check_url(uri: &Uri, shown: &str) -> Result<(), Error> {
    match uri.scheme_str() {
        Some("https" | "http") | None => {}
        Some(other) => {
            return Err(Error::usage(format!(
                "{shown}: scheme '{other}' is not supported; use http:// or https://"
            )))
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(Error::usage(format!("{shown} has no host")));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(Error::usage(format!(
            "{shown} carries credentials (user:password@); put them in a header instead, e.g. --header 'Authorization: Bearer $TOKEN'"
        )));
    }
    Ok(())
}

/// Sends one request; the response status, or why there was none.
pub async fn send(req: &Outgoing) -> Result<StatusCode, Error> {
    check_url(&req.uri, &req.shown)?;
    let https = req.uri.scheme_str() == Some("https");
    let host = req.uri.host().unwrap_or_default();
    let port = req.uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let mut last = Error::transient(format!("{host} has no address"));
    for addr in resolve(host, port).await? {
        let stream = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => {
                last = Error::transient(format!("{addr}: {e}"));
                continue;
            }
        };
        return if https {
            over_tls(host, stream, req).await
        } else {
            exchange(stream, req).await
        }
        .map_err(|e| e.context(addr));
    }
    Err(last)
}

#[cfg(feature = "tls-dns")]
async fn over_tls(host: &str, stream: TcpStream, req: &Outgoing) -> Result<StatusCode, Error> {
    let name = ServerName::try_from(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
    .map_err(|e| Error::usage(format!("{host}: not a TLS server name: {e}")))?;
    let tls = tokio_rustls::TlsConnector::from(tls_config()?)
        .connect(name, stream)
        .await
        .map_err(|e| {
            if untrusted(&e) && !req.retry_untrusted {
                Error::permanent(format!(
                    "TLS: {e}: the server's certificate does not verify against the trust store, and will not on a retry; give its CA with SSL_CERT_FILE, or --retry-untrusted to keep trying"
                ))
            } else {
                Error::transient(format!("TLS: {e}"))
            }
        })?;
    exchange(tls, req).await
}

/// The handshake failed because the server's certificate was rejected
/// (unknown issuer, expired, wrong name, none presented), not because the
/// connection broke.
#[cfg(feature = "tls-dns")]
fn untrusted(e: &std::io::Error) -> bool {
    matches!(
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
    )
}

#[cfg(not(feature = "tls-dns"))]
async fn over_tls(_: &str, _: TcpStream, _: &Outgoing) -> Result<StatusCode, Error> {
    Err(Error::permanent("https:// needs TLS, which this build has not (built without the tls-dns feature); use the default build"))
}

async fn exchange<S>(io: S, req: &Outgoing) -> Result<StatusCode, Error>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let path = req.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut builder = Request::builder()
        .method(req.method.clone())
        .uri(path)
        .header(header::HOST, req.uri.authority().map_or("", |a| a.as_str()))
        .header(
            header::USER_AGENT,
            concat!("graceful-wait/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in &req.headers {
        builder = builder.header(name, value);
    }
    let request = builder
        .body(Full::new(req.body.clone()))
        .map_err(|e| Error::usage(e.to_string()))?;
    round_trip(io, request)
        .await
        .map_err(|e| Error::transient(e.to_string()))
}

/// One request on a fresh HTTP/1 connection: the response's status.
///
/// The connection and the request are driven together. The connection may
/// end (the server closes right after answering) before the response is
/// handed over, so when it ends cleanly the request still decides: a
/// response, or an error saying none came.
pub async fn round_trip<S, B>(io: S, request: Request<B>) -> Result<StatusCode, hyper::Error>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut sender, conn) = http1::handshake(TokioIo::new(io)).await?;
    let send = sender.send_request(request);
    tokio::pin!(conn, send);
    let response = tokio::select! {
        r = &mut send => r,
        c = &mut conn => match c {
            Ok(()) => send.await,
            Err(e) => return Err(e),
        },
    };
    response.map(|r| r.status())
}
