//! The loop every wait shares: look, and if the condition does not hold yet,
//! look again one interval after the last look started, until the deadline.
//!
//! A look that fails is reported as a failure, never as the condition met:
//! the hook must not release the proxy on something it did not observe.

use std::{future::Future, time::Duration};
use tokio::time::{sleep_until, timeout_at, Instant};

/// What one look saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Look {
    /// The condition holds (the app is gone); the text says what was seen.
    Done(String),
    /// Still waiting; the text is logged whenever it changes.
    Pending(String),
    /// Still waiting, but something changed (an event arrived): look again
    /// now instead of after the interval.
    Again(String),
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Met { elapsed: Duration, seen: String },
    DeadlinePassed { elapsed: Duration, last: String },
    Failed { elapsed: Duration, error: String },
}

impl Outcome {
    /// The exit status this outcome stands for (see [`crate::exit`]).
    pub fn code(&self) -> i32 {
        match self {
            Outcome::Met { .. } => crate::exit::MET,
            Outcome::DeadlinePassed { .. } => crate::exit::DEADLINE,
            Outcome::Failed { .. } => crate::exit::FAILED,
        }
    }
}

/// Looks until `look` says done, fails, or `timeout` passes.
pub async fn until<F, Fut>(timeout: Option<Duration>, interval: Duration, mut look: F) -> Outcome
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Look, String>>,
{
    let start = Instant::now();
    let deadline = timeout.map(|t| start + t);
    let mut last = String::new();
    loop {
        let began = Instant::now();
        let result = match deadline {
            // A look that hangs (an HTTP request, say) is still bounded by the deadline.
            Some(d) => match timeout_at(d, look()).await {
                Ok(r) => r,
                Err(_) => {
                    return Outcome::DeadlinePassed {
                        elapsed: start.elapsed(),
                        last,
                    }
                }
            },
            None => look().await,
        };
        let (now, again) = match result {
            Ok(Look::Done(seen)) => {
                return Outcome::Met {
                    elapsed: start.elapsed(),
                    seen,
                }
            }
            Ok(Look::Pending(now)) => (now, false),
            Ok(Look::Again(now)) => (now, true),
            Err(error) => {
                return Outcome::Failed {
                    elapsed: start.elapsed(),
                    error,
                }
            }
        };
        if now != last {
            tracing::info!(
                elapsed_ms = start.elapsed().as_millis() as u64,
                "waiting: {now}"
            );
            last = now;
        }
        if again {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Outcome::DeadlinePassed {
                    elapsed: start.elapsed(),
                    last,
                };
            }
            continue;
        }
        let next = began + interval;
        match deadline {
            Some(d) if next >= d => {
                sleep_until(d).await;
                return Outcome::DeadlinePassed {
                    elapsed: start.elapsed(),
                    last,
                };
            }
            _ => sleep_until(next).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn run<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn met_after_pending_looks() {
        let n = Cell::new(0);
        let out = run(until(None, Duration::from_millis(100), || {
            n.set(n.get() + 1);
            let k = n.get();
            async move {
                Ok(if k < 3 {
                    Look::Pending("busy".into())
                } else {
                    Look::Done("gone".into())
                })
            }
        }));
        assert!(
            matches!(out, Outcome::Met { ref seen, .. } if seen == "gone"),
            "{out:?}"
        );
        assert_eq!(n.get(), 3);
        assert_eq!(out.code(), 0);
    }

    #[test]
    fn deadline_gives_124_and_keeps_the_last_state() {
        let out = run(until(
            Some(Duration::from_secs(1)),
            Duration::from_millis(100),
            || async { Ok(Look::Pending("port 20000 listening".into())) },
        ));
        assert!(
            matches!(out, Outcome::DeadlinePassed { ref last, .. } if last == "port 20000 listening"),
            "{out:?}"
        );
        assert_eq!(out.code(), 124);
    }

    #[test]
    fn a_look_that_hangs_is_cut_by_the_deadline() {
        let out = run(until(
            Some(Duration::from_secs(1)),
            Duration::from_millis(100),
            std::future::pending::<Result<Look, String>>,
        ));
        assert_eq!(out.code(), 124, "{out:?}");
    }

    #[test]
    fn an_event_means_look_again_at_once() {
        let n = Cell::new(0);
        let out = run(async {
            let started = Instant::now();
            let out = until(None, Duration::from_secs(60), || {
                n.set(n.get() + 1);
                let k = n.get();
                async move {
                    Ok(if k < 3 {
                        Look::Again("changed".into())
                    } else {
                        Look::Done("gone".into())
                    })
                }
            })
            .await;
            // On the paused clock no time passes unless the loop sleeps.
            (out, started.elapsed())
        });
        assert_eq!(out.0.code(), 0);
        assert_eq!(
            out.1,
            Duration::ZERO,
            "an event must not wait for the interval"
        );
    }

    #[test]
    fn a_failed_look_is_a_failure_not_success() {
        let out = run(until(None, Duration::from_millis(100), || async {
            Err::<Look, _>("cannot read /proc/net/tcp".to_string())
        }));
        assert_eq!(out.code(), 1, "{out:?}");
    }
}
