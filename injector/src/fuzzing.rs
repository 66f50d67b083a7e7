//! Entry points for fuzzing: the `cargo fuzz` targets in `injector/fuzz/` and
//! the bounded property run in `injector/tests/fuzz.rs` call these with
//! arbitrary bytes. Each returns normally for any input, or panics with what
//! it found. The invariant: a clear error (with a position and a message), or
//! an output the check of [`crate::verify`] proved — never an internal error,
//! which would mean the edit engine wrote something it did not plan.

use crate::plan::{shell_loop, Options};
use crate::{config, stream, yaml};

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// The span-keeping YAML reader: every document, or an error with a place.
pub fn yaml_reader(data: &[u8]) {
    let Some(src) = text(data) else { return };
    for doc in yaml::Documents::new(&yaml::tolerant(src)) {
        match doc {
            Ok(d) => {
                if let Some(root) = d.root {
                    assert!(root.start <= root.end && root.end <= src.len());
                }
            }
            Err(e) => {
                assert!(e.pos.line >= 1 && !e.message.is_empty(), "{e:?}");
                break;
            }
        }
    }
}

/// The config parser: a config, or an error with a place.
pub fn config(data: &[u8]) {
    let Some(src) = text(data) else { return };
    if let Err(e) = config::parse(src) {
        assert!(e.pos.line >= 1 && !e.message.is_empty(), "{e:?}");
    }
}

/// The shell-loop recogniser: what it recognises, the binary accepts.
pub fn shell_loop(data: &[u8]) {
    let Some(script) = text(data) else { return };
    let argv = vec!["/bin/sh".to_string(), "-c".to_string(), script.to_string()];
    if let Some(wait) = shell_loop::recognise(&argv) {
        let line = match &wait.what {
            config::WaitFor::Tcp(ports) => format!("tcp: {}", ports[0]),
            config::WaitFor::Http { url, .. } => {
                format!("http: {}", crate::yaml::emit::quoted(url))
            }
            other => panic!("a shell loop became {other:?}"),
        };
        // A recognised loop written as a typed value must be a valid config.
        let cfg = format!("deployment:\n  x:\n    c: {{{line}}}\n");
        config::parse(&cfg).unwrap_or_else(|e| panic!("{script:?} → {cfg:?}: {e:?}"));
    }
}

/// A config that hooks every workload's `istio-proxy` and `app` containers,
/// with every kind of value, for the whole rewrite.
pub const REWRITE_CONFIG: &str = "\
graceful-wait:
  native-sidecars: wait
deployment:
  \"*\":
    istio-proxy: {tcp: 15090}
    app: {wrap: {done-file: /graceful-wait-done/app.done}}
statefulset:
  \"*\":
    istio-proxy: {process: {exclude-uid: 1337}}
daemonset:
  \"*\":
    istio-proxy: {http: localhost:15021/healthz/ready}
    app: {callback: \"https://h/done\"}
job:
  \"*\":
    istio-proxy: [\"/bin/sh\", \"-c\", \"while nc -z localhost 9000; do sleep 1; done\"]
cronjob:
  \"*\":
    istio-proxy: {file: /graceful-wait-done/app.done}
pod:
  \"*\":
    istio-proxy: {connections: 8080}
replicaset:
  \"*\":
    istio-proxy: {tcp: [1, 2]}
";

/// The whole rewrite: a proved output (which a second run leaves as it
/// is), or a clear error that is not an internal one.
pub fn rewrite(data: &[u8]) {
    let Some(src) = text(data) else { return };
    let config = config::parse(REWRITE_CONFIG).expect("the fuzz config parses");
    match stream::inject(src, &config, &Options::default()) {
        Ok(out) => {
            let again = stream::inject(&out.text, &config, &Options::default())
                .unwrap_or_else(|e| panic!("the output does not go through again: {e:?}"));
            assert_eq!(again.text, out.text, "a second run changed the output");
        }
        Err(e) => {
            assert!(
                e.kind != crate::error::Kind::Internal,
                "internal error on {src:?}: {e:?}"
            );
            assert!(
                e.pos.is_some_and(|p| p.line >= 1) && !e.message.is_empty(),
                "{e:?}"
            );
        }
    }
}
