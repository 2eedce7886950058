//! `--cache-to`: which results to export (`mode=min|max`), packing them, and writing the
//! artifact to a registry (this builder's tag, merged) or an OCI layout directory; the
//! inline index of an image.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;

use cairn_ir::Digest;
use cairn_registry::Reference;
use rayon::prelude::*;

use crate::image::CommitOptions;
use crate::oci::{MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST};
use crate::registry::Registry;
use crate::solve::backend::Chain;
use crate::store::{Store, StoreError};

use super::*;

/// What `to` should hold from this build: the results it used (`mode=max`), or those
/// whose layers are all in the final image (`mode=min`), with their layers packed.
pub(super) fn collect(
    store: &Store,
    cache: &SharedCache,
    mode: CacheMode,
    image_layers: &[String],
    opts: &CommitOptions,
) -> Records {
    let used = cache.used.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let in_image: HashSet<&String> = image_layers.iter().collect();
    let chosen: Vec<(String, Vec<Chain>)> = used
        .into_iter()
        .filter(|(_, chains)| mode == CacheMode::Max || chains.iter().flatten().all(|l| in_image.contains(l)))
        .collect();
    let mut ids: Vec<String> = chosen.iter().flat_map(|(_, c)| c.iter().flatten().cloned()).collect();
    ids.sort();
    ids.dedup();
    let described: HashMap<String, CacheLayer> =
        ids.into_par_iter().filter_map(|id| describe(store, &id, opts).map(|d| (id, d))).collect();
    chosen
        .into_iter()
        .filter_map(|(key, chains)| {
            let chains = chains
                .iter()
                .map(|c| c.iter().map(|id| described.get(id).cloned()).collect::<Option<Vec<_>>>())
                .collect::<Option<Vec<_>>>()?;
            Some((key, chains))
        })
        .collect()
}

/// A layer as the index records it: empty, or its blob (packed once; a lazy layer's
/// blob as is). `None` when the layer is gone.
pub(super) fn describe(store: &Store, id: &str, opts: &CommitOptions) -> Option<CacheLayer> {
    if !store.layer_available(id) {
        return None;
    }
    let meta = store.layer_meta(id).ok()?;
    if meta.imported.is_none() && fs::read_dir(store.layer_path(id)).is_ok_and(|mut d| d.next().is_none()) {
        return Some(CacheLayer::empty());
    }
    crate::image::pack_layer(store, id, opts).ok().map(|b| CacheLayer::of(&b))
}

/// Writes this build's results to `to` (see the module doc for the registry's tags).
pub fn export(
    store: &Store,
    registry: Option<&Registry>,
    cache: &SharedCache,
    to: &CacheExport,
    image_layers: &[String],
    opts: &CommitOptions,
    notice: &dyn Fn(&str),
) -> Result<(), CacheError> {
    if to.location == CacheLocation::Inline {
        // Written into the image by the commit (see `inline_annotation`).
        notice("Exported the build cache inline, in the image's manifest");
        return Ok(());
    }
    let records = collect(store, cache, to.mode, image_layers, opts);
    let _g = store.cache_export_lock()?;
    match &to.location {
        CacheLocation::Registry(reference) => {
            let registry = registry.ok_or_else(|| CacheError::Registry("No registry client is set up".to_string()))?;
            export_registry(store, registry, reference, records, notice)
        }
        CacheLocation::Local(dir) => export_local(store, dir, records, notice),
        CacheLocation::Inline => Ok(()),
    }
}

/// `--cache-to type=inline`: the manifest annotation (key, value) holding the `mode=min`
/// index of this build, packed with the image's own `opts` so that it names exactly the
/// image's blobs (BuildKit also exports inline cache in min mode only).
pub fn inline_annotation(
    store: &Store,
    cache: &SharedCache,
    image_layers: &[String],
    opts: &CommitOptions,
) -> (String, String) {
    let records = collect(store, cache, CacheMode::Min, image_layers, opts);
    let text = String::from_utf8(encode_index(&records)).expect("JSON is UTF-8");
    (ANNOTATION_INLINE.to_string(), text)
}

