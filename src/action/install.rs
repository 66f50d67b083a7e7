//! `graceful-wait install DIR`: the init container's job. Copies the running
//! binary into the shared volume so other containers (the proxy, whose image
//! we do not own) can run it from there.
//!
//! The copy is atomic — a temporary file in DIR, synced, mode 0555, renamed
//! into place — so a container never sees half a binary, and installing over
//! the same binary (an init container restarted) succeeds without a change.
//! A symlink or anything but a regular file at the target is refused: the
//! volume is shared, and following a planted link would write elsewhere.

use crate::{error::Error, exit};
use graceful_wait_shared::{atomic_file, cli::InstallArgs};
use std::{
    fs, io,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

pub const NAME: &str = "graceful-wait";

/// The installed binary's mode: read and run by anyone, written by no one.
const MODE: u32 = 0o555;

/// A temporary file of ours older than this was left by an install that was
/// killed (an emptyDir outlives a container restart); a younger one may be a
/// concurrent install's, still being written.
const STALE: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether the file at `path` holds exactly `binary`, read 64 KiB at a time.
fn same_bytes(path: &Path, binary: &[u8]) -> bool {
    use std::io::Read;
    let Ok(mut file) = fs::File::open(path) else {
        return false;
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0;
    loop {
        match file.read(&mut buf) {
            Ok(0) => return at == binary.len(),
            Ok(n) => {
                if binary.get(at..at + n) != Some(&buf[..n]) {
                    return false;
                }
                at += n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Removes the temporary files a killed install left in `dir` (ours by
/// name, and old): they would only pile up in the shared volume.
fn remove_stale_temporaries(dir: &Path) {
    let prefix = format!(".{NAME}.tmp-");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let ours = entry.file_name().to_string_lossy().starts_with(&prefix);
        let old = entry
            .metadata()
            .ok()
            .filter(|m| m.file_type().is_file())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE);
        if ours && old {
            match fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!(path = %entry.path().display(), "removed a stale temporary file of an earlier install")
                }
                Err(e) => {
                    tracing::warn!(path = %entry.path().display(), "cannot remove a stale temporary file: {e}")
                }
            }
        }
    }
}

/// What `install` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Installed {
    Copied { target: PathBuf, bytes: u64 },
    AlreadyThere { target: PathBuf },
}

/// `graceful-wait install DIR`: installs, says what it did, returns the status.
pub fn run(args: InstallArgs) -> i32 {
    match install(&args.dir) {
        Ok(Installed::Copied { target, bytes }) => {
            tracing::info!("installed {} ({bytes} bytes)", target.display());
            exit::OK
        }
        Ok(Installed::AlreadyThere { target }) => {
            tracing::info!("{} is already this binary; nothing to do", target.display());
            exit::OK
        }
        Err(e) => {
            tracing::error!("{e}");
            exit::of_error(&e)
        }
    }
}

/// Installs the running binary into `dir`.
pub fn install(dir: &Path) -> Result<Installed, Error> {
    let exe = fs::read("/proc/self/exe").map_err(|e| {
        Error::permanent(format!(
            "cannot read my own binary (/proc/self/exe): {e}; is /proc mounted?"
        ))
    })?;
    install_bytes(&exe, dir)
}

/// Installs `binary` as `dir/graceful-wait`.
pub fn install_bytes(binary: &[u8], dir: &Path) -> Result<Installed, Error> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::usage(format!(
                "{} is not a directory; give the shared volume's mount path",
                dir.display()
            )))
        }
        Err(e) => {
            return Err(Error::usage(format!(
                "{}: {e}; give the shared volume's mount path (an existing directory)",
                dir.display()
            )))
        }
    }
    let target = dir.join(NAME);
    match fs::symlink_metadata(&target) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(Error::permanent(format!(
                "{} is a symlink; refusing to replace it — remove it if it should not be there",
                target.display()
            )))
        }
        Ok(m) if !m.is_file() => {
            return Err(Error::permanent(format!(
                "{} exists and is not a regular file; refusing to replace it",
                target.display()
            )))
        }
        Ok(m) => {
            // Installed means: this binary, with the mode the hooks rely on.
            // A planted file is compared by size first, then in bounded
            // chunks, never read whole (the init container has 32 MiB).
            let mode_ok = m.permissions().mode() & 0o7777 == MODE;
            if mode_ok && m.len() == binary.len() as u64 && same_bytes(&target, binary) {
                return Ok(Installed::AlreadyThere { target });
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::permanent(format!("{}: {e}", target.display()))),
    }
    remove_stale_temporaries(dir);
    atomic_file::write(&target, binary, MODE)
        .map_err(|e| Error::permanent(format!("cannot install into {}: {e}", dir.display())))?;
    Ok(Installed::Copied {
        target,
        bytes: binary.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gw-install-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn copies_with_mode_0555_then_finds_it_there() {
        let d = tempdir("copy");
        let got = install_bytes(b"binary-v1", &d).unwrap();
        assert_eq!(
            got,
            Installed::Copied {
                target: d.join(NAME),
                bytes: 9
            }
        );
        assert_eq!(fs::read(d.join(NAME)).unwrap(), b"binary-v1");
        assert_eq!(
            fs::metadata(d.join(NAME)).unwrap().permissions().mode() & 0o777,
            0o555
        );
        assert_eq!(
            install_bytes(b"binary-v1", &d).unwrap(),
            Installed::AlreadyThere {
                target: d.join(NAME)
            }
        );
        // A different binary replaces it.
        assert!(matches!(
            install_bytes(b"binary-v2", &d).unwrap(),
            Installed::Copied { .. }
        ));
        assert_eq!(fs::read(d.join(NAME)).unwrap(), b"binary-v2");
        let names: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [NAME], "no temporary file left");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn refuses_symlinks_non_files_and_non_directories() {
        let d = tempdir("refuse");
        let elsewhere = d.join("elsewhere");
        fs::write(&elsewhere, b"precious").unwrap();
        symlink(&elsewhere, d.join(NAME)).unwrap();
        assert!(install_bytes(b"x", &d)
            .unwrap_err()
            .message
            .contains("is a symlink"));
        assert_eq!(fs::read(&elsewhere).unwrap(), b"precious");
        fs::remove_file(d.join(NAME)).unwrap();
        fs::create_dir(d.join(NAME)).unwrap();
        assert!(install_bytes(b"x", &d)
            .unwrap_err()
            .message
            .contains("not a regular file"));
        assert!(install_bytes(b"x", &elsewhere)
            .unwrap_err()
            .message
            .contains("not a directory"));
        assert!(install_bytes(b"x", &d.join("missing"))
            .unwrap_err()
            .message
            .contains("existing directory"));
        fs::remove_dir_all(&d).unwrap();
    }

    /// The shared volume is hostile ground: a stale temporary file, a huge
    /// planted file, the right bytes with the wrong mode.
    #[test]
    fn traps_in_the_shared_volume() {
        let d = tempdir("traps");
        // A killed install's temporary file, old: removed, and no obstacle.
        let stale = d.join(format!(".{NAME}.tmp-1-0"));
        fs::write(&stale, b"half a binary").unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(matches!(
            install_bytes(b"bin", &d).unwrap(),
            Installed::Copied { .. }
        ));
        assert!(!stale.exists(), "the stale temporary file is still there");
        // The right bytes with another mode: installed again, 0555.
        fs::set_permissions(d.join(NAME), fs::Permissions::from_mode(0o666)).unwrap();
        assert!(matches!(
            install_bytes(b"bin", &d).unwrap(),
            Installed::Copied { .. }
        ));
        assert_eq!(
            fs::metadata(d.join(NAME)).unwrap().permissions().mode() & 0o7777,
            0o555
        );
        // A 1 GiB planted file (sparse): replaced without being read whole.
        fs::remove_file(d.join(NAME)).unwrap();
        fs::File::create(d.join(NAME))
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
        assert!(matches!(
            install_bytes(b"bin", &d).unwrap(),
            Installed::Copied { .. }
        ));
        assert_eq!(fs::read(d.join(NAME)).unwrap(), b"bin");
        fs::remove_dir_all(&d).unwrap();
    }
}
