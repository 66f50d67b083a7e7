//! The pods every tier terminates: the injector's own output (golden cases'
//! expected files) and Istio's template pod, made playable with local
//! images — this test binary as the app, the proxy stand-in and the external
//! service (`support::roles`) — beside the original tool's shell loops as
//! written. The podman suite (`tests/runtime.rs`) and the real cluster
//! (`tests/real_cluster.rs`) play the same specs, so their figures compare.

#![allow(dead_code)] // each tier uses its own part

use crate::support::{roles, HELPER_ARGS};
use serde_json::{json, Value};
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

/// The init-container image (docker/Dockerfile's `prebuilt` target).
pub const INIT_IMAGE: &str = "localhost/graceful-wait:test";
/// This test binary alone, at /app: a distroless app or proxy.
pub const LAB_IMAGE: &str = "localhost/lab:test";
/// The same with Debian's static busybox (`sh`, `netstat`, `wget`), as the
/// original tool's loops need.
pub const LAB_SHELL_IMAGE: &str = "localhost/lab-shell:test";

/// The repository's root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Containerfile of the `lab` and `lab-shell` images, in a fresh build
/// context holding this test binary and busybox; built by each tier's tool.
pub fn lab_context() -> (tempfile::TempDir, PathBuf) {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::copy(std::env::current_exe().unwrap(), ctx.path().join("app")).unwrap();
    std::fs::copy("/bin/busybox", ctx.path().join("busybox")).unwrap();
    let file = ctx.path().join("Containerfile");
    std::fs::write(
        &file,
        "FROM scratch AS lab\nCOPY app /app\n\
         FROM lab AS lab-shell\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
    )
    .unwrap();
    (ctx, file)
}

/// The init-container image's build context: `binary` where
/// docker/Dockerfile's `prebuilt` target takes it.
pub fn init_context(binary: &Path) -> tempfile::TempDir {
    let ctx = tempfile::tempdir().unwrap();
    let at: PathBuf = ctx.path().join("target/x86_64-unknown-linux-gnu/release");
    std::fs::create_dir_all(&at).unwrap();
    std::fs::copy(binary, at.join("graceful-wait")).unwrap();
    ctx
}

/// A restricted container's securityContext (PodSecurity "restricted").
pub fn restricted(uid: u32) -> Value {
    json!({
        "runAsNonRoot": true, "runAsUser": uid, "runAsGroup": uid,
        "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}
    })
}

/// The pod spec of workload `name` in a golden case's expected output:
/// what the injector writes.
pub fn injected_spec(case: &str, name: &str) -> Value {
    let path = repo().join("config/test").join(case).join("expected.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let doc = docs
        .iter()
        .find(|d| d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in golden case {case}"));
    if doc["kind"] == "Pod" {
        doc["spec"].clone()
    } else {
        doc["spec"]["template"]["spec"].clone()
    }
}

/// The named container of a pod spec, in either list.
pub fn container<'a>(spec: &'a mut Value, name: &str) -> &'a mut Value {
    crate::support::container_in_mut(spec, name).unwrap_or_else(|| panic!("no container {name}"))
}

/// This test binary's command line in a container of the `lab` images.
pub fn role_command() -> Value {
    let mut argv = vec!["/app".to_string()];
    argv.extend(HELPER_ARGS.map(String::from));
    json!(argv)
}

/// How the app behaves on SIGTERM (support::roles::app).
#[derive(Clone, Copy)]
pub struct App {
    pub port: u16,
    /// Stops accepting at once, then works for a second and calls back.
    pub close_first: bool,
}

