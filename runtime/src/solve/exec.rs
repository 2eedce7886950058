//! Op execution: the [`Worker`] that turns one vertex and its inputs' results into layer
//! chains, with cache lookups by key. Exec runs in the sandbox over an overlay of the root
//! chain; file actions run on an overlay mounted in the host namespace; merges concatenate
//! chains; sources resolve images from the store and client directories.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use cairn_ir::{
    CacheSharing, Definition, Digest, ExecOp, FileActionKind, FileOp, FileRef, MountKind, Op, Platform, SourceOp,
};

use super::backend::{Backend, Exit, ProcessMount, ProcessMountSource, ProcessSpec};
use super::fileop::{self, SrcTree};
use super::hash::{hash_entry, Hash, HashOpts, StatCache};
use super::key::{self, Part};
use super::pattern::Filter;
use super::progress::{now, Event, Progress};
use super::scheduler::{Semaphore, Worker};
use super::SolveOptions;

/// A layer id of the store.
pub type LayerId = String;

/// A client directory seen through its include/exclude filter.
#[derive(Debug)]
pub struct LocalTree {
    pub name: String,
    pub root: PathBuf,
    pub filter: Filter,
}

/// The value of one vertex output.
#[derive(Debug, Clone)]
pub enum Tree {
    /// A chain of layer directories, bottom first.
    Layers(Arc<Vec<LayerId>>),
    /// A client directory, read in place.
    Local(Arc<LocalTree>),
}

/// A finished vertex: its outputs and their keys.
#[derive(Debug, Clone)]
pub struct Done {
    pub outputs: Vec<Tree>,
    pub keys: Vec<Hash>,
}

/// Why a step failed: a message and the last lines of its output.
#[derive(Debug)]
pub struct StepFailure {
    pub message: String,
    pub tail: Vec<String>,
    /// The step number shown in progress output, when it got one.
    pub step: Option<usize>,
}

impl StepFailure {
    pub fn msg(message: impl Into<String>) -> StepFailure {
        StepFailure { message: message.into(), tail: Vec::new(), step: None }
    }
}

/// Cache mounts in use, for `Locked` (wait) and `Private` (take another) sharing.
#[derive(Debug, Default)]
pub struct CacheLocks {
    busy: std::sync::Mutex<std::collections::HashSet<String>>,
    cv: std::sync::Condvar,
}

/// Releases a cache mount id on drop.
pub struct CacheGuard<'a> {
    locks: &'a CacheLocks,
    id: String,
}

impl Drop for CacheGuard<'_> {
    fn drop(&mut self) {
        self.locks.busy.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
        self.locks.cv.notify_all();
    }
}

impl CacheLocks {
    /// Takes `id`, waiting while another step holds it; `None` when cancelled.
    pub fn lock(&self, id: &str, cancel: &AtomicBool) -> Option<CacheGuard<'_>> {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        while busy.contains(id) {
            if cancel.load(Ordering::SeqCst) {
                return None;
            }
            busy =
                self.cv.wait_timeout(busy, std::time::Duration::from_millis(100)).unwrap_or_else(|e| e.into_inner()).0;
        }
        busy.insert(id.to_string());
        Some(CacheGuard { locks: self, id: id.to_string() })
    }

    /// Takes `id` if it is free.
    pub fn try_lock(&self, id: &str) -> Option<CacheGuard<'_>> {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        if !busy.insert(id.to_string()) {
            return None;
        }
        Some(CacheGuard { locks: self, id: id.to_string() })
    }
}

/// Removes a directory tree on drop (private cache mounts of concurrent steps, work
/// directories of remote sources).
pub(super) struct RemoveDir(pub(super) PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The solver state shared by all vertex threads.
pub struct Solver<'a> {
    pub def: &'a Definition,
    pub store: &'a dyn Backend,
    pub opts: &'a SolveOptions,
    pub progress: &'a dyn Progress,
    pub stat: &'a StatCache,
    pub runs: Semaphore,
    /// For each vertex, the distinct vertices it reads (scheduler order).
    pub deps: Vec<Vec<usize>>,
    pub index: HashMap<Digest, usize>,
    pub steps: AtomicUsize,
    pub executed: AtomicUsize,
    pub cached: AtomicUsize,
    pub mount_seq: AtomicUsize,
    pub empty_dir: PathBuf,
    pub mnt_dir: PathBuf,
    pub cache_locks: CacheLocks,
}

/// A read-only directory view of a tree: a layer dir, an empty dir or an overlay mount.
struct View {
    path: PathBuf,
    mount: Option<Box<dyn std::any::Any + Send>>,
    mountpoint: Option<PathBuf>,
}

impl Drop for View {
    fn drop(&mut self) {
        drop(self.mount.take());
        if let Some(mp) = &self.mountpoint {
            let _ = fs::remove_dir(mp);
        }
    }
}

/// Maps an error to a step failure `what: error`.
pub(super) fn fail<E: std::fmt::Display>(what: impl Into<String>) -> impl FnOnce(E) -> StepFailure {
    let what = what.into();
    move |e| StepFailure::msg(format!("{what}: {e}"))
}

