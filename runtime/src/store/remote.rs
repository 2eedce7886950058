//! Lazy layers of pulled images: a pull stores the manifest, the config and, per layer, a
//! layer id whose metadata names the blob (`LayerMeta::imported`) and a record of where the
//! blob can be fetched (`remote/<hex>.json`) — no layer bytes. The bytes come when a step
//! needs them: [`Store::ensure_blob`] downloads one blob (through the [`BlobFetcher`] the
//! runtime installs: the registry client), `image::materialize` extracts a chain's
//! missing layer directories bottom first. A fully cached rebuild downloads nothing.
//!
//! A layer id exists in one of three states: a directory (extracted), lazy (metadata and a
//! fetchable blob, no directory), or unknown. [`Store::layer_available`] is true for the
//! first two; only [`Store::layer_exists`] promises a directory.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use cairn_ir::Digest;
use serde::{Deserialize, Serialize};

use super::{io_err, HashWriter, Store, StoreError};

/// Where a blob can be fetched: repositories (`registry/name`) that hold it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteBlob {
    pub repositories: Vec<String>,
    pub size: u64,
    pub media_type: String,
}

/// Downloads blobs for the store (the registry client implements it). `fetch` writes the
/// blob's bytes to `out` and reports `(done, total)`; the store verifies the digest.
pub trait BlobFetcher: Send + Sync {
    fn fetch(
        &self,
        repository: &str,
        blob: &Digest,
        remote: &RemoteBlob,
        out: &mut dyn Write,
        progress: &dyn Fn(u64, u64),
    ) -> Result<(), String>;
}

/// Serializes work on one key (a blob digest, a layer id) between threads.
#[derive(Default)]
pub(crate) struct KeyLocks {
    busy: Mutex<HashSet<String>>,
    cv: Condvar,
}

pub(crate) struct KeyGuard<'a>(&'a KeyLocks, String);

impl KeyLocks {
    fn lock(&self, key: &str) -> KeyGuard<'_> {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        while busy.contains(key) {
            busy = self.cv.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        busy.insert(key.to_string());
        KeyGuard(self, key.to_string())
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        self.0.busy.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.1);
        self.0.cv.notify_all();
    }
}

/// What the store needs for lazy layers, set once per process.
#[derive(Default)]
pub(crate) struct Lazy {
    pub fetcher: OnceLock<Arc<dyn BlobFetcher>>,
    pub locks: KeyLocks,
}

/// Progress of one blob download: `(blob, done, total)`.
pub type FetchProgress<'a> = &'a (dyn Fn(&Digest, u64, u64) + Sync);

impl Store {
    /// Installs the downloader of lazy blobs (once; later calls are ignored).
    pub fn set_fetcher(&self, f: Arc<dyn BlobFetcher>) {
        let _ = self.lazy.fetcher.set(f);
    }

    /// Records that `blob` can be fetched from `repository` (keeping earlier ones).
    pub(crate) fn record_remote_blob(
        &self,
        blob: &Digest,
        repository: &str,
        size: u64,
        media_type: &str,
    ) -> Result<(), StoreError> {
        let mut rec = self.remote_blob(blob).unwrap_or_default();
        if !rec.repositories.iter().any(|r| r == repository) {
            rec.repositories.push(repository.to_string());
        }
        rec.size = size;
        if !media_type.is_empty() {
            rec.media_type = media_type.to_string();
        }
        let bytes = serde_json::to_vec(&rec).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let p = self.layout.remote_blob(blob);
        if let Some(dir) = p.parent() {
            fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        }
        self.write_atomic(&p, &bytes)
    }

    /// Where `blob` can be fetched, if a pull recorded it.
    pub fn remote_blob(&self, blob: &Digest) -> Option<RemoteBlob> {
        serde_json::from_slice(&fs::read(self.layout.remote_blob(blob)).ok()?).ok()
    }

