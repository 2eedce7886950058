//! Dockerfile parsing: text → [`ast::Dockerfile`].
//!
//! A hand-written line scanner (`scanner`) handles what a grammar handles badly: parser
//! directives, the escape character, line continuations, comment lines inside
//! continuations and heredoc bodies. Each logical instruction line is then split by a pest
//! grammar (`line.pest`: keyword, flags, rest) and interpreted per instruction (`line`).
//! Word expansion (`$v`, `${v:-w}`, quotes, escapes) is a separate entry point,
//! [`expand`], because it runs in the compiler against the environment of each
//! instruction; it is hand-written because the escape character is chosen at run time.
//! [`flags`] is the one table of the flags each instruction takes: the parser refuses any
//! other (`ErrorKind::UnknownFlag`), and the compiler reads flags through the same table.
//!
//! **Architecture Invariant:** pest's `Pair`/`Rule` never leave this crate.
//!
//! ```
//! let df = cairn_grammar::parse("Dockerfile", "FROM busybox AS base\nRUN echo hi \\\n  there\n").unwrap();
//! assert_eq!(df.instructions.len(), 2);
//! assert_eq!(df.instructions[1].args, cairn_grammar::ast::Args::Shell("echo hi   there".into()));
//! ```

pub mod ast;
pub mod error;
pub mod expand;
pub mod flags;
pub mod json;
mod line;
mod prefix;
mod scanner;

pub use error::{Error, ErrorKind};

/// The leading parser directives of `source` (`# syntax=…`, `# escape=…`, `# check=…`)
/// without parsing the rest, which need not be a Dockerfile: `# syntax=` chooses the
/// frontend that reads the file.
pub fn directives(file: &str, source: &str) -> Result<Vec<ast::Directive>, Error> {
    let src = source.strip_prefix('\u{feff}').unwrap_or(source);
    Ok(scanner::Scanner::new(file, src).directives()?.0)
}

/// Parses a whole Dockerfile. `file` is only used in error messages.
pub fn parse(file: &str, source: &str) -> Result<ast::Dockerfile, Error> {
    let src = source.strip_prefix('\u{feff}').unwrap_or(source);
    let mut scanner = scanner::Scanner::new(file, src);
    let (directives, escape) = scanner.directives()?;
    let markers = |text: &str| line::heredoc_markers(text, escape);
    // About one instruction per 64 bytes in real Dockerfiles: one allocation, rarely two.
    let mut instructions = Vec::with_capacity(src.len() / 64 + 4);
    while let Some(mut l) = scanner.next_line(&markers)? {
        let ctx =
            line::Ctx { file, src, heredocs: std::cell::Cell::new(std::mem::take(&mut l.heredocs)), line: &l, escape };
        match line::parse_instruction(&ctx, 0) {
            Ok(i) => instructions.push(i),
            Err(e) => {
                // As in BuildKit, errors of the line structure (an unterminated heredoc
                // further down) win over errors inside an instruction.
                while scanner.next_line(&markers)?.is_some() {}
                return Err(e);
            }
        }
    }
    if instructions.is_empty() {
        // As BuildKit's parser ("file with no instructions"), at the last line.
        let at = src.trim_end_matches(['\n', '\r']).rfind('\n').map_or(0, |i| i + 1);
        let line = src[..at].bytes().filter(|&b| b == b'\n').count() as u32 + 1;
        let span = ast::Span { start: at, end: src.len(), line, col: 1 };
        let message = "The Dockerfile has no instructions".to_string();
        return Err(Error::new(ErrorKind::Syntax, message, file, src, span));
    }
    Ok(ast::Dockerfile { directives, escape, instructions })
}
