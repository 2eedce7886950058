//! One logical line → [`Instruction`]: the pest grammar in `line.pest` splits keyword, flags
//! and rest; the rest is then interpreted per instruction (JSON or shell form, key/value
//! pairs, words as written).

use pest::Parser;
use pest_derive::Parser;

use crate::ast::{Args, Flag, Heredoc, Instruction, KeyValue, Keyword, Span, Spanned};
use crate::error::{Error, ErrorKind};
use crate::scanner::{LogicalLine, Marker};

#[derive(Parser)]
#[grammar = "line.pest"]
struct LineParser;

/// What is needed to turn positions in a logical line into source spans.
pub(crate) struct Ctx<'a> {
    pub file: &'a str,
    pub src: &'a str,
    pub line: &'a LogicalLine<'a>,
    pub escape: char,
    /// The line's heredoc bodies, taken by the innermost instruction (an ONBUILD
    /// trigger's, if any).
    pub heredocs: std::cell::Cell<Vec<Heredoc>>,
}

impl Ctx<'_> {
    fn span(&self, start: usize, end: usize) -> Span {
        self.line.span(self.src, start, end)
    }

    fn error(&self, kind: ErrorKind, msg: impl Into<String>, start: usize, end: usize) -> Error {
        Error::new(kind, msg, self.file, self.src, self.span(start, end))
    }
}

/// A byte range `(start, end)` into a line.
type Range = (usize, usize);

/// The keyword-and-flags prefix of an instruction line, as byte ranges into the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Prefix {
    pub keyword: (usize, usize),
    /// (whole flag, name, value)
    pub flags: Vec<(Range, Range, Option<Range>)>,
    pub end: usize,
}

/// The prefix by the pest grammar `line.pest` (the executable specification); `Err` is the
/// byte position where no keyword could be found.
pub(crate) fn prefix_by_pest(text: &str) -> Result<Prefix, usize> {
    let mut pairs = LineParser::parse(Rule::line, text).map_err(|e| match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    })?;
    let line = pairs.next().expect("line rule always yields one pair");
    let end = line.as_span().end();
    let mut keyword = (0, 0);
    let mut flags = Vec::new();
    for p in line.into_inner() {
        let span = (p.as_span().start(), p.as_span().end());
        match p.as_rule() {
            Rule::keyword => keyword = span,
            Rule::flag => {
                let mut name = (0, 0);
                let mut value = None;
                for part in p.into_inner() {
                    let ps = (part.as_span().start(), part.as_span().end());
                    match part.as_rule() {
                        Rule::flag_name => name = ps,
                        Rule::flag_value => value = Some(ps),
                        other => unreachable!("{other:?} in prefix_by_pest"),
                    }
                }
                flags.push((span, name, value));
            }
            Rule::flags_end => {}
            other => unreachable!("{other:?} in prefix_by_pest"),
        }
    }
    Ok(Prefix { keyword, flags, end })
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t' || b == b'\r'
}

