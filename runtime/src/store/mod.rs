//! The on-disk store: content-addressed blobs, layer directories, the cache index and
//! image tags, under one root (`$CAIRN_ROOT`, else `/var/lib/cairn` for root, else
//! `$XDG_DATA_HOME/cairn`).
//!
//! Layout:
//! - `blobs/sha256/<hex>` — OCI blobs (layers, configs, manifests);
//! - `layers/<id>/` — immutable layer directories in overlay upper format; built layers
//!   have random ids (`l…`), imported ones are named after their diff_id (`i…`), so a
//!   base layer is extracted once and shared by every image and build;
//! - `layermeta/<id>.json` — a layer's diff_id and blob once it has been packed;
//! - `cache/<key>` — the cache index: a vertex key → its output layer chains;
//! - `images.json` — tags → image records;
//! - `tmp/` — work in progress, named `<pid>-…`.
//!
//! Crash safety: every file is written to `tmp/` and renamed into place, every layer
//! directory is built in `tmp/` and renamed; a reader never sees half of anything.
//! Leftovers in `tmp/` whose owner process is gone are removed at open. `images.json` is
//! read-modify-written under an exclusive `flock` on `lock`, so concurrent builds on one
//! store are safe.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_ir::Digest;
use serde::{Deserialize, Serialize};

/// A store error: what failed and on which path.
#[derive(Debug)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

impl From<StoreError> for io::Error {
    fn from(e: StoreError) -> io::Error {
        io::Error::other(e.0)
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

fn err(what: &str, p: &Path, e: impl fmt::Display) -> StoreError {
    StoreError(format!("{what} `{}`: {e}", p.display()))
}

/// The default store root.
pub fn default_root() -> PathBuf {
    if let Some(r) = std::env::var_os("CAIRN_ROOT").filter(|r| !r.is_empty()) {
        return PathBuf::from(r);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/cairn");
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|r| !r.is_empty()) {
        return PathBuf::from(x).join("cairn");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/cairn")
}

/// What the store knows about a packed layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMeta {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// The blob as stored (compressed or not).
    pub blob: Digest,
    pub size: u64,
    pub media_type: String,
}

/// An image in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    /// Layer ids, bottom first.
    pub layers: Vec<String>,
    /// Bytes of the manifest, config and layer blobs.
    pub size: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Images {
    tags: BTreeMap<String, ImageRecord>,
}

/// A layer being written; removed on drop unless committed.
#[derive(Debug)]
pub struct NewLayer {
    pub upper: PathBuf,
    pub work: PathBuf,
    dir: PathBuf,
    committed: bool,
}

impl Drop for NewLayer {
    fn drop(&mut self) {
        if !self.committed {
            remove_tree(&self.dir);
        }
    }
}

/// Removes a directory tree, making read-only overlay work dirs removable first.
pub fn remove_tree(p: &Path) {
    if fs::remove_dir_all(p).is_err() {
        // Overlay work dirs hold a mode-000 `work` directory.
        let _ = std::process::Command::new("chmod").arg("-R").arg("u+rwx").arg(p).status();
        let _ = fs::remove_dir_all(p);
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A name unique to this process and call, for temporary entries.
fn tmp_name(tag: &str) -> String {
    format!("{}-{}-{tag}", std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst))
}

/// A random-enough id for a built layer (time, pid and a counter through BLAKE3).
fn new_id(prefix: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut h = blake3::Hasher::new();
    h.update(&now.as_nanos().to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    h.update(&SEQ.fetch_add(1, Ordering::SeqCst).to_le_bytes());
    format!("{prefix}{}", &h.finalize().to_hex()[..20])
}

/// An exclusive lock on the store's lock file, released on drop.
pub struct Lock(fs::File);

impl Drop for Lock {
    fn drop(&mut self) {
        // SAFETY: our own descriptor.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `root` and removes leftovers of dead
    /// processes from `tmp/`.
    pub fn open(root: &Path) -> Result<Store> {
        for d in ["blobs/sha256", "layers", "layermeta", "cache", "tmp"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(|e| err("Cannot create store directory", &p, e))?;
        }
        let s = Store { root: root.to_path_buf() };
        s.clean_tmp();
        Ok(s)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn clean_tmp(&self) {
        let Ok(rd) = fs::read_dir(self.root.join("tmp")) else { return };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let alive = name
                .split('-')
                .next()
                .and_then(|p| p.parse::<u32>().ok())
                .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
            if !alive {
                remove_tree(&e.path());
            }
        }
    }

    pub fn lock(&self) -> Result<Lock> {
        let p = self.root.join("lock");
        let f = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&p).map_err(|e| err("Cannot open", &p, e))?;
        // SAFETY: our own descriptor.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(err("Cannot lock", &p, io::Error::last_os_error()));
        }
        Ok(Lock(f))
    }

    /// A fresh temporary path under `tmp/` (not created).
    pub fn tmp_path(&self, tag: &str) -> PathBuf {
        self.root.join("tmp").join(tmp_name(tag))
    }

    /// Writes `bytes` to `dest` through a temporary file and a rename.
    pub fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = self.tmp_path("w");
        let mut f = fs::File::create(&tmp).map_err(|e| err("Cannot write", &tmp, e))?;
        f.write_all(bytes).and_then(|_| f.sync_data()).map_err(|e| err("Cannot write", &tmp, e))?;
        fs::rename(&tmp, dest).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            err("Cannot write", dest, e)
        })
    }

