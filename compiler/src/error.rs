//! Compile errors: `file:line:col: message`, the source line and a caret, like the
//! grammar's errors (which convert into this type keeping their kind).

use std::fmt;

use cairn_grammar::ast::Span;

/// What went wrong, for callers that react to more than the message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The Dockerfile does not parse; the grammar's own kind (syntax, unknown flag, …).
    Parse(cairn_grammar::ErrorKind),
    /// A variable expansion failed (`${v:?message}`, a bad substitution).
    Expansion,
    /// An instruction's arguments or flag values are invalid (a bad `--chmod`, port, mount
    /// key, signal, duration…).
    Instruction,
    /// The stage structure: no FROM, an invalid or duplicate stage name, a cycle between
    /// stages, an unknown `--target` or stage index, an instruction before the first FROM.
    Stage,
    /// A base image: an invalid reference, a config the resolver cannot read, a bad ONBUILD
    /// trigger in its config.
    Image,
    /// An AST the grammar never produces (built by hand and handed to
    /// [`crate::dockerfile::compile`]).
    Ast,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub kind: ErrorKind,
    pub message: String,
    pub file: String,
    pub line: u32,
    pub col: u32,
    /// The physical source line the error points at (without newline).
    pub line_text: String,
}

impl CompileError {
    pub fn at(kind: ErrorKind, file: &str, text: &str, span: Span, message: impl Into<String>) -> CompileError {
        let line_text = text.lines().nth(span.line.saturating_sub(1) as usize).unwrap_or("").to_string();
        CompileError {
            kind,
            message: message.into(),
            file: file.to_string(),
            line: span.line.max(1),
            col: span.col.max(1),
            line_text,
        }
    }

    /// An error about the request rather than a place in the file (`--target`).
    pub fn general(kind: ErrorKind, file: &str, message: impl Into<String>) -> CompileError {
        CompileError {
            kind,
            message: message.into(),
            file: file.to_string(),
            line: 0,
            col: 0,
            line_text: String::new(),
        }
    }
}

impl From<cairn_grammar::Error> for CompileError {
    fn from(e: cairn_grammar::Error) -> CompileError {
        CompileError {
            kind: ErrorKind::Parse(e.kind),
            message: e.message,
            file: e.file,
            line: e.span.line,
            col: e.span.col,
            line_text: e.line_text,
        }
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return write!(f, "{}: {}", self.file, self.message);
        }
        writeln!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.message)?;
        let gutter = self.line.to_string();
        writeln!(f, "{} | {}", gutter, self.line_text)?;
        let pad: String = self
            .line_text
            .chars()
            .take(self.col.saturating_sub(1) as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "{} | {}^", " ".repeat(gutter.len()), pad)
    }
}

impl std::error::Error for CompileError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar_errors_keep_their_kind() {
        let e: CompileError = cairn_grammar::parse("Dockerfile", "FROM a\nCOPY --nope a b\n").unwrap_err().into();
        assert_eq!(e.kind, ErrorKind::Parse(cairn_grammar::ErrorKind::UnknownFlag));
        assert_eq!((e.line, e.col), (2, 6));
    }
}
