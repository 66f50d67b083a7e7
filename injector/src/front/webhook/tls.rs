//! The serving certificate, read from PEM files and swapped while serving.
//!
//! cert-manager renews a Secret and the kubelet updates the mounted volume
//! by swapping a symlink (`..data`): the files change all at once, under the
//! same paths. Every handshake asks [`Reloading`] for the current key, and
//! the webhook reads the files again every few seconds ([`super`]); a
//! new pair that parses and matches replaces the old one for the next
//! handshakes, while connections already open go on with theirs. A pair
//! that does not parse (caught mid-swap, or broken) is logged and the old
//! one kept.

use rustls::{
    crypto::ring::sign::any_supported_type,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

/// The certificate and key files.
#[derive(Clone, Debug)]
pub struct Files {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The two files' bytes, as read now.
pub fn read(files: &Files) -> Result<(Vec<u8>, Vec<u8>), String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    Ok((read(&files.cert)?, read(&files.key)?))
}

/// Checks a certificate chain and its key, read from `files`.
pub fn parse(files: &Files, cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!(
                "{}: not a PEM certificate chain ({e})",
                files.cert.display()
            )
        })?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in it", files.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("{}: not a PEM private key ({e})", files.key.display()))?;
    let signer = any_supported_type(&key)
        .map_err(|e| format!("{}: unsupported key ({e})", files.key.display()))?;
    let certified = CertifiedKey::new(chain, signer);
    certified.keys_match().map_err(|e| {
        format!(
            "{} and {} do not belong together ({e})",
            files.cert.display(),
            files.key.display()
        )
    })?;
    Ok(Arc::new(certified))
}

/// The current certificate, swapped by [`Reloading::swap`].
#[derive(Debug)]
pub struct Reloading {
    pub files: Files,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Reloading {
    /// Serves `first`, read from `files`.
    pub fn new(files: Files, first: Arc<CertifiedKey>) -> Arc<Self> {
        Arc::new(Reloading {
            files,
            current: RwLock::new(first),
        })
    }

    /// Serves `key` from the next handshake on.
    pub fn swap(&self, key: Arc<CertifiedKey>) {
        match self.current.write() {
            Ok(mut c) => *c = key,
            Err(poisoned) => *poisoned.into_inner() = key,
        }
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

/// The server's TLS configuration: TLS 1.2 and 1.3, HTTP/1.1.
pub fn server_config(certs: Arc<Reloading>) -> Result<Arc<rustls::ServerConfig>, String> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_no_client_auth()
    .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
