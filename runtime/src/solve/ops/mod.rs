//! The ops: for each vertex, a [`Plan`] for the engine (how its inputs enter the key and
//! how to execute it), and the content hashes the engine asks for.
//!
//! - `source.rs`: scratch, build contexts, images;
//! - `remote.rs`: `ADD` of URLs and git repositories;
//! - `exec.rs`, `mounts.rs`: processes in the executor over an overlay of the root chain,
//!   and their mounts (binds, cache mounts, secrets);
//! - `file.rs`: file actions on an overlay mounted in the host namespace;
//! - `merge_diff.rs`: chain arithmetic.
//!
//! [`OpCx`] is what the ops share: the graph, the backend, views of trees and the stat
//! cache. Everything the engine does (keys, lookups, permits, progress, records) stays in
//! the engine.

mod exec;
mod file;
mod merge_diff;
mod mounts;
mod remote;
mod source;

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use cairn_ir::Op;

pub use mounts::clean_stale_cache_dirs;
pub use remote::{checkout_context, fetch_context_tarball};

use super::backend::{Backend, Chain, LayerId};
use super::engine::{fail, Inputs, Ops, Plan, Read, StepError, Tree};
use super::fileop::{self, SrcTree};
use super::graph::Graph;
use super::hash::{hash_entry, Hash, HashOpts, StatCache};
use super::progress::{now, Event, Progress};
use super::record::MAX_FILES_PER_SELECTION;
use super::SolveOptions;
use std::time::Instant;

/// What every op shares during one solve.
pub struct OpCx<'a, B: Backend> {
    pub graph: &'a Graph<'a>,
    pub backend: &'a B,
    pub opts: &'a SolveOptions,
    pub stat: &'a StatCache,
    /// Progress and the step numbers shared with the engine (downloads show as steps).
    pub progress: &'a dyn Progress,
    pub steps: &'a AtomicUsize,
    pub mount_seq: AtomicUsize,
    pub empty_dir: PathBuf,
    pub mnt_dir: PathBuf,
    pub cache_locks: mounts::CacheLocks,
}

/// A tree seen at `root` (its view): a build context through its patterns, strictly inside
/// it; layers as they are.
pub(super) fn src_tree<'t>(root: &'t std::path::Path, tree: &'t Tree) -> SrcTree<'t> {
    match tree {
        Tree::Local(l) => SrcTree { root, filter: Some(&l.filter), strict: true },
        Tree::Layers(_) => SrcTree { root, filter: None, strict: false },
    }
}

/// Shows each blob download of [`OpCx::layer_dirs`] as a step: `pull sha256:… (size)`,
/// a line with the bytes so far at most once a second, DONE at the end.
struct PullProgress<'a> {
    progress: &'a dyn Progress,
    steps: &'a AtomicUsize,
    /// Per blob: step id, start, last line.
    shown: std::sync::Mutex<std::collections::HashMap<cairn_ir::Digest, (usize, Instant, Instant)>>,
}

impl PullProgress<'_> {
    fn report(&self, blob: &cairn_ir::Digest, done: u64, total: u64) {
        let mut shown = self.shown.lock().unwrap_or_else(|e| e.into_inner());
        let now_i = Instant::now();
        let (id, start, last) = *shown.entry(*blob).or_insert_with(|| {
            let id = self.steps.fetch_add(1, Ordering::SeqCst) + 1;
            let name = format!("pull {} ({})", &blob.to_string()[..19], mib(total));
            // The blob is the vertex of this step in rawjson: a download has no IR vertex.
            self.progress.event(Event::Start { id, name, time: now(), digest: blob.to_string(), inputs: Vec::new() });
            (id, now_i, now_i)
        });
        let elapsed = start.elapsed().as_secs_f64();
        if done >= total {
            self.progress.event(Event::Done { id, seconds: elapsed, time: now() });
            shown.remove(blob);
        } else if last.elapsed().as_secs() >= 1 {
            let line = format!("{} / {}", mib(done), mib(total));
            self.progress.event(Event::Log { id, elapsed, line, time: now() });
            shown.insert(*blob, (id, start, now_i));
        }
    }
}

fn mib(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        b if b >= 1_000 => format!("{:.1} kB", b as f64 / 1e3),
        b => format!("{b} B"),
    }
}

/// A read-only directory view of a tree: a layer dir, an empty dir or an overlay mount.
pub(super) struct View<M> {
    pub path: PathBuf,
    mount: Option<M>,
    mountpoint: Option<PathBuf>,
}

impl<M> Drop for View<M> {
    fn drop(&mut self) {
        drop(self.mount.take());
        if let Some(mp) = &self.mountpoint {
            let _ = fs::remove_dir(mp);
        }
    }
}

