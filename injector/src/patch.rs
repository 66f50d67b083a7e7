//! Decides what one pod template gets, and records it as edits: the preStop
//! hooks the config asks for, and — when any hook calls graceful-wait — the
//! shared volume, its read-only mounts and the init container that fills it.

use crate::config::{Callback, Hook, Rule, Settings, Wait, WaitFor, Wrap};
use crate::edits::Editor;
use crate::emit::{map, string, Value};
use crate::plan::{Change, ContainerRef};
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

#[derive(Default)]
pub struct Options {
    pub keep_commands: bool,
    /// `--istio-stub`: as the `missing-proxy: stub` setting, for this run.
    pub istio_stub: bool,
    /// The rule for every workload of the input, whatever its kind and name:
    /// the webhook's, decided from the pod's owner and annotations.
    pub rule: Option<crate::config::Rule>,
    /// Test-only: damages the edited text before the check of the output
    /// runs, to show that the check catches each kind of damage. Always
    /// `None` in the program.
    #[doc(hidden)]
    pub sabotage: Option<fn(&str) -> String>,
    /// Test-only: check the whole stream at once (the path taken when a
    /// document cannot be read on its own), not document by document.
    #[doc(hidden)]
    pub whole_stream: bool,
}

const DEFAULT_GRACE: u64 = 30;

