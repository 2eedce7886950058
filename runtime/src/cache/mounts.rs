//! Cache mounts that travel (`cairn cache export DIR` / `cairn cache import DIR`; SPEC.md
//! §10): the contents of the store's `RUN --mount=type=cache` directories, one tar blob per
//! cache id, content-addressed, in an OCI layout directory.
//!
//! A store keeps a cache mount under `cachemounts/<name>`, `name` = the BLAKE3 hex of the
//! mount's `id` (a function of the id alone, so equal on every machine); the artifact
//! names each blob by that name (annotation [`ANNOTATION_MOUNT`]).
//!
//! **Semantics: the importing store's own directory wins.** Import seeds only the ids the
//! store has no directory for; a directory it already has is kept as is (a cache mount is
//! a cache: any content is correct, and merging two package caches file by file could
//! give a mix neither writer made). Between machines, per id, the last export wins; there
//! are no cross-machine locks. Export reads the directories as they are: a build writing
//! one at that moment may leave a partly updated copy, which is still a valid cache.

use std::fs;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use cairn_ir::Digest;
use serde::Deserialize;

use crate::oci::{MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST};
use crate::store::{HashWriter, Store, StoreError};

use super::*;

/// The annotation naming the cache mount (BLAKE3 hex of its id) a layer holds.
pub const ANNOTATION_MOUNT: &str = "cairn.cache.mount";
/// Media type of a cache mount blob: an uncompressed tar of the directory's contents.
pub const MEDIA_MOUNT: &str = "application/vnd.oci.image.layer.v1.tar";

fn io_err(action: &'static str, p: &Path) -> impl FnOnce(io::Error) -> CacheError {
    let path = p.to_path_buf();
    move |source| CacheError::Store(StoreError::Io { action, path, source })
}

/// Whether `name` is a shared cache mount directory's name (64 hex; not a private copy
/// or a half-made directory).
fn is_mount_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What an export or import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MountReport {
    /// Cache mounts written (export) or seeded (import).
    pub moved: usize,
    /// Import: cache mounts the store already had (kept).
    pub kept: usize,
}

/// Writes every cache mount of `store` into `dir`, a new OCI layout directory (an
/// existing non-empty `dir` is refused, so nothing is clobbered).
pub fn export_mounts(store: &Store, dir: &Path) -> Result<MountReport, CacheError> {
    if fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(CacheError::Invalid(format!("`{}` exists and is not empty", dir.display())));
    }
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(io_err("create", &blobs))?;
    let root = store.layout().cache_mounts_dir();
    let mut names: Vec<String> = match fs::read_dir(&root) {
        Ok(d) => {
            d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| is_mount_name(n)).collect()
        }
        Err(_) => Vec::new(),
    };
    names.sort();
    let mut layers = Vec::new();
    for name in &names {
        let tmp = blobs.join(format!(".tmp-{name}"));
        let f = fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
        let mut w = HashWriter::new(io::BufWriter::new(f));
        crate::layer::write_layer_tar(&root.join(name), &mut w, None).map_err(io_err("pack", &root.join(name)))?;
        let (digest, size) = (w.digest(), w.count);
        w.into_inner().into_inner().map_err(|e| io_err("write", &tmp)(e.into_error()))?;
        let dest = local_blob(dir, &digest);
        fs::rename(&tmp, &dest).map_err(io_err("rename into", &dest))?;
        layers.push(serde_json::json!({
            "mediaType": MEDIA_MOUNT, "digest": digest.to_string(), "size": size,
            "annotations": {ANNOTATION_MOUNT: name},
        }));
    }
    let index = encode_index(&Records::new());
    let write = |name: &Path, bytes: &[u8]| -> Result<(), CacheError> {
        let tmp = name.with_extension("tmp");
        fs::write(&tmp, bytes).map_err(io_err("write", &tmp))?;
        fs::rename(&tmp, name).map_err(io_err("rename into", name))
    };
    write(&local_blob(dir, &Digest::of(&index)), &index)?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": MEDIA_CACHE_INDEX, "digest": Digest::of(&index).to_string(), "size": index.len()},
        "layers": layers,
    }))
    .expect("the manifest serializes");
    let md = Digest::of(&manifest);
    write(&local_blob(dir, &md), &manifest)?;
    let layout = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_INDEX,
        "manifests": [{
            "mediaType": MEDIA_OCI_MANIFEST, "artifactType": ARTIFACT_TYPE,
            "digest": md.to_string(), "size": manifest.len(),
            "annotations": {crate::oci::ANNOTATION_REF_NAME: LOCAL_REF_NAME},
        }],
    });
    write(&dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    write(&dir.join("index.json"), &serde_json::to_vec(&layout).expect("the index serializes"))?;
    Ok(MountReport { moved: names.len(), kept: 0 })
}

