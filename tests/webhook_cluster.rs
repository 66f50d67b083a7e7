//! The admission webhook in a real Kubernetes: installed by its Helm chart
//! (Helm 4 and Helm 3, each certificate mode that runs here), by
//! `kubectl apply -k` and by `self-signed.sh`; called by the real API
//! server for pods the controllers create; out of the way when it is down,
//! killed or drained; in both orders with a mesh's injector; and measured
//! where the API server measures it.
//!
//! Needs root and Go, as `tests/real_cluster.rs` (the same cluster, images
//! and receiver); SKIPPED otherwise. `tests/run` runs it with `GW_BINARY`
//! and `GW_INJECT_BINARY` naming the release builds.

mod cluster;
mod scenarios;
mod support;

use cluster::{
    lab::{callbacks, images, on_node, senders, start_receiver},
    mesh::MeshInjector,
    Cluster,
};
use scenarios::*;
use serde_json::{json, Value};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Instant,
};
use support::*;

#[test]
#[ignore = "re-exec entry point: the tests run it as their helper process"]
fn helper_process() {
    helper_main();
    roles::main();
}

/// The release's namespace, as the chart's README installs it.
const RELEASE_NS: &str = "graceful-wait";
/// The chart's fixed names.
const WEBHOOK: &str = "graceful-inject-webhook";
const CONFIGURATION: &str = "graceful-wait";
const HOOK_NAME: &str = "pods.graceful-wait.io";
/// A namespace the webhook serves, and one labelled out.
const HOOKED: &str = "gw-hooked";
const OPTED_OUT: &str = "gw-opted-out";
/// The node never matches it: pods only admitted, never run.
const NOWHERE: &str = "graceful-wait.test/nowhere";

/// The chart's default config, the installer from the local image.
const CONFIG: &str = "graceful-wait:\n  image: localhost/graceful-wait:test\n\
deployment:\n  \"*\":\n    istio-proxy: auto\nstatefulset:\n  \"*\":\n    istio-proxy: auto\n";
/// The config a `helm upgrade` changes to.
const CONFIG_TCP: &str = "graceful-wait:\n  image: localhost/graceful-wait:test\n\
deployment:\n  \"*\":\n    istio-proxy: {tcp: 20000}\n";

/// What the test found, section by section, printed at the end (and kept
/// in `GW_WEBHOOK_REPORT` when set) for docs/webhook.md.
#[derive(Default)]
struct Report(Vec<String>);

impl Report {
    fn say(&mut self, line: String) {
        println!("webhook in cluster: {line}");
        self.0.push(line);
    }
}

/// The app-and-proxy pod as a team writes it: golden case original-tcp's
/// workload before any injection, no hooks, made playable.
fn plain(upstream: &str) -> Value {
    let mut spec = original_of(
        "original-tcp",
        "test-tcp-svc",
        20000,
        vec![],
        LAB_IMAGE,
        upstream,
    );
    let proxy = container(&mut spec, "istio-proxy");
    proxy.as_object_mut().unwrap().remove("lifecycle");
    on_node(spec, "Always")
}

/// The same spec for a pod that is only admitted: it is never scheduled.
fn admitted_only(mut spec: Value) -> Value {
    spec["nodeSelector"] = json!({ NOWHERE: "true" });
    spec
}

fn deployment(ns: &str, name: &str, spec: Value, replicas: usize, pod_meta: Value) -> Value {
    let mut meta = pod_meta;
    meta["labels"]["app"] = name.into();
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": meta, "spec": spec},
        },
    })
}

fn bare(ns: &str, name: &str, spec: Value, meta: Value) -> Value {
    let mut meta = meta;
    meta["name"] = name.into();
    meta["namespace"] = ns.into();
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
}

