//! `.dockerignore`-style patterns: Go `filepath.Match` syntax per path segment, `**` for any
//! number of segments, `!` to re-include; later patterns win; a matched directory covers
//! everything below it.

/// One compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub negate: bool,
    segments: Vec<String>,
}

/// Why a pattern is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Invalid pattern `{}`", self.0)
    }
}

impl std::error::Error for PatternError {}

/// Splits a slash path into clean segments: no empty, `.` segments; `..` pops.
pub fn clean_segments(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s.to_string()),
        }
    }
    out
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let t = text.trim();
        let (negate, body) = match t.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, t),
        };
        let segments = clean_segments(body);
        for s in &segments {
            if !segment_is_valid(s) {
                return Err(PatternError(text.to_string()));
            }
        }
        Ok(Pattern { negate, segments })
    }

    /// Does the pattern match the path itself (segments of a relative path)?
    pub fn matches(&self, path: &[&str]) -> bool {
        match_segs(&self.segments, path)
    }

    /// Does the pattern match the path or one of its parent directories?
    pub fn matches_or_parent(&self, path: &[&str]) -> bool {
        (1..=path.len()).any(|n| self.matches(&path[..n]))
    }

    /// Could the pattern match something strictly below the directory `dir`?
    pub fn may_match_below(&self, dir: &[&str]) -> bool {
        could_prefix(&self.segments, dir)
    }

    /// Is this the empty pattern (matches the root only)?
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }
}

fn segment_is_valid(s: &str) -> bool {
    if s == "**" {
        return true;
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                if i + 1 >= b.len() {
                    return false;
                }
                i += 2;
            }
            b'[' => match class_end(b, i) {
                Some(e) => i = e,
                None => return false,
            },
            _ => i += 1,
        }
    }
    true
}

/// Index just after the `]` closing the class opened at `start`.
fn class_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if i < b.len() && (b[i] == b'^' || b[i] == b'!') {
        i += 1;
    }
    let mut first = true;
    while i < b.len() {
        if b[i] == b']' && !first {
            return Some(i + 1);
        }
        if b[i] == b'\\' {
            i += 1;
        }
        first = false;
        i += 1;
    }
    None
}

fn match_segs(pat: &[String], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((p, rest)) if p == "**" => (0..=path.len()).any(|skip| match_segs(rest, &path[skip..])),
        Some((p, rest)) => match path.split_first() {
            Some((s, prest)) => match_segment(p.as_bytes(), s.as_bytes()) && match_segs(rest, prest),
            None => false,
        },
    }
}

fn could_prefix(pat: &[String], dir: &[&str]) -> bool {
    match (pat.split_first(), dir.split_first()) {
        (Some((p, _)), _) if p == "**" => true,
        (Some(_), None) => true,
        (None, _) => false,
        (Some((p, rest)), Some((d, drest))) => match_segment(p.as_bytes(), d.as_bytes()) && could_prefix(rest, drest),
    }
}

/// Go `filepath.Match` for one segment (no separators involved).
pub fn match_segment(p: &[u8], s: &[u8]) -> bool {
    if p.is_empty() {
        return s.is_empty();
    }
    match p[0] {
        b'*' => (0..=s.len()).any(|k| match_segment(&p[1..], &s[k..])),
        b'?' => !s.is_empty() && match_segment(&p[1..], &s[char_len(s)..]),
        b'[' => {
            let Some(end) = class_end(p, 0) else { return false };
            if s.is_empty() {
                return false;
            }
            let n = char_len(s);
            let c = decode_char(&s[..n]);
            class_matches(&p[1..end - 1], c) && match_segment(&p[end..], &s[n..])
        }
        b'\\' if p.len() > 1 => !s.is_empty() && s[0] == p[1] && match_segment(&p[2..], &s[1..]),
        c => !s.is_empty() && s[0] == c && match_segment(&p[1..], &s[1..]),
    }
}

fn char_len(s: &[u8]) -> usize {
    std::str::from_utf8(s).ok().and_then(|t| t.chars().next()).map_or(1, |c| c.len_utf8()).max(1)
}

fn decode_char(s: &[u8]) -> char {
    std::str::from_utf8(s).ok().and_then(|t| t.chars().next()).unwrap_or('\u{fffd}')
}

