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
    /// Copy this binary to DIR/graceful-wait (the init container's job):
    /// atomically, mode 0555; succeeds if the same binary is already there.
    Install(InstallArgs),
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