/// The same prefix as [`prefix_by_pest`], hand-written for speed: pest's per-rule overhead
/// made parsing ~10x slower than a hand-written parser. `None` means "not sure, ask pest";
/// the two are checked against each other on the corpus and by a property test.
pub(crate) fn prefix_fast(text: &str) -> Option<Prefix> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    let ks = i;
    while i < b.len() && b[i].is_ascii_alphabetic() {
        i += 1;
    }
    if i == ks {
        return None;
    }
    let keyword = (ks, i);
    let mut flags = Vec::new();
    loop {
        let save = i;
        let mut j = i;
        while j < b.len() && is_ws(b[j]) {
            j += 1;
        }
        if j == i || j + 1 >= b.len() || b[j] != b'-' || b[j + 1] != b'-' {
            i = save;
            break;
        }
        let after = j + 2;
        if after == b.len() || is_ws(b[after]) {
            i = after; // `--` ends the flags
            break;
        }
        if !b[after].is_ascii_alphabetic() {
            i = save;
            break;
        }
        let mut k = after + 1;
        while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'-' || b[k] == b'_') {
            k += 1;
        }
        let name = (after, k);
        let mut value = None;
        if k < b.len() && b[k] == b'=' {
            let vs = k + 1;
            let mut v = vs;
            loop {
                if v >= b.len() || is_ws(b[v]) {
                    break;
                }
                match b[v] {
                    b'"' => {
                        let mut q = v + 1;
                        let mut closed = None;
                        while q < b.len() {
                            match b[q] {
                                b'\\' => q += 2,
                                b'"' => {
                                    closed = Some(q);
                                    break;
                                }
                                _ => q += 1,
                            }
                        }
                        match closed {
                            Some(q) => v = q + 1,
                            None => break,
                        }
                    }
                    b'\'' => match b[v + 1..].iter().position(|&c| c == b'\'') {
                        Some(p) => v = v + 1 + p + 1,
                        None => break,
                    },
                    _ => v += 1,
                }
            }
            value = Some((vs, v));
            k = v;
        }
        flags.push(((j, k), name, value));
        i = k;
    }
    Some(Prefix { keyword, flags, end: i })
}

