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

/// `**` spans any number of segments and every other pattern segment exactly one, so the
/// leftmost place where the segments between two `**` match is always as good as any later
/// one: one scan per chunk, O(|pat|·|path|) segment matches instead of a search that is
/// exponential in the number of `**`.
fn match_segs(pat: &[String], path: &[&str]) -> bool {
    let mut chunks = pat.split(|p| p == "**");
    // The part before the first `**` is anchored at the start.
    let first = chunks.next().unwrap_or_default();
    if !chunk_matches_at(first, path) {
        return false;
    }
    let mut rest = &path[first.len()..];
    let mut chunks = chunks.peekable();
    if chunks.peek().is_none() {
        return rest.is_empty();
    }
    while let Some(chunk) = chunks.next() {
        if chunks.peek().is_none() {
            // The part after the last `**` is anchored at the end.
            return rest.len() >= chunk.len() && chunk_matches_at(chunk, &rest[rest.len() - chunk.len()..]);
        }
        match (0..=rest.len()).find(|&at| chunk_matches_at(chunk, &rest[at..])) {
            Some(at) => rest = &rest[at + chunk.len()..],
            None => return false,
        }
    }
    unreachable!("the loop returns at the last chunk")
}

/// Do the `**`-free pattern segments match the first segments of `path`, one for one?
fn chunk_matches_at(chunk: &[String], path: &[&str]) -> bool {
    chunk.len() <= path.len() && chunk.iter().zip(path).all(|(p, s)| match_segment(p.as_bytes(), s.as_bytes()))
}

fn could_prefix(pat: &[String], dir: &[&str]) -> bool {
    for (i, p) in pat.iter().enumerate() {
        if p == "**" {
            return true;
        }
        match dir.get(i) {
            None => return true,
            Some(d) if !match_segment(p.as_bytes(), d.as_bytes()) => return false,
            Some(_) => {}
        }
    }
    false
}

/// Go `filepath.Match` for one segment (no separators involved), with Go's algorithm: the
/// pattern is a run of chunks each after a `*`; a chunk takes the first place it matches
/// (the last chunk must end the name). Each chunk matches a fixed span at a given place, so
/// this is O(|p|·|s|), never the exponential backtracking of a naive `*`.
pub fn match_segment(p: &[u8], s: &[u8]) -> bool {
    let (mut p, mut s) = (p, s);
    while !p.is_empty() {
        let star = p[0] == b'*';
        let stars = p.iter().take_while(|&&b| b == b'*').count();
        p = &p[stars..];
        let len = chunk_len(p);
        let (chunk, rest) = p.split_at(len);
        p = rest;
        let last = p.is_empty();
        if star && chunk.is_empty() {
            return true;
        }
        let fits = |t: &[u8]| !last || t.is_empty();
        if let Some(t) = match_chunk(chunk, s).filter(|t| fits(t)) {
            s = t;
            continue;
        }
        if !star {
            return false;
        }
        match (1..=s.len()).find_map(|i| match_chunk(chunk, &s[i..]).filter(|t| fits(t))) {
            Some(t) => s = t,
            None => return false,
        }
    }
    s.is_empty()
}

/// Length of the chunk at the start of `p`: up to the next unescaped `*` outside a class.
fn chunk_len(p: &[u8]) -> usize {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'*' => return i,
            b'\\' if i + 1 < p.len() => i += 2,
            b'[' => i = class_end(p, i).unwrap_or(p.len()),
            _ => i += 1,
        }
    }
    p.len()
}

/// Matches a `*`-free chunk at the start of `s`; returns what is left of `s`.
fn match_chunk<'s>(chunk: &[u8], mut s: &'s [u8]) -> Option<&'s [u8]> {
    let mut p = chunk;
    while let Some(&first) = p.first() {
        match first {
            b'?' => {
                if s.is_empty() {
                    return None;
                }
                s = &s[char_len(s)..];
                p = &p[1..];
            }
            b'[' => {
                let end = class_end(p, 0)?;
                if s.is_empty() {
                    return None;
                }
                let n = char_len(s);
                if !class_matches(&p[1..end - 1], decode_char(&s[..n])) {
                    return None;
                }
                s = &s[n..];
                p = &p[end..];
            }
            b'\\' if p.len() > 1 => {
                if s.first() != Some(&p[1]) {
                    return None;
                }
                s = &s[1..];
                p = &p[2..];
            }
            c => {
                if s.first() != Some(&c) {
                    return None;
                }
                s = &s[1..];
                p = &p[1..];
            }
        }
    }
    Some(s)
}

