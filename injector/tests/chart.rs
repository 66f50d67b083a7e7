//! The webhook's Helm chart (deploy/helm/graceful-inject-webhook), with the
//! real Helm 3 and 4 (`tests/run` installs them):
//! - `helm lint` with the defaults and every documented combination of values;
//! - `helm template` of each, every object strictly valid for every
//!   Kubernetes version kubernetes-validate bundles from 1.27 on, and the
//!   objects agreeing with each other (ports, Secret, paths, CA bundle);
//! - values.schema.json refusing wrong values with a message naming them;
//! - the generated certificate kept across an upgrade (the Secret looked up
//!   from an API server), and fresh without one;
//! - the rendered Deployment's arguments, run in the webhook's image with the
//!   rendered config and certificate (podman, root), serving a review to a
//!   client that trusts the rendered CA bundle for the Service's DNS name;
//! - the kustomize manifests in deploy/webhook equal to the chart's render.

mod helm_support;
#[path = "../../tests/support/piped.rs"]
mod piped;
#[path = "../../tests/podman/mod.rs"]
mod podman;
#[path = "../../tests/support/skip.rs"]
mod skip;
#[path = "../../tests/support/validate.rs"]
mod validate;
#[allow(dead_code)]
mod webhook_support;

use helm_support::{root, Helm};
use serde_json::{json, Value};
use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
};
use webhook_support::{response_of, review_of, tls_config, Client};

const NAMESPACE: &str = "graceful-wait";
const SERVICE_DNS: &str = "graceful-inject-webhook.graceful-wait.svc";

fn chart() -> PathBuf {
    root().join("deploy/helm/graceful-inject-webhook")
}

