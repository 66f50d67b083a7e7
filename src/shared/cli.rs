//! The command line of `graceful-wait`, defined once: the binary parses its
//! arguments with it, the injector checks every command it writes with it,
//! and `docs/flags.md` is generated from it ([`crate::reference`]).
//!
//! **Environment variables.** Every option (every flag with a long name) also
//! reads a variable, so a manifest can set it in `env:`. The name is made by
//! one rule, applied in code by [`command`] rather than written per flag:
//! `GRACEFUL_WAIT_<FLAG>` for the options of every mode (`--log-format` →
//! `GRACEFUL_WAIT_LOG_FORMAT`), `GRACEFUL_WAIT_<MODE>_<FLAG>` for the options
//! of one mode (`tcp --port` → `GRACEFUL_WAIT_TCP_PORT`, `callback --timeout`
//! → `GRACEFUL_WAIT_CALLBACK_TIMEOUT`). So each variable means one thing,
//! whichever mode reads it. A flag on the command line wins over its variable.
//!
//! **Lists.** Options that take numbers or names (`--port`, `--pid`, `--name`,
//! `--exclude-uid`) accept a comma-separated list, on the command line and in
//! the variable. Options whose values may hold commas (URLs, headers) take one
//! value per flag and per variable; repeat the flag for more.

