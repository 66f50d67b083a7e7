//! What one pod template gets, decided: the preStop hooks and wraps the
//! config asks for, and — when any of them runs graceful-wait — the shared
//! volume, its read-only mounts and the init container that fills it. The
//! decisions are [`Change`]s and [`Note`]s; no text is written here.

use super::command::{self, after_our_dashes, show, Call, KubeletAction};
use super::istio::{self, PROXY as ISTIO_PROXY};
use super::mesh::{self, Native};
use super::objects::{self, command_alone, INSTALL_DIR};
use super::{shell_loop, Change, ContainerRef, Item, Note, Options};
use crate::config::{Hook, Rule, Settings, Wait, WaitFor, Wrap};
use crate::error::Error;
use crate::yaml::tree::{comment_line_in, holds_comment_line};
use crate::yaml::{Kind, Node};
use std::time::Duration;

const DEFAULT_GRACE: u64 = 30;

/// The first of `keys` whose value is there but neither a list nor empty:
/// adding to it would mean replacing it, and all it holds.
fn not_a_list<'k>(map: &Node, keys: &[&'k str]) -> Option<&'k str> {
    keys.iter().copied().find(|k| {
        map.get(k)
            .is_some_and(|v| v.as_seq().is_none() && !v.is_null())
    })
}

/// Whether every key of a mapping is a scalar written without `? `: the only
/// keys the edits are placed around with certainty.
fn plain_keys(map: &Node) -> bool {
    map.as_map()
        .unwrap_or_default()
        .iter()
        .all(|(k, _)| k.as_str().is_some() && !k.explicit_key)
}

/// YAML's merge key: a mapping that holds it takes the keys of another. Adding
/// `lifecycle` or `volumeMounts` beside it would silently override the merged
/// ones (Istio's drain hook, a mount), so such mappings are not edited.
const MERGE_KEY: &str = "<<";

/// Everything planning one pod template works with.
struct Pod<'p, 'a> {
    spec: &'p Node<'a>,
    /// The pod template's metadata, when there is one.
    meta: Option<&'p Node<'a>>,
    settings: &'p Settings,
    options: &'p Options,
    /// The document's text, which the nodes' offsets point into.
    src: &'p str,
    notes: &'p mut Vec<Note>,
    /// What `--timeout` a wait gets unless the config says otherwise.
    budget: Duration,
    grace: u64,
    /// Some hook calls the binary: the volume and the init container follow.
    uses_binary: bool,
    /// Some hook waits for processes: the pod must share its PID namespace.
    shares_processes: bool,
    /// The hooks' `--log-copy`: the setting's, except in a pod whose
    /// containers share one PID namespace, where PID 1 is the pod's `pause`
    /// process, not the container's: its stdout is nobody's log, and another
    /// user's pipe cannot be opened anyway.
    log_copy: Option<String>,
    /// Some container reads or writes the done marker: its volume follows.
    uses_marker: bool,
    /// What was decided, for the check of the output ([`crate::verify`]).
    changes: Vec<Change>,
    /// What an earlier run wrote here, to be replaced rather than repeated.
    earlier: Earlier,
}

/// A container found in the pod spec, and how the plan names it.
struct Container<'p, 'a> {
    node: &'p Node<'a>,
    at: ContainerRef,
    /// Why a native sidecar gets the wait in front of its own hook.
    native: Option<String>,
}

/// Plans the pod spec `spec` (read from `src`) according to `rule`: returns
/// what it changes, and says why in `notes`. An error means the plan would
/// write a command the binary does not accept: a bug, never written.
pub fn plan(
    src: &str,
    spec: &Node,
    meta: Option<&Node>,
    rule: &Rule,
    settings: &Settings,
    options: &Options,
    notes: &mut Vec<Note>,
) -> Result<Vec<Change>, Error> {
    if let Some(why) = not_plannable(spec) {
        notes.push(Note::Skipped(why));
        return Ok(Vec::new());
    }
    let (grace, budget) = timeout_budget(spec, settings, notes);
    let mut pod = Pod {
        spec,
        meta,
        settings,
        options,
        src,
        notes,
        budget,
        grace,
        uses_binary: false,
        shares_processes: false,
        log_copy: settings
            .log_copy
            .clone()
            .filter(|_| !pid_namespace_shared(spec, rule)),
        uses_marker: false,
        changes: Vec::new(),
        earlier: Earlier::find(spec),
    };
    for (name, hook) in wanted(spec, rule, pod.notes) {
        let missing = spec.item_named("containers", &name).is_none()
            && spec.item_named("initContainers", &name).is_none();
        if missing && name == ISTIO_PROXY && pod.stubs_missing_proxy() {
            pod.add_stub(hook)?;
            continue;
        }
        let Some(container) = pod.hookable_container(&name) else {
            continue;
        };
        match hook {
            Hook::Wrap(w) => pod.wrap(&container, w)?,
            hook => pod.set_hook(&container, hook)?,
        }
    }
    pod.add_volumes();
    if pod.uses_binary {
        pod.add_init_container();
    }
    if pod.shares_processes {
        pod.share_process_namespace();
    }
    Ok(pod.changes)
}

