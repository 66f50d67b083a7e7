//! `graceful-wait completions`, `man` and `--version`, generated from the
//! clap definition that parses the command line: every shell's script names
//! every mode, the bash script parses (`bash -n`), the man page renders
//! (`man -l`) with a section for every mode, --version carries the git
//! revision. (graceful-inject's are tested in injector/tests/docs.rs.)

mod support;
use graceful_wait_shared::cli::MODES;
use std::{
    io::Write,
    process::{Command, Stdio},
};
use support::*;

#[test]
fn helper_process() {
    helper_main();
}

#[test]
fn completions_for_every_shell_name_every_mode() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = stdout_of(&mut graceful_wait(&["completions", shell]));
        for mode in MODES {
            assert!(script.contains(mode), "{shell}: no {mode} in the script");
        }
        if shell == "bash" {
            bash_parses("graceful-wait", &script);
        }
    }
}

#[test]
fn the_man_page_renders_with_every_mode() {
    let page = stdout_of(&mut graceful_wait(&["man"]));
    let Some(text) = rendered("the_man_page_renders_with_every_mode", &page) else {
        return;
    };
    assert!(text.contains("SYNOPSIS"), "{text}");
    for mode in MODES {
        assert!(
            text.contains(&format!("graceful-wait {mode}")),
            "no section for {mode}"
        );
    }
}

#[test]
fn version_names_the_revision() {
    assert_version_has_revision(&stdout_of(&mut graceful_wait(&["--version"])));
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
