//! Committing an image: packing a layer chain into config + manifest blobs.
//!
//! **An image is exactly its chain.** Each layer of the chain is packed to one
//! `tar+gzip` blob, so the manifest lists the chain's layers in order and the config's
//! `rootfs.diff_ids` lists the diff_ids of exactly those layers (empty layers this store
//! made are dropped, their history entries marked). Nothing is squashed or re-diffed.
//!
//! **Packing.** Each layer is written by [`crate::layer::write_layer_tar`] through a
//! sha256 of the tar (the diff_id) into the compressor ([`crate::compress::Encoder`]:
//! gzip by default, [`crate::gzip::ChunkedGzWriter`], one member per MiB, compressed on
//! all cores, random-looking data stored; or zstd, or none) and through a sha256 of the
//! compressed bytes (the blob digest) into a temp file: one streaming pass, a few MiB
//! buffered. Layers are packed in parallel on rayon's pool (CPU-bound work). The result is
//! remembered in the layer's metadata per (`source_date_epoch`, compression, level), so a
//! layer shared by several images, or a cached layer exported again, is packed once. A
//! layer imported from an image keeps its original blob and is never re-packed, which
//! keeps the imported image's diff_ids valid: re-packing an extracted directory would give
//! different bytes. Only `force-compression` with another compression changes it, and then
//! by decompressing the original blob into the new compressor (same tar, same diff_id).
//!
//! Default gzip level is 1: exports are on the critical path of every build that produces
//! an image, level 1 is several times faster than level 6 for ~10% larger blobs, and the
//! level is an option ([`CommitOptions::compression_level`]).

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};

use cairn_ir::{ImageConfig, RootFs};
use rayon::prelude::*;

use super::created::rfc3339;
use super::{json_err, put_image};
use crate::compress::{Compression, Encoder};
use crate::layer;
use crate::store::{io_err, EagerWriteback, HashWriter, ImageRecord, LayerBlob, PackedBlob, Store, StoreError};

/// How to pack layers when committing an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitOptions {
    /// Clamp file mtimes in layer tars to this time (reproducible builds).
    pub source_date_epoch: Option<u64>,
    /// How layer blobs are compressed (`-o …,compression=`).
    pub compression: Compression,
    /// The compression level (gzip 0–9, zstd 1–22); `None`: the compression's default.
    pub compression_level: Option<u32>,
    /// Re-compress imported layers whose blobs have another compression
    /// (`force-compression=true`); otherwise they are kept as they are.
    pub force_compression: bool,
}

impl CommitOptions {
    /// The effective level.
    pub fn level(&self) -> u32 {
        self.compression.clamp_level(self.compression_level.unwrap_or(self.compression.default_level()))
    }
}

