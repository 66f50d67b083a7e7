//! `graceful-inject serve`, the admission webhook, as the API server meets
//! it: real TLS, real-shaped AdmissionReviews built from the corpus's pods
//! (before and after Istio's injection, both layouts), every order with
//! Istio's injector, and the faults that must never fail or deny a review
//! or hang it. The patches are applied by an independent JSON Patch
//! implementation (Python's `jsonpatch`) and compared with the command
//! line's output for the same pod.

mod corpus_support;
#[path = "../../tests/support/piped.rs"]
mod piped;
#[path = "../../tests/podman/mod.rs"]
mod podman;
#[path = "../../tests/support/skip.rs"]
mod skip;
#[path = "../../tests/support/validate.rs"]
mod validate;
mod webhook_support;

use corpus_support::{corpus_objects, merged_by_istio, pod_of, pre_stop, proxy};
use serde_json::{json, Value};
use std::{
    fs,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
};
use webhook_support::{get, response_of, review_of, tls_config, Client, Pki, Server};

/// Every workload's proxy gets the wait its probes call for, native
/// sidecars included (so both layouts are patched).
const CONFIG: &str = "graceful-wait:\n  native-sidecars: wait\ndeployment:\n  \"*\":\n    istio-proxy: auto\nstatefulset:\n  \"*\":\n    istio-proxy: auto\ndaemonset:\n  \"*\":\n    istio-proxy: auto\nreplicaset:\n  \"*\":\n    istio-proxy: auto\nreplicationcontroller:\n  \"*\":\n    istio-proxy: auto\njob:\n  \"*\":\n    istio-proxy: auto\ncronjob:\n  \"*\":\n    istio-proxy: auto\npod:\n  \"*\":\n    istio-proxy: auto\ndeploymentconfig:\n  \"*\":\n    istio-proxy: auto\n";

