//! graceful-inject: parses the command line and runs the one job.

use clap::Parser;
use graceful_inject::front::{cli, run};

/// The allocator: documents are trees of many small nodes, built and
/// dropped by the thousand on several threads; mimalloc does that in a
/// fraction of the time glibc's allocator takes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