/// Packs layer `id` (or returns the blob packed or imported earlier).
pub(crate) fn pack_layer(store: &Store, id: &str, opts: &CommitOptions) -> Result<LayerBlob, StoreError> {
    let dir = store.layer_path(id);
    let meta = store.layer_meta(id).unwrap_or_default();
    let (compression, level) = (opts.compression, opts.level());
    let same = |p: &&PackedBlob| {
        p.source_date_epoch == opts.source_date_epoch
            && p.compression == compression
            && p.level == level
            && store.get_blob_path(&p.blob.blob).is_some()
    };
    // An imported blob is the layer as is; a pull's lazy layer needs no bytes for that.
    if let Some(b) = meta
        .imported
        .as_ref()
        .filter(|b| store.get_blob_path(&b.blob).is_some() || store.remote_blob(&b.blob).is_some())
    {
        let kept = !opts.force_compression || Compression::of_media_type(&b.media_type) == Some(compression);
        if kept {
            return Ok(b.clone());
        }
        if let Some(p) = meta.packed.iter().find(same) {
            return Ok(p.blob.clone());
        }
        // `force-compression`: the original tar, decompressed, into the new compressor.
        let src = store.ensure_blob(&b.blob, &|_, _, _| {})?;
        let f = fs::File::open(&src).map_err(io_err("open", &src))?;
        let (mut r, _) =
            crate::compress::decoder(io::BufReader::with_capacity(256 * 1024, f)).map_err(io_err("read", &src))?;
        let lb = pack_with(store, opts, &src, |w| io::copy(&mut r, w).map(|_| ()))?;
        if lb.diff_id != b.diff_id {
            return Err(StoreError::Corrupt {
                path: src,
                message: format!("the layer's content digest is `{}`, not its diff_id `{}`", lb.diff_id, b.diff_id),
            });
        }
        return remember(store, id, opts, lb);
    }
    if !store.layer_exists(id) {
        return Err(StoreError::NotFound(format!(
            "Layer `{id}` is not in the store (expected at `{}`)",
            dir.display()
        )));
    }
    if let Some(p) = meta.packed.iter().find(same) {
        return Ok(p.blob.clone());
    }
    let lb = pack_with(store, opts, &dir, |w| layer::write_layer_tar(&dir, w, opts.source_date_epoch))?;
    store.record_diff_id(&lb.diff_id, id)?;
    remember(store, id, opts, lb)
}

/// Records `lb` as layer `id`'s blob packed with `opts`.
fn remember(store: &Store, id: &str, opts: &CommitOptions, lb: LayerBlob) -> Result<LayerBlob, StoreError> {
    let (compression, level) = (opts.compression, opts.level());
    store.update_layer_meta(id, |m| {
        m.packed.retain(|p| {
            !(p.source_date_epoch == opts.source_date_epoch && p.compression == compression && p.level == level)
        });
        m.packed.push(PackedBlob { source_date_epoch: opts.source_date_epoch, compression, level, blob: lb.clone() });
    })?;
    Ok(lb)
}