/// The containers `rule` names in this pod, with their hooks, in the
/// config's order. A glob (`csql-*`, `consul-dataplane-*`: a mesh's proxy
/// whose name holds the workload's) stands for every container of the pod
/// it matches that no exact name of the rule claims; one that matches none
/// is noted.
fn wanted<'r>(spec: &Node, rule: &'r Rule, notes: &mut Vec<Note>) -> Vec<(String, &'r Hook)> {
    let exact = |name: &str| rule.containers.iter().any(|c| c.name == name);
    let mut out: Vec<(String, &Hook)> = Vec::new();
    for want in &rule.containers {
        if !crate::config::is_glob(&want.name) {
            out.push((want.name.clone(), &want.hook));
            continue;
        }
        let before = out.len();
        for (_, c) in super::containers(spec) {
            let Some(name) = c.get("name").and_then(Node::as_str) else {
                continue;
            };
            let taken = out.iter().any(|(n, _)| n == name);
            if crate::config::glob_match(&want.name, name) && !exact(name) && !taken {
                // A glob meant for a proxy can catch the app too, whose
                // own wait would then hold it until the timeout.
                if mesh::recognise(c).is_none() {
                    notes.push(Note::Warning(format!(
                        "{}: matches {name}, which is no mesh's proxy (docs/meshes.md), and gets the hook too; name it exactly, or narrow the glob, if it should not",
                        want.name
                    )));
                }
                out.push((name.to_string(), &want.hook));
            }
        }
        if out.len() == before {
            notes.push(Note::Skipped(format!(
                "{}: no container of the pod matches",
                want.name
            )));
        }
    }
    out
}

/// Why a pod spec gets nothing, if it does not: every rule that skips a
/// whole pod, in one place.
fn not_plannable(spec: &Node) -> Option<String> {
    if spec.as_map().is_none() {
        return Some("the pod template's spec is not a mapping".into());
    }
    if !plain_keys(spec) {
        return Some("the pod spec has an explicit (?) or non-scalar key, which graceful-inject does not edit around; write it as plain keys".into());
    }
    if spec.get(MERGE_KEY).is_some() {
        return Some(format!("the pod spec uses a merge key ({MERGE_KEY}): what it merges would be overridden by what graceful-inject adds; write the pod spec out in full"));
    }
    if let Some(key) = not_a_list(spec, &["volumes", "initContainers"]) {
        return Some(format!("the pod spec's {key} is neither a list nor empty; graceful-inject does not replace what it does not understand — make it a list"));
    }
    None
}

/// Why a container found in the pod spec (in `initContainers` when
/// `in_init`) gets no hook, if it does not: every rule that skips a
/// container, in one place.
/// `native` is the decision for a native sidecar ([`mesh::native_sidecar`]),
/// None for any other container.
fn not_hookable(container: &Node, in_init: bool, native: Option<&Native>) -> Option<String> {
    if let Some(Native::Leave(why)) = native {
        return Some(why.clone());
    }
    if in_init && native.is_none() {
        return Some("an init container has no preStop".into());
    }
    if let Some(key) = not_a_list(container, &["volumeMounts"]) {
        return Some(format!("its {key} is neither a list nor empty; graceful-inject does not replace what it does not understand — make it a list"));
    }
    if !plain_keys(container) || container.get("lifecycle").is_some_and(|l| !plain_keys(l)) {
        return Some("has an explicit (?) or non-scalar key, which graceful-inject does not edit around; write it as plain keys".into());
    }
    let merged = container.get(MERGE_KEY).is_some()
        || container
            .get("lifecycle")
            .is_some_and(|l| l.get(MERGE_KEY).is_some());
    if merged {
        return Some(format!("uses a merge key ({MERGE_KEY}): what it merges (a preStop, mounts) would be overridden by what graceful-inject adds; write the container out in full"));
    }
    None
}

