//! `graceful-wait exec [OPTIONS] -- CMD ARGS...`: the app's entrypoint.
//!
//! It starts CMD and stays its parent, like tini or dumb-init:
//!
//! - **Signals.** Every signal that can be caught is blocked in this process
//!   and taken by one thread with sigwait(2); each is forwarded to CMD with
//!   kill(2), except SIGCHLD (ours: it means a child ended). The synchronous
//!   signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT) are
//!   left alone: they concern this process itself. SIGTTIN/SIGTTOU are left
//!   alone too, as tini does. Noise such as SIGURG (Go's preemption) and
//!   SIGWINCH is forwarded quietly.
//! - **Reaping.** As PID 1 of a container, every orphan in the container
//!   becomes our child: all are reaped (waitpid(-1)), so none stays a zombie.
//!   Otherwise only CMD is waited for.
//! - **Status.** We exit with CMD's status, 128+N when it died of signal N;
//!   127 when CMD is not found and 126 when it cannot run, as a shell says.
//! - **Callbacks, in this order.** Before CMD: `--wait-ready` (until the proxy
//!   answers 2xx; a SIGTERM meanwhile ends the wrapper with 143, CMD unstarted). On SIGTERM: forwarded at once, and `--on-term` callbacks
//!   fired alongside. After CMD exits, while the proxy is still up: the
//!   `--on-term` callbacks still running are let finish, then `--on-exit`
//!   callbacks, then `--done-file` is written (the proxy's `file` hook may
//!   now return), then `--quit-proxy` is POSTed (Jobs: ask Istio's proxy to
//!   exit). Callback failures are logged; the exit status stays CMD's.

use crate::{
    action::callback,
    error::Error,
    exit,
    http_client::{self, Outgoing},
    retry::{self, Look, Outcome, Pace},
    wait::chain,
};
use graceful_wait_shared::cli::ExecArgs;
use nix::{
    errno::Errno,
    sys::{
        signal::{kill, SigSet, Signal},
        wait::{waitpid, WaitPidFlag, WaitStatus},
    },
    unistd::{getpid, Pid},
};
use std::{
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        atomic::{AtomicI32, Ordering},
        Arc,
    },
    time::Duration,
};
use tokio::{
    runtime::Runtime,
    sync::mpsc::{self, UnboundedReceiver},
    time::Instant,
};

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub on_term: Vec<String>,
    pub on_exit: Vec<String>,
    pub wait_ready: Option<String>,
    pub ready_timeout: Duration,
    pub quit_proxy: Option<String>,
    pub done_file: Option<PathBuf>,
    /// Method, headers, body of the on-term/on-exit callbacks.
    pub callback: callback::Spec,
    pub callback_timeout: Duration,
    pub request_timeout: Duration,
    pub cmd: Vec<String>,
}

impl From<ExecArgs> for Options {
    fn from(args: ExecArgs) -> Options {
        Options {
            callback: callback::Spec::new(Vec::new(), &args.send),
            request_timeout: args.send.request_timeout,
            on_term: args.on_term,
            on_exit: args.on_exit,
            wait_ready: args.wait_ready,
            ready_timeout: args.ready_timeout,
            quit_proxy: args.quit_proxy,
            done_file: args.done_file,
            callback_timeout: args.callback_timeout,
            cmd: args.cmd,
        }
    }
}

/// What the signal thread tells the supervisor.
enum Event {
    Term,
    Exited(i32),
}

/// Signals that concern this process itself, never forwarded (see the top).
const NOT_FORWARDED: &[Signal] = &[
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGABRT,
    Signal::SIGTRAP,
    Signal::SIGSYS,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
];

/// Runs the wrapper; returns the process's exit status.
pub fn run(args: ExecArgs) -> i32 {
    let opts = Options::from(args);
    let forwarded = match block_signals() {
        Ok(set) => set,
        Err(e) => return fail(&e),
    };
    let runtime = match crate::runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let (child_pid, mut events) = start_signal_thread(forwarded);
    // CMD never started: the done file still says so, so the proxy's file
    // wait is not held for nothing.
    if let Err(status) = hold_until_proxy_ready(&runtime, &opts, &mut events) {
        return done(&opts, status);
    }
    if let Err(status) = start_cmd(&opts.cmd, &child_pid) {
        return done(&opts, status);
    }
    runtime.block_on(supervise(&opts, events))
}

/// Writes the done file (when asked for) with `status`; returns `status`.
fn done(opts: &Options, status: i32) -> i32 {
    if let Some(path) = &opts.done_file {
        match write_marker(path, status) {
            Ok(()) => tracing::info!(path = %path.display(), status, "done file written"),
            Err(e) => tracing::error!("{e}"),
        }
    }
    status
}

fn fail(e: &Error) -> i32 {
    tracing::error!("{e}");
    exit::of_error(e)
}

/// Step 1: block every forwardable signal before any thread exists, so every
/// thread (and so the process) leaves them to the sigwait thread. CMD must not
/// inherit the mask (it would never see SIGTERM): [`start_cmd`] clears it.
fn block_signals() -> Result<SigSet, Error> {
    let mut forwarded = SigSet::all();
    for s in NOT_FORWARDED {
        forwarded.remove(*s);
    }
    forwarded
        .thread_block()
        .map_err(|e| Error::permanent(format!("cannot block signals: {e}")))?;
    Ok(forwarded)
}