use crate::exit_status::{self, epilogue};
use crate::status_set::StatusSet;
use clap::{Arg, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::{ffi::OsString, path::PathBuf, time::Duration};

/// The binary's file name (the injector mounts it as `DIR/graceful-wait`).
pub const BINARY_NAME: &str = "graceful-wait";

/// Every mode, as typed on the command line.
pub const MODES: &[&str] = &[
    "tcp",
    "listeners",
    "http",
    "connections",
    "file",
    "process",
    "callback",
    "exec",
    "install",
    "sleep",
    "completions",
    "man",
];

/// Prefix of every environment variable the binary reads.
pub const ENV_PREFIX: &str = "GRACEFUL_WAIT";

/// Waits until the app in this pod has really finished, then returns, so the
/// sidecar proxy's preStop hook holds the proxy up for the app's last calls.
#[derive(Parser, Debug)]
#[command(name = "graceful-wait", version = crate::VERSION, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log format on stderr: one line of text per event, or one JSON object.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log warnings and errors only.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Also log every look and every event that woke the wait.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Also append log lines to this file. /proc/1/fd/1 (the container's own
    /// stdout) makes a hook's lines show in `kubectl logs`.
    #[arg(long, global = true, value_name = "PATH")]
    pub log_copy: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Return when no TCP socket in this network namespace LISTENs on the port(s).
    #[command(after_help = epilogue(&exit_status::WAIT, &["graceful-wait tcp --port 20000 --timeout 25s", "graceful-wait tcp --port 8080,8443 -- pilot-agent request --debug-port=15020 POST drain"]))]
    Tcp(TcpArgs),
    /// Return when no TCP socket listens in the pod except this container's
    /// own (the proxy's, when the hook runs in the proxy's container), whatever
    /// the users: the app's listeners are gone, whatever its ports. Needs no
    /// configuration. A listener whose owner cannot be told counts as the app's.
    #[command(after_help = epilogue(&exit_status::WAIT, &["graceful-wait listeners --timeout 25s", "graceful-wait listeners --exclude-uid 1337,100   # by uid instead: Istio's proxy and a sidecar running as uid 100"]))]
    Listeners(ListenersArgs),
    /// Return when the HTTP endpoint stops answering (refused, reset, closed).
    #[command(after_help = epilogue(&exit_status::WAIT, &["graceful-wait http --url localhost:3000/health --timeout 25s", "graceful-wait http --url 127.0.0.1:8080/ready --down-status 500-599"]))]
    Http(HttpArgs),
    /// Return when no connection the app still serves remains on the local
    /// port(s) (ESTABLISHED, SYN_RECV, CLOSE_WAIT, FIN_WAIT1, CLOSING,
    /// LAST_ACK): the inbound drain has finished.
    #[command(after_help = epilogue(&exit_status::WAIT, &["graceful-wait connections --port 8080 --timeout 25s", "graceful-wait connections --port 8080 -- graceful-wait file --exists /graceful-wait-done/app.done"]))]
    Connections(ConnectionsArgs),
    /// Return when PATH exists: a marker the app (or `exec --done-file`) writes
    /// on the shared volume when it has finished.
    #[command(after_help = epilogue(&exit_status::WAIT, &["graceful-wait file --exists /graceful-wait-done/app.done --timeout 25s"]))]
    File(FileArgs),
    /// Return when the app's processes are gone (needs shareProcessNamespace).
    #[command(after_help = epilogue(&exit_status::WAIT, &["graceful-wait process --exclude-uid 1337 --timeout 25s", "graceful-wait process --name java --timeout 25s"]))]
    Process(ProcessArgs),
    /// Send termination callbacks, retried until delivered (2xx) or --timeout.
    #[command(after_help = epilogue(&exit_status::CALLBACK, &["graceful-wait callback --url \"https://locks.shop.svc/release/$POD_NAME\" --timeout 20s",
        "graceful-wait callback --url http://127.0.0.1:8080/drain --method PUT --data @/etc/drain.json"]))]
    Callback(CallbackArgs),
    /// Run CMD as the app's entrypoint: forward signals, reap zombies, fire
    /// callbacks on SIGTERM and exit, write a done file, exit with CMD's status.
    #[command(after_help = epilogue(&exit_status::EXEC, &["graceful-wait exec --done-file /graceful-wait-done/app.done -- /app/server",
        "graceful-wait exec --wait-ready --on-exit \"https://registry.svc/gone/$POD_NAME\" -- java -jar app.jar"]))]
    Exec(ExecArgs),
    /// Copy this binary to DIR/graceful-wait (the init container's job):
    /// atomically, mode 0555; succeeds if the same binary is already there.
    #[command(after_help = epilogue(&exit_status::INSTALL, &["graceful-wait install /install   # the init container, with the shared volume at /install"]))]
    Install(InstallArgs),
    /// Pause for DURATION, then exit 0: a preStop's `sleep` action, kept
    /// behind the wait the injector puts in front of it.
    #[command(after_help = epilogue(&exit_status::SLEEP, &["graceful-wait sleep 20s", "graceful-wait listeners --timeout 25s -- /graceful-wait/graceful-wait sleep 5s"]))]
    Sleep(SleepArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  graceful-wait completions bash > /etc/bash_completion.d/graceful-wait\n  graceful-wait completions fish > ~/.config/fish/completions/graceful-wait.fish"
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff).
    #[command(after_help = "Example:\n  graceful-wait man | man -l -")]
    Man,
}

/// A shell to complete in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line of text per event.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Where the tcp and connections waits read the pod's sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SocketSource {
    /// netlink, falling back to /proc when netlink cannot be used.
    Auto,
    /// The kernel's sock_diag interface.
    Netlink,
    /// /proc/net/tcp and /proc/net/tcp6.
    Proc,
}

impl SocketSource {
    pub fn name(self) -> &'static str {
        match self {
            SocketSource::Auto => "auto",
            SocketSource::Netlink => "netlink",
            SocketSource::Proc => "proc",
        }
    }
}

#[derive(Args, Debug)]
pub struct TcpArgs {
    /// Port to watch; repeat or comma-separate for several. The wait ends when
    /// none of them has a listener, IPv4 or IPv6.
    #[arg(long = "port", required = true, value_delimiter = ',',
          value_parser = clap::value_parser!(u16).range(1..))]
    pub ports: Vec<u16>,

    #[command(flatten)]
    pub sockets: SocketArgs,

    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Args, Debug)]
pub struct ListenersArgs {
    /// Listeners owned by this uid do not count, in place of the default rule
    /// (this container's own sockets do not count, whatever their uid);
    /// repeat or comma-separate for several. 1337 is Istio's proxy.
    #[arg(long = "exclude-uid", value_delimiter = ',')]
    pub exclude_uids: Vec<u32>,

