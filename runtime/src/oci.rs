//! Image exchange: OCI layouts (directory or tar), docker-archive tarballs, the final
//! root filesystem as a directory or a tar; and imports of docker-archive, OCI-archive and
//! OCI layout images into the store.
//!
//! Every export is written to a temporary path beside the destination and renamed into
//! place, so a failed export leaves nothing behind. The docker-archive also carries
//! `index.json` and `oci-layout` (as Docker 25+ writes them), so it is an OCI archive too.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use cairn_ir::{Digest, Platform};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::image::{self, MT_INDEX, MT_LAYER_GZIP, MT_LAYER_TAR, MT_MANIFEST};
use crate::store::{remove_tree, ImageRecord, LayerMeta, Store, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

fn ioerr(what: &str, p: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("{what} `{}`: {e}", p.display()))
}

/// A temporary sibling of `dest` (same filesystem, so the final rename is atomic).
fn sibling_tmp(dest: &Path) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    dest.with_file_name(format!(".{name}.cairn-tmp-{}", std::process::id()))
}

/// Renames `tmp` onto `dest`, replacing an existing file or directory.
fn replace(tmp: &Path, dest: &Path) -> Result<()> {
    if let Ok(m) = fs::symlink_metadata(dest) {
        if m.is_dir() {
            remove_tree(dest);
        } else {
            let _ = fs::remove_file(dest);
        }
    }
    fs::rename(tmp, dest).map_err(|e| ioerr("Cannot write", dest, e))
}

/// The blobs of an image: manifest, config, layers (digest, size).
fn image_blobs(store: &Store, rec: &ImageRecord) -> Result<Vec<Digest>> {
    let mut v = vec![rec.manifest_digest, rec.config_digest];
    v.extend(image::manifest_layers(store, rec)?.into_iter().map(|(_, d, _)| d));
    Ok(v)
}

fn index_json(rec: &ImageRecord, manifest_size: u64, name: Option<&str>) -> Value {
    let mut desc = json!({"mediaType": MT_MANIFEST, "digest": rec.manifest_digest.to_string(), "size": manifest_size});
    if let Some(n) = name {
        let tag = n.rsplit_once(':').filter(|(r, _)| !r.ends_with('/')).map(|(_, t)| t).unwrap_or("latest");
        desc["annotations"] = json!({"io.containerd.image.name": n, "org.opencontainers.image.ref.name": tag});
    }
    json!({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [desc]})
}

/// Writes an OCI image layout for `rec` at `dest`: a directory, or (with `tar`) one tar.
pub fn export_oci_layout(store: &Store, rec: &ImageRecord, dest: &Path, tar: bool, name: Option<&str>) -> Result<()> {
    let msize = fs::metadata(store.blob_path(&rec.manifest_digest)).map(|m| m.len()).unwrap_or(0);
    let index = serde_json::to_vec(&index_json(rec, msize, name)).expect("json");
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    let tmp = sibling_tmp(dest);
    let result = (|| -> Result<()> {
        if tar {
            let f = fs::File::create(&tmp).map_err(|e| ioerr("Cannot write", &tmp, e))?;
            let mut b = tar::Builder::new(io::BufWriter::new(f));
            add_bytes(&mut b, "oci-layout", layout)?;
            add_bytes(&mut b, "index.json", &index)?;
            add_blobs(&mut b, store, &image_blobs(store, rec)?)?;
            b.into_inner().and_then(|mut w| w.flush()).map_err(|e| ioerr("Cannot write", &tmp, e))?;
        } else {
            let blobs = tmp.join("blobs/sha256");
            fs::create_dir_all(&blobs).map_err(|e| ioerr("Cannot create", &blobs, e))?;
            fs::write(tmp.join("oci-layout"), layout).map_err(|e| ioerr("Cannot write", &tmp, e))?;
            fs::write(tmp.join("index.json"), &index).map_err(|e| ioerr("Cannot write", &tmp, e))?;
            for d in image_blobs(store, rec)? {
                let to = blobs.join(d.hex());
                // Hard links are free; copy across filesystems.
                if fs::hard_link(store.blob_path(&d), &to).is_err() {
                    fs::copy(store.blob_path(&d), &to).map_err(|e| ioerr("Cannot copy blob to", &to, e))?;
                }
            }
        }
        Ok(())
    })();
    match result {
        Ok(()) => replace(&tmp, dest),
        Err(e) => {
            remove_tree(&tmp);
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn add_bytes<W: Write>(b: &mut tar::Builder<W>, path: &str, data: &[u8]) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, path, data).map_err(|e| StoreError(format!("Cannot write archive entry `{path}`: {e}")))
}

fn add_blobs<W: Write>(b: &mut tar::Builder<W>, store: &Store, blobs: &[Digest]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for d in blobs {
        if !seen.insert(*d) {
            continue;
        }
        let p = store.blob_path(d);
        let mut f = fs::File::open(&p).map_err(|e| ioerr("Cannot read blob", &p, e))?;
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let mut h = tar::Header::new_ustar();
        h.set_size(len);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, format!("blobs/sha256/{}", d.hex()), &mut f).map_err(|e| ioerr("Cannot archive blob", &p, e))?;
    }
    Ok(())
}

