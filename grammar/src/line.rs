//! One logical line → [`Instruction`]: the pest grammar in `line.pest` splits keyword, flags
//! and rest; the rest is then interpreted per instruction (JSON or shell form, key/value
//! pairs, words as written).

use pest::Parser;
use pest_derive::Parser;

use crate::ast::{Args, Flag, Heredoc, Instruction, KeyValue, Keyword, Span, Spanned};
use crate::error::{Error, ErrorKind};
use crate::scanner::{span_at, LogicalLine, Marker};

#[derive(Parser)]
#[grammar = "line.pest"]
struct LineParser;

/// What is needed to turn positions in a logical line into source spans.
pub(crate) struct Ctx<'a> {
    pub file: &'a str,
    pub src: &'a str,
    pub line: &'a LogicalLine,
    pub escape: char,
}

impl Ctx<'_> {
    fn span(&self, start: usize, end: usize) -> Span {
        let s = self.line.source_offset(start);
        let e = self.line.source_offset(end);
        span_at(self.src, s, e)
    }

    fn error(&self, kind: ErrorKind, msg: impl Into<String>, start: usize, end: usize) -> Error {
        Error::new(kind, msg, self.file, self.src, self.span(start, end))
    }
}

/// The flags each instruction accepts (BuildKit's frontend).
fn allowed_flags(k: Keyword) -> &'static [&'static str] {
    match k {
        Keyword::From => &["platform"],
        Keyword::Run => &["mount", "network", "security"],
        Keyword::Copy => &["from", "chown", "chmod", "link", "exclude", "parents"],
        Keyword::Add => &["chown", "chmod", "link", "exclude", "checksum", "keep-git-dir"],
        Keyword::Healthcheck => &["interval", "timeout", "start-period", "start-interval", "retries"],
        _ => &[],
    }
}

/// Parses the instruction in `ctx.line.text[offset..]` (offset > 0 for ONBUILD triggers).
pub(crate) fn parse_instruction(ctx: &Ctx<'_>, offset: usize) -> Result<Instruction, Error> {
    let text = &ctx.line.text[offset..];
    let mut pairs = LineParser::parse(Rule::line, text).map_err(|e| {
        let pos = match e.location {
            pest::error::InputLocation::Pos(p) => p,
            pest::error::InputLocation::Span((s, _)) => s,
        };
        ctx.error(
            ErrorKind::Syntax,
            "Expected an instruction keyword such as `FROM` or `RUN`",
            offset + pos,
            offset + pos,
        )
    })?;
    let line = pairs.next().expect("line rule always yields one pair");
    let mut keyword = None;
    let mut flags = Vec::new();
    let mut rest = ("", 0usize);
    for p in line.into_inner() {
        let (s, e) = (offset + p.as_span().start(), offset + p.as_span().end());
        match p.as_rule() {
            Rule::keyword => {
                let word = p.as_str();
                keyword = Some(Keyword::parse(word).ok_or_else(|| {
                    ctx.error(
                        ErrorKind::UnknownInstruction,
                        format!("Unknown instruction `{}`", word.to_ascii_uppercase()),
                        s,
                        e,
                    )
                })?);
            }
            Rule::flag => {
                let mut name = String::new();
                let mut value = None;
                for part in p.into_inner() {
                    match part.as_rule() {
                        Rule::flag_name => name = part.as_str().to_string(),
                        Rule::flag_value => value = Some(part.as_str().to_string()),
                        other => unreachable!("{other:?} in flag"),
                    }
                }
                flags.push(Flag { name, value, span: ctx.span(s, e) });
            }
            Rule::flags_end => {}
            Rule::rest => rest = (p.as_str(), s),
            Rule::EOI => {}
            other => unreachable!("{other:?} in line"),
        }
    }
    let keyword = keyword.expect("the grammar requires a keyword");
    let allowed = allowed_flags(keyword);
    for f in &flags {
        if !allowed.contains(&f.name.as_str()) {
            let span = f.span;
            return Err(Error::new(
                ErrorKind::UnknownFlag,
                format!("Unknown flag `--{}` for `{}`", f.name, keyword.as_str()),
                ctx.file,
                ctx.src,
                span,
            ));
        }
    }
    let (rest_text, rest_at) = rest;
    let rest_text = rest_text.trim_end();
    let line_end = offset + text.len();
    let kw_span_start = offset + text.len() - text.trim_start().len();
    let args = parse_args(ctx, keyword, rest_text, rest_at, kw_span_start, line_end)?;
    // Heredoc bodies belong to the innermost instruction (an ONBUILD trigger's, if any).
    let heredocs: Vec<Heredoc> =
        if matches!(args, Args::Onbuild(_)) { Vec::new() } else { ctx.line.heredocs.clone() };
    Ok(Instruction {
        keyword,
        span: span_at(ctx.src, ctx.line.start, ctx.line.end),
        start_line: ctx.line.start_line,
        end_line: ctx.line.end_line,
        flags,
        args,
        heredocs,
    })
}

