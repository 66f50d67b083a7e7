//! The command line. Every flag also reads an environment variable
//! (`GRACEFUL_WAIT_<FLAG>`), so a manifest can set them in `env:`.

use crate::{listen::SourceKind, logging, status_set::StatusSet, target::Target};
use clap::{Args, Parser, Subcommand};
use std::{path::PathBuf, time::Duration};

const EXIT_CODES: &str = "\
Exit status:
  0    the condition was observed: the app is gone
  1    any other failure (a check could not be made, CMD could not start);
       never 0 for a condition that was not observed
  2    usage error
  124  --timeout passed first (as timeout(1))
  With -- CMD: after a wait that ended 0, CMD's own status (128+N if it died
  of signal N); otherwise the wait's status. CMD runs in every case.";

/// Waits until the app in this pod has really finished, then returns, so the
/// sidecar proxy's preStop hook holds the proxy up for the app's last calls.
#[derive(Parser, Debug)]
#[command(name = "graceful-wait", version, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log format on stderr: text (one line per event) or json.
    #[arg(
        long,
        global = true,
        default_value = "text",
        env = "GRACEFUL_WAIT_LOG_FORMAT"
    )]
    pub log_format: logging::Format,

    /// Log warnings and errors only.
    #[arg(short, long, global = true, env = "GRACEFUL_WAIT_QUIET")]
    pub quiet: bool,

    /// Also append log lines to this file. /proc/1/fd/1 (the container's own
    /// stdout) makes a hook's lines show in `kubectl logs`.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "GRACEFUL_WAIT_LOG_COPY"
    )]
    pub log_copy: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Return when no TCP socket in this network namespace LISTENs on the port(s).
    #[command(after_help = EXIT_CODES)]
    Tcp(TcpArgs),
    /// Return when the HTTP endpoint stops answering (refused, reset, closed).
    #[command(after_help = EXIT_CODES)]
    Http(HttpArgs),
    /// Return when no ESTABLISHED connection remains on the local port(s):
    /// the inbound drain has finished.
    #[command(after_help = EXIT_CODES)]
    Connections(TcpArgs),
    /// Return when PATH exists: a marker the app (or `exec --done-file`) writes
    /// on the shared volume when it has finished.
    #[command(after_help = EXIT_CODES)]
    File(FileArgs),
    /// Return when the app's processes are gone (needs shareProcessNamespace).
    #[command(after_help = EXIT_CODES)]
    Process(ProcessArgs),
    /// Send termination callbacks, retried until delivered (2xx) or --timeout.
    #[command(after_help = CALLBACK_EXIT_CODES)]
    Callback(CallbackArgs),
    /// Run CMD as the app's entrypoint: forward signals, reap zombies, fire
    /// callbacks on SIGTERM and exit, write a done file, exit with CMD's status.
    Exec(ExecArgs),
    /// Copy this binary to DIR/graceful-wait (the init container's job):
    /// atomically, mode 0555; succeeds if the same binary is already there.
    Install(InstallArgs),
}

const CALLBACK_EXIT_CODES: &str = "\
Exit status:
  0    every callback was delivered (2xx)
  1    a callback was refused for good (a 4xx other than 408/429) or is malformed
  2    usage error
  124  --timeout passed before every callback was delivered";

#[derive(Args, Debug)]
pub struct FileArgs {
    /// The marker file to wait for.
    #[arg(long, value_name = "PATH", env = "GRACEFUL_WAIT_FILE")]
    pub exists: PathBuf,

    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("select").required(true).multiple(true))]
