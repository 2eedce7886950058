//! Reproducible images and image-level semantics of `cairn build`: SOURCE_DATE_EPOCH
//! clamps layer and config times, `--verify-reproducible` names the first difference,
//! `created` is the build time and stable across fully cached rebuilds, empty layers are dropped, `cairn save`
//! writes docker-archives that load again, and COPY `--link`, `--parents`, `--exclude`.

use std::process::Command;

use serde_json::Value;

use crate::build_cli::{build, cairn, cairn_in, counts, setup, stderr, Tmp};

/// Builds with `-t` and `--metadata-file`; returns (manifest digest, config JSON).
fn build_image(t: &Tmp, tag: &str, extra: &[&str]) -> (String, Value) {
    let meta = t.path("meta.json");
    let mut args = vec!["-t", tag, "--metadata-file", meta.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (o, _) = build(t, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let m: Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let config_digest = m["containerimage.config.digest"].as_str().unwrap().to_string();
    let hex = config_digest.strip_prefix("sha256:").unwrap();
    let config = serde_json::from_slice(&std::fs::read(t.path(&format!("store/blobs/sha256/{hex}"))).unwrap()).unwrap();
    (m["containerimage.digest"].as_str().unwrap().to_string(), config)
}

fn history(config: &Value) -> Vec<Value> {
    config["history"].as_array().cloned().unwrap_or_default()
}

#[test]
fn source_date_epoch_gives_identical_images() {
    let t = setup("sde");
    t.write("ctx/app/a.txt", "a\n");
    t.write("ctx/app/sub/b.txt", "b\n");
    // COPY only: every directory COPY creates gets a fresh mtime, clamped to the epoch.
    t.write("ctx/Dockerfile", "FROM busybox\nCOPY app /srv/app\nCOPY app/a.txt /etc/deep/dir/\n");
    let epoch = ["--no-cache", "--build-arg", "SOURCE_DATE_EPOCH=1700000000"];
    let (d1, c1) = build_image(&t, "copy:1", &epoch);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (d2, _) = build_image(&t, "copy:2", &epoch);
    assert_eq!(d1, d2, "two --no-cache COPY builds with SOURCE_DATE_EPOCH");
    assert_eq!(c1["created"], "2023-11-14T22:13:20Z");
    assert!(history(&c1).iter().any(|h| h["created_by"].as_str().unwrap_or("").contains("COPY app /srv/app")), "{c1}");
    // The base's history entries keep their own times (BuildKit does the same); the
    // entries of this build are the epoch.
    let h = history(&c1);
    let (base, ours): (Vec<&Value>, Vec<&Value>) =
        h.iter().partition(|e| !e["created_by"].as_str().unwrap_or("").contains("COPY app"));
    assert!(!ours.is_empty() && ours.iter().all(|e| e["created"] == "2023-11-14T22:13:20Z"), "{c1}");
    assert!(base.iter().all(|e| e["created"] != "2023-11-14T22:13:20Z"), "the busybox base was built now: {c1}");

    // Deterministic RUN steps, with the epoch from the environment.
    t.write(
        "ctx/Dockerfile",
        "FROM busybox\nRUN mkdir -p /data/x && echo hello > /data/x/f && ln -s f /data/x/l && rm -f /etc/group\nWORKDIR /work\nRUN touch /work/made\n",
    );
    let env_build = |tag: &str| {
        let meta = t.path("meta-env.json");
        let o = Command::new(crate::build_cli::BIN)
            .args([
                "build",
                "--progress",
                "plain",
                "--no-cache",
                "-t",
                tag,
                "--metadata-file",
                meta.to_str().unwrap(),
                t.path("ctx").to_str().unwrap(),
            ])
            .env("CAIRN_ROOT", t.path("store"))
            .env("SOURCE_DATE_EPOCH", "1600000000")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let m: Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
        m["containerimage.digest"].as_str().unwrap().to_string()
    };
    let r1 = env_build("run:1");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(r1, env_build("run:2"), "two --no-cache RUN builds with SOURCE_DATE_EPOCH");

    // Every mtime in the exported layers is at most the epoch (clamped when the tar is written).
    let tar = t.path("rootfs.tar");
    let o = cairn(
        &t,
        &[
            "build",
            "--progress",
            "quiet",
            "--build-arg",
            "SOURCE_DATE_EPOCH=1600000000",
            "-o",
            &format!("type=tar,dest={}", tar.display()),
            t.path("ctx").to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let list = Command::new("tar").args(["--utc", "--full-time", "-tvf", tar.to_str().unwrap()]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(list.contains("work/made"), "{list}");
    for line in list.lines() {
        let date = line.split_whitespace().nth(3).unwrap();
        assert!(date <= "2020-09-13", "an mtime after SOURCE_DATE_EPOCH: {line}");
    }
}

#[test]
fn verify_reproducible_names_the_first_difference() {
    let t = setup("verify");
    t.write("ctx/Dockerfile", "FROM busybox\nRUN echo same > /same\n");
    let ok = ["--verify-reproducible", "--build-arg", "SOURCE_DATE_EPOCH=1700000000"];
    let (o, s) = build(&t, &ok);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("Reproducible: both builds gave image sha256:"), "{}", stderr(&o));
    assert_eq!(counts(&s).0, 1, "the summary counts the first build");

    t.write("ctx/Dockerfile", "FROM busybox\nRUN echo same > /same\nRUN head -c 16 /dev/urandom > /random\n");
    let out = t.path("out.tar");
    let (o, _) = build(
        &t,
        &[
            "--verify-reproducible",
            "--build-arg",
            "SOURCE_DATE_EPOCH=1700000000",
            "-t",
            "notrepro",
            "-o",
            &format!("type=oci,dest={}", out.display()),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("The build is not reproducible"), "{e}");
    assert!(e.contains("layer 4 of 4 (`RUN /bin/sh -c head -c 16 /dev/urandom > /random"), "{e}");
    assert!(e.contains("`/random`: its content differs"), "{e}");
    assert!(!out.exists(), "no output is written for a failed verification");
    let images = cairn(&t, &["images"]);
    assert!(!String::from_utf8_lossy(&images.stdout).contains("notrepro"), "no tag either");

    // Without SOURCE_DATE_EPOCH a RUN's files get the time of the build.
    t.write("ctx/Dockerfile", "FROM busybox\nRUN echo same > /same\n");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (o, _) = build(&t, &["--verify-reproducible"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("its mtime differs") || e.contains("`created`"), "{e}");
    assert!(e.contains("SOURCE_DATE_EPOCH is not set"), "{e}");
}

#[test]
fn created_is_stable_on_cached_rebuilds_and_empty_layers_are_dropped() {
    let t = setup("created");
    t.write("ctx/Dockerfile", "FROM busybox\nRUN echo x > /x\nRUN true\nWORKDIR /\nENV A=1\n");
    let (d1, c1) = build_image(&t, "c:1", &[]);
    let created = c1["created"].as_str().expect("config.created is set").to_string();
    assert!(created.ends_with('Z') && created.len() == 20, "{created}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (d2, _) = build_image(&t, "c:2", &[]);
    assert_eq!(d1, d2, "a fully cached rebuild gives the same image (and date)");
    // An image that differs only in its config is built now, though every layer is cached;
    // one whose only new entry is metadata does not take the base's date either.
    t.write("ctx/Dockerfile", "FROM busybox\nRUN echo x > /x\nRUN true\nWORKDIR /\nENV A=2\n");
    let (_, c3) = build_image(&t, "c:3", &[]);
    assert!(c3["created"].as_str().unwrap() > created.as_str(), "{c3}");
    t.write("ctx/Dockerfile", "FROM busybox\nLABEL only=metadata\n");
    let (_, c4) = build_image(&t, "c:4", &[]);
    let base_created = history(&c4)[0]["created"].as_str().unwrap().to_string();
    assert!(c4["created"].as_str().unwrap() > base_created.as_str(), "not the base's date: {c4}");
    // `RUN true` changed nothing: no layer, and its history entry says so.
    let h = history(&c1);
    let run_true = h.iter().find(|e| e["created_by"].as_str().unwrap_or("").contains("-c true")).unwrap();
    assert_eq!(run_true["empty_layer"], true, "{h:?}");
    let non_empty = h.iter().filter(|e| e["empty_layer"] != true).count();
    assert_eq!(non_empty, c1["rootfs"]["diff_ids"].as_array().unwrap().len(), "history matches the layers: {c1}");
    assert!(h.iter().all(|e| e["created"].is_string()), "{h:?}");
}

#[test]
fn save_writes_a_docker_archive_that_loads_again() {
    let t = setup("save");
    t.write("ctx/Dockerfile", "FROM busybox\nRUN echo one > /one\n");
    build_image(&t, "first:v1", &[]);
    t.write("ctx/Dockerfile", "FROM busybox\nRUN echo two > /two\n");
    build_image(&t, "second:v2", &[]);
    let out = t.path("saved.tar");
    let o = cairn(&t, &["save", "first:v1", "second:v2", "busybox", "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = Command::new("tar").args(["-xOf", out.to_str().unwrap(), "manifest.json"]).output().unwrap();
    let m: Value = serde_json::from_slice(&m.stdout).unwrap();
    let tags: Vec<&str> = m
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["RepoTags"].as_array().unwrap())
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(tags, ["first:v1", "second:v2", "busybox:latest"]);
    let insp = Command::new("skopeo")
        .args(["inspect", &format!("docker-archive:{}:second:v2", out.display())])
        .output()
        .unwrap();
    assert!(insp.status.success(), "skopeo reads the archive: {}", String::from_utf8_lossy(&insp.stderr));
    // Into an empty store, then build on what was loaded.
    let fresh = t.path("fresh-store");
    let o = cairn_in(&fresh, &["load", "-i", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list = String::from_utf8_lossy(&cairn_in(&fresh, &["images"]).stdout).into_owned();
    for n in ["first:v1", "second:v2", "busybox:latest"] {
        assert!(list.contains(n), "{list}");
    }
    let e = cairn(&t, &["save", "nope:missing", "-o", t.path("x.tar").to_str().unwrap()]);
    assert_eq!(e.status.code(), Some(1));
    assert!(stderr(&e).contains("No such image `nope:missing`"), "{}", stderr(&e));
    assert!(!t.path("x.tar").exists(), "nothing written for a missing image");
}

/// The last diff_id of an image config.
fn top_layer(config: &Value) -> String {
    config["rootfs"]["diff_ids"].as_array().unwrap().last().unwrap().as_str().unwrap().to_string()
}

#[test]
fn copy_link_layers_survive_a_rebase() {
    let t = setup("link");
    t.write("ctx/app.txt", "the app\n");
    t.write(
        "ctx/Dockerfile",
        "ARG BASE=one\nFROM busybox AS one\nRUN echo 1 > /one\nFROM busybox AS two\nRUN echo 2 > /two\nFROM ${BASE}\nCOPY --link app.txt /opt/app.txt\n",
    );
    let (_, c1) = build_image(&t, "l:1", &[]);
    let (o, s) = build(&t, &["--build-arg", "BASE=two"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ran = crate::build_cli::executed_steps(&o);
    assert!(!ran.iter().any(|n| n.contains("COPY --link")), "the linked COPY is reused on the new base: {ran:?}");
    assert_eq!(counts(&s).0, 1, "only stage two's RUN ran: {ran:?}");
    let (_, c2) = build_image(&t, "l:2", &["--build-arg", "BASE=two"]);
    assert_eq!(top_layer(&c1), top_layer(&c2), "the same layer blob on both bases");
    let below = |c: &Value| c["rootfs"]["diff_ids"].as_array().unwrap()[..2].to_vec();
    assert_eq!(c1["rootfs"]["diff_ids"].as_array().unwrap().len(), 4, "busybox (2), the stage's RUN, the link: {c1}");
    assert_ne!(c1["rootfs"]["diff_ids"][2], c2["rootfs"]["diff_ids"][2], "the bases differ");
    assert_eq!(below(&c1), below(&c2));
    // Without --link the COPY depends on what is below it.
    t.write(
        "ctx/Dockerfile",
        "ARG BASE=one\nFROM busybox AS one\nRUN echo 1 > /one\nFROM busybox AS two\nRUN echo 2 > /two\nFROM ${BASE}\nCOPY app.txt /opt/app.txt\n",
    );
    build_image(&t, "n:1", &[]);
    let (o, _) = build(&t, &["--build-arg", "BASE=two"]);
    assert!(crate::build_cli::executed_steps(&o).iter().any(|n| n.contains("COPY app.txt")), "{}", stderr(&o));
}

#[test]
fn copy_parents_and_exclude() {
    let t = setup("parents");
    t.write("ctx/src/a/x.txt", "ax");
    t.write("ctx/src/b/x.txt", "bx");
    t.write("ctx/src/b/skip.log", "log");
    t.write("ctx/src/c/y.txt", "cy");
    t.write("ctx/src/keep.md", "md");
    t.write("ctx/src/debug.log", "log");
    t.write(
        "ctx/Dockerfile",
        "FROM scratch\nCOPY --parents src/*/x.txt /p/\nCOPY --exclude=*.log --exclude=c src/ /e/\nCOPY --parents --exclude=**/*.log src/b /q/\n",
    );
    let dest = t.path("rootfs");
    let (o, _) = build(&t, &["-o", &format!("type=local,dest={}", dest.display())]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut files: Vec<String> =
        walk(&dest).into_iter().map(|p| p.strip_prefix(&dest).unwrap().display().to_string()).collect();
    files.sort();
    assert_eq!(
        files,
        ["e/a/x.txt", "e/b/skip.log", "e/b/x.txt", "e/keep.md", "p/src/a/x.txt", "p/src/b/x.txt", "q/src/b/x.txt"],
        "--parents keeps the source path; --exclude drops matches (`*.log` only at the top, as in .dockerignore)"
    );
}

/// Issue 12: `COPY --parents` with `**` copies every match at any depth and with BuildKit's
/// `/./` pivot keeps only what follows it; `--chmod` takes symbolic modes (Dockerfile
/// 1.14), applied to each file's own bits.
#[test]
fn issue12_copy_parents_globstar_pivot_and_symbolic_chmod() {
    use std::os::unix::fs::PermissionsExt;
    let t = setup("parents12");
    for f in ["src/a.txt", "src/d/b.txt", "src/d/e/c.txt", "src/d/skip.md", "x/y/z/n.txt", "x/y/m.txt"] {
        t.write(&format!("ctx/{f}"), f);
    }
    t.write("ctx/tools/run.sh", "#!/bin/sh\n");
    t.write("ctx/tools/data.txt", "data");
    let mode = |p: &str, m: u32| std::fs::set_permissions(t.path(p), std::fs::Permissions::from_mode(m)).unwrap();
    mode("ctx/tools/run.sh", 0o744);
    mode("ctx/tools/data.txt", 0o666);
    t.write(
        "ctx/Dockerfile",
        "FROM scratch\n\
         COPY --parents ./src/**/*.txt /g/\n\
         COPY --parents ./x/./y/**/*.txt /p/\n\
         COPY --chmod=a=rX,u+w tools/ /m/\n\
         COPY --chmod=go-w,u+x tools/data.txt /one\n",
    );
    let dest = t.path("rootfs");
    let (o, _) = build(&t, &["-o", &format!("type=local,dest={}", dest.display())]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut files: Vec<String> =
        walk(&dest).into_iter().map(|p| p.strip_prefix(&dest).unwrap().display().to_string()).collect();
    files.sort();
    assert_eq!(
        files,
        [
            "g/src/a.txt",
            "g/src/d/b.txt",
            "g/src/d/e/c.txt",
            "m/data.txt",
            "m/run.sh",
            "one",
            "p/y/m.txt",
            "p/y/z/n.txt"
        ],
    );
    let bits = |p: &str| std::fs::metadata(dest.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(bits("m/run.sh"), 0o755, "X keeps the executable file executable");
    assert_eq!(bits("m/data.txt"), 0o644);
    assert_eq!(bits("one"), 0o744);

    t.write("ctx/Dockerfile", "FROM scratch\nCOPY --chmod=u+q tools/ /m/\n");
    let (o, _) = build(&t, &[]);
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.contains("`--chmod=u+q`: expected an octal mode") && e.contains("Dockerfile:2"),
        "{e}"
    );
}

fn walk(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
