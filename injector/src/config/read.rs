//! The values options are made of — a mapping, a string, a duration, a URL,
//! a path, a DNS label, a port, a uid, one value or a list — each read with
//! an error at the node that is wrong.

use crate::yaml::{Node, YamlError};
use graceful_wait_shared::{duration, url};
use std::time::Duration;

pub(super) fn err(node: &Node, message: impl Into<String>) -> YamlError {
    YamlError {
        pos: Some(node.pos),
        message: message.into(),
    }
}

pub(super) fn map<'n, 'a>(
    node: &'n Node<'a>,
    what: &str,
) -> Result<&'n [(Node<'a>, Node<'a>)], YamlError> {
    node.as_map()
        .ok_or_else(|| err(node, format!("{what} must be a mapping")))
}

pub(super) fn text<'n>(node: &'n Node, what: &str) -> Result<&'n str, YamlError> {
    node.as_str()
        .ok_or_else(|| err(node, format!("{what} must be a plain value")))
}

pub(super) fn dur(node: &Node, what: &str) -> Result<Duration, YamlError> {
    duration::parse(text(node, what)?).map_err(|e| err(node, format!("{what}: {e}")))
}

/// A value checked by one of the binary's own parsers (or the same rules).
pub(super) fn checked<'n>(
    node: &'n Node,
    what: &str,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<&'n str, YamlError> {
    let v = text(node, what)?;
    check(v).map_err(|e| err(node, format!("{what}: {e}")))?;
    Ok(v)
}

/// A URL a request is sent to (callbacks, wrap's on-term, on-exit, ...).
pub(super) fn request_url(node: &Node, what: &str) -> Result<String, YamlError> {
    checked(node, what, url::check_request_url).map(str::to_string)
}

/// One URL or a list of them, each checked.
pub(super) fn request_urls(node: &Node, what: &str) -> Result<Vec<String>, YamlError> {
    one_or_more(node, &format!("{what}: give at least one value"), |n| {
        request_url(n, what)
    })
}

/// A Kubernetes name that must be a DNS-1123 label (volumes, containers):
/// the one check, which the webhook's annotations use too.
pub(crate) fn dns_label(v: &str) -> Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !v.starts_with('-')
        && !v.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!("'{v}' is not a DNS-1123 label (lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit), which Kubernetes requires here"))
    }
}

/// An absolute path a volume may be mounted at (not `/`, no `..`).
pub(super) fn mount_path(v: &str) -> Result<(), String> {
    let ok = v.starts_with('/')
        && !v.trim_end_matches('/').is_empty()
        && !v.split('/').any(|part| part == "..")
        && !v.contains("//")
        && !v.contains(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{v}' is not an absolute path other than /, e.g. /graceful-wait"
        ))
    }
}

/// An absolute file path (a marker file).
pub(super) fn file_path(v: &str) -> Result<(), String> {
    mount_path(v).map_err(|_| {
        format!("'{v}': give the marker's absolute path, e.g. /graceful-wait-done/app.done")
    })
}

/// One string or a list of them.
pub(super) fn strings(node: &Node, what: &str) -> Result<Vec<String>, YamlError> {
    one_or_more(node, &format!("{what}: give at least one value"), |i| {
        text(i, what).map(str::to_string)
    })
}

/// `VALUE` or `[VALUES]`, each read by `one`: the one reader of every option
/// that takes a value or a list. An empty list is refused with `empty`.
pub(super) fn one_or_more<T>(
    node: &Node,
    empty: &str,
    one: impl Fn(&Node) -> Result<T, YamlError>,
) -> Result<Vec<T>, YamlError> {
    match node.as_seq() {
        Some([]) => Err(err(node, empty)),
        Some(items) => items.iter().map(one).collect(),
        None => Ok(vec![one(node)?]),
    }
}

/// A uid, for `what`.
pub(super) fn uid(node: &Node, what: &str) -> Result<u32, YamlError> {
    let word = text(node, "a uid")?;
    word.parse()
        .map_err(|_| err(node, format!("{what}: '{word}' is not a uid")))
}

/// `KIND: PORT` or `KIND: [PORTS]`, for the wait `kind` that names them.
pub(super) fn ports(node: &Node, kind: &str) -> Result<Vec<u16>, YamlError> {
    let one = |n: &Node| -> Result<u16, YamlError> {
        match text(n, "a port")?.parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(err(
                n,
                format!(
                    "'{}' is not a port (1-65535)",
                    n.as_str().unwrap_or_default()
                ),
            )),
        }
    };
    one_or_more(node, &format!("{kind}: give at least one port"), one)
}

/// `listeners: UID` or `listeners: [UIDS]`: the users whose listeners do not count.
pub(super) fn uids(node: &Node) -> Result<Vec<u32>, YamlError> {
    one_or_more(
        node,
        "listeners: give at least one uid (1337 is Istio's proxy)",
        |n| uid(n, "listeners"),
    )
}
