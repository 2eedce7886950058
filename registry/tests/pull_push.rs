//! Push and pull against a plain-HTTP registry configured as insecure: resolve by tag and
//! by digest, blobs with equal digests, platform selection from an index, cross-repository
//! mount, mirrors, skopeo accepting what the client pushed, and the client reading what
//! skopeo pushed.

use std::process::Command;

use cairn_ir::{Digest, Platform};
use cairn_registry::manifest::OCI_MANIFEST;
use cairn_registry::{Client, Reference, RegistryError};

use crate::common::*;

#[test]
fn push_then_resolve_by_tag_and_digest_and_fetch_equal_blobs() {
    let reg = Registry::start(Auth::None, None);
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(config(dir.path(), &[&reg.host]));
    let r = reg.reference("cairn/app:v1");
    let amd64 = Platform::parse("linux/amd64").unwrap();
    let layers = vec![bytes(1, 300_000), bytes(2, 1234)];
    let pushed = push_image(&client, &r, &layers, &amd64);

    let by_tag = client.resolve(&r, Some(&amd64)).unwrap();
    assert_eq!(by_tag.digest, pushed.digest);
    assert_eq!(by_tag.manifest_digest, pushed.digest);
    assert_eq!(by_tag.media_type, OCI_MANIFEST);
    assert_eq!(by_tag.manifest, pushed.manifest);
    assert_eq!(by_tag.config, pushed.config);
    assert_eq!(by_tag.config_digest, Digest::of(&pushed.config));
    assert_eq!(by_tag.layers, pushed.layers);

    let pinned = Reference::parse(&format!("{}/cairn/app@{}", reg.host, pushed.digest)).unwrap();
    let by_digest = client.resolve(&pinned, None).unwrap();
    assert_eq!((by_digest.digest, by_digest.manifest_digest), (pushed.digest, pushed.digest));
    assert_eq!(by_digest.layers, pushed.layers);

    let head = client.head_manifest(&r).unwrap();
    assert_eq!(
        (head.digest, head.media_type.as_str(), head.size),
        (pushed.digest, OCI_MANIFEST, pushed.manifest.len() as u64)
    );

    let before = client.stats().blob_gets;
    for (desc, want) in by_digest.layers.iter().zip(&layers) {
        let progress = std::sync::Mutex::new(Vec::new());
        let mut got = Vec::new();
        client
            .fetch_blob(&pinned, desc, &mut got, &|done, total| progress.lock().unwrap().push((done, total)))
            .unwrap();
        assert_eq!(Digest::of(&got), desc.digest);
        assert_eq!(&got, want);
        let progress = progress.into_inner().unwrap();
        assert_eq!(progress.last(), Some(&(desc.size, desc.size)));
        assert!(progress.windows(2).all(|w| w[0].0 < w[1].0), "progress only grows");
    }
    assert_eq!(client.stats().blob_gets - before, 2, "one GET per blob");

    // A tag that does not exist, and a blob that does not.
    let missing = client.resolve(&reg.reference("cairn/app:nope"), None).unwrap_err();
    assert!(matches!(missing, RegistryError::NotFound { .. }), "{missing:?}");
    assert_eq!(missing.to_string(), format!("`{}/cairn/app:nope` not found in its registry", reg.host));
    let ghost = cairn_registry::Descriptor::new(LAYER_TYPE, Digest::of(b"ghost"), 5);
    let e = client.fetch_blob(&r, &ghost, &mut Vec::new(), &|_, _| {}).unwrap_err();
    assert!(e.to_string().contains(&Digest::of(b"ghost").to_string()), "{e}");

    // skopeo reads what the client pushed and finds the same digest.
    require("skopeo", "skopeo");
    let out = run(Command::new("skopeo").args(["inspect", "--tls-verify=false", &format!("docker://{r}")]));
    let inspected: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(inspected["Digest"], pushed.digest.to_string());
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 2);
}

#[test]
fn platform_selection_from_an_index() {
    let reg = Registry::start(Auth::None, None);
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(config(dir.path(), &[&reg.host]));
    let r = reg.reference("multi:1");
    let amd64 = Platform::parse("linux/amd64").unwrap();
    let arm64 = Platform::parse("linux/arm64/v8").unwrap();
    let a = push_image(&client, &r.with_tag("amd64"), &[bytes(10, 1000)], &amd64);
    let b = push_image(&client, &r.with_tag("arm64"), &[bytes(11, 2000)], &arm64);
    let (index_digest, _) = push_index(&client, &r, &[(&a, amd64.clone()), (&b, arm64.clone())]);

    let got = client.resolve(&r, Some(&amd64)).unwrap();
    assert_eq!((got.digest, got.manifest_digest), (index_digest, a.digest));
    assert_eq!(got.layers, a.layers);
    // `linux/arm64` means `linux/arm64/v8`.
    let got = client.resolve(&r, Some(&Platform::parse("linux/arm64").unwrap())).unwrap();
    assert_eq!((got.digest, got.manifest_digest), (index_digest, b.digest));
    assert_eq!(got.config, b.config);
    // The index digest pins the same choice.
    let got = client.resolve(&r.with_digest(index_digest), Some(&arm64)).unwrap();
    assert_eq!(got.manifest_digest, b.digest);

    let e = client.resolve(&r, Some(&Platform::parse("linux/s390x").unwrap())).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "`{}/multi:1` has no image for platform `linux/s390x` (available: linux/amd64, linux/arm64/v8)",
            reg.host
        )
    );
}

