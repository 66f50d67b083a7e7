//! Re-running after a config change converges: for every pair of configs
//! (A, B) from a set that changes each setting and the waits, running A and
//! then B on the output gives exactly what B gives on the original.
//!
//! Within a family the same containers are hooked. Taking a hook away (a
//! container A wrapped that B does not mention) is not covered: the injector
//! does not remove what it wrote (see docs/injector.md), and
//! `shareProcessNamespace: true`, once set for a process wait, stays.

use graceful_inject::{config, plan::Options, stream::inject};

const MANIFEST: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
spec:
  selector:
    matchLabels: {app: shop}
  template:
    metadata:
      labels: {app: shop}
    spec:
      initContainers:
      - name: istio-init
        image: istio/proxyv2:1.24.0
      containers:
      - name: app
        image: example/app:1.0
        command: [/app/server, --port, \"8080\"]
        volumeMounts:
        - name: data
          mountPath: /data
      - name: istio-proxy
        image: istio/proxyv2:1.24.0
        lifecycle:
          preStop:
            exec:
              command: [pilot-agent, request, --debug-port=15020, POST, drain]
      volumes:
      - name: data
        emptyDir: {}
";

const WAITS: &str = "\
deployment:
  shop:
    istio-proxy: {tcp: 8080}
";

/// Families of configs; each family hooks the same containers.
fn families() -> Vec<Vec<(&'static str, String)>> {
    let with = |settings: &str, waits: &str| format!("graceful-wait:\n{settings}{waits}");
    let wrap = "deployment:\n  shop:\n    istio-proxy: {file: /graceful-wait-done/app.done}\n    app: {wrap: {done-file: /graceful-wait-done/app.done}}\n";
    vec![
        vec![
            ("defaults", WAITS.to_string()),
            ("image bump", with("  image: ghcr.io/graceful-wait/graceful-wait:0.2.0\n", WAITS)),
            ("binary-dir", with("  binary-dir: /opt/gw\n", WAITS)),
            ("volume", with("  volume: gw-bin\n", WAITS)),
            ("init-container", with("  init-container: gw-install\n", WAITS)),
            ("drain-margin", with("  drain-margin: 12s\n", WAITS)),
            (
                "all settings",
                with(
                    "  image: r/gw:9\n  binary-dir: /gw\n  volume: v2\n  init-container: i2\n  drain-margin: 1s\n",
                    WAITS,
                ),
            ),
            (
                "another wait",
                "deployment:\n  shop:\n    istio-proxy: {http: localhost:8080/health, interval: 250ms}\n".into(),
            ),
        ],
        // shareProcessNamespace, once set, is the pod's: it is not taken away.
        vec![
            (
                "process wait",
                "deployment:\n  shop:\n    istio-proxy: {process: {exclude-uid: 1337}}\n".into(),
            ),
            (
                "process wait, new dir",
                with("  binary-dir: /gw\n  image: r/gw:3\n", "deployment:\n  shop:\n    istio-proxy: {process: [java], timeout: 9s}\n"),
            ),
        ],
        vec![
            ("wrap and file", wrap.to_string()),
            ("wrap, image bump", with("  image: r/gw:2\n", wrap)),
            (
                "wrap, new dir and volume",
                "graceful-wait:\n  binary-dir: /gw\n  volume: v3\ndeployment:\n  shop:\n    istio-proxy: {file: /gw-done/app.done}\n    app: {wrap: {done-file: /gw-done/app.done, on-exit: \"https://h/x\"}}\n".into(),
            ),
            (
                "wrap, other options",
                "deployment:\n  shop:\n    istio-proxy: {file: /graceful-wait-done/app.done, timeout: 9s}\n    app: {wrap: {done-file: /graceful-wait-done/app.done, on-term: \"https://h/t\", wait-ready: \"localhost:15021/healthz/ready\"}}\n".into(),
            ),
        ],
    ]
}

fn run(src: &str, config: &str) -> String {
    let config = config::parse(config).unwrap();
    inject(src, &config, &Options::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .text
}

#[test]
fn a_second_run_with_another_config_is_a_fresh_run() {
    let mut failures = Vec::new();
    let mut pairs = 0;
    for configs in families() {
        for (a_name, a) in &configs {
            let after_a = run(MANIFEST, a);
            for (b_name, b) in &configs {
                pairs += 1;
                let fresh = run(MANIFEST, b);
                let again = run(&after_a, b);
                if again != fresh {
                    failures.push(format!(
                        "{a_name} then {b_name}:\n{}",
                        similar::TextDiff::from_lines(&fresh, &again)
                            .unified_diff()
                            .header("fresh", "after A")
                    ));
                }
            }
        }
    }
    assert!(pairs >= 70, "only {pairs} pairs");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
