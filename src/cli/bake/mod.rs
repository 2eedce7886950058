//! `cairn bake`: builds the targets of a buildx bake file (`docker-bake.hcl`,
//! `docker-bake.json`).
//!
//! Unlike buildx, which solves each target on its own, every requested target is compiled
//! by the Dockerfile frontend into its own graph, the graphs are appended into one (see
//! [`graph::append`]), the optimizer merges identical vertices — a base stage two targets
//! share becomes one vertex — and the runtime runs one solve for all the targets' outputs
//! ([`cairn_runtime::build_bake`]), then commits, tags and exports each.
//!
//! Targets may read different context directories (each becomes a local source of its
//! own: `context`, `context-2`, …) and build several platforms (an image index per
//! target). Limits, each refused with an error rather than half done:
//! `contexts = { x = "target:T" }` works when `T` reads the same Dockerfile
//! (it becomes the compiler's stage context).

mod compose;
mod file;
mod graph;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context};
use cairn_ir::Platform;
use cairn_runtime::build_bake::{self, BakeRequest, TargetOutput};
use cairn_runtime::solve::progress::{self, Mode, Progress};
use cairn_runtime::store;

use super::frontend::{self, parse_build_context, ContextSpec, FrontendArgs, FrontendInput, StoreResolver};
use super::outputs::{parse_output, OutputSpec};
use file::{BakeFile, Target};

#[derive(clap::Args, Debug)]
pub struct BakeArgs {
    /// Bake file (HCL; JSON when it ends in `.json`; a compose file's build sections when
    /// it ends in `.yaml`/`.yml`); repeatable, later files override earlier ones' targets
    /// (default: the compose files, `docker-bake.json`, `docker-bake.hcl` and their
    /// `.override` forms, those that exist)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print the resolved targets as JSON (as `docker buildx bake --print`); build nothing
    #[arg(long)]
    pub print: bool,
    /// Do not use the cache for any target
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Progress output: auto, plain, tty, rawjson or quiet
    #[arg(long, default_value = "auto", value_name = "MODE")]
    pub progress: String,
    /// Push every target's image to the registry of each of its tags (as
    /// `--set *.output=type=registry`)
    #[arg(long)]
    pub push: bool,
    /// How many RUN steps may run at once (default: no limit)
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub registry: super::registry::RegistryArgs,
    /// Targets or groups to build (default: the group `default`)
    #[arg(value_name = "TARGET|GROUP")]
    pub targets: Vec<String>,
}

/// The files buildx reads when none is given, in its order (later ones override).
const DEFAULT_FILES: [&str; 8] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
    "docker-bake.json",
    "docker-bake.hcl",
    "docker-bake.override.json",
    "docker-bake.override.hcl",
];

fn read_files(args: &BakeArgs) -> anyhow::Result<BakeFile> {
    let files: Vec<PathBuf> = if args.files.is_empty() {
        let found: Vec<PathBuf> = DEFAULT_FILES.iter().map(PathBuf::from).filter(|p| p.is_file()).collect();
        if found.is_empty() {
            bail!("No bake file: none of {} is here; give one with `-f FILE`", DEFAULT_FILES.join(", "));
        }
        found
    } else {
        args.files.clone()
    };
    let env = |k: &str| std::env::var(k).ok();
    let mut merged: Option<BakeFile> = None;
    for f in &files {
        let next = file::read(f, &env)?;
        match &mut merged {
            None => merged = Some(next),
            Some(m) => m.extend(next),
        }
    }
    Ok(merged.expect("at least one file"))
}

pub fn run(args: BakeArgs) -> anyhow::Result<()> {
    let mode: Mode = args.progress.parse().map_err(anyhow::Error::msg)?;
    let bake = read_files(&args)?;
    let names = bake.select(&args.targets)?;
    let mut targets = BTreeMap::new();
    for n in &names {
        targets.insert(n.clone(), bake.resolve(n)?);
    }
    if args.print {
        return print(&names, &targets);
    }
    let progress = progress::renderer(mode);
    match build(&args, &bake, &names, &targets, progress.as_ref()) {
        Err(e) if mode == Mode::RawJson => {
            progress.event(progress::Event::Failed { message: format!("{e:#}"), time: progress::now() });
            Err(anyhow::Error::new(super::Reported::from(e)))
        }
        r => r,
    }
}

/// `--print`: the groups and the resolved targets, with buildx's defaults filled in.
fn print(names: &[String], targets: &BTreeMap<String, Target>) -> anyhow::Result<()> {
    let mut out = serde_json::json!({ "group": { "default": { "targets": names } }, "target": {} });
    for (n, t) in targets {
        let mut t = t.clone();
        t.context.get_or_insert_with(|| ".".into());
        t.dockerfile.get_or_insert_with(|| "Dockerfile".into());
        out["target"][n] = serde_json::to_value(&t)?;
    }
    let text = format!("{}\n", serde_json::to_string_pretty(&out)?);
    use std::io::Write;
    let mut so = std::io::stdout();
    so.write_all(text.as_bytes()).and_then(|()| so.flush()).context("Cannot write to stdout")
}