fn class_matches(body: &[u8], c: char) -> bool {
    let (neg, body) = match body.first() {
        Some(b'^') | Some(b'!') => (true, &body[1..]),
        _ => (false, body),
    };
    let text = String::from_utf8_lossy(body);
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut hit = false;
    while i < chars.len() {
        let mut lo = chars[i];
        if lo == '\\' && i + 1 < chars.len() {
            i += 1;
            lo = chars[i];
        }
        let mut hi = lo;
        if i + 2 < chars.len() && chars[i + 1] == '-' {
            hi = chars[i + 2];
            i += 2;
        }
        if lo <= c && c <= hi {
            hit = true;
        }
        i += 1;
    }
    hit != neg
}

/// Does `s` contain glob metacharacters?
pub fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// A compiled include/exclude filter over relative paths.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
}

impl Filter {
    pub fn new(include: &[String], exclude: &[String]) -> Result<Filter, PatternError> {
        let include = include.iter().map(|p| Pattern::parse(p)).collect::<Result<Vec<_>, _>>()?;
        let exclude = exclude
            .iter()
            .filter(|p| !p.trim().is_empty() && !p.trim().starts_with('#'))
            .map(|p| Pattern::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Filter { include, exclude })
    }

    pub fn is_trivial(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    fn excluded(&self, path: &[&str]) -> bool {
        let mut ex = false;
        for p in &self.exclude {
            if p.matches_or_parent(path) {
                ex = !p.negate;
            }
        }
        ex
    }

    fn included(&self, path: &[&str]) -> bool {
        self.include.is_empty() || self.include.iter().any(|p| p.is_empty() || p.matches_or_parent(path))
    }

    /// Is the path (relative, slash-separated) visible?
    pub fn visible(&self, rel: &str) -> bool {
        let segs: Vec<&str> = rel.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
        if segs.is_empty() {
            return true;
        }
        self.included(&segs) && !self.excluded(&segs)
    }

    /// Should a walk descend into directory `rel` even if it is not visible itself?
    pub fn may_descend(&self, rel: &str) -> bool {
        let segs: Vec<&str> = rel.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
        if segs.is_empty() {
            return true;
        }
        let inc = self.included(&segs) || self.include.iter().any(|p| p.may_match_below(&segs));
        if !inc {
            return false;
        }
        // An excluded directory may still hold re-included paths.
        !self.excluded(&segs) || self.exclude.iter().any(|p| p.negate && p.may_match_below(&segs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(inc: &[&str], exc: &[&str]) -> Filter {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        Filter::new(&s(inc), &s(exc)).unwrap()
    }

    #[test]
    fn go_match_semantics() {
        assert!(match_segment(b"*.log", b"a.log"));
        assert!(!match_segment(b"*.log", b"a.txt"));
        assert!(match_segment(b"a?c", b"abc"));
        assert!(match_segment(b"[a-c]x", b"bx"));
        assert!(!match_segment(b"[^a-c]x", b"bx"));
        assert!(match_segment(b"\\*", b"*"));
        assert!(!match_segment(b"\\*", b"a"));
        assert!(Pattern::parse("[a").is_err());
    }

    #[test]
    fn root_only_star_and_double_star() {
        let filt = f(&[], &["*.log"]);
        assert!(!filt.visible("a.log"));
        assert!(filt.visible("dir/a.log"));
        let filt = f(&[], &["**/*.log"]);
        assert!(!filt.visible("a.log"));
        assert!(!filt.visible("dir/sub/a.log"));
    }

    #[test]
    fn directories_and_reinclusion() {
        let filt = f(&[], &["build", "!build/keep.txt"]);
        assert!(!filt.visible("build/x.o"));
        assert!(filt.visible("build/keep.txt"));
        assert!(filt.may_descend("build"));
        let filt = f(&[], &["/node_modules", "./tmp/"]);
        assert!(!filt.visible("node_modules/a/b.js"));
        assert!(!filt.may_descend("node_modules"));
        assert!(!filt.visible("tmp"));
        assert!(filt.visible("src/tmp"));
    }

    #[test]
    fn include_lists() {
        let filt = f(&["src/main.rs", "docs"], &[]);
        assert!(filt.visible("src/main.rs"));
        assert!(!filt.visible("src/lib.rs"));
        assert!(filt.may_descend("src"));
        assert!(!filt.may_descend("target"));
        assert!(filt.visible("docs/a/b.md"));
    }

    #[test]
    fn comments_and_blank_lines_are_ignored() {
        let filt = f(&[], &["# comment", "", "x"]);
        assert!(filt.visible("# comment"));
        assert!(!filt.visible("x"));
    }
}