    /// The container's /proc: its processes, whose sockets do not count.
    #[arg(long, default_value = "/proc", hide_short_help = true)]
    pub proc: PathBuf,

    #[command(flatten)]
    pub sockets: SocketArgs,

    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Args, Debug)]
pub struct ConnectionsArgs {
    /// Local port whose connections to wait for; repeat or comma-separate
    /// for several. A listener alone is not a connection.
    #[arg(long = "port", required = true, value_delimiter = ',',
          value_parser = clap::value_parser!(u16).range(1..))]
    pub ports: Vec<u16>,

    #[command(flatten)]
    pub sockets: SocketArgs,

    #[command(flatten)]
    pub wait: WaitArgs,
}

/// Where the socket waits read the pod's sockets.
#[derive(Args, Debug)]
pub struct SocketArgs {
    /// Where to read the pod's TCP sockets.
    #[arg(long, value_enum, default_value_t = SocketSource::Auto)]
    pub source: SocketSource,

    /// The folder holding tcp and tcp6, for --source proc.
    #[arg(long, default_value = "/proc/net", hide_short_help = true)]
    pub proc_net: PathBuf,
}

#[derive(Args, Debug)]
pub struct HttpArgs {
    /// Endpoint to watch, e.g. localhost:3000/health (no scheme means http://).
    /// The host must be localhost or an IP address: it is resolved without
    /// /etc/hosts or DNS.
    // Parsed when the wait opens, not here: clap would repeat a bad value
    // (and any token in it) in its message.
    #[arg(long, value_name = "URL")]
    pub url: String,

    /// Bound on each request; a request that times out counts as still up.
    #[arg(long, default_value = "1s", value_parser = crate::duration::parse)]
    pub request_timeout: Duration,

    /// HTTP statuses that count as down, e.g. 500-599 or 404,503. By default
    /// every status counts as up: apps often answer 503 while they drain.
    #[arg(long)]
    pub down_status: Option<StatusSet>,

    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Args, Debug)]
pub struct FileArgs {
    /// The marker file to wait for.
    #[arg(long, value_name = "PATH")]
    pub exists: PathBuf,

    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("select").required(true).multiple(true))]
pub struct ProcessArgs {
    /// Wait for processes with this name, matched as pgrep does: against the
    /// kernel's process name (comm, 15 bytes; a longer name matches on its
    /// first 15); repeat or comma-separate for several.
    #[arg(long = "name", group = "select", value_delimiter = ',')]
    pub names: Vec<String>,

    /// Match --name against the whole program name (the last part of argv[0]
    /// in /proc/PID/cmdline) instead of the 15-byte comm.
    // The text is the option's help as it is: `argv[0]` there is no link.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long, requires = "names")]
    pub full_name: bool,

    /// Wait for this pid; repeat or comma-separate for several.
    #[arg(long = "pid", group = "select", value_delimiter = ',')]
    pub pids: Vec<i32>,

    /// Wait for every process whose real uid is not one of these (1337 is
    /// Istio's proxy). This process, its ancestors and the pod's infra process
    /// (`pause`, podman's `catatonit`) never count.
    #[arg(long = "exclude-uid", group = "select", value_delimiter = ',')]
    pub exclude_uids: Vec<u32>,

    /// The pod's /proc.
    #[arg(long, default_value = "/proc", hide_short_help = true)]
    pub proc: PathBuf,

    #[command(flatten)]
    pub wait: WaitArgs,
}

/// What every wait shares.
#[derive(Args, Debug)]
pub struct WaitArgs {
    /// Overall deadline (500ms, 30s, 2m, or plain seconds). None by default:
    /// the pod's grace period bounds the hook.
    #[arg(long, value_parser = crate::duration::parse)]
    pub timeout: Option<Duration>,

