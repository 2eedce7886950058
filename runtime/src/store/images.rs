//! Image records and tags: which images the store holds (a record per manifest digest:
//! config, layer ids, size) and the names (normalized references) that point at them.

use std::path::Path;

use cairn_ir::{Digest, ImageConfig};
use serde::{Deserialize, Serialize};

use super::{LayerBlob, Store, StoreError};
use crate::oci::Manifest;

/// An image in the store: its manifest and config blobs and its layer chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    /// Layer ids, bottom first (one per manifest layer).
    pub layers: Vec<String>,
    /// Uncompressed size of the layers (what `docker images` shows).
    pub size: u64,
}

/// `reference` normalized like Docker (`busybox` → `docker.io/library/busybox:latest`).
pub(crate) fn normalize_reference(reference: &str) -> Result<String, StoreError> {
    cairn_ir::reference::normalize(reference)
        .map_err(|e| StoreError::Invalid(format!("Invalid image reference `{reference}`: {e}")))
}

impl Store {
    /// Tags `rec` as `name` (normalized; the record is stored if it was not); returns the
    /// normalized name.
    pub fn tag_image(&self, name: &str, rec: &ImageRecord) -> Result<String, StoreError> {
        let n = normalize_reference(name)?;
        if n.contains('@') {
            return Err(StoreError::Invalid(format!("Cannot tag an image as `{name}`: a tag cannot contain a digest")));
        }
        if self.read_record(&rec.manifest_digest)?.as_ref() != Some(rec) {
            self.put_record(rec)?;
        }
        self.update_tags(|t| {
            t.insert(n.clone(), rec.manifest_digest);
        })?;
        Ok(n)
    }

    /// An image record by manifest digest, or by config digest (an image id).
    fn image_by_digest(&self, d: &Digest) -> Result<Option<ImageRecord>, StoreError> {
        if let Some(r) = self.record_for(d, None)? {
            return Ok(Some(r));
        }
        for m in self.record_digests()? {
            if let Some(r) = self.read_record(&m)? {
                if r.config_digest == *d {
                    return Ok(Some(r));
                }
            }
        }
        Ok(None)
    }

    /// Looks an image up by reference: a name (`busybox`, `foo/bar:1`,
    /// `localhost:5000/x`, normalized like Docker), `name@sha256:…` (by manifest digest)
    /// or a bare `sha256:…` (manifest or config digest). A name or digest of a
    /// multi-platform image gives this machine's manifest, else the first
    /// ([`Store::get_image_for`] picks another).
    pub fn get_image(&self, reference: &str) -> Result<Option<ImageRecord>, StoreError> {
        if let Ok(d) = reference.parse::<Digest>() {
            return self.image_by_digest(&d);
        }
        let n = normalize_reference(reference)?;
        if let Some((_, d)) = n.split_once('@') {
            let d: Digest = d.parse().map_err(|e| StoreError::Invalid(format!("{e}")))?;
            return self.record_for(&d, None);
        }
        match self.read_tags()?.get(&n) {
            Some(d) => self.record_for(d, None),
            None => Ok(None),
        }
    }

    /// All tagged images, sorted by normalized name (a multi-platform image by its
    /// manifest for this machine, else its first).
    pub fn list_images(&self) -> Result<Vec<(String, ImageRecord)>, StoreError> {
        let mut out = Vec::new();
        for (name, d) in self.read_tags()? {
            if let Some(r) = self.record_for(&d, None)? {
                out.push((name, r));
            }
        }
        Ok(out)
    }

