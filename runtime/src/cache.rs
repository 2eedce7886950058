//! Build caches shared by many machines through registries and directories (issue 14;
//! the format is SPEC.md §10).
//!
//! **The artifact.** A cache is an OCI image manifest whose config blob is the *cache
//! index* (media type [`MEDIA_CACHE_INDEX`]: cache keys → result chains, each layer a blob
//! with its diff_id) and whose layers are the result blobs. It lives in a registry
//! (`--cache-to type=registry,ref=REF`) or in an OCI layout directory (`type=local`).
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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cairn_ir::Digest;
use cairn_registry::{Descriptor, Reference};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::image::CommitOptions;
use crate::oci::{MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST};
use crate::registry::Registry;
use crate::solve::backend::{CacheKey, Chain};
use crate::store::{BlobFetcher, HashWriter, LayerBlob, RemoteBlob, Store, StoreError};

/// `artifactType` of the cache manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.cairn.cache.v1";
/// Media type of the config blob: the cache index (JSON).
pub const MEDIA_CACHE_INDEX: &str = "application/vnd.cairn.cache.index.v1+json";
/// The index `version` this runtime writes and reads.
pub const FORMAT_VERSION: u32 = 1;
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
}

/// One `--cache-to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheExport {
    pub location: CacheLocation,
    pub mode: CacheMode,
    /// `ignore-error=true`: a failed export is a notice, not a failed build.
    pub ignore_error: bool,
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

fn is_false(b: &bool) -> bool {
    !*b
}

/// One layer of a result chain: a blob with its diff_id, or an empty layer (a step that
/// changed nothing; no blob, the importer makes an empty layer).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CacheLayer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    #[serde(rename = "mediaType", default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(rename = "diffID", default, skip_serializing_if = "Option::is_none")]
    pub diff_id: Option<Digest>,
    #[serde(rename = "diffSize", default, skip_serializing_if = "Option::is_none")]
    pub diff_size: Option<u64>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub empty: bool,
}

impl CacheLayer {
    fn empty() -> CacheLayer {
        CacheLayer { digest: None, media_type: String::new(), size: None, diff_id: None, diff_size: None, empty: true }
    }

    fn of(b: &LayerBlob) -> CacheLayer {
        CacheLayer {
            digest: Some(b.blob),
            media_type: b.media_type.clone(),
            size: Some(b.blob_size),
            diff_id: Some(b.diff_id),
            diff_size: Some(b.diff_size),
            empty: false,
        }
    }

    /// The blob, when this is a non-empty layer with everything a reader needs.
    fn blob(&self) -> Option<LayerBlob> {
        Some(LayerBlob {
            diff_id: self.diff_id?,
            diff_size: self.diff_size.unwrap_or(0),
            blob: self.digest?,
            blob_size: self.size?,
            media_type: self.media_type.clone(),
        })
    }
}

/// Records by cache key (hex): the output chains of one vertex, output 0 first, each
/// bottom layer first.
pub type Records = BTreeMap<String, Vec<Vec<CacheLayer>>>;

/// The cache index as stored (SPEC.md §10).
#[derive(Serialize, Deserialize)]
struct IndexDoc {
    version: u32,
    #[serde(rename = "keyVersion")]
    key_version: String,
    layers: Vec<CacheLayer>,
    records: BTreeMap<String, Vec<Vec<usize>>>,
}

/// The index bytes of `records`: layers deduplicated, in order of first use.
pub fn encode_index(records: &Records) -> Vec<u8> {
    let mut layers: Vec<CacheLayer> = Vec::new();
    let mut at: HashMap<CacheLayer, usize> = HashMap::new();
    let mut out = BTreeMap::new();
    for (key, chains) in records {
        let chains = chains
            .iter()
            .map(|c| {
                c.iter()
                    .map(|l| {
                        *at.entry(l.clone()).or_insert_with(|| {
                            layers.push(l.clone());
                            layers.len() - 1
                        })
                    })
                    .collect()
            })
            .collect();
        out.insert(key.clone(), chains);
    }
    let doc =
        IndexDoc { version: FORMAT_VERSION, key_version: crate::solve::key::KEY_VERSION.into(), layers, records: out };
    serde_json::to_vec(&doc).expect("the index serializes")
}

/// Reads an index. Records under another key version are dropped (their keys cannot
/// match); an unknown format version is an error naming the one supported.
pub fn decode_index(bytes: &[u8]) -> Result<Records, CacheError> {
    let doc: IndexDoc =
        serde_json::from_slice(bytes).map_err(|e| CacheError::Invalid(format!("Malformed cache index: {e}")))?;
    if doc.version != FORMAT_VERSION {
        return Err(CacheError::Invalid(format!(
            "Cache index version {} is not supported (this cairn reads version {FORMAT_VERSION})",
            doc.version
        )));
    }
    if doc.key_version != crate::solve::key::KEY_VERSION {
        return Ok(Records::new());
    }
    for l in &doc.layers {
        if !l.empty && l.blob().is_none() {
            return Err(CacheError::Invalid("Malformed cache index: a layer has no digest, size or diffID".into()));
        }
    }
    let mut out = Records::new();
    for (key, chains) in doc.records {
        let chains = chains
            .iter()
            .map(|c| c.iter().map(|&i| doc.layers.get(i).cloned()).collect::<Option<Vec<_>>>())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| CacheError::Invalid(format!("Malformed cache index: record `{key}` names no layer")))?;
        out.insert(key, chains);
    }
    Ok(out)
}

/// The distinct blobs of `records`, in order of first use.
fn blobs_of(records: &Records) -> Vec<LayerBlob> {
    let mut seen = HashSet::new();
    records.values().flatten().flatten().filter_map(CacheLayer::blob).filter(|b| seen.insert(b.blob)).collect()
}

