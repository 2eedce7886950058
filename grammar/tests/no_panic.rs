//! No input makes the parser or the word expander panic or hang: arbitrary bytes, and
//! arbitrary mutations (insert, delete, replace, splice) of valid Dockerfiles. The spans of
//! what parses (and of errors) must agree with a line count from the top of the source,
//! since the scanner computes them incrementally.

use cairn_grammar::ast::{Args, Instruction, Span};
use proptest::prelude::*;

const SEEDS: &[&str] = &[
    include_str!("../test_data/ok/0001_everything.Dockerfile"),
    include_str!("../test_data/ok/0002_heredocs.Dockerfile"),
    include_str!("../test_data/ok/0003_backtick_escape.Dockerfile"),
    include_str!("../test_data/ok/0006_flags_and_words.Dockerfile"),
];

/// Characters that matter to the scanner and lexer, to make mutations interesting.
const SPECIAL: &[char] =
    &['\\', '`', '\n', '"', '\'', '$', '{', '}', '<', '-', '#', '=', '[', ']', ' ', '\t', ':', '/', '%', '?'];

/// The line and column of every span agree with a count from the top of the source.
fn check_span(src: &str, span: Span) {
    assert!(span.start <= span.end && span.end <= src.len(), "{span:?} out of range");
    let before = &src[..span.start];
    let line = before.matches('\n').count() as u32 + 1;
    let col = before[before.rfind('\n').map_or(0, |i| i + 1)..].chars().count() as u32 + 1;
    assert_eq!((span.line, span.col), (line, col), "{span:?} in {src:?}");
}

fn check_instruction(src: &str, i: &Instruction) {
    check_span(src, i.span);
    i.flags.iter().for_each(|f| check_span(src, f.span));
    i.heredocs.iter().for_each(|h| check_span(src, h.span));
    match &i.args {
        Args::Words(w) => w.iter().for_each(|w| check_span(src, w.span)),
        Args::Pairs(p) => p.iter().for_each(|kv| check_span(src, kv.span)),
        Args::Onbuild(inner) => check_instruction(src, inner),
        _ => {}
    }
}

fn check(text: &str) {
    let src = text.strip_prefix('\u{feff}').unwrap_or(text);
    match cairn_grammar::parse("Dockerfile", text) {
        Ok(doc) => {
            let _ = cairn_grammar::json::to_json(&doc);
            doc.directives.iter().for_each(|d| check_span(src, d.span));
            doc.instructions.iter().for_each(|i| check_instruction(src, i));
        }
        Err(e) => check_span(src, e.span),
    }
    let lookup = |n: &str| {
        if n.len().is_multiple_of(2) {
            Some(n.repeat(2))
        } else {
            None
        }
    };
    let _ = cairn_grammar::expand::expand_word(text, '\\', &lookup);
    let _ = cairn_grammar::expand::expand_words(text, '`', &lookup);
}

fn mutate(seed: &str, ops: &[(u8, usize, char)]) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for &(op, pos, c) in ops {
        let at = if chars.is_empty() { 0 } else { pos % (chars.len() + 1) };
        match op % 4 {
            0 => chars.insert(at, c),
            1 if at < chars.len() => {
                chars.remove(at);
            }
            2 if at < chars.len() => chars[at] = c,
            _ => {
                // Splice: duplicate a slice somewhere else.
                let end = (at + (pos % 17)).min(chars.len());
                let slice: Vec<char> = chars[at..end].to_vec();
                let to = pos.wrapping_mul(31) % (chars.len() + 1);
                for (k, ch) in slice.into_iter().enumerate() {
                    chars.insert(to + k, ch);
                }
            }
        }
    }
    chars.into_iter().collect()
}

fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![3 => proptest::sample::select(SPECIAL), 1 => any::<char>()]
}

#[test]
fn seeds_have_exact_spans() {
    SEEDS.iter().for_each(|s| check(s));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_dockerfiles(
        seed in 0..SEEDS.len(),
        ops in proptest::collection::vec((any::<u8>(), any::<usize>(), any_char()), 1..12),
    ) {
        check(&mutate(SEEDS[seed], &ops));
    }
}
