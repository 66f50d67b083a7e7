//! A container's value: a command list (the original tool's form), `auto`,
//! `{wrap: {...}}`, or a typed wait or callback with its options.

use super::read::*;
use super::{Callback, Hook, Wait, WaitFor, Wrap};
use crate::yaml::{Kind, Node, YamlError};
use graceful_wait_shared::{status_set::StatusSet, url};
use std::time::Duration;

/// A container's value: a command list (the original tool's form), `{wrap: {...}}`,
/// or a typed value such as `{tcp: 20000, timeout: 20s}`.
pub(super) fn parse_hook(node: &Node) -> Result<Hook, YamlError> {
    match &node.kind {
        Kind::Scalar(s, _) if s == "auto" => Ok(Hook::Wait(Wait {
            what: WaitFor::Auto,
            timeout: None,
            interval: None,
        })),
        Kind::Seq(items) => command(node, items),
        Kind::Map(entries) if entries.len() == 1 && entries[0].0.as_str() == Some("wrap") => {
            Ok(Hook::Wrap(wrap(&entries[0].1)?))
        }
        Kind::Map(entries) => {
            let mut typed = Typed::default();
            for (key, value) in entries {
                typed.read(key, value)?;
            }
            typed.into_hook(node)
        }
        _ => Err(err(
            node,
            "a container's value is a command list, auto, or a typed wait such as {tcp: 20000}",
        )),
    }
}

pub(super) fn command(node: &Node, items: &[Node]) -> Result<Hook, YamlError> {
    let argv = items
        .iter()
        .map(|i| text(i, "each word of a command").map(str::to_string))
        .collect::<Result<Vec<_>, _>>()?;
    if argv.is_empty() {
        return Err(err(
            node,
            "an empty command; give the preStop command as a list, e.g. [\"/bin/drain\"]",
        ));
    }
    Ok(Hook::Command(argv))
}

/// The waits a typed value may name (each a key `Typed::key` reads); the
/// error for a value with none of them lists these, and `TYPED_HELP` shows
/// each (a test keeps the three together).
pub(super) const WAIT_KINDS: [&str; 6] =
    ["tcp", "http", "connections", "listeners", "file", "process"];

pub(super) const TYPED_HELP: &str = "a container's value is auto, or a typed value: {tcp: PORT}, {http: URL}, {connections: PORT}, {listeners: UID}, {file: PATH}, {process: NAME}, {callback: URL} or {wrap: {...}}, with optional timeout, interval (waits), down-status (http), method and data (callback)";

/// The keys of a typed value, read one at a time, then checked together.
#[derive(Default)]
struct Typed {
    what: Option<WaitFor>,
    callback: Option<Vec<String>>,
    method: Option<String>,
    data: Option<String>,
    timeout: Option<Duration>,
    interval: Option<Duration>,
    down_status: Option<String>,
}

impl Typed {
    fn read(&mut self, key: &Node, value: &Node) -> Result<(), YamlError> {
        match text(key, "a wait option")? {
            "tcp" => self.what = Some(WaitFor::Tcp(ports(value, "tcp")?)),
            "http" => {
                let url = text(value, "http")?;
                url::parse_local(url).map_err(|e| err(value, format!("http: {e}")))?;
                self.what = Some(WaitFor::Http {
                    url: url.to_string(),
                    down_status: None,
                });
            }
            "connections" => self.what = Some(WaitFor::Connections(ports(value, "connections")?)),
            "listeners" => self.what = Some(WaitFor::Listeners(uids(value)?)),
            "file" => {
                self.what = Some(WaitFor::File(
                    checked(value, "file", file_path)?.to_string(),
                ))
            }
            "process" => self.what = Some(process(value)?),
            "callback" => self.callback = Some(request_urls(value, "callback")?),
            "method" => {
                self.method = Some(checked(value, "method", url::check_method)?.to_string())
            }
            "data" => self.data = Some(text(value, "data")?.to_string()),
            "timeout" => self.timeout = Some(dur(value, "timeout")?),
            "interval" => {
                let v = text(value, "interval")?;
                let d = graceful_wait_shared::cli::parse_interval(v)
                    .map_err(|e| err(value, format!("interval: {e}")))?;
                self.interval = Some(d);
            }
            "down-status" => {
                let v = text(value, "down-status")?;
                v.parse::<StatusSet>()
                    .map_err(|e| err(value, format!("down-status: {e}")))?;
                self.down_status = Some(v.to_string());
            }
            other => {
                return Err(err(
                    key,
                    format!("unknown wait option '{other}'; {TYPED_HELP}"),
                ))
            }
        }
        Ok(())
    }

