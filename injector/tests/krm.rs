//! `graceful-inject krm`, the KRM function, round-tripped on ResourceLists
//! built from the corpus (each kube-inject output's objects as items, with the
//! index and path annotations kustomize and kpt add): the items come back as
//! the plain CLI rewrites the same objects, annotations and comments kept,
//! functionConfig untouched, the summary as `results`; bad input fails with a
//! message on stderr and nothing on stdout. SKIPPED without the corpus.

#[path = "../../tests/support/piped.rs"]
mod piped;
#[path = "../../tests/support/skip.rs"]
mod skip;

use serde_json::{json, Value};
use std::{
    path::PathBuf,
    process::{Command, Output},
};

/// A wait on istio-proxy in every workload, native sidecars included.
const CONFIG: &str = "graceful-wait:\n  native-sidecars: wait\ndeployment:\n  \"*\":\n    istio-proxy: {tcp: 15090}\nstatefulset:\n  \"*\":\n    istio-proxy: {tcp: 15090}\ndaemonset:\n  \"*\":\n    istio-proxy: {tcp: 15090}\njob:\n  \"*\":\n    istio-proxy: {tcp: 15090}\ncronjob:\n  \"*\":\n    istio-proxy: {tcp: 15090}\npod:\n  \"*\":\n    istio-proxy: {tcp: 15090}\nreplicaset:\n  \"*\":\n    istio-proxy: {tcp: 15090}\n";

fn krm(input: &str) -> Output {
    piped::with_stdin(
        Command::new(env!("CARGO_BIN_EXE_graceful-inject")).arg("krm"),
        input.as_bytes(),
    )
}

/// The plain CLI on a stream: graceful-inject - CONFIG -.
fn plain(stream: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfg.yml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let out = piped::with_stdin(
        Command::new(env!("CARGO_BIN_EXE_graceful-inject")).args([
            "-",
            cfg.to_str().unwrap(),
            "-",
            "-q",
        ]),
        stream.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn function_config() -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "graceful-inject"},
           "data": {"config": CONFIG}})
}

fn resource_list(items: Vec<Value>) -> String {
    serde_saphyr::to_string(&json!({
        "apiVersion": "config.kubernetes.io/v1",
        "kind": "ResourceList",
        "items": items,
        "functionConfig": function_config(),
    }))
    .unwrap()
}

fn without_krm_annotations(mut item: Value) -> Value {
    if let Some(a) = item
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.retain(|k, _| !k.contains("config.kubernetes.io/"));
        if a.is_empty() {
            item["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("annotations");
        }
    }
    item
}

#[test]
fn corpus_resource_lists_round_trip() {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/istio-kube-inject");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        skip::skipped(
            "corpus_resource_lists_round_trip",
            "../shared/corpus/istio-kube-inject is absent",
        );
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "injected"))
        .collect();
    files.sort();
    let mut hooked = 0;
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        let objects: Vec<Value> = serde_saphyr::from_multiple::<Value>(&text)
            .unwrap()
            .into_iter()
            .filter(|d| d.is_object())
            .collect();
        // The objects as kustomize hands them over.
        let items: Vec<Value> = objects
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let mut o = o.clone();
                let meta = o["metadata"].as_object_mut().unwrap();
                let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
                annotations["config.kubernetes.io/index"] = json!(i.to_string());
                annotations["internal.config.kubernetes.io/path"] = json!(name.clone());
                o
            })
            .collect();
        let input = resource_list(items.clone());
        let out = krm(&input);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let output: Value = serde_saphyr::from_str(std::str::from_utf8(&out.stdout).unwrap())
            .unwrap_or_else(|e| panic!("{name}: the output does not parse: {e}"));
        assert_eq!(output["kind"], "ResourceList", "{name}");
        assert_eq!(output["functionConfig"], function_config(), "{name}");
        assert!(output["results"].is_array(), "{name}: no results");
        let got = output["items"].as_array().unwrap();
        assert_eq!(got.len(), items.len(), "{name}");
        // Each item: its annotations kept, its body as the plain CLI writes it.
        let stream = serde_saphyr::to_string_multiple(&objects).unwrap();
        let expected: Vec<Value> = serde_saphyr::from_multiple::<Value>(&plain(&stream))
            .unwrap()
            .into_iter()
            .filter(|d| d.is_object())
            .collect();
        for (i, (got, want)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(
                got.pointer("/metadata/annotations/config.kubernetes.io~1index"),
                Some(&json!(i.to_string())),
                "{name}: item {i}'s index annotation"
            );
            assert_eq!(
                got.pointer("/metadata/annotations/internal.config.kubernetes.io~1path"),
                Some(&json!(name.clone())),
                "{name}: item {i}'s path annotation"
            );
            assert_eq!(
                &without_krm_annotations(got.clone()),
                &without_krm_annotations(want.clone()),
                "{name}: item {i}"
            );
            hooked += usize::from(got.to_string().contains("graceful-wait-install"));
        }
    }
    eprintln!("krm round trip: {hooked} items hooked");
    assert!(hooked > 100, "only {hooked} items got hooks");
}

