//! Issue 14, a build cache shared by many machines: two stores (two `CAIRN_ROOT`s) stand
//! for two machines, one `docker-registry` on 127.0.0.1 for the registry they share.
//! Machine-independent keys, `--cache-to`/`--cache-from` with `type=registry` and
//! `type=local`, lazy import (what is downloaded, from the registry's own log), many
//! writers on one ref, and a corrupted cache blob.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::build_cli::{busybox_archive, cairn_in, counts, executed_steps, setup, stderr, summary, Tmp, BIN};
use crate::registry_fixture::Registry;

/// Runs cairn on `store` with no registries file and its own docker config.
fn cairn_at(t: &Tmp, store: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("CAIRN_ROOT", t.path(store))
        .env("DOCKER_CONFIG", t.path("docker-config"))
        .env("CAIRN_REGISTRIES_CONFIG", t.path("none.json"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A store `name` under `t` holding busybox.
fn machine(t: &Tmp, name: &str) {
    ok(cairn_at(t, name, &["load", "-i", busybox_archive().to_str().unwrap()]));
}

/// A rawjson build of `ctx` on `store` with SOURCE_DATE_EPOCH, writing its metadata;
/// returns the output and the image digest.
fn build_on(t: &Tmp, store: &str, ctx: &str, reg: Option<&Registry>, extra: &[&str]) -> (Output, String) {
    let meta = t.path(&format!("{store}-meta.json"));
    let (m, c) = (meta.to_str().unwrap().to_string(), t.path(ctx).to_str().unwrap().to_string());
    let mut args = vec!["build", "--progress", "rawjson", "--build-arg", "SOURCE_DATE_EPOCH=1700000000"];
    args.extend(["--metadata-file", &m]);
    if let Some(r) = reg {
        args.extend(["--insecure-registry", &r.host]);
    }
    args.extend_from_slice(extra);
    args.push(&c);
    let o = ok(cairn_at(t, store, &args));
    let v: Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    (o, v["containerimage.digest"].as_str().unwrap().to_string())
}

/// The layer digests of the image in the OCI layout directory `dir`.
fn layout_layers(dir: &Path) -> Vec<String> {
    let read = |d: &str| -> Value {
        let hex = d.trim_start_matches("sha256:");
        serde_json::from_slice(&std::fs::read(dir.join("blobs/sha256").join(hex)).unwrap()).unwrap()
    };
    let index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let m = read(index["manifests"][0]["digest"].as_str().unwrap());
    m["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_string()).collect()
}

/// How many layers the busybox base has.
fn base_layers() -> usize {
    let out =
        Command::new("tar").args(["-xOf", busybox_archive().to_str().unwrap(), "manifest.json"]).output().unwrap();
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    m[0]["Layers"].as_array().unwrap().len()
}

/// The cache record names (the keys) of a store.
fn keys(store: &Path) -> Vec<String> {
    let mut k: Vec<String> = std::fs::read_dir(store.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    k.sort();
    k
}

/// A build of `ctx` into `store` with rawjson progress.
fn build_in(store: &Path, ctx: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["build", "--progress", "rawjson"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    cairn_in(store, &args)
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

const DOCKERFILE: &str = "FROM busybox\n\
WORKDIR /app\n\
RUN echo one > /one.txt\n\
COPY src/ /app/src/\n\
RUN cat /app/src/*.txt > /app/all.txt && echo built >> /app/all.txt\n\
COPY extra.txt /app/\n\
RUN wc -c /app/all.txt > /app/size.txt\n";

fn write_context(t: &Tmp, dir: &str) {
    t.write(&format!("{dir}/Dockerfile"), DOCKERFILE);
    t.write(&format!("{dir}/src/a.txt"), "alpha\n");
    t.write(&format!("{dir}/src/b.txt"), "beta\n");
    t.write(&format!("{dir}/extra.txt"), "extra\n");
}

/// SPEC.md §6: no host path, inode or store-local id in a key. Two stores in different
/// directories, building copies of one context at different paths (written at different
/// times), record the same keys.
#[test]
fn issue14_two_stores_compute_equal_keys() {
    let a = setup("keys-a");
    let b = setup("keys-b");
    write_context(&a, "somewhere/ctx");
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_context(&b, "elsewhere/deeper/ctx");
    ok(build_in(&a.path("store"), &a.path("somewhere/ctx"), &[]));
    ok(build_in(&b.path("store"), &b.path("elsewhere/deeper/ctx"), &[]));
    let (ka, kb) = (keys(&a.path("store")), keys(&b.path("store")));
    assert!(ka.len() >= 6, "every step recorded a key: {ka:?}");
    assert_eq!(ka, kb, "the two stores computed different keys");
}

/// Store A builds with `--cache-to type=registry,mode=max`; store B, empty but for the
/// base, builds the same Dockerfile with `--cache-from`: nothing runs, the image digest is
/// A's, and B downloads the index and exactly the image's own layers (for its `-o`
/// output), nothing else; pushing the image mounts them from the cache repository. Then
/// one source file changes on B: only the steps that depend
/// on it run.
#[test]
fn issue14_registry_cache_hits_on_an_empty_store_lazily() {
    let t = Tmp::new("cache-reg");
    let reg = Registry::start(&t, "registry", None);
    let cache = format!("{}/team/cache:main", reg.host);
    machine(&t, "a");
    machine(&t, "b");
    write_context(&t, "ctx-a");
    write_context(&t, "ctx-b");
    let to = format!("type=registry,ref={cache},mode=max");
    let (oa, digest_a) = build_on(&t, "a", "ctx-a", Some(&reg), &["--cache-to", &to]);
    assert_eq!(counts(&summary(&oa)).1, 0, "A starts cold");
    assert!(stderr(&oa).contains("Exported"), "{}", stderr(&oa));

    let gets_before = reg.blob_gets().len();
    let out = t.path("b-out");
    let o_arg = format!("type=oci,dest={},tar=false", out.display());
    let app = format!("{}/team/app:1", reg.host);
    let (ob, digest_b) =
        build_on(&t, "b", "ctx-b", Some(&reg), &["--cache-from", &cache, "-o", &o_arg, "-t", &app, "--push"]);
    let (executed, cached) = counts(&summary(&ob));
    assert_eq!((executed, cached), (0, 6), "B hits every step: {}", stderr(&ob));
    assert_eq!(digest_b, digest_a, "B's image is A's");
    let layers = layout_layers(&out);
    let own: Vec<String> = layers[base_layers()..].to_vec();
    let mut got: Vec<String> = reg.blob_gets()[gets_before..].to_vec();
    got.sort();
    let (mut image_gets, other): (Vec<String>, Vec<String>) = got.into_iter().partition(|d| layers.contains(d));
    let mut want = own.clone();
    want.sort();
    image_gets.dedup();
    assert_eq!(image_gets, want, "B downloads exactly the image's own layers");
    assert_eq!(other.len(), 1, "and one index: {other:?}");
    // The push mounts the image's own layers from the cache repository.
    let mounts = reg.log().lines().filter(|l| l.contains("\"POST /v2/team/app/blobs/uploads/?mount=")).count();
    assert!(mounts >= own.len(), "{mounts} mounts for {} layers", own.len());

    // One source file changed on B: the COPY of src/ and everything after it run.
    t.write("ctx-b/src/b.txt", "BETA\n");
    let (ob2, _) = build_on(&t, "b", "ctx-b", Some(&reg), &["--cache-from", &cache]);
    let ran = executed_steps(&ob2);
    assert_eq!(ran.len(), 4, "{ran:?}");
    assert!(ran.iter().all(|s| !s.contains("echo one") && !s.contains("WORKDIR")), "{ran:?}");
    assert!(ran.iter().any(|s| s.contains("COPY src/")), "{ran:?}");
}

/// `type=local`: an OCI layout directory holding the same artifact, round trip.
#[test]
fn issue14_local_cache_round_trip() {
    let t = Tmp::new("cache-local");
    machine(&t, "a");
    machine(&t, "c");
    write_context(&t, "ctx");
    let dir = t.path("cache-dir");
    let to = format!("type=local,dest={},mode=max", dir.display());
    let (_, digest_a) = build_on(&t, "a", "ctx", None, &["--cache-to", &to]);
    let index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["artifactType"], "application/vnd.cairn.cache.v1", "{index}");
    let from = format!("type=local,src={}", dir.display());
    let (oc, digest_c) = build_on(&t, "c", "ctx", None, &["--cache-from", &from]);
    assert_eq!(counts(&summary(&oc)).0, 0, "{}", stderr(&oc));
    assert_eq!(digest_c, digest_a);
}

/// Four builders with different Dockerfiles export to one ref at once. Each writes its
/// own index (tag `main.<builder id>`), so none is lost: a fifth, empty store then hits
/// every step of each of the four builds from that one ref.
#[test]
fn issue14_four_concurrent_writers_lose_nothing() {
    let t = Tmp::new("cache-writers");
    let reg = Registry::start(&t, "registry", None);
    let cache = format!("{}/team/cache:main", reg.host);
    for i in 0..4 {
        machine(&t, &format!("w{i}"));
        t.write(
            &format!("ctx{i}/Dockerfile"),
            &format!("FROM busybox\nRUN echo builder {i} > /who\nRUN cat /who /who > /twice\n"),
        );
    }
    machine(&t, "e");
    let to = format!("type=registry,ref={cache},mode=max");
    std::thread::scope(|s| {
        for i in 0..4 {
            let (t, reg, to) = (&t, &reg, &to);
            s.spawn(move || build_on(t, &format!("w{i}"), &format!("ctx{i}"), Some(reg), &["--cache-to", to]));
        }
    });
    for i in 0..4 {
        let (o, _) = build_on(&t, "e", &format!("ctx{i}"), Some(&reg), &["--cache-from", &cache]);
        assert_eq!(counts(&summary(&o)), (0, 2), "build {i} is a full hit: {}", stderr(&o));
    }
}

/// A registry, machines A and B with the test context, and A's build exported to the
/// cache ref (`mode=max`) and as an OCI layout: (registry, cache ref, A's image digest,
/// A's layer digests).
fn exported_from_a(t: &Tmp) -> (Registry, String, String, Vec<String>) {
    let reg = Registry::start(t, "registry", None);
    let cache = format!("{}/team/cache:main", reg.host);
    machine(t, "a");
    machine(t, "b");
    write_context(t, "ctx-a");
    write_context(t, "ctx-b");
    let out = t.path("a-out");
    let o_arg = format!("type=oci,dest={},tar=false", out.display());
    let to = format!("type=registry,ref={cache},mode=max");
    let (_, digest) = build_on(t, "a", "ctx-a", Some(&reg), &["--cache-to", &to, "-o", &o_arg]);
    (reg, cache, digest, layout_layers(&out))
}

/// A corrupted and a truncated cache blob in the registry: detected by their digests when
/// a step needs them, and the steps that made them simply run.
#[test]
fn issue14_corrupted_cache_blob_runs_the_step() {
    let t = Tmp::new("cache-corrupt");
    let (reg, cache, digest_a, layers) = exported_from_a(&t);
    let n = base_layers();
    // Layer n is WORKDIR's, n+1 `RUN echo one`'s.
    let truncated = reg.blob_file(&layers[n]);
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let corrupted = reg.blob_file(&layers[n + 1]);
    let mut bytes = std::fs::read(&corrupted).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&corrupted, &bytes).unwrap();

    // B changes the last COPY's source: that step needs the bytes of everything below.
    t.write("ctx-b/extra.txt", "changed\n");
    let (ob, digest_b) = build_on(&t, "b", "ctx-b", Some(&reg), &["--cache-from", &cache]);
    let ran = executed_steps(&ob);
    assert!(ran.iter().any(|s| s.contains("echo one")), "the step of the corrupted blob ran: {ran:?}");
    assert!(ran.iter().any(|s| s.contains("COPY extra.txt")), "{ran:?}");
    assert!(stderr(&ob).contains("could not be downloaded intact"), "{}", stderr(&ob));
    assert_ne!(digest_b, digest_a, "extra.txt differs");
}

/// A remote hit is written to the store's own index with its layers lazy; when the
/// registry later loses one of those blobs (a GC of the cache repository), a build without
/// `--cache-from` that needs its bytes runs the step again instead of failing.
#[test]
fn issue14_a_local_record_whose_lazy_blob_is_gone_runs_the_step() {
    let t = Tmp::new("cache-gone");
    let (reg, cache, _, layers) = exported_from_a(&t);
    // B takes every step from the cache; its records now name lazy layers.
    let (ob, _) = build_on(&t, "b", "ctx-b", Some(&reg), &["--cache-from", &cache]);
    assert_eq!(counts(&summary(&ob)).0, 0, "{}", stderr(&ob));
    // Layer n+1 is `RUN echo one`'s: the registry loses it.
    std::fs::remove_file(reg.blob_file(&layers[base_layers() + 1])).unwrap();

    // No --cache-from now; the changed extra.txt needs the bytes of every layer below.
    t.write("ctx-b/extra.txt", "changed\n");
    let (ob2, _) = build_on(&t, "b", "ctx-b", Some(&reg), &[]);
    let ran = executed_steps(&ob2);
    assert!(ran.iter().any(|s| s.contains("echo one")), "the step of the lost blob ran: {ran:?}");
    assert!(ran.iter().any(|s| s.contains("COPY extra.txt")), "{ran:?}");
    assert!(stderr(&ob2).contains("could not be downloaded intact"), "{}", stderr(&ob2));
    // The result is whole: the file the lost layer held is in the image.
    let dest = t.path("b-local");
    let d_arg = format!("type=local,dest={}", dest.display());
    build_on(&t, "b", "ctx-b", Some(&reg), &["-o", &d_arg]);
    assert_eq!(std::fs::read_to_string(dest.join("one.txt")).unwrap(), "one\n");
    assert_eq!(std::fs::read_to_string(dest.join("app/extra.txt")).unwrap(), "changed\n");
}

/// `--cache-to type=inline`: A pushes an image whose manifest carries its `mode=min` index;
/// B, empty but for the base, builds with `--cache-from IMAGE`: nothing runs, and B's
/// image (inline cache too) has A's digest. The pushed manifest is read back with skopeo.
#[test]
fn issue14_inline_cache_round_trip() {
    let t = Tmp::new("cache-inline");
    let reg = Registry::start(&t, "registry", None);
    let image = format!("{}/team/app:inline", reg.host);
    machine(&t, "a");
    machine(&t, "b");
    write_context(&t, "ctx-a");
    write_context(&t, "ctx-b");
    let args = ["--cache-to", "type=inline", "-t", &image, "--push"];
    let (oa, digest_a) = build_on(&t, "a", "ctx-a", Some(&reg), &args);
    assert!(stderr(&oa).contains("Exported the build cache inline"), "{}", stderr(&oa));
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{image}")])
        .output()
        .unwrap();
    assert!(raw.status.success(), "{}", String::from_utf8_lossy(&raw.stderr));
    let m: Value = serde_json::from_slice(&raw.stdout).unwrap();
    let index: Value = serde_json::from_str(m["annotations"]["cairn.cache.index.v1"].as_str().unwrap()).unwrap();
    assert_eq!(index["version"], 1, "{index}");
    let image_blobs: Vec<&Value> = m["layers"].as_array().unwrap().iter().map(|l| &l["digest"]).collect();
    let cached = index["layers"].as_array().unwrap();
    assert!(
        cached.iter().filter(|l| l["empty"] != true).all(|l| image_blobs.contains(&&l["digest"])),
        "the inline index names the image's own blobs only: {index}"
    );

    let (ob, digest_b) = build_on(&t, "b", "ctx-b", Some(&reg), &["--cache-from", &image, "--cache-to", "type=inline"]);
    assert_eq!(counts(&summary(&ob)), (0, 6), "B hits every step: {}", stderr(&ob));
    assert_eq!(digest_b, digest_a, "B's image is A's");
}

/// Cache mounts travel through a directory: A fills a `type=cache` mount in a RUN,
/// `cairn cache export DIR` writes it, `cairn cache import DIR` seeds B, and B's first
/// build reads the file. B's own mount of an id wins over an import; a corrupted blob is
/// refused; an existing non-empty directory is not written into.
#[test]
fn issue14_cache_mounts_travel_through_a_directory() {
    let t = Tmp::new("cache-mounts");
    machine(&t, "a");
    machine(&t, "b");
    t.write(
        "fill/Dockerfile",
        "FROM busybox\nRUN --mount=type=cache,id=pkgs,target=/var/cache/pkgs echo from-a > /var/cache/pkgs/f\n",
    );
    t.write(
        "use/Dockerfile",
        "FROM busybox\nRUN --mount=type=cache,id=pkgs,target=/var/cache/pkgs cat /var/cache/pkgs/f > /seen\n",
    );
    build_on(&t, "a", "fill", None, &[]);
    let dir = t.path("mounts-dir");
    let out = ok(cairn_at(&t, "a", &["cache", "export", dir.to_str().unwrap()]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Exported 1 cache mounts"), "{out:?}");
    let again = cairn_at(&t, "a", &["cache", "export", dir.to_str().unwrap()]);
    assert!(!again.status.success() && stderr(&again).contains("is not empty"), "{}", stderr(&again));

    let out = ok(cairn_at(&t, "b", &["cache", "import", dir.to_str().unwrap()]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Imported 1 cache mounts (0"), "{out:?}");
    let rootfs = t.path("b-rootfs");
    build_on(&t, "b", "use", None, &["-o", &format!("type=local,dest={}", rootfs.display())]);
    assert_eq!(std::fs::read_to_string(rootfs.join("seen")).unwrap(), "from-a\n");
    // B has the id now: a second import keeps B's directory.
    let out = ok(cairn_at(&t, "b", &["cache", "import", dir.to_str().unwrap()]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Imported 0 cache mounts (1"), "{out:?}");

    // A corrupted blob is refused and seeds nothing.
    machine(&t, "c");
    let index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let m: Value = {
        let hex = index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
        serde_json::from_slice(&std::fs::read(dir.join("blobs/sha256").join(hex)).unwrap()).unwrap()
    };
    let blob = dir.join("blobs/sha256").join(m["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[600] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    let bad = cairn_at(&t, "c", &["cache", "import", dir.to_str().unwrap()]);
    assert!(!bad.status.success() && stderr(&bad).contains("digest"), "{}", stderr(&bad));
    let mounts = t.path("c").join("cachemounts");
    let left: Vec<_> = std::fs::read_dir(&mounts).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(left.is_empty(), "nothing seeded: {left:?}");
}

/// `--cache-to …,cache-mounts=true`: a cache mount filled on A travels with the cache
/// artifact, through a registry and through a local directory, and B's first build that
/// mounts the id reads A's file.
#[test]
fn issue14_cache_mounts_travel_with_the_cache() {
    let t = Tmp::new("cache-mounts-reg");
    let reg = Registry::start(&t, "registry", None);
    let cache = format!("{}/team/cache:mounts", reg.host);
    machine(&t, "a");
    t.write(
        "fill/Dockerfile",
        "FROM busybox\nRUN --mount=type=cache,id=pkgs,target=/var/cache/pkgs echo from-a > /var/cache/pkgs/f\n",
    );
    t.write(
        "use/Dockerfile",
        "FROM busybox\nRUN --mount=type=cache,id=pkgs,target=/var/cache/pkgs cat /var/cache/pkgs/f > /seen\n",
    );
    let dir = t.path("cache-dir");
    let to_reg = format!("type=registry,ref={cache},cache-mounts=true");
    let to_dir = format!("type=local,dest={},cache-mounts=true", dir.display());
    let (oa, _) = build_on(&t, "a", "fill", Some(&reg), &["--cache-to", &to_reg, "--cache-to", &to_dir]);
    assert!(stderr(&oa).contains("and 1 cache mounts"), "{}", stderr(&oa));
    for (store, from) in [("b", cache.clone()), ("c", format!("type=local,src={}", dir.display()))] {
        machine(&t, store);
        let rootfs = t.path(&format!("{store}-rootfs"));
        let o_arg = format!("type=local,dest={}", rootfs.display());
        let (ob, _) = build_on(&t, store, "use", Some(&reg), &["--cache-from", &from, "-o", &o_arg]);
        assert!(stderr(&ob).contains("Imported 1 cache mounts"), "{}", stderr(&ob));
        assert_eq!(std::fs::read_to_string(rootfs.join("seen")).unwrap(), "from-a\n", "{store}: {}", stderr(&ob));
    }
}

/// Remote hits are recorded in the store's own cache index: after B's first build from
/// the registry cache, the registry stops, and B's second build (with and without
/// `--cache-from`) still hits every step and gives the same image.
#[test]
fn issue14_remote_hits_are_recorded_locally() {
    let t = Tmp::new("cache-recorded");
    let reg = Registry::start(&t, "registry", None);
    let cache = format!("{}/team/cache:main", reg.host);
    machine(&t, "a");
    machine(&t, "b");
    write_context(&t, "ctx-a");
    write_context(&t, "ctx-b");
    let to = format!("type=registry,ref={cache},mode=max");
    let (_, digest_a) = build_on(&t, "a", "ctx-a", Some(&reg), &["--cache-to", &to]);
    let (ob, _) = build_on(&t, "b", "ctx-b", Some(&reg), &["--cache-from", &cache]);
    assert_eq!(counts(&summary(&ob)), (0, 6), "{}", stderr(&ob));
    let host = reg.host.clone();
    drop(reg);
    let insecure = ["--insecure-registry", host.as_str()];
    for extra in [vec![], vec!["--cache-from", cache.as_str()]] {
        let args: Vec<&str> = insecure.iter().copied().chain(extra.iter().copied()).collect();
        let (o, digest) = build_on(&t, "b", "ctx-b", None, &args);
        assert_eq!(counts(&summary(&o)), (0, 6), "all cached with the registry down: {}", stderr(&o));
        assert_eq!(digest, digest_a);
    }
}
