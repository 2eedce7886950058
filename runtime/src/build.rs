//! The runtime's facade: one call runs a whole build of a Definition — solve, commit the
//! image, verify it is reproducible, tag it, export it, write its metadata — so a frontend
//! (the CLI) only parses flags and renders.
//!
//! The sequence, and why in this order:
//! 1. [`solve::pick_output`] first, so a Definition without an output for the platform
//!    fails before anything runs.
//! 2. [`solve::solve`] runs the vertices the output needs.
//! 3. The chain is committed as an image only when something needs one (a tag, the
//!    metadata file, `--verify-reproducible`, or an exporter whose
//!    [`Exporter::needs_image`] says so): packing layers costs time.
//! 4. `--verify-reproducible` solves again without the cache and compares the images
//!    ([`crate::verify`]) before anything is tagged or written.
//! 5. Tags, then image exports, then the metadata file, then root filesystem exports.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use cairn_ir::{Definition, ImageConfig, Platform};

use crate::export::{ExportContext, ExportSource, Exporter};
use crate::image::{commit_image, convert_image, CommitOptions, ImageOptions, ManifestOptions};
use crate::registry::{Registry, RegistryOpError};
use crate::solve::progress::Progress;
use crate::solve::record;
use crate::solve::runtime_backend::RuntimeBackend;
use crate::solve::secrets::Secrets;
use crate::solve::{self, SolveError, SolveOptions};
use crate::store::{ImageRecord, Store, StoreError};

/// Everything a build needs besides the Definition's own content.
pub struct BuildRequest<'a> {
    pub store: &'a Arc<Store>,
    pub definition: &'a Definition,
    /// The platforms to build (at least one); each picks the Definition's output. Several
    /// are solved together and give one image index ([`crate::store::Store::put_index`]).
    pub platforms: Vec<Platform>,
    /// Local sources by name (`context` is the main build context).
    pub contexts: HashMap<String, PathBuf>,
    /// Build secrets by id; never stored, logged or keyed.
    pub secrets: Secrets,
    /// `--allow security.insecure`: `RUN --security=insecure` runs unconfined.
    pub allow_insecure: bool,
    /// `--allow network.host`: `RUN --network=host` shares the host's network.
    pub allow_network_host: bool,
    /// SSH agent sockets by id (`--ssh`).
    pub ssh: std::collections::BTreeMap<String, PathBuf>,
    /// `--ulimit`, `--shm-size`, `--add-host`, `--pids-limit`, `--memory`.
    pub resources: crate::process::StepResources,
    /// Skip every cache lookup.
    pub no_cache: bool,
    /// How many RUN steps may run at once (`None`: no limit).
    pub jobs: Option<usize>,
    /// Names to tag the image with (any reference form).
    pub tags: &'a [String],
    /// Names to push the image to (`--push`, `-o type=image,push=true`, `type=registry`).
    pub push: &'a [String],
    /// The registry client: pulls of images the store lacks, lazy layers, pushes.
    pub registry: Option<Arc<Registry>>,
    /// Outputs, written in this order (image outputs before the metadata file, root
    /// filesystem outputs after it).
    pub exports: &'a [Box<dyn Exporter>],
    /// Where to write the build's metadata JSON (image and config digests, names).
    pub metadata_file: Option<&'a Path>,
    /// Build a second time without the cache and fail unless the digests match.
    pub verify_reproducible: bool,
    /// SOURCE_DATE_EPOCH: clamps layer times and sets `created`.
    pub source_date_epoch: Option<u64>,
    /// Commit an image even when nothing else needs one (the CLI's `-q`, `--iidfile`).
    pub commit_image: bool,
    /// How the stored, tagged and pushed image is written (compression, media types,
    /// annotations); the source date epoch comes from `source_date_epoch`. Exporters may
    /// write it again with options of their own.
    pub image_options: ImageOptions,
    pub progress: &'a dyn Progress,
    /// Set by Ctrl-C; the build stops and reports [`SolveError::Cancelled`].
    pub cancel: &'a AtomicBool,
    /// Lines for the user that are not progress events (`--verify-reproducible`).
    pub notice: &'a dyn Fn(&str),
    /// `--cache-from`: shared caches looked up on a local miss (lazily, see [`crate::cache`]).
    pub cache_from: &'a [crate::cache::CacheLocation],
    /// `--cache-to`: where to write the build's results, after everything else.
    pub cache_to: &'a [crate::cache::CacheExport],
}

