//! Looking inside a stored image: its history with a size per entry (`cairn history`),
//! the document `docker image inspect` prints (`cairn inspect`), and the image it was built
//! on. Pure reads of the store: nothing is written and no lazy layer is downloaded.
//!
//! **Sizes.** A layer's size is what `docker history` shows: the bytes of the regular
//! files in its directory (a hard-linked file counted once). A lazy layer of a pulled image
//! has no directory yet; its size is then the uncompressed tar size the registry gave.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use cairn_ir::{Digest, ImageConfig};
use serde_json::{json, Value};

use crate::image::{parse_rfc3339, rfc3339};
use crate::store::{known_diff_size, ImageRecord, Store, StoreError};

/// One entry of an image's history, newest first as `docker history` lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The image id (config digest) on the newest entry; `None` (docker's `<missing>`)
    /// on the others, as docker shows the history of an image it did not build itself.
    pub id: Option<Digest>,
    /// RFC 3339, as in the config.
    pub created: Option<String>,
    /// `created` in Unix seconds.
    pub created_unix: Option<i64>,
    pub created_by: String,
    pub comment: String,
    /// Bytes of the layer this entry made (0 for an empty layer).
    pub size: u64,
    /// The layer this entry made (`None` for an empty layer).
    pub layer: Option<String>,
}

/// The bytes of the regular files of layer `id` (hard links counted once), or, for a lazy
/// layer without a directory, its known uncompressed tar size.
pub fn layer_size(store: &Store, id: &str) -> Result<u64, StoreError> {
    if store.layer_exists(id) {
        let dir = store.layer_path(id);
        let mut seen = HashSet::new();
        return dir_size(&dir, &mut seen).map_err(crate::store::io_err("read layer", &dir));
    }
    let meta = store.layer_meta(id)?;
    Ok(meta.imported.map_or(0, |b| known_diff_size(store, id, &b.diff_id).unwrap_or(b.diff_size)))
}

fn dir_size(dir: &Path, seen: &mut HashSet<(u64, u64)>) -> io::Result<u64> {
    let mut n = 0;
    for e in fs::read_dir(dir)? {
        let e = e?;
        let md = e.path().symlink_metadata()?;
        if md.is_dir() {
            n += dir_size(&e.path(), seen)?;
        } else if md.is_file() && (md.nlink() == 1 || seen.insert((md.dev(), md.ino()))) {
            n += md.len();
        }
    }
    Ok(n)
}

/// The history of `rec`, newest first. Entries marked `empty_layer` get size 0; the
/// others take the image's layers in order. An image without history gets one entry per
/// layer.
pub fn image_history(store: &Store, rec: &ImageRecord) -> Result<Vec<HistoryEntry>, StoreError> {
    let cfg = store.image_config(rec)?;
    let mut history = cfg.history.clone();
    if history.is_empty() {
        history = rec.layers.iter().map(|_| cairn_ir::History::default()).collect();
    }
    let mut layers = rec.layers.iter();
    let mut out = Vec::new();
    for h in &history {
        let layer = if h.empty_layer { None } else { layers.next().cloned() };
        let size = match &layer {
            Some(id) => layer_size(store, id)?,
            None => 0,
        };
        out.push(HistoryEntry {
            id: None,
            created_unix: h.created.as_deref().and_then(parse_rfc3339),
            created: h.created.clone(),
            created_by: h.created_by.clone().unwrap_or_default(),
            comment: h.comment.clone().unwrap_or_default(),
            size,
            layer,
        });
    }
    out.reverse();
    if let Some(top) = out.first_mut() {
        top.id = Some(rec.config_digest);
    }
    Ok(out)
}

/// The names (normalized) the store gives the image `rec`.
pub fn image_names(store: &Store, rec: &ImageRecord) -> Result<Vec<String>, StoreError> {
    Ok(store
        .list_images()?
        .into_iter()
        .filter(|(_, r)| r.manifest_digest == rec.manifest_digest)
        .map(|(n, _)| n)
        .collect())
}

