//! Dockerfile parsing: text → [`ast::Dockerfile`].
//!
//! A hand-written line scanner (`scanner`) handles what a grammar handles badly: parser
//! directives, the escape character, line continuations, comment lines inside
//! continuations and heredoc bodies. Each logical instruction line is then split by a pest
//! grammar (`line.pest`: keyword, flags, rest) and interpreted per instruction (`line`).
//! Word expansion (`$v`, `${v:-w}`, quotes, escapes) is a separate entry point,
//! [`expand`], because it runs in the compiler against the environment of each
//! instruction; it is hand-written because the escape character is chosen at run time.
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
pub mod json;
mod line;
mod scanner;

pub use error::{Error, ErrorKind};

/// Parses a whole Dockerfile. `file` is only used in error messages.
pub fn parse(file: &str, source: &str) -> Result<ast::Dockerfile, Error> {
    let src = source.strip_prefix('\u{feff}').unwrap_or(source);
    let lines = scanner::Lines::new(src);
    let (directives, escape, first) = scanner::directives(file, &lines)?;
    let markers = |text: &str| line::heredoc_markers(text, escape);
    let logical = scanner::logical_lines(file, &lines, first, escape, &markers)?;
    let mut instructions = Vec::with_capacity(logical.len());
    for l in &logical {
        let ctx = line::Ctx {
            file,
            src,
            line: l,
            escape,
            starts: &lines.starts,
        };
        instructions.push(line::parse_instruction(&ctx, 0)?);
    }
    Ok(ast::Dockerfile {
        directives,
        escape,
        instructions,
    })
}
