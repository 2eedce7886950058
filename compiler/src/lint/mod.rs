//! Dockerfile checks (`cairn build --check`, `--call check`, and the warnings at the end of
//! every build): BuildKit's rules with BuildKit's names, message texts and meaning, and a
//! few rules of cairn's own about what ends up in layers.
//!
//! The rules work on the grammar's AST (with its line numbers) and the Dockerfile text (the
//! keyword as written, for casing rules), never on the lowered graph: a check must see the
//! Dockerfile as the user wrote it, every stage (not only those the target reaches, as
//! BuildKit's linter does), and must not need a base image. What a rule needs from outside
//! comes through [`LintOptions`]: the base images' environment (`UndefinedVar` is skipped in
//! a stage whose base is unknown, rather than guessing), and what `.dockerignore` excludes.
//!
//! Rules are grouped by what they look at: `stages.rs` (FROM lines and stage names),
//! `style.rs` (instruction forms), `vars.rs` (variables and ARGs), `layers.rs` (COPY
//! sources, and cairn's rules on package caches and deleted files). The `# check=`
//! directive and the `BUILDKIT_DOCKERFILE_CHECK` build arg are read by [`Config`].

mod layers;
mod stages;
mod style;
mod vars;

use cairn_grammar::ast::{Args, Dockerfile, Instruction, Keyword};

/// A check: BuildKit's name, description and documentation page (cairn's own rules link
/// to cairn's documentation).
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    pub name: &'static str,
    pub description: &'static str,
    pub url: &'static str,
}

macro_rules! rules {
    ($($id:ident = $name:literal, $desc:literal, $url:expr;)*) => {
        $(pub const $id: Rule = Rule { name: $name, description: $desc, url: $url };)*
        /// Every rule, in the order of BuildKit's rule list, cairn's own last.
        pub const RULES: &[&Rule] = &[$(&$id),*];
    };
}

/// cairn's own rules are documented in the repository, not on docs.docker.com.
const CAIRN_DOC: &str = "docs/build.md#checks";

rules! {
    STAGE_NAME_CASING = "StageNameCasing", "Stage names should be lowercase",
        "https://docs.docker.com/go/dockerfile/rule/stage-name-casing/";
    FROM_AS_CASING = "FromAsCasing", "The 'as' keyword should match the case of the 'from' keyword",
        "https://docs.docker.com/go/dockerfile/rule/from-as-casing/";
    CONSISTENT_INSTRUCTION_CASING = "ConsistentInstructionCasing",
        "All commands within the Dockerfile should use the same casing (either upper or lower)",
        "https://docs.docker.com/go/dockerfile/rule/consistent-instruction-casing/";
    DUPLICATE_STAGE_NAME = "DuplicateStageName", "Stage names should be unique",
        "https://docs.docker.com/go/dockerfile/rule/duplicate-stage-name/";
    RESERVED_STAGE_NAME = "ReservedStageName", "Reserved words should not be used as stage names",
        "https://docs.docker.com/go/dockerfile/rule/reserved-stage-name/";
    JSON_ARGS_RECOMMENDED = "JSONArgsRecommended",
        "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals",
        "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/";
    MAINTAINER_DEPRECATED = "MaintainerDeprecated",
        "The MAINTAINER instruction is deprecated, use a label instead to define an image author",
        "https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/";
    UNDEFINED_ARG_IN_FROM = "UndefinedArgInFrom", "FROM command must use declared ARGs",
        "https://docs.docker.com/go/dockerfile/rule/undefined-arg-in-from/";
    WORKDIR_RELATIVE_PATH = "WorkdirRelativePath",
        "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes",
        "https://docs.docker.com/go/dockerfile/rule/workdir-relative-path/";
    UNDEFINED_VAR = "UndefinedVar", "Variables should be defined before their use",
        "https://docs.docker.com/go/dockerfile/rule/undefined-var/";
    MULTIPLE_INSTRUCTIONS_DISALLOWED = "MultipleInstructionsDisallowed",
        "Multiple instructions of the same type should not be used in the same stage",
        "https://docs.docker.com/go/dockerfile/rule/multiple-instructions-disallowed/";
    LEGACY_KEY_VALUE_FORMAT = "LegacyKeyValueFormat",
        "Legacy key/value format with whitespace separator should not be used",
        "https://docs.docker.com/go/dockerfile/rule/legacy-key-value-format/";
    INVALID_BASE_IMAGE_PLATFORM = "InvalidBaseImagePlatform",
        "Base image platform does not match expected target platform", "";
    REDUNDANT_TARGET_PLATFORM = "RedundantTargetPlatform",
        "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior",
        "https://docs.docker.com/go/dockerfile/rule/redundant-target-platform/";
    SECRETS_USED_IN_ARG_OR_ENV = "SecretsUsedInArgOrEnv",
        "Sensitive data should not be used in the ARG or ENV commands",
        "https://docs.docker.com/go/dockerfile/rule/secrets-used-in-arg-or-env/";
    INVALID_DEFAULT_ARG_IN_FROM = "InvalidDefaultArgInFrom",
        "Default value for global ARG results in an empty or invalid base image name",
        "https://docs.docker.com/go/dockerfile/rule/invalid-default-arg-in-from/";
    FROM_PLATFORM_FLAG_CONST_DISALLOWED = "FromPlatformFlagConstDisallowed",
        "FROM --platform flag should not use a constant value",
        "https://docs.docker.com/go/dockerfile/rule/from-platform-flag-const-disallowed/";
    COPY_IGNORED_FILE = "CopyIgnoredFile", "Attempting to Copy file that is excluded by .dockerignore",
        "https://docs.docker.com/go/dockerfile/rule/copy-ignored-file/";
    PACKAGE_CACHE_IN_LAYER = "PackageCacheInLayer",
        "Package manager caches should not be left in a layer: remove them in the same RUN or use a cache mount",
        CAIRN_DOC;
    APT_GET_UPDATE_ALONE = "AptGetUpdateAlone",
        "apt-get update should run in the same RUN as the apt-get install it prepares",
        CAIRN_DOC;
    FILE_DELETED_IN_LATER_LAYER = "FileDeletedInLaterLayer",
        "A file added in one layer and deleted in a later one still costs its bytes in the image",
        CAIRN_DOC;
}

