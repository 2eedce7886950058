//! Word expansion as BuildKit's shell lexer does it.

/// Why a word could not be expanded. The position is a char offset within the word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    pub message: String,
    pub offset: usize,
}

/// Expands one word (quotes removed, variables substituted, escapes applied).
/// `lookup` returns the value of a variable or `None` when it is unset.
pub fn expand_word(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let _ = (word, escape, lookup);
    unimplemented!("expand_word is being written")
}

/// Expands and splits into fields the way BuildKit's `ProcessWords` does (whitespace
/// outside quotes separates words; an unquoted expansion is not re-split).
pub fn expand_words(
    text: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ExpandError> {
    let _ = (text, escape, lookup);
    unimplemented!("expand_words is being written")
}