#[test]
fn cross_repository_mount_instead_of_upload() {
    let reg = Registry::start(Auth::None, None);
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(config(dir.path(), &[&reg.host]));
    let src = reg.reference("team/base:1");
    let pushed = push_image(&client, &src, &[bytes(20, 50_000)], &Platform::parse("linux/amd64").unwrap());
    let layer = pushed.layers[0].digest;

    let dst = reg.reference("team/app:1");
    assert!(!client.blob_exists(&dst, &layer).unwrap());
    assert!(client.mount_blob(&dst, &layer, &src).unwrap(), "the registry mounts a blob it has");
    assert!(client.blob_exists(&dst, &layer).unwrap());
    assert!(reg.log().contains(&format!("mount={layer}")), "the registry saw a mount request");
    // A blob the registry lacks is not mounted; the client cancels the upload it got.
    assert!(!client.mount_blob(&dst, &Digest::of(b"absent"), &src).unwrap());
    // Another registry cannot be mounted from.
    let elsewhere = Reference::parse("127.0.0.2:1/x").unwrap();
    assert!(!client.mount_blob(&dst, &layer, &elsewhere).unwrap());
}

#[test]
fn docker_hub_names_pull_through_a_configured_mirror() {
    let reg = Registry::start(Auth::None, None);
    let dir = tempfile::tempdir().unwrap();
    let direct = Client::new(config(dir.path(), &[&reg.host]));
    let pushed = push_image(
        &direct,
        &reg.reference("library/mirrored:1"),
        &[bytes(30, 4096)],
        &Platform::parse("linux/amd64").unwrap(),
    );
    let mut cfg = config(dir.path(), &[&reg.host]);
    cfg.mirrors.insert("docker.io".into(), vec![reg.host.clone()]);
    let client = Client::new(cfg);
    let r = Reference::parse("mirrored:1").unwrap();
    assert_eq!(r.to_string(), "docker.io/library/mirrored:1");
    let got = client.resolve(&r, Some(&Platform::parse("linux/amd64").unwrap())).unwrap();
    assert_eq!(got.digest, pushed.digest);
    assert_eq!(fetch(&client, &r, &got.layers[0]), bytes(30, 4096));
}

#[test]
fn reads_an_image_skopeo_pushed() {
    require("skopeo", "skopeo");
    let reg = Registry::start(Auth::None, None);
    let dir = tempfile::tempdir().unwrap();
    // An OCI layout written by hand, copied to the registry by skopeo.
    let layout = dir.path().join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |b: &[u8]| {
        let d = Digest::of(b);
        std::fs::write(blobs.join(d.hex()), b).unwrap();
        d
    };
    let layer = bytes(40, 10_000);
    let ld = put(&layer);
    let image_config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [ld.to_string()]},
    }))
    .unwrap();
    let cd = put(&image_config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CONFIG_TYPE, "digest": cd.to_string(), "size": image_config.len()},
        "layers": [{"mediaType": LAYER_TYPE, "digest": ld.to_string(), "size": layer.len()}],
    }))
    .unwrap();
    let md = put(&manifest);
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": md.to_string(), "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": "v1"}}]});
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    run(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        "--preserve-digests",
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{}/from-skopeo:v1", reg.host),
    ]));

    let client = Client::new(config(dir.path(), &[&reg.host]));
    let r = reg.reference("from-skopeo:v1");
    let got = client.resolve(&r, Some(&Platform::parse("linux/amd64").unwrap())).unwrap();
    assert_eq!(got.digest, md);
    assert_eq!(got.config, image_config);
    assert_eq!(fetch(&client, &r, &got.layers[0]), layer);
}

#[test]
fn clones_download_in_parallel_threads() {
    fn shared<T: Clone + Send + Sync>(_: &T) {}
    let reg = Registry::start(Auth::None, None);
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(config(dir.path(), &[&reg.host]));
    shared(&client);
    let r = reg.reference("parallel:1");
    let layers: Vec<Vec<u8>> = (0..6).map(|i| bytes(90 + i, 40_000 + i as usize)).collect();
    let pushed = push_image(&client, &r, &layers, &Platform::parse("linux/amd64").unwrap());
    let threads: Vec<_> = pushed
        .layers
        .iter()
        .cloned()
        .map(|desc| {
            let (client, r) = (client.clone(), r.clone());
            std::thread::spawn(move || fetch(&client, &r, &desc))
        })
        .collect();
    for (t, want) in threads.into_iter().zip(&layers) {
        assert_eq!(&t.join().unwrap(), want);
    }
    assert_eq!(client.stats().blob_gets, 6, "clones share the counters");
}

/// `list_tags_paged` asks for pages (`?n=2`) and gives every tag. Debian's distribution
/// 2.8.2 answers tag lists in one page whatever `n` says, so following `Link` headers is
/// checked by `next_link`'s unit test; here the request and the result are.
#[test]
fn tag_lists_asked_in_pages() {
    let reg = Registry::start(Auth::None, None);
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(config(dir.path(), &[&reg.host]));
    let platform = Platform::parse("linux/amd64").unwrap();
    let mut want = Vec::new();
    for i in 0..5 {
        let tag = format!("t{i}");
        push_image(&client, &reg.reference(&format!("team/many:{tag}")), &[bytes(3, 100)], &platform);
        want.push(tag);
    }
    let r = reg.reference("team/many");
    let mut paged = client.list_tags_paged(&r, Some(2)).unwrap();
    paged.sort();
    assert_eq!(paged, want);
    let mut all = client.list_tags(&r).unwrap();
    all.sort();
    assert_eq!(all, want);
    assert!(reg.log().contains("\"GET /v2/team/many/tags/list?n=2 "), "{}", reg.log());
    assert!(client.list_tags(&reg.reference("team/none")).unwrap().is_empty());
}
