//! graceful-inject: rewrites Kubernetes manifests so the right containers get
//! graceful-wait preStop hooks, the init container and the shared volume.
//!
//! Data flows one way, room by room; each room uses only the rooms above it:
//!
//! | room | what it holds | uses |
//! |---|---|---|
//! | [`yaml`] | the YAML engine: span-keeping trees, go-yaml's tolerances, a node's meaning, new text and where it goes | — |
//! | [`config`] | the config file (the original tool's format), read and checked | `yaml` |
//! | [`plan`] | what each pod gets: the walk, the pod, the commands, the objects added, `auto`, shell loops, Istio | `yaml`, `config` |
//! | [`apply`] | the planned changes as text edits | `yaml`, `plan` |
//! | [`verify`] | the proof: the output is the input plus the plan, and a second run changes nothing | `yaml`, `plan`, `apply` |
//! | [`stream`] | read → plan → apply → prove → write, a document at a time | all of the above |
//! | [`front`] | the front ends: the command line, files, the summary, KRM, the webhook, Istio's template | all of the above |
//!
//! [`error`] is every room's error type, with its exit status.

pub(crate) mod apply;
pub mod config;
pub mod error;
pub mod front;
pub mod fuzzing;
pub mod plan;
pub mod stream;
pub(crate) mod verify;
pub mod yaml;
