//! Parses the command line and dispatches to one mode; nothing else lives here.

use clap::Parser;
use graceful_wait::{cli, logging, modes};

fn main() {
    let cli = cli::Cli::parse();
    logging::init(cli.log_format, cli.quiet, cli.log_copy.as_deref());
    std::process::exit(modes::run(cli.command));
}