/// One finding: the rule, BuildKit's message, and the lines of the instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub rule: &'static Rule,
    pub message: String,
    pub start_line: u32,
    pub end_line: u32,
}

impl Warning {
    fn at(rule: &'static Rule, message: String, ins: &Instruction) -> Warning {
        Warning { rule, message, start_line: ins.start_line, end_line: ins.end_line }
    }

    /// buildx's text: `WARNING: Rule - URL`, the message, then `FILE:LINE` and the lines
    /// themselves between rules, the first marked `>>>`.
    pub fn render(&self, file: &str, text: &str) -> String {
        let mut out = match self.rule.url {
            "" => format!("WARNING: {}\n", self.rule.name),
            url => format!("WARNING: {} - {url}\n", self.rule.name),
        };
        out.push_str(&self.message);
        out.push('\n');
        if self.start_line > 0 {
            out.push_str(&format!("{file}:{}\n--------------------\n", self.start_line));
            for (n, line) in text.lines().enumerate().map(|(i, l)| (i as u32 + 1, l)) {
                if (self.start_line..=self.end_line).contains(&n) {
                    out.push_str(&format!(" {n:>3} | >>> {line}\n"));
                }
            }
            out.push_str("--------------------\n");
        }
        out
    }
}

/// What the checks know beyond the Dockerfile.
pub struct LintOptions<'a> {
    /// The environment variable names of a base image (`None`: unknown).
    pub base_env: &'a dyn Fn(&str) -> Option<Vec<String>>,
    /// Whether `.dockerignore` excludes a context path (or one of its parents).
    pub ignored: &'a dyn Fn(&str) -> bool,
}

/// Which rules run and what a finding does: the `# check=` directive (BuildKit's syntax:
/// `skip=A,B|all;error=true|false;experimental=…`), overridden key by key by the
/// `BUILDKIT_DOCKERFILE_CHECK` build arg.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub skip_all: bool,
    pub skip: Vec<String>,
    /// `error=true`: findings fail the build.
    pub error: bool,
}

impl Config {
    /// Parses one `check` value; an error names the bad option.
    pub fn parse(value: &str) -> Result<Config, String> {
        let mut c = Config::default();
        c.merge(value)?;
        Ok(c)
    }