/// Whether a container of `initContainers` (`in_init`) is a native sidecar:
/// one Kubernetes restarts, and stops only after the app's containers.
fn is_native_sidecar(container: &Node, in_init: bool) -> bool {
    in_init && container.get("restartPolicy").and_then(Node::as_str) == Some("Always")
}

/// Whether the pod's containers share one PID namespace: it says so, or a
/// process wait will make it.
fn pid_namespace_shared(spec: &Node, rule: &Rule) -> bool {
    spec.get("shareProcessNamespace").and_then(Node::as_str) == Some("true")
        || rule.containers.iter().any(|c| {
            matches!(
                &c.hook,
                Hook::Wait(Wait {
                    what: WaitFor::Process { .. },
                    ..
                })
            )
        })
}

/// The grace period, and what a wait may take of it: the grace period minus
/// the drain margin the proxy keeps for itself, at least one second.
fn timeout_budget(spec: &Node, settings: &Settings, notes: &mut Vec<Note>) -> (u64, Duration) {
    let grace = spec
        .get("terminationGracePeriodSeconds")
        .and_then(Node::as_str)
        .and_then(|g| g.parse::<u64>().ok())
        .unwrap_or(DEFAULT_GRACE);
    let budget = Duration::from_secs(grace).saturating_sub(settings.drain_margin);
    if budget < Duration::from_secs(1) {
        notes.push(Note::Warning(format!(
            "terminationGracePeriodSeconds {grace}s leaves no time for a wait after the {}s drain margin; waits get --timeout=1s — raise the grace period",
            settings.drain_margin.as_secs()
        )));
        return (grace, Duration::from_secs(1));
    }
    (grace, budget)
}

impl<'p, 'a> Pod<'p, 'a> {
    /// The container to hook, or None with a note saying why not.
    fn hookable_container(&mut self, name: &str) -> Option<Container<'p, 'a>> {
        let spec = self.spec;
        let Some((list, container)) = super::container_named(spec, name) else {
            self.notes
                .push(Note::Skipped(format!("{name}: container not found")));
            return None;
        };
        let in_init = list == "initContainers";
        let native = is_native_sidecar(container, in_init)
            .then(|| mesh::native_sidecar(container, &self.settings.native_sidecars));
        if let Some(why) = not_hookable(container, in_init, native.as_ref()) {
            self.notes.push(Note::Skipped(format!("{name}: {why}")));
            return None;
        }
        let native = match native {
            Some(Native::Wait(why)) => Some(why),
            _ => None,
        };
        Some(Container {
            node: container,
            at: ContainerRef {
                list,
                name: name.to_string(),
            },
            native,
        })
    }

    /// Sets the container's preStop as `hook` says: the configured command,
    /// or a graceful-wait call with the existing exec hook chained after it.
    /// A command that is a shell loop graceful-wait replaces becomes its wait.
    fn set_hook(&mut self, container: &Container, hook: &Hook) -> Result<(), Error> {
        match self.call_for(&container.at.name, hook) {
            Ok(Some((pre_stop, how))) => {
                // Why a native sidecar's own hook now follows a wait; a
                // configured command replaces the hook instead.
                let how = match (&container.native, &pre_stop) {
                    (Some(why), PreStop::Call(_)) => format!("{how}; {why}"),
                    _ => how,
                };
                self.write_pre_stop(container, pre_stop, &how)
            }
            Ok(None) => Err(Error::internal(
                Some(container.node.pos),
                "a wrap reached the preStop planning",
            )),
            Err(refused) => {
                self.notes.push(Note::Skipped(refused));
                Ok(())
            }
        }
    }

