//! The line scanner: BOM, parser directives, comments, continuations and heredoc bodies.
//!
//! It turns the text into [`LogicalLine`]s: one per instruction, continuations joined, with
//! a map from positions in the joined text back to the source so errors point at the right
//! `line:col`. Heredoc bodies are read here because they are line-oriented and their
//! terminators depend on the markers found in the instruction line.

use crate::ast::{Directive, Heredoc, Span};
use crate::error::{Error, ErrorKind};

/// One instruction's text with continuations joined.
#[derive(Debug)]
pub(crate) struct LogicalLine<'a> {
    /// The joined text (escape char + newline removed, skipped comment lines dropped);
    /// borrowed from the source when the instruction is one physical line.
    pub text: std::borrow::Cow<'a, str>,
    /// `(offset in text, offset in source)` at the start of every joined segment; empty for
    /// a one-line instruction (text offset = source offset - `start`).
    pub segments: Vec<(usize, usize)>,
    pub start_line: u32,
    pub end_line: u32,
    /// Byte range in the source, heredoc bodies included.
    pub start: usize,
    pub end: usize,
    pub heredocs: Vec<Heredoc>,
}

/// A heredoc marker found in an instruction line: `(name, expand, chomp)`.
pub(crate) type Marker = (String, bool, bool);

/// Physical lines of the source: `(start offset, text without the line break)`.
pub(crate) struct Lines<'a> {
    pub src: &'a str,
    pub starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    pub fn new(src: &'a str) -> Lines<'a> {
        let mut starts = Vec::with_capacity(src.len() / 32 + 1);
        starts.push(0);
        starts.extend(
            src.match_indices('\n')
                .map(|(i, _)| i + 1)
                .filter(|&i| i < src.len()),
        );
        if src.is_empty() {
            starts.clear();
        }
        Lines { src, starts }
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Line `i` (0-based) without `\n` or `\r\n`.
    pub fn get(&self, i: usize) -> &'a str {
        let start = self.starts[i];
        let end = self.starts.get(i + 1).copied().unwrap_or(self.src.len());
        let line = &self.src[start..end];
        let line = line.strip_suffix('\n').unwrap_or(line);
        line.strip_suffix('\r').unwrap_or(line)
    }

    /// The end offset of line `i` including its line break.
    pub fn end_with_break(&self, i: usize) -> usize {
        self.starts.get(i + 1).copied().unwrap_or(self.src.len())
    }
}

/// Span of a source byte range using the table of line starts (a binary search, so spans
/// cost O(log lines), not a scan from the top of the file).
pub(crate) fn span_in(src: &str, starts: &[usize], start: usize, end: usize) -> Span {
    let start = start.min(src.len());
    let idx = starts.partition_point(|&s| s <= start).max(1) - 1;
    let line_start = starts.get(idx).copied().unwrap_or(0);
    let col = src.as_bytes()[line_start..start]
        .iter()
        .filter(|&&b| (b & 0xC0) != 0x80)
        .count() as u32
        + 1;
    Span {
        start,
        end: end.max(start).min(src.len()),
        line: idx as u32 + 1,
        col,
    }
}

/// Span of a source byte range; line and column are 1-based, columns count chars.
pub(crate) fn span_at(src: &str, start: usize, end: usize) -> Span {
    let start = start.min(src.len());
    let before = &src[..start];
    let line = before.bytes().filter(|&b| b == b'\n').count() as u32 + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = src[line_start..start].chars().count() as u32 + 1;
    Span {
        start,
        end: end.max(start).min(src.len()),
        line,
        col,
    }
}