/// The objects of a YAML stream (empty documents left out).
fn objects(yaml: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml)
        .unwrap_or_else(|e| panic!("the render does not parse: {e}\n{yaml}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn find<'a>(objects: &'a [Value], kind: &str) -> Option<&'a Value> {
    objects.iter().find(|o| o["kind"] == kind)
}

/// The documented combinations of values: name, `helm` arguments.
fn combinations(dir: &Path) -> Vec<(&'static str, Vec<String>)> {
    let ca = webhook_support::Pki::new("yours");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    let everything = dir.join("everything.yaml");
    std::fs::write(
        &everything,
        "networkPolicy:\n  enabled: true\n  metricsFrom:\n    - namespaceSelector:\n        matchLabels:\n          kubernetes.io/metadata.name: monitoring\n\
         serviceMonitor:\n  enabled: true\n  labels: {release: prometheus}\n\
         namespace: {create: true}\n\
         priorityClassName: system-cluster-critical\n\
         nodeSelector: {kubernetes.io/os: linux}\n\
         tolerations: [{key: dedicated, operator: Equal, value: infra, effect: NoSchedule}]\n\
         affinity: {nodeAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 1, preference: {matchExpressions: [{key: infra, operator: Exists}]}}]}}\n\
         image: {digest: \"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\", pullPolicy: Always}\n\
         imagePullSecrets: [{name: registry}]\n\
         replicas: 3\n\
         resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 256Mi}}\n\
         podDisruptionBudget: {minAvailable: 2}\n\
         webhook:\n  failurePolicy: Fail\n  reinvocationPolicy: Never\n  timeoutSeconds: 10\n  excludeNamespaces: [kube-system, istio-system]\n  namespaceSelector:\n    matchExpressions: [{key: team, operator: In, values: [shop]}]\n  objectSelector:\n    matchExpressions: [{key: app, operator: Exists}]\n\
         server: {port: 9443, metricsPort: 9090, shutdownDelay: 10s, reloadEvery: 2s, maxConnections: 256}\n\
         podAnnotations: {team: shop}\n\
         podLabels: {team: shop}\n",
    )
    .unwrap();
    let set = |pairs: &[&str]| -> Vec<String> {
        pairs
            .iter()
            .flat_map(|p| ["--set".to_string(), p.to_string()])
            .collect()
    };
    vec![
        ("defaults: a generated certificate", vec![]),
        ("cert-manager", set(&["certificates.mode=cert-manager"])),
        (
            "cert-manager with an issuer of yours",
            set(&[
                "certificates.mode=cert-manager",
                "certificates.certManager.issuerRef.kind=ClusterIssuer",
                "certificates.certManager.issuerRef.name=corp-ca",
            ]),
        ),
        ("an existing Secret and its CA", {
            let mut a = set(&[
                "certificates.mode=existing",
                "certificates.existing.secretName=my-webhook-tls",
            ]);
            a.extend([
                "--set-file".to_string(),
                format!("certificates.existing.caBundle={}", ca_file.display()),
            ]);
            a
        }),
        (
            "an existing ConfigMap",
            set(&["config.existingConfigMap=my-graceful-config"]),
        ),
        (
            "no disruption budget, no spread",
            set(&["podDisruptionBudget.enabled=false", "topologySpread=false"]),
        ),
        (
            "every option set",
            vec!["-f".to_string(), everything.display().to_string()],
        ),
    ]
}

fn render(helm: &Helm, args: &[String]) -> String {
    piped::stdout_of(
        helm.cmd()
            .args(["template", "graceful-inject"])
            .arg(chart())
            .args(["--namespace", NAMESPACE])
            .args(args),
    )
}

/// The objects of one render agree with each other: what the Service sends
/// to is what the server listens on, the Secret mounted is the one the
/// certificate is written to, the files the arguments name are where the
/// volumes are mounted, and the CA bundle is the one that signed the
/// certificate (where the chart can know it).
fn agree(name: &str, objs: &[Value], args: &[String]) {
    let service = find(objs, "Service").expect("a Service");
    let deployment = find(objs, "Deployment").expect("a Deployment");
    let webhook = find(objs, "MutatingWebhookConfiguration").expect("a webhook configuration");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let argv: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let arg = |flag: &str| -> &str {
        argv.iter()
            .find_map(|a| a.strip_prefix(&format!("{flag}=")))
            .unwrap_or_else(|| panic!("{name}: no {flag} in {argv:?}"))
    };
    let named_port = |port_name: &str| -> u64 {
        container["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == port_name)
            .unwrap_or_else(|| panic!("{name}: no container port {port_name}"))["containerPort"]
            .as_u64()
            .unwrap()
    };
    let port_of = |addr: &str| -> u64 { addr.rsplit_once(':').unwrap().1.parse().unwrap() };
    // The Service sends reviews to the port `serve` listens on.
    let https = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "https")
        .unwrap();
    assert_eq!(
        named_port(https["targetPort"].as_str().unwrap()),
        port_of(arg("--listen")),
        "{name}"
    );
    assert_eq!(
        named_port("http-metrics"),
        port_of(arg("--health-listen")),
        "{name}"
    );
    // The webhook configuration names that Service and its port.
    let client = &webhook["webhooks"][0]["clientConfig"];
    assert_eq!(
        client["service"]["name"], service["metadata"]["name"],
        "{name}"
    );
    assert_eq!(client["service"]["namespace"], NAMESPACE, "{name}");
    assert_eq!(client["service"]["port"], https["port"], "{name}");
    // The selector picks the Deployment's pods, which the webhook never gets.
    for (k, v) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(
            &deployment["spec"]["template"]["metadata"]["labels"][k], v,
            "{name}"
        );
    }
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["labels"]["graceful-wait.io/inject"], "false",
        "{name}"
    );
    let excluded = webhook["webhooks"][0]["namespaceSelector"]["matchExpressions"][0]["values"]
        .as_array()
        .unwrap()
        .clone();
    assert!(excluded.contains(&json!(NAMESPACE)), "{name}: {excluded:?}");
    // The files the arguments name are in the mounted volumes.
    let mount_of = |volume: &str| -> String {
        container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == volume)
            .unwrap()["mountPath"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let volume = |volume: &str| -> &Value {
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == volume)
            .unwrap()
    };
    assert_eq!(arg("--tls-cert"), format!("{}/tls.crt", mount_of("tls")));
    assert_eq!(arg("--tls-key"), format!("{}/tls.key", mount_of("tls")));
    assert_eq!(
        arg("--config"),
        format!("{}/config.yml", mount_of("config"))
    );
    let config_map = volume("config")["configMap"]["name"].as_str().unwrap();
    match find(objs, "ConfigMap") {
        Some(cm) => {
            assert_eq!(cm["metadata"]["name"], config_map, "{name}");
            assert!(cm["data"]["config.yml"].is_string(), "{name}");
        }
        None => assert!(
            args.iter()
                .any(|a| a.contains(&format!("existingConfigMap={config_map}"))),
            "{name}: the ConfigMap {config_map} is neither rendered nor given"
        ),
    }
    // The Secret mounted is the one the certificate is written to, and the
    // CA bundle is the one that signed it.
    let secret = volume("tls")["secret"]["secretName"].as_str().unwrap();
    let ca_bundle = client["caBundle"].as_str().unwrap_or_default();
    if let Some(cert) = find(objs, "Certificate") {
        assert_eq!(cert["spec"]["secretName"], secret, "{name}");
        let dns: Vec<&str> = cert["spec"]["dnsNames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        assert!(dns.contains(&SERVICE_DNS), "{name}: {dns:?}");
        assert_eq!(
            webhook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            format!("{NAMESPACE}/{}", cert["metadata"]["name"].as_str().unwrap()),
            "{name}"
        );
        assert!(
            ca_bundle.is_empty(),
            "{name}: cert-manager fills the bundle"
        );
    } else if let Some(s) = find(objs, "Secret") {
        assert_eq!(s["metadata"]["name"], secret, "{name}");
        assert_eq!(s["data"]["ca.crt"], ca_bundle, "{name}");
        verified_for_the_service(name, s);
    } else {
        assert!(
            args.iter()
                .any(|a| a.contains(&format!("secretName={secret}"))),
            "{name}: the Secret {secret} is neither rendered nor given"
        );
        assert!(
            !ca_bundle.is_empty(),
            "{name}: no CA bundle for your Secret"
        );
    }
}

