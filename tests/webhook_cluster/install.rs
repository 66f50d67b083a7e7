//! The documented ways in — Helm 4 and 3 with each certificate mode,
//! `self-signed.sh`, `kubectl apply -k` — and the checks every install gets:
//! pods hooked, callbacks delivered, namespaces and pods left alone, the
//! opt-in annotations, upgrade and uninstall.

use super::*;

/// The webhook's image (docker/graceful-inject.Dockerfile's `prebuilt`
/// target) from `GW_INJECT_BINARY`, imported into the node.
pub fn webhook_image(cluster: &Cluster) {
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
pub fn webhook_pods(cluster: &Cluster) -> Vec<Value> {
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
pub fn webhook_log(cluster: &Cluster) -> String {
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
pub struct Install {
    how: String,
    /// The webhook's Service answers only once an endpoint is ready; the
    /// API server then calls it for every pod.
    upstream: String,
}

/// The checks every install gets (the chart's README's promises): pods of
/// an ordinary Deployment hooked, with a callback on deletion; excluded
/// namespaces and opted-out pods untouched; the opt-in annotations.
pub fn serves(cluster: &Cluster, install: &Install, report: &mut Report) {
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
pub fn deleted_pod_calls_back(cluster: &Cluster, ns: &str, pod: &str) -> usize {
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

pub fn helm_ok(cluster: &Cluster, helm: &str, home: &Path, args: &[&str]) -> String {
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
pub fn helm_install(cluster: &Cluster, helm: &str, home: &Path, config: &Path, extra: &[&str]) {
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
pub fn service_certificate() -> (String, String, String) {
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

pub fn tls_secret(name: &str, pem: &(String, String, String)) -> Value {
    use base64::Engine;
    let b = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": RELEASE_NS},
        "data": {"ca.crt": b(&pem.0), "tls.crt": b(&pem.1), "tls.key": b(&pem.2)},
    })
}

/// The release namespace, made anew with PodSecurity restricted enforced.
pub fn release_namespace(cluster: &Cluster) {
    cluster.namespace(RELEASE_NS, "restricted");
}

/// After an uninstall: the configuration is gone, and pods are created
/// without hooks.
pub fn gone(cluster: &Cluster, how: &str, upstream: &str) {
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

/// `helm install` with `helm` (helm3 or helm4) and the certificate `mode`
/// (`generate`, or `existing`: a Secret of the user's, here made by the
/// test, and its CA given as `caBundle`); then the checks every install
/// gets. Its name in the report.
pub fn install(
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
pub const EXISTING_SECRET: &str = "my-webhook-tls";

/// `helm upgrade` with a changed `config.inline`: the pods the webhook
/// admits afterwards get the new config; the generated certificate stays.
pub fn upgrade(cluster: &Cluster, helm: &str, upstream: &str, home: &Path, report: &mut Report) {
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

pub fn uninstall(
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
pub fn tag_shipped_images() {
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
pub fn with_self_signed(cluster: &Cluster, upstream: &str, report: &mut Report) {
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
pub fn ready_without_helm(cluster: &Cluster, how: &str) {
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
pub fn with_kustomize(
    cluster: &Cluster,
    upstream: &str,
    report: &mut Report,
) -> Result<(), String> {
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
pub fn cert_manager_crds() -> Result<PathBuf, String> {
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

/// A server-side dry run (`kubectl create --dry-run=server`): the API
/// server sends the review with `dryRun: true` (the webhook declares
/// `sideEffects: None`), the answer shows the hook, and no pod is made.
pub fn dry_run(cluster: &Cluster, upstream: &str, report: &mut Report) {
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
