//! `cairn bake`: buildx bake files (HCL and JSON) with targets sharing a base stage built
//! in one solve, variables, `inherits`, groups, `--print`, errors.

use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::build_cli::{executed_steps, setup, stderr, summary, Tmp, BIN};

/// Runs `cairn bake --progress rawjson ARGS` in the test's `ctx` directory (bake reads its
/// files and contexts relative to the working directory, as buildx does).
fn bake(t: &Tmp, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.arg("bake").arg("--progress").arg("rawjson").args(args);
    c.current_dir(t.path("ctx")).env("CAIRN_ROOT", t.path("store")).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run cairn")
}

const DOCKERFILE: &str = "FROM busybox AS base\nRUN echo base >> /base-runs\n\n\
FROM base AS one\nARG WHO=nobody\nRUN echo \"one $WHO\" > /one\n\n\
FROM base AS two\nRUN echo two > /two\n\n\
FROM base AS three\nRUN echo three > /three\n";

const HCL: &str = r#"variable "WHO" {
  default = "hcl"
}

group "default" {
  targets = ["one", "two", "three"]
}

target "common" {
  args = { WHO = "${WHO}" }
}

target "one" {
  inherits = ["common"]
  target = "one"
  output = ["type=local,dest=out/one"]
}

target "two" {
  target = "two"
  output = ["type=local,dest=out/two"]
}

target "three" {
  target = "three"
  tags = ["bake-three:${WHO}"]
}
"#;

