//! Dockerfile checks through the CLI: `cairn build --check` and `--call check` (nothing
//! built), the warnings at the end of a build, `# check=skip=…;error=true` and the
//! `BUILDKIT_DOCKERFILE_CHECK` build arg; rules that need the context (`.dockerignore`)
//! or the base image's environment (from the store). Each rule's positive and negative
//! cases are the lint module's unit tests.

use crate::build_cli::{cairn, setup, stderr, stream, Tmp};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn check(t: &Tmp, extra: &[&str]) -> std::process::Output {
    let ctx = t.path("ctx");
    let mut args = vec!["build", "--check"];
    args.extend_from_slice(extra);
    let c = ctx.to_str().unwrap().to_string();
    args.push(&c);
    cairn(t, &args)
}

#[test]
fn check_reports_buildkit_rules_without_building() {
    let t = setup("lint-check");
    t.write(
        "ctx/Dockerfile",
        "FROM busybox AS Base\nENV HOME_DIR /root\nCOPY secret.env /etc/\nWORKDIR /w/$HOME_DRI\nRUN apt-get update\nCMD sh\n",
    );
    t.write("ctx/secret.env", "x");
    t.write("ctx/.dockerignore", "secret.env\n");
    let o = check(&t, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.is_empty(), "{}", stderr(&o));
    assert!(out.starts_with("Check complete, 7 warnings have been found!\n"), "{out}");
    let rules: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("WARNING: ")).collect();
    assert_eq!(
        rules,
        [
            "StageNameCasing - https://docs.docker.com/go/dockerfile/rule/stage-name-casing/",
            "LegacyKeyValueFormat - https://docs.docker.com/go/dockerfile/rule/legacy-key-value-format/",
            "CopyIgnoredFile - https://docs.docker.com/go/dockerfile/rule/copy-ignored-file/",
            "UndefinedVar - https://docs.docker.com/go/dockerfile/rule/undefined-var/",
            "AptGetUpdateAlone - docs/build.md#checks",
            "PackageCacheInLayer - docs/build.md#checks",
            "JSONArgsRecommended - https://docs.docker.com/go/dockerfile/rule/json-args-recommended/",
        ],
        "{out}"
    );
    assert!(out.contains("Attempting to Copy file \"secret.env\" that is excluded by .dockerignore\n"), "{out}");
    // The ENV above defines HOME_DIR; the base image's PATH comes from the store.
    assert!(out.contains("Usage of undefined variable '$HOME_DRI' (did you mean $HOME_DIR?)\n"), "{out}");
    assert!(out.contains("/ctx/Dockerfile:4\n"), "{out}");
    assert!(out.contains("   4 | >>> WORKDIR /w/$HOME_DRI\n"), "{out}");
    // Nothing was built.
    assert!(!stdout(&cairn(&t, &["images"])).contains("base"));
    assert!(!t.path("store/builds").exists(), "a check keeps no build record");

    // The build arg skips everything; `--call check` is the same request.
    let o = check(&t, &["--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Check complete, no warnings found.\n");
    let ctx = t.path("ctx");
    let o = cairn(&t, &["build", "--call", "check", ctx.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).starts_with("Check complete, 7 warnings"));
}

#[test]
fn builds_print_warnings_and_error_true_fails_them() {
    let t = setup("lint-build");
    t.write("ctx/Dockerfile", "# check=skip=JSONArgsRecommended\nFROM busybox AS Base\nCMD sh\nMAINTAINER me\n");
    let ctx = t.path("ctx");
    let ctx = ctx.to_str().unwrap();
    let o = cairn(&t, &["build", "--progress", "plain", "-t", "lint:1", ctx]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let tail = &err[err.find("Finished in").expect("a summary")..];
    assert!(
        tail.contains(
            "\n 2 warnings found:\n - StageNameCasing: Stage name 'Base' should be lowercase (line 2)\n - MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label (line 4)\n"
        ),
        "{err}"
    );
    // rawjson: BuildKit's warnings entries.
    let o = cairn(&t, &["build", "--progress", "rawjson", ctx]);
    assert!(o.status.success(), "{}", stderr(&o));
    let warnings: Vec<String> = stream(&o)
        .iter()
        .flat_map(|s| {
            s.warnings.iter().map(|w| String::from_utf8_lossy(&crate::solve_status::b64(&w.short)).into_owned())
        })
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].starts_with("StageNameCasing: "));

    // error=true: the build fails before any step, naming the rules.
    t.write("ctx/Dockerfile", "# check=error=true\nFROM busybox AS Base\nRUN touch /ran\n");
    let o = cairn(&t, &["build", "--progress", "plain", "-t", "lint:2", ctx]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("error: lint violation found for rules: StageNameCasing"), "{err}");
    assert!(!err.contains("RUN touch /ran"), "no step ran:\n{err}");
    assert!(!stdout(&cairn(&t, &["images"])).contains("lint    2"));
    // The build arg turns the failure off again.
    let o = cairn(&t, &["build", "--progress", "plain", "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=error=false", ctx]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A bad directive is a clear error.
    t.write("ctx/Dockerfile", "# check=error=maybe\nFROM busybox\n");
    let o = cairn(&t, &["build", "--check", ctx]);
    assert!(
        stderr(&o).contains("`error=maybe`: `maybe` is not a boolean in the `# check=` directive (line 1)"),
        "{}",
        stderr(&o)
    );
}
