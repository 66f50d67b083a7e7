//! The injector's pods in a real Kubernetes, terminated by the real kubelet:
//! the workloads of the golden cases' expected files applied as they are
//! (Deployments, StatefulSets) with local images, their pods deleted with
//! `kubectl delete pod` and `kubectl rollout restart`, callbacks counted by
//! an external service in a pod of its own. The same pods as the podman
//! suite (`tests/scenarios`), so the tiers compare, and what only the
//! kubelet can show: native sidecars stopped by the code that defines them,
//! a rolled Deployment, a hook that runs into the grace period.
//!
//! Needs root and Go (the cluster is built from Go modules: tests/cluster);
//! SKIPPED otherwise. Ignored by a plain `cargo test`: `tests/run` runs it
//! with `GW_BINARY` naming the release build (the debug build does not fit
//! the init container's 32 Mi).

mod cluster;
mod scenarios;
mod support;

use cluster::{
    lab::{callbacks, images, on_node, senders, start_receiver},
    Cluster, Lines,
};
use scenarios::*;
use serde_json::{json, Value};
use std::time::SystemTime;
use support::*;

#[test]
#[ignore = "re-exec entry point: the tests run it as their helper process"]
fn helper_process() {
    helper_main();
    roles::main();
}

/// Pods terminated at once: a Deployment's replicas, deleted together
/// (`GW_CLUSTER_BATCH`, 3 by default, as a rollout replaces a few at a
/// time). More at once saves time but measures a loaded kubelet: at ten on
/// two cores it stops a proxy several hundred milliseconds after its hook
/// returns, late enough that even a hook that fails at once seems to work.
fn batch_size() -> usize {
    std::env::var("GW_CLUSTER_BATCH")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3)
}

/// The golden case's workload `name`, its pod template's spec replaced by
/// `spec`, `replicas` of it, in `namespace`.
fn workload(case: &str, name: &str, spec: Value, replicas: usize, namespace: &str) -> Value {
    let path = repo().join("config/test").join(case).join("expected.yaml");
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut doc = docs
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in golden case {case}"));
    doc["metadata"]["namespace"] = namespace.into();
    doc["spec"]["template"]["spec"] = on_node(spec, "Always");
    doc["spec"]["replicas"] = replicas.into();
    if doc["kind"] == "StatefulSet" {
        // Every replica at once, as a Deployment's; the golden case's
        // ordered start would only make the batch slower.
        doc["spec"]["podManagementPolicy"] = "Parallel".into();
    }
    doc
}

/// The proxy's container in a spec: a main container or a native sidecar.
fn proxy_name() -> &'static str {
    "istio-proxy"
}

/// The app container of a spec: its first main container.
fn app_name(spec: &Value) -> String {
    spec["containers"][0]["name"].as_str().unwrap().to_string()
}

/// One pod of a batch, followed from its start to its end.
struct Followed {
    name: String,
    app: Lines,
    proxy: Lines,
}

/// Waits until `count` pods of `namespace` run with their app and proxy
/// ready (their own log lines); follows each.
fn ready_batch(cluster: &Cluster, namespace: &str, app: &str, count: usize) -> Vec<Followed> {
    let mut pods = Vec::new();
    cluster.until(&format!("{count} pods running in {namespace}"), || {
        pods = cluster.live_pods(namespace);
        pods.len() >= count
    });
    // Every follower started first, then each waited on: the pods start
    // side by side.
    let mut batch: Vec<Followed> = pods
        .into_iter()
        .take(count)
        .map(|p| {
            let name = p["metadata"]["name"].as_str().unwrap().to_string();
            Followed {
                app: cluster.follow(namespace, &name, app),
                proxy: cluster.follow(namespace, &name, proxy_name()),
                name,
            }
        })
        .collect();
    for f in &mut batch {
        f.app.expect("GW_APP ready");
        f.proxy.expect("GW_PROXY ready");
    }
    batch
}

