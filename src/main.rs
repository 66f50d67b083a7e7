//! Parses the command line and dispatches to one wait; nothing else lives here.

use clap::Parser;
use graceful_wait::{chain, cli, exit, logging, modes};

fn main() {
    let cli = cli::Cli::parse();
    logging::init(cli.log_format, cli.quiet, cli.log_copy.as_deref());
    let (outcome, then) = modes::run(cli.command);
    let chained = (!then.is_empty()).then(|| chain::run(&then));
    std::process::exit(exit::combine(outcome, chained));
}
