//! A mesh's sidecar injector, stood in: a mutating admission webhook served
//! by the test process on 127.0.0.1 (the API server runs on this host and
//! calls it by URL) that adds a proxy container to every pod it is sent
//! that has none, as Istio's and Linkerd's injectors do. Registered under a
//! name that sorts before or after graceful-wait's, it plays either order.

use hyper::{server::conn::http1, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};
use std::{
    net::TcpListener,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

/// The stand-in, serving until the test process ends.
pub struct MeshInjector {
    /// `https://127.0.0.1:PORT/inject`.
    pub url: String,
    /// The PEM of the CA that signed its certificate (the caBundle).
    pub ca_pem: String,
    reviews: Arc<AtomicUsize>,
}

impl MeshInjector {
    /// Starts serving; every pod without a container named like `proxy`
    /// gets `proxy` appended to its containers.
    pub fn start(proxy: Value) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("https://{}/inject", listener.local_addr().unwrap());
        let reviews = Arc::new(AtomicUsize::new(0));
        let counted = reviews.clone();
        let proxy = Arc::new(proxy);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let (acceptor, proxy, counted) =
                        (acceptor.clone(), proxy.clone(), counted.clone());
                    tokio::spawn(async move {
                        let Ok(stream) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let service = service_fn(move |req| {
                            counted.fetch_add(1, Ordering::SeqCst);
                            answer(req, proxy.clone())
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        MeshInjector {
            url,
            ca_pem: ca_cert.pem(),
            reviews,
        }
    }

    /// Reviews answered so far.
    pub fn reviews(&self) -> usize {
        self.reviews.load(Ordering::SeqCst)
    }

    /// Its MutatingWebhookConfiguration, named `name` (the API server calls
    /// the configurations in the order of their names), for pods labelled
    /// `mesh-test: inject`; `reinvocationPolicy: Never`, as Istio's.
    pub fn configuration(&self, name: &str) -> Value {
        use base64::Engine;
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [{
                "name": "sidecar.mesh.test",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "reinvocationPolicy": "Never",
                "timeoutSeconds": 5,
                "clientConfig": {
                    "url": self.url,
                    "caBundle": base64::engine::general_purpose::STANDARD.encode(&self.ca_pem),
                },
                "rules": [{"operations": ["CREATE"], "apiGroups": [""],
                    "apiVersions": ["v1"], "resources": ["pods"]}],
                "objectSelector": {"matchLabels": {"mesh-test": "inject"}},
            }],
        })
    }
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    proxy: Arc<Value>,
) -> Result<Response<String>, hyper::Error> {
    use base64::Engine;
    use http_body_util::BodyExt;
    let body = req.into_body().collect().await?.to_bytes();
    let review: Value = serde_json::from_slice(&body).unwrap_or_default();
    let request = &review["request"];
    let has = request["object"]["spec"]["containers"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["name"] == proxy["name"]));
    let mut response = json!({"uid": request["uid"], "allowed": true});
    if !has {
        let patch = json!([{"op": "add", "path": "/spec/containers/-", "value": *proxy}]);
        response["patchType"] = "JSONPatch".into();
        response["patch"] = base64::engine::general_purpose::STANDARD
            .encode(patch.to_string())
            .into();
    }
    let out = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(out.to_string())
        .unwrap())
}
