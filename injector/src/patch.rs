//! Decides what one pod template gets, and records it as edits: the preStop
//! hooks the config asks for, and — when any hook calls graceful-wait — the
//! shared volume, its read-only mounts and the init container that fills it.

use crate::config::{Hook, Rule, Settings, Wait, WaitFor, Wrap};
use crate::edits::Editor;
use crate::emit::{map, s, Y};
use crate::shell_loop;
use crate::yaml_tree::Node;
use std::time::Duration;

/// What happened to one container or pod, for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    Changed(String),
    Unchanged(String),
    Skipped(String),
    Warning(String),
}

pub struct Options {
    pub keep_commands: bool,
}

const DEFAULT_GRACE: u64 = 30;

/// Patches the pod spec `spec` according to `rule`.
pub fn pod(
    spec: &Node,
    rule: &Rule,
    settings: &Settings,
    options: &Options,
    editor: &mut Editor,
    notes: &mut Vec<Note>,
) {
    let Some(_) = spec.as_map() else {
        notes.push(Note::Skipped(
            "the pod template's spec is not a mapping".into(),
        ));
        return;
    };
    let grace = spec
        .get("terminationGracePeriodSeconds")
        .and_then(Node::as_str)
        .and_then(|g| g.parse::<u64>().ok())
        .unwrap_or(DEFAULT_GRACE);
    let budget = Duration::from_secs(grace).saturating_sub(settings.drain_margin);
    let budget = if budget < Duration::from_secs(1) {
        notes.push(Note::Warning(format!(
            "terminationGracePeriodSeconds {grace}s leaves no time for a wait after the {}s drain margin; waits get --timeout=1s — raise the grace period",
            settings.drain_margin.as_secs()
        )));
        Duration::from_secs(1)
    } else {
        budget
    };

    let mut uses_binary = false;
    let mut share_process_namespace = false;
    for want in &rule.containers {
        let found = find_container(spec, "containers", &want.name)
            .map(|c| (c, false))
            .or_else(|| find_container(spec, "initContainers", &want.name).map(|c| (c, true)));
        let Some((container, in_init)) = found else {
            notes.push(Note::Skipped(format!("{}: container not found", want.name)));
            continue;
        };
        let native =
            in_init && container.get("restartPolicy").and_then(Node::as_str) == Some("Always");
        if native && !settings.wait_on_native_sidecars {
            notes.push(Note::Skipped(format!(
                "{}: native sidecar (initContainers, restartPolicy: Always): Kubernetes stops it after the app, so its hook is left alone (set native-sidecars: wait to wait anyway)",
                want.name
            )));
            continue;
        }
        if in_init && !native {
            notes.push(Note::Skipped(format!(
                "{}: an init container has no preStop",
                want.name
            )));
            continue;
        }
        if let Hook::Wrap(w) = &want.hook {
            if wrap(container, &want.name, w, settings, editor, notes) {
                uses_binary = true;
                // The wrapper writes its done file on the shared volume.
                ensure_mount_mode(container, settings, editor, w.done_file.is_none());
            }
            continue;
        }
        let wait = match &want.hook {
            Hook::Wait(w) => Some((w.clone(), None)),
            Hook::Command(argv) if !options.keep_commands => {
                shell_loop::recognise(argv).map(|w| (w, Some("recognised shell loop")))
            }
            Hook::Command(_) | Hook::Wrap(_) => None,
        };
        let existing = container.path(&["lifecycle", "preStop"]);
        let command = match (&wait, &want.hook) {
            (Some((w, _)), _) => {
                let chained = match existing {
                    None => Vec::new(),
                    Some(p) => match exec_command(p) {
                        Some(old) => unwrap_ours(&old, settings),
                        None => {
                            notes.push(Note::Skipped(format!(
                                "{}: has a preStop that is not an exec command, which a wait cannot chain; left alone — give a command in the config to replace it",
                                want.name
                            )));
                            continue;
                        }
                    },
                };
                if let Some(t) = w.timeout.filter(|t| *t > budget) {
                    notes.push(Note::Warning(format!(
                        "{}: timeout {} is more than the {} left by terminationGracePeriodSeconds {grace}s minus the drain margin",
                        want.name,
                        show(t),
                        show(budget)
                    )));
                }
                uses_binary = true;
                if matches!(w.what, WaitFor::Process { .. }) {
                    share_process_namespace = true;
                }
                wait_command(w, settings, budget, &chained)
            }
            (None, Hook::Command(argv)) => argv.clone(),
            (None, Hook::Wait(_) | Hook::Wrap(_)) => {
                unreachable!("typed waits have a wait; wraps were handled above")
            }
        };
        if existing.and_then(exec_command).as_deref() == Some(command.as_slice()) {
            notes.push(Note::Unchanged(format!(
                "{}: preStop already as configured",
                want.name
            )));
        } else {
            set_pre_stop(container, &command, editor);
            let how = wait
                .as_ref()
                .and_then(|(_, n)| *n)
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            notes.push(Note::Changed(format!(
                "{}: preStop ← {}{how}",
                want.name,
                command.join(" ")
            )));
        }
        if wait.is_some() {
            ensure_mount(container, settings, editor);
        }
    }
    if uses_binary {
        ensure_volume(spec, settings, editor);
        ensure_init_container(spec, settings, editor);
    }
    if share_process_namespace {
        match spec.get("shareProcessNamespace").and_then(Node::as_str) {
            Some("true") => {}
            _ => {
                editor.set_key(spec, "shareProcessNamespace", raw("true"));
                notes.push(Note::Warning(
                    "shareProcessNamespace: true set for the process wait: every container of the pod now sees (and, as the same user, may signal) every other's processes".into(),
                ));
            }
        }
    }
}

