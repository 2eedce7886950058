//! Images: manifests and configs built from layer chains ([`commit_image`]), the store's
//! image records and tags ([`Store::tag_image`], [`Store::get_image`], …), and the import
//! of an image's manifest and blobs into layers ([`import_manifest`],
//! [`import_config_and_layers`]), which the archive loaders in [`crate::oci`] build on.
//!
//! **An image is exactly its chain.** A vertex result is a chain of layer directories;
//! committing an image packs each of them to one `tar+gzip` blob, so the manifest lists
//! the chain's layers in order and the config's `rootfs.diff_ids` lists the diff_ids of
//! exactly those layers. Nothing is squashed or re-diffed.
//!
//! **Packing.** Each layer is written by [`crate::layer::write_layer_tar`] through a
//! sha256 of the tar (the diff_id) into gzip ([`crate::gzip::ChunkedGzWriter`]: one member
//! per MiB, compressed on all cores, random-looking data stored) and through a sha256 of
//! the compressed bytes (the blob digest) into a temp file: one streaming pass, a few MiB
//! buffered.
//! Layers are packed in parallel on rayon's pool (CPU-bound work). The result is remembered
//! in the layer's metadata per (`source_date_epoch`, level), so a layer shared by several
//! images, or a cached layer exported again, is packed once. A layer imported from an
//! image keeps its original blob and is never re-packed, which keeps the imported
//! image's diff_ids valid: re-packing an extracted directory would give different bytes.
//!
//! **Import.** Layers are identified by diff_id: an imported layer whose diff_id the store
//! already knows is not extracted again, so base layers shared by many images exist once.
//! Every blob is verified against its digest and every layer against the config's diff_id.
//!
//! Default gzip level is 1: exports are on the critical path of every build that produces
//! an image, level 1 is several times faster than level 6 for ~10% larger blobs, and the
//! level is an option ([`CommitOptions::compression_level`]).

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use cairn_ir::{Digest, ImageConfig, RootFs};
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::layer;
use crate::store::{io_err, EagerWriteback, HashReader, HashWriter, LayerBlob, PackedBlob, Store, StoreError};

pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// OCI annotation with an image's tag (or full name) in an index.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation with the full image name in an index.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<DescriptorPlatform>,
}

/// The platform of a manifest in an index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescriptorPlatform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An OCI image manifest (Docker's v2 schema 2 manifest has the same shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An OCI image index (`index.json` of a layout, or a multi-platform image).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

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

/// How to pack layers when committing an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitOptions {
    /// Clamp file mtimes in layer tars to this time (reproducible builds).
    pub source_date_epoch: Option<u64>,
    /// gzip level 0–9.
    pub compression_level: u32,
}

impl Default for CommitOptions {
    fn default() -> CommitOptions {
        CommitOptions { source_date_epoch: None, compression_level: 1 }
    }
}

fn json_err(what: &str) -> impl FnOnce(serde_json::Error) -> StoreError + '_ {
    move |e| StoreError::Invalid(format!("Cannot encode {what}: {e}"))
}

/// Packs layer `id` (or returns the blob packed or imported earlier).
pub fn pack_layer(store: &Store, id: &str, opts: &CommitOptions) -> Result<LayerBlob, StoreError> {
    let dir = store.layer_path(id);
    if !store.layer_exists(id) {
        return Err(StoreError::NotFound(format!(
            "Layer `{id}` is not in the store (expected at `{}`)",
            dir.display()
        )));
    }
    let meta = store.layer_meta(id).unwrap_or_default();
    if let Some(b) = meta.imported.filter(|b| store.get_blob_path(&b.blob).is_some()) {
        return Ok(b);
    }
    let level = opts.compression_level.min(9);
    if let Some(p) = meta.packed.iter().find(|p| {
        p.source_date_epoch == opts.source_date_epoch && p.level == level && store.get_blob_path(&p.blob.blob).is_some()
    }) {
        return Ok(p.blob.clone());
    }
    let t = store.temp_file("pack")?;
    let file_w = HashWriter::new(io::BufWriter::with_capacity(256 * 1024, EagerWriteback::new(&t.file)));
    let mut tar_w = HashWriter::new(crate::gzip::ChunkedGzWriter::new(file_w, level));
    layer::write_layer_tar(&dir, &mut tar_w, opts.source_date_epoch).map_err(io_err("pack layer", &dir))?;
    let (diff_id, diff_size) = (tar_w.digest(), tar_w.count);
    let mut file_w = tar_w.into_inner().finish().map_err(io_err("compress", &t.path))?;
    file_w.flush().map_err(io_err("write", &t.path))?;
    let (blob, blob_size) = (file_w.digest(), file_w.count);
    drop(file_w);
    store.persist_blob(t, &blob)?;
    let lb = LayerBlob { diff_id, diff_size, blob, blob_size, media_type: MEDIA_OCI_LAYER_GZIP.to_string() };
    store.update_layer_meta(id, |m| {
        m.packed.retain(|p| !(p.source_date_epoch == opts.source_date_epoch && p.level == level));
        m.packed.push(PackedBlob { source_date_epoch: opts.source_date_epoch, level, blob: lb.clone() });
    })?;
    store.record_diff_id(&diff_id, id)?;
    Ok(lb)
}

