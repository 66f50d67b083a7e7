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
                assert!(
                    e.pos.is_some_and(|p| p.line >= 1) && !e.message.is_empty(),
                    "{e:?}"
                );
                break;
            }
        }
    }
}

/// The config parser: a config, or an error with a place.
pub fn config(data: &[u8]) {
    let Some(src) = text(data) else { return };
    if let Err(e) = config::parse(src) {
        assert!(
            e.pos.is_some_and(|p| p.line >= 1) && !e.message.is_empty(),
            "{e:?}"
        );
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

/// The stream as go-yaml v2 reads it, for the differential test against
/// go-yaml itself (`injector/tests/goyaml.rs`): a JSON line a document —
/// strings as strings, nulls as null, every other scalar (numbers,
/// booleans) as `{"typed": ""}`, aliases expanded, mapping keys as their
/// text — or `ERROR <message>` where reading stops. The same shape as the
/// Go side prints.
pub fn go_yaml_view(src: &str) -> Vec<String> {
    use crate::yaml::{Documents, Kind, Node};
    use saphyr_parser::ScalarStyle;
    use serde_json::{Map, Value};
    use std::collections::HashMap;
    fn view<'a>(node: &Node<'a>, anchors: &mut HashMap<usize, Value>) -> Value {
        let value = match &node.kind {
            Kind::Map(entries) => {
                let mut map = Map::new();
                for (k, v) in entries {
                    let key = match view(k, anchors) {
                        Value::String(s) => s,
                        Value::Null => "<nil>".into(),
                        _ => k.as_str().unwrap_or_default().to_string(),
                    };
                    let v = view(v, anchors);
                    map.insert(key, v);
                }
                Value::Object(map)
            }
            Kind::Seq(items) => Value::Array(items.iter().map(|i| view(i, anchors)).collect()),
            Kind::Scalar(text, ScalarStyle::Plain) => go_v2_plain(text),
            Kind::Scalar(text, _) => Value::String(text.to_string()),
            Kind::Alias(id) => anchors.get(id).cloned().unwrap_or(Value::Null),
        };
        if let Some(id) = node.anchor {
            anchors.insert(id, value.clone());
        }
        value
    }
    let readable = crate::yaml::tolerant(src);
    let mut out = Vec::new();
    for doc in Documents::new(&readable) {
        match doc {
            Ok(d) => {
                let value = match &d.root {
                    Some(root) => view(root, &mut HashMap::new()),
                    None => Value::Null,
                };
                out.push(value.to_string());
            }
            Err(e) => {
                out.push(format!("ERROR {e}"));
                break;
            }
        }
    }
    out
}

/// A plain scalar as go-yaml v2 resolves it (`resolve.go`): null, a boolean
/// or number (`{"typed": ""}`), or a string.
fn go_v2_plain(text: &str) -> serde_json::Value {
    use serde_json::{json, Value};
    const NULL: &[&str] = &["", "~", "null", "Null", "NULL"];
    const WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
        "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", ".inf", ".Inf", ".INF", "+.inf",
        "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN",
    ];
    if NULL.contains(&text) {
        return Value::Null;
    }
    if WORDS.contains(&text) {
        return json!({"typed": ""});
    }
    let typed = text.starts_with(|c: char| "+-.0123456789".contains(c)) && {
        let plain: String = text.chars().filter(|&c| c != '_').collect();
        go_int(&plain) || yaml_style_float(&plain)
    };
    if typed {
        json!({"typed": ""})
    } else {
        Value::String(text.to_string())
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` (or ParseUint) syntax: a sign, then
/// 0x/0o/0b digits, a 0-led octal, or decimal digits.
fn go_int(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let all = |digits: &str, ok: fn(char) -> bool| !digits.is_empty() && digits.chars().all(ok);
    let lower = body.to_ascii_lowercase();
    if let Some(hex) = lower.strip_prefix("0x") {
        return all(hex, |c| c.is_ascii_hexdigit());
    }
    if let Some(oct) = lower.strip_prefix("0o") {
        return all(oct, |c| ('0'..='7').contains(&c));
    }
    if let Some(bin) = lower.strip_prefix("0b") {
        return all(bin, |c| c == '0' || c == '1');
    }
    if let Some(oct) = body.strip_prefix('0') {
        return oct.chars().all(|c| ('0'..='7').contains(&c));
    }
    all(body, |c| c.is_ascii_digit())
}

/// go-yaml v2's `yamlStyleFloat`:
/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn yaml_style_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |d: &str| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

/// The full proof of `out` as the output for `src` (every document read
/// again, whole): what a region proved by reading only the lines around its
/// edits must also pass (`injector/tests/windows.rs`).
pub fn proved(
    src: &str,
    out: &str,
    config: &config::Config,
    options: &Options,
) -> Result<(), crate::error::Error> {
    let origin = crate::verify::Origin {
        document: 0,
        line: 1,
    };
    // Read as the run reads it: with go-yaml's tolerance where it is needed.
    let readable = yaml::tolerant(src);
    crate::verify::check(src, yaml::Read::of(&readable), out, origin, |text, root| {
        stream::plan_and_apply(text, root, config, options)
    })
}