/// Step 2: the sigwait thread, from the start, so a SIGTERM while we still
/// wait for the proxy is seen (and ends the wait) instead of lying pending.
/// Returns where CMD's pid goes once known, and the thread's events.
fn start_signal_thread(forwarded: SigSet) -> (Arc<AtomicI32>, UnboundedReceiver<Event>) {
    let child_pid = Arc::new(AtomicI32::new(NO_CHILD));
    let init = getpid() == Pid::from_raw(1);
    let (events, rx) = mpsc::unbounded_channel();
    let for_thread = child_pid.clone();
    std::thread::spawn(move || signal_loop(forwarded, for_thread, init, events));
    (child_pid, rx)
}

/// Step 3 (`--wait-ready`): CMD starts only once the proxy answers 2xx. Giving
/// up, or a SIGTERM meanwhile, ends the wrapper without starting CMD.
fn hold_until_proxy_ready(
    runtime: &Runtime,
    opts: &Options,
    events: &mut UnboundedReceiver<Event>,
) -> Result<(), i32> {
    let Some(url) = &opts.wait_ready else {
        return Ok(());
    };
    let ready = runtime.block_on(async {
        tokio::select! {
            r = wait_ready(url, opts.ready_timeout) => r.map_err(|e| (e, exit::FAILED)),
            Some(Event::Term) = events.recv() => {
                Err(("SIGTERM arrived first".into(), exit::TERMINATED))
            }
        }
    });
    ready.map_err(|(why, status)| {
        tracing::error!("{why}; not starting {}", opts.cmd[0]);
        status
    })
}

/// Step 4: start CMD with an empty signal mask, and tell the signal thread
/// its pid.
fn start_cmd(cmd: &[String], child_pid: &AtomicI32) -> Result<(), i32> {
    let mut command = Command::new(&cmd[0]);
    command.args(&cmd[1..]);
    // SAFETY: between fork and exec only async-signal-safe calls are allowed;
    // pthread_sigmask(2) is one, and nothing is allocated here.
    unsafe {
        command.pre_exec(|| {
            SigSet::empty()
                .thread_set_mask()
                .map_err(std::io::Error::from)
        });
    }
    let child = command.spawn().map_err(|e| {
        tracing::error!(command = %cmd[0], "cannot start: {e}");
        chain::cannot_start(&e)
    })?;
    let pid = child.id() as i32;
    // We reap with waitpid ourselves; std's Child is not waited on.
    drop(child);
    child_pid.store(pid, Ordering::SeqCst);
    // CMD may have ended before the signal thread knew its pid: a SIGCHLD to
    // ourselves makes it look again.
    let _ = kill(getpid(), Signal::SIGCHLD);
    let init = getpid() == Pid::from_raw(1);
    // CMD's arguments may hold secrets: the program and how many arguments,
    // the whole command line at debug level only.
    tracing::info!(command = %cmd[0], args = cmd.len() - 1, pid, init, "started");
    tracing::debug!(command = ?cmd, "started");
    Ok(())
}

/// Step 5: until CMD exits, fire `--on-term` on the first SIGTERM (the
/// signal itself is forwarded by the signal thread). Then, while the proxy
/// is still up: let on-term finish, `--on-exit`, `--done-file`,
/// `--quit-proxy`. Returns CMD's status.
async fn supervise(opts: &Options, mut events: UnboundedReceiver<Event>) -> i32 {
    let mut on_term = tokio::task::JoinSet::new();
    let status = loop {
        match events.recv().await {
            Some(Event::Term) if !opts.on_term.is_empty() && on_term.is_empty() => {
                let spec = callback::Spec {
                    urls: opts.on_term.clone(),
                    ..opts.callback.clone()
                };
                let policy = policy(opts);
                on_term.spawn(async move { fire("on-term", &spec, policy).await });
            }
            Some(Event::Term) => {}
            Some(Event::Exited(status)) => break status,
            None => break exit::FAILED,
        }
    };
    tracing::info!(status, "{} exited", opts.cmd[0]);
    while on_term.join_next().await.is_some() {}
    if !opts.on_exit.is_empty() {
        let spec = callback::Spec {
            urls: opts.on_exit.clone(),
            ..opts.callback.clone()
        };
        fire("on-exit", &spec, policy(opts)).await;
    }
    done(opts, status);
    if let Some(url) = &opts.quit_proxy {
        let spec = callback::Spec {
            urls: vec![url.clone()],
            method: "POST".into(),
            ..callback::Spec::default()
        };
        fire("quit-proxy", &spec, policy(opts)).await;
    }
    status
}

fn policy(opts: &Options) -> callback::Policy {
    callback::Policy {
        deadline: Some(Instant::now() + opts.callback_timeout),
        request_timeout: opts.request_timeout,
    }
}

