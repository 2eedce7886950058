//! Content hashing of trees (BLAKE3) with a persistent stat cache, the input of cache keys.
//!
//! The content hash of an entry covers its type, permission bits, uid, gid and: for a
//! regular file its size and bytes; for a symlink its target; for a device its rdev; for a
//! directory the sorted list of (name, child hash) of its visible children. It never covers
//! timestamps nor the name of the hashed root. Overlay whiteouts (char device 0/0) are
//! skipped: hashes are taken over merged views.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::pattern::Filter;

/// A 32-byte BLAKE3 content hash.
pub type Hash = [u8; 32];

/// What the stat cache remembers about a file whose content was hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StatEntry {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
    hash: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StatFile {
    files: HashMap<String, StatEntry>,
    /// Memoized selection hashes over immutable layer chains.
    selections: HashMap<String, String>,
}

/// (size, mtime, ctime, inode) → content hash of regular files, and memoized hashes of
/// selections over immutable layer chains. Persisted as JSON, written atomically.
#[derive(Debug, Default)]
pub struct StatCache {
    path: Option<PathBuf>,
    inner: Mutex<StatFile>,
    dirty: Mutex<bool>,
}

impl StatCache {
    /// An in-memory cache (tests, `--no-cache`).
    pub fn in_memory() -> StatCache {
        StatCache::default()
    }

    /// Loads the cache from `path`; a missing or corrupt file gives an empty cache.
    pub fn load(path: &Path) -> StatCache {
        let inner = fs::read(path).ok().and_then(|b| serde_json::from_slice::<StatFile>(&b).ok()).unwrap_or_default();
        StatCache { path: Some(path.to_path_buf()), inner: Mutex::new(inner), dirty: Mutex::new(false) }
    }

    /// Writes the cache back (temp file + rename) if it changed.
    pub fn save(&self) -> io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        if !*self.dirty.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(());
        }
        let bytes = {
            let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            serde_json::to_vec(&*inner).map_err(io::Error::other)?
        };
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        fs::write(&tmp, bytes)?;
        fs::rename(&tmp, path)
    }

    fn lookup(&self, path: &Path, md: &fs::Metadata) -> Option<Hash> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let e = inner.files.get(path.to_str()?)?;
        if e.size == md.size()
            && e.ino == md.ino()
            && e.dev == md.dev()
            && e.mtime_ns == ns(md.mtime(), md.mtime_nsec())
            && e.ctime_ns == ns(md.ctime(), md.ctime_nsec())
        {
            from_hex(&e.hash)
        } else {
            None
        }
    }

    fn remember(&self, path: &Path, md: &fs::Metadata, hash: &Hash) {
        let Some(p) = path.to_str() else { return };
        let entry = StatEntry {
            size: md.size(),
            mtime_ns: ns(md.mtime(), md.mtime_nsec()),
            ctime_ns: ns(md.ctime(), md.ctime_nsec()),
            ino: md.ino(),
            dev: md.dev(),
            hash: hex::encode(hash),
        };
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).files.insert(p.to_string(), entry);
        *self.dirty.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }

    /// A memoized hash for `key` (e.g. a layer chain and a selection).
    pub fn selection(&self, key: &str) -> Option<Hash> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.selections.get(key).and_then(|h| from_hex(h))
    }

    pub fn set_selection(&self, key: &str, hash: &Hash) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).selections.insert(key.to_string(), hex::encode(hash));
        *self.dirty.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }
}

fn ns(s: i64, n: i64) -> i128 {
    s as i128 * 1_000_000_000 + n as i128
}

fn from_hex(s: &str) -> Option<Hash> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Is this metadata an overlay whiteout (char device 0/0)?
pub fn is_whiteout(md: &fs::Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

/// Options of one hashing pass.
pub struct HashOpts<'a> {
    /// Filter over paths relative to `filter_base` (e.g. the context root).
    pub filter: Option<&'a Filter>,
    /// Use the stat cache for regular files (only for stable host paths).
    pub stat_cache: Option<&'a StatCache>,
}

/// Content hash of the entry at `path` (not following a final symlink). `rel` is the
/// path relative to the filter base, used for filtering children.
pub fn hash_entry(path: &Path, rel: &str, opts: &HashOpts) -> io::Result<Hash> {
    let md = fs::symlink_metadata(path)?;
    hash_with_meta(path, rel, &md, opts)
}

fn header(h: &mut blake3::Hasher, kind: u8, md: &fs::Metadata) {
    h.update(&[kind]);
    h.update(&(md.mode() & 0o7777).to_le_bytes());
    h.update(&md.uid().to_le_bytes());
    h.update(&md.gid().to_le_bytes());
}

