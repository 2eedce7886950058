//! Word expansion as BuildKit's shell lexer does it (`ProcessWord` / `ProcessWords`):
//! single quotes are literal, double quotes expand `$`, the escape character escapes, and
//! `$v ${v} ${v:-w} ${v-w} ${v:+w} ${v+w} ${v:?m} ${v?m} ${v#p} ${v##p} ${v%p} ${v%%p}
//! ${v/p/r} ${v//p/r}` substitute. Hand-written rather than pest: the escape character is
//! chosen per file (`# escape=`), and the lexer is a small state machine.
//!
//! Work is bounded on any input: `${…}` nests at most [`MAX_NESTING`] deep (the lexer
//! recurses once per level) and an expanded word is at most [`MAX_WORD_LEN`] bytes, so
//! `ARG a2=${a1}${a1}` chains fail at the line that crosses the limit instead of doubling
//! memory until the machine gives up. Patterns (`${v%%p}`, `${v//p/r}`) run as a set of
//! positions over the pattern, linear in the value per match attempt, and a substitution
//! that would need more than [`MAX_MATCH_STEPS`] is an error naming it.

use std::fmt;

/// How deep `${…}` substitutions may nest (`${a:-${b:-${c}}}` is 3 deep).
pub const MAX_NESTING: usize = 128;

/// The largest expanded word, in bytes (1 MiB). A single argument or environment string
/// handed to `execve` is limited to 128 KiB on Linux anyway; the rest of the room is for
/// heredoc bodies and labels.
pub const MAX_WORD_LEN: usize = 1 << 20;

/// Why a word could not be expanded. `offset` is a char offset within the word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    pub message: String,
    pub offset: usize,
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExpandError {}

/// Expands one word (quotes removed, variables substituted, escapes applied).
/// `lookup` returns the value of a variable or `None` when it is unset.
pub fn expand_word(word: &str, escape: char, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    let mut lx = Lexer::new(word, escape, lookup);
    let (s, _) = lx.process_stop_on(None, false)?;
    Ok(s)
}

/// Expands and splits into fields the way BuildKit's `ProcessWords` does: whitespace
/// outside quotes separates words, and so does whitespace inside the value of an unquoted
/// `$var`; quoted text never splits.
pub fn expand_words(
    text: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ExpandError> {
    let mut lx = Lexer::new(text, escape, lookup);
    let (_, words) = lx.process_stop_on(None, false)?;
    Ok(words)
}

/// Collects words: `add_char` splits on whitespace, `add_raw` never does.
#[derive(Default)]
struct Words {
    words: Vec<String>,
    word: String,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw(c);
        }
    }
    fn add_raw(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }
    fn add_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_raw(c));
        // An empty quoted string still makes a word: `""`.
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if self.in_word {
            self.words.push(self.word);
        }
        self.words
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// How many `${` are open around the current position.
    depth: usize,
}

