//! Images end to end on a real store: commit (deterministic, packed once), tags and
//! reference normalization, OCI layout and docker-archive exports read by skopeo and
//! umoci, archive loading (ours and skopeo's), OCI layout import, rootfs exports, prune
//! and disk usage.

mod store_common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_ir::{ContainerConfig, History, ImageConfig, Platform};
use cairn_runtime::export;
use cairn_runtime::image::{self, commit_image, CommitOptions};
use cairn_runtime::store::{ImageRecord, Store, StoreError};
use store_common::*;

/// Commits a layer whose upper directory `fill` writes.
fn layer(store: &Store, fill: impl FnOnce(&Path)) -> String {
    let l = store.new_layer().unwrap();
    fill(&l.upper);
    stamp_mtimes(&l.upper, 1_650_000_000);
    store.commit_layer(l).unwrap()
}

/// A base layer and one that deletes, replaces (opaque) and adds.
fn two_layers(store: &Store) -> Vec<String> {
    let a = layer(store, |u| {
        fs::create_dir_all(u.join("bin")).unwrap();
        fs::write(u.join("bin/hello"), "#!/bin/sh\necho hello\n").unwrap();
        chmod(&u.join("bin/hello"), 0o755);
        fs::create_dir_all(u.join("etc/conf")).unwrap();
        fs::write(u.join("etc/conf/a"), "a").unwrap();
        fs::write(u.join("etc/conf/b"), "b").unwrap();
        fs::write(u.join("etc/gone.txt"), "bye").unwrap();
        fs::create_dir_all(u.join("var/log")).unwrap();
        fs::write(u.join("var/log/x.log"), "log").unwrap();
        fs::hard_link(u.join("var/log/x.log"), u.join("var/log/y.log")).unwrap();
    });
    let b = layer(store, |u| {
        fs::create_dir_all(u.join("etc/conf")).unwrap();
        setxattr(&u.join("etc/conf"), "trusted.overlay.opaque", b"y");
        fs::write(u.join("etc/conf/c"), "c").unwrap();
        mknod(&u.join("etc/gone.txt"), libc::S_IFCHR, 0, 0);
        fs::create_dir_all(u.join("app")).unwrap();
        fs::write(u.join("app/run.sh"), "run").unwrap();
        setxattr(&u.join("app/run.sh"), "user.origin", b"cairn");
    });
    vec![a, b]
}

