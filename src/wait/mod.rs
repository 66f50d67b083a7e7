//! The waits: each watches one sign that the app is done and implements
//! [`Wait`]; [`run`] is the rest, the same for all — say what is watched,
//! look until the condition is observed or the deadline passes
//! ([`crate::retry`]), report how it ended, run the chained command, and turn
//! that into the exit status ([`crate::exit`]).
//!
//! | mode | watches | woken by |
//! |---|---|---|
//! | [`tcp`] | LISTEN sockets on the port(s) | sock_diag destroy events ([`tcp::events`]) |
//! | [`listeners`] | every LISTEN socket not held by this container's processes (or, with `--exclude-uid`, not owned by those users) | the same, every listener's close |
//! | [`connections`] | connections on the local port(s) | sock_diag destroy events |
//! | [`http`] | whether the endpoint still answers | destroy events of its port's listener |
//! | [`file`](mod@file) | a marker file | inotify |
//! | [`process`] | the app's processes | pidfds |
//!
//! A woken wait looks again at once; between events it still looks every
//! interval, as a safety net (2s by default). Where its events are
//! unavailable a wait says so and polls (every 100ms by default).
//!
//! The hook must never release the proxy on something it did not observe:
//! only [`Look::Done`] ends a wait before its deadline with 0. A look that
//! fails is retried until the deadline (exit 1 then); one that can never
//! succeed stops looking but still holds until the deadline; only a usage
//! error ends the hook at once.

pub mod chain;
pub mod connections;
pub mod container;
pub mod file;
pub mod http;
pub mod listeners;
pub mod process;
pub mod tcp;

use crate::error::{Error, Kind};
use crate::retry::{self, Attempts, Look, Outcome, Pace};
use graceful_wait_shared::cli::WaitArgs;
use std::time::Duration;
use tokio::time::Instant;

/// One kind of wait: how it says what it watches, and one look.
// The runtime is single-threaded, so the futures need not be Send, which is
// the auto-trait bound `async fn` in a trait leaves open.
#[allow(async_fn_in_trait)]
pub trait Wait {
    /// Whether an event wakes this wait whenever its condition may have
    /// come true, so that looking every interval is only a safety net.
    fn event_driven(&self) -> bool;
    /// Logs the one line that says what this wait watches, and how.
    fn announce(&self, schedule: &Schedule);
    /// One look: done, not yet, or something changed (look again now).
    async fn look(&mut self) -> Result<Look, Error>;
    /// Resolves when an event says the condition may have changed since the
    /// last look, which ends the pause before the next one. A wait that
    /// polls never resolves it.
    async fn changed(&mut self) {
        std::future::pending::<()>().await
    }
}

/// The default interval of a wait that events wake: a safety net only.
pub const EVENT_INTERVAL: Duration = Duration::from_secs(2);
/// The default interval of a wait that polls.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// When to look, and until when.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    pub timeout: Option<Duration>,
    pub interval: Duration,
}

impl Schedule {
    pub fn timeout_ms(&self) -> Option<u64> {
        self.timeout.map(|d| d.as_millis() as u64)
    }

    pub fn interval_ms(&self) -> u64 {
        self.interval.as_millis() as u64
    }
}

/// Runs a wait from its flags: sets it up with `open`, waits, reports, runs
/// the chained command; returns the process's exit status.
pub fn run<W: Wait>(args: &WaitArgs, open: impl FnOnce() -> Result<W, Error>) -> i32 {
    let outcome = match crate::runtime::new() {
        Ok(runtime) => {
            let outcome = runtime.block_on(wait(args, open));
            // Nothing left running may hold the hook past its outcome.
            runtime.shutdown_background();
            outcome
        }
        Err(error) => Outcome::Stopped {
            elapsed: Duration::ZERO,
            error,
        },
    };
    report(&outcome);
    let chained = (!args.then.is_empty()).then(|| chain::run(&args.then));
    crate::exit::combine(crate::exit::of_wait(&outcome), chained)
}

async fn wait<W: Wait>(args: &WaitArgs, open: impl FnOnce() -> Result<W, Error>) -> Outcome {
    let start = Instant::now();
    let deadline = args.timeout.map(|t| start + t);
    // Opening subscribes to the wait's events before its first look, so no
    // change between the two can be missed.
    let outcome = match open() {
        Ok(mut wait) => {
            let schedule = Schedule {
                timeout: args.timeout,
                interval: args.interval.unwrap_or(if wait.event_driven() {
                    EVENT_INTERVAL
                } else {
                    POLL_INTERVAL
                }),
            };
            wait.announce(&schedule);
            retry::until_woken(
                "waiting",
                deadline,
                Pace::Every(schedule.interval),
                &mut Looks(&mut wait),
            )
            .await
        }
        Err(error) => Outcome::Stopped {
            elapsed: Duration::ZERO,
            error,
        },
    };
    match outcome {
        // Looking can no longer tell whether the app is done, but ending the
        // hook now would release the proxy early: hold until the deadline.
        Outcome::Stopped { error, .. } if error.kind != Kind::Usage => {
            tracing::error!(
                "cannot tell whether the app is done: {error}; holding until the deadline"
            );
            retry::hold_until(deadline).await;
            Outcome::DeadlinePassed {
                elapsed: start.elapsed(),
                last: error.message.clone(),
                failing: Some(error),
            }
        }
        other => other,
    }
}

/// A wait as the retry loop drives it: a look per attempt, woken by its events.
struct Looks<'a, W>(&'a mut W);

impl<W: Wait> Attempts for Looks<'_, W> {
    async fn attempt(&mut self) -> Result<Look, Error> {
        self.0.look().await
    }

    async fn woken(&mut self) {
        self.0.changed().await
    }
}

fn report(outcome: &Outcome) {
    // The status the exit table gives this outcome (a chained command
    // runs only after a met condition, so it cannot change these).
    let status = crate::exit::of_wait(outcome);
    match outcome {
        Outcome::Met { elapsed, seen } => tracing::info!(
            elapsed_ms = elapsed.as_millis() as u64,
            "condition met: {seen}"
        ),
        Outcome::DeadlinePassed {
            elapsed,
            last,
            failing: None,
        } => tracing::warn!(
            elapsed_ms = elapsed.as_millis() as u64,
            "deadline passed, still {last}; releasing anyway (exit {status})"
        ),
        Outcome::DeadlinePassed {
            elapsed,
            failing: Some(error),
            ..
        } => tracing::error!(
            elapsed_ms = elapsed.as_millis() as u64,
            "deadline passed while looks were failing: {error}; releasing anyway (exit {status})"
        ),
        Outcome::Stopped { elapsed, error } => {
            tracing::error!(elapsed_ms = elapsed.as_millis() as u64, "{error}")
        }
    }
}