/// `docker image inspect`'s document for `rec` (one element of its array): Id, RepoTags,
/// RepoDigests, Parent, Comment, Created, DockerVersion, Author, Config, Architecture,
/// Variant (when set), Os, Size, RootFS and Metadata. Names are familiar (`busybox:latest`);
/// RepoDigests name the manifest digest per repository.
pub fn inspect_image(store: &Store, rec: &ImageRecord) -> Result<Value, StoreError> {
    let cfg: ImageConfig = store.image_config(rec)?;
    let names = image_names(store, rec)?;
    let tags: Vec<String> = names.iter().map(|n| cairn_ir::reference::familiar(n)).collect();
    let mut digests: Vec<String> = Vec::new();
    for n in &names {
        let repo = repository_of(n);
        let d = format!("{}@{}", cairn_ir::reference::familiar(repo), rec.manifest_digest);
        if !digests.contains(&d) {
            digests.push(d);
        }
    }
    let comment = cfg.history.last().and_then(|h| h.comment.clone()).unwrap_or_default();
    let config = serde_json::to_value(&cfg.config)
        .map_err(|e| StoreError::Invalid(format!("Cannot encode the image config: {e}")))?;
    let mut v = json!({
        "Id": rec.config_digest.to_string(),
        "RepoTags": tags,
        "RepoDigests": digests,
        "Parent": "",
        "Comment": comment,
        "Created": cfg.created.clone().unwrap_or_default(),
        "DockerVersion": "",
        "Author": cfg.author.clone().unwrap_or_default(),
        "Config": config,
        "Architecture": cfg.architecture,
        "Os": cfg.os,
        "Size": rec.size,
        "RootFS": {"Type": cfg.rootfs.kind, "Layers": cfg.rootfs.diff_ids},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    });
    if let Some(variant) = &cfg.variant {
        v["Variant"] = json!(variant);
    }
    Ok(v)
}

/// `host/path:tag` → `host/path` (a digest suffix dropped too).
pub fn repository_of(normalized: &str) -> &str {
    let s = normalized.split('@').next().unwrap_or(normalized);
    match s.rfind(':') {
        Some(i) if !s[i..].contains('/') => &s[..i],
        _ => s,
    }
}

/// The tag part of a normalized name (`<none>` when it has none).
pub fn tag_of(normalized: &str) -> &str {
    let s = normalized.split('@').next().unwrap_or(normalized);
    match s.rfind(':') {
        Some(i) if !s[i..].contains('/') => &s[i + 1..],
        _ => "<none>",
    }
}

/// The image `rec` was built on: of the other images in the store, the one with the most
/// layers whose layers are a strict prefix of `rec`'s; its layer count (0 when none).
pub fn base_layer_count(store: &Store, rec: &ImageRecord) -> Result<usize, StoreError> {
    let mut best = 0;
    for (_, other) in store.list_images()? {
        let n = other.layers.len();
        if n < rec.layers.len() && n > best && rec.layers[..n] == other.layers[..] {
            best = n;
        }
    }
    Ok(best)
}

/// Unix seconds of an RFC 3339 time (`None` when it is not one).
pub fn parse_time(s: &str) -> Option<i64> {
    parse_rfc3339(s)
}

/// Unix seconds → RFC 3339 (for callers that print times).
pub fn format_time(secs: i64) -> String {
    rfc3339(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_and_tags_of_names() {
        assert_eq!(repository_of("docker.io/library/busybox:latest"), "docker.io/library/busybox");
        assert_eq!(repository_of("localhost:5000/a/b:1"), "localhost:5000/a/b");
        assert_eq!(repository_of("localhost:5000/a/b"), "localhost:5000/a/b");
        assert_eq!(repository_of("x/y@sha256:00"), "x/y");
        assert_eq!(tag_of("localhost:5000/a/b:1"), "1");
        assert_eq!(tag_of("localhost:5000/a/b"), "<none>");
    }
}
