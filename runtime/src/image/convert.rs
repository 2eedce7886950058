//! Writing an image again with other exporter options: its layers in another compression
//! and its manifest with other media types or annotations (`-o type=oci,compression=zstd`,
//! `oci-mediatypes=false`, `annotation.KEY=V`). The config is unchanged, so the image ID
//! stays; the layers are packed (or, with `force-compression`, re-compressed) once per
//! set of parameters, as [`super::commit`] remembers them.

use rayon::prelude::*;

use super::commit::pack_layer;
use super::{put_image, CommitOptions, ManifestOptions};
use crate::store::{diff_ids_of, ImageRecord, LayerBlob, Store, StoreError};

/// How an image is written by an exporter: the packing of its layers and its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageOptions {
    pub commit: CommitOptions,
    pub manifest: ManifestOptions,
}

/// The image `rec` written with `opts` (a new record; `rec` itself when nothing differs).
/// `opts.commit.source_date_epoch` must be the one `rec` was committed with, so its layers
/// pack to the same tars (checked against the config's diff_ids).
pub fn convert_image(store: &Store, rec: &ImageRecord, opts: &ImageOptions) -> Result<ImageRecord, StoreError> {
    let cfg = store.read_blob(&rec.config_digest)?;
    let cfg_path = store.blob_path(&rec.config_digest);
    let diff_ids = diff_ids_of(&cfg, &cfg_path)?;
    if diff_ids.len() != rec.layers.len() {
        return Err(StoreError::Corrupt {
            path: cfg_path,
            message: format!("the config lists {} diff_ids for {} layers", diff_ids.len(), rec.layers.len()),
        });
    }
    let blobs: Vec<LayerBlob> =
        rec.layers.par_iter().map(|id| pack_layer(store, id, &opts.commit)).collect::<Result<_, _>>()?;
    for ((b, want), id) in blobs.iter().zip(&diff_ids).zip(&rec.layers) {
        if b.diff_id != *want {
            return Err(StoreError::Invalid(format!(
                "Layer `{id}` packs to `{}`, but image `{}` lists `{want}`: it was committed with other options",
                b.diff_id, rec.manifest_digest
            )));
        }
    }
    put_image(store, &cfg, &rec.layers, &blobs, &opts.manifest)
}