#[test]
fn comments_and_foreign_annotations_are_kept() {
    let input = "\
# the list, as kustomize sends it
apiVersion: config.kubernetes.io/v1
kind: ResourceList
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: api # the API
    annotations:
      config.kubernetes.io/index: '0'
      internal.config.kubernetes.io/path: 'api.yaml'
  spec:
    selector: {matchLabels: {app: api}}
    template:
      metadata: {labels: {app: api}}
      spec:
        containers:
        - name: api   # the app
          image: api:1
        - name: istio-proxy
          image: proxy:1
functionConfig:
  apiVersion: v1
  kind: ConfigMap
  metadata: {name: graceful-inject}
  data:
    config: |
      deployment:
        api:
          istio-proxy: {tcp: 8080}
";
    let out = krm(input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for kept in [
        "# the list, as kustomize sends it",
        "name: api # the API",
        "- name: api   # the app",
        "      config.kubernetes.io/index: '0'",
        "      internal.config.kubernetes.io/path: 'api.yaml'",
        "          istio-proxy: {tcp: 8080}",
    ] {
        assert!(text.contains(kept), "lost {kept:?}:\n{text}");
    }
    assert!(text.contains("--port=8080"), "{text}");
    assert!(
        text.contains("results:\n- message: \"graceful-inject: changed Deployment/api"),
        "{text}"
    );
}

#[test]
fn bad_input_fails_with_stderr_only() {
    let no_config = "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: []\n";
    let bad_config =
        resource_list(vec![]).replace("istio-proxy: {tcp: 15090}", "istio-proxy: {tcp: nope}");
    for (input, want) in [
        (no_config.to_string(), "no functionConfig"),
        (bad_config, "functionConfig data.config:"),
        (
            "apiVersion: v1\nkind: List\nitems: []\n".to_string(),
            "not a ResourceList",
        ),
        ("kind: ResourceList\nitems: [\n".to_string(), "<stdin>:"),
    ] {
        let out = krm(&input);
        assert!(!out.status.success(), "{input}");
        assert!(out.stdout.is_empty(), "{input}: stdout must stay empty");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{input}: {err}");
    }
}

/// YAML is a superset of JSON, so a conforming function takes JSON too: the
/// items are rewritten in their flow style and the results added as JSON.
#[test]
fn a_json_resource_list_comes_back_as_valid_json() {
    let input = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/test/original-tcp/input.yaml"),
    )
    .unwrap();
    let object: Value = serde_saphyr::from_str(&input).unwrap();
    let list = json!({
        "apiVersion": "config.kubernetes.io/v1",
        "kind": "ResourceList",
        "items": [object],
        "functionConfig": function_config(),
    });
    for text in [
        list.to_string(),
        serde_json::to_string_pretty(&list).unwrap(),
    ] {
        let out = krm(&text);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let output: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON any more: {e}\n{}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        assert_eq!(output["results"][0]["severity"], "info", "{output}");
        let spec = &output["items"][0]["spec"]["template"]["spec"];
        assert_eq!(
            spec["initContainers"][0]["name"], "graceful-wait-install",
            "{output}"
        );
        assert_eq!(output["functionConfig"], function_config());
    }
}
