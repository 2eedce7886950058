//! How instructions are written: ConsistentInstructionCasing, FromAsCasing,
//! JSONArgsRecommended, LegacyKeyValueFormat, MaintainerDeprecated,
//! MultipleInstructionsDisallowed, WorkdirRelativePath. The casing rules read the keyword as
//! written in the text (the AST keeps only the keyword itself).

use cairn_grammar::ast::{Args, Dockerfile, Instruction, Keyword};

use super::{
    from_words, keyword_text, stages, Warning, CONSISTENT_INSTRUCTION_CASING, FROM_AS_CASING, JSON_ARGS_RECOMMENDED,
    LEGACY_KEY_VALUE_FORMAT, MAINTAINER_DEPRECATED, MULTIPLE_INSTRUCTIONS_DISALLOWED, WORKDIR_RELATIVE_PATH,
};

fn self_consistent(s: &str) -> bool {
    s == s.to_lowercase() || s == s.to_uppercase()
}

pub(super) fn check(df: &Dockerfile, text: &str, out: &mut Vec<Warning>) {
    casing(df, text, out);
    let (_, stages) = stages(df);
    for s in &stages {
        from_as(s.from, text, out);
        let mut last: [Option<&Instruction>; 3] = [None; 3];
        let mut absolute_workdir = false;
        for ins in &s.body {
            match ins.keyword {
                Keyword::Cmd | Keyword::Entrypoint if matches!(ins.args, Args::Shell(_)) => {
                    let msg = format!(
                        "JSON arguments recommended for {} to prevent unintended behavior related to OS signals",
                        ins.keyword.as_str()
                    );
                    out.push(Warning::at(&JSON_ARGS_RECOMMENDED, msg, ins));
                }
                Keyword::Maintainer => out.push(Warning::at(
                    &MAINTAINER_DEPRECATED,
                    "Maintainer instruction is deprecated in favor of using label".into(),
                    ins,
                )),
                Keyword::Env | Keyword::Label if is_legacy_pair(ins, text) => {
                    let k = ins.keyword.as_str();
                    let msg = format!("\"{k} key=value\" should be used instead of legacy \"{k} key value\" format");
                    out.push(Warning::at(&LEGACY_KEY_VALUE_FORMAT, msg, ins));
                }
                Keyword::Workdir => {
                    let dir = match &ins.args {
                        Args::Words(w) => w.first().map(|w| w.node.trim_matches('"').to_string()).unwrap_or_default(),
                        _ => String::new(),
                    };
                    // A variable may hold an absolute path: only literal relative paths count.
                    if dir.starts_with('/') || dir.starts_with('$') {
                        absolute_workdir = true;
                    } else if !absolute_workdir {
                        let msg =
                            format!("Relative workdir \"{dir}\" can have unexpected results if the base image changes");
                        out.push(Warning::at(&WORKDIR_RELATIVE_PATH, msg, ins));
                    }
                }
                _ => {}
            }
            let slot = match ins.keyword {
                Keyword::Cmd => 0,
                Keyword::Entrypoint => 1,
                Keyword::Healthcheck => 2,
                _ => continue,
            };
            // As BuildKit: the earlier instruction is the one reported.
            if let Some(prev) = last[slot] {
                let msg = format!(
                    "Multiple {} instructions should not be used in the same stage because only the last one will be used",
                    ins.keyword.as_str()
                );
                out.push(Warning::at(&MULTIPLE_INSTRUCTIONS_DISALLOWED, msg, prev));
            }
            last[slot] = Some(ins);
        }
    }
}

/// ConsistentInstructionCasing: keywords against the majority casing (upper wins a tie).
fn casing(df: &Dockerfile, text: &str, out: &mut Vec<Warning>) {
    let words: Vec<(&Instruction, &str)> = df.instructions.iter().map(|i| (i, keyword_text(i, text))).collect();
    let lower = words.iter().filter(|(_, w)| self_consistent(w) && *w == w.to_lowercase()).count();
    let upper = words.iter().filter(|(_, w)| self_consistent(w) && *w == w.to_uppercase()).count();
    let majority_lower = lower > upper;
    for (ins, w) in words {
        let wrong = match majority_lower {
            true => (w.to_lowercase() != w).then_some("lowercase"),
            false => (w.to_uppercase() != w).then_some("uppercase"),
        };
        if let Some(case) = wrong {
            let msg = format!("Command '{w}' should match the case of the command majority ({case})");
            out.push(Warning::at(&CONSISTENT_INSTRUCTION_CASING, msg, ins));
        }
    }
}

/// FromAsCasing: `AS` cased like a self-consistent `FROM`.
fn from_as(from: &Instruction, text: &str, out: &mut Vec<Warning>) {
    let kw = keyword_text(from, text);
    let Some((as_kw, _)) = from_words(from).1 else { return };
    let ok = match (kw == kw.to_lowercase(), kw == kw.to_uppercase()) {
        (true, _) => as_kw == as_kw.to_lowercase(),
        (_, true) => as_kw == as_kw.to_uppercase(),
        _ => true,
    };
    if !ok {
        out.push(Warning::at(&FROM_AS_CASING, format!("'{as_kw}' and '{kw}' keywords' casing do not match"), from));
    }
}

/// `ENV key value` / `LABEL key value`: one pair and no `=` after the key in the text.
fn is_legacy_pair(ins: &Instruction, text: &str) -> bool {
    let Args::Pairs(pairs) = &ins.args else { return false };
    let [pair] = pairs.as_slice() else { return false };
    let after_key = text.get(pair.span.start..pair.span.end).unwrap_or("");
    let rest = after_key.trim_start().strip_prefix(pair.key.as_str()).unwrap_or("");
    !rest.starts_with('=')
}
