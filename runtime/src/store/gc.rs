//! Garbage collection and disk usage of the store.
//!
//! **What is alive.** Roots are the tags and (unless `prune --all`) the cache records. A
//! tag keeps its image record, the record's manifest, config and layer blobs, and its layer
//! directories; a cache record keeps the layer directories of its chains. A live layer also
//! keeps the blobs its metadata names: the original blob of an imported layer (needed to
//! re-export the image with the same diff_ids) and the blobs packed from it (so exporting
//! a cached layer again costs nothing). Everything else — untagged image records, layers
//! and blobs nobody names, dangling diff_id entries and download records (`http/`),
//! `tmp/` entries of dead processes — is
//! removed, and with `--all` also every cache record and the cache mounts (`cachemounts/`).
//!
//! **Order.** Referrers go before what they refer to (cache records, then layers, then
//! records, then blobs), so a prune killed half-way leaves a consistent store: at worst a
//! cache record that names a removed layer, which [`Store::cache_get`] treats as a miss.
//!
//! **Exclusion.** Prune needs the store alone: it upgrades the shared `gc.lock` that every
//! open [`Store`] holds to exclusive, without waiting, and fails with
//! [`StoreError::Busy`] when another process has the store open (its build may have
//! committed layers it has not recorded yet). Within one process the caller must not run
//! a build and a prune on the same store at the same time.
//!
//! Sizes are disk usage (allocated blocks), counting a hard-linked inode once.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use cairn_ir::Digest;

use super::{remove_all, sys, Store, StoreError};
use crate::oci::Manifest;

/// Count and bytes of one kind of store content.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub count: u64,
    pub bytes: u64,
}

/// What the store occupies, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    pub blobs: Usage,
    pub layers: Usage,
    /// Cache mount directories (`RUN --mount=type=cache`), under `cachemounts/`.
    pub cache_mounts: Usage,
    /// Number of tags.
    pub images: u64,
    pub cache_records: u64,
}

impl DiskUsage {
    pub fn total_bytes(&self) -> u64 {
        self.blobs.bytes + self.layers.bytes + self.cache_mounts.bytes
    }
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub freed_bytes: u64,
    pub layers: u64,
    pub blobs: u64,
    pub cache_records: u64,
    pub images: u64,
    pub cache_mounts: u64,
}

/// Disk usage of a file or tree, counting each inode once within `seen`.
fn tree_bytes(p: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
    let Ok(md) = p.symlink_metadata() else { return 0 };
    let mut total = 0;
    if seen.insert((md.dev(), md.ino())) {
        total += md.blocks() * 512;
    }
    if md.is_dir() {
        if let Ok(rd) = fs::read_dir(p) {
            for e in rd.flatten() {
                total += tree_bytes(&e.path(), seen);
            }
        }
    }
    total
}

/// Disk usage of one file or tree.
pub(crate) fn usage_of(p: &Path) -> Usage {
    Usage { count: 1, bytes: tree_bytes(p, &mut HashSet::new()) }
}

/// Usage of every entry of `dir` (each entry counted once).
fn usage_of_entries(dir: &Path) -> Usage {
    let mut u = Usage::default();
    let mut seen = HashSet::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            u.count += 1;
            u.bytes += tree_bytes(&e.path(), &mut seen);
        }
    }
    u
}

impl Store {
    /// Disk usage by kind (blobs, layers, cache mounts) plus tag and cache record counts.
    pub fn disk_usage(&self) -> Result<DiskUsage, StoreError> {
        Ok(DiskUsage {
            blobs: usage_of_entries(&self.layout.blobs_dir()),
            layers: usage_of_entries(&self.layout.layers_dir()),
            cache_mounts: usage_of_entries(&self.layout.cache_mounts_dir()),
            images: self.read_tags()?.len() as u64,
            cache_records: self.cache_keys()?.len() as u64,
        })
    }

    /// Removes what no tag (and, unless `all`, no cache record) reaches; see the module
    /// doc. Fails with [`StoreError::Busy`] while another process has the store open.
    pub fn prune(&self, all: bool) -> Result<PruneReport, StoreError> {
        let gc = self.gc_lock.lock().unwrap_or_else(|e| e.into_inner());
        let lock_path = self.layout.gc_lock_path();
        if let Err(e) = sys::flock(&gc, libc::LOCK_EX | libc::LOCK_NB) {
            // Converting may have dropped our shared lock: take it back before failing.
            sys::flock(&gc, libc::LOCK_SH).map_err(super::io_err("lock", &lock_path))?;
            return Err(if e.kind() == std::io::ErrorKind::WouldBlock {
                StoreError::Busy(self.root().to_path_buf())
            } else {
                StoreError::Io { action: "lock", path: lock_path, source: e }
            });
        }
        let out = self.prune_locked(all);
        sys::flock(&gc, libc::LOCK_SH).map_err(super::io_err("lock", &lock_path))?;
        out
    }