/// One way to terminate a pod, repeated.
pub struct Scenario {
    pub name: &'static str,
    /// The golden case and workload the spec comes from (a real cluster
    /// applies that workload, its pod template replaced by the spec); None
    /// for a bare pod.
    pub workload: Option<(&'static str, &'static str)>,
    /// The pod spec, given the external service's address.
    pub spec: Box<dyn Fn(&str) -> Value>,
    pub runs: usize,
    /// Every callback must arrive (our hooks), or none may (the original
    /// tool's loop where it cannot run: the lab reproduces the bug).
    pub expect: Expect,
    /// Callbacks the app's pod sends per termination.
    pub callbacks: usize,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Expect {
    All,
    None,
    /// Measured, not asserted (a known limitation, or a race the original
    /// loop wins or loses by chance).
    Any,
}

/// What a scenario measured.
pub struct Measured {
    pub delivered: usize,
    pub sent: usize,
    /// App's exit → proxy's SIGTERM, per run, in ms.
    pub reaction: Vec<f64>,
    /// App's exit → the hook's "condition met" line, per run, in ms.
    pub seen: Vec<f64>,
    /// The first hook's start → the last container's exit, per run, in ms.
    pub termination: Vec<f64>,
}

impl Measured {
    pub fn new() -> Self {
        Self {
            delivered: 0,
            sent: 0,
            reaction: Vec::new(),
            seen: Vec::new(),
            termination: Vec::new(),
        }
    }

    /// The scenario's row of the tiers' common table: callbacks delivered,
    /// then median / p99 of each measure.
    pub fn row(mut self, scenario: &str) -> String {
        for v in [&mut self.reaction, &mut self.seen, &mut self.termination] {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        }
        // Median / p99 of a measure, or a dash where nothing was measured
        // (a proxy that quit by itself has no SIGTERM line).
        let cell = |v: &[f64], digits: usize| {
            if v.is_empty() {
                "—".to_string()
            } else {
                format!(
                    "{:.digits$} / {:.digits$}",
                    percentile(v, 50.0),
                    percentile(v, 99.0)
                )
            }
        };
        format!(
            "| {scenario} | {}/{} | {} | {} | {} |",
            self.delivered,
            self.sent,
            cell(&self.seen, 1),
            cell(&self.reaction, 0),
            cell(&self.termination, 0),
        )
    }
}

/// The header of that table.
pub const TABLE_HEAD: &str = "| scenario | callbacks delivered | app exit → hook's condition met, median / p99 (ms) | app exit → proxy SIGTERM, median / p99 (ms) | termination, median / p99 (ms) |\n|---|---|---|---|---|";

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// A log line's leading RFC 3339 UTC time (`2026-12-03T13:48:27.021669Z`).
pub fn rfc3339(line: &str) -> Option<std::time::SystemTime> {
    let stamp = line.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, mo, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, mi, sec) = (t.next()??, t.next()??, t.next()??);
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
    // days_from_civil).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let nanos: u64 = format!("{frac:0<9}")[..9].parse().ok()?;
    let secs = days * 86400 + h * 3600 + mi * 60 + sec;
    Some(std::time::UNIX_EPOCH + Duration::new(secs as u64, nanos as u32))
}

pub fn ms(from: std::time::SystemTime, to: std::time::SystemTime) -> f64 {
    match to.duration_since(from) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -e.duration().as_secs_f64() * 1000.0,
    }
}

