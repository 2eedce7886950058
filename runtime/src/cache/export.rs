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
use crate::oci::MEDIA_OCI_MANIFEST;
use crate::registry::Registry;
use crate::solve::backend::Chain;
use crate::store::Store;

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
            export_registry(store, registry, reference, records, to.cache_mounts, notice)
        }
        CacheLocation::Local(dir) => export_local(store, dir, records, to.cache_mounts, notice),
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
    cache_mounts: bool,
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
    let (mut merged, old_mounts) = read_registry_tag(registry, &mine).unwrap_or_default().unwrap_or_default();
    let before: HashSet<Digest> = blobs_of(&merged).iter().map(|b| b.blob).collect();
    let new = records.len();
    merged.extend(records);
    let quiet = |_: &str| {};
    for b in blobs_of(&merged).iter().filter(|b| !before.contains(&b.blob)) {
        registry
            .push_blob(store, &mine, &b.blob, b.blob_size, &quiet)
            .map_err(|e| CacheError::Registry(e.to_string()))?;
    }
    let client = registry.client();
    let put = &mut |b: &mounts::MountBlob, tmp: &Path| -> Result<(), CacheError> {
        if !client.blob_exists(&mine, &b.digest)? {
            let mut f = fs::File::open(tmp).map_err(mounts::io_err("open", tmp))?;
            client.upload_blob(&mine, &b.digest, b.size, &mut f)?;
        }
        Ok(())
    };
    let fresh = if cache_mounts { mounts::pack_all(store, put)? } else { Vec::new() };
    let n_mounts = fresh.len();
    let all_mounts = mounts::merge_mounts(old_mounts, fresh);
    let index = encode_index(&merged);
    let index_digest = Digest::of(&index);
    if !client.blob_exists(&mine, &index_digest)? {
        client.upload_blob(&mine, &index_digest, index.len() as u64, &mut &index[..])?;
    }
    let manifest = manifest_of(&index, &merged, &all_mounts);
    client.put_manifest(&mine, MEDIA_OCI_MANIFEST, &manifest)?;
    notice(&format!(
        "Exported {new} cache records{} to {mine} ({} in its index)",
        mounts_note(cache_mounts, n_mounts),
        merged.len()
    ));
    Ok(())
}

pub(super) fn export_local(
    store: &Store,
    dir: &Path,
    records: Records,
    cache_mounts: bool,
    notice: &dyn Fn(&str),
) -> Result<(), CacheError> {
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(mounts::io_err("create", &blobs))?;
    let (mut merged, old_mounts) = read_local(dir).ok().flatten().unwrap_or_default();
    let new = records.len();
    merged.extend(records);
    for b in blobs_of(&merged) {
        if !local_blob(dir, &b.blob).exists() {
            let src = store.ensure_blob(&b.blob, &|_, _, _| {})?;
            mounts::put_local(dir, &b.blob, Some(&src), None)?;
        }
    }
    let mine = match cache_mounts {
        true => mounts::pack_all(store, &mut |b, tmp| mounts::put_local(dir, &b.digest, Some(tmp), None))?,
        false => Vec::new(),
    };
    let n_mounts = mine.len();
    mounts::write_local(dir, &merged, &mounts::merge_mounts(old_mounts, mine))?;
    notice(&format!(
        "Exported {new} cache records{} to {} ({} in its index)",
        mounts_note(cache_mounts, n_mounts),
        dir.display(),
        merged.len()
    ));
    Ok(())
}

fn mounts_note(cache_mounts: bool, n: usize) -> String {
    if cache_mounts {
        format!(" and {n} cache mounts")
    } else {
        String::new()
    }
}