/// Seeds `store`'s cache mounts from the OCI layout directory `dir` (see the module doc:
/// ids the store already has are kept). Every blob is checked against its digest first.
pub fn import_mounts(store: &Store, dir: &Path) -> Result<MountReport, CacheError> {
    #[derive(Deserialize)]
    struct Layer {
        digest: Digest,
        #[serde(default)]
        annotations: BTreeMap<String, String>,
    }
    #[derive(Deserialize)]
    struct M {
        #[serde(default)]
        layers: Vec<Layer>,
    }
    let p = dir.join("index.json");
    let bytes = fs::read(&p).map_err(io_err("read", &p))?;
    let index: crate::oci::Index = serde_json::from_slice(&bytes)
        .map_err(|e| CacheError::Invalid(format!("`{}` is not an OCI index: {e}", p.display())))?;
    let mut wanted: Vec<(String, Digest)> = Vec::new();
    for m in &index.manifests {
        let m: M = serde_json::from_slice(&read_local_blob(dir, &m.digest)?)
            .map_err(|e| CacheError::Invalid(format!("`{}` holds a malformed manifest: {e}", dir.display())))?;
        for l in m.layers {
            if let Some(name) = l.annotations.get(ANNOTATION_MOUNT).filter(|n| is_mount_name(n)) {
                wanted.push((name.to_ascii_lowercase(), l.digest));
            }
        }
    }
    let root = store.layout().cache_mounts_dir();
    fs::create_dir_all(&root).map_err(io_err("create", &root))?;
    let mut rep = MountReport::default();
    for (name, digest) in wanted {
        let dest = root.join(&name);
        if dest.exists() {
            rep.kept += 1;
            continue;
        }
        let blob = local_blob(dir, &digest);
        verify_file(&blob, &digest)?;
        let tmp: PathBuf = root.join(format!(".tmp-{name}-{}-import", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
        let f = fs::File::open(&blob).map_err(io_err("open", &blob))?;
        if let Err(e) = crate::layer::extract_layer_tar(BufReader::new(f), &tmp) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(io_err("unpack", &blob)(e));
        }
        match fs::rename(&tmp, &dest) {
            Ok(()) => rep.moved += 1,
            // A build made it meanwhile: the store's own directory wins.
            Err(_) if dest.is_dir() => {
                let _ = fs::remove_dir_all(&tmp);
                rep.kept += 1;
            }
            Err(e) => return Err(io_err("rename into", &dest)(e)),
        }
    }
    Ok(rep)
}

/// Checks that the file `p` has digest `d`, reading it once.
fn verify_file(p: &Path, d: &Digest) -> Result<(), CacheError> {
    let mut f = fs::File::open(p).map_err(io_err("open", p))?;
    let mut w = HashWriter::new(io::sink());
    io::copy(&mut f, &mut w).map_err(io_err("read", p))?;
    if w.digest() != *d {
        return Err(
            StoreError::Corrupt { path: p.to_path_buf(), message: format!("the blob's digest is not `{d}`") }.into()
        );
    }
    Ok(())
}
