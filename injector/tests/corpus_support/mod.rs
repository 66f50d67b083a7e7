//! The corpus's workloads as Istio's webhook (and ours) sees them — Pods —
//! and istiod's merges, done offline with kubectl.

use serde_json::{json, Value};
use std::{fs, path::PathBuf, process::Command};

/// A workload's pod, as an admission webhook sees it: the template's
/// metadata and spec as a Pod (Istio injects Pods, whatever created them).
pub fn pod_of(object: &Value) -> Option<Value> {
    let template = match object["kind"].as_str()? {
        "Pod" => object.clone(),
        "CronJob" => object["spec"]["jobTemplate"]["spec"]["template"].clone(),
        _ => object["spec"]["template"].clone(),
    };
    let spec = template.get("spec")?.clone();
    let mut metadata = template.get("metadata").cloned().unwrap_or(json!({}));
    if metadata.get("name").is_none() {
        metadata["name"] = object["metadata"]["name"].clone();
    }
    Some(json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}))
}

/// The objects of every file in ../shared/corpus/`folder` (a List's items
/// too), with their file name; None when the corpus is absent.
pub fn corpus_objects(folder: &str) -> Option<Vec<(String, Value)>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus")
        .join(folder);
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            (name.ends_with(".injected") || name.ends_with(".yaml")) && !name.ends_with(".iop.yaml")
        })
        .collect();
    files.sort();
    let mut objects = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&file).unwrap();
        let Ok(docs) = serde_saphyr::from_multiple::<Value>(&text) else {
            continue;
        };
        for doc in docs {
            if doc["kind"] == "List" {
                for item in doc["items"].as_array().into_iter().flatten() {
                    objects.push((name.clone(), item.clone()));
                }
            } else if doc.is_object() {
                objects.push((name.clone(), doc));
            }
        }
    }
    Some(objects)
}

/// The proxy's list (`containers` or `initContainers`) and the proxy.
pub fn proxy(pod: &Value) -> Option<(&'static str, &Value)> {
    ["containers", "initContainers"]
        .into_iter()
        .find_map(|list| {
            pod["spec"][list]
                .as_array()?
                .iter()
                .find(|c| c["name"] == "istio-proxy")
                .map(|c| (list, c))
        })
}

/// A container's preStop command (empty when it has none).
pub fn pre_stop(container: &Value) -> Vec<String> {
    container["lifecycle"]["preStop"]["exec"]["command"]
        .as_array()
        .map(|a| a.iter().map(|w| w.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// `kubectl patch --local --type strategic`: how istiod merges a template
/// or a stub onto a pod (the same library). None without kubectl.
pub fn strategic_merge(pod: &Value, patch: &Value) -> Option<Value> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pod.json");
    fs::write(&file, pod.to_string()).unwrap();
    let out = Command::new("kubectl")
        .args([
            "patch",
            "--local",
            "--type",
            "strategic",
            "-o",
            "json",
            "-f",
        ])
        .arg(&file)
        .arg("-p")
        .arg(patch.to_string())
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "kubectl patch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// What istiod makes of a pod that holds graceful-inject's stub: its own
/// injection (`injected`, the corpus output) with the stub merged onto the
/// proxy wherever the proxy is, and the pod's other additions (the
/// installer, the volume) kept. None without kubectl.
pub fn merged_by_istio(injected: &Value, stubbed: &Value) -> Option<Value> {
    let (list, _) = proxy(injected)?;
    let (_, stub) = proxy(stubbed)?;
    let mut stub = stub.clone();
    stub.as_object_mut().unwrap().remove("image");
    let ours = |key: &str, name: &str| -> Vec<Value> {
        stubbed["spec"][key]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["name"] == name)
            .cloned()
            .collect()
    };
    let mut patch = json!({"spec": {
        "initContainers": ours("initContainers", "graceful-wait-install"),
        "volumes": ours("volumes", "graceful-wait"),
    }});
    if list == "initContainers" {
        patch["spec"]["initContainers"]
            .as_array_mut()
            .unwrap()
            .push(stub);
    } else {
        patch["spec"]["containers"] = json!([stub]);
    }
    strategic_merge(injected, &patch)
}
