//! The command lines the injector writes: a preStop's `graceful-wait MODE …
//! [-- CHAINED]` and a wrapped entrypoint's `graceful-wait exec … -- CMD`.
//! Each is parsed by the binary's own command-line definition before it is
//! written.

use crate::config::{Callback, Wait, WaitFor, Wrap};
use crate::error::Error;
use std::time::Duration;

/// What one graceful-wait call in a preStop is.
#[derive(Clone, Debug)]
pub enum Call {
    Wait(Wait),
    Callback(Callback),
}

impl Call {
    /// The `--timeout` the config gives, if any.
    pub fn timeout(&self) -> Option<Duration> {
        match self {
            Call::Wait(w) => w.timeout,
            Call::Callback(c) => c.timeout,
        }
    }
}

/// `BINARY [--log-copy=COPY] MODE … --timeout=T [--interval=I] [-- CHAINED]`,
/// accepted by the binary. An error is a bug here: nothing is written.
pub fn hook(
    binary: String,
    log_copy: Option<&str>,
    call: &Call,
    timeout: Duration,
    chained: &[String],
) -> Result<Vec<String>, Error> {
    let mut argv = vec![binary];
    // A hook's output is not in `kubectl logs`; a copy on the container's
    // own stdout is. Opened without blocking; if it cannot be opened the
    // hook says so on stderr and goes on.
    if let Some(copy) = log_copy {
        argv.push(format!("--log-copy={copy}"));
    }
    match call {
        Call::Wait(w) => wait_args(w, &mut argv),
        Call::Callback(c) => callback_args(c, &mut argv),
    }
    argv.push(format!("--timeout={}", show(timeout)));
    if let Call::Wait(Wait {
        interval: Some(i), ..
    }) = call
    {
        argv.push(format!("--interval={}", show(*i)));
    }
    if !chained.is_empty() {
        argv.push("--".into());
        argv.extend(chained.iter().cloned());
    }
    accepted_by_the_binary(&argv)?;
    Ok(argv)
}

/// A preStop action only the kubelet can run, as graceful-wait does it
/// behind the wait: the same request, or the same pause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KubeletAction {
    /// An `httpGet`: one GET of `url` with `headers` ("Name: value"), within
    /// `timeout`.
    Get {
        url: String,
        headers: Vec<String>,
        timeout: Duration,
    },
    /// A `sleep` of this many seconds.
    Sleep(u64),
}

/// `BINARY callback --url=URL --method=GET [--header=…] --timeout=T` or
/// `BINARY sleep Ns`, accepted by the binary: what is chained after `--` in
/// place of a kubelet action.
pub fn kubelet_action(binary: String, action: &KubeletAction) -> Result<Vec<String>, Error> {
    let mut argv = vec![binary];
    match action {
        KubeletAction::Get {
            url,
            headers,
            timeout,
        } => {
            argv.extend([
                "callback".into(),
                format!("--url={url}"),
                "--method=GET".into(),
            ]);
            argv.extend(headers.iter().map(|h| format!("--header={h}")));
            argv.push(format!("--timeout={}", show(*timeout)));
        }
        KubeletAction::Sleep(seconds) => argv.extend(["sleep".into(), format!("{seconds}s")]),
    }
    accepted_by_the_binary(&argv)?;
    Ok(argv)
}

/// `BINARY exec [--wait-ready=…] [--on-term=…] [--on-exit=…] [--done-file=…]
/// [--quit-proxy=…] -- ORIGINAL`, accepted by the binary.
pub fn wrapper(binary: String, w: &Wrap, original: Vec<String>) -> Result<Vec<String>, Error> {
    let mut argv = vec![binary, "exec".to_string()];
    argv.extend(w.wait_ready.iter().map(|u| format!("--wait-ready={u}")));
    argv.extend(w.on_term.iter().map(|u| format!("--on-term={u}")));
    argv.extend(w.on_exit.iter().map(|u| format!("--on-exit={u}")));
    argv.extend(w.done_file.iter().map(|p| format!("--done-file={p}")));
    argv.extend(w.quit_proxy.iter().map(|u| format!("--quit-proxy={u}")));
    argv.push("--".into());
    argv.extend(original);
    accepted_by_the_binary(&argv)?;
    Ok(argv)
}

/// Every command the injector writes is first parsed by the binary's own
/// command-line definition, without the environment: a hook the binary
/// would reject is a bug here, and nothing is written.
///
/// Building the parser costs far more than parsing, and a stream of many
/// workloads writes the same few commands again and again: commands already
/// accepted are remembered (a bounded number of them).
fn accepted_by_the_binary(argv: &[String]) -> Result<(), Error> {
    use std::{cell::RefCell, collections::HashSet};
    thread_local! {
        static ACCEPTED: RefCell<HashSet<Vec<String>>> = RefCell::new(HashSet::new());
    }
    if ACCEPTED.with(|a| a.borrow().contains(argv)) {
        return Ok(());
    }
    graceful_wait_shared::cli::Cli::try_parse_args_without_env(argv)
        .map(|_| {
            ACCEPTED.with(|a| {
                let mut a = a.borrow_mut();
                if a.len() < 4096 {
                    a.insert(argv.to_vec());
                }
            })
        })
        .map_err(|e| {
            Error::internal(
                None,
                format!(
                    "graceful-inject planned a command graceful-wait rejects ({}): {}",
                    argv.join(" "),
                    e.to_string().lines().next().unwrap_or_default()
                ),
            )
        })
}

