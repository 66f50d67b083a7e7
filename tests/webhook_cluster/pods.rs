//! The pods the webhook is shown: the app-and-proxy workload as a team
//! writes it, and what the webhook wrote into a pod.

use super::*;

/// The app-and-proxy pod as a team writes it: golden case original-tcp's
/// workload before any injection, no hooks, made playable.
pub fn plain(upstream: &str) -> Value {
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
pub fn admitted_only(mut spec: Value) -> Value {
    spec["nodeSelector"] = json!({ NOWHERE: "true" });
    spec
}

pub fn deployment(ns: &str, name: &str, spec: Value, replicas: usize, pod_meta: Value) -> Value {
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

pub fn bare(ns: &str, name: &str, spec: Value, meta: Value) -> Value {
    let mut meta = meta;
    meta["name"] = name.into();
    meta["namespace"] = ns.into();
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
}

/// The named container's preStop command, joined, where it is
/// graceful-wait's.
pub fn hook(pod: &Value, name: &str) -> Option<String> {
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
pub fn installed(pod: &Value) -> bool {
    let named = |list: &Value, name: &str| {
        list.as_array()
            .is_some_and(|l| l.iter().any(|x| x["name"] == name))
    };
    named(&pod["spec"]["initContainers"], "graceful-wait-install")
        && named(&pod["spec"]["volumes"], "graceful-wait")
}

/// A bare pod that opts in by annotation (`wait: auto`): a pod the webhook
/// hooks whatever its config names, created without a controller.
pub fn annotated_pod(ns: &str, name: &str, spec: Value) -> Value {
    bare(
        ns,
        name,
        spec,
        json!({"annotations": {"graceful-wait.io/wait": "auto"}}),
    )
}