fn b64(value: &Value) -> String {
    let out = piped::with_stdin(
        Command::new("base64").arg("-d"),
        value.as_str().unwrap().as_bytes(),
    );
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// The generated certificate verifies against the generated CA for the
/// Service's DNS name: a real TLS handshake (rustls, as the API server's Go
/// TLS would check it) with the server serving that pair.
fn verified_for_the_service(name: &str, secret: &Value) {
    let pki = webhook_support::Pki::from_pem(
        b64(&secret["data"]["ca.crt"]),
        b64(&secret["data"]["tls.crt"]),
        b64(&secret["data"]["tls.key"]),
    );
    let server = webhook_support::Server::start(&pki, "deployment: {}\n", &[]);
    let config = tls_config(&[&pki.ca_pem]);
    Client::connect_as(server.listen, config.clone(), SERVICE_DNS)
        .unwrap_or_else(|e| panic!("{name}: not trusted for {SERVICE_DNS}: {e}"));
    assert!(
        Client::connect_as(server.listen, config, "other.graceful-wait.svc").is_err(),
        "{name}: the certificate is good for any name"
    );
}

#[test]
fn the_chart_lints_and_renders_valid_agreeing_objects_with_both_helms() {
    let test = "the_chart_lints_and_renders_valid_agreeing_objects_with_both_helms";
    let dir = tempfile::tempdir().unwrap();
    let combos = combinations(dir.path());
    let mut renders = Vec::new();
    for major in [3, 4] {
        let Some(helm) = Helm::find(major, &format!("{test} (Helm {major})")) else {
            continue;
        };
        for (name, args) in &combos {
            let out = helm
                .cmd()
                .args(["lint", "--strict", "--namespace", NAMESPACE])
                .arg(chart())
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "Helm {major} lint, {name}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            let yaml = render(&helm, args);
            let objs = objects(&yaml);
            agree(&format!("Helm {major}, {name}"), &objs, args);
            renders.push((format!("helm{major}-{}", renders.len()), yaml));
        }
    }
    if renders.is_empty() {
        return;
    }
    // Every object strictly valid for every bundled version from 1.27 on
    // (cert-manager's and the Prometheus operator's kinds have no schema
    // there: warned, not failed).
    let files: Vec<PathBuf> = renders
        .iter()
        .map(|(name, yaml)| {
            let f = dir.path().join(format!("{name}.yaml"));
            std::fs::write(&f, yaml).unwrap();
            f
        })
        .collect();
    if !validate::strictly_valid(test, &files, None) {
        return;
    }
    let versions = piped::stdout_of(Command::new("python3").args([
        "-c",
        "import kubernetes_validate.utils as u; print('\\n'.join(sorted(set(u.all_versions()))))",
    ]));
    let versions: Vec<&str> = versions
        .lines()
        .filter(|v| {
            let minor: u32 = v.split('.').nth(1).unwrap().parse().unwrap();
            minor >= 27
        })
        .collect();
    assert!(versions.len() >= 10, "{versions:?}");
    for version in versions {
        if !validate::strictly_valid(test, &files, Some(version)) {
            return;
        }
    }
}

/// A wrong value fails `helm install` at once, naming the value.
#[test]
fn the_schema_refuses_wrong_values_by_name() {
    for major in [3, 4] {
        let Some(helm) = Helm::find(
            major,
            &format!("the_schema_refuses_wrong_values_by_name (Helm {major})"),
        ) else {
            continue;
        };
        for (set, named) in [
            ("webhook.failurePolicy=Sometimes", "failurePolicy"),
            ("certificates.mode=self-signed", "mode"),
            ("certificates.mode=existing", "secretName"),
            ("server.port=70000", "port"),
            ("webhook.timeoutSeconds=60", "timeoutSeconds"),
            ("replicas=0", "replicas"),
            ("image.digest=latest", "digest"),
            ("server.shutdownDelay=soon", "shutdownDelay"),
            ("unknownOption=1", "unknownOption"),
        ] {
            let out = helm
                .cmd()
                // Helm 4 validates at install; Helm 3's install asks the API
                // server first, so its `template` (the same check) stands in.
                .args(if major == 4 {
                    &["install", "graceful-inject", "--dry-run=client"][..]
                } else {
                    &["template", "graceful-inject"][..]
                })
                .args(["--namespace", NAMESPACE])
                .arg(chart())
                .args(["--set", set])
                .output()
                .unwrap();
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "Helm {major} took {set}");
            assert!(
                said.contains("schema") && said.contains(named),
                "Helm {major}, {set}: {said}"
            );
        }
    }
}