/// Parses the instruction in `ctx.line.text[offset..]` (offset > 0 for ONBUILD triggers).
pub(crate) fn parse_instruction(ctx: &Ctx<'_>, offset: usize) -> Result<Instruction, Error> {
    let text = &ctx.line.text[offset..];
    let prefix = match prefix_fast(text) {
        Some(p) => p,
        None => prefix_by_pest(text).map_err(|pos| {
            ctx.error(
                ErrorKind::Syntax,
                "Expected an instruction keyword such as `FROM` or `RUN`",
                offset + pos,
                offset + pos,
            )
        })?,
    };
    let (ks, ke) = prefix.keyword;
    let word = &text[ks..ke];
    let keyword = Keyword::parse(word).ok_or_else(|| {
        ctx.error(
            ErrorKind::UnknownInstruction,
            format!("Unknown instruction `{}`", word.to_ascii_uppercase()),
            offset + ks,
            offset + ke,
        )
    })?;
    let flags: Vec<Flag> = prefix
        .flags
        .iter()
        .map(|&((s, e), (ns, ne), value)| Flag {
            name: text[ns..ne].to_string(),
            value: value.map(|(vs, ve)| text[vs..ve].to_string()),
            span: ctx.span(offset + s, offset + e),
        })
        .collect();
    let prefix_end = prefix.end;
    for f in &flags {
        if crate::flags::flag_spec(keyword, &f.name).is_none() {
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
    let after = &text[prefix_end..];
    let rest_text = after.trim_start_matches([' ', '\t', '\r']);
    let rest_at = offset + prefix_end + (after.len() - rest_text.len());
    let rest_text = rest_text.trim_end();
    let line_end = offset + text.len();
    let kw_span_start = offset + text.len() - text.trim_start().len();
    let args = parse_args(ctx, keyword, rest_text, rest_at, kw_span_start, line_end)?;
    // Heredoc bodies belong to the innermost instruction (an ONBUILD trigger's, if any).
    let heredocs: Vec<Heredoc> = if matches!(args, Args::Onbuild(_)) { Vec::new() } else { ctx.heredocs.take() };
    Ok(Instruction {
        keyword,
        // The instruction starts at the start of its first physical line.
        span: Span { start: ctx.line.start, end: ctx.line.end, line: ctx.line.start_line, col: 1 },
        start_line: ctx.line.start_line,
        end_line: ctx.line.end_line,
        flags,
        args,
        heredocs,
    })
}

/// The rest of an instruction line after keyword and flags, with the places errors point
/// at.
struct Rest<'a, 'c> {
    ctx: &'a Ctx<'c>,
    keyword: Keyword,
    /// Trimmed text after the flags, starting at byte `at` of the line.
    text: &'a str,
    at: usize,
    /// Where the keyword starts and the line ends (for "requires …" errors).
    kw_at: usize,
    line_end: usize,
}

impl Rest<'_, '_> {
    /// `` `KEYWORD` requires {what} ``, pointing at the keyword.
    fn missing(&self, what: &str) -> Error {
        let message = format!("`{}` requires {what}", self.keyword.as_str());
        self.ctx.error(ErrorKind::Syntax, message, self.kw_at, self.line_end)
    }

    /// A syntax error pointing at the arguments.
    fn syntax(&self, message: &str) -> Error {
        self.ctx.error(ErrorKind::Syntax, message, self.at, self.line_end)
    }
}

fn parse_args(
    ctx: &Ctx<'_>,
    keyword: Keyword,
    rest: &str,
    at: usize,
    kw_at: usize,
    line_end: usize,
) -> Result<Args, Error> {
    let r = Rest { ctx, keyword, text: rest, at, kw_at, line_end };
    match keyword {
        Keyword::Run | Keyword::Cmd | Keyword::Entrypoint => command_args(&r),
        Keyword::Shell => match json_array(rest) {
            Some(v) if !v.is_empty() => Ok(Args::Exec(v)),
            _ => Err(r.syntax("`SHELL` requires the arguments in JSON form, e.g. `SHELL [\"/bin/sh\", \"-c\"]`")),
        },
        Keyword::Volume | Keyword::Copy | Keyword::Add => path_args(&r),
        Keyword::Env | Keyword::Label => {
            if rest.is_empty() {
                return Err(r.missing("at least one `key=value` pair"));
            }
            parse_pairs(ctx, keyword, rest, at).map(Args::Pairs)
        }
        Keyword::Arg => arg_args(&r),
        Keyword::Healthcheck => healthcheck_args(&r),
        Keyword::Onbuild => {
            if rest.is_empty() {
                return Err(r.missing("an instruction to run later, e.g. `ONBUILD RUN make`"));
            }
            let inner = parse_instruction(ctx, at)?;
            Ok(Args::Onbuild(Box::new(inner)))
        }
        Keyword::Maintainer | Keyword::User | Keyword::Workdir | Keyword::Stopsignal => {
            if rest.is_empty() {
                return Err(r.missing("an argument"));
            }
            Ok(Args::Words(vec![Spanned { node: rest.to_string(), span: ctx.span(at, at + rest.len()) }]))
        }
        Keyword::From => {
            let words = split_words(ctx, rest, at)?;
            match words.len() {
                1 => {}
                3 if words[1].node.eq_ignore_ascii_case("as") => {}
                0 => return Err(r.missing("an image or stage name")),
                _ => return Err(r.syntax("`FROM` expects `image [AS name]`")),
            }
            Ok(Args::Words(words))
        }
        Keyword::Expose => {
            let words = split_words(ctx, rest, at)?;
            if words.is_empty() {
                return Err(r.missing("at least one port"));
            }
            Ok(Args::Words(words))
        }
    }
}

/// RUN, CMD, ENTRYPOINT: the JSON (exec) form or the shell form.
fn command_args(r: &Rest) -> Result<Args, Error> {
    if r.text.is_empty() {
        if r.keyword == Keyword::Run {
            return Err(r.missing("a command to run"));
        }
        // `CMD` / `ENTRYPOINT` with nothing: an empty shell form, as BuildKit.
        return Ok(Args::Shell(String::new()));
    }
    Ok(match json_array(r.text) {
        Some(v) => Args::Exec(v),
        None => Args::Shell(r.text.to_string()),
    })
}

/// VOLUME (at least one path), COPY and ADD (at least a source and a destination).
fn path_args(r: &Rest) -> Result<Args, Error> {
    if let Some(v) = json_array(r.text) {
        return Ok(Args::Exec(v));
    }
    let words = split_words(r.ctx, r.text, r.at)?;
    if r.keyword == Keyword::Volume && words.is_empty() {
        return Err(r.missing("at least one path"));
    }
    if r.keyword != Keyword::Volume && words.len() < 2 {
        return Err(r.missing("at least two arguments: a source and a destination"));
    }
    Ok(Args::Words(words))
}

/// ARG: `name[=default]`..., no blank names.
fn arg_args(r: &Rest) -> Result<Args, Error> {
    let (ctx, rest, at) = (r.ctx, r.text, r.at);
    let mut pairs = Vec::new();
    let mut blank = None;
    each_word(ctx, rest, at, |st, e| {
        let w = &rest[st..e];
        let span = ctx.span(at + st, at + e);
        let (key, value) = match w.find('=') {
            Some(i) => (&w[..i], Some(w[i + 1..].to_string())),
            None => (w, None),
        };
        if key.is_empty() {
            blank.get_or_insert(span);
        }
        if blank.is_none() {
            pairs.push(KeyValue { key: key.to_string(), value, span });
        }
    })?;
    if let Some(span) = blank {
        return Err(Error::new(ErrorKind::Syntax, "`ARG` names can not be blank", ctx.file, ctx.src, span));
    }
    if pairs.is_empty() {
        return Err(r.missing("a name, e.g. `ARG VERSION=1.0`"));
    }
    Ok(Args::Pairs(pairs))
}

/// HEALTHCHECK: `NONE` or `CMD <command>`.
fn healthcheck_args(r: &Rest) -> Result<Args, Error> {
    let (first, after) = split_first_word(r.text);
    if first.eq_ignore_ascii_case("NONE") {
        if !after.trim().is_empty() {
            return Err(r.syntax("`HEALTHCHECK NONE` takes no arguments"));
        }
        return Ok(Args::HealthcheckNone);
    }
    if !first.eq_ignore_ascii_case("CMD") {
        return Err(r.syntax("`HEALTHCHECK` expects `NONE` or `CMD <command>`"));
    }
    let cmd = after.trim_start();
    if cmd.is_empty() {
        return Err(r.missing("a command after `CMD`"));
    }
    Ok(Args::HealthcheckCmd(Box::new(match json_array(cmd) {
        Some(v) => Args::Exec(v),
        None => Args::Shell(cmd.to_string()),
    })))
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
    json_array_fast(t).or_else(|| serde_json::from_str::<Vec<String>>(t).ok())
}

fn is_json_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The common case of [`json_array`] by hand: `t` is `[...]` holding strings without
/// escapes or control characters. `None` means "not sure, ask serde_json"; the two are
/// checked against each other by a property test.
fn json_array_fast(t: &str) -> Option<Vec<String>> {
    let b = t.as_bytes();
    let last = b.len().checked_sub(1)?;
    let skip_ws = |mut i: usize| {
        while i < b.len() && is_json_ws(b[i]) {
            i += 1;
        }
        i
    };
    let mut out = Vec::new();
    let mut i = skip_ws(1);
    if i == last {
        return Some(out);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let s = i + 1;
        let len = b[s..].iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        let e = s + len;
        if b[e] != b'"' {
            return None;
        }
        out.push(t[s..e].to_string());
        i = skip_ws(e + 1);
        match b.get(i) {
            Some(b',') => i = skip_ws(i + 1),
            Some(b']') if i == last => return Some(out),
            _ => return None,
        }
    }
}

/// Splits on unquoted, unescaped whitespace, keeping quotes and escapes as written.
pub(crate) fn split_words(ctx: &Ctx<'_>, s: &str, at: usize) -> Result<Vec<Spanned<String>>, Error> {
    let mut words = Vec::new();
    each_word(ctx, s, at, |st, e| words.push(Spanned { node: s[st..e].to_string(), span: ctx.span(at + st, at + e) }))?;
    Ok(words)
}

/// Bytes that end or interrupt a plain run of word bytes: blanks, quotes, both escape
/// characters.
static WORD_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = matches!(i as u8, b' ' | b'\t' | b'\r' | b'"' | b'\'' | b'\\' | b'`');
        i += 1;
    }
    t
};