    /// What the preStop of the container `name` is written from — the
    /// graceful-wait call `hook` means, or the config's command kept as
    /// written — and how it was arrived at (for the summary); None for a
    /// wrap, which is not a preStop; Err with why where `auto` writes
    /// nothing in this pod ([`crate::plan::auto::choose`]).
    fn call_for(&mut self, name: &str, hook: &Hook) -> Result<Option<(PreStop, String)>, String> {
        Ok(match hook {
            // `auto`: the wait this pod's probes call for.
            Hook::Wait(w) if w.what == WaitFor::Auto => {
                let (what, why) = crate::plan::auto::choose(self.spec, name)?;
                let wait = Wait {
                    what,
                    timeout: w.timeout,
                    interval: w.interval,
                };
                Some((PreStop::Call(Call::Wait(wait)), format!(" (auto: {why})")))
            }
            Hook::Wait(w) => Some((PreStop::Call(Call::Wait(w.clone())), String::new())),
            Hook::Callback(c) => Some((PreStop::Call(Call::Callback(c.clone())), String::new())),
            Hook::Command(argv) if !self.options.keep_commands => {
                match shell_loop::recognise(argv) {
                    Some(w) => Some((
                        PreStop::Call(Call::Wait(w)),
                        " (recognised shell loop)".into(),
                    )),
                    None => {
                        if shell_loop::looks_like_a_loop(argv) {
                            self.notes.push(Note::Warning(format!(
                                "{name}: the command looks like a wait loop but is not one of the forms converted with certainty (docs/injector.md, \"Shell loops\"); kept as written"
                            )));
                        }
                        Some((PreStop::Command(argv.clone()), String::new()))
                    }
                }
            }
            Hook::Command(argv) => Some((PreStop::Command(argv.clone()), String::new())),
            Hook::Wrap(_) => None,
        })
    }

    /// Whether a pod without an `istio-proxy` gets the stub (per run or per
    /// config).
    fn stubs_missing_proxy(&self) -> bool {
        self.options.istio_stub || self.settings.stub_missing_proxy
    }

    /// Adds the `istio-proxy` stub to `containers`: a container Istio's
    /// injector merges onto the sidecar it adds (`reapplyOverwrittenContainers`
    /// in istio/istio `pkg/kube/inject/webhook.go`), whatever the layout: it
    /// finds the stub in `containers` and customises a native sidecar with it
    /// too. The stub's preStop replaces the template's, so Istio's own drain
    /// request is chained after the wait: in native mode that is the
    /// template's preStop, and in the classic layout it starts the drain the
    /// proxy's SIGTERM would start a moment later anyway.
    fn add_stub(&mut self, hook: &Hook) -> Result<(), Error> {
        let name = ISTIO_PROXY;
        if let Some(whose) = istio::injection_refused(self.meta) {
            self.notes.push(Note::Skipped(format!(
                "{name}: container not found, and no stub written: the pod's {whose} says sidecar.istio.io/inject: \"false\", so Istio adds no sidecar to merge it onto"
            )));
            return Ok(());
        }
        if let Some(key) = not_a_list(self.spec, &["containers"]) {
            self.notes.push(Note::Skipped(format!(
                "{name}: no stub written: the pod spec's {key} is neither a list nor empty"
            )));
            return Ok(());
        }
        let (call, how) = match self.call_for(name, hook) {
            Ok(Some((PreStop::Call(call), how))) => (call, how),
            Err(refused) => {
                self.notes.push(Note::Skipped(refused));
                return Ok(());
            }
            Ok(_) => {
                self.notes.push(Note::Skipped(format!(
                    "{name}: container not found, and no stub written: a stub carries a graceful-wait call, and this container's value is a command kept as written; give a wait (or auto)"
                )));
                return Ok(());
            }
        };
        let command = self.graceful_command(name, &call, &istio::drain_request(self.meta))?;
        let mounts = self.call_mounts(&call);
        let item = objects::istio_stub(&command, mounts.into_iter().map(|m| m.item).collect());
        self.changes.push(Change::Container {
            name: name.to_string(),
            item,
        });
        self.notes.push(Note::Changed(format!(
            "{name}: stub added for Istio's injector to merge onto its sidecar (image: {}); preStop ← {}{how}",
            istio::STUB_IMAGE,
            shown(&command)
        )));
        Ok(())
    }

