//! graceful-inject: rewrites Kubernetes manifests so the right containers get
//! graceful-wait preStop hooks, the init container and the shared volume.
//!
//! Data flows one way: [`config`] and [`yaml_tree`] parse, [`inject`] walks
//! the workloads and [`patch`] decides what each pod gets, [`edits`] and
//! [`emit`] turn that into text inserted at the right offsets, [`files`]
//! writes atomically and [`report`] says what happened.

pub mod cli;
pub mod config;
pub mod edits;
pub mod emit;
pub mod files;
pub mod inject;
pub mod patch;
pub mod report;
pub mod run;
pub mod shell_loop;
pub mod yaml_tree;
