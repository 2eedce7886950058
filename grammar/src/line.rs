//! One logical line → [`Instruction`]: the keyword and flags are split off (`prefix`: the
//! pest grammar in `line.pest` and its fast path); the rest is then interpreted per instruction (JSON or shell form, key/value
//! pairs, words as written).

use crate::ast::{Args, Flag, Heredoc, Instruction, KeyValue, Keyword, Span, Spanned};
use crate::error::{Error, ErrorKind};
use crate::prefix::{is_ws, prefix_by_pest, prefix_fast};
use crate::scanner::{LogicalLine, Marker};

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
                crate::flags::refused_flag_message(keyword, &f.name),
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
        Keyword::Shell => match json_array(rest).map_err(|m| r.syntax(m))? {
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
    Ok(match json_array(r.text).map_err(|m| r.syntax(m))? {
        Some(v) => Args::Exec(v),
        None => Args::Shell(r.text.to_string()),
    })
}

/// VOLUME (at least one path), COPY and ADD (at least a source and a destination).
fn path_args(r: &Rest) -> Result<Args, Error> {
    if let Some(v) = json_array(r.text).map_err(|m| r.syntax(m))? {
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
    each_word(ctx, rest, |st, e| {
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
    });
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
    Ok(Args::HealthcheckCmd(Box::new(match json_array(cmd).map_err(|m| r.syntax(m))? {
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

/// BuildKit's error for a JSON array holding something else than strings.
const NOT_STRINGS: &str = "When using JSON array syntax, arrays must be comprised of strings only";

/// A JSON array of strings, or `None` when the text is not a JSON array (BuildKit then
/// falls back to the shell form); `Err` for a JSON array of something else (`["a", ["b"]]`),
/// which BuildKit refuses.
fn json_array(s: &str) -> Result<Option<Vec<String>>, &'static str> {
    let t = s.trim();
    if !t.starts_with('[') || !t.ends_with(']') {
        return Ok(None);
    }
    if let Some(v) = json_array_fast(t) {
        return Ok(Some(v));
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(t) {
        Err(_) => Ok(None),
        Ok(items) => items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err(NOT_STRINGS),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
    }
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
    each_word(ctx, s, |st, e| words.push(Spanned { node: s[st..e].to_string(), span: ctx.span(at + st, at + e) }));
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
/// unterminated quote ends with the text. Scans bytes: quotes, blanks and both escape
/// characters are ASCII.
fn each_word(ctx: &Ctx<'_>, s: &str, mut word: impl FnMut(usize, usize)) {
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
                i += 1;
                loop {
                    // An unterminated quote runs to the end of the line, as in BuildKit's
                    // parser; the compile step's expansion reports it.
                    if i >= b.len() {
                        break;
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
}

/// ENV and LABEL: `k=v ...` or the legacy `k v` (one pair, value = rest of line). Errors
/// in the order of the former word list: an unterminated quote, then the first bad pair.
fn parse_pairs(ctx: &Ctx<'_>, keyword: Keyword, rest: &str, at: usize) -> Result<Vec<KeyValue>, Error> {
    let mut out = Vec::new();
    let mut first = None;
    let mut legacy = false;
    let mut bad = None;
    each_word(ctx, rest, |st, e| {
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
    });
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
    }
}
