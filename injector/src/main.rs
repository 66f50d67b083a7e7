//! graceful-inject: parses the command line and runs the one job.

use clap::Parser;
use graceful_inject::front::{cli, run};

fn main() {
    let cli = cli::Cli::parse();
    match run::run(&cli) {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("graceful-inject: error: {error}");
            std::process::exit(error.status());
        }
    }
}