/// What a successful build produced.
#[derive(Debug, Clone)]
pub struct BuildResult {
    /// The committed image, when something needed one (of a multi-platform build: the
    /// first platform's).
    pub image: Option<ImageRecord>,
    /// A multi-platform build's image index (a store blob), when images were committed.
    pub index: Option<cairn_ir::Digest>,
    /// The names the image was tagged with (normalized).
    pub tags: Vec<String>,
    /// Steps executed and found in the cache.
    pub executed: usize,
    pub cached: usize,
    /// The build's step records (its id, and why each missed step ran); `None` when they
    /// could not be written (the build does not fail for that).
    pub record: Option<crate::solve::record::BuildRecord>,
}

/// Why a build failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// Solving failed (a step, Ctrl-C, no output for the platform).
    Solve(SolveError),
    /// The backend could not be set up.
    Backend(crate::solve::backend::BackendError),
    /// Writing the image (or, with `second`, the image of the verification build).
    Commit { second: bool, source: StoreError },
    /// Comparing the two images of `--verify-reproducible` failed.
    Compare(StoreError),
    /// The two builds of `--verify-reproducible` differ.
    NotReproducible { first: cairn_ir::Digest, second: cairn_ir::Digest, why: String, epoch_set: bool },
    /// Tagging or an export failed.
    Export(StoreError),
    /// Writing the metadata file failed.
    Metadata(StoreError),
    /// Pushing the image to `name` failed.
    Push { name: String, source: RegistryOpError },
    /// Writing a `--cache-to` failed.
    Cache(crate::cache::CacheError),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Solve(e) => write!(f, "{e}"),
            BuildError::Backend(m) => write!(f, "{m}"),
            BuildError::Commit { second: false, source } => write!(f, "Cannot write the image: {source}"),
            BuildError::Commit { second: true, source } => {
                write!(f, "Cannot write the image of the second build: {source}")
            }
            BuildError::Compare(e) | BuildError::Export(e) | BuildError::Metadata(e) => write!(f, "{e}"),
            BuildError::Push { name, source } => write!(f, "Cannot push `{name}`: {source}"),
            BuildError::Cache(e) => write!(f, "Cannot export the build cache: {e}"),
            BuildError::NotReproducible { first, second, why, epoch_set } => {
                let hint = if *epoch_set {
                    ""
                } else {
                    " (SOURCE_DATE_EPOCH is not set: timestamps vary from build to build)"
                };
                write!(f, "The build is not reproducible: image {first} then {second}; first difference: {why}{hint}")
            }
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // The metadata file is a user-named output: its I/O cause is shown too.
            BuildError::Metadata(e) => std::error::Error::source(e),
            _ => None,
        }
    }
}

