//! Images: committing a layer chain as an image ([`commit`]), importing images from
//! manifests, docker-archive entries ([`import`]), archives and OCI layouts
//! ([`archive`]). Records and tags belong to the store ([`crate::store::ImageRecord`]);
//! the JSON documents to [`crate::oci`].
//!
//! [`put_image`] is the one place a manifest is built and stored, for committed and
//! imported images alike.

mod archive;
mod check;
mod commit;
mod created;
mod import;

pub use archive::{import_oci_layout, load_archive, parse_oci_layout_ref, resolve_image};
pub use check::{check_store, CheckReport};
pub(crate) use commit::pack_layer;
pub use commit::{commit_image, CommitOptions};
pub(crate) use created::{parse_rfc3339, rfc3339, rfc3339_nanos};
pub use import::materialize;
pub(crate) use import::open_maybe_gzip;

use crate::oci::{Descriptor, Manifest};
use crate::store::{ImageRecord, LayerBlob, Store, StoreError};

fn json_err(what: &str) -> impl FnOnce(serde_json::Error) -> StoreError + '_ {
    move |e| StoreError::Invalid(format!("Cannot encode {what}: {e}"))
}

/// Stores the config `cfg_bytes` (unchanged), an OCI manifest for it and the layer
/// `blobs`, and the image record naming the layer ids `layers`; returns the record.
pub(crate) fn put_image(
    store: &Store,
    cfg_bytes: &[u8],
    layers: &[String],
    blobs: &[LayerBlob],
) -> Result<ImageRecord, StoreError> {
    let config_digest = store.put_blob(cfg_bytes)?;
    let descs = blobs.iter().map(|b| Descriptor::new(&b.media_type, b.blob, b.blob_size)).collect();
    let manifest = Manifest::oci(config_digest, cfg_bytes.len() as u64, descs);
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