fn find_container<'n, 'a>(spec: &'n Node<'a>, list: &str, name: &str) -> Option<&'n Node<'a>> {
    spec.get(list)?
        .as_seq()?
        .iter()
        .find(|c| c.get("name").and_then(Node::as_str) == Some(name))
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

/// A hook we wrote before: the part after `--` is the original hook.
fn unwrap_ours(old: &[String], settings: &Settings) -> Vec<String> {
    if old.first().map(String::as_str) == Some(settings.binary().as_str()) {
        return old
            .iter()
            .position(|w| w == "--")
            .map(|i| old[i + 1..].to_vec())
            .unwrap_or_default();
    }
    old.to_vec()
}

/// A duration the way graceful-wait reads it back.
fn show(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn wait_command(
    w: &Wait,
    settings: &Settings,
    budget: Duration,
    chained: &[String],
) -> Vec<String> {
    let mut argv = vec![settings.binary()];
    match &w.what {
        WaitFor::Tcp(ports) => {
            argv.push("tcp".into());
            argv.extend(ports.iter().map(|p| format!("--port={p}")));
        }
        WaitFor::Http { url, down_status } => {
            argv.push("http".into());
            argv.push(format!("--url={url}"));
            if let Some(ds) = down_status {
                argv.push(format!("--down-status={ds}"));
            }
        }
        WaitFor::Connections(ports) => {
            argv.push("connections".into());
            argv.extend(ports.iter().map(|p| format!("--port={p}")));
        }
        WaitFor::File(path) => {
            argv.push("file".into());
            argv.push(format!("--exists={path}"));
        }
        WaitFor::Process {
            names,
            exclude_uids,
        } => {
            argv.push("process".into());
            argv.extend(names.iter().map(|n| format!("--name={n}")));
            argv.extend(exclude_uids.iter().map(|u| format!("--exclude-uid={u}")));
        }
        WaitFor::Callback { urls, method, data } => {
            argv.push("callback".into());
            argv.extend(urls.iter().map(|u| format!("--url={u}")));
            if let Some(m) = method {
                argv.push(format!("--method={m}"));
            }
            if let Some(d) = data {
                argv.push(format!("--data={d}"));
            }
        }
    }
    argv.push(format!("--timeout={}", show(w.timeout.unwrap_or(budget))));
    if let Some(i) = w.interval {
        argv.push(format!("--interval={}", show(i)));
    }
    if !chained.is_empty() {
        argv.push("--".into());
        argv.extend(chained.iter().cloned());
    }
    argv
}

fn pre_stop_value(command: &[String]) -> Y {
    map(vec![(
        "exec",
        map(vec![(
            "command",
            Y::Seq(command.iter().map(|w| s(w.as_str())).collect()),
        )]),
    )])
}

fn set_pre_stop(container: &Node, command: &[String], editor: &mut Editor) {
    match container.get("lifecycle") {
        Some(lifecycle) if lifecycle.as_map().is_some() => {
            editor.set_key(lifecycle, "preStop", pre_stop_value(command))
        }
        _ => editor.set_key(
            container,
            "lifecycle",
            map(vec![("preStop", pre_stop_value(command))]),
        ),
    }
}

fn ensure_mount(container: &Node, settings: &Settings, editor: &mut Editor) {
    ensure_mount_mode(container, settings, editor, true)
}

/// The volume's mount: read-only, except in a wrapped app that writes its
/// done file there.
fn ensure_mount_mode(container: &Node, settings: &Settings, editor: &mut Editor, read_only: bool) {
    let mount = map(vec![
        ("name", s(&settings.volume)),
        ("mountPath", s(&settings.binary_dir)),
        ("readOnly", raw(if read_only { "true" } else { "false" })),
    ]);
    match container.get("volumeMounts") {
        Some(list) if list.as_seq().is_some() => {
            if !named(list, &settings.volume) {
                editor.add_item(list, mount, false);
            }
        }
        _ => editor.set_key(container, "volumeMounts", Y::Seq(vec![mount])),
    }
}

/// Wraps the container's `command` in `graceful-wait exec`; false when it
/// cannot (no `command` in the manifest: the image's entrypoint is unknown).
fn wrap(
    container: &Node,
    name: &str,
    w: &Wrap,
    settings: &Settings,
    editor: &mut Editor,
    notes: &mut Vec<Note>,
) -> bool {
    let Some(current) = container.get("command").and_then(Node::as_seq) else {
        notes.push(Note::Skipped(format!(
            "{name}: no command in the manifest, so the entrypoint to wrap is unknown — set command to the image's entrypoint, or use graceful-wait exec in the image (see the README)"
        )));
        return false;
    };
    let Some(current) = current
        .iter()
        .map(|w| w.as_str().map(str::to_string))
        .collect::<Option<Vec<String>>>()
    else {
        notes.push(Note::Skipped(format!(
            "{name}: command is not a list of strings"
        )));
        return false;
    };
    // Wrapped before: wrap the original again, so the result is the same.
    let original = match (current.first(), current.get(1)) {
        (Some(b), Some(e)) if *b == settings.binary() && e == "exec" => current
            .iter()
            .position(|a| a == "--")
            .map(|i| current[i + 1..].to_vec())
            .unwrap_or_default(),
        _ => current.clone(),
    };
    let mut argv = vec![settings.binary(), "exec".to_string()];
    argv.extend(w.wait_ready.iter().map(|u| format!("--wait-ready={u}")));
    argv.extend(w.on_term.iter().map(|u| format!("--on-term={u}")));
    argv.extend(w.on_exit.iter().map(|u| format!("--on-exit={u}")));
    argv.extend(w.done_file.iter().map(|p| format!("--done-file={p}")));
    argv.extend(w.quit_proxy.iter().map(|u| format!("--quit-proxy={u}")));
    argv.push("--".into());
    argv.extend(original);
    if argv == current {
        notes.push(Note::Unchanged(format!(
            "{name}: command already wrapped as configured"
        )));
    } else {
        editor.set_key(
            container,
            "command",
            Y::Seq(argv.iter().map(|a| s(a.as_str())).collect()),
        );
        notes.push(Note::Changed(format!(
            "{name}: command ← {}",
            argv.join(" ")
        )));
    }
    true
}

fn ensure_volume(spec: &Node, settings: &Settings, editor: &mut Editor) {
    let volume = map(vec![
        ("name", s(&settings.volume)),
        ("emptyDir", Y::Map(vec![])),
    ]);
    match spec.get("volumes") {
        Some(list) if list.as_seq().is_some() => {
            if !named(list, &settings.volume) {
                editor.add_item(list, volume, false);
            }
        }
        _ => editor.set_key(spec, "volumes", Y::Seq(vec![volume])),
    }
}

fn ensure_init_container(spec: &Node, settings: &Settings, editor: &mut Editor) {
    let init = init_container(settings);
    match spec.get("initContainers") {
        Some(list) if list.as_seq().is_some() => {
            if !named(list, &settings.init_name) {
                editor.add_item(list, init, true);
            }
        }
        _ => editor.set_key(spec, "initContainers", Y::Seq(vec![init])),
    }
}

fn named(list: &Node, name: &str) -> bool {
    list.as_seq()
        .unwrap_or_default()
        .iter()
        .any(|i| i.get("name").and_then(Node::as_str) == Some(name))
}

/// Where the init container mounts the volume. Not `binary-dir`: the image
/// keeps its binary at `/graceful-wait`, which a mount there would hide.
const INSTALL_DIR: &str = "/install";

/// The init container that copies the binary into the shared volume. It meets
/// the PodSecurity "restricted" profile and asks for little.
fn init_container(settings: &Settings) -> Y {
    map(vec![
        ("name", s(&settings.init_name)),
        ("image", s(&settings.image)),
        ("args", Y::Seq(vec![s("install"), s(INSTALL_DIR)])),
        (
            "volumeMounts",
            Y::Seq(vec![map(vec![
                ("name", s(&settings.volume)),
                ("mountPath", s(INSTALL_DIR)),
            ])]),
        ),
        (
            "resources",
            map(vec![
                (
                    "requests",
                    map(vec![("cpu", s("10m")), ("memory", s("16Mi"))]),
                ),
                (
                    "limits",
                    map(vec![("cpu", s("100m")), ("memory", s("32Mi"))]),
                ),
            ]),
        ),
        (
            "securityContext",
            map(vec![
                ("allowPrivilegeEscalation", raw("false")),
                ("capabilities", map(vec![("drop", Y::Seq(vec![s("ALL")]))])),
                ("readOnlyRootFilesystem", raw("true")),
                ("runAsNonRoot", raw("true")),
                ("runAsUser", raw("65532")),
                ("runAsGroup", raw("65532")),
                ("seccompProfile", map(vec![("type", s("RuntimeDefault"))])),
            ]),
        ),
    ])
}

/// A boolean or number, written plain.
fn raw(v: &str) -> Y {
    Y::Raw(v.to_string())
}
