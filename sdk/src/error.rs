//! `Error`: what the builder refuses, with the operation and the value that was wrong.

use std::fmt;

/// Why the builder refused an operation. The message names the operation and the value,
/// in cairn's error style (capital letter, names in backticks, no trailing period).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

/// What kind of mistake an [`Error`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An image reference that does not parse (`State::image`).
    Reference,
    /// A source without a name, URL or remote, or with a bad file name.
    Source,
    /// An environment variable name that is empty or holds `=`.
    Env,
    /// An exec without arguments, or a bad secret variable.
    Exec,
    /// A mount that targets `/`, targets a path twice, or asks for an output it cannot give.
    Mount,
    /// A file op without actions, or an action with an empty path.
    File,
    /// A merge of no states.
    Merge,
    /// A definition that does not validate (a location naming a missing source file).
    Definition,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { kind, message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
