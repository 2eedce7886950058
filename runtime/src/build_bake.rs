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

use cairn_ir::{Definition, Digest, Platform};

use crate::build::{backend_for, export_caches_to, push_names, BuildError};
use crate::cache::{CacheExport, CacheLocation};
use crate::export::{ExportContext, ExportSource, Exporter, PlatformSource};
use crate::image::{commit_image, CommitOptions};
use crate::registry::Registry;
use crate::solve::progress::Progress;
use crate::solve::{self, SolveOptions};
use crate::store::{PlatformImage, Store};

/// One target's output: which of the Definition's outputs (one per platform: several
/// make an image index), and what to do with it.
pub struct TargetOutput {
    pub outputs: Vec<usize>,
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
    /// Every platform some target builds for (the first is the solve's default).
    pub platforms: Vec<Platform>,
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

/// What each target gave (in the order of [`BakeRequest::targets`]: its image's or index's
/// digest, when it made one) and the solve's counts.
pub struct BakeResult {
    pub images: Vec<Option<Digest>>,
    pub executed: usize,
    pub cached: usize,
}

/// Solves every target's output at once, then commits, tags and exports each.
pub fn run(req: BakeRequest<'_>) -> Result<BakeResult, BuildError> {
    let exports = req.targets.iter().any(|t| !t.cache_to.is_empty());
    let (backend, shared) = backend_for(req.store, req.registry.as_ref(), &req.cache_from, exports, req.notice)?;
    let opts = SolveOptions {
        platforms: req.platforms.clone(),
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
    let picks: Vec<usize> = req.targets.iter().flat_map(|t| t.outputs.iter().copied()).collect();
    let solved = solve::solve_outputs(req.definition, &backend, &opts, &picks, req.progress, req.cancel);
    // Layers made durable before an image names one (see `build.rs`).
    if let Err(e) = backend.flush() {
        (req.notice)(&format!("Cannot flush the store's filesystem: {e}"));
    }
    let solved = solved.map_err(BuildError::Solve)?;
    let st: &Store = req.store;
    let commit_opts = CommitOptions { source_date_epoch: req.source_date_epoch, ..Default::default() };
    let mut images = Vec::new();
    let mut results = solved.outputs.iter();
    for t in req.targets {
        let chains: Vec<(usize, Vec<String>)> = results
            .by_ref()
            .take(t.outputs.len())
            .map(|(o, chain)| (*o, chain.iter().map(|l| l.to_string()).collect()))
            .collect();
        let done = finish_target(&req, &commit_opts, t, &chains)?;
        if let Some(s) = &shared {
            let layers: Vec<String> = chains.iter().flat_map(|(_, l)| l.iter().cloned()).collect();
            export_caches_to(st, req.registry.as_deref(), s, &t.cache_to, &layers, req.source_date_epoch, req.notice)?;
        }
        images.push(done);
    }
    Ok(BakeResult { images, executed: solved.executed, cached: solved.cached })
}

/// Commits (when something needs an image), tags, exports and pushes one target's outputs:
/// one image, or with several platforms one image each under an index.
fn finish_target(
    req: &BakeRequest<'_>,
    commit_opts: &CommitOptions,
    t: &TargetOutput,
    chains: &[(usize, Vec<String>)],
) -> Result<Option<Digest>, BuildError> {
    let st: &Store = req.store;
    let commit = |source| BuildError::Commit { second: false, source };
    let needs_image = !t.tags.is_empty() || !t.push.is_empty() || t.exports.iter().any(|e| e.needs_image());
    let mut images: Vec<PlatformImage> = Vec::new();
    if needs_image {
        for (output, layers) in chains {
            let config = &req.definition.outputs[*output].config;
            let rec = commit_image(st, layers, config, commit_opts).map_err(commit)?;
            images.push(PlatformImage { platform: config.platform(), image: rec });
        }
    }
    let index = match images.len() {
        0 | 1 => None,
        _ => Some(st.put_index(&images).map_err(commit)?),
    };
    let mut tags = Vec::new();
    for name in &t.tags {
        tags.push(
            match (&index, images.first()) {
                (Some(idx), _) => st.tag_index(name, idx),
                (None, Some(one)) => st.tag_image(name, &one.image),
                (None, None) => continue,
            }
            .map_err(BuildError::Export)?,
        );
    }
    let platforms: Vec<PlatformSource<'_>> = chains
        .iter()
        .enumerate()
        .map(|(i, (output, layers))| PlatformSource {
            platform: &req.definition.outputs[*output].platform,
            image: images.get(i).map(|p| &p.image),
            layers,
        })
        .collect();
    // One platform: a single build's source (no per-platform directories).
    let platforms: &[PlatformSource<'_>] = if platforms.len() > 1 { &platforms } else { &[] };
    let src = ExportSource { image: images.first().map(|p| &p.image), layers: &chains[0].1, platforms };
    let cx = ExportContext { tags: &tags, source_date_epoch: req.source_date_epoch, image_options: None };
    // Image outputs first, root filesystem outputs after, as a single build does.
    for e in t.exports.iter().filter(|e| e.needs_image()).chain(t.exports.iter().filter(|e| !e.needs_image())) {
        e.export(st, &src, &cx).map_err(BuildError::Export)?;
    }
    let reg = req.registry.as_deref();
    match (&index, images.first()) {
        (Some(idx), _) => push_names(&t.push, reg, req.notice, |r, n| r.push_index(st, &images, idx, n, req.notice))?,
        (None, Some(one)) => push_names(&t.push, reg, req.notice, |r, n| r.push(st, &one.image, n, req.notice))?,
        (None, None) => {}
    }
    Ok(index.or_else(|| images.first().map(|p| p.image.manifest_digest)))
}
