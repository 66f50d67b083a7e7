//! Running a program with input on its stdin: one way for the tests of both
//! packages (tests/support/docs.rs and the injector's tests include this file
//! by path).

#![allow(dead_code)] // each including test uses its own part

use std::{
    io::Write,
    process::{Command, Output, Stdio},
};

/// `cmd` run with `input` on its stdin; its whole output, whatever its
/// status. The input is written from a thread, so a child that writes much
/// before it has read everything cannot block on a full pipe; a child that
/// stops reading (it failed, or needs no input) is not an error here: its
/// status says what happened.
pub fn with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// What a success printed on stdout.
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
