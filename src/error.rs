//! What can go wrong, typed by what the caller should do about it. Every
//! failure in the binary is one [`Error`]; [`crate::exit`] turns it into the
//! process's status in one place, and [`crate::retry`] decides from its kind
//! whether another attempt can help.

use std::fmt;

/// What kind of failure, which decides the reaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The invocation is wrong (a bad flag, an unset `$VARIABLE`, an
    /// unsupported URL scheme): nothing will succeed, so stop at once (exit 2).
    Usage,
    /// Another attempt may succeed (connection refused, a timeout, a 503, an
    /// unreadable /proc while the pod settles): retry until the deadline.
    Transient,
    /// Another attempt cannot succeed (a 4xx, no DNS configuration, https in
    /// a build without TLS): stop trying. A wait still holds until its
    /// deadline, since ending a hook early releases the proxy.
    Permanent,
}

/// A failure and the one line that tells the user what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Error {
        Error {
            kind: Kind::Usage,
            message: message.into(),
        }
    }

    pub fn transient(message: impl Into<String>) -> Error {
        Error {
            kind: Kind::Transient,
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Error {
        Error {
            kind: Kind::Permanent,
            message: message.into(),
        }
    }

    /// The same failure, its message prefixed with where it happened.
    pub fn context(self, place: impl fmt::Display) -> Error {
        Error {
            kind: self.kind,
            message: format!("{place}: {}", self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
