//! `graceful-wait file`: the marker on the shared volume that the app (or
//! `exec --done-file`) writes when it has finished; inotify, and the polling
//! fallback.

mod support;
use std::fs;
use support::*;

#[test]
fn file_returns_when_the_marker_appears() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("app.done");
    let path = marker.to_str().unwrap();
    let mut w = Watched::spawn(&mut graceful_wait(&["file", "--exists", path]));
    w.expect_line("inotify=true");
    w.expect_line("waiting: no");
    fs::write(&marker, "exit 0\n").unwrap();
    let (code, log) = w.finish();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("exists"), "{log}");
    // Already there: at once. Never there: the deadline.
    assert_eq!(run(&mut graceful_wait(&["file", "--exists", path])).0, 0);
    let (code, log) = run(&mut graceful_wait(&[
        "file",
        "--exists",
        dir.path().join("never").to_str().unwrap(),
        "--timeout",
        "300ms",
    ]));
    assert_eq!(code, 124, "{log}");
}

#[test]
fn file_in_a_missing_folder_polls_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("later/app.done");
    let mut w = Watched::spawn(&mut graceful_wait(&[
        "file",
        "--exists",
        marker.to_str().unwrap(),
        "--interval",
        "20ms",
    ]));
    w.expect_line("inotify unavailable");
    w.expect_line("inotify=false");
    fs::create_dir(dir.path().join("later")).unwrap();
    fs::write(&marker, "").unwrap();
    let (code, log) = w.finish();
    assert_eq!(code, 0, "{log}");
}
