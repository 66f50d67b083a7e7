//! The YAML text the injector writes. Small values built in code are written
//! in block style at a given indentation, or as JSON when they go into a flow
//! collection. Strings are plain only when no YAML reader could take them for
//! anything but a string; everything else is double-quoted (so `on`, `no`,
//! `1:20` or `--port=8080` never turn into booleans, numbers or indicators).

use std::fmt::Write;

/// A value to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A string, quoted when YAML could read it as anything else.
    Str(String),
    /// A boolean or number, written as it is.
    Literal(String),
    Seq(Vec<Value>),
    Map(Vec<(String, Value)>),
}

/// A string value.
pub fn string(v: impl Into<String>) -> Value {
    Value::Str(v.into())
}

pub fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// The words a YAML 1.1 or 1.2 reader (go-yaml reads both) takes for a
/// boolean, null or infinity rather than a string, lower-cased.
pub const NOT_STRINGS: &[&str] = &[
    "~", "null", "true", "false", "yes", "no", "on", "off", "y", "n", ".inf", "-.inf", "+.inf",
    ".nan",
];

/// A scalar as YAML text: plain when it starts with a letter, `/`, `_` or
/// `-`/`--` and a letter (a flag), holds only characters with no meaning in a
/// plain scalar, has `:` only inside (never before a space or at the end),
/// and is not a word YAML 1.1 reads as a boolean or null. Otherwise quoted.
pub fn scalar(v: &str) -> String {
    let flag = v.strip_prefix("--").or_else(|| v.strip_prefix('-'));
    let body = flag
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_alphabetic()))
        .unwrap_or(v);
    let plain = body
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '_')
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./=@+-:".contains(c))
        && !v.ends_with(':')
        && !NOT_STRINGS.contains(&v.to_ascii_lowercase().as_str());
    if plain {
        v.to_string()
    } else {
        quoted(v)
    }
}

/// A double-quoted scalar (also a JSON string).
pub fn quoted(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Indentation habits of the document being edited.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    /// `key:\n- item` (kubectl, istioctl) rather than `key:\n  - item`.
    pub indentless_seq: bool,
}

/// Mapping entries, each line at `indent` columns.
pub fn entries(out: &mut String, items: &[(String, Value)], indent: usize, style: Style) {
    let pad = " ".repeat(indent);
    for (k, v) in items {
        match v {
            Value::Str(x) => {
                let _ = writeln!(out, "{pad}{}: {}", scalar(k), scalar(x));
            }
            Value::Literal(x) => {
                let _ = writeln!(out, "{pad}{}: {x}", scalar(k));
            }
            Value::Seq(xs) if xs.is_empty() => {
                let _ = writeln!(out, "{pad}{}: []", scalar(k));
            }
            Value::Map(xs) if xs.is_empty() => {
                let _ = writeln!(out, "{pad}{}: {{}}", scalar(k));
            }
            Value::Seq(xs) => {
                let _ = writeln!(out, "{pad}{}:", scalar(k));
                sequence(
                    out,
                    xs,
                    if style.indentless_seq {
                        indent
                    } else {
                        indent + 2
                    },
                    style,
                );
            }
            Value::Map(xs) => {
                let _ = writeln!(out, "{pad}{}:", scalar(k));
                entries(out, xs, indent + 2, style);
            }
        }
    }
}

/// Sequence items, each dash at `dash` columns.
pub fn sequence(out: &mut String, items: &[Value], dash: usize, style: Style) {
    let pad = " ".repeat(dash);
    for item in items {
        match item {
            Value::Str(x) => {
                let _ = writeln!(out, "{pad}- {}", scalar(x));
            }
            Value::Literal(x) => {
                let _ = writeln!(out, "{pad}- {x}");
            }
            Value::Map(xs) if !xs.is_empty() => {
                let mut body = String::new();
                entries(&mut body, xs, dash + 2, style);
                // The first entry goes on the dash's line.
                out.push_str(&pad);
                out.push_str("- ");
                out.push_str(&body[dash + 2..]);
            }
            other => {
                let _ = writeln!(out, "{pad}- {}", json(other));
            }
        }
    }
}

/// Flow/JSON form, for insertion into `[...]` or `{...}`.
pub fn json(v: &Value) -> String {
    match v {
        Value::Str(x) => quoted(x),
        Value::Literal(x) => x.clone(),
        Value::Seq(xs) => format!("[{}]", xs.iter().map(json).collect::<Vec<_>>().join(", ")),
        Value::Map(xs) => format!(
            "{{{}}}",
            xs.iter()
                .map(|(k, v)| format!("{}: {}", quoted(k), json(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_yaml_would_misread() {
        for (v, want) in [
            ("tcp", "tcp"),
            (
                "/graceful-wait/graceful-wait",
                "/graceful-wait/graceful-wait",
            ),
            ("on", "\"on\""),
            ("No", "\"No\""),
            ("20000", "\"20000\""),
            ("--port=20000", "--port=20000"),
            ("--", "\"--\""),
            ("-1", "\"-1\""),
            ("-c", "-c"),
            ("- x", "\"- x\""),
            ("--5", "\"--5\""),
            ("1:20", "\"1:20\""),
            ("key:", "\"key:\""),
            ("localhost:3000/health", "localhost:3000/health"),
            ("ghcr.io/x/y:0.1.0", "ghcr.io/x/y:0.1.0"),
            ("", "\"\""),
            ("a \"b\"\\", "\"a \\\"b\\\"\\\\\""),
        ] {
            assert_eq!(scalar(v), want, "{v}");
        }
    }

    #[test]
    fn block_shapes() {
        let v = vec![(
            "lifecycle".to_string(),
            map(vec![(
                "preStop",
                map(vec![(
                    "exec",
                    map(vec![(
                        "command",
                        Value::Seq(vec![string("/bin/x"), string("--a")]),
                    )]),
                )]),
            )]),
        )];
        let mut out = String::new();
        entries(
            &mut out,
            &v,
            4,
            Style {
                indentless_seq: true,
            },
        );
        assert_eq!(out, "    lifecycle:\n      preStop:\n        exec:\n          command:\n          - /bin/x\n          - --a\n");
        let mut out = String::new();
        sequence(
            &mut out,
            &[map(vec![
                ("name", string("v")),
                ("emptyDir", Value::Map(vec![])),
            ])],
            2,
            Style {
                indentless_seq: false,
            },
        );
        assert_eq!(out, "  - name: v\n    emptyDir: {}\n");
        assert_eq!(
            json(&map(vec![
                ("name", string("v")),
                ("x", Value::Seq(vec![string("1")]))
            ])),
            "{\"name\": \"v\", \"x\": [\"1\"]}"
        );
    }
}
