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
    lab::{callbacks, images, senders, start_receiver},
    play::*,
    Cluster,
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
    let all = scenarios()
        .into_iter()
        .chain(native_scenarios())
        .chain(mesh_scenarios());
    for (n, scenario) in all.enumerate() {
        if only.as_deref().is_some_and(|o| !scenario.name.contains(o)) {
            continue;
        }
        let (m, f) = play(
            &cluster,
            &format!("gw-s{n}"),
            &scenario,
            &upstream,
            &json!({}),
        );
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
        let mut pods = ready_batch(cluster, namespace, "test-tcp-svc", "istio-proxy", 3);
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
    for arg in container(&mut spec, "istio-proxy")["lifecycle"]["preStop"]["exec"]["command"]
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
    let mut pods = ready_batch(cluster, namespace, "test-tcp-svc", "istio-proxy", 1);
    let pod = pods[0].name.clone();
    let mut m = Measured::new();
    let since = senders(cluster).len();
    let started = std::time::Instant::now();
    terminate(
        cluster,
        namespace,
        "istio-proxy",
        &mut pods,
        false,
        false,
        &mut m,
    );
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
        .any(|e| e.reason == "FailedPreStopHook" && e.on.contains("istio-proxy"));
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
