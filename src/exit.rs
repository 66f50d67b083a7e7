//! Exit statuses, the contract scripts and the kubelet's event log rely on,
//! decided here and nowhere else: every mode hands over what happened (an
//! [`Outcome`], an [`Error`], a command's status) and gets its status back.
//!
//! | status | meaning |
//! |---|---|
//! | 0 | the condition was observed (the app is gone); an action succeeded |
//! | 1 | a wait's deadline passed while its looks were failing; a callback refused for good; an action failed |
//! | 2 | usage or configuration error, at once (clap's own status for bad arguments) |
//! | 124 | the deadline passed while the looks worked (or a callback was still being retried), as `timeout(1)` |
//! | 126, 127 | a chained or wrapped command cannot run / is not found, as a shell says |
//!
//! With `-- CMD`, a wait that ended 0 exits with CMD's status (128+N when CMD
//! died of signal N); a wait that did not end 0 keeps its own status, and a
//! CMD failure is logged beside it.

use crate::error::{Error, Kind};
use crate::retry::Outcome;

// The numbers, and what each mode's --help says of them, are defined once in
// the shared crate, where the command line that prints them lives.
pub use graceful_wait_shared::exit_status::{
    CANNOT_RUN, DEADLINE, FAILED, NOT_FOUND, OK, TERMINATED, USAGE,
};

/// The status for an error that ends a mode.
pub fn of_error(error: &Error) -> i32 {
    match error.kind {
        Kind::Usage => USAGE,
        Kind::Transient | Kind::Permanent => FAILED,
    }
}

/// The status of a wait: 124 only when the looks worked and the condition
/// still did not hold; 1 when the deadline found the looks failing.
pub fn of_wait(outcome: &Outcome) -> i32 {
    match outcome {
        Outcome::Met { .. } => OK,
        Outcome::DeadlinePassed { failing: None, .. } => DEADLINE,
        Outcome::DeadlinePassed {
            failing: Some(_), ..
        } => FAILED,
        Outcome::Stopped { error, .. } => of_error(error),
    }
}

/// The status of a set of callbacks: 0 all delivered; 1 (or 2) when one
/// failed for good; 124 when the deadline stopped the retries of the rest.
pub fn of_callbacks(outcomes: &[Outcome]) -> i32 {
    let stopped = outcomes.iter().find_map(|o| match o {
        Outcome::Stopped { error, .. } => Some(of_error(error)),
        _ => None,
    });
    match stopped {
        Some(status) => status,
        None if outcomes.iter().all(|o| matches!(o, Outcome::Met { .. })) => OK,
        None => DEADLINE,
    }
}

/// The status of the whole run: the wait's, unless the wait succeeded and a
/// chained command did not.
pub fn combine(wait: i32, chained: Option<i32>) -> i32 {
    match chained {
        Some(cmd) if wait == OK => cmd,
        _ => wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn met() -> Outcome {
        Outcome::Met {
            elapsed: Duration::ZERO,
            seen: "gone".into(),
        }
    }

    fn deadline(failing: Option<Error>) -> Outcome {
        Outcome::DeadlinePassed {
            elapsed: Duration::ZERO,
            last: "listening on [20000]".into(),
            failing,
        }
    }

    fn stopped(error: Error) -> Outcome {
        Outcome::Stopped {
            elapsed: Duration::ZERO,
            error,
        }
    }

    #[test]
    fn the_wait_wins_unless_it_succeeded() {
        assert_eq!(combine(OK, None), 0);
        assert_eq!(combine(OK, Some(0)), 0);
        assert_eq!(combine(OK, Some(3)), 3);
        assert_eq!(combine(DEADLINE, Some(0)), 124);
        assert_eq!(combine(DEADLINE, Some(7)), 124);
        assert_eq!(combine(FAILED, None), 1);
    }

    #[test]
    fn a_wait_reports_what_it_observed() {
        assert_eq!(of_wait(&met()), 0);
        assert_eq!(of_wait(&deadline(None)), 124);
        assert_eq!(of_wait(&deadline(Some(Error::transient("no /proc")))), 1);
        assert_eq!(of_wait(&stopped(Error::usage("bad"))), 2);
        assert_eq!(of_wait(&stopped(Error::permanent("no netlink"))), 1);
    }

    #[test]
    fn callbacks_fail_for_good_before_the_deadline_counts() {
        assert_eq!(of_callbacks(&[met(), met()]), 0);
        assert_eq!(of_callbacks(&[met(), deadline(None)]), 124);
        assert_eq!(
            of_callbacks(&[met(), deadline(Some(Error::transient("refused")))]),
            124
        );
        assert_eq!(
            of_callbacks(&[deadline(None), stopped(Error::permanent("HTTP 404"))]),
            1
        );
        assert_eq!(of_callbacks(&[stopped(Error::usage("ftp://"))]), 2);
    }
}