/// The app container of a played spec: this binary as the app, restricted.
pub fn make_app(spec: &mut Value, name: &str, app: App) {
    let c = container(spec, name);
    c["image"] = LAB_IMAGE.into();
    let wrapped = c["command"][0] == "/graceful-wait/graceful-wait";
    if wrapped {
        // `graceful-wait exec … -- /app`: the app's own arguments follow.
        assert_eq!(c["command"].as_array().unwrap().last().unwrap(), "/app");
        let args: Vec<Value> = role_command().as_array().unwrap()[1..].to_vec();
        c["args"] = Value::Array(args);
    } else {
        c["command"] = role_command();
        c.as_object_mut().unwrap().remove("args");
    }
    // The callbacks the injector's output sends for the app (the wrapper's
    // on-exit, a callback preStop) name services this pod cannot reach;
    // they go to the external service through the proxy, as the app's own.
    // `$POD_NAME` is graceful-wait's to expand, so the receiver can tell
    // whose callback arrived.
    let through_proxy = format!("http://127.0.0.1:{}/callback/$POD_NAME", roles::PROXY_PORT);
    for pointer in ["/command", "/lifecycle/preStop/exec/command"] {
        let Some(list) = c.pointer_mut(pointer) else {
            continue;
        };
        for arg in list.as_array_mut().into_iter().flatten() {
            for flag in ["--on-exit=", "--url="] {
                if arg.as_str().is_some_and(|a| a.starts_with(flag)) {
                    *arg = format!("{flag}{through_proxy}").into();
                }
            }
        }
    }
    let mut env = vec![
        json!({"name": "GW_ROLE", "value": "app"}),
        json!({"name": "GW_APP_PORT", "value": app.port.to_string()}),
        json!({"name": "POD_NAME", "value": "lab-pod-0"}),
    ];
    if app.close_first {
        env.push(json!({"name": "GW_CLOSE_FIRST", "value": "1"}));
        env.push(json!({"name": "GW_WORK_MS", "value": "1000"}));
    }
    c["env"] = Value::Array(env);
    c["securityContext"] = restricted(1000);
    // podman 4.3's kube play publishes a containerPort on the host; the
    // pod needs no published port.
    c.as_object_mut().unwrap().remove("ports");
}

/// The proxy container: this binary as a proxy stand-in that forwards to
/// `upstream` and exits at once on SIGTERM, in `image`, as uid 1337.
pub fn make_proxy(spec: &mut Value, upstream: &str, image: &str) {
    let c = container(spec, "istio-proxy");
    c["image"] = image.into();
    c["command"] = role_command();
    c.as_object_mut().unwrap().remove("args");
    c.as_object_mut().unwrap().remove("ports");
    c.as_object_mut().unwrap().remove("readinessProbe");
    c["env"] = json!([
        {"name": "GW_ROLE", "value": "proxy"},
        {"name": "GW_UPSTREAM", "value": upstream},
    ]);
    c["securityContext"] = restricted(1337);
}

/// The injector's output for golden `case`'s workload `name` (its app
/// container `app`), made playable: local images, this binary in the roles.
pub fn injected(case: &str, name: &str, app_container: &str, app: App, upstream: &str) -> Value {
    let mut spec = injected_spec(case, name);
    spec["restartPolicy"] = "Never".into();
    if spec["terminationGracePeriodSeconds"].is_null() {
        spec["terminationGracePeriodSeconds"] = 30.into();
    }
    container(&mut spec, "graceful-wait-install")["image"] = INIT_IMAGE.into();
    make_app(&mut spec, app_container, app);
    make_proxy(&mut spec, upstream, LAB_IMAGE);
    // The kubelet makes every emptyDir 0777; kube play makes it a named
    // volume owned by the first container that mounts it. The done marker's
    // volume must be writable by the app (uid 1000), as on a node: its
    // files are written by that app's wrapper.
    spec
}

/// The pod Istio's injector makes with the custom template merged in
/// (tests/lab/istio-template-pod.json: Go text/template with sprig, then
/// `kubectl patch --local --type strategic`, as istiod merges), made
/// playable. What needs the mesh or the API server is left out and only
/// that: `istio-init` (iptables redirection to an Envoy this pod has not),
/// and the volumes that come from cluster objects (the projected token,
/// ConfigMaps, the downward API, CSI sockets) with their mounts.
pub fn istio_template(app: App, upstream: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("tests/lab/istio-template-pod.json")).unwrap();
    let pod: Value = serde_json::from_str(&text).unwrap();
    let mut spec = pod["spec"].clone();
    spec["restartPolicy"] = "Never".into();
    if spec["terminationGracePeriodSeconds"].is_null() {
        spec["terminationGracePeriodSeconds"] = 30.into();
    }
    spec["initContainers"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c["name"] != "istio-init");
    spec["volumes"]
        .as_array_mut()
        .unwrap()
        .retain(|v| v.get("emptyDir").is_some());
    let kept: Vec<Value> = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].clone())
        .collect();
    for list in crate::support::CONTAINER_LISTS {
        for c in spec[list].as_array_mut().unwrap() {
            if let Some(mounts) = c["volumeMounts"].as_array_mut() {
                mounts.retain(|m| kept.contains(&m["name"]));
            }
            for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                c.as_object_mut().unwrap().remove(probe);
            }
        }
    }
    container(&mut spec, "graceful-wait-install")["image"] = INIT_IMAGE.into();
    make_app(&mut spec, "hello", app);
    make_proxy(&mut spec, upstream, LAB_IMAGE);
    spec
}

