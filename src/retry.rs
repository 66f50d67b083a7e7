//! The one loop behind everything that tries until a deadline: the waits
//! (look every interval until the app is gone), callbacks (send with backoff
//! until delivered) and `exec --wait-ready` (ask until the proxy is ready).
//!
//! One attempt says [`Look::Done`], [`Look::Pending`] (not yet; try again at
//! the pace), [`Look::Again`] (something changed: try again now), or fails.
//! With [`until_woken`], an event may end the pause early: a wait woken by
//! the kernel (a socket closed, a process exited) looks again at once, and
//! its interval is only a safety net.
//! A failure's [`Kind`] decides: transient ones are logged when the reason
//! changes and retried; usage and permanent ones stop the loop at once. The
//! deadline also cuts an attempt that hangs. A failed attempt is never read
//! as done: only an observed condition ends a wait early.

use crate::error::{Error, Kind};
use std::time::Duration;
use tokio::time::{sleep, sleep_until, timeout_at, Instant};

/// What one attempt saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Look {
    /// The condition holds; the text says what was seen.
    Done(String),
    /// Not yet; the text is logged whenever it changes.
    Pending(String),
    /// Not yet, but something changed (an event arrived): try again now
    /// instead of at the pace.
    Again(String),
}

/// When to try again after an attempt that did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// One interval after the previous attempt *started* (a wait's polling).
    Every(Duration),
    /// After `first`, doubling after each attempt that did not succeed — a
    /// failure or a "not yet" such as a 503 — up to `max` (requests to
    /// another service, which should not be hammered).
    Backoff { first: Duration, max: Duration },
}

/// How the loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Met {
        elapsed: Duration,
        seen: String,
    },
    /// The deadline came first. `failing` holds the error of the last
    /// attempt when it failed (rather than saw "not yet").
    DeadlinePassed {
        elapsed: Duration,
        last: String,
        failing: Option<Error>,
    },
    /// A usage or permanent error: trying again cannot help.
    Stopped {
        elapsed: Duration,
        error: Error,
    },
}

/// What the loop drives: one attempt at a time, and between attempts,
/// optionally, a wake that ends the pause early.
// The runtime is single-threaded: the futures need not be Send.
#[allow(async_fn_in_trait)]
pub trait Attempts {
    async fn attempt(&mut self) -> Result<Look, Error>;
    /// Resolves when something may have changed since the last attempt;
    /// by default never, so the pace alone decides.
    async fn woken(&mut self) {
        std::future::pending::<()>().await
    }
}

/// A closure as [`Attempts`] that no event wakes.
struct Paced<F>(F);

impl<F: AsyncFnMut() -> Result<Look, Error>> Attempts for Paced<F> {
    async fn attempt(&mut self) -> Result<Look, Error> {
        (self.0)().await
    }
}

/// Tries until `attempt` says done, fails for good, or `deadline` passes.
/// `what` starts each log line ("waiting", "callback to …").
pub async fn until(
    what: &str,
    deadline: Option<Instant>,
    pace: Pace,
    attempt: impl AsyncFnMut() -> Result<Look, Error>,
) -> Outcome {
    until_woken(what, deadline, pace, &mut Paced(attempt)).await
}

/// [`until`], where the attempts' wake ends a pause early.
pub async fn until_woken(
    what: &str,
    deadline: Option<Instant>,
    pace: Pace,
    attempts: &mut impl Attempts,
) -> Outcome {
    let start = Instant::now();
    let mut last = String::new();
    let mut failing: Option<Error> = None;
    let mut pacer = Pacer::new(pace);
    let passed = |last: String, failing: Option<Error>| Outcome::DeadlinePassed {
        elapsed: start.elapsed(),
        last,
        failing,
    };
    loop {
        let began = Instant::now();
        let result = match deadline {
            Some(d) => match timeout_at(d, attempts.attempt()).await {
                Ok(r) => r,
                Err(_) => return passed(last, failing),
            },
            None => attempts.attempt().await,
        };
        let is_again = matches!(result, Ok(Look::Again(_)));
        let again = match result {
            Ok(Look::Done(seen)) => {
                return Outcome::Met {
                    elapsed: start.elapsed(),
                    seen,
                }
            }
            Ok(Look::Pending(now) | Look::Again(now)) if now != last || failing.is_some() => {
                tracing::info!(
                    elapsed_ms = start.elapsed().as_millis() as u64,
                    "{what}: {now}"
                );
                last = now;
                failing = None;
                is_again
            }
            Ok(_) => is_again,
            Err(error) if error.kind == Kind::Transient => {
                if failing.as_ref() != Some(&error) {
                    tracing::warn!(
                        elapsed_ms = start.elapsed().as_millis() as u64,
                        "{what}: {error}; trying again"
                    );
                }
                last = error.message.clone();
                failing = Some(error);
                false
            }
            Err(error) => {
                return Outcome::Stopped {
                    elapsed: start.elapsed(),
                    error,
                }
            }
        };
        if again {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return passed(last, failing);
            }
            continue;
        }
        let next = pacer.next(began, deadline);
        let pause_end = deadline.map_or(next, |d| next.min(d));
        tokio::select! {
            _ = sleep_until(pause_end) => {
                if deadline.is_some_and(|d| pause_end >= d) {
                    return passed(last, failing);
                }
            }
            _ = attempts.woken() => {}
        }
    }
}