impl<'a> Solver<'a> {
    fn input_of(&self, v: usize, inputs: &[Done], i: u32) -> Result<(Tree, Hash), StepFailure> {
        let vertex = &self.def.vertices[v].vertex;
        let inp = vertex.inputs.get(i as usize).ok_or_else(|| StepFailure::msg(format!("Input {i} out of range")))?;
        let producer = self.index[&inp.digest];
        let pos = self.deps[v].iter().position(|&d| d == producer).unwrap_or(0);
        let done = &inputs[pos];
        let idx = inp.index as usize;
        match (done.outputs.get(idx), done.keys.get(idx)) {
            (Some(t), Some(k)) => Ok((t.clone(), *k)),
            _ => Err(StepFailure::msg(format!("Input {i} has no output {idx}"))),
        }
    }

    fn layer_paths(&self, chain: &[LayerId]) -> Vec<PathBuf> {
        chain.iter().map(|l| self.store.layer_path(l)).collect()
    }

    fn mountpoint(&self) -> Result<PathBuf, StepFailure> {
        let n = self.mount_seq.fetch_add(1, Ordering::SeqCst);
        let p = self.mnt_dir.join(format!("{}-{n}", std::process::id()));
        fs::create_dir_all(&p).map_err(fail("Cannot create a mount point"))?;
        Ok(p)
    }

    /// Lower dirs for an overlay (bottom first), padded so a single layer mounts too.
    fn lowers(&self, chain: &[LayerId]) -> Vec<PathBuf> {
        let mut l = vec![self.empty_dir.clone()];
        l.extend(self.layer_paths(chain));
        l
    }

    fn view(&self, tree: &Tree) -> Result<View, StepFailure> {
        match tree {
            Tree::Local(l) => Ok(View { path: l.root.clone(), mount: None, mountpoint: None }),
            Tree::Layers(chain) if chain.is_empty() => {
                Ok(View { path: self.empty_dir.clone(), mount: None, mountpoint: None })
            }
            Tree::Layers(chain) if chain.len() == 1 => {
                Ok(View { path: self.store.layer_path(&chain[0]), mount: None, mountpoint: None })
            }
            Tree::Layers(chain) => {
                let mp = self.mountpoint()?;
                let m = self
                    .store
                    .mount_overlay(&self.layer_paths(chain), None, &mp)
                    .map_err(fail("Cannot mount the layers of an input"))?;
                Ok(View { path: mp.clone(), mount: Some(m), mountpoint: Some(mp) })
            }
        }
    }

