//! A real Helm for the tests: `helm3` or `helm4` from target/tools/bin (where
//! `tests/run` unpacks Helm 3.17.1 and 4.1.4 from their PyPI packages), else
//! from PATH; with homes of its own, so nothing of the user's Helm is read
//! or changed.

#![allow(dead_code)] // each test uses its own part

use super::{piped, skip};
use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A real Helm binary with homes of its own (plugins, cache, config), so
/// nothing of the user's Helm is read or changed.
pub struct Helm {
    pub bin: PathBuf,
    pub home: tempfile::TempDir,
}

impl Helm {
    /// `helm3` or `helm4`: target/tools/bin (where tests/run puts them), else
    /// PATH. None, with a SKIPPED line, when it is not there.
    pub fn find(major: u8, test: &str) -> Option<Self> {
        let name = format!("helm{major}");
        let local = root().join("target/tools/bin").join(&name);
        let bin = if local.is_file() {
            local
        } else if skip::have(&name, &["version"]) {
            PathBuf::from(&name)
        } else {
            skip::skipped(
                test,
                &format!(
                    "{name} is not installed (tests/run puts Helm 3.17.1 and 4.1.4 from PyPI in target/tools/bin)"
                ),
            );
            return None;
        };
        let helm = Self {
            bin,
            home: tempfile::tempdir().unwrap(),
        };
        let version = piped::stdout_of(helm.cmd().args(["version", "--short"]));
        assert!(
            version.starts_with(&format!("v{major}.")),
            "{name} is Helm {version}"
        );
        Some(helm)
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        let home = self.home.path();
        cmd.env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("GRACEFUL_INJECT", env!("CARGO_BIN_EXE_graceful-inject"))
            .env_remove("GRACEFUL_INJECT_CONFIG")
            .env_remove("GRACEFUL_INJECT_LOG")
            .stdin(std::process::Stdio::null());
        cmd
    }

    pub fn is_4(&self) -> bool {
        self.bin.file_name().is_some_and(|n| n == "helm4")
    }
}