async fn fire(what: &str, spec: &callback::Spec, policy: callback::Policy) {
    match callback::build(spec) {
        Ok(requests) => {
            let outcomes = callback::send_all(&requests, policy).await;
            if exit::of_callbacks(&outcomes) != exit::OK {
                tracing::error!("{what}: not every callback was delivered");
            }
        }
        Err(e) => tracing::error!("{what}: {e}"),
    }
}

/// No CMD yet (still waiting for the proxy to be ready).
const NO_CHILD: i32 = 0;

/// The sigwait thread: forwards signals to CMD, reaps children, reports.
fn signal_loop(
    set: SigSet,
    child: Arc<AtomicI32>,
    init: bool,
    events: mpsc::UnboundedSender<Event>,
) {
    // Signals that came before CMD's pid was known (CMD may already run and
    // be signalled before spawn() returns here): forwarded once it is.
    let mut held: Vec<Signal> = Vec::new();
    loop {
        let sig = match set.wait() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("sigwait: {e}");
                continue;
            }
        };
        if sig == Signal::SIGTERM {
            let _ = events.send(Event::Term);
        }
        let pid = child.load(Ordering::SeqCst);
        if pid == NO_CHILD {
            if sig != Signal::SIGCHLD {
                held.push(sig);
            }
            continue;
        }
        let pid = Pid::from_raw(pid);
        for s in held.drain(..) {
            forward(pid, s);
        }
        if sig == Signal::SIGCHLD {
            if let Some(status) = reap(pid, init) {
                let _ = events.send(Event::Exited(status));
                // CMD is gone, but as PID 1 its orphans still end while the
                // exit callbacks run: keep reaping them until we exit.
                if init {
                    reap_orphans(&set);
                }
                return;
            }
            continue;
        }
        forward(pid, sig);
    }
}

/// After CMD has exited, as PID 1: reap every child that ends, forward
/// nothing (there is no one to forward to).
fn reap_orphans(set: &SigSet) {
    loop {
        if let Ok(Signal::SIGCHLD) = set.wait() {
            while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                if status == WaitStatus::StillAlive {
                    break;
                }
            }
        }
    }
}

fn forward(pid: Pid, sig: Signal) {
    match kill(pid, sig) {
        Ok(()) if matches!(sig, Signal::SIGURG | Signal::SIGWINCH) => {
            tracing::debug!("forwarded {sig}")
        }
        Ok(()) => tracing::info!("forwarded {sig}"),
        Err(Errno::ESRCH) => {}
        Err(e) => tracing::warn!("cannot forward {sig}: {e}"),
    }
}

/// Reaps what has ended; CMD's exit status once it has.
fn reap(child: Pid, init: bool) -> Option<i32> {
    let target = if init { None } else { Some(child) };
    let mut status = None;
    loop {
        match waitpid(target, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => status = Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                status = Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return status,
            Ok(_) => {} // an orphan we adopted as PID 1: reaped, nothing more
            Err(Errno::EINTR) => {}
            Err(e) => {
                tracing::warn!("waitpid: {e}");
                return status;
            }
        }
    }
}

/// Until `url` answers 2xx (the proxy is ready), at most `limit`.
async fn wait_ready(url: &str, limit: Duration) -> Result<(), String> {
    // Logs and messages name the URL redacted (no credentials or query).
    let shown = graceful_wait_shared::url::redact(url);
    let uri = graceful_wait_shared::url::with_default_scheme(url)
        .map_err(|e| format!("--wait-ready '{shown}' is not a URL: {e}"))?;
    let request = Outgoing {
        method: http::Method::GET,
        uri,
        shown: shown.clone(),
        headers: Vec::new(),
        body: bytes::Bytes::new(),
        // Waiting for the proxy to come up: a certificate it does not
        // present yet may be served by the time it is ready.
        retry_untrusted: true,
    };
    tracing::info!(url = %shown, "waiting for the proxy to be ready");
    let deadline = Instant::now() + limit;
    let outcome = retry::until(
        "proxy not ready",
        Some(deadline),
        Pace::Every(Duration::from_millis(100)),
        async || match tokio::time::timeout(Duration::from_secs(1), http_client::send(&request))
            .await
        {
            Ok(Ok(s)) if s.is_success() => Ok(Look::Done(format!("HTTP {s}"))),
            Ok(Ok(s)) => Ok(Look::Pending(format!("HTTP {s}"))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::transient("no answer within 1s")),
        },
    )
    .await;
    match outcome {
        Outcome::Met { .. } => {
            tracing::info!(url = %shown, "proxy ready");
            Ok(())
        }
        Outcome::DeadlinePassed { last, .. } => Err(format!(
            "{shown} was not ready within {limit:?} (last: {last})"
        )),
        Outcome::Stopped { error, .. } => Err(format!("--wait-ready {shown}: {error}")),
    }
}

/// The marker, written atomically: the proxy's hook must never see half of it.
fn write_marker(path: &Path, status: i32) -> Result<(), String> {
    graceful_wait_shared::atomic_file::write(path, format!("exit {status}\n").as_bytes(), 0o644)
        .map_err(|e| format!("cannot write done file {}: {e}", path.display()))
}