impl<'a> Lexer<'a> {
    fn new(s: &str, escape: char, lookup: &'a dyn Fn(&str) -> Option<String>) -> Lexer<'a> {
        Lexer { chars: s.chars().collect(), pos: 0, escape, lookup, depth: 0 }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn err(&self, message: impl Into<String>) -> ExpandError {
        ExpandError { message: message.into(), offset: self.pos }
    }

    fn too_expensive(&self, len: usize) -> ExpandError {
        self.err(format!(
            "Matching this pattern against a {len}-character value needs more than {MAX_MATCH_STEPS} steps; \
             use a pattern that does not start with `*`, or a shorter value"
        ))
    }

    /// Fails once a word being built grows past [`MAX_WORD_LEN`].
    fn check_len(&self, len: usize) -> Result<(), ExpandError> {
        if len > MAX_WORD_LEN {
            return Err(self.err(format!(
                "The expanded word is longer than {MAX_WORD_LEN} bytes (variables expanding into each other?)"
            )));
        }
        Ok(())
    }

    /// Reads until `stop` (consumed) or the end. With `raw_escapes` the escape character
    /// is kept in the result (pattern contexts).
    fn process_stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> Result<(String, Vec<String>), ExpandError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match c {
                '\'' => {
                    let s = self.single_quote()?;
                    words.add_raw_str(&s);
                    result.push_str(&s);
                }
                '"' => {
                    let s = self.double_quote()?;
                    self.check_len(result.len() + s.len())?;
                    words.add_raw_str(&s);
                    result.push_str(&s);
                }
                '$' => {
                    let s = self.dollar()?;
                    self.check_len(result.len() + s.len())?;
                    words.add_str(&s);
                    result.push_str(&s);
                }
                _ => {
                    self.next();
                    if c == self.escape {
                        if raw_escapes {
                            words.add_raw(c);
                            result.push(c);
                        }
                        match self.next() {
                            None => break,
                            Some(n) => {
                                words.add_raw(n);
                                result.push(n);
                            }
                        }
                    } else {
                        words.add_char(c);
                        result.push(c);
                    }
                    self.check_len(result.len())?;
                }
            }
        }
        if let Some(s) = stop {
            return Err(self.err(format!("Unexpected end of word while looking for a matching `{s}`")));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Result<String, ExpandError> {
        let start = self.pos;
        self.next();
        let mut s = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(ExpandError {
                        message: "Unexpected end of statement while looking for matching single-quote".into(),
                        offset: start,
                    })
                }
                Some('\'') => return Ok(s),
                Some(c) => s.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, ExpandError> {
        let start = self.pos;
        self.next();
        let mut s = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(ExpandError {
                        message: "Unexpected end of statement while looking for matching double-quote".into(),
                        offset: start,
                    })
                }
                Some('"') => {
                    self.next();
                    return Ok(s);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    self.check_len(s.len() + v.len())?;
                    s.push_str(&v);
                }
                Some(c) => {
                    self.next();
                    if c == self.escape {
                        match self.peek() {
                            None => {}
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.next();
                                s.push(n);
                            }
                            Some(_) => s.push(c),
                        }
                    } else {
                        s.push(c);
                    }
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(|d| d.is_ascii_digit()) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                name.push(c);
                return name;
            }
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            self.next();
            name.push(c);
        }
        name
    }

    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    fn dollar(&mut self) -> Result<String, ExpandError> {
        let start = self.pos;
        self.next(); // `$`
        match self.peek() {
            None => return Ok("$".into()),
            Some('{') => {}
            Some(_) => {
                let name = self.name();
                if name.is_empty() {
                    return Ok("$".into());
                }
                return Ok(self.get(&name).unwrap_or_default());
            }
        }
        if self.depth >= MAX_NESTING {
            return Err(ExpandError {
                message: format!("Substitutions nest more than {MAX_NESTING} deep"),
                offset: start,
            });
        }
        self.depth += 1;
        let r = self.braced(start);
        self.depth -= 1;
        r
    }

    /// `${…}` after the `$` at `start`.
    fn braced(&mut self, start: usize) -> Result<String, ExpandError> {
        self.next(); // `{`
        let name = self.name();
        let missing_brace =
            |lx: &Lexer<'_>| ExpandError { message: "Bad substitution: missing `}`".into(), offset: lx.pos.max(start) };
        let Some(ch) = self.peek() else {
            return Err(missing_brace(self));
        };
        if name.is_empty() {
            return Err(ExpandError {
                message: "Bad substitution: expected a variable name after `${`".into(),
                offset: start,
            });
        }
        match ch {
            '}' => {
                self.next();
                Ok(self.get(&name).unwrap_or_default())
            }
            ':' => {
                self.next();
                let modifier = self.next().ok_or_else(|| missing_brace(self))?;
                let (word, _) = self.word_until_brace()?;
                let value = self.get(&name);
                let set = value.is_some();
                let value = value.unwrap_or_default();
                match modifier {
                    '+' => Ok(if value.is_empty() { value } else { word }),
                    '-' => Ok(if value.is_empty() { word } else { value }),
                    '?' => {
                        if !set {
                            let w = if word.is_empty() { "is not allowed to be unset".into() } else { word };
                            return Err(ExpandError { message: format!("{name}: {w}"), offset: start });
                        }
                        if value.is_empty() {
                            let w = if word.is_empty() { "is not allowed to be empty".into() } else { word };
                            return Err(ExpandError { message: format!("{name}: {w}"), offset: start });
                        }
                        Ok(value)
                    }
                    other => Err(ExpandError {
                        message: format!("Unsupported modifier `{other}` in substitution"),
                        offset: start,
                    }),
                }
            }
            '+' | '-' | '?' => {
                self.next();
                let (word, _) = self.word_until_brace()?;
                let value = self.get(&name);
                match (ch, value) {
                    ('+', Some(_)) => Ok(word),
                    ('+', None) => Ok(String::new()),
                    ('-', Some(v)) => Ok(v),
                    ('-', None) => Ok(word),
                    (_, Some(v)) => Ok(v),
                    (_, None) => {
                        let w = if word.is_empty() { "is not allowed to be unset".into() } else { word };
                        Err(ExpandError { message: format!("{name}: {w}"), offset: start })
                    }
                }
            }
            '#' | '%' => {
                self.next();
                let longest = self.peek() == Some(ch);
                if longest {
                    self.next();
                }
                let (pattern, _) = self.pattern_until('}')?;
                let value: Vec<char> = self.get(&name).unwrap_or_default().chars().collect();
                let pat: Vec<char> = pattern.chars().collect();
                trim(&value, &pat, ch == '#', longest, self.escape).map_err(|_| self.too_expensive(value.len()))
            }
            '/' => {
                self.next();
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let (pattern, closed_by_brace) = self.pattern_until_either()?;
                let replacement = if closed_by_brace { String::new() } else { self.word_until_brace()?.0 };
                let value: Vec<char> = self.get(&name).unwrap_or_default().chars().collect();
                let pat: Vec<char> = pattern.chars().collect();
                replace(&value, &pat, &replacement, all, self.escape).map_err(|e| match e {
                    ReplaceError::TooLong => self.err(format!(
                        "The expanded word is longer than {MAX_WORD_LEN} bytes (a replacement repeated too often)"
                    )),
                    ReplaceError::TooExpensive => self.too_expensive(value.len()),
                })
            }
            other => {
                Err(ExpandError { message: format!("Unsupported modifier `{other}` in substitution"), offset: start })
            }
        }
    }

    fn word_until_brace(&mut self) -> Result<(String, Vec<String>), ExpandError> {
        let r = self.process_stop_on(Some('}'), false);
        r.map_err(|mut e| {
            if self.peek().is_none() {
                e.message = "Bad substitution: missing `}`".into();
            }
            e
        })
    }

    fn pattern_until(&mut self, stop: char) -> Result<(String, Vec<String>), ExpandError> {
        self.process_stop_on(Some(stop), true).map_err(|mut e| {
            e.message = "Bad substitution: missing `}`".into();
            e
        })
    }

    /// For `${v/p/r}`: the pattern ends at `/` (a replacement follows) or `}` (none).
    fn pattern_until_either(&mut self) -> Result<(String, bool), ExpandError> {
        let save = self.pos;
        // Find which comes first at nesting level 0 by scanning with the real lexer.
        let mut depth = 0usize;
        let mut i = self.pos;
        let mut stop = '}';
        while i < self.chars.len() {
            let c = self.chars[i];
            if c == self.escape {
                i += 2;
                continue;
            }
            if c == '$' && self.chars.get(i + 1) == Some(&'{') {
                depth += 1;
                i += 2;
                continue;
            }
            if c == '}' {
                if depth == 0 {
                    stop = '}';
                    break;
                }
                depth -= 1;
            }
            if c == '/' && depth == 0 {
                stop = '/';
                break;
            }
            i += 1;
        }
        self.pos = save;
        let (p, _) = self.pattern_until(stop)?;
        Ok((p, stop == '}'))
    }
}