/// Calls `word(start, end)` for each word of `s` in order (see [`split_words`]); an
/// unterminated quote anywhere is an error. Scans bytes: quotes, blanks and both escape
/// characters are ASCII.
fn each_word(ctx: &Ctx<'_>, s: &str, at: usize, mut word: impl FnMut(usize, usize)) -> Result<(), Error> {
    let b = s.as_bytes();
    let esc = ctx.escape as u8;
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let st = i;
        while i < b.len() {
            let c = b[i];
            if !WORD_SPECIAL[c as usize] {
                i += 1;
            } else if is_ws(c) {
                break;
            } else if c == esc {
                i += 2;
            } else if c == b'"' || c == b'\'' {
                let qi = i;
                i += 1;
                loop {
                    if i >= b.len() {
                        let what = if c == b'"' { "double" } else { "single" };
                        return Err(ctx.error(
                            ErrorKind::Syntax,
                            format!("Unterminated {what} quote: expected a closing `{}`", c as char),
                            at + qi,
                            at + s.len(),
                        ));
                    }
                    if b[i] == esc && c == b'"' {
                        i += 2;
                    } else if b[i] == c {
                        i += 1;
                        break;
                    } else {
                        i += 1;
                    }
                }
            } else {
                i += 1;
            }
        }
        word(st, i.min(b.len()));
    }
    Ok(())
}

