//! The real container runtime: images built with podman, the injector's own
//! output played as pods (`podman kube play`) and terminated in the
//! kubelet's order (see tests/podman/mod.rs), side by side with the
//! original tool's shell loops. Needs root, podman, runc, catatonit and
//! busybox-static, which `tests/run` installs; SKIPPED otherwise.
//!
//! The pods run the release build of graceful-wait, as the image ships it:
//! the debug build (about 100 MB) does not fit the 32 Mi memory limit the
//! injector gives the init container. So the played-pod tests are ignored
//! by a plain `cargo test`, and `tests/run` runs them with `GW_BINARY`
//! naming the release build.

#[path = "podman/kubelet.rs"]
mod kubelet;
mod podman;
mod support;

use kubelet::{
    container, injected_spec, restricted, role_command, Timeline, INIT_IMAGE, LAB_IMAGE,
    LAB_SHELL_IMAGE,
};
use podman::{repo, Podman};
use serde_json::{json, Value};
use std::{path::Path, time::Duration};
use support::*;

#[test]
#[ignore = "re-exec entry point: the tests run it as their helper process"]
fn helper_process() {
    helper_main();
    roles::main();
}

/// docker/Dockerfile's `prebuilt` target builds with no registry, holds the
/// binary alone, and the binary runs there as the restricted init container
/// does: as 65532 (the image's user), every capability dropped, read-only
/// root, the runtime's default seccomp profile — and installs itself into a
/// volume, which is its job.
#[test]
fn the_init_container_image_builds_offline_and_installs_under_restrictions() {
    let test = "the_init_container_image_builds_offline_and_installs_under_restrictions";
    let Some(podman) = Podman::new_or_skip(test) else {
        return;
    };
    podman.build_init_image(Path::new(bin()));
    let size = podman.size(INIT_IMAGE);
    let binary = std::fs::metadata(bin()).unwrap().len();
    assert!(
        size < binary + 64 * 1024,
        "the image holds more than the binary: {size} bytes for a {binary}-byte binary"
    );
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("\ninit-container image: {size} bytes ({binary}-byte binary)\n").as_bytes(),
    );

    let volume = tempfile::tempdir().unwrap();
    // The kubelet makes an emptyDir writable by any user (0777).
    std::fs::set_permissions(
        volume.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let mount = format!("{}:/install", volume.path().display());
    let out = podman.run_restricted(&[
        "--rm",
        "--network",
        "none",
        "-v",
        &mount,
        INIT_IMAGE,
        "install",
        "/install",
    ]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("installed /install/graceful-wait"), "{log}");
    let meta = std::fs::metadata(volume.path().join("graceful-wait")).unwrap();
    assert_eq!(meta.len(), binary, "the whole binary");
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&meta),
        65532,
        "written by the image's user"
    );
    // What the proxy's hook runs from that volume runs restricted too: a
    // wait that sees nothing listening in a fresh network namespace returns
    // at once, without falling back from netlink.
    let out = podman.run_restricted(&[
        "--rm",
        "--user",
        "1337",
        "--network",
        "none",
        INIT_IMAGE,
        "tcp",
        "--port",
        "20000",
        "--timeout",
        "10s",
    ]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("condition met"), "{log}");
    assert!(
        !log.contains("WARN"),
        "no fallback under the runtime's default seccomp profile: {log}"
    );
}

// ------------------------------------------------------------ the scenarios

/// How the app behaves on SIGTERM (support::roles::app).
#[derive(Clone, Copy)]
struct App {
    port: u16,
    /// Stops accepting at once, then works for a second and calls back.
    close_first: bool,
}

