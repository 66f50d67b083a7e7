//! `-- CMD ARGS...`: the hook the wait was put in front of (Istio's
//! `pilot-agent request POST drain`, say) runs after the wait, whatever its
//! outcome, so adding graceful-wait never drops an existing preStop step.

use crate::exit;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

/// Runs CMD with our stdio and returns its exit status: its code, 128+N when
/// it died of signal N, 127 when it is not found and 126 when it cannot run
/// (as a shell reports them).
pub fn run(argv: &[String]) -> i32 {
    let Some((program, args)) = argv.split_first() else {
        return exit::OK;
    };
    // Its arguments may hold secrets: the program and how many arguments.
    tracing::info!(command = %program, args = args.len(), "running chained command");
    tracing::debug!(command = ?argv, "running chained command");
    match Command::new(program).args(args).status() {
        Ok(status) => {
            let code = status
                .code()
                .or_else(|| status.signal().map(|s| 128 + s))
                .unwrap_or(exit::FAILED);
            if code == 0 {
                tracing::info!(command = %program, "chained command succeeded");
            } else {
                tracing::error!(command = %program, status = code, "chained command failed");
            }
            code
        }
        Err(e) => {
            tracing::error!(command = %program, "cannot run chained command: {e}; check the path (there may be no shell or PATH in this image)");
            cannot_start(&e)
        }
    }
}

/// 127 for a command that is not there, 126 for one that cannot run.
pub fn cannot_start(e: &std::io::Error) -> i32 {
    if e.kind() == std::io::ErrorKind::NotFound {
        exit::NOT_FOUND
    } else {
        exit::CANNOT_RUN
    }
}
