//! The on-disk store: content-addressed blobs, immutable layer directories, the cache
//! index, image records and tags, under one root directory.
//!
//! Paths are named by [`StoreLayout`] (`layout.rs`, which draws the tree).
//!
//! **Layers are directories, not tars.** A vertex result is a chain of layer directories
//! that overlayfs stacks directly (deletions are character devices 0:0, opaque directories
//! carry `trusted.overlay.opaque=y`), so a cache hit or a base image costs no copying. Tars
//! are produced only when an image is exported ([`crate::image`]), once per layer and
//! packing parameters, and remembered in `layermeta/`.
//!
//! **Crash safety by temp-and-rename.** Every file or directory is first written under
//! `tmp/` and then renamed into place, so a reader sees either nothing or a complete entry,
//! and a process killed at any instant leaves only `tmp/` entries behind. Names in `tmp/`
//! start with the owner's pid; [`Store::open`] deletes those whose owner is gone. Small
//! metadata files are fsynced before the rename; layer directories are not (they are
//! reproducible, and thousands of fsyncs would dominate build time).
//!
//! **Concurrency.** Content-addressed writes (blobs, image records) need no lock: two
//! writers produce the same bytes and the last rename wins. A cache record is one file per
//! key, replaced atomically. Read-modify-write files (`tags.json`, layer metadata) are
//! updated under an exclusive `flock` on `<root>/lock`, which works between threads and
//! between processes. Every open [`Store`] holds a shared `flock` on `gc.lock` and
//! [`Store::prune`] needs it exclusively, so garbage collection never deletes a layer that a
//! running build has committed but not yet recorded.

mod builds;
mod gc;
mod images;
mod index;
mod io_util;
mod layout;
mod records;
mod remote;
pub(crate) mod sys;
pub mod userns;

pub use builds::KEEP_BUILDS;
pub use gc::{DiskUsage, PruneReport, Usage};
pub use images::ImageRecord;
pub(crate) use images::{diff_ids_of, known_diff_size, normalize_reference};
pub use index::{descriptor_platform, pick_manifest, PlatformImage};
pub(crate) use io_util::{EagerWriteback, HashReader, HashWriter};
pub use layout::StoreLayout;
pub use remote::{BlobFetcher, FetchProgress, RemoteBlob};

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use cairn_ir::Digest;
use serde::{Deserialize, Serialize};

/// Length of a layer id: 12 hex digits keep overlay mount options short (a page holds the
/// options of ~100 stacked layers) and collisions are caught by a no-replace rename.
const LAYER_ID_LEN: usize = 12;

/// Temp names are unique per process: pid plus this counter.
static SEQ: AtomicU64 = AtomicU64::new(0);

/// Why a store operation failed. Messages name the path or the reference involved.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// A filesystem operation on `path` failed.
    Io { action: &'static str, path: PathBuf, source: io::Error },
    /// A file of the store or of an imported archive has unexpected content.
    Corrupt { path: PathBuf, message: String },
    /// The caller's input is not acceptable (a reference, a key, an archive layout).
    Invalid(String),
    /// An image, blob or layer is not in the store.
    NotFound(String),
    /// Another process uses the store and the operation needs it alone (prune).
    Busy(PathBuf),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io { action, path, source } => write!(f, "Cannot {action} `{}`: {source}", path.display()),
            StoreError::Corrupt { path, message } => write!(f, "Unexpected content in `{}`: {message}", path.display()),
            StoreError::Invalid(m) | StoreError::NotFound(m) => write!(f, "{m}"),
            StoreError::Busy(p) => write!(
                f,
                "The store `{}` is in use by another cairn process; try again when it has finished",
                p.display()
            ),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// `map_err` helper: an I/O error while doing `action` on `path`.
pub(crate) fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { action, path: path.to_path_buf(), source }
}

/// The store root: `$CAIRN_ROOT`, else `/var/lib/cairn` for root, else
/// `$XDG_DATA_HOME/cairn`, else `~/.local/share/cairn` (`/tmp/cairn-<uid>` without a home).
pub fn default_root() -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(r) = env("CAIRN_ROOT") {
        return r;
    }
    if sys::is_root() {
        return PathBuf::from("/var/lib/cairn");
    }
    if let Some(x) = env("XDG_DATA_HOME").filter(|p| p.is_absolute()) {
        return x.join("cairn");
    }
    if let Some(h) = env("HOME") {
        return h.join(".local/share/cairn");
    }
    // SAFETY: getuid has no preconditions.
    PathBuf::from(format!("/tmp/cairn-{}", unsafe { libc::getuid() }))
}