/// One element of a `${v#p}` / `${v/p/r}` pattern. Each matches one character except
/// `Star`, so a pattern is a sequence, and the reversed sequence matches the reversed
/// strings (which is how suffixes are trimmed).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    Star,
    Any,
    Lit(char),
    /// A `[...]` class: its start in the pattern (checked with [`class`]).
    Class(usize),
}

/// The pattern as tokens: `*`, `?`, a well-formed `[...]` class, the escape character
/// quoting the next one; anything else (an unclosed `[`, a trailing escape) is literal.
fn tokens(pat: &[char], escape: char) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut p = 0;
    while p < pat.len() {
        let c = pat[p];
        p += 1;
        out.push(match c {
            '*' => Tok::Star,
            '?' => Tok::Any,
            '[' => match class(&pat[p - 1..], '\0') {
                Some((_, len)) => {
                    p += len - 1;
                    Tok::Class(p - len)
                }
                None => Tok::Lit('['),
            },
            c if c == escape && p < pat.len() => {
                p += 1;
                Tok::Lit(pat[p - 1])
            }
            c => Tok::Lit(c),
        });
    }
    out
}

/// Steps (characters × pattern positions) one `${…}` may spend matching; past it the
/// substitution is an error rather than minutes of work (a `${v//*x/y}` over a 1 MiB
/// value with no `x` would take 5·10¹¹).
pub const MAX_MATCH_STEPS: u64 = 50_000_000;

