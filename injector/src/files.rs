//! Reading inputs and writing the output so that nothing is ever lost: the
//! output replaces the target atomically (the shared `atomic_file`: a synced
//! temporary file in the same folder, renamed over it) with the target's
//! mode. An error at any step leaves the target as it was, and no temporary
//! file behind.

use std::{
    fs,
    io::{self, Read, Write},
    os::unix::fs::PermissionsExt,
    path::Path,
};

pub fn is_stdio(p: &Path) -> bool {
    p.as_os_str() == "-"
}

/// The file's text; invalid UTF-8 is reported with its line and column.
pub fn read_text(path: &Path) -> Result<String, String> {
    let mut bytes = Vec::new();
    if is_stdio(path) {
        io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| format!("<stdin>: cannot read: {e}"))?;
    } else {
        bytes = fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let col = good.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
        format!("{}:{line}:{col}: not UTF-8 text (Kubernetes manifests are UTF-8); convert the file, e.g. with iconv", display(path))
    })
}

pub fn display(path: &Path) -> String {
    if is_stdio(path) {
        "<stdin>".into()
    } else {
        path.display().to_string()
    }
}

/// Writes `text` to `path` atomically ([`graceful_wait_shared::atomic_file`]),
/// keeping the mode of the file it replaces.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), String> {
    let mode = fs::metadata(path)
        .map(|m| m.permissions().mode())
        .unwrap_or(0o644);
    graceful_wait_shared::atomic_file::write(path, text.as_bytes(), mode).map_err(|e| {
        format!(
            "{}: {e}; the file is unchanged — check the folder's permissions and free space",
            path.display()
        )
    })
}

pub fn write_stdout(text: &str) -> Result<(), String> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| format!("<stdout>: cannot write: {e}"))
}
