//! Why steps missed the cache: `cairn build --explain` for each kind of reason (a file
//! changed, a build arg changed, the base image retagged, `--no-cache`, a first build),
//! the same reasons as statuses in the rawjson stream, `cairn explain` of a past build,
//! and no secret value in the records the store keeps.

use crate::build_cli::{build, cairn, setup, stderr, stream, Tmp};

/// Builds `ctx` with `--explain` and `extra`; returns the build's id and its explanation
/// (the `--explain` text, carried as a notice in the rawjson stream).
fn explain_build(t: &Tmp, extra: &[&str]) -> (String, String, Vec<String>) {
    let mut args = vec!["--explain"];
    args.extend_from_slice(extra);
    let (o, _) = build(t, &args);
    let text = stderr(&o);
    assert!(o.status.success(), "{text}");
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("Build ").and_then(|r| r.split_once(' ')).map(|x| x.0.to_string()))
        .unwrap_or_else(|| panic!("no build id in:\n{text}"));
    // The reasons as BuildKit statuses of the step's vertex.
    let statuses = stream(&o)
        .iter()
        .flat_map(|s| s.statuses.iter().filter_map(|st| st.name.clone()))
        .filter(|n| n.starts_with("cache miss: "))
        .collect();
    (id, text, statuses)
}

