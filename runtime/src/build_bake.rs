//! `cairn bake`'s end of a build: one Definition holds every requested target's output,
//! one solve runs them all (a vertex two targets share, such as a common base stage, runs
//! once), then each target's output is committed, tagged and exported on its own.
//!
//! Kept apart from [`crate::build::run`] so a single build stays exactly as it was; bake
//! leaves out what a target does not need yet (metadata files, `--verify-reproducible`).
//! Caches: the `cache-from` of every target are imported for the one solve (a vertex is
//! one vertex whichever target asked for it); each target's `cache-to` exports its own
//! result (`mode=min`) or everything the solve used (`mode=max`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use cairn_ir::{Definition, Platform};

use crate::build::{export_caches_to, push_names, shared_cache_for, BuildError};
use crate::cache::{CacheExport, CacheLocation};
use crate::export::{ExportContext, ExportSource, Exporter};
use crate::image::{commit_image, CommitOptions};
use crate::registry::Registry;
use crate::solve::progress::Progress;
use crate::solve::runtime_backend::RuntimeBackend;
use crate::solve::{self, SolveOptions};
use crate::store::{ImageRecord, Store};

/// One target's output: which of the Definition's outputs, and what to do with it.
pub struct TargetOutput {
    pub output: usize,
    /// Names to tag the committed image with.
    pub tags: Vec<String>,
    pub exports: Vec<Box<dyn Exporter>>,
    /// Names to push the image to (`output = ["type=registry"]`, `cairn bake --push`).
    pub push: Vec<String>,
    /// The target's `cache-to`.
    pub cache_to: Vec<CacheExport>,
}

/// A bake: the Definition and the settings every target shares.
pub struct BakeRequest<'a> {
    pub store: &'a Arc<Store>,
    pub definition: &'a Definition,
    /// The platform steps run for (every target's output is built for it).
    pub platform: Platform,
    /// Local sources by name (`context` is the main build context).
    pub contexts: HashMap<String, PathBuf>,
    pub registry: Option<Arc<Registry>>,
    /// Skip every cache lookup (any target's `no-cache`).
    pub no_cache: bool,
    pub jobs: Option<usize>,
    pub source_date_epoch: Option<u64>,
    pub targets: &'a [TargetOutput],
    /// Every target's `cache-from`.
    pub cache_from: Vec<CacheLocation>,
    /// Messages for the user (pushes, cache imports and exports).
    pub notice: &'a dyn Fn(&str),
    pub progress: &'a dyn Progress,
    pub cancel: &'a AtomicBool,
}

/// What each target gave (in the order of [`BakeRequest::targets`]) and the solve's counts.
pub struct BakeResult {
    pub images: Vec<Option<ImageRecord>>,
    pub executed: usize,
    pub cached: usize,
}

/// Solves every target's output at once, then commits, tags and exports each.
pub fn run(req: BakeRequest<'_>) -> Result<BakeResult, BuildError> {
    let mut backend = RuntimeBackend::new(req.store.clone()).map_err(BuildError::Backend)?;
    let exports = req.targets.iter().any(|t| !t.cache_to.is_empty());
    let shared = shared_cache_for(req.store, req.registry.as_ref(), &req.cache_from, exports, req.notice);
    if let Some(s) = &shared {
        // Installed before the registry's own fetcher, which it wraps.
        req.store.set_fetcher(s.fetcher(req.registry.clone().map(|r| r as Arc<dyn crate::store::BlobFetcher>)));
        backend = backend.with_shared_cache(s.clone());
    }
    if let Some(r) = &req.registry {
        backend = backend.with_registry(r.clone());
    }
    let opts = SolveOptions {
        platforms: vec![req.platform.clone()],
        no_cache: req.no_cache,
        jobs: req.jobs.unwrap_or(usize::MAX).max(1),
        contexts: req.contexts.clone(),
        layout: req.store.layout().clone(),
        secrets: Default::default(),
        allow_insecure: false,
        allow_network_host: false,
        resources: Default::default(),
        ssh: Default::default(),
        records: None,
    };
    let picks: Vec<usize> = req.targets.iter().map(|t| t.output).collect();
    let solved = solve::solve_outputs(req.definition, &backend, &opts, &picks, req.progress, req.cancel)
        .map_err(BuildError::Solve)?;
    let st: &Store = req.store;
    let commit_opts = CommitOptions { source_date_epoch: req.source_date_epoch, ..Default::default() };
    let mut images = Vec::new();
    for (t, (output, chain)) in req.targets.iter().zip(&solved.outputs) {
        let layers: Vec<String> = chain.iter().map(|l| l.to_string()).collect();
        let mut image = None;
        let mut tags = Vec::new();
        if !t.tags.is_empty() || !t.push.is_empty() || t.exports.iter().any(|e| e.needs_image()) {
            let config = &req.definition.outputs[*output].config;
            let rec = commit_image(st, &layers, config, &commit_opts)
                .map_err(|source| BuildError::Commit { second: false, source })?;
            for name in &t.tags {
                tags.push(st.tag_image(name, &rec).map_err(BuildError::Export)?);
            }
            image = Some(rec);
        }
        let src = ExportSource::single(image.as_ref(), &layers);
        let cx = ExportContext { tags: &tags, source_date_epoch: req.source_date_epoch, image_options: None };
        // Image outputs first, root filesystem outputs after, as a single build does.
        for e in t.exports.iter().filter(|e| e.needs_image()).chain(t.exports.iter().filter(|e| !e.needs_image())) {
            e.export(st, &src, &cx).map_err(BuildError::Export)?;
        }
        if let Some(rec) = &image {
            push_names(&t.push, req.registry.as_deref(), req.notice, |r, name| r.push(st, rec, name, req.notice))?;
        }
        if let Some(s) = &shared {
            let (reg, epoch) = (req.registry.as_deref(), req.source_date_epoch);
            export_caches_to(st, reg, s, &t.cache_to, &layers, epoch, req.notice)?;
        }
        images.push(image);
    }
    Ok(BakeResult { images, executed: solved.executed, cached: solved.cached })
}
