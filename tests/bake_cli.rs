//! `cairn bake`: buildx bake files (HCL, JSON and compose files) with targets sharing a
//! base stage built in one solve, variables, `inherits`, groups, `--print`, pushes, shared
//! caches, errors.

use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::build_cli::{busybox_archive, executed_steps, setup, stderr, summary, Tmp, BIN};
use crate::registry_fixture::Registry;

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
    t.write("ctx/badplat.hcl", "target \"a\" {\n  platforms = [\"linux\"]\n}\n");
    let o = bake(&t, &["-f", "badplat.hcl", "a"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("target `a`: invalid platform `linux`"), "{}", stderr(&o));
}

/// Targets of different context directories bake in one solve (each context its own
/// local source), and a target of two platforms gives an image index in its OCI output.
#[test]
fn targets_of_several_contexts_and_platforms_in_one_run() {
    let t = setup("bake-multi");
    let df = "FROM --platform=$BUILDPLATFORM busybox AS build\nARG TARGETARCH\nCOPY msg /msg\n\
              RUN echo \"$(cat /msg) for $TARGETARCH\" > /out\nFROM scratch\nCOPY --from=build /out /out\n";
    for (dir, msg) in [("ctx/a", "from a"), ("ctx/b", "from b")] {
        t.write(&format!("{dir}/Dockerfile"), df);
        t.write(&format!("{dir}/msg"), msg);
    }
    t.write(
        "ctx/docker-bake.hcl",
        "group \"default\" {\n  targets = [\"a\", \"b\"]\n}\n\
         target \"a\" {\n  context = \"a\"\n  platforms = [\"linux/amd64\", \"linux/arm64\"]\n  \
         output = [\"type=oci,dest=out/a,tar=false\"]\n}\n\
         target \"b\" {\n  context = \"b\"\n  output = [\"type=local,dest=out/b\"]\n}\n",
    );
    let o = bake(&t, &[], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(read(&t, "ctx/out/b/out").starts_with("from b for "), "{}", read(&t, "ctx/out/b/out"));
    let index: Value = serde_json::from_str(&read(&t, "ctx/out/a/index.json")).unwrap();
    let blob = |d: &str| -> Value {
        serde_json::from_str(&read(&t, &format!("ctx/out/a/blobs/sha256/{}", d.trim_start_matches("sha256:")))).unwrap()
    };
    // The layout names the image index; the index names one manifest per platform.
    let top = blob(index["manifests"][0]["digest"].as_str().unwrap());
    let archs: Vec<&str> =
        top["manifests"].as_array().unwrap().iter().map(|m| m["platform"]["architecture"].as_str().unwrap()).collect();
    assert_eq!(archs, ["amd64", "arm64"], "{top}");
    let ran = executed_steps(&o);
    assert_eq!(ran.iter().filter(|s| s.contains("COPY msg")).count(), 2, "a's and b's context: {ran:?}");
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
    // Targets of two context directories bake together (each context its own source).
    let o = bake(&t, &["app", "elsewhere"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A compose file's build sections are bake targets (read by default); `--push` pushes
/// each target's image to its tags' registry, and `cache_to`/`cache_from` share the cache:
/// a second, empty store bakes the same file with every step from the registry.
#[test]
fn compose_targets_push_and_share_their_cache() {
    let t = setup("bake-compose");
    let reg = Registry::start(&t, "registry", None);
    t.write("ctx/Dockerfile", DOCKERFILE);
    let compose = format!(
        "services:\n  one:\n    image: {h}/bake/one:${{TAG:-dev}}\n    build:\n      context: .\n      target: one\n      \
         args:\n        WHO: compose\n      cache_to: [\"type=registry,ref={h}/bake/cache:main,mode=max\"]\n      \
         cache_from: [\"{h}/bake/cache:main\"]\n  two:\n    build:\n      context: .\n      target: two\n  \
         db:\n    image: postgres\n",
        h = reg.host
    );
    t.write("ctx/compose.yaml", &compose);
    let o = bake(&t, &["--print"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["group"]["default"]["targets"], serde_json::json!(["one", "two"]));
    assert_eq!(v["target"]["one"]["tags"], serde_json::json!([format!("{}/bake/one:dev", reg.host)]));

    let o = bake(&t, &["--push", "--insecure-registry", &reg.host, "one"], &[("TAG", "1")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let pushed = reg.log().lines().filter(|l| l.contains("\"PUT /v2/bake/one/manifests/1 ")).count();
    assert_eq!(pushed, 1, "{}", reg.log());
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{}/bake/one:1", reg.host)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stderr(&o).contains("Exported"), "{}", stderr(&o));

    // Another machine: an empty store but for the base; every step of `one` is a hit.
    let other = t.path("store2");
    let load = Command::new(BIN)
        .args(["load", "-i", busybox_archive().to_str().unwrap()])
        .env("CAIRN_ROOT", &other)
        .output()
        .unwrap();
    assert!(load.status.success(), "{}", String::from_utf8_lossy(&load.stderr));
    let o = Command::new(BIN)
        .args(["bake", "--progress", "rawjson", "--insecure-registry", &reg.host, "one"])
        .current_dir(t.path("ctx"))
        .env("CAIRN_ROOT", &other)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(summary(&o)["executed"], 0, "{:?}", executed_steps(&o));

    t.write("ctx/compose.yaml", "services:\n  a:\n    build:\n      context: .\n      secrets: [x]\n");
    let o = bake(&t, &["--print"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("compose.yaml: service `a`: build.secrets: not supported"), "{}", stderr(&o));
}