/// Writes a layer tar (given by `write_tar`) through a sha256 (the diff_id) and the
/// compressor of `opts` into a new blob; `what` names the source in errors.
fn pack_with(
    store: &Store,
    opts: &CommitOptions,
    what: &std::path::Path,
    write_tar: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<LayerBlob, StoreError> {
    let t = store.temp_file("pack")?;
    let file_w = HashWriter::new(io::BufWriter::with_capacity(256 * 1024, EagerWriteback::new(&t.file)));
    let enc = Encoder::new(file_w, opts.compression, opts.level()).map_err(io_err("compress", &t.path))?;
    let mut tar_w = HashWriter::new(enc);
    write_tar(&mut tar_w).map_err(io_err("pack layer", what))?;
    let (diff_id, diff_size) = (tar_w.digest(), tar_w.count);
    let mut file_w = tar_w.into_inner().finish().map_err(io_err("compress", &t.path))?;
    file_w.flush().map_err(io_err("write", &t.path))?;
    let (blob, blob_size) = (file_w.digest(), file_w.count);
    drop(file_w);
    store.persist_blob(t, &blob)?;
    let media_type = opts.compression.layer_media_type(true).to_string();
    Ok(LayerBlob { diff_id, diff_size, blob, blob_size, media_type })
}

/// Packs `layers` (bottom first, in parallel) and stores the config and an OCI manifest
/// as blobs; returns the (untagged) image record. Layers this store made that hold
/// nothing are left out (their history entries marked `empty_layer`), `created` times are
/// filled as [`set_created`] says and `rootfs` is set; everything else in `config` stays.
pub fn commit_image(
    store: &Store,
    layers: &[String],
    config: &ImageConfig,
    opts: &CommitOptions,
) -> Result<ImageRecord, StoreError> {
    let mut config = config.clone();
    let layers = drop_empty_layers(store, layers, &mut config.history);
    let layers = &layers[..];
    let mut unique: Vec<&String> = Vec::new();
    for l in layers {
        if !unique.contains(&l) {
            unique.push(l);
        }
    }
    let packed: Vec<(String, LayerBlob)> = unique
        .par_iter()
        .map(|id| pack_layer(store, id, opts).map(|b| ((*id).clone(), b)))
        .collect::<Result<_, _>>()?;
    let by_id: HashMap<String, LayerBlob> = packed.into_iter().collect();
    let blobs: Vec<LayerBlob> = layers.iter().map(|id| by_id[id].clone()).collect();
    config.rootfs =
        RootFs { kind: "layers".to_string(), diff_ids: blobs.iter().map(|b| b.diff_id.to_string()).collect() };
    let config = set_created(store, layers, config, opts.source_date_epoch, now())?;
    let cfg_bytes = serde_json::to_vec(&config).map_err(json_err("the image config"))?;
    put_image(store, &cfg_bytes, layers, &blobs, &Default::default())
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// `config` with its `created` filled, and that of every history entry without one (the
/// entries this build added; those inherited from the base image keep their own times,
/// as in BuildKit). The time is, in order:
/// - `SOURCE_DATE_EPOCH` when given;
/// - a `created` the config already has (a frontend's explicit choice);
/// - the `created` of an image already in the store that has exactly these layers and
///   would have exactly this config if it took that image's time: a fully cached
///   rebuild then gives the same image (and digest) instead of a copy that differs
///   only in its date. The date stays true: nothing in the image changed since then;
/// - otherwise `now`, the build time.
fn set_created(
    store: &Store,
    layers: &[String],
    config: ImageConfig,
    epoch: Option<u64>,
    now: i64,
) -> Result<ImageConfig, StoreError> {
    let stamped = |stamp: &str| {
        let mut c = config.clone();
        c.created = Some(stamp.to_string());
        for h in &mut c.history {
            if h.created.is_none() {
                h.created = Some(stamp.to_string());
            }
        }
        c
    };
    if let Some(e) = epoch {
        return Ok(stamped(&rfc3339(e as i64)));
    }
    if let Some(given) = &config.created {
        return Ok(stamped(given));
    }
    for digest in store.record_digests()? {
        let Some(rec) = store.read_record(&digest)? else { continue };
        if rec.layers != layers {
            continue;
        }
        let Ok(previous) = store.image_config(&rec) else { continue };
        let Some(stamp) = previous.created.as_deref() else { continue };
        let candidate = stamped(stamp);
        let bytes = serde_json::to_vec(&candidate).map_err(json_err("the image config"))?;
        if cairn_ir::Digest::of(&bytes) == rec.config_digest {
            return Ok(candidate);
        }
    }
    Ok(stamped(&rfc3339(now)))
}

/// `layers` without the layers this store made that hold nothing (a step that changed no
/// file); the history entry of each dropped layer gets `empty_layer: true`, as BuildKit's
/// exporter does (SPEC.md §8). Imported layers are kept as they are: their blobs are part
/// of the base image. History is only touched when its non-empty entries match the layers.
fn drop_empty_layers(store: &Store, layers: &[String], history: &mut [cairn_ir::History]) -> Vec<String> {
    let is_empty = |id: &String| {
        store.layer_meta(id).map_or(true, |m| m.imported.is_none())
            && fs::read_dir(store.layer_path(id)).is_ok_and(|mut d| d.next().is_none())
    };
    let empty: Vec<bool> = layers.iter().map(is_empty).collect();
    if !empty.contains(&true) {
        return layers.to_vec();
    }
    let slots: Vec<usize> = (0..history.len()).filter(|&i| !history[i].empty_layer).collect();
    if slots.len() == layers.len() {
        for (k, _) in empty.iter().enumerate().filter(|(_, e)| **e) {
            history[slots[k]].empty_layer = true;
        }
    }
    layers.iter().zip(&empty).filter(|(_, e)| !**e).map(|(l, _)| l.clone()).collect()
}
