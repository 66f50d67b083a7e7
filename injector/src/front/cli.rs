//! The command line: the original tool's positional contract, kept.

use clap::{Parser, ValueEnum};
use graceful_wait_shared::cli::Shell;
use std::path::PathBuf;

/// The help's epilogue: the exit statuses ([`crate::error::STATUSES`]), then
/// the examples.
fn after_help() -> String {
    format!("{}\n{EXAMPLES}", crate::error::statuses_help())
}

const EXAMPLES: &str = "\
Examples:
  graceful-inject deploy.yaml config/pre_stop.conf.yml            # rewrite in place
  graceful-inject deploy.yaml config/pre_stop.conf.yml out.yaml   # write elsewhere
  helm template my-chart | graceful-inject - cfg.yml | kubectl apply -f -
  graceful-inject --check deploy.yaml cfg.yml                     # in CI
  graceful-inject completions bash > /etc/bash_completion.d/graceful-inject
  graceful-inject man --program graceful-wait | man -l -";

/// Rewrites Kubernetes manifests so the containers named in CONFIG get
/// graceful-wait preStop hooks, the init container that installs the binary,
/// and the shared volume. Everything else stays byte for byte as it was.
#[derive(Parser, Debug)]
#[command(
    name = "graceful-inject",
    version = graceful_wait_shared::VERSION,
    after_help = after_help(),
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// Instead of rewriting manifests (a file named like one of these is
    /// given as ./NAME).
    #[command(subcommand)]
    pub subcommand: Option<Subcommand>,
    /// Manifest file (any number of YAML documents); - reads standard input.
    #[arg(required = true)]
    pub source: Option<PathBuf>,
    /// Config file (the original tool's format, or typed waits).
    #[arg(required = true)]
    pub config: Option<PathBuf>,
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

    /// A workload with no istio-proxy container, whose config names one,
    /// gets a stub of it (image: auto) that Istio's injector merges onto the
    /// sidecar it adds; as the missing-proxy: stub setting.
    #[arg(long)]
    pub istio_stub: bool,

    /// How many documents are handled at once, each on a thread of its
    /// own (the output is the same, in the same order, however many); 0:
    /// one a core, at most 4; up to 64.
    #[arg(
        short = 'j',
        long,
        value_name = "N",
        default_value_t = 0,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=64)
    )]
    pub threads: usize,

    /// No summary on standard error.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum Subcommand {
    /// Run as a KRM function (kustomize, kpt): a ResourceList on stdin, the
    /// config in its functionConfig (a ConfigMap's data.config), the same
    /// ResourceList with the hooks and the summary as results on stdout.
    #[command(
        after_help = "Examples:\n  graceful-inject krm < resource-list.yaml\n  kustomize build --enable-alpha-plugins --enable-exec .   # a transformer whose exec path is deploy/krm/graceful-inject-krm\n  kpt fn eval . --exec ./graceful-inject-krm --fn-config graceful-inject.yaml"
    )]
    Krm,
    /// Print the Istio injection template that holds every pod naming it
    /// (inject.istio.io/templates: "sidecar,graceful-wait"), alone or inside
    /// the values that install it in istiod. CONFIG's settings apply.
    #[command(
        name = "istio-template",
        after_help = "Examples:\n  graceful-inject istio-template --format helm-values > graceful-wait-values.yaml\n  helm upgrade istiod istio/istiod -n istio-system --reuse-values -f graceful-wait-values.yaml\n  graceful-inject istio-template cfg.yml --format istio-operator | istioctl install -f -"
    )]
    IstioTemplate {
        /// A config file whose graceful-wait settings (binary-dir, image,
        /// volume, init-container, drain-margin, log-copy) apply.
        config: Option<PathBuf>,
        /// The template alone, or inside Helm values or an IstioOperator.
        #[arg(long, value_enum, default_value_t = crate::front::istio_template::TemplateFormat::Template)]
        format: crate::front::istio_template::TemplateFormat,
    },
    /// Serve as a mutating admission webhook: every pod the API server sends
    /// gets what graceful-inject would write into its manifest, as a JSON
    /// Patch; a pod that cannot be hooked is admitted unchanged, with a
    /// warning (docs/webhook.md).
    #[command(
        after_help = "Examples:\n  graceful-inject serve --config /etc/graceful-wait/config.yml --tls-cert /tls/tls.crt --tls-key /tls/tls.key\n  kubectl apply -k deploy/webhook   # the manifests: docs/webhook.md"
    )]
    Serve(ServeArgs),
    /// Print a shell completion script for graceful-inject or graceful-wait.
    #[command(
        after_help = "Example:\n  graceful-inject completions zsh > \"${fpath[1]}/_graceful-inject\""
    )]
    Completions {
        #[arg(value_enum)]
        shell: Shell,
        /// Which program's.
        #[arg(long, value_enum, default_value_t = Program::GracefulInject)]
        program: Program,
    },
    /// Print the man page (roff) of graceful-inject or graceful-wait.
    #[command(after_help = "Example:\n  graceful-inject man --program graceful-wait | man -l -")]
    Man {
        /// Which program's.
        #[arg(long, value_enum, default_value_t = Program::GracefulInject)]
        program: Program,
    },
}

/// `graceful-inject serve`'s options.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The config (the same file format as for manifests); read again when
    /// it changes, the last good one kept.
    #[arg(long)]
    pub config: PathBuf,
    /// The serving certificate chain (PEM); read again when it changes.
    #[arg(long)]
    pub tls_cert: PathBuf,
    /// The certificate's private key (PEM).
    #[arg(long)]
    pub tls_key: PathBuf,
    /// Where the API server sends reviews (HTTPS, POST /mutate).
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub listen: std::net::SocketAddr,
    /// Plain HTTP for /healthz, /readyz and /metrics (the kubelet's probes,
    /// Prometheus).
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub health_listen: std::net::SocketAddr,
    /// How often the certificate and the config are read again.
    #[arg(long, default_value = "5s", value_parser = graceful_wait_shared::duration::parse)]
    pub reload_every: std::time::Duration,
    /// After SIGTERM: how long reviews are still served while /readyz fails
    /// (so the Service's endpoints drop this pod first).
    #[arg(long, default_value = "5s", value_parser = graceful_wait_shared::duration::parse)]
    pub shutdown_delay: std::time::Duration,
    /// The largest review body accepted, in bytes (the API server's own
    /// limit on an object is 3 MiB).
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub max_body: usize,
    /// The most client connections served at once; one more is closed as
    /// soon as it is accepted (the API server keeps a few per replica).
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
}

/// The two programs, whose command lines are both defined with clap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Program {
    GracefulInject,
    GracefulWait,
}

impl Program {
    pub fn command(self) -> clap::Command {
        match self {
            Program::GracefulInject => <Cli as clap::CommandFactory>::command(),
            Program::GracefulWait => graceful_wait_shared::cli::command(),
        }
    }
}
