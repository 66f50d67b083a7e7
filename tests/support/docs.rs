//! Helpers for the completion and man-page tests of both programs
//! (tests/docs.rs, injector/tests/docs.rs, which includes this file).

use std::{
    io::Write,
    process::{Command, Stdio},
};

pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn bash_parses(who: &str, script: &str) {
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
pub fn rendered(test: &str, page: &str) -> Option<String> {
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
pub fn assert_version_has_revision(line: &str) {
    let (_, rev) = line
        .trim()
        .split_once(" (")
        .expect("a revision in parentheses");
    assert!(rev.ends_with(')') && rev.len() > 2, "{line}");
}