/// Parses the leading directive block. Returns the directives and the index of the first
/// line after them.
pub(crate) fn directives(
    file: &str,
    lines: &Lines<'_>,
) -> Result<(Vec<Directive>, char, usize), Error> {
    let mut out: Vec<Directive> = Vec::new();
    let mut escape = '\\';
    let mut i = 0;
    while i < lines.len() {
        let line = lines.get(i);
        let Some((name, value)) = directive_of(line) else {
            break;
        };
        let lname = name.to_ascii_lowercase();
        if !matches!(lname.as_str(), "syntax" | "escape" | "check") {
            break;
        }
        let start = lines.starts[i];
        let span = span_at(lines.src, start, start + line.len());
        if out.iter().any(|d| d.name == lname) {
            return Err(Error::new(
                ErrorKind::Syntax,
                format!("Only one `{lname}` parser directive can be used"),
                file,
                lines.src,
                span,
            ));
        }
        if lname == "escape" {
            escape = match value {
                "\\" => '\\',
                "`" => '`',
                other => {
                    return Err(Error::new(
                        ErrorKind::Syntax,
                        format!("Invalid escape character `{other}`: expected `\\` or `` ` ``"),
                        file,
                        lines.src,
                        span,
                    ))
                }
            };
        }
        out.push(Directive {
            name: lname,
            value: value.to_string(),
            span,
        });
        i += 1;
    }
    Ok((out, escape, i))
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
/// without it.
fn continued(line: &str, escape: char) -> Option<&str> {
    let t = line.trim_end_matches([' ', '\t']);
    t.strip_suffix(escape)
}

fn is_comment_or_blank(line: &str) -> bool {
    let t = line.trim_start_matches([' ', '\t']);
    t.is_empty() || t.starts_with('#')
}

/// Collects the logical lines starting at physical line `first`. `markers` returns the
/// heredoc markers of a finished instruction line; their bodies are read from the lines
/// that follow it.
pub(crate) fn logical_lines<'a>(
    file: &str,
    lines: &Lines<'a>,
    first: usize,
    escape: char,
    markers: &dyn Fn(&str) -> Vec<Marker>,
) -> Result<Vec<LogicalLine<'a>>, Error> {
    let mut out = Vec::new();
    let mut i = first;
    while i < lines.len() {
        let line = lines.get(i);
        if is_comment_or_blank(line) {
            i += 1;
            continue;
        }
        let start_line = i as u32 + 1;
        let start = lines.starts[i];
        let mut cur_idx = i;
        let (text, segments) = if continued(line, escape).is_none() {
            // The common case: one physical line, no copy.
            (std::borrow::Cow::Borrowed(line), Vec::new())
        } else {
            let mut text = String::with_capacity(line.len() * 2);
            let mut segments = Vec::with_capacity(4);
            let mut cur = line;
            loop {
                segments.push((text.len(), lines.starts[cur_idx]));
                match continued(cur, escape) {
                    Some(head) => {
                        text.push_str(head);
                        // Skip comment and blank lines inside the continuation.
                        let mut next = cur_idx + 1;
                        while next < lines.len() && is_comment_or_blank(lines.get(next)) {
                            next += 1;
                        }
                        if next >= lines.len() {
                            // A trailing escape at end of file ends the instruction.
                            break;
                        }
                        cur_idx = next;
                        cur = lines.get(cur_idx);
                    }
                    None => {
                        text.push_str(cur);
                        break;
                    }
                }
            }
            (std::borrow::Cow::Owned(text), segments)
        };
        let mut heredocs = Vec::new();
        for (name, expand, chomp) in markers(&text) {
            let body_start = cur_idx + 1;
            let mut j = body_start;
            let mut content = String::new();
            loop {
                if j >= lines.len() {
                    let at = lines.starts[i];
                    return Err(Error::new(
                        ErrorKind::UnterminatedHeredoc,
                        format!("Heredoc `{name}` is never terminated: expected a line `{name}`"),
                        file,
                        lines.src,
                        span_at(lines.src, at, at),
                    ));
                }
                let l = lines.get(j);
                let l = if chomp { l.trim_start_matches('\t') } else { l };
                if l == name {
                    break;
                }
                content.push_str(l);
                content.push('\n');
                j += 1;
            }
            let s = lines
                .starts
                .get(body_start)
                .copied()
                .unwrap_or(lines.src.len());
            let e = lines.end_with_break(j);
            heredocs.push(Heredoc {
                name,
                content,
                expand,
                chomp,
                span: span_at(lines.src, s, e),
            });
            cur_idx = j;
        }
        let end_line = cur_idx as u32 + 1;
        let end = lines.end_with_break(cur_idx);
        out.push(LogicalLine {
            text,
            segments,
            start_line,
            end_line,
            start,
            end,
            heredocs,
        });
        i = cur_idx + 1;
    }
    Ok(out)
}

impl LogicalLine<'_> {
    /// Maps an offset in `text` to an offset in the source.
    pub fn source_offset(&self, pos: usize) -> usize {
        if self.segments.is_empty() {
            return self.start + pos;
        }
        let idx = match self.segments.binary_search_by(|&(t, _)| t.cmp(&pos)) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let (t, s) = self.segments[idx];
        s + (pos - t)
    }
}
