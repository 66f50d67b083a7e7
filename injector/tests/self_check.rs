//! The injector's check of its own output (`verify.rs`) catches every kind of
//! damage an edit could do. The edit step is corrupted on purpose through the
//! test-only `stream::Faults::sabotage` hook; each corruption must end in an
//! internal error that names where, and no text.
//!
//! Every path is damaged: document by document, proved by reading again only
//! the lines around the edits or all of the document (the sabotage sees the
//! edited document's region, the only text edits can touch — the rest is
//! copied as it is), and the whole-stream path (the sabotage sees the whole
//! output, so damage anywhere is tried).

use graceful_inject::{
    config,
    plan::Options,
    stream::{inject, inject_with, Faults},
};

const MANIFEST: &str = "\
# keep me: a comment line
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: fast
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
spec:
  template:
    spec:
      containers:
      - name: app
        image: example/app:1.0
        ports:
        - containerPort: 20000
      - name: istio-proxy
        image: istio/proxyv2:1.24.0
        # the proxy's own comment
        args: [proxy, sidecar]
";

const CONFIG: &str = "deployment:\n  shop:\n    istio-proxy: {tcp: 20000}\n";

fn run(sabotage: Option<fn(&str) -> String>) -> Result<String, String> {
    run_on(sabotage, Path::Windows)
}

/// How the output is proved.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Path {
    /// Document by document, reading again the lines around the edits.
    Windows,
    /// Document by document, reading all of each again.
    ReadAll,
    /// The whole stream at once.
    WholeStream,
}

fn run_on(sabotage: Option<fn(&str) -> String>, path: Path) -> Result<String, String> {
    let config = config::parse(CONFIG).unwrap();
    let faults = Faults {
        sabotage,
        whole_stream: path == Path::WholeStream,
        read_all: path == Path::ReadAll,
    };
    inject_with(MANIFEST, &config, &Options::default(), faults)
        .map(|i| i.text)
        .map_err(|e| e.to_string())
}

#[test]
fn an_undamaged_edit_passes() {
    let out = run(None).unwrap();
    assert!(out.contains("--port=20000"), "{out}");
    for path in [Path::ReadAll, Path::WholeStream] {
        assert_eq!(run_on(None, path).unwrap(), out, "{path:?} writes the same");
    }
}

/// What the damage is, how it is done, and what the error must name.
type Sabotage = fn(&str) -> String;

#[test]
fn every_kind_of_damage_is_caught() {
    let cases: &[(&str, Sabotage, &str)] = &[
        (
            "a line lost",
            |t| t.replacen("        image: example/app:1.0\n", "", 1),
            "document 2 (Deployment/shop)",
        ),
        (
            "a value changed outside the plan",
            |t| t.replacen("containerPort: 20000", "containerPort: 20001", 1),
            "containerPort",
        ),
        (
            "a planned value written wrong",
            |t| t.replacen("--port=20000", "--port=20001", 1),
            "preStop",
        ),
        (
            "a boolean written as a string",
            |t| t.replacen("readOnly: true", "readOnly: \"true\"", 1),
            "readOnly",
        ),
        (
            "the hook in the wrong container",
            |t| {
                let hook_start = t.find("        lifecycle:").unwrap();
                let hook_end = t[hook_start..].find("        volumeMounts:").unwrap() + hook_start;
                let hook = t[hook_start..hook_end].to_string();
                let without = format!("{}{}", &t[..hook_start], &t[hook_end..]);
                without.replacen("        ports:\n", &format!("{hook}        ports:\n"), 1)
            },
            "containers[0]",
        ),
        (
            "a non-workload object touched",
            |t| t.replacen("mode: fast", "mode: slow", 1),
            "document 1",
        ),
        (
            "a comment line lost",
            |t| t.replacen("        # the proxy's own comment\n", "", 1),
            "comment line",
        ),
        (
            "a CRLF in an LF file",
            |t| t.replacen("\n", "\r\n", 1),
            "CRLF",
        ),
        (
            "a document added",
            |t| format!("{t}---\nkind: Extra\n"),
            "documents",
        ),
        (
            "not YAML any more",
            |t| t.replacen("  template:", "  template: [", 1),
            "does not parse",
        ),
        (
            "the volume missing",
            |t| {
                let at = t.find("      volumes:").unwrap();
                t[..at].to_string()
            },
            "volumes",
        ),
    ];
    let whole_stream_only: &[(&str, Sabotage, &str)] = &[(
        "a document lost",
        |t| t[t.find("---\n").unwrap() + 4..].to_string(),
        "document",
    )];
    let by_document = cases
        .iter()
        .filter(|c| c.0 != "a non-workload object touched");
    let by_path = by_document
        .clone()
        .map(|c| (c, Path::Windows))
        .chain(by_document.map(|c| (c, Path::ReadAll)))
        .chain(
            cases
                .iter()
                .chain(whole_stream_only)
                .map(|c| (c, Path::WholeStream)),
        );
    for ((what, sabotage, names), path) in by_path {
        let err = run_on(Some(*sabotage), path).expect_err(what);
        assert!(
            err.contains("internal error") && err.contains("nothing was written"),
            "{what}: {err}"
        );
        assert!(
            err.contains(names),
            "{what} ({path:?}): the message should name {names:?}: {err}"
        );
    }
}

