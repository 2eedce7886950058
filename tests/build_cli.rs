//! `cairn build` end to end: the real sandbox, real overlayfs, real outputs checked with
//! skopeo and umoci. The busybox base image is built once from Debian's
//! `busybox-static` binary with cairn itself and loaded into each test's own store.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::solve_status::{self, SolveStatus};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_cairn");

pub(crate) struct Tmp(pub(crate) PathBuf);

impl Tmp {
    pub(crate) fn new(name: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("cairn-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
    pub(crate) fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = Command::new("chmod").arg("-R").arg("u+rwx").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn cairn_in(store: &Path, args: &[&str]) -> Output {
    Command::new(BIN).args(args).env("CAIRN_ROOT", store).stdin(Stdio::null()).output().expect("run cairn")
}

pub(crate) fn cairn(root: &Tmp, args: &[&str]) -> Output {
    cairn_in(&root.path("store"), args)
}

/// stderr as text; rawjson lines (BuildKit's SolveStatus) are rendered by
/// [`solve_status::text`]: vertex names, errors, decoded logs and warnings.
pub(crate) fn stderr(o: &Output) -> String {
    let raw = String::from_utf8_lossy(&o.stderr);
    let mut out = String::new();
    for l in raw.lines() {
        match serde_json::from_str::<SolveStatus>(l) {
            Ok(s) if l.starts_with('{') => out.push_str(&solve_status::text(&[s])),
            _ => {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out
}

/// The rawjson stream of a build's stderr, every line a SolveStatus (panics on a loose
/// line); empty when the build did not use rawjson.
pub(crate) fn stream(o: &Output) -> Vec<SolveStatus> {
    let raw = String::from_utf8_lossy(&o.stderr);
    if !raw.starts_with('{') {
        return Vec::new();
    }
    solve_status::parse(&raw)
}

/// A docker-archive of `busybox:latest`, built once per test run with cairn.
pub(crate) fn busybox_archive() -> &'static Path {
    static ARCHIVE: OnceLock<PathBuf> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("cairn-it-busybox-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let bb = ["/bin/busybox", "/usr/bin/busybox"].iter().find(|p| Path::new(p).exists()).expect("busybox-static is installed (.ci/run installs it)");
        std::fs::copy(bb, dir.join("busybox")).unwrap();
        std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCMD [\"sh\"]\n").unwrap();
        let archive = dir.join("busybox.tar");
        let o = cairn_in(&dir.join("store"), &["build", "--progress", "plain", "-t", "busybox:latest", "-o", &format!("type=docker,dest={}", archive.display()), dir.to_str().unwrap()]);
        assert!(o.status.success(), "building the busybox base failed:\n{}", stderr(&o));
        archive
    })
}

/// A test directory with its own store holding busybox.
pub(crate) fn setup(name: &str) -> Tmp {
    let t = Tmp::new(name);
    let o = cairn(&t, &["load", "-i", busybox_archive().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    t
}

/// Builds `ctx` with rawjson progress; returns the output and the summary event.
pub(crate) fn build(t: &Tmp, extra: &[&str]) -> (Output, Value) {
    let ctx = t.path("ctx");
    let mut args = vec!["build", "--progress", "rawjson"];
    args.extend_from_slice(extra);
    let c = ctx.to_str().unwrap().to_string();
    args.push(&c);
    let o = cairn(t, &args);
    let summary = summary(&o);
    (o, summary)
}

/// The step counts of a rawjson build, as `{"executed": N, "cached": M}` (`Null` when
/// the build did not use rawjson).
pub(crate) fn summary(o: &Output) -> Value {
    let st = stream(o);
    if st.is_empty() {
        return Value::Null;
    }
    let (executed, cached) = solve_status::counts(&st);
    serde_json::json!({ "executed": executed, "cached": cached })
}

pub(crate) fn counts(s: &Value) -> (u64, u64) {
    (s["executed"].as_u64().unwrap_or(99), s["cached"].as_u64().unwrap_or(99))
}

/// Names of the steps that ran (not cached, not failed), from the rawjson stream.
pub(crate) fn executed_steps(o: &Output) -> Vec<String> {
    solve_status::vertexes(&stream(o))
        .into_iter()
        .filter(|v| !v.cached && v.completed.is_some() && v.error.is_empty() && !v.name.starts_with("[cairn] "))
        .map(|v| v.name)
        .collect()
}

#[test]
fn multi_stage_image_checked_with_skopeo_umoci_and_docker_archive() {
    let t = setup("multi");
    t.write("ctx/src/greeting.txt", "hello\n");
    t.write(
        "ctx/Dockerfile",
        "FROM busybox AS a\nRUN echo a > /a.txt\n\nFROM busybox AS b\nWORKDIR /work\nCOPY src/greeting.txt .\nRUN tr a-z A-Z < greeting.txt > /b.txt\n\n\
FROM busybox\nARG NAME=cairn\nENV GREETING=\"hi from $NAME\"\nCOPY --from=a /a.txt /out/\nCOPY --from=b /b.txt /out/\nRUN <<EOF\necho \"$GREETING\" > /out/msg\nrm /bin/vi\nEOF\nRUN [\"/bin/sh\", \"-c\", \"echo exec-form > /out/exec\"]\nEXPOSE 8080\nCMD [\"cat\", \"/out/msg\"]\n",
    );
    let oci = t.path("out/image.tar");
    let dir = t.path("out/layout");
    let docker = t.path("out/docker.tar");
    let meta = t.path("out/meta.json");
    std::fs::create_dir_all(t.path("out")).unwrap();
    let (o, s) = build(
        &t,
        &[
            "-t",
            "demo:1",
            "-o",
            &format!("type=oci,dest={}", oci.display()),
            "-o",
            &format!("type=oci,dest={},tar=false", dir.display()),
            "-o",
            &format!("type=docker,dest={}", docker.display()),
            "-o",
            &format!("type=local,dest={}", t.path("out/rootfs").display()),
            "--metadata-file",
            meta.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(counts(&s).0, 8, "{s}");
    // The rootfs: files from both stages, the heredoc and exec-form RUNs, the deletion.
    let rootfs = t.path("out/rootfs");
    assert_eq!(std::fs::read_to_string(rootfs.join("out/msg")).unwrap(), "hi from cairn\n");
    assert_eq!(std::fs::read_to_string(rootfs.join("out/b.txt")).unwrap(), "HELLO\n");
    assert_eq!(std::fs::read_to_string(rootfs.join("out/exec")).unwrap(), "exec-form\n");
    assert!(!rootfs.join("bin/vi").exists() && rootfs.join("bin/ls").exists());
    assert!(!rootfs.join("etc/hosts").exists(), "runtime files never enter the image");
    // skopeo reads both OCI forms.
    let si = Command::new("skopeo").args(["inspect", &format!("oci:{}:demo-1-not-there", dir.display())]).output();
    if si.is_err() {
        panic!("skopeo is not installed (.ci/run installs it)");
    }
    let si = Command::new("skopeo").args(["inspect", &format!("oci:{}:1", dir.display())]).output().unwrap();
    assert!(si.status.success(), "skopeo: {}", String::from_utf8_lossy(&si.stderr));
    let v: Value = serde_json::from_slice(&si.stdout).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 6, "busybox 2 + COPY, COPY, RUN, RUN; {v}");
    let si = Command::new("skopeo")
        .args(["inspect", "--config", &format!("oci-archive:{}", oci.display())])
        .output()
        .unwrap();
    assert!(si.status.success(), "skopeo: {}", String::from_utf8_lossy(&si.stderr));
    let cfg: Value = serde_json::from_slice(&si.stdout).unwrap();
    assert_eq!(cfg["config"]["Cmd"], serde_json::json!(["cat", "/out/msg"]));
    assert!(cfg["config"]["ExposedPorts"]["8080/tcp"].is_object());
    let hist = cfg["history"].as_array().unwrap();
    assert_eq!(
        hist.iter().filter(|h| h["empty_layer"] != true).count(),
        cfg["rootfs"]["diff_ids"].as_array().unwrap().len()
    );
    // umoci unpacks the layout.
    let bundle = t.path("out/bundle");
    let u = Command::new("umoci")
        .args(["unpack", "--image", &format!("{}:1", dir.display()), bundle.to_str().unwrap()])
        .output()
        .expect("umoci is installed (.ci/run installs it)");
    assert!(u.status.success(), "umoci: {}", String::from_utf8_lossy(&u.stderr));
    assert_eq!(std::fs::read_to_string(bundle.join("rootfs/out/msg")).unwrap(), "hi from cairn\n");
    assert!(!bundle.join("rootfs/bin/vi").exists(), "the whiteout hides /bin/vi");
    // docker-archive: manifest.json with RepoTags; it loads back to the same config.
    let list = Command::new("tar").args(["-xOf", docker.to_str().unwrap(), "manifest.json"]).output().unwrap();
    let m: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(m[0]["RepoTags"], serde_json::json!(["demo:1"]));
    let md: Value = serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    assert!(md["containerimage.digest"].as_str().unwrap().starts_with("sha256:"));
    let other = Tmp::new("multi-load");
    let o = cairn(&other, &["load", "-i", docker.to_str().unwrap()]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("demo:1"), "{}", stderr(&o));
    let imgs = String::from_utf8_lossy(&cairn(&other, &["images", "-q"]).stdout).into_owned();
    assert!(md["containerimage.config.digest"].as_str().unwrap().contains(imgs.trim()), "{imgs} vs {md}");
}

#[test]
fn user_workdir_env_and_args_reach_run() {
    let t = setup("env");
    t.write(
        "ctx/Dockerfile",
        "FROM busybox\nRUN mkdir -p /etc && echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group && mkdir -p -m 1777 /tmp\n\
ARG VERSION=1\nENV MODE=prod\nWORKDIR /srv/app\nUSER app\nRUN echo \"$(id -u):$(id -g) $(pwd) $VERSION $MODE\" > /tmp/out 2>&1 || true\nUSER root\nRUN cp /tmp/out /result\n",
    );
    let (o, _) =
        build(&t, &["--build-arg", "VERSION=7", "-o", &format!("type=local,dest={}", t.path("rootfs").display())]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(t.path("rootfs/result")).unwrap(), "1000:1000 /srv/app 7 prod\n");
}

/// Issue 12: every RUN gets `HOME` from the user's passwd entry (`/` without one) and
/// `HOSTNAME`, as BuildKit (through runc) gives them; an `ENV HOME` wins.
#[test]
fn issue12_run_steps_get_home_and_hostname() {
    let t = setup("home");
    t.write(
        "ctx/Dockerfile",
        "FROM busybox\nRUN mkdir -p /etc && mkdir -p -m 1777 /tmp && echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd && echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' > /etc/group\n\
RUN echo \"root $HOME $HOSTNAME\" > /r1\nUSER app\nRUN echo \"app $HOME\" > /tmp/r2 || true\nUSER 4321\nRUN echo \"nobody $HOME\" > /tmp/r3 || true\n\
USER root\nENV HOME=/custom\nRUN cat /tmp/r2 /tmp/r3 >> /r1 && echo \"env $HOME\" >> /r1\n",
    );
    let (o, _) = build(&t, &["-o", &format!("type=local,dest={}", t.path("rootfs").display())]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(t.path("rootfs/r1")).unwrap(),
        "root /root cairn\napp /home/app\nnobody /\nenv /custom\n"
    );
}

#[test]
fn failing_run_reports_line_code_and_output() {
    let t = setup("fail");
    t.write("ctx/Dockerfile", "FROM busybox\nRUN echo first line && echo oops >&2 && exit 3\nRUN echo never\n");
    let (o, _) = build(&t, &[]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("Dockerfile:2"), "{e}");
    assert!(e.contains("exit code: 3"), "{e}");
    assert!(e.contains("oops"), "{e}");
    assert!(e.contains("RUN echo first line"), "{e}");
}

#[test]
fn cache_consequences() {
    let t = setup("cache");
    t.write("ctx/app/main.txt", "v1\n");
    t.write("ctx/late.txt", "late v1\n");
    t.write("ctx/unused.txt", "nobody reads me\n");
    t.write(
        "ctx/Dockerfile",
        "FROM busybox AS gen\nARG SALT=a\nRUN echo generated > /gen.txt && echo $SALT > /salt\n\n\
FROM busybox\nCOPY app/ /app/\nRUN cat /app/main.txt > /copy1\nCOPY --from=gen /gen.txt /gen.txt\nRUN cat /gen.txt > /copy2\nCOPY late.txt /late.txt\nRUN cat /late.txt > /copy3\n",
    );
    let (o, s) = build(&t, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let total = counts(&s).0;
    assert_eq!(total, 7);
    // No change: everything cached.
    let (_, s) = build(&t, &[]);
    assert_eq!(counts(&s), (0, 7));
    // An unreferenced file changes, and a referenced file's mtime: nothing re-runs.
    t.write("ctx/unused.txt", "changed\n");
    let f = std::fs::File::options().write(true).open(t.path("ctx/app/main.txt")).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5)).unwrap();
    drop(f);
    let (_, s) = build(&t, &[]);
    assert_eq!(counts(&s), (0, 7), "mtime-only and unreferenced changes");
    // A file used only by the late COPY: that COPY and what follows.
    t.write("ctx/late.txt", "late v2\n");
    let (o, s) = build(&t, &[]);
    assert_eq!(counts(&s).0, 2, "{:?}", executed_steps(&o));
    // A changed build arg: only the steps after it (gen's RUN), and thanks to early cutoff…
    let (o, s) = build(&t, &["--build-arg", "SALT=b"]);
    let ran = executed_steps(&o);
    assert!(ran.iter().any(|n| n.contains("echo generated")), "{ran:?}");
    // …the COPY --from=gen consumer stays cached: /gen.txt did not change (only /salt).
    assert!(!ran.iter().any(|n| n.contains("COPY --from=gen")), "early cutoff: {ran:?}");
    assert_eq!(counts(&s).0, 1, "{ran:?}");
    // --no-cache re-runs everything.
    let (_, s) = build(&t, &["--build-arg", "SALT=b", "--no-cache"]);
    assert_eq!(counts(&s).0, total);
}

#[test]
fn independent_stages_run_in_parallel() {
    let t = setup("parallel");
    let mut df = String::new();
    for i in 0..4 {
        df.push_str(&format!("FROM busybox AS s{i}\nRUN sleep 2 && echo {i} > /out{i}\n\n"));
    }
    df.push_str("FROM busybox\n");
    for i in 0..4 {
        df.push_str(&format!("COPY --from=s{i} /out{i} /\n"));
    }
    t.write("ctx/Dockerfile", &df);
    let (o, _) = build(&t, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Evidence of overlap: every sleeping step starts before the first one finishes.
    let mut starts = Vec::new();
    let mut dones = Vec::new();
    for v in solve_status::vertexes(&stream(&o)).iter().filter(|v| v.name.contains("sleep 2")) {
        starts.push(solve_status::seconds(v.started.as_deref().unwrap()));
        dones.push(solve_status::seconds(v.completed.as_deref().unwrap()));
    }
    assert_eq!(starts.len(), 4);
    let last_start = starts.iter().cloned().fold(f64::MIN, f64::max);
    let first_done = dones.iter().cloned().fold(f64::MAX, f64::min);
    assert!(last_start < first_done, "all four RUN steps overlap: starts {starts:?}, dones {dones:?}");
}

#[test]
fn ctrl_c_stops_cleanly() {
    let t = setup("cancel");
    t.write("ctx/Dockerfile", "FROM busybox\nRUN sleep 60\n");
    let child = Command::new(BIN)
        .args(["build", "--progress", "plain", t.path("ctx").to_str().unwrap()])
        .env("CAIRN_ROOT", t.path("store"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the step is running.
    let start = std::time::Instant::now();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let running = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|d| std::fs::read(d.unwrap().path().join("cmdline")).ok())
            .any(|c| c.starts_with(b"sleep\x0060"));
        if running || start.elapsed().as_secs() > 30 {
            break;
        }
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let sleeping = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|d| std::fs::read(d.unwrap().path().join("cmdline")).ok())
        .filter(|c| c.starts_with(b"sleep\x0060"))
        .count();
    assert_eq!(sleeping, 0, "the RUN process was killed");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(t.path("store").to_str().unwrap()), "no mount left behind");
    // The store is consistent: the next build works.
    t.write("ctx/Dockerfile", "FROM busybox\nRUN echo ok\n");
    let (o, _) = build(&t, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
}

fn sleepers(tag: &[u8]) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|d| std::fs::read(d.unwrap().path().join("cmdline")).ok())
        .filter(|c| c.starts_with(tag))
        .count()
}

#[test]
fn sigkilled_build_leaves_a_usable_store() {
    let t = setup("sigkill");
    t.write("ctx/data.txt", "d");
    t.write("ctx/Dockerfile", "FROM busybox\nCOPY data.txt /\nRUN sleep 45\n");
    let mut child = Command::new(BIN)
        .args(["build", "--progress", "plain", t.path("ctx").to_str().unwrap()])
        .env("CAIRN_ROOT", t.path("store"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while sleepers(b"sleep\x0045") == 0 && start.elapsed().as_secs() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(sleepers(b"sleep\x0045"), 0, "the sandboxed process died with cairn");
    // The next build on the same store works and reuses the COPY that finished.
    t.write("ctx/Dockerfile", "FROM busybox\nCOPY data.txt /\nRUN echo done\n");
    let (o, s) = build(&t, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(counts(&s), (1, 1), "the RUN ran, the COPY came from the cache: {s}");
    let leftovers = std::fs::read_dir(t.path("store/tmp")).unwrap().count();
    assert_eq!(leftovers, 0, "the killed build's temporary files were cleaned up");
}

#[test]
fn rootfs_tar_output_and_context_escape() {
    let t = setup("tar");
    t.write("ctx/a.txt", "A");
    t.write("ctx/Dockerfile", "FROM scratch\nCOPY a.txt /a.txt\n");
    let out = t.path("rootfs.tar");
    let (o, _) = build(&t, &["-o", &format!("type=tar,dest={}", out.display())]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list = Command::new("tar").args(["-tf", out.to_str().unwrap()]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&list.stdout).trim(), "a.txt");
    t.write("ctx/Dockerfile", "FROM scratch\nCOPY ../secret /s\n");
    let (o, _) = build(&t, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Dockerfile:2"), "{}", stderr(&o));
}

#[test]
fn bad_ir_files_and_flags_fail_clearly() {
    let t = Tmp::new("badflags");
    let ctx = t.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let ctx = ctx.to_str().unwrap();
    let junk = t.path("junk.cairn");
    std::fs::write(&junk, b"\x01\x02junk").unwrap();
    let out = cairn(&t, &["build", "--ir", junk.to_str().unwrap(), ctx]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&format!("Cannot load IR file `{}`", junk.display())), "{}", stderr(&out));
    let out = cairn(&t, &["build", "--ir", "/no/such/file.cairn", ctx]);
    assert!(stderr(&out).contains("Cannot read IR file `/no/such/file.cairn`"), "{}", stderr(&out));
    let out = cairn(&t, &["build", "--progress", "fancy", ctx]);
    assert!(stderr(&out).contains("Unknown progress mode `fancy`"), "{}", stderr(&out));
    let out = cairn(&t, &["build", "-o", "type=registry,dest=x", ctx]);
    assert!(stderr(&out).contains("`--output type=registry,dest=x` needs `name=REF`"), "{}", stderr(&out));
    let out = cairn(&t, &["build", "-o", "type=ftp,dest=x", ctx]);
    assert!(stderr(&out).contains("Unsupported output type `ftp`"), "{}", stderr(&out));
    let out = cairn(&t, &["build", "--platform", "linux", ctx]);
    assert!(stderr(&out).contains("Invalid `--platform linux`"), "{}", stderr(&out));
    let out = cairn(&t, &["build", "--build-context", "x=/no/such/dir", ctx]);
    assert!(stderr(&out).contains("`--build-context x`: directory `/no/such/dir` not found"), "{}", stderr(&out));
    let out = cairn(&t, &["build", "--build-arg", "=v", ctx]);
    assert!(stderr(&out).contains("Invalid `--build-arg =v`"), "{}", stderr(&out));
    let out = cairn(&t, &["build", "/no/such/context"]);
    assert!(stderr(&out).contains("Build context `/no/such/context` is not a directory"), "{}", stderr(&out));
    let out = cairn(&t, &["build", "--jobs", "many", ctx]);
    assert_eq!(out.status.code(), Some(125), "usage errors exit with 125, as docker and buildx");
}

#[test]
fn compiled_ir_builds_like_the_dockerfile() {
    let t = setup("ir");
    t.write("ctx/Dockerfile", "FROM busybox\nRUN echo from-ir > /x\n");
    let ir = t.path("build.cairn");
    let o = Command::new(BIN)
        .args(["compile", "--format", "msgpack", "-o", ir.to_str().unwrap(), t.path("ctx").to_str().unwrap()])
        .env("CAIRN_ROOT", t.path("store"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let (o, _) =
        build(&t, &["--ir", ir.to_str().unwrap(), "-o", &format!("type=local,dest={}", t.path("out").display())]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(t.path("out/x")).unwrap(), "from-ir\n");
}

/// Issue 11: an output that is a character device, a FIFO or a symlink to one is written
/// into, never replaced by a rename (`-o /dev/null` once replaced the machine's
/// `/dev/null`). The device node is the test's own, never the real `/dev/null`.
#[test]
fn issue11_outputs_onto_devices_and_fifos_are_written_into() {
    use std::os::unix::fs::FileTypeExt;
    let t = setup("devout");
    t.write("ctx/a.txt", "A");
    t.write("ctx/Dockerfile", "FROM busybox\nCOPY a.txt /a.txt\n");
    let dev = t.path("null");
    let ok = Command::new("mknod").args(["-m", "666", dev.to_str().unwrap(), "c", "1", "3"]).status().unwrap();
    assert!(ok.success(), "mknod needs root");
    std::os::unix::fs::symlink(&dev, t.path("link")).unwrap();
    let ctx = t.path("ctx");
    for target in [dev.clone(), t.path("link")] {
        let p = target.to_str().unwrap();
        let outputs = [format!("type=tar,dest={p}"), format!("type=oci,dest={p}"), format!("type=docker,dest={p}")];
        for o in &outputs {
            let (out, _) = build(&t, &["-o", o, "--metadata-file", p]);
            assert!(out.status.success(), "{o}: {}", stderr(&out));
        }
        let out = cairn(&t, &["compile", "-o", p, ctx.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        let out = cairn(&t, &["save", "busybox", "-o", p]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert!(std::fs::symlink_metadata(&dev).unwrap().file_type().is_char_device(), "the device node is still one");
    assert!(std::fs::symlink_metadata(t.path("link")).unwrap().file_type().is_symlink());

    // A FIFO: the reader gets the whole OCI archive, and the FIFO stays a FIFO.
    let fifo = t.path("pipe");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(&fifo).unwrap())
    };
    let (out, _) = build(&t, &["-o", &format!("type=oci,dest={}", fifo.display())]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = reader.join().unwrap();
    std::fs::write(t.path("from-fifo.tar"), &bytes).unwrap();
    let list = Command::new("tar").args(["-tf", t.path("from-fifo.tar").to_str().unwrap()]).output().unwrap();
    let names = String::from_utf8_lossy(&list.stdout);
    assert!(names.contains("index.json") && names.contains("oci-layout"), "{names}");
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(
        std::fs::read_dir(&t.0)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.'))
            .count(),
        0,
        "no temporary file is left"
    );
}

/// Issue 8: `Dockerfile.dockerignore` beside the Dockerfile wins over the context's
/// `.dockerignore`, and the runtime applies only the IR's patterns (it once read the
/// context's `.dockerignore` again, so `a.log` vanished).
#[test]
fn issue8_dockerfile_specific_dockerignore_wins_and_runtime_reads_no_dockerignore() {
    let t = setup("ignorefile");
    t.write("ctx/a.log", "log");
    t.write("ctx/keep.txt", "keep");
    t.write("ctx/secret/key", "s3cr3t");
    t.write("ctx/.dockerignore", "*.log\n");
    t.write("ctx/Dockerfile.dockerignore", "secret/\n");
    t.write("ctx/Dockerfile", "FROM scratch\nCOPY . /src/\n");
    let (o, _) = build(&t, &["-o", &format!("type=local,dest={}", t.path("rootfs").display())]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(t.path("rootfs/src/a.log")).unwrap(), "log");
    assert!(t.path("rootfs/src/keep.txt").exists());
    assert!(!t.path("rootfs/src/secret").exists(), "Dockerfile.dockerignore excludes secret/");
}
