//! Each rule with a Dockerfile that triggers it and one that does not; messages as
//! BuildKit words them; the `# check=` directive and the build arg.

use super::*;

fn lint_with(text: &str, config: &Config) -> Vec<Warning> {
    let df = cairn_grammar::parse("Dockerfile", text).unwrap();
    let base_env = |image: &str| (image == "busybox").then(|| vec!["PATH".to_string(), "HOME".to_string()]);
    let ignored = |p: &str| p == "secret.env" || p.starts_with("tmp/");
    check(&df, text, &LintOptions { base_env: &base_env, ignored: &ignored }, config)
}

fn lint(text: &str) -> Vec<(&'static str, String)> {
    lint_with(text, &Config::default()).into_iter().map(|w| (w.rule.name, w.message)).collect()
}

fn names(text: &str) -> Vec<&'static str> {
    lint(text).into_iter().map(|(n, _)| n).collect()
}

/// (rule, a Dockerfile that triggers it with this message, one that does not).
const CASES: &[(&str, &str, &str, &str)] = &[
    ("StageNameCasing", "FROM busybox AS Build\n", "Stage name 'Build' should be lowercase", "FROM busybox AS build\n"),
    ("FromAsCasing", "FROM busybox as build\n", "'as' and 'FROM' keywords' casing do not match", "from busybox as build\n"),
    (
        "ConsistentInstructionCasing",
        "FROM busybox\nRUN true\nrun true\n",
        "Command 'run' should match the case of the command majority (uppercase)",
        "from busybox\nrun true\n",
    ),
    (
        "DuplicateStageName",
        "FROM busybox AS a\nFROM busybox AS a\n",
        "Duplicate stage name \"a\", stage names should be unique",
        "FROM busybox AS a\nFROM busybox AS b\n",
    ),
    (
        "ReservedStageName",
        "FROM busybox AS scratch\n",
        "Stage name should not use the same name as reserved stage \"scratch\"",
        "FROM busybox AS base\n",
    ),
    (
        "JSONArgsRecommended",
        "FROM busybox\nCMD echo hi\n",
        "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals",
        "FROM busybox\nCMD [\"echo\", \"hi\"]\n",
    ),
    (
        "LegacyKeyValueFormat",
        "FROM busybox\nENV A 1\n",
        "\"ENV key=value\" should be used instead of legacy \"ENV key value\" format",
        "FROM busybox\nENV A=1\n",
    ),
    (
        "MaintainerDeprecated",
        "FROM busybox\nMAINTAINER me\n",
        "Maintainer instruction is deprecated in favor of using label",
        "FROM busybox\nLABEL org.opencontainers.image.authors=me\n",
    ),
    (
        "UndefinedVar",
        "FROM busybox\nARG VERSION\nCOPY app-$VERSON /app\n",
        "Usage of undefined variable '$VERSON' (did you mean $VERSION?)",
        "FROM busybox\nARG VERSION\nENV P=$PATH:/x\nCOPY app-$VERSION /app\n",
    ),
    (
        "UndefinedArgInFrom",
        "ARG TAG=1\nFROM busybox:$TAGG\n",
        "FROM argument 'TAGG' is not declared (did you mean TAG?)",
        "ARG TAG=1\nFROM busybox:$TAG\n",
    ),
    (
        "InvalidDefaultArgInFrom",
        "ARG TAG\nFROM busybox:${TAG}\n",
        "Default value for ARG busybox:${TAG} results in empty or invalid base image name",
        "ARG TAG=latest\nFROM busybox:${TAG}\n",
    ),
    (
        "WorkdirRelativePath",
        "FROM busybox\nWORKDIR app\n",
        "Relative workdir \"app\" can have unexpected results if the base image changes",
        "FROM busybox\nWORKDIR /srv\nWORKDIR app\n",
    ),
    (
        "SecretsUsedInArgOrEnv",
        "FROM busybox\nARG API_TOKEN\n",
        "Do not use ARG or ENV instructions for sensitive data (ARG \"API_TOKEN\")",
        "FROM busybox\nARG PUBLIC_KEY\nARG TOKENIZER\n",
    ),
    (
        "FromPlatformFlagConstDisallowed",
        "FROM --platform=linux/amd64 busybox AS base\n",
        "FROM --platform flag should not use constant value \"linux/amd64\"",
        "FROM --platform=linux/amd64 busybox AS build_amd64\n",
    ),
    (
        "RedundantTargetPlatform",
        "FROM --platform=$TARGETPLATFORM busybox\n",
        "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior",
        "FROM --platform=$BUILDPLATFORM busybox\n",
    ),
    (
        "MultipleInstructionsDisallowed",
        "FROM busybox\nCMD [\"a\"]\nCMD [\"b\"]\n",
        "Multiple CMD instructions should not be used in the same stage because only the last one will be used",
        "FROM busybox AS a\nCMD [\"a\"]\nFROM a\nCMD [\"b\"]\n",
    ),
    (
        "CopyIgnoredFile",
        "FROM busybox\nCOPY ./secret.env /etc/\n",
        "Attempting to Copy file \"secret.env\" that is excluded by .dockerignore",
        "FROM busybox AS a\nCOPY app.env /etc/\nFROM busybox\nCOPY --from=a secret.env /etc/\n",
    ),
    (
        "PackageCacheInLayer",
        "FROM busybox\nRUN apt-get update && apt-get install -y curl\n",
        "apt lists (/var/lib/apt/lists) are left in the layer: remove them in the same RUN (rm -rf /var/lib/apt/lists/*) or use --mount=type=cache,target=/var/lib/apt/lists",
        "FROM busybox\nRUN --mount=type=cache,target=/var/lib/apt/lists apt-get update && apt-get install -y curl\nRUN pip install --no-cache-dir x && npm ci && npm cache clean --force\n",
    ),
    (
        "AptGetUpdateAlone",
        "FROM busybox\nRUN apt-get -q update\nRUN apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n",
        "'apt-get update' alone in a RUN: its cached layer keeps stale package lists for the installs of later steps; run it with 'apt-get install' in one RUN",
        "FROM busybox\nRUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n",
    ),
    (
        "FileDeletedInLaterLayer",
        "FROM busybox\nCOPY big.tar /tmp/big.tar\nRUN tar xf /tmp/big.tar && rm /tmp/big.tar\n",
        "'/tmp/big.tar' is added at line 2 and deleted at line 3: it still costs its bytes in the image; add and delete it in one RUN (with a bind mount), or use a cache or tmpfs mount",
        "FROM busybox\nRUN --mount=type=bind,source=big.tar,target=/tmp/big.tar tar xf /tmp/big.tar\n",
    ),
];