fn hash_with_meta(path: &Path, rel: &str, md: &fs::Metadata, opts: &HashOpts) -> io::Result<Hash> {
    let ft = md.file_type();
    let mut h = blake3::Hasher::new();
    if ft.is_file() {
        header(&mut h, b'f', md);
        h.update(&md.size().to_le_bytes());
        h.update(&file_content_hash(path, md, opts.stat_cache)?);
    } else if ft.is_symlink() {
        header(&mut h, b'l', md);
        let target = fs::read_link(path)?;
        h.update(target.as_os_str().as_encoded_bytes());
    } else if ft.is_dir() {
        header(&mut h, b'd', md);
        let mut children: Vec<(String, fs::Metadata)> = Vec::new();
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let cmd = entry.metadata()?;
            if is_whiteout(&cmd) {
                continue;
            }
            let crel = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            if let Some(f) = opts.filter {
                let descend = cmd.is_dir() && f.may_descend(&crel);
                if !f.visible(&crel) && !descend {
                    continue;
                }
            }
            children.push((name, cmd));
        }
        children.sort_by(|a, b| a.0.cmp(&b.0));
        let hashes: Vec<io::Result<Hash>> = children
            .par_iter()
            .map(|(name, cmd)| {
                let crel = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
                hash_with_meta(&path.join(name), &crel, cmd, opts)
            })
            .collect();
        for ((name, _), ch) in children.iter().zip(hashes) {
            h.update(&(name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            h.update(&ch?);
        }
    } else {
        header(&mut h, b's', md);
        h.update(&md.rdev().to_le_bytes());
    }
    Ok(*h.finalize().as_bytes())
}

fn file_content_hash(path: &Path, md: &fs::Metadata, cache: Option<&StatCache>) -> io::Result<Hash> {
    if let Some(c) = cache {
        if let Some(h) = c.lookup(path, md) {
            return Ok(h);
        }
    }
    let mut f = fs::File::open(path)?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let out = *h.finalize().as_bytes();
    if let Some(c) = cache {
        c.remember(path, md, &out);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cairn-hash-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn h(p: &Path) -> Hash {
        hash_entry(p, "", &HashOpts { filter: None, stat_cache: None }).unwrap()
    }

    #[test]
    fn mtime_and_root_name_do_not_matter_content_and_mode_do() {
        let a = tmpdir("a");
        let b = tmpdir("b");
        for d in [&a, &b] {
            fs::write(d.join("f"), b"hello").unwrap();
            std::os::unix::fs::symlink("f", d.join("l")).unwrap();
        }
        assert_eq!(h(&a), h(&b));
        let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        fs::File::options().write(true).open(a.join("f")).unwrap().set_modified(t).unwrap();
        assert_eq!(h(&a), h(&b));
        fs::set_permissions(b.join("f"), fs::Permissions::from_mode(0o755)).unwrap();
        assert_ne!(h(&a), h(&b));
        fs::set_permissions(b.join("f"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(a.join("f"), fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(h(&a), h(&b));
        fs::write(b.join("f"), b"hellO").unwrap();
        assert_ne!(h(&a), h(&b));
        fs::remove_dir_all(&a).unwrap();
        fs::remove_dir_all(&b).unwrap();
    }

    #[test]
    fn filter_hides_unselected_files() {
        let a = tmpdir("filter");
        fs::write(a.join("keep"), b"1").unwrap();
        let filt = Filter::new(&[], &["junk".to_string()]).unwrap();
        let opts = HashOpts { filter: Some(&filt), stat_cache: None };
        let before = hash_entry(&a, "", &opts).unwrap();
        fs::write(a.join("junk"), b"2").unwrap();
        assert_eq!(before, hash_entry(&a, "", &opts).unwrap());
        assert_ne!(before, h(&a));
        fs::remove_dir_all(&a).unwrap();
    }

    #[test]
    fn stat_cache_round_trips_and_detects_changes() {
        let a = tmpdir("stat");
        fs::write(a.join("f"), b"one").unwrap();
        let cache_path = a.join("statcache");
        let cache = StatCache::load(&cache_path);
        let opts = HashOpts { filter: None, stat_cache: Some(&cache) };
        let h1 = hash_entry(&a.join("f"), "", &opts).unwrap();
        cache.save().unwrap();
        let cache2 = StatCache::load(&cache_path);
        let md = fs::symlink_metadata(a.join("f")).unwrap();
        assert!(cache2.lookup(&a.join("f"), &md).is_some());
        fs::write(a.join("f"), b"two").unwrap();
        let opts2 = HashOpts { filter: None, stat_cache: Some(&cache2) };
        assert_ne!(h1, hash_entry(&a.join("f"), "", &opts2).unwrap());
        fs::remove_dir_all(&a).unwrap();
    }
}