// ------------------------------------------------ an API server for lookup

/// What `helm template --dry-run=server` asks an API server for: discovery
/// of the kinds the chart renders, and the generated Secret (`lookup`),
/// which this one holds when given. A stand-in for the API server, which
/// does not run here: it answers those reads and nothing else.
struct ApiServer {
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl ApiServer {
    fn start(secret: Option<Value>) -> ApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let resources: BTreeMap<&str, Vec<(&str, &str, bool)>> = BTreeMap::from([
            (
                "v1",
                vec![
                    ("secrets", "Secret", true),
                    ("configmaps", "ConfigMap", true),
                    ("services", "Service", true),
                    ("serviceaccounts", "ServiceAccount", true),
                    ("namespaces", "Namespace", false),
                ],
            ),
            ("apps/v1", vec![("deployments", "Deployment", true)]),
            (
                "policy/v1",
                vec![("poddisruptionbudgets", "PodDisruptionBudget", true)],
            ),
            (
                "admissionregistration.k8s.io/v1",
                vec![(
                    "mutatingwebhookconfigurations",
                    "MutatingWebhookConfiguration",
                    false,
                )],
            ),
            (
                "networking.k8s.io/v1",
                vec![("networkpolicies", "NetworkPolicy", true)],
            ),
        ]);
        std::thread::spawn(move || {
            for conn in listener.incoming().map_while(Result::ok) {
                let secret = secret.clone();
                let resources = resources.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut conn = conn;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                        // Headers to the blank line (GETs have no body).
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                                break;
                            }
                        }
                        let path = path.split('?').next().unwrap().to_string();
                        let body = answer(&path, &resources, secret.as_ref());
                        let (status, body) = match body {
                            Some(b) => ("200 OK", b),
                            None => (
                                "404 Not Found",
                                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
                            ),
                        };
                        let text = body.to_string();
                        let _ = write!(
                            conn,
                            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                            text.len()
                        );
                    }
                });
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"http://127.0.0.1:{port}\"}}}}]\n\
                 users: [{{name: u, user: {{}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: u}}}}]\ncurrent-context: c\n"
            ),
        )
        .unwrap();
        ApiServer {
            kubeconfig,
            _dir: dir,
        }
    }
}

fn answer(
    path: &str,
    resources: &BTreeMap<&str, Vec<(&str, &str, bool)>>,
    secret: Option<&Value>,
) -> Option<Value> {
    let list = |gv: &str| {
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
               "resources": resources[gv].iter().map(|(plural, kind, namespaced)| json!({
                   "name": plural, "singularName": kind.to_lowercase(), "namespaced": namespaced,
                   "kind": kind, "verbs": ["get", "list", "create", "update", "patch", "delete"]})).collect::<Vec<_>>()})
    };
    match path {
        "/version" => Some(json!({"major": "1", "minor": "35", "gitVersion": "v1.35.0"})),
        "/api" => Some(
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
        ),
        "/apis" => Some(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups":
            resources.keys().filter(|gv| gv.contains('/')).map(|gv| {
                let (group, version) = gv.split_once('/').unwrap();
                json!({"name": group, "versions": [{"groupVersion": gv, "version": version}],
                       "preferredVersion": {"groupVersion": gv, "version": version}})
            }).collect::<Vec<_>>()})),
        "/api/v1" => Some(list("v1")),
        p if p == format!("/api/v1/namespaces/{NAMESPACE}/secrets/graceful-inject-webhook-tls") => {
            secret.cloned()
        }
        p => p
            .strip_prefix("/apis/")
            .filter(|gv| resources.contains_key(gv))
            .map(list),
    }
}

