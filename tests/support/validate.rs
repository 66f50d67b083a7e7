//! Kubernetes' own schemas as the judge of what the tests write:
//! `kubernetes-validate --strict` (PyPI; the schemas of Kubernetes 1.25 on,
//! bundled, offline). The injector's tests include this file by path.

#![allow(dead_code)] // each including test uses its own part

// The including test may have it too.
#[allow(clippy::duplicate_mod)]
#[path = "skip.rs"]
mod skip;

use std::{path::Path, process::Command};

/// True when the files are strictly valid for `version` (the tool's newest
/// without one); panics naming what is not. Where the tool is missing, says
/// SKIPPED for `test` and returns false.
pub fn strictly_valid(test: &str, files: &[impl AsRef<Path>], version: Option<&str>) -> bool {
    if !skip::have("kubernetes-validate", &["--version"]) {
        skip::skipped(
            test,
            "kubernetes-validate is not installed (pip install kubernetes-validate; tests/run installs it as root)",
        );
        return false;
    }
    let mut cmd = Command::new("kubernetes-validate");
    cmd.args(["--strict", "--quiet"]);
    if let Some(v) = version {
        cmd.args(["-k", v]);
    }
    let out = cmd.args(files.iter().map(AsRef::as_ref)).output().unwrap();
    assert!(
        out.status.success(),
        "kubernetes-validate --strict{}: {}{}",
        version.map(|v| format!(" -k {v}")).unwrap_or_default(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    true
}