/// The named container's preStop command, joined, where it is
/// graceful-wait's.
fn hook(pod: &Value, name: &str) -> Option<String> {
    let spec = &pod["spec"];
    ["containers", "initContainers"]
        .iter()
        .flat_map(|l| spec[l].as_array().into_iter().flatten())
        .find(|c| c["name"] == name)
        .and_then(|c| c["lifecycle"]["preStop"]["exec"]["command"].as_array())
        .map(|cmd| {
            cmd.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|cmd| cmd.contains("/graceful-wait/graceful-wait"))
}

/// The installer init container and the volume it fills are in the pod.
fn installed(pod: &Value) -> bool {
    let named = |list: &Value, name: &str| {
        list.as_array()
            .is_some_and(|l| l.iter().any(|x| x["name"] == name))
    };
    named(&pod["spec"]["initContainers"], "graceful-wait-install")
        && named(&pod["spec"]["volumes"], "graceful-wait")
}

/// The webhook's image (docker/graceful-inject.Dockerfile's `prebuilt`
/// target) from `GW_INJECT_BINARY`, imported into the node.
fn webhook_image(cluster: &Cluster) {
    let binary = std::env::var("GW_INJECT_BINARY").expect("GW_INJECT_BINARY");
    let ctx = tempfile::tempdir().unwrap();
    let at = ctx.path().join("target/x86_64-unknown-linux-gnu/release");
    std::fs::create_dir_all(&at).unwrap();
    std::fs::copy(binary, at.join("graceful-inject")).unwrap();
    cluster.image(
        "graceful-inject",
        ctx.path(),
        &repo().join("docker/graceful-inject.Dockerfile"),
        Some("prebuilt"),
    );
}

/// The webhook's pods, running and Ready.
fn webhook_pods(cluster: &Cluster) -> Vec<Value> {
    cluster
        .live_pods(RELEASE_NS)
        .into_iter()
        .filter(|p| {
            p["metadata"]["labels"]["app.kubernetes.io/name"] == WEBHOOK
                && p["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
        .collect()
}

/// The webhook's log lines (every pod, every container start).
fn webhook_log(cluster: &Cluster) -> String {
    let out = cluster.run(&[
        "logs",
        "-n",
        RELEASE_NS,
        "-l",
        &format!("app.kubernetes.io/name={WEBHOOK}"),
        "--tail=-1",
        "--prefix",
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How one install was made, for the checks every install gets.
struct Install {
    how: String,
    /// The webhook's Service answers only once an endpoint is ready; the
    /// API server then calls it for every pod.
    upstream: String,
}

/// The checks every install gets (the chart's README's promises): pods of
/// an ordinary Deployment hooked, with a callback on deletion; excluded
/// namespaces and opted-out pods untouched; the opt-in annotations.
fn serves(cluster: &Cluster, install: &Install, report: &mut Report) {
    let how = &install.how;
    let ready = webhook_pods(cluster);
    assert!(!ready.is_empty(), "{how}: no webhook pod Ready");
    for p in &ready {
        let sc = &p["spec"]["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true, "{how}: {sc}");
    }
    // An ordinary Deployment; the pods the controllers create are hooked.
    cluster.namespace(HOOKED, "restricted");
    cluster.apply(&deployment(
        HOOKED,
        "web",
        plain(&install.upstream),
        1,
        json!({}),
    ));
    let mut pod = Value::Null;
    cluster.until(&format!("{how}: the Deployment's pod runs"), || {
        pod = cluster
            .live_pods(HOOKED)
            .into_iter()
            .next()
            .unwrap_or_default();
        !pod.is_null()
    });
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();
    let wait = hook(&pod, "istio-proxy");
    assert!(
        wait.is_some() && installed(&pod),
        "{how}: the Deployment's pod was not hooked: {pod}\n{}",
        webhook_log(cluster)
    );
    let got = deleted_pod_calls_back(cluster, HOOKED, &name);
    assert_eq!(got, 1, "{how}: the deleted pod's callback did not arrive");
    report.say(format!(
        "{how}: webhook pods Ready under PodSecurity restricted: {}; a Deployment's pod hooked ({}), its callback arrived on deletion",
        ready.len(),
        wait.unwrap()
    ));

    // Left alone: a namespace labelled out, the release's own namespace, a
    // pod labelled out.
    cluster.namespace(OPTED_OUT, "restricted");
    cluster.ok(&[
        "label",
        "namespace",
        OPTED_OUT,
        "graceful-wait.io/inject=false",
    ]);
    let spec = admitted_only(plain(&install.upstream));
    let out_label = json!({"labels": {"graceful-wait.io/inject": "false"}});
    let cases = [
        (OPTED_OUT, json!({})),
        (RELEASE_NS, json!({})),
        (HOOKED, out_label),
    ];
    for (i, (ns, meta)) in cases.into_iter().enumerate() {
        let (pod, _) = cluster
            .create(&bare(ns, &format!("left-alone-{i}"), spec.clone(), meta))
            .unwrap();
        assert!(
            hook(&pod, "istio-proxy").is_none() && !installed(&pod),
            "{how}: a pod in {ns} was changed: {pod}"
        );
        cluster.ok(&["delete", "pod", "-n", ns, &format!("left-alone-{i}")]);
    }
    // A workload's pods opt in by annotation: the wait, and which
    // container waits (a bare pod, which the config does not name).
    let mut linkerd = spec.clone();
    container(&mut linkerd, "istio-proxy")["name"] = "linkerd-proxy".into();
    let meta = json!({"annotations": {
        "graceful-wait.io/wait": "{tcp: 20000}",
        "graceful-wait.io/container": "linkerd-proxy"}});
    let (pod, _) = cluster
        .create(&bare(HOOKED, "opted-in", linkerd, meta))
        .unwrap();
    let wait = hook(&pod, "linkerd-proxy").unwrap_or_default();
    assert!(wait.contains("tcp --port=20000"), "{how}: {pod}");
    cluster.ok(&["delete", "pod", "-n", HOOKED, "opted-in"]);
    report.say(format!(
        "{how}: left alone: a namespace labelled graceful-wait.io/inject=false, the release's namespace, a pod so labelled; the annotations put `{wait}` on linkerd-proxy"
    ));
    cluster.ok(&["delete", "deployment", "-n", HOOKED, "web"]);
}

/// Deletes a running hooked pod; how many of its callbacks arrived.
fn deleted_pod_calls_back(cluster: &Cluster, ns: &str, pod: &str) -> usize {
    let mut app = cluster.follow(ns, pod, "test-tcp-svc");
    let mut proxy = cluster.follow(ns, pod, "istio-proxy");
    app.expect("GW_APP ready");
    proxy.expect("GW_PROXY ready");
    let since = senders(cluster).len();
    cluster.ok(&["delete", "pod", "-n", ns, pod, "--timeout=120s"]);
    app.read_to_end();
    proxy.read_to_end();
    callbacks(cluster, &[pod], since)
}

fn helm_ok(cluster: &Cluster, helm: &str, home: &Path, args: &[&str]) -> String {
    let out = cluster.helm(helm, home).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{helm} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The chart's install command with the local images; `extra` values.
fn helm_install(cluster: &Cluster, helm: &str, home: &Path, config: &Path, extra: &[&str]) {
    let chart = repo().join("deploy/helm/graceful-inject-webhook");
    let config_arg = format!("config.inline={}", config.display());
    let mut args = vec![
        "install",
        "graceful-inject",
        chart.to_str().unwrap(),
        "--namespace",
        RELEASE_NS,
        "--set",
        "image.repository=localhost/graceful-inject",
        "--set",
        "image.tag=test",
        "--set",
        "image.pullPolicy=Never",
        "--set-file",
        &config_arg,
        "--wait",
        "--timeout",
        "180s",
    ];
    args.extend(extra);
    helm_ok(cluster, helm, home, &args);
}

/// A serving certificate for the webhook's Service, signed by a CA of the
/// test's own (for `existing` and the cert-manager stand-in): (CA PEM,
/// certificate PEM, key PEM).
fn service_certificate() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let names = vec![
        format!("{WEBHOOK}.{RELEASE_NS}.svc"),
        format!("{WEBHOOK}.{RELEASE_NS}.svc.cluster.local"),
    ];
    let cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

fn tls_secret(name: &str, pem: &(String, String, String)) -> Value {
    use base64::Engine;
    let b = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": RELEASE_NS},
        "data": {"ca.crt": b(&pem.0), "tls.crt": b(&pem.1), "tls.key": b(&pem.2)},
    })
}

/// The release namespace, made anew with PodSecurity restricted enforced.
fn release_namespace(cluster: &Cluster) {
    cluster.namespace(RELEASE_NS, "restricted");
}

/// After an uninstall: the configuration is gone, and pods are created
/// without hooks.
fn gone(cluster: &Cluster, how: &str, upstream: &str) {
    let out = cluster.run(&["get", "mutatingwebhookconfiguration", CONFIGURATION]);
    assert!(
        !out.status.success(),
        "{how}: the configuration is still there"
    );
    let spec = admitted_only(plain(upstream));
    cluster.namespace(HOOKED, "restricted");
    let (pod, _) = cluster
        .create(&annotated_pod(HOOKED, "after-uninstall", spec))
        .unwrap();
    assert!(hook(&pod, "istio-proxy").is_none(), "{how}: {pod}");
    cluster.ok(&["delete", "pod", "-n", HOOKED, "after-uninstall"]);
}

/// A bare pod that opts in by annotation (`wait: auto`): a pod the webhook
/// hooks whatever its config names, created without a controller.
fn annotated_pod(ns: &str, name: &str, spec: Value) -> Value {
    bare(
        ns,
        name,
        spec,
        json!({"annotations": {"graceful-wait.io/wait": "auto"}}),
    )
}

/// `helm install` with `helm` (helm3 or helm4) and the certificate `mode`
/// (`generate`, or `existing`: a Secret of the user's, here made by the
/// test, and its CA given as `caBundle`); then the checks every install
/// gets. Its name in the report.
fn install(
    cluster: &Cluster,
    helm: &str,
    mode: &str,
    home: &Path,
    upstream: &str,
    report: &mut Report,
) -> String {
    let how = format!("{helm}, certificates.mode={mode}");
    release_namespace(cluster);
    let config = home.join("config.yml");
    std::fs::write(&config, CONFIG).unwrap();
    let ca = home.join("ca.pem");
    let mode_arg = format!("certificates.mode={mode}");
    let secret_arg = format!("certificates.existing.secretName={EXISTING_SECRET}");
    let ca_arg = format!("certificates.existing.caBundle={}", ca.display());
    let mut extra = vec!["--set", mode_arg.as_str()];
    if mode == "existing" {
        let pem = service_certificate();
        cluster.apply(&tls_secret(EXISTING_SECRET, &pem));
        std::fs::write(&ca, &pem.0).unwrap();
        extra.extend(["--set", &secret_arg, "--set-file", &ca_arg]);
    }
    helm_install(cluster, helm, home, &config, &extra);
    let install = Install {
        how: how.clone(),
        upstream: upstream.into(),
    };
    serves(cluster, &install, report);
    how
}

/// The Secret of the user's in `existing` mode.
const EXISTING_SECRET: &str = "my-webhook-tls";

/// `helm upgrade` with a changed `config.inline`: the pods the webhook
/// admits afterwards get the new config; the generated certificate stays.
fn upgrade(cluster: &Cluster, helm: &str, upstream: &str, home: &Path, report: &mut Report) {
    let configuration = |c: &Cluster| {
        c.json(&["get", "mutatingwebhookconfiguration", CONFIGURATION])["webhooks"][0]
            ["clientConfig"]["caBundle"]
            .clone()
    };
    let secret = |c: &Cluster| {
        let secrets = c.json(&["get", "secrets", "-n", RELEASE_NS]);
        let tls: Vec<Value> = secrets["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["type"] == "kubernetes.io/tls")
            .map(|s| s["data"]["tls.crt"].clone())
            .collect();
        (tls, configuration(c))
    };
    let before = secret(cluster);
    let config = home.join("config-tcp.yml");
    std::fs::write(&config, CONFIG_TCP).unwrap();
    let chart = repo().join("deploy/helm/graceful-inject-webhook");
    let began = Instant::now();
    helm_ok(
        cluster,
        helm,
        home,
        &[
            "upgrade",
            "graceful-inject",
            chart.to_str().unwrap(),
            "--namespace",
            RELEASE_NS,
            "--reuse-values",
            "--set-file",
            &format!("config.inline={}", config.display()),
            "--wait",
            "--timeout",
            "180s",
        ],
    );
    let upgraded = began.elapsed();
    // A Deployment's pod, as the config names Deployments.
    let spec = admitted_only(plain(upstream));
    let mut n = 0;
    let mut wait = String::new();
    cluster.until("a pod gets the upgraded config", || {
        n += 1;
        let name = format!("after-upgrade-{n}");
        cluster.apply(&deployment(HOOKED, &name, spec.clone(), 1, json!({})));
        let mut pod = Value::Null;
        cluster.until("the Deployment's pod", || {
            let list = cluster.json(&["get", "pods", "-n", HOOKED, "-l", &format!("app={name}")]);
            pod = list["items"][0].clone();
            !pod.is_null()
        });
        cluster.ok(&["delete", "deployment", "-n", HOOKED, &name]);
        wait = hook(&pod, "istio-proxy").unwrap_or_default();
        wait.contains("tcp --port=20000")
    });
    let after_pods = began.elapsed();
    assert_eq!(
        before,
        secret(cluster),
        "the upgrade changed the certificate or the CA bundle"
    );
    report.say(format!(
        "{helm} upgrade with a changed config.inline: helm --wait returned after {:.1} s; the first pod admitted with the new config ({wait}) {:.1} s after the upgrade began; the certificate and the CA bundle kept",
        upgraded.as_secs_f64(),
        after_pods.as_secs_f64()
    ));
}

fn uninstall(
    cluster: &Cluster,
    helm: &str,
    home: &Path,
    how: &str,
    upstream: &str,
    report: &mut Report,
) {
    helm_ok(
        cluster,
        helm,
        home,
        &[
            "uninstall",
            "graceful-inject",
            "--namespace",
            RELEASE_NS,
            "--wait",
        ],
    );
    gone(cluster, how, upstream);
    report.say(format!(
        "{how}: helm uninstall removed the webhook configuration; pods are created without hooks"
    ));
}

/// The images deploy/webhook names (the webhook's in its Deployment, the
/// installer's the injector's default: its config names none), tagged in
/// the node as the local builds: nothing is pulled.
fn tag_shipped_images() {
    let deployment =
        std::fs::read_to_string(repo().join("deploy/webhook/deployment.yaml")).unwrap();
    let webhook = deployment
        .lines()
        .find_map(|l| l.trim().strip_prefix("image:"))
        .expect("an image in deploy/webhook/deployment.yaml")
        .trim()
        .to_string();
    let installer = "ghcr.io/graceful-wait/graceful-wait:0.1.0".to_string();
    for (local, shipped) in [
        ("localhost/graceful-inject:test", webhook),
        ("localhost/graceful-wait:test", installer),
    ] {
        let out = std::process::Command::new(repo().join("target/cluster/bin/ctr"))
            .arg("--address")
            .arg(state_dir().join("containerd.sock"))
            .args(["-n", "k8s.io", "images", "tag", "--force", local, &shipped])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ctr images tag {local} {shipped}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `deploy/webhook/self-signed.sh`, as its header says; then removed.
fn with_self_signed(cluster: &Cluster, upstream: &str, report: &mut Report) {
    let how = "deploy/webhook/self-signed.sh";
    let _ = cluster.run(&["delete", "namespace", RELEASE_NS, "--wait=true"]);
    let path = format!(
        "{}:{}",
        repo().join("target/cluster/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new(repo().join("deploy/webhook/self-signed.sh"))
        .env("PATH", path)
        .env("KUBECONFIG", &cluster.kubeconfig)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{how}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ready_without_helm(cluster, how);
    serves(
        cluster,
        &Install {
            how: how.into(),
            upstream: upstream.into(),
        },
        report,
    );
    cluster.ok(&["delete", "mutatingwebhookconfiguration", CONFIGURATION]);
    cluster.ok(&["delete", "namespace", RELEASE_NS, "--wait=true"]);
}

/// Waits for the webhook's rollout where no `helm --wait` did.
fn ready_without_helm(cluster: &Cluster, how: &str) {
    let out = cluster.run(&[
        "rollout",
        "status",
        "deployment",
        WEBHOOK,
        "-n",
        RELEASE_NS,
        "--timeout=180s",
    ]);
    assert!(
        out.status.success(),
        "{how}: the webhook's Deployment did not become ready: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `kubectl apply -k deploy/webhook`, with cert-manager's part played by
/// the test: its CRDs from the cert-manager module (so the Issuer and
/// Certificate are checked by the API server), the Secret the Certificate
/// asks for, and the CA its injector would put in the configuration.
fn with_kustomize(cluster: &Cluster, upstream: &str, report: &mut Report) -> Result<(), String> {
    let how = "kubectl apply -k deploy/webhook (cert-manager's part played by the test)";
    let crds = cert_manager_crds()?;
    for crd in [
        "cert-manager.io_issuers.yaml",
        "cert-manager.io_certificates.yaml",
    ] {
        cluster.ok(&[
            "apply",
            "--server-side",
            "-f",
            crds.join(crd).to_str().unwrap(),
        ]);
    }
    cluster.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/issuers.cert-manager.io",
        "crd/certificates.cert-manager.io",
        "--timeout=60s",
    ]);
    let _ = cluster.run(&["delete", "namespace", RELEASE_NS, "--wait=true"]);
    let out = cluster.run(&[
        "apply",
        "-k",
        repo().join("deploy/webhook").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{how}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // cert-manager's two jobs: the Secret the Certificate names, for its
    // DNS names, and the CA in the configuration the annotation names.
    let cert = cluster.json(&["get", "certificate", "-n", RELEASE_NS, WEBHOOK]);
    let secret = cert["spec"]["secretName"].as_str().unwrap().to_string();
    let names: Vec<&str> = cert["spec"]["dnsNames"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        names.contains(&format!("{WEBHOOK}.{RELEASE_NS}.svc").as_str()),
        "{how}: the Certificate's names {names:?} miss the Service's"
    );
    let pem = service_certificate();
    cluster.apply(&tls_secret(&secret, &pem));
    let configuration = cluster.json(&["get", "mutatingwebhookconfiguration", CONFIGURATION]);
    let from = configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].clone();
    assert_eq!(from, format!("{RELEASE_NS}/{WEBHOOK}"), "{how}");
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(&pem.0);
    cluster.ok(&[
        "patch",
        "mutatingwebhookconfiguration",
        CONFIGURATION,
        "--type=json",
        "-p",
        &json!([{"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": ca}])
            .to_string(),
    ]);
    ready_without_helm(cluster, how);
    serves(
        cluster,
        &Install {
            how: how.into(),
            upstream: upstream.into(),
        },
        report,
    );
    let out = cluster.run(&[
        "delete",
        "-k",
        repo().join("deploy/webhook").to_str().unwrap(),
        "--wait=true",
    ]);
    assert!(
        out.status.success(),
        "{how}: kubectl delete -k: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    gone(cluster, how, upstream);
    report.say(format!(
        "{how}: kubectl delete -k removed it; pods are created without hooks"
    ));
    Ok(())
}

/// cert-manager's CRDs, from its Go module (the module the Go proxy
/// serves; its controller's own module is not served: docs/testing.md).
fn cert_manager_crds() -> Result<PathBuf, String> {
    let go = if Path::new("/usr/local/go/bin/go").exists() {
        "/usr/local/go/bin/go"
    } else {
        "go"
    };
    let out = std::process::Command::new(go)
        .args([
            "mod",
            "download",
            "-json",
            "github.com/cert-manager/cert-manager@v1.21.2",
        ])
        .current_dir(std::env::temp_dir())
        .env("GOFLAGS", "-mod=mod")
        .output()
        .map_err(|e| format!("go: {e}"))?;
    let info: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("go mod download: {e}"))?;
    let dir = info["Dir"]
        .as_str()
        .ok_or_else(|| format!("go mod download: {info}"))?;
    Ok(Path::new(dir).join("deploy/crds"))
}

#[test]
#[ignore = "needs root, Go, the release builds and minutes: tests/run runs it with GW_BINARY and GW_INJECT_BINARY"]
fn the_api_server_calls_the_webhook_the_chart_installs() {
    let test = "the_api_server_calls_the_webhook_the_chart_installs";
    for var in ["GW_BINARY", "GW_INJECT_BINARY"] {
        assert!(
            std::env::var_os(var).is_some(),
            "run with {var} naming the release build, as tests/run does"
        );
    }
    let helm_home = tempfile::tempdir().unwrap();
    for helm in ["helm3", "helm4"] {
        if !skip::have(
            repo().join("target/tools/bin").join(helm).to_str().unwrap(),
            &["version"],
        ) {
            skipped(
                test,
                &format!("{helm} is not in target/tools/bin (tests/run unpacks it from PyPI)"),
            );
            return;
        }
    }
    let Some(cluster) = Cluster::up_or_skip(test) else {
        return;
    };
    // What an interrupted run left (a cluster kept up): the configurations
    // are cluster-wide.
    cluster.ok(&[
        "delete",
        "mutatingwebhookconfiguration",
        CONFIGURATION,
        "a-mesh-injector",
        "z-mesh-injector",
        "--ignore-not-found",
    ]);
    images(&cluster);
    webhook_image(&cluster);
    let upstream = start_receiver(&cluster);
    let mut report = Report::default();

    // Helm 4 with the generated certificate: every check, the load.
    let home = helm_home.path();
    let how = install(&cluster, "helm4", "generate", home, &upstream, &mut report);
    if std::env::var("GW_WEBHOOK_LOAD_ONLY").as_deref() == Ok("1") {
        // benches/webhook-cluster.sh: the figures alone.
        let on = load(&cluster, &upstream, "on");
        uninstall(&cluster, "helm4", home, &how, &upstream, &mut report);
        let off = load(&cluster, &upstream, "off");
        report.say(load_table(&on, &off));
        return;
    }
    dry_run(&cluster, &upstream, &mut report);
    never_in_the_way(&cluster, &upstream, &mut report);
    in_every_order(&cluster, &upstream, &mut report);
    let load_on = load(&cluster, &upstream, "on");
    upgrade(&cluster, "helm4", &upstream, home, &mut report);
    uninstall(&cluster, "helm4", home, &how, &upstream, &mut report);
    let load_off = load(&cluster, &upstream, "off");
    report.say(load_table(&load_on, &load_off));

    // The other Helm and certificate pairs: install, the checks, upgrade,
    // uninstall.
    for (helm, mode) in [
        ("helm3", "generate"),
        ("helm4", "existing"),
        ("helm3", "existing"),
    ] {
        let home = tempfile::tempdir().unwrap();
        let how = install(&cluster, helm, mode, home.path(), &upstream, &mut report);
        upgrade(&cluster, helm, &upstream, home.path(), &mut report);
        uninstall(&cluster, helm, home.path(), &how, &upstream, &mut report);
    }
    tag_shipped_images();
    with_self_signed(&cluster, &upstream, &mut report);
    if let Err(why) = with_kustomize(&cluster, &upstream, &mut report) {
        skipped(
            test,
            &format!("kubectl apply -k: cert-manager's CRDs: {why}"),
        );
    }
    if let Some(path) = std::env::var_os("GW_WEBHOOK_REPORT") {
        std::fs::write(path, report.0.join("\n")).unwrap();
    }
}

/// A server-side dry run (`kubectl create --dry-run=server`): the API
/// server sends the review with `dryRun: true` (the webhook declares
/// `sideEffects: None`), the answer shows the hook, and no pod is made.
fn dry_run(cluster: &Cluster, upstream: &str, report: &mut Report) {
    let pod = annotated_pod(HOOKED, "dry-run", admitted_only(plain(upstream)));
    let mut child = cluster
        .kubectl()
        .args(["create", "--dry-run=server", "-o", "json", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(pod.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "dry run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answered: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        hook(&answered, "istio-proxy").is_some() && installed(&answered),
        "the dry run's pod is not hooked: {answered}"
    );
    let exists = cluster.run(&["get", "pod", "-n", HOOKED, "dry-run"]);
    assert!(!exists.status.success(), "the dry run made a pod");
    report.say("kubectl create --dry-run=server: the answer shows the hook; no pod made".into());
}

// ------------------------------------------------------------ never in the way

/// The webhook down, pointing nowhere, killed mid-admission, drained; a pod
/// it refuses; hostile pods: no creation fails.
fn never_in_the_way(cluster: &Cluster, upstream: &str, report: &mut Report) {
    let spec = admitted_only(plain(upstream));
    let fail_open = |c: &Cluster| {
        metric_sum(
            &c.ok(&["get", "--raw", "/metrics"]),
            "apiserver_admission_webhook_fail_open_count",
            &[("name", HOOK_NAME)],
        )
    };

    // Scaled to 0: no endpoint; the API server fails open at once.
    let opened = fail_open(cluster);
    cluster.ok(&[
        "scale",
        "deployment",
        WEBHOOK,
        "-n",
        RELEASE_NS,
        "--replicas=0",
    ]);
    cluster.until("the webhook's pods gone", || {
        cluster.json(&[
            "get",
            "pods",
            "-n",
            RELEASE_NS,
            "-l",
            &format!("app.kubernetes.io/name={WEBHOOK}"),
        ])["items"]
            .as_array()
            .unwrap()
            .is_empty()
    });
    let began = Instant::now();
    let (pod, _) = cluster
        .create(&annotated_pod(HOOKED, "webhook-down", spec.clone()))
        .expect("a pod is created while the webhook is down");
    let down = began.elapsed();
    assert!(hook(&pod, "istio-proxy").is_none());
    cluster.ok(&["delete", "pod", "-n", HOOKED, "webhook-down"]);
    cluster.ok(&[
        "scale",
        "deployment",
        WEBHOOK,
        "-n",
        RELEASE_NS,
        "--replicas=2",
    ]);
    ready_without_helm(cluster, "scaled back");

    // The Service pointing nowhere (a selector no pod has).
    let selector =
        cluster.json(&["get", "service", WEBHOOK, "-n", RELEASE_NS])["spec"]["selector"].clone();
    cluster.ok(&[
        "patch",
        "service",
        WEBHOOK,
        "-n",
        RELEASE_NS,
        "--type=merge",
        "-p",
        &json!({"spec": {"selector": {"app.kubernetes.io/name": "nowhere"}}}).to_string(),
    ]);
    let began = Instant::now();
    let (pod, _) = cluster
        .create(&annotated_pod(HOOKED, "service-nowhere", spec.clone()))
        .expect("a pod is created while the Service points nowhere");
    let nowhere = began.elapsed();
    assert!(hook(&pod, "istio-proxy").is_none());
    cluster.ok(&["delete", "pod", "-n", HOOKED, "service-nowhere"]);
    cluster.ok(&[
        "patch",
        "service",
        WEBHOOK,
        "-n",
        RELEASE_NS,
        "--type=merge",
        "-p",
        &json!({"spec": {"selector": selector}}).to_string(),
    ]);
    let opened = fail_open(cluster) - opened;
    assert!(
        opened >= 2.0,
        "apiserver_admission_webhook_fail_open_count rose by {opened}"
    );
    let log =
        std::fs::read_to_string(state_dir().join("logs/kube-apiserver.log")).unwrap_or_default();
    let said = log
        .lines()
        .rev()
        .find(|l| l.contains("failing open") && l.contains(HOOK_NAME))
        .map(|l| l.split_once("] ").map_or(l, |(_, m)| m).to_string())
        .unwrap_or_default();
    assert!(
        !said.is_empty(),
        "the API server's log does not say it failed open"
    );
    report.say(format!(
        "webhook scaled to 0: a pod created in {:.0} ms, unhooked; Service pointing nowhere: {:.0} ms; the API server counted {opened} in apiserver_admission_webhook_fail_open_count and logged: {said} (no event and no warning reach the creator: the API server's dispatcher only logs, counts and adds an audit annotation when it fails open)",
        down.as_secs_f64() * 1000.0,
        nowhere.as_secs_f64() * 1000.0,
    ));
    wait_serving(cluster, upstream);

    // A pod it refuses, and one with a wrong annotation: admitted
    // unchanged, and kubectl prints why.
    let mut refused = spec.clone();
    container(&mut refused, "istio-proxy")["lifecycle"] =
        json!({"preStop": {"httpGet": {"path": "/quitquitquit", "port": 9091}}});
    let (pod, warned) = cluster
        .create(&annotated_pod(HOOKED, "refused", refused))
        .unwrap();
    assert!(hook(&pod, "istio-proxy").is_none());
    assert!(
        warned.contains("graceful-wait"),
        "no warning for a refused pod: {warned:?}"
    );
    cluster.ok(&["delete", "pod", "-n", HOOKED, "refused"]);
    let (_, warned_bad) = cluster
        .create(&bare(
            HOOKED,
            "bad-annotation",
            spec.clone(),
            json!({"annotations": {"graceful-wait.io/wait": "{tcp: not-a-port}"}}),
        ))
        .unwrap();
    assert!(warned_bad.contains("graceful-wait"), "{warned_bad:?}");
    cluster.ok(&["delete", "pod", "-n", HOOKED, "bad-annotation"]);
    report.say(format!(
        "refused and malformed pods admitted unchanged; kubectl printed: {} | {}",
        warned.trim(),
        warned_bad.trim()
    ));

    // A webhook pod killed mid-admission, then the node drained.
    let (created, hooked) = create_while(cluster, &spec, "killed", 40, || {
        let victim = webhook_pods(cluster)[0]["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        cluster.ok(&[
            "delete",
            "pod",
            "-n",
            RELEASE_NS,
            &victim,
            "--grace-period=0",
            "--force",
        ]);
    });
    assert_eq!(
        created, 40,
        "pods failed to be created while a webhook pod was killed"
    );
    report.say(format!(
        "a webhook pod force-deleted while 40 pods were being created: all 40 created, {hooked} hooked, {} unhooked",
        40 - hooked
    ));
    ready_without_helm(cluster, "after the kill");
    // Harder: a webhook process SIGKILLed on the node while it serves (no
    // shutdown delay, connections cut); the kubelet restarts it.
    let opened = fail_open(cluster);
    let (created, hooked) = create_while(cluster, &spec, "sigkilled", 40, || {
        let pids = std::process::Command::new("pgrep")
            .args(["-f", "graceful-inject serve"])
            .output()
            .unwrap();
        let pid = String::from_utf8_lossy(&pids.stdout)
            .lines()
            .next()
            .expect("a webhook process on the node")
            .to_string();
        assert!(std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap()
            .success());
    });
    let opened = fail_open(cluster) - opened;
    assert_eq!(
        created, 40,
        "pods failed to be created while a webhook process was killed"
    );
    report.say(format!(
        "a webhook process SIGKILLed on the node while 40 pods were being created: all 40 created, {hooked} hooked, {} unhooked; the API server failed open {opened} times",
        40 - hooked
    ));
    ready_without_helm(cluster, "after the SIGKILL");
    let mut drain_said = String::new();
    let (created, hooked) = create_while(cluster, &spec, "drained", 40, || {
        let out = cluster.run(&[
            "drain",
            "127.0.0.1",
            "--pod-selector",
            &format!("app.kubernetes.io/name={WEBHOOK}"),
            "--delete-emptydir-data",
            "--ignore-daemonsets",
            "--timeout=20s",
        ]);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let evicted = said.lines().filter(|l| l.ends_with(" evicted")).count();
        let refused = said.contains("would violate the pod's disruption budget");
        drain_said = format!(
            "{evicted} webhook pod evicted, {}, drain exit {}",
            if refused {
                "the other's eviction refused by the PodDisruptionBudget until the drain's timeout"
            } else {
                "no eviction refused"
            },
            out.status.code().unwrap_or(-1)
        );
    });
    cluster.ok(&["uncordon", "127.0.0.1"]);
    assert_eq!(
        created, 40,
        "pods failed to be created while the node was drained"
    );
    ready_without_helm(cluster, "after the drain");
    report.say(format!(
        "the node drained (webhook pods only, 20 s) while 40 pods were created: all 40 created, {hooked} hooked; {drain_said}"
    ));

    // Hostile pods through the API server.
    let restarted = restarts(cluster);
    hostile(cluster, &spec, restarted, report);
}

fn state_dir() -> PathBuf {
    std::env::var_os("GW_CLUSTER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/cluster/state"))
}

/// Restarts of the webhook's containers so far.
fn restarts(cluster: &Cluster) -> u64 {
    cluster.json(&["get", "pods", "-n", RELEASE_NS])["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["status"]["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|c| c["restartCount"].as_u64().unwrap_or(0))
        .sum()
}

/// Waits until the webhook hooks a pod again (its endpoints are back in
/// the API server's view).
fn wait_serving(cluster: &Cluster, upstream: &str) {
    let spec = admitted_only(plain(upstream));
    let mut n = 0;
    cluster.until("the webhook serves again", || {
        n += 1;
        let name = format!("serving-{n}");
        let (pod, _) = cluster
            .create(&annotated_pod(HOOKED, &name, spec.clone()))
            .unwrap();
        cluster.ok(&["delete", "pod", "-n", HOOKED, &name, "--wait=false"]);
        hook(&pod, "istio-proxy").is_some()
    });
}

/// Creates `count` admitted-only pods, one after another, and runs
/// `meanwhile` on this thread once five are in, so the fault lands
/// mid-stream; (created, hooked).
fn create_while(
    cluster: &Cluster,
    spec: &Value,
    prefix: &str,
    count: usize,
    meanwhile: impl FnOnce(),
) -> (usize, usize) {
    let (mut created, mut hooked) = (0, 0);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let worker = s.spawn(move || {
            let (mut c, mut h) = (0, 0);
            for i in 0..count {
                let pod = annotated_pod(HOOKED, &format!("{prefix}-{i}"), spec.clone());
                if let Ok((pod, _)) = cluster.create(&pod) {
                    c += 1;
                    if hook(&pod, "istio-proxy").is_some() {
                        h += 1;
                    }
                }
                let _ = tx.send(());
            }
            (c, h)
        });
        for _ in 0..5 {
            rx.recv().unwrap();
        }
        meanwhile();
        (created, hooked) = worker.join().unwrap();
    });
    let _ = cluster.run(&["delete", "pods", "-n", HOOKED, "--all", "--wait=false"]);
    (created, hooked)
}

/// Pods no manifest author would write, through the API server: the
/// webhook must neither crash nor make a pod the API server refuses.
fn hostile(cluster: &Cluster, spec: &Value, restarted: u64, report: &mut Report) {
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut huge = spec.clone();
    container(&mut huge, "test-tcp-svc")["command"] = json!((0..200)
        .map(|i| format!("{i}-{}", "x".repeat(4000)))
        .collect::<Vec<_>>());
    cases.push(("an 800 KB command", huge));
    let mut unicode = spec.clone();
    container(&mut unicode, "istio-proxy")["env"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "GREETING", "value": "grüße, 世界, 🚀, \u{202e}rtl"}));
    container(&mut unicode, "istio-proxy")["args"] = json!(["--ünïcödé", "\u{0}"]);
    cases.push(("unicode (and a NUL) in args and env", unicode));
    let mut many = spec.clone();
    let app = container(&mut many, "test-tcp-svc").clone();
    let list = many["containers"].as_array_mut().unwrap();
    for i in 0..98 {
        let mut c = app.clone();
        c["name"] = format!("app-{i}").into();
        list.push(c);
    }
    cases.push(("100 containers", many));
    for (kind, pre_stop) in [
        (
            "exec",
            json!({"exec": {"command": ["/bin/sh", "-c", "while netstat -ltn | grep -q 20000; do sleep 1; done"]}}),
        ),
        (
            "httpGet",
            json!({"httpGet": {"path": "/drain", "port": 15000}}),
        ),
        ("tcpSocket", json!({"tcpSocket": {"port": 15000}})),
        ("sleep", json!({"sleep": {"seconds": 5}})),
    ] {
        let mut s = spec.clone();
        container(&mut s, "istio-proxy")["lifecycle"] = json!({"preStop": pre_stop});
        cases.push((kind, s));
    }
    let mut said = Vec::new();
    for (i, (what, s)) in cases.into_iter().enumerate() {
        let name = format!("hostile-{i}");
        let meta = json!({"annotations": {"graceful-wait.io/wait": "auto", "note": "ünïcödé ✓"}});
        match cluster.create(&bare(HOOKED, &name, s, meta)) {
            Ok((pod, _)) => {
                said.push(format!(
                    "{what}: {}",
                    if hook(&pod, "istio-proxy").is_some() {
                        "hooked"
                    } else {
                        "unchanged"
                    }
                ));
                cluster.ok(&["delete", "pod", "-n", HOOKED, &name, "--wait=false"]);
            }
            // The API server's own validation may refuse what it refuses
            // without any webhook (a NUL in an argument is valid; this
            // names the reason if not); the webhook must not be the cause.
            Err(e) => {
                assert!(
                    !e.contains("graceful-wait"),
                    "{what}: refused because of the webhook: {e}"
                );
                said.push(format!(
                    "{what}: refused by the API server's validation ({})",
                    e.lines().next().unwrap_or_default()
                ));
            }
        }
    }
    let decisions = webhook_log(cluster);
    let errors = decisions
        .lines()
        .filter(|l| l.contains("\"decision\":\"error\"") && l.contains("internal error"))
        .count();
    // A crash would show as a restart of a webhook container; an internal
    // error is a pod left unhooked with a warning of it (the API
    // server's re-invocation once gave one for every pod: its pod has keys
    // sorted and defaults filled in).
    assert_eq!(
        restarts(cluster),
        restarted,
        "the webhook restarted:\n{decisions}"
    );
    assert_eq!(errors, 0, "the webhook answered with errors:\n{decisions}");
    report.say(format!(
        "hostile pods through the API server: {}; internal errors logged: {errors}; webhook restarts: 0",
        said.join("; ")
    ));
}

// ------------------------------------------------------------ every order

/// A mesh's injector before and after ours (by configuration name), with
/// ours as the chart sets it (IfNeeded) and with Never.
fn in_every_order(cluster: &Cluster, upstream: &str, report: &mut Report) {
    let full = plain(upstream);
    let mut proxy = container(&mut full.clone(), "istio-proxy").clone();
    proxy["imagePullPolicy"] = "Never".into();
    let mut app_only = full.clone();
    app_only["containers"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c["name"] != "istio-proxy");
    let mesh = MeshInjector::start(proxy);
    let set_ours = |policy: &str| {
        cluster.ok(&[
            "patch",
            "mutatingwebhookconfiguration",
            CONFIGURATION,
            "--type=json",
            "-p",
            &json!([{"op": "replace", "path": "/webhooks/0/reinvocationPolicy", "value": policy}])
                .to_string(),
        ]);
    };
    for (name, order) in [
        ("a-mesh-injector", "theirs first"),
        ("z-mesh-injector", "ours first"),
    ] {
        for policy in ["IfNeeded", "Never"] {
            set_ours(policy);
            cluster.apply(&mesh.configuration(name));
            let ns = "gw-mesh";
            cluster.namespace(ns, "restricted");
            let meta = json!({"labels": {"mesh-test": "inject"}});
            cluster.apply(&deployment(ns, "meshed", app_only.clone(), 1, meta));
            let mut pod = Value::Null;
            cluster.until(&format!("{order}, {policy}: the meshed pod runs"), || {
                pod = cluster.live_pods(ns).into_iter().next().unwrap_or_default();
                !pod.is_null()
            });
            let proxies = pod["spec"]["containers"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["name"] == "istio-proxy")
                .count();
            let hooks = hook(&pod, "istio-proxy")
                .map_or(0, |h| h.matches("/graceful-wait/graceful-wait").count());
            let name_of = pod["metadata"]["name"].as_str().unwrap().to_string();
            let called = deleted_pod_calls_back(cluster, ns, &name_of);
            report.say(format!(
                "{order} ({name}), ours reinvocationPolicy {policy}: {proxies} proxy, {hooks} hook on it, installer {}, callback {}",
                if installed(&pod) { "in" } else { "missing" },
                if called == 1 { "arrived" } else { "lost" },
            ));
            assert_eq!(proxies, 1, "{order}, {policy}: {pod}");
            let chart_default = policy == "IfNeeded";
            if chart_default || order == "theirs first" {
                assert!(
                    hooks == 1 && installed(&pod) && called == 1,
                    "{order}, {policy}: {pod}"
                );
            } else {
                // Never, ours first: ours saw no proxy and is not called
                // again after the mesh adds one.
                assert!(
                    hooks == 0 && called == 0,
                    "{order}, {policy}: the hook arrived anyway: {pod}"
                );
            }
            cluster.ok(&["delete", "namespace", ns, "--wait=false"]);
            cluster.ok(&["delete", "mutatingwebhookconfiguration", name]);
        }
    }
    set_ours("IfNeeded");
    report.say(format!(
        "the mesh stand-in answered {} reviews",
        mesh.reviews()
    ));
}

// ------------------------------------------------------------ measured

/// What the API server measured over 1,000 pod creations.
struct Load {
    mode: &'static str,
    seconds: f64,
    create: Histogram,
    webhook: Histogram,
    rejected: f64,
    fail_open: f64,
    /// The webhook's own CPU seconds and resident memory (its /metrics),
    /// and the kubelet's view (CPU seconds, working set), summed over pods.
    own: Option<(f64, f64)>,
    kubelet: Option<(f64, f64)>,
}

/// Creates 1,000 pods (a Deployment scaled 0 → 100 → 0 ten times) that are
/// admitted and never scheduled; the API server's figures for them.
fn load(cluster: &Cluster, upstream: &str, mode: &'static str) -> Load {
    let ns = "gw-load";
    cluster.namespace(ns, "restricted");
    let spec = admitted_only(plain(upstream));
    cluster.apply(&deployment(ns, "load", spec, 0, json!({})));
    let before = cluster.ok(&["get", "--raw", "/metrics"]);
    let own_before = webhook_own(cluster);
    let kubelet_before = webhook_kubelet();
    let began = Instant::now();
    for _ in 0..10 {
        for (replicas, want) in [(100, 100), (0, 0)] {
            cluster.ok(&[
                "scale",
                "deployment",
                "load",
                "-n",
                ns,
                &format!("--replicas={replicas}"),
            ]);
            cluster.until(&format!("{want} pods in {ns}"), || {
                let pods = cluster.json(&["get", "pods", "-n", ns]);
                pods["items"].as_array().unwrap().len() == want
            });
        }
    }
    let seconds = began.elapsed().as_secs_f64();
    let after = cluster.ok(&["get", "--raw", "/metrics"]);
    let create_labels = [("verb", "POST"), ("resource", "pods"), ("subresource", "")];
    let hook_labels = [("name", HOOK_NAME), ("operation", "CREATE")];
    let own_after = webhook_own(cluster);
    let kubelet_after = webhook_kubelet();
    let delta = |a: Option<(f64, f64)>, b: Option<(f64, f64)>| match (a, b) {
        (Some(a), Some(b)) => Some((b.0 - a.0, b.1)),
        _ => None,
    };
    cluster.ok(&["delete", "namespace", ns, "--wait=false"]);
    Load {
        mode,
        seconds,
        create: Histogram::of(&after, "apiserver_request_duration_seconds", &create_labels).minus(
            &Histogram::of(
                &before,
                "apiserver_request_duration_seconds",
                &create_labels,
            ),
        ),
        webhook: Histogram::of(
            &after,
            "apiserver_admission_webhook_admission_duration_seconds",
            &hook_labels,
        )
        .minus(&Histogram::of(
            &before,
            "apiserver_admission_webhook_admission_duration_seconds",
            &hook_labels,
        )),
        rejected: metric_sum(
            &after,
            "apiserver_admission_webhook_rejection_count",
            &[("name", HOOK_NAME)],
        ) - metric_sum(
            &before,
            "apiserver_admission_webhook_rejection_count",
            &[("name", HOOK_NAME)],
        ),
        fail_open: metric_sum(
            &after,
            "apiserver_admission_webhook_fail_open_count",
            &[("name", HOOK_NAME)],
        ) - metric_sum(
            &before,
            "apiserver_admission_webhook_fail_open_count",
            &[("name", HOOK_NAME)],
        ),
        own: delta(own_before, own_after),
        kubelet: delta(kubelet_before, kubelet_after),
    }
}

/// The webhook pods' own figures from their /metrics (through the API
/// server's pod proxy): CPU seconds and resident bytes, summed.
fn webhook_own(cluster: &Cluster) -> Option<(f64, f64)> {
    let pods = webhook_pods(cluster);
    if pods.is_empty() {
        return None;
    }
    let (mut cpu, mut rss) = (0.0, 0.0);
    for p in pods {
        let name = p["metadata"]["name"].as_str().unwrap();
        let text = cluster.ok(&[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/{RELEASE_NS}/pods/{name}:8080/proxy/metrics"),
        ]);
        cpu += metric_sum(&text, "process_cpu_seconds_total", &[]);
        rss += metric_sum(&text, "process_resident_memory_bytes", &[]);
    }
    Some((cpu, rss))
}

/// The same from the kubelet's stats summary: CPU seconds and working set.
fn webhook_kubelet() -> Option<(f64, f64)> {
    // The kubelet's own endpoint, as the API server's client: the API
    // server refuses to proxy to a node at a loopback address.
    let pki = state_dir().join("pki");
    let out = std::process::Command::new("curl")
        .arg("-sf")
        .arg("--cacert")
        .arg(pki.join("ca.crt"))
        .arg("--cert")
        .arg(pki.join("apiserver-kubelet-client.crt"))
        .arg("--key")
        .arg(pki.join("apiserver-kubelet-client.key"))
        .arg("https://127.0.0.1:10250/stats/summary")
        .output()
        .ok()?;
    let summary: Value = serde_json::from_slice(&out.stdout).ok()?;
    let (mut cpu, mut mem, mut any) = (0.0, 0.0, false);
    for p in summary["pods"].as_array().into_iter().flatten() {
        if p["podRef"]["namespace"] != RELEASE_NS {
            continue;
        }
        for c in p["containers"].as_array().into_iter().flatten() {
            any = true;
            cpu += c["cpu"]["usageCoreNanoSeconds"].as_f64().unwrap_or(0.0) / 1e9;
            mem += c["memory"]["workingSetBytes"].as_f64().unwrap_or(0.0);
        }
    }
    any.then_some((cpu, mem))
}

fn load_table(on: &Load, off: &Load) -> String {
    let row = |l: &Load| {
        let res = |x: Option<(f64, f64)>| {
            x.map_or("—".to_string(), |(cpu, mem)| {
                format!("{cpu:.2} s / {:.1} MiB", mem / 1048576.0)
            })
        };
        format!(
            "| {} | {} in {:.0} s | {:.1} / {:.1} | {} | {} | {} | {} / {} |",
            l.mode,
            l.create.count,
            l.seconds,
            l.create.quantile(0.5) * 1000.0,
            l.create.quantile(0.99) * 1000.0,
            if l.webhook.count == 0.0 {
                "—".to_string()
            } else {
                format!(
                    "{:.1} / {:.1} ({} calls)",
                    l.webhook.quantile(0.5) * 1000.0,
                    l.webhook.quantile(0.99) * 1000.0,
                    l.webhook.count
                )
            },
            res(l.own),
            res(l.kubelet),
            l.rejected,
            l.fail_open,
        )
    };
    format!(
        "1,000 pod creations (a Deployment scaled 0 → 100 → 0 ten times):\n| webhook | pods created | pod create request, p50 / p99 (ms) | webhook admission, p50 / p99 (ms) | webhook CPU / RSS, its /metrics | webhook CPU / working set, kubelet | rejected / failed open |\n|---|---|---|---|---|---|---|\n{}\n{}",
        row(on),
        row(off)
    )
}

/// One histogram of the API server's /metrics, its series matching
/// `labels` summed: upper bounds and cumulative counts.
struct Histogram {
    buckets: BTreeMap<u64, (f64, f64)>,
    count: f64,
}

impl Histogram {
    fn of(text: &str, name: &str, labels: &[(&str, &str)]) -> Histogram {
        let mut buckets: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        let mut count = 0.0;
        for (series, value) in samples(text, &format!("{name}_bucket"), labels) {
            let le = series.get("le").map(String::as_str).unwrap_or("+Inf");
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::INFINITY)
            };
            buckets.entry(bound.to_bits()).or_insert((bound, 0.0)).1 += value;
        }
        for (_, value) in samples(text, &format!("{name}_count"), labels) {
            count += value;
        }
        Histogram { buckets, count }
    }

    fn minus(mut self, earlier: &Histogram) -> Histogram {
        for (k, v) in &mut self.buckets {
            v.1 -= earlier.buckets.get(k).map_or(0.0, |e| e.1);
        }
        self.count -= earlier.count;
        self
    }

    /// Prometheus's histogram_quantile: linear within the bucket.
    fn quantile(&self, q: f64) -> f64 {
        let mut sorted: Vec<(f64, f64)> = self.buckets.values().copied().collect();
        sorted.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        let Some(total) = sorted.last().map(|b| b.1) else {
            return f64::NAN;
        };
        if total <= 0.0 {
            return f64::NAN;
        }
        let rank = q * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for (bound, cumulative) in sorted {
            if cumulative >= rank {
                if bound.is_infinite() {
                    return lower;
                }
                return lower
                    + (bound - lower) * (rank - below)
                        / (cumulative - below).max(f64::MIN_POSITIVE);
            }
            (lower, below) = (bound, cumulative);
        }
        lower
    }
}

/// The samples of metric `name` whose labels include `labels`.
fn samples(
    text: &str,
    name: &str,
    labels: &[(&str, &str)],
) -> Vec<(BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (head, value) = l.rsplit_once(' ')?;
            let (metric, rest) = head.split_once('{').unwrap_or((head, "}"));
            if metric != name {
                return None;
            }
            let mut series = BTreeMap::new();
            for pair in rest.trim_end_matches('}').split("\",") {
                if let Some((k, v)) = pair.split_once("=\"") {
                    series.insert(
                        k.trim_start_matches(',').to_string(),
                        v.trim_end_matches('"').to_string(),
                    );
                }
            }
            let matches = labels
                .iter()
                .all(|(k, v)| series.get(*k).map(String::as_str).unwrap_or("") == *v);
            matches.then(|| (series, value.parse().unwrap_or(0.0)))
        })
        .collect()
}

fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(text, name, labels).iter().map(|(_, v)| v).sum()
}