/// `helm upgrade` looks the generated Secret up and keeps it: the same
/// certificate and CA bundle; without it, a new pair.
#[test]
fn an_upgrade_keeps_the_generated_certificate() {
    for major in [3, 4] {
        let Some(helm) = Helm::find(
            major,
            &format!("an_upgrade_keeps_the_generated_certificate (Helm {major})"),
        ) else {
            continue;
        };
        let server_render = |api: &ApiServer| -> Vec<Value> {
            objects(&piped::stdout_of(
                helm.cmd()
                    .env("KUBECONFIG", &api.kubeconfig)
                    .args(["template", "graceful-inject"])
                    .arg(chart())
                    .args(["--namespace", NAMESPACE, "--dry-run=server"])
                    .args(if major == 4 {
                        &["--disable-openapi-validation"][..]
                    } else {
                        &[]
                    }),
            ))
        };
        let first = server_render(&ApiServer::start(None));
        let secret = find(&first, "Secret").unwrap().clone();
        let bundle = |objs: &[Value]| {
            find(objs, "MutatingWebhookConfiguration").unwrap()["webhooks"][0]["clientConfig"]
                ["caBundle"]
                .clone()
        };
        // As the release stored it: Helm marks what it owns, and takes over
        // nothing else.
        let mut stored = secret.clone();
        stored["metadata"]["annotations"] = json!({
            "meta.helm.sh/release-name": "graceful-inject",
            "meta.helm.sh/release-namespace": NAMESPACE,
        });
        stored["metadata"]["labels"]["app.kubernetes.io/managed-by"] = json!("Helm");
        let upgraded = server_render(&ApiServer::start(Some(stored)));
        assert_eq!(
            find(&upgraded, "Secret").unwrap()["data"],
            secret["data"],
            "Helm {major}: the upgrade rotated the certificate"
        );
        assert_eq!(bundle(&upgraded), bundle(&first), "Helm {major}");
        let fresh = server_render(&ApiServer::start(None));
        assert_ne!(
            find(&fresh, "Secret").unwrap()["data"]["tls.crt"],
            secret["data"]["tls.crt"],
            "Helm {major}: a first install reused a certificate"
        );
    }
}