/// Runs a build: solve → commit → verify → tag → exports → metadata (see the module doc).
pub fn run(req: BuildRequest<'_>) -> Result<BuildResult, BuildError> {
    let def = req.definition;
    if req.platforms.is_empty() {
        return Err(BuildError::Solve(SolveError::NoOutput("No platform to build".into())));
    }
    for p in &req.platforms {
        solve::pick_output(def, p).map_err(BuildError::Solve)?;
    }
    if req.platforms.len() > 1 && req.verify_reproducible {
        return Err(BuildError::Solve(SolveError::NoOutput(
            "`--verify-reproducible` checks one platform at a time: give a single `--platform`".into(),
        )));
    }
    let (backend, shared) =
        backend_for(req.store, req.registry.as_ref(), req.cache_from, !req.cache_to.is_empty(), req.notice)?;
    let opts = SolveOptions {
        platforms: req.platforms.clone(),
        no_cache: req.no_cache,
        jobs: req.jobs.unwrap_or(usize::MAX).max(1),
        contexts: req.contexts.clone(),
        layout: req.store.layout().clone(),
        secrets: req.secrets.clone(),
        allow_insecure: req.allow_insecure,
        allow_network_host: req.allow_network_host,
        resources: req.resources.clone(),
        ssh: req.ssh.clone(),
        records: None,
    };
    let context = record::context_name(req.contexts.get("context"));
    let recorder = Arc::new(record::Recorder::new(
        def,
        &record::history(req.store, &context, def, &req.platforms),
        req.store.build_records_salt().unwrap_or_default(),
    ));
    let opts = SolveOptions { records: Some(recorder.clone()), ..opts };
    let started = std::time::SystemTime::now();
    let mut solved = solve::solve(def, &backend, &opts, req.progress, req.cancel);
    // A cache blob that could not be downloaded intact: solve again without the records
    // that use it, so its steps run (the rest is cached by now); once per new bad blob.
    let mut bad_seen = 0;
    while let (Err(SolveError::Step(_)), Some(s)) = (&solved, &shared) {
        let bad = s.bad_blobs();
        if bad.len() <= bad_seen {
            break;
        }
        bad_seen = bad.len();
        // The failed step cancelled the rest through the flag; Ctrl-C gives `Cancelled`.
        req.cancel.store(false, std::sync::atomic::Ordering::SeqCst);
        let list = bad.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
        (req.notice)(&format!("Cache blobs could not be downloaded intact ({list}): running their steps"));
        solved = solve::solve(def, &backend, &opts, req.progress, req.cancel);
    }
    // The steps' layers made durable (their records, written as each step ended, are
    // then trusted after a power cut too) before anything (an image, a tag) names a
    // layer; for a failed build too.
    if let Err(e) = backend.flush() {
        (req.notice)(&format!("Cannot flush the store's filesystem: {e}"));
    }
    // Kept for failed builds too: `cairn explain` shows why their steps ran.
    let saved = record::save(req.store, &recorder, &context, &req.platforms[0], started);
    if let Err(e) = &saved {
        (req.notice)(&format!("Cannot keep the build record: {e}"));
    }
    let solved = solved.map_err(BuildError::Solve)?;
    if req.platforms.len() > 1 {
        let r = crate::build_multi::finish(&req, &solved, shared.as_deref())?;
        return Ok(BuildResult { record: saved.ok(), ..r });
    }
    let layers: Vec<String> = solved.layers.iter().map(|l| l.to_string()).collect();
    let mut image_options = req.image_options.clone();
    image_options.commit.source_date_epoch = req.source_date_epoch;
    let commit_opts = image_options.commit;
    let inline = req.cache_to.iter().any(|c| c.location == crate::cache::CacheLocation::Inline);
    if let Some(s) = shared.as_ref().filter(|_| inline) {
        let (k, v) = crate::cache::inline_annotation(req.store, s, &layers, &commit_opts);
        image_options.manifest.annotations.insert(k, v);
    }
    let wants_image = wants_image(&req);
    let st: &Store = req.store;
    let mut image = None;
    let mut tags = Vec::new();
    if wants_image {
        let config = &def.outputs[solved.output].config;
        let mut rec = commit_image(st, &layers, config, &commit_opts)
            .map_err(|source| BuildError::Commit { second: false, source })?;
        if image_options.manifest != ManifestOptions::default() {
            rec = convert_image(st, &rec, &image_options)
                .map_err(|source| BuildError::Commit { second: false, source })?;
        }
        if req.verify_reproducible {
            verify_reproducible(&req, &backend, &opts, config, &commit_opts, &rec)?;
        }
        for t in req.tags {
            tags.push(st.tag_image(t, &rec).map_err(BuildError::Export)?);
        }
        let src = ExportSource::single(Some(&rec), &layers);
        let cx = ExportContext {
            tags: &tags,
            source_date_epoch: req.source_date_epoch,
            image_options: Some(&image_options),
        };
        for e in req.exports.iter().filter(|e| e.needs_image()) {
            e.export(st, &src, &cx).map_err(BuildError::Export)?;
        }
        push_all(&req, |r, name| r.push(st, &rec, name, req.notice))?;
        if let Some(f) = req.metadata_file {
            write_metadata(st, f, &rec.manifest_digest, Some(&rec.config_digest), &tags)?;
        }
        image = Some(rec);
    }
    let src = ExportSource::single(image.as_ref(), &layers);
    let cx = ExportContext { tags: &tags, source_date_epoch: req.source_date_epoch, image_options: None };
    for e in req.exports.iter().filter(|e| !e.needs_image()) {
        e.export(st, &src, &cx).map_err(BuildError::Export)?;
    }
    export_caches(&req, shared.as_deref(), &layers)?;
    Ok(BuildResult { image, index: None, tags, executed: solved.executed, cached: solved.cached, record: saved.ok() })
}

/// `--cache-to`, after everything else; `layers` are the image's (every platform's).
pub(crate) fn export_caches(
    req: &BuildRequest<'_>,
    shared: Option<&crate::cache::SharedCache>,
    layers: &[String],
) -> Result<(), BuildError> {
    let Some(s) = shared else { return Ok(()) };
    export_caches_to(req.store, req.registry.as_deref(), s, req.cache_to, layers, req.source_date_epoch, req.notice)
}