    /// Content hash of the paths a copy selects in `tree`.
    fn selection_hash(&self, tree: &Tree, c: &cairn_ir::CopyAction) -> Result<Hash, StepFailure> {
        let memo_key = match tree {
            Tree::Layers(chain) => {
                let mut h = blake3::Hasher::new();
                for l in chain.iter() {
                    h.update(l.as_bytes());
                    h.update(b"\0");
                }
                h.update(&cairn_ir::encode::to_canonical(&(&c.src_paths, c.follow_symlinks, c.allow_wildcard)));
                let k = h.finalize().to_hex().to_string();
                if let Some(hit) = self.stat.selection(&k) {
                    return Ok(hit);
                }
                Some(k)
            }
            Tree::Local(_) => None,
        };
        let view = self.view(tree)?;
        let (filter, strict, cache) = match tree {
            Tree::Local(l) => (Some(&l.filter), true, Some(self.stat)),
            Tree::Layers(_) => (None, false, None),
        };
        let src = SrcTree { root: &view.path, filter, strict };
        let mut h = blake3::Hasher::new();
        for p in &c.src_paths {
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p.as_bytes());
            let found = match fileop::expand_src(&src, p, c) {
                Ok(f) => f,
                Err(e) => return Err(StepFailure::msg(format!("Cannot read `{p}`: {e}"))),
            };
            for (hp, rel) in found {
                let eh = hash_entry(&hp, &rel, &HashOpts { filter, stat_cache: cache })
                    .map_err(fail(&format!("Cannot hash `{rel}`")))?;
                h.update(&(rel.len() as u64).to_le_bytes());
                h.update(rel.as_bytes());
                h.update(&eh);
            }
        }
        let out = *h.finalize().as_bytes();
        if let Some(k) = memo_key {
            self.stat.set_selection(&k, &out);
        }
        Ok(out)
    }

    /// Content hash of a whole tree below `selector` (read-only mounts, Local as a key).
    fn tree_hash(&self, tree: &Tree, selector: &str) -> Result<Hash, StepFailure> {
        let memo_key = match tree {
            Tree::Layers(chain) => {
                let mut h = blake3::Hasher::new();
                for l in chain.iter() {
                    h.update(l.as_bytes());
                    h.update(b"\0");
                }
                h.update(b"tree\0");
                h.update(selector.as_bytes());
                let k = h.finalize().to_hex().to_string();
                if let Some(hit) = self.stat.selection(&k) {
                    return Ok(hit);
                }
                Some(k)
            }
            Tree::Local(_) => None,
        };
        let out = self.tree_hash_uncached(tree, selector)?;
        if let Some(k) = memo_key {
            self.stat.set_selection(&k, &out);
        }
        Ok(out)
    }

    fn tree_hash_uncached(&self, tree: &Tree, selector: &str) -> Result<Hash, StepFailure> {
        let view = self.view(tree)?;
        let (filter, strict, cache) = match tree {
            Tree::Local(l) => (Some(&l.filter), true, Some(self.stat)),
            Tree::Layers(_) => (None, false, None),
        };
        let (hp, rel) =
            fileop::resolve(&view.path, selector, true, strict).map_err(|e| StepFailure::msg(e.to_string()))?;
        if fs::symlink_metadata(&hp).is_err() {
            return Ok([0; 32]);
        }
        hash_entry(&hp, &rel, &HashOpts { filter, stat_cache: cache }).map_err(fail("Cannot hash an input"))
    }

    /// The `key` part of an input: its producer's key, or for a Local tree its content.
    fn key_part(&self, tree: &Tree, k: Hash, index: u32) -> Result<Part, StepFailure> {
        match tree {
            Tree::Local(_) => Ok(Part::Content(self.tree_hash(tree, "/")?)),
            Tree::Layers(_) => Ok(Part::Key(k, index)),
        }
    }

    pub(super) fn step_name(&self, v: usize) -> String {
        let meta = &self.def.vertices[v].meta;
        match &meta.group {
            Some(g) => format!("[{} {}/{}] {}", g.name, g.step, g.total, meta.description),
            None if meta.description.is_empty() => self.def.vertices[v].vertex.op.kind().to_string(),
            None => meta.description.clone(),
        }
    }

    /// Whether cache lookups are allowed for vertex `v` (not with `--no-cache` or
    /// `ignore_cache`).
    pub(super) fn use_cache(&self, v: usize) -> bool {
        !(self.opts.no_cache || self.def.vertices[v].meta.ignore_cache)
    }

    pub(super) fn cache_lookup(&self, v: usize, key: &Hash) -> Option<Vec<Vec<LayerId>>> {
        if !self.use_cache(v) {
            return None;
        }
        let all = self.store.cache_get(&key::key_hex(key)).ok()??;
        let present = all.iter().flatten().all(|l| self.store.layer_path(l).is_dir());
        present.then_some(all)
    }

    fn done_from_chains(&self, chains: Vec<Vec<LayerId>>, key: Hash) -> Done {
        let keys =
            (0..chains.len() as u32).map(|i| if i == 0 { key } else { key::vertex_key_output(&key, i) }).collect();
        Done { outputs: chains.into_iter().map(|c| Tree::Layers(Arc::new(c))).collect(), keys }
    }

    /// Runs a cacheable step: key → lookup → (a `--jobs` permit for processes) → execute →
    /// record. The step's start event comes once it really starts.
    fn cached_step(
        &self,
        v: usize,
        key: Hash,
        cancel: Option<&AtomicBool>,
        exec: impl FnOnce(usize) -> Result<Vec<Vec<LayerId>>, StepFailure>,
    ) -> Result<Done, StepFailure> {
        let name = self.step_name(v);
        if let Some(chains) = self.cache_lookup(v, &key) {
            let id = self.steps.fetch_add(1, Ordering::SeqCst) + 1;
            self.progress.event(Event::Start { id, name, time: now() });
            self.cached.fetch_add(1, Ordering::SeqCst);
            self.progress.event(Event::Cached { id, time: now() });
            return Ok(self.done_from_chains(chains, key));
        }
        let _permit = match cancel {
            Some(c) => Some(self.runs.acquire(c).ok_or_else(|| StepFailure::msg("Cancelled"))?),
            None => None,
        };
        let id = self.steps.fetch_add(1, Ordering::SeqCst) + 1;
        self.progress.event(Event::Start { id, name, time: now() });
        let start = Instant::now();
        match exec(id) {
            Ok(chains) => {
                self.store
                    .cache_put(&key::key_hex(&key), &chains)
                    .map_err(fail("Cannot record the result in the cache index"))?;
                self.executed.fetch_add(1, Ordering::SeqCst);
                self.progress.event(Event::Done { id, seconds: start.elapsed().as_secs_f64(), time: now() });
                Ok(self.done_from_chains(chains, key))
            }
            Err(mut e) => {
                e.step = Some(id);
                self.progress.event(Event::Error { id, message: e.message.clone(), time: now() });
                Err(e)
            }
        }
    }

    fn source(&self, v: usize, s: &SourceOp, cancel: &AtomicBool) -> Result<Done, StepFailure> {
        let platform = &self.opts.platform;
        match s {
            SourceOp::Scratch => Ok(Done {
                outputs: vec![Tree::Layers(Arc::new(Vec::new()))],
                keys: vec![key::leaf_key("scratch", "", platform)],
            }),
            SourceOp::Local { name, include, exclude } => {
                let root = self.opts.contexts.get(name).ok_or_else(|| {
                    StepFailure::msg(format!("Build context `{name}` was not given (use `--build-context {name}=DIR`)"))
                })?;
                let mut exclude = exclude.clone();
                if name == "context" {
                    if let Ok(text) = fs::read_to_string(root.join(".dockerignore")) {
                        exclude.extend(text.lines().map(str::to_string));
                    }
                }
                let filter = Filter::new(include, &exclude)
                    .map_err(|e| StepFailure::msg(format!("Build context `{name}`: {e}")))?;
                let tree = LocalTree { name: name.clone(), root: root.clone(), filter };
                Ok(Done { outputs: vec![Tree::Local(Arc::new(tree))], keys: vec![[0; 32]] })
            }
            SourceOp::Image { reference, .. } => {
                let id = self.steps.fetch_add(1, Ordering::SeqCst) + 1;
                self.progress.event(Event::Start { id, name: self.step_name(v), time: now() });
                let img = match self.resolve_image(reference) {
                    Ok(i) => i,
                    Err(mut e) => {
                        e.step = Some(id);
                        self.progress.event(Event::Error { id, message: e.message.clone(), time: now() });
                        return Err(e);
                    }
                };
                self.progress.event(Event::Cached { id, time: now() });
                Ok(Done {
                    outputs: vec![Tree::Layers(Arc::new(img.layers))],
                    keys: vec![key::leaf_key("image", &img.manifest_digest.to_string(), platform)],
                })
            }
            SourceOp::Http { url, checksum, filename, mode } => {
                self.http_source(v, url, checksum.as_ref(), filename, *mode, cancel)
            }
            SourceOp::Git { remote, reference, subdir, keep_git_dir } => {
                self.git_source(v, remote, reference, subdir, *keep_git_dir, cancel)
            }
        }
    }

    fn resolve_image(&self, reference: &str) -> Result<super::backend::ImageInfo, StepFailure> {
        match self.store.image(reference) {
            Ok(Some(img)) => Ok(img),
            Ok(None) => Err(StepFailure::msg(format!(
                "Image `{reference}` is not in the local store (cairn never pulls: build it with `cairn build -t` or import it with `cairn load -i FILE`)"
            ))),
            Err(e) => Err(StepFailure::msg(format!("Cannot read image `{reference}` from the store: {e}"))),
        }
    }

    fn exec(&self, v: usize, e: &ExecOp, inputs: &[Done], cancel: &AtomicBool) -> Result<Done, StepFailure> {
        let host = Platform::host();
        if self.opts.platform != host {
            return Err(StepFailure::msg(format!(
                "`{}` needs to run a process for platform `{}`, but this machine runs `{host}` (cairn does not emulate other platforms)",
                self.def.vertices[v].meta.description, self.opts.platform
            )));
        }
        if e.security == cairn_ir::SecurityMode::Insecure {
            return Err(StepFailure::msg(
                "`--security=insecure` is not supported: cairn runs every step in its sandbox without extra privileges",
            ));
        }
        // Key parts, input by input. A bind mount without an output (read-only, or
        // read-write with its writes discarded) keys on the content of its selection only.
        // Secret values are never part of the key (BuildKit does the same).
        let vertex = &self.def.vertices[v].vertex;
        let mut parts = Vec::new();
        for (i, _) in vertex.inputs.iter().enumerate() {
            let (tree, k) = self.input_of(v, inputs, i as u32)?;
            let users: Vec<&cairn_ir::Mount> = e.mounts.iter().filter(|m| m.input == Some(i as u32)).collect();
            let selector_only =
                !users.is_empty() && users.iter().all(|m| m.output.is_none() && matches!(m.kind, MountKind::Bind));
            if selector_only {
                for m in users {
                    parts.push(Part::Content(self.tree_hash(&tree, &m.selector)?));
                }
            } else {
                parts.push(self.key_part(&tree, k, vertex.inputs[i].index)?);
            }
        }
        let key = key::vertex_key(&vertex.op, &self.opts.platform, &parts);
        self.cached_step(v, key, Some(cancel), |id| self.run_exec(v, e, inputs, id, cancel))
    }

    fn run_exec(
        &self,
        v: usize,
        e: &ExecOp,
        inputs: &[Done],
        id: usize,
        cancel: &AtomicBool,
    ) -> Result<Vec<Vec<LayerId>>, StepFailure> {
        let mut secret_env = Vec::new();
        for s in &e.secret_env {
            match self.opts.secrets.get(&s.id) {
                Some(value) => secret_env.push((s.name.clone(), value.clone())),
                None if s.required => return Err(missing_secret(&s.id)),
                None => {}
            }
        }
        let root = &e.mounts[0];
        let root_chain: Vec<LayerId> = match root.input {
            None => Vec::new(),
            Some(i) => match self.input_of(v, inputs, i)?.0 {
                Tree::Layers(c) => c.to_vec(),
                Tree::Local(_) => {
                    return Err(StepFailure::msg("A build context cannot be the root filesystem of a process"))
                }
            },
        };
        if !(root.selector.is_empty() || root.selector == "/") {
            return Err(StepFailure::msg("A root mount with a selector is not supported"));
        }
        let root_layer = self.store.new_layer().map_err(fail("Cannot create a layer"))?;
        let mut extra_layers = Vec::new(); // (output index, base chain, new layer)
        let mut keep_alive = Vec::new();
        let mut cache_guards = Vec::new();
        let mut private_dirs = Vec::new();
        let mut views = Vec::new();
        let mut mounts = Vec::new();
        for m in &e.mounts[1..] {
            let tree = match m.input {
                Some(i) => Some(self.input_of(v, inputs, i)?.0),
                None => None,
            };
            let source = match &m.kind {
                MountKind::Bind => match (tree, m.output) {
                    (Some(Tree::Local(_)), Some(_)) => {
                        return Err(StepFailure::msg("A build context mount cannot have an output"))
                    }
                    (Some(Tree::Local(l)), None) if !l.filter.is_trivial() => {
                        self.filtered_bind(&l, m, &mut keep_alive)?
                    }
                    (Some(Tree::Local(l)), None) => {
                        let (hp, _) = fileop::resolve(&l.root, &m.selector, true, true)
                            .map_err(|e| StepFailure::msg(e.to_string()))?;
                        self.bind_source(hp, m, &mut keep_alive)?
                    }
                    (tree, None) => {
                        let tree = tree.unwrap_or_else(|| Tree::Layers(Arc::new(Vec::new())));
                        let view = self.view(&tree)?;
                        let (hp, _) = fileop::resolve(&view.path, &m.selector, true, false)
                            .map_err(|e| StepFailure::msg(e.to_string()))?;
                        views.push(view);
                        self.bind_source(hp, m, &mut keep_alive)?
                    }
                    (tree, Some(o)) => {
                        let chain = match tree {
                            Some(Tree::Layers(c)) => c.to_vec(),
                            _ => Vec::new(),
                        };
                        if !m.selector.trim_matches('/').is_empty() {
                            return Err(StepFailure::msg(
                                "A mount with both a selector and an output is not supported",
                            ));
                        }
                        let nl = self.store.new_layer().map_err(fail("Cannot create a layer"))?;
                        let upper = Some((nl.upper.clone(), nl.work.clone()));
                        let lowers = self.lowers(&chain);
                        extra_layers.push((o, chain, nl));
                        ProcessMountSource::Overlay { lowers, upper }
                    }
                },
                MountKind::Cache { id: cid, sharing, mode, uid, gid } => {
                    let name = blake3::hash(cid.as_bytes()).to_hex().to_string();
                    let mut dir = self.opts.root.join("cachemounts").join(&name);
                    match sharing {
                        CacheSharing::Shared => {}
                        // Two locked mounts of one id in one step share the lock.
                        CacheSharing::Locked if cache_guards.iter().any(|g: &CacheGuard| g.id == name) => {}
                        CacheSharing::Locked => cache_guards
                            .push(self.cache_locks.lock(&name, cancel).ok_or_else(|| StepFailure::msg("Cancelled"))?),
                        CacheSharing::Private => match self.cache_locks.try_lock(&name) {
                            Some(g) => cache_guards.push(g),
                            None => {
                                let n = self.mount_seq.fetch_add(1, Ordering::SeqCst);
                                dir = self
                                    .opts
                                    .root
                                    .join("cachemounts")
                                    .join(format!("{name}-{}-{n}", std::process::id()));
                                private_dirs.push(RemoveDir(dir.clone()));
                            }
                        },
                    }
                    if !dir.is_dir() {
                        self.init_cache_dir(&dir, tree.as_ref(), &m.selector, (*mode, *uid, *gid))?;
                    }
                    ProcessMountSource::Bind(dir)
                }
                MountKind::Tmpfs { size } => ProcessMountSource::Tmpfs { size: *size },
                MountKind::Secret { id: sid, required, mode, uid, gid } => match self.opts.secrets.get(sid) {
                    Some(data) => ProcessMountSource::Secret { data: data.clone(), mode: *mode, uid: *uid, gid: *gid },
                    None if *required => return Err(missing_secret(sid)),
                    None => continue,
                },
                MountKind::Ssh { id: sid, required, .. } => {
                    if *required {
                        return Err(StepFailure::msg(format!(
                            "SSH mount `{sid}` is required, but SSH agent forwarding is not supported yet (`--ssh` is not implemented)"
                        )));
                    }
                    continue;
                }
            };
            mounts.push(ProcessMount { target: m.target.clone(), readonly: m.readonly, source });
        }
        let spec = ProcessSpec {
            root_lowers: self.layer_paths(&root_chain),
            root_upper: root_layer.upper.clone(),
            root_work: root_layer.work.clone(),
            args: e.meta.args.clone(),
            env: e.meta.env.clone(),
            cwd: e.meta.cwd.clone(),
            user: e.meta.user.clone(),
            hostname: e.meta.hostname.clone(),
            network: e.network,
            mounts,
            secret_env,
        };
        let start = Instant::now();
        let mut tail: VecDeque<String> = VecDeque::new();
        let mut partial: Vec<u8> = Vec::new();
        let progress = self.progress;
        let emit = |line: &[u8], tail: &mut VecDeque<String>| {
            let text = String::from_utf8_lossy(line).trim_end_matches('\r').to_string();
            progress.event(Event::Log { id, elapsed: start.elapsed().as_secs_f64(), line: text.clone(), time: now() });
            tail.push_back(text);
            if tail.len() > 12 {
                tail.pop_front();
            }
        };
        let result = self.store.run_process(&spec, cancel, &mut |chunk: &[u8]| {
            partial.extend_from_slice(chunk);
            while let Some(pos) = partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = partial.drain(..=pos).collect();
                emit(&line[..line.len() - 1], &mut tail);
            }
        });
        if !partial.is_empty() {
            let rest = std::mem::take(&mut partial);
            emit(&rest, &mut tail);
        }
        let tail: Vec<String> = tail.into_iter().collect();
        let cmd = e.meta.args.join(" ");
        let info = result.map_err(|err| StepFailure {
            message: format!("Cannot run `{cmd}`: {err}"),
            tail: tail.clone(),
            step: None,
        })?;
        if cancel.load(Ordering::SeqCst) {
            return Err(StepFailure { message: "Cancelled".into(), tail, step: None });
        }
        if let Some(why) = exit_failure(&info) {
            return Err(StepFailure {
                message: format!("process \"{cmd}\" did not complete successfully: {why}"),
                tail,
                step: None,
            });
        }
        let mut chains = vec![Vec::new(); 1 + extra_layers.len()];
        let mut c0 = root_chain;
        c0.push(self.store.commit_layer(root_layer).map_err(fail("Cannot commit the layer"))?);
        chains[0] = c0;
        for (o, mut chain, nl) in extra_layers {
            chain.push(self.store.commit_layer(nl).map_err(fail("Cannot commit the layer"))?);
            if let Some(slot) = chains.get_mut(o as usize) {
                *slot = chain;
            }
        }
        drop(keep_alive);
        drop(views);
        drop(cache_guards);
        drop(private_dirs);
        Ok(chains)
    }

    /// The process mount for a bind of the host path `hp` (a context path or a view of an
    /// input): read-only as it is; read-write over a throwaway upper (a directory) or a
    /// throwaway copy (a file), so writes never reach the source or an output.
    fn bind_source(
        &self,
        hp: PathBuf,
        m: &cairn_ir::Mount,
        keep_alive: &mut Vec<super::backend::ScratchLayer>,
    ) -> Result<ProcessMountSource, StepFailure> {
        let md = fs::metadata(&hp).map_err(|_| {
            let shown = if m.selector.is_empty() { "/" } else { m.selector.as_str() };
            StepFailure::msg(format!("Cannot mount `{shown}` at `{}`: it does not exist in the mounted tree", m.target))
        })?;
        if m.readonly {
            return Ok(ProcessMountSource::Bind(hp));
        }
        let nl = self.store.new_layer().map_err(fail("Cannot create a layer"))?;
        let source = if md.is_dir() {
            ProcessMountSource::Overlay {
                lowers: vec![self.empty_dir.clone(), hp],
                upper: Some((nl.upper.clone(), nl.work.clone())),
            }
        } else {
            let copy = nl.work.join("file");
            fs::copy(&hp, &copy).map_err(fail("Cannot copy a bind-mounted file"))?;
            ProcessMountSource::Bind(copy)
        };
        keep_alive.push(nl);
        Ok(source)
    }

    /// A bind of a build context whose include/exclude patterns (`.dockerignore`) hide
    /// something: the context directory as an overlay lower with, above it, a layer of
    /// whiteouts for every hidden entry below the selection, so the step sees exactly what
    /// its key hashed without copying the context.
    fn filtered_bind(
        &self,
        l: &LocalTree,
        m: &cairn_ir::Mount,
        keep_alive: &mut Vec<super::backend::ScratchLayer>,
    ) -> Result<ProcessMountSource, StepFailure> {
        let (hp, rel) =
            fileop::resolve(&l.root, &m.selector, true, true).map_err(|e| StepFailure::msg(e.to_string()))?;
        let hidden = !rel.is_empty() && !l.filter.visible(&rel) && !l.filter.may_descend(&rel);
        if hidden || fs::symlink_metadata(&hp).is_err() {
            let shown = if m.selector.is_empty() { "/" } else { m.selector.as_str() };
            return Err(StepFailure::msg(format!(
                "Cannot mount `{shown}` at `{}`: it does not exist in the build context (or `.dockerignore` excludes it)",
                m.target
            )));
        }
        if !hp.is_dir() {
            return self.bind_source(hp, m, keep_alive);
        }
        let wl = self.store.new_layer().map_err(fail("Cannot create a layer"))?;
        let any = hide_invisible(&l.filter, &hp, &rel, &wl.upper)
            .map_err(fail("Cannot prepare a filtered build context mount"))?;
        if !any {
            return self.bind_source(hp, m, keep_alive);
        }
        let lowers = vec![hp, wl.upper.clone()];
        keep_alive.push(wl);
        if m.readonly {
            return Ok(ProcessMountSource::Overlay { lowers, upper: None });
        }
        let nl = self.store.new_layer().map_err(fail("Cannot create a layer"))?;
        let upper = Some((nl.upper.clone(), nl.work.clone()));
        keep_alive.push(nl);
        Ok(ProcessMountSource::Overlay { lowers, upper })
    }

    /// Creates the cache mount directory `dir`: from the input's tree at `selector` when
    /// the mount has `from=`, else empty with `mode/uid/gid`. It is built under a temporary
    /// name and renamed, so a concurrent user never sees it half made.
    fn init_cache_dir(
        &self,
        dir: &std::path::Path,
        tree: Option<&Tree>,
        selector: &str,
        (mode, uid, gid): (u32, u32, u32),
    ) -> Result<(), StepFailure> {
        let n = self.mount_seq.fetch_add(1, Ordering::SeqCst);
        let name = dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.with_file_name(format!(".tmp-{name}-{}-{n}", std::process::id()));
        let _cleanup = RemoveDir(tmp.clone());
        fs::create_dir_all(&tmp).map_err(fail("Cannot create a cache mount"))?;
        match tree {
            Some(tree) => {
                let view = self.view(tree)?;
                let (filter, strict) = match tree {
                    Tree::Local(l) => (Some(&l.filter), true),
                    Tree::Layers(_) => (None, false),
                };
                let src = SrcTree { root: &view.path, filter, strict };
                let c = copy_selection(selector);
                fileop::copy(&tmp, &src, &c)
                    .map_err(|e| StepFailure::msg(format!("Cannot initialise a cache mount from its source: {e}")))?;
                // The cache root is the source directory itself: its mode and owner too.
                let (hp, _) = fileop::resolve(&view.path, &c.src_paths[0], true, strict)
                    .map_err(|e| StepFailure::msg(e.to_string()))?;
                if let Some(md) = fs::metadata(&hp).ok().filter(|md| md.is_dir()) {
                    use std::os::unix::fs::MetadataExt;
                    set_mode_owner(&tmp, md.mode(), md.uid(), md.gid())
                        .map_err(fail("Cannot set a cache mount's mode and owner"))?;
                }
            }
            None => set_mode_owner(&tmp, mode, uid, gid).map_err(fail("Cannot set a cache mount's mode and owner"))?,
        }
        match fs::rename(&tmp, dir) {
            Ok(()) => Ok(()),
            Err(_) if dir.is_dir() => Ok(()), // a concurrent step made it first
            Err(e) => Err(StepFailure::msg(format!("Cannot create a cache mount: {e}"))),
        }
    }

    fn file(&self, v: usize, f: &FileOp, inputs: &[Done]) -> Result<Done, StepFailure> {
        let vertex = &self.def.vertices[v].vertex;
        let mut parts = Vec::new();
        for i in 0..vertex.inputs.len() as u32 {
            let (tree, k) = self.input_of(v, inputs, i)?;
            let as_base = f.actions.iter().any(|a| a.base == FileRef::Input(i));
            if as_base {
                parts.push(self.key_part(&tree, k, vertex.inputs[i as usize].index)?);
            }
            for a in &f.actions {
                if let FileActionKind::Copy(c) = &a.kind {
                    if c.src == FileRef::Input(i) {
                        parts.push(Part::Content(self.selection_hash(&tree, c)?));
                    }
                }
            }
        }
        let key = key::vertex_key(&vertex.op, &self.opts.platform, &parts);
        self.cached_step(v, key, None, |_| self.run_file(v, f, inputs).map(|c| vec![c]))
    }

    fn run_file(&self, v: usize, f: &FileOp, inputs: &[Done]) -> Result<Vec<LayerId>, StepFailure> {
        let base_chain: Vec<LayerId> = match f.actions[0].base {
            FileRef::Scratch => Vec::new(),
            FileRef::Input(i) => match self.input_of(v, inputs, i)?.0 {
                Tree::Layers(c) => c.to_vec(),
                Tree::Local(_) => return Err(StepFailure::msg("File actions cannot modify a build context")),
            },
            FileRef::Action(_) => return Err(StepFailure::msg("The first file action cannot read an action")),
        };
        for (k, a) in f.actions.iter().enumerate().skip(1) {
            if a.base != FileRef::Action(k as u32 - 1) {
                return Err(StepFailure::msg(
                    "File actions that do not each build on the previous one are not supported",
                ));
            }
        }
        let nl = self.store.new_layer().map_err(fail("Cannot create a layer"))?;
        {
            let (work_root, _mount, mountpoint) = if base_chain.is_empty() {
                (nl.upper.clone(), None, None)
            } else {
                let mp = self.mountpoint()?;
                let m = self
                    .store
                    .mount_overlay(&self.lowers(&base_chain), Some((nl.upper.as_path(), nl.work.as_path())), &mp)
                    .map_err(fail("Cannot mount the base layers"))?;
                (mp.clone(), Some(m), Some(mp))
            };
            let result = (|| {
                for a in &f.actions {
                    match &a.kind {
                        FileActionKind::Copy(c) => {
                            let tree = match c.src {
                                FileRef::Scratch => Tree::Layers(Arc::new(Vec::new())),
                                FileRef::Input(i) => self.input_of(v, inputs, i)?.0,
                                FileRef::Action(_) => {
                                    return Err(StepFailure::msg(
                                        "Copying from an earlier action's result is not supported",
                                    ))
                                }
                            };
                            let view = self.view(&tree)?;
                            let (filter, strict) = match &tree {
                                Tree::Local(l) => (Some(&l.filter), true),
                                Tree::Layers(_) => (None, false),
                            };
                            let src = SrcTree { root: &view.path, filter, strict };
                            fileop::copy(&work_root, &src, c).map_err(|e| StepFailure::msg(e.to_string()))?;
                        }
                        other => fileop::apply(&work_root, other).map_err(|e| StepFailure::msg(e.to_string()))?,
                    }
                }
                Ok(())
            })();
            drop(_mount);
            if let Some(mp) = mountpoint {
                let _ = fs::remove_dir(mp);
            }
            result?;
        }
        let mut chain = base_chain;
        chain.push(self.store.commit_layer(nl).map_err(fail("Cannot commit the layer"))?);
        Ok(chain)
    }

    fn merge(&self, v: usize, inputs: &[Done]) -> Result<Done, StepFailure> {
        let vertex = &self.def.vertices[v].vertex;
        let mut parts = Vec::new();
        let mut chain = Vec::new();
        for i in 0..vertex.inputs.len() as u32 {
            let (tree, k) = self.input_of(v, inputs, i)?;
            parts.push(self.key_part(&tree, k, vertex.inputs[i as usize].index)?);
            match tree {
                Tree::Layers(c) => chain.extend(c.iter().cloned()),
                Tree::Local(_) => return Err(StepFailure::msg("Merging a build context directly is not supported")),
            }
        }
        let key = key::vertex_key(&vertex.op, &self.opts.platform, &parts);
        Ok(Done { outputs: vec![Tree::Layers(Arc::new(chain))], keys: vec![key] })
    }

    fn diff(&self, v: usize, inputs: &[Done]) -> Result<Done, StepFailure> {
        let vertex = &self.def.vertices[v].vertex;
        let (lower, lk) = self.input_of(v, inputs, 0)?;
        let (upper, uk) = self.input_of(v, inputs, 1)?;
        let (Tree::Layers(l), Tree::Layers(u)) = (&lower, &upper) else {
            return Err(StepFailure::msg("A diff of a build context is not supported"));
        };
        if l.len() > u.len() || u[..l.len()] != l[..] {
            return Err(StepFailure::msg(
                "A diff whose lower layers are not a prefix of its upper layers is not supported",
            ));
        }
        let parts = [Part::Key(lk, vertex.inputs[0].index), Part::Key(uk, vertex.inputs[1].index)];
        let key = key::vertex_key(&vertex.op, &self.opts.platform, &parts);
        Ok(Done { outputs: vec![Tree::Layers(Arc::new(u[l.len()..].to_vec()))], keys: vec![key] })
    }
}

