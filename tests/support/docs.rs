//! Helpers for the completion and man-page tests of both programs
//! (tests/docs.rs, injector/tests/docs.rs, which includes this file).

#[path = "piped.rs"]
mod piped;
// support/mod.rs has it too; the injector's docs test includes this file alone.
#[allow(clippy::duplicate_mod)]
#[path = "skip.rs"]
mod skip;

// What both docs tests call (through `docs::*`); unused in the other tests.
#[allow(unused_imports)]
pub use piped::stdout_of;
use std::process::Command;

/// `cmd` run with `input` on its stdin; its output, which must be a success.
fn succeeds_with(who: &str, cmd: &mut Command, input: &str) -> std::process::Output {
    let out = piped::with_stdin(cmd, input.as_bytes());
    assert!(
        out.status.success(),
        "{who}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn bash_parses(who: &str, script: &str) {
    succeeds_with(who, Command::new("bash").arg("-n"), script);
}

/// The page as `man -l` shows it; None (SKIPPED) where man is missing.
pub fn rendered(test: &str, page: &str) -> Option<String> {
    if Command::new("man").arg("--version").output().is_err() {
        skip::skipped(test, "`man` is not installed (apt-get install man-db)");
        return None;
    }
    let out = succeeds_with(
        test,
        Command::new("man")
            .args(["-l", "-"])
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100"),
        page,
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// "NAME 0.1.0 (3dd0a4d1c2f5)", or "(unknown revision)" outside a git checkout.
pub fn assert_version_has_revision(line: &str) {
    let (_, rev) = line
        .trim()
        .split_once(" (")
        .expect("a revision in parentheses");
    assert!(rev.ends_with(')') && rev.len() > 2, "{line}");
}