/// The original tool's pod: the workload before injection, with the
/// proxy's preStop set to `hook` (its shell loop), in `proxy_image`.
pub fn original(hook: Vec<String>, proxy_image: &str, upstream: &str) -> Value {
    original_of(
        "original-tcp",
        "test-tcp-svc",
        20000,
        hook,
        proxy_image,
        upstream,
    )
}

/// The same for golden case `case`'s workload, its app `app` on `port`.
pub fn original_of(
    case: &str,
    app: &str,
    port: u16,
    hook: Vec<String>,
    proxy_image: &str,
    upstream: &str,
) -> Value {
    let path = repo().join("config/test").join(case).join("input.yaml");
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut spec = docs[0]["spec"]["template"]["spec"].clone();
    spec["restartPolicy"] = "Never".into();
    spec["terminationGracePeriodSeconds"] = 30.into();
    make_app(
        &mut spec,
        app,
        App {
            port,
            close_first: false,
        },
    );
    make_proxy(&mut spec, upstream, proxy_image);
    container(&mut spec, "istio-proxy")["lifecycle"] =
        json!({"preStop": {"exec": {"command": hook}}});
    spec
}

/// The original tool's TCP loop, as its example config gives it.
pub fn original_tcp_loop() -> Vec<String> {
    original_loop("test-tcp-svc")
}

/// The original tool's loop for `service` in its example config: the
/// `netstat` one (test-tcp-svc) or the `curl` one (http-svc).
pub fn original_loop(service: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("config/pre_stop.conf.yml")).unwrap();
    let config: Value = serde_saphyr::from_str(&text).unwrap();
    serde_json::from_value(config["deployment"][service]["istio-proxy"].clone()).unwrap()
}