pub struct ProcessArgs {
    /// Wait for processes with this name (comm, as `ps -o comm` shows it).
    #[arg(
        long = "name",
        group = "select",
        value_delimiter = ',',
        env = "GRACEFUL_WAIT_PROCESS_NAME"
    )]
    pub names: Vec<String>,

    /// Wait for this pid.
    #[arg(
        long = "pid",
        group = "select",
        value_delimiter = ',',
        env = "GRACEFUL_WAIT_PID"
    )]
    pub pids: Vec<i32>,

    /// Wait for every process whose real uid is not one of these (1337 is
    /// Istio's proxy). This process, its ancestors and `pause` never count.
    #[arg(
        long = "exclude-uid",
        group = "select",
        value_delimiter = ',',
        env = "GRACEFUL_WAIT_EXCLUDE_UID"
    )]
    pub exclude_uids: Vec<u32>,

    /// The pod's /proc.
    #[arg(
        long,
        default_value = "/proc",
        env = "GRACEFUL_WAIT_PROC",
        hide_short_help = true
    )]
    pub proc: PathBuf,

    #[command(flatten)]
    pub wait: WaitArgs,
}

/// How callbacks are sent (shared by `callback` and `exec`).
#[derive(Args, Debug, Clone)]
pub struct CallbackOptions {
    /// HTTP method.
    #[arg(long, default_value = "POST", env = "GRACEFUL_WAIT_METHOD")]
    pub method: String,

    /// A header, "Name: value"; repeat for more. $VARS are expanded.
    #[arg(long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,

    /// The body: a string, or @PATH to read a file. $VARS are expanded.
    #[arg(long, env = "GRACEFUL_WAIT_DATA")]
    pub data: Option<String>,

    /// The Idempotency-Key header; by default derived from the pod, method,
    /// URL and body, so retries and repeated hooks send the same key.
    #[arg(long, env = "GRACEFUL_WAIT_IDEMPOTENCY_KEY")]
    pub idempotency_key: Option<String>,

    /// Bound on each attempt.
    #[arg(long, default_value = "2s", value_parser = crate::duration::parse, env = "GRACEFUL_WAIT_REQUEST_TIMEOUT")]
    pub request_timeout: Duration,
}

#[derive(Args, Debug)]
pub struct CallbackArgs {
    /// Where to send it (http:// or https://; no scheme means http://); repeat
    /// for several, sent at once. $POD_NAME-style variables are expanded.
    #[arg(
        long = "url",
        required = true,
        env = "GRACEFUL_WAIT_CALLBACK_URL",
        value_delimiter = ' '
    )]
    pub urls: Vec<String>,

    #[command(flatten)]
    pub send: CallbackOptions,

    /// Overall deadline for delivering every callback (retries included).
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse, env = "GRACEFUL_WAIT_TIMEOUT")]
    pub timeout: Duration,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Callback fired when SIGTERM arrives (alongside forwarding it); repeatable.
    #[arg(long = "on-term", value_name = "URL")]
    pub on_term: Vec<String>,

    /// Callback fired after CMD has exited, while the proxy is still up; repeatable.
    #[arg(long = "on-exit", value_name = "URL")]
    pub on_exit: Vec<String>,

    /// Before starting CMD, wait until this URL answers 2xx (the proxy is ready),
    /// e.g. localhost:15021/healthz/ready.
    #[arg(long, value_name = "URL", env = "GRACEFUL_WAIT_READY_URL")]
    pub wait_ready: Option<String>,

    /// How long --wait-ready waits before giving up (exit 1, CMD not started).
    #[arg(long, default_value = "60s", value_parser = crate::duration::parse)]
    pub ready_timeout: Duration,

    /// After CMD exits (and the exit callbacks), POST this URL, e.g. Istio's
    /// localhost:15020/quitquitquit for Jobs.
    #[arg(long, value_name = "URL", env = "GRACEFUL_WAIT_QUIT_PROXY")]
    pub quit_proxy: Option<String>,

    /// After CMD exits and the exit callbacks are done, write this marker
    /// (the proxy's `file --exists` hook waits for it).
    #[arg(long, value_name = "PATH", env = "GRACEFUL_WAIT_DONE_FILE")]
    pub done_file: Option<PathBuf>,

    #[command(flatten)]
    pub send: CallbackOptions,

    /// Deadline for each group of callbacks (on-term, on-exit, quit-proxy).
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse)]
    pub callback_timeout: Duration,

    /// The app's command.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