/// One way to terminate a pod, repeated.
struct Scenario {
    name: &'static str,
    /// The pod spec, given the external service's address.
    spec: Box<dyn Fn(&str) -> Value>,
    runs: usize,
    /// Every callback must arrive (our hooks), or none may (the original
    /// tool's loop where it cannot run: the lab reproduces the bug).
    expect: Expect,
    /// Callbacks the app's pod sends per termination.
    callbacks: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Expect {
    All,
    None,
    /// Measured, not asserted (a known limitation, or a race the original
    /// loop wins or loses by chance).
    Any,
}

/// What a scenario measured.
struct Measured {
    delivered: usize,
    sent: usize,
    /// App's exit → proxy's SIGTERM, per run, in ms.
    reaction: Vec<f64>,
    /// App's exit → the hook's "condition met" line, per run, in ms.
    seen: Vec<f64>,
    /// The first hook's start → the last container's exit, per run, in ms.
    termination: Vec<f64>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// A log line's leading RFC 3339 UTC time (`2026-12-03T13:48:27.021669Z`).
fn rfc3339(line: &str) -> Option<std::time::SystemTime> {
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

fn ms(from: std::time::SystemTime, to: std::time::SystemTime) -> f64 {
    match to.duration_since(from) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -e.duration().as_secs_f64() * 1000.0,
    }
}

/// The app container of a played spec: this binary as the app, restricted.
fn make_app(spec: &mut Value, name: &str, app: App) {
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
    let through_proxy = format!("http://127.0.0.1:{}/callback", roles::PROXY_PORT);
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
fn make_proxy(spec: &mut Value, upstream: &str, image: &str) {
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
fn injected(case: &str, name: &str, app_container: &str, app: App, upstream: &str) -> Value {
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
fn istio_template(app: App, upstream: &str) -> Value {
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
    for list in ["containers", "initContainers"] {
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
fn original(hook: Vec<String>, proxy_image: &str, upstream: &str) -> Value {
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
fn original_of(
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
fn original_tcp_loop() -> Vec<String> {
    original_loop("test-tcp-svc")
}

/// The original tool's loop for `service` in its example config: the
/// `netstat` one (test-tcp-svc) or the `curl` one (http-svc).
fn original_loop(service: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("config/pre_stop.conf.yml")).unwrap();
    let config: Value = serde_saphyr::from_str(&text).unwrap();
    serde_json::from_value(config["deployment"][service]["istio-proxy"].clone()).unwrap()
}

fn runs(default: usize) -> usize {
    std::env::var("GW_RUNTIME_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn scenarios() -> Vec<Scenario> {
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
            spec: Box::new(move |up| {
                injected("original-tcp", "test-tcp-svc", "test-tcp-svc", tcp, up)
            }),
            runs: runs(50),
            expect: Expect::All,
            callbacks: 1,
        },
        Scenario {
            name: "file + exec wrapper, app closes its port first (injected)",
            spec: Box::new(move |up| {
                injected("follow-app-file", "orders", "orders", close_first, up)
            }),
            runs: runs(50),
            expect: Expect::All,
            callbacks: 2,
        },
        Scenario {
            name: "original loop as written (busybox: sh, netstat without -p)",
            spec: Box::new(|up| original(original_tcp_loop(), LAB_SHELL_IMAGE, up)),
            runs: runs(50),
            expect: Expect::Any,
            callbacks: 1,
        },
        Scenario {
            name: "http (injected)",
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
            spec: Box::new(move |up| istio_template(tcp, up)),
            runs: runs(20),
            expect: Expect::All,
            callbacks: 1,
        },
        Scenario {
            name: "tcp, app closes its port first (injected; the wrong wait for it)",
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
            spec: Box::new(move |up| original(netstat_tuln.clone(), LAB_SHELL_IMAGE, up)),
            runs: runs(20),
            expect: Expect::Any,
            callbacks: 1,
        },
        Scenario {
            name: "original curl loop as written (busybox: sh, no curl)",
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
            spec: Box::new(|up| original(original_tcp_loop(), LAB_IMAGE, up)),
            runs: runs(20),
            expect: Expect::None,
            callbacks: 1,
        },
    ]
}

/// Every scenario, each terminated `runs` times in the kubelet's order; a
/// table of callbacks delivered, hook reaction and termination time.
#[test]
#[ignore = "needs the release build and takes minutes: tests/run runs it with GW_BINARY"]
fn real_pods_terminated_as_the_kubelet_does() {
    let test = "real_pods_terminated_as_the_kubelet_does";
    assert!(
        std::env::var_os("GW_BINARY").is_some(),
        "run with GW_BINARY naming the release build (cargo build --release -p graceful-wait), as tests/run does"
    );
    let Some(podman) = Podman::new_or_skip(test) else {
        return;
    };
    if !skip::have("/bin/busybox", &["true"]) {
        skipped(
            test,
            "Debian's busybox-static is needed for the original loop's image (tests/run installs it as root)",
        );
        return;
    }
    podman.build_init_image(Path::new(bin()));
    kubelet::build_lab_images(&podman);
    let upstream = kubelet::start_receiver(&podman);
    let grace = Duration::from_secs(30);
    let only = std::env::var("GW_RUNTIME_ONLY").ok();
    let mut table = Vec::new();
    let mut failures = Vec::new();
    for (n, scenario) in scenarios().into_iter().enumerate() {
        if only.as_deref().is_some_and(|o| !scenario.name.contains(o)) {
            continue;
        }
        let mut m = Measured {
            delivered: 0,
            sent: 0,
            reaction: Vec::new(),
            seen: Vec::new(),
            termination: Vec::new(),
        };
        for run in 0..scenario.runs {
            let before = kubelet::callbacks(&podman);
            let pod = kubelet::play(&podman, &format!("s{n}r{run}"), &(scenario.spec)(&upstream));
            let timeline: Timeline = pod.terminate(grace);
            // The receiver's log is read after every container has exited:
            // whatever was sent has arrived or never will.
            let got = kubelet::callbacks(&podman) - before;
            m.delivered += got;
            m.sent += scenario.callbacks;
            let app = &pod.members[0].container;
            if let (Some(exited), Some(term)) = (
                timeline.at(app, "exited"),
                timeline.at("istio-proxy", "SIGTERM"),
            ) {
                m.reaction.push(ms(exited, term));
            }
            let first = timeline.events.first().map(|e| e.0).unwrap();
            let last = timeline.events.last().map(|e| e.0).unwrap();
            m.termination.push(ms(first, last));
            // The hook's own view: its "condition met" line (copied into
            // the proxy's log, where `kubectl logs` shows it) against the
            // app's exit; the driver's adds `podman exec` returning.
            let proxy_log = pod.logs(&format!("{}-istio-proxy", pod.name));
            if let (Some(exited), Some(seen)) = (
                timeline.at(app, "exited"),
                proxy_log
                    .lines()
                    .find(|l| l.contains("INFO condition met"))
                    .and_then(rfc3339),
            ) {
                m.seen.push(ms(exited, seen));
            }
            let held = timeline.has("istio-proxy", "preStop ended: exit 0");
            if scenario.expect == Expect::All && (got != scenario.callbacks || !held) {
                failures.push(format!(
                    "{} run {run}: {got} of {} callbacks, hook ended by its condition: {held}\n{timeline}\napp: {}\nproxy: {}",
                    scenario.name,
                    scenario.callbacks,
                    pod.logs(app),
                    proxy_log,
                ));
            }
            if scenario.expect == Expect::None && got != 0 {
                failures.push(format!(
                    "{} run {run}: the callback arrived, so the pod no longer reproduces the bug\n{timeline}",
                    scenario.name
                ));
            }
        }
        m.reaction.sort_by(|a, b| a.partial_cmp(b).unwrap());
        m.seen.sort_by(|a, b| a.partial_cmp(b).unwrap());
        m.termination.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let seen = if m.seen.is_empty() {
            "—".to_string()
        } else {
            format!(
                "{:.1} / {:.1}",
                percentile(&m.seen, 50.0),
                percentile(&m.seen, 99.0)
            )
        };
        let row = format!(
            "| {} | {}/{} | {seen} | {:.0} / {:.0} | {:.0} / {:.0} |",
            scenario.name,
            m.delivered,
            m.sent,
            percentile(&m.reaction, 50.0),
            percentile(&m.reaction, 99.0),
            percentile(&m.termination, 50.0),
            percentile(&m.termination, 99.0),
        );
        println!("{row}");
        table.push(row);
    }
    println!(
        "\nreal runtime (podman 4.3 + runc), terminations in the kubelet's order:\n\
         | scenario | callbacks delivered | app exit → hook's condition met, median / p99 (ms) | app exit → proxy SIGTERM, median / p99 (ms) | termination, median / p99 (ms) |\n\
         |---|---|---|---|---|\n{}",
        table.join("\n")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