/// Deletes the batch's pods at once, as `kubectl delete pod` does, and
/// waits until they are gone; per pod what the containers' logs show.
fn terminate(
    cluster: &Cluster,
    namespace: &str,
    batch: &mut [Followed],
    waits: bool,
    logs_copied: bool,
    m: &mut Measured,
) -> Vec<String> {
    let started = SystemTime::now();
    // kubectl deletes them all, then waits for each (by UID: a
    // StatefulSet's replacement has the same name).
    let mut args = vec!["delete", "pod", "-n", namespace, "--timeout=120s"];
    args.extend(batch.iter().map(|f| f.name.as_str()));
    cluster.ok(&args);
    let mut problems = Vec::new();
    let events = cluster.events(namespace);
    for f in batch.iter_mut() {
        f.app.read_to_end();
        f.proxy.read_to_end();
        let exited = f.app.at("GW_APP exit");
        let sigterm = f.proxy.at("GW_PROXY sigterm");
        if let (Some(exited), Some(term)) = (exited, sigterm) {
            m.reaction.push(ms(exited, term));
        }
        if let (Some(exited), Some(seen)) = (exited, f.proxy.at("INFO condition met")) {
            m.seen.push(ms(exited, seen));
        }
        let last = [f.app.seen.last(), f.proxy.seen.last()]
            .into_iter()
            .flatten()
            .filter_map(|l| rfc3339(l))
            .max();
        if let Some(last) = last {
            m.termination.push(ms(started, last));
        }
        if waits {
            // The hook ended by its condition: the kubelet saw no failure
            // (a wait that ran out exits non-zero: FailedPreStopHook), and
            // the hook's own line, where it copies its log to the proxy's.
            let failed = events.iter().any(|e| {
                e.pod == f.name && e.reason == "FailedPreStopHook" && e.on.contains(proxy_name())
            });
            let said = !logs_copied || f.proxy.at("INFO condition met").is_some();
            if failed || !said {
                problems.push(format!(
                    "{}: the hook did not end by its condition (FailedPreStopHook: {failed})\napp: {:?}\nproxy: {:?}",
                    f.name, f.app.seen, f.proxy.seen
                ));
            }
        }
    }
    problems
}

/// Plays `scenario` in namespace `namespace`: `runs` terminations in
/// batches; the measured row, and what went wrong where every callback was
/// due.
fn play(
    cluster: &Cluster,
    namespace: &str,
    scenario: &Scenario,
    upstream: &str,
) -> (Measured, Vec<String>) {
    cluster.namespace(namespace, "restricted");
    let spec = (scenario.spec)(upstream);
    let app = app_name(&spec);
    // The proxy's hook is graceful-wait's, whose condition must be met (and
    // which may copy its log into the proxy's).
    let hook = container(&mut spec.clone(), proxy_name())["lifecycle"]["preStop"]["exec"]
        ["command"]
        .to_string();
    let waits = hook.contains("graceful-wait");
    let logs_copied = hook.contains("--log-copy");
    let batch = batch_size().min(scenario.runs);
    let apply_batch = |round: usize| {
        if let Some((case, name)) = scenario.workload {
            if round == 0 {
                cluster.apply(&workload(case, name, spec.clone(), batch, namespace));
            }
        } else {
            // A bare pod, as Istio's injector hands it to the API server.
            let pods: Vec<Value> = (0..batch)
                .map(|i| {
                    json!({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": format!("pod-{round}-{i}"), "namespace": namespace},
                        "spec": on_node(spec.clone(), "Never")})
                })
                .collect();
            cluster.apply(&json!({"apiVersion": "v1", "kind": "List", "items": pods}));
        }
    };
    let mut m = Measured::new();
    let mut failures = Vec::new();
    let mut done = 0;
    let mut round = 0;
    while done < scenario.runs {
        let now = batch.min(scenario.runs - done);
        apply_batch(round);
        let mut pods = ready_batch(cluster, namespace, &app, now);
        let since = senders(cluster).len();
        let problems = terminate(cluster, namespace, &mut pods, waits, logs_copied, &mut m);
        // Every container of the batch has exited: whatever was sent has
        // arrived or never will.
        let names: Vec<&str> = pods.iter().map(|f| f.name.as_str()).collect();
        let got = callbacks(cluster, &names, since);
        m.delivered += got;
        m.sent += now * scenario.callbacks;
        match scenario.expect {
            Expect::All if got != now * scenario.callbacks || !problems.is_empty() => failures
                .push(format!(
                    "{} round {round}: {got} of {} callbacks\n{}",
                    scenario.name,
                    now * scenario.callbacks,
                    problems.join("\n")
                )),
            Expect::None if got != 0 => failures.push(format!(
                "{} round {round}: {got} callbacks arrived, so the pod no longer reproduces the bug",
                scenario.name
            )),
            _ => {}
        }
        done += now;
        round += 1;
    }
    // The controllers' last replacements go with it, in the background.
    let _ = cluster.run(&["delete", "namespace", namespace, "--wait=false"]);
    (m, failures)
}