pub fn runs(default: usize) -> usize {
    std::env::var("GW_RUNTIME_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

pub fn scenarios() -> Vec<Scenario> {
    let tcp = App {
        port: 20000,
        close_first: false,
    };
    let close_first = App {
        port: 20000,
        close_first: true,
    };
    let netstat_tuln: Vec<String> = original_tcp_loop()
        .into_iter()
        .map(|a| a.replace("netstat -tulpn", "netstat -tuln"))
        .collect();
    vec![
        Scenario {
            name: "tcp (injected)",
            workload: Some(("original-tcp", "test-tcp-svc")),
            spec: Box::new(move |up| {
                injected("original-tcp", "test-tcp-svc", "test-tcp-svc", tcp, up)
            }),
            runs: runs(50),
            expect: Expect::All,
            callbacks: 1,
        },
        Scenario {
            name: "file + exec wrapper, app closes its port first (injected)",
            workload: Some(("follow-app-file", "orders")),
            spec: Box::new(move |up| {
                injected("follow-app-file", "orders", "orders", close_first, up)
            }),
            runs: runs(50),
            expect: Expect::All,
            callbacks: 2,
        },
        Scenario {
            name: "original loop as written (busybox: sh, netstat without -p)",
            workload: Some(("original-tcp", "test-tcp-svc")),
            spec: Box::new(|up| original(original_tcp_loop(), LAB_SHELL_IMAGE, up)),
            runs: runs(50),
            expect: Expect::Any,
            callbacks: 1,
        },
        Scenario {
            name: "http (injected)",
            workload: Some(("original-http", "http-svc")),
            spec: Box::new(|up| {
                injected(
                    "original-http",
                    "http-svc",
                    "http-svc",
                    App {
                        port: 3000,
                        close_first: false,
                    },
                    up,
                )
            }),
            runs: runs(20),
            expect: Expect::All,
            callbacks: 1,
        },
        Scenario {
            name: "listeners, no configuration (injected)",
            workload: Some(("auto", "worker")),
            spec: Box::new(|up| {
                injected(
                    "auto",
                    "worker",
                    "worker",
                    App {
                        port: 9000,
                        close_first: false,
                    },
                    up,
                )
            }),
            runs: runs(20),
            expect: Expect::All,
            callbacks: 1,
        },
        Scenario {
            name: "process, shared PID namespace (injected)",
            workload: Some(("follow-app-process", "ledger")),
            spec: Box::new(|up| {
                injected(
                    "follow-app-process",
                    "ledger",
                    "ledger",
                    App {
                        port: 20000,
                        close_first: false,
                    },
                    up,
                )
            }),
            runs: runs(20),
            expect: Expect::All,
            callbacks: 2,
        },
        Scenario {
            name: "Istio's injection template, no configuration",
            workload: None,
            spec: Box::new(move |up| istio_template(tcp, up)),
            runs: runs(20),
            expect: Expect::All,
            callbacks: 1,
        },
        Scenario {
            name: "tcp, app closes its port first (injected; the wrong wait for it)",
            workload: Some(("original-tcp", "test-tcp-svc")),
            spec: Box::new(move |up| {
                injected(
                    "original-tcp",
                    "test-tcp-svc",
                    "test-tcp-svc",
                    close_first,
                    up,
                )
            }),
            runs: runs(20),
            expect: Expect::Any,
            callbacks: 1,
        },
        Scenario {
            name: "original loop, netstat -tuln (busybox)",
            workload: Some(("original-tcp", "test-tcp-svc")),
            spec: Box::new(move |up| original(netstat_tuln.clone(), LAB_SHELL_IMAGE, up)),
            runs: runs(20),
            expect: Expect::Any,
            callbacks: 1,
        },
        Scenario {
            name: "original curl loop as written (busybox: sh, no curl)",
            workload: Some(("original-http", "http-svc")),
            spec: Box::new(|up| {
                original_of(
                    "original-http",
                    "http-svc",
                    3000,
                    original_loop("http-svc"),
                    LAB_SHELL_IMAGE,
                    up,
                )
            }),
            runs: runs(20),
            expect: Expect::Any,
            callbacks: 1,
        },
        Scenario {
            name: "original curl loop with busybox wget for curl",
            workload: Some(("original-http", "http-svc")),
            spec: Box::new(|up| {
                let hook = original_loop("http-svc")
                    .into_iter()
                    .map(|a| {
                        a.replace(
                            "curl localhost:3000/health",
                            "wget -q -O /dev/null localhost:3000/health",
                        )
                    })
                    .collect();
                original_of("original-http", "http-svc", 3000, hook, LAB_SHELL_IMAGE, up)
            }),
            runs: runs(20),
            expect: Expect::Any,
            callbacks: 1,
        },
        Scenario {
            name: "original loop, distroless proxy (no sh)",
            workload: Some(("original-tcp", "test-tcp-svc")),
            spec: Box::new(|up| original(original_tcp_loop(), LAB_IMAGE, up)),
            runs: runs(20),
            expect: Expect::None,
            callbacks: 1,
        },
    ]
}

/// The mesh's own native-sidecar hook, played by the proxy stand-in: a POST
/// to its drain port, as Istio's `pilot-agent request POST drain` is.
pub fn drain_hook() -> Vec<String> {
    [
        "/bin/wget",
        "-q",
        "-O",
        "/dev/null",
        "--post-data=",
        &format!("http://127.0.0.1:{}/drain", roles::DRAIN_PORT),
    ]
    .map(String::from)
    .to_vec()
}

/// A native sidecar (golden case `native-sidecar-wait`: the proxy a
/// restartable init container) whose hook drains — `outbound` too, or
/// inbound only — alone, or behind the wait the injector writes.
pub fn native(outbound: bool, with_wait: bool, upstream: &str) -> Value {
    let mut spec = injected_spec("native-sidecar-wait", "hello");
    spec["restartPolicy"] = "Never".into();
    spec["terminationGracePeriodSeconds"] = 30.into();
    // What needs Istio's control plane: its iptables init and CA volume.
    spec["initContainers"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c["name"] != "istio-init");
    spec["volumes"]
        .as_array_mut()
        .unwrap()
        .retain(|v| v.get("emptyDir").is_some());
    container(&mut spec, "graceful-wait-install")["image"] = INIT_IMAGE.into();
    make_app(
        &mut spec,
        "hello",
        App {
            port: 8080,
            close_first: false,
        },
    );
    make_proxy(&mut spec, upstream, LAB_SHELL_IMAGE);
    let proxy = container(&mut spec, "istio-proxy");
    proxy["volumeMounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["name"] == "graceful-wait");
    proxy["env"].as_array_mut().unwrap().push(json!({
        "name": "GW_DRAIN", "value": if outbound { "outbound" } else { "inbound" }
    }));
    let hook = &mut proxy["lifecycle"]["preStop"]["exec"]["command"];
    let written: Vec<Value> = hook.as_array().unwrap().clone();
    *hook = if with_wait {
        // The injector's wait, then the mesh's drain in place of
        // pilot-agent's.
        let at = written.iter().position(|a| a == "--").unwrap();
        let mut items = written[..=at].to_vec();
        items.extend(drain_hook().into_iter().map(Value::from));
        Value::Array(items)
    } else {
        json!(drain_hook())
    };
    spec
}

/// The native-sidecar layouts: what the kubelet's own ordering gives (the
/// sidecar's SIGTERM after the app has exited) and what it does not (its
/// hook runs when termination starts, beside the app's shutdown).
pub fn native_scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "native sidecar, inbound-only drain hook, no wait",
            workload: Some(("native-sidecar-wait", "hello")),
            spec: Box::new(|up| native(false, false, up)),
            runs: runs(20),
            expect: Expect::All,
            callbacks: 1,
        },
        Scenario {
            name: "native sidecar, outbound-breaking drain hook, no wait",
            workload: Some(("native-sidecar-wait", "hello")),
            spec: Box::new(|up| native(true, false, up)),
            runs: runs(20),
            expect: Expect::Any,
            callbacks: 1,
        },
        Scenario {
            name: "native sidecar, /quitquitquit hook (the Cloud SQL operator's), no wait",
            workload: None,
            spec: Box::new(|up| native_quitquitquit(false, up)),
            runs: runs(20),
            expect: Expect::Any,
            callbacks: 1,
        },
        Scenario {
            name: "native sidecar, /quitquitquit behind the wait (injected, the default)",
            workload: None,
            spec: Box::new(|up| native_quitquitquit(true, up)),
            runs: runs(20),
            expect: Expect::All,
            callbacks: 1,
        },
        Scenario {
            name: "native sidecar, outbound-breaking drain behind the wait (injected)",
            workload: Some(("native-sidecar-wait", "hello")),
            spec: Box::new(|up| native(true, true, up)),
            runs: runs(20),
            expect: Expect::All,
            callbacks: 1,
        },
    ]
}