#[test]
fn every_rule_fires_on_its_positive_and_not_on_its_negative() {
    for (rule, bad, message, good) in CASES {
        let got = lint(bad);
        assert!(got.contains(&(rule, message.to_string())), "{rule} on {bad:?}: {got:?}");
        assert!(!names(good).contains(rule), "{rule} on the good {good:?}: {:?}", lint(good));
    }
    // Every rule in the table has a case, but InvalidBaseImagePlatform: the compiler's
    // base-image platform warning is that check.
    for r in RULES.iter().filter(|r| r.name != "InvalidBaseImagePlatform") {
        assert!(CASES.iter().any(|c| c.0 == r.name), "no case for {}", r.name);
    }
}

#[test]
fn more_cases_of_the_subtle_rules() {
    // UndefinedVar is not guessed when the base image's environment is unknown.
    assert!(!names("FROM unknown\nCOPY $X /x\n").contains(&"UndefinedVar"));
    // A stage built on another sees its ENV; a stage's ARG is defined after it.
    assert!(lint("FROM busybox AS a\nENV D=/x\nFROM a\nWORKDIR $D\n").is_empty());
    // pip and npm caches left.
    let w = lint("FROM busybox\nRUN python3 -m pip install flask\nRUN npm install\n");
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].1.starts_with("pip's cache (/root/.cache/pip)") && w[1].1.starts_with("npm's cache (/root/.npm)"));
    // MultipleInstructionsDisallowed reports the earlier one.
    let df = "FROM busybox\nHEALTHCHECK CMD [\"a\"]\nHEALTHCHECK NONE\n";
    let w = lint_with(df, &Config::default());
    assert_eq!((w[0].rule.name, w[0].start_line), ("MultipleInstructionsDisallowed", 2));
    // Rendered as buildx renders it.
    let text = "FROM busybox AS Build\n";
    let r = lint_with(text, &Config::default())[0].render("Dockerfile", text);
    assert_eq!(
        r,
        "WARNING: StageNameCasing - https://docs.docker.com/go/dockerfile/rule/stage-name-casing/\nStage name 'Build' should be lowercase\nDockerfile:1\n--------------------\n   1 | >>> FROM busybox AS Build\n--------------------\n"
    );
}

#[test]
fn check_directive_and_build_arg() {
    let text =
        "# check=skip=StageNameCasing,JSONArgsRecommended;error=true\nFROM busybox AS Build\nCMD x\nMAINTAINER me\n";
    let df = cairn_grammar::parse("Dockerfile", text).unwrap();
    let c = Config::of(&df, None).unwrap();
    assert!(c.error && c.skip == ["StageNameCasing", "JSONArgsRecommended"]);
    let w = lint_with(text, &c);
    assert_eq!(w.iter().map(|w| w.rule.name).collect::<Vec<_>>(), ["MaintainerDeprecated"]);
    assert_eq!(violation_error(&w).unwrap(), "lint violation found for rules: MaintainerDeprecated");
    // The build arg overrides the directive key by key.
    let c = Config::of(&df, Some("skip=all")).unwrap();
    assert!(c.error && lint_with(text, &c).is_empty());
    let c = Config::of(&df, Some("error=false")).unwrap();
    assert!(!c.error);
    assert_eq!(Config::parse("skip").unwrap_err(), "Invalid check option `skip`");
    assert_eq!(Config::parse("colour=red").unwrap_err(), "Invalid check option `colour`");
    let bad = cairn_grammar::parse("Dockerfile", "# check=error=maybe\nFROM busybox\n").unwrap();
    assert!(Config::of(&bad, None).unwrap_err().contains("(line 1)"));
}
