//! Terminating the lab's pods in the cluster, shared by the tests that do:
//! pods applied in batches (a workload's replicas, or bare pods as a mesh's
//! injector or the admission webhook hands them to the API server), each
//! followed from its containers' logs, deleted with `kubectl delete pod`,
//! and measured as the podman suite measures (`scenarios::Measured`).

use super::{
    lab::{callbacks, on_node, senders},
    Cluster, Lines,
};
use crate::scenarios::*;
use serde_json::{json, Value};
use std::time::SystemTime;

/// Pods terminated at once: a Deployment's replicas, deleted together
/// (`GW_CLUSTER_BATCH`, 3 by default, as a rollout replaces a few at a
/// time). More at once saves time but measures a loaded kubelet: at ten on
/// two cores it stops a proxy several hundred milliseconds after its hook
/// returns, late enough that even a hook that fails at once seems to work.
pub fn batch_size() -> usize {
    std::env::var("GW_CLUSTER_BATCH")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3)
}

/// The golden case's workload `name`, its pod template's spec replaced by
/// `spec`, `replicas` of it, in `namespace`.
pub fn workload(case: &str, name: &str, spec: Value, replicas: usize, namespace: &str) -> Value {
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

/// The proxy's container in a spec (a main container or a native sidecar):
/// the one that plays the proxy stand-in.
pub fn proxy_name(spec: &Value) -> String {
    crate::support::CONTAINER_LISTS
        .iter()
        .flat_map(|list| spec[*list].as_array().into_iter().flatten())
        .find(|c| {
            c["env"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["name"] == "GW_ROLE" && e["value"] == "proxy")
        })
        .and_then(|c| c["name"].as_str())
        .expect("no proxy stand-in in the spec")
        .to_string()
}

/// The app container of a spec: its first main container.
pub fn app_name(spec: &Value) -> String {
    spec["containers"][0]["name"].as_str().unwrap().to_string()
}

/// One pod of a batch, followed from its start to its end.
pub struct Followed {
    pub name: String,
    /// The proxy's preStop in the live pod, as the API server admitted it.
    pub hook: Value,
    pub app: Lines,
    pub proxy: Lines,
}

/// Waits until `count` pods of `namespace` run with their app and proxy
/// ready (their own log lines); follows each.
pub fn ready_batch(
    cluster: &Cluster,
    namespace: &str,
    app: &str,
    proxy: &str,
    count: usize,
) -> Vec<Followed> {
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
            let hook = crate::support::container_in(&p["spec"], proxy)
                .map(|c| c["lifecycle"]["preStop"].clone())
                .unwrap_or_default();
            Followed {
                app: cluster.follow(namespace, &name, app),
                proxy: cluster.follow(namespace, &name, proxy),
                hook,
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
pub fn terminate(
    cluster: &Cluster,
    namespace: &str,
    proxy: &str,
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
                e.pod == f.name && e.reason == "FailedPreStopHook" && e.on.contains(proxy)
            });
            let said = !logs_copied || f.proxy.at("INFO condition met").is_some();
            // Except where the hook's chained request is the proxy's own
            // `/quitquitquit`: the proxy exits, its container ends under
            // the hook, and the kubelet reports the hook as failed. The
            // condition was met first (the proxy's copy of the log says so).
            let quit_after_wait = f.proxy.at("INFO condition met").is_some()
                && f.proxy.at("GW_PROXY quitquitquit").is_some();
            let failed = failed && !quit_after_wait;
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
pub fn play(
    cluster: &Cluster,
    namespace: &str,
    scenario: &Scenario,
    upstream: &str,
    annotations: &Value,
) -> (Measured, Vec<String>) {
    cluster.namespace(namespace, "restricted");
    let spec = (scenario.spec)(upstream);
    let app = app_name(&spec);
    let proxy = proxy_name(&spec);
    // The proxy's hook is graceful-wait's, whose condition must be met (and
    // which may copy its log into the proxy's) — as written in the spec, or
    // as the admission webhook writes it into pods that ask
    // (`graceful-wait.io/wait`: its default copies the log).
    let hook =
        container(&mut spec.clone(), &proxy)["lifecycle"]["preStop"]["exec"]["command"].to_string();
    let by_webhook = annotations.get("graceful-wait.io/wait").is_some();
    let waits = by_webhook || hook.contains("graceful-wait");
    let logs_copied = by_webhook || hook.contains("--log-copy");
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
                        "metadata": {"name": format!("pod-{round}-{i}"), "namespace": namespace,
                            "annotations": annotations},
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
        let mut pods = ready_batch(cluster, namespace, &app, &proxy, now);
        let since = senders(cluster).len();
        let mut problems = Vec::new();
        for f in pods
            .iter()
            .filter(|f| by_webhook && !f.hook.to_string().contains("graceful-wait"))
        {
            problems.push(format!(
                "{}: the webhook did not hook {proxy}: {}",
                f.name, f.hook
            ));
        }
        problems.extend(terminate(
            cluster,
            namespace,
            &proxy,
            &mut pods,
            waits,
            logs_copied,
            &mut m,
        ));
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
