//! The engine: the life of every step, written once for every op (BuildKit's solver is the
//! model: an op answers a cache map and an exec; the engine does the rest).
//!
//! An op (`ops/`) turns a vertex and its inputs' values into a [`Plan`]:
//! - [`Plan::Ready`] and [`Plan::Computed`]: a value computed on the spot (scratch, a build
//!   context; a merge or diff of chains, keyed by the engine), with no progress step and no
//!   cache record;
//! - [`Plan::Step`]: a [`CacheMap`] (how each input enters the key) and an exec. The engine
//!   computes the key ([`Engine::key_of`], SPEC.md §6 with [`super::key`]), looks it up,
//!   takes a `--jobs` permit when the step runs a process, shows the step, runs the exec,
//!   records the result under the key and reports DONE, CACHED or ERROR;
//! - [`Plan::Source`]: a source whose key needs work of its own (an image reference, a git
//!   ref, an HTTP revalidation), which may bring its result with it ([`SourceKey`]).
//!
//! The engine never sees a host path: the cache index is a [`CacheIndex`], inputs are
//! [`Tree`]s, and content hashes come from the ops ([`Ops::content`]). Cancellation is a
//! [`StepError::Cancelled`], never a message to compare.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use cairn_ir::{CopyAction, Platform};

use super::backend::{CacheIndex, CacheKey, Chain, LayerId};
use super::graph::Graph;
use super::hash::Hash;
use super::key::{self, Part};
use super::pattern::Filter;
use super::progress::{now, Event, Progress};
use super::record::Recorder;
use super::scheduler::{Semaphore, Worker};

/// A client directory seen through its include/exclude filter.
#[derive(Debug)]
pub struct LocalTree {
    pub name: String,
    pub root: std::path::PathBuf,
    pub filter: Filter,
}

/// The value of one vertex output.
#[derive(Debug, Clone)]
pub enum Tree {
    /// A chain of layers, bottom first.
    Layers(Arc<Chain>),
    /// A client directory, read in place.
    Local(Arc<LocalTree>),
}

/// A finished vertex: its outputs and their keys.
#[derive(Debug, Clone)]
pub struct Done {
    pub outputs: Vec<Tree>,
    pub keys: Vec<CacheKey>,
}

impl Done {
    /// The value of a vertex whose outputs are `chains` under `key` (output `i > 0` gets a
    /// key derived from `key` and `i`).
    pub fn from_chains(chains: Vec<Chain>, key: CacheKey) -> Done {
        let keys = (0..chains.len() as u32).map(|i| if i == 0 { key } else { key::output_key(&key, i) }).collect();
        Done { outputs: chains.into_iter().map(|c| Tree::Layers(Arc::new(c))).collect(), keys }
    }
}

/// Why a step did not produce its result.
#[derive(Debug)]
pub enum StepError {
    /// The build was cancelled (Ctrl-C, or another step failed first).
    Cancelled,
    /// The step failed: a message and the last lines of its output.
    Failed { message: String, tail: Vec<String> },
}

impl StepError {
    pub fn msg(message: impl Into<String>) -> StepError {
        StepError::Failed { message: message.into(), tail: Vec::new() }
    }
}

/// Maps an error to a step failure `what: error`.
pub fn fail<E: std::fmt::Display>(what: impl Into<String>) -> impl FnOnce(E) -> StepError {
    let what = what.into();
    move |e| StepError::msg(format!("{what}: {e}"))
}

/// A failed vertex: the error and the step number it was shown under, if any.
#[derive(Debug)]
pub struct VertexError {
    pub error: StepError,
    pub step: Option<usize>,
}

impl From<StepError> for VertexError {
    fn from(error: StepError) -> Self {
        VertexError { error, step: None }
    }
}

/// How a vertex reads input `i` (BuildKit's `CacheMap` deps): through its key, or only
/// through the content of what it selects.
#[derive(Debug)]
pub enum Read<'s> {
    /// The producer's key (for a build context: the content hash of its whole visible tree).
    Key,
    /// Only the paths a copy selects.
    Selection(&'s CopyAction),
    /// Only the tree below a selector (a read-only mount).
    Tree(&'s str),
}

/// How a step's inputs enter its key, in order, and what else does (`extra`: settings
/// from outside the op that change its result, such as `--ulimit`).
#[derive(Debug, Default)]
pub struct CacheMap<'s> {
    pub reads: Vec<(u32, Read<'s>)>,
    pub extra: Option<Vec<u8>>,
}

/// A step's context while it runs: its number, and its log.
pub struct StepCx<'e> {
    pub id: usize,
    progress: &'e dyn Progress,
    start: Instant,
}

