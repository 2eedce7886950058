//! Issue 11: `cairn build` as a drop-in for `docker buildx build` in CI scripts: the
//! build-push-action's flags, BuildKit's rawjson, stdin and stdout, `--load`, `-q`,
//! `--network`, `--no-cache-filter`, usage errors, closed pipes.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::build_cli::{build, cairn, counts, executed_steps, setup, stderr, stream, Tmp, BIN};
use crate::solve_status::{self, seconds};

fn skopeo_config(reference: &str) -> Value {
    let o = Command::new("skopeo").args(["inspect", "--config", reference]).output().expect("skopeo is installed");
    assert!(o.status.success(), "skopeo: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn skopeo_manifest(reference: &str) -> Value {
    let o = Command::new("skopeo").args(["inspect", "--raw", reference]).output().expect("skopeo is installed");
    assert!(o.status.success(), "skopeo: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// A CI step written as docker/build-push-action calls buildx (tests/ci/), run with
/// `cairn build` substituted; everything the action reads afterwards is checked.
#[test]
fn issue11_build_push_action_script_runs_with_cairn_build() {
    let t = setup("ci-script");
    t.write(
        "ctx/ci.Dockerfile",
        "FROM busybox AS base\nARG VERSION\nRUN echo \"version $VERSION\" > /version\n\n\
FROM base AS release\nCMD [\"cat\", \"/version\"]\n\nFROM base AS debug\nRUN false\n",
    );
    let work = t.path("work");
    std::fs::create_dir_all(&work).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ci/build-push-action.sh");
    let o = Command::new("sh")
        .arg(&script)
        .args([&work, &t.path("ctx")])
        .env("BUILDX", format!("{BIN} build"))
        .env("CAIRN_ROOT", t.path("store"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "the CI script failed:\n{}", stderr(&o));
    let text = stderr(&o);
    // Numbered as BuildKit numbers them: FROM and RUN make steps, ARG does not.
    assert!(text.contains("[base 2/2] RUN echo \"version $VERSION\""), "plain progress: {text}");
    let outputs = std::fs::read_to_string(work.join("outputs")).unwrap();
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(work.join("metadata.json")).unwrap()).unwrap();
    let iid = std::fs::read_to_string(work.join("iidfile")).unwrap();
    assert_eq!(iid, meta["containerimage.config.digest"].as_str().unwrap(), "the iidfile holds the image ID");
    let digest = meta["containerimage.digest"].as_str().unwrap();
    assert!(outputs.contains(&format!("digest={digest}")) && outputs.contains(&format!("imageid={iid}")), "{outputs}");
    assert_eq!(meta["containerimage.descriptor"]["digest"], digest);
    assert_eq!(meta["containerimage.descriptor"]["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert!(meta["containerimage.descriptor"]["size"].as_u64().unwrap() > 0);
    assert_eq!(meta["image.name"], "docker.io/example/app:1.2.3,docker.io/example/app:latest");
    assert!(meta["buildx.build.ref"].as_str().unwrap().starts_with("cairn/local/"), "{meta}");
    // The OCI output, read by skopeo: labels, the build arg, the target's CMD.
    let oci = format!("oci-archive:{}", work.join("image.tar").display());
    let cfg = skopeo_config(&oci);
    assert_eq!(cfg["config"]["Labels"]["org.opencontainers.image.source"], "https://example.invalid/repo");
    assert_eq!(cfg["config"]["Labels"]["org.opencontainers.image.revision"], "0123abc");
    assert_eq!(cfg["config"]["Cmd"], serde_json::json!(["cat", "/version"]));
    assert_eq!(skopeo_manifest(&oci)["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    // The tags are in the store.
    let o = cairn(&t, &["images"]);
    let list = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(list.contains("example/app") && list.contains("1.2.3") && list.contains("latest"), "{list}");
    // umoci unpacks the layout (named by the first tag) with the build arg's value inside.
    let layout = t.path("layout");
    std::fs::create_dir_all(&layout).unwrap();
    let x = Command::new("tar").arg("-xf").arg(work.join("image.tar")).arg("-C").arg(&layout).status().unwrap();
    assert!(x.success());
    let bundle = t.path("bundle");
    let u = Command::new("umoci")
        .args(["unpack", "--image", &format!("{}:1.2.3", layout.display()), bundle.to_str().unwrap()])
        .output()
        .expect("umoci is installed");
    assert!(u.status.success(), "umoci: {}", String::from_utf8_lossy(&u.stderr));
    assert_eq!(std::fs::read_to_string(bundle.join("rootfs/version")).unwrap(), "version 1.2.3\n");
}

/// Issue 11: `--progress rawjson` is BuildKit's SolveStatus stream, read with a reader
/// written against its fields (unknown fields refused), and a failure stays in it.
#[test]
fn issue11_rawjson_is_buildkits_solve_status_stream() {
    let t = setup("rawjson");
    t.write("ctx/Dockerfile", "FROM busybox\nRUN echo hello from the step\nRUN echo two > /two\n");
    let (o, s) = build(&t, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(counts(&s), (2, 0));
    let raw = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(raw.lines().all(|l| l.starts_with('{')), "only JSON objects: {raw}");
    let st = stream(&o);
    let vs = solve_status::vertexes(&st);
    let mut known = std::collections::HashSet::new();
    for v in &vs {
        assert!(v.digest.starts_with("sha256:") && v.digest.len() == 71, "{v:?}");
        for i in &v.inputs {
            assert!(known.contains(i), "input {i} of {} is a vertex reported before it", v.name);
        }
        known.insert(v.digest.clone());
        let (a, b) = (seconds(v.started.as_deref().unwrap()), seconds(v.completed.as_deref().unwrap()));
        assert!(b >= a, "{v:?}");
    }
    let run = vs.iter().find(|v| v.name.contains("echo hello")).expect("the RUN vertex");
    assert!(!run.inputs.is_empty(), "a RUN reads its stage: {run:?}");
    let logs: Vec<_> = st.iter().flat_map(|s| s.logs.iter()).filter(|l| l.vertex == run.digest).collect();
    let text: String = logs.iter().map(|l| String::from_utf8_lossy(&solve_status::b64(&l.data)).into_owned()).collect();
    assert!(text.contains("hello from the step\n"), "{text}");
    assert!(logs.iter().all(|l| l.stream == 1 && seconds(&l.timestamp) > 0.0));
    for status in st.iter().flat_map(|s| s.statuses.iter()) {
        assert!(!status.id.is_empty());
    }
    // Cached the second time.
    let (o, s) = build(&t, &[]);
    assert!(o.status.success());
    assert_eq!(counts(&s), (0, 2));
    assert!(solve_status::vertexes(&stream(&o)).iter().all(|v| v.cached));
    // A failing step: the error is on its vertex, the whole error on a last vertex, and
    // nothing but SolveStatus objects on stderr.
    t.write("ctx/Dockerfile", "FROM busybox\nRUN echo about to fail && exit 3\n");
    let (o, _) = build(&t, &[]);
    assert_eq!(o.status.code(), Some(1));
    let st = stream(&o);
    let vs = solve_status::vertexes(&st);
    let failed = vs.iter().find(|v| v.name.contains("about to fail")).unwrap();
    assert!(!failed.error.is_empty(), "{failed:?}");
    let last = vs.last().unwrap();
    assert!(last.name.starts_with("[cairn] ") && !last.error.is_empty(), "{last:?}");
    // Compiler warnings are BuildKit warnings.
    t.write("ctx/Dockerfile", "FROM busybox\nRUN true\n");
    let (o, _) = build(&t, &["--build-arg", "UNUSED_XYZ=1"]);
    let st = stream(&o);
    let w: Vec<String> = st
        .iter()
        .flat_map(|s| s.warnings.iter())
        .map(|w| String::from_utf8_lossy(&solve_status::b64(&w.short)).into_owned())
        .collect();
    assert!(w.iter().any(|w| w.contains("UNUSED_XYZ")), "{w:?}");
    // An image no registry can give fails the build inside the stream, naming it.
    t.write("ctx/Dockerfile", "FROM unknown-image-xyz\nRUN true\n");
    let (o, _) = build(&t, &[]);
    assert_eq!(o.status.code(), Some(1));
    let vs = solve_status::vertexes(&stream(&o));
    assert!(vs.iter().any(|v| v.error.contains("unknown-image-xyz")), "{vs:?}");
}

/// Issue 11: `-q` prints only the image ID; `--label`; `--no-cache-filter`; `--network`.
#[test]
fn issue11_quiet_labels_network_and_no_cache_filter() {
    let t = setup("quiet");
    t.write(
        "ctx/Dockerfile",
        "FROM busybox AS deps\nRUN echo deps > /deps\n\nFROM busybox\nCOPY --from=deps /deps /deps\nRUN ls /sys/class/net > /nets\n",
    );
    let ctx = t.path("ctx");
    let iid = t.path("iid");
    let o = cairn(
        &t,
        &[
            "build",
            "-q",
            "--label",
            "a=b",
            "--network",
            "none",
            "--iidfile",
            iid.to_str().unwrap(),
            ctx.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.starts_with("sha256:") && out.lines().count() == 1, "only the image ID: {out:?}");
    assert_eq!(out.trim(), std::fs::read_to_string(&iid).unwrap());
    assert!(o.stderr.is_empty(), "-q prints no progress: {}", stderr(&o));
    // `--network none`: the RUN saw only the loopback interface.
    let dest = t.path("rootfs");
    let (o, s) = build(&t, &["--label", "a=b", "--network", "none", "-o", dest.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(counts(&s), (0, 3), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(dest.join("nets")).unwrap(), "lo\n");
    // `--no-cache-filter deps`: the deps stage runs again; the rest stays cached (its
    // result is the same file).
    let (o, _) = build(&t, &["--label", "a=b", "--network", "none", "--no-cache-filter", "deps"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(executed_steps(&o), vec!["[deps 2/2] RUN echo deps > /deps".to_string()]);
    let (o, _) = build(&t, &["--no-cache-filter", "nope"]);
    assert!(stderr(&o).contains("no stage named `nope`"), "{}", stderr(&o));
}

/// Issue 11: `--load` streams a docker-archive into `docker load` (a fake `docker` on
/// PATH records what it got), and says clearly when there is no docker CLI.
#[test]
fn issue11_load_streams_into_docker_load() {
    let t = setup("load");
    t.write("ctx/Dockerfile", "FROM busybox\nRUN echo loaded > /l\n");
    let bin = t.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let got = t.path("got.tar");
    t.write(
        "bin/docker",
        &format!("#!/bin/sh\necho \"$@\" > {0}.args\ncat > {0}\necho Loaded image: x\n", got.display()),
    );
    Command::new("chmod").arg("+x").arg(bin.join("docker")).status().unwrap();
    let ctx = t.path("ctx");
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let run = |path: &str| {
        Command::new(BIN)
            .args(["build", "--progress", "plain", "--load", "-t", "loaded:1", ctx.to_str().unwrap()])
            .env("CAIRN_ROOT", t.path("store"))
            .env("PATH", path)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let o = run(&path);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(format!("{}.args", got.display())).unwrap(), "load\n");
    let m = Command::new("tar").args(["-xOf", got.to_str().unwrap(), "manifest.json"]).output().unwrap();
    let m: Value = serde_json::from_slice(&m.stdout).unwrap();
    assert_eq!(m[0]["RepoTags"], serde_json::json!(["loaded:1"]));
    let cfg = skopeo_config(&format!("docker-archive:{}", got.display()));
    assert!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len() >= 2);
    // No docker on PATH.
    let o = run("/nonexistent");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("`--load` needs a `docker` CLI on PATH"), "{}", stderr(&o));
}

/// Issue 11: `-f -` reads the Dockerfile from stdin; `-` as the context reads a tar (or a
/// bare Dockerfile) from stdin; `-o -` writes the tar to stdout.
#[test]
fn issue11_stdin_and_stdout() {
    let t = setup("stdio");
    t.write("ctx/data.txt", "from the tar context\n");
    t.write("ctx/Dockerfile", "FROM busybox\nCOPY data.txt /data.txt\n");
    let run = |args: &[&str], input: &[u8]| {
        let mut c = Command::new(BIN)
            .args(args)
            .env("CAIRN_ROOT", t.path("store"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(input).unwrap();
        c.wait_with_output().unwrap()
    };
    // `-f -`, the rootfs tar to stdout with `-o -`.
    let ctx = t.path("ctx");
    let o = run(
        &["build", "--progress", "plain", "-f", "-", "-o", "-", ctx.to_str().unwrap()],
        b"FROM busybox\nCOPY data.txt /from-stdin\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(t.path("rootfs.tar"), &o.stdout).unwrap();
    let x = Command::new("tar").args(["-xOf", t.path("rootfs.tar").to_str().unwrap(), "from-stdin"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&x.stdout), "from the tar context\n");
    // The context as a tar on stdin, an OCI archive on stdout.
    let tar = Command::new("tar").args(["-cf", "-", "-C", ctx.to_str().unwrap(), "."]).output().unwrap();
    let o = run(&["build", "--progress", "plain", "-o", "type=oci,dest=-", "-"], &tar.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(t.path("oci.tar"), &o.stdout).unwrap();
    let cfg = skopeo_config(&format!("oci-archive:{}", t.path("oci.tar").display()));
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 3, "busybox 2 + COPY: {cfg}");
    // A gzip-compressed tar on stdin, as `tar cz . | docker build -`.
    let tgz = Command::new("tar").args(["-czf", "-", "-C", ctx.to_str().unwrap(), "."]).output().unwrap();
    assert_eq!(&tgz.stdout[..2], &[0x1f, 0x8b]);
    let o = run(&["build", "--progress", "plain", "-o", "-", "-"], &tgz.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(t.path("gz-rootfs.tar"), &o.stdout).unwrap();
    let x = Command::new("tar").args(["-xOf", t.path("gz-rootfs.tar").to_str().unwrap(), "data.txt"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&x.stdout), "from the tar context\n");
    // A bare Dockerfile on stdin: an empty context.
    let o = run(&["build", "--progress", "plain", "-o", "-", "-"], b"FROM busybox\nRUN echo bare > /bare\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!o.stdout.is_empty());
    let o = run(&["build", "-f", "-", "-"], b"");
    assert!(stderr(&o).contains("cannot both read stdin"), "{}", stderr(&o));
}

/// Issue 11: usage errors exit with docker's and buildx's code 125; `--help` names the
/// store and `CAIRN_ROOT`.
#[test]
fn issue11_usage_errors_and_help() {
    let t = Tmp::new("usage");
    let o = cairn(&t, &["build", "--no-such-flag", "."]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    for cmd in [&["build", "--help"][..], &["--help"], &["images", "--help"]] {
        let o = cairn(&t, cmd);
        assert!(o.status.success());
        let help = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(help.contains("$CAIRN_ROOT") && help.contains("/var/lib/cairn"), "{help}");
    }
}

/// Issue 11: `cairn images | head` and other commands end quietly on a closed pipe
/// (it was a panic, exit 101).
#[test]
fn issue11_closed_pipe_ends_quietly() {
    let t = setup("pipe");
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills the two descriptors we pass.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: closing the read end we own; the write end goes to the child.
    unsafe { libc::close(fds[0]) };
    // SAFETY: fds[1] is an open descriptor that the Stdio takes over.
    let out = unsafe { <Stdio as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) };
    let o = Command::new(BIN)
        .arg("images")
        .env("CAIRN_ROOT", t.path("store"))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(o.status.code(), Some(101), "{err}");
    assert!(err.is_empty(), "quietly: {err}");
}

/// Issue 11: `--build-context NAME=target:STAGE` (bake's scheme) makes NAME a stage of the
/// same Dockerfile, for FROM and `--from`; a context named like a stage replaces it.
#[test]
fn issue11_build_context_target_stage() {
    let t = setup("target-context");
    t.write(
        "ctx/Dockerfile",
        "FROM busybox AS dev\nRUN echo dev > /which\n\nFROM busybox AS prod\nRUN echo prod > /which\n\n\
         FROM base\nCOPY --from=other /which /other\n",
    );
    let ctx = t.path("ctx");
    let out = t.path("out");
    let dest = format!("type=local,dest={}", out.display());
    let o = cairn(
        &t,
        &[
            "build",
            "--build-context",
            "base=target:prod",
            "--build-context",
            "other=target:dev",
            "-o",
            &dest,
            ctx.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(out.join("which")).unwrap(), "prod\n");
    assert_eq!(std::fs::read_to_string(out.join("other")).unwrap(), "dev\n");
    // `dev` replaced by the `prod` stage: both files say prod, and dev's RUN never runs.
    let o = cairn(
        &t,
        &[
            "build",
            "--progress",
            "plain",
            "--build-context",
            "base=target:prod",
            "--build-context",
            "other=target:dev",
            "--build-context",
            "dev=target:prod",
            "-o",
            &dest,
            ctx.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(out.join("other")).unwrap(), "prod\n");
    assert!(!stderr(&o).contains("echo dev"), "{}", stderr(&o));
    let o = cairn(&t, &["build", "--build-context", "base=target:nope", ctx.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Dockerfile:7:"), "{}", stderr(&o));
    assert!(stderr(&o).contains("no stage named `nope`"), "{}", stderr(&o));
}
