//! The serving certificate, read from PEM files and swapped while serving.
//!
//! cert-manager renews a Secret and the kubelet updates the mounted volume
//! by swapping a symlink (`..data`): the files change all at once, under the
//! same paths. Every handshake asks [`Reloading`] for the current key, and a
//! background task reads the files again every few seconds; a new pair that
//! parses and matches replaces the old one for the next handshakes, while
//! connections already open go on with theirs. A pair that does not parse
//! (caught mid-swap, or broken) is logged and the old one kept.

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

/// Reads and checks a certificate chain and its key.
pub fn load(files: &Files) -> Result<(Vec<u8>, Arc<CertifiedKey>), String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let (cert_pem, key_pem) = (read(&files.cert)?, read(&files.key)?);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
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
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
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
    // What was read, to notice the next change by comparing.
    let mut seen = cert_pem;
    seen.extend_from_slice(&key_pem);
    Ok((seen, Arc::new(certified)))
}

/// The current certificate, swapped by [`Reloading::refresh`].
#[derive(Debug)]
pub struct Reloading {
    files: Files,
    current: RwLock<(Vec<u8>, Arc<CertifiedKey>)>,
}

impl Reloading {
    pub fn new(files: Files) -> Result<Arc<Self>, String> {
        let first = load(&files)?;
        Ok(Arc::new(Reloading {
            files,
            current: RwLock::new(first),
        }))
    }

    /// Reads the files again; true when a new certificate is now served.
    pub fn refresh(&self) -> Result<bool, String> {
        let (seen, key) = load(&self.files)?;
        let mut current = self
            .current
            .write()
            .map_err(|_| "lock poisoned".to_string())?;
        if current.0 == seen {
            return Ok(false);
        }
        *current = (seen, key);
        Ok(true)
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.1.clone())
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
