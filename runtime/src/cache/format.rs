//! The cache index (SPEC.md §10): its JSON document, the artifact manifest around it, and
//! the builder tags of one ref.

use std::collections::{BTreeMap, HashMap, HashSet};

use cairn_ir::Digest;
use cairn_registry::Descriptor;
use serde::{Deserialize, Serialize};

use crate::oci::MEDIA_OCI_MANIFEST;
use crate::store::LayerBlob;

use super::*;

pub(super) fn is_false(b: &bool) -> bool {
    !*b
}

/// One layer of a result chain: a blob with its diff_id, or an empty layer (a step that
/// changed nothing; no blob, the importer makes an empty layer).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CacheLayer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    #[serde(rename = "mediaType", default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(rename = "diffID", default, skip_serializing_if = "Option::is_none")]
    pub diff_id: Option<Digest>,
    #[serde(rename = "diffSize", default, skip_serializing_if = "Option::is_none")]
    pub diff_size: Option<u64>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub empty: bool,
}

impl CacheLayer {
    pub(super) fn empty() -> CacheLayer {
        CacheLayer { digest: None, media_type: String::new(), size: None, diff_id: None, diff_size: None, empty: true }
    }

    pub(super) fn of(b: &LayerBlob) -> CacheLayer {
        CacheLayer {
            digest: Some(b.blob),
            media_type: b.media_type.clone(),
            size: Some(b.blob_size),
            diff_id: Some(b.diff_id),
            diff_size: Some(b.diff_size),
            empty: false,
        }
    }

    /// The blob, when this is a non-empty layer with everything a reader needs.
    pub(super) fn blob(&self) -> Option<LayerBlob> {
        Some(LayerBlob {
            diff_id: self.diff_id?,
            diff_size: self.diff_size.unwrap_or(0),
            blob: self.digest?,
            blob_size: self.size?,
            media_type: self.media_type.clone(),
        })
    }
}

/// Records by cache key (hex): the output chains of one vertex, output 0 first, each
/// bottom layer first.
pub type Records = BTreeMap<String, Vec<Vec<CacheLayer>>>;

/// The cache index as stored (SPEC.md §10).
#[derive(Serialize, Deserialize)]
pub(super) struct IndexDoc {
    version: u32,
    #[serde(rename = "keyVersion")]
    key_version: String,
    layers: Vec<CacheLayer>,
    records: BTreeMap<String, Vec<Vec<usize>>>,
}

/// The index bytes of `records`: layers deduplicated, in order of first use.
pub fn encode_index(records: &Records) -> Vec<u8> {
    let mut layers: Vec<CacheLayer> = Vec::new();
    let mut at: HashMap<CacheLayer, usize> = HashMap::new();
    let mut out = BTreeMap::new();
    for (key, chains) in records {
        let chains = chains
            .iter()
            .map(|c| {
                c.iter()
                    .map(|l| {
                        *at.entry(l.clone()).or_insert_with(|| {
                            layers.push(l.clone());
                            layers.len() - 1
                        })
                    })
                    .collect()
            })
            .collect();
        out.insert(key.clone(), chains);
    }
    let doc =
        IndexDoc { version: FORMAT_VERSION, key_version: crate::solve::key::KEY_VERSION.into(), layers, records: out };
    serde_json::to_vec(&doc).expect("the index serializes")
}

/// Reads an index. Records under another key version are dropped (their keys cannot
/// match); an unknown format version is an error naming the one supported.
pub fn decode_index(bytes: &[u8]) -> Result<Records, CacheError> {
    let doc: IndexDoc =
        serde_json::from_slice(bytes).map_err(|e| CacheError::Invalid(format!("Malformed cache index: {e}")))?;
    if doc.version != FORMAT_VERSION {
        return Err(CacheError::Invalid(format!(
            "Cache index version {} is not supported (this cairn reads version {FORMAT_VERSION})",
            doc.version
        )));
    }
    if doc.key_version != crate::solve::key::KEY_VERSION {
        return Ok(Records::new());
    }
    for l in &doc.layers {
        if !l.empty && l.blob().is_none() {
            return Err(CacheError::Invalid("Malformed cache index: a layer has no digest, size or diffID".into()));
        }
    }
    let mut out = Records::new();
    for (key, chains) in doc.records {
        let chains = chains
            .iter()
            .map(|c| c.iter().map(|&i| doc.layers.get(i).cloned()).collect::<Option<Vec<_>>>())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| CacheError::Invalid(format!("Malformed cache index: record `{key}` names no layer")))?;
        out.insert(key, chains);
    }
    Ok(out)
}

