//! The line scanner: BOM, parser directives, comments, continuations and heredoc bodies.
//!
//! It turns the text into [`LogicalLine`]s, one per instruction and one at a time in a
//! single pass: continuations joined, with a map from positions in the joined text back to
//! the source lines (offset and line number) so every span gets its `line:col` without a
//! table of line starts or a count from the top of the file. Heredoc bodies are read here because they are line-oriented and their
//! terminators depend on the markers found in the instruction line.

use crate::ast::{Directive, Heredoc, Span};
use crate::error::{Error, ErrorKind};

/// Where one joined physical line starts: offset `text` in the joined text is offset `src`
/// in the source, the start of physical line `line` (1-based).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    pub text: usize,
    pub src: usize,
    pub line: u32,
}

/// One instruction's text with continuations joined.
#[derive(Debug)]
pub(crate) struct LogicalLine<'s> {
    /// The joined text (escape char + newline removed, skipped comment lines dropped);
    /// borrowed from the source when the instruction is one physical line.
    pub text: &'s str,
    /// One segment per joined physical line, in order (at least one).
    pub segments: &'s [Segment],
    pub start_line: u32,
    pub end_line: u32,
    /// Byte range in the source, heredoc bodies included.
    pub start: usize,
    pub end: usize,
    /// The instruction's lines are ASCII: columns are byte distances.
    pub ascii: bool,
    pub heredocs: Vec<Heredoc>,
}

/// A heredoc marker found in an instruction line: `(name, expand, chomp)`.
pub(crate) type Marker = (String, bool, bool);

/// Walks the physical lines of the source once, front to back, keeping the line number, so
/// spans need no table of line starts and no scan from the top of the file. The buffers
/// for joined continuation lines are reused from one instruction to the next.
pub(crate) struct Scanner<'a> {
    file: &'a str,
    src: &'a str,
    /// Start of the next physical line to read, and its 1-based number.
    pos: usize,
    line: u32,
    escape: char,
    text: String,
    /// The segment of a one-line instruction, and those of a joined one: no allocation
    /// for a file without continuations.
    first: [Segment; 1],
    segments: Vec<Segment>,
}

impl<'a> Scanner<'a> {
    pub fn new(file: &'a str, src: &'a str) -> Scanner<'a> {
        Scanner {
            file,
            src,
            pos: 0,
            line: 1,
            escape: '\\',
            text: String::new(),
            first: [Segment { text: 0, src: 0, line: 1 }],
            segments: Vec::new(),
        }
    }

    /// The physical line starting at `pos` without `\n` or `\r\n`, and the start of the
    /// next one.
    fn line_at(&self, pos: usize) -> (&'a str, usize) {
        let src = self.src;
        let (end, next) = match memchr::memchr(b'\n', &src.as_bytes()[pos..]) {
            Some(i) => (pos + i, pos + i + 1),
            None => (src.len(), src.len()),
        };
        let line = &src[pos..end];
        (line.strip_suffix('\r').unwrap_or(line), next)
    }

    fn error(&self, kind: ErrorKind, message: String, span: Span) -> Error {
        Error::new(kind, message, self.file, self.src, span)
    }

    /// Parses the leading directive block and returns the directives and the escape
    /// character; the scanner is left on the first line after the block.
    pub fn directives(&mut self) -> Result<(Vec<Directive>, char), Error> {
        let mut out: Vec<Directive> = Vec::new();
        while self.pos < self.src.len() {
            let (line, next) = self.line_at(self.pos);
            let Some((name, value)) = directive_of(line) else {
                break;
            };
            let lname = name.to_ascii_lowercase();
            if !matches!(lname.as_str(), "syntax" | "escape" | "check") {
                break;
            }
            let span = line_span(self.pos, self.pos + line.len(), self.line);
            if out.iter().any(|d| d.name == lname) {
                return Err(self.error(
                    ErrorKind::Syntax,
                    format!("Only one `{lname}` parser directive can be used"),
                    span,
                ));
            }
            if lname == "escape" {
                self.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(self.error(
                            ErrorKind::Syntax,
                            format!("Invalid escape character `{other}`: expected `\\` or `` ` ``"),
                            span,
                        ))
                    }
                };
            }
            out.push(Directive { name: lname, value: value.to_string(), span });
            self.pos = next;
            self.line += 1;
        }
        Ok((out, self.escape))
    }

    /// The next instruction, or `None` at the end of the source. `markers` returns the
    /// heredoc markers of a finished instruction line; their bodies are read from the
    /// lines that follow it.
    pub fn next_line(&mut self, markers: &dyn Fn(&str) -> Vec<Marker>) -> Result<Option<LogicalLine<'_>>, Error> {
        let src = self.src;
        let escape = self.escape;
        // Skip comment and blank lines.
        let (first, mut next) = loop {
            if self.pos >= src.len() {
                return Ok(None);
            }
            let (line, next) = self.line_at(self.pos);
            if !is_comment_or_blank(line) {
                break (line, next);
            }
            self.pos = next;
            self.line += 1;
        };
        let start = self.pos;
        let start_line = self.line;
        // `cur_line` is the number of the last physical line of the instruction so far,
        // `next` the start of the line after it.
        let mut cur_line = start_line;
        self.first[0] = Segment { text: 0, src: start, line: start_line };
        let joined = match continued(first, escape) {
            // The common case: one physical line, no copy.
            None => false,
            Some(head) => {
                self.text.clear();
                // Joined instructions are a few hundred bytes: grow once, not by doubling.
                self.text.reserve(1024);
                self.text.push_str(head);
                self.segments.clear();
                self.segments.push(self.first[0]);
                loop {
                    // Skip comment and blank lines inside the continuation.
                    let mut p = next;
                    let mut n = cur_line + 1;
                    let mut found = None;
                    while p < src.len() {
                        let (l, after) = self.line_at(p);
                        if !is_comment_or_blank(l) {
                            found = Some((l, after));
                            break;
                        }
                        p = after;
                        n += 1;
                    }
                    // A trailing escape at end of file ends the instruction.
                    let Some((cur, after)) = found else { break };
                    self.segments.push(Segment { text: self.text.len(), src: p, line: n });
                    cur_line = n;
                    next = after;
                    match continued(cur, escape) {
                        Some(head) => self.text.push_str(head),
                        None => {
                            self.text.push_str(cur);
                            break;
                        }
                    }
                }
                true
            }
        };
        let text: &str = if joined { &self.text } else { first };
        let ascii = src.as_bytes()[start..next].is_ascii();
        let mut heredocs = Vec::new();
        for (name, expand, chomp) in markers(text) {
            // The body runs from the line after the instruction (or the previous
            // terminator) to the terminator line.
            let body = next;
            let body_line = cur_line + 1;
            let mut p = body;
            let mut n = body_line;
            let (term, term_next) = loop {
                if p >= src.len() {
                    return Err(Error::new(
                        ErrorKind::UnterminatedHeredoc,
                        format!("Heredoc `{name}` is never terminated: expected a line `{name}`"),
                        self.file,
                        src,
                        line_span(start, start, start_line),
                    ));
                }
                let (l, after) = self.line_at(p);
                let l = if chomp { l.trim_start_matches('\t') } else { l };
                if l == name {
                    break (p, after);
                }
                p = after;
                n += 1;
            };
            let mut content = String::with_capacity(term - body);
            let mut q = body;
            while q < term {
                let (l, after) = self.line_at(q);
                content.push_str(if chomp { l.trim_start_matches('\t') } else { l });
                content.push('\n');
                q = after;
            }
            heredocs.push(Heredoc { name, content, expand, chomp, span: line_span(body, term_next, body_line) });
            cur_line = n;
            next = term_next;
        }
        self.pos = next;
        self.line = cur_line + 1;
        Ok(Some(LogicalLine {
            text,
            segments: if joined { &self.segments } else { &self.first },
            start_line,
            end_line: cur_line,
            start,
            end: next,
            ascii,
            heredocs,
        }))
    }
}

