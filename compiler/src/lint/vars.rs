//! Variables: UndefinedVar, UndefinedArgInFrom, InvalidDefaultArgInFrom,
//! SecretsUsedInArgOrEnv, and the FROM `--platform` rules (RedundantTargetPlatform,
//! FromPlatformFlagConstDisallowed). Which variables a word uses comes from the grammar's
//! own expander (BuildKit's shell-lexer semantics), asked with a lookup that writes down
//! every name it is asked for.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use cairn_grammar::ast::{Args, Dockerfile, Instruction, Keyword};
use cairn_grammar::expand::expand_word;
use cairn_ir::Platform;

use super::{
    stages, LintOptions, Warning, FROM_PLATFORM_FLAG_CONST_DISALLOWED, INVALID_DEFAULT_ARG_IN_FROM,
    REDUNDANT_TARGET_PLATFORM, SECRETS_USED_IN_ARG_OR_ENV, UNDEFINED_ARG_IN_FROM, UNDEFINED_VAR,
};

/// ARGs every FROM may use without declaring them (BuildKit's automatic platform ARGs).
const PLATFORM_ARGS: [&str; 8] = [
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
];

/// Predefined ARGs that are never reported undefined (platform and proxy ARGs).
fn predefined(name: &str) -> bool {
    PLATFORM_ARGS.contains(&name)
        || matches!(
            name.to_ascii_uppercase().as_str(),
            "HTTP_PROXY" | "HTTPS_PROXY" | "FTP_PROXY" | "NO_PROXY" | "ALL_PROXY"
        )
}

/// The value of `word` with `lookup`, and the names it asked for that were unset.
fn expand(word: &str, escape: char, lookup: &dyn Fn(&str) -> Option<String>) -> (Option<String>, Vec<String>) {
    let asked = RefCell::new(Vec::new());
    let r = expand_word(word, escape, &|n| {
        let v = lookup(n);
        if v.is_none() {
            asked.borrow_mut().push(n.to_string());
        }
        v
    });
    let mut unset = asked.into_inner();
    unset.dedup();
    (r.ok(), unset)
}

/// BuildKit's secret-name test: a `_`-separated word of the name (case-insensitive) is a
/// secret word, and none is an allowed one (`public`, `file`, `version`).
pub(crate) fn is_secret_name(name: &str) -> bool {
    const DENY: [&str; 10] =
        ["apikey", "auth", "credential", "credentials", "key", "password", "pword", "passwd", "secret", "token"];
    const ALLOW: [&str; 3] = ["public", "file", "version"];
    let has = |list: &[&str]| name.split('_').any(|w| list.iter().any(|s| w.eq_ignore_ascii_case(s)));
    has(&DENY) && !has(&ALLOW)
}

/// The closest name (edit distance at most 2, or equal ignoring case), for "did you mean".
fn suggest<'a>(name: &str, options: impl Iterator<Item = &'a String>) -> Option<String> {
    fn dist(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }
    options
        .map(|o| (if o.eq_ignore_ascii_case(name) { 0 } else { dist(name, o) }, o))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, o)| o.clone())
}

fn pairs(ins: &Instruction) -> Vec<(String, Option<String>)> {
    match &ins.args {
        Args::Pairs(p) => p.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect(),
        _ => Vec::new(),
    }
}

/// The words an instruction expands (RUN, CMD and ENTRYPOINT are left to the shell).
fn expanded_words(ins: &Instruction) -> Vec<String> {
    match (&ins.keyword, &ins.args) {
        (Keyword::Run | Keyword::Cmd | Keyword::Entrypoint | Keyword::Healthcheck | Keyword::Shell, _) => Vec::new(),
        (Keyword::Onbuild | Keyword::From | Keyword::Maintainer, _) => Vec::new(),
        (_, Args::Words(w)) => w.iter().map(|w| w.node.clone()).collect(),
        (_, Args::Exec(w)) => w.clone(),
        (_, Args::Pairs(p)) => p.iter().filter_map(|kv| kv.value.clone()).collect(),
        _ => Vec::new(),
    }
}