/// A layer being written: `upper` becomes the layer when committed, `work` is the overlay
/// workdir beside it. Both live in one directory under `tmp/` that is removed when this
/// value drops, committed or not (committing moves `upper` out first).
#[derive(Debug)]
pub struct NewLayer {
    pub upper: PathBuf,
    pub work: PathBuf,
    dir: PathBuf,
}

impl Drop for NewLayer {
    fn drop(&mut self) {
        let _ = remove_all(&self.dir);
    }
}

/// One packed tar of a layer: its uncompressed digest (`diff_id`) and the blob stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerBlob {
    pub diff_id: Digest,
    /// Bytes of the uncompressed tar.
    pub diff_size: u64,
    pub blob: Digest,
    pub blob_size: u64,
    /// OCI media type of the blob (`…tar+gzip` or `…tar`).
    pub media_type: String,
}

/// A blob packed from the directory with given parameters (they change the bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackedBlob {
    pub source_date_epoch: Option<u64>,
    /// Absent in metadata written before zstd: gzip.
    #[serde(default)]
    pub compression: crate::oci::Compression,
    pub level: u32,
    pub blob: LayerBlob,
}

/// What the store remembers about a layer besides its directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMeta {
    /// For a layer extracted from an image: the original blob. It is exported as is, so
    /// the image's diff_ids stay valid (re-packing would produce different bytes).
    #[serde(default)]
    pub imported: Option<LayerBlob>,
    /// Blobs packed from the directory by [`crate::image::commit_image`].
    #[serde(default)]
    pub packed: Vec<PackedBlob>,
}

/// A file under `tmp/`, removed on drop unless persisted.
#[derive(Debug)]
pub(crate) struct TempFile {
    pub path: PathBuf,
    pub file: File,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Holds the store's metadata lock until dropped.
pub(crate) struct LockGuard(#[allow(dead_code)] File);

/// Removes a file or a whole tree; directories without write or search permission (an
/// overlay workdir's `work/` is mode 000) are opened up first. Missing is fine.
pub fn remove_all(p: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let md = match p.symlink_metadata() {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !md.is_dir() {
        return fs::remove_file(p).or_else(|e| if e.kind() == io::ErrorKind::NotFound { Ok(()) } else { Err(e) });
    }
    match fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            fs::set_permissions(p, fs::Permissions::from_mode(0o700))?;
            for entry in fs::read_dir(p)? {
                remove_all(&entry?.path())?;
            }
            fs::remove_dir(p)
        }
        Err(e) => Err(e),
    }
}

/// Best-effort [`remove_all`] for cleanup paths where an error has nowhere to go.
pub(crate) fn remove_tree(p: &Path) {
    let _ = remove_all(p);
}

/// Whether `s` can be a file name in the store: 1–128 of `[A-Za-z0-9._-]`, no leading dot.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The on-disk store. Cheap to share between threads (`&Store` is all methods need).
#[derive(Debug)]
pub struct Store {
    layout: StoreLayout,
    /// Lazy layers of pulls: the blob fetcher and per-blob/per-layer locks.
    lazy: remote::Lazy,
    /// `gc.lock`, held shared while the store is open (exclusive during prune).
    gc_lock: Mutex<File>,
    /// Layers known to be available ([`Store::layer_available`]): a cache hit checks every
    /// layer of its chain, so without this a build of n cached steps made O(n²) `stat`s.
    /// Only positives are kept; no other process removes a layer while this store is
    /// open (`gc_lock`), and this one forgets all of them when it prunes.
    available: Mutex<std::collections::HashSet<String>>,
}

impl Store {
    /// Opens (creating if needed) the store at `root`, waits while another process prunes
    /// it, and removes mounts and `tmp/` entries left by processes that no longer run.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let layout = StoreLayout::new(root);
        let lazy = remote::Lazy::default();
        for p in layout.created_at_open() {
            fs::create_dir_all(&p).map_err(io_err("create directory", &p))?;
        }
        let lock_path = layout.gc_lock_path();
        let gc = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(io_err("open", &lock_path))?;
        sys::flock(&gc, libc::LOCK_SH).map_err(io_err("lock", &lock_path))?;
        let store = Store { layout, lazy, gc_lock: Mutex::new(gc), available: Mutex::default() };
        sys::clean_stale_mounts(&store.layout.solve_mnt_dir());
        store.clean_tmp();
        Ok(store)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// The names of everything under the root.
    pub fn layout(&self) -> &StoreLayout {
        &self.layout
    }

