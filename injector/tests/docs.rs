//! `graceful-inject completions`, `man` and `--version` — its own, and with
//! `--program graceful-wait` the in-pod binary's (for its slim build, which
//! carries no generators): the bash scripts parse (`bash -n`), the man pages
//! render (`man -l`), --version carries the git revision.

use graceful_wait_shared::cli::MODES;
use std::{
    io::Write,
    process::{Command, Stdio},
};

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

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn bash_parses(who: &str, script: &str) {
    let mut bash = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    bash.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = bash.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{who}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The page as `man -l` shows it; None (SKIPPED) where man is missing.
fn rendered(test: &str, page: &str) -> Option<String> {
    if Command::new("man").arg("--version").output().is_err() {
        eprintln!("\nSKIPPED: {test}: `man` is not installed (apt-get install man-db)");
        return None;
    }
    let mut man = Command::new("man")
        .args(["-l", "-"])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    man.stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = man.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{test}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// "NAME 0.1.0 (3dd0a4d1c2f5)", or "(unknown revision)" outside a git checkout.
fn assert_version_has_revision(line: &str) {
    let (_, rev) = line
        .trim()
        .split_once(" (")
        .expect("a revision in parentheses");
    assert!(rev.ends_with(')') && rev.len() > 2, "{line}");
}