/// The distinct blobs of `records`, in order of first use.
pub(super) fn blobs_of(records: &Records) -> Vec<LayerBlob> {
    let mut seen = HashSet::new();
    records.values().flatten().flatten().filter_map(CacheLayer::blob).filter(|b| seen.insert(b.blob)).collect()
}

/// The manifest of the cache artifact: config = the index, layers = every blob it names,
/// then the cache mounts.
pub(super) fn manifest_of(index: &[u8], records: &Records, mounts: &[mounts::MountBlob]) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = blobs_of(records)
        .iter()
        .map(|b| serde_json::json!({"mediaType": b.media_type, "digest": b.blob.to_string(), "size": b.blob_size}))
        .chain(mounts.iter().map(mounts::MountBlob::layer))
        .collect();
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": MEDIA_CACHE_INDEX, "digest": Digest::of(index).to_string(), "size": index.len()},
        "layers": layers,
    });
    serde_json::to_vec(&m).expect("the manifest serializes")
}

/// The config descriptor of a cache manifest, or why it is not one.
pub(super) fn index_descriptor(manifest: &[u8], what: &str) -> Result<Descriptor, CacheError> {
    #[derive(Deserialize)]
    struct M {
        config: Descriptor,
    }
    let m: M = serde_json::from_slice(manifest)
        .map_err(|e| CacheError::Invalid(format!("`{what}` is not a cache manifest: {e}")))?;
    if m.config.media_type != MEDIA_CACHE_INDEX {
        return Err(CacheError::Invalid(format!(
            "`{what}` is not a cairn cache (its config is `{}`, not `{MEDIA_CACHE_INDEX}`)",
            m.config.media_type
        )));
    }
    if m.config.size > MAX_INDEX {
        return Err(CacheError::Invalid(format!("The cache index of `{what}` is larger than {MAX_INDEX} bytes")));
    }
    Ok(m.config)
}

/// The inline index of an image manifest (its annotation [`ANNOTATION_INLINE`]), `None`
/// when `manifest` is not an image manifest with one (a cache artifact, say).
pub(super) fn inline_index(manifest: &[u8], what: &str) -> Result<Option<String>, CacheError> {
    #[derive(Deserialize)]
    struct M {
        #[serde(default)]
        manifests: Option<serde_json::Value>,
        #[serde(default)]
        annotations: Option<BTreeMap<String, String>>,
    }
    let m: M = serde_json::from_slice(manifest)
        .map_err(|e| CacheError::Invalid(format!("`{what}` is not a manifest: {e}")))?;
    if m.manifests.is_some() {
        return Err(CacheError::Invalid(format!(
            "`{what}` is an image index; inline cache is read from a single-platform image's manifest"
        )));
    }
    let text = m.annotations.and_then(|mut a| a.remove(ANNOTATION_INLINE));
    if text.as_ref().is_some_and(|t| t.len() as u64 > MAX_INDEX) {
        return Err(CacheError::Invalid(format!(
            "The inline cache index of `{what}` is larger than {MAX_INDEX} bytes"
        )));
    }
    Ok(text)
}

/// The tag builder `id` writes for the ref tag `tag`.
pub(super) fn builder_tag(tag: &str, id: &str) -> String {
    format!("{tag}.{id}")
}

/// Whether `t` is a tag some builder wrote for `tag`.
pub(super) fn is_builder_tag(tag: &str, t: &str) -> bool {
    t.strip_prefix(tag)
        .and_then(|r| r.strip_prefix('.'))
        .is_some_and(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}