/// ENV and LABEL: `k=v ...` or the legacy `k v` (one pair, value = rest of line). Errors
/// in the order of the former word list: an unterminated quote, then the first bad pair.
fn parse_pairs(ctx: &Ctx<'_>, keyword: Keyword, rest: &str, at: usize) -> Result<Vec<KeyValue>, Error> {
    let mut out = Vec::new();
    let mut first = None;
    let mut legacy = false;
    let mut bad = None;
    each_word(ctx, rest, at, |st, e| {
        let w = &rest[st..e];
        if first.is_none() {
            first = Some((st, e));
            legacy = !w.contains('=');
        }
        if legacy || bad.is_some() {
            return;
        }
        let span = ctx.span(at + st, at + e);
        let message = match w.find('=') {
            Some(0) => format!("`{}` names can not be blank", keyword.as_str()),
            Some(i) => {
                out.push(KeyValue { key: w[..i].to_string(), value: Some(w[i + 1..].to_string()), span });
                return;
            }
            None => format!("Expected `key=value` in `{}`, found `{w}`", keyword.as_str()),
        };
        bad = Some(Error::new(ErrorKind::Syntax, message, ctx.file, ctx.src, span));
    })?;
    if let Some(e) = bad {
        return Err(e);
    }
    if !legacy {
        return Ok(out);
    }
    // Legacy form: `ENV key value with spaces`.
    let (key, after) = split_first_word(rest);
    let value = after.trim_start();
    if value.is_empty() {
        let (fs, fe) = first.expect("a legacy pair has a first word");
        return Err(Error::new(
            ErrorKind::Syntax,
            format!("`{}` expects `key=value` or `key value`, found only `{key}`", keyword.as_str()),
            ctx.file,
            ctx.src,
            ctx.span(at + fs, at + fe),
        ));
    }
    Ok(vec![KeyValue { key: key.to_string(), value: Some(value.to_string()), span: ctx.span(at, at + rest.len()) }])
}

