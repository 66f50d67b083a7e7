//! The one way both programs replace a file: write a temporary file in the
//! target's own folder (so the rename cannot cross filesystems), give it its
//! mode, sync it, rename it over the target, sync the folder. A reader sees
//! the old file or the new one, never half of one; on any error the target is
//! as it was and the temporary file is gone.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
};

/// Replaces (or creates) `path` with `bytes`, mode `mode`. The error says
/// which step failed.
pub fn write(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_owned(path, bytes, mode, None)
}

/// As [`write`](fn@write), and the new file gets this owner (uid, gid) before it is
/// renamed into place: a file rewritten by root keeps its owner.
pub fn write_owned(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<()> {
    let mut writer = Writer::create(path, mode, owner)?;
    writer.write(bytes)?;
    writer.commit()
}

/// A replacement of `path` written a piece at a time: nothing is seen at
/// `path` until [`Writer::commit`]; dropped without a commit, it leaves
/// nothing behind.
pub struct Writer {
    target: PathBuf,
    temp: PathBuf,
    file: Option<io::BufWriter<File>>,
    mode: u32,
    owner: Option<(u32, u32)>,
    /// Renamed into place: the temporary name is gone.
    committed: bool,
}

fn step(what: &'static str) -> impl Fn(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

impl Writer {
    pub fn create(path: &Path, mode: u32, owner: Option<(u32, u32)>) -> io::Result<Writer> {
        let (temp, file) =
            create_temp(path).map_err(step("cannot create a temporary file beside it"))?;
        Ok(Writer {
            target: path.to_path_buf(),
            temp,
            file: Some(io::BufWriter::new(file)),
            mode,
            owner,
            committed: false,
        })
    }

    fn file(&mut self) -> io::Result<&mut io::BufWriter<File>> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("already committed"))
    }

    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file()?
            .write_all(bytes)
            .map_err(step("cannot write the temporary file"))
    }

    /// Starts over: what was written is dropped.
    pub fn reset(&mut self) -> io::Result<()> {
        use std::io::Seek;
        let f = self.file()?;
        f.flush()?;
        f.get_mut().set_len(0)?;
        f.get_mut().rewind()?;
        Ok(())
    }

    /// Gives the file its mode (and owner), syncs it, renames it over the
    /// target and syncs the folder.
    pub fn commit(mut self) -> io::Result<()> {
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("already committed"))?;
        let file = file
            .into_inner()
            .map_err(|e| io::Error::new(e.error().kind(), e.error().to_string()))
            .map_err(step("cannot write the temporary file"))?;
        file.set_permissions(fs::Permissions::from_mode(self.mode))
            .and_then(|()| match self.owner {
                Some((uid, gid)) => std::os::unix::fs::fchown(&file, Some(uid), Some(gid)),
                None => Ok(()),
            })
            .and_then(|()| file.sync_all())
            .map_err(step("cannot write the temporary file"))?;
        drop(file);
        fs::rename(&self.temp, &self.target)
            .map_err(step("cannot rename the temporary file into place"))?;
        self.committed = true;
        // The rename is durable once the folder is synced; the file itself is
        // already complete, so a failure here changes nothing a reader sees.
        if let Ok(dir) = File::open(folder(&self.target)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// A new file beside `path`, named `.NAME.tmp-PID-N`. `create_new` (O_EXCL)
/// never follows or reuses what is already there: in a shared volume a
/// planted file or link at that name must not redirect the write.
fn create_temp(path: &Path) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
        .to_string_lossy();
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = folder(path).join(format!(".{name}.tmp-{}-{n}", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
        {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_with_the_given_mode_and_leaves_nothing_behind() {
        let dir = std::env::temp_dir().join(format!("gw-atomic-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let target = dir.join("out.yaml");
        write(&target, b"one", 0o640).unwrap();
        write(&target, b"two", 0o555).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o555
        );
        assert_eq!(names(&dir), ["out.yaml"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_keeps_the_target() {
        let dir = std::env::temp_dir().join(format!("gw-atomic-fail-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // A directory where the file should go: the rename fails.
        let target = dir.join("taken");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), b"kept").unwrap();
        assert!(write(&target, b"new", 0o644).is_err());
        assert_eq!(fs::read(target.join("inside")).unwrap(), b"kept");
        assert_eq!(names(&dir), ["taken"]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