    /// Removes `tmp/` entries whose owner process is gone; returns the bytes freed.
    fn clean_tmp(&self) -> u64 {
        let tmp = self.layout.tmp_dir();
        let Ok(entries) = fs::read_dir(&tmp) else { return 0 };
        let mut freed = 0;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
            if !sys::pid_alive(pid) {
                freed += gc::usage_of(&e.path()).bytes;
                let _ = remove_all(&e.path());
            }
        }
        freed
    }

    // ---------------------------------------------------------------- temp files

    /// A fresh path under `tmp/` owned by this process (nothing is created there). If the
    /// process dies, the next [`Store::open`] removes whatever it left at that path.
    pub(crate) fn tmp_path(&self, what: &str) -> PathBuf {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        self.layout.tmp_dir().join(format!("{}-{n}-{what}", std::process::id()))
    }

    /// A new empty file under `tmp/`, deleted on drop unless persisted.
    pub(crate) fn temp_file(&self, what: &str) -> Result<TempFile, StoreError> {
        let path = self.tmp_path(what);
        let file =
            File::options().write(true).read(true).create_new(true).open(&path).map_err(io_err("create", &path))?;
        Ok(TempFile { path, file, keep: false })
    }

    /// Writes `bytes` to `dest` atomically: temp file, fsync, rename.
    pub(crate) fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        self.write_replace(dest, bytes, true)
    }

    /// Writes `bytes` to `dest` by temp file and rename, with an fsync only when `durable`: a
    /// reader sees the old file or the new one, never half of it; without the fsync a power
    /// cut may leave the new name empty or missing (for files the store can lose, such as
    /// build records, whose readers skip what does not parse).
    pub(crate) fn write_replace(&self, dest: &Path, bytes: &[u8], durable: bool) -> Result<(), StoreError> {
        let mut t = self.temp_file("write")?;
        t.file.write_all(bytes).map_err(io_err("write", &t.path))?;
        if durable {
            t.file.sync_all().map_err(io_err("sync", &t.path))?;
        }
        fs::rename(&t.path, dest).map_err(io_err("rename into", dest))?;
        t.keep = true;
        Ok(())
    }

    /// Takes the exclusive metadata lock (between threads and processes).
    pub(crate) fn lock(&self) -> Result<LockGuard, StoreError> {
        let p = self.layout.lock_path();
        let f = File::options().create(true).truncate(false).write(true).open(&p).map_err(io_err("open", &p))?;
        sys::flock(&f, libc::LOCK_EX).map_err(io_err("lock", &p))?;
        Ok(LockGuard(f))
    }

    // ---------------------------------------------------------------- blobs

    /// Where the blob `digest` is (or would be) stored.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.layout.blob(digest)
    }

    /// The path of the blob `digest` if the store has it.
    pub fn get_blob_path(&self, digest: &Digest) -> Option<PathBuf> {
        let p = self.blob_path(digest);
        p.is_file().then_some(p)
    }

    /// Reads a whole blob (for small ones: configs, manifests).
    pub(crate) fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let p = self.blob_path(digest);
        fs::read(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound(format!("Blob `{digest}` is not in the store")),
            _ => StoreError::Io { action: "read", path: p.clone(), source: e },
        })
    }

    /// Stores `bytes` as a blob and returns its digest.
    pub(crate) fn put_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let d = Digest::of(bytes);
        if self.get_blob_path(&d).is_none() {
            let mut t = self.temp_file("blob")?;
            t.file.write_all(bytes).map_err(io_err("write", &t.path))?;
            self.persist_blob(t, &d)?;
        }
        Ok(d)
    }

    /// Copies the file at `src` into the store as a blob (hashing while copying).
    pub(crate) fn put_blob_file(&self, src: &Path) -> Result<Digest, StoreError> {
        let mut input = File::open(src).map_err(io_err("open", src))?;
        let t = self.temp_file("blob")?;
        let mut w = HashWriter::new(io::BufWriter::new(&t.file));
        io::copy(&mut input, &mut w).map_err(io_err("copy", src))?;
        w.flush().map_err(io_err("write", &t.path))?;
        let d = w.digest();
        drop(w);
        if self.get_blob_path(&d).is_none() {
            self.persist_blob(t, &d)?;
        }
        Ok(d)
    }

    /// Moves a finished temp file into `blobs/` under `digest` (the caller computed it).
    pub(crate) fn persist_blob(&self, mut t: TempFile, digest: &Digest) -> Result<PathBuf, StoreError> {
        t.file.sync_all().map_err(io_err("sync", &t.path))?;
        let dest = self.blob_path(digest);
        fs::rename(&t.path, &dest).map_err(io_err("rename into", &dest))?;
        t.keep = true;
        Ok(dest)
    }

    // ---------------------------------------------------------------- layers

    /// The directory of layer `id` (overlay upper-dir format).
    pub(crate) fn layer_path(&self, id: &str) -> PathBuf {
        self.layout.layer(id)
    }

    /// Whether layer `id` exists.
    pub fn layer_exists(&self, id: &str) -> bool {
        valid_name(id) && self.layer_path(id).is_dir()
    }

    /// All layer ids (sorted).
    pub fn list_layers(&self) -> Result<Vec<String>, StoreError> {
        let dir = self.layout.layers_dir();
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
            let e = e.map_err(io_err("read directory", &dir))?;
            out.push(e.file_name().to_string_lossy().into_owned());
        }
        out.sort();
        Ok(out)
    }

    /// A scratch layer (upper and work directories under `tmp/`).
    pub fn new_layer(&self) -> Result<NewLayer, StoreError> {
        let dir = self.tmp_path("layer");
        let (upper, work) = (dir.join("upper"), dir.join("work"));
        for d in [&upper, &work] {
            fs::create_dir_all(d).map_err(io_err("create directory", d))?;
        }
        Ok(NewLayer { upper, work, dir })
    }

    /// A fresh layer id (no directory made).
    fn new_layer_id(&self) -> String {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let mut h = blake3::Hasher::new();
        h.update(self.layout.root().as_os_str().as_encoded_bytes());
        h.update(&std::process::id().to_le_bytes());
        h.update(&n.to_le_bytes());
        h.update(&nanos.to_le_bytes());
        h.finalize().to_hex()[..LAYER_ID_LEN].to_string()
    }

    /// Moves the layer's upper directory to `layers/<id>` and returns the new id.
    pub fn commit_layer(&self, layer: NewLayer) -> Result<String, StoreError> {
        loop {
            let id = self.new_layer_id();
            match self.commit_layer_as(&layer, &id) {
                Ok(true) => return Ok(id),
                Ok(false) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Moves the layer's upper directory to `layers/<id>`; `false` when `id` exists.
    pub(crate) fn commit_layer_as(&self, layer: &NewLayer, id: &str) -> Result<bool, StoreError> {
        let dest = self.layer_path(id);
        match sys::rename_noreplace(&layer.upper, &dest) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists || e.raw_os_error() == Some(libc::ENOTEMPTY) => {
                Ok(false)
            }
            Err(e) => Err(StoreError::Io { action: "commit layer to", path: dest, source: e }),
        }
    }

    /// A lazy layer for the blob `lb` of a pulled image: an id with metadata, no directory
    /// (see `remote.rs`). A layer with the same diff_id, extracted or lazy, is reused.
    pub(crate) fn lazy_layer(&self, lb: &LayerBlob) -> Result<String, StoreError> {
        if let Some(id) = fs::read_to_string(self.layout.diff_id(&lb.diff_id)).ok().map(|s| s.trim().to_string()) {
            if valid_name(&id) && self.layer_available(&id) {
                return Ok(id);
            }
        }
        let id = self.new_layer_id();
        self.update_layer_meta(&id, |m| m.imported = Some(lb.clone()))?;
        self.write_atomic(&self.layout.diff_id(&lb.diff_id), id.as_bytes())?;
        Ok(id)
    }

    fn meta_path(&self, id: &str) -> PathBuf {
        self.layout.layer_meta(id)
    }

    /// What the store knows about layer `id` (empty when nothing yet).
    pub fn layer_meta(&self, id: &str) -> Result<LayerMeta, StoreError> {
        let p = self.meta_path(id);
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| StoreError::Corrupt { path: p, message: e.to_string() }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(LayerMeta::default()),
            Err(e) => Err(StoreError::Io { action: "read", path: p, source: e }),
        }
    }

    /// Read-modify-write of a layer's metadata under the store lock.
    pub(crate) fn update_layer_meta(&self, id: &str, f: impl FnOnce(&mut LayerMeta)) -> Result<(), StoreError> {
        let _g = self.lock()?;
        let mut m = self.layer_meta(id).unwrap_or_default();
        f(&mut m);
        let bytes = serde_json::to_vec(&m).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.write_atomic(&self.meta_path(id), &bytes)
    }

    /// The layer extracted (or packed) with this diff_id, if it still exists.
    pub(crate) fn layer_for_diff_id(&self, diff_id: &Digest) -> Option<String> {
        let id = fs::read_to_string(self.layout.diff_id(diff_id)).ok()?;
        let id = id.trim().to_string();
        self.layer_exists(&id).then_some(id)
    }

    /// Remembers that layer `id` has `diff_id`, unless another existing layer already does.
    pub(crate) fn record_diff_id(&self, diff_id: &Digest, id: &str) -> Result<(), StoreError> {
        if self.layer_for_diff_id(diff_id).is_some() {
            return Ok(());
        }
        self.write_atomic(&self.layout.diff_id(diff_id), id.as_bytes())
    }

    // ---------------------------------------------------------------- cache index

    fn cache_path(&self, key: &str) -> Result<PathBuf, StoreError> {
        if !valid_name(key) {
            return Err(StoreError::Invalid(format!("Invalid cache key `{key}`: expected 1-128 of `A-Za-z0-9._-`")));
        }
        Ok(self.layout.cache_record(key))
    }

    /// The output chains recorded under `key`. A record that names a layer no longer in
    /// the store (or that cannot be parsed) is a miss, so a damaged store only costs work.
    pub fn cache_get(&self, key: &str) -> Result<Option<Vec<Vec<String>>>, StoreError> {
        let p = self.cache_path(key)?;
        let bytes = match fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::Io { action: "read", path: p, source: e }),
        };
        let Some(chains) = self.decode_record(&bytes) else { return Ok(None) };
        // A lazy layer (a pull's, a shared cache's) counts: its bytes come when needed.
        if chains.iter().flatten().any(|id| !self.layer_available(id)) {
            return Ok(None);
        }
        Ok(Some(chains))
    }

    /// Records the output chains of `key` (replacing an older record).
    pub fn cache_put(&self, key: &str, chains: &[Vec<String>]) -> Result<(), StoreError> {
        let p = self.cache_path(key)?;
        if let Some(bad) = chains.iter().flatten().find(|id| !valid_name(id)) {
            return Err(StoreError::Invalid(format!("Invalid layer id `{bad}` in the cache record `{key}`")));
        }
        let bytes = records::encode(chains);
        // No fsync: a record is trusted after a power cut only if a flush started after it
        // was written (`records.rs`), and that flush writes it to disk too.
        self.write_replace(&p, &bytes, false)
    }

    /// Keys of all cache records.
    pub(crate) fn cache_keys(&self) -> Result<Vec<String>, StoreError> {
        let dir = self.layout.cache_dir();
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
            let e = e.map_err(io_err("read directory", &dir))?;
            out.push(e.file_name().to_string_lossy().into_owned());
        }
        out.sort();
        Ok(out)
    }

    // ---------------------------------------------------------------- images and tags

    fn record_path(&self, manifest: &Digest) -> PathBuf {
        self.layout.image_record(manifest)
    }

    /// Stores an image record (by manifest digest).
    pub(crate) fn put_record(&self, rec: &ImageRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(rec).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.write_atomic(&self.record_path(&rec.manifest_digest), &bytes)
    }

    /// The image record with this manifest digest.
    pub(crate) fn read_record(&self, manifest: &Digest) -> Result<Option<ImageRecord>, StoreError> {
        let p = self.record_path(manifest);
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| StoreError::Corrupt { path: p, message: e.to_string() }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io { action: "read", path: p, source: e }),
        }
    }

    /// Manifest digests of all image records.
    pub(crate) fn record_digests(&self) -> Result<Vec<Digest>, StoreError> {
        let dir = self.layout.images_dir();
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
            let e = e.map_err(io_err("read directory", &dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(Ok(d)) = name.strip_suffix(".json").map(|h| format!("sha256:{h}").parse::<Digest>()) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// All tags: normalized reference → manifest digest.
    pub(crate) fn read_tags(&self) -> Result<BTreeMap<String, Digest>, StoreError> {
        let p = self.layout.tags_path();
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| StoreError::Corrupt { path: p, message: e.to_string() }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(StoreError::Io { action: "read", path: p, source: e }),
        }
    }

    /// Read-modify-write of the tags under the store lock; `f`'s result is returned.
    pub(crate) fn update_tags<T>(&self, f: impl FnOnce(&mut BTreeMap<String, Digest>) -> T) -> Result<T, StoreError> {
        let _g = self.lock()?;
        let mut tags = self.read_tags()?;
        let out = f(&mut tags);
        let bytes = serde_json::to_vec_pretty(&tags).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.write_atomic(&self.layout.tags_path(), &bytes)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cairn-store-unit-{}-{name}", std::process::id()));
        let _ = remove_all(&d);
        d
    }

    #[test]
    fn layers_commit_and_scratch_cleanup() {
        let root = tmp("layers");
        let s = Store::open(&root).unwrap();
        let l = s.new_layer().unwrap();
        fs::write(l.upper.join("f"), "x").unwrap();
        let dir = l.dir.clone();
        let id = s.commit_layer(l).unwrap();
        assert_eq!(id.len(), LAYER_ID_LEN);
        assert_eq!(fs::read_to_string(s.layer_path(&id).join("f")).unwrap(), "x");
        assert!(!dir.exists(), "the scratch directory is gone after commit");
        let dropped = s.new_layer().unwrap();
        let d2 = dropped.dir.clone();
        drop(dropped);
        assert!(!d2.exists());
        assert_eq!(s.list_layers().unwrap(), vec![id]);
        remove_all(&root).unwrap();
    }

    #[test]
    fn blobs_are_content_addressed() {
        let root = tmp("blobs");
        let s = Store::open(&root).unwrap();
        let d = s.put_blob(b"hello").unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        assert_eq!(s.read_blob(&d).unwrap(), b"hello");
        let f = root.join("input");
        fs::write(&f, b"hello").unwrap();
        assert_eq!(s.put_blob_file(&f).unwrap(), d);
        assert!(s.get_blob_path(&Digest::of(b"nope")).is_none());
        assert!(matches!(s.read_blob(&Digest::of(b"nope")), Err(StoreError::NotFound(_))));
        assert_eq!(fs::read_dir(root.join("tmp")).unwrap().count(), 0, "no temp file left");
        remove_all(&root).unwrap();
    }

    #[test]
    fn cache_records_and_missing_layers() {
        let root = tmp("cache");
        let s = Store::open(&root).unwrap();
        let l = s.new_layer().unwrap();
        let id = s.commit_layer(l).unwrap();
        assert_eq!(s.cache_get("k1").unwrap(), None);
        s.cache_put("k1", &[vec![id.clone()]]).unwrap();
        assert_eq!(s.cache_get("k1").unwrap(), Some(vec![vec![id.clone()]]));
        s.cache_put("k2", &[vec![id.clone(), "0123456789ab".into()]]).unwrap();
        assert_eq!(s.cache_get("k2").unwrap(), None, "a record naming a missing layer is a miss");
        assert!(s.cache_put("../x", &[]).unwrap_err().to_string().contains("Invalid cache key `../x`"));
        fs::write(root.join("cache/k3"), b"{not json").unwrap();
        assert_eq!(s.cache_get("k3").unwrap(), None);
        remove_all(&root).unwrap();
    }

    #[test]
    fn remove_all_handles_mode_000_dirs() {
        use std::os::unix::fs::PermissionsExt;
        let root = tmp("rm");
        fs::create_dir_all(root.join("a/work")).unwrap();
        fs::write(root.join("a/work/f"), "x").unwrap();
        fs::set_permissions(root.join("a/work"), fs::Permissions::from_mode(0o000)).unwrap();
        remove_all(&root).unwrap();
        assert!(!root.exists());
    }
}
