//! graceful-inject's errors, and the exit statuses, decided here and nowhere
//! else: every room hands over an [`Error`] — what went wrong, of which
//! [`Kind`], where (file, line, column) when there is a place — and the front
//! ends print it and exit with [`Error::status`]. The `--help` text and
//! docs/injector.md list [`STATUSES`], so what users read is what the code
//! does.

use crate::yaml::{Pos, YamlError};
use std::fmt;

/// The run did what was asked (with `--check`: nothing would change).
pub const OK: i32 = 0;
/// `--check` only: the output would differ from the input.
pub const CHANGES: i32 = 1;
/// An error of any kind: nothing was written.
pub const ERROR: i32 = 2;

/// Every exit status graceful-inject has, and what it means.
pub const STATUSES: &[(i32, &str)] = &[
    (OK, "done (with --check: nothing would change)"),
    (CHANGES, "--check: the output would differ from the input"),
    (
        ERROR,
        "an error in the input, the config, a read or a write, or an internal one (and bad arguments): nothing was written, the input is untouched",
    ),
];

/// The `Exit status:` lines of `--help`, from [`STATUSES`].
pub fn statuses_help() -> String {
    let mut out = String::from("Exit status:\n");
    for (status, meaning) in STATUSES {
        out.push_str(&format!("  {status}  {meaning}\n"));
    }
    out
}

/// What kind of thing went wrong: who can fix it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The manifests: not YAML, not Kubernetes objects, not UTF-8.
    Input,
    /// The config (or the KRM functionConfig, or a setting the output
    /// cannot carry).
    Config,
    /// Reading or writing a file or a stream.
    Io,
    /// graceful-inject planned or wrote something it cannot prove: a bug,
    /// and nothing was written.
    Internal,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub kind: Kind,
    /// The file (or `<stdin>`) the error is in, once a front end knows it.
    pub file: Option<String>,
    pub pos: Option<Pos>,
    pub message: String,
}

impl Error {
    fn new(kind: Kind, pos: Option<Pos>, message: impl Into<String>) -> Error {
        Error {
            kind,
            file: None,
            pos,
            message: message.into(),
        }
    }

    pub fn input(pos: Pos, message: impl Into<String>) -> Error {
        Error::new(Kind::Input, Some(pos), message)
    }

    pub fn config(pos: Option<Pos>, message: impl Into<String>) -> Error {
        Error::new(Kind::Config, pos, message)
    }

    pub fn io(message: impl Into<String>) -> Error {
        Error::new(Kind::Io, None, message)
    }

    /// `what` went wrong inside graceful-inject; the message says that
    /// nothing was written and asks for a report.
    pub fn internal(pos: Option<Pos>, what: impl Into<String>) -> Error {
        Error::new(Kind::Internal, pos, what)
    }

    /// The error, placed in `file` (unless it already names one; an I/O
    /// error names the file it could not read or write in its message).
    pub fn in_file(mut self, file: impl Into<String>) -> Error {
        if self.kind != Kind::Io {
            self.file.get_or_insert_with(|| file.into());
        }
        self
    }

    /// A YAML error in the config.
    pub fn of_config(e: YamlError) -> Error {
        Error::config(e.pos, e.message)
    }

    /// The exit status this error ends a run with.
    pub fn status(&self) -> i32 {
        match self.kind {
            Kind::Input | Kind::Config | Kind::Io | Kind::Internal => ERROR,
        }
    }
}

/// A YAML error in the manifests.
impl From<YamlError> for Error {
    fn from(e: YamlError) -> Error {
        Error::new(Kind::Input, e.pos, e.message)
    }
}

/// `FILE:LINE:COL: message`, as compilers and editors read it; an internal
/// error says so, and what to do.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.pos) {
            (Some(file), Some(pos)) => write!(f, "{file}:{pos}: ")?,
            (Some(file), None) => write!(f, "{file}: ")?,
            (None, Some(pos)) if self.kind != Kind::Io => write!(f, "{pos}: ")?,
            _ => {}
        }
        match self.kind {
            Kind::Internal => write!(
                f,
                "internal error: {}; nothing was written — please report this with the input and config",
                self.message
            ),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_an_error_status_and_the_table_says_so() {
        for kind in [Kind::Input, Kind::Config, Kind::Io, Kind::Internal] {
            let e = Error::new(kind, None, "x");
            assert_eq!(e.status(), ERROR);
        }
        let help = statuses_help();
        for (status, meaning) in STATUSES {
            assert!(help.contains(&format!("  {status}  {meaning}")), "{help}");
        }
    }

    #[test]
    fn errors_name_their_place() {
        let pos = Pos { line: 3, col: 7 };
        assert_eq!(
            Error::input(pos, "bad").in_file("a.yaml").to_string(),
            "a.yaml:3:7: bad"
        );
        assert_eq!(
            Error::io("a.yaml: cannot read: gone").to_string(),
            "a.yaml: cannot read: gone"
        );
        let internal = Error::internal(Some(pos), "edits overlap")
            .in_file("a.yaml")
            .to_string();
        assert!(
            internal.starts_with("a.yaml:3:7: internal error: edits overlap; nothing was written"),
            "{internal}"
        );
        // A file given once stays: a later front end cannot misplace it.
        assert_eq!(
            Error::config(None, "x")
                .in_file("cfg")
                .in_file("other")
                .file
                .as_deref(),
            Some("cfg")
        );
    }
}
