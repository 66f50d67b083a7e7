//! Reading inputs and writing the output so that nothing is ever lost: the
//! output is written to a temporary file in the target's own folder, synced,
//! given the target's mode, and renamed over it. An error at any step leaves
//! the target as it was, and the temporary file is removed.

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

/// Writes `text` to `path` atomically, keeping the mode of the file it replaces.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        format!("{}: cannot {what}: {e}; the file is unchanged — check the folder's permissions and free space", path.display())
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mode = fs::metadata(path)
        .map(|m| m.permissions().mode())
        .unwrap_or(0o644);
    let mut temp = tempfile::Builder::new()
        .prefix(".graceful-inject-")
        .tempfile_in(dir)
        .map_err(|e| fail("create a temporary file beside it", &e))?;
    temp.write_all(text.as_bytes())
        .map_err(|e| fail("write", &e))?;
    temp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| fail("set the mode", &e))?;
    temp.as_file().sync_all().map_err(|e| fail("sync", &e))?;
    temp.persist(path)
        .map_err(|e| fail("rename into place", &e.error))?;
    // The rename is durable once the folder is synced.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

pub fn write_stdout(text: &str) -> Result<(), String> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| format!("<stdout>: cannot write: {e}"))
}
