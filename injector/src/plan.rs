//! What the injector decided for one pod template, recorded as it decides, so
//! that [`crate::verify`] can prove the written text says exactly that and
//! nothing more. The edits and this record come from the same decisions; the
//! check reads the output back with the YAML reader and compares it with the
//! input plus these changes.

use crate::emit::Value;

/// A step from a document's root to a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
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
    /// The container's `command` becomes this (a wrapped entrypoint).
    Command {
        container: ContainerRef,
        argv: Vec<String>,
    },
    /// The container's `volumeMounts` holds `item`, named `name`: it takes
    /// the place of the item named `replaces` (what an earlier run wrote
    /// under other settings) or `name`, or is added last.
    Mount {
        container: ContainerRef,
        name: String,
        replaces: Option<String>,
        item: Value,
    },
    /// `volumes` holds `item` (the same rule, added last).
    Volume {
        name: String,
        replaces: Option<String>,
        item: Value,
    },
    /// `initContainers` holds `item` (the same rule, added first).
    InitContainer {
        name: String,
        replaces: Option<String>,
        item: Value,
    },
    /// `containers` holds `item`, added last: the `istio-proxy` stub that
    /// Istio's injector merges onto the sidecar it adds.
    Container { name: String, item: Value },
    /// `shareProcessNamespace: true`.
    ShareProcessNamespace,
}

/// Everything planned for one pod template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodPlan {
    /// From the document's root to the pod spec.
    pub spec: Vec<Seg>,
    /// For messages: `Deployment/name`.
    pub object: String,
    pub changes: Vec<Change>,
}
