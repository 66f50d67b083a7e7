//! graceful-inject: rewrites Kubernetes manifests so the right containers get
//! graceful-wait preStop hooks, the init container and the shared volume.
//!
//! Data flows one way: [`config`] and [`yaml_tree`] parse; [`inject`] walks
//! the workloads and [`patch`] plans what each pod gets ([`plan`]), which
//! [`edits`] and [`emit`] turn into text inserted at the right offsets;
//! [`verify`] reads the result back and proves it is the input plus the plan
//! and nothing else; only then does [`files`] write (atomically), and
//! [`report`] says what happened.

pub mod auto;
pub mod cli;
pub mod config;
pub mod edits;
pub mod emit;
pub mod files;
pub mod fuzzing;
pub mod inject;
pub mod istio;
pub mod krm;
pub mod patch;
pub mod plan;
pub mod report;
pub mod run;
pub mod shell_loop;
pub mod verify;
pub mod webhook;
pub mod yaml_tree;
