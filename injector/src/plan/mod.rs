//! The planning: what each pod of a document gets, decided from the config
//! and the pod itself, as a list of [`Change`]s and the [`Note`]s the summary
//! shows. It writes no text: [`crate::apply`] turns the changes into edits,
//! and [`crate::verify`] proves the written text is the input plus exactly
//! these changes.
//!
//! - [`walk`]: the objects of a document (a `List`'s items too), each
//!   workload's pod template, and the rule the config has for it;
//! - [`pod`]: what one pod template gets — hooks, wraps, mounts, the volumes
//!   and the init container;
//! - [`command`]: the graceful-wait command lines the hooks and wraps run;
//! - [`objects`]: the items added to a pod (the init container, the volumes,
//!   the mounts, Istio's stub);
//! - [`auto`], [`shell_loop`], [`istio`], [`mesh`]: the wait a pod's probes
//!   call for, the shell loops that are a wait, what is known of Istio's
//!   injector, and every mesh's proxy.
//!
//! It uses the YAML engine ([`crate::yaml`]) to read and the config; nothing
//! else.

pub(crate) mod auto;
pub(crate) mod command;
pub(crate) mod istio;
pub(crate) mod mesh;
pub(crate) mod objects;
pub(crate) mod pod;
pub(crate) mod shell_loop;
pub(crate) mod walk;

pub use walk::document;

use crate::config::Rule;
use crate::yaml::{emit::Value, Node, Step};

/// The lists of a pod spec that hold containers, main containers first: a
/// container's name is looked up in this order everywhere.
pub const CONTAINER_LISTS: [&str; 2] = ["containers", "initContainers"];

/// Every container of a pod spec, with the list it is in.
pub fn containers<'n, 'a>(
    spec: &'n Node<'a>,
) -> impl Iterator<Item = (&'static str, &'n Node<'a>)> {
    CONTAINER_LISTS.into_iter().flat_map(move |list| {
        spec.get(list)
            .and_then(Node::as_seq)
            .unwrap_or_default()
            .iter()
            .map(move |c| (list, c))
    })
}

/// The container named `name` of a pod spec, and the list it is in.
pub fn container_named<'n, 'a>(
    spec: &'n Node<'a>,
    name: &str,
) -> Option<(&'static str, &'n Node<'a>)> {
    CONTAINER_LISTS
        .into_iter()
        .find_map(|list| spec.item_named(list, name).map(|c| (list, c)))
}

/// A container of the pod, by the list it is in and its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRef {
    /// `containers` or `initContainers`.
    pub list: &'static str,
    pub name: String,
}

/// One change to a pod spec, with the value it writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// `lifecycle.preStop` of the container becomes this exec command.
    PreStop {
        container: ContainerRef,
        command: Vec<String>,
    },
    /// The container's `lifecycle.preStop.exec.command` gets `items` in
    /// place of its first `replaced` items (an earlier run's call; none for
    /// a first run): a call that chains the rest, kept as written, after its
    /// `--`.
    PreStopPrefix {
        container: ContainerRef,
        items: Vec<String>,
        replaced: usize,
    },
    /// The container's `command` gets `items` in place of its first
    /// `replaced` items (the same rule): the wrapper, with the entrypoint
    /// kept as written after its `--`.
    CommandPrefix {
        container: ContainerRef,
        items: Vec<String>,
        replaced: usize,
    },
    /// The container's `volumeMounts` holds every item, each added last
    /// where it is not there: one change for the whole list, so its edit
    /// creates the list once where there is none.
    Mounts {
        container: ContainerRef,
        items: Vec<Item>,
    },
    /// `volumes` holds every item (the same rule).
    Volumes { items: Vec<Item> },
    /// `initContainers` holds the item, added first.
    InitContainer(Item),
    /// `containers` holds `item`, added last: the `istio-proxy` stub that
    /// Istio's injector merges onto the sidecar it adds.
    Container { name: String, item: Value },
    /// `shareProcessNamespace: true`.
    ShareProcessNamespace,
}

/// An item a list must hold, named `name`: it takes the place of the item
/// named `replaces` (what an earlier run wrote under other settings) or
/// `name`, or is added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    pub replaces: Option<String>,
    pub item: Value,
}

/// Everything planned for one pod template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodPlan {
    /// From the document's root to the pod spec.
    pub spec: Vec<Step>,
    /// For messages: `Deployment/name`.
    pub object: String,
    /// Its object's place in [`Planned::outcomes`].
    pub outcome: usize,
    pub changes: Vec<Change>,
}

/// What happened to one container or pod, for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    Changed(String),
    Unchanged(String),
    Skipped(String),
    Warning(String),
}

/// What happened to one object of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `Deployment/name` (or the kind alone when it has no name).
    pub object: String,
    pub notes: Vec<Note>,
}

/// What planning one document gave: an outcome for every object, and a plan
/// for every pod template that gets a change.
#[derive(Debug, Default)]
pub struct Planned {
    pub outcomes: Vec<Outcome>,
    pub pods: Vec<PodPlan>,
}

/// How a run plans, besides the config.
#[derive(Default)]
pub struct Options {
    /// `--keep-commands`: a configured command is written as it is, never
    /// converted to the wait it stands for.
    pub keep_commands: bool,
    /// `--istio-stub`: as the `missing-proxy: stub` setting, for this run.
    pub istio_stub: bool,
    /// The rule for every workload of the input, whatever its kind and name:
    /// the webhook's, decided from the pod's owner and annotations.
    pub rule: Option<Rule>,
}
