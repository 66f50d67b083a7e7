//! The command line: the seed's positional contract, kept.

use clap::Parser;
use std::path::PathBuf;

const AFTER: &str = "\
Exit status: 0 done (or nothing to change), 1 --check found changes, 2 any error.
On any error the input is untouched and no temporary file is left behind.

Examples:
  graceful-inject deploy.yaml config/pre_stop.conf.yml            # rewrite in place
  graceful-inject deploy.yaml config/pre_stop.conf.yml out.yaml   # write elsewhere
  helm template my-chart | graceful-inject - cfg.yml | kubectl apply -f -
  graceful-inject --check deploy.yaml cfg.yml                     # in CI";

/// Rewrites Kubernetes manifests so the containers named in CONFIG get
/// graceful-wait preStop hooks, the init container that installs the binary,
/// and the shared volume. Everything else stays byte for byte as it was.
#[derive(Parser, Debug)]
#[command(name = "graceful-inject", version, after_help = AFTER)]
pub struct Cli {
    /// Manifest file (any number of YAML documents); - reads standard input.
    pub source: PathBuf,
    /// Config file (the seed's format, or typed waits).
    pub config: PathBuf,
    /// Where to write; - is standard output. Without it SOURCE is rewritten in
    /// place, atomically (or written to standard output when SOURCE is -).
    pub output: Option<PathBuf>,

    /// Write nothing; exit 1 when the output would differ from SOURCE.
    #[arg(long, conflicts_with = "diff")]
    pub check: bool,

    /// Write nothing; print a unified diff of what would change.
    #[arg(long)]
    pub diff: bool,

    /// Keep recognised shell loops as written instead of turning them into
    /// graceful-wait calls.
    #[arg(long)]
    pub keep_commands: bool,

    /// No summary on standard error.
    #[arg(short, long)]
    pub quiet: bool,
}