/// The local source name of the `i`-th distinct context directory of a bake.
fn context_source(i: usize) -> String {
    match i {
        0 => "context".to_string(),
        _ => format!("context-{}", i + 1),
    }
}

/// A target's Dockerfile: `dockerfile` relative to its context, as buildx reads it.
fn dockerfile_of(context: &Path, t: &Target) -> PathBuf {
    let f = Path::new(t.dockerfile.as_deref().unwrap_or("Dockerfile"));
    if f.is_absolute() {
        f.to_path_buf()
    } else {
        context.join(f)
    }
}

/// The platforms a target builds for: its `platforms` (each may be a comma list), or
/// this machine's.
fn platforms_of(name: &str, t: &Target) -> anyhow::Result<Vec<Platform>> {
    let mut out: Vec<Platform> = Vec::new();
    for p in t.platforms.iter().flatten().flat_map(|p| p.split(',')).map(str::trim).filter(|p| !p.is_empty()) {
        let parsed = Platform::parse(p).ok_or_else(|| anyhow::anyhow!("target `{name}`: invalid platform `{p}`"))?;
        if !out.iter().any(|o| o.same_as(&parsed)) {
            out.push(parsed);
        }
    }
    if out.is_empty() {
        out.push(Platform::host());
    }
    Ok(out)
}

/// A target's named contexts; `target:T` becomes the stage `T` builds when `T` reads the
/// same Dockerfile.
fn contexts_of(
    bake: &BakeFile,
    name: &str,
    t: &Target,
    dockerfile: &Path,
    context: &Path,
) -> anyhow::Result<Vec<(String, ContextSpec)>> {
    let mut out = Vec::new();
    for (k, v) in t.contexts.iter().flatten() {
        let (k, spec) = parse_build_context(&format!("{k}={v}")).with_context(|| format!("target `{name}`"))?;
        let spec = match spec {
            ContextSpec::Stage(other) => {
                let o = bake.resolve(&other).with_context(|| format!("target `{name}`: context `{k}`"))?;
                let octx = PathBuf::from(o.context.as_deref().unwrap_or("."));
                if dockerfile_of(&octx, &o) != dockerfile || octx != context {
                    bail!("target `{name}`: context `{k}=target:{other}`: `{other}` reads another Dockerfile or context; cairn bake joins targets of the same Dockerfile only");
                }
                let Some(stage) = o.target else {
                    bail!("target `{name}`: context `{k}=target:{other}`: give `{other}` a `target` stage");
                };
                ContextSpec::Stage(stage)
            }
            ContextSpec::Url(u) => {
                bail!("target `{name}`: context `{k}={u}`: URL contexts are read by `cairn build` only")
            }
            s => s,
        };
        out.push((k, spec));
    }
    Ok(out)
}