/// Stores a manifest and its record for `layers` with their blobs; `config` is stored with
/// `rootfs.diff_ids` set to exactly the layers' diff_ids.
fn write_image(
    store: &Store,
    layers: &[String],
    blobs: &[LayerBlob],
    config: &ImageConfig,
) -> Result<ImageRecord, StoreError> {
    let mut cfg = config.clone();
    cfg.rootfs = RootFs { kind: "layers".to_string(), diff_ids: blobs.iter().map(|b| b.diff_id.to_string()).collect() };
    let cfg_bytes = serde_json::to_vec(&cfg).map_err(json_err("the image config"))?;
    let config_digest = store.put_blob(&cfg_bytes)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_OCI_MANIFEST.to_string()),
        config: Descriptor {
            media_type: MEDIA_OCI_CONFIG.to_string(),
            digest: config_digest,
            size: cfg_bytes.len() as u64,
            annotations: None,
            platform: None,
        },
        layers: blobs
            .iter()
            .map(|b| Descriptor {
                media_type: b.media_type.clone(),
                digest: b.blob,
                size: b.blob_size,
                annotations: None,
                platform: None,
            })
            .collect(),
        annotations: None,
    };
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
    set_created(store, &layers, &mut config, opts.source_date_epoch);
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
    write_image(store, layers, &blobs, &config)
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

