//! The webhook under test: the real `graceful-inject serve` process, its
//! certificates made here (rcgen), and a client that speaks HTTP/1.1 over
//! rustls by hand — by hand so that the fault tests can send what no HTTP
//! library would (headers a byte a second, bodies too large).

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{mpsc, Arc, Mutex},
    time::Duration,
};

/// No test step may wait longer than this for anything.
pub const HANG_GUARD: Duration = Duration::from_secs(30);

/// A CA and a serving certificate for localhost and 127.0.0.1.
pub struct Pki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} CA"));
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        Pki {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// The certificate and key a shipped script made, with its CA.
    pub fn from_pem(ca_pem: String, cert_pem: String, key_pem: String) -> Pki {
        Pki {
            ca_pem,
            cert_pem,
            key_pem,
        }
    }

    /// Writes the pair as the kubelet updates a Secret volume: the files
    /// in a new timestamped folder, `..data` swapped to it by one rename,
    /// `tls.crt` and `tls.key` links through `..data` (made once).
    pub fn write(&self, dir: &Path) {
        use std::os::unix::fs::symlink;
        static VERSION: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let version = format!(
            "..2026_11_26_{}",
            VERSION.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        std::fs::create_dir(dir.join(&version)).unwrap();
        std::fs::write(dir.join(&version).join("tls.crt"), &self.cert_pem).unwrap();
        std::fs::write(dir.join(&version).join("tls.key"), &self.key_pem).unwrap();
        let _ = std::fs::remove_file(dir.join("..data_tmp"));
        symlink(&version, dir.join("..data_tmp")).unwrap();
        std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
        for name in ["tls.crt", "tls.key"] {
            if std::fs::symlink_metadata(dir.join(name)).is_err() {
                symlink(format!("..data/{name}"), dir.join(name)).unwrap();
            }
        }
    }
}

/// The running webhook; killed on drop.
pub struct Server {
    pub child: Child,
    pub listen: SocketAddr,
    pub health: SocketAddr,
    pub dir: tempfile::TempDir,
    lines: Arc<Mutex<Vec<String>>>,
    new_line: mpsc::Receiver<()>,
}

impl Server {
    pub fn start(pki: &Pki, config: &str, extra: &[&str]) -> Server {
        Self::start_in(pki, config, extra, false)
    }

    /// With `empty_root`, the server runs chrooted into its folder, which
    /// holds nothing but the binary, the config and the certificate: what a
    /// `FROM scratch` image gives it (needs root).
    pub fn start_in(pki: &Pki, config: &str, extra: &[&str], empty_root: bool) -> Server {
        let dir = tempfile::tempdir().unwrap();
        pki.write(dir.path());
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let (mut command, base) = if empty_root {
            let bin = dir.path().join("graceful-inject");
            std::fs::copy(env!("CARGO_BIN_EXE_graceful-inject"), &bin).unwrap();
            let mut c = Command::new("chroot");
            c.arg(dir.path()).arg("/graceful-inject");
            (c, std::path::PathBuf::from("/"))
        } else {
            (
                Command::new(env!("CARGO_BIN_EXE_graceful-inject")),
                dir.path().to_path_buf(),
            )
        };
        let mut child = command
            .arg("serve")
            .arg("--config")
            .arg(base.join("config.yml"))
            .arg("--tls-cert")
            .arg(base.join("tls.crt"))
            .arg("--tls-key")
            .arg(base.join("tls.key"))
            .args(["--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, new_line) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let keep = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                keep.lock().unwrap().push(line);
                let _ = tx.send(());
            }
        });
        let mut server = Server {
            child,
            listen: "0.0.0.0:0".parse().unwrap(),
            health: "0.0.0.0:0".parse().unwrap(),
            dir,
            lines,
            new_line,
        };
        let ready = server.wait_for("serving admission reviews");
        let field = |name: &str| -> SocketAddr {
            let v: serde_json::Value = serde_json::from_str(&ready).unwrap();
            v[name].as_str().unwrap().parse().unwrap()
        };
        server.listen = field("listen");
        server.health = field("health");
        server
    }

    /// Waits for a log line containing `text` (a new one or one already
    /// logged); returns it.
    pub fn wait_for(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + HANG_GUARD;
        loop {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| l.contains(text)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if self.new_line.recv_timeout(left).is_err() {
                panic!("no log line with {text:?}:\n{}", self.log());
            }
        }
    }

    pub fn count(&self, text: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(text))
            .count()
    }

    pub fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits for the process to exit; its status code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = std::time::Instant::now() + HANG_GUARD;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the webhook did not exit:\n{}",
                self.log()
            );
            // No event tells a non-parent that a process exited; the child
            // handle only polls.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP/1.1 client over TLS, trusting the given CAs; keep-alive.
pub struct Client {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

pub fn tls_config(cas: &[&str]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(ca.as_bytes()) {
            let cert: CertificateDer<'static> = cert.unwrap();
            roots.add(cert).unwrap();
        }
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

impl Client {
    pub fn connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> std::io::Result<Client> {
        Self::connect_as(addr, config, "localhost")
    }

    /// Connects checking the certificate for `name` (the Service's DNS name).
    pub fn connect_as(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
        name: &str,
    ) -> std::io::Result<Client> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(HANG_GUARD))?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from(name.to_string()).map_err(std::io::Error::other)?;
        let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        // Complete the handshake now, so that a refused one shows here.
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(Client { stream })
    }

    /// Sends one byte (and flushes it): for clients that trickle.
    pub fn write_byte(&mut self, b: u8) -> std::io::Result<()> {
        self.stream.write_all(&[b])?;
        self.stream.flush()?;
        // A closed connection shows on the next read; a TLS alert or EOF
        // from the server means it gave up on us.
        self.stream.sock.set_nonblocking(true)?;
        let mut buf = [0u8; 512];
        let peek = self.stream.read(&mut buf);
        self.stream.sock.set_nonblocking(false)?;
        match peek {
            Ok(0) => Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// POSTs `body` to `path`; the status and the response body.
    pub fn post(&mut self, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        // One write: head and body in one TLS record where they fit.
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.stream.write_all(&request)?;
        self.stream.flush()?;
        read_response(&mut self.stream)
    }
}

/// Reads one HTTP/1.1 response with a Content-Length.
pub fn read_response(stream: &mut impl Read) -> std::io::Result<(u16, Vec<u8>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body)?;
    Ok((status, body))
}

/// A GET on the plain health port.
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(HANG_GUARD)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let (status, body) = read_response(&mut s).unwrap();
    (status, String::from_utf8(body).unwrap())
}

/// The response of an AdmissionReview answer, and its patch decoded.
pub fn response_of(body: &[u8]) -> (serde_json::Value, Option<serde_json::Value>) {
    use base64::Engine;
    let review: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    let response = review["response"].clone();
    let patch = response["patch"].as_str().map(|p| {
        let bytes = base64::engine::general_purpose::STANDARD.decode(p).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    });
    (response, patch)
}

/// An AdmissionReview request for creating `pod`.
pub fn review_of(uid: &str, pod: &serde_json::Value) -> Vec<u8> {
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE",
            "namespace": pod["metadata"]["namespace"].as_str().unwrap_or("default"),
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod,
            "dryRun": false,
        }
    })
    .to_string()
    .into_bytes()
}
