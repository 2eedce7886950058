//! The OCI JSON documents cairn writes and reads: descriptors, manifests, indexes, and the
//! `manifest.json` of a docker-archive. Plain data with serde; no I/O.

use std::collections::BTreeMap;

use cairn_ir::Digest;
use serde::{Deserialize, Serialize};

use super::media::{MEDIA_OCI_CONFIG, MEDIA_OCI_MANIFEST};

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

impl Descriptor {
    /// A descriptor without annotations or platform.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor { media_type: media_type.to_string(), digest, size, annotations: None, platform: None }
    }
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

impl Manifest {
    /// The OCI image manifest of a config (JSON of `config_size` bytes) and its layer
    /// blobs, bottom first: the one place cairn builds a manifest.
    pub fn oci(config: Digest, config_size: u64, layers: Vec<Descriptor>) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_OCI_MANIFEST.to_string()),
            config: Descriptor::new(MEDIA_OCI_CONFIG, config, config_size),
            layers,
            annotations: None,
        }
    }
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

/// One image of a docker-archive's `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DockerArchiveEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
}