/// A command an earlier run wrote (`DIR/graceful-wait [--log-copy=…] MODE ... [-- ORIGINAL]`,
/// whatever DIR was then): the original part after `--`; None when it is not
/// ours. With `mode`, only a command of that mode counts.
pub fn after_our_dashes(argv: &[String], mode: Option<&str>) -> Option<Vec<String>> {
    let (binary, rest) = argv.split_first()?;
    // Global options (`--log-copy=…`, written in their `=` form) come first.
    let written_mode = rest.iter().find(|w| !w.starts_with('-'))?.as_str();
    let ours = binary.starts_with('/')
        && binary.rsplit('/').next() == Some(graceful_wait_shared::cli::BINARY_NAME)
        && graceful_wait_shared::cli::MODES.contains(&written_mode)
        && mode.is_none_or(|m| m == written_mode);
    if !ours {
        return None;
    }
    Some(
        argv.iter()
            .position(|w| w == "--")
            .map(|i| argv[i + 1..].to_vec())
            .unwrap_or_default(),
    )
}

/// A duration the way graceful-wait reads it back, exactly.
pub fn show(d: Duration) -> String {
    graceful_wait_shared::duration::show(d)
}

fn wait_args(w: &Wait, argv: &mut Vec<String>) {
    match &w.what {
        WaitFor::Tcp(ports) => {
            argv.push("tcp".into());
            argv.extend(ports.iter().map(|p| format!("--port={p}")));
        }
        WaitFor::Http { url, down_status } => {
            argv.push("http".into());
            argv.push(format!("--url={url}"));
            if let Some(ds) = down_status {
                argv.push(format!("--down-status={ds}"));
            }
        }
        WaitFor::Connections(ports) => {
            argv.push("connections".into());
            argv.extend(ports.iter().map(|p| format!("--port={p}")));
        }
        WaitFor::File(path) => {
            argv.push("file".into());
            argv.push(format!("--exists={path}"));
        }
        WaitFor::Process {
            names,
            exclude_uids,
        } => {
            argv.push("process".into());
            argv.extend(names.iter().map(|n| format!("--name={n}")));
            argv.extend(exclude_uids.iter().map(|u| format!("--exclude-uid={u}")));
        }
        WaitFor::Listeners(exclude_uids) => {
            argv.push("listeners".into());
            argv.extend(exclude_uids.iter().map(|u| format!("--exclude-uid={u}")));
        }
        WaitFor::Auto => unreachable!("auto is chosen per pod before a command is written"),
    }
}

fn callback_args(c: &Callback, argv: &mut Vec<String>) {
    argv.push("callback".into());
    argv.extend(c.urls.iter().map(|u| format!("--url={u}")));
    if let Some(m) = &c.method {
        argv.push(format!("--method={m}"));
    }
    if let Some(d) = &c.data {
        argv.push(format!("--data={d}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn only_commands_the_binary_accepts_pass() {
        let gw = "/graceful-wait/graceful-wait";
        for ok in [
            &[gw, "tcp", "--port=20000", "--timeout=25s"][..],
            &[
                gw,
                "http",
                "--url=localhost:3000/health",
                "--",
                "pilot-agent",
                "drain",
            ],
            &[gw, "callback", "--url=https://h/x", "--timeout=5s"],
            &[
                gw,
                "exec",
                "--done-file=/graceful-wait/app.done",
                "--",
                "/app",
            ],
        ] {
            assert!(accepted_by_the_binary(&argv(ok)).is_ok(), "{ok:?}");
        }
        for bad in [
            &[gw, "callback", "--url=https://h/x", "--interval=1s"][..],
            &[gw, "tcp", "--port=0"],
            &[gw, "wait", "--port=1"],
        ] {
            let e = accepted_by_the_binary(&argv(bad)).unwrap_err().to_string();
            assert!(
                e.contains("internal error") && e.contains("nothing was written"),
                "{e}"
            );
        }
    }

    #[test]
    fn the_environment_cannot_make_a_command_pass() {
        // A variable in the injector's own environment must not stand in for
        // a flag the written command lacks.
        std::env::set_var("GRACEFUL_WAIT_TCP_PORT", "8080");
        let r = accepted_by_the_binary(&argv(&["/gw", "tcp"]));
        std::env::remove_var("GRACEFUL_WAIT_TCP_PORT");
        assert!(r.is_err());
    }
}