/// Every scenario of the podman suite, terminated by the real kubelet; a
/// table of callbacks delivered, hook reaction and termination time.
#[test]
#[ignore = "needs root, Go, the release build and minutes: tests/run runs it with GW_BINARY"]
fn the_kubelet_terminates_the_injected_pods() {
    let test = "the_kubelet_terminates_the_injected_pods";
    assert!(
        std::env::var_os("GW_BINARY").is_some(),
        "run with GW_BINARY naming the release build (cargo build --release -p graceful-wait), as tests/run does"
    );
    if !skip::have("/bin/busybox", &["true"]) {
        skipped(
            test,
            "Debian's busybox-static is needed for the original loop's image (tests/run installs it as root)",
        );
        return;
    }
    let Some(cluster) = Cluster::up_or_skip(test) else {
        return;
    };
    images(&cluster);
    let upstream = start_receiver(&cluster);
    let only = std::env::var("GW_RUNTIME_ONLY").ok();
    let mut table = Vec::new();
    let mut failures = Vec::new();
    let all = scenarios().into_iter().chain(native_scenarios());
    for (n, scenario) in all.enumerate() {
        if only.as_deref().is_some_and(|o| !scenario.name.contains(o)) {
            continue;
        }
        let (m, f) = play(&cluster, &format!("gw-s{n}"), &scenario, &upstream);
        let row = m.row(scenario.name);
        println!("{row}");
        table.push(row);
        failures.extend(f);
    }
    if only.is_none() {
        let (row, f) = rolled(&cluster, &upstream);
        table.push(row);
        failures.extend(f);
        let (row, f) = never_finishes(&cluster, &upstream);
        table.push(row);
        failures.extend(f);
    }
    println!(
        "\nreal cluster (Kubernetes v1.37.2: kubelet, containerd 2.4.2, runc), pods deleted with kubectl:\n{TABLE_HEAD}\n{}",
        table.join("\n")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A fresh `namespace` and the pod spec of golden case original-tcp (the
/// app on port 20000), made playable.
fn tcp_pod(cluster: &Cluster, namespace: &str, upstream: &str) -> Value {
    cluster.namespace(namespace, "restricted");
    let app = App {
        port: 20000,
        close_first: false,
    };
    injected(
        "original-tcp",
        "test-tcp-svc",
        "test-tcp-svc",
        app,
        upstream,
    )
}

/// A 3-replica Deployment (golden case original-tcp) rolled with
/// `kubectl rollout restart` three times while each app sends its shutdown
/// callback: none may be lost.
fn rolled(cluster: &Cluster, upstream: &str) -> (String, Vec<String>) {
    let name = "3 replicas, kubectl rollout restart ×3 (injected tcp)";
    let namespace = "gw-rolled";
    let spec = tcp_pod(cluster, namespace, upstream);
    cluster.apply(&workload(
        "original-tcp",
        "test-tcp-svc",
        spec,
        3,
        namespace,
    ));
    let mut m = Measured::new();
    let mut failures = Vec::new();
    for round in 0..3 {
        let mut pods = ready_batch(cluster, namespace, "test-tcp-svc", 3);
        let since = senders(cluster).len();
        let started = SystemTime::now();
        cluster.ok(&[
            "rollout",
            "restart",
            "deployment/test-tcp-svc",
            "-n",
            namespace,
        ]);
        cluster.ok(&[
            "rollout",
            "status",
            "deployment/test-tcp-svc",
            "-n",
            namespace,
            "--timeout=180s",
        ]);
        // The old pods are gone once their logs end.
        for f in pods.iter_mut() {
            f.app.read_to_end();
            f.proxy.read_to_end();
            if let Some(last) = f.proxy.seen.last().and_then(|l| rfc3339(l)) {
                m.termination.push(ms(started, last));
            }
            if let (Some(exited), Some(term)) =
                (f.app.at("GW_APP exit"), f.proxy.at("GW_PROXY sigterm"))
            {
                m.reaction.push(ms(exited, term));
            }
            if let (Some(exited), Some(seen)) =
                (f.app.at("GW_APP exit"), f.proxy.at("INFO condition met"))
            {
                m.seen.push(ms(exited, seen));
            }
        }
        let names: Vec<&str> = pods.iter().map(|f| f.name.as_str()).collect();
        let got = callbacks(cluster, &names, since);
        m.delivered += got;
        m.sent += 3;
        if got != 3 {
            failures.push(format!("{name} round {round}: {got} of 3 callbacks"));
        }
    }
    let _ = cluster.run(&["delete", "namespace", namespace, "--wait=false"]);
    (m.row(name), failures)
}

/// An app that never finishes: the proxy's hook holds until its
/// `--timeout`, then ends with 124 and the kubelet says so
/// (`FailedPreStopHook`); the app is killed when the grace period ends.
fn never_finishes(cluster: &Cluster, upstream: &str) -> (String, Vec<String>) {
    let name = "app never finishes: hook holds to its timeout, kubelet kills at the grace period";
    let namespace = "gw-stubborn";
    let mut spec = tcp_pod(cluster, namespace, upstream);
    // A shorter grace period than the golden case's 30 s, and the timeout
    // the injector writes for it (5 s less).
    spec["terminationGracePeriodSeconds"] = 12.into();
    for arg in container(&mut spec, proxy_name())["lifecycle"]["preStop"]["exec"]["command"]
        .as_array_mut()
        .unwrap()
    {
        if arg.as_str().is_some_and(|a| a.starts_with("--timeout=")) {
            *arg = "--timeout=7s".into();
        }
    }
    container(&mut spec, "test-tcp-svc")["env"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "GW_STUBBORN", "value": "1"}));
    cluster.apply(&workload(
        "original-tcp",
        "test-tcp-svc",
        spec,
        1,
        namespace,
    ));
    let mut pods = ready_batch(cluster, namespace, "test-tcp-svc", 1);
    let pod = pods[0].name.clone();
    let mut m = Measured::new();
    let since = senders(cluster).len();
    let started = std::time::Instant::now();
    terminate(cluster, namespace, &mut pods, false, false, &mut m);
    let gone = started.elapsed();
    m.delivered += callbacks(cluster, &[pod.as_str()], since);
    m.sent += 1;
    let f = &pods[0];
    let events: Vec<_> = cluster
        .events(namespace)
        .into_iter()
        .filter(|e| e.pod == pod && ["Killing", "FailedPreStopHook"].contains(&e.reason.as_str()))
        .collect();
    let mut failures = Vec::new();
    let hook_failed = events
        .iter()
        .any(|e| e.reason == "FailedPreStopHook" && e.on.contains(proxy_name()));
    let killing = events.iter().any(|e| e.reason == "Killing");
    if !hook_failed || !killing {
        failures.push(format!(
            "{name}: the kubelet's events lack FailedPreStopHook on istio-proxy or Killing: {events:?}"
        ));
    }
    if f.proxy.at("deadline passed").is_none() {
        failures.push(format!(
            "{name}: the hook did not say it ran out of time: {:?}",
            f.proxy.seen
        ));
    }
    if f.app.at("GW_APP exit").is_some() {
        failures.push(format!(
            "{name}: the app exited by itself: {:?}",
            f.app.seen
        ));
    }
    println!(
        "{name}: deleted to gone in {:.1} s; the kubelet's events: {:?}",
        gone.as_secs_f64(),
        events
            .iter()
            .map(|e| format!("{} {}", e.reason, e.on))
            .collect::<Vec<_>>()
    );
    let _ = cluster.run(&["delete", "namespace", namespace, "--wait=false"]);
    (m.row(name), failures)
}
