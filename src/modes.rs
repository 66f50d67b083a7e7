//! Sets up the chosen mode: a wait runs on a single-threaded runtime (one
//! pod-local check at a time needs no more), reports how it ended and runs the
//! chained command; `install` copies the binary.

use crate::{
    chain,
    cli::{Command, HttpArgs, TcpArgs},
    exit, http_probe, install,
    listen::Checker,
    poll::{self, Look, Outcome},
};
use std::time::Duration;

/// Runs the mode; returns the process's exit status.
pub fn run(command: Command) -> i32 {
    match command {
        Command::Install(args) => match install::install(&args.dir) {
            Ok(install::Installed::Copied { target, bytes }) => {
                tracing::info!("installed {} ({bytes} bytes)", target.display());
                exit::MET
            }
            Ok(install::Installed::AlreadyThere { target }) => {
                tracing::info!("{} is already this binary; nothing to do", target.display());
                exit::MET
            }
            Err(e) => {
                tracing::error!("{e}");
                exit::FAILED
            }
        },
        Command::Tcp(args) => {
            let then = args.wait.then.clone();
            finish(on_runtime(tcp(args)), &then)
        }
        Command::Http(args) => {
            let then = args.wait.then.clone();
            finish(on_runtime(http(args)), &then)
        }
    }
}

fn on_runtime(wait: impl std::future::Future<Output = Outcome>) -> Outcome {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(wait),
        Err(e) => Outcome::Failed {
            elapsed: Duration::ZERO,
            error: format!("cannot start the runtime: {e}"),
        },
    }
}

/// Reports the outcome, runs the chained command, and combines their statuses.
fn finish(outcome: Outcome, then: &[String]) -> i32 {
    report(&outcome);
    let chained = (!then.is_empty()).then(|| chain::run(then));
    exit::combine(outcome.code(), chained)
}

fn ms(d: Option<Duration>) -> Option<u64> {
    d.map(|d| d.as_millis() as u64)
}

async fn tcp(args: TcpArgs) -> Outcome {
    let mut checker = match Checker::open(args.source, args.proc_net) {
        Ok(c) => c,
        Err(error) => {
            return Outcome::Failed {
                elapsed: Duration::ZERO,
                error,
            }
        }
    };
    let ports = args.ports;
    tracing::info!(
        ports = ?ports,
        source = checker.source_name(),
        timeout_ms = ms(args.wait.timeout),
        interval_ms = args.wait.interval.as_millis() as u64,
        "waiting until no socket listens on the port(s)"
    );
    poll::until(args.wait.timeout, args.wait.interval, || {
        let look = checker.busy(&ports).map(|busy| {
            if busy.is_empty() {
                Look::Done(format!("no listener on {ports:?}"))
            } else {
                Look::Pending(format!("listening on {busy:?}"))
            }
        });
        std::future::ready(look)
    })
    .await
}

async fn http(args: HttpArgs) -> Outcome {
    let down_status = args.down_status.unwrap_or_default();
    tracing::info!(
        url = %args.url.uri,
        request_timeout_ms = args.request_timeout.as_millis() as u64,
        down_status = %down_status,
        timeout_ms = ms(args.wait.timeout),
        interval_ms = args.wait.interval.as_millis() as u64,
        "waiting until the endpoint stops answering"
    );
    let (target, request_timeout) = (&args.url, args.request_timeout);
    poll::until(args.wait.timeout, args.wait.interval, || async {
        Ok(
            match http_probe::probe(target, request_timeout, &down_status).await? {
                http_probe::Seen::Up(why) => Look::Pending(format!("answering ({why})")),
                http_probe::Seen::Down(why) => Look::Done(why),
            },
        )
    })
    .await
}

fn report(outcome: &Outcome) {
    match outcome {
        Outcome::Met { elapsed, seen } => {
            tracing::info!(
                elapsed_ms = elapsed.as_millis() as u64,
                "condition met: {seen}"
            )
        }
        Outcome::DeadlinePassed { elapsed, last } => tracing::warn!(
            elapsed_ms = elapsed.as_millis() as u64,
            "deadline passed, still {last}; releasing anyway (exit 124)"
        ),
        Outcome::Failed { elapsed, error } => tracing::error!(
            elapsed_ms = elapsed.as_millis() as u64,
            "cannot tell whether the app is done: {error}"
        ),
    }
}
