//! Multi-platform images in the store: an OCI image index is kept as what it is, a blob,
//! and a tag may point at it as it points at a manifest. Its manifests are ordinary image
//! records. No record type of its own: the index blob already says which manifest is for
//! which platform, and a second copy could only disagree with it.
//!
//! Looking a name up picks one manifest: the platform asked for (variants normalised),
//! or, when none is asked, this machine's, else the first.

use cairn_ir::{Digest, Platform};

use super::images::normalize_reference;
use super::{ImageRecord, Store, StoreError};
use crate::oci::{DescriptorPlatform, Index, MEDIA_DOCKER_LIST, MEDIA_OCI_INDEX};

/// One platform's image of a multi-platform build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformImage {
    pub platform: Platform,
    pub image: ImageRecord,
}

/// The platform of an index entry as cairn names it.
pub fn descriptor_platform(p: &DescriptorPlatform) -> Platform {
    Platform::new(&p.os, &p.architecture, p.variant.as_deref().unwrap_or(""))
}

impl Store {
    /// Writes the OCI index of `images` (one manifest each, platform fields set) as a
    /// blob, storing their records; returns its digest.
    pub fn put_index(&self, images: &[PlatformImage]) -> Result<Digest, StoreError> {
        let mut manifests = Vec::new();
        for pi in images {
            if self.read_record(&pi.image.manifest_digest)?.as_ref() != Some(&pi.image) {
                self.put_record(&pi.image)?;
            }
            let bytes = self.read_blob(&pi.image.manifest_digest)?;
            let media = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|m| m["mediaType"].as_str().map(str::to_string))
                .unwrap_or_else(|| crate::oci::MEDIA_OCI_MANIFEST.to_string());
            let mut d = crate::oci::Descriptor::new(&media, pi.image.manifest_digest, bytes.len() as u64);
            let p = &pi.platform;
            d.platform = Some(DescriptorPlatform {
                architecture: p.architecture.clone(),
                os: p.os.clone(),
                variant: (!p.variant.is_empty()).then(|| p.variant.clone()),
            });
            manifests.push(d);
        }
        let index =
            Index { schema_version: 2, media_type: Some(MEDIA_OCI_INDEX.to_string()), manifests, annotations: None };
        let bytes = serde_json::to_vec(&index).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.put_blob(&bytes)
    }

    /// Tags the index `digest` (a blob [`Store::put_index`] wrote) as `name`.
    pub fn tag_index(&self, name: &str, digest: &Digest) -> Result<String, StoreError> {
        let n = normalize_reference(name)?;
        if n.contains('@') {
            return Err(StoreError::Invalid(format!("Cannot tag an image as `{name}`: a tag cannot contain a digest")));
        }
        self.read_index(digest)?
            .ok_or_else(|| StoreError::NotFound(format!("Image index `{digest}` is not in the store")))?;
        self.update_tags(|t| {
            t.insert(n.clone(), *digest);
        })?;
        Ok(n)
    }

    /// The index stored as blob `digest`, when that blob is an index.
    pub fn read_index(&self, digest: &Digest) -> Result<Option<Index>, StoreError> {
        if self.get_blob_path(digest).is_none() {
            return Ok(None);
        }
        let bytes = self.read_blob(digest)?;
        let Ok(index) = serde_json::from_slice::<Index>(&bytes) else { return Ok(None) };
        let media = index.media_type.as_deref().unwrap_or(MEDIA_OCI_INDEX);
        Ok((media == MEDIA_OCI_INDEX || media == MEDIA_DOCKER_LIST).then_some(index))
    }

    /// The image of `digest`: its record, or, for an index, the record of the manifest for
    /// `platform` ([`pick_manifest`]).
    pub(crate) fn record_for(
        &self,
        digest: &Digest,
        platform: Option<&Platform>,
    ) -> Result<Option<ImageRecord>, StoreError> {
        if let Some(r) = self.read_record(digest)? {
            return Ok(Some(r));
        }
        let Some(index) = self.read_index(digest)? else { return Ok(None) };
        match pick_manifest(&index, platform) {
            Some(m) => self.read_record(&m),
            None => Ok(None),
        }
    }

    /// Looks an image up as [`Store::get_image`] does, picking `platform`'s manifest of an
    /// index (`None`: this machine's, else the first).
    pub fn get_image_for(
        &self,
        reference: &str,
        platform: Option<&Platform>,
    ) -> Result<Option<ImageRecord>, StoreError> {
        if let Ok(d) = reference.parse::<Digest>() {
            if self.read_index(&d)?.is_some() {
                return self.record_for(&d, platform);
            }
            return self.get_image(reference);
        }
        let n = normalize_reference(reference)?;
        let digest = match n.split_once('@') {
            Some((_, d)) => d.parse::<Digest>().map_err(|e| StoreError::Invalid(format!("{e}")))?,
            None => match self.read_tags()?.get(&n) {
                Some(d) => *d,
                None => return Ok(None),
            },
        };
        self.record_for(&digest, platform)
    }
}

/// The manifest of `index` for `platform` (variants normalised); without one, this
/// machine's platform, else the first manifest.
pub fn pick_manifest(index: &Index, platform: Option<&Platform>) -> Option<Digest> {
    let matching = |p: &Platform| {
        index.manifests.iter().find(|m| m.platform.as_ref().is_some_and(|dp| descriptor_platform(dp).same_as(p)))
    };
    match platform {
        Some(p) => matching(p).map(|m| m.digest),
        None => matching(&Platform::host()).or(index.manifests.first()).map(|m| m.digest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::Descriptor;

    fn entry(n: u8, os: &str, arch: &str, variant: Option<&str>) -> Descriptor {
        let mut d = Descriptor::new(crate::oci::MEDIA_OCI_MANIFEST, Digest::of(&[n]), 1);
        d.platform =
            Some(DescriptorPlatform { architecture: arch.into(), os: os.into(), variant: variant.map(Into::into) });
        d
    }

    #[test]
    fn a_platform_picks_its_manifest_with_variants_normalised() {
        let index = Index {
            schema_version: 2,
            media_type: Some(MEDIA_OCI_INDEX.into()),
            manifests: vec![
                entry(1, "linux", "s390x", None),
                entry(2, "linux", "arm64", None),
                entry(3, "linux", "arm", Some("v7")),
            ],
            annotations: None,
        };
        let p = |s: &str| Platform::parse(s).unwrap();
        assert_eq!(pick_manifest(&index, Some(&p("linux/arm64/v8"))), Some(Digest::of(&[2])));
        assert_eq!(pick_manifest(&index, Some(&p("linux/arm"))), Some(Digest::of(&[3])));
        assert_eq!(pick_manifest(&index, Some(&p("linux/arm/v6"))), None);
        assert_eq!(pick_manifest(&index, Some(&p("linux/ppc64le"))), None, "a platform asked for is never replaced");
        // Nothing asked and this machine not listed (the tests run on amd64 or arm64):
        // the host's entry, else the first.
        let host = pick_manifest(&index, None).unwrap();
        assert!(host == Digest::of(&[2]) || host == Digest::of(&[1]));
    }
}
