//! No input makes the parser or the word expander panic or hang: arbitrary bytes, and
//! arbitrary mutations (insert, delete, replace, splice) of valid Dockerfiles.

use proptest::prelude::*;

const SEEDS: &[&str] = &[
    include_str!("../test_data/ok/0001_everything.Dockerfile"),
    include_str!("../test_data/ok/0002_heredocs.Dockerfile"),
    include_str!("../test_data/ok/0003_backtick_escape.Dockerfile"),
    include_str!("../test_data/ok/0006_flags_and_words.Dockerfile"),
];

/// Characters that matter to the scanner and lexer, to make mutations interesting.
const SPECIAL: &[char] = &[
    '\\', '`', '\n', '"', '\'', '$', '{', '}', '<', '-', '#', '=', '[', ']', ' ', '\t', ':', '/',
    '%', '?',
];

fn check(text: &str) {
    if let Ok(doc) = cairn_grammar::parse("Dockerfile", text) {
        let _ = cairn_grammar::json::to_json(&doc);
    }
    let lookup = |n: &str| {
        if n.len() % 2 == 0 {
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
        let at = if chars.is_empty() {
            0
        } else {
            pos % (chars.len() + 1)
        };
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
