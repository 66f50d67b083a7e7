//! The 120 real `istioctl kube-inject` outputs in ../shared/corpus all go
//! through, with a config that puts a wait on `istio-proxy` in every workload
//! (native sidecars waited on, skipped, and decided by their hook — the
//! corpus's `proxyv2:latest` tells no version, so `auto` waits): exit 0,
//! the output parses, only lifecycle/volumes/volumeMounts/initContainers
//! differ from the input, and a second run changes nothing. Read from
//! ../shared, never copied here; SKIPPED when absent.

#[path = "../../tests/support/skip.rs"]
mod skip;

use graceful_inject::{
    config,
    plan::Options,
    stream::inject,
    yaml::{for_each_document, Kind, Node},
};
use std::{fs, path::PathBuf};

fn corpus() -> Option<Vec<PathBuf>> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/istio-kube-inject");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .ok()?
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "injected"))
        .collect();
    files.sort();
    Some(files)
}

const KINDS: &[&str] = &[
    "deployment",
    "statefulset",
    "daemonset",
    "replicaset",
    "replicationcontroller",
    "job",
    "cronjob",
    "pod",
    "deploymentconfig",
];

fn config(native: &str) -> config::Config {
    let mut text = format!("graceful-wait:\n  native-sidecars: {native}\n");
    for k in KINDS {
        text.push_str(&format!(
            "{k}:\n  \"*\":\n    istio-proxy: {{tcp: 15090}}\n"
        ));
    }
    config::parse(&text).unwrap()
}

const CHANGED_KEYS: &[&str] = &["lifecycle", "volumes", "volumeMounts", "initContainers"];

/// A canonical text of the document tree without the keys the injector may
/// change: equal for input and output, or something else was touched.
fn shape(node: &Node, out: &mut String) {
    match &node.kind {
        Kind::Map(entries) => {
            out.push('{');
            for (k, v) in entries {
                if k.as_str().is_some_and(|k| CHANGED_KEYS.contains(&k)) {
                    continue;
                }
                shape(k, out);
                out.push(':');
                shape(v, out);
                out.push(',');
            }
            out.push('}');
        }
        Kind::Seq(items) => {
            out.push('[');
            for i in items {
                shape(i, out);
                out.push(',');
            }
            out.push(']');
        }
        Kind::Scalar(s, _) => out.push_str(&format!("{s:?}")),
        Kind::Alias(_) => out.push('*'),
    }
}

fn shapes(text: &str) -> Vec<String> {
    let mut all = Vec::new();
    for_each_document(text, |d| {
        let mut s = String::new();
        if let Some(root) = d.root {
            shape(&root, &mut s);
        }
        all.push(s);
        Ok(())
    })
    .expect("output parses");
    all
}

#[test]
fn every_corpus_file_goes_through() {
    let Some(files) = corpus() else {
        skip::skipped(
            "every_corpus_file_goes_through",
            "../shared/corpus/istio-kube-inject is absent",
        );
        return;
    };
    assert_eq!(files.len(), 120, "the corpus should hold 120 files");
    let options = Options {
        keep_commands: false,
        ..Options::default()
    };
    let mut changed = 0;
    for native in ["wait", "skip", "auto"] {
        let config = config(native);
        for file in &files {
            let name = file.file_name().unwrap().to_string_lossy();
            let input = fs::read_to_string(file).unwrap();
            let once = inject(&input, &config, &options).unwrap_or_else(|e| panic!("{name}:{e}"));
            assert_eq!(
                shapes(&input),
                shapes(&once.text),
                "{name} ({native}): more than hooks, volumes, mounts and init containers changed"
            );
            let twice = inject(&once.text, &config, &options).unwrap();
            assert_eq!(
                once.text, twice.text,
                "{name} ({native}): a second run changed the output"
            );
            if native == "wait" && once.text != input {
                changed += 1;
            }
        }
    }
    // Every file has an istio-proxy except the few without a sidecar.
    assert!(
        changed >= 110,
        "only {changed} files were changed with native-sidecars: wait"
    );
}

/// Writes every output for the schema check (.ci/run validates them with
/// kubernetes-validate --strict) when GW_CORPUS_OUT names a folder.
#[test]
fn write_outputs_for_schema_validation() {
    let (Some(files), Ok(out)) = (corpus(), std::env::var("GW_CORPUS_OUT")) else {
        return;
    };
    fs::create_dir_all(&out).unwrap();
    let config = config("wait");
    for file in &files {
        let input = fs::read_to_string(file).unwrap();
        let result = inject(
            &input,
            &config,
            &Options {
                keep_commands: false,
                ..Options::default()
            },
        )
        .unwrap();
        fs::write(
            PathBuf::from(&out).join(file.file_name().unwrap()),
            result.text,
        )
        .unwrap();
    }
}