fn read(t: &Tmp, rel: &str) -> String {
    std::fs::read_to_string(t.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn three_targets_share_their_base_stage_in_one_solve() {
    let t = setup("bake-shared");
    t.write("ctx/Dockerfile", DOCKERFILE);
    t.write("ctx/docker-bake.hcl", HCL);
    let o = bake(&t, &[], &[("WHO", "env")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ran = executed_steps(&o);
    let base_runs = ran.iter().filter(|s| s.contains("echo base")).count();
    assert_eq!(base_runs, 1, "the base stage ran {base_runs} times: {ran:?}");
    for want in ["one $WHO", "echo two", "echo three"] {
        assert_eq!(ran.iter().filter(|s| s.contains(want)).count(), 1, "{want}: {ran:?}");
    }
    // Each target's output holds the base stage's file, written once, and its own.
    assert_eq!(read(&t, "ctx/out/one/base-runs"), "base\n");
    assert_eq!(read(&t, "ctx/out/one/one"), "one env\n", "WHO from the environment, through inherits");
    assert!(!t.path("ctx/out/one/two").exists());
    assert_eq!(read(&t, "ctx/out/two/base-runs"), "base\n");
    assert_eq!(read(&t, "ctx/out/two/two"), "two\n");
    // The third is tagged with the variable's value; its image holds its file.
    let root = t.path("store");
    let o2 = Command::new(BIN)
        .args(["build", "--progress", "rawjson", "-o", "type=local,dest=../check"])
        .arg("-")
        .current_dir(t.path("ctx"))
        .env("CAIRN_ROOT", &root)
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"FROM bake-three:env\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(o2.status.success(), "{}", stderr(&o2));
    assert_eq!(read(&t, "check/three"), "three\n");
    assert_eq!(read(&t, "check/base-runs"), "base\n");
    // Again: all cached.
    let o = bake(&t, &[], &[("WHO", "env")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(summary(&o)["executed"], 0, "{}", stderr(&o));
}

#[test]
fn a_target_or_a_group_is_built_alone_and_json_reads_the_same() {
    let t = setup("bake-json");
    t.write("ctx/Dockerfile", DOCKERFILE);
    t.write(
        "ctx/docker-bake.json",
        r#"{
  "variable": { "WHO": { "default": "json" } },
  "group": { "pair": { "targets": ["one", "two"] } },
  "target": {
    "one": { "target": "one", "args": { "WHO": "${WHO}" }, "output": ["type=local,dest=out/one"] },
    "two": { "target": "two", "output": ["type=local,dest=out/two"] }
  }
}"#,
    );
    let o = bake(&t, &["one"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&t, "ctx/out/one/one"), "one json\n");
    assert!(!t.path("ctx/out/two").exists(), "only the named target is built");
    let o = bake(&t, &["pair"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&t, "ctx/out/two/two"), "two\n");
    let ran = executed_steps(&o);
    assert!(ran.iter().all(|s| !s.contains("echo base")), "the base stage was cached: {ran:?}");
}

#[test]
fn print_shows_the_resolved_targets() {
    let t = Tmp::new("bake-print");
    t.write("ctx/docker-bake.hcl", HCL);
    let o = bake(&t, &["--print", "one", "three"], &[("WHO", "p")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["group"]["default"]["targets"], serde_json::json!(["one", "three"]));
    assert_eq!(v["target"]["one"]["args"]["WHO"], "p");
    assert_eq!(v["target"]["one"]["context"], ".");
    assert_eq!(v["target"]["one"]["dockerfile"], "Dockerfile");
    assert_eq!(v["target"]["one"]["target"], "one");
    assert_eq!(v["target"]["three"]["tags"], serde_json::json!(["bake-three:p"]));
    assert!(v["target"]["two"].is_null());
}

#[test]
fn bad_files_and_unknown_targets_are_clear_errors() {
    let t = Tmp::new("bake-errors");
    t.write("ctx/docker-bake.hcl", HCL);
    let o = bake(&t, &["--print", "nope"], &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("no target or group named `nope`") && e.contains("three"), "{e}");
    t.write("ctx/bad.hcl", "target \"a\" {\n  context = \".\"\n  tags = [\"x\"\n}\n");
    let o = bake(&t, &["-f", "bad.hcl", "--print", "a"], &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("bad.hcl:4:1"), "{e}");
    t.write("ctx/loop.hcl", "target \"a\" {\n  inherits = [\"b\"]\n}\ntarget \"b\" {\n  inherits = [\"a\"]\n}\n");
    let o = bake(&t, &["-f", "loop.hcl", "--print", "a"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("inherits from itself"), "{}", stderr(&o));
    t.write("ctx/unknown.hcl", "target \"a\" {\n  shm-size = \"1g\"\n}\n");
    let o = bake(&t, &["-f", "unknown.hcl", "--print", "a"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("target `a`: unknown field `shm-size`"), "{}", stderr(&o));
    t.write("ctx/multi.hcl", "target \"a\" {\n  platforms = [\"linux/amd64\", \"linux/arm64\"]\n}\n");
    let o = bake(&t, &["-f", "multi.hcl", "a"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("one platform per target"), "{}", stderr(&o));
}

#[test]
fn a_target_context_names_another_target_of_the_same_dockerfile() {
    let t = setup("bake-contexts");
    t.write(
        "ctx/Dockerfile",
        "FROM busybox AS base\nRUN echo base > /base\n\nFROM busybox AS app\nCOPY --from=deps /base /from-deps\n",
    );
    t.write("ctx/other/Dockerfile", "FROM busybox AS base\n");
    t.write(
        "ctx/docker-bake.hcl",
        r#"target "base" {
  target = "base"
}
target "app" {
  target = "app"
  contexts = { deps = "target:base" }
  no-cache = true
  output = ["type=local,dest=out/app"]
}
target "elsewhere" {
  context = "other"
  target = "base"
}
target "bad" {
  contexts = { deps = "target:elsewhere" }
}
"#,
    );
    let o = bake(&t, &["app"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&t, "ctx/out/app/from-deps"), "base\n");
    let o = bake(&t, &["bad"], &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("context `deps=target:elsewhere`") && e.contains("same Dockerfile only"), "{e}");
    let o = bake(&t, &["app", "elsewhere"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("differs from the other targets'"), "{}", stderr(&o));
}