#[derive(Args, Debug)]
pub struct InstallArgs {
    /// The shared volume's mount path, e.g. /graceful-wait.
    #[arg(value_name = "DIR", env = "GRACEFUL_WAIT_INSTALL_DIR")]
    pub dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct TcpArgs {
    /// Port to watch; repeat (or comma-separate in the env var) for several.
    /// The wait ends when none of them has a listener, IPv4 or IPv6.
    #[arg(long = "port", required = true, value_delimiter = ',', env = "GRACEFUL_WAIT_PORT",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub ports: Vec<u16>,

    /// Where to read listeners: netlink (sock_diag), proc (/proc/net/tcp{,6}),
    /// or auto (netlink, falling back to proc).
    #[arg(long, default_value = "auto", env = "GRACEFUL_WAIT_SOURCE")]
    pub source: SourceKind,

    /// The folder holding tcp and tcp6, for --source proc.
    #[arg(
        long,
        default_value = "/proc/net",
        env = "GRACEFUL_WAIT_PROC_NET",
        hide_short_help = true
    )]
    pub proc_net: PathBuf,

    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Args, Debug)]
pub struct HttpArgs {
    /// Endpoint to watch, e.g. localhost:3000/health (no scheme means http://).
    /// The host must be localhost or an IP address: it is resolved without
    /// /etc/hosts or DNS.
    #[arg(long, env = "GRACEFUL_WAIT_URL", value_parser = crate::target::parse)]
    pub url: Target,

    /// Bound on each request; a request that times out counts as still up.
    #[arg(long, default_value = "1s", value_parser = crate::duration::parse,
          env = "GRACEFUL_WAIT_REQUEST_TIMEOUT")]
    pub request_timeout: Duration,

    /// HTTP statuses that count as down, e.g. 500-599 or 404,503. By default
    /// every status counts as up: apps often answer 503 while they drain.
    #[arg(long, env = "GRACEFUL_WAIT_DOWN_STATUS")]
    pub down_status: Option<StatusSet>,

    #[command(flatten)]
    pub wait: WaitArgs,
}

/// What every wait shares.
#[derive(Args, Debug)]
pub struct WaitArgs {
    /// Overall deadline (500ms, 30s, 2m, or plain seconds); exit 124 when it
    /// passes. None by default: the pod's grace period bounds the hook.
    #[arg(long, value_parser = crate::duration::parse, env = "GRACEFUL_WAIT_TIMEOUT")]
    pub timeout: Option<Duration>,

    /// Time between checks.
    #[arg(long, default_value = "100ms", value_parser = parse_interval, env = "GRACEFUL_WAIT_INTERVAL")]
    pub interval: Duration,

    /// Command to run after the wait ends, whatever the reason, e.g.
    /// -- pilot-agent request --debug-port=15020 POST drain
    #[arg(last = true, value_name = "CMD")]
    pub then: Vec<String>,
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = crate::duration::parse(text)?;
    if d < Duration::from_millis(1) {
        return Err("the interval must be at least 1ms".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_is_well_formed() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn repeatable_ports_and_chained_command() {
        let cli = Cli::try_parse_from([
            "graceful-wait",
            "tcp",
            "--port",
            "20000",
            "--port=15000",
            "--timeout",
            "2m",
            "--",
            "pilot-agent",
            "request",
            "POST",
            "drain",
        ])
        .unwrap();
        let Command::Tcp(t) = cli.command else {
            panic!("not tcp")
        };
        assert_eq!(t.ports, [20000, 15000]);
        assert_eq!(t.wait.timeout, Some(Duration::from_secs(120)));
        assert_eq!(t.wait.interval, Duration::from_millis(100));
        assert_eq!(t.wait.then, ["pilot-agent", "request", "POST", "drain"]);
    }

    #[test]
    fn port_zero_and_zero_interval_are_usage_errors() {
        assert!(Cli::try_parse_from(["graceful-wait", "tcp", "--port", "0"]).is_err());
        assert!(
            Cli::try_parse_from(["graceful-wait", "tcp", "--port", "1", "--interval", "0"])
                .is_err()
        );
        assert!(Cli::try_parse_from(["graceful-wait", "tcp"]).is_err());
    }
}
