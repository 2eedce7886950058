//! Cache mounts that travel (`cairn cache export|import DIR`, `--cache-to …,cache-mounts=true`
//! and `--cache-from`; SPEC.md §10): the contents of the store's `RUN --mount=type=cache`
//! directories, one tar blob per cache id, content-addressed, as layers of the cache
//! artifact (in an OCI layout directory or a registry).
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
use std::io::{self, BufReader, Write};
use std::path::Path;

use cairn_ir::Digest;
use serde::Deserialize;

use crate::store::{HashWriter, Store, StoreError};

use super::*;

/// The annotation naming the cache mount (BLAKE3 hex of its id) a layer holds.
pub const ANNOTATION_MOUNT: &str = "cairn.cache.mount";
/// Media type of a cache mount blob: an uncompressed tar of the directory's contents.
pub const MEDIA_MOUNT: &str = "application/vnd.oci.image.layer.v1.tar";

/// One cache mount in an artifact: its name and blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MountBlob {
    pub name: String,
    pub digest: Digest,
    pub size: u64,
}

impl MountBlob {
    /// The manifest layer that holds it.
    pub(super) fn layer(&self) -> serde_json::Value {
        serde_json::json!({
            "mediaType": MEDIA_MOUNT, "digest": self.digest.to_string(), "size": self.size,
            "annotations": {ANNOTATION_MOUNT: self.name},
        })
    }
}

pub(super) fn io_err(action: &'static str, p: &Path) -> impl FnOnce(io::Error) -> CacheError {
    let path = p.to_path_buf();
    move |source| CacheError::Store(StoreError::Io { action, path, source })
}

/// Whether `name` is a shared cache mount directory's name (64 hex; not a private copy
/// or a half-made directory).
fn is_mount_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The cache mounts of a manifest's layers (layers without the annotation are results).
pub(super) fn mounts_of(manifest: &[u8]) -> Vec<MountBlob> {
    #[derive(Deserialize)]
    struct Layer {
        digest: Digest,
        size: u64,
        #[serde(default)]
        annotations: BTreeMap<String, String>,
    }
    #[derive(Deserialize)]
    struct M {
        #[serde(default)]
        layers: Vec<Layer>,
    }
    let Ok(m) = serde_json::from_slice::<M>(manifest) else { return Vec::new() };
    m.layers
        .into_iter()
        .filter_map(|l| {
            let name = l.annotations.get(ANNOTATION_MOUNT).filter(|n| is_mount_name(n))?.to_ascii_lowercase();
            Some(MountBlob { name, digest: l.digest, size: l.size })
        })
        .collect()
}