/// A pace across attempts: when the next one starts.
struct Pacer {
    pace: Pace,
    /// The pause after the next failed attempt, for a backoff.
    backoff: Duration,
}

impl Pacer {
    fn new(pace: Pace) -> Pacer {
        let backoff = match pace {
            Pace::Every(d) => d,
            Pace::Backoff { first, .. } => first,
        };
        Pacer { pace, backoff }
    }

    /// When to try again after an attempt that began at `began` and did not
    /// succeed.
    fn next(&mut self, began: Instant, deadline: Option<Instant>) -> Instant {
        match self.pace {
            Pace::Every(interval) => began + interval,
            Pace::Backoff { max, first } => {
                let now = Instant::now();
                let mut next = now + self.backoff;
                self.backoff = (self.backoff * 2).min(max);
                // The time left is used, not skipped: when the backoff would
                // jump past the deadline, try again halfway there instead
                // (a service that comes up just before the deadline is
                // still reached), down to the first step.
                if let Some(d) = deadline.filter(|d| next >= *d) {
                    let half = d.saturating_duration_since(now) / 2;
                    if half >= first.min(Duration::from_millis(50)) {
                        next = now + half;
                    }
                }
                next
            }
        }
    }
}

/// Holds until `deadline` (for ever without one: the pod's grace period ends
/// it). A wait that can no longer look still must not release the proxy early.
pub async fn hold_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => loop {
            sleep(Duration::from_secs(3600)).await
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{cell::Cell, future::Future};

    fn run<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(f)
    }

    const EVERY: Pace = Pace::Every(Duration::from_millis(100));

    fn in_1s() -> Option<Instant> {
        Some(Instant::now() + Duration::from_secs(1))
    }

    #[test]
    fn met_after_pending_looks() {
        let n = Cell::new(0);
        let out = run(until("waiting", None, EVERY, async || {
            n.set(n.get() + 1);
            Ok(if n.get() < 3 {
                Look::Pending("busy".into())
            } else {
                Look::Done("gone".into())
            })
        }));
        assert!(
            matches!(out, Outcome::Met { ref seen, .. } if seen == "gone"),
            "{out:?}"
        );
        assert_eq!(n.get(), 3);
    }

    #[test]
    fn deadline_keeps_the_last_state_and_says_the_looks_worked() {
        let out = run(async {
            until("waiting", in_1s(), EVERY, async || {
                Ok(Look::Pending("port 20000 listening".into()))
            })
            .await
        });
        assert!(
            matches!(out, Outcome::DeadlinePassed { ref last, failing: None, .. } if last == "port 20000 listening"),
            "{out:?}"
        );
    }

    #[test]
    fn an_attempt_that_hangs_is_cut_by_the_deadline() {
        let out = run(async {
            until("waiting", in_1s(), EVERY, async || {
                std::future::pending::<Result<Look, Error>>().await
            })
            .await
        });
        assert!(matches!(out, Outcome::DeadlinePassed { .. }), "{out:?}");
    }

    #[test]
    fn an_event_means_look_again_at_once() {
        let n = Cell::new(0);
        let (out, waited) = run(async {
            let started = Instant::now();
            let out = until(
                "waiting",
                None,
                Pace::Every(Duration::from_secs(60)),
                async || {
                    n.set(n.get() + 1);
                    Ok(if n.get() < 3 {
                        Look::Again("changed".into())
                    } else {
                        Look::Done("gone".into())
                    })
                },
            )
            .await;
            // On the paused clock no time passes unless the loop sleeps.
            (out, started.elapsed())
        });
        assert!(matches!(out, Outcome::Met { .. }), "{out:?}");
        assert_eq!(
            waited,
            Duration::ZERO,
            "an event must not wait for the interval"
        );
    }

    /// Looks that never see "done", woken at 30ms and 80ms.
    struct Woken {
        started: Instant,
        looks: Vec<Duration>,
        wakes: u64,
    }

    impl Attempts for Woken {
        async fn attempt(&mut self) -> Result<Look, Error> {
            self.looks.push(self.started.elapsed());
            Ok(Look::Pending("busy".into()))
        }

        async fn woken(&mut self) {
            self.wakes += 1;
            if self.wakes <= 2 {
                sleep(Duration::from_millis(10 + 20 * self.wakes)).await;
            } else {
                std::future::pending::<()>().await;
            }
        }
    }

    #[test]
    fn a_wake_ends_the_pause_and_the_deadline_still_holds() {
        // The interval is a minute: the looks come when the wakes do, and
        // the deadline (1s) still ends a wait that nothing wakes again.
        let (out, woken, waited) = run(async {
            let mut woken = Woken {
                started: Instant::now(),
                looks: Vec::new(),
                wakes: 0,
            };
            let out = until_woken(
                "waiting",
                in_1s(),
                Pace::Every(Duration::from_secs(60)),
                &mut woken,
            )
            .await;
            let waited = woken.started.elapsed();
            (out, woken, waited)
        });
        assert_eq!(
            woken.looks,
            [0, 30, 80].map(Duration::from_millis),
            "each wake looks again at once"
        );
        assert!(
            matches!(out, Outcome::DeadlinePassed { failing: None, .. }),
            "{out:?}"
        );
        assert_eq!(waited, Duration::from_secs(1));
    }

    #[test]
    fn transient_failures_are_retried_and_never_read_as_done() {
        let n = Cell::new(0);
        let out = run(async {
            until("waiting", in_1s(), EVERY, async || {
                n.set(n.get() + 1);
                Err(Error::transient("cannot read /proc/net/tcp"))
            })
            .await
        });
        assert!(
            matches!(out, Outcome::DeadlinePassed { failing: Some(ref e), .. } if e.message.contains("/proc/net/tcp")),
            "{out:?}"
        );
        assert_eq!(n.get(), 10, "one look per interval until the deadline");
    }

    #[test]
    fn a_failure_then_a_pending_look_clears_the_failure() {
        let n = Cell::new(0);
        let out = run(async {
            until("waiting", in_1s(), EVERY, async || {
                n.set(n.get() + 1);
                if n.get() == 1 {
                    Err(Error::transient("netlink busy"))
                } else {
                    Ok(Look::Pending("listening".into()))
                }
            })
            .await
        });
        assert!(
            matches!(out, Outcome::DeadlinePassed { failing: None, .. }),
            "{out:?}"
        );
    }

    #[test]
    fn usage_and_permanent_errors_stop_at_once() {
        for error in [
            Error::usage("ftp:// is not supported"),
            Error::permanent("HTTP 404"),
        ] {
            let n = Cell::new(0);
            let out = run(until("callback", None, EVERY, async || {
                n.set(n.get() + 1);
                Err(error.clone())
            }));
            assert!(matches!(out, Outcome::Stopped { .. }), "{out:?}");
            assert_eq!(n.get(), 1);
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_maximum() {
        let times = std::cell::RefCell::new(Vec::new());
        run(async {
            let start = Instant::now();
            until(
                "callback",
                Some(start + Duration::from_millis(3000)),
                Pace::Backoff {
                    first: Duration::from_millis(100),
                    max: Duration::from_millis(800),
                },
                async || {
                    times.borrow_mut().push(start.elapsed().as_millis());
                    Ok(Look::Pending("HTTP 503".into()))
                },
            )
            .await
        });
        assert_eq!(
            *times.borrow(),
            [0, 100, 300, 700, 1500, 2300, 2650, 2825, 2913]
        );
    }

    /// A callback with a 10 s deadline against a service that comes up at
    /// 9.5 s: the last attempts fall into the time left, not past it.
    #[test]
    fn the_time_left_before_the_deadline_is_used() {
        let times = std::cell::RefCell::new(Vec::new());
        let out = run(async {
            let start = Instant::now();
            until(
                "callback",
                Some(start + Duration::from_secs(10)),
                Pace::Backoff {
                    first: Duration::from_millis(100),
                    max: Duration::from_secs(2),
                },
                async || {
                    let t = start.elapsed();
                    times.borrow_mut().push(t.as_millis());
                    Ok(if t >= Duration::from_millis(9500) {
                        Look::Done("HTTP 200".into())
                    } else {
                        Look::Pending("connection refused".into())
                    })
                },
            )
            .await
        });
        assert!(
            matches!(out, Outcome::Met { .. }),
            "{out:?} after {:?}",
            times.borrow()
        );
    }
}
