//! Decides what one pod template gets, and records it as edits: the preStop
//! hooks the config asks for, and — when any hook calls graceful-wait — the
//! shared volume, its read-only mounts and the init container that fills it.

use crate::config::{Hook, Rule, Settings, Wait, WaitFor};
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
        let wait = match &want.hook {
            Hook::Wait(w) => Some((w.clone(), None)),
            Hook::Command(argv) if !options.keep_commands => {
                shell_loop::recognise(argv).map(|w| (w, Some("recognised shell loop")))
            }
            Hook::Command(_) => None,
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
                wait_command(w, settings, budget, &chained)
            }
            (None, Hook::Command(argv)) => argv.clone(),
            (None, Hook::Wait(_)) => unreachable!("a typed wait always has a wait"),
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
    let mount = map(vec![
        ("name", s(&settings.volume)),
        ("mountPath", s(&settings.binary_dir)),
        ("readOnly", raw("true")),
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
