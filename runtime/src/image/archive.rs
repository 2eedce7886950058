//! Reading image archives and layouts: `cairn load` (docker-archive and OCI-archive
//! tarballs, plain or gzip-compressed) and `oci-layout://` build contexts.
//!
//! An archive is unpacked into the store's `tmp/` (entries are read in any order), then
//! its manifests and blobs go to [`super::import`], which verifies every digest and
//! extracts each layer once per diff_id.

use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use cairn_ir::{Digest, Platform};
use tar::EntryType;

use super::import::{import_config_and_layers, import_manifest, open_maybe_gzip};
use crate::layer;
use crate::oci::{
    Descriptor, DockerArchiveEntry, Index, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, MEDIA_DOCKER_LIST,
    MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
};
use crate::store::{io_err, normalize_reference, remove_all, ImageRecord, Store, StoreError};

/// Unpacks the regular files, directories and (resolved) symlinks of an archive into
/// `into`; paths that would leave `into` are errors.
fn unpack_archive(file: &Path, into: &Path) -> Result<(), StoreError> {
    let bad = |m: String| StoreError::Invalid(format!("Cannot load `{}`: {m}", file.display()));
    let reader = open_maybe_gzip(file)?;
    let mut ar = tar::Archive::new(reader);
    let mut symlinks: Vec<(PathBuf, PathBuf)> = Vec::new();
    fs::create_dir_all(into).map_err(io_err("create directory", into))?;
    for entry in ar.entries().map_err(io_err("read", file))? {
        let mut e = entry.map_err(io_err("read", file))?;
        let raw = e.path_bytes().into_owned();
        let comps = layer::clean_components(&raw).map_err(|err| bad(err.to_string()))?;
        if comps.is_empty() {
            continue;
        }
        let rel: PathBuf = comps.iter().map(|c| Path::new(std::ffi::OsStr::from_bytes(c))).collect();
        let to = into.join(&rel);
        match e.header().entry_type() {
            EntryType::Directory => fs::create_dir_all(&to).map_err(io_err("create directory", &to))?,
            EntryType::Regular | EntryType::Continuous => {
                if let Some(parent) = to.parent() {
                    fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
                }
                let mut f = File::create(&to).map_err(io_err("create", &to))?;
                io::copy(&mut e, &mut f).map_err(io_err("unpack", &to))?;
            }
            EntryType::Symlink => {
                let target = e.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default();
                let base: Vec<&[u8]> = comps[..comps.len() - 1].to_vec();
                let mut joined = base.iter().map(|c| c.to_vec()).collect::<Vec<_>>().join(&b'/');
                if !joined.is_empty() {
                    joined.push(b'/');
                }
                joined.extend_from_slice(&target);
                // Resolve `..` lexically within the archive; anything leaving it is refused.
                let mut stack: Vec<&[u8]> = Vec::new();
                for c in joined.split(|&b| b == b'/') {
                    match c {
                        b"" | b"." => {}
                        b".." => {
                            if stack.pop().is_none() {
                                return Err(bad(format!(
                                    "the symlink `{}` points outside the archive",
                                    String::from_utf8_lossy(&raw)
                                )));
                            }
                        }
                        c => stack.push(c),
                    }
                }
                if target.starts_with(b"/") {
                    return Err(bad(format!("the symlink `{}` is absolute", String::from_utf8_lossy(&raw))));
                }
                let resolved: PathBuf = stack.iter().map(|c| Path::new(std::ffi::OsStr::from_bytes(c))).collect();
                symlinks.push((to, into.join(resolved)));
            }
            _ => {}
        }
    }
    // Archive symlinks (older `docker save` links duplicate layers) become hard links.
    for (link, target) in symlinks {
        if target.is_file() {
            if let Some(parent) = link.parent() {
                fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
            }
            let _ = fs::remove_file(&link);
            fs::hard_link(&target, &link).map_err(io_err("link", &link))?;
        }
    }
    Ok(())
}

/// Resolves a path named inside an unpacked archive (`manifest.json` entries).
fn archive_path(root: &Path, name: &str, file: &Path) -> Result<PathBuf, StoreError> {
    let comps = layer::clean_components(name.as_bytes())
        .map_err(|e| StoreError::Invalid(format!("Cannot load `{}`: {e}", file.display())))?;
    let p = root.join(comps.iter().map(|c| Path::new(std::ffi::OsStr::from_bytes(c))).collect::<PathBuf>());
    if !p.is_file() {
        return Err(StoreError::Invalid(format!(
            "Cannot load `{}`: `{name}` is named in the archive's manifest but missing",
            file.display()
        )));
    }
    Ok(p)
}

