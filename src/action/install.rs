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
    path::{Path, PathBuf},
};

pub const NAME: &str = "graceful-wait";

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
        Ok(_) => {
            if fs::read(&target).is_ok_and(|old| old == binary) {
                return Ok(Installed::AlreadyThere { target });
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::permanent(format!("{}: {e}", target.display()))),
    }
    atomic_file::write(&target, binary, 0o555)
        .map_err(|e| Error::permanent(format!("cannot install into {}: {e}", dir.display())))?;
    Ok(Installed::Copied {
        target,
        bytes: binary.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

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
}