/// The first of `keys` whose value is there but neither a list nor empty:
/// adding to it would mean replacing it, and all it holds.
fn not_a_list<'k>(map: &Node, keys: &[&'k str]) -> Option<&'k str> {
    keys.iter().copied().find(|k| {
        map.get(k).is_some_and(|v| {
            v.as_seq().is_none()
                && !v
                    .as_str()
                    .is_some_and(|t| t.is_empty() || t == "null" || t == "~")
        })
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

/// Everything one pod template's patch works with.
struct Pod<'p, 'a, 's> {
    spec: &'p Node<'a>,
    /// The pod template's metadata, when there is one.
    meta: Option<&'p Node<'a>>,
    settings: &'p Settings,
    options: &'p Options,
    editor: &'p mut Editor<'s>,
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
}

/// Patches the pod spec `spec` according to `rule`; returns what it changed.
/// An error means the patch would write a command the binary does not
/// accept: a bug, never written.
pub fn pod(
    spec: &Node,
    meta: Option<&Node>,
    rule: &Rule,
    settings: &Settings,
    options: &Options,
    editor: &mut Editor,
    notes: &mut Vec<Note>,
) -> Result<Vec<Change>, String> {
    if spec.as_map().is_none() {
        notes.push(Note::Skipped(
            "the pod template's spec is not a mapping".into(),
        ));
        return Ok(Vec::new());
    }
    if !plain_keys(spec) {
        notes.push(Note::Skipped("the pod spec has an explicit (?) or non-scalar key, which graceful-inject does not edit around; write it as plain keys".into()));
        return Ok(Vec::new());
    }
    if spec.get(MERGE_KEY).is_some() {
        notes.push(Note::Skipped(format!("the pod spec uses a merge key ({MERGE_KEY}): what it merges would be overridden by what graceful-inject adds; write the pod spec out in full")));
        return Ok(Vec::new());
    }
    if let Some(key) = not_a_list(spec, &["volumes", "initContainers"]) {
        notes.push(Note::Skipped(format!("the pod spec's {key} is neither a list nor empty; graceful-inject does not replace what it does not understand — make it a list")));
        return Ok(Vec::new());
    }
    let (grace, budget) = timeout_budget(spec, settings, notes);
    let mut pod = Pod {
        spec,
        meta,
        settings,
        options,
        editor,
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
    for want in &rule.containers {
        let missing = find_container(spec, "containers", &want.name).is_none()
            && find_container(spec, "initContainers", &want.name).is_none();
        if missing && want.name == ISTIO_PROXY && pod.stubs_missing_proxy() {
            pod.add_stub(&want.hook)?;
            continue;
        }
        let Some(container) = pod.hookable_container(&want.name) else {
            continue;
        };
        match &want.hook {
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

/// What one graceful-wait call in a preStop is.
enum Call {
    Wait(Wait),
    Callback(Callback),
}

use crate::istio::{self, PROXY as ISTIO_PROXY, STUB_IMAGE};

impl<'p, 'a, 's> Pod<'p, 'a, 's> {
    /// The container to hook, or None with a note saying why not.
    fn hookable_container(&mut self, name: &str) -> Option<Container<'p, 'a>> {
        let spec = self.spec;
        let found = find_container(spec, "containers", name)
            .map(|c| (c, false))
            .or_else(|| find_container(spec, "initContainers", name).map(|c| (c, true)));
        let Some((container, in_init)) = found else {
            self.notes
                .push(Note::Skipped(format!("{name}: container not found")));
            return None;
        };
        let native =
            in_init && container.get("restartPolicy").and_then(Node::as_str) == Some("Always");
        if native && !self.settings.wait_on_native_sidecars {
            self.notes.push(Note::Skipped(format!(
                "{name}: native sidecar (initContainers, restartPolicy: Always): Kubernetes stops it after the app, so its hook is left alone (set native-sidecars: wait to wait anyway)"
            )));
            return None;
        }
        if in_init && !native {
            self.notes.push(Note::Skipped(format!(
                "{name}: an init container has no preStop"
            )));
            return None;
        }
        if let Some(key) = not_a_list(container, &["volumeMounts"]) {
            self.notes.push(Note::Skipped(format!(
                "{name}: its {key} is neither a list nor empty; graceful-inject does not replace what it does not understand — make it a list"
            )));
            return None;
        }
        let odd_keys =
            !plain_keys(container) || container.get("lifecycle").is_some_and(|l| !plain_keys(l));
        if odd_keys {
            self.notes.push(Note::Skipped(format!(
                "{name}: has an explicit (?) or non-scalar key, which graceful-inject does not edit around; write it as plain keys"
            )));
            return None;
        }
        let merged = container.get(MERGE_KEY).is_some()
            || container
                .get("lifecycle")
                .is_some_and(|l| l.get(MERGE_KEY).is_some());
        if merged {
            self.notes.push(Note::Skipped(format!(
                "{name}: uses a merge key ({MERGE_KEY}): what it merges (a preStop, mounts) would be overridden by what graceful-inject adds; write the container out in full"
            )));
            return None;
        }
        Some(Container {
            node: container,
            at: ContainerRef {
                list: if in_init {
                    "initContainers"
                } else {
                    "containers"
                },
                name: name.to_string(),
            },
        })
    }

    /// Sets the container's preStop as `hook` says: the configured command,
    /// or a graceful-wait call with the existing exec hook chained after it.
    /// A command that is a shell loop graceful-wait replaces becomes its wait.
    fn set_hook(&mut self, container: &Container, hook: &Hook) -> Result<(), String> {
        let (call, how) = self.call_for(&container.at.name, hook);
        self.write_pre_stop(container, hook, call, &how)
    }

    /// The graceful-wait call `hook` means for the container `name`, and
    /// how it was arrived at (for the summary); None for a command kept as
    /// written (or a wrap, which is not a preStop).
    fn call_for(&mut self, name: &str, hook: &Hook) -> (Option<Call>, String) {
        match hook {
            // `auto`: the wait this pod's probes call for.
            Hook::Wait(w) if w.what == WaitFor::Auto => {
                let (what, why) = crate::auto::choose(self.spec, name);
                let wait = Wait {
                    what,
                    timeout: w.timeout,
                    interval: w.interval,
                };
                (Some(Call::Wait(wait)), format!(" (auto: {why})"))
            }
            Hook::Wait(w) => (Some(Call::Wait(w.clone())), String::new()),
            Hook::Callback(c) => (Some(Call::Callback(c.clone())), String::new()),
            Hook::Command(argv) if !self.options.keep_commands => {
                match shell_loop::recognise(argv) {
                    Some(w) => (Some(Call::Wait(w)), " (recognised shell loop)".into()),
                    None => {
                        if shell_loop::looks_like_a_loop(argv) {
                            self.notes.push(Note::Warning(format!(
                                "{name}: the command looks like a wait loop but is not one of the forms converted with certainty (docs/injector.md, \"Shell loops\"); kept as written"
                            )));
                        }
                        (None, String::new())
                    }
                }
            }
            Hook::Command(_) | Hook::Wrap(_) => (None, String::new()),
        }
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
    fn add_stub(&mut self, hook: &Hook) -> Result<(), String> {
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
        let (call, how) = self.call_for(name, hook);
        let Some(call) = call else {
            self.notes.push(Note::Skipped(format!(
                "{name}: container not found, and no stub written: a stub carries a graceful-wait call, and this container's value is a command kept as written; give a wait (or auto)"
            )));
            return Ok(());
        };
        let command = self.graceful_command(name, &call, &istio::drain_request(self.meta))?;
        let mounts = self.call_mounts(&call);
        let item = map(vec![
            ("name", string(name)),
            ("image", string(STUB_IMAGE)),
            (
                "lifecycle",
                map(vec![("preStop", pre_stop_value(&command))]),
            ),
            (
                "volumeMounts",
                Value::Seq(mounts.into_iter().map(|m| m.item).collect()),
            ),
        ]);
        ensure_item(
            self.editor,
            self.spec,
            "containers",
            (name, None),
            item.clone(),
            false,
        );
        self.changes.push(Change::Container {
            name: name.to_string(),
            item,
        });
        self.notes.push(Note::Changed(format!(
            "{name}: stub added for Istio's injector to merge onto its sidecar (image: {STUB_IMAGE}); preStop ← {}{how}",
            command.join(" ")
        )));
        Ok(())
    }

    fn write_pre_stop(
        &mut self,
        container: &Container,
        hook: &Hook,
        call: Option<Call>,
        how: &str,
    ) -> Result<(), String> {
        let name = container.at.name.as_str();
        let existing = container.node.path(&["lifecycle", "preStop"]);
        // Replacing a hook that holds a comment line would lose the comment.
        if existing.is_some_and(|p| self.editor.holds_comment(p)) {
            self.notes.push(Note::Skipped(format!(
                "{name}: its preStop holds a comment line, which replacing it would lose; move the comment out of the hook"
            )));
            return Ok(());
        }
        let command = match (&call, hook) {
            (Some(call), _) => {
                let chained = match existing {
                    None => Vec::new(),
                    Some(p) => match exec_command(p) {
                        Some(old) => after_our_dashes(&old, None).unwrap_or(old),
                        None => {
                            self.notes.push(Note::Skipped(format!(
                                "{name}: has a preStop that is not an exec command, which a wait cannot chain; left alone — give a command in the config to replace it"
                            )));
                            return Ok(());
                        }
                    },
                };
                self.graceful_command(name, call, &chained)?
            }
            (None, Hook::Command(argv)) => argv.clone(),
            (None, _) => unreachable!("typed values are calls; wraps are handled apart"),
        };
        if existing.and_then(exec_command).as_deref() == Some(command.as_slice()) {
            self.notes.push(Note::Unchanged(format!(
                "{name}: preStop already as configured"
            )));
        } else {
            set_pre_stop(container.node, &command, self.editor);
            self.changes.push(Change::PreStop {
                container: container.at.clone(),
                command: command.clone(),
            });
            self.notes.push(Note::Changed(format!(
                "{name}: preStop ← {}{how}",
                command.join(" ")
            )));
        }
        let mounts = match &call {
            Some(call) => self.call_mounts(call),
            None => Vec::new(),
        };
        self.add_mounts(container, mounts);
        Ok(())
    }

    /// What a container whose preStop is `call` mounts: the binary, and for
    /// a file wait the marker's own volume, read-only.
    fn call_mounts(&mut self, call: &Call) -> Vec<Wanted> {
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

    /// `graceful-wait <mode> ... [-- CHAINED]`, checked against the binary's
    /// own command line before it is written.
    fn graceful_command(
        &mut self,
        name: &str,
        call: &Call,
        chained: &[String],
    ) -> Result<Vec<String>, String> {
        let timeout = match call {
            Call::Wait(w) => w.timeout,
            Call::Callback(c) => c.timeout,
        };
        if let Some(t) = timeout.filter(|t| *t > self.budget) {
            self.notes.push(Note::Warning(format!(
                "{name}: timeout {} is more than the {} left by terminationGracePeriodSeconds {}s minus the drain margin",
                show(t),
                show(self.budget),
                self.grace
            )));
        }
        self.uses_binary = true;
        let mut argv = vec![self.settings.binary()];
        // A hook's output is not in `kubectl logs`; a copy on the container's
        // own stdout is. Opened without blocking; if it cannot be opened the
        // hook says so on stderr and goes on.
        if let Some(copy) = &self.log_copy {
            argv.push(format!("--log-copy={copy}"));
        }
        match call {
            Call::Wait(w) => {
                if matches!(w.what, WaitFor::Process { .. }) {
                    self.shares_processes = true;
                }
                wait_args(w, &mut argv);
            }
            Call::Callback(c) => callback_args(c, &mut argv),
        }
        argv.push(format!(
            "--timeout={}",
            show(timeout.unwrap_or(self.budget))
        ));
        if let Call::Wait(Wait {
            interval: Some(i), ..
        }) = call
        {
            argv.push(format!("--interval={}", show(*i)));
        }
        if !chained.is_empty() {
            argv.push("--".into());
            argv.extend(chained.iter().cloned());
        }
        accepted_by_the_binary(&argv)?;
        Ok(argv)
    }

    /// Wraps the container's `command` in `graceful-wait exec`; skipped with
    /// a note when it cannot (no `command` in the manifest: the image's
    /// entrypoint is unknown).
    fn wrap(&mut self, container: &Container, w: &Wrap) -> Result<(), String> {
        let name = container.at.name.as_str();
        if container
            .node
            .get("command")
            .is_some_and(|c| self.editor.holds_comment(c))
        {
            self.notes.push(Note::Skipped(format!(
                "{name}: its command holds a comment line, which wrapping it would lose; move the comment out of the command"
            )));
            return Ok(());
        }
        let Some(current) = container.node.get("command").and_then(Node::as_seq) else {
            self.notes.push(Note::Skipped(format!(
                "{name}: no command in the manifest, so the entrypoint to wrap is unknown — set command to the image's entrypoint, or use graceful-wait exec in the image (see the README)"
            )));
            return Ok(());
        };
        let Some(current) = current
            .iter()
            .map(|w| w.as_str().map(str::to_string))
            .collect::<Option<Vec<String>>>()
        else {
            self.notes.push(Note::Skipped(format!(
                "{name}: command is not a list of strings"
            )));
            return Ok(());
        };
        // Wrapped before: wrap the original again, so the result is the same.
        let binary = self.settings.binary();
        let original = after_our_dashes(&current, Some("exec")).unwrap_or(current.clone());
        let mut argv = vec![binary, "exec".to_string()];
        argv.extend(w.wait_ready.iter().map(|u| format!("--wait-ready={u}")));
        argv.extend(w.on_term.iter().map(|u| format!("--on-term={u}")));
        argv.extend(w.on_exit.iter().map(|u| format!("--on-exit={u}")));
        argv.extend(w.done_file.iter().map(|p| format!("--done-file={p}")));
        argv.extend(w.quit_proxy.iter().map(|u| format!("--quit-proxy={u}")));
        argv.push("--".into());
        argv.extend(original);
        accepted_by_the_binary(&argv)?;
        if argv == current {
            self.notes.push(Note::Unchanged(format!(
                "{name}: command already wrapped as configured"
            )));
        } else {
            self.editor.set_key(
                container.node,
                "command",
                Value::Seq(argv.iter().map(|a| string(a.as_str())).collect()),
            );
            self.changes.push(Change::Command {
                container: container.at.clone(),
                argv: argv.clone(),
            });
            self.notes.push(Note::Changed(format!(
                "{name}: command ← {}",
                argv.join(" ")
            )));
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
    fn binary_mount(&self) -> Wanted {
        let name = self.settings.volume.clone();
        Wanted {
            replaces: self.earlier.volume.clone().filter(|v| *v != name),
            item: binary_mount_item(self.settings),
            name,
        }
    }

    /// The done marker's volume, at the marker's folder: writable in the
    /// wrapped app, read-only in the proxy.
    fn marker_mount(&mut self, folder: &str, read_only: bool) -> Wanted {
        self.uses_marker = true;
        let name = self.settings.marker_volume.clone();
        Wanted {
            replaces: None,
            item: map(vec![
                ("name", string(&name)),
                ("mountPath", string(folder)),
                (
                    "readOnly",
                    literal(if read_only { "true" } else { "false" }),
                ),
            ]),
            name,
        }
    }

    /// Puts the mounts into the container's `volumeMounts` in one edit (two
    /// separate edits would each create the list when there is none).
    fn add_mounts(&mut self, container: &Container, mounts: Vec<Wanted>) {
        for m in &mounts {
            self.changes.push(Change::Mount {
                container: container.at.clone(),
                name: m.name.clone(),
                replaces: m.replaces.clone(),
                item: m.item.clone(),
            });
        }
        ensure_items(self.editor, container.node, "volumeMounts", mounts, false);
    }

    /// The pod's volumes of ours, in one edit (two would each create the list
    /// when there is none): the binary's, when a hook runs it; the marker's,
    /// when a container reads or writes it.
    fn add_volumes(&mut self) {
        let empty_dir = |name: &str| {
            map(vec![
                ("name", string(name)),
                ("emptyDir", Value::Map(vec![])),
            ])
        };
        let mut volumes = Vec::new();
        if self.uses_binary {
            let name = self.settings.volume.clone();
            volumes.push(Wanted {
                replaces: self.earlier.volume.clone().filter(|v| *v != name),
                item: empty_dir(&name),
                name,
            });
        }
        if self.uses_marker {
            let name = self.settings.marker_volume.clone();
            volumes.push(Wanted {
                replaces: None,
                item: empty_dir(&name),
                name,
            });
        }
        for v in &volumes {
            self.changes.push(Change::Volume {
                name: v.name.clone(),
                replaces: v.replaces.clone(),
                item: v.item.clone(),
            });
        }
        ensure_items(self.editor, self.spec, "volumes", volumes, false);
    }

    /// First in `initContainers`, so it runs before a native sidecar starts.
    fn add_init_container(&mut self) {
        let init = init_container(self.settings);
        let name = self.settings.init_name.clone();
        let replaces = self.earlier.init_name.clone().filter(|v| *v != name);
        ensure_item(
            self.editor,
            self.spec,
            "initContainers",
            (&name, replaces.as_deref()),
            init.clone(),
            true,
        );
        self.changes.push(Change::InitContainer {
            name,
            replaces,
            item: init,
        });
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
        self.editor
            .set_key(self.spec, "shareProcessNamespace", literal("true"));
        self.changes.push(Change::ShareProcessNamespace);
        self.notes.push(Note::Warning(
            "shareProcessNamespace: true set for the process wait: every container of the pod now sees (and, as the same user, may signal) every other's processes".into(),
        ));
    }
}

/// An item the list under a key must hold: named `name`, in place of the
/// item named `replaces` (what an earlier run wrote under other settings).
struct Wanted {
    name: String,
    replaces: Option<String>,
    item: Value,
}

/// Find, replace or create: the list under `key` holds `item`. See
/// [`ensure_items`].
fn ensure_item(
    editor: &mut Editor,
    parent: &Node,
    key: &str,
    (name, replaces): (&str, Option<&str>),
    item: Value,
    first: bool,
) {
    let wanted = Wanted {
        name: name.to_string(),
        replaces: replaces.map(str::to_string),
        item,
    };
    ensure_items(editor, parent, key, vec![wanted], first)
}

/// Find, replace or create: the list under `key` holds every wanted item.
/// An item named `replaces`, or else one named `name`, is replaced when it
/// differs; the others are added, first or last; the list is created, once,
/// when there is none. So a second run with new settings (a new image,
/// volume name or binary dir) gives what a fresh run would.
fn ensure_items(editor: &mut Editor, parent: &Node, key: &str, wanted: Vec<Wanted>, first: bool) {
    if wanted.is_empty() {
        return;
    }
    let Some(list) = parent.get(key).filter(|l| l.as_seq().is_some()) else {
        let items = wanted.into_iter().map(|w| w.item).collect();
        editor.set_key(parent, key, Value::Seq(items));
        return;
    };
    let items = list.as_seq().unwrap_or_default();
    let named = |n: &str| {
        items
            .iter()
            .position(|i| i.get("name").and_then(Node::as_str) == Some(n))
    };
    for w in wanted {
        match w
            .replaces
            .as_deref()
            .and_then(named)
            .or_else(|| named(&w.name))
        {
            Some(i) if crate::verify::same(&items[i], &w.item) => {}
            Some(i) => editor.replace_item(list, i, w.item),
            None => editor.add_item(list, w.item, first),
        }
    }
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

/// Every command the injector writes is first parsed by the binary's own
/// command-line definition, without the environment: a hook the binary
/// would reject is a bug here, and nothing is written.
///
/// Building the parser costs far more than parsing, and a stream of many
/// workloads writes the same few commands again and again: commands already
/// accepted are remembered (a bounded number of them).
fn accepted_by_the_binary(argv: &[String]) -> Result<(), String> {
    use std::{cell::RefCell, collections::HashSet};
    thread_local! {
        static ACCEPTED: RefCell<HashSet<Vec<String>>> = RefCell::new(HashSet::new());
    }
    if ACCEPTED.with(|a| a.borrow().contains(argv)) {
        return Ok(());
    }
    graceful_wait_shared::cli::Cli::try_parse_args_without_env(argv)
        .map(|_| {
            ACCEPTED.with(|a| {
                let mut a = a.borrow_mut();
                if a.len() < 4096 {
                    a.insert(argv.to_vec());
                }
            })
        })
        .map_err(|e| {
            format!(
                "internal error: graceful-inject planned a command graceful-wait rejects ({}): {}; nothing was written — please report this with the config",
                argv.join(" "),
                e.to_string().lines().next().unwrap_or_default()
            )
        })
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

/// A command an earlier run wrote (`DIR/graceful-wait [--log-copy=…] MODE ... [-- ORIGINAL]`,
/// whatever DIR was then): the original part after `--`; None when it is not
/// ours. With `mode`, only a command of that mode counts.
fn after_our_dashes(argv: &[String], mode: Option<&str>) -> Option<Vec<String>> {
    let (binary, rest) = argv.split_first()?;
    // Global options (`--log-copy=…`, written in their `=` form) come first.
    let written_mode = rest.iter().find(|w| !w.starts_with('-'))?.as_str();
    let ours = binary.starts_with('/')
        && binary.rsplit('/').next() == Some(graceful_wait_shared::cli::BINARY_NAME)
        && graceful_wait_shared::cli::MODES.contains(&written_mode)
        && mode.is_none_or(|m| m == written_mode);
    if !ours {
        return None;
    }
    Some(
        argv.iter()
            .position(|w| w == "--")
            .map(|i| argv[i + 1..].to_vec())
            .unwrap_or_default(),
    )
}

/// A duration the way graceful-wait reads it back, exactly.
fn show(d: Duration) -> String {
    graceful_wait_shared::duration::show(d)
}

fn wait_args(w: &Wait, argv: &mut Vec<String>) {
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
        WaitFor::Listeners(exclude_uids) => {
            argv.push("listeners".into());
            argv.extend(exclude_uids.iter().map(|u| format!("--exclude-uid={u}")));
        }
        WaitFor::Auto => unreachable!("auto is chosen per pod before a command is written"),
    }
}

fn callback_args(c: &Callback, argv: &mut Vec<String>) {
    argv.push("callback".into());
    argv.extend(c.urls.iter().map(|u| format!("--url={u}")));
    if let Some(m) = &c.method {
        argv.push(format!("--method={m}"));
    }
    if let Some(d) = &c.data {
        argv.push(format!("--data={d}"));
    }
}

fn pre_stop_value(command: &[String]) -> Value {
    map(vec![(
        "exec",
        map(vec![(
            "command",
            Value::Seq(command.iter().map(|w| string(w.as_str())).collect()),
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

/// The binary's volume as a hooked container mounts it: read-only.
pub(crate) fn binary_mount_item(settings: &Settings) -> Value {
    map(vec![
        ("name", string(&settings.volume)),
        ("mountPath", string(&settings.binary_dir)),
        ("readOnly", literal("true")),
    ])
}

/// Where the init container mounts the volume. Not `binary-dir`: the image
/// keeps its binary at `/graceful-wait`, which a mount there would hide.
const INSTALL_DIR: &str = "/install";

/// The init container that copies the binary into the shared volume. It meets
/// the PodSecurity "restricted" profile and asks for little.
pub(crate) fn init_container(settings: &Settings) -> Value {
    map(vec![
        ("name", string(&settings.init_name)),
        ("image", string(&settings.image)),
        (
            "args",
            Value::Seq(vec![string("install"), string(INSTALL_DIR)]),
        ),
        (
            "volumeMounts",
            Value::Seq(vec![map(vec![
                ("name", string(&settings.volume)),
                ("mountPath", string(INSTALL_DIR)),
            ])]),
        ),
        (
            "resources",
            map(vec![
                (
                    "requests",
                    map(vec![("cpu", string("10m")), ("memory", string("16Mi"))]),
                ),
                (
                    "limits",
                    map(vec![("cpu", string("100m")), ("memory", string("32Mi"))]),
                ),
            ]),
        ),
        (
            "securityContext",
            map(vec![
                ("allowPrivilegeEscalation", literal("false")),
                (
                    "capabilities",
                    map(vec![("drop", Value::Seq(vec![string("ALL")]))]),
                ),
                ("readOnlyRootFilesystem", literal("true")),
                ("runAsNonRoot", literal("true")),
                ("runAsUser", literal("65532")),
                ("runAsGroup", literal("65532")),
                (
                    "seccompProfile",
                    map(vec![("type", string("RuntimeDefault"))]),
                ),
            ]),
        ),
    ])
}

/// A boolean or number, written plain.
fn literal(v: &str) -> Value {
    Value::Literal(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn only_commands_the_binary_accepts_pass() {
        let gw = "/graceful-wait/graceful-wait";
        for ok in [
            &[gw, "tcp", "--port=20000", "--timeout=25s"][..],
            &[
                gw,
                "http",
                "--url=localhost:3000/health",
                "--",
                "pilot-agent",
                "drain",
            ],
            &[gw, "callback", "--url=https://h/x", "--timeout=5s"],
            &[
                gw,
                "exec",
                "--done-file=/graceful-wait/app.done",
                "--",
                "/app",
            ],
        ] {
            assert!(accepted_by_the_binary(&argv(ok)).is_ok(), "{ok:?}");
        }
        for bad in [
            &[gw, "callback", "--url=https://h/x", "--interval=1s"][..],
            &[gw, "tcp", "--port=0"],
            &[gw, "wait", "--port=1"],
        ] {
            let e = accepted_by_the_binary(&argv(bad)).unwrap_err();
            assert!(
                e.contains("internal error") && e.contains("nothing was written"),
                "{e}"
            );
        }
    }

    #[test]
    fn the_environment_cannot_make_a_command_pass() {
        // A variable in the injector's own environment must not stand in for
        // a flag the written command lacks.
        std::env::set_var("GRACEFUL_WAIT_TCP_PORT", "8080");
        let r = accepted_by_the_binary(&argv(&["/gw", "tcp"]));
        std::env::remove_var("GRACEFUL_WAIT_TCP_PORT");
        assert!(r.is_err());
    }
}
