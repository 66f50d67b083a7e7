//! The generated part of docs/injector.md: graceful-inject's options, its
//! tools and their options, and its exit statuses, from the command-line
//! definition ([`super::cli`]) and [`crate::error::STATUSES`], so what users
//! read cannot drift from what the code does. A test compares the file with
//! this output; `GOLDEN_BLESS=1 cargo test -p graceful-inject --test docs`
//! rewrites it.

use crate::error::STATUSES;
use clap::CommandFactory;
use graceful_wait_shared::reference::{one_line, table};
use std::fmt::Write;

/// Where the generated part starts and ends in docs/injector.md.
pub const BEGIN: &str = "<!-- generated from the command line: do not edit by hand -->";
pub const END: &str = "<!-- end of the generated part -->";

/// The generated part, markers included.
pub fn markdown() -> String {
    let mut cmd = super::cli::Cli::command();
    cmd.build();
    let mut out = format!("{BEGIN}\n\n");
    out.push_str("### Options\n\n");
    table(
        &mut out,
        cmd.get_arguments().filter(|a| !a.is_positional()),
        false,
    );
    out.push_str("\n### Exit status\n\n| status | meaning |\n|---|---|\n");
    for (status, meaning) in STATUSES {
        let _ = writeln!(out, "| {status} | {meaning} |");
    }
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let _ = write!(out, "\n### `graceful-inject {}`\n\n", sub.get_name());
        if let Some(about) = sub.get_long_about().or(sub.get_about()) {
            let _ = writeln!(out, "{}\n", one_line(&about.to_string()));
        }
        let options: Vec<_> = sub
            .get_arguments()
            .filter(|a| !a.is_positional() && a.get_long().is_some_and(|l| l != "help"))
            .collect();
        if !options.is_empty() {
            table(&mut out, options.into_iter(), false);
        }
    }
    let _ = write!(out, "\n{END}\n");
    out
}

/// `text` with its generated part replaced by `markdown()`; None when the
/// markers are not there.
pub fn replace_in(text: &str) -> Option<String> {
    let start = text.find(BEGIN)?;
    let end = text[start..].find(END)? + start + END.len();
    let end = if text[end..].starts_with('\n') {
        end + 1
    } else {
        end
    };
    Some(format!("{}{}{}", &text[..start], markdown(), &text[end..]))
}
