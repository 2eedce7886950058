//! Images: committing a layer chain as an image ([`commit`]), importing images from
//! manifests, docker-archive entries ([`import`]), archives and OCI layouts
//! ([`archive`]). Records and tags belong to the store ([`crate::store::ImageRecord`]);
//! the JSON documents to [`crate::oci`].
//!
//! [`put_image`] is the one place a manifest is built and stored, for committed and
//! imported images alike; [`convert_image`] writes an image again with other exporter
//! options (compression, media types, annotations).

mod archive;
mod check;
mod commit;
mod convert;
mod created;
mod import;

pub use archive::{import_oci_layout, load_archive, parse_oci_layout_ref, resolve_image, resolve_image_for};
pub use check::{check_store, CheckReport};
pub(crate) use commit::pack_layer;
pub use commit::{commit_image, CommitOptions};
pub use convert::{convert_image, ImageOptions};
pub(crate) use created::{parse_rfc3339, rfc3339, rfc3339_nanos};
pub use import::materialize;
pub(crate) use import::open_maybe_gzip;

use std::collections::BTreeMap;

use crate::oci::{Compression, Descriptor, Manifest, MEDIA_DOCKER_CONFIG, MEDIA_DOCKER_MANIFEST};
use crate::store::{ImageRecord, LayerBlob, Store, StoreError};

fn json_err(what: &str) -> impl FnOnce(serde_json::Error) -> StoreError + '_ {
    move |e| StoreError::Invalid(format!("Cannot encode {what}: {e}"))
}

/// What a manifest says besides its blobs: its media types and annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestOptions {
    /// OCI media types (the default); `false`: Docker's v2 schema 2 ones
    /// (`oci-mediatypes=false`), except for zstd layers, which only OCI's name.
    pub oci_mediatypes: bool,
    /// The manifest's `annotations`.
    pub annotations: BTreeMap<String, String>,
}

impl Default for ManifestOptions {
    fn default() -> ManifestOptions {
        ManifestOptions { oci_mediatypes: true, annotations: BTreeMap::new() }
    }
}

/// Stores the config `cfg_bytes` (unchanged), a manifest for it and the layer `blobs`
/// (OCI, or Docker's as `opts` says; layer media types follow the manifest's, as BuildKit
/// converts them), and the image record naming the layer ids `layers`; returns the record.
pub(crate) fn put_image(
    store: &Store,
    cfg_bytes: &[u8],
    layers: &[String],
    blobs: &[LayerBlob],
    opts: &ManifestOptions,
) -> Result<ImageRecord, StoreError> {
    let zstd = blobs.iter().any(|b| Compression::of_media_type(&b.media_type) == Some(Compression::Zstd));
    let oci = opts.oci_mediatypes || zstd;
    let config_digest = store.put_blob(cfg_bytes)?;
    let descs = blobs
        .iter()
        .map(|b| {
            let media =
                Compression::of_media_type(&b.media_type).map_or(&b.media_type[..], |c| c.layer_media_type(oci));
            Descriptor::new(media, b.blob, b.blob_size)
        })
        .collect();
    let mut manifest = Manifest::oci(config_digest, cfg_bytes.len() as u64, descs);
    if !oci {
        manifest.media_type = Some(MEDIA_DOCKER_MANIFEST.to_string());
        manifest.config.media_type = MEDIA_DOCKER_CONFIG.to_string();
    }
    if !opts.annotations.is_empty() {
        manifest.annotations = Some(opts.annotations.clone());
    }
    let m_bytes = serde_json::to_vec(&manifest).map_err(json_err("the manifest"))?;
    let manifest_digest = store.put_blob(&m_bytes)?;
    let rec = ImageRecord {
        manifest_digest,
        config_digest,
        layers: layers.to_vec(),
        size: blobs.iter().map(|b| b.diff_size).sum(),
    };
    store.put_record(&rec)?;
    Ok(rec)
}
