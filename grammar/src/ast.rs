//! The Dockerfile AST: one [`Instruction`] per logical line, words kept *as written*
//! (unexpanded, quotes and escapes intact) so the compiler can expand them against the
//! environment in force at that instruction. Every node carries a [`Span`].

use serde::Serialize;

/// A region of the source: byte offsets plus the 1-based line and column of `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub line: u32,
    pub col: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spanned<T> {
    pub node: T,
    pub span: Span,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// Parser directives in the order written (`syntax`, `escape`, `check`), keys
    /// lower-cased.
    pub directives: Vec<Directive>,
    /// The active escape character (`\` unless `# escape=` says otherwise).
    pub escape: char,
    pub instructions: Vec<Instruction>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub value: String,
    pub span: Span,
}

/// Instruction keywords; the source may spell them in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Keyword {
    From,
    Run,
    Cmd,
    Label,
    Maintainer,
    Expose,
    Env,
    Add,
    Copy,
    Entrypoint,
    Volume,
    User,
    Workdir,
    Arg,
    Onbuild,
    Stopsignal,
    Healthcheck,
    Shell,
}

impl Keyword {
    /// Upper-case name as in the Dockerfile reference.
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::From => "FROM",
            Keyword::Run => "RUN",
            Keyword::Cmd => "CMD",
            Keyword::Label => "LABEL",
            Keyword::Maintainer => "MAINTAINER",
            Keyword::Expose => "EXPOSE",
            Keyword::Env => "ENV",
            Keyword::Add => "ADD",
            Keyword::Copy => "COPY",
            Keyword::Entrypoint => "ENTRYPOINT",
            Keyword::Volume => "VOLUME",
            Keyword::User => "USER",
            Keyword::Workdir => "WORKDIR",
            Keyword::Arg => "ARG",
            Keyword::Onbuild => "ONBUILD",
            Keyword::Stopsignal => "STOPSIGNAL",
            Keyword::Healthcheck => "HEALTHCHECK",
            Keyword::Shell => "SHELL",
        }
    }

    /// Case-insensitive lookup: the length and first letter pick the one candidate.
    pub fn parse(word: &str) -> Option<Keyword> {
        let w = word.as_bytes();
        let first = w.first()?.to_ascii_uppercase();
        let second = w.get(1).map(u8::to_ascii_uppercase);
        let candidate = match (w.len(), first) {
            (4, b'F') => Keyword::From,
            (3, b'R') => Keyword::Run,
            (3, b'C') => Keyword::Cmd,
            (5, b'L') => Keyword::Label,
            (10, b'M') => Keyword::Maintainer,
            (6, b'E') => Keyword::Expose,
            (3, b'E') => Keyword::Env,
            (3, b'A') if second == Some(b'D') => Keyword::Add,
            (3, b'A') => Keyword::Arg,
            (4, b'C') => Keyword::Copy,
            (10, b'E') => Keyword::Entrypoint,
            (6, b'V') => Keyword::Volume,
            (4, b'U') => Keyword::User,
            (7, b'W') => Keyword::Workdir,
            (7, b'O') => Keyword::Onbuild,
            (10, b'S') => Keyword::Stopsignal,
            (11, b'H') => Keyword::Healthcheck,
            (5, b'S') => Keyword::Shell,
            _ => return None,
        };
        candidate.as_str().eq_ignore_ascii_case(word).then_some(candidate)
    }
}

/// One logical instruction (continuations joined, heredoc bodies attached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub keyword: Keyword,
    /// Covers the whole instruction including continuation lines and heredoc bodies.
    pub span: Span,
    /// 1-based first and last physical line (heredoc bodies included).
    pub start_line: u32,
    pub end_line: u32,
    /// `--name=value` flags in order, as written (value unexpanded).
    pub flags: Vec<Flag>,
    pub args: Args,
    /// Heredocs in the order their `<<NAME` markers appear.
    pub heredocs: Vec<Heredoc>,
}

/// `--name[=value]` before the arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// Without the leading `--`, e.g. `mount`.
    pub name: String,
    /// `None` for a bare boolean flag such as `--link`.
    pub value: Option<String>,
    pub span: Span,
}

impl Flag {
    /// The flag as written, e.g. `--mount=type=cache,target=/x`.
    pub fn text(&self) -> String {
        match &self.value {
            Some(v) => format!("--{}={}", self.name, v),
            None => format!("--{}", self.name),
        }
    }
}

/// What follows the keyword and flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// JSON-array form: RUN/CMD/ENTRYPOINT/SHELL/VOLUME/COPY/ADD `["a", "b"]`.
    Exec(Vec<String>),
    /// Shell form of RUN, CMD and ENTRYPOINT: the rest of the line, continuations joined
    /// (the escape character and newline removed), leading whitespace trimmed.
    Shell(String),
    /// ENV, LABEL and ARG: `key=value` pairs (legacy `ENV k v` gives one pair).
    /// Values are as written (quotes kept); `value` is `None` only for `ARG name`.
    Pairs(Vec<KeyValue>),
    /// HEALTHCHECK NONE.
    HealthcheckNone,
    /// `HEALTHCHECK [flags] CMD <command>`.
    HealthcheckCmd(Box<Args>),
    /// `ONBUILD <instruction>`.
    Onbuild(Box<Instruction>),
    /// Everything else: whitespace-separated words as written (quotes kept).
    Words(Vec<Spanned<String>>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Option<String>,
    pub span: Span,
}

/// A heredoc body introduced by `<<NAME`, `<<-NAME`, `<<"NAME"` or `<<'NAME'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    /// The body with the trailing newline of every line kept; `<<-` already stripped of
    /// leading tabs.
    pub content: String,
    /// False when the terminator was quoted: no variable expansion in the body.
    pub expand: bool,
    /// True for `<<-`.
    pub chomp: bool,
    pub span: Span,
}

#[cfg(test)]
mod tests {
    use super::Keyword;

    #[test]
    fn keyword_lookup_ignores_case() {
        let names = [
            "FROM",
            "RUN",
            "CMD",
            "LABEL",
            "MAINTAINER",
            "EXPOSE",
            "ENV",
            "ADD",
            "COPY",
            "ENTRYPOINT",
            "VOLUME",
            "USER",
            "WORKDIR",
            "ARG",
            "ONBUILD",
            "STOPSIGNAL",
            "HEALTHCHECK",
            "SHELL",
        ];
        for n in names {
            assert_eq!(Keyword::parse(n).map(Keyword::as_str), Some(n));
            assert_eq!(Keyword::parse(&n.to_lowercase()).map(Keyword::as_str), Some(n));
        }
        for n in ["", "FRO", "FROMM", "HEALTHCHECKS", "ÉNV", "run "] {
            assert_eq!(Keyword::parse(n), None, "{n:?}");
        }
    }
}
