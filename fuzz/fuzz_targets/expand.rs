//! Word expansion (`$v`, `${v:-w}`, `${v//p/r}`, quotes, escapes) on any word and any
//! variable values: bounded output (`MAX_WORD_LEN`), never a panic.
#![no_main]

use cairn_grammar::expand::{expand_word, expand_words, MAX_WORD_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // `word\0value\0value…`: the word, then the values of a, b, c…
    let mut parts = text.split('\0');
    let word = parts.next().unwrap_or("");
    let values: Vec<&str> = parts.collect();
    let lookup = |name: &str| -> Option<String> {
        let b = name.as_bytes();
        if b.len() == 1 && b[0].is_ascii_lowercase() {
            values.get(usize::from(b[0] - b'a')).map(|v| v.to_string())
        } else {
            None
        }
    };
    for escape in ['\\', '`'] {
        if let Ok(w) = expand_word(word, escape, &lookup) {
            assert!(w.len() <= MAX_WORD_LEN + 4 * 1024, "an expanded word past the limit: {}", w.len());
        }
        let _ = expand_words(word, escape, &lookup);
    }
});
