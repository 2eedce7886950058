//! Tests of `cairn compile`: every format, `--emit ast`, `--no-optimize`, `-o`, and
//! errors that point at the file and line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_cairn");

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str, dockerfile: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("cairn-compile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("Dockerfile"), dockerfile).unwrap();
        Dir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cairn(dir: &Dir, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir.path())
        .env("CAIRN_ROOT", dir.path().join("store"))
        .output()
        .expect("run cairn")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const MULTI: &str = "FROM busybox AS a\nRUN echo a > /a\n\nFROM busybox AS b\nRUN echo b > /b\n\nFROM scratch\nCOPY --from=a /a /\nCOPY --from=b /b /\n";

#[test]
fn text_listing_names_ops_inputs_and_lines() {
    let d = Dir::new("text", MULTI);
    let o = cairn(&d, &["compile"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("source image docker.io/library/busybox:latest"), "{out}");
    assert!(out.contains("exec   /bin/sh -c echo a > /a"), "{out}");
    assert!(out.contains("(Dockerfile:2)"), "{out}");
    assert!(out.lines().last().unwrap().starts_with("output linux/"), "{out}");
    // The unknown base image is warned about once, not once per use.
    assert_eq!(stderr(&o).matches("busybox:latest` is not in the local store").count(), 1, "{}", stderr(&o));
    // Optimized: one busybox source; raw: one per stage.
    assert_eq!(out.matches("source image").count(), 1, "{out}");
    let raw = stdout(&cairn(&d, &["compile", "--no-optimize"]));
    assert_eq!(raw.matches("source image").count(), 2, "{raw}");
}

#[test]
fn msgpack_output_is_the_ir_the_runtime_loads() {
    let d = Dir::new("msgpack", MULTI);
    let o = cairn(&d, &["compile", "--format", "msgpack", "-o", "out.cairn"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(d.path().join("out.cairn")).unwrap();
    let def = cairn_ir::decode_definition(&bytes).unwrap();
    assert_eq!(def.outputs.len(), 1);
    assert_eq!(def.sources[0].path, "Dockerfile");
    // The JSON form is the same Definition.
    let j = cairn(&d, &["compile", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(v["vertices"].as_array().unwrap().len(), def.vertices.len());
    assert_eq!(
        v["version"],
        cairn_ir::FORMAT_VERSION,
        "the IR format version (4 since issue 13's shared environments)"
    );
}

#[test]
fn platforms_target_and_build_args() {
    let d = Dir::new("platforms", "ARG V=1\nFROM busybox AS x\nARG V\nRUN echo $V\nFROM x AS y\nRUN echo y\n");
    let o = cairn(
        &d,
        &[
            "compile",
            "--platform",
            "linux/amd64,linux/arm64",
            "--target",
            "x",
            "--build-arg",
            "V=7",
            "--format",
            "json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let outs = v["outputs"].as_array().unwrap();
    assert_eq!(outs.len(), 2);
    assert_eq!(outs[1]["platform"]["architecture"], "arm64");
    let text = serde_json::to_string(&v["vertices"]).unwrap();
    let envs = serde_json::to_string(&v["envs"]).unwrap();
    assert!(envs.contains("V=7"), "build arg reaches RUN's env (a node of the env table)");
    assert!(!text.contains("echo y"), "--target x prunes stage y");
    let bad = cairn(&d, &["compile", "--platform", "linux"]);
    assert!(stderr(&bad).contains("Invalid `--platform linux`"), "{}", stderr(&bad));
}

#[test]
fn ast_json_has_the_documented_shape() {
    let d = Dir::new("ast", "FROM busybox\nRUN --mount=type=cache,target=/x apt-get update && \\\n  apt-get install -y x\nENV A=1\nCOPY <<EOF /f\nhi\nEOF\nONBUILD RUN make\n");
    let o = cairn(&d, &["compile", "--emit", "ast", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["directives"]["escape"], "\\");
    let run = &v["instructions"][1];
    assert_eq!(run["keyword"], "RUN");
    assert_eq!(run["start_line"], 2);
    assert_eq!(run["end_line"], 3);
    assert_eq!(run["flags"][0], "--mount=type=cache,target=/x");
    assert_eq!(run["json"], false);
    assert_eq!(run["args"][0], "apt-get update &&   apt-get install -y x");
    assert_eq!(v["instructions"][2]["pairs"][0]["key"], "A");
    assert_eq!(v["instructions"][3]["heredocs"][0]["name"], "EOF");
    assert_eq!(v["instructions"][3]["heredocs"][0]["content"], "hi\n");
    assert_eq!(v["instructions"][4]["trigger"]["keyword"], "RUN");
}

#[test]
fn dot_renders_with_graphviz() {
    let d = Dir::new("dot", MULTI);
    let o = cairn(&d, &["compile", "--format", "dot"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("digraph cairn {"));
    assert!(
        Command::new("dot").arg("-V").output().is_ok(),
        "graphviz `dot` is not installed: install the `graphviz` package (CI does)"
    );
    let o = cairn(&d, &["compile", "--format", "dot", "-o", "g.svg"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let svg = std::fs::read_to_string(d.path().join("g.svg")).unwrap();
    assert!(svg.contains("<svg"), "{svg}");
}

#[test]
fn errors_point_at_the_line_and_write_nothing() {
    let d = Dir::new("err", "FROM busybox\nCOPY --chmod=wat a /a\n");
    let o = cairn(&d, &["compile", "--format", "msgpack", "-o", "out.cairn"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("Dockerfile:2:6: `--chmod=wat`"), "{e}");
    assert!(e.contains("2 | COPY --chmod=wat a /a"), "{e}");
    assert!(!d.path().join("out.cairn").exists(), "no partial output");
    let o = cairn(&d, &["compile", "-f", "missing.Dockerfile"]);
    assert!(stderr(&o).contains("Cannot read Dockerfile `missing.Dockerfile`"), "{}", stderr(&o));
}

#[test]
fn dockerignore_becomes_the_context_excludes() {
    let d = Dir::new("ignore", "FROM scratch\nCOPY . /\n");
    std::fs::write(d.path().join(".dockerignore"), "# comment\n*.log\n\n!keep.log\n").unwrap();
    let out = stdout(&cairn(&d, &["compile"]));
    assert!(out.contains("local context exclude=*.log,!keep.log"), "{out}");
    // <Dockerfile>.dockerignore wins.
    std::fs::write(d.path().join("Dockerfile.dockerignore"), "secret/\n").unwrap();
    let out = stdout(&cairn(&d, &["compile"]));
    assert!(out.contains("local context exclude=secret/"), "{out}");
}