    // ---- layers ----

    pub fn layer_path(&self, id: &str) -> PathBuf {
        self.root.join("layers").join(id)
    }

    pub fn new_layer(&self) -> Result<NewLayer> {
        let dir = self.tmp_path("layer");
        let upper = dir.join("upper");
        let work = dir.join("work");
        for d in [&upper, &work] {
            fs::create_dir_all(d).map_err(|e| err("Cannot create", d, e))?;
        }
        Ok(NewLayer { upper, work, dir, committed: false })
    }

    /// Moves a finished layer into `layers/` and returns its id.
    pub fn commit_layer(&self, mut l: NewLayer) -> Result<String> {
        let id = new_id("l");
        let dest = self.layer_path(&id);
        fs::rename(&l.upper, &dest).map_err(|e| err("Cannot commit layer", &dest, e))?;
        l.committed = true;
        remove_tree(&l.dir);
        Ok(id)
    }

    pub fn layer_meta(&self, id: &str) -> Option<LayerMeta> {
        let p = self.root.join("layermeta").join(format!("{id}.json"));
        serde_json::from_slice(&fs::read(p).ok()?).ok()
    }

    pub fn set_layer_meta(&self, id: &str, m: &LayerMeta) -> Result<()> {
        let p = self.root.join("layermeta").join(format!("{id}.json"));
        self.write_atomic(&p, &serde_json::to_vec(m).expect("serializable"))
    }

    /// The id under which a layer with this diff_id is (or would be) imported.
    pub fn imported_layer_id(diff_id: &Digest) -> String {
        format!("i{}", &diff_id.hex()[..20])
    }

    /// Imports a layer given as an uncompressed tar stream (extracting it once): returns
    /// its id. An existing import of the same diff_id is reused.
    pub fn import_layer(&self, diff_id: &Digest, tar: &mut dyn io::Read) -> Result<String> {
        let id = Store::imported_layer_id(diff_id);
        let dest = self.layer_path(&id);
        if dest.exists() {
            return Ok(id);
        }
        let tmp = self.tmp_path("import");
        crate::layer::extract_layer_tar(tar, &tmp).map_err(|e| {
            remove_tree(&tmp);
            StoreError(format!("Cannot extract layer {diff_id}: {e}"))
        })?;
        if let Err(e) = fs::rename(&tmp, &dest) {
            remove_tree(&tmp);
            if !dest.exists() {
                return Err(err("Cannot store layer", &dest, e));
            }
            // Another process imported it at the same time: theirs is as good.
        }
        Ok(id)
    }

