//! One run: read the config, then the manifests, decide, and write — or, with
//! --check and --diff, only say what would change.

use super::cli::{Cli, Subcommand};
use super::{files, report};
use crate::error::Error;
use crate::{config, plan::Options, stream};

/// Returns the exit status ([`crate::error::STATUSES`]): 0 done, 1 `--check`
/// found changes; an error has its own.
pub fn run(cli: &Cli) -> Result<i32, Error> {
    if let Some(subcommand) = &cli.subcommand {
        return run_subcommand(subcommand);
    }
    // clap requires both without a subcommand.
    let (Some(source_path), Some(config_path)) = (&cli.source, &cli.config) else {
        return Err(Error::config(None, "SOURCE and CONFIG are required"));
    };
    // The config is read and checked before any manifest is touched.
    let config = read_config(config_path)?;

    let options = Options {
        keep_commands: cli.keep_commands,
        istio_stub: cli.istio_stub,
        ..Options::default()
    };
    let place = |e: Error| e.in_file(files::display(source_path));
    // --diff needs the input and the output whole.
    if cli.diff {
        let source = files::read_text(source_path)?;
        let injected = stream::inject(&source, &config, &options).map_err(place)?;
        summarise(cli, &report::summary(&injected.outcomes));
        files::write_stdout(&report::diff(
            &files::display(source_path),
            &source,
            &injected.text,
        ))?;
        return Ok(0);
    }
    // Otherwise the input is read a document at a time, and the output goes
    // where it is asked for, a proved document at a time: to a temporary
    // file that replaces the target only once everything is proved, or held
    // back from stdout until then; with --check, nowhere.
    let mut input = files::open(source_path)?;
    let mut through = |sink: &mut dyn stream::Sink| -> Result<bool, Error> {
        let mut summary = report::Summary::default();
        let changed = stream::inject_from(
            &mut input,
            &config,
            &options,
            cli.threads,
            stream::Destination {
                sink,
                outcomes: &mut summary,
            },
        )
        .map_err(place)?;
        summarise(cli, &summary.text());
        Ok(changed)
    };
    if cli.check {
        return through(&mut files::Discard).map(i32::from);
    }
    let to_stdout = match &cli.output {
        Some(out) => files::is_stdio(out),
        None => files::is_stdio(source_path),
    };
    if to_stdout {
        let mut sink = files::HeldBack::new()?;
        through(&mut sink)?;
        return sink.release().map(|()| 0);
    }
    let target = cli.output.as_ref().unwrap_or(source_path);
    let mut sink = files::Replacement::new(target)?;
    let changed = through(&mut sink)?;
    // In place: an unchanged file is not rewritten (its mtime stays).
    if cli.output.is_some() || changed {
        sink.commit()?;
    }
    Ok(0)
}

/// The config file, read and checked; errors name the file, line and column.
fn read_config(path: &std::path::Path) -> Result<config::Config, Error> {
    if files::is_stdio(path) {
        return Err(Error::config(
            None,
            "CONFIG cannot be standard input; give the config file's path",
        ));
    }
    let text = files::read_text(path)?;
    config::parse(&text).map_err(|e| Error::of_config(e).in_file(path.display().to_string()))
}

fn summarise(cli: &Cli, summary: &str) {
    if !cli.quiet {
        eprint!("{summary}");
    }
}

/// `krm`, `serve`, `istio-template`, `completions` and `man`: what graceful-inject
/// does besides rewriting manifest files.
fn run_subcommand(subcommand: &Subcommand) -> Result<i32, Error> {
    let bytes = match subcommand {
        Subcommand::Krm => {
            let input = files::read_text(std::path::Path::new("-"))?;
            let options = Options::default();
            crate::front::krm::run(&input, &options)?.into_bytes()
        }
        Subcommand::Serve(a) => {
            return crate::front::webhook::run(crate::front::webhook::Args {
                config: a.config.clone(),
                tls: crate::front::webhook::tls::Files {
                    cert: a.tls_cert.clone(),
                    key: a.tls_key.clone(),
                },
                listen: a.listen,
                health_listen: a.health_listen,
                reload_every: a.reload_every,
                shutdown_delay: a.shutdown_delay,
                max_body: a.max_body,
                max_connections: a.max_connections,
            });
        }
        Subcommand::IstioTemplate { config, format } => {
            let settings = match config {
                Some(path) => read_config(path)?.settings,
                None => config::Settings::default(),
            };
            crate::front::istio_template::template_as(&settings, *format)?.into_bytes()
        }
        Subcommand::Completions { shell, program } => {
            graceful_wait_shared::docs::completions(program.command(), *shell)
        }
        Subcommand::Man { program } => graceful_wait_shared::docs::man(program.command())
            .map_err(|e| Error::io(format!("cannot render the man page: {e}")))?,
    };
    files::write_stdout(&String::from_utf8_lossy(&bytes))?;
    Ok(0)
}