/// Bytes of the character at the start of `s` (1 for a byte that starts no valid one).
fn char_len(s: &[u8]) -> usize {
    let want = match s.first() {
        Some(b) if *b < 0x80 => return 1,
        Some(b) if b >> 5 == 0b110 => 2,
        Some(b) if b >> 4 == 0b1110 => 3,
        Some(b) if b >> 3 == 0b11110 => 4,
        _ => return 1,
    };
    match s.get(..want).map(std::str::from_utf8) {
        Some(Ok(_)) => want,
        _ => 1,
    }
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
    let mut chars = text.chars();
    let mut hit = false;
    while let Some(mut lo) = chars.next() {
        if lo == '\\' {
            // A trailing lone backslash stands for itself.
            if let Some(e) = chars.next() {
                lo = e;
            }
        }
        let mut hi = lo;
        let mut ahead = chars.clone();
        if ahead.next() == Some('-') {
            if let Some(h) = ahead.next() {
                hi = h;
                chars = ahead;
            }
        }
        if lo <= c && c <= hi {
            hit = true;
        }
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

    /// The matchers as plain backtracking searches: right by construction, exponential.
    fn naive_segment(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) => (0..=s.len()).any(|k| naive_segment(rest, &s[k..])),
            Some((b'?', rest)) => !s.is_empty() && naive_segment(rest, &s[1..]),
            Some((b'[', _)) => {
                let end = class_end(p, 0).unwrap();
                !s.is_empty() && class_matches(&p[1..end - 1], s[0] as char) && naive_segment(&p[end..], &s[1..])
            }
            Some((b'\\', rest)) if !rest.is_empty() => {
                s.first() == Some(&rest[0]) && naive_segment(&rest[1..], &s[1..])
            }
            Some((c, rest)) => s.first() == Some(c) && naive_segment(rest, &s[1..]),
        }
    }

    fn naive_segs(pat: &[String], path: &[&str]) -> bool {
        match pat.split_first() {
            None => path.is_empty(),
            Some((p, rest)) if p == "**" => (0..=path.len()).any(|k| naive_segs(rest, &path[k..])),
            Some((p, rest)) => {
                !path.is_empty() && naive_segment(p.as_bytes(), path[0].as_bytes()) && naive_segs(rest, &path[1..])
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn segment_matcher_agrees_with_backtracking(p in "(a|b|\\*|\\?|\\[ab\\]|\\[\\^a\\]|\\\\\\*){0,8}", s in "[ab*]{0,10}") {
            proptest::prop_assert_eq!(match_segment(p.as_bytes(), s.as_bytes()), naive_segment(p.as_bytes(), s.as_bytes()), "pattern {:?} name {:?}", p, s);
        }

        #[test]
        fn path_matcher_agrees_with_backtracking(p in proptest::collection::vec("\\*\\*|a|b|\\*|a\\*", 0..6), s in proptest::collection::vec("a|b|ab", 0..7)) {
            let path: Vec<&str> = s.iter().map(String::as_str).collect();
            proptest::prop_assert_eq!(match_segs(&p, &path), naive_segs(&p, &path), "pattern {:?} path {:?}", p, s);
        }
    }

    /// Inputs on which the old backtracking matcher ran for minutes (the first found by the
    /// dockerignore fuzz target): many `*` in one segment, many `**` over a deep path.
    #[test]
    fn many_stars_match_in_polynomial_time() {
        let pattern = "*a".repeat(30) + "b";
        assert!(!match_segment(pattern.as_bytes(), "a".repeat(500).as_bytes()));
        assert!(match_segment(pattern.as_bytes(), ("a".repeat(500) + "b").as_bytes()));
        let p = Pattern::parse(&("**/a/".repeat(30) + "b")).unwrap();
        let deep = vec!["a"; 400];
        assert!(!p.matches(&deep));
        assert!(!p.matches_or_parent(&deep));
        let fuzzed = b"**\\-\0\0\08a\x0f;a\0\0\0\0\xf3\xb6\xb7\xbfI]xtc\xd2\x89****[c]";
        let name = "a".repeat(2000) + "c";
        let _ = match_segment(fuzzed, name.as_bytes());
    }
}