/// Writes a docker-archive (`docker load` input) with `manifest.json` and `RepoTags`.
pub fn export_docker_archive(store: &Store, rec: &ImageRecord, dest: &Path, repo_tags: &[String]) -> Result<()> {
    let layers = image::manifest_layers(store, rec)?;
    let manifest = json!([{
        "Config": format!("blobs/sha256/{}", rec.config_digest.hex()),
        "RepoTags": repo_tags,
        "Layers": layers.iter().map(|(_, d, _)| format!("blobs/sha256/{}", d.hex())).collect::<Vec<_>>(),
    }]);
    let msize = fs::metadata(store.blob_path(&rec.manifest_digest)).map(|m| m.len()).unwrap_or(0);
    let index = serde_json::to_vec(&index_json(rec, msize, repo_tags.first().map(|s| s.as_str()))).expect("json");
    let tmp = sibling_tmp(dest);
    let result = (|| -> Result<()> {
        let f = fs::File::create(&tmp).map_err(|e| ioerr("Cannot write", &tmp, e))?;
        let mut b = tar::Builder::new(io::BufWriter::new(f));
        add_bytes(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        add_bytes(&mut b, "index.json", &index)?;
        add_bytes(&mut b, "manifest.json", &serde_json::to_vec(&manifest).expect("json"))?;
        add_blobs(&mut b, store, &image_blobs(store, rec)?)?;
        b.into_inner().and_then(|mut w| w.flush()).map_err(|e| ioerr("Cannot write", &tmp, e))?;
        Ok(())
    })();
    match result {
        Ok(()) => replace(&tmp, dest),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Mounts the chain read-only and runs `f` on the merged tree.
fn with_merged<T>(store: &Store, layers: &[String], f: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let mnt = store.tmp_path("rootfs");
    let empty = store.tmp_path("empty");
    for d in [&mnt, &empty] {
        fs::create_dir_all(d).map_err(|e| ioerr("Cannot create", d, e))?;
    }
    let lowers: Vec<PathBuf> = layers.iter().map(|l| store.layer_path(l)).collect();
    let r = match crate::mount::OverlayMount::new(&lowers, None, &mnt, &empty) {
        Ok(m) => {
            let r = f(m.target());
            drop(m);
            r
        }
        Err(e) => Err(StoreError(format!("Cannot mount the image's layers: {e}"))),
    };
    let _ = fs::remove_dir(&mnt);
    let _ = fs::remove_dir(&empty);
    r
}

/// The final root filesystem as a directory.
pub fn export_rootfs_dir(store: &Store, layers: &[String], dest: &Path) -> Result<()> {
    let tmp = sibling_tmp(dest);
    let r = with_merged(store, layers, |root| {
        let st = std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", root.display()))
            .arg(&tmp)
            .status()
            .map_err(|e| StoreError(format!("Cannot run cp: {e}")))?;
        if !st.success() {
            return Err(ioerr("Cannot copy the root filesystem to", dest, st));
        }
        Ok(())
    });
    match r {
        Ok(()) => replace(&tmp, dest),
        Err(e) => {
            remove_tree(&tmp);
            Err(e)
        }
    }
}

/// The final root filesystem as one deterministic tar.
pub fn export_rootfs_tar(store: &Store, layers: &[String], dest: &Path, clamp: Option<i64>) -> Result<()> {
    let tmp = sibling_tmp(dest);
    let r = with_merged(store, layers, |root| {
        let f = fs::File::create(&tmp).map_err(|e| ioerr("Cannot write", &tmp, e))?;
        let w = crate::layer::write_layer_tar(root, io::BufWriter::new(f), clamp).map_err(|e| ioerr("Cannot write", dest, e))?;
        w.into_inner().map_err(|e| ioerr("Cannot write", dest, e.error().to_string()))?;
        Ok(())
    });
    match r {
        Ok(()) => replace(&tmp, dest),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

// ---- imports ----

/// A directory holding an image in OCI layout and/or docker-archive form.
struct Unpacked<'a> {
    dir: &'a Path,
}

impl Unpacked<'_> {
    fn read(&self, rel: &str) -> Result<Vec<u8>> {
        let p = self.dir.join(rel);
        fs::read(&p).map_err(|e| ioerr("Cannot read", &p, e))
    }
    fn json(&self, rel: &str) -> Result<Value> {
        serde_json::from_slice(&self.read(rel)?).map_err(|e| StoreError(format!("`{rel}` is not valid JSON: {e}")))
    }
}

/// Imports one layer file (gzip or plain tar): stores the blob, extracts it once.
fn import_layer_file(store: &Store, path: &Path) -> Result<String> {
    let gz = image::is_gzip(path);
    let open = || fs::File::open(path).map_err(|e| ioerr("Cannot read layer", path, e));
    // diff_id: sha256 of the uncompressed stream.
    let mut h = Sha256::new();
    let mut r: Box<dyn Read> = if gz { Box::new(flate2::read::GzDecoder::new(open()?)) } else { Box::new(open()?) };
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf).map_err(|e| ioerr("Cannot decompress layer", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let mut d = [0u8; 32];
    d.copy_from_slice(&h.finalize());
    let diff_id = Digest(d);
    let bytes = fs::read(path).map_err(|e| ioerr("Cannot read layer", path, e))?;
    let blob = store.put_blob(&bytes)?;
    let mut r: Box<dyn Read> = if gz { Box::new(flate2::read::GzDecoder::new(open()?)) } else { Box::new(open()?) };
    let id = store.import_layer(&diff_id, &mut r)?;
    if store.layer_meta(&id).is_none() {
        let mt = if gz { MT_LAYER_GZIP } else { MT_LAYER_TAR };
        store.set_layer_meta(&id, &LayerMeta { diff_id, blob, size: bytes.len() as u64, media_type: mt.to_string() })?;
    }
    Ok(id)
}

/// Stores config + layers and writes a fresh manifest.
fn import_image(store: &Store, u: &Unpacked, config_rel: &str, layer_rels: &[String]) -> Result<ImageRecord> {
    let config = u.read(config_rel)?;
    let cfg: cairn_ir::ImageConfig =
        serde_json::from_slice(&config).map_err(|e| StoreError(format!("`{config_rel}` is not an image config: {e}")))?;
    let mut layers = Vec::new();
    for l in layer_rels {
        layers.push(import_layer_file(store, &u.dir.join(l))?);
    }
    let metas: Vec<LayerMeta> = layers.iter().map(|l| store.layer_meta(l).expect("just imported")).collect();
    if cfg.rootfs.diff_ids.len() == metas.len()
        && cfg.rootfs.diff_ids.iter().zip(&metas).any(|(d, m)| *d != m.diff_id.to_string())
    {
        return Err(StoreError("the image's layers do not match the diff_ids of its config".into()));
    }
    let config_digest = store.put_blob(&config)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": image::MT_CONFIG, "digest": config_digest.to_string(), "size": config.len()},
        "layers": metas.iter().map(|m| json!({"mediaType": m.media_type, "digest": m.blob.to_string(), "size": m.size})).collect::<Vec<_>>(),
    });
    let mb = serde_json::to_vec(&manifest).expect("json");
    let manifest_digest = store.put_blob(&mb)?;
    let size = mb.len() as u64 + config.len() as u64 + metas.iter().map(|m| m.size).sum::<u64>();
    Ok(ImageRecord { manifest_digest, config_digest, layers, size })
}

fn blob_rel(digest: &str) -> Result<String> {
    let d: Digest = digest.parse().map_err(|_| StoreError(format!("invalid digest `{digest}`")))?;
    Ok(format!("blobs/sha256/{}", d.hex()))
}

/// Picks a manifest from an OCI index: by ref name / digest, else the only one; an image
/// index inside is resolved for the host platform.
fn pick_from_index(u: &Unpacked, index: &Value, selector: Option<&str>) -> Result<Value> {
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    let chosen = match selector {
        Some(s) if s.starts_with("sha256:") => manifests.iter().find(|m| m["digest"] == s).cloned(),
        Some(s) => manifests
            .iter()
            .find(|m| {
                let a = &m["annotations"];
                a["org.opencontainers.image.ref.name"] == s || a["io.containerd.image.name"].as_str().is_some_and(|n| n.ends_with(&format!(":{s}")))
            })
            .cloned(),
        None if manifests.len() == 1 => manifests.first().cloned(),
        None => None,
    }
    .ok_or_else(|| match selector {
        Some(s) => StoreError(format!("no image `{s}` in the layout's index.json")),
        None => StoreError(format!("the layout holds {} images: name one with `:TAG` or `@sha256:…`", manifests.len())),
    })?;
    if chosen["mediaType"] == MT_INDEX || chosen["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json" {
        let inner = u.json(&blob_rel(chosen["digest"].as_str().unwrap_or(""))?)?;
        let host = Platform::host();
        let m = inner["manifests"]
            .as_array()
            .and_then(|ms| {
                ms.iter().find(|m| m["platform"]["architecture"] == host.architecture.as_str() && m["platform"]["os"] == host.os.as_str()).cloned()
            })
            .ok_or_else(|| StoreError(format!("the image index has no manifest for `{host}`")))?;
        return Ok(m);
    }
    Ok(chosen)
}

fn import_from_layout(store: &Store, u: &Unpacked, selector: Option<&str>) -> Result<ImageRecord> {
    let index = u.json("index.json")?;
    let desc = pick_from_index(u, &index, selector)?;
    let manifest = u.json(&blob_rel(desc["digest"].as_str().unwrap_or(""))?)?;
    let config = blob_rel(manifest["config"]["digest"].as_str().unwrap_or(""))?;
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| blob_rel(l["digest"].as_str().unwrap_or("")))
        .collect::<Result<_>>()?;
    import_image(store, u, &config, &layers)
}

/// Imports an OCI layout directory (an `oci-layout://` build context).
pub fn import_oci_layout(store: &Store, dir: &Path, selector: Option<&str>) -> Result<ImageRecord> {
    if !dir.join("index.json").is_file() {
        return Err(StoreError(format!("`{}` is not an OCI layout (no index.json)", dir.display())));
    }
    import_from_layout(store, &Unpacked { dir }, selector)
}

/// Imports a docker-archive or OCI-archive tarball; returns the names tagged (for an
/// archive without names, the manifest digest).
pub fn load_archive(store: &Store, file: &Path) -> Result<Vec<String>> {
    let tmp = store.tmp_path("load");
    fs::create_dir_all(&tmp).map_err(|e| ioerr("Cannot create", &tmp, e))?;
    let r = (|| -> Result<Vec<String>> {
        let f = fs::File::open(file).map_err(|e| ioerr("Cannot open", file, e))?;
        let reader: Box<dyn Read> = if image::is_gzip(file) { Box::new(flate2::read::GzDecoder::new(f)) } else { Box::new(f) };
        let mut ar = tar::Archive::new(reader);
        for entry in ar.entries().map_err(|e| ioerr("Not a tar archive:", file, e))? {
            let mut e = entry.map_err(|e| ioerr("Corrupt archive", file, e))?;
            let p = e.path().map_err(|e| ioerr("Corrupt archive", file, e))?.into_owned();
            if p.components().any(|c| matches!(c, std::path::Component::ParentDir)) || p.is_absolute() {
                return Err(StoreError(format!("archive entry `{}` in `{}` leaves the archive", p.display(), file.display())));
            }
            e.unpack_in(&tmp).map_err(|e| ioerr("Cannot unpack", file, e))?;
        }
        let u = Unpacked { dir: &tmp };
        let mut names = Vec::new();
        if tmp.join("manifest.json").is_file() {
            let m = u.json("manifest.json")?;
            for img in m.as_array().cloned().unwrap_or_default() {
                let layers: Vec<String> = img["Layers"].as_array().cloned().unwrap_or_default().iter().filter_map(|l| l.as_str().map(str::to_string)).collect();
                let rec = import_image(store, &u, img["Config"].as_str().unwrap_or(""), &layers)?;
                let tags: Vec<String> = img["RepoTags"].as_array().cloned().unwrap_or_default().iter().filter_map(|t| t.as_str().map(str::to_string)).collect();
                for t in &tags {
                    names.push(store.tag_image(t, &rec)?);
                }
                if tags.is_empty() {
                    names.push(rec.manifest_digest.to_string());
                }
            }
        } else if tmp.join("index.json").is_file() {
            let index = u.json("index.json")?;
            let mut by_name: BTreeMap<String, Value> = BTreeMap::new();
            for (i, m) in index["manifests"].as_array().cloned().unwrap_or_default().into_iter().enumerate() {
                let n = m["annotations"]["io.containerd.image.name"].as_str().map(str::to_string).unwrap_or_else(|| format!("#{i}"));
                by_name.insert(n, m);
            }
            for (n, m) in by_name {
                let one = json!({"manifests": [m.clone()]});
                let rec = import_from_layout(store, &u, None).or_else(|_| {
                    let d = pick_from_index(&u, &one, None)?;
                    let manifest = u.json(&blob_rel(d["digest"].as_str().unwrap_or(""))?)?;
                    let config = blob_rel(manifest["config"]["digest"].as_str().unwrap_or(""))?;
                    let layers: Vec<String> = manifest["layers"].as_array().cloned().unwrap_or_default().iter().map(|l| blob_rel(l["digest"].as_str().unwrap_or(""))).collect::<Result<_>>()?;
                    import_image(store, &u, &config, &layers)
                })?;
                if n.starts_with('#') {
                    names.push(rec.manifest_digest.to_string());
                } else {
                    names.push(store.tag_image(&n, &rec)?);
                }
            }
        } else {
            return Err(StoreError(format!("`{}` is neither a docker-archive (manifest.json) nor an OCI archive (index.json)", file.display())));
        }
        Ok(names)
    })();
    remove_tree(&tmp);
    r
}
