//! Parse and expansion errors that point at `file:line:col` and show the line.

use std::fmt;

use crate::ast::Span;

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The text does not follow the grammar; the message says what was expected.
    Syntax,
    /// `--name` is not a flag of this instruction.
    UnknownFlag,
    /// Not a Dockerfile instruction.
    UnknownInstruction,
    /// A heredoc whose terminator never appears.
    UnterminatedHeredoc,
    /// A word expansion error (`${v:?msg}`, bad substitution, unterminated quote).
    Expansion,
}

/// An error with its place. `Display` renders `file:line:col: message`, the source line and
/// a caret under the column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub file: String,
    pub span: Span,
    /// The physical source line the span starts on (without newline).
    pub line_text: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>, file: &str, source: &str, span: Span) -> Error {
        let line_text = source.lines().nth(span.line.saturating_sub(1) as usize).unwrap_or("").to_string();
        Error { kind, message: message.into(), file: file.to_string(), span, line_text }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}:{}:{}: {}", self.file, self.span.line, self.span.col, self.message)?;
        let gutter = self.span.line.to_string();
        writeln!(f, "{} | {}", gutter, self.line_text)?;
        let pad: String = self
            .line_text
            .chars()
            .take(self.span.col.saturating_sub(1) as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "{} | {}^", " ".repeat(gutter.len()), pad)
    }
}

impl std::error::Error for Error {}
