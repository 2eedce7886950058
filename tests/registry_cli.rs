//! `cairn build --push`, `pull`, `push`, `login`, `FROM` a registry image (issue 9), against
//! Debian's `docker-registry` started on 127.0.0.1 by the test itself (plain HTTP, named
//! insecure; htpasswd auth). Checked with skopeo and with the registry's own log.
//! Client-level behaviour (TLS, token auth, resumed downloads, credential helpers) is
//! tested in `registry/tests/`.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::build_cli::{busybox_archive, stderr, Tmp, BIN};
use crate::registry_fixture::Registry;

/// Runs cairn with its own store and docker config directory.
fn cairn(t: &Tmp, store: &str, args: &[&str]) -> Output {
    cairn_stdin(t, store, args, None)
}

fn cairn_stdin(t: &Tmp, store: &str, args: &[&str], input: Option<&str>) -> Output {
    use std::io::Write;
    let mut c = Command::new(BIN)
        .args(args)
        .env("CAIRN_ROOT", t.path(store))
        .env("DOCKER_CONFIG", t.path("docker-config"))
        .env("CAIRN_REGISTRIES_CONFIG", t.path("none.json"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    if let Some(i) = input {
        stdin.write_all(i.as_bytes()).unwrap();
    }
    drop(stdin);
    c.wait_with_output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", stderr(o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The busybox base, loaded into `store` and pushed to `reg` as `repo`; returns its digest.
fn push_busybox(t: &Tmp, store: &str, reg: &Registry, repo: &str) -> String {
    ok(&cairn(t, store, &["load", "-i", busybox_archive().to_str().unwrap()]));
    let dest = format!("{}/{repo}", reg.host);
    let out = ok(&cairn(t, store, &["push", "--insecure-registry", &reg.host, "busybox:latest", &dest]));
    out.rsplit_once('@').expect("push prints NAME@DIGEST").1.to_string()
}

fn skopeo_inspect(reference: &str) -> serde_json::Value {
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{reference}")])
        .output()
        .expect("install skopeo");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn skopeo_digest(reference: &str) -> String {
    skopeo_inspect(reference)["Digest"].as_str().unwrap().to_string()
}

#[test]
fn issue9_push_pull_by_tag_and_digest_build_from_registry_and_cached_rebuild_downloads_nothing() {
    let t = Tmp::new("reg-roundtrip");
    let reg = Registry::start(&t, "reg", None);
    let h = reg.host.clone();
    let digest = push_busybox(&t, "s1", &reg, "lib/busybox:1");
    let seen = skopeo_inspect(&format!("{h}/lib/busybox:1"));
    assert_eq!(seen["Digest"], digest.as_str(), "skopeo sees what cairn pushed");
    let layers: Vec<String> =
        seen["Layers"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect();

    // Pull by tag and by digest into fresh stores: the same image.
    let by_tag = ok(&cairn(&t, "s2", &["pull", "--insecure-registry", &h, &format!("{h}/lib/busybox:1")]));
    assert!(by_tag.ends_with(&format!("@{digest}")), "{by_tag}");
    let by_digest = ok(&cairn(&t, "s3", &["pull", "--insecure-registry", &h, &format!("{h}/lib/busybox@{digest}")]));
    assert!(by_digest.ends_with(&format!("@{digest}")), "{by_digest}");
    assert_eq!(
        reg.blob_gets().iter().filter(|d| layers.contains(d)).count(),
        0,
        "a pull downloads no layer until a step needs it: {}",
        reg.log()
    );

    // Build FROM it in a store that has never seen it; the RUN step needs the layers.
    t.write("app/Dockerfile", &format!("FROM {h}/lib/busybox:1\nRUN echo hi > /hi\n"));
    let out_dir = t.path("rootfs");
    let o = cairn(
        &t,
        "s4",
        &[
            "build",
            "--progress",
            "plain",
            "--insecure-registry",
            &h,
            "-t",
            "app:1",
            "-o",
            &format!("type=local,dest={}", out_dir.display()),
            t.path("app").to_str().unwrap(),
        ],
    );
    ok(&o);
    assert_eq!(std::fs::read_to_string(out_dir.join("hi")).unwrap(), "hi\n");
    assert!(stderr(&o).contains("pull sha256:"), "layer downloads show as steps: {}", stderr(&o));
    let gets = reg.blob_gets().len();
    assert!(reg.blob_gets().iter().filter(|d| layers.contains(d)).count() > 0);

    // A fully cached rebuild makes no blob request at all.
    let o = cairn(&t, "s4", &["build", "--insecure-registry", &h, "-t", "app:1", t.path("app").to_str().unwrap()]);
    ok(&o);
    assert_eq!(reg.blob_gets().len(), gets, "a cached rebuild fetched a blob: {}", stderr(&o));

    // --push of the build, then a cross-repository push mounts instead of uploading.
    let o = cairn(
        &t,
        "s4",
        &[
            "build",
            "--insecure-registry",
            &h,
            "-t",
            &format!("{h}/team/app:1"),
            "--push",
            t.path("app").to_str().unwrap(),
        ],
    );
    ok(&o);
    let pushed = skopeo_digest(&format!("{h}/team/app:1"));
    let o =
        cairn(&t, "s4", &["push", "--insecure-registry", &h, &format!("{h}/team/app:1"), &format!("{h}/other/app:1")]);
    ok(&o);
    assert!(stderr(&o).contains("mounted from"), "{}", stderr(&o));
    assert!(reg.log().contains("mount="), "the registry saw a mount request");
    assert_eq!(skopeo_digest(&format!("{h}/other/app:1")), pushed);
}

#[test]
fn issue9_builds_from_what_skopeo_pushed_and_rejects_a_corrupted_blob() {
    let t = Tmp::new("reg-skopeo");
    let reg = Registry::start(&t, "reg", None);
    let h = reg.host.clone();
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--dest-tls-verify=false",
            &format!("docker-archive:{}", busybox_archive().display()),
            &format!("docker://{h}/sk/busybox:latest"),
        ])
        .output()
        .expect("install skopeo");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    t.write("app/Dockerfile", &format!("FROM {h}/sk/busybox\nRUN echo from-skopeo > /x\n"));
    let dest = t.path("out");
    ok(&cairn(
        &t,
        "s1",
        &[
            "build",
            "--insecure-registry",
            &h,
            "-o",
            &format!("type=local,dest={}", dest.display()),
            t.path("app").to_str().unwrap(),
        ],
    ));
    assert_eq!(std::fs::read_to_string(dest.join("x")).unwrap(), "from-skopeo\n");

    // Flip a byte of the layer blob in the registry's storage: a fresh store refuses it,
    // names the blob, and keeps nothing of it.
    let blobs = reg.dir.join("data/docker/registry/v2/blobs/sha256");
    let mut biggest: Option<(u64, PathBuf)> = None;
    for prefix in std::fs::read_dir(&blobs).unwrap() {
        for b in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
            let data = b.unwrap().path().join("data");
            let len = std::fs::metadata(&data).unwrap().len();
            if biggest.as_ref().is_none_or(|(l, _)| len > *l) {
                biggest = Some((len, data));
            }
        }
    }
    let (_, data) = biggest.unwrap();
    let hex = data.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned();
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();
    let o = cairn(&t, "s2", &["build", "--insecure-registry", &h, t.path("app").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains(&hex[..12]), "the error names the blob: {}", stderr(&o));
    assert!(!t.path("s2/blobs/sha256").join(&hex).exists(), "the corrupted blob was stored");
}

#[test]
fn issue9_login_with_wrong_and_right_credentials() {
    let t = Tmp::new("reg-auth");
    let reg = Registry::start(&t, "reg", Some(("alice", "s3cret-pw")));
    let h = reg.host.clone();
    ok(&cairn(&t, "s1", &["load", "-i", busybox_archive().to_str().unwrap()]));
    let dest = format!("{h}/priv/busybox:1");
    let o = cairn(&t, "s1", &["push", "--insecure-registry", &h, "busybox:latest", &dest]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains(&h), "the error names the registry: {}", stderr(&o));
    let o = cairn_stdin(
        &t,
        "s1",
        &["login", "--insecure-registry", &h, "-u", "alice", "--password-stdin", &h],
        Some("wrong-password\n"),
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains(&h) && !e.contains("wrong-password"), "{e}");
    ok(&cairn_stdin(
        &t,
        "s1",
        &["login", "--insecure-registry", &h, "-u", "alice", "--password-stdin", &h],
        Some("s3cret-pw\n"),
    ));
    let o = cairn(&t, "s1", &["push", "--insecure-registry", &h, "busybox:latest", &dest]);
    ok(&o);
    assert!(!stderr(&o).contains("s3cret-pw"));
    // Logged out, the registry refuses again.
    ok(&cairn(&t, "s1", &["logout", &h]));
    let o = cairn(&t, "s2", &["pull", "--insecure-registry", &h, &dest]);
    assert!(!o.status.success(), "{}", stderr(&o));
}

#[test]
fn issue9_platform_selection_from_a_multi_platform_index() {
    let t = Tmp::new("reg-index");
    let reg = Registry::start(&t, "reg", None);
    let h = reg.host.clone();
    t.write("ctx/f", "x");
    t.write("ctx/Dockerfile", "FROM scratch\nCOPY f /f\n");
    let mut entries = Vec::new();
    for (platform, arch, variant) in [("linux/amd64", "amd64", ""), ("linux/arm64", "arm64", "v8")] {
        let name = format!("{h}/multi:{arch}");
        let o = cairn(
            &t,
            "s1",
            &[
                "build",
                "--platform",
                platform,
                "-t",
                &name,
                "--push",
                "--insecure-registry",
                &h,
                t.path("ctx").to_str().unwrap(),
            ],
        );
        ok(&o);
        let raw = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{name}")])
            .output()
            .unwrap();
        let digest = skopeo_digest(&name);
        let mut p = serde_json::json!({"architecture": arch, "os": "linux"});
        if !variant.is_empty() {
            p["variant"] = variant.into();
        }
        entries.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": raw.stdout.len(),
            "platform": p,
        }));
    }
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries});
    std::fs::write(t.path("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    let put = Command::new("curl")
        .args(["-sf", "-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.index.v1+json", "--data-binary"])
        .arg(format!("@{}", t.path("index.json").display()))
        .arg(format!("http://{h}/v2/multi/manifests/latest"))
        .status()
        .expect("curl");
    assert!(put.success());
    for (platform, i) in [("linux/arm64", 1), ("linux/arm64/v8", 1), ("linux/amd64", 0)] {
        let pinned =
            ok(&cairn(&t, "s2", &["pull", "--platform", platform, "--insecure-registry", &h, &format!("{h}/multi")]));
        let want = entries[i]["digest"].as_str().unwrap();
        assert!(pinned.ends_with(want), "{platform}: {pinned} is not {want}");
    }
    let o = cairn(&t, "s2", &["pull", "--platform", "linux/s390x", "--insecure-registry", &h, &format!("{h}/multi")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("s390x"), "{}", stderr(&o));
}
