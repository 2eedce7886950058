//! Importing an image into the store from its manifest and blobs ([`import_manifest`]) or
//! from config bytes and layer tars ([`import_config_and_layers`], a docker-archive
//! entry). The archive and layout readers in [`super::archive`] build on these.
//!
//! Layers are identified by diff_id: an imported layer whose diff_id the store already
//! knows is not extracted again, so base layers shared by many images exist once. Every
//! blob is verified against its digest and every layer against the config's diff_id.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use cairn_ir::Digest;

use super::put_image;
use crate::layer;
use crate::oci::{Manifest, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_LAYER_TAR, MEDIA_OCI_MANIFEST};
use crate::store::{
    diff_ids_of, io_err, known_diff_size, FetchProgress, HashReader, HashWriter, ImageRecord, LayerBlob, Store,
    StoreError,
};

/// A blob of this store's metadata that holds `diff_id` and still exists.
fn known_blob(store: &Store, id: &str, diff_id: &Digest) -> Option<LayerBlob> {
    let m = store.layer_meta(id).ok()?;
    m.imported
        .iter()
        .chain(m.packed.iter().map(|p| &p.blob))
        .find(|b| b.diff_id == *diff_id && store.get_blob_path(&b.blob).is_some())
        .cloned()
}

/// Opens a layer blob for reading its tar (gzip and zstd are decompressed, a plain tar
/// read as is), and the OCI media type of what it is.
fn open_layer_blob(path: &Path) -> Result<(Box<dyn Read + Send>, &'static str), StoreError> {
    let f = File::open(path).map_err(io_err("open", path))?;
    let (r, c) = crate::compress::decoder(BufReader::with_capacity(256 * 1024, f)).map_err(io_err("read", path))?;
    Ok((r, c.layer_media_type(true)))
}

/// Opens a file, decompressing it when it starts with the gzip or zstd magic.
pub(crate) fn open_maybe_gzip(p: &Path) -> Result<Box<dyn Read + Send>, StoreError> {
    Ok(open_layer_blob(p)?.0)
}

/// A reader that copies everything it reads into `sink`.
struct Tee<R, W> {
    inner: R,
    sink: W,
}

