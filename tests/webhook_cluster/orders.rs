//! Every order with a mesh's injector (`tests/cluster/mesh.rs`).

use super::*;

/// A mesh's injector before and after ours (by configuration name), with
/// ours as the chart sets it (IfNeeded) and with Never.
pub fn in_every_order(cluster: &Cluster, upstream: &str, report: &mut Report) {
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