    /// Applies the options of `value` over these.
    pub fn merge(&mut self, value: &str) -> Result<(), String> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(());
        }
        for part in value.splitn(3, ';') {
            let (k, v) = part.split_once('=').ok_or_else(|| format!("Invalid check option `{part}`"))?;
            match k.trim() {
                "skip" if v.trim() == "all" => self.skip_all = true,
                "skip" => self.skip = v.split(',').map(|r| r.trim().to_string()).collect(),
                // Experimental rules: cairn has none, so there is nothing to enable.
                "experimental" => {}
                "error" => {
                    self.error = match v.trim().to_ascii_lowercase().as_str() {
                        "1" | "t" | "true" => true,
                        "0" | "f" | "false" => false,
                        other => return Err(format!("Invalid check option `{part}`: `{other}` is not a boolean")),
                    }
                }
                other => return Err(format!("Invalid check option `{other}`")),
            }
        }
        Ok(())
    }

    /// The configuration of `df`: its `# check=` directive, then the build arg.
    pub fn of(df: &Dockerfile, build_arg: Option<&str>) -> Result<Config, String> {
        let mut c = Config::default();
        if let Some(d) = df.directives.iter().find(|d| d.name.eq_ignore_ascii_case("check")) {
            // BuildKit reads the value up to the first space.
            let v = d.value.split(' ').next().unwrap_or("");
            c.merge(v).map_err(|e| format!("{e} in the `# check=` directive (line {})", d.span.line))?;
        }
        if let Some(v) = build_arg {
            c.merge(v).map_err(|e| format!("{e} in `--build-arg BUILDKIT_DOCKERFILE_CHECK`"))?;
        }
        Ok(c)
    }

    /// Whether `rule` runs.
    pub fn enabled(&self, rule: &Rule) -> bool {
        !self.skip_all && !self.skip.iter().any(|s| s == rule.name)
    }
}

/// BuildKit's error for `error=true`: the rules that fired, each once.
pub fn violation_error(warnings: &[Warning]) -> Option<String> {
    let mut names: Vec<&str> = warnings.iter().map(|w| w.rule.name).collect();
    names.dedup();
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(*n));
    (!names.is_empty()).then(|| format!("lint violation found for rules: {}", names.join(", ")))
}

/// One stage as the rules see it: its FROM and its instructions.
pub(crate) struct Stage<'a> {
    pub from: &'a Instruction,
    pub image: String,
    pub name: Option<String>,
    pub body: Vec<&'a Instruction>,
}

/// The words of a FROM: image, and `AS name` when present (`as` as written).
pub(crate) fn from_words(ins: &Instruction) -> (String, Option<(String, String)>) {
    let words: Vec<&str> = match &ins.args {
        Args::Words(w) => w.iter().map(|s| s.node.as_str()).collect(),
        _ => Vec::new(),
    };
    let image = words.first().map(|s| s.to_string()).unwrap_or_default();
    let named = match words.as_slice() {
        [_, kw, name, ..] if kw.eq_ignore_ascii_case("as") => Some((kw.to_string(), name.to_string())),
        _ => None,
    };
    (image, named)
}

/// The global instructions (before the first FROM) and the stages.
pub(crate) fn stages(df: &Dockerfile) -> (Vec<&Instruction>, Vec<Stage<'_>>) {
    let mut globals = Vec::new();
    let mut out: Vec<Stage> = Vec::new();
    for ins in &df.instructions {
        if ins.keyword == Keyword::From {
            let (image, named) = from_words(ins);
            out.push(Stage { from: ins, image, name: named.map(|n| n.1), body: Vec::new() });
        } else if let Some(s) = out.last_mut() {
            s.body.push(ins);
        } else {
            globals.push(ins);
        }
    }
    (globals, out)
}

/// The keyword as written in the source text.
pub(crate) fn keyword_text<'t>(ins: &Instruction, text: &'t str) -> &'t str {
    let rest = text.get(ins.span.start..).unwrap_or("");
    let rest = rest.trim_start();
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    &rest[..end]
}

/// Runs every rule the config enables; findings in line order.
pub fn check(df: &Dockerfile, text: &str, opts: &LintOptions, config: &Config) -> Vec<Warning> {
    let mut out = Vec::new();
    stages::check(df, &mut out);
    style::check(df, text, &mut out);
    vars::check(df, opts, &mut out);
    layers::check(df, opts, &mut out);
    out.retain(|w| config.enabled(w.rule));
    out.sort_by_key(|w| w.start_line);
    out
}

/// The layer rule that needs a built image: a path added by one instruction and deleted by
/// a later one (the analysis of the image gives the pairs: path, bytes, adding line,
/// deleting line).
pub fn deleted_in_later_layer(path: &str, bytes: u64, added: u32, deleted: u32) -> Warning {
    Warning {
        rule: &FILE_DELETED_IN_LATER_LAYER,
        message: format!(
            "'{path}' ({bytes} bytes) is added at line {added} and deleted at line {deleted}: it still costs its bytes; create and delete it in one RUN, or use a cache or tmpfs mount"
        ),
        start_line: added,
        end_line: added,
    }
}

#[cfg(test)]
mod tests;