    /// Time between looks. By default 2s where an event wakes the wait as
    /// soon as its condition may have changed (a socket closed, a process
    /// exited, a file appeared), so looks are only a safety net; 100ms where
    /// the wait polls (no events in this kernel or sandbox, --source proc,
    /// an http wait with --down-status).
    #[arg(long, value_parser = parse_interval)]
    pub interval: Option<Duration>,

    /// Command to run after the wait ends, whatever the reason, e.g.
    /// -- pilot-agent request --debug-port=15020 POST drain
    #[arg(last = true, value_name = "CMD")]
    pub then: Vec<String>,
}

/// How callbacks are sent (by `callback`, and by `exec` for its own).
#[derive(Args, Debug, Clone)]
pub struct CallbackOptions {
    /// HTTP method.
    #[arg(long, default_value = "POST")]
    pub method: String,

    /// A header, "Name: value"; repeat for more. $VARS are expanded.
    #[arg(long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,

    /// The body: a string, or @PATH to read a file. $VARS are expanded.
    #[arg(long)]
    pub data: Option<String>,

    /// The Idempotency-Key header; by default derived from the pod, method,
    /// URL and body, so retries and repeated hooks send the same key.
    #[arg(long)]
    pub idempotency_key: Option<String>,

    /// Bound on each attempt.
    #[arg(long, default_value = "2s", value_parser = crate::duration::parse)]
    pub request_timeout: Duration,

    /// Keep retrying an https:// endpoint whose certificate does not verify
    /// (say, while its certificate is being replaced). By default that is
    /// final at once, as a 4xx is: a certificate the trust store rejects
    /// will not start verifying on a retry.
    #[arg(long)]
    pub retry_untrusted: bool,
}

#[derive(Args, Debug)]
pub struct CallbackArgs {
    /// Where to send it (http:// or https://; no scheme means http://); repeat
    /// for several, sent at once. $POD_NAME-style variables are expanded.
    #[arg(long = "url", required = true)]
    pub urls: Vec<String>,

    #[command(flatten)]
    pub send: CallbackOptions,

    /// Overall deadline for delivering every callback (retries included).
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse)]
    pub timeout: Duration,

    /// Command to run after the callbacks, whatever their outcome (an
    /// existing preStop kept behind them).
    #[arg(last = true, value_name = "CMD")]
    pub then: Vec<String>,
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
    #[arg(long, value_name = "URL")]
    pub wait_ready: Option<String>,

    /// How long --wait-ready waits before giving up (exit 1, CMD not started).
    #[arg(long, default_value = "60s", value_parser = crate::duration::parse)]
    pub ready_timeout: Duration,

    /// After CMD exits (and the exit callbacks), POST this URL, e.g. Istio's
    /// localhost:15020/quitquitquit for Jobs.
    #[arg(long, value_name = "URL")]
    pub quit_proxy: Option<String>,

    /// After CMD exits and the exit callbacks are done, write this marker
    /// (the proxy's `file --exists` hook waits for it).
    #[arg(long, value_name = "PATH")]
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
    /// The shared volume's mount path, e.g. /install.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct SleepArgs {
    /// How long (500ms, 30s, 2m, or plain seconds).
    #[arg(value_name = "DURATION", value_parser = crate::duration::parse)]
    pub duration: Duration,
}

/// `--interval`: a duration of at least 1ms.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = crate::duration::parse(text)?;
    if d < Duration::from_millis(1) {
        return Err("the interval must be at least 1ms".into());
    }
    Ok(d)
}

/// The environment variable an option reads: `mode` is None for the options
/// every mode has.
pub fn env_name(mode: Option<&str>, long: &str) -> String {
    let mut name = String::from(ENV_PREFIX);
    for part in mode.into_iter().chain([long]) {
        name.push('_');
        name.push_str(&part.to_ascii_uppercase().replace('-', "_"));
    }
    name
}

fn with_env(arg: Arg, mode: Option<&str>) -> Arg {
    match arg.get_long().map(|long| env_name(mode, long)) {
        Some(name) => arg.env(name),
        None => arg,
    }
}

