//! `docs/flags.md`: every mode, option, environment variable and default of
//! `graceful-wait`, generated from [`crate::cli::command`], so the reference
//! cannot drift from the parser. A test compares the file with this output;
//! `GOLDEN_BLESS=1 cargo test -p graceful-wait-shared` rewrites it.

use clap::{builder::PossibleValue, Arg};
use std::fmt::Write;

/// The reference as Markdown.
pub fn markdown() -> String {
    let mut cmd = crate::cli::command();
    cmd.build();
    let mut out = String::from(
        "# graceful-wait: flags and environment variables\n\n\
         Generated from the command-line definition (`src/shared/cli.rs`) by\n\
         `src/shared/reference.rs`; a test fails when this file and the parser disagree\n\
         (`GOLDEN_BLESS=1 cargo test -p graceful-wait-shared` rewrites it).\n\n\
         Every option also reads an environment variable: `GRACEFUL_WAIT_<FLAG>` for the\n\
         options of every mode, `GRACEFUL_WAIT_<MODE>_<FLAG>` for those of one mode. A flag\n\
         on the command line wins over its variable. Lists of numbers or names (`--port`,\n\
         `--pid`, `--name`, `--exclude-uid`) may be comma-separated, on the command line\n\
         and in the variable; URLs and headers take one value per flag or variable.\n\
         Durations read as `500ms`, `30s`, `2m`, `1m30s` or plain seconds.\n\n",
    );
    out.push_str("## Options of every mode\n\n");
    table(&mut out, cmd.get_arguments(), true);
    for sub in cmd.get_subcommands() {
        let _ = write!(out, "\n## `graceful-wait {}`\n\n", sub.get_name());
        if let Some(about) = sub.get_about() {
            let _ = writeln!(out, "{}\n", one_line(&about.to_string()));
        }
        table(
            &mut out,
            sub.get_arguments().filter(|a| !a.is_global_set()),
            true,
        );
        let positionals: Vec<&Arg> = sub.get_positionals().collect();
        for p in positionals {
            let name = p
                .get_value_names()
                .and_then(|v| v.first())
                .map_or(p.get_id().to_string(), |v| v.to_string());
            let how = if p.is_last_set() {
                format!("`-- {name} ARGS...`")
            } else {
                format!("`{name}`")
            };
            let help = p
                .get_help()
                .map(|h| one_line(&h.to_string()))
                .unwrap_or_default();
            let _ = writeln!(out, "\n{how}: {help}");
        }
    }
    out
}

/// A Markdown table of `args`: option, environment variable (`with_env`),
/// default, meaning. graceful-inject's reference uses it too.
pub fn table<'a>(out: &mut String, args: impl Iterator<Item = &'a Arg>, with_env: bool) {
    if with_env {
        out.push_str("| option | environment variable | default | meaning |\n|---|---|---|---|\n");
    } else {
        out.push_str("| option | default | meaning |\n|---|---|---|\n");
    }
    for arg in args {
        let Some(long) = arg.get_long() else { continue };
        if ["help", "version"].contains(&long) {
            continue;
        }
        let mut flag = format!("`--{long}`");
        if let Some(short) = arg.get_short() {
            flag = format!("`-{short}`, {flag}");
        }
        let env = arg
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_default();
        let default: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| format!("`{}`", v.to_string_lossy()))
            .collect();
        let mut help = arg
            .get_help()
            .map(|h| one_line(&h.to_string()))
            .unwrap_or_default();
        let values: Vec<PossibleValue> = arg.get_possible_values();
        if !values.is_empty() && arg.get_action().takes_values() {
            let listed: Vec<String> = values
                .iter()
                .map(|v| match v.get_help() {
                    Some(h) => format!("`{}` ({})", v.get_name(), one_line(&h.to_string())),
                    None => format!("`{}`", v.get_name()),
                })
                .collect();
            let _ = write!(help, " One of: {}.", listed.join(", "));
        }
        let env = if with_env {
            format!(" {env} |")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {flag} |{env} {} | {} |",
            default.join(", "),
            help.replace('|', "\\|")
        );
    }
}

/// Help text on one line, as a sentence (clap drops a lone sentence's period).
pub fn one_line(text: &str) -> String {
    let mut line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if !line.is_empty() && !line.ends_with(['.', ')']) {
        line.push('.');
    }
    line
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn docs_flags_md_matches_the_command_line() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/flags.md");
        let want = super::markdown();
        if std::env::var_os("GOLDEN_BLESS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/flags.md disagrees with the command line; run GOLDEN_BLESS=1 cargo test -p graceful-wait-shared and review the diff"
        );
    }
}