fn parse_args(
    ctx: &Ctx<'_>,
    keyword: Keyword,
    rest: &str,
    at: usize,
    kw_at: usize,
    line_end: usize,
) -> Result<Args, Error> {
    let missing = |what: &str| {
        ctx.error(
            ErrorKind::Syntax,
            format!("`{}` requires {what}", keyword.as_str()),
            kw_at,
            line_end,
        )
    };
    match keyword {
        Keyword::Run | Keyword::Cmd | Keyword::Entrypoint => {
            if rest.is_empty() {
                if keyword == Keyword::Run {
                    return Err(missing("a command to run"));
                }
                // `CMD` / `ENTRYPOINT` with nothing: an empty shell form, as BuildKit.
                return Ok(Args::Shell(String::new()));
            }
            Ok(match json_array(rest) {
                Some(v) => Args::Exec(v),
                None => Args::Shell(rest.to_string()),
            })
        }
        Keyword::Shell => match json_array(rest) {
            Some(v) if !v.is_empty() => Ok(Args::Exec(v)),
            _ => Err(ctx.error(
                ErrorKind::Syntax,
                "`SHELL` requires the arguments in JSON form, e.g. `SHELL [\"/bin/sh\", \"-c\"]`",
                at,
                line_end,
            )),
        },
        Keyword::Volume | Keyword::Copy | Keyword::Add => {
            if let Some(v) = json_array(rest) {
                return Ok(Args::Exec(v));
            }
            let words = split_words(ctx, rest, at)?;
            let need = match keyword {
                Keyword::Volume => 1,
                _ => 2,
            };
            if words.len() < need {
                return Err(missing(if need == 1 {
                    "at least one path"
                } else {
                    "at least two arguments: a source and a destination"
                }));
            }
            Ok(Args::Words(words))
        }
        Keyword::Env | Keyword::Label => {
            if rest.is_empty() {
                return Err(missing("at least one `key=value` pair"));
            }
            parse_pairs(ctx, keyword, rest, at).map(Args::Pairs)
        }
        Keyword::Arg => {
            let words = split_words(ctx, rest, at)?;
            if words.is_empty() {
                return Err(missing("a name, e.g. `ARG VERSION=1.0`"));
            }
            let mut pairs = Vec::new();
            for w in words {
                let (key, value) = match w.node.find('=') {
                    Some(i) => (w.node[..i].to_string(), Some(w.node[i + 1..].to_string())),
                    None => (w.node.clone(), None),
                };
                if key.is_empty() {
                    return Err(Error::new(
                        ErrorKind::Syntax,
                        "`ARG` names can not be blank",
                        ctx.file,
                        ctx.src,
                        w.span,
                    ));
                }
                pairs.push(KeyValue { key, value, span: w.span });
            }
            Ok(Args::Pairs(pairs))
        }
        Keyword::Healthcheck => {
            let (first, after) = split_first_word(rest);
            if first.eq_ignore_ascii_case("NONE") {
                if !after.trim().is_empty() {
                    return Err(ctx.error(
                        ErrorKind::Syntax,
                        "`HEALTHCHECK NONE` takes no arguments",
                        at,
                        line_end,
                    ));
                }
                Ok(Args::HealthcheckNone)
            } else if first.eq_ignore_ascii_case("CMD") {
                let cmd = after.trim_start();
                if cmd.is_empty() {
                    return Err(missing("a command after `CMD`"));
                }
                Ok(Args::HealthcheckCmd(Box::new(match json_array(cmd) {
                    Some(v) => Args::Exec(v),
                    None => Args::Shell(cmd.to_string()),
                })))
            } else {
                Err(ctx.error(
                    ErrorKind::Syntax,
                    "`HEALTHCHECK` expects `NONE` or `CMD <command>`",
                    at,
                    line_end,
                ))
            }
        }
        Keyword::Onbuild => {
            if rest.is_empty() {
                return Err(missing("an instruction to run later, e.g. `ONBUILD RUN make`"));
            }
            let inner = parse_instruction(ctx, at)?;
            Ok(Args::Onbuild(Box::new(inner)))
        }
        Keyword::Maintainer | Keyword::User | Keyword::Workdir | Keyword::Stopsignal => {
            if rest.is_empty() {
                return Err(missing("an argument"));
            }
            Ok(Args::Words(vec![Spanned { node: rest.to_string(), span: ctx.span(at, at + rest.len()) }]))
        }
        Keyword::From => {
            let words = split_words(ctx, rest, at)?;
            match words.len() {
                1 => {}
                3 if words[1].node.eq_ignore_ascii_case("as") => {}
                0 => return Err(missing("an image or stage name")),
                _ => {
                    return Err(ctx.error(
                        ErrorKind::Syntax,
                        "`FROM` expects `image [AS name]`",
                        at,
                        line_end,
                    ))
                }
            }
            Ok(Args::Words(words))
        }
        Keyword::Expose => {
            let words = split_words(ctx, rest, at)?;
            if words.is_empty() {
                return Err(missing("at least one port"));
            }
            Ok(Args::Words(words))
        }
    }
}

