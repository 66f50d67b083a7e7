//! Exit statuses, the contract scripts and the kubelet's event log rely on.
//!
//! | status | meaning |
//! |---|---|
//! | 0 | the condition was observed (the app is gone) |
//! | 1 | any other failure: a look failed, the chained command could not start |
//! | 2 | usage or configuration error (clap's own status for bad arguments) |
//! | 124 | the `--timeout` deadline passed first, as `timeout(1)` |
//!
//! With `-- CMD`, a wait that ended 0 exits with CMD's status (128+N when CMD
//! died of signal N); a wait that did not end 0 keeps its own status, and a
//! CMD failure is logged beside it.

pub const MET: i32 = 0;
pub const FAILED: i32 = 1;
pub const USAGE: i32 = 2;
pub const DEADLINE: i32 = 124;

/// The status of the whole run: the wait's, unless the wait succeeded and a
/// chained command did not.
pub fn combine(wait: i32, chained: Option<i32>) -> i32 {
    match chained {
        Some(cmd) if wait == MET => cmd,
        _ => wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_wins_unless_it_succeeded() {
        assert_eq!(combine(MET, None), 0);
        assert_eq!(combine(MET, Some(0)), 0);
        assert_eq!(combine(MET, Some(3)), 3);
        assert_eq!(combine(DEADLINE, Some(0)), 124);
        assert_eq!(combine(DEADLINE, Some(7)), 124);
        assert_eq!(combine(FAILED, None), 1);
    }
}