fn ok(t: &Tmp, args: &[&str]) -> String {
    let o = cairn(t, args);
    assert!(o.status.success(), "cairn {args:?}: {}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn explain_names_each_kind_of_reason() {
    let t = setup("explain");
    ok(&t, &["tag", "busybox", "base:1"]);
    t.write("ctx/Dockerfile", "FROM base:1\nARG VERSION=0\nCOPY src/ /app/\nRUN echo $VERSION > /v\n");
    t.write("ctx/src/main.rs", "fn main() {}\n");
    t.write("ctx/src/lib.rs", "\n");

    let (_, text, statuses) = explain_build(&t, &["--build-arg", "VERSION=1"]);
    assert_eq!(text.matches("first build of this step").count(), 2, "{text}");
    assert!(statuses.iter().all(|s| s == "cache miss: first build of this step"), "{statuses:?}");
    assert_eq!(statuses.len(), 2);

    // A file of the COPY changed: named, and the RUN after it ran because its input did.
    t.write("ctx/src/main.rs", "fn main() { println!(); }\n");
    let (file_build, text, statuses) = explain_build(&t, &["--build-arg", "VERSION=1"]);
    assert!(text.contains("COPY src/ /app/: src/main.rs changed"), "{text}");
    assert!(!text.contains("src/lib.rs"), "an unchanged file is not named:\n{text}");
    assert!(statuses.contains(&"cache miss: COPY src/ /app/: src/main.rs changed".to_string()), "{statuses:?}");
    assert!(text.contains("input `[2/3] COPY src/ /app/` changed"), "{text}");

    // A build arg changed: only the RUN that sees it ran.
    let (_, text, statuses) = explain_build(&t, &["--build-arg", "VERSION=2"]);
    assert!(text.contains("ARG VERSION 1 → 2"), "{text}");
    assert_eq!(statuses, ["cache miss: ARG VERSION 1 → 2"]);

    // The base retagged to another image: its new digest.
    t.write("base/Dockerfile", "FROM busybox\nRUN echo other > /marker\n");
    let meta = t.path("base-meta.json");
    let base_ctx = t.path("base");
    let o = cairn(
        &t,
        &["build", "-q", "-t", "base:1", "--metadata-file", meta.to_str().unwrap(), base_ctx.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let digest = meta["containerimage.digest"].as_str().unwrap();
    let (_, text, _) = explain_build(&t, &["--build-arg", "VERSION=2"]);
    assert!(text.contains(&format!("base base:1 now {digest}")), "{text}");

    // Nothing changed, but --no-cache.
    let (last, text, statuses) = explain_build(&t, &["--build-arg", "VERSION=2", "--no-cache"]);
    assert_eq!(text.matches("--no-cache").count(), 2, "{text}");
    assert!(statuses.iter().all(|s| s == "cache miss: --no-cache"), "{statuses:?}");

    // A fully cached build explains nothing.
    let (_, text, statuses) = explain_build(&t, &["--build-arg", "VERSION=2"]);
    assert!(text.contains(": 0 of 2 steps ran"), "{text}");
    assert!(statuses.is_empty());

    // `cairn explain` of a past build (by id prefix) and of the last one; the list.
    let past = ok(&t, &["explain", &file_build[..6]]);
    assert!(past.contains("src/main.rs changed") && past.starts_with(&format!("Build {file_build} ")), "{past}");
    let latest = ok(&t, &["explain"]);
    assert!(latest.contains(": 0 of 2 steps ran"), "{latest}");
    let list = ok(&t, &["explain", "--list"]);
    assert_eq!(list.lines().count(), 1 + 7, "a header and 7 builds (the base's too):\n{list}");
    assert!(list.contains(&last) && list.contains(&file_build));
    let json: serde_json::Value = serde_json::from_str(&ok(&t, &["explain", &last, "--format", "json"])).unwrap();
    assert_eq!(json["id"], last.as_str());
    assert_eq!(json["steps"].as_array().unwrap().len(), 2);
    let o = cairn(&t, &["explain", "ffffffffffff"]);
    assert!(!o.status.success() && stderr(&o).contains("No build `ffffffffffff`"), "{}", stderr(&o));
}

#[test]
fn records_keep_no_secret_value() {
    let t = setup("explain-secret");
    t.write(
        "ctx/Dockerfile",
        "FROM busybox\nARG API_TOKEN\nRUN --mount=type=bind,source=expected,target=/expected --mount=type=secret,id=tok,env=TOK test \"$TOK\" = \"$(cat /expected)\" && echo \"$API_TOKEN\" > /t\n",
    );
    t.write("tok", "s3cr3t-mount-value");
    t.write("ctx/expected", "s3cr3t-mount-value");
    let secret = format!("id=tok,src={}", t.path("tok").display());
    for value in ["hunter2-arg-value", "hunter3-arg-value"] {
        let (_, text, _) = explain_build(&t, &["--secret", &secret, "--build-arg", &format!("API_TOKEN={value}")]);
        if value == "hunter3-arg-value" {
            assert!(text.contains("ARG API_TOKEN changed (value hidden: the name looks like a secret)"), "{text}");
        }
    }
    let mut files = 0;
    for e in std::fs::read_dir(t.path("store/builds")).unwrap() {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for secret in ["s3cr3t-mount-value", "hunter2-arg-value", "hunter3-arg-value"] {
            assert!(!text.contains(secret), "a build record holds `{secret}`");
        }
        files += 1;
    }
    assert_eq!(files, 3, "two records and the store's salt");
}

#[test]
fn plan_predicts_hits_and_misses_as_text_and_svg() {
    let t = setup("plan");
    t.write("ctx/Dockerfile", "FROM busybox\nCOPY src/ /app/\nRUN cat /app/main.rs > /copy\nRUN echo done > /done\n");
    t.write("ctx/src/main.rs", "fn main() {}\n");
    let ctx = t.path("ctx");
    let ctx = ctx.to_str().unwrap();
    let plan = |extra: &[&str]| {
        let mut args = vec!["plan", ctx];
        args.extend_from_slice(extra);
        ok(&t, &args)
    };
    let first = plan(&[]);
    assert!(first.contains(": 3 of 3 steps would run\n"), "{first}");
    assert_eq!(first.matches("first build of this step").count(), 1, "{first}");
    assert_eq!(first.matches(", which runs").count(), 2, "the steps after it cannot be cached:\n{first}");
    assert!(!t.path("store/builds").exists() || ok(&t, &["explain", "--list"]).lines().count() == 1, "nothing ran");

    let (o, _) = build(&t, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cached = plan(&[]);
    assert!(cached.contains(": 0 of 3 steps would run\n"), "{cached}");
    assert_eq!(cached.matches("\nCACHED ").count(), 3, "{cached}");
    assert!(plan(&["--no-cache"]).contains(": 3 of 3 steps would run\n"));

    // A changed file: its COPY runs, and what follows runs after it.
    t.write("ctx/src/main.rs", "fn main() { loop {} }\n");
    let changed = plan(&[]);
    assert!(
        changed.contains("RUN    [2/4] COPY src/ /app/\n         COPY src/ /app/: src/main.rs changed\n"),
        "{changed}"
    );
    assert!(changed.contains("runs after `[2/4] COPY src/ /app/`, which runs"), "{changed}");
    // The prediction is the build's outcome.
    let (o, _) = build(&t, &[]);
    assert_eq!(crate::build_cli::executed_steps(&o).len(), 3, "{}", stderr(&o));

    // As SVG: Graphviz draws one box per vertex, the steps classed by their prediction;
    // Chromium opens it without an XML error.
    t.write("ctx/src/main.rs", "fn main() { return; }\n");
    let svg = t.path("plan.svg");
    plan(&["--format", "dot", "-o", svg.to_str().unwrap()]);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<?xml") && text.contains("<svg"), "{text}");
    assert_eq!(text.matches("class=\"node run\"").count(), 3, "{text}");
    assert_eq!(text.matches("class=\"node cached\"").count(), 0);
    assert!(text.contains("src/main.rs changed"), "{text}");
    let (dom, log) = crate::inspect_cli::chromium(&t, &svg, None);
    assert!(!dom.contains("parsererror") && dom.matches("class=\"node run\"").count() == 3, "{dom}");
    assert!(!log.contains("Uncaught"), "{log}");
    let o = cairn(&t, &["plan", "-f", "-", ctx]);
    assert!(!o.status.success() && stderr(&o).contains("`-f -` is not supported"));
}