/// Every kind of command the injector writes — each typed value with each
/// option, a chained hook, a wrapped entrypoint with every option — parses
/// with graceful-wait's own command-line definition.
#[test]
fn every_command_it_writes_is_accepted_by_the_binary() {
    use graceful_inject::yaml::{for_each_document, Node};
    let manifest = "\
apiVersion: v1
kind: List
items:
"
    .to_string()
        + &(1..=9)
            .map(|i| {
                format!(
                    "- apiVersion: v1\n  kind: Pod\n  metadata: {{name: p{i}}}\n  spec:\n    containers:\n    - name: app\n      image: a\n      command: [/app, --flag]\n      lifecycle: {{preStop: {{exec: {{command: [/bin/drain, now]}}}}}}\n    - name: proxy\n      image: p\n"
                )
            })
            .collect::<String>();
    let config = "\
graceful-wait:
  binary-dir: /opt/gw/
  drain-margin: 1500ms
pod:
  p1: {proxy: {tcp: [8080, 9090], timeout: 20s, interval: 250ms}, app: {callback: [\"https://h/$POD_NAME\", \"http://127.0.0.1:9/x\"], method: PUT, data: '{\"a\": 1}', timeout: 5s}}
  p2: {proxy: {http: \"http://[::1]:3000/health\", down-status: \"500-599,404\", timeout: 500us}}
  p3: {proxy: {connections: 8080, interval: 1ms}, app: {tcp: 1}}
  p4: {proxy: {file: /opt/gw-done/app.done}, app: {wrap: {done-file: /opt/gw-done/app.done, on-term: [\"https://a/t\"], on-exit: [\"https://a/e\", \"http://b/e\"], wait-ready: \"localhost:15021/healthz/ready\", quit-proxy: \"localhost:15020/quitquitquit\"}}}
  p5: {proxy: {process: {name: [java, envoy-sidecar-helper], exclude-uid: [1337, 0]}}}
  p6: {proxy: {process: java}}
  p7: {proxy: [\"/bin/sh\", \"-c\", \"while true; do curl -sf localhost:3000/ || break; sleep 1; done\"]}
  p8: {app: {wrap: {}}}
  p9: {proxy: {http: localhost:1/}}
";
    let config = config::parse(config).unwrap();
    let out = inject(&manifest, &config, &Options::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .text;
    fn commands(node: &Node, out: &mut Vec<Vec<String>>) {
        for (k, v) in node.as_map().unwrap_or_default() {
            if k.as_str() == Some("command") {
                if let Some(words) = v.as_seq() {
                    out.push(
                        words
                            .iter()
                            .map(|w| w.as_str().unwrap().to_string())
                            .collect(),
                    );
                }
            }
            commands(v, out);
        }
        for i in node.as_seq().unwrap_or_default() {
            commands(i, out);
        }
    }
    let mut found = Vec::new();
    for_each_document(&out, |d| {
        commands(&d.root.unwrap(), &mut found);
        Ok(())
    })
    .unwrap();
    let ours: Vec<_> = found
        .into_iter()
        .filter(|c| c[0] == "/opt/gw/graceful-wait")
        .collect();
    assert!(ours.len() >= 12, "too few commands written: {ours:?}");
    for argv in &ours {
        graceful_wait_shared::cli::Cli::try_parse_args_without_env(argv)
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    }
}

/// Found by fuzzing: a sequence whose first item starts on the line after its
/// dash (and is itself a sequence) once had the new mount written at the
/// inner sequence's column.
#[test]
fn an_item_that_starts_on_the_next_line_keeps_its_list_s_column() {
    let manifest = "\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: istio-proxy
    image: p
    volumeMounts:
    -
      - odd
";
    let config = config::parse("pod:\n  p:\n    istio-proxy: {tcp: 1}\n").unwrap();
    let out = inject(manifest, &config, &Options::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .text;
    assert!(
        out.contains("    -\n      - odd\n    - name: graceful-wait\n"),
        "{out}"
    );
}

/// Found by fuzzing: a `volumeMounts` that is a mapping (with a comment line
/// in it) was replaced, comment and all. What is not a list is not replaced:
/// the container is skipped, and the summary says why.
#[test]
fn a_value_that_is_not_a_list_is_not_replaced() {
    let manifest = "\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: istio-proxy
    image: p
    volumeMounts:
#     - mountPath: /data
      name: data
";
    let config = config::parse("pod:\n  p:\n    istio-proxy: {tcp: 1}\n").unwrap();
    let out = inject(manifest, &config, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.text, manifest);
    assert!(
        graceful_inject::front::report::summary(&out.outcomes).contains("neither a list nor empty"),
        "{}",
        graceful_inject::front::report::summary(&out.outcomes)
    );
}
