//! graceful-wait: a preStop hook that holds a sidecar proxy up until the app in
//! the same pod has really finished.
//!
//! Data flows one way: [`cli`] parses, [`modes`] sets up the chosen wait, whose
//! look ([`listen`], [`http_probe`]) decides one thing per poll, [`poll`] repeats that until the condition holds or
//! the deadline passes, [`chain`] runs the hook the wait was put in front of, and
//! [`exit`] turns what was observed into the process's exit status.

pub mod callback;
pub mod chain;
pub mod cli;
pub mod client;
pub mod duration;
pub mod exit;
pub mod expand;
pub mod file_wait;
pub mod http_probe;
pub mod install;
pub mod listen;
pub mod logging;
pub mod modes;
pub mod poll;
pub mod process_wait;
pub mod runtime;
pub mod status_set;
pub mod target;
pub mod wrapper;