pub(super) fn export_registry(
    store: &Store,
    registry: &Registry,
    reference: &str,
    records: Records,
    notice: &dyn Fn(&str),
) -> Result<(), CacheError> {
    let r = Reference::parse(reference)?;
    if r.digest.is_some() {
        return Err(CacheError::Invalid(format!("`--cache-to` names a tag, not a digest: `{reference}`")));
    }
    let tag = builder_tag(r.tag.as_deref().unwrap_or("latest"), &store.builder_id()?);
    if tag.len() > 128 {
        return Err(CacheError::Invalid(format!("The cache tag `{tag}` is longer than 128 characters")));
    }
    let mine = r.with_tag(&tag);
    let mut merged = read_registry_tag(registry, &mine).unwrap_or_default().unwrap_or_default();
    let before: HashSet<Digest> = blobs_of(&merged).iter().map(|b| b.blob).collect();
    let new = records.len();
    merged.extend(records);
    let quiet = |_: &str| {};
    for b in blobs_of(&merged).iter().filter(|b| !before.contains(&b.blob)) {
        registry
            .push_blob(store, &mine, &b.blob, b.blob_size, &quiet)
            .map_err(|e| CacheError::Registry(e.to_string()))?;
    }
    let index = encode_index(&merged);
    let index_digest = Digest::of(&index);
    let client = registry.client();
    if !client.blob_exists(&mine, &index_digest)? {
        client.upload_blob(&mine, &index_digest, index.len() as u64, &mut &index[..])?;
    }
    let manifest = manifest_of(&index, &merged);
    client.put_manifest(&mine, MEDIA_OCI_MANIFEST, &manifest)?;
    notice(&format!("Exported {new} cache records to {mine} ({} in its index)", merged.len()));
    Ok(())
}

pub(super) fn export_local(
    store: &Store,
    dir: &Path,
    records: Records,
    notice: &dyn Fn(&str),
) -> Result<(), CacheError> {
    let io = |action: &'static str, p: &Path| {
        let path = p.to_path_buf();
        move |source| CacheError::Store(StoreError::Io { action, path, source })
    };
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(io("create", &blobs))?;
    let mut merged = read_local(dir).ok().flatten().unwrap_or_default();
    let new = records.len();
    merged.extend(records);
    let put = |d: &Digest, from: Option<&Path>, bytes: Option<&[u8]>| -> Result<(), CacheError> {
        let dest = local_blob(dir, d);
        if dest.exists() {
            return Ok(());
        }
        let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
        match (from, bytes) {
            (Some(src), _) => {
                if fs::hard_link(src, &tmp).is_err() {
                    fs::copy(src, &tmp).map_err(io("copy", src))?;
                }
            }
            (None, Some(b)) => fs::write(&tmp, b).map_err(io("write", &tmp))?,
            (None, None) => unreachable!("put needs a source"),
        }
        fs::rename(&tmp, &dest).map_err(io("rename into", &dest))
    };
    for b in blobs_of(&merged) {
        if !local_blob(dir, &b.blob).exists() {
            let src = store.ensure_blob(&b.blob, &|_, _, _| {})?;
            put(&b.blob, Some(&src), None)?;
        }
    }
    let index = encode_index(&merged);
    put(&Digest::of(&index), None, Some(&index))?;
    let manifest = manifest_of(&index, &merged);
    let md = Digest::of(&manifest);
    put(&md, None, Some(&manifest))?;
    let layout = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_INDEX,
        "manifests": [{
            "mediaType": MEDIA_OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "digest": md.to_string(),
            "size": manifest.len(),
            "annotations": {crate::oci::ANNOTATION_REF_NAME: LOCAL_REF_NAME},
        }],
    });
    for (name, bytes) in [
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ("index.json", serde_json::to_vec(&layout).expect("the index serializes")),
    ] {
        let (p, tmp) = (dir.join(name), dir.join(format!(".{name}.tmp{}", std::process::id())));
        fs::write(&tmp, bytes).map_err(io("write", &tmp))?;
        fs::rename(&tmp, &p).map_err(io("rename into", &p))?;
    }
    notice(&format!("Exported {new} cache records to {} ({} in its index)", dir.display(), merged.len()));
    Ok(())
}
