//! Manifest media types, `Descriptor`, and what `resolve` needs from manifests and indexes:
//! the config and layer descriptors, and the platform choice in an index.

use cairn_ir::{Digest, Platform};
use serde::{Deserialize, Serialize};

use crate::RegistryError;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The `Accept` header of manifest requests: every manifest kind cairn reads.
pub(crate) const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Whether `media_type` is an index (OCI index or Docker manifest list).
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// A content descriptor as manifests and indexes write it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<DescriptorPlatform>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor { media_type: media_type.to_string(), digest, size, platform: None }
    }
}

/// The `platform` of an index entry, field names as the OCI spec spells them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescriptorPlatform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl From<&Platform> for DescriptorPlatform {
    fn from(p: &Platform) -> DescriptorPlatform {
        DescriptorPlatform { architecture: p.architecture.clone(), os: p.os.clone(), variant: p.variant.clone() }
    }
}

/// The parts of a manifest or index the client reads.
#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

/// A manifest or index as far as the client understands it.
#[derive(Debug)]
pub(crate) enum Parsed {
    Index(Vec<Descriptor>),
    Manifest { config: Descriptor, layers: Vec<Descriptor> },
}

/// The media type of `bytes`: the `Content-Type` the registry sent when it names a known
/// type, else the document's own `mediaType`, else guessed from its shape (OCI allows
/// manifests without `mediaType`).
pub(crate) fn media_type_of(content_type: Option<&str>, bytes: &[u8]) -> Result<String, RegistryError> {
    let ct = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_string());
    if let Some(ct) =
        ct.filter(|c| [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST].contains(&c.as_str()))
    {
        return Ok(ct);
    }
    let raw: Raw =
        serde_json::from_slice(bytes).map_err(|e| RegistryError::Invalid(format!("Malformed manifest: {e}")))?;
    if let Some(mt) = raw.media_type {
        return Ok(mt);
    }
    if raw.schema_version == 1 {
        return Ok(DOCKER_SCHEMA1.to_string());
    }
    Ok(if raw.manifests.is_some() { OCI_INDEX } else { OCI_MANIFEST }.to_string())
}

pub(crate) fn parse(media_type: &str, bytes: &[u8]) -> Result<Parsed, RegistryError> {
    if media_type == DOCKER_SCHEMA1 || media_type == DOCKER_SCHEMA1_SIGNED {
        return Err(RegistryError::Invalid(
            "Docker image manifest schema 1 is not supported (deprecated since 2017); push the image again with a current tool"
                .into(),
        ));
    }
    let raw: Raw =
        serde_json::from_slice(bytes).map_err(|e| RegistryError::Invalid(format!("Malformed manifest: {e}")))?;
    if is_index(media_type) {
        return Ok(Parsed::Index(raw.manifests.unwrap_or_default()));
    }
    if media_type != OCI_MANIFEST && media_type != DOCKER_MANIFEST {
        return Err(RegistryError::Invalid(format!("Unsupported manifest media type `{media_type}`")));
    }
    let config = raw.config.ok_or_else(|| RegistryError::Invalid("Malformed manifest: no `config`".into()))?;
    Ok(Parsed::Manifest { config, layers: raw.layers.unwrap_or_default() })
}

/// `(os, architecture, variant)` with the defaults Docker fills in: `arm64` is `arm64/v8`,
/// `arm` is `arm/v7`, and amd64's `v1` is the same as no variant.
fn normalized(os: &str, arch: &str, variant: &str) -> (String, String, String) {
    let arch = match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let variant = match (arch, variant) {
        ("arm64", "") => "v8",
        ("arm", "") => "v7",
        ("amd64", "v1") => "",
        (_, v) => v,
    };
    (os.to_string(), arch.to_string(), variant.to_string())
}

/// The entry of an index for `want`: the first whose normalized os/architecture/variant
/// equal the wanted ones. Entries without a platform and `unknown/unknown` ones
/// (attestations) never match.
pub(crate) fn select_platform<'a>(entries: &'a [Descriptor], want: &Platform) -> Option<&'a Descriptor> {
    let w = normalized(&want.os, &want.architecture, &want.variant);
    entries.iter().find(|d| d.platform.as_ref().is_some_and(|p| normalized(&p.os, &p.architecture, &p.variant) == w))
}

/// `os/arch[/variant]` of each entry, for the "no matching platform" error.
pub(crate) fn platforms_of(entries: &[Descriptor]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .filter(|p| p.os != "unknown")
        .map(|p| {
            if p.variant.is_empty() {
                format!("{}/{}", p.os, p.architecture)
            } else {
                format!("{}/{}/{}", p.os, p.architecture, p.variant)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(arch: &str, variant: &str, n: u8) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: Digest([n; 32]),
            size: 1,
            platform: Some(DescriptorPlatform {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.into(),
            }),
        }
    }

    #[test]
    fn platform_selection_fills_docker_defaults() {
        let entries = vec![entry("amd64", "", 1), entry("arm64", "v8", 2), entry("arm", "v6", 3), entry("arm", "", 4)];
        let pick = |p: &str| select_platform(&entries, &Platform::parse(p).unwrap()).map(|d| d.digest.0[0]);
        assert_eq!(pick("linux/amd64"), Some(1));
        assert_eq!(pick("linux/arm64"), Some(2));
        assert_eq!(pick("linux/arm64/v8"), Some(2));
        assert_eq!(pick("linux/arm/v6"), Some(3));
        assert_eq!(pick("linux/arm/v7"), Some(4));
        assert_eq!(pick("linux/arm"), Some(4));
        assert_eq!(pick("linux/s390x"), None);
        assert_eq!(pick("windows/amd64"), None);
        let only_v8 = vec![entry("arm64", "", 9)];
        assert_eq!(
            select_platform(&only_v8, &Platform::parse("linux/arm64/v8").unwrap()).map(|d| d.digest.0[0]),
            Some(9)
        );
        assert_eq!(platforms_of(&entries), ["linux/amd64", "linux/arm64/v8", "linux/arm/v6", "linux/arm"]);
    }

    #[test]
    fn media_types_from_header_document_or_shape() {
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(media_type_of(None, idx).unwrap(), OCI_INDEX);
        assert_eq!(media_type_of(Some("application/json"), idx).unwrap(), OCI_INDEX);
        assert_eq!(media_type_of(Some(&format!("{DOCKER_MANIFEST}; charset=utf-8")), b"{}").unwrap(), DOCKER_MANIFEST);
        let s1 = br#"{"schemaVersion":1,"name":"x"}"#;
        let mt = media_type_of(None, s1).unwrap();
        assert!(parse(&mt, s1).unwrap_err().to_string().contains("schema 1"));
    }
}