/// The span of `start..end` where `start` is the start of physical line `line`.
fn line_span(start: usize, end: usize, line: u32) -> Span {
    Span { start, end: end.max(start), line, col: 1 }
}

/// `# key=value` → (key, value), BuildKit's `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`.
fn directive_of(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let (name, after) = rest.split_at(name_len);
    let value = after.trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((name, value))
}

/// If `line` ends with the escape character (optionally followed by blanks), the line
/// without it. As BuildKit's `([^\\])\\[ \t]*$|^\\[ \t]*$`: an escaped escape
/// character (`trailing\\`) does not continue, unless it is the whole line.
fn continued(line: &str, escape: char) -> Option<&str> {
    let t = line.trim_end_matches([' ', '\t']);
    let head = t.strip_suffix(escape)?;
    (head.is_empty() || !head.ends_with(escape)).then_some(head)
}

fn is_comment_or_blank(line: &str) -> bool {
    let t = line.trim_start_matches([' ', '\t']);
    t.is_empty() || t.starts_with('#')
}

impl LogicalLine<'_> {
    /// The segment holding offset `pos` of `text` (a position at a boundary belongs to the
    /// line that starts there).
    fn segment(&self, pos: usize) -> Segment {
        if self.segments.len() == 1 {
            return self.segments[0];
        }
        let idx = match self.segments.binary_search_by(|seg| seg.text.cmp(&pos)) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        self.segments[idx]
    }

    /// Maps an offset in `text` to an offset in the source.
    pub fn source_offset(&self, pos: usize) -> usize {
        let seg = self.segment(pos);
        seg.src + (pos - seg.text)
    }

    /// The source span of `start..end` in `text`; the column counts chars from the start
    /// of the physical line.
    pub fn span(&self, src: &str, start: usize, end: usize) -> Span {
        let seg = self.segment(start);
        let s = seg.src + (start - seg.text);
        let e = self.source_offset(end).max(s).min(src.len());
        let col = if self.ascii {
            s - seg.src
        } else {
            src.as_bytes()[seg.src..s].iter().filter(|&&b| (b & 0xC0) != 0x80).count()
        } as u32
            + 1;
        Span { start: s, end: e, line: seg.line, col }
    }
}
