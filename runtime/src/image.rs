//! Images: pack a layer chain and an image config into OCI blobs (layers, config,
//! manifest) in the store.
//!
//! Each layer is packed once (its diff_id and blob are remembered in `layermeta/`), so a
//! layer shared by two images, or an imported base layer, is never packed again. Layers
//! are packed in parallel on rayon: tar → sha256 (diff_id) → gzip → sha256 (blob digest) in
//! one streaming pass to a temporary file. An empty layer (a step that changed nothing)
//! is left out and its history entry marked `empty_layer`, as BuildKit's exporter does.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use cairn_ir::{Digest, ImageConfig};
use rayon::prelude::*;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::store::{ImageRecord, LayerMeta, Store, StoreError};

pub const MT_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MT_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MT_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MT_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MT_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A writer that hashes what passes through.
struct HashWriter<W: Write> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn digest_of(h: Sha256) -> Digest {
    let out = h.finalize();
    let mut d = [0u8; 32];
    d.copy_from_slice(&out);
    Digest(d)
}

/// Options for packing.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// SOURCE_DATE_EPOCH: clamps file mtimes in new layers and sets `created`.
    pub epoch: Option<i64>,
}

/// Packs (or finds) the blob of layer `id`.
pub fn pack_layer(store: &Store, id: &str, clamp: Option<i64>) -> Result<LayerMeta, StoreError> {
    if let Some(m) = store.layer_meta(id) {
        if store.blob_path(&m.blob).exists() {
            return Ok(m);
        }
    }
    let dir = store.layer_path(id);
    let tmp = store.tmp_path("blob");
    let file = fs::File::create(&tmp).map_err(|e| StoreError(format!("Cannot write `{}`: {e}", tmp.display())))?;
    let compressed = HashWriter { inner: io::BufWriter::new(file), hash: Sha256::new(), len: 0 };
    let gz = flate2::write::GzEncoder::new(compressed, flate2::Compression::fast());
    let raw = HashWriter { inner: gz, hash: Sha256::new(), len: 0 };
    let fail = |e: io::Error| {
        let _ = fs::remove_file(&tmp);
        StoreError(format!("Cannot pack layer `{}`: {e}", dir.display()))
    };
    let raw = crate::layer::write_layer_tar(&dir, raw, clamp).map_err(fail)?;
    let diff_id = digest_of(raw.hash);
    let mut compressed = raw.inner.finish().map_err(fail)?;
    compressed.flush().map_err(fail)?;
    let blob = digest_of(compressed.hash);
    let meta = LayerMeta { diff_id, blob, size: compressed.len, media_type: MT_LAYER_GZIP.to_string() };
    store.put_blob_file(&tmp, &blob)?;
    store.set_layer_meta(id, &meta)?;
    Ok(meta)
}

/// RFC 3339 UTC time for a Unix timestamp.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Packs `layers` (bottom first) with `config` into an image in the store.
pub fn commit_image(store: &Store, layers: &[String], config: &ImageConfig, opts: &CommitOptions) -> Result<ImageRecord, StoreError> {
    let metas: Vec<Result<Option<LayerMeta>, StoreError>> = layers
        .par_iter()
        .map(|id| {
            if store.layer_meta(id).is_none() && crate::layer::is_empty_layer(&store.layer_path(id)).unwrap_or(false) {
                return Ok(None);
            }
            pack_layer(store, id, opts.epoch).map(Some)
        })
        .collect();
    let metas: Vec<Option<LayerMeta>> = metas.into_iter().collect::<Result<_, _>>()?;
    let mut config = config.clone();
    // History: the non-empty entries are the chain's layers in order; an empty layer's
    // entry becomes `empty_layer`. Only when the counts agree (another frontend may not
    // write history at all).
    let non_empty: Vec<usize> = config.history.iter().enumerate().filter(|(_, h)| !h.empty_layer).map(|(i, _)| i).collect();
    if non_empty.len() == metas.len() {
        for (k, m) in metas.iter().enumerate() {
            if m.is_none() {
                config.history[non_empty[k]].empty_layer = true;
            }
        }
    }
    let kept: Vec<(&String, &LayerMeta)> = layers.iter().zip(&metas).filter_map(|(id, m)| m.as_ref().map(|m| (id, m))).collect();
    config.rootfs.kind = "layers".into();
    config.rootfs.diff_ids = kept.iter().map(|(_, m)| m.diff_id.to_string()).collect();
    // `created`: SOURCE_DATE_EPOCH, else when the top layer was made — so a fully cached
    // rebuild gives the same image digest instead of a new one every time.
    let now = opts.epoch.unwrap_or_else(|| {
        let top = layers.last().and_then(|l| fs::metadata(store.layer_path(l)).ok()).and_then(|m| m.modified().ok());
        top.unwrap_or_else(std::time::SystemTime::now)
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    });
    if config.created.is_none() || opts.epoch.is_some() {
        config.created = Some(rfc3339(now));
    }
    let config_bytes = serde_json::to_vec(&config).map_err(|e| StoreError(format!("Cannot encode the image config: {e}")))?;
    let config_digest = store.put_blob(&config_bytes)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": config_digest.to_string(), "size": config_bytes.len()},
        "layers": kept.iter().map(|(_, m)| json!({"mediaType": m.media_type, "digest": m.blob.to_string(), "size": m.size})).collect::<Vec<_>>(),
    });
    let manifest_bytes = serde_json::to_vec(&manifest).expect("json");
    let manifest_digest = store.put_blob(&manifest_bytes)?;
    let size = manifest_bytes.len() as u64 + config_bytes.len() as u64 + kept.iter().map(|(_, m)| m.size).sum::<u64>();
    Ok(ImageRecord { manifest_digest, config_digest, layers: kept.iter().map(|(id, _)| (*id).clone()).collect(), size })
}

/// The config of an image in the store.
pub fn read_config(store: &Store, rec: &ImageRecord) -> Result<ImageConfig, StoreError> {
    let bytes = store.read_blob(&rec.config_digest)?;
    serde_json::from_slice(&bytes).map_err(|e| StoreError(format!("Corrupt image config {}: {e}", rec.config_digest)))
}

/// The manifest's layer descriptors `(media type, digest, size)`.
pub fn manifest_layers(store: &Store, rec: &ImageRecord) -> Result<Vec<(String, Digest, u64)>, StoreError> {
    let m: serde_json::Value = serde_json::from_slice(&store.read_blob(&rec.manifest_digest)?)
        .map_err(|e| StoreError(format!("Corrupt manifest {}: {e}", rec.manifest_digest)))?;
    let mut out = Vec::new();
    for l in m["layers"].as_array().cloned().unwrap_or_default() {
        let d: Digest = l["digest"].as_str().unwrap_or("").parse().map_err(|_| StoreError("Corrupt manifest layer digest".into()))?;
        out.push((l["mediaType"].as_str().unwrap_or(MT_LAYER_GZIP).to_string(), d, l["size"].as_u64().unwrap_or(0)));
    }
    Ok(out)
}

/// Is `p` a gzip stream?
pub fn is_gzip(p: &Path) -> bool {
    let mut magic = [0u8; 2];
    fs::File::open(p).and_then(|mut f| io::Read::read_exact(&mut f, &mut magic)).is_ok() && magic == [0x1f, 0x8b]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