/// The names of the store's cache mounts, sorted.
fn mount_names(store: &Store) -> Vec<String> {
    let root = store.layout().cache_mounts_dir();
    let mut names: Vec<String> = match fs::read_dir(&root) {
        Ok(d) => {
            d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| is_mount_name(n)).collect()
        }
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// Packs the cache mount `name` into the file `dest` (made new).
fn pack(store: &Store, name: &str, dest: &Path) -> Result<MountBlob, CacheError> {
    let src = store.layout().cache_mounts_dir().join(name);
    let f = fs::File::create(dest).map_err(io_err("create", dest))?;
    let mut w = HashWriter::new(io::BufWriter::new(f));
    crate::layer::write_layer_tar(&src, &mut w, None).map_err(io_err("pack", &src))?;
    let (digest, size) = (w.digest(), w.count);
    w.into_inner().into_inner().map_err(|e| io_err("write", dest)(e.into_error()))?;
    Ok(MountBlob { name: name.to_string(), digest, size })
}

/// Packs every cache mount of `store` and hands each blob's file to `put` (which moves
/// or uploads it; the file is removed afterwards if still there).
pub(super) fn pack_all(
    store: &Store,
    put: &mut dyn FnMut(&MountBlob, &Path) -> Result<(), CacheError>,
) -> Result<Vec<MountBlob>, CacheError> {
    let mut out = Vec::new();
    for name in mount_names(store) {
        let tmp = store.tmp_path("mount.tar");
        let got = pack(store, &name, &tmp).and_then(|b| put(&b, &tmp).map(|()| b));
        let _ = fs::remove_file(&tmp);
        out.push(got?);
    }
    Ok(out)
}

/// Seeds the cache mount `m.name` unless the store has it: `fill` writes the blob into
/// a file, which is checked against its digest and unpacked. Returns whether it seeded.
pub(super) fn seed(
    store: &Store,
    m: &MountBlob,
    fill: &dyn Fn(&mut dyn Write) -> Result<(), CacheError>,
) -> Result<bool, CacheError> {
    let root = store.layout().cache_mounts_dir();
    let dest = root.join(&m.name);
    if dest.exists() {
        return Ok(false);
    }
    fs::create_dir_all(&root).map_err(io_err("create", &root))?;
    let blob = store.tmp_path("mount.tar");
    let dir = store.tmp_path("mount");
    let result = (|| {
        let f = fs::File::create(&blob).map_err(io_err("create", &blob))?;
        let mut w = HashWriter::new(io::BufWriter::new(f));
        fill(&mut w)?;
        if w.digest() != m.digest {
            return Err(StoreError::Corrupt {
                path: blob.clone(),
                message: format!("the cache mount blob's digest is not `{}`", m.digest),
            }
            .into());
        }
        w.into_inner().into_inner().map_err(|e| io_err("write", &blob)(e.into_error()))?;
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let f = fs::File::open(&blob).map_err(io_err("open", &blob))?;
        crate::layer::extract_layer_tar(BufReader::new(f), &dir).map_err(io_err("unpack", &blob))?;
        match fs::rename(&dir, &dest) {
            Ok(()) => Ok(true),
            // A build made it meanwhile: the store's own directory wins.
            Err(_) if dest.is_dir() => Ok(false),
            Err(e) => Err(io_err("rename into", &dest)(e)),
        }
    })();
    let _ = fs::remove_file(&blob);
    let _ = fs::remove_dir_all(&dir);
    result
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
    let mounts = pack_all(store, &mut |b, tmp| put_local(dir, &b.digest, Some(tmp), None))?;
    write_local(dir, &Records::new(), &mounts)?;
    Ok(MountReport { moved: mounts.len(), kept: 0 })
}

/// Seeds `store`'s cache mounts from the OCI layout directory `dir` (see the module doc:
/// ids the store already has are kept). Every blob is checked against its digest.
pub fn import_mounts(store: &Store, dir: &Path) -> Result<MountReport, CacheError> {
    let p = dir.join("index.json");
    let bytes = fs::read(&p).map_err(io_err("read", &p))?;
    let index: crate::oci::Index = serde_json::from_slice(&bytes)
        .map_err(|e| CacheError::Invalid(format!("`{}` is not an OCI index: {e}", p.display())))?;
    let mut rep = MountReport::default();
    for m in &index.manifests {
        for mb in mounts_of(&read_local_blob(dir, &m.digest)?) {
            match seed(store, &mb, &|w| copy_local(dir, &mb.digest, w))? {
                true => rep.moved += 1,
                false => rep.kept += 1,
            }
        }
    }
    Ok(rep)
}

/// Copies the blob `d` of the local cache directory `dir` into `w`.
pub(super) fn copy_local(dir: &Path, d: &Digest, w: &mut dyn Write) -> Result<(), CacheError> {
    let p = local_blob(dir, d);
    let mut f = fs::File::open(&p).map_err(io_err("open", &p))?;
    io::copy(&mut f, w).map_err(io_err("read", &p)).map(|_| ())
}

/// Puts a blob into the local cache directory `dir` (a hard link or copy of `from`, or
/// `bytes`), unless it is there; through a temporary name, so a reader never sees half.
pub(super) fn put_local(dir: &Path, d: &Digest, from: Option<&Path>, bytes: Option<&[u8]>) -> Result<(), CacheError> {
    let dest = local_blob(dir, d);
    if dest.exists() {
        return Ok(());
    }
    let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
    match (from, bytes) {
        (Some(src), _) => {
            if fs::hard_link(src, &tmp).is_err() {
                fs::copy(src, &tmp).map_err(io_err("copy", src))?;
            }
        }
        (None, Some(b)) => fs::write(&tmp, b).map_err(io_err("write", &tmp))?,
        (None, None) => unreachable!("put_local needs a source"),
    }
    fs::rename(&tmp, &dest).map_err(io_err("rename into", &dest))
}

/// Writes the index of `records`, its manifest (with `mounts`) and the layout files into
/// the local cache directory `dir`, whose blobs are in place.
pub(super) fn write_local(dir: &Path, records: &Records, mounts: &[MountBlob]) -> Result<(), CacheError> {
    let index = encode_index(records);
    put_local(dir, &Digest::of(&index), None, Some(&index))?;
    let manifest = manifest_of(&index, records, mounts);
    let md = Digest::of(&manifest);
    put_local(dir, &md, None, Some(&manifest))?;
    let layout = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::oci::MEDIA_OCI_INDEX,
        "manifests": [{
            "mediaType": crate::oci::MEDIA_OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "digest": md.to_string(),
            "size": manifest.len(),
            "annotations": {crate::oci::ANNOTATION_REF_NAME: LOCAL_REF_NAME},
        }],
    });
    for (name, bytes) in [
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ("index.json", serde_json::to_vec(&layout).expect("the index serializes")),
    ] {
        let (p, tmp) = (dir.join(name), dir.join(format!(".{name}.tmp{}", std::process::id())));
        fs::write(&tmp, bytes).map_err(io_err("write", &tmp))?;
        fs::rename(&tmp, &p).map_err(io_err("rename into", &p))?;
    }
    Ok(())
}

/// `old` with the mounts of `new` in place of those of the same name (per id, the last
/// writer wins).
pub(super) fn merge_mounts(old: Vec<MountBlob>, new: Vec<MountBlob>) -> Vec<MountBlob> {
    let mut out: Vec<MountBlob> = old.into_iter().filter(|o| !new.iter().any(|n| n.name == o.name)).collect();
    out.extend(new);
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