    /// The hook these keys make, once every key is known: options that
    /// belong to another kind of value are errors, not silently dropped.
    fn into_hook(self, node: &Node) -> Result<Hook, YamlError> {
        match (self.what, self.callback) {
            (Some(_), Some(_)) => Err(err(
                node,
                "a value is either a wait or a callback; give them to different containers",
            )),
            (None, None) => Err(err(
                node,
                format!(
                    "a typed value needs one of {}, callback",
                    WAIT_KINDS.join(", ")
                ),
            )),
            (None, Some(urls)) => {
                if self.down_status.is_some() || self.interval.is_some() {
                    return Err(err(
                        node,
                        "interval and down-status go with waits, not callback",
                    ));
                }
                Ok(Hook::Callback(Callback {
                    urls,
                    method: self.method,
                    data: self.data,
                    timeout: self.timeout,
                }))
            }
            (Some(what), None) => {
                if self.method.is_some() || self.data.is_some() {
                    return Err(err(node, "method and data go with callback only"));
                }
                let what = match (what, self.down_status) {
                    (WaitFor::Http { url, .. }, down_status) => WaitFor::Http { url, down_status },
                    (_, Some(_)) => return Err(err(node, "down-status goes with http only")),
                    (w, None) => w,
                };
                Ok(Hook::Wait(Wait {
                    what,
                    timeout: self.timeout,
                    interval: self.interval,
                }))
            }
        }
    }
}

/// `process: NAME`, `process: [NAMES]`, or `process: {name: ..., exclude-uid: ...}`.
pub(super) fn process(node: &Node) -> Result<WaitFor, YamlError> {
    let (mut names, mut exclude_uids) = (Vec::new(), Vec::new());
    match node.as_map() {
        None => names = strings(node, "process")?,
        Some(entries) => {
            for (k, v) in entries {
                match text(k, "a process option")? {
                    "name" => names = strings(v, "process name")?,
                    "exclude-uid" => {
                        exclude_uids =
                            one_or_more(v, "exclude-uid: give at least one value", |u| {
                                uid(u, "exclude-uid")
                            })?
                    }
                    other => {
                        return Err(err(
                            k,
                            format!("unknown process option '{other}'; use name or exclude-uid"),
                        ))
                    }
                }
            }
        }
    }
    if names.is_empty() && exclude_uids.is_empty() {
        return Err(err(node, "process: give a name or exclude-uid"));
    }
    Ok(WaitFor::Process {
        names,
        exclude_uids,
    })
}

pub(super) fn wrap(node: &Node) -> Result<Wrap, YamlError> {
    let mut w = Wrap::default();
    for (k, v) in map(node, "wrap")? {
        match text(k, "a wrap option")? {
            "done-file" => w.done_file = Some(checked(v, "done-file", file_path)?.to_string()),
            "on-term" => w.on_term = request_urls(v, "on-term")?,
            "on-exit" => w.on_exit = request_urls(v, "on-exit")?,
            "wait-ready" => w.wait_ready = Some(request_url(v, "wait-ready")?),
            "quit-proxy" => w.quit_proxy = Some(request_url(v, "quit-proxy")?),
            other => return Err(err(k, format!("unknown wrap option '{other}'; use done-file, on-term, on-exit, wait-ready, quit-proxy"))),
        }
    }
    Ok(w)
}
