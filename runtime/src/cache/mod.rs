//! Build caches shared by many machines through registries and directories (issue 14;
//! the format is SPEC.md §10).
//!
//! **The artifact.** A cache is an OCI image manifest whose config blob is the *cache
//! index* (media type [`MEDIA_CACHE_INDEX`]: cache keys → result chains, each layer a blob
//! with its diff_id) and whose layers are the result blobs. It lives in a registry
//! (`--cache-to type=registry,ref=REF`) or in an OCI layout directory (`type=local`).
//!
//! **Inline** (`--cache-to type=inline`, [`inline_annotation`]): the `mode=min` index rides
//! in the image manifest's annotation [`ANNOTATION_INLINE`] and names the image's own
//! layers, so `--cache-from IMAGE` reads it from the manifest alone. An annotation, not a
//! config field as BuildKit's `moby.buildkit.cache.v0`: the config (the image ID) stays
//! what a build without inline cache gives, and the reader needs one request, not two.
//!
//! **Import is lazy** ([`SharedCache::import`] reads indexes only). On a local miss, the
//! runtime backend asks [`SharedCache::lookup`]; a hit becomes lazy layers of the store
//! (`store/remote.rs`: metadata naming the blob and where to fetch it), so nothing is
//! downloaded until a later miss or an export needs the bytes, and a push of the image
//! mounts the blobs from the cache repository. A cache blob that cannot be downloaded
//! intact (its digest is checked) is remembered as bad ([`SharedCache::bad_blobs`]); the
//! build then solves again without the records that use it, so the step runs.
//!
//! **Many writers: one index per builder.** Each store has a builder id
//! ([`Store::builder_id`]); it writes its index under the tag `TAG.<id>` (merging with what
//! it wrote there before, under a store lock), and a reader of `REF` reads `TAG` and every
//! `TAG.<12 hex>` tag. No two builders ever write one tag, so no entry is lost to a race,
//! and no conditional update is needed (distribution has none).

mod export;
mod format;
mod mounts;

pub use export::{export, inline_annotation};
use format::*;
pub use format::{decode_index, encode_index, CacheLayer, Records};
pub use mounts::{export_mounts, import_mounts, MountReport, ANNOTATION_MOUNT};

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cairn_ir::Digest;
use cairn_registry::Reference;

use crate::registry::Registry;
use crate::solve::backend::{CacheKey, Chain};
use crate::store::{BlobFetcher, HashWriter, RemoteBlob, Store, StoreError};

/// `artifactType` of the cache manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.cairn.cache.v1";
/// Media type of the config blob: the cache index (JSON).
pub const MEDIA_CACHE_INDEX: &str = "application/vnd.cairn.cache.index.v1+json";
/// The index `version` this runtime writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The manifest annotation holding an inline cache index (its JSON text).
pub const ANNOTATION_INLINE: &str = "cairn.cache.index.v1";
/// The largest index read (bytes).
const MAX_INDEX: u64 = 64 << 20;
/// How a local cache directory is named as a blob's "repository" in the store.
const LOCAL_PREFIX: &str = "oci-layout://";
/// The ref name of the cache manifest in a local layout's `index.json`.
const LOCAL_REF_NAME: &str = "cairn-cache";

/// `mode=` of `--cache-to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// The results the final image contains.
    Min,
    /// Every vertex result of the build.
    Max,
}

/// Where a cache lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLocation {
    /// `type=registry,ref=REF` (or a bare REF).
    Registry(String),
    /// `type=local,src|dest=DIR`: an OCI layout directory.
    Local(PathBuf),
    /// `--cache-to type=inline`: in the built image's manifest (read back through
    /// `Registry` with the image's reference).
    Inline,
}

/// One `--cache-to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheExport {
    pub location: CacheLocation,
    pub mode: CacheMode,
    /// `ignore-error=true`: a failed export is a notice, not a failed build.
    pub ignore_error: bool,
    /// `cache-mounts=true`: the contents of the store's cache mounts travel too.
    pub cache_mounts: bool,
}