    /// Whether layer `id` has a directory or can get one (a lazy layer of a pull).
    pub fn layer_available(&self, id: &str) -> bool {
        if self.available.lock().unwrap_or_else(|e| e.into_inner()).contains(id) {
            return true;
        }
        let yes = self.layer_exists(id)
            || self
                .layer_meta(id)
                .ok()
                .and_then(|m| m.imported)
                .is_some_and(|b| self.get_blob_path(&b.blob).is_some() || self.remote_blob(&b.blob).is_some());
        if yes {
            self.available.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_string());
        }
        yes
    }

    /// The path of `blob`, downloading it first when only a pull's record has it.
    pub fn ensure_blob(&self, blob: &Digest, progress: FetchProgress) -> Result<std::path::PathBuf, StoreError> {
        if let Some(p) = self.get_blob_path(blob) {
            return Ok(p);
        }
        let _g = self.lazy.locks.lock(&blob.to_string());
        if let Some(p) = self.get_blob_path(blob) {
            return Ok(p); // another thread fetched it meanwhile
        }
        let remote = self.remote_blob(blob).ok_or_else(|| {
            StoreError::NotFound(format!("Blob `{blob}` is not in the store and no registry holds it"))
        })?;
        let fetcher = self.lazy.fetcher.get().ok_or_else(|| {
            StoreError::Invalid(format!("Blob `{blob}` must be downloaded, but no registry client is set up"))
        })?;
        let mut last = String::new();
        for repo in &remote.repositories {
            let t = self.temp_file("pull")?;
            let mut w = HashWriter::new(io::BufWriter::with_capacity(256 * 1024, &t.file));
            let got = fetcher.fetch(repo, blob, &remote, &mut w, &|done, total| progress(blob, done, total));
            match got.and_then(|()| w.flush().map_err(|e| e.to_string())) {
                Ok(()) if w.digest() == *blob => {
                    drop(w);
                    return self.persist_blob(t, blob);
                }
                Ok(()) => last = format!("`{repo}` sent content with digest `{}`", w.digest()),
                Err(e) => last = e,
            }
        }
        Err(StoreError::Corrupt {
            path: self.layout.remote_blob(blob),
            message: format!("cannot download blob `{blob}`: {last}"),
        })
    }

    /// Serializes work on `key` (a layer id being extracted) between threads.
    pub(crate) fn lazy_lock(&self, key: &str) -> KeyGuard<'_> {
        self.lazy.locks.lock(key)
    }
}

impl Store {
    /// This store's builder id in shared caches (SPEC.md §10): 12 hex digits drawn at
    /// random the first time and kept in the store. It names the tag this store writes its
    /// cache index to; it never enters a cache key.
    pub fn builder_id(&self) -> Result<String, StoreError> {
        let p = self.layout.builder_id_path();
        if let Some(id) = fs::read_to_string(&p).ok().map(|s| s.trim().to_string()).filter(|s| s.len() == 12) {
            return Ok(id);
        }
        let _g = self.lock()?;
        if let Some(id) = fs::read_to_string(&p).ok().map(|s| s.trim().to_string()).filter(|s| s.len() == 12) {
            return Ok(id);
        }
        let mut bytes = [0u8; 6];
        let mut f = fs::File::open("/dev/urandom").map_err(io_err("open", std::path::Path::new("/dev/urandom")))?;
        io::Read::read_exact(&mut f, &mut bytes).map_err(io_err("read", std::path::Path::new("/dev/urandom")))?;
        let id = hex::encode(bytes);
        self.write_atomic(&p, id.as_bytes())?;
        Ok(id)
    }

    /// Serializes this store's writers of shared-cache indexes (between processes too).
    pub(crate) fn cache_export_lock(&self) -> Result<super::LockGuard, StoreError> {
        let p = self.layout.cache_export_lock_path();
        let f = fs::File::options().create(true).truncate(false).write(true).open(&p).map_err(io_err("open", &p))?;
        super::sys::flock(&f, libc::LOCK_EX).map_err(io_err("lock", &p))?;
        Ok(super::LockGuard(f))
    }
}

impl std::fmt::Debug for Lazy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lazy {{ fetcher: {} }}", if self.fetcher.get().is_some() { "set" } else { "none" })
    }
}