/// Fills the config's `created`, and that of every history entry without one: the
/// `SOURCE_DATE_EPOCH` when given (it replaces a given `created`, and later history times
/// are clamped to it); otherwise a `created` the config already has (a frontend's choice)
/// or else the time the top layer was committed. That time is the ctime of the layer's
/// directory, set by the rename into `layers/` and never changed after, so a fully cached
/// rebuild gives the same config and image digest (SPEC.md §8).
fn set_created(store: &Store, layers: &[String], config: &mut ImageConfig, epoch: Option<u64>) {
    use std::os::unix::fs::MetadataExt;
    let stamp = match (epoch, &config.created) {
        (Some(e), _) => Some(rfc3339(e as i64)),
        (None, Some(given)) => Some(given.clone()),
        (None, None) => layers.last().and_then(|l| fs::metadata(store.layer_path(l)).ok()).map(|m| rfc3339(m.ctime())),
    };
    let Some(stamp) = stamp else { return };
    config.created = Some(stamp.clone());
    for h in &mut config.history {
        let later = epoch.is_some_and(|e| h.created.as_deref().and_then(parse_rfc3339).is_some_and(|t| t > e as i64));
        if h.created.is_none() || later {
            h.created = Some(stamp.clone());
        }
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) → days since 1970-01-01, the inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds as RFC 3339 in UTC (`2024-01-02T03:04:05Z`), the form image configs use.
pub fn rfc3339(secs: i64) -> String {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z", t / 3600, t / 60 % 60, t % 60)
}

/// Whole seconds of an RFC 3339 time (fractions dropped, offsets applied); `None` when it
/// is not one.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && &rest[3..4] == ":" => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (rest[1..3].parse::<i64>().ok()? * 3600 + rest[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

// -------------------------------------------------------------------- records and tags

/// `reference` normalized like Docker (`busybox` → `docker.io/library/busybox:latest`).
pub fn normalize_reference(reference: &str) -> Result<String, StoreError> {
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
        if let Some(r) = self.read_record(d)? {
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
    /// or a bare `sha256:…` (manifest or config digest).
    pub fn get_image(&self, reference: &str) -> Result<Option<ImageRecord>, StoreError> {
        if let Ok(d) = reference.parse::<Digest>() {
            return self.image_by_digest(&d);
        }
        let n = normalize_reference(reference)?;
        if let Some((_, d)) = n.split_once('@') {
            let d: Digest = d.parse().map_err(|e| StoreError::Invalid(format!("{e}")))?;
            return self.read_record(&d);
        }
        match self.read_tags()?.get(&n) {
            Some(d) => self.read_record(d),
            None => Ok(None),
        }
    }

    /// All tagged images, sorted by normalized name.
    pub fn list_images(&self) -> Result<Vec<(String, ImageRecord)>, StoreError> {
        let mut out = Vec::new();
        for (name, d) in self.read_tags()? {
            if let Some(r) = self.read_record(&d)? {
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

// -------------------------------------------------------------------- import

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
fn known_diff_size(store: &Store, id: &str, diff_id: &Digest) -> Option<u64> {
    let m = store.layer_meta(id).ok()?;
    m.imported.iter().chain(m.packed.iter().map(|p| &p.blob)).find(|b| b.diff_id == *diff_id).map(|b| b.diff_size)
}

/// A blob of this store's metadata that holds `diff_id` and still exists.
fn known_blob(store: &Store, id: &str, diff_id: &Digest) -> Option<LayerBlob> {
    let m = store.layer_meta(id).ok()?;
    m.imported
        .iter()
        .chain(m.packed.iter().map(|p| &p.blob))
        .find(|b| b.diff_id == *diff_id && store.get_blob_path(&b.blob).is_some())
        .cloned()
}

/// Opens a layer blob for reading its tar: gzip is decompressed, a plain tar read as is.
fn open_layer_blob(path: &Path) -> Result<(Box<dyn Read>, &'static str), StoreError> {
    let f = File::open(path).map_err(io_err("open", path))?;
    let mut r = BufReader::with_capacity(256 * 1024, f);
    let head = r.fill_buf().map_err(io_err("read", path))?.to_vec();
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok((Box::new(MultiGzDecoder::new(r)), MEDIA_OCI_LAYER_GZIP));
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(StoreError::Invalid(format!(
            "The layer `{}` is zstd-compressed; cairn imports gzip-compressed and uncompressed layers",
            path.display()
        )));
    }
    Ok((Box::new(r), MEDIA_OCI_LAYER_TAR))
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
        let gz = GzEncoder::new(file_w, Compression::new(CommitOptions::default().compression_level));
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
pub fn import_manifest(
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
pub fn import_config_and_layers(
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
    let config_digest = store.put_blob(config)?;
    let mut ids: Vec<String> = Vec::new();
    let mut blobs = Vec::new();
    for (f, diff_id) in layer_files.iter().zip(&diff_ids) {
        let (id, lb) = import_layer(store, f, diff_id, None, &ids)?;
        ids.push(id);
        blobs.push(lb);
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_OCI_MANIFEST.to_string()),
        config: Descriptor {
            media_type: MEDIA_OCI_CONFIG.to_string(),
            digest: config_digest,
            size: config.len() as u64,
            annotations: None,
            platform: None,
        },
        layers: blobs
            .iter()
            .map(|b| Descriptor {
                media_type: b.media_type.clone(),
                digest: b.blob,
                size: b.blob_size,
                annotations: None,
                platform: None,
            })
            .collect(),
        annotations: None,
    };
    let m_bytes = serde_json::to_vec(&manifest).map_err(json_err("the manifest"))?;
    let manifest_digest = store.put_blob(&m_bytes)?;
    let rec =
        ImageRecord { manifest_digest, config_digest, layers: ids, size: blobs.iter().map(|b| b.diff_size).sum() };
    store.put_record(&rec)?;
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::{parse_rfc3339, rfc3339};

    #[test]
    fn rfc3339_round_trips() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        for t in [0, 1, 59, 86_399, 951_782_400, 1_700_000_000, 4_102_444_800, -86_401] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t), "{t}");
        }
        assert_eq!(parse_rfc3339("2023-11-14T23:13:20.123456789+01:00"), Some(1_700_000_000));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20"), None);
        assert_eq!(parse_rfc3339("2023-13-14T22:13:20Z"), None);
        assert_eq!(parse_rfc3339("not a time at all, no"), None);
    }
}
