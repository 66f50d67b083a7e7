//! `graceful-inject completions`, `man` and `--version` — its own, and with
//! `--program graceful-wait` the in-pod binary's (for its slim build, which
//! carries no generators): the bash scripts parse (`bash -n`), the man pages
//! render (`man -l`), --version carries the git revision.

#[path = "../../tests/support/docs.rs"]
#[allow(dead_code)]
mod docs;

use docs::*;
use graceful_wait_shared::cli::MODES;
use std::process::Command;

fn inject(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_graceful-inject"));
    cmd.args(args);
    cmd
}

#[test]
fn completions_for_both_programs_and_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let own = stdout_of(&mut inject(&["completions", shell]));
        assert!(own.contains("keep-commands"), "{shell}: {own}");
        assert!(own.contains("completions"), "{shell}: the subcommands");
        let wait = stdout_of(&mut inject(&[
            "completions",
            shell,
            "--program",
            "graceful-wait",
        ]));
        for mode in MODES {
            assert!(wait.contains(mode), "{shell}: no {mode}");
        }
        if shell == "bash" {
            bash_parses("graceful-inject", &own);
            bash_parses("graceful-wait", &wait);
        }
    }
}

#[test]
fn the_man_pages_render() {
    let own = stdout_of(&mut inject(&["man"]));
    let wait = stdout_of(&mut inject(&["man", "--program", "graceful-wait"]));
    let (Some(own), Some(wait)) = (
        rendered("the_man_pages_render", &own),
        rendered("the_man_pages_render", &wait),
    ) else {
        return;
    };
    assert!(own.contains("SYNOPSIS") && own.contains("--check"), "{own}");
    for mode in MODES {
        assert!(
            wait.contains(&format!("graceful-wait {mode}")),
            "no section for {mode}"
        );
    }
}

#[test]
fn version_names_the_revision() {
    assert_version_has_revision(&stdout_of(&mut inject(&["--version"])));
}

#[test]
fn a_file_named_like_a_subcommand_is_given_as_a_path() {
    // `completions` alone is the subcommand (and needs a shell): clap says so.
    let out = inject(&["completions"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_subcommand_s_help_shows_examples() {
    use clap::CommandFactory;
    let cmd = graceful_inject::front::cli::Cli::command();
    let main = cmd
        .get_after_help()
        .map(|h| h.to_string())
        .unwrap_or_default();
    assert!(main.contains("Examples:"), "{main}");
    for sub in cmd.get_subcommands() {
        let help = sub
            .get_after_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(
            help.contains("Example") && help.contains(sub.get_name()),
            "{}: no example in its --help",
            sub.get_name()
        );
    }
}

/// docs/injector.md's options, tools and exit statuses are generated from the
/// command line and the exit-status table; `GOLDEN_BLESS=1` rewrites them.
#[test]
fn the_reference_s_generated_part_matches_the_command_line() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/injector.md");
    let have = std::fs::read_to_string(&path).unwrap();
    let want = graceful_inject::front::reference::replace_in(&have)
        .expect("docs/injector.md has the generated part's markers");
    if std::env::var_os("GOLDEN_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    assert!(
        have == want,
        "docs/injector.md disagrees with the command line; run GOLDEN_BLESS=1 cargo test -p graceful-inject --test docs and review the diff"
    );
}