    fn prune_locked(&self, all: bool) -> Result<PruneReport, StoreError> {
        let mut rep = PruneReport { freed_bytes: self.clean_tmp(), ..Default::default() };
        let mut keep_records: HashSet<Digest> = HashSet::new();
        let mut keep_layers: HashSet<String> = HashSet::new();
        let mut keep_blobs: HashSet<Digest> = HashSet::new();

        // A tag names a manifest's record, or an index (kept) and every manifest in it.
        let mut tagged = Vec::new();
        for d in self.read_tags()?.values() {
            match self.read_index(d)? {
                Some(index) => {
                    keep_blobs.insert(*d);
                    tagged.extend(index.manifests.iter().map(|m| m.digest));
                }
                None => tagged.push(*d),
            }
        }
        for d in &tagged {
            let Some(rec) = self.read_record(d)? else { continue };
            keep_records.insert(rec.manifest_digest);
            keep_blobs.insert(rec.manifest_digest);
            keep_blobs.insert(rec.config_digest);
            if let Ok(bytes) = self.read_blob(&rec.manifest_digest) {
                if let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) {
                    keep_blobs.extend(m.layers.iter().map(|l| l.digest));
                }
            }
            keep_layers.extend(rec.layers);
        }

        for key in self.cache_keys()? {
            let p = self.layout.cache_record(&key);
            // A record that cannot be trusted (see `records.rs`) goes, as an unreadable one.
            let chains = fs::read(&p).ok().and_then(|b| self.decode_record(&b));
            match chains {
                Some(c) if !all => keep_layers.extend(c.into_iter().flatten()),
                _ => {
                    rep.freed_bytes += usage_of(&p).bytes;
                    remove_all(&p).map_err(super::io_err("remove", &p))?;
                    rep.cache_records += 1;
                }
            }
        }

        self.available.lock().unwrap_or_else(|e| e.into_inner()).clear();
        for id in self.list_layers()? {
            if keep_layers.contains(&id) {
                let meta = self.layer_meta(&id).unwrap_or_default();
                keep_blobs.extend(meta.imported.iter().map(|b| b.blob));
                keep_blobs.extend(meta.packed.iter().map(|p| p.blob.blob));
                continue;
            }
            let p = self.layer_path(&id);
            rep.freed_bytes += usage_of(&p).bytes;
            // Rename first so a half-removed layer never looks like a complete one.
            let doomed = self.tmp_path("prune");
            fs::rename(&p, &doomed).map_err(super::io_err("remove", &p))?;
            remove_all(&doomed).map_err(super::io_err("remove", &doomed))?;
            rep.layers += 1;
        }

        let meta_dir = self.layout.layer_meta_dir();
        for e in fs::read_dir(&meta_dir).map_err(super::io_err("read directory", &meta_dir))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name.strip_suffix(".json").unwrap_or(&name);
            // A lazy layer (a pull's, no directory yet) keeps its metadata while referenced.
            if !self.layer_exists(id) && !keep_layers.contains(id) {
                let _ = fs::remove_file(e.path());
            }
        }
        let diff_dir = self.layout.diff_ids_dir();
        for e in fs::read_dir(&diff_dir).map_err(super::io_err("read directory", &diff_dir))?.flatten() {
            let id = fs::read_to_string(e.path()).unwrap_or_default();
            if !self.layer_exists(id.trim()) && !keep_layers.contains(id.trim()) {
                let _ = fs::remove_file(e.path());
            }
        }
        // Download records (`http/`, see solve/remote.rs) whose layer is gone.
        if let Ok(entries) = fs::read_dir(self.layout.http_records_dir()) {
            for e in entries.flatten() {
                let rec = fs::read(e.path()).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
                if !rec.as_ref().and_then(|r| r["layer"].as_str()).is_some_and(|l| self.layer_exists(l)) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }

        for d in self.record_digests()? {
            if !keep_records.contains(&d) {
                let p = self.layout.image_record(&d);
                rep.freed_bytes += usage_of(&p).bytes;
                remove_all(&p).map_err(super::io_err("remove", &p))?;
                rep.images += 1;
            }
        }

        let blob_dir = self.layout.blobs_dir();
        for e in fs::read_dir(&blob_dir).map_err(super::io_err("read directory", &blob_dir))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let keep = format!("sha256:{name}").parse::<Digest>().is_ok_and(|d| keep_blobs.contains(&d));
            if !keep {
                rep.freed_bytes += usage_of(&e.path()).bytes;
                remove_all(&e.path()).map_err(super::io_err("remove", &e.path()))?;
                rep.blobs += 1;
            }
        }

        if all {
            let mounts = self.layout.cache_mounts_dir();
            if let Ok(rd) = fs::read_dir(&mounts) {
                for e in rd.flatten() {
                    rep.freed_bytes += usage_of(&e.path()).bytes;
                    remove_all(&e.path()).map_err(super::io_err("remove", &e.path()))?;
                    rep.cache_mounts += 1;
                }
            }
        }
        Ok(rep)
    }
}