    fn write_pre_stop(
        &mut self,
        container: &Container,
        pre_stop: PreStop,
        how: &str,
    ) -> Result<(), Error> {
        let name = container.at.name.as_str();
        let existing = container.node.path(&["lifecycle", "preStop"]);
        let written = existing.and_then(exec_command);
        // What the preStop becomes: the graceful-wait call in front of the
        // existing command's items, which stay as they are written (block
        // scalars, quoting, comments); or a whole new hook where there is
        // none to keep, where an earlier run's call is updated, or where the
        // config gives a command of its own.
        let edit = match &pre_stop {
            PreStop::Call(call) => match (existing, &written) {
                (None, _) => Edit::Replace(self.graceful_command(name, call, &[])?),
                (Some(p), None) => match self.action_as_command(container, p) {
                    // An httpGet hook (the Cloud SQL operator's
                    // /quitquitquit) or a sleep: the wait first, then the
                    // same request or pause, by graceful-wait itself.
                    Ok(action) => {
                        let chained = command::kubelet_action(self.settings.binary(), &action)?;
                        Edit::Replace(self.graceful_command(name, call, &chained)?)
                    }
                    Err(why) => {
                        self.notes.push(Note::Skipped(format!(
                            "{name}: {why}; left alone — give a command in the config to replace it"
                        )));
                        return Ok(());
                    }
                },
                (Some(_), Some(old)) => {
                    // An earlier run's call is updated in place; a hook of
                    // the manifest's own gets the call in front.
                    let original = after_our_dashes(old, None).unwrap_or_else(|| old.clone());
                    let whole = self.graceful_command(name, call, &original)?;
                    if original.is_empty() {
                        Edit::Replace(whole)
                    } else {
                        Edit::Prefix {
                            replaced: old.len() - original.len(),
                            items: whole[..whole.len() - original.len()].to_vec(),
                            whole,
                        }
                    }
                }
            },
            PreStop::Command(argv) => Edit::Replace(argv.clone()),
        };
        match edit {
            Edit::Replace(command) | Edit::Prefix { whole: command, .. }
                if written.as_deref() == Some(command.as_slice()) =>
            {
                self.notes.push(Note::Unchanged(format!(
                    "{name}: preStop already as configured"
                )));
            }
            Edit::Replace(command) => {
                // Replacing a hook that holds a comment line would lose it;
                // where the command stands alone, only the list is replaced.
                let replaced = existing.map(|p| command_alone(p).map_or(p, |(_, list)| list));
                if replaced.is_some_and(|p| holds_comment_line(self.src, p)) {
                    self.notes.push(Note::Skipped(format!(
                        "{name}: its preStop holds a comment line, which replacing it would lose; move the comment out of the hook"
                    )));
                    return Ok(());
                }
                self.notes.push(Note::Changed(format!(
                    "{name}: preStop ← {}{how}",
                    shown(&command)
                )));
                self.changes.push(Change::PreStop {
                    container: container.at.clone(),
                    command,
                });
            }
            Edit::Prefix {
                items,
                replaced,
                whole,
            } => {
                let list = container
                    .node
                    .path(&["lifecycle", "preStop", "exec", "command"]);
                if list.is_some_and(|l| comment_among_first(self.src, l, replaced)) {
                    self.notes.push(Note::Skipped(format!(
                        "{name}: a comment line stands among the preStop items an earlier run wrote, which updating them would lose; move the comment out of the hook"
                    )));
                    return Ok(());
                }
                self.notes.push(Note::Changed(format!(
                    "{name}: preStop ← {}{how}",
                    shown(&whole)
                )));
                self.changes.push(Change::PreStopPrefix {
                    container: container.at.clone(),
                    items,
                    replaced,
                });
            }
        }
        let mounts = match &pre_stop {
            PreStop::Call(call) => self.call_mounts(call),
            PreStop::Command(_) => Vec::new(),
        };
        self.add_mounts(container, mounts);
        Ok(())
    }

    /// What a container whose preStop is `call` mounts: the binary, and for
    /// a file wait the marker's own volume, read-only. The pod then gets the
    /// binary's volume and installer, and for a process wait a shared PID
    /// namespace.
    fn call_mounts(&mut self, call: &Call) -> Vec<Item> {
        self.uses_binary = true;
        if let Call::Wait(Wait {
            what: WaitFor::Process { .. },
            ..
        }) = call
        {
            self.shares_processes = true;
        }
        let mut mounts = vec![self.binary_mount()];
        if let Call::Wait(Wait {
            what: WaitFor::File(path),
            ..
        }) = call
        {
            mounts.push(self.marker_mount(crate::config::marker_folder(path), true));
        }
        mounts
    }

