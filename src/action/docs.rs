//! `graceful-wait completions SHELL` and `graceful-wait man`: generated from
//! the same clap definition that parses the command line. The slim build
//! (`--no-default-features`) leaves the generators out to stay small; there
//! `graceful-inject completions SHELL --program graceful-wait` prints the same.

use crate::exit;
use graceful_wait_shared::cli::Shell;

#[cfg(feature = "docs")]
pub fn completions(shell: Shell) -> i32 {
    let script =
        graceful_wait_shared::docs::completions(graceful_wait_shared::cli::command(), shell);
    print(&script)
}

#[cfg(feature = "docs")]
pub fn man() -> i32 {
    match graceful_wait_shared::docs::man(graceful_wait_shared::cli::command()) {
        Ok(page) => print(&page),
        Err(e) => {
            tracing::error!("cannot render the man page: {e}");
            exit::FAILED
        }
    }
}

#[cfg(not(feature = "docs"))]
pub fn completions(_: Shell) -> i32 {
    not_built("completions")
}

#[cfg(not(feature = "docs"))]
pub fn man() -> i32 {
    not_built("man")
}

#[cfg(not(feature = "docs"))]
fn not_built(what: &str) -> i32 {
    tracing::error!(
        "this slim build has no {what}; run `graceful-inject {what} … --program graceful-wait` instead"
    );
    exit::USAGE
}

#[cfg(feature = "docs")]
fn print(bytes: &[u8]) -> i32 {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) => {
            tracing::error!("cannot write to standard output: {e}");
            exit::FAILED
        }
    }
}
