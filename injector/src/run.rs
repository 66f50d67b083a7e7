//! One run: read the config, then the manifests, decide, and write — or, with
//! --check and --diff, only say what would change.

use crate::{cli::Cli, config, files, inject, patch::Options, report};

/// Returns the exit status (0 done, 1 --check found changes); errors are exit 2.
pub fn run(cli: &Cli) -> Result<i32, String> {
    if files::is_stdio(&cli.config) {
        return Err("CONFIG cannot be standard input; give the config file's path".into());
    }
    // The config is read and checked before any manifest is touched.
    let config_text = files::read_text(&cli.config)?;
    let config = config::parse(&config_text)
        .map_err(|e| format!("{}:{}: {}", cli.config.display(), e.pos, e.message))?;

    let source = files::read_text(&cli.source)?;
    let options = Options {
        keep_commands: cli.keep_commands,
        ..Options::default()
    };
    let place = |e: crate::yaml_tree::YamlError| {
        format!("{}:{}: {}", files::display(&cli.source), e.pos, e.message)
    };
    // The output goes where it is asked for, a verified document at a time:
    // to a temporary file that replaces the target only once everything is
    // verified, or held back from stdout until then. --diff needs it whole.
    if cli.check || cli.diff {
        let injected = inject::inject(&source, &config, &options).map_err(place)?;
        summarise(cli, &injected.summary);
        if cli.check {
            return Ok(i32::from(injected.changed));
        }
        files::write_stdout(&report::diff(
            &files::display(&cli.source),
            &source,
            &injected.text,
        ))?;
        return Ok(0);
    }
    let to_stdout = match &cli.output {
        Some(out) => files::is_stdio(out),
        None => files::is_stdio(&cli.source),
    };
    if to_stdout {
        let mut sink = files::HeldBack::new()?;
        let report = inject::inject_into(&source, &config, &options, &mut sink).map_err(place)?;
        summarise(cli, &report.summary);
        return sink.release().map(|()| 0);
    }
    let target = cli.output.as_ref().unwrap_or(&cli.source);
    let mut sink = files::Replacement::new(target)?;
    let report = inject::inject_into(&source, &config, &options, &mut sink).map_err(place)?;
    summarise(cli, &report.summary);
    // In place: an unchanged file is not rewritten (its mtime stays).
    if cli.output.is_some() || report.changed {
        sink.commit()?;
    }
    Ok(0)
}

fn summarise(cli: &Cli, summary: &str) {
    if !cli.quiet {
        eprint!("{summary}");
    }
}