/// Each of `to`, the result layers `layers` (`mode=min`) or all this build used.
pub(crate) fn export_caches_to(
    store: &Store,
    registry: Option<&Registry>,
    s: &crate::cache::SharedCache,
    to: &[crate::cache::CacheExport],
    layers: &[String],
    source_date_epoch: Option<u64>,
    notice: &dyn Fn(&str),
) -> Result<(), BuildError> {
    for to in to {
        // The cache's layers are gzip, whatever the image's compression.
        let cache_opts = CommitOptions { source_date_epoch, ..Default::default() };
        match crate::cache::export(store, registry, s, to, layers, &cache_opts, notice) {
            Err(e) if to.ignore_error => notice(&format!("Cannot export the build cache: {e}")),
            r => r.map_err(BuildError::Cache)?,
        }
    }
    Ok(())
}

/// `--push`: `push` each name with the registry client, with a notice before and after.
pub(crate) fn push_all(
    req: &BuildRequest<'_>,
    push: impl Fn(&Registry, &str) -> Result<cairn_ir::Digest, RegistryOpError>,
) -> Result<(), BuildError> {
    push_names(req.push, req.registry.as_deref(), req.notice, push)
}

/// [`push_all`] of any list of names (a bake target's too).
pub(crate) fn push_names(
    names: &[String],
    registry: Option<&Registry>,
    notice: &dyn Fn(&str),
    push: impl Fn(&Registry, &str) -> Result<cairn_ir::Digest, RegistryOpError>,
) -> Result<(), BuildError> {
    for name in names {
        let registry = registry.ok_or_else(|| BuildError::Push {
            name: name.clone(),
            source: RegistryOpError::Store(StoreError::Invalid("no registry client is set up".into())),
        })?;
        notice(&format!("Pushing {name}"));
        let d = push(registry, name).map_err(|source| BuildError::Push { name: name.clone(), source })?;
        notice(&format!("Pushed {name}@{d}"));
    }
    Ok(())
}

/// Whether the build must commit images (packing layers costs time).
pub(crate) fn wants_image(req: &BuildRequest<'_>) -> bool {
    req.commit_image
        || !req.tags.is_empty()
        || req.metadata_file.is_some()
        || req.verify_reproducible
        || !req.push.is_empty()
        || req.exports.iter().any(|e| e.needs_image())
}

/// The shared caches of a build with `--cache-from` or `--cache-to` (their indexes read).
/// `cairn plan`: the steps of `def`'s output for `platform`, each predicted cached or run
/// (with why, against the store's build records), in the Definition's order; nothing runs
/// and nothing is recorded.
pub fn plan(
    store: &Arc<Store>,
    def: &Definition,
    platform: &Platform,
    contexts: HashMap<String, PathBuf>,
    no_cache: bool,
) -> Result<Vec<record::StepRecord>, BuildError> {
    let backend = RuntimeBackend::new(store.clone()).map_err(BuildError::Backend)?;
    let context = record::context_name(contexts.get("context"));
    let salt = store.build_records_salt().unwrap_or_default();
    let recorder = Arc::new(record::Recorder::new(
        def,
        &record::history(store, &context, def, std::slice::from_ref(platform)),
        salt,
    ));
    let opts = SolveOptions {
        platforms: vec![platform.clone()],
        no_cache,
        jobs: 1,
        contexts,
        layout: store.layout().clone(),
        secrets: Default::default(),
        // Nothing runs, and entitlements do not enter keys.
        allow_insecure: true,
        allow_network_host: true,
        ssh: Default::default(),
        resources: Default::default(),
        records: Some(recorder.clone()),
    };
    solve::dry_run(def, &backend, &opts).map_err(BuildError::Solve)?;
    let mut steps = recorder.steps();
    steps.sort_by_key(|s| s.vertex);
    Ok(steps)
}

/// The backend of a build (or a bake) on `store`: its registry, and the imported caches
/// (`--cache-from`) whose fetcher wraps the registry's; also returns those caches.
pub(crate) fn backend_for(
    store: &Arc<Store>,
    registry: Option<&Arc<Registry>>,
    from: &[crate::cache::CacheLocation],
    exports: bool,
    notice: &dyn Fn(&str),
) -> Result<(RuntimeBackend, Option<Arc<crate::cache::SharedCache>>), BuildError> {
    let mut backend = RuntimeBackend::new(store.clone()).map_err(BuildError::Backend)?;
    let shared = shared_cache_for(store, registry, from, exports, notice);
    if let Some(s) = &shared {
        // Installed before the registry's own fetcher, which it wraps.
        store.set_fetcher(s.fetcher(registry.cloned().map(|r| r as Arc<dyn crate::store::BlobFetcher>)));
        backend = backend.with_shared_cache(s.clone());
    }
    if let Some(r) = registry {
        backend = backend.with_registry(r.clone());
    }
    Ok((backend, shared))
}