impl<'a, B: Backend> OpCx<'a, B> {
    pub fn new(
        graph: &'a Graph<'a>,
        backend: &'a B,
        opts: &'a SolveOptions,
        stat: &'a StatCache,
        progress: &'a dyn Progress,
        steps: &'a AtomicUsize,
    ) -> Self {
        OpCx {
            graph,
            backend,
            opts,
            stat,
            progress,
            steps,
            mount_seq: AtomicUsize::new(0),
            empty_dir: opts.layout.solve_empty_dir(),
            mnt_dir: opts.layout.solve_mnt_dir(),
            cache_locks: mounts::CacheLocks::default(),
        }
    }

    /// The directories of `chain`, bottom first; lazy layers (of a pulled image) are
    /// downloaded and extracted first, each shown as a step of its own.
    fn layer_dirs(&self, chain: &[LayerId]) -> Result<Vec<PathBuf>, StepError> {
        let pulls = PullProgress { progress: self.progress, steps: self.steps, shown: Default::default() };
        self.backend
            .materialize(chain, &|blob, done, total| pulls.report(blob, done, total))
            .map_err(fail("Cannot download a layer of the base image"))?;
        Ok(chain.iter().map(|l| self.backend.layer_dir(l)).collect())
    }

    /// Lower dirs for an overlay (bottom first), padded so a single layer mounts too.
    fn lowers(&self, chain: &[LayerId]) -> Result<Vec<PathBuf>, StepError> {
        let mut l = vec![self.empty_dir.clone()];
        l.extend(self.layer_dirs(chain)?);
        Ok(l)
    }

    fn mountpoint(&self) -> Result<PathBuf, StepError> {
        let n = self.mount_seq.fetch_add(1, Ordering::SeqCst);
        let p = self.mnt_dir.join(format!("{}-{n}", std::process::id()));
        fs::create_dir_all(&p).map_err(fail("Cannot create a mount point"))?;
        Ok(p)
    }

    fn view(&self, tree: &Tree) -> Result<View<B::Mount>, StepError> {
        let plain = |path: PathBuf| View { path, mount: None, mountpoint: None };
        match tree {
            Tree::Local(l) => Ok(plain(l.root.clone())),
            Tree::Layers(chain) if chain.is_empty() => Ok(plain(self.empty_dir.clone())),
            Tree::Layers(chain) if chain.len() == 1 => Ok(plain(self.layer_dirs(chain)?.remove(0))),
            Tree::Layers(chain) => {
                let mp = self.mountpoint()?;
                let m = self
                    .backend
                    .mount_overlay(&self.layer_dirs(chain)?, None, &mp)
                    .map_err(fail("Cannot mount the layers of an input"))?;
                Ok(View { path: mp.clone(), mount: Some(m), mountpoint: Some(mp) })
            }
        }
    }

    /// The chain of a tree that must be layers (`what` names the use in the error).
    fn chain_of(tree: &Tree, what: &str) -> Result<Chain, StepError> {
        match tree {
            Tree::Layers(c) => Ok(c.to_vec()),
            Tree::Local(_) => Err(StepError::msg(what.to_string())),
        }
    }

    /// The stat cache serves build contexts (layers are immutable and memoized apart).
    fn stat_cache_for(&self, tree: &Tree) -> Option<&StatCache> {
        matches!(tree, Tree::Local(_)).then_some(self.stat)
    }

    /// A memo key of `tree` and `what` when the tree is immutable (a layer chain).
    fn memo_key(tree: &Tree, what: &[u8]) -> Option<String> {
        let Tree::Layers(chain) = tree else { return None };
        let mut h = blake3::Hasher::new();
        for l in chain.iter() {
            h.update(l.as_bytes());
            h.update(b"\0");
        }
        h.update(what);
        Some(h.finalize().to_hex().to_string())
    }