impl StepCx<'_> {
    /// One line of the step's output.
    pub fn log(&self, line: String) {
        self.progress.event(Event::Log { id: self.id, elapsed: self.start.elapsed().as_secs_f64(), line, time: now() });
    }
}

/// Runs a step: its output chains (output 0 first).
pub type Exec<'s> = Box<dyn FnOnce(&StepCx) -> Result<Vec<Chain>, StepError> + 's>;

/// A source's key, maybe with its result.
pub enum SourceKey {
    /// The key alone: the engine looks it up and runs the exec on a miss.
    Key(CacheKey),
    /// The key came with its result (a download, a revalidation): recorded under the key,
    /// shown CACHED when `reused`, DONE otherwise.
    Fetched { key: CacheKey, chains: Vec<Chain>, reused: bool },
    /// A result already at hand (an image in the store, `manifest` its digest): shown
    /// CACHED, not recorded and not counted.
    Known { key: CacheKey, chains: Vec<Chain>, manifest: cairn_ir::Digest },
}

/// What an op asks the engine to do for one vertex.
pub enum Plan<'s> {
    Ready(Done),
    /// One chain computed on the spot (merge, diff): keyed from `map`, no step shown,
    /// nothing recorded.
    Computed {
        map: CacheMap<'s>,
        chain: Chain,
    },
    Step {
        map: CacheMap<'s>,
        permit: bool,
        exec: Exec<'s>,
    },
    /// `exec` runs on a miss of a [`SourceKey::Key`]; a source that always brings its
    /// result has none.
    Source {
        key: Box<dyn FnOnce() -> Result<SourceKey, StepError> + 's>,
        exec: Option<Exec<'s>>,
    },
}

/// The inputs' values of one vertex, by input index.
pub struct Inputs<'s> {
    done: &'s [Done],
    at: &'s [(usize, u32)],
}

impl<'s> Inputs<'s> {
    /// The tree, key and output index of input `i`.
    pub fn get(&self, i: u32) -> Result<(&'s Tree, CacheKey, u32), StepError> {
        let &(pos, idx) = self.at.get(i as usize).ok_or_else(|| StepError::msg(format!("Input {i} out of range")))?;
        let done = &self.done[pos];
        match (done.outputs.get(idx as usize), done.keys.get(idx as usize)) {
            (Some(t), Some(k)) => Ok((t, *k, idx)),
            _ => Err(StepError::msg(format!("Input {i} has no output {idx}"))),
        }
    }

    /// The tree of input `i`.
    pub fn tree(&self, i: u32) -> Result<&'s Tree, StepError> {
        Ok(self.get(i)?.0)
    }
}

/// What the engine needs from the ops.
pub trait Ops: Sync {
    fn plan<'s>(&'s self, v: usize, inputs: &'s Inputs<'s>, cancel: &'s AtomicBool) -> Result<Plan<'s>, StepError>;
    /// The content hash of what `read` selects in `tree` (never called with [`Read::Key`]
    /// on layers).
    fn content(&self, tree: &Tree, read: &Read) -> Result<Hash, StepError>;
    /// The content hash of each file `read` selects in a build context (for step records;
    /// empty when the files are not listed one by one: layers, or too many files).
    fn content_files(&self, tree: &Tree, read: &Read) -> Result<Vec<(String, Hash)>, StepError> {
        let _ = (tree, read);
        Ok(Vec::new())
    }
    /// Whether the layers of a cached result are all still there.
    fn usable(&self, chains: &[Chain]) -> bool;
}

/// `cairn plan`: a solve that runs nothing. A step whose key misses is predicted to run;
/// its result is unknown, so every step after it is predicted to run too (its key cannot
/// be computed). Remote sources are not asked (that needs the network).
#[derive(Debug, Default)]
pub struct DryRun {
    unknown: std::sync::Mutex<std::collections::HashSet<usize>>,
}