/// Why reading or writing a shared cache failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum CacheError {
    Registry(String),
    Store(StoreError),
    /// The cache is not in a format this runtime reads.
    Invalid(String),
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::Registry(m) | CacheError::Invalid(m) => write!(f, "{m}"),
            CacheError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CacheError {}

impl From<StoreError> for CacheError {
    fn from(e: StoreError) -> Self {
        CacheError::Store(e)
    }
}

impl From<cairn_registry::RegistryError> for CacheError {
    fn from(e: cairn_registry::RegistryError) -> Self {
        CacheError::Registry(e.to_string())
    }
}

/// An index with the cache mounts of its artifact.
type Read = (Records, Vec<mounts::MountBlob>);

/// How many builder tags of one cache ref are read at once. Each tag is two small
/// requests (manifest, index), so a cache written by N builders costs 2N + 1 round trips
/// before the first step: at 100 builders and 30 ms a round trip, 6 s one after another,
/// under 1 s eight at a time.
const TAG_READERS: usize = 8;

/// [`read_registry_tag`] of every tag, [`TAG_READERS`] at a time; the results in the order
/// of `tags` (the first error in that order wins).
fn read_registry_tags(registry: &Registry, r: &Reference, tags: &[&String]) -> Result<Vec<Option<Read>>, CacheError> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    type Slot = Mutex<Option<Result<Option<Read>, CacheError>>>;
    let slots: Vec<Slot> = tags.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..TAG_READERS.min(tags.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(t) = tags.get(i) else { break };
                let got = read_registry_tag(registry, &r.with_tag(t));
                *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(got);
            });
        }
    });
    slots.into_iter().map(|s| s.into_inner().unwrap_or_else(|e| e.into_inner()).unwrap_or(Ok(None))).collect()
}