    // ---- blobs ----

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::of(bytes);
        let p = self.blob_path(&d);
        if !p.exists() {
            self.write_atomic(&p, bytes)?;
        }
        Ok(d)
    }

    /// Moves a finished temporary file in as the blob `d`.
    pub fn put_blob_file(&self, tmp: &Path, d: &Digest) -> Result<()> {
        let p = self.blob_path(d);
        fs::rename(tmp, &p).map_err(|e| err("Cannot store blob", &p, e))
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        fs::read(&p).map_err(|e| err("Cannot read blob", &p, e))
    }

    // ---- cache index ----

    fn cache_path(&self, key: &str) -> PathBuf {
        self.root.join("cache").join(key)
    }

    /// The output chains recorded under `key`, if every layer still exists.
    pub fn cache_get(&self, key: &str) -> Result<Option<Vec<Vec<String>>>> {
        let p = self.cache_path(key);
        let bytes = match fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err("Cannot read cache record", &p, e)),
        };
        let Ok(chains) = serde_json::from_slice::<Vec<Vec<String>>>(&bytes) else { return Ok(None) };
        if chains.iter().flatten().any(|id| !self.layer_path(id).is_dir()) {
            return Ok(None);
        }
        Ok(Some(chains))
    }

    pub fn cache_put(&self, key: &str, chains: &[Vec<String>]) -> Result<()> {
        self.write_atomic(&self.cache_path(key), &serde_json::to_vec(chains).expect("serializable"))
    }

    // ---- images ----

    fn read_images(&self) -> Result<Images> {
        let p = self.root.join("images.json");
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| err("Corrupt image index", &p, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Images::default()),
            Err(e) => Err(err("Cannot read", &p, e)),
        }
    }

    fn write_images(&self, i: &Images) -> Result<()> {
        self.write_atomic(&self.root.join("images.json"), &serde_json::to_vec_pretty(i).expect("serializable"))
    }

    /// Tags `rec` as `name` (normalized).
    pub fn tag_image(&self, name: &str, rec: &ImageRecord) -> Result<String> {
        let n = cairn_ir::reference::normalize(name).map_err(|e| StoreError(format!("Invalid tag `{name}`: {e}")))?;
        let _l = self.lock()?;
        let mut i = self.read_images()?;
        i.tags.insert(n.clone(), rec.clone());
        self.write_images(&i)?;
        Ok(n)
    }

    /// An image by reference: a tag (`busybox`, `docker.io/library/busybox:latest`) or
    /// `name@sha256:…` / `sha256:…` by manifest digest.
    pub fn get_image(&self, reference: &str) -> Result<Option<ImageRecord>> {
        let i = self.read_images()?;
        let by_digest = |d: &str| i.tags.values().find(|r| r.manifest_digest.to_string() == d).cloned();
        if reference.starts_with("sha256:") {
            return Ok(by_digest(reference));
        }
        let n = match cairn_ir::reference::normalize(reference) {
            Ok(n) => n,
            Err(_) => return Ok(None),
        };
        if let Some((_, d)) = n.split_once('@') {
            return Ok(by_digest(d));
        }
        Ok(i.tags.get(&n).cloned())
    }

    pub fn list_images(&self) -> Result<Vec<(String, ImageRecord)>> {
        Ok(self.read_images()?.tags.into_iter().collect())
    }

    /// Removes a tag; false when there was none.
    pub fn remove_image(&self, name: &str) -> Result<bool> {
        let n = cairn_ir::reference::normalize(name).map_err(|e| StoreError(format!("Invalid image name `{name}`: {e}")))?;
        let _l = self.lock()?;
        let mut i = self.read_images()?;
        let found = i.tags.remove(&n).is_some();
        self.write_images(&i)?;
        Ok(found)
    }

    /// Removes layers, layer metadata and blobs that no tag and no cache record uses
    /// (with `all`, cache records and cache mounts go too). Returns freed bytes.
    pub fn prune(&self, all: bool) -> Result<u64> {
        let _l = self.lock()?;
        let mut freed = 0;
        if all {
            for dir in ["cache", "cachemounts"] {
                let p = self.root.join(dir);
                freed += dir_size(&p);
                remove_tree(&p);
                let _ = fs::create_dir_all(&p);
            }
            fs::create_dir_all(self.root.join("cache")).map_err(|e| err("Cannot create", &self.root.join("cache"), e))?;
        }
        let images = self.read_images()?;
        let mut live_layers: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut live_blobs: std::collections::HashSet<String> = std::collections::HashSet::new();
        for r in images.tags.values() {
            live_layers.extend(r.layers.iter().cloned());
            live_blobs.insert(r.manifest_digest.hex());
            live_blobs.insert(r.config_digest.hex());
        }
        if let Ok(rd) = fs::read_dir(self.root.join("cache")) {
            for e in rd.flatten() {
                if let Ok(chains) = serde_json::from_slice::<Vec<Vec<String>>>(&fs::read(e.path()).unwrap_or_default()) {
                    live_layers.extend(chains.into_iter().flatten());
                }
            }
        }
        for id in &live_layers {
            if let Some(m) = self.layer_meta(id) {
                live_blobs.insert(m.blob.hex());
            }
        }
        if let Ok(rd) = fs::read_dir(self.root.join("layers")) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                if !live_layers.contains(&id) {
                    freed += dir_size(&e.path());
                    remove_tree(&e.path());
                    let _ = fs::remove_file(self.root.join("layermeta").join(format!("{id}.json")));
                }
            }
        }
        if let Ok(rd) = fs::read_dir(self.root.join("blobs/sha256")) {
            for e in rd.flatten() {
                if !live_blobs.contains(&e.file_name().to_string_lossy().into_owned()) {
                    freed += e.metadata().map(|m| m.len()).unwrap_or(0);
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        Ok(freed)
    }

    /// Bytes used per area: blobs, layers, cache mounts, everything.
    pub fn disk_usage(&self) -> Vec<(&'static str, u64)> {
        let parts = [("blobs", "blobs"), ("layers", "layers"), ("cache mounts", "cachemounts"), ("cache index", "cache")];
        let mut v: Vec<(&'static str, u64)> = parts.iter().map(|(n, d)| (*n, dir_size(&self.root.join(d)))).collect();
        let total = v.iter().map(|(_, s)| s).sum();
        v.push(("total", total));
        v
    }
}

/// Apparent size of a tree (hard links counted once).
pub fn dir_size(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else if seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("cairn-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn layers_cache_and_leftovers() {
        let root = tmp("basic");
        let s = Store::open(&root).unwrap();
        let l = s.new_layer().unwrap();
        fs::write(l.upper.join("f"), "x").unwrap();
        let id = s.commit_layer(l).unwrap();
        assert_eq!(fs::read_to_string(s.layer_path(&id).join("f")).unwrap(), "x");
        let dropped = s.new_layer().unwrap();
        let dir = dropped.upper.parent().unwrap().to_path_buf();
        drop(dropped);
        assert!(!dir.exists(), "an uncommitted layer is removed");
        s.cache_put("k", &[vec![id.clone()]]).unwrap();
        assert_eq!(s.cache_get("k").unwrap(), Some(vec![vec![id.clone()]]));
        assert_eq!(s.cache_get("missing").unwrap(), None);
        // A record whose layer vanished is a miss, not an error.
        s.cache_put("k2", &[vec!["lgone".into()]]).unwrap();
        assert_eq!(s.cache_get("k2").unwrap(), None);
        // A killed process's leftovers (pid that cannot exist) are removed at open; a
        // half-written cache record is a miss.
        let stale = root.join("tmp/999999999-0-layer");
        fs::create_dir_all(stale.join("work/work")).unwrap();
        fs::write(root.join("cache/half"), b"[[\"l").unwrap();
        let s = Store::open(&root).unwrap();
        assert!(!stale.exists());
        assert_eq!(s.cache_get("half").unwrap(), None);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn tags_concurrently_and_prune() {
        let root = tmp("tags");
        let s = Store::open(&root).unwrap();
        let cfg = s.put_blob(b"{}").unwrap();
        let rec = |n: u8| ImageRecord { manifest_digest: Digest::of(&[n]), config_digest: cfg, layers: vec![], size: 0 };
        std::thread::scope(|sc| {
            for t in 0..4u8 {
                let s = s.clone();
                sc.spawn(move || {
                    for i in 0..10u8 {
                        s.tag_image(&format!("img{t}:{i}"), &rec(t * 10 + i)).unwrap();
                    }
                });
            }
        });
        assert_eq!(s.list_images().unwrap().len(), 40, "no tag lost to a race");
        assert_eq!(s.get_image("img1:3").unwrap(), Some(rec(13)));
        assert_eq!(s.get_image("docker.io/library/img1:3").unwrap(), Some(rec(13)));
        assert_eq!(s.get_image(&Digest::of(&[13]).to_string()).unwrap(), Some(rec(13)));
        assert!(s.remove_image("img1:3").unwrap());
        assert!(!s.remove_image("img1:3").unwrap());
        let orphan = s.put_blob(b"orphan").unwrap();
        let l = s.new_layer().unwrap();
        let lid = s.commit_layer(l).unwrap();
        s.prune(false).unwrap();
        assert!(!s.blob_path(&orphan).exists());
        assert!(s.blob_path(&cfg).exists(), "a tagged image's config stays");
        assert!(!s.layer_path(&lid).exists());
        fs::remove_dir_all(&root).unwrap();
    }
}
