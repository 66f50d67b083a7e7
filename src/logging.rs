//! Logs go to stderr, one line per event. Hook output is not in `kubectl logs`:
//! the kubelet keeps it only in the FailedPreStopHook event when the hook
//! fails, so lines are kept short and free of colour codes, and `--log-copy`
//! also writes them to a file such as `/proc/1/fd/1`, the container's own
//! stdout, which `kubectl logs` does show.

use graceful_wait_shared::cli::LogFormat as Format;
use std::{fs::OpenOptions, os::unix::fs::OpenOptionsExt, path::Path, sync::Arc};
use tracing::Level;
use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};

pub fn init(format: Format, quiet: bool, verbose: bool, copy: Option<&Path>) {
    let level = match (quiet, verbose) {
        (true, _) => Level::WARN,
        (false, true) => Level::DEBUG,
        (false, false) => Level::INFO,
    };
    // A copy that cannot be opened must not stop the hook: say so on stderr.
    let (copy, copy_error) =
        // Non-blocking: a FIFO with no reader fails at once (ENXIO) instead of
        // blocking the hook before its deadline exists, and a full pipe drops
        // a line instead of stopping the wait.
        match copy.map(|p| {
            (
                p,
                OpenOptions::new()
                    .append(true)
                    .create(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(p),
            )
        }) {
            Some((_, Ok(file))) => (Some(Arc::new(file)), None),
            Some((path, Err(e))) => (
                None,
                Some(format!(
                    "cannot open --log-copy {}: {e}; logging to stderr only",
                    path.display()
                )),
            ),
            None => (None, None),
        };
    let writer = match copy {
        Some(file) => BoxMakeWriter::new(std::io::stderr.and(file)),
        None => BoxMakeWriter::new(std::io::stderr),
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_max_level(level)
        .with_target(false);
    match format {
        Format::Text => builder.init(),
        Format::Json => builder.json().flatten_event(true).init(),
    }
    if let Some(e) = copy_error {
        tracing::warn!("{e}");
    }
}