fn python_has_jsonpatch() -> bool {
    Command::new("python3")
        .args(["-c", "import jsonpatch"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Applies each patch to its pod with Python's jsonpatch (RFC 6902).
fn apply_with_python(pairs: &[(Value, Value)]) -> Vec<Value> {
    let mut input = String::new();
    for (pod, patch) in pairs {
        input.push_str(&json!([pod, patch]).to_string());
        input.push('\n');
    }
    let out = piped::with_stdin(
        Command::new("python3").args([
            "-c",
            "import json, sys, jsonpatch\nfor line in sys.stdin:\n    pod, patch = json.loads(line)\n    print(json.dumps(jsonpatch.apply_patch(pod, patch)))\n",
        ]),
        input.as_bytes(),
    );
    assert!(
        out.status.success(),
        "jsonpatch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The command line's output for the same pod (as a bare Pod document).
fn cli(pod: &Value, config: &std::path::Path, args: &[&str]) -> Value {
    let out = piped::with_stdin(
        Command::new(env!("CARGO_BIN_EXE_graceful-inject"))
            .args(args)
            .arg("-q")
            .arg("-")
            .arg(config),
        pod.to_string().as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The pod a controller would create for a workload of `kind` named `name`.
fn created_pod(kind: &str, name: &str, mut pod: Value) -> Value {
    let hash = "7d9f8b6c5";
    let owner = match kind {
        "Deployment" => Some(("ReplicaSet", format!("{name}-{hash}"))),
        "CronJob" => Some(("Job", format!("{name}-29000000"))),
        "Pod" | "List" => None,
        k => Some((k, name.to_string())),
    };
    let meta = pod["metadata"].as_object_mut().unwrap();
    meta.insert("namespace".into(), json!("shop"));
    if let Some((okind, oname)) = owner {
        meta.insert(
            "ownerReferences".into(),
            json!([{"apiVersion": "apps/v1", "kind": okind, "name": oname, "uid": "0", "controller": true}]),
        );
        if kind == "Deployment" {
            let labels = meta.entry("labels").or_insert(json!({}));
            labels["pod-template-hash"] = json!(hash);
        }
    }
    // The CLI needs a name to match `pod: "*"`; the API server sends one
    // when the controller sets it (and the webhook matches by owner anyway).
    meta.insert("name".into(), json!(format!("{name}-abcde")));
    pod
}

fn validate(pods: &[Value]) {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = pods
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let f = dir.path().join(format!("pod-{i}.json"));
            fs::write(&f, p.to_string()).unwrap();
            f
        })
        .collect();
    validate::strictly_valid("kubernetes-validate of the patched pods", &files, None);
}

#[test]
fn every_corpus_pod_gets_from_the_webhook_what_the_command_line_writes() {
    if !python_has_jsonpatch() {
        skip::skipped(
            "every_corpus_pod_gets_from_the_webhook_what_the_command_line_writes",
            "python3's jsonpatch is missing (pip install jsonpatch; tests/run installs it as root)",
        );
        return;
    }
    let Some(injected) = corpus_objects("istio-kube-inject") else {
        skip::skipped(
            "every_corpus_pod_gets_from_the_webhook_what_the_command_line_writes",
            "../shared/corpus/istio-kube-inject is absent",
        );
        return;
    };
    let inputs = corpus_objects("istio-kube-inject-inputs").unwrap_or_default();
    let pki = Pki::new("corpus");
    let server = Server::start(&pki, CONFIG, &[]);
    let config_file = server.dir.path().join("config.yml");
    let mut client = Client::connect(server.listen, tls_config(&[&pki.ca_pem])).unwrap();
    // Before Istio's injection (with and without the pod asking Istio for a
    // sidecar), and after it.
    let mut cases: Vec<(String, Value, bool)> = Vec::new();
    for (file, object) in inputs.iter().chain(&injected) {
        let Some(pod) = pod_of(object) else { continue };
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or("x");
        let pod = created_pod(kind, name, pod);
        if proxy(&pod).is_none() {
            let mut asks = pod.clone();
            let labels = asks["metadata"]
                .as_object_mut()
                .unwrap()
                .entry("labels")
                .or_insert(json!({}));
            labels["sidecar.istio.io/inject"] = json!("true");
            cases.push((format!("{file} (asks Istio)"), asks, true));
        }
        cases.push((file.clone(), pod, false));
    }
    let mut pairs = Vec::new();
    let mut expected = Vec::new();
    let (mut patched, mut unpatched, mut refused) = (0, 0, 0);
    for (i, (file, pod, asks)) in cases.iter().enumerate() {
        let (status, body) = client
            .post("/mutate", &review_of(&format!("uid-{i}"), pod))
            .unwrap();
        assert_eq!(status, 200, "{file}");
        let (response, patch) = response_of(&body);
        assert_eq!(response["uid"], format!("uid-{i}"), "{file}");
        assert_eq!(response["allowed"], true, "{file}");
        // A warning only where the config's hook is refused (the command
        // line skips the same pod): then there is no patch.
        if let Some(warnings) = response.get("warnings") {
            assert!(patch.is_none(), "{file}: {response}");
            let said = warnings.to_string();
            assert!(said.contains("no hook added: "), "{file}: {said}");
            refused += 1;
        }
        let stub = if *asks { vec!["--istio-stub"] } else { vec![] };
        let want = cli(pod, &config_file, &stub);
        match patch {
            Some(patch) => {
                patched += 1;
                assert_eq!(response["patchType"], "JSONPatch");
                pairs.push((pod.clone(), patch));
                expected.push((file.clone(), want));
            }
            None => {
                unpatched += 1;
                assert_eq!(
                    &want, pod,
                    "{file}: no patch, but the command line changes the pod"
                );
            }
        }
    }
    let applied = apply_with_python(&pairs);
    for ((file, want), got) in expected.iter().zip(&applied) {
        assert_eq!(
            got, want,
            "{file}: the patched pod differs from the command line's"
        );
    }
    validate(&applied);
    println!(
        "webhook: {} reviews from {} corpus objects: {patched} patched (each equal to the command line's output), {unpatched} unchanged ({refused} of them refused with a warning)",
        cases.len(),
        inputs.len() + injected.len()
    );
    assert!(
        patched > 100 && unpatched > 50,
        "{patched} patched, {unpatched} unchanged"
    );
    assert_eq!(
        server.count("\"decision\":\"error\""),
        0,
        "{}",
        server.log()
    );
    assert_eq!(
        server.count("\"decision\":\"refused\""),
        refused,
        "{}",
        server.log()
    );
}

fn patched(pod: &Value, patch: Option<Value>) -> Value {
    match patch {
        Some(p) => {
            let p: json_patch::Patch = serde_json::from_value(p).unwrap();
            let mut pod = pod.clone();
            json_patch::patch(&mut pod, &p).unwrap();
            pod
        }
        None => pod.clone(),
    }
}

/// The proxy's preStop in a pod.
fn proxy_hook(pod: &Value) -> Vec<String> {
    pre_stop(proxy(pod).unwrap().1)
}

/// Mutating webhooks run in name order and are re-invoked when a later one
/// changed the pod: every order with Istio's injector ends with the proxy
/// hooked once, Istio's drain chained, and a re-invocation changing nothing.
#[test]
fn every_order_with_istios_injector_hooks_the_proxy_once() {
    let (Some(inputs), Some(outputs)) = (
        corpus_objects("istio-kube-inject-inputs"),
        corpus_objects("istio-kube-inject"),
    ) else {
        skip::skipped(
            "webhook and Istio",
            "../shared/corpus/istio-kube-inject is absent",
        );
        return;
    };
    let pki = Pki::new("order");
    let server = Server::start(&pki, CONFIG, &[]);
    let mut client = Client::connect(server.listen, tls_config(&[&pki.ca_pem])).unwrap();
    let mut ask = |pod: &Value| {
        let (status, body) = client.post("/mutate", &review_of("u", pod)).unwrap();
        assert_eq!(status, 200);
        let (response, patch) = response_of(&body);
        assert_eq!(response["allowed"], true);
        patch
    };
    let find = |objects: &[(String, Value)], file: &str| {
        let (_, o) = objects.iter().find(|(f, _)| f == file).unwrap();
        created_pod(o["kind"].as_str().unwrap(), "hello", pod_of(o).unwrap())
    };
    // Native by the mesh's default, and the classic layout.
    for (input, output) in [
        ("hello-probes.yaml", "hello-probes.yaml.injected"),
        (
            "native-sidecar-opt-out.yaml",
            "native-sidecar-opt-out.yaml.injected",
        ),
    ] {
        let before = find(&inputs, input);
        let istio = find(&outputs, output);
        let istio_drain = proxy_hook(&istio);

        // 1. Istio first: the webhook hooks the injected proxy...
        let hooked = patched(&istio, ask(&istio));
        let command = proxy_hook(&hooked);
        assert_eq!(command[0], "/graceful-wait/graceful-wait", "{output}");
        match command.iter().position(|w| w == "--") {
            Some(i) => assert_eq!(command[i + 1..], istio_drain[..], "{output}: Istio's drain"),
            None => assert!(istio_drain.is_empty(), "{output}: Istio's drain lost"),
        }
        // ...and its re-invocation changes nothing.
        assert_eq!(ask(&hooked), None, "{output}: re-invocation");

        // 2. The webhook first, on a pod that does not ask Istio: nothing;
        // Istio then injects, and the re-invocation hooks the proxy as in 1.
        assert_eq!(ask(&before), None, "{input}: no sidecar, no stub");
        assert_eq!(patched(&istio, ask(&istio)), hooked, "{output}");

        // 3. The webhook first, on a pod that asks Istio: the stub...
        let mut asks = before.clone();
        asks["metadata"]["labels"]["sidecar.istio.io/inject"] = json!("true");
        let stubbed = patched(&asks, ask(&asks));
        let (list, stub) = proxy(&stubbed).expect("a stub");
        assert_eq!(
            (list, stub["image"].as_str()),
            ("containers", Some("auto")),
            "{input}"
        );
        // ...which istiod merges onto the sidecar it injects (in the
        // sidecar's own list), keeping the pod's additions...
        let Some(merged) = merged_by_istio(&istio, &stubbed) else {
            skip::skipped(
                &format!("webhook and Istio, order 3 for {input}"),
                "kubectl is not installed (tests/run installs kubectl 1.35)",
            );
            continue;
        };
        let command = proxy_hook(&merged);
        assert_eq!(command[0], "/graceful-wait/graceful-wait", "{input}");
        assert!(
            command.ends_with(&["POST".to_string(), "drain".to_string()]),
            "{input}: {command:?}"
        );
        // ...and the re-invocation after Istio changes nothing.
        assert_eq!(
            ask(&merged),
            None,
            "{input}: re-invocation after the stub was merged"
        );
    }
}

/// Whatever arrives, the answer is an allowed review: malformed JSON, the
/// wrong apiVersion or kind, a non-Pod object, an UPDATE, a body over the
/// limit, an annotation that is not a wait, a pod opted out.
#[test]
fn bad_requests_are_admitted_unchanged_with_a_warning() {
    let pki = Pki::new("faults");
    let server = Server::start(&pki, CONFIG, &["--max-body", "65536"]);
    let config = tls_config(&[&pki.ca_pem]);
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"},
                     "spec": {"containers": [{"name": "app", "image": "a"}, {"name": "istio-proxy", "image": "p"}]}});
    let mut wrong_version: Value = serde_json::from_slice(&review_of("v", &pod)).unwrap();
    wrong_version["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let mut not_a_pod: Value = serde_json::from_slice(&review_of("d", &pod)).unwrap();
    not_a_pod["request"]["kind"]["kind"] = json!("Deployment");
    let mut update: Value = serde_json::from_slice(&review_of("u", &pod)).unwrap();
    update["request"]["operation"] = json!("UPDATE");
    let mut bad_annotation = pod.clone();
    bad_annotation["metadata"]["annotations"] = json!({"graceful-wait.io/wait": "{tcp: 0}"});
    let mut opted_out = pod.clone();
    opted_out["metadata"]["labels"] = json!({"graceful-wait.io/inject": "false"});
    let huge = review_of("h", &json!({"metadata": {"name": "x".repeat(100_000)}}));
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("malformed JSON", b"{\"apiVersion\": ".to_vec(), true),
        ("not JSON at all", vec![0xff, 0xfe, 0, 1], true),
        (
            "wrong apiVersion",
            wrong_version.to_string().into_bytes(),
            true,
        ),
        ("not a Pod", not_a_pod.to_string().into_bytes(), true),
        ("an UPDATE", update.to_string().into_bytes(), false),
        (
            "an annotation that is no wait",
            review_of("a", &bad_annotation),
            true,
        ),
        ("opted out", review_of("o", &opted_out), false),
        ("over the body limit", huge, true),
        ("an empty body", Vec::new(), true),
    ];
    for (what, body, warns) in cases {
        let mut client = Client::connect(server.listen, config.clone()).unwrap();
        let (status, answer) = client.post("/mutate", &body).unwrap();
        assert_eq!(status, 200, "{what}");
        let (response, patch) = response_of(&answer);
        assert_eq!(response["allowed"], true, "{what}");
        assert_eq!(patch, None, "{what}");
        assert_eq!(
            response.get("warnings").is_some(),
            warns,
            "{what}: {response}"
        );
    }
    // The annotation the team sets, when it is a wait, is used.
    let mut annotated = pod.clone();
    annotated["metadata"]["annotations"] = json!({"graceful-wait.io/wait": "{tcp: 8080}"});
    let mut client = Client::connect(server.listen, config).unwrap();
    let (_, answer) = client.post("/mutate", &review_of("t", &annotated)).unwrap();
    let hooked = patched(&annotated, response_of(&answer).1);
    assert!(
        proxy_hook(&hooked).contains(&"--port=8080".to_string()),
        "{hooked}"
    );
    // Without graceful-wait.io/container the pod's mesh proxy waits,
    // whichever mesh's it is.
    let mut linkerd = annotated.clone();
    for c in linkerd["spec"]["containers"].as_array_mut().unwrap() {
        if c["name"] == "istio-proxy" {
            c["name"] = "linkerd-proxy".into();
        }
    }
    let (_, answer) = client.post("/mutate", &review_of("l", &linkerd)).unwrap();
    let hooked = patched(&linkerd, response_of(&answer).1);
    let hook = hooked["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "linkerd-proxy")
        .map(|c| c["lifecycle"]["preStop"]["exec"]["command"].to_string())
        .unwrap_or_default();
    assert!(
        hook.contains("--port=8080"),
        "{hooked}\n{}",
        String::from_utf8_lossy(&answer)
    );
    // What the planning warns about reaches whoever creates the pod.
    let mut short = annotated.clone();
    short["spec"]["terminationGracePeriodSeconds"] = json!(3);
    let (_, answer) = client.post("/mutate", &review_of("g", &short)).unwrap();
    let (response, patch) = response_of(&answer);
    assert!(patch.is_some());
    let warnings = response["warnings"].to_string();
    assert!(
        warnings.contains("terminationGracePeriodSeconds 3s leaves no time"),
        "{warnings}"
    );
    let metrics = get(server.health, "/metrics").1;
    assert!(
        metrics.contains("graceful_inject_reviews_total{decision=\"invalid\"} 7"),
        "{metrics}"
    );
    assert!(
        metrics.contains("graceful_inject_reviews_total{decision=\"patched\"} 3"),
        "{metrics}"
    );
    // The process's own cost, under the names every Prometheus client
    // library uses, with a value that is the process's.
    let value = |name: &str| -> f64 {
        let line = metrics.lines().find(|l| l.starts_with(name));
        line.and_then(|l| l.split(' ').nth(1)?.parse().ok())
            .unwrap_or_else(|| panic!("no {name}: {metrics}"))
    };
    assert!(value("process_cpu_seconds_total ") >= 0.0);
    assert!(value("process_resident_memory_bytes ") > 1e6, "{metrics}");
    assert_eq!(get(server.health, "/healthz").0, 200);
    assert_eq!(get(server.health, "/readyz").0, 200);
}

/// A simple pod to review under load.
fn load_pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"generateName": "web-7d9f8b6c5-", "namespace": "shop",
                        "labels": {"pod-template-hash": "7d9f8b6c5"},
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f8b6c5", "uid": "0", "controller": true}]},
           "spec": {"containers": [{"name": "web", "image": "web", "ports": [{"containerPort": 8080}],
                                    "readinessProbe": {"httpGet": {"path": "/health", "port": 8080}}},
                                   {"name": "istio-proxy", "image": "proxyv2"}]}})
}

/// Clients sending reviews until `stop`; each answer must be an allowed
/// review. Counts answers, and connections that could not be made (which
/// the API server would count as a failed call).
struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    /// `fresh`: a new TLS connection for every review (every one a
    /// handshake), else keep-alive.
    fn start(
        server: &Server,
        config: Arc<rustls::ClientConfig>,
        clients: usize,
        fresh: bool,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let body = review_of("load", &load_pod());
        let threads = (0..clients)
            .map(|_| {
                let (stop, answered, refused) = (stop.clone(), answered.clone(), refused.clone());
                let (config, body, addr) = (config.clone(), body.clone(), server.listen);
                std::thread::spawn(move || {
                    let mut client = None;
                    while !stop.load(Ordering::SeqCst) {
                        if client.is_none() || fresh {
                            match Client::connect(addr, config.clone()) {
                                Ok(c) => client = Some(c),
                                Err(_) => {
                                    refused.fetch_add(1, Ordering::SeqCst);
                                    return;
                                }
                            }
                        }
                        let Ok((status, answer)) = client.as_mut().unwrap().post("/mutate", &body)
                        else {
                            // The server closed a kept-alive connection
                            // (shutting down): reconnect, or stop when refused.
                            client = None;
                            continue;
                        };
                        assert_eq!(status, 200);
                        let (response, patch) = response_of(&answer);
                        assert_eq!(response["allowed"], true);
                        assert!(patch.is_some(), "{response}");
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        Load {
            stop,
            answered,
            refused,
            threads,
        }
    }

    /// Waits until `n` more reviews were answered.
    fn answered_more(&self, n: usize) {
        let target = self.answered.load(Ordering::SeqCst) + n;
        let deadline = std::time::Instant::now() + webhook_support::HANG_GUARD;
        while self.answered.load(Ordering::SeqCst) < target {
            assert!(std::time::Instant::now() < deadline, "the load stalled");
            std::thread::yield_now();
        }
    }

    fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().expect("a client saw a failed or denied review");
        }
        (
            self.answered.load(Ordering::SeqCst),
            self.refused.load(Ordering::SeqCst),
        )
    }
}

/// cert-manager renews the certificate while reviews flow: handshakes
/// after the swap get the new one, no review fails.
#[test]
fn a_certificate_swapped_under_load_is_served_without_a_failed_review() {
    let old = Pki::new("old");
    let new = Pki::new("new");
    let server = Server::start(&old, CONFIG, &["--reload-every", "100ms"]);
    // The clients trust both CAs, as the API server does while cert-manager
    // rotates (the CA bundle holds both).
    let load = Load::start(&server, tls_config(&[&old.ca_pem, &new.ca_pem]), 4, true);
    load.answered_more(50);
    new.write(server.dir.path());
    server.wait_for("certificate reloaded");
    load.answered_more(50);
    // A client that trusts only the new CA gets through now.
    let mut only_new = Client::connect(server.listen, tls_config(&[&new.ca_pem])).unwrap();
    let (status, _) = only_new
        .post("/mutate", &review_of("n", &load_pod()))
        .unwrap();
    assert_eq!(status, 200);
    assert!(
        Client::connect(server.listen, tls_config(&[&old.ca_pem])).is_err(),
        "the old certificate is still served"
    );
    let (answered, refused) = load.finish();
    assert_eq!(refused, 0);
    println!("certificate swap under load: {answered} reviews, none failed");
    // A broken pair is not taken: the new one stays.
    std::fs::write(server.dir.path().join("tls.crt"), "not a certificate").unwrap();
    server.wait_for("certificate not reloaded");
    assert!(Client::connect(server.listen, tls_config(&[&new.ca_pem])).is_ok());
}

/// SIGTERM while reviews flow: readiness fails at once, reviews are still
/// answered during the delay, those in flight finish, the process exits 0.
#[test]
fn sigterm_under_load_fails_no_review_and_exits() {
    let pki = Pki::new("term");
    let mut server = Server::start(&pki, CONFIG, &["--shutdown-delay", "1s"]);
    let load = Load::start(&server, tls_config(&[&pki.ca_pem]), 4, false);
    load.answered_more(100);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    server.wait_for("stopping: not ready");
    assert_eq!(get(server.health, "/readyz").0, 503);
    assert_eq!(get(server.health, "/healthz").0, 200);
    load.answered_more(50);
    assert_eq!(server.wait_exit(), Some(0), "{}", server.log());
    let (answered, _) = load.finish();
    println!("SIGTERM under load: {answered} reviews answered, none failed; exit 0");
    server.wait_for("stopped: every request in flight was answered");
}

/// Headers sent a byte a second cannot hold the server: other reviews are
/// answered meanwhile, and the slow connection is closed at the header
/// deadline.
#[test]
fn a_client_sending_headers_a_byte_a_second_holds_nothing() {
    let pki = Pki::new("slow");
    let server = Server::start(&pki, CONFIG, &[]);
    let config = tls_config(&[&pki.ca_pem]);
    let mut slow = Client::connect(server.listen, config.clone()).unwrap();
    let closed = Arc::new(AtomicBool::new(false));
    let trickle = {
        let closed = closed.clone();
        std::thread::spawn(move || {
            for b in b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
                .iter()
                .chain(b"a".repeat(60).iter())
            {
                if slow.write_byte(*b).is_err() {
                    closed.store(true, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        })
    };
    let load = Load::start(&server, config, 2, false);
    load.answered_more(200);
    trickle.join().unwrap();
    let (answered, refused) = load.finish();
    assert_eq!(refused, 0);
    assert!(
        closed.load(Ordering::SeqCst),
        "the slow client was never cut off"
    );
    println!(
        "slow headers: {answered} other reviews answered meanwhile; the slow connection was closed"
    );
}

/// A config change is picked up; a broken one is not, and the last good
/// one stays in force.
#[test]
fn the_config_is_reloaded_and_a_broken_one_ignored() {
    let pki = Pki::new("config");
    let server = Server::start(
        &pki,
        "deployment:\n  other:\n    istio-proxy: auto\n",
        &["--reload-every", "100ms"],
    );
    let mut client = Client::connect(server.listen, tls_config(&[&pki.ca_pem])).unwrap();
    let mut ask = || {
        response_of(
            &client
                .post("/mutate", &review_of("c", &load_pod()))
                .unwrap()
                .1,
        )
        .1
    };
    assert_eq!(ask(), None, "web is not in the first config");
    std::fs::write(
        server.dir.path().join("config.yml"),
        "deployment:\n  web:\n    istio-proxy: {tcp: 8080}\n",
    )
    .unwrap();
    server.wait_for("config reloaded");
    assert!(ask().is_some(), "the new config is not in force");
    std::fs::write(
        server.dir.path().join("config.yml"),
        "deployment:\n  web: [\n",
    )
    .unwrap();
    server.wait_for("config not reloaded");
    assert!(
        ask().is_some(),
        "the last good config is no longer in force"
    );
}

/// deploy/webhook/self-signed.sh (DRY_RUN=1: it prints what it would
/// apply) makes a certificate the webhook serves and that the CA it puts in
/// the webhook configuration's caBundle verifies for the Service's name.
#[test]
fn the_self_signed_install_gives_a_certificate_the_api_server_would_trust() {
    use base64::Engine;
    let have_openssl = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have_openssl {
        skip::skipped(
            "self-signed install",
            "openssl is not installed (apt-get install openssl)",
        );
        return;
    }
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/webhook/self-signed.sh");
    let out = Command::new("bash")
        .arg(script)
        .env("DRY_RUN", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(std::str::from_utf8(&out.stdout).unwrap()).unwrap();
    let secret = docs.iter().find(|d| d["kind"] == "Secret").unwrap();
    let webhook = docs
        .iter()
        .find(|d| d["kind"] == "MutatingWebhookConfiguration")
        .unwrap();
    let b64 = |v: &Value| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    let ca = b64(&webhook["webhooks"][0]["clientConfig"]["caBundle"]);
    let pki = Pki::from_pem(
        ca.clone(),
        b64(&secret["data"]["tls.crt"]),
        b64(&secret["data"]["tls.key"]),
    );
    assert_eq!(b64(&secret["data"]["ca.crt"]), ca);
    let server = Server::start(&pki, CONFIG, &[]);
    let service = &webhook["webhooks"][0]["clientConfig"]["service"];
    let name = format!(
        "{}.{}.svc",
        service["name"].as_str().unwrap(),
        service["namespace"].as_str().unwrap()
    );
    let mut client = Client::connect_as(server.listen, tls_config(&[&ca]), &name).unwrap();
    let (status, answer) = client
        .post("/mutate", &review_of("s", &load_pod()))
        .unwrap();
    assert_eq!(status, 200);
    assert!(response_of(&answer).1.is_some());
    // The Deployment mounts that Secret, and runs the server with its files.
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let volumes = deployment["spec"]["template"]["spec"]["volumes"].to_string();
    assert!(
        volumes.contains(secret["metadata"]["name"].as_str().unwrap()),
        "{volumes}"
    );
}

/// The webhook's image is `FROM scratch` with the static binary
/// (docker/graceful-inject.Dockerfile): it serves from a root that holds
/// nothing else — no libc, no /etc, no /proc.
#[test]
fn the_webhook_serves_from_an_empty_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip::skipped(
            "the_webhook_serves_from_an_empty_root",
            "needs root (chroot); CI runs as root",
        );
        return;
    }
    let pki = Pki::new("scratch");
    let server = Server::start_in(&pki, CONFIG, &[], true);
    let mut client = Client::connect(server.listen, tls_config(&[&pki.ca_pem])).unwrap();
    let (status, answer) = client
        .post("/mutate", &review_of("e", &load_pod()))
        .unwrap();
    assert_eq!(status, 200);
    assert!(response_of(&answer).1.is_some(), "{}", server.log());
    assert_eq!(get(server.health, "/readyz").0, 200);
}

/// Connections beyond `--max-connections` are closed at once; the ones
/// being served go on, and a slot freed is a connection served again.
#[test]
fn connections_beyond_the_limit_are_closed_and_the_served_ones_go_on() {
    let pki = Pki::new("limit");
    let server = Server::start(&pki, CONFIG, &["--max-connections", "3"]);
    let config = tls_config(&[&pki.ca_pem]);
    let mut held: Vec<Client> = (0..3)
        .map(|_| Client::connect(server.listen, config.clone()).unwrap())
        .collect();
    assert!(
        Client::connect(server.listen, config.clone()).is_err(),
        "a fourth connection was served"
    );
    server.wait_for("connection refused: the most connections are open");
    // The held ones still get answers.
    for c in &mut held {
        let (status, _) = c.post("/mutate", &review_of("h", &load_pod())).unwrap();
        assert_eq!(status, 200);
    }
    // One closed: a new connection gets its slot (the server notices the
    // close on its own time, so the new one is tried until it is served).
    drop(held.pop());
    let deadline = std::time::Instant::now() + webhook_support::HANG_GUARD;
    let mut again = loop {
        if let Ok(c) = Client::connect(server.listen, config.clone()) {
            break c;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the freed slot was never reused"
        );
    };
    let (status, _) = again.post("/mutate", &review_of("a", &load_pod())).unwrap();
    assert_eq!(status, 200);
}

/// The webhook from its own image (docker/graceful-inject.Dockerfile's
/// `prebuilt` target, built offline) under podman: read-only root, the
/// image's non-root user, every capability dropped, no new privileges, the
/// certificate from a folder mounted read-only and laid out as the kubelet
/// lays out a Secret volume. It answers every corpus review exactly as the
/// same binary run directly does; a certificate swapped by renaming
/// `..data` is served next; on SIGTERM (`podman stop`) reviews sent during
/// the shutdown delay are answered, none is dropped, and it exits 0.
#[test]
fn the_webhook_serves_from_its_image_under_podman() {
    let test = "the_webhook_serves_from_its_image_under_podman";
    let Some(podman) = podman::Podman::new_or_skip(test) else {
        return;
    };
    let Some(inputs) = corpus_objects("istio-kube-inject-inputs") else {
        skip::skipped(test, "../shared/corpus/istio-kube-inject-inputs is absent");
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    let at = ctx.path().join("target/x86_64-unknown-linux-gnu/release");
    std::fs::create_dir_all(&at).unwrap();
    // GW_INJECT_BINARY: the release build (tests/run), whose image size is
    // the one users get.
    let binary = std::env::var("GW_INJECT_BINARY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_graceful-inject").to_string());
    std::fs::copy(binary, at.join("graceful-inject")).unwrap();
    let image = "localhost/graceful-inject:test";
    podman.build(
        ctx.path(),
        &podman::repo().join("docker/graceful-inject.Dockerfile"),
        Some("prebuilt"),
        image,
    );
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("\nwebhook image: {} bytes\n", podman.size(image)).as_bytes(),
    );

    // The Secret volume and the config, readable by the image's user.
    let old = Pki::new("image-old");
    let new = Pki::new("image-new");
    let secret = tempfile::tempdir().unwrap();
    old.write(secret.path());
    std::fs::write(secret.path().join("config.yml"), CONFIG).unwrap();
    std::fs::set_permissions(
        secret.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mount = format!("{}:/etc/webhook:ro", secret.path().display());
    podman.run_restricted(&[
        "-d",
        "--name",
        "webhook",
        "--network",
        "host",
        "-v",
        &mount,
        image,
        "serve",
        "--config",
        "/etc/webhook/config.yml",
        "--tls-cert",
        "/etc/webhook/tls.crt",
        "--tls-key",
        "/etc/webhook/tls.key",
        "--listen",
        "127.0.0.1:0",
        "--health-listen",
        "127.0.0.1:0",
        "--reload-every",
        "100ms",
        "--shutdown-delay",
        "2s",
    ]);
    let mut log = podman.follow("webhook");
    let ready: Value = serde_json::from_str(&log.expect("serving admission reviews")).unwrap();
    let listen: std::net::SocketAddr = ready["listen"].as_str().unwrap().parse().unwrap();
    let health: std::net::SocketAddr = ready["health"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        podman.text(&["inspect", "--format", "{{.Config.User}}", "webhook"]),
        "65532:65532",
        "the image's own user"
    );
    assert_eq!(get(health, "/readyz").0, 200);

    // Every corpus pod: the same answer as the binary run directly.
    let direct = Server::start(&old, CONFIG, &[]);
    let mut from_image = Client::connect(listen, tls_config(&[&old.ca_pem])).unwrap();
    let mut from_direct = Client::connect(direct.listen, tls_config(&[&old.ca_pem])).unwrap();
    let mut compared = 0;
    for (i, (file, object)) in inputs.iter().enumerate() {
        let Some(pod) = pod_of(object) else { continue };
        let review = review_of(
            &format!("uid-{i}"),
            &created_pod(
                object["kind"].as_str().unwrap_or_default(),
                object["metadata"]["name"].as_str().unwrap_or("x"),
                pod,
            ),
        );
        let a = from_image.post("/mutate", &review).unwrap();
        let b = from_direct.post("/mutate", &review).unwrap();
        assert_eq!(a.0, 200, "{file}");
        assert_eq!(a, b, "{file}: the image answered otherwise");
        compared += 1;
    }
    assert!(compared > 100, "only {compared} corpus pods");

    // The certificate swapped as the kubelet swaps a Secret's files.
    new.write(secret.path());
    log.expect("certificate reloaded");
    let mut only_new = Client::connect(listen, tls_config(&[&new.ca_pem])).unwrap();
    assert_eq!(
        only_new
            .post("/mutate", &review_of("n", &load_pod()))
            .unwrap()
            .0,
        200
    );

    // SIGTERM while reviews flow, as the API server sends them: it keeps
    // sending until the Service's endpoints drop the pod, which follows the
    // failed readiness within the shutdown delay (here: a second after the
    // sender sees /readyz fail, of the 2 s delay). Every review sent gets
    // its answer.
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        let config = tls_config(&[&new.ca_pem]);
        std::thread::spawn(move || {
            let (mut answered, mut while_not_ready, mut dropped) = (0, 0, Vec::new());
            let mut not_ready_since = None;
            while !stop.load(Ordering::SeqCst) {
                if not_ready_since.is_none() && get(health, "/readyz").0 != 200 {
                    not_ready_since = Some(std::time::Instant::now());
                }
                if not_ready_since.is_some_and(|t| t.elapsed() > std::time::Duration::from_secs(1))
                {
                    break;
                }
                let mut client = Client::connect(listen, config.clone()).unwrap();
                match client.post("/mutate", &review_of("t", &load_pod())) {
                    Ok((200, _)) => {
                        answered += 1;
                        while_not_ready += usize::from(not_ready_since.is_some());
                    }
                    other => dropped.push(format!("{other:?}")),
                }
            }
            (answered, while_not_ready, dropped)
        })
    };
    let stopped = podman
        .cmd()
        .args(["stop", "-t", "10", "webhook"])
        .output()
        .unwrap();
    assert!(stopped.status.success());
    stop.store(true, Ordering::SeqCst);
    let (answered, while_not_ready, dropped) = sender.join().unwrap();
    assert!(
        dropped.is_empty(),
        "reviews dropped during shutdown: {dropped:?}"
    );
    assert!(
        answered > 0 && while_not_ready > 0,
        "{answered}, {while_not_ready}"
    );
    assert_eq!(
        podman.text(&["inspect", "--format", "{{.State.ExitCode}}", "webhook"]),
        "0"
    );
    log.expect("stopped: every request in flight was answered");
}
