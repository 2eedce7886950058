//! Execution of a Definition: the engine, the ops, the scheduler, cache keys, content
//! hashing and progress.
//!
//! [`solve`] validates the Definition once ([`graph::Graph`]), then runs the vertices the
//! output needs in parallel ([`scheduler`]). For each one the op (`ops/`) gives a plan and
//! the [`engine`] does the rest: the key ([`key`] has the exact rule), the lookup, permits,
//! progress, the exec and the cache record. Every result is a chain of immutable layers;
//! the chain of the output root is what the image exporter packs. What the solver needs
//! from the store, mounts and the sandbox is the four traits of [`backend`].

pub mod archive;
pub mod backend;
pub mod engine;
pub mod fileop;
pub mod graph;
pub mod hash;
pub mod key;
mod ops;
pub mod pattern;
pub mod progress;
pub mod record;
pub mod runtime_backend;
pub mod scheduler;
pub mod secrets;

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use cairn_ir::{Definition, Platform};

use backend::{Backend, LayerId};
use engine::{Engine, StepError, Tree};
use hash::StatCache;
use progress::Progress;

/// How to solve.
#[derive(Debug, Clone)]
pub struct SolveOptions {
    /// The platforms being built (at least one): their outputs are solved together, so
    /// what they share (a `FROM --platform=$BUILDPLATFORM` stage) runs once. The first is
    /// also the platform of an Exec without one (a Definition older than version 3).
    pub platforms: Vec<Platform>,
    /// Skip every cache lookup (results are still recorded).
    pub no_cache: bool,
    /// How many RUN steps may run at once.
    pub jobs: usize,
    /// Local sources by name (`context` is the main build context).
    pub contexts: HashMap<String, PathBuf>,
    /// Where the store keeps the stat cache, cache mounts and temporary mount points.
    pub layout: crate::store::StoreLayout,
    /// Build secrets by id (`--secret`); never stored, logged or keyed.
    pub secrets: secrets::Secrets,
    /// `--allow security.insecure`: `RUN --security=insecure` runs unconfined.
    pub allow_insecure: bool,
    /// `--allow network.host`: `RUN --network=host` shares the host's network.
    pub allow_network_host: bool,
    /// SSH agents by id (`--ssh`): sockets bound into `RUN --mount=type=ssh` steps.
    pub ssh: std::collections::BTreeMap<String, PathBuf>,
    /// Limits and host details of every RUN step.
    pub resources: crate::process::StepResources,
    /// Where step records go (`--explain`, `cairn explain`); `None` keeps none.
    pub records: Option<std::sync::Arc<record::Recorder>>,
}

/// What a successful solve produced.
#[derive(Debug, Clone)]
pub struct Solved {
    /// The layer chain of the first platform's output root, bottom first.
    pub layers: Vec<LayerId>,
    /// Index into `Definition::outputs` of the first platform's output.
    pub output: usize,
    /// Every platform's output (index into `Definition::outputs`, layer chain), in the
    /// order of [`SolveOptions::platforms`]; the first is `output` and `layers`.
    pub outputs: Vec<(usize, Vec<LayerId>)>,
    pub executed: usize,
    pub cached: usize,
}

/// What a failed step reports: `location` is `file:line` from the vertex's source map and
/// `line` the source text there; `tail` holds the last lines of its output.
#[derive(Debug)]
pub struct StepReport {
    pub step: String,
    pub number: Option<usize>,
    pub location: Option<String>,
    pub line: Option<String>,
    pub message: String,
    pub tail: Vec<String>,
}

/// Why a solve failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum SolveError {
    /// A step failed.
    Step(Box<StepReport>),
    /// Ctrl-C (or another outside cancellation) stopped the build.
    Cancelled,
    /// The Definition has no output, or none for the requested platform.
    NoOutput(String),
    /// Preparing the solve (directories under the store root) failed.
    Io(String),
    /// The Definition breaks a structural rule of SPEC.md.
    Invalid(String),
}

