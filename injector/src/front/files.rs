//! Reading inputs and writing the output so that nothing is ever lost: the
//! output replaces the target atomically (the shared `atomic_file`: a synced
//! temporary file in the same folder, renamed over it) with the target's
//! mode. An error at any step leaves the target as it was, and no temporary
//! file behind.

use crate::error::Error;
use crate::stream::Sink;
use graceful_wait_shared::atomic_file;
use std::{
    fs,
    io::{self, Read, Write},
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

pub fn is_stdio(p: &Path) -> bool {
    p.as_os_str() == "-"
}

/// The file's text; invalid UTF-8 is reported with its line and column.
pub fn read_text(path: &Path) -> Result<String, Error> {
    let mut bytes = Vec::new();
    if is_stdio(path) {
        io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(format!("<stdin>: cannot read: {e}")))?;
    } else {
        bytes = fs::read(path)
            .map_err(|e| Error::io(format!("{}: cannot read: {e}", path.display())))?;
    }
    crate::stream::utf8(bytes).map_err(|e| e.in_file(display(path)))
}

/// The input, to be read a line at a time: the file, or standard input.
pub fn open(path: &Path) -> Result<Box<dyn io::BufRead>, Error> {
    if is_stdio(path) {
        return Ok(Box::new(io::stdin().lock()));
    }
    let file = fs::File::open(path)
        .map_err(|e| Error::io(format!("{}: cannot read: {e}", path.display())))?;
    Ok(Box::new(io::BufReader::with_capacity(1 << 16, file)))
}

/// Output that goes nowhere (`--check`).
pub struct Discard;

impl Sink for Discard {
    fn write(&mut self, _: &str) -> Result<(), Error> {
        Ok(())
    }

    fn reset(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

pub fn display(path: &Path) -> String {
    if is_stdio(path) {
        "<stdin>".into()
    } else {
        path.display().to_string()
    }
}

/// The file a write to `path` replaces: a symlink is written through.
fn resolve(path: &Path) -> Result<PathBuf, Error> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path).map_err(|e| {
            Error::io(format!(
                "{}: a symlink whose target cannot be resolved ({e}); the file is unchanged",
                path.display()
            ))
        }),
        _ => Ok(path.to_path_buf()),
    }
}

/// A replacement of a file, written as the output is verified and put in
/// place by [`Replacement::commit`] ([`graceful_wait_shared::atomic_file`]):
/// it keeps the mode (and, as root, the owner) of the file it replaces.
///
/// A symlink is written through: the file it points to is replaced and the
/// link stays a link (as `sed -i --follow-symlinks`). A hard link is not kept:
/// the rename gives the path a new file, and the other names keep the old
/// content (as with `sed -i`).
pub struct Replacement {
    path: PathBuf,
    writer: atomic_file::Writer,
}

impl Replacement {
    pub fn new(path: &Path) -> Result<Replacement, Error> {
        let target = resolve(path)?;
        let old = fs::metadata(&target).ok();
        let mode = old.as_ref().map_or(0o644, |m| m.permissions().mode());
        // Only root can give a file to another owner; others keep their own.
        let owner = old.filter(|_| is_root()).map(|m| (m.uid(), m.gid()));
        let writer =
            atomic_file::Writer::create(&target, mode, owner).map_err(|e| unchanged(path, &e))?;
        Ok(Replacement {
            path: path.to_path_buf(),
            writer,
        })
    }

    pub fn commit(self) -> Result<(), Error> {
        let path = self.path;
        self.writer.commit().map_err(|e| unchanged(&path, &e))
    }
}

impl Sink for Replacement {
    fn write(&mut self, text: &str) -> Result<(), Error> {
        self.writer
            .write(text.as_bytes())
            .map_err(|e| unchanged(&self.path, &e))
    }

    fn reset(&mut self) -> Result<(), Error> {
        self.writer.reset().map_err(|e| unchanged(&self.path, &e))
    }
}

fn unchanged(path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::io(format!(
        "{}: {e}; the file is unchanged — check the folder's permissions and free space",
        path.display()
    ))
}

/// Output for stdout, held back in an unnamed temporary file until the
/// whole stream is verified, so a pipe never gets half a result.
pub struct HeldBack(io::BufWriter<fs::File>);

impl HeldBack {
    pub fn new() -> Result<HeldBack, Error> {
        tempfile::tempfile()
            .map(|f| HeldBack(io::BufWriter::new(f)))
            .map_err(|e| {
                Error::io(format!(
                    "cannot create a temporary file for the output: {e}; check TMPDIR"
                ))
            })
    }

    /// Everything verified: to stdout.
    pub fn release(self) -> Result<(), Error> {
        use std::io::Seek;
        let fail = |e: io::Error| Error::io(format!("<stdout>: cannot write: {e}"));
        let mut file = self.0.into_inner().map_err(|e| fail(e.into_error()))?;
        file.rewind().map_err(fail)?;
        let mut out = io::stdout().lock();
        io::copy(&mut file, &mut out).map_err(fail)?;
        out.flush().map_err(fail)
    }
}

impl Sink for HeldBack {
    fn write(&mut self, text: &str) -> Result<(), Error> {
        self.0.write_all(text.as_bytes()).map_err(|e| {
            Error::io(format!(
                "cannot write the held-back output: {e}; check TMPDIR's free space"
            ))
        })
    }

    fn reset(&mut self) -> Result<(), Error> {
        use std::io::Seek;
        let fail = |e: io::Error| Error::io(format!("cannot reset the held-back output: {e}"));
        self.0.flush().map_err(fail)?;
        self.0.get_mut().set_len(0).map_err(fail)?;
        self.0.get_mut().rewind().map_err(fail)
    }
}

fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

pub fn write_stdout(text: &str) -> Result<(), Error> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::io(format!("<stdout>: cannot write: {e}")))
}