/// The image name an OCI index entry carries, if any (a bare tag names no repository).
fn name_of(desc: &Descriptor) -> Option<String> {
    let a = desc.annotations.as_ref()?;
    if let Some(n) = a.get(ANNOTATION_IMAGE_NAME) {
        return normalize_reference(n).ok();
    }
    let r = a.get(ANNOTATION_REF_NAME)?;
    if r.contains('/') || r.contains(':') {
        return normalize_reference(r).ok();
    }
    None
}

/// Loads a docker-archive or OCI-archive tarball (plain or gzip-compressed, with gzip or
/// plain layers) into the store and tags its images; returns the names loaded (the
/// manifest digest for an image without a name).
pub fn load_archive(store: &Store, file: &Path) -> Result<Vec<String>, StoreError> {
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = remove_all(&self.0);
        }
    }
    let dir = Cleanup(store.tmp_path("load"));
    unpack_archive(file, &dir.0)?;
    let mut names = Vec::new();
    let manifest_json = dir.0.join("manifest.json");
    if manifest_json.is_file() {
        let bytes = fs::read(&manifest_json).map_err(io_err("read", &manifest_json))?;
        let entries: Vec<DockerArchiveEntry> = serde_json::from_slice(&bytes).map_err(|e| {
            StoreError::Invalid(format!(
                "Cannot load `{}`: its manifest.json is not a docker-archive manifest: {e}",
                file.display()
            ))
        })?;
        for entry in entries {
            let cfg_path = archive_path(&dir.0, &entry.config, file)?;
            let cfg = fs::read(&cfg_path).map_err(io_err("read", &cfg_path))?;
            let layers = entry.layers.iter().map(|l| archive_path(&dir.0, l, file)).collect::<Result<Vec<_>, _>>()?;
            let rec = import_config_and_layers(store, &cfg, &cfg_path, &layers)?;
            let tags = entry.repo_tags.unwrap_or_default();
            if tags.is_empty() {
                names.push(rec.manifest_digest.to_string());
            }
            for t in tags {
                names.push(store.tag_image(&t, &rec)?);
            }
        }
        return Ok(names);
    }
    if dir.0.join("index.json").is_file() {
        let index = read_index(&dir.0.join("index.json"))?;
        for desc in &index.manifests {
            let rec = import_descriptor(store, &dir.0, desc, None)?;
            match name_of(desc) {
                Some(n) => names.push(store.tag_image(&n, &rec)?),
                None => names.push(rec.manifest_digest.to_string()),
            }
        }
        return Ok(names);
    }
    Err(StoreError::Invalid(format!(
        "Cannot load `{}`: it is neither a docker-archive (no manifest.json) nor an OCI archive (no index.json)",
        file.display()
    )))
}

fn read_index(p: &Path) -> Result<Index, StoreError> {
    let bytes = fs::read(p).map_err(io_err("read", p))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| StoreError::Corrupt { path: p.to_path_buf(), message: format!("not an OCI index: {e}") })
}

fn layout_blob(dir: &Path, d: &Digest) -> Result<PathBuf, StoreError> {
    let p = dir.join("blobs/sha256").join(d.hex());
    if !p.is_file() {
        return Err(StoreError::NotFound(format!("Blob `{d}` is missing from the OCI layout `{}`", dir.display())));
    }
    Ok(p)
}

/// Imports the image an index entry of the layout `dir` points at; for a nested index
/// (a multi-platform image) the manifest for `platform` (`None`: this machine's).
fn import_descriptor(
    store: &Store,
    dir: &Path,
    desc: &Descriptor,
    platform: Option<&Platform>,
) -> Result<ImageRecord, StoreError> {
    let mut desc = desc.clone();
    for _ in 0..4 {
        let p = layout_blob(dir, &desc.digest)?;
        let bytes = fs::read(&p).map_err(io_err("read", &p))?;
        if Digest::of(&bytes) != desc.digest {
            return Err(StoreError::Corrupt {
                path: p,
                message: format!("the content does not match its digest `{}`", desc.digest),
            });
        }
        let is_index = desc.media_type == MEDIA_OCI_INDEX
            || desc.media_type == MEDIA_DOCKER_LIST
            || serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|v| v.get("manifests").is_some());
        if !is_index {
            return import_manifest(store, &bytes, &p, &|d| layout_blob(dir, d));
        }
        let idx: Index = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Corrupt { path: p.clone(), message: format!("not an OCI index: {e}") })?;
        let host = platform.cloned().unwrap_or_else(Platform::host);
        let pick = idx
            .manifests
            .iter()
            .find(|m| m.platform.as_ref().is_some_and(|pl| crate::store::descriptor_platform(pl).same_as(&host)))
            .or(if idx.manifests.len() == 1 { idx.manifests.first() } else { None })
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "The image index `{}` in `{}` has no manifest for `{host}`",
                    desc.digest,
                    dir.display()
                ))
            })?;
        desc = pick.clone();
    }
    Err(StoreError::Invalid(format!("The OCI layout `{}` nests image indexes too deeply", dir.display())))
}

