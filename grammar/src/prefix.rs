//! The keyword-and-flags prefix of an instruction line. The pest grammar in `line.pest` is
//! the executable specification ([`prefix_by_pest`]); [`prefix_fast`] is a hand-written
//! fast path that either agrees with it exactly or defers to it, checked on examples and
//! by a property test.

use pest::Parser;
use pest_derive::Parser;

#[derive(Parser)]
#[grammar = "line.pest"]
struct LineParser;

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

pub(crate) fn is_ws(b: u8) -> bool {
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

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]
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