pub(super) fn check(df: &Dockerfile, opts: &LintOptions, out: &mut Vec<Warning>) {
    let esc = df.escape;
    let (globals, stages) = stages(df);
    // Global ARGs: declared names and their defaults.
    let mut global_defaults: HashMap<String, Option<String>> = HashMap::new();
    for ins in &globals {
        for (k, v) in pairs(ins) {
            if ins.keyword == Keyword::Arg {
                secrets(ins, "ARG", &k, out);
                global_defaults.insert(k, v);
            }
        }
    }
    let host = Platform::host();
    let platform_value = |n: &str| -> Option<String> {
        Some(match n {
            "TARGETPLATFORM" | "BUILDPLATFORM" => host.to_string(),
            "TARGETOS" | "BUILDOS" => host.os.clone(),
            "TARGETARCH" | "BUILDARCH" => host.architecture.clone(),
            "TARGETVARIANT" | "BUILDVARIANT" => host.variant.clone(),
            _ => return None,
        })
    };
    // Per stage (by lower-case name), the names its ENV defines, for stages built on it.
    let mut stage_env: HashMap<String, Option<BTreeSet<String>>> = HashMap::new();
    for s in &stages {
        // FROM: declared ARGs only, and their defaults must give a valid name.
        let declared = |n: &str| global_defaults.contains_key(n) || PLATFORM_ARGS.contains(&n);
        let mut from_words = vec![s.image.clone()];
        let platform_flag = s.from.flags.iter().find(|f| f.name == "platform").and_then(|f| f.value.clone());
        from_words.extend(platform_flag.clone());
        for w in &from_words {
            let (_, unset) = expand(w, esc, &|n| declared(n).then(String::new));
            for name in unset {
                let mut msg = format!("FROM argument '{name}' is not declared");
                if let Some(m) = suggest(&name, global_defaults.keys()) {
                    msg.push_str(&format!(" (did you mean {m}?)"));
                }
                out.push(Warning::at(&UNDEFINED_ARG_IN_FROM, msg, s.from));
            }
        }
        if s.image.contains('$') {
            let default = |n: &str| platform_value(n).or_else(|| global_defaults.get(n).cloned().flatten());
            let value = expand(&s.image, esc, &|n| Some(default(n).unwrap_or_default())).0.unwrap_or_default();
            let is_stage =
                stages.iter().any(|o| o.name.as_deref().map(str::to_lowercase) == Some(value.to_lowercase()));
            if !is_stage && cairn_ir::reference::normalize(&value).is_err() {
                let msg = format!("Default value for ARG {} results in empty or invalid base image name", s.image);
                out.push(Warning::at(&INVALID_DEFAULT_ARG_IN_FROM, msg, s.from));
            }
        }
        if let Some(p) = &platform_flag {
            platform_rules(p, s.name.as_deref().unwrap_or(""), s.from, esc, out);
        }
        // The stage body: names defined so far (None: the base image's env is unknown).
        let base = s.image.to_lowercase();
        let mut defined: Option<BTreeSet<String>> = match stage_env.get(&base) {
            Some(env) => env.clone(),
            None if base == "scratch" => Some(BTreeSet::new()),
            None => (opts.base_env)(&s.image).map(|v| v.into_iter().collect()),
        };
        for ins in &s.body {
            if let Some(names) = &defined {
                for w in expanded_words(ins) {
                    let (_, unset) = expand(&w, esc, &|n| names.contains(n).then(String::new));
                    for name in unset.into_iter().filter(|n| !predefined(n)) {
                        let mut msg = format!("Usage of undefined variable '${name}'");
                        if let Some(m) = suggest(&name, names.iter()) {
                            msg.push_str(&format!(" (did you mean ${m}?)"));
                        }
                        out.push(Warning::at(&UNDEFINED_VAR, msg, ins));
                    }
                }
            }
            if matches!(ins.keyword, Keyword::Arg | Keyword::Env) {
                for (k, _) in pairs(ins) {
                    secrets(ins, ins.keyword.as_str(), &k, out);
                    if let Some(names) = &mut defined {
                        names.insert(k);
                    }
                }
            }
        }
        if let Some(name) = &s.name {
            stage_env.insert(name.to_lowercase(), defined);
        }
    }
}

fn secrets(ins: &Instruction, kind: &str, key: &str, out: &mut Vec<Warning>) {
    if is_secret_name(key) {
        let msg = format!("Do not use ARG or ENV instructions for sensitive data ({kind} \"{key}\")");
        out.push(Warning::at(&SECRETS_USED_IN_ARG_OR_ENV, msg, ins));
    }
}

/// RedundantTargetPlatform (`--platform=$TARGETPLATFORM`) and
/// FromPlatformFlagConstDisallowed (a constant platform, unless the stage's name names
/// its OS or architecture).
fn platform_rules(p: &str, stage: &str, from: &Instruction, esc: char, out: &mut Vec<Warning>) {
    let asked = RefCell::new(Vec::new());
    let _ = expand_word(p, esc, &|n| {
        asked.borrow_mut().push(n.to_string());
        Some(String::new())
    });
    let asked = asked.into_inner();
    if asked.is_empty() {
        if let Some(plat) = Platform::parse(p) {
            if !stage.contains(&plat.os) && !stage.contains(&plat.architecture) {
                let msg = format!("FROM --platform flag should not use constant value \"{p}\"");
                out.push(Warning::at(&FROM_PLATFORM_FLAG_CONST_DISALLOWED, msg, from));
            }
        }
    } else if asked == ["TARGETPLATFORM"] && matches!(p, "$TARGETPLATFORM" | "${TARGETPLATFORM}") {
        let msg = format!("Setting platform to predefined {p} in FROM is redundant as this is the default behavior");
        out.push(Warning::at(&REDUNDANT_TARGET_PLATFORM, msg, from));
    }
}