fn config() -> ImageConfig {
    let host = Platform::host();
    ImageConfig {
        created: Some("2024-05-01T12:00:00Z".into()),
        architecture: host.architecture,
        os: host.os,
        config: ContainerConfig {
            env: Some(vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()]),
            cmd: Some(vec!["/bin/hello".into()]),
            working_dir: Some("/app".into()),
            ..Default::default()
        },
        history: vec![
            History {
                created: Some("2024-05-01T12:00:00Z".into()),
                created_by: Some("COPY base /".into()),
                ..Default::default()
            },
            History {
                created: Some("2024-05-01T12:00:00Z".into()),
                created_by: Some("RUN change".into()),
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

fn open(dir: &Path) -> Store {
    Store::open(dir).unwrap()
}

/// The merged root filesystem of `layers`, exported to `dir` and snapshotted.
fn rootfs(store: &Store, layers: &[String], dir: &Path) -> std::collections::BTreeMap<String, String> {
    export::export_rootfs_dir(store, layers, dir).unwrap();
    snapshot(dir)
}

fn committed(d: &Path) -> (Store, Vec<String>, ImageRecord) {
    let store = open(&d.join("store"));
    let layers = two_layers(&store);
    let rec = commit_image(&store, &layers, &config(), &CommitOptions::default()).unwrap();
    (store, layers, rec)
}

#[test]
fn commit_is_deterministic_fills_diff_ids_and_packs_each_layer_once() {
    require_root();
    let d = tmpdir("commit");
    let (store, layers, rec) = committed(&d);
    let cfg = store.image_config(&rec).unwrap();
    let blobs = store.image_layer_blobs(&rec).unwrap();
    assert_eq!(cfg.rootfs.diff_ids, blobs.iter().map(|b| b.diff_id.to_string()).collect::<Vec<_>>());
    assert_eq!(cfg.created.as_deref(), Some("2024-05-01T12:00:00Z"), "created stays as given");
    assert_eq!(cfg.history, config().history);
    let m = store.image_manifest(&rec).unwrap();
    assert_eq!(m.media_type.as_deref(), Some("application/vnd.oci.image.manifest.v1+json"));
    assert_eq!(m.config.media_type, "application/vnd.oci.image.config.v1+json");
    assert!(m.layers.iter().all(|l| l.media_type == "application/vnd.oci.image.layer.v1.tar+gzip"));
    assert_eq!(rec.layers, layers);
    assert_eq!(rec.size, blobs.iter().map(|b| b.diff_size).sum::<u64>());

    let blob_ino = store.blob_path(&m.layers[0].digest).metadata().unwrap().ino();
    let again = commit_image(&store, &layers, &config(), &CommitOptions::default()).unwrap();
    assert_eq!(again, rec, "same chain and config, same digests");
    let other = layer(&store, |u| fs::write(u.join("extra"), "x").unwrap());
    let rec2 = commit_image(&store, &[layers[0].clone(), other], &config(), &CommitOptions::default()).unwrap();
    assert_eq!(store.image_manifest(&rec2).unwrap().layers[0], m.layers[0], "the shared base layer has the same blob");
    assert_eq!(store.blob_path(&m.layers[0].digest).metadata().unwrap().ino(), blob_ino, "and was not packed again");
    assert_eq!(store.layer_meta(&layers[0]).unwrap().packed.len(), 1);

    // A SOURCE_DATE_EPOCH before the files' mtime changes the tars (clamped mtimes).
    let opts = CommitOptions { source_date_epoch: Some(1_600_000_000), ..Default::default() };
    let clamped = commit_image(&store, &layers, &config(), &opts).unwrap();
    assert_ne!(clamped.config_digest, rec.config_digest);
    assert_eq!(store.layer_meta(&layers[0]).unwrap().packed.len(), 2);

    // A fresh store with an equal tree gives the same image.
    let (_, _, rec_b) = committed(&d.join("second"));
    assert_eq!(rec_b.manifest_digest, rec.manifest_digest);
    fs::remove_dir_all(&d).unwrap();
}

/// Issue 12: `created` is the build time (not a layer's or the base's), base history keeps
/// its own times, and a commit identical to an image in the store but for the date takes
/// that image's date (same digest) while any change gives the new build time.
#[test]
fn issue12_created_is_the_build_time_and_identical_rebuilds_keep_their_image() {
    require_root();
    let d = tmpdir("created");
    let store = open(&d.join("store"));
    let layers = two_layers(&store);
    let mut cfg = config();
    cfg.created = None;
    cfg.history[1].created = None;
    let secs = |s: &str| -> u64 {
        let o = Command::new("date").args(["-u", "-d", s, "+%s"]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
    };
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let before = now();
    let rec = commit_image(&store, &layers, &cfg, &CommitOptions::default()).unwrap();
    let after = now();
    let got = store.image_config(&rec).unwrap();
    let created = got.created.clone().unwrap();
    assert!((before..=after).contains(&secs(&created)), "{created} is the build time");
    assert_eq!(got.history[0].created.as_deref(), Some("2024-05-01T12:00:00Z"), "the base's entry keeps its time");
    assert_eq!(got.history[1].created.as_deref(), Some(created.as_str()), "a new entry gets the image's time");

    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = commit_image(&store, &layers, &cfg, &CommitOptions::default()).unwrap();
    assert_eq!(again, rec, "nothing changed: the image in the store, with its date");
    let mut changed = cfg.clone();
    changed.config.cmd = Some(vec!["/bin/other".into()]);
    let other =
        store.image_config(&commit_image(&store, &layers, &changed, &CommitOptions::default()).unwrap()).unwrap();
    assert!(secs(other.created.as_deref().unwrap()) > secs(&created), "a changed config is built now: {other:?}");

    // SOURCE_DATE_EPOCH: the image and the new entries take it; the base's entry keeps its
    // own time even when it is later (as BuildKit, moby/buildkit#4614).
    let opts = CommitOptions { source_date_epoch: Some(1_600_000_000), ..Default::default() };
    let e = store.image_config(&commit_image(&store, &layers, &cfg, &opts).unwrap()).unwrap();
    assert_eq!(e.created.as_deref(), Some("2020-09-13T12:26:40Z"));
    assert_eq!(e.history[0].created.as_deref(), Some("2024-05-01T12:00:00Z"));
    assert_eq!(e.history[1].created.as_deref(), Some("2020-09-13T12:26:40Z"));
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn references_are_normalized_like_docker() {
    require_root();
    let d = tmpdir("refs");
    let (store, _, rec) = committed(&d);
    assert_eq!(store.tag_image("busybox", &rec).unwrap(), "docker.io/library/busybox:latest");
    store.tag_image("foo/bar:1", &rec).unwrap();
    store.tag_image("localhost:5000/x", &rec).unwrap();
    for r in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        "library/busybox",
        "docker.io/foo/bar:1",
        "foo/bar:1",
    ] {
        assert_eq!(store.get_image(r).unwrap().as_ref(), Some(&rec), "{r}");
    }
    assert_eq!(store.get_image("localhost:5000/x:latest").unwrap().as_ref(), Some(&rec));
    assert_eq!(store.get_image(&format!("anything@{}", rec.manifest_digest)).unwrap().as_ref(), Some(&rec));
    assert_eq!(store.get_image(&rec.config_digest.to_string()).unwrap().as_ref(), Some(&rec), "by image id");
    assert_eq!(store.get_image("busybox:other").unwrap(), None);
    let err = store.get_image("Bad/Name").unwrap_err().to_string();
    assert!(err.starts_with("Invalid image reference `Bad/Name`"), "{err}");
    let names: Vec<String> = store.list_images().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["docker.io/foo/bar:1", "docker.io/library/busybox:latest", "localhost:5000/x:latest"]);

    assert_eq!(store.remove_image("busybox").unwrap(), ["docker.io/library/busybox:latest"]);
    let err = store.remove_image("busybox").unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)) && err.to_string() == "No such image `busybox`", "{err}");
    let removed = store.remove_image(&rec.manifest_digest.to_string()).unwrap();
    assert_eq!(removed, ["docker.io/foo/bar:1", "localhost:5000/x:latest"], "a digest removes every tag of the image");
    assert!(store.list_images().unwrap().is_empty());
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn oci_layout_export_is_read_by_skopeo_and_unpacked_by_umoci() {
    require_root();
    let d = tmpdir("ocilayout");
    let (store, layers, rec) = committed(&d);
    let layout = d.join("layout");
    export::export_oci_layout(&store, &rec, &layout, false, Some("v1")).unwrap();
    assert_eq!(fs::read_to_string(layout.join("oci-layout")).unwrap(), r#"{"imageLayoutVersion":"1.0.0"}"#);
    let index: serde_json::Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "v1");
    assert_eq!(index["manifests"][0]["digest"], rec.manifest_digest.to_string());
    let tarred = d.join("image.oci.tar");
    export::export_oci_layout(&store, &rec, &tarred, true, Some("cairn-test/app:v1")).unwrap();
    assert!(
        fs::read_dir(&d).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains(".cairn-")),
        "no temp output left"
    );

    require_tool("skopeo");
    let out = run(Command::new("skopeo").arg("inspect").arg(format!("oci:{}:v1", layout.display())));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Digest"], rec.manifest_digest.to_string());
    assert_eq!(v["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(v["Os"], "linux");
    let out =
        run(Command::new("skopeo").arg("inspect").arg("--config").arg(format!("oci-archive:{}", tarred.display())));
    let cfg: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cfg["config"]["WorkingDir"], "/app");
    require_tool("umoci");
    let bundle = d.join("bundle");
    run(Command::new("umoci").arg("unpack").arg("--image").arg(format!("{}:v1", layout.display())).arg(&bundle));
    let r = bundle.join("rootfs");
    assert_eq!(fs::read_to_string(r.join("bin/hello")).unwrap(), "#!/bin/sh\necho hello\n");
    assert!(!r.join("etc/gone.txt").exists(), "whiteout applied");
    assert!(!r.join("etc/conf/a").exists() && r.join("etc/conf/c").exists(), "opaque directory applied");
    assert_eq!(getxattr(&r.join("app/run.sh"), "user.origin").as_deref(), Some(&b"cairn"[..]));
    // umoci's view equals cairn's own merge.
    let ours = rootfs(&store, &layers, &d.join("ours"));
    let mut theirs = snapshot(&r);
    theirs.retain(|_, v| !v.is_empty());
    for (k, v) in &ours {
        if !k.contains('/') && v.starts_with("dir") {
            continue; // umoci gives top-level directories its own mtimes
        }
        assert_eq!(theirs.get(k), Some(v), "{k}");
    }
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn docker_archive_has_repo_tags_and_loads_back_to_the_same_config() {
    require_root();
    let d = tmpdir("dockerarchive");
    let (store, layers, rec) = committed(&d);
    let file = d.join("app.tar");
    export::export_docker_archive(&store, &rec, &file, &["cairn-test/app:v1".into(), "busybox".into()]).unwrap();
    let mut ar = tar::Archive::new(fs::File::open(&file).unwrap());
    let mut manifest = None;
    let mut names = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let n = e.path().unwrap().to_string_lossy().into_owned();
        if n == "manifest.json" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            manifest = Some(serde_json::from_str::<serde_json::Value>(&s).unwrap());
        }
        names.push(n);
    }
    let m = manifest.expect("manifest.json");
    assert_eq!(m[0]["RepoTags"], serde_json::json!(["cairn-test/app:v1", "busybox:latest"]));
    assert_eq!(m[0]["Config"], format!("blobs/sha256/{}", rec.config_digest.hex()));
    let blobs = store.image_layer_blobs(&rec).unwrap();
    let want: Vec<String> = blobs.iter().map(|b| format!("blobs/sha256/{}", b.diff_id.hex())).collect();
    assert_eq!(m[0]["Layers"], serde_json::json!(want), "uncompressed layers named by diff_id");
    require_tool("skopeo");
    let out =
        run(Command::new("skopeo").arg("inspect").arg("--config").arg(format!("docker-archive:{}", file.display())));
    let cfg: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);

    let other = open(&d.join("other"));
    let loaded = image::load_archive(&other, &file).unwrap();
    assert_eq!(loaded, ["docker.io/cairn-test/app:v1", "docker.io/library/busybox:latest"]);
    let back = other.get_image("cairn-test/app:v1").unwrap().unwrap();
    assert_eq!(back.config_digest, rec.config_digest, "same image id after the round trip");
    assert_eq!(rootfs(&other, &back.layers, &d.join("r2")), rootfs(&store, &layers, &d.join("r1")));
    let n_layers = other.list_layers().unwrap().len();
    let again = image::load_archive(&other, &file).unwrap();
    assert_eq!(again.len(), 2);
    assert_eq!(other.list_layers().unwrap().len(), n_layers, "loading again extracts nothing");
    // The loaded image exports again with the same config (imported layers keep their diff_ids).
    let re = d.join("re.tar");
    export::export_docker_archive(&other, &back, &re, &[]).unwrap();
    let third = open(&d.join("third"));
    let loaded = image::load_archive(&third, &re).unwrap();
    assert_eq!(loaded, [back.manifest_digest.to_string()], "an untagged image is reported by digest");
    assert_eq!(third.get_image(&loaded[0]).unwrap().unwrap().config_digest, rec.config_digest);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn oci_imports_keep_manifest_digests_and_share_base_layers() {
    require_root();
    let d = tmpdir("ociimport");
    let (store, layers, rec) = committed(&d);
    let layout = d.join("layout");
    export::export_oci_layout(&store, &rec, &layout, false, Some("cairn-test/app:v1")).unwrap();
    let archive = d.join("app.oci.tar");
    export::export_oci_layout(&store, &rec, &archive, true, Some("cairn-test/app:v1")).unwrap();

    let other = open(&d.join("other"));
    let names = image::load_archive(&other, &archive).unwrap();
    assert_eq!(names, ["docker.io/cairn-test/app:v1"]);
    assert_eq!(other.get_image("cairn-test/app:v1").unwrap().unwrap().manifest_digest, rec.manifest_digest);

    for sel in [None, Some("v1"), Some("cairn-test/app:v1"), Some(rec.manifest_digest.to_string().as_str())] {
        let r = image::import_oci_layout(&other, &layout, sel).unwrap();
        assert_eq!(r.manifest_digest, rec.manifest_digest, "{sel:?}");
        assert_eq!(r.config_digest, rec.config_digest);
    }
    let reference = format!("oci-layout://{}:v1", layout.display());
    assert_eq!(image::resolve_image(&other, &reference).unwrap().unwrap().manifest_digest, rec.manifest_digest);
    assert_eq!(other.list_layers().unwrap().len(), 2, "each diff_id extracted once");
    let err = image::import_oci_layout(&other, &layout, Some("nope")).unwrap_err().to_string();
    assert!(err.contains("has no image `nope` (it has: v1)"), "{err}");

    // A second image on the same base: only its new layer is extracted.
    let top = layer(&store, |u| fs::write(u.join("top"), "t").unwrap());
    let rec2 = commit_image(&store, &[layers[0].clone(), top], &config(), &CommitOptions::default()).unwrap();
    let layout2 = d.join("layout2");
    export::export_oci_layout(&store, &rec2, &layout2, false, None).unwrap();
    let r2 = image::import_oci_layout(&other, &layout2, None).unwrap();
    assert_eq!(other.list_layers().unwrap().len(), 3);
    assert_eq!(r2.layers[0], other.get_image("cairn-test/app:v1").unwrap().unwrap().layers[0]);

    // A damaged blob is refused with its path.
    let m = store.image_manifest(&rec2).unwrap();
    let victim = layout2.join("blobs/sha256").join(m.layers[1].digest.hex());
    let mut bytes = fs::read(&victim).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&victim, bytes).unwrap();
    let fresh = open(&d.join("fresh"));
    let err = image::import_oci_layout(&fresh, &layout2, None).unwrap_err().to_string();
    assert!(err.contains(&victim.display().to_string()), "{err}");
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn archives_written_by_skopeo_load() {
    require_root();
    require_tool("skopeo");
    let d = tmpdir("skopeoload");
    let (store, _, rec) = committed(&d);
    let layout = d.join("layout");
    export::export_oci_layout(&store, &rec, &layout, false, Some("v1")).unwrap();
    let src = format!("oci:{}:v1", layout.display());
    let docker = d.join("skopeo-docker.tar");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(&src)
        .arg(format!("docker-archive:{}:cairn-test/skopeo:v2", docker.display())));
    let ociar = d.join("skopeo-oci.tar");
    run(Command::new("skopeo").arg("copy").arg(&src).arg(format!("oci-archive:{}:v3", ociar.display())));
    let other = open(&d.join("other"));
    assert_eq!(image::load_archive(&other, &docker).unwrap(), ["docker.io/cairn-test/skopeo:v2"]);
    assert_eq!(other.get_image("cairn-test/skopeo:v2").unwrap().unwrap().config_digest, rec.config_digest);
    let names = image::load_archive(&other, &ociar).unwrap();
    assert_eq!(names.len(), 1);
    assert_eq!(other.get_image(&names[0]).unwrap().unwrap().config_digest, rec.config_digest);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn rootfs_exports_apply_whiteouts_and_are_deterministic() {
    require_root();
    let d = tmpdir("rootfs");
    let (store, layers, _) = committed(&d);
    let snap = rootfs(&store, &layers, &d.join("dir"));
    let keys: Vec<&str> = snap.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "app",
            "app/run.sh",
            "bin",
            "bin/hello",
            "etc",
            "etc/conf",
            "etc/conf/c",
            "var",
            "var/log",
            "var/log/x.log",
            "var/log/y.log"
        ]
    );
    assert!(!snap["etc/conf"].contains("opaque"), "no overlay xattrs in an export: {}", snap["etc/conf"]);
    assert!(snap["var/log/y.log"].contains("link-group=var/log/x.log"), "hard link kept");

    let (t1, t2) = (d.join("a.tar"), d.join("b.tar"));
    export::export_rootfs_tar(&store, &layers, &t1, None).unwrap();
    export::export_rootfs_tar(&store, &layers, &t2, None).unwrap();
    let bytes = fs::read(&t1).unwrap();
    assert_eq!(bytes, fs::read(&t2).unwrap());
    let names: Vec<String> = tar_listing(&bytes).into_iter().map(|(n, _, _)| n).collect();
    assert!(names.iter().all(|n| !n.contains(".wh.")), "{names:?}");
    assert!(names.contains(&"etc/conf/c".to_string()) && !names.contains(&"etc/conf/a".to_string()));

    // Into an existing directory: other entries stay, same names are replaced.
    let existing = d.join("existing");
    fs::create_dir_all(existing.join("bin")).unwrap();
    fs::write(existing.join("keep.me"), "mine").unwrap();
    fs::write(existing.join("bin/old"), "old").unwrap();
    export::export_rootfs_dir(&store, &layers, &existing).unwrap();
    assert_eq!(fs::read_to_string(existing.join("keep.me")).unwrap(), "mine");
    assert!(existing.join("bin/hello").exists() && !existing.join("bin/old").exists());
    let leftovers: Vec<_> = fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".cairn-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let err = export::export_rootfs_dir(&store, &["0123456789ab".to_string()], &d.join("x")).unwrap_err();
    assert_eq!(err.to_string(), "Layer `0123456789ab` is not in the store");
    assert!(!d.join("x").exists());
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn prune_keeps_what_tags_and_cache_reach_and_reports_freed_bytes() {
    require_root();
    let d = tmpdir("prune");
    let (store, layers, rec) = committed(&d);
    store.tag_image("app:v1", &rec).unwrap();
    let cached = layer(&store, |u| fs::write(u.join("cached"), vec![1u8; 50_000]).unwrap());
    store.cache_put("k1", &[vec![layers[0].clone(), cached.clone()]]).unwrap();
    let orphan = layer(&store, |u| fs::write(u.join("orphan"), vec![2u8; 50_000]).unwrap());
    let untagged_layer = layer(&store, |u| fs::write(u.join("untagged"), vec![3u8; 50_000]).unwrap());
    let untagged =
        commit_image(&store, std::slice::from_ref(&untagged_layer), &config(), &CommitOptions::default()).unwrap();
    fs::create_dir_all(d.join("store/cachemounts/go-build")).unwrap();
    fs::write(d.join("store/cachemounts/go-build/obj"), vec![4u8; 50_000]).unwrap();

    let before = store.disk_usage().unwrap();
    assert_eq!(before.layers.count, 5);
    assert_eq!((before.images, before.cache_records, before.cache_mounts.count), (1, 1, 1));
    assert!(before.cache_mounts.bytes >= 50_000);

    {
        let _other = open(&d.join("store"));
        assert!(matches!(store.prune(false), Err(StoreError::Busy(_))), "another open store blocks prune");
    }
    let rep = store.prune(false).unwrap();
    assert_eq!((rep.layers, rep.images, rep.cache_records), (2, 1, 0));
    assert!(rep.blobs >= 2, "{rep:?}");
    assert!(rep.freed_bytes >= 100_000, "{rep:?}");
    for id in [&layers[0], &layers[1], &cached] {
        assert!(store.layer_exists(id), "{id} is reachable");
    }
    assert!(!store.layer_exists(&orphan) && !store.layer_exists(&untagged_layer));
    assert!(store.get_image(&untagged.manifest_digest.to_string()).unwrap().is_none());
    assert_eq!(store.cache_get("k1").unwrap(), Some(vec![vec![layers[0].clone(), cached.clone()]]));
    export::export_oci_layout(&store, &rec, &d.join("after-prune"), false, None).unwrap();

    let rep = store.prune(true).unwrap();
    assert_eq!((rep.layers, rep.cache_records, rep.cache_mounts), (1, 1, 1), "{rep:?}");
    assert_eq!(store.cache_get("k1").unwrap(), None);
    assert!(store.layer_exists(&layers[0]), "still tagged");
    let after = store.disk_usage().unwrap();
    assert_eq!((after.layers.count, after.cache_records, after.cache_mounts.count), (2, 0, 0));
    assert!(after.total_bytes() < before.total_bytes());
    // The tagged image still exports (and re-commits without repacking).
    assert_eq!(commit_image(&store, &layers, &config(), &CommitOptions::default()).unwrap(), rec);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn bad_inputs_are_errors_that_name_the_path() {
    require_root();
    let d = tmpdir("badinputs");
    let store = open(&d.join("store"));
    let junk = d.join("junk.tar");
    fs::write(&junk, vec![b'x'; 2048]).unwrap();
    let err = image::load_archive(&store, &junk).unwrap_err().to_string();
    assert!(err.contains(&junk.display().to_string()), "{err}");
    let empty_tar = d.join("empty.tar");
    fs::write(&empty_tar, tar::Builder::new(Vec::new()).into_inner().unwrap()).unwrap();
    let err = image::load_archive(&store, &empty_tar).unwrap_err().to_string();
    assert!(err.contains("neither a docker-archive (no manifest.json) nor an OCI archive (no index.json)"), "{err}");
    let missing: PathBuf = d.join("no-layout");
    let err = image::import_oci_layout(&store, &missing, None).unwrap_err().to_string();
    assert!(err.contains(&missing.join("index.json").display().to_string()), "{err}");
    let err =
        commit_image(&store, &["0123456789ab".into()], &config(), &CommitOptions::default()).unwrap_err().to_string();
    assert!(err.starts_with("Layer `0123456789ab` is not in the store"), "{err}");
    let err = export::export_docker_archive(
        &store,
        &ImageRecord {
            manifest_digest: cairn_ir::Digest::of(b"m"),
            config_digest: cairn_ir::Digest::of(b"c"),
            layers: vec![],
            size: 0,
        },
        &d.join("x.tar"),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("is not in the store"), "{err}");
    assert!(!d.join("x.tar").exists());
    assert_eq!(
        image::parse_oci_layout_ref("oci-layout:///a/b:c/layout:v2"),
        (PathBuf::from("/a/b:c/layout"), Some("v2".to_string()))
    );
    let dg = format!("sha256:{}", "a".repeat(64));
    assert_eq!(image::parse_oci_layout_ref(&format!("oci-layout://./l@{dg}")), (PathBuf::from("./l"), Some(dg)));
    fs::remove_dir_all(&d).unwrap();
}