/// The imported caches of a build (`--cache-from`), or `None` when it neither imports nor
/// exports one and has no registry.
fn shared_cache_for(
    store: &Store,
    registry: Option<&Arc<Registry>>,
    from: &[crate::cache::CacheLocation],
    exports: bool,
    notice: &dyn Fn(&str),
) -> Option<Arc<crate::cache::SharedCache>> {
    if from.is_empty() && !exports {
        // No cache to import, but the store's own records may name lazy layers of an
        // earlier import: an empty one still notes blobs that are gone, so their steps
        // run instead of failing the build.
        return registry.map(|_| Arc::new(crate::cache::SharedCache::default()));
    }
    let shared = crate::cache::SharedCache::import(registry.map(|r| &**r), from, notice);
    shared.seed_mounts(store, registry.map(|r| &**r), notice);
    Some(Arc::new(shared))
}

/// `--metadata-file`: the keys `docker buildx build` writes (`containerimage.digest`,
/// `containerimage.config.digest`, `containerimage.descriptor`, `image.name`,
/// `buildx.build.ref`). `digest` is the image's manifest, or a multi-platform build's
/// index (which has no config).
pub(crate) fn write_metadata(
    st: &Store,
    f: &Path,
    digest: &cairn_ir::Digest,
    config: Option<&cairn_ir::Digest>,
    tags: &[String],
) -> Result<(), BuildError> {
    let manifest = st.read_blob(digest).map_err(BuildError::Metadata)?;
    let media = serde_json::from_slice::<serde_json::Value>(&manifest)
        .ok()
        .and_then(|m| m["mediaType"].as_str().map(str::to_string))
        .unwrap_or_else(|| crate::oci::MEDIA_OCI_MANIFEST.to_string());
    let mut meta = serde_json::json!({
        "buildx.build.ref": build_ref(),
        "containerimage.digest": digest.to_string(),
        "containerimage.descriptor": {
            "mediaType": media,
            "digest": digest.to_string(),
            "size": manifest.len(),
        },
    });
    if let Some(c) = config {
        meta["containerimage.config.digest"] = c.to_string().into();
    }
    if !tags.is_empty() {
        meta["image.name"] = tags.join(",").into();
    }
    let text =
        serde_json::to_string_pretty(&meta).map_err(|e| BuildError::Metadata(StoreError::Invalid(e.to_string())))?;
    crate::output::write_file(f, text.as_bytes()).map_err(BuildError::Metadata)
}

/// A build reference in buildx's `builder/node/id` shape: cairn has no builder, so
/// `cairn/local/` and a random id.
fn build_ref() -> String {
    let mut id = [0u8; 13];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut id);
    }
    format!("cairn/local/{}", hex::encode(id))
}

/// `--verify-reproducible`: solves again without cache, commits, compares with `first`.
fn verify_reproducible(
    req: &BuildRequest<'_>,
    backend: &RuntimeBackend,
    opts: &SolveOptions,
    config: &ImageConfig,
    commit_opts: &CommitOptions,
    first: &ImageRecord,
) -> Result<(), BuildError> {
    (req.notice)("Verifying reproducibility: building again without the cache");
    let again = SolveOptions { no_cache: true, records: None, ..opts.clone() };
    let solved = solve::solve(req.definition, backend, &again, req.progress, req.cancel).map_err(BuildError::Solve)?;
    let layers: Vec<String> = solved.layers.iter().map(|l| l.to_string()).collect();
    let st: &Store = req.store;
    let second =
        commit_image(st, &layers, config, commit_opts).map_err(|source| BuildError::Commit { second: true, source })?;
    match crate::verify::first_difference(st, first, &second).map_err(BuildError::Compare)? {
        None => {
            (req.notice)(&format!("Reproducible: both builds gave image {}", first.manifest_digest));
            Ok(())
        }
        Some(why) => Err(BuildError::NotReproducible {
            first: first.manifest_digest,
            second: second.manifest_digest,
            why,
            epoch_set: commit_opts.source_date_epoch.is_some(),
        }),
    }
}