impl<R, W> Tee<R, W> {
    fn into_sink(self) -> W {
        self.sink
    }
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sink.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Extracts a layer tar from `reader` into a new layer on `lowers`, checking its
/// diff_id; returns the committed layer id and the diff size. When `extract` is false
/// the tar is only read (hashed), and no layer is made.
fn extract_checked(
    store: &Store,
    reader: impl Read,
    src: &Path,
    diff_id: &Digest,
    lowers: &[String],
    extract: bool,
) -> Result<(Option<String>, u64), StoreError> {
    let mut hr = HashReader::new(reader);
    let new = if extract {
        let nl = store.new_layer()?;
        let lower_paths: Vec<PathBuf> = lowers.iter().map(|l| store.layer_path(l)).collect();
        layer::extract_layer_tar_with(&mut hr, &nl.upper, &lower_paths).map_err(io_err("extract layer", src))?;
        Some(nl)
    } else {
        None
    };
    io::copy(&mut hr, &mut io::sink()).map_err(io_err("read", src))?;
    if hr.digest() != *diff_id {
        return Err(StoreError::Corrupt {
            path: src.to_path_buf(),
            message: format!("the layer's content digest is `{}` but the image config says `{diff_id}`", hr.digest()),
        });
    }
    let id = match new {
        Some(nl) => {
            let id = store.commit_layer(nl)?;
            store.record_diff_id(diff_id, &id)?;
            Some(id)
        }
        None => None,
    };
    Ok((id, hr.count))
}

/// Extracts every lazy layer of `chain` (a pull's, see `store/remote.rs`), bottom first,
/// each on the ones below it. The blobs it needs are downloaded first, up to
/// [`PARALLEL_DOWNLOADS`] at once; extraction is in order (a layer applies on those below).
pub fn materialize(store: &Store, chain: &[String], progress: FetchProgress) -> Result<(), StoreError> {
    let lazy: Vec<LayerBlob> = chain
        .iter()
        .filter(|id| !store.layer_exists(id))
        .filter_map(|id| store.layer_meta(id).ok().and_then(|m| m.imported))
        .filter(|b| store.get_blob_path(&b.blob).is_none())
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let first_error = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..PARALLEL_DOWNLOADS.min(lazy.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(b) = lazy.get(i) else { break };
                if let Err(e) = store.ensure_blob(&b.blob, progress) {
                    first_error.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(e);
                    break;
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    for (i, id) in chain.iter().enumerate() {
        if store.layer_exists(id) {
            continue;
        }
        let _g = store.lazy_lock(id);
        if store.layer_exists(id) {
            continue; // another thread extracted it meanwhile
        }
        let lb = store
            .layer_meta(id)?
            .imported
            .ok_or_else(|| StoreError::NotFound(format!("Layer `{id}` is not in the store")))?;
        let path = store.ensure_blob(&lb.blob, progress)?;
        extract_lazy_layer(store, &path, &lb, id, &chain[..i])?;
    }
    Ok(())
}

/// How many blobs [`materialize`] downloads at once.
pub const PARALLEL_DOWNLOADS: usize = 4;

/// Extracts the lazy layer `id` (a pull's, see `store/remote.rs`) from its blob at `path`
/// on top of `lowers`, checking the diff_id, and commits it under `id` itself.
fn extract_lazy_layer(
    store: &Store,
    path: &Path,
    lb: &LayerBlob,
    id: &str,
    lowers: &[String],
) -> Result<(), StoreError> {
    let (reader, _) = open_layer_blob(path)?;
    let mut hr = HashReader::new(reader);
    let nl = store.new_layer()?;
    let lower_paths: Vec<PathBuf> = lowers.iter().map(|l| store.layer_path(l)).collect();
    layer::extract_layer_tar_with(&mut hr, &nl.upper, &lower_paths).map_err(io_err("extract layer", path))?;
    io::copy(&mut hr, &mut io::sink()).map_err(io_err("read", path))?;
    if hr.digest() != lb.diff_id {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            message: format!(
                "the layer's content digest is `{}` but the image config says `{}`",
                hr.digest(),
                lb.diff_id
            ),
        });
    }
    store.commit_layer_as(&nl, id)?;
    let diff_size = hr.count;
    store.update_layer_meta(id, |m| {
        if let Some(b) = m.imported.as_mut() {
            b.diff_size = diff_size;
        }
    })
}

/// The gzip level of the blob made for a plain layer tar at import (a docker-archive's
/// `layer.tar`). Not the export default (6): at 6 compression took more CPU than the
/// extraction itself and `cairn load` of a Debian base was 1.7× `docker load`, which
/// stores no compressed blob at all; level 1 keeps the import bound by file creation
/// (the loaded image's layers are exported with this blob, as any imported blob).
/// Measured on the Debian base (`cargo run --release -p cairn-runtime --example gzlevels
/// TAR`): level 1 gives 79.4 MB for 1.5 s of CPU, 3 gives 63.7 MB (dockerd's push size)
/// for 3.0 s, 6 gives 62.1 MB for 4.2 s; `cairn load` took 2.6 s at 1 and 3.4 s at 3.
const IMPORT_GZIP_LEVEL: u32 = 1;

/// Imports one layer blob file `src` whose tar must have `diff_id`, on top of `lowers`.
/// With `expect_blob` (a manifest names the blob) that exact blob is stored; without it
/// (docker-archive) any blob of the same diff_id will do, and a plain tar is gzipped.
pub(crate) fn import_layer(
    store: &Store,
    src: &Path,
    diff_id: &Digest,
    expect_blob: Option<&Digest>,
    lowers: &[String],
) -> Result<(String, LayerBlob), StoreError> {
    let existing = store.layer_for_diff_id(diff_id);
    if expect_blob.is_none() {
        if let Some((id, b)) = existing.as_ref().and_then(|id| known_blob(store, id, diff_id).map(|b| (id.clone(), b)))
        {
            return Ok((id, b));
        }
    }
    let (_, kind) = open_layer_blob(src)?;
    if expect_blob.is_none() && kind == MEDIA_OCI_LAYER_TAR {
        // docker-archive layer.tar: gzip it into a blob while extracting, in one pass.
        let t = store.temp_file("import")?;
        let file_w = HashWriter::new(io::BufWriter::with_capacity(256 * 1024, &t.file));
        // Compressed on rayon's threads while this one extracts (`gzip.rs`).
        let gz = crate::gzip::ChunkedGzWriter::new(file_w, IMPORT_GZIP_LEVEL);
        let f = File::open(src).map_err(io_err("open", src))?;
        let mut tee = Tee { inner: BufReader::with_capacity(256 * 1024, f), sink: gz };
        let (new_id, diff_size) = extract_checked(store, &mut tee, src, diff_id, lowers, existing.is_none())?;
        let mut file_w = tee.into_sink().finish().map_err(io_err("compress", &t.path))?;
        file_w.flush().map_err(io_err("write", &t.path))?;
        let (blob, blob_size) = (file_w.digest(), file_w.count);
        drop(file_w);
        store.persist_blob(t, &blob)?;
        let lb = LayerBlob { diff_id: *diff_id, diff_size, blob, blob_size, media_type: MEDIA_OCI_LAYER_GZIP.into() };
        let id = new_id.or(existing).unwrap_or_default();
        store.update_layer_meta(&id, |m| {
            if m.imported.is_none() {
                m.imported = Some(lb.clone());
            }
        })?;
        return Ok((id, lb));
    }
    // A blob kept as is: store it (verified), then extract from the stored copy.
    let blob = match expect_blob.and_then(|d| store.get_blob_path(d).map(|_| *d)) {
        Some(d) => d,
        None => {
            let d = store.put_blob_file(src)?;
            if let Some(want) = expect_blob.filter(|w| **w != d) {
                return Err(StoreError::Corrupt {
                    path: src.to_path_buf(),
                    message: format!("the blob's digest is `{d}` but the manifest says `{want}`"),
                });
            }
            d
        }
    };
    let blob_path = store.blob_path(&blob);
    let blob_size = fs::metadata(&blob_path).map_err(io_err("stat", &blob_path))?.len();
    let (reader, media) = open_layer_blob(&blob_path)?;
    let (id, diff_size) = match existing {
        Some(id) => match known_diff_size(store, &id, diff_id) {
            Some(s) => (id, s),
            None => {
                let (_, s) = extract_checked(store, reader, &blob_path, diff_id, lowers, false)?;
                (id, s)
            }
        },
        None => {
            let (id, s) = extract_checked(store, reader, &blob_path, diff_id, lowers, true)?;
            (id.unwrap_or_default(), s)
        }
    };
    let lb = LayerBlob { diff_id: *diff_id, diff_size, blob, blob_size, media_type: media.to_string() };
    store.update_layer_meta(&id, |m| {
        if m.imported.is_none() {
            m.imported = Some(lb.clone());
        }
    })?;
    Ok((id, lb))
}

/// Imports an image from its manifest bytes (stored unchanged, so the manifest digest is
/// the original one); `blob_file` finds the file of a blob by digest.
pub(crate) fn import_manifest(
    store: &Store,
    manifest_bytes: &[u8],
    manifest_path: &Path,
    blob_file: &dyn Fn(&Digest) -> Result<PathBuf, StoreError>,
) -> Result<ImageRecord, StoreError> {
    let m: Manifest = serde_json::from_slice(manifest_bytes).map_err(|e| StoreError::Corrupt {
        path: manifest_path.to_path_buf(),
        message: format!("not an image manifest: {e}"),
    })?;
    if let Some(t) = m.media_type.as_deref().filter(|t| *t != MEDIA_OCI_MANIFEST && *t != MEDIA_DOCKER_MANIFEST) {
        return Err(StoreError::Invalid(format!(
            "`{}` has media type `{t}`, not an image manifest",
            manifest_path.display()
        )));
    }
    let cfg_path = blob_file(&m.config.digest)?;
    let cfg = fs::read(&cfg_path).map_err(io_err("read", &cfg_path))?;
    if Digest::of(&cfg) != m.config.digest {
        return Err(StoreError::Corrupt {
            path: cfg_path,
            message: format!(
                "the config's digest is `{}` but the manifest says `{}`",
                Digest::of(&cfg),
                m.config.digest
            ),
        });
    }
    let diff_ids = diff_ids_of(&cfg, &cfg_path)?;
    if diff_ids.len() != m.layers.len() {
        return Err(StoreError::Corrupt {
            path: cfg_path,
            message: format!("the config lists {} diff_ids for {} layers", diff_ids.len(), m.layers.len()),
        });
    }
    store.put_blob(&cfg)?;
    let mut ids: Vec<String> = Vec::new();
    let mut size = 0;
    for (desc, diff_id) in m.layers.iter().zip(&diff_ids) {
        let src = blob_file(&desc.digest)?;
        let (id, lb) = import_layer(store, &src, diff_id, Some(&desc.digest), &ids)?;
        size += lb.diff_size;
        ids.push(id);
    }
    let manifest_digest = store.put_blob(manifest_bytes)?;
    let rec = ImageRecord { manifest_digest, config_digest: m.config.digest, layers: ids, size };
    store.put_record(&rec)?;
    Ok(rec)
}

/// Imports an image given as config bytes and layer files (a docker-archive entry); the
/// config is stored unchanged (same image id) and an OCI manifest is made for it.
pub(crate) fn import_config_and_layers(
    store: &Store,
    config: &[u8],
    config_path: &Path,
    layer_files: &[PathBuf],
) -> Result<ImageRecord, StoreError> {
    let diff_ids = diff_ids_of(config, config_path)?;
    if diff_ids.len() != layer_files.len() {
        return Err(StoreError::Corrupt {
            path: config_path.to_path_buf(),
            message: format!("the config lists {} diff_ids for {} layers", diff_ids.len(), layer_files.len()),
        });
    }
    store.put_blob(config)?;
    let mut ids: Vec<String> = Vec::new();
    let mut blobs = Vec::new();
    for (f, diff_id) in layer_files.iter().zip(&diff_ids) {
        let (id, lb) = import_layer(store, f, diff_id, None, &ids)?;
        ids.push(id);
        blobs.push(lb);
    }
    put_image(store, config, &ids, &blobs, &Default::default())
}
