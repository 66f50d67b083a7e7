//! The injector's check of its own output (`verify.rs`) catches every kind of
//! damage an edit could do. The edit step is corrupted on purpose through the
//! test-only `Options::sabotage` hook; each corruption must end in an
//! internal error that names where, and no text.

use graceful_inject::{config, inject::inject, patch::Options};

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
    let config = config::parse(CONFIG).unwrap();
    let options = Options {
        sabotage,
        ..Options::default()
    };
    inject(MANIFEST, &config, &options)
        .map(|i| i.text)
        .map_err(|e| format!("{}: {}", e.pos, e.message))
}

#[test]
fn an_undamaged_edit_passes() {
    let out = run(None).unwrap();
    assert!(out.contains("--port=20000"), "{out}");
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
            "more than the input's 2 documents",
        ),
        (
            "a document lost",
            |t| t[t.find("---\n").unwrap() + 4..].to_string(),
            "document",
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
    for (what, sabotage, names) in cases {
        let err = run(Some(*sabotage)).expect_err(what);
        assert!(
            err.contains("internal error") && err.contains("nothing was written"),
            "{what}: {err}"
        );
        assert!(
            err.contains(names),
            "{what}: the message should name {names:?}: {err}"
        );
    }
}