    /// Removes a tag (or, for a digest reference, every tag of that image); returns the
    /// names removed. The image's data goes at the next [`Store::prune`].
    pub fn remove_image(&self, reference: &str) -> Result<Vec<String>, StoreError> {
        let digest = match reference.parse::<Digest>() {
            Ok(d) => d,
            Err(_) => {
                let n = normalize_reference(reference)?;
                let Some((_, d)) = n.split_once('@') else {
                    if !self.update_tags(|t| t.remove(&n).is_some())? {
                        return Err(StoreError::NotFound(format!("No such image `{reference}`")));
                    }
                    return Ok(vec![n]);
                };
                d.parse::<Digest>().map_err(|e| StoreError::Invalid(format!("{e}")))?
            }
        };
        let Some(rec) = self.image_by_digest(&digest)? else {
            return Err(StoreError::NotFound(format!("No such image `{reference}`")));
        };
        self.update_tags(|t| {
            let names: Vec<String> =
                t.iter().filter(|(_, m)| **m == rec.manifest_digest).map(|(n, _)| n.clone()).collect();
            for n in &names {
                t.remove(n);
            }
            names
        })
    }

    /// The config of an image in the store.
    pub fn image_config(&self, rec: &ImageRecord) -> Result<ImageConfig, StoreError> {
        let bytes = self.read_blob(&rec.config_digest)?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path: self.blob_path(&rec.config_digest),
            message: format!("not an image config: {e}"),
        })
    }

    /// The parsed manifest of an image in the store.
    pub fn image_manifest(&self, rec: &ImageRecord) -> Result<Manifest, StoreError> {
        let bytes = self.read_blob(&rec.manifest_digest)?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path: self.blob_path(&rec.manifest_digest),
            message: format!("not a manifest: {e}"),
        })
    }

    /// The layer blobs of an image (from the layers' metadata, matched by blob digest
    /// against the manifest).
    pub fn image_layer_blobs(&self, rec: &ImageRecord) -> Result<Vec<LayerBlob>, StoreError> {
        let m = self.image_manifest(rec)?;
        let diff_ids = diff_ids_of(&self.read_blob(&rec.config_digest)?, &self.blob_path(&rec.config_digest))?;
        if m.layers.len() != rec.layers.len() || diff_ids.len() != rec.layers.len() {
            return Err(StoreError::Corrupt {
                path: self.blob_path(&rec.manifest_digest),
                message: format!(
                    "the manifest has {} layers and the config {} diff_ids, the record {} layers",
                    m.layers.len(),
                    diff_ids.len(),
                    rec.layers.len()
                ),
            });
        }
        let mut out = Vec::new();
        for ((desc, id), diff_id) in m.layers.iter().zip(&rec.layers).zip(diff_ids) {
            out.push(LayerBlob {
                diff_id,
                diff_size: known_diff_size(self, id, &diff_id).unwrap_or(0),
                blob: desc.digest,
                blob_size: desc.size,
                media_type: desc.media_type.clone(),
            });
        }
        Ok(out)
    }
}

/// `rootfs.diff_ids` of a config given as JSON bytes (parsed loosely, so configs with
/// fields cairn does not model still import).
pub(crate) fn diff_ids_of(config: &[u8], path: &Path) -> Result<Vec<Digest>, StoreError> {
    let corrupt = |m: String| StoreError::Corrupt { path: path.to_path_buf(), message: m };
    let v: serde_json::Value = serde_json::from_slice(config).map_err(|e| corrupt(format!("not JSON: {e}")))?;
    let ids = v
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(|d| d.as_array())
        .ok_or_else(|| corrupt("the image config has no `rootfs.diff_ids`".into()))?;
    ids.iter()
        .map(|d| {
            d.as_str()
                .and_then(|s| s.parse::<Digest>().ok())
                .ok_or_else(|| corrupt(format!("`{d}` is not a sha256 diff_id")))
        })
        .collect()
}

/// The diff size cairn recorded for `diff_id` on layer `id`.
pub(crate) fn known_diff_size(store: &Store, id: &str, diff_id: &Digest) -> Option<u64> {
    let m = store.layer_meta(id).ok()?;
    m.imported.iter().chain(m.packed.iter().map(|p| &p.blob)).find(|b| b.diff_id == *diff_id).map(|b| b.diff_size)
}