/// Removes what dead solver processes left in `cachemounts/`: half-made cache directories
/// (`.tmp-<name>-<pid>-<n>`) and private copies (`<name>-<pid>-<n>`).
pub fn clean_stale_cache_dirs(dir: &std::path::Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let mut parts = name.trim_start_matches(".tmp-").split('-');
        let (Some(_), Some(pid), Some(_)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if !crate::store::sys::pid_alive(pid) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Puts an overlay whiteout in `wdir` for every entry below the context directory `dir`
/// (`rel` from the context root) that `filter` hides, then gives the directories it made
/// the mode and owner of the context's (the top layer's directory attributes win in an
/// overlay). Returns whether it hid anything.
fn hide_invisible(filter: &Filter, dir: &std::path::Path, rel: &str, wdir: &std::path::Path) -> std::io::Result<bool> {
    let any = add_whiteouts(filter, dir, rel, wdir)?;
    if any {
        copy_dir_attrs(dir, wdir)?;
    }
    Ok(any)
}

/// Sets the permission bits of `mode` and the owner of `p`.
fn set_mode_owner(p: &std::path::Path, mode: u32, uid: u32, gid: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode & 0o7777))?;
    std::os::unix::fs::chown(p, Some(uid), Some(gid))
}

fn copy_dir_attrs(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let md = fs::metadata(from)?;
    set_mode_owner(to, md.mode(), md.uid(), md.gid())?;
    for e in fs::read_dir(to)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            copy_dir_attrs(&from.join(e.file_name()), &e.path())?;
        }
    }
    Ok(())
}