/// One mesh's proxy, stood in by this binary in the classic layout: the
/// container name its injector gives it, the uid it runs as, the ports it
/// listens on in the pod (docs/meshes.md) and the preStop its injector
/// writes. The app runs as `app_uid`: the proxy's own uid where the mesh's
/// image is distroless's `nonroot` (65532), the case a rule by uid cannot
/// tell apart.
pub struct MeshProxy {
    pub mesh: &'static str,
    pub name: &'static str,
    pub uid: u32,
    pub ports: &'static [u16],
    /// Where its admin endpoint (`/quitquitquit`) listens, if not on
    /// [`roles::DRAIN_PORT`].
    pub admin: Option<u16>,
    pub pre_stop: Option<Value>,
    pub app_uid: u32,
}

impl MeshProxy {
    /// Its scenario's name in the tables, injected `by` what.
    pub fn scenario_name(&self, by: &str) -> &'static str {
        let shared = if self.app_uid == self.uid {
            ", the app's too"
        } else {
            ""
        };
        // Scenario names are 'static: one string per mesh and way, per run.
        Box::leak(
            format!(
                "{} stand-in ({}, uid {}{shared}), listeners by {by}",
                self.mesh, self.name, self.uid
            )
            .into_boxed_str(),
        )
    }
}

/// Every mesh of docs/meshes.md. The sleeps Linkerd's
/// `waitBeforeExitSeconds` and App Mesh's `--prestop-delay` write are 2 s
/// here (20 s is App Mesh's default), so 20 terminations take minutes, not
/// a quarter of an hour; what is shown — the sleep runs, after the wait —
/// does not depend on its length.
pub fn meshes() -> Vec<MeshProxy> {
    vec![
        MeshProxy {
            mesh: "Istio",
            name: "istio-proxy",
            uid: 1337,
            ports: &[15000, 15001, 15004, 15006, 15008, 15020, 15021, 15090],
            admin: None,
            pre_stop: None,
            app_uid: 1000,
        },
        MeshProxy {
            mesh: "Linkerd",
            name: "linkerd-proxy",
            uid: 2102,
            ports: &[4140, 4143, 4190, 4191],
            admin: None,
            pre_stop: Some(json!({"exec": {"command": ["/bin/sleep", "2"]}})),
            app_uid: 1000,
        },
        MeshProxy {
            mesh: "Consul",
            name: "consul-dataplane-web",
            uid: 5995,
            ports: &[19000, 20000, 20100, 20200, 20600, 21000],
            admin: None,
            pre_stop: None,
            app_uid: 1000,
        },
        MeshProxy {
            mesh: "Kuma",
            name: "kuma-sidecar",
            uid: 5678,
            ports: &[15001, 15006, 15053, 9901, 9902, 9001, 5670],
            admin: None,
            pre_stop: None,
            app_uid: 1000,
        },
        MeshProxy {
            mesh: "App Mesh",
            name: "envoy",
            uid: 1337,
            ports: &[9901, 15000, 15001],
            admin: None,
            pre_stop: Some(json!({"exec": {"command": ["sh", "-c", "sleep 2"]}})),
            app_uid: 1000,
        },
        MeshProxy {
            mesh: "Open Service Mesh",
            name: "envoy",
            uid: 1500,
            ports: &[15000, 15001, 15003, 15010, 15901, 15902, 15903, 15904],
            admin: None,
            pre_stop: None,
            app_uid: 1000,
        },
        MeshProxy {
            mesh: "Dapr",
            name: "daprd",
            uid: 65532,
            ports: &[3500, 3501, 9090, 50001, 50002],
            admin: None,
            pre_stop: None,
            app_uid: 65532,
        },
        MeshProxy {
            mesh: "Cloud SQL Auth Proxy",
            name: "csql-gw-orders",
            uid: 65532,
            ports: &[5432, 9090, 9091, 9801],
            admin: Some(9091),
            pre_stop: Some(
                json!({"httpGet": {"host": "localhost", "path": "/quitquitquit", "port": 9091}}),
            ),
            app_uid: 65532,
        },
        MeshProxy {
            mesh: "AlloyDB Auth Proxy",
            name: "alloydb-auth-proxy",
            uid: 65532,
            ports: &[5432, 9090, 9091],
            admin: None,
            pre_stop: None,
            app_uid: 65532,
        },
    ]
}