    /// A preStop action only the kubelet can run — `httpGet`, `sleep` — as
    /// what graceful-wait does in its place, behind the wait; why not, for
    /// any other preStop.
    fn action_as_command(
        &self,
        container: &Container,
        pre_stop: &Node,
    ) -> Result<KubeletAction, String> {
        let Some((action, value)) = pre_stop.as_map().and_then(|m| match m {
            [(k, v)] => Some((k.as_str().unwrap_or_default(), v)),
            _ => None,
        }) else {
            return Err(not_chainable(pre_stop));
        };
        match action {
            "httpGet" => self.http_get_as_command(container, value),
            "sleep" => {
                let seconds = value
                    .get("seconds")
                    .and_then(Node::as_str)
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or("has a sleep preStop without a whole number of seconds")?;
                Ok(KubeletAction::Sleep(seconds))
            }
            _ => Err(not_chainable(pre_stop)),
        }
    }

    /// An `httpGet` action as the same request, sent by graceful-wait within
    /// the drain margin the wait leaves. The kubelet sends it to the pod's IP when no host is
    /// given; the hook runs inside the pod, so it sends it to localhost —
    /// the same listener where it listens on every address or on loopback
    /// (a proxy's admin port).
    fn http_get_as_command(
        &self,
        container: &Container,
        http: &Node,
    ) -> Result<KubeletAction, String> {
        let field = |key: &str| http.get(key).and_then(Node::as_str);
        let scheme = field("scheme").unwrap_or("HTTP");
        if !scheme.eq_ignore_ascii_case("HTTP") {
            return Err(format!(
                "has an httpGet preStop over {scheme}, whose certificate the kubelet does not check and graceful-wait would"
            ));
        }
        let port = match field("port") {
            Some(p) if p.parse::<u16>().is_ok_and(|p| p > 0) => p.to_string(),
            Some(named) => container
                .node
                .item_named("ports", named)
                .and_then(|p| p.get("containerPort"))
                .and_then(Node::as_str)
                .filter(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
                .ok_or_else(|| format!("has an httpGet preStop on the port '{named}', which its container's ports do not name"))?
                .to_string(),
            None => return Err("has an httpGet preStop without a port".into()),
        };
        let host = match field("host").unwrap_or("localhost") {
            // An IPv6 address, bracketed as a URL writes it.
            h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
            h => h.to_string(),
        };
        let path = field("path").unwrap_or("/");
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        // The kubelet sends its request as written; graceful-wait's
        // callback expands `$NAME`, and takes `$$` for a literal `$`.
        let literal = |text: &str| text.replace('$', "$$");
        let mut headers = Vec::new();
        for header in http
            .get("httpHeaders")
            .and_then(Node::as_seq)
            .unwrap_or_default()
        {
            let (Some(n), Some(v)) = (
                header.get("name").and_then(Node::as_str),
                header.get("value").and_then(Node::as_str),
            ) else {
                return Err(
                    "has an httpGet preStop with a header that is not a name and a value".into(),
                );
            };
            headers.push(literal(&format!("{n}: {v}")));
        }
        Ok(KubeletAction::Get {
            url: literal(&format!("http://{host}:{port}{path}")),
            headers,
            timeout: self.settings.drain_margin.max(Duration::from_secs(1)),
        })
    }

    /// `graceful-wait <mode> ... [-- CHAINED]`, checked against the binary's
    /// own command line before it is written.
    fn graceful_command(
        &mut self,
        name: &str,
        call: &Call,
        chained: &[String],
    ) -> Result<Vec<String>, Error> {
        let timeout = call.timeout();
        if let Some(t) = timeout.filter(|t| *t > self.budget) {
            self.notes.push(Note::Warning(format!(
                "{name}: timeout {} is more than the {} left by terminationGracePeriodSeconds {}s minus the drain margin",
                show(t),
                show(self.budget),
                self.grace
            )));
        }
        command::hook(
            self.settings.binary(),
            self.log_copy.as_deref(),
            call,
            timeout.unwrap_or(self.budget),
            chained,
        )
    }

    /// Wraps the container's `command` in `graceful-wait exec`; skipped with
    /// a note when it cannot (no `command` in the manifest: the image's
    /// entrypoint is unknown).
    fn wrap(&mut self, container: &Container, w: &Wrap) -> Result<(), Error> {
        let name = container.at.name.as_str();
        let Some(list) = container.node.get("command") else {
            self.notes.push(Note::Skipped(format!(
                "{name}: no command in the manifest, so the entrypoint to wrap is unknown — set command to the image's entrypoint, or use graceful-wait exec in the image (see the README)"
            )));
            return Ok(());
        };
        if matches!(list.kind, Kind::Alias(_)) {
            self.notes.push(Note::Skipped(format!(
                "{name}: its command is an alias (*) of a node anchored elsewhere, which cannot take the wrapper's items in front without changing every place that uses it; write it out here"
            )));
            return Ok(());
        }
        let Some(current) = list.as_seq().and_then(|items| {
            items
                .iter()
                .map(|w| w.as_str().map(str::to_string))
                .collect::<Option<Vec<String>>>()
        }) else {
            self.notes.push(Note::Skipped(format!(
                "{name}: command is not a list of strings"
            )));
            return Ok(());
        };
        if current.is_empty() {
            self.notes.push(Note::Skipped(format!(
                "{name}: its command is empty, so there is no entrypoint to wrap — set command to the image's entrypoint"
            )));
            return Ok(());
        }
        // Wrapped before: the original is wrapped again, so the result is
        // the same; the wrapper's items are put in front of (or in place of
        // an earlier run's, before) the entrypoint's, which stay as written.
        let original = after_our_dashes(&current, Some("exec")).unwrap_or_else(|| current.clone());
        if original.is_empty() {
            self.notes.push(Note::Skipped(format!(
                "{name}: its command is graceful-wait exec with nothing after --, so there is no entrypoint to wrap — set command to the image's entrypoint"
            )));
            return Ok(());
        }
        let argv = command::wrapper(self.settings.binary(), w, original.clone())?;
        let replaced = current.len() - original.len();
        if argv == current {
            self.notes.push(Note::Unchanged(format!(
                "{name}: command already wrapped as configured"
            )));
        } else if comment_among_first(self.src, list, replaced) {
            self.notes.push(Note::Skipped(format!(
                "{name}: a comment line stands among the command items an earlier run wrote, which updating them would lose; move the comment out of the command"
            )));
            return Ok(());
        } else {
            let items = argv[..argv.len() - original.len()].to_vec();
            self.notes
                .push(Note::Changed(format!("{name}: command ← {}", shown(&argv))));
            self.changes.push(Change::CommandPrefix {
                container: container.at.clone(),
                items,
                replaced,
            });
        }
        self.uses_binary = true;
        let mut mounts = vec![self.binary_mount()];
        // The wrapper writes its done file on the marker's volume: the only
        // volume of ours this container may write.
        if let Some(path) = &w.done_file {
            mounts.push(self.marker_mount(crate::config::marker_folder(path), false));
        }
        self.add_mounts(container, mounts);
        Ok(())
    }

    /// The binary's volume, mounted read-only in every container that runs
    /// it: no container but the installer can change the binary the proxy's
    /// hook runs. It replaces the mount an earlier run wrote.
    fn binary_mount(&self) -> Item {
        let name = self.settings.volume.clone();
        Item {
            replaces: self.earlier.volume.clone().filter(|v| *v != name),
            item: objects::binary_mount_item(self.settings),
            name,
        }
    }

    /// The done marker's volume, at the marker's folder: writable in the
    /// wrapped app, read-only in the proxy.
    fn marker_mount(&mut self, folder: &str, read_only: bool) -> Item {
        self.uses_marker = true;
        Item {
            name: self.settings.marker_volume.clone(),
            replaces: None,
            item: objects::marker_mount_item(self.settings, folder, read_only),
        }
    }

    /// The container's `volumeMounts` hold the mounts: one change, joined
    /// to the one just before it when that is this container's too.
    fn add_mounts(&mut self, container: &Container, items: Vec<Item>) {
        match self.changes.last_mut() {
            Some(Change::Mounts {
                container: at,
                items: earlier,
            }) if *at == container.at => earlier.extend(items),
            _ => self.changes.push(Change::Mounts {
                container: container.at.clone(),
                items,
            }),
        }
    }

    /// The pod's volumes of ours, in one change: the binary's, when a hook
    /// runs it; the marker's, when a container reads or writes it.
    fn add_volumes(&mut self) {
        let mut items = Vec::new();
        if self.uses_binary {
            let name = self.settings.volume.clone();
            items.push(Item {
                replaces: self.earlier.volume.clone().filter(|v| *v != name),
                item: objects::empty_dir(&name),
                name,
            });
        }
        if self.uses_marker {
            let name = self.settings.marker_volume.clone();
            items.push(Item {
                replaces: None,
                item: objects::empty_dir(&name),
                name,
            });
        }
        if !items.is_empty() {
            self.changes.push(Change::Volumes { items });
        }
    }

    /// First in `initContainers`, so it runs before a native sidecar starts.
    fn add_init_container(&mut self) {
        let name = self.settings.init_name.clone();
        self.changes.push(Change::InitContainer(Item {
            replaces: self.earlier.init_name.clone().filter(|v| *v != name),
            item: objects::init_container(self.settings),
            name,
        }));
    }

    fn share_process_namespace(&mut self) {
        if self
            .spec
            .get("shareProcessNamespace")
            .and_then(Node::as_str)
            == Some("true")
        {
            return;
        }
        self.changes.push(Change::ShareProcessNamespace);
        self.notes.push(Note::Warning(
            "shareProcessNamespace: true set for the process wait: every container of the pod now sees (and, as the same user, may signal) every other's processes".into(),
        ));
    }
}

/// What a preStop is written from: a graceful-wait call (with the hook
/// already there chained after it), or the config's own command, which
/// replaces the hook as written.
enum PreStop {
    Call(Call),
    Command(Vec<String>),
}

/// How a command list is written: whole, or by putting `items` in place of
/// its first `replaced` items (an earlier run's; none the first time), so
/// that the rest stay byte for byte. `whole` is the list that gives.
enum Edit {
    Replace(Vec<String>),
    Prefix {
        items: Vec<String>,
        replaced: usize,
        whole: Vec<String>,
    },
}

/// A command line for the summary, on one line (a script's line breaks as
/// `\n`).
fn shown(argv: &[String]) -> String {
    argv.join(" ").replace('\n', "\\n")
}

/// Whether a comment line stands in the text of a sequence's first `n`
/// items (up to the item after them), which replacing them would lose.
fn comment_among_first(src: &str, list: &Node, n: usize) -> bool {
    let items = list.as_seq().unwrap_or_default();
    match (items.first(), items.get(n)) {
        (Some(first), Some(kept)) if n > 0 => comment_line_in(&src[first.start..kept.start]),
        _ => false,
    }
}

/// Why a preStop cannot have a call put in front of it.
fn not_chainable(pre_stop: &Node) -> String {
    let alias = [&["exec"][..], &["exec", "command"]].iter().any(|path| {
        pre_stop
            .path(path)
            .is_some_and(|n| matches!(n.kind, Kind::Alias(_)))
    }) || matches!(pre_stop.kind, Kind::Alias(_));
    if alias {
        return "its preStop command is an alias (*) of a node anchored elsewhere, which cannot take the wait's items in front without changing every place that uses it; write it out here".into();
    }
    "has a preStop that is not an exec command, which a wait cannot chain".into()
}

/// What an earlier run of graceful-inject wrote into this pod, read off the
/// pod itself: its installer (the init container running `install
/// /install`), that container's name and the volume it fills.
#[derive(Default)]
struct Earlier {
    init_name: Option<String>,
    volume: Option<String>,
}

impl Earlier {
    fn find(spec: &Node) -> Earlier {
        let installer = spec
            .get("initContainers")
            .and_then(Node::as_seq)
            .unwrap_or_default()
            .iter()
            .find(|c| {
                let args: Option<Vec<&str>> = c
                    .get("args")
                    .and_then(Node::as_seq)
                    .map(|a| a.iter().filter_map(Node::as_str).collect());
                args.as_deref() == Some(&["install", INSTALL_DIR][..])
            });
        let Some(installer) = installer else {
            return Earlier::default();
        };
        let volume = installer
            .get("volumeMounts")
            .and_then(Node::as_seq)
            .unwrap_or_default()
            .iter()
            .find(|m| m.get("mountPath").and_then(Node::as_str) == Some(INSTALL_DIR))
            .and_then(|m| m.get("name"))
            .and_then(Node::as_str)
            .map(str::to_string);
        Earlier {
            init_name: installer
                .get("name")
                .and_then(Node::as_str)
                .map(str::to_string),
            volume,
        }
    }
}

/// `exec.command` of a handler, as strings.
fn exec_command(handler: &Node) -> Option<Vec<String>> {
    handler
        .path(&["exec", "command"])?
        .as_seq()?
        .iter()
        .map(|w| w.as_str().map(str::to_string))
        .collect()
}
