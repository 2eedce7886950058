//! The flag table: which `--flags` each instruction takes and how each one's value is read.
//!
//! One table for the whole workspace: the parser rejects a flag that is not here
//! ([`ErrorKind::UnknownFlag`](crate::ErrorKind::UnknownFlag)), and the compiler reads the
//! flags of an instruction through the same entries (BuildKit's `BFlags`), so the two can
//! never disagree. It lives in the grammar because the compiler depends on the grammar,
//! never the other way round.

use crate::ast::Keyword;

/// How a flag's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `--link`, `--link=true` or `--link=false`; never expanded.
    Bool,
    /// `--name=value`; written twice, the instruction decides which one counts. A bare
    /// `--name` reads as an empty value.
    Value,
    /// `--name=value`, repeatable; every occurrence counts, in order.
    List,
}

/// One flag an instruction accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagSpec {
    /// Without the leading `--`.
    pub name: &'static str,
    pub kind: FlagKind,
}

const fn flag(name: &'static str, kind: FlagKind) -> FlagSpec {
    FlagSpec { name, kind }
}

use FlagKind::{Bool, List, Value};

const FROM: &[FlagSpec] = &[flag("platform", Value)];
const RUN: &[FlagSpec] = &[flag("mount", List), flag("network", Value), flag("security", Value)];
const COPY: &[FlagSpec] = &[
    flag("from", Value),
    flag("chown", Value),
    flag("chmod", Value),
    flag("link", Bool),
    flag("exclude", List),
    flag("parents", Bool),
];
const ADD: &[FlagSpec] = &[
    flag("chown", Value),
    flag("chmod", Value),
    flag("link", Bool),
    flag("exclude", List),
    flag("checksum", Value),
    flag("keep-git-dir", Bool),
    flag("unpack", Bool),
];
const HEALTHCHECK: &[FlagSpec] = &[
    flag("interval", Value),
    flag("timeout", Value),
    flag("start-period", Value),
    flag("start-interval", Value),
    flag("retries", Value),
];

/// The flags `keyword` accepts (BuildKit's frontend); empty for most instructions.
pub fn flags_of(keyword: Keyword) -> &'static [FlagSpec] {
    match keyword {
        Keyword::From => FROM,
        Keyword::Run => RUN,
        Keyword::Copy => COPY,
        Keyword::Add => ADD,
        Keyword::Healthcheck => HEALTHCHECK,
        _ => &[],
    }
}

/// Flags BuildKit's Dockerfile frontend has (some only in its labs channel) that cairn
/// does not implement: refused like unknown flags, but saying so. Every new BuildKit flag
/// belongs either in the tables above or here.
const NOT_SUPPORTED: &[(Keyword, &str, &str)] = &[(Keyword::Run, "device", "CDI devices")];

/// The error message for `--name`, which `keyword` does not take (the parser's and the
/// compiler's, so they say the same).
pub fn refused_flag_message(keyword: Keyword, name: &str) -> String {
    match NOT_SUPPORTED.iter().find(|(k, n, _)| *k == keyword && *n == name) {
        Some((_, _, what)) => {
            format!("`{} --{name}` ({what}) is a BuildKit flag cairn does not support", keyword.as_str())
        }
        None => format!("Unknown flag `--{name}` for `{}`", keyword.as_str()),
    }
}

/// The entry for `--name` of `keyword`, if it takes one.
pub fn flag_spec(keyword: Keyword, name: &str) -> Option<&'static FlagSpec> {
    flags_of(keyword).iter().find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_and_add_differ_only_where_buildkit_does() {
        assert!(flag_spec(Keyword::Copy, "from").is_some());
        assert!(flag_spec(Keyword::Add, "from").is_none());
        assert!(flag_spec(Keyword::Copy, "checksum").is_none());
        assert_eq!(flag_spec(Keyword::Add, "keep-git-dir").map(|f| f.kind), Some(FlagKind::Bool));
        assert!(flags_of(Keyword::Env).is_empty());
    }

    #[test]
    fn not_supported_flags_are_named_and_never_accepted() {
        for (k, n, _) in NOT_SUPPORTED {
            assert!(flag_spec(*k, n).is_none(), "--{n}");
        }
        assert_eq!(
            refused_flag_message(Keyword::Run, "device"),
            "`RUN --device` (CDI devices) is a BuildKit flag cairn does not support"
        );
        assert_eq!(refused_flag_message(Keyword::Run, "bogus"), "Unknown flag `--bogus` for `RUN`");
    }
}
