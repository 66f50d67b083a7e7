//! `graceful-wait sleep DURATION`: a preStop's `sleep` action (`sleep:
//! {seconds: N}`), which only the kubelet can run, as a command that can be
//! chained behind a wait: the injector writes `<wait> -- graceful-wait sleep
//! Ns` in its place, so the pause still comes, after the app is done.

use crate::exit;
use graceful_wait_shared::cli::SleepArgs;

pub fn run(args: SleepArgs) -> i32 {
    tracing::info!(duration_ms = args.duration.as_millis() as u64, "sleeping");
    // Nothing to watch and nothing to wake it: the kubelet ends the hook at
    // the grace deadline if the pause outlasts it.
    std::thread::sleep(args.duration);
    exit::OK
}
