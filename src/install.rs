//! `graceful-wait install DIR`: the init container's job. Copies the running
//! binary into the shared volume so other containers (the proxy, whose image
//! we do not own) can run it from there.
//!
//! The copy is atomic — a temporary file in DIR, synced, mode 0555, renamed
//! into place — so a container never sees half a binary, and installing over
//! the same binary (an init container restarted) succeeds without a change.
//! A symlink or anything but a regular file at the target is refused: the
//! volume is shared, and following a planted link would write elsewhere.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

pub const NAME: &str = "graceful-wait";

/// What `install` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Installed {
    Copied { target: PathBuf, bytes: u64 },
    AlreadyThere { target: PathBuf },
}

/// Installs the running binary into `dir`.
pub fn install(dir: &Path) -> Result<Installed, String> {
    let exe = fs::read("/proc/self/exe").map_err(|e| {
        format!("cannot read my own binary (/proc/self/exe): {e}; is /proc mounted?")
    })?;
    install_bytes(&exe, dir)
}

/// Installs `binary` as `dir/graceful-wait`.
pub fn install_bytes(binary: &[u8], dir: &Path) -> Result<Installed, String> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(format!(
                "{} is not a directory; give the shared volume's mount path",
                dir.display()
            ))
        }
        Err(e) => {
            return Err(format!(
                "{}: {e}; give the shared volume's mount path (an existing directory)",
                dir.display()
            ))
        }
    }
    let target = dir.join(NAME);
    match fs::symlink_metadata(&target) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(format!(
                "{} is a symlink; refusing to replace it — remove it if it should not be there",
                target.display()
            ))
        }
        Ok(m) if !m.is_file() => {
            return Err(format!(
                "{} exists and is not a regular file; refusing to replace it",
                target.display()
            ))
        }
        Ok(_) => {
            if fs::read(&target).is_ok_and(|old| old == binary) {
                return Ok(Installed::AlreadyThere { target });
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", target.display())),
    }
    let temp = dir.join(format!(".{NAME}.tmp-{}", std::process::id()));
    let result = write_then_rename(binary, &temp, &target);
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.map_err(|e| format!("cannot install into {}: {e}", dir.display()))?;
    Ok(Installed::Copied {
        target,
        bytes: binary.len() as u64,
    })
}

fn write_then_rename(binary: &[u8], temp: &Path, target: &Path) -> io::Result<()> {
    // create_new: never follow or reuse something already at the temp path.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(temp)?;
    file.write_all(binary)?;
    file.set_permissions(fs::Permissions::from_mode(0o555))?;
    file.sync_all()?;
    fs::rename(temp, target)?;
    if let Some(dir) = target.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
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
            .contains("is a symlink"));
        assert_eq!(fs::read(&elsewhere).unwrap(), b"precious");
        fs::remove_file(d.join(NAME)).unwrap();
        fs::create_dir(d.join(NAME)).unwrap();
        assert!(install_bytes(b"x", &d)
            .unwrap_err()
            .contains("not a regular file"));
        assert!(install_bytes(b"x", &elsewhere)
            .unwrap_err()
            .contains("not a directory"));
        assert!(install_bytes(b"x", &d.join("missing"))
            .unwrap_err()
            .contains("existing directory"));
        fs::remove_dir_all(&d).unwrap();
    }
}
