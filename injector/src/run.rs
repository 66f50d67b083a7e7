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
    let injected = inject::inject(&source, &config, &options)
        .map_err(|e| format!("{}:{}: {}", files::display(&cli.source), e.pos, e.message))?;
    if !cli.quiet {
        eprint!("{}", injected.summary);
    }
    let changed = injected.text != source;

    if cli.check {
        return Ok(i32::from(changed));
    }
    if cli.diff {
        files::write_stdout(&report::diff(
            &files::display(&cli.source),
            &source,
            &injected.text,
        ))?;
        return Ok(0);
    }
    match &cli.output {
        Some(out) if files::is_stdio(out) => files::write_stdout(&injected.text)?,
        None if files::is_stdio(&cli.source) => files::write_stdout(&injected.text)?,
        Some(out) => files::write_atomic(out, &injected.text)?,
        // In place: an unchanged file is not rewritten (its mtime stays).
        None if changed => files::write_atomic(&cli.source, &injected.text)?,
        None => {}
    }
    Ok(0)
}