/// The index under one tag of a registry and the cache mounts of its artifact (`None`
/// when the tag does not exist).
fn read_registry_tag(registry: &Registry, r: &Reference) -> Result<Option<Read>, CacheError> {
    let m = match registry.client().get_manifest(r) {
        Ok(m) => m,
        Err(cairn_registry::RegistryError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if let Some(inline) = inline_index(&m.bytes, &r.to_string())? {
        return decode_index(inline.as_bytes()).map(|recs| Some((recs, Vec::new())));
    }
    let desc = index_descriptor(&m.bytes, &r.to_string())?;
    let mut bytes = Vec::with_capacity(desc.size as usize);
    registry.client().fetch_blob(r, &desc, &mut bytes, &|_, _| {})?;
    Ok(Some((decode_index(&bytes)?, mounts::mounts_of(&m.bytes))))
}

/// A local cache directory's blob path.
fn local_blob(dir: &Path, d: &Digest) -> PathBuf {
    dir.join("blobs").join("sha256").join(d.hex())
}

/// A blob of a local cache directory, verified.
fn read_local_blob(dir: &Path, d: &Digest) -> Result<Vec<u8>, CacheError> {
    let p = local_blob(dir, d);
    let bytes = fs::read(&p).map_err(|e| StoreError::Io { action: "read", path: p.clone(), source: e })?;
    if Digest::of(&bytes) != *d {
        return Err(StoreError::Corrupt { path: p, message: format!("the blob's digest is not `{d}`") }.into());
    }
    Ok(bytes)
}

/// The index of a local cache directory and its cache mounts (`None` when it has none).
fn read_local(dir: &Path) -> Result<Option<Read>, CacheError> {
    let p = dir.join("index.json");
    let Ok(bytes) = fs::read(&p) else { return Ok(None) };
    let index: crate::oci::Index = serde_json::from_slice(&bytes)
        .map_err(|e| CacheError::Invalid(format!("`{}` is not an OCI index: {e}", p.display())))?;
    let (mut out, mut mounts) = (Records::new(), Vec::new());
    let mut found = false;
    for m in &index.manifests {
        let manifest = read_local_blob(dir, &m.digest)?;
        let Ok(desc) = index_descriptor(&manifest, &dir.display().to_string()) else { continue };
        out.extend(decode_index(&read_local_blob(dir, &desc.digest)?)?);
        mounts.extend(mounts::mounts_of(&manifest));
        found = true;
    }
    Ok(found.then_some((out, mounts)))
}

/// The imported indexes of a build, and what the build used (for `--cache-to`).
#[derive(Default)]
pub struct SharedCache {
    /// Key → chains and the index of the source they came from.
    records: BTreeMap<String, (Vec<Vec<CacheLayer>>, usize)>,
    /// Where blobs come from: `registry/repository`, or `oci-layout://DIR`.
    sources: Vec<String>,
    /// Every blob the imported records name.
    blobs: HashSet<Digest>,
    /// Results this build looked up or recorded, by key.
    used: Mutex<BTreeMap<String, Vec<Chain>>>,
    /// Blobs that could not be downloaded intact (any lazy blob this build asked for).
    bad: Mutex<HashSet<Digest>>,
    /// Empty layers made for imported empty layers (the n-th empty layer of a chain).
    empties: Mutex<Vec<String>>,
    /// Cache mounts of the imported artifacts, with the index of their source (the first
    /// source to name an id wins).
    mounts: Vec<(mounts::MountBlob, usize)>,
}

impl SharedCache {
    /// Reads the index of every `--cache-from` (registry: the ref's tag and every builder's
    /// tag next to it). A cache that cannot be read is reported through `warn` and skipped,
    /// as buildx does.
    pub fn import(registry: Option<&Registry>, from: &[CacheLocation], warn: &dyn Fn(&str)) -> SharedCache {
        let mut me = SharedCache::default();
        for loc in from {
            match loc {
                CacheLocation::Registry(reference) => {
                    let Some(reg) = registry else {
                        warn(&format!("Cannot import cache `{reference}`: no registry client is set up"));
                        continue;
                    };
                    match Reference::parse(reference).map_err(CacheError::from).and_then(|r| {
                        let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
                        let tags = reg.client().list_tags(&r).unwrap_or_else(|_| vec![tag.clone()]);
                        let tags: Vec<&String> =
                            tags.iter().filter(|t| **t == tag || is_builder_tag(&tag, t)).collect();
                        let got = read_registry_tags(reg, &r, &tags)?;
                        Ok((r.name(), got.into_iter().flatten().collect::<Vec<_>>()))
                    }) {
                        Ok((repo, got)) if got.is_empty() => warn(&format!("No cache found at `{repo}`")),
                        Ok((repo, got)) => got.into_iter().for_each(|read| me.add(&repo, read)),
                        Err(e) => warn(&format!("Cannot import cache `{reference}`: {e}")),
                    }
                }
                CacheLocation::Inline => {}
                CacheLocation::Local(dir) => match read_local(dir) {
                    Ok(Some(read)) => {
                        let abs = fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
                        me.add(&format!("{LOCAL_PREFIX}{}", abs.display()), read);
                    }
                    Ok(None) => warn(&format!("No cache found in `{}`", dir.display())),
                    Err(e) => warn(&format!("Cannot import cache `{}`: {e}", dir.display())),
                },
            }
        }
        me
    }

    fn add(&mut self, source: &str, (records, mounts): Read) {
        let i = match self.sources.iter().position(|s| s == source) {
            Some(i) => i,
            None => {
                self.sources.push(source.to_string());
                self.sources.len() - 1
            }
        };
        for (key, chains) in records {
            self.blobs.extend(chains.iter().flatten().filter_map(|l| l.digest));
            self.records.entry(key).or_insert((chains, i));
        }
        for m in mounts {
            if !self.mounts.iter().any(|(have, _)| have.name == m.name) {
                self.mounts.push((m, i));
            }
        }
    }

    /// Seeds the store's cache mounts from the imported artifacts: each id the store has
    /// no directory for is downloaded (verified) and unpacked; the store's own directories
    /// are kept (see `mounts.rs`). A mount that cannot be seeded is a warning, as a cache
    /// that cannot be read.
    pub fn seed_mounts(&self, store: &Store, registry: Option<&Registry>, warn: &dyn Fn(&str)) {
        let mut seeded = 0;
        for (m, src) in &self.mounts {
            let source = &self.sources[*src];
            let fill = |w: &mut dyn Write| -> Result<(), CacheError> {
                if let Some(dir) = source.strip_prefix(LOCAL_PREFIX) {
                    return mounts::copy_local(Path::new(dir), &m.digest, w);
                }
                let reg = registry.ok_or_else(|| CacheError::Registry("No registry client is set up".into()))?;
                let r = Reference::parse(source)?;
                let desc = cairn_registry::Descriptor::new(mounts::MEDIA_MOUNT, m.digest, m.size);
                Ok(reg.client().fetch_blob(&r, &desc, w, &|_, _| {})?)
            };
            match mounts::seed(store, m, &fill) {
                Ok(true) => seeded += 1,
                Ok(false) => {}
                Err(e) => warn(&format!("Cannot import cache mount {} from `{source}`: {e}", m.name)),
            }
        }
        if seeded > 0 {
            warn(&format!("Imported {seeded} cache mounts"));
        }
    }

    /// How many records the imported indexes hold.
    pub fn imported(&self) -> usize {
        self.records.len()
    }

    /// The imported result of `key` as lazy layers of `store` (nothing is downloaded), or
    /// `None` when no index has it or one of its blobs turned out bad.
    pub fn lookup(&self, store: &Store, key: &CacheKey) -> Result<Option<Vec<Chain>>, StoreError> {
        let Some((chains, src)) = self.records.get(&key.hex()) else { return Ok(None) };
        {
            let bad = self.bad.lock().unwrap_or_else(|e| e.into_inner());
            if chains.iter().flatten().any(|l| l.digest.is_some_and(|d| bad.contains(&d))) {
                return Ok(None);
            }
        }
        let source = &self.sources[*src];
        let mut out = Vec::with_capacity(chains.len());
        for chain in chains {
            let mut ids = Vec::with_capacity(chain.len());
            let mut empties = 0;
            for l in chain {
                if l.empty {
                    ids.push(self.empty_layer(store, empties)?);
                    empties += 1;
                    continue;
                }
                let Some(lb) = l.blob() else { return Ok(None) };
                store.record_remote_blob(&lb.blob, source, lb.blob_size, &lb.media_type)?;
                ids.push(store.lazy_layer(&lb)?);
            }
            out.push(ids);
        }
        Ok(Some(out))
    }

    /// The `n`-th empty layer of this build (made once).
    fn empty_layer(&self, store: &Store, n: usize) -> Result<String, StoreError> {
        let mut e = self.empties.lock().unwrap_or_else(|e| e.into_inner());
        while e.len() <= n {
            let l = store.new_layer()?;
            e.push(store.commit_layer(l)?);
        }
        Ok(e[n].clone())
    }

    /// Remembers that this build used `chains` as the result of `key`.
    pub fn note(&self, key: &CacheKey, chains: &[Chain]) {
        self.used.lock().unwrap_or_else(|e| e.into_inner()).insert(key.hex(), chains.to_vec());
    }

    /// Whether no layer of `chains` is a lazy layer whose blob turned out bad.
    pub fn intact(&self, store: &Store, chains: &[Chain]) -> bool {
        let bad = self.bad.lock().unwrap_or_else(|e| e.into_inner());
        bad.is_empty()
            || !chains.iter().flatten().any(|id| {
                !store.layer_exists(id)
                    && store.layer_meta(id).ok().and_then(|m| m.imported).is_some_and(|b| bad.contains(&b.blob))
            })
    }

    /// Blobs of the imported caches that could not be downloaded intact.
    pub fn bad_blobs(&self) -> Vec<Digest> {
        self.bad.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect()
    }

    /// The store's blob downloader for a build with shared caches: blobs of local cache
    /// directories are copied, others go to `inner` (the registry client); every blob is
    /// verified, and a cache blob that fails is remembered as bad.
    pub fn fetcher(self: &Arc<Self>, inner: Option<Arc<dyn BlobFetcher>>) -> Arc<dyn BlobFetcher> {
        Arc::new(CacheFetcher { cache: self.clone(), inner })
    }
}

struct CacheFetcher {
    cache: Arc<SharedCache>,
    inner: Option<Arc<dyn BlobFetcher>>,
}

impl BlobFetcher for CacheFetcher {
    fn fetch(
        &self,
        repository: &str,
        blob: &Digest,
        remote: &RemoteBlob,
        out: &mut dyn Write,
        progress: &dyn Fn(u64, u64),
    ) -> Result<(), String> {
        let mut w = HashWriter::new(out);
        let got = match (repository.strip_prefix(LOCAL_PREFIX), &self.inner) {
            (Some(dir), _) => fs::File::open(local_blob(Path::new(dir), blob))
                .and_then(|mut f| io::copy(&mut f, &mut w))
                .map(|n| progress(n, remote.size))
                .map_err(|e| format!("cannot read the blob from `{dir}`: {e}")),
            (None, Some(f)) => f.fetch(repository, blob, remote, &mut w, progress),
            (None, None) => Err("no registry client is set up".to_string()),
        };
        let got = got.and_then(|()| match w.digest() {
            d if d == *blob => Ok(()),
            d => Err(format!("`{repository}` sent content with digest `{d}`")),
        });
        // Any blob: one an imported index names, or one a record of the store's own
        // names from an earlier import (`intact` then refuses only records that use it).
        if got.is_err() {
            self.cache.bad.lock().unwrap_or_else(|e| e.into_inner()).insert(*blob);
        }
        got
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LayerBlob;

    fn layer(n: u8) -> CacheLayer {
        CacheLayer::of(&LayerBlob {
            diff_id: Digest([n; 32]),
            diff_size: 10,
            blob: Digest([n + 100; 32]),
            blob_size: 5,
            media_type: crate::oci::MEDIA_OCI_LAYER_GZIP.into(),
        })
    }

    #[test]
    fn index_round_trips_and_dedups_layers() {
        let mut r = Records::new();
        r.insert("aa".into(), vec![vec![layer(1), CacheLayer::empty()]]);
        r.insert("bb".into(), vec![vec![layer(1), CacheLayer::empty(), layer(2)]]);
        let bytes = encode_index(&r);
        let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(doc["layers"].as_array().unwrap().len(), 3, "{doc}");
        assert_eq!(doc["records"]["bb"], serde_json::json!([[0, 1, 2]]));
        assert_eq!(decode_index(&bytes).unwrap(), r);
        assert_eq!(blobs_of(&r).len(), 2);
        let e = decode_index(br#"{"version":2,"keyVersion":"x","layers":[],"records":{}}"#).unwrap_err();
        assert!(e.to_string().contains("reads version 1"), "{e}");
        let other = decode_index(br#"{"version":1,"keyVersion":"cairn-cache-v0","layers":[],"records":{"a":[]}}"#);
        assert!(other.unwrap().is_empty(), "records of another key version are dropped");
    }

    #[test]
    fn builder_tags() {
        assert!(is_builder_tag("main", "main.0123456789ab"));
        assert!(!is_builder_tag("main", "main.0123"));
        assert!(!is_builder_tag("main", "mainx0123456789ab"));
        assert!(!is_builder_tag("main", "other.0123456789ab"));
        assert_eq!(builder_tag("main", "0123456789ab"), "main.0123456789ab");
    }
}
