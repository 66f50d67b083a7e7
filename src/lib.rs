//! graceful-wait: a preStop hook that holds a sidecar proxy up until the app in
//! the same pod has really finished.
//!
//! Data flows one way: the command line ([`graceful_wait_shared::cli`]) is
//! parsed; `main` picks the mode; a wait ([`wait`]) looks until its condition
//! is observed or its deadline passes ([`retry`]), reports, and runs the hook
//! it was put in front of; an action ([`action`]) sends callbacks, wraps the
//! app or installs the binary. Every failure is an [`error::Error`] whose kind
//! says whether trying again can help, and [`exit`] alone turns outcomes and
//! errors into the process's status.
//!
//! | module | holds |
//! |---|---|
//! | [`wait`] | the waits (`tcp`, `connections`, `http`, `file`, `process`), their shared run and report, `-- CMD` |
//! | [`action`] | `callback`, `exec`, `install` |
//! | [`http_client`] | the one HTTP(S) client: round trips, DNS, TLS |
//! | [`retry`] | the one loop that tries until a deadline |
//! | [`error`], [`exit`] | typed errors; exit statuses, decided in one place |
//! | [`logging`], [`runtime`] | log lines on stderr; the single-threaded tokio runtime |

pub mod action;
pub mod error;
pub mod exit;
pub mod http_client;
pub mod logging;
pub mod retry;
pub mod runtime;
pub mod teardown;
pub mod wait;

/// The tests' one way to say they did not run (shared with the integration
/// tests of both packages).
#[cfg(test)]
#[path = "../tests/support/skip.rs"]
mod test_skip;