impl DryRun {
    fn unknown(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<usize>> {
        self.unknown.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The engine's state for one solve, shared by every step.
pub struct Engine<'a> {
    pub graph: &'a Graph<'a>,
    pub cache: &'a dyn CacheIndex,
    pub ops: &'a dyn Ops,
    pub progress: &'a dyn Progress,
    /// The platform of an Exec without one (a Definition older than version 3).
    pub platform: &'a Platform,
    pub no_cache: bool,
    pub permits: Semaphore,
    /// Step numbers, shared with the ops (downloads of lazy layers are steps too).
    pub steps: &'a AtomicUsize,
    pub executed: AtomicUsize,
    pub cached: AtomicUsize,
    /// Step records (`--explain`, `cairn explain`), when the build keeps them.
    pub records: Option<&'a Recorder>,
    /// `cairn plan`: predict, do not run (needs `records`, where the predictions go).
    pub dry_run: Option<&'a DryRun>,
}

impl Engine<'_> {
    /// `[stage n/m] description`, the description, or the op's kind.
    pub fn step_name(&self, v: usize) -> String {
        let entry = &self.graph.def.vertices[v];
        entry.meta.label().unwrap_or_else(|| entry.vertex.op.kind().to_string())
    }

    /// Whether cache lookups are allowed for `v` (not with `--no-cache` or `ignore_cache`).
    pub fn use_cache(&self, v: usize) -> bool {
        !(self.no_cache || self.graph.def.vertices[v].meta.ignore_cache)
    }

    /// The cached result of `key`, when lookups are allowed and its layers are all there.
    pub fn lookup(&self, v: usize, key: &CacheKey) -> Option<Vec<Chain>> {
        if !self.use_cache(v) {
            return None;
        }
        let chains = self.cache.get(key).ok()??;
        self.ops.usable(&chains).then_some(chains)
    }

    fn record(&self, key: &CacheKey, chains: &[Vec<LayerId>]) -> Result<(), StepError> {
        self.cache.put(key, chains).map_err(fail("Cannot record the result in the cache index"))
    }

    /// The cache key of `v` (SPEC.md §6): its op without selectors, an Exec's platform, and one
    /// part per read of `map`. A build context read through its key counts by the content
    /// of its whole visible tree, since a context has no key of its own.
    pub fn key_of(&self, v: usize, map: &CacheMap, inputs: &Inputs) -> Result<CacheKey, StepError> {
        let mut parts = Vec::with_capacity(map.reads.len());
        let mut items = self.records.map(|r| r.op_items(self.graph.def, v));
        for (n, (i, read)) in map.reads.iter().enumerate() {
            let (tree, k, index) = inputs.get(*i)?;
            let part = match (read, tree) {
                (Read::Key, Tree::Layers(_)) => Part::Key(k, index),
                (Read::Key, Tree::Local(_)) => Part::Content(self.ops.content(tree, &Read::Tree("/"))?),
                (r, _) => Part::Content(self.ops.content(tree, r)?),
            };
            if let (Some(items), Some(rec)) = (&mut items, self.records) {
                let producer = self.graph.deps[v][inputs.at[*i as usize].0];
                self.record_part(rec, items, n, producer, tree, read, &part)?;
            }
            parts.push(part);
        }
        if let Some(extra) = &map.extra {
            parts.push(Part::Content(*blake3::hash(extra).as_bytes()));
            if let Some(items) = &mut items {
                items.insert("settings".into(), blake3::hash(extra).to_hex()[..16].to_string());
            }
        }
        if let (Some(mut items), Some(rec)) = (items, self.records) {
            if !self.use_cache(v) {
                items.insert("no-cache".into(), "true".into());
            }
            rec.set_items(v, items);
        }
        let op = &self.graph.def.vertices[v].vertex.op;
        Ok(key::vertex_key(op, key::step_platform(op, self.platform).as_ref(), &parts))
    }

    /// Writes down how read `n` (of `producer`'s output) entered the key: a base image by
    /// its digest, another step by its key, a selection by its files' hashes.
    #[allow(clippy::too_many_arguments)]
    fn record_part(
        &self,
        rec: &Recorder,
        items: &mut std::collections::BTreeMap<String, String>,
        n: usize,
        producer: usize,
        tree: &Tree,
        read: &Read,
        part: &Part,
    ) -> Result<(), StepError> {
        let hex16 = |h: &[u8]| hex::encode(&h[..8]);
        match part {
            Part::Key(k, _) => match rec.base(producer) {
                Some((reference, digest)) => {
                    items.insert(format!("base {reference}"), digest);
                }
                None => {
                    items.insert(format!("input {n}"), format!("{} {}", hex16(&k.0), self.step_name(producer)));
                }
            },
            Part::Content(h) => {
                let files = match read {
                    Read::Key => Vec::new(),
                    r => self.ops.content_files(tree, r)?,
                };
                let from = match tree {
                    Tree::Local(l) if l.name == "context" => String::new(),
                    Tree::Local(l) => format!("{}:", l.name),
                    Tree::Layers(_) => format!("`{}`:", self.step_name(producer)),
                };
                if files.is_empty() {
                    let what = match read {
                        Read::Selection(c) => c.src_paths.join(" "),
                        Read::Tree(s) => s.to_string(),
                        Read::Key => "/".into(),
                    };
                    items.insert(format!("selection {from}{what}"), hex16(h));
                }
                for (path, fh) in files {
                    items.insert(format!("file {from}{path}"), hex16(&fh));
                }
            }
        }
        Ok(())
    }

    /// Records the step shown as `id` for vertex `v` under `key`; a miss's reasons go to
    /// progress.
    fn note(&self, v: usize, id: usize, key: &CacheKey, cached: bool) {
        let Some(rec) = self.records else { return };
        let ident = super::record::step_identity(self.graph.def, v, self.platform);
        let reasons = rec.finish(ident, self.step_name(v), v, &key.hex(), cached);
        if !reasons.is_empty() {
            self.progress.event(Event::Explain { id, reasons, time: now() });
        }
    }

    fn start(&self, v: usize) -> usize {
        let id = self.steps.fetch_add(1, Ordering::SeqCst) + 1;
        let entry = &self.graph.def.vertices[v];
        let inputs = entry.vertex.inputs.iter().map(|i| i.digest.to_string()).collect();
        let (name, digest) = (self.step_name(v), entry.digest.to_string());
        self.progress.event(Event::Start { id, name, time: now(), digest, inputs });
        id
    }

    fn cached(&self, id: usize, count: bool) {
        if count {
            self.cached.fetch_add(1, Ordering::SeqCst);
        }
        self.progress.event(Event::Cached { id, time: now() });
    }

    fn done(&self, id: usize, start: Instant) {
        self.executed.fetch_add(1, Ordering::SeqCst);
        self.progress.event(Event::Done { id, seconds: start.elapsed().as_secs_f64(), time: now() });
    }

    fn failed(&self, id: usize, error: StepError) -> VertexError {
        let message = match &error {
            StepError::Cancelled => "Cancelled".to_string(),
            StepError::Failed { message, .. } => message.clone(),
        };
        self.progress.event(Event::Error { id, message, time: now() });
        VertexError { error, step: Some(id) }
    }

    /// [`Self::note`] for a source: its key is all there is to say about it.
    fn note_source(&self, v: usize, id: usize, key: &CacheKey, cached: bool) {
        if let Some(rec) = self.records {
            let mut items = rec.op_items(self.graph.def, v);
            items.insert("source".into(), key.hex()[..16].to_string());
            if !self.use_cache(v) {
                items.insert("no-cache".into(), "true".into());
            }
            rec.set_items(v, items);
        }
        self.note(v, id, key, cached);
    }

    /// A stand-in result of a step predicted to run (`cairn plan`), recorded with `reasons`
    /// when the vertex is a step (not a merge or diff).
    fn predicted(&self, v: usize, dry: &DryRun, reasons: Option<Vec<String>>) -> Done {
        dry.unknown().insert(v);
        let op = &self.graph.def.vertices[v].vertex.op;
        if let (Some(rec), Some(reasons)) = (self.records, reasons) {
            if !matches!(op, cairn_ir::Op::Merge(_) | cairn_ir::Op::Diff(_)) {
                rec.set_items(v, rec.op_items(self.graph.def, v));
                let ident = super::record::step_identity(self.graph.def, v, self.platform);
                rec.finish_with(ident, self.step_name(v), v, reasons);
            }
        }
        let n = op.output_count().max(1) as usize;
        Done { outputs: vec![Tree::Layers(Arc::new(Vec::new())); n], keys: vec![CacheKey([0; 32]); n] }
    }

    /// In a dry run, the stand-in result of a vertex that cannot be predicted: one of its
    /// inputs runs, or it is a remote source.
    fn unpredictable(&self, v: usize, dry: &DryRun) -> Option<Done> {
        let after = self.graph.deps[v].iter().find(|d| dry.unknown().contains(d)).copied();
        if let Some(d) = after {
            let why = format!("runs after `{}`, which runs", self.step_name(d));
            return Some(self.predicted(v, dry, Some(vec![why])));
        }
        match &self.graph.def.vertices[v].vertex.op {
            cairn_ir::Op::Source(cairn_ir::SourceOp::Http { .. } | cairn_ir::SourceOp::Git { .. }) => {
                let why = "a remote source: checked when the build runs".to_string();
                Some(self.predicted(v, dry, Some(vec![why])))
            }
            _ => None,
        }
    }

    /// Runs one vertex's plan through the step's life.
    pub fn run_vertex(&self, v: usize, done: &[Done], cancel: &AtomicBool) -> Result<Done, VertexError> {
        if let Some(d) = self.dry_run.and_then(|dry| self.unpredictable(v, dry)) {
            return Ok(d);
        }
        let inputs = Inputs { done, at: &self.graph.input_at[v] };
        let plan = self.ops.plan(v, &inputs, cancel)?;
        match plan {
            Plan::Ready(d) => Ok(d),
            Plan::Computed { map, chain } => {
                let key = self.key_of(v, &map, &inputs)?;
                Ok(Done { outputs: vec![Tree::Layers(Arc::new(chain))], keys: vec![key] })
            }
            Plan::Step { map, permit, exec } => {
                let key = self.key_of(v, &map, &inputs)?;
                if let Some(chains) = self.lookup(v, &key) {
                    let id = self.start(v);
                    self.note(v, id, &key, true);
                    self.cached(id, true);
                    return Ok(Done::from_chains(chains, key));
                }
                if let Some(dry) = self.dry_run {
                    self.note(v, 0, &key, false);
                    return Ok(self.predicted(v, dry, None));
                }
                let _permit = match permit {
                    true => Some(match self.permits.try_acquire() {
                        Some(p) => p,
                        None => {
                            // Waiting shows in the timeline (`--timeline`) as its own mark.
                            self.progress.event(Event::Queued { name: self.step_name(v), time: now() });
                            self.permits.acquire(cancel).ok_or(StepError::Cancelled)?
                        }
                    }),
                    false => None,
                };
                if cancel.load(Ordering::SeqCst) {
                    return Err(StepError::Cancelled.into());
                }
                let id = self.start(v);
                self.note(v, id, &key, false);
                let start = Instant::now();
                let cx = StepCx { id, progress: self.progress, start };
                let chains = exec(&cx).and_then(|c| self.record(&key, &c).map(|()| c));
                match chains {
                    Ok(c) => {
                        self.done(id, start);
                        Ok(Done::from_chains(c, key))
                    }
                    Err(e) => Err(self.failed(id, e)),
                }
            }
            Plan::Source { key, exec } => {
                let id = self.start(v);
                let start = Instant::now();
                let run = || -> Result<(Done, Option<bool>), StepError> {
                    match key()? {
                        SourceKey::Known { key, chains, manifest } => {
                            if let (Some(rec), cairn_ir::Op::Source(cairn_ir::SourceOp::Image { reference, .. })) =
                                (self.records, &self.graph.def.vertices[v].vertex.op)
                            {
                                rec.set_base(v, reference, &manifest.to_string());
                            }
                            Ok((Done::from_chains(chains, key), None))
                        }
                        SourceKey::Fetched { key, chains, reused } => {
                            self.record(&key, &chains)?;
                            self.note_source(v, id, &key, reused);
                            Ok((Done::from_chains(chains, key), Some(reused)))
                        }
                        SourceKey::Key(key) => {
                            if let Some(chains) = self.lookup(v, &key) {
                                self.note_source(v, id, &key, true);
                                return Ok((Done::from_chains(chains, key), Some(true)));
                            }
                            self.note_source(v, id, &key, false);
                            let exec = exec.ok_or_else(|| StepError::msg("The source has no result for its key"))?;
                            let chains = exec(&StepCx { id, progress: self.progress, start })?;
                            self.record(&key, &chains)?;
                            Ok((Done::from_chains(chains, key), Some(false)))
                        }
                    }
                };
                match run() {
                    Ok((d, None)) => {
                        self.cached(id, false);
                        Ok(d)
                    }
                    Ok((d, Some(true))) => {
                        self.cached(id, true);
                        Ok(d)
                    }
                    Ok((d, Some(false))) => {
                        self.done(id, start);
                        Ok(d)
                    }
                    Err(e) => Err(self.failed(id, e)),
                }
            }
        }
    }
}

impl Worker for Engine<'_> {
    type Output = Done;
    type Error = VertexError;

    fn run(&self, v: usize, inputs: &[Done], cancel: &AtomicBool) -> Result<Done, VertexError> {
        self.run_vertex(v, inputs, cancel)
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
