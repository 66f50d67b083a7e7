//! What `graceful-wait` (the in-pod binary) and `graceful-inject` (the
//! manifest rewriter) share, and nothing else:
//!
//! - [`cli`]: the binary's command line, defined once. The binary parses its
//!   arguments with it; the injector parses every command it writes with it,
//!   so a manifest never carries a hook the binary would reject.
//! - the values those flags read: [`duration`], [`status_set`], [`url`];
//!   the exit statuses and what each mode documents of them: [`exit_status`].
//! - [`reference`](mod@reference): the flag and environment-variable reference in `docs/`,
//!   generated from [`cli`] (a test fails when the two disagree).
//! - [`atomic_file`]: the one way either program replaces a file.
//! - [`docs`] (feature `docs`): completions and man pages from the clap
//!   definitions; [`VERSION`]: the version both print, with the git revision.
//!
//! It pulls in no runtime (tokio, hyper, netlink, TLS), so the injector does
//! not build the binary's dependencies to use it.

pub mod atomic_file;
pub mod cli;
#[cfg(feature = "docs")]
pub mod docs;
pub mod duration;
pub mod exit_status;
pub mod reference;
pub mod status_set;
pub mod url;

/// `--version` of both programs: the package version and the git revision
/// they were built from (see build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("GRACEFUL_WAIT_GIT_REVISION"),
    ")"
);