/// A glob pattern run as a set of positions over the tokens (Thompson's construction):
/// one pass over a string gives every prefix length that matches, in O(len × tokens).
struct Matcher<'a> {
    toks: Vec<Tok>,
    pat: &'a [char],
    steps: u64,
}

#[derive(Debug)]
struct TooExpensive;

impl<'a> Matcher<'a> {
    fn new(pat: &'a [char], escape: char, reversed: bool) -> Matcher<'a> {
        let mut toks = tokens(pat, escape);
        if reversed {
            toks.reverse();
        }
        Matcher { toks, pat, steps: 0 }
    }

    fn close(&self, set: &mut [bool]) {
        for j in 0..self.toks.len() {
            if set[j] && self.toks[j] == Tok::Star {
                set[j + 1] = true;
            }
        }
    }

    /// The lengths of the prefixes of `s` the whole pattern matches, ascending; stops
    /// after the first when `shortest`.
    fn prefixes(&mut self, s: impl Iterator<Item = char>, shortest: bool) -> Result<Vec<usize>, TooExpensive> {
        let n = self.toks.len();
        let mut set = vec![false; n + 1];
        set[0] = true;
        self.close(&mut set);
        let mut out = Vec::new();
        if set[n] {
            out.push(0);
            if shortest {
                return Ok(out);
            }
        }
        let mut next = vec![false; n + 1];
        for (i, c) in s.enumerate() {
            self.steps += n as u64 + 1;
            if self.steps > MAX_MATCH_STEPS {
                return Err(TooExpensive);
            }
            next.iter_mut().for_each(|b| *b = false);
            let mut any = false;
            for (j, tok) in self.toks.iter().enumerate() {
                if !set[j] {
                    continue;
                }
                let to = match *tok {
                    Tok::Star => j,
                    Tok::Any => j + 1,
                    Tok::Lit(l) if l == c => j + 1,
                    Tok::Class(at) if class(&self.pat[at..], c).is_some_and(|(m, _)| m) => j + 1,
                    _ => continue,
                };
                next[to] = true;
                any = true;
            }
            if !any {
                break;
            }
            std::mem::swap(&mut set, &mut next);
            self.close(&mut set);
            if set[n] {
                out.push(i + 1);
                if shortest {
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// A `[...]` class at the start of `pat`: (does `c` match, length of the class).
fn class(pat: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pat.get(1), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < pat.len() {
        if pat[i] == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if i + 2 < pat.len() && pat[i + 1] == '-' && pat[i + 2] != ']' {
            if pat[i] <= c && c <= pat[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if pat[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

/// `${v#p}` `${v##p}` (prefix) and `${v%p}` `${v%%p}` (suffix, matched reversed).
fn trim(value: &[char], pat: &[char], prefix: bool, longest: bool, escape: char) -> Result<String, TooExpensive> {
    let mut m = Matcher::new(pat, escape, !prefix);
    let lens = if prefix {
        m.prefixes(value.iter().copied(), !longest)?
    } else {
        m.prefixes(value.iter().rev().copied(), !longest)?
    };
    let k = if longest { lens.last() } else { lens.first() };
    Ok(match (k, prefix) {
        (None, _) => value.iter().collect(),
        (Some(&k), true) => value[k..].iter().collect(),
        (Some(&k), false) => value[..value.len() - k].iter().collect(),
    })
}

/// Why `${v/p/r}` gave no word.
#[derive(Debug)]
enum ReplaceError {
    TooLong,
    TooExpensive,
}

/// `${v/p/r}` `${v//p/r}`: the leftmost, longest non-empty match, once or throughout.
fn replace(value: &[char], pat: &[char], rep: &str, all: bool, escape: char) -> Result<String, ReplaceError> {
    let mut out = String::new();
    let mut i = 0;
    let mut replaced = false;
    let mut m = Matcher::new(pat, escape, false);
    while i < value.len() {
        if (all || !replaced) && !pat.is_empty() {
            let lens = m.prefixes(value[i..].iter().copied(), false).map_err(|_| ReplaceError::TooExpensive)?;
            if let Some(&len) = lens.last().filter(|&&l| l > 0) {
                if out.len() + rep.len() > MAX_WORD_LEN {
                    return Err(ReplaceError::TooLong);
                }
                out.push_str(rep);
                i += len;
                replaced = true;
                continue;
            }
        }
        out.push(value[i]);
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "v" => Some("hello.tar.gz".into()),
            "empty" => Some(String::new()),
            "sp" => Some("a b".into()),
            "path" => Some("/usr/local/bin".into()),
            _ => None,
        }
    }

    fn x(word: &str) -> String {
        expand_word(word, '\\', &env).unwrap()
    }

    #[test]
    fn substitutions() {
        assert_eq!(x("$v"), "hello.tar.gz");
        assert_eq!(x("${v}x"), "hello.tar.gzx");
        assert_eq!(x("${unset:-dflt}"), "dflt");
        assert_eq!(x("${empty:-dflt}"), "dflt");
        assert_eq!(x("${empty-dflt}"), "");
        assert_eq!(x("${unset-dflt}"), "dflt");
        assert_eq!(x("${v:+alt}"), "alt");
        assert_eq!(x("${empty:+alt}"), "");
        assert_eq!(x("${empty+alt}"), "alt");
        assert_eq!(x("${unset+alt}"), "");
        assert_eq!(x("${v#*.}"), "tar.gz");
        assert_eq!(x("${v##*.}"), "gz");
        assert_eq!(x("${v%.*}"), "hello.tar");
        assert_eq!(x("${v%%.*}"), "hello");
        assert_eq!(x("${path/local/opt}"), "/usr/opt/bin");
        assert_eq!(x("${path//\\//:}"), ":usr:local:bin");
        assert_eq!(x("${v/l}"), "helo.tar.gz");
        assert_eq!(x("${v//l}"), "heo.tar.gz");
        assert_eq!(x("${unset:-$v}"), "hello.tar.gz");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(x("'$v'"), "$v");
        assert_eq!(x("\"$v\""), "hello.tar.gz");
        assert_eq!(x("\\$v"), "$v");
        assert_eq!(x("\"a\\\"b\""), "a\"b");
        assert_eq!(x("\"a\\nb\""), "a\\nb");
        assert_eq!(x("a\\ b"), "a b");
        assert_eq!(expand_word("a`$v", '`', &env).unwrap(), "a$v");
        assert_eq!(x("$"), "$");
        assert_eq!(x("$1"), "");
    }

    #[test]
    fn errors() {
        let e = expand_word("${unset:?must be set}", '\\', &env).unwrap_err();
        assert_eq!(e.message, "unset: must be set");
        let e = expand_word("${empty:?}", '\\', &env).unwrap_err();
        assert_eq!(e.message, "empty: is not allowed to be empty");
        assert_eq!(x("${empty?}"), "");
        assert!(expand_word("${unset?}", '\\', &env).is_err());
        assert!(expand_word("${v", '\\', &env).unwrap_err().message.contains("missing `}`"));
        assert!(expand_word("'abc", '\\', &env).unwrap_err().message.contains("matching single-quote"));
        assert!(expand_word("\"abc", '\\', &env).unwrap_err().message.contains("matching double-quote"));
        assert!(expand_word("${}", '\\', &env).is_err());
        assert!(expand_word("${v:x}", '\\', &env).unwrap_err().message.contains("Unsupported modifier"));
    }

    #[test]
    fn issue13_deep_nesting_is_an_error_not_a_stack_overflow() {
        let nest = |n: usize| (0..n).rev().fold("x".to_string(), |w, i| format!("${{a{i}:-{w}}}"));
        assert_eq!(x(&nest(MAX_NESTING)), "x");
        let e = expand_word(&nest(20_000), '\\', &env).unwrap_err();
        assert!(e.message.contains("nest more than"), "{}", e.message);
        let quoted = (0..20_000).fold("x".to_string(), |w, _| format!("\"${{u:-{w}}}\""));
        assert!(expand_word(&quoted, '\\', &env).is_err());
    }

    /// Trimming and replacing over a value near the word limit is linear per attempt
    /// (these took minutes with a backtracking match per candidate), and a substitution
    /// that would still be quadratic is an error, not a hang.
    #[test]
    fn issue13_patterns_over_a_large_value_are_bounded() {
        let big = "ab".repeat(MAX_WORD_LEN / 4) + ".tar.gz";
        let lookup = |n: &str| (n == "big").then(|| big.clone());
        let x = |w: &str| expand_word(w, '\\', &lookup);
        assert_eq!(x("${big%%.*}").unwrap().len(), MAX_WORD_LEN / 2);
        assert_eq!(x("${big%.*}").unwrap(), big[..big.len() - 3]);
        assert_eq!(x("${big##*a}").unwrap(), "r.gz");
        assert_eq!(x("${big#*.}").unwrap(), "tar.gz");
        assert_eq!(x("${big//ab/}").unwrap(), ".tar.gz");
        assert_eq!(x("${big/*.t/X}").unwrap(), "Xar.gz");
        let e = x("${big//*x/y}").unwrap_err();
        assert!(e.message.contains("steps"), "{}", e.message);
    }

    /// The same results as a plain backtracking matcher, on every small case.
    fn reference_glob(p: &[Tok], pat: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(Tok::Star) => (0..=s.len()).any(|k| reference_glob(&p[1..], pat, &s[k..])),
            Some(t) => {
                let ok = match (t, s.first()) {
                    (_, None) => false,
                    (Tok::Any, _) => true,
                    (Tok::Lit(l), Some(c)) => l == c,
                    (Tok::Class(at), Some(&c)) => class(&pat[*at..], c).is_some_and(|(m, _)| m),
                    (Tok::Star, _) => unreachable!(),
                };
                ok && reference_glob(&p[1..], pat, &s[1..])
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn matcher_agrees_with_backtracking(pat in "[ab*?\\[\\]!\\\\]{0,6}", value in "[ab\\[]{0,8}") {
            let pat: Vec<char> = pat.chars().collect();
            let value: Vec<char> = value.chars().collect();
            let toks = tokens(&pat, '\\');
            let want: Vec<usize> = (0..=value.len()).filter(|&k| reference_glob(&toks, &pat, &value[..k])).collect();
            let mut m = Matcher::new(&pat, '\\', false);
            proptest::prop_assert_eq!(m.prefixes(value.iter().copied(), false).unwrap(), want.clone());
            let rtoks: Vec<Tok> = toks.iter().rev().copied().collect();
            let rvalue: Vec<char> = value.iter().rev().copied().collect();
            let want_suffix: Vec<usize> = (0..=value.len()).filter(|&k| reference_glob(&toks, &pat, &value[value.len() - k..])).collect();
            let got_suffix: Vec<usize> = (0..=value.len()).filter(|&k| reference_glob(&rtoks, &pat, &rvalue[..k])).collect();
            proptest::prop_assert_eq!(got_suffix, want_suffix);
        }
    }

    #[test]
    fn issue13_doubling_words_stop_at_the_limit() {
        let big = "ab".repeat(MAX_WORD_LEN / 4);
        let lookup = |n: &str| (n == "big").then(|| big.clone());
        assert_eq!(expand_word("${big}${big}", '\\', &lookup).unwrap().len(), MAX_WORD_LEN);
        let e = expand_word("${big}${big}x", '\\', &lookup).unwrap_err();
        assert!(e.message.contains("longer than"), "{}", e.message);
        assert!(expand_word("\"$big$big$big\"", '\\', &lookup).is_err());
        assert!(expand_word("${big//?/$big}", '\\', &lookup).is_err());
    }

    #[test]
    fn words_split_like_buildkit() {
        let w = expand_words("a \"b c\" $sp 'd e' \"\"", '\\', &env).unwrap();
        assert_eq!(w, vec!["a", "b c", "a", "b", "d e", ""]);
        assert_eq!(expand_words("  ", '\\', &env).unwrap(), Vec::<String>::new());
    }
}