fn split_first_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// A JSON array of strings, or `None` (BuildKit then falls back to the shell form).
fn json_array(s: &str) -> Option<Vec<String>> {
    let t = s.trim();
    if !t.starts_with('[') || !t.ends_with(']') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

/// Splits on unquoted, unescaped whitespace, keeping quotes and escapes as written.
pub(crate) fn split_words(ctx: &Ctx<'_>, s: &str, at: usize) -> Result<Vec<Spanned<String>>, Error> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut start = None;
    let mut quote: Option<(char, usize)> = None;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some((q, _)) => {
                cur.push(c);
                if c == ctx.escape && q == '"' {
                    if let Some((_, n)) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None => {
                if c == ' ' || c == '\t' || c == '\r' {
                    if let Some(st) = start.take() {
                        words.push(Spanned {
                            node: std::mem::take(&mut cur),
                            span: ctx.span(at + st, at + i),
                        });
                    }
                    continue;
                }
                if start.is_none() {
                    start = Some(i);
                }
                cur.push(c);
                if c == ctx.escape {
                    if let Some((_, n)) = chars.next() {
                        cur.push(n);
                    }
                } else if c == '"' || c == '\'' {
                    quote = Some((c, i));
                }
            }
        }
    }
    if let Some((q, qi)) = quote {
        let what = if q == '"' { "double" } else { "single" };
        return Err(ctx.error(
            ErrorKind::Syntax,
            format!("Unterminated {what} quote: expected a closing `{q}`"),
            at + qi,
            at + s.len(),
        ));
    }
    if let Some(st) = start {
        words.push(Spanned { node: cur, span: ctx.span(at + st, at + s.len()) });
    }
    Ok(words)
}

/// ENV and LABEL: `k=v ...` or the legacy `k v` (one pair, value = rest of line).
fn parse_pairs(ctx: &Ctx<'_>, keyword: Keyword, rest: &str, at: usize) -> Result<Vec<KeyValue>, Error> {
    let words = split_words(ctx, rest, at)?;
    let first = &words[0];
    if !first.node.contains('=') {
        // Legacy form: `ENV key value with spaces`.
        let (key, after) = split_first_word(rest);
        let value = after.trim_start();
        if value.is_empty() {
            return Err(Error::new(
                ErrorKind::Syntax,
                format!(
                    "`{}` expects `key=value` or `key value`, found only `{key}`",
                    keyword.as_str()
                ),
                ctx.file,
                ctx.src,
                first.span,
            ));
        }
        return Ok(vec![KeyValue {
            key: key.to_string(),
            value: Some(value.to_string()),
            span: ctx.span(at, at + rest.len()),
        }]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some(i) = w.node.find('=') else {
            return Err(Error::new(
                ErrorKind::Syntax,
                format!("Expected `key=value` in `{}`, found `{}`", keyword.as_str(), w.node),
                ctx.file,
                ctx.src,
                w.span,
            ));
        };
        if i == 0 {
            return Err(Error::new(
                ErrorKind::Syntax,
                format!("`{}` names can not be blank", keyword.as_str()),
                ctx.file,
                ctx.src,
                w.span,
            ));
        }
        out.push(KeyValue {
            key: w.node[..i].to_string(),
            value: Some(w.node[i + 1..].to_string()),
            span: w.span,
        });
    }
    Ok(out)
}

/// Heredoc markers in an instruction line (RUN, COPY, ADD, and those under ONBUILD):
/// words matching `^\d*<<-?NAME$` outside quotes; a quoted NAME disables expansion.
pub(crate) fn heredoc_markers(text: &str, escape: char) -> Vec<Marker> {
    let t = text.trim_start();
    let (mut kw, mut after) = split_first_word(t);
    if kw.eq_ignore_ascii_case("ONBUILD") {
        let (k2, a2) = split_first_word(after);
        kw = k2;
        after = a2;
    }
    if !(kw.eq_ignore_ascii_case("RUN") || kw.eq_ignore_ascii_case("COPY") || kw.eq_ignore_ascii_case("ADD")) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for word in raw_words(after, escape) {
        let w = word.trim_start_matches(|c: char| c.is_ascii_digit());
        let Some(m) = w.strip_prefix("<<") else { continue };
        if word.starts_with('"') || word.starts_with('\'') {
            continue;
        }
        let (chomp, m) = match m.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, m),
        };
        if m.is_empty() || m.contains('<') {
            continue;
        }
        let (name, expand) = if (m.starts_with('"') && m.ends_with('"') && m.len() >= 2)
            || (m.starts_with('\'') && m.ends_with('\'') && m.len() >= 2)
        {
            (m[1..m.len() - 1].to_string(), false)
        } else {
            (m.to_string(), true)
        };
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.') {
            continue;
        }
        out.push((name, expand, chomp));
    }
    out
}

/// Whitespace-separated words with quotes kept (no error on unterminated quotes).
fn raw_words(s: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == ' ' || c == '\t' => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            None => {
                cur.push(c);
                if c == escape {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == '"' || c == '\'' {
                    quote = Some(c);
                }
            }
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}