/// The rendered Deployment's container, run as the pod would run it: the
/// webhook's image (podman), its arguments as rendered, the rendered config
/// and the generated certificate mounted where the volumes are. A client
/// that trusts only the rendered CA bundle, speaking to the Service's DNS
/// name, gets a review answered with a patch.
#[test]
fn the_rendered_deployment_serves_a_review_in_the_webhooks_image() {
    let test = "the_rendered_deployment_serves_a_review_in_the_webhooks_image";
    let Some(helm) = Helm::find(4, test) else {
        return;
    };
    let Some(podman) = podman::Podman::new_or_skip(test) else {
        return;
    };
    let objs = objects(&render(&helm, &[]));
    let deployment = find(&objs, "Deployment").unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    // The image, from this build.
    let ctx = tempfile::tempdir().unwrap();
    let at = ctx.path().join("target/x86_64-unknown-linux-gnu/release");
    std::fs::create_dir_all(&at).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_graceful-inject"),
        at.join("graceful-inject"),
    )
    .unwrap();
    let image = "localhost/graceful-inject:chart";
    podman.build(
        ctx.path(),
        &root().join("docker/graceful-inject.Dockerfile"),
        Some("prebuilt"),
        image,
    );
    // The volumes' contents: the ConfigMap's and the Secret's keys as files.
    let volumes = tempfile::tempdir().unwrap();
    let mut run: Vec<String> = ["-d", "--name", "chart-webhook", "--network", "host"]
        .map(String::from)
        .to_vec();
    for mount in container["volumeMounts"].as_array().unwrap() {
        let name = mount["name"].as_str().unwrap();
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap();
        let dir = volumes.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        if let Some(cm) = volume["configMap"]["name"].as_str() {
            let object = objs
                .iter()
                .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == cm)
                .unwrap();
            for (k, v) in object["data"].as_object().unwrap() {
                std::fs::write(dir.join(k), v.as_str().unwrap()).unwrap();
            }
        } else if let Some(s) = volume["secret"]["secretName"].as_str() {
            let object = objs
                .iter()
                .find(|o| o["kind"] == "Secret" && o["metadata"]["name"] == s)
                .unwrap();
            for (k, v) in object["data"].as_object().unwrap() {
                std::fs::write(dir.join(k), b64(v)).unwrap();
            }
        }
        // The kubelet's volumes are readable by the pod's user (0644 files).
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        run.push("-v".into());
        run.push(format!(
            "{}:{}:ro",
            dir.display(),
            mount["mountPath"].as_str().unwrap()
        ));
    }
    run.push(image.into());
    run.extend(
        container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string()),
    );
    let run: Vec<&str> = run.iter().map(String::as_str).collect();
    podman.run_restricted(&run);
    let mut log = podman.follow("chart-webhook");
    let ready: Value = serde_json::from_str(&log.expect("serving admission reviews")).unwrap();
    let listen: std::net::SocketAddr = ready["listen"]
        .as_str()
        .unwrap()
        .replace("0.0.0.0", "127.0.0.1")
        .parse()
        .unwrap();
    let webhook = find(&objs, "MutatingWebhookConfiguration").unwrap();
    let ca = b64(&webhook["webhooks"][0]["clientConfig"]["caBundle"]);
    let mut client = Client::connect_as(listen, tls_config(&[&ca]), SERVICE_DNS).unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "shop", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "0", "controller": true}]},
        "spec": {"containers": [{"name": "web", "image": "web", "ports": [{"containerPort": 8080}]},
                                {"name": "istio-proxy", "image": "proxyv2"}]}});
    let (status, body) = client
        .post(
            webhook["webhooks"][0]["clientConfig"]["service"]["path"]
                .as_str()
                .unwrap(),
            &review_of("chart", &pod),
        )
        .unwrap();
    assert_eq!(status, 200);
    let (response, patch) = response_of(&body);
    assert_eq!(response["allowed"], true);
    assert!(patch.is_some(), "no patch: {response}");
}

/// deploy/webhook (kustomize) is the chart's render with cert-manager and
/// the namespace, less Helm's own labels: the two ways in never drift.
#[test]
fn the_kustomize_manifests_are_the_charts_render() {
    let test = "the_kustomize_manifests_are_the_charts_render";
    let Some(helm) = Helm::find(4, test) else {
        return;
    };
    if !skip::have("kubectl", &["version", "--client"]) {
        skip::skipped(
            test,
            "kubectl is not installed (tests/run installs kubectl 1.35)",
        );
        return;
    }
    let helm_only = [
        "app.kubernetes.io/instance",
        "app.kubernetes.io/version",
        "app.kubernetes.io/managed-by",
        "helm.sh/chart",
    ];
    let key = |o: &Value| {
        format!(
            "{}/{}",
            o["kind"].as_str().unwrap(),
            o["metadata"]["name"].as_str().unwrap()
        )
    };
    let mut rendered: BTreeMap<String, Value> = BTreeMap::new();
    for mut o in objects(&render(
        &helm,
        &[
            "--set".into(),
            "certificates.mode=cert-manager".into(),
            "--set".into(),
            "namespace.create=true".into(),
        ],
    )) {
        if let Some(labels) = o["metadata"]["labels"].as_object_mut() {
            for l in helm_only {
                labels.remove(l);
            }
        }
        // The config's checksum rolls the pods on helm upgrade; kustomize
        // users edit the ConfigMap, which the webhook reads again.
        if let Some(template) = o.pointer_mut("/spec/template/metadata") {
            if let Some(annotations) = template
                .get_mut("annotations")
                .and_then(Value::as_object_mut)
            {
                annotations.remove("graceful-wait.io/config-checksum");
                if annotations.is_empty() {
                    template.as_object_mut().unwrap().remove("annotations");
                }
            }
        }
        rendered.insert(key(&o), o);
    }
    let kustomized: BTreeMap<String, Value> = objects(&piped::stdout_of(
        Command::new("kubectl")
            .arg("kustomize")
            .arg(root().join("deploy/webhook")),
    ))
    .into_iter()
    .map(|o| (key(&o), o))
    .collect();
    assert_eq!(
        rendered.keys().collect::<Vec<_>>(),
        kustomized.keys().collect::<Vec<_>>()
    );
    for (k, want) in &rendered {
        assert_eq!(
            &kustomized[k], want,
            "{k} in deploy/webhook differs from the chart's render"
        );
    }
}