/// Heredoc markers in an instruction line (RUN, COPY, ADD, and those under ONBUILD):
/// words matching `^\d*<<-?NAME$` outside quotes; a quoted NAME disables expansion.
pub(crate) fn heredoc_markers(text: &str, escape: char) -> Vec<Marker> {
    // Most lines are ruled out by their first byte: an ASCII letter that starts none of
    // RUN, COPY, ADD, ONBUILD.
    if let Some(&b0) = text.as_bytes().first() {
        if b0.is_ascii() && !(b0 as char).is_whitespace() && !b"rRcCaAoO".contains(&b0) {
            return Vec::new();
        }
    }
    let b = text.as_bytes();
    if !memchr::memchr_iter(b'<', b).any(|i| b.get(i + 1) == Some(&b'<')) {
        return Vec::new();
    }
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
        let Some(m) = w.strip_prefix("<<") else {
            continue;
        };
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

/// Whitespace-separated words with quotes kept (no error on unterminated quotes); each
/// word is a slice of `s`.
fn raw_words(s: &str, escape: char) -> Vec<&str> {
    let mut words = Vec::new();
    let mut start = None;
    let mut quote: Option<char> = None;
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
            }
            None if c == ' ' || c == '\t' => {
                if let Some(st) = start.take() {
                    words.push(&s[st..i]);
                }
            }
            None => {
                start.get_or_insert(i);
                if c == escape {
                    chars.next();
                } else if c == '"' || c == '\'' {
                    quote = Some(c);
                }
            }
        }
    }
    if let Some(st) = start {
        words.push(&s[st..]);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The fast path either defers to pest or agrees with it exactly.
    fn agree(text: &str) {
        if let Some(fast) = prefix_fast(text) {
            assert_eq!(Ok(fast), prefix_by_pest(text), "prefix of {text:?}");
        }
    }

    #[test]
    fn fast_prefix_agrees_with_pest_on_examples() {
        for t in [
            "RUN echo hi",
            "  copy --from=build --chown=1:1 a b",
            "RUN --mount=type=cache,target=/x -- --not-a-flag",
            "RUN --",
            "RUN --network=none",
            "COPY --chown=\"a b\" x y",
            "COPY --chown=\"a\\\"b\" x y",
            "COPY --chown=\"unterminated x y",
            "COPY --chown='a b' x y",
            "COPY --chown='a x y",
            "COPY --a\"b x",
            "RUN[\"a\"]",
            "RUN --1 x",
            "ADD --link",
            "X",
        ] {
            agree(t);
        }
        assert!(prefix_fast("--flag RUN").is_none());
        assert!(prefix_by_pest("--flag RUN").is_err());
    }

    /// The JSON fast path either defers to serde_json or agrees with it exactly.
    fn json_agree(t: &str) {
        if let Some(fast) = json_array_fast(t) {
            assert_eq!(Some(fast), serde_json::from_str::<Vec<String>>(t).ok(), "{t:?}");
        }
    }

    #[test]
    fn json_fast_path_takes_plain_arrays() {
        for t in ["[]", "[ ]", "[\"a\"]", "[ \"/bin/sh\" ,\t\"-c\", \"é x\" ]"] {
            assert!(json_array_fast(t).is_some(), "{t:?}");
            json_agree(t);
        }
        for t in ["[\"a\\nb\"]", "[\"a\",]", "[,]", "[\"a\" \"b\"]", "[1]", "[\"a\"]]", "[\"a\tb\"]"] {
            assert!(json_array_fast(t).is_none(), "{t:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]
        #[test]
        fn json_fast_path_agrees_with_serde(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "\"", "a", "é", ",", " ", "\t", "\n", "\\", "\\n", "\\u00e9", "[", "]", "1", "\u{1}",
                ]),
                0..12,
            )
        ) {
            json_agree(&format!("[{}]", parts.concat()));
        }

        #[test]
        fn fast_prefix_agrees_with_pest(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "RUN", "copy", " ", "\t", "--", "-", "=", "\"", "'", "\\", "a", "mount", "x y", "1", "_",
                ]),
                0..14,
            )
        ) {
            agree(&parts.concat());
        }
    }
}
