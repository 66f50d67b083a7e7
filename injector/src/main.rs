//! graceful-inject: parses the command line and runs the one job.

mod cli;
mod config;
mod edits;
mod emit;
mod files;
mod inject;
mod patch;
mod report;
mod run;
mod shell_loop;
mod yaml_tree;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    match run::run(&cli) {
        Ok(code) => std::process::exit(code),
        Err(message) => {
            eprintln!("graceful-inject: error: {message}");
            std::process::exit(2);
        }
    }
}
