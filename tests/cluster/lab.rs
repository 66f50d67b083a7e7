//! The lab's pieces in the cluster, shared by the tests that terminate
//! pods there: the images (this test binary as app, proxy and external
//! service; graceful-wait as the installer), the external service that
//! counts callbacks, and pod specs made to run on the node.

use super::Cluster;
use crate::{scenarios::*, support::bin};
use serde_json::{json, Value};
use std::path::Path;

/// The namespace of the external service that counts callbacks.
pub const RECEIVER_NS: &str = "gw-receiver";
/// The images every scenario uses, imported into the node.
pub fn images(cluster: &Cluster) {
    let init = init_context(Path::new(bin()));
    cluster.image(
        "graceful-wait",
        init.path(),
        &repo().join("docker/Dockerfile"),
        Some("prebuilt"),
    );
    let (ctx, file) = lab_context();
    cluster.image("lab", ctx.path(), &file, Some("lab"));
    cluster.image("lab-shell", ctx.path(), &file, Some("lab-shell"));
}

/// The external service, a pod on the cluster's network; its address.
pub fn start_receiver(cluster: &Cluster) -> String {
    cluster.namespace(RECEIVER_NS, "restricted");
    let mut c = json!({
        "name": "receiver", "image": LAB_IMAGE, "imagePullPolicy": "Never",
        "command": role_command(),
        "env": [{"name": "GW_ROLE", "value": "external"}],
        "securityContext": restricted(65534),
    });
    c["securityContext"]["runAsGroup"] = 65534.into();
    cluster.apply(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "receiver", "namespace": RECEIVER_NS},
        "spec": {"containers": [c], "terminationGracePeriodSeconds": 1},
    }));
    cluster.until("the receiver's pod runs", || {
        !cluster.live_pods(RECEIVER_NS).is_empty()
    });
    cluster
        .follow(RECEIVER_NS, "receiver", "receiver")
        .expect("GW_EXT ready");
    let pod = cluster.json(&["get", "pod", "receiver", "-n", RECEIVER_NS]);
    let ip = pod["status"]["podIP"].as_str().unwrap();
    format!("{ip}:8080")
}

/// The senders of the callbacks the external service has received so far,
/// in order: the app and graceful-wait name their pod in the path
/// (`/callback/<pod>`).
pub fn senders(cluster: &Cluster) -> Vec<String> {
    cluster
        .ok(&["logs", "receiver", "-n", RECEIVER_NS])
        .lines()
        .filter_map(|l| l.strip_prefix("GW_FROM /callback/"))
        .map(|from| from.trim().to_string())
        .collect()
}

/// The callbacks from `pods` among those received after the first `since`
/// (a StatefulSet's replacement has its predecessor's name).
pub fn callbacks(cluster: &Cluster, pods: &[&str], since: usize) -> usize {
    senders(cluster)
        .iter()
        .skip(since)
        .filter(|from| pods.contains(&from.as_str()))
        .count()
}

/// A pod spec as the kubelet runs it here: local images never pulled, and
/// the restart policy a controller requires.
pub fn on_node(mut spec: Value, restart: &str) -> Value {
    spec["restartPolicy"] = restart.into();
    for list in ["containers", "initContainers"] {
        for c in spec[list].as_array_mut().into_iter().flatten() {
            c["imagePullPolicy"] = "Never".into();
            // The pod's own name, as the downward API gives it.
            for e in c["env"].as_array_mut().into_iter().flatten() {
                if e["name"] == "POD_NAME" {
                    *e = json!({"name": "POD_NAME",
                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}});
                }
            }
        }
    }
    spec
}
