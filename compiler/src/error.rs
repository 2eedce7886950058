//! Compile errors: `file:line:col: message`, the source line and a caret, like the
//! grammar's errors (which convert into this type unchanged).

use std::fmt;

use cairn_grammar::ast::Span;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub message: String,
    pub file: String,
    pub line: u32,
    pub col: u32,
    /// The physical source line the error points at (without newline).
    pub line_text: String,
}

impl CompileError {
    pub fn at(file: &str, text: &str, span: Span, message: impl Into<String>) -> CompileError {
        let line_text = text.lines().nth(span.line.saturating_sub(1) as usize).unwrap_or("").to_string();
        CompileError {
            message: message.into(),
            file: file.to_string(),
            line: span.line.max(1),
            col: span.col.max(1),
            line_text,
        }
    }

    /// An error about the request rather than a place in the file (`--target`).
    pub fn general(file: &str, message: impl Into<String>) -> CompileError {
        CompileError { message: message.into(), file: file.to_string(), line: 0, col: 0, line_text: String::new() }
    }
}

impl From<cairn_grammar::Error> for CompileError {
    fn from(e: cairn_grammar::Error) -> CompileError {
        CompileError { message: e.message, file: e.file, line: e.span.line, col: e.span.col, line_text: e.line_text }
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
