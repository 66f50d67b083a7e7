//! The one way a test says it did not run. Both packages' tests include this
//! file by path (as they do `piped.rs`).
//!
//! A skip must be seen, counted and, in CI, fatal:
//! - seen: libtest captures `print!`/`eprint!` of a passing test, so the line
//!   is written to the process's stderr directly, in one write (parallel tests'
//!   output does not split it);
//! - counted: with `GW_SKIP_LOG` set (`tests/run` sets it) the line is also
//!   appended to that file, from which `tests/run` prints its summary;
//! - fatal under `CI=true`: a green run that quietly did less is worse than a
//!   red one, so there the skip panics and the test fails with the reason.

#![allow(dead_code)] // each including test uses its own part

use std::io::Write;

/// Records that `test` did not run (or ran only in part) because of `why`,
/// which should say what is missing and how to get it. Returns normally
/// (the caller then returns) except under `CI=true`, where it panics.
pub fn skipped(test: &str, why: &str) {
    let _ = std::io::stderr().write_all(format!("\nSKIPPED: {test}: {why}\n").as_bytes());
    if let Some(log) = std::env::var_os("GW_SKIP_LOG") {
        // O_APPEND: each line lands whole even when tests run in parallel.
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = file.write_all(format!("{test}\t{}\n", why.replace('\n', " ")).as_bytes());
        }
    }
    if under_ci() {
        panic!("SKIPPED under CI=true, which runs everything: {test}: {why}");
    }
}

/// CI runs every test: there a missing prerequisite is a failure.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// True when `program` runs with `args` and exits 0: how a test asks whether
/// a tool it needs is installed.
pub fn have(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The effective user is root (namespaces, chroot, ownership changes).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