    /// Content hash of the paths a copy selects in `tree`.
    fn selection_hash(&self, tree: &Tree, c: &cairn_ir::CopyAction) -> Result<Hash, StepError> {
        let memo = Self::memo_key(
            tree,
            &cairn_ir::encode::to_canonical(&(&c.src_paths, c.follow_symlinks, c.allow_wildcard, c.parents)),
        );
        if let Some(hit) = memo.as_deref().and_then(|k| self.stat.selection(k)) {
            return Ok(hit);
        }
        let view = self.view(tree)?;
        let src = src_tree(&view.path, tree);
        let (filter, cache) = (src.filter, self.stat_cache_for(tree));
        let mut h = blake3::Hasher::new();
        for p in &c.src_paths {
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p.as_bytes());
            let found = fileop::expand_src(&src, p, c).map_err(fail(format!("Cannot read `{p}`")))?;
            for (hp, rel) in found {
                let eh = hash_entry(&hp, &rel, &HashOpts { filter, stat_cache: cache })
                    .map_err(fail(format!("Cannot hash `{rel}`")))?;
                h.update(&(rel.len() as u64).to_le_bytes());
                h.update(rel.as_bytes());
                h.update(&eh);
            }
        }
        let out = *h.finalize().as_bytes();
        if let Some(k) = memo {
            self.stat.set_selection(&k, &out);
        }
        Ok(out)
    }

    /// The content hash of each file a copy selects in a build context, for step records
    /// (directories walked through the context's filter); empty past
    /// [`MAX_FILES_PER_SELECTION`] files, or for layers (their selection hash is recorded).
    fn selection_files(&self, tree: &Tree, c: &cairn_ir::CopyAction) -> Result<Vec<(String, Hash)>, StepError> {
        let Tree::Local(l) = tree else { return Ok(Vec::new()) };
        let src = src_tree(&l.root, tree);
        let opts = HashOpts { filter: src.filter, stat_cache: Some(self.stat) };
        let mut out = Vec::new();
        let mut stack = Vec::new();
        for p in &c.src_paths {
            let found = fileop::expand_src(&src, p, c).map_err(fail(format!("Cannot read `{p}`")))?;
            stack.extend(found);
        }
        while let Some((hp, rel)) = stack.pop() {
            if out.len() > MAX_FILES_PER_SELECTION {
                return Ok(Vec::new());
            }
            let md = fs::symlink_metadata(&hp).map_err(fail(format!("Cannot read `{rel}`")))?;
            if !md.is_dir() {
                let h = hash_entry(&hp, &rel, &opts).map_err(fail(format!("Cannot hash `{rel}`")))?;
                out.push((rel, h));
                continue;
            }
            for entry in fs::read_dir(&hp).map_err(fail(format!("Cannot read `{rel}`")))? {
                let name = entry.map_err(fail(format!("Cannot read `{rel}`")))?.file_name();
                let name = name.to_string_lossy();
                let crel = if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") };
                let visible = l.filter.visible(&crel) || l.filter.may_descend(&crel);
                if visible {
                    stack.push((hp.join(&*name), crel));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Content hash of a whole tree below `selector` (read-only mounts, Local as a key).
    fn tree_hash(&self, tree: &Tree, selector: &str) -> Result<Hash, StepError> {
        let memo = Self::memo_key(tree, format!("tree\0{selector}").as_bytes());
        if let Some(hit) = memo.as_deref().and_then(|k| self.stat.selection(k)) {
            return Ok(hit);
        }
        let view = self.view(tree)?;
        let src = src_tree(&view.path, tree);
        let (filter, strict, cache) = (src.filter, src.strict, self.stat_cache_for(tree));
        let (hp, rel) =
            fileop::resolve(&view.path, selector, true, strict).map_err(|e| StepError::msg(e.to_string()))?;
        let out = if fs::symlink_metadata(&hp).is_err() {
            [0; 32]
        } else {
            hash_entry(&hp, &rel, &HashOpts { filter, stat_cache: cache }).map_err(fail("Cannot hash an input"))?
        };
        if let Some(k) = memo {
            self.stat.set_selection(&k, &out);
        }
        Ok(out)
    }
}

impl<B: Backend> Ops for OpCx<'_, B> {
    fn plan<'s>(&'s self, v: usize, inputs: &'s Inputs<'s>, cancel: &'s AtomicBool) -> Result<Plan<'s>, StepError> {
        match &self.graph.def.vertices[v].vertex.op {
            Op::Source(s) => self.source(v, s, cancel),
            Op::Exec(e) => self.exec(v, e, inputs, cancel),
            Op::File(f) => self.file(v, f, inputs),
            Op::Merge(_) => self.merge(v, inputs),
            Op::Diff(_) => self.diff(inputs),
        }
    }

    fn content(&self, tree: &Tree, read: &Read) -> Result<Hash, StepError> {
        match read {
            Read::Selection(c) => self.selection_hash(tree, c),
            Read::Tree(selector) => self.tree_hash(tree, selector),
            Read::Key => self.tree_hash(tree, "/"),
        }
    }

    fn content_files(&self, tree: &Tree, read: &Read) -> Result<Vec<(String, Hash)>, StepError> {
        match read {
            Read::Selection(c) => self.selection_files(tree, c),
            Read::Tree(_) | Read::Key => Ok(Vec::new()),
        }
    }

    fn usable(&self, chains: &[Chain]) -> bool {
        chains.iter().all(|c| self.backend.has_layers(c))
    }
}
