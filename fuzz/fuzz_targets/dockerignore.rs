//! `.dockerignore` patterns: parsing and matching any pattern against any path never
//! panics, and a pattern that parses matches the path it was cleaned from.
#![no_main]

use cairn_runtime::solve::pattern::{clean_segments, Pattern};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (pattern, path) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(p) = Pattern::parse(pattern) else { return };
    let segs = clean_segments(path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let _ = p.matches(&segs);
    let _ = p.matches_or_parent(&segs);
    // A pattern without metacharacters or negation matches its own path.
    let body = pattern.trim();
    if !body.is_empty() && !body.starts_with('!') && !body.contains(['*', '?', '[', '\\']) {
        let own = clean_segments(body);
        let own: Vec<&str> = own.iter().map(String::as_str).collect();
        assert!(p.matches(&own), "`{pattern}` does not match its own path");
    }
});
