//! Parses the command line and dispatches to one mode; nothing else lives here.

use graceful_wait::{action, logging, teardown, wait};
use graceful_wait_shared::cli::{Cli, Command};

fn main() {
    let cli = Cli::parse_args();
    logging::init(
        cli.log_format,
        cli.quiet,
        cli.verbose,
        cli.log_copy.as_deref(),
    );
    // Every wait is opened from its flags and run the same way (wait::run);
    // every action runs itself.
    let status = match cli.command {
        Command::Tcp(a) => wait::run(&a.wait, || wait::tcp::open(&a)),
        Command::Listeners(a) => wait::run(&a.wait, || wait::listeners::open(&a)),
        Command::Connections(a) => wait::run(&a.wait, || wait::connections::open(&a)),
        Command::Http(a) => wait::run(&a.wait, || wait::http::open(&a)),
        Command::File(a) => wait::run(&a.wait, || wait::file::open(&a)),
        Command::Process(a) => wait::run(&a.wait, || wait::process::open(&a)),
        Command::Callback(a) => action::callback::run(a),
        Command::Exec(a) => action::exec::run(a),
        Command::Install(a) => action::install::run(a),
        Command::Sleep(a) => action::sleep::run(a),
        Command::Completions(a) => action::docs::completions(a.shell),
        Command::Man => action::docs::man(),
    };
    // Not std::process::exit: a parked slow-to-close descriptor (the file
    // wait's inotify) is handed over so the exit does not wait for it.
    teardown::exit(status);
}
