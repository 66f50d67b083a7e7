//! Reading inputs and writing the output so that nothing is ever lost: the
//! output replaces the target atomically (the shared `atomic_file`: a synced
//! temporary file in the same folder, renamed over it) with the target's
//! mode. An error at any step leaves the target as it was, and no temporary
//! file behind.

use std::{
    fs,
    io::{self, Read, Write},
    os::unix::fs::{MetadataExt, PermissionsExt},
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
/// keeping the mode (and, as root, the owner) of the file it replaces.
///
/// A symlink is written through: the file it points to is replaced and the
/// link stays a link (as `sed -i --follow-symlinks`). A hard link is not kept:
/// the rename gives the path a new file, and the other names keep the old
/// content (as with `sed -i`).
pub fn write_atomic(path: &Path, text: &str) -> Result<(), String> {
    let target = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path).map_err(|e| {
            format!(
                "{}: a symlink whose target cannot be resolved ({e}); the file is unchanged",
                path.display()
            )
        })?,
        _ => path.to_path_buf(),
    };
    let old = fs::metadata(&target).ok();
    let mode = old.as_ref().map_or(0o644, |m| m.permissions().mode());
    // Only root can give a file to another owner; others keep their own.
    let owner = old.filter(|_| is_root()).map(|m| (m.uid(), m.gid()));
    graceful_wait_shared::atomic_file::write_owned(&target, text.as_bytes(), mode, owner).map_err(
        |e| {
            format!(
                "{}: {e}; the file is unchanged — check the folder's permissions and free space",
                path.display()
            )
        },
    )
}

fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

pub fn write_stdout(text: &str) -> Result<(), String> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| format!("<stdout>: cannot write: {e}"))
}