/// The clap command, with every option's environment variable set by the rule.
pub fn command() -> clap::Command {
    <Cli as CommandFactory>::command()
        .mut_args(|a| with_env(a, None))
        .mut_subcommands(|sub| {
            let mode = sub.get_name().to_string();
            sub.mut_args(|a| with_env(a, Some(&mode)))
        })
}

impl Cli {
    /// Parses this process's arguments (and environment); exits on a usage error.
    pub fn parse_args() -> Cli {
        Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit())
    }

    /// Parses `args` (the first is the program name) and the environment.
    pub fn try_parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Cli::from_arg_matches(&command().try_get_matches_from(args)?)
    }

    /// Parses `args` alone, as if no variable were set: how the injector
    /// checks a command it writes, whatever its own environment holds.
    pub fn try_parse_args_without_env<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let bare = <Cli as CommandFactory>::command();
        Cli::from_arg_matches(&bare.try_get_matches_from(args)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_s_help_shows_examples() {
        for sub in command().get_subcommands() {
            let help = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                help.contains("Example")
                    && help.contains(&format!("graceful-wait {}", sub.get_name())),
                "{}: no example in its --help",
                sub.get_name()
            );
        }
    }

    #[test]
    fn the_cli_is_well_formed() {
        command().debug_assert();
        let cmd = command();
        let names: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
        assert_eq!(names, MODES, "MODES lists every mode, in order");
        assert_eq!(command().get_name(), BINARY_NAME);
    }

    #[test]
    fn every_option_reads_the_variable_the_rule_names() {
        let mut cmd = command();
        cmd.build();
        let mut seen = 0;
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long().filter(|l| !["help", "version"].contains(l)) {
                let want = format!("GRACEFUL_WAIT_{}", long.to_uppercase().replace('-', "_"));
                assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(&*want));
                seen += 1;
            }
        }
        for sub in cmd.get_subcommands() {
            for arg in sub.get_arguments().filter(|a| !a.is_global_set()) {
                let Some(long) = arg.get_long().filter(|l| !["help", "version"].contains(l)) else {
                    continue;
                };
                let want = format!(
                    "GRACEFUL_WAIT_{}_{}",
                    sub.get_name().to_uppercase(),
                    long.to_uppercase().replace('-', "_")
                );
                assert_eq!(
                    arg.get_env().and_then(|e| e.to_str()),
                    Some(&*want),
                    "{} --{long}",
                    sub.get_name()
                );
                seen += 1;
            }
        }
        assert!(seen > 30, "only {seen} options checked");
    }

    #[test]
    fn lists_of_urls_and_headers_are_never_split() {
        let mut cmd = command();
        cmd.build();
        for sub in cmd.get_subcommands() {
            for arg in sub.get_arguments() {
                let long = arg.get_long().unwrap_or_default();
                let splits = arg.get_value_delimiter().is_some();
                let numbers_or_names = ["port", "pid", "name", "exclude-uid"].contains(&long);
                assert_eq!(splits, numbers_or_names, "{} --{long}", sub.get_name());
            }
        }
    }

    #[test]
    fn repeatable_ports_and_chained_command() {
        let cli = Cli::try_parse_args([
            "graceful-wait",
            "tcp",
            "--port",
            "20000",
            "--port=15000,15001",
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
        assert_eq!(t.ports, [20000, 15000, 15001]);
        assert_eq!(t.wait.timeout, Some(Duration::from_secs(120)));
        assert_eq!(t.wait.interval, None);
        assert_eq!(t.sockets.source, SocketSource::Auto);
        assert_eq!(t.wait.then, ["pilot-agent", "request", "POST", "drain"]);
    }

    #[test]
    fn port_zero_bad_source_and_zero_interval_are_usage_errors() {
        for args in [
            &["tcp", "--port", "0"][..],
            &["tcp", "--port", "1", "--interval", "0"],
            &["tcp", "--port", "1", "--source", "ebpf"],
            &["tcp"],
            &["connections"],
            &["process"],
        ] {
            let argv = std::iter::once("graceful-wait").chain(args.iter().copied());
            let err = Cli::try_parse_args(argv).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }
}