/// The app's port in a mesh stand-in's pod: none of the meshes' own.
pub const MESH_APP_PORT: u16 = 7000;

/// A pod of the app and `m`'s proxy stand-in, before any injection: no
/// probe, so `auto` chooses the zero-configuration `listeners` wait.
pub fn mesh_pod(m: &MeshProxy, upstream: &str) -> Value {
    let mut spec = json!({
        "terminationGracePeriodSeconds": 30,
        "restartPolicy": "Never",
        "containers": [
            {"name": "app", "image": LAB_IMAGE},
            {"name": m.name, "image": LAB_SHELL_IMAGE},
        ],
    });
    make_app(
        &mut spec,
        "app",
        App {
            port: MESH_APP_PORT,
            close_first: false,
        },
    );
    container(&mut spec, "app")["securityContext"] = restricted(m.app_uid);
    let proxy = container(&mut spec, m.name);
    proxy["command"] = role_command();
    let ports: Vec<String> = m.ports.iter().map(u16::to_string).collect();
    let mut env = vec![
        json!({"name": "GW_ROLE", "value": "proxy"}),
        json!({"name": "GW_UPSTREAM", "value": upstream}),
        json!({"name": "GW_PROXY_PORTS", "value": ports.join(",")}),
    ];
    if let Some(admin) = m.admin {
        env.push(json!({"name": "GW_ADMIN_PORT", "value": admin.to_string()}));
    }
    proxy["env"] = Value::Array(env);
    proxy["securityContext"] = restricted(m.uid);
    if let Some(hook) = &m.pre_stop {
        proxy["lifecycle"] = json!({ "preStop": hook });
    }
    spec
}