/// Imports an image from the OCI layout directory `dir`. `selector` picks the manifest:
/// a tag (`org.opencontainers.image.ref.name`, or a full name), `sha256:…`, or `None`
/// when the layout holds exactly one.
pub fn import_oci_layout(store: &Store, dir: &Path, selector: Option<&str>) -> Result<ImageRecord, StoreError> {
    import_oci_layout_for(store, dir, selector, None)
}

/// [`import_oci_layout`] taking `platform`'s manifest of a multi-platform image (`None`:
/// this machine's).
pub fn import_oci_layout_for(
    store: &Store,
    dir: &Path,
    selector: Option<&str>,
    platform: Option<&Platform>,
) -> Result<ImageRecord, StoreError> {
    let index = read_index(&dir.join("index.json"))?;
    let listing = || {
        index
            .manifests
            .iter()
            .map(|m| {
                let tag = m.annotations.as_ref().and_then(|a| a.get(ANNOTATION_REF_NAME)).cloned();
                tag.unwrap_or_else(|| m.digest.to_string())
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let desc = match selector.filter(|s| !s.is_empty()) {
        None => match index.manifests.as_slice() {
            [one] => one.clone(),
            [] => return Err(StoreError::NotFound(format!("The OCI layout `{}` holds no image", dir.display()))),
            _ => {
                return Err(StoreError::Invalid(format!(
                    "The OCI layout `{}` holds several images ({}); choose one with `:TAG` or `@sha256:…`",
                    dir.display(),
                    listing()
                )))
            }
        },
        Some(s) if s.starts_with("sha256:") => {
            let d: Digest = s.parse().map_err(|e| StoreError::Invalid(format!("{e}")))?;
            match index.manifests.iter().find(|m| m.digest == d) {
                Some(m) => m.clone(),
                None => {
                    let p = layout_blob(dir, &d)?;
                    let size = fs::metadata(&p).map_err(io_err("stat", &p))?.len();
                    Descriptor {
                        media_type: MEDIA_OCI_MANIFEST.into(),
                        digest: d,
                        size,
                        annotations: None,
                        platform: None,
                    }
                }
            }
        }
        Some(tag) => {
            let full = normalize_reference(tag).ok();
            index
                .manifests
                .iter()
                .find(|m| {
                    let a = m.annotations.as_ref();
                    a.and_then(|a| a.get(ANNOTATION_REF_NAME)).is_some_and(|r| r == tag)
                        || (full.is_some() && name_of(m) == full)
                })
                .cloned()
                .ok_or_else(|| {
                    StoreError::NotFound(format!(
                        "The OCI layout `{}` has no image `{tag}` (it has: {})",
                        dir.display(),
                        listing()
                    ))
                })?
        }
    };
    import_descriptor(store, dir, &desc, platform)
}

/// Splits `oci-layout://PATH[:TAG|@sha256:…]` (the prefix is optional) into the layout
/// path and the selector.
pub fn parse_oci_layout_ref(reference: &str) -> (PathBuf, Option<String>) {
    let r = reference.strip_prefix("oci-layout://").unwrap_or(reference);
    if let Some(i) = r.rfind("@sha256:") {
        return (PathBuf::from(&r[..i]), Some(r[i + 1..].to_string()));
    }
    let last = r.rfind('/').map_or(0, |i| i + 1);
    match r[last..].rfind(':') {
        Some(i) => (PathBuf::from(&r[..last + i]), Some(r[last + i + 1..].to_string())),
        None => (PathBuf::from(r), None),
    }
}

/// An image by reference, as the solver asks for it: a store reference, or
/// `oci-layout://PATH[:TAG|@sha256:…]` (imported into the store first). `None` when a
/// store reference is unknown.
pub fn resolve_image(store: &Store, reference: &str) -> Result<Option<ImageRecord>, StoreError> {
    resolve_image_for(store, reference, None)
}

/// [`resolve_image`] picking `platform`'s manifest of a multi-platform image in the store
/// (`None`: this machine's, else the first).
pub fn resolve_image_for(
    store: &Store,
    reference: &str,
    platform: Option<&cairn_ir::Platform>,
) -> Result<Option<ImageRecord>, StoreError> {
    if reference.starts_with("oci-layout://") {
        let (dir, sel) = parse_oci_layout_ref(reference);
        return import_oci_layout_for(store, &dir, sel.as_deref(), platform).map(Some);
    }
    store.get_image_for(reference, platform)
}