/// The manifest of the cache artifact: config = the index, layers = every blob it names.
fn manifest_of(index: &[u8], records: &Records) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = blobs_of(records)
        .iter()
        .map(|b| serde_json::json!({"mediaType": b.media_type, "digest": b.blob.to_string(), "size": b.blob_size}))
        .collect();
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": MEDIA_CACHE_INDEX, "digest": Digest::of(index).to_string(), "size": index.len()},
        "layers": layers,
    });
    serde_json::to_vec(&m).expect("the manifest serializes")
}

/// The config descriptor of a cache manifest, or why it is not one.
fn index_descriptor(manifest: &[u8], what: &str) -> Result<Descriptor, CacheError> {
    #[derive(Deserialize)]
    struct M {
        config: Descriptor,
    }
    let m: M = serde_json::from_slice(manifest)
        .map_err(|e| CacheError::Invalid(format!("`{what}` is not a cache manifest: {e}")))?;
    if m.config.media_type != MEDIA_CACHE_INDEX {
        return Err(CacheError::Invalid(format!(
            "`{what}` is not a cairn cache (its config is `{}`, not `{MEDIA_CACHE_INDEX}`)",
            m.config.media_type
        )));
    }
    if m.config.size > MAX_INDEX {
        return Err(CacheError::Invalid(format!("The cache index of `{what}` is larger than {MAX_INDEX} bytes")));
    }
    Ok(m.config)
}

/// The tag builder `id` writes for the ref tag `tag`.
fn builder_tag(tag: &str, id: &str) -> String {
    format!("{tag}.{id}")
}

/// Whether `t` is a tag some builder wrote for `tag`.
fn is_builder_tag(tag: &str, t: &str) -> bool {
    t.strip_prefix(tag)
        .and_then(|r| r.strip_prefix('.'))
        .is_some_and(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The index under one tag of a registry (`None` when the tag does not exist).
fn read_registry_tag(registry: &Registry, r: &Reference) -> Result<Option<Records>, CacheError> {
    let m = match registry.client().get_manifest(r) {
        Ok(m) => m,
        Err(cairn_registry::RegistryError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let desc = index_descriptor(&m.bytes, &r.to_string())?;
    let mut bytes = Vec::with_capacity(desc.size as usize);
    registry.client().fetch_blob(r, &desc, &mut bytes, &|_, _| {})?;
    decode_index(&bytes).map(Some)
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

/// The index of a local cache directory (`None` when it has none).
fn read_local(dir: &Path) -> Result<Option<Records>, CacheError> {
    let p = dir.join("index.json");
    let Ok(bytes) = fs::read(&p) else { return Ok(None) };
    let index: crate::oci::Index = serde_json::from_slice(&bytes)
        .map_err(|e| CacheError::Invalid(format!("`{}` is not an OCI index: {e}", p.display())))?;
    let mut out = Records::new();
    let mut found = false;
    for m in &index.manifests {
        let manifest = read_local_blob(dir, &m.digest)?;
        let Ok(desc) = index_descriptor(&manifest, &dir.display().to_string()) else { continue };
        out.extend(decode_index(&read_local_blob(dir, &desc.digest)?)?);
        found = true;
    }
    Ok(found.then_some(out))
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
    /// Blobs that could not be downloaded intact.
    bad: Mutex<HashSet<Digest>>,
    /// Empty layers made for imported empty layers (the n-th empty layer of a chain).
    empties: Mutex<Vec<String>>,
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
                        let mut got = Vec::new();
                        for t in tags.iter().filter(|t| **t == tag || is_builder_tag(&tag, t)) {
                            if let Some(recs) = read_registry_tag(reg, &r.with_tag(t))? {
                                got.push(recs);
                            }
                        }
                        Ok((r.name(), got))
                    }) {
                        Ok((repo, got)) if got.is_empty() => warn(&format!("No cache found at `{repo}`")),
                        Ok((repo, got)) => got.into_iter().for_each(|recs| me.add(&repo, recs)),
                        Err(e) => warn(&format!("Cannot import cache `{reference}`: {e}")),
                    }
                }
                CacheLocation::Local(dir) => match read_local(dir) {
                    Ok(Some(recs)) => {
                        let abs = fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
                        me.add(&format!("{LOCAL_PREFIX}{}", abs.display()), recs);
                    }
                    Ok(None) => warn(&format!("No cache found in `{}`", dir.display())),
                    Err(e) => warn(&format!("Cannot import cache `{}`: {e}", dir.display())),
                },
            }
        }
        me
    }

    fn add(&mut self, source: &str, records: Records) {
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
        if got.is_err() && self.cache.blobs.contains(blob) {
            self.cache.bad.lock().unwrap_or_else(|e| e.into_inner()).insert(*blob);
        }
        got
    }
}

/// What `to` should hold from this build: the results it used (`mode=max`), or those
/// whose layers are all in the final image (`mode=min`), with their layers packed.
fn collect(
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
fn describe(store: &Store, id: &str, opts: &CommitOptions) -> Option<CacheLayer> {
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
    let records = collect(store, cache, to.mode, image_layers, opts);
    let _g = store.cache_export_lock()?;
    match &to.location {
        CacheLocation::Registry(reference) => {
            let registry = registry.ok_or_else(|| CacheError::Registry("No registry client is set up".to_string()))?;
            export_registry(store, registry, reference, records, notice)
        }
        CacheLocation::Local(dir) => export_local(store, dir, records, notice),
    }
}

fn export_registry(
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

fn export_local(store: &Store, dir: &Path, records: Records, notice: &dyn Fn(&str)) -> Result<(), CacheError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
