//! Issue 11, the rest of buildx's dialect: exporter options (`compression=zstd`,
//! `force-compression`, `oci-mediatypes=false`, `rewrite-timestamp`, `annotation.*`),
//! `--annotation`, each output read back by skopeo and umoci; zstd images imported and
//! built upon; `--call outline|targets|check`.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::build_cli::{build, cairn, setup, stderr};

fn json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// The blob file of `digest` in the OCI layout `dir`.
fn blob(dir: &Path, digest: &Value) -> std::path::PathBuf {
    dir.join("blobs/sha256").join(digest.as_str().unwrap().trim_start_matches("sha256:"))
}

fn run_ok(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(o.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `-o type=oci,compression=zstd,force-compression=true`: every layer, the base image's
/// too, is zstd; skopeo copies the layout (verifying every blob) and umoci unpacks the
/// copy. The annotations land in the manifest, the index and the descriptor; a second
/// store loads the zstd archive and builds on it.
#[test]
fn issue11_zstd_layers_are_read_by_skopeo_and_umoci_and_build_again() {
    let t = setup("zstd");
    t.write("ctx/hello.txt", "hello\n");
    t.write("ctx/Dockerfile", "FROM busybox\nCOPY hello.txt /hello.txt\nRUN echo built > /built\n");
    let dir = t.path("zstd-layout");
    let out = format!(
        "type=oci,dest={},tar=false,compression=zstd,compression-level=9,force-compression=true,\
annotation.org.example.team=infra,annotation-index.org.example.kind=demo,\
annotation-manifest-descriptor.org.example.d=desc,annotation-manifest[linux/arm64].org.example.arm=no",
        dir.display()
    );
    let (o, _) = build(&t, &["-t", "docker.io/library/zapp:1", "-o", &out, "--annotation", "org.example.flag=yes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let index = json(&dir.join("index.json"));
    assert_eq!(index["annotations"]["org.example.kind"], "demo", "{index}");
    let desc = &index["manifests"][0];
    assert_eq!(desc["annotations"]["org.example.d"], "desc", "{index}");
    assert_eq!(desc["annotations"]["org.opencontainers.image.ref.name"], "1", "{index}");
    let m = json(&blob(&dir, &desc["digest"]));
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(m["annotations"]["org.example.team"], "infra", "{m}");
    assert_eq!(m["annotations"]["org.example.flag"], "yes", "--annotation reaches every output: {m}");
    assert!(m["annotations"].get("org.example.arm").is_none(), "another platform's annotation: {m}");
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 4, "busybox (2), COPY, RUN: {m}");
    for l in layers {
        assert_eq!(l["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd", "{m}");
        let head = std::fs::read(blob(&dir, &l["digest"])).unwrap();
        assert_eq!(&head[..4], &[0x28, 0xb5, 0x2f, 0xfd], "a zstd frame");
    }
    // skopeo copies (and so verifies) the layout; umoci unpacks the copy.
    let copy = t.path("copy");
    run_ok(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}:1", dir.display()),
        &format!("oci:{}:copied", copy.display()),
    ]));
    let raw: Value = serde_json::from_str(&run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("oci:{}:copied", copy.display()),
    ])))
    .unwrap();
    assert_eq!(raw["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd", "{raw}");
    // Debian's umoci (0.4.7) refuses the zstd media type itself, so skopeo decompresses
    // the zstd layers into gzip ones and umoci unpacks those, checking every layer's
    // content against the diff_ids of cairn's config: both read cairn's zstd bytes.
    let gz = t.path("gz");
    run_ok(Command::new("skopeo").args([
        "copy",
        "--dest-compress-format",
        "gzip",
        &format!("oci:{}:copied", copy.display()),
        &format!("oci:{}:gz", gz.display()),
    ]));
    let raw: Value = serde_json::from_str(&run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("oci:{}:gz", gz.display()),
    ])))
    .unwrap();
    assert_eq!(
        raw["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
        "skopeo recompressed: {raw}"
    );
    let bundle = t.path("bundle");
    run_ok(Command::new("umoci").args(["unpack", "--image", &format!("{}:gz", gz.display())]).arg(&bundle));
    assert_eq!(std::fs::read_to_string(bundle.join("rootfs/hello.txt")).unwrap(), "hello\n");
    assert_eq!(std::fs::read_to_string(bundle.join("rootfs/built")).unwrap(), "built\n");
    assert!(bundle.join("rootfs/bin/busybox").exists());

    // A zstd image imports, and a build on it reads its layers.
    let archive = t.path("zstd.tar");
    let out = format!("type=oci,dest={},compression=zstd,force-compression=true", archive.display());
    let (o, _) = build(&t, &["-t", "docker.io/library/zapp:1", "-o", &out]);
    assert!(o.status.success(), "{}", stderr(&o));
    let other = t.path("other-store");
    let o = crate::build_cli::cairn_in(&other, &["load", "-i", archive.to_str().unwrap()]);
    assert!(o.status.success(), "loading a zstd image: {}", stderr(&o));
    t.write("ctx2/Dockerfile", "FROM zapp:1\nRUN cat /hello.txt /built > /both\n");
    let o = crate::build_cli::cairn_in(
        &other,
        &[
            "build",
            "--progress",
            "plain",
            "-o",
            &format!("type=local,dest={}", t.path("rootfs").display()),
            t.path("ctx2").to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "building on a zstd image: {}", stderr(&o));
    assert_eq!(std::fs::read_to_string(t.path("rootfs/both")).unwrap(), "hello\nbuilt\n");
}

/// `oci-mediatypes=false` writes Docker's v2 schema 2 media types (the base image's gzip
/// layer kept, its media type converted), `compression=uncompressed` plain tars,
/// `rewrite-timestamp=true` with SOURCE_DATE_EPOCH clamps file times; skopeo reads the
/// archive and umoci unpacks it.
#[test]
fn issue11_docker_media_types_uncompressed_and_rewrite_timestamp() {
    let t = setup("mediatypes");
    t.write("ctx/hello.txt", "hello\n");
    t.write("ctx/Dockerfile", "FROM busybox\nCOPY hello.txt /hello.txt\n");
    let archive = t.path("docker-types.tar");
    let out = format!(
        "type=oci,dest={},oci-mediatypes=false,compression=uncompressed,rewrite-timestamp=true",
        archive.display()
    );
    let (o, _) = build(&t, &["-t", "dt:1", "--build-arg", "SOURCE_DATE_EPOCH=1700000000", "-o", &out]);
    assert!(o.status.success(), "{}", stderr(&o));
    let oci = format!("oci-archive:{}", archive.display());
    let raw: Value = serde_json::from_str(&run_ok(Command::new("skopeo").args(["inspect", "--raw", &oci]))).unwrap();
    assert_eq!(raw["mediaType"], "application/vnd.docker.distribution.manifest.v2+json", "{raw}");
    assert_eq!(raw["config"]["mediaType"], "application/vnd.docker.container.image.v1+json", "{raw}");
    for base in 0..2 {
        assert_eq!(raw["layers"][base]["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip", "{raw}");
    }
    assert_eq!(raw["layers"][2]["mediaType"], "application/vnd.docker.image.rootfs.diff.tar", "{raw}");
    let cfg: Value = serde_json::from_str(&run_ok(Command::new("skopeo").args(["inspect", "--config", &oci]))).unwrap();
    assert_eq!(cfg["created"], "2023-11-14T22:13:20Z", "{cfg}");
    // skopeo converts it to an OCI layout umoci unpacks; the COPY'd file has the epoch as mtime.
    let layout = t.path("layout");
    run_ok(Command::new("skopeo").args(["copy", &oci, &format!("oci:{}:x", layout.display())]));
    let bundle = t.path("bundle");
    run_ok(Command::new("umoci").args(["unpack", "--image", &format!("{}:x", layout.display())]).arg(&bundle));
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(bundle.join("rootfs/hello.txt")).unwrap();
    assert_eq!(md.mtime(), 1_700_000_000);
    // Refused values name the field.
    let bad = format!("type=oci,dest={},compression=lz4", t.path("x.tar").display());
    let (o, _) = build(&t, &["-o", &bad]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("compression=lz4"), "{}", stderr(&o));
}

/// `--annotation` with buildx's prefixes reaches the stored image's manifest (what a push
/// sends) and the `index:` ones an OCI layout's index.
#[test]
fn issue11_annotation_flag_with_prefixes() {
    let t = setup("annotation");
    t.write("ctx/Dockerfile", "FROM busybox\nRUN echo a > /a\n");
    let meta = t.path("meta.json");
    let dir = t.path("layout");
    let (o, _) = build(
        &t,
        &[
            "-t",
            "ann:1",
            "--annotation",
            "org.opencontainers.image.title=plain",
            "--annotation",
            "manifest:org.example.m=1",
            "--annotation",
            "index:org.example.i=2",
            "--annotation",
            "manifest[linux/amd64]:org.example.amd=3",
            "--annotation",
            "manifest[linux/s390x]:org.example.s390x=4",
            "--metadata-file",
            meta.to_str().unwrap(),
            "-o",
            &format!("type=oci,dest={},tar=false", dir.display()),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let host_amd64 = std::env::consts::ARCH == "x86_64";
    // The stored image (the metadata file's digest) carries the manifest annotations.
    let meta = json(&meta);
    let digest = meta["containerimage.digest"].as_str().unwrap();
    let m = json(&blob(&dir, &Value::String(digest.to_string())));
    assert_eq!(m["annotations"]["org.opencontainers.image.title"], "plain", "{m}");
    assert_eq!(m["annotations"]["org.example.m"], "1", "{m}");
    assert_eq!(m["annotations"].get("org.example.amd").is_some(), host_amd64, "{m}");
    assert!(m["annotations"].get("org.example.s390x").is_none(), "{m}");
    assert!(m["annotations"].get("org.example.i").is_none(), "{m}");
    let index = json(&dir.join("index.json"));
    assert_eq!(index["manifests"][0]["digest"], digest, "the layout holds the stored image: {index}");
    assert_eq!(index["annotations"]["org.example.i"], "2", "{index}");
    let o = cairn(&t, &["build", "--annotation", "manifest[linux]:k=v", t.path("ctx").to_str().unwrap()]);
    assert!(stderr(&o).contains("is not a platform"), "{}", stderr(&o));
    let o = cairn(&t, &["build", "--annotation", "novalue", t.path("ctx").to_str().unwrap()]);
    assert!(stderr(&o).contains("expected KEY=VALUE"), "{}", stderr(&o));
}

/// `--call outline|targets|check`: answered from the Dockerfile in buildx's text shape
/// (and JSON), nothing built; `check` fails on the compiler's warnings.
#[test]
fn issue11_call_outline_targets_and_check() {
    let t = setup("call");
    t.write(
        "ctx/Dockerfile",
        "# syntax=docker/dockerfile:1\n\n# base has the tools\nFROM busybox AS base\n# VERSION the release number\nARG VERSION=1.0\n\
RUN --mount=type=secret,id=npmrc,required=true echo $VERSION\n\n# release is what ships\nFROM base AS release\nCMD [\"sh\"]\n",
    );
    let ctx = t.path("ctx");
    let ctx = ctx.to_str().unwrap();
    let out = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let o = cairn(&t, &["build", "--call", "targets", ctx]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        out(&o),
        "TARGET            DESCRIPTION\nbase              has the tools\nrelease (default) is what ships\n"
    );
    let o = cairn(&t, &["build", "--call", "outline", "--target", "release", ctx]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        out(&o),
        "TARGET:      release\nDESCRIPTION: is what ships\n\nBUILD ARG   VALUE   DESCRIPTION\n\
VERSION     1.0     the release number\n\nSECRET   REQUIRED\nnpmrc    true\n\n"
    );
    let o = cairn(&t, &["build", "--call", "outline,format=json", ctx]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["args"][0]["location"]["ranges"][0]["start"]["line"], 6, "{v}");
    assert_eq!(v["secrets"][0]["location"]["ranges"][0]["start"]["line"], 7, "{v}");
    // Nothing was built: the store has no new image.
    let o = cairn(&t, &["images"]);
    assert!(!out(&o).contains("release"), "{}", out(&o));
    let o = cairn(&t, &["build", "--call", "check", ctx]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(out(&o), "Check complete, no warnings found.\n");
    let o = cairn(&t, &["build", "--check", "--build-arg", "NOPE=1", ctx]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = out(&o);
    assert!(text.starts_with("Check complete, 1 warning has been found!\n\nWARNING: "), "{text}");
    assert!(text.contains("NOPE"), "{text}");
    let o = cairn(&t, &["build", "--call", "frobnicate", ctx]);
    assert!(stderr(&o).contains("unknown request `frobnicate`"), "{}", stderr(&o));
}
