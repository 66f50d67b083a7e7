//! Sets up the chosen mode: a wait runs on a single-threaded runtime (one
//! pod-local check at a time needs no more), reports how it ended and runs the
//! chained command; `callback` sends, `exec` wraps the app ([`crate::wrapper`]),
//! `install` copies the binary.

use crate::{
    callback, chain,
    cli::{CallbackArgs, Command, ExecArgs, FileArgs, HttpArgs, ProcessArgs, TcpArgs},
    exit, file_wait, http_probe, install,
    listen::{Checker, State},
    poll::{self, Look, Outcome},
    process_wait, wrapper,
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
        Command::Tcp(args) => wait(args.wait.then.clone(), sockets(State::Listen, args)),
        Command::Http(args) => wait(args.wait.then.clone(), http(args)),
        Command::Connections(args) => {
            wait(args.wait.then.clone(), sockets(State::Established, args))
        }
        Command::File(args) => wait(args.wait.then.clone(), file(args)),
        Command::Process(args) => wait(args.wait.then.clone(), process(args)),
        Command::Callback(args) => send_callbacks(args),
        Command::Exec(args) => exec(args),
    }
}

/// Runs a wait, reports how it ended, runs the chained command, and
/// combines their statuses.
fn wait(then: Vec<String>, wait: impl std::future::Future<Output = Outcome>) -> i32 {
    let outcome = match crate::runtime::new() {
        Ok(runtime) => runtime.block_on(wait),
        Err(error) => Outcome::Failed {
            elapsed: Duration::ZERO,
            error,
        },
    };
    report(&outcome);
    let chained = (!then.is_empty()).then(|| chain::run(&then));
    exit::combine(outcome.code(), chained)
}

fn ms(d: Option<Duration>) -> Option<u64> {
    d.map(|d| d.as_millis() as u64)
}

async fn sockets(state: State, args: TcpArgs) -> Outcome {
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
    let (what, busy_text, done_text) = match state {
        State::Listen => (
            "waiting until no socket listens on the port(s)",
            "listening on",
            "no listener on",
        ),
        State::Established => (
            "waiting until no connection remains on the port(s)",
            "connections on",
            "no connection on",
        ),
    };
    tracing::info!(
        ports = ?ports,
        source = checker.source_name(),
        timeout_ms = ms(args.wait.timeout),
        interval_ms = args.wait.interval.as_millis() as u64,
        "{what}"
    );
    poll::until(args.wait.timeout, args.wait.interval, || {
        let look = checker.busy(state, &ports).map(|busy| {
            if busy.is_empty() {
                Look::Done(format!("{done_text} {ports:?}"))
            } else {
                Look::Pending(format!("{busy_text} {busy:?}"))
            }
        });
        std::future::ready(look)
    })
    .await
}

async fn file(args: FileArgs) -> Outcome {
    let marker = file_wait::Marker::new(args.exists.clone());
    tracing::info!(
        path = %args.exists.display(),
        inotify = marker.event_driven(),
        timeout_ms = ms(args.wait.timeout),
        interval_ms = args.wait.interval.as_millis() as u64,
        "waiting for the marker file"
    );
    let interval = args.wait.interval;
    poll::until(args.wait.timeout, interval, || marker.look(interval)).await
}

async fn process(args: ProcessArgs) -> Outcome {
    let selector = process_wait::Selector {
        names: args.names,
        pids: args.pids,
        exclude_uids: (!args.exclude_uids.is_empty()).then_some(args.exclude_uids),
    };
    tracing::info!(
        names = ?selector.names,
        pids = ?selector.pids,
        exclude_uids = ?selector.exclude_uids,
        timeout_ms = ms(args.wait.timeout),
        "waiting until the selected processes are gone"
    );
    let processes = process_wait::Processes::new(args.proc, selector);
    let interval = args.wait.interval;
    poll::until(args.wait.timeout, interval, || processes.look(interval)).await
}

fn send_callbacks(args: CallbackArgs) -> i32 {
    let spec = callback::Spec {
        urls: args.urls,
        method: args.send.method,
        headers: args.send.headers,
        data: args.send.data,
        idempotency_key: args.send.idempotency_key,
    };
    let requests = match callback::build(&spec) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("{e}");
            return exit::USAGE;
        }
    };
    let runtime = match crate::runtime::new() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("{e}");
            return exit::FAILED;
        }
    };
    let results = runtime.block_on(async {
        let policy = callback::Policy {
            deadline: Some(tokio::time::Instant::now() + args.timeout),
            request_timeout: args.send.request_timeout,
        };
        callback::send_all(&requests, policy).await
    });
    callback::status(&results)
}

fn exec(args: ExecArgs) -> i32 {
    wrapper::run(wrapper::Options {
        on_term: args.on_term,
        on_exit: args.on_exit,
        wait_ready: args.wait_ready,
        ready_timeout: args.ready_timeout,
        quit_proxy: args.quit_proxy,
        done_file: args.done_file,
        callback: callback::Spec {
            urls: Vec::new(),
            method: args.send.method,
            headers: args.send.headers,
            data: args.send.data,
            idempotency_key: args.send.idempotency_key,
        },
        callback_timeout: args.callback_timeout,
        request_timeout: args.send.request_timeout,
        cmd: args.cmd,
    })
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