fn add_whiteouts(filter: &Filter, dir: &std::path::Path, rel: &str, wdir: &std::path::Path) -> std::io::Result<bool> {
    let mut any = false;
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let child_rel = if rel.is_empty() {
            name.to_string_lossy().into_owned()
        } else {
            format!("{rel}/{}", name.to_string_lossy())
        };
        let is_dir = e.file_type()?.is_dir();
        let visible = filter.visible(&child_rel);
        if is_dir && (visible || filter.may_descend(&child_rel)) {
            any |= add_whiteouts(filter, &e.path(), &child_rel, &wdir.join(&name))?;
            continue;
        }
        if visible {
            continue;
        }
        fs::create_dir_all(wdir)?;
        // A 0/0 character device is an overlay whiteout.
        crate::store::sys::mknod(&wdir.join(&name), libc::S_IFCHR, 0, 0)?;
        any = true;
    }
    Ok(any)
}

/// A copy of everything at `selector` (a directory's contents, or one file) into `/`.
fn copy_selection(selector: &str) -> cairn_ir::CopyAction {
    cairn_ir::CopyAction {
        src: FileRef::Input(0),
        src_paths: vec![if selector.is_empty() { "/".to_string() } else { selector.to_string() }],
        dest: "/".into(),
        owner: None,
        mode: None,
        follow_symlinks: true,
        dir_contents_only: true,
        allow_wildcard: false,
        allow_empty_wildcard: false,
        include: Vec::new(),
        exclude: Vec::new(),
        create_dest_path: true,
        unpack_archive: false,
        parents: false,
        timestamp: None,
    }
}

fn missing_secret(id: &str) -> StepFailure {
    StepFailure::msg(format!(
        "Secret `{id}` is required but was not given (use `--secret id={id},src=PATH` or `--secret id={id},env=VAR`)"
    ))
}

/// `None` when the process succeeded, else BuildKit-style words for how it ended.
fn exit_failure(info: &Exit) -> Option<String> {
    match (info.code, info.signal) {
        (Some(0), _) => None,
        (Some(c), _) => Some(format!("exit code: {c}")),
        (None, Some(s)) => Some(format!("killed by signal {s}")),
        (None, None) => Some("unknown exit status".to_string()),
    }
}

impl Worker for Solver<'_> {
    type Output = Done;
    type Error = StepFailure;

    fn run(&self, v: usize, inputs: &[Done], cancel: &AtomicBool) -> Result<Done, StepFailure> {
        match &self.def.vertices[v].vertex.op {
            Op::Source(s) => self.source(v, s, cancel),
            Op::Exec(e) => self.exec(v, e, inputs, cancel),
            Op::File(f) => self.file(v, f, inputs),
            Op::Merge(_) => self.merge(v, inputs),
            Op::Diff(_) => self.diff(v, inputs),
        }
    }
}