fn build(
    args: &BakeArgs,
    bake: &BakeFile,
    names: &[String],
    targets: &BTreeMap<String, Target>,
    progress: &dyn Progress,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let root = store::default_root();
    let st = Arc::new(
        store::Store::open(&root).map_err(|e| anyhow::anyhow!("Cannot open the store at `{}`: {e}", root.display()))?,
    );
    let registry = args.registry.registry()?;
    let resolver = StoreResolver::new(st.clone(), Some(registry.clone()), false);
    // Each distinct context directory is a local source of its own: `context` for the
    // first, `context-2`, … for the others.
    let mut context_dirs: Vec<PathBuf> = Vec::new();
    let mut all_platforms: Vec<Platform> = Vec::new();
    let mut merged = cairn_compiler::graph::Graph::default();
    let mut outs = Vec::new();
    let mut dirs: HashMap<String, PathBuf> = HashMap::new();
    let mut no_cache = args.no_cache;
    let mut cache_from = Vec::new();
    for name in names {
        let t = &targets[name];
        let context = PathBuf::from(t.context.as_deref().unwrap_or("."));
        if !context.is_dir() {
            bail!("target `{name}`: context `{}` is not a directory", context.display());
        }
        let platforms = platforms_of(name, t)?;
        let platform = platforms[0].clone();
        for p in &platforms {
            if !all_platforms.iter().any(|a| a.same_as(p)) {
                all_platforms.push(p.clone());
            }
        }
        let canon = std::fs::canonicalize(&context)?;
        let i = context_dirs.iter().position(|c| *c == canon).unwrap_or_else(|| {
            context_dirs.push(canon);
            context_dirs.len() - 1
        });
        let local = context_source(i);
        let dockerfile = dockerfile_of(&context, t);
        let named = contexts_of(bake, name, t, &dockerfile, &context)?;
        for (k, spec) in &named {
            if let ContextSpec::Dir(d) = spec {
                if dirs.insert(k.clone(), d.clone()).is_some_and(|old| old != *d) {
                    bail!("target `{name}`: context `{k}` names another directory than in another target");
                }
            }
        }
        let build_args: Vec<(String, String)> = t.args.iter().flatten().map(|(k, v)| (k.clone(), v.text())).collect();
        let fe = FrontendArgs {
            file: Some(dockerfile.clone()),
            target: t.target.clone(),
            build_args: Vec::new(),
            platform: None,
            build_contexts: Vec::new(),
            frontend: None,
            frontend_opts: Vec::new(),
            frontend_timeout: None,
            context: context.clone(),
        };
        let input = FrontendInput {
            dockerfile: &dockerfile,
            text: None,
            network: cairn_ir::NetworkMode::Default,
            context: &context,
            target: t.target.as_deref(),
            build_args: &build_args,
            platforms: platforms.clone(),
            contexts: &named,
            no_cache_filter: &[],
            args: &fe,
            frontend_network: false,
        };
        let compiled = frontend::compile(&input, &resolver).with_context(|| format!("target `{name}`"))?;
        for w in &compiled.warnings {
            progress.event(progress::Event::Warning { message: format!("{name}: {w}"), time: progress::now() });
        }
        let outputs = graph::append(&mut merged, &compiled.graph, &platforms, &local)
            .with_context(|| format!("target `{name}`"))?;
        no_cache |= t.no_cache.unwrap_or(false);
        let mut tags = t.tags.clone().unwrap_or_default();
        let mut exports = Vec::new();
        let mut push = args.push;
        for o in t.output.iter().flatten() {
            let spec = parse_output(o).with_context(|| format!("target `{name}`: output `{o}`"))?;
            match &spec {
                OutputSpec::Image { names, push: p, .. } => {
                    tags.extend(names.iter().cloned());
                    push |= *p;
                }
                _ => exports.extend(spec.exporter(&[], &platform)),
            }
        }
        for tag in &tags {
            cairn_ir::reference::normalize(tag).map_err(|e| anyhow::anyhow!("target `{name}`: tag `{tag}`: {e}"))?;
        }
        if push && tags.is_empty() {
            bail!("target `{name}`: pushing needs a name: give the target `tags`");
        }
        let push = if push { tags.clone() } else { Vec::new() };
        for c in t.cache_from.iter().flatten() {
            let loc =
                super::cache::parse_cache_from(c).with_context(|| format!("target `{name}`: cache-from `{c}`"))?;
            if !cache_from.contains(&loc) {
                cache_from.push(loc);
            }
        }
        let cache_to = t
            .cache_to
            .iter()
            .flatten()
            .map(|c| super::cache::parse_cache_to(c).with_context(|| format!("target `{name}`: cache-to `{c}`")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        outs.push(TargetOutput { outputs, tags, exports, push, cache_to });
    }
    let def = cairn_compiler::passes::optimize(&merged).to_definition();
    let mut contexts = dirs;
    for (i, dir) in context_dirs.into_iter().enumerate() {
        let local = context_source(i);
        if contexts.insert(local.clone(), dir).is_some() {
            bail!("a named context is called `{local}`, the name cairn bake gives a target's context directory");
        }
    }
    let cancel = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, cancel.clone()).context("Cannot install the Ctrl-C handler")?;
    }
    let done = build_bake::run(BakeRequest {
        store: &st,
        definition: &def,
        platforms: all_platforms,
        contexts,
        registry: Some(registry),
        no_cache,
        jobs: args.jobs,
        source_date_epoch: source_date_epoch()?,
        targets: &outs,
        cache_from,
        notice: &|message: &str| {
            progress.event(progress::Event::Notice { message: message.to_string(), time: progress::now() })
        },
        progress,
        cancel: &cancel,
    })
    .map_err(|e| match e {
        cairn_runtime::build::BuildError::Solve(s) => anyhow::Error::from(s),
        other => anyhow::Error::from(other),
    })?;
    for (name, image) in names.iter().zip(&done.images) {
        if let Some(rec) = image {
            let message = format!("{name}: image {}", rec);
            progress.event(progress::Event::Notice { message, time: progress::now() });
        }
    }
    progress.event(progress::Event::Summary {
        seconds: started.elapsed().as_secs_f64(),
        executed: done.executed,
        cached: done.cached,
        digest: None,
        time: progress::now(),
    });
    Ok(())
}

/// SOURCE_DATE_EPOCH from the environment.
fn source_date_epoch() -> anyhow::Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH").ok().filter(|v| !v.is_empty()) {
        Some(v) => Ok(Some(v.parse().with_context(|| format!("Invalid SOURCE_DATE_EPOCH `{v}`"))?)),
        None => Ok(None),
    }
}