impl fmt::Display for SolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SolveError::Step(r) => {
                let StepReport { step, number, location, line, message, tail } = &**r;
                let num = number.map(|n| format!("#{n} ")).unwrap_or_default();
                write!(f, "Step {num}`{step}` failed")?;
                if let Some(loc) = location {
                    write!(f, " at {loc}")?;
                }
                write!(f, ": {message}")?;
                if let (Some(loc), Some(text)) = (location, line) {
                    let n = loc.rsplit(':').next().unwrap_or("");
                    write!(f, "\n {n:>4} | {text}")?;
                }
                if !tail.is_empty() {
                    write!(f, "\nLast output lines:")?;
                    for l in tail {
                        write!(f, "\n    {l}")?;
                    }
                }
                Ok(())
            }
            SolveError::Cancelled => write!(f, "Build cancelled"),
            SolveError::NoOutput(m) => write!(f, "{m}"),
            SolveError::Io(m) => write!(f, "{m}"),
            SolveError::Invalid(m) => write!(f, "Invalid Definition: {m}"),
        }
    }
}

impl std::error::Error for SolveError {}

/// Picks the output for `platform`: an exact match (variants normalised), else the only
/// output.
pub fn pick_output(def: &Definition, platform: &Platform) -> Result<usize, SolveError> {
    if let Some(i) = def.outputs.iter().position(|o| o.platform.same_as(platform)) {
        return Ok(i);
    }
    match def.outputs.len() {
        0 => Err(SolveError::NoOutput("The Definition has no output".to_string())),
        1 => Ok(0),
        _ => Err(SolveError::NoOutput(format!(
            "The Definition has no output for platform `{platform}` (it has: {})",
            def.outputs.iter().map(|o| o.platform.to_string()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Unmounts and removes mount points left by solver processes that no longer run (a
/// build killed with SIGKILL while a file step had its overlay mounted). Names are
/// `<pid>-<n>`. `Store::open` does the same, so any later command cleans up.
fn clean_stale_mountpoints(mnt_dir: &std::path::Path) {
    crate::store::sys::clean_stale_mounts(mnt_dir);
}

/// Runs everything the chosen output needs and returns its layer chain.
pub fn solve<B: Backend>(
    def: &Definition,
    backend: &B,
    opts: &SolveOptions,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Solved, SolveError> {
    let picks = picks(def, opts)?;
    solve_with(def, backend, opts, &picks, progress, cancel, None)
}

/// Runs everything the given outputs (indexes into `Definition::outputs`) need, in one
/// solve: `cairn bake` builds several targets' outputs so, and a vertex two of them share
/// runs once. `Solved::outputs` follows `outputs`.
pub fn solve_outputs<B: Backend>(
    def: &Definition,
    backend: &B,
    opts: &SolveOptions,
    outputs: &[usize],
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Solved, SolveError> {
    if outputs.is_empty() || outputs.iter().any(|&o| o >= def.outputs.len()) {
        return Err(SolveError::NoOutput("The Definition has no such output".into()));
    }
    solve_with(def, backend, opts, outputs, progress, cancel, None)
}

/// The output of each of `opts.platforms`.
fn picks(def: &Definition, opts: &SolveOptions) -> Result<Vec<usize>, SolveError> {
    opts.platforms.iter().map(|p| pick_output(def, p)).collect()
}

/// `cairn plan`: predicts which steps of the chosen output would run, and why, into
/// `opts.records`, running nothing (the chain returned is meaningless).
pub fn dry_run<B: Backend>(def: &Definition, backend: &B, opts: &SolveOptions) -> Result<Solved, SolveError> {
    struct Silent;
    impl Progress for Silent {
        fn event(&self, _: progress::Event) {}
    }
    let dry = engine::DryRun::default();
    let picks = picks(def, opts)?;
    solve_with(def, backend, opts, &picks, &Silent, &AtomicBool::new(false), Some(&dry))
}

fn solve_with<B: Backend>(
    def: &Definition,
    backend: &B,
    opts: &SolveOptions,
    picks: &[usize],
    progress: &dyn Progress,
    cancel: &AtomicBool,
    dry_run: Option<&engine::DryRun>,
) -> Result<Solved, SolveError> {
    let graph = graph::Graph::new(def).map_err(|e| SolveError::Invalid(e.to_string()))?;
    let default = opts.platforms.first().ok_or_else(|| SolveError::NoOutput("No platform to build".into()))?;
    let mut roots = Vec::new();
    let mut needed = Vec::new();
    for &output in picks {
        let root_digest = def.outputs[output].root.digest;
        let root_vertex = graph.vertex_of(&root_digest).ok_or_else(|| {
            SolveError::NoOutput(format!("The output root `{root_digest}` is not a vertex of the Definition"))
        })?;
        needed = merge_needed(needed, graph.needed(root_vertex));
        roots.push((output, root_vertex));
    }
    let stat = if opts.no_cache { StatCache::in_memory() } else { StatCache::load(&opts.layout.stat_cache_path()) };
    let steps = AtomicUsize::new(0);
    let ops = ops::OpCx::new(&graph, backend, opts, &stat, progress, &steps);
    let io = |what: &str, p: &PathBuf, e: std::io::Error| SolveError::Io(format!("{what} `{}`: {e}", p.display()));
    for d in [&ops.empty_dir, &ops.mnt_dir] {
        fs::create_dir_all(d).map_err(|e| io("Cannot create", d, e))?;
    }
    clean_stale_mountpoints(&ops.mnt_dir);
    ops::clean_stale_cache_dirs(&opts.layout.cache_mounts_dir());
    let engine = Engine {
        graph: &graph,
        cache: backend,
        ops: &ops,
        progress,
        platform: default,
        no_cache: opts.no_cache,
        permits: scheduler::Semaphore::new(opts.jobs),
        steps: &steps,
        executed: AtomicUsize::new(0),
        cached: AtomicUsize::new(0),
        records: opts.records.as_deref(),
        dry_run,
    };
    let result = scheduler::run(&graph.deps, &needed, &engine, cancel);
    let _ = stat.save();
    let results = match result {
        Ok(r) => r,
        Err(scheduler::ScheduleError::Cancelled) => return Err(SolveError::Cancelled),
        Err(scheduler::ScheduleError::Failed { vertex, error }) => {
            let (message, tail) = match error.error {
                StepError::Cancelled => return Err(SolveError::Cancelled),
                StepError::Failed { message, tail } => (message, tail),
            };
            return Err(SolveError::Step(Box::new(step_report(def, vertex, error.step, message, tail))));
        }
    };
    let mut outputs = Vec::new();
    for (output, root_vertex) in roots {
        let done = results[root_vertex].as_ref().ok_or(SolveError::Cancelled)?;
        let layers = match done.outputs.get(def.outputs[output].root.index as usize) {
            Some(Tree::Layers(c)) => c.to_vec(),
            Some(Tree::Local(_)) => {
                return Err(SolveError::NoOutput(
                    "The output is a build context, not a filesystem built by cairn".into(),
                ))
            }
            None => return Err(SolveError::NoOutput("The output index is out of range".into())),
        };
        outputs.push((output, layers));
    }
    Ok(Solved {
        layers: outputs[0].1.clone(),
        output: outputs[0].0,
        outputs,
        executed: engine.executed.load(Ordering::SeqCst),
        cached: engine.cached.load(Ordering::SeqCst),
    })
}

/// The union of two `needed` masks (an empty one is none).
fn merge_needed(a: Vec<bool>, b: Vec<bool>) -> Vec<bool> {
    if a.is_empty() {
        return b;
    }
    a.into_iter().zip(b).map(|(x, y)| x || y).collect()
}

/// The report of a failed vertex: its step name, number and Dockerfile location.
fn step_report(
    def: &Definition,
    vertex: usize,
    number: Option<usize>,
    message: String,
    tail: Vec<String>,
) -> StepReport {
    let meta = &def.vertices[vertex].meta;
    let (location, line) =
        match meta.locations.first().and_then(|loc| Some((loc, def.sources.get(loc.source as usize)?))) {
            Some((loc, src)) => (
                Some(format!("{}:{}", src.path, loc.start_line)),
                src.text.lines().nth(loc.start_line.saturating_sub(1) as usize).map(str::to_string),
            ),
            None => (None, None),
        };
    let step = if meta.description.is_empty() {
        def.vertices[vertex].vertex.op.kind().to_string()
    } else {
        meta.description.clone()
    };
    StepReport { step, number, location, line, message, tail }
}

/// Build contexts given as URLs (`cairn build https://…`): a git repository or a tarball.
pub use ops::{checkout_context, fetch_context_tarball};

#[cfg(test)]
mod tests;