/// The same pod as `graceful-inject` writes it: [`cli_injected`].
pub fn mesh_pod_injected(m: &MeshProxy, upstream: &str) -> Value {
    cli_injected(mesh_pod(m, upstream), m.name)
}

/// Pod spec `spec` as `graceful-inject` writes it (the binary
/// `GW_INJECT_BINARY` names, as tests/run sets it) from a Deployment and
/// the one-line config `web: {<proxy>: auto}`: the pod spec of its output.
pub fn cli_injected(spec: Value, proxy: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("web.yaml");
    let config = dir.path().join("config.yml");
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": spec}},
    });
    std::fs::write(&input, serde_json::to_string_pretty(&deployment).unwrap()).unwrap();
    std::fs::write(
        &config,
        format!("graceful-wait:\n  image: {INIT_IMAGE}\ndeployment:\n  web:\n    {proxy}: auto\n"),
    )
    .unwrap();
    let binary = std::env::var("GW_INJECT_BINARY").expect("GW_INJECT_BINARY names graceful-inject");
    let out = std::process::Command::new(binary)
        .arg(&input)
        .arg(&config)
        .arg("-")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "graceful-inject: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_saphyr::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    doc["spec"]["template"]["spec"].clone()
}

/// Each mesh's stand-in injected by the command line, terminated 20 times.
pub fn mesh_scenarios() -> Vec<Scenario> {
    meshes()
        .into_iter()
        .enumerate()
        .map(|(i, m)| Scenario {
            name: m.scenario_name("graceful-inject"),
            workload: None,
            spec: Box::new(move |up| mesh_pod_injected(&meshes()[i], up)),
            runs: runs(20),
            expect: Expect::All,
            callbacks: 1,
        })
        .collect()
}

/// The Cloud SQL proxy operator's native sidecar, stood in: the proxy a
/// restartable init container whose preStop is `GET /quitquitquit` — the
/// proxy exits at once — sent by the kubelet when termination starts; here
/// to the pod's IP (no `host`: the operator's `host: localhost` is the
/// node's, which never reaches the proxy, docs/meshes.md). Alone, or as
/// graceful-inject writes it by default: the wait first, then the same GET.
pub fn native_quitquitquit(with_wait: bool, upstream: &str) -> Value {
    let m = meshes()
        .into_iter()
        .find(|m| m.mesh == "Cloud SQL Auth Proxy")
        .unwrap();
    let mut spec = mesh_pod(&m, upstream);
    let mut proxy = container(&mut spec, m.name).take();
    spec["containers"]
        .as_array_mut()
        .unwrap()
        .retain(|c| !c.is_null());
    proxy["restartPolicy"] = "Always".into();
    proxy["lifecycle"] = json!({"preStop": {"httpGet": {"path": "/quitquitquit", "port": 9091}}});
    spec["initContainers"] = json!([proxy]);
    if with_wait {
        cli_injected(spec, m.name)
    } else {
        spec
    }
}
