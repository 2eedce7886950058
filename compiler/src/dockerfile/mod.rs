//! The Dockerfile frontend: AST → [`Graph`], with BuildKit's semantics.
//!
//! Stages are lowered on demand, starting from the target stage: a stage is compiled the
//! first time something reaches it (`FROM <stage>`, `COPY --from`, `RUN --mount from=`),
//! so unreachable stages are never compiled and an error inside one does not fail the
//! build, exactly as BuildKit only converts the stages `--target` reaches. A stage that
//! reaches itself is a cycle and an error.
//!
//! Each target platform is lowered separately into the same graph (platform-independent
//! parts such as `FROM --platform=$BUILDPLATFORM` stages come out identical and are merged
//! by the dedup pass). The raw lowering is deliberately naive — one context source per
//! COPY, one image source per use — and leaves sharing to the optimizer.
//!
//! Variable scoping: global ARGs (before the first FROM) are visible in FROM lines only;
//! inside a stage a name resolves to its ENV value first, then to an ARG declared in the
//! stage (which may take its value from `--build-arg`, its default or the global ARG of the
//! same name). ARG values reach RUN's environment but never the image config. All
//! expansions within one instruction see the environment from before it.

mod copy;
mod format;
mod run;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

use cairn_grammar::ast::{Args, Dockerfile, Instruction, Keyword, Span};
use cairn_grammar::expand;
use cairn_ir::{
    reference, FileAction, FileActionKind, FileOp, FileRef, Healthcheck, History, IdOrName, ImageConfig, Op, Owner,
    Platform, ProgressGroup, SourceFile, SourceLocation, SourceOp, VertexMeta,
};

use crate::error::CompileError;
use crate::graph::{Graph, GraphOutput, Ref};
use crate::resolver::ImageResolver;

/// The PATH of an image without one (BuildKit's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";
/// Build args every RUN sees without an ARG instruction (BuildKit's predefined ARGs).
const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// A `--build-context NAME=VALUE`, as the compiler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A directory: a local source called `NAME`.
    Local,
    /// An image: a normalized reference or `oci-layout://PATH[:TAG|@DIGEST]`.
    Image(String),
}

/// What to compile and how.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// The Dockerfile's path as shown in errors and the source map.
    pub file: String,
    /// The stage to build (default: the last one).
    pub target: Option<String>,
    pub build_args: BTreeMap<String, String>,
    /// One output per platform; empty means the build platform.
    pub platforms: Vec<Platform>,
    /// The platform that runs the build (`BUILDPLATFORM`).
    pub build_platform: Platform,
    /// `.dockerignore` patterns: the exclude list of the context source.
    pub dockerignore: Vec<String>,
    pub contexts: BTreeMap<String, NamedContext>,
}

impl CompileOptions {
    pub fn new(file: &str) -> CompileOptions {
        CompileOptions {
            file: file.to_string(),
            target: None,
            build_args: BTreeMap::new(),
            platforms: Vec::new(),
            build_platform: Platform::host(),
            dockerignore: Vec::new(),
            contexts: BTreeMap::new(),
        }
    }
}

/// A compiled build: the raw graph (run [`crate::passes::optimize`] on it) and warnings.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub graph: Graph,
    pub warnings: Vec<String>,
}

/// Lowers a parsed Dockerfile. `text` is its source (for the source map and errors).
pub fn compile(
    df: &Dockerfile,
    text: &str,
    opts: &CompileOptions,
    resolver: &dyn ImageResolver,
) -> Result<Compiled, CompileError> {
    let mut lw = Lowerer::new(df, text, opts, resolver)?;
    let platforms = if opts.platforms.is_empty() { vec![opts.build_platform.clone()] } else { opts.platforms.clone() };
    let target = lw.target_index()?;
    for p in platforms {
        let mut pc = lw.platform_ctx(p.clone())?;
        let st = lw.lower_stage(&mut pc, target)?;
        let mut config = st.config.clone();
        config.architecture = st.platform.architecture.clone();
        config.os = st.platform.os.clone();
        config.variant = (!st.platform.variant.is_empty()).then(|| st.platform.variant.clone());
        lw.graph.outputs.push(GraphOutput { platform: p, root: st.root, config });
    }
    let unused: Vec<&String> =
        opts.build_args.keys().filter(|k| !lw.used_args.contains(*k) && !PROXY_ARGS.contains(&k.as_str())).collect();
    if !unused.is_empty() {
        let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        lw.warnings.push(format!("One or more build-args [{}] were not consumed", names.join(" ")));
    }
    Ok(Compiled { graph: lw.graph, warnings: lw.warnings })
}

/// A stage as declared: its FROM line and body.
struct StageDecl<'a> {
    from: &'a Instruction,
    base: String,
    name: Option<String>,
    body: Vec<&'a Instruction>,
}

/// Per-platform lowering state.
struct PlatformCtx {
    target: Platform,
    /// Global ARG values (and the automatic platform args), in declaration order.
    meta: Vec<(String, String)>,
    done: Vec<Option<Rc<State>>>,
    active: Vec<bool>,
}

/// The state of a stage between instructions.
#[derive(Debug, Clone)]
struct State {
    root: Ref,
    config: ImageConfig,
    /// CMD set in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
    /// ARGs declared in this stage with a value, in order.
    args: Vec<(String, String)>,
    platform: Platform,
    group: String,
    step: u32,
    total: u32,
}

impl State {
    fn env(&self) -> &[String] {
        self.config.config.env.as_deref().unwrap_or(&[])
    }

    fn env_get(&self, key: &str) -> Option<String> {
        self.env().iter().rev().find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v.to_string()))
    }

    /// What expansion reads of this state (ENV and ARG values) and nothing else: ENV, ARG
    /// and LABEL expand against the state from before the instruction, and cloning the
    /// whole state (history included) for each of them made lowering quadratic.
    fn expansion_view(&self) -> State {
        State {
            root: self.root,
            config: ImageConfig {
                config: cairn_ir::ContainerConfig { env: self.config.config.env.clone(), ..Default::default() },
                ..Default::default()
            },
            cmd_set: false,
            args: self.args.clone(),
            platform: self.platform.clone(),
            group: String::new(),
            step: 0,
            total: 0,
        }
    }

    /// Variable lookup for expansion: ENV wins over ARG.
    fn lookup(&self, name: &str) -> Option<String> {
        self.env_get(name).or_else(|| self.args.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    fn set_env(&mut self, key: &str, value: &str) {
        let env = self.config.config.env.get_or_insert_with(Vec::new);
        let entry = format!("{key}={value}");
        match env.iter_mut().find(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k) == key) {
            Some(slot) => *slot = entry,
            None => env.push(entry),
        }
    }

    fn workdir(&self) -> String {
        match self.config.config.working_dir.as_deref() {
            Some(w) if !w.is_empty() => w.to_string(),
            _ => "/".to_string(),
        }
    }

    fn user(&self) -> String {
        self.config.config.user.clone().unwrap_or_default()
    }

    fn shell(&self) -> Vec<String> {
        match &self.config.config.shell {
            Some(s) if !s.is_empty() => s.clone(),
            _ => vec!["/bin/sh".to_string(), "-c".to_string()],
        }
    }

    fn history(&mut self, created_by: String, empty_layer: bool) {
        self.config.history.push(History {
            created: None,
            created_by: Some(created_by),
            author: None,
            comment: Some(HISTORY_COMMENT.to_string()),
            empty_layer,
        });
    }
}

struct Lowerer<'a> {
    df: &'a Dockerfile,
    text: &'a str,
    opts: &'a CompileOptions,
    resolver: &'a dyn ImageResolver,
    graph: Graph,
    warnings: Vec<String>,
    warned: HashSet<String>,
    configs: HashMap<(String, Platform), Option<ImageConfig>>,
    globals: Vec<&'a Instruction>,
    stages: Vec<StageDecl<'a>>,
    used_args: HashSet<String>,
}

/// The location of an instruction in source 0.
fn location(ins: &Instruction) -> SourceLocation {
    SourceLocation { source: 0, start_line: ins.start_line, end_line: ins.end_line }
}

impl<'a> Lowerer<'a> {
    fn new(
        df: &'a Dockerfile,
        text: &'a str,
        opts: &'a CompileOptions,
        resolver: &'a dyn ImageResolver,
    ) -> Result<Lowerer<'a>, CompileError> {
        let mut lw = Lowerer {
            df,
            text,
            opts,
            resolver,
            graph: Graph::default(),
            warnings: Vec::new(),
            warned: HashSet::new(),
            configs: HashMap::new(),
            globals: Vec::new(),
            stages: Vec::new(),
            used_args: HashSet::new(),
        };
        lw.graph.sources.push(SourceFile { path: opts.file.clone(), text: text.to_string() });
        lw.split_stages()?;
        Ok(lw)
    }

    fn err(&self, span: Span, message: impl Into<String>) -> CompileError {
        CompileError::at(&self.opts.file, self.text, span, message)
    }

    /// Splits the instructions into global ARGs and stages; checks what BuildKit checks
    /// for the whole file (even unreachable stages): names, ONBUILD chaining.
    fn split_stages(&mut self) -> Result<(), CompileError> {
        let mut names: HashMap<String, Span> = HashMap::new();
        for ins in &self.df.instructions {
            if let Args::Onbuild(inner) = &ins.args {
                match inner.keyword {
                    Keyword::Onbuild => {
                        return Err(self.err(inner.span, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"))
                    }
                    Keyword::From | Keyword::Maintainer => {
                        return Err(self.err(
                            inner.span,
                            format!("`{}` isn't allowed as an ONBUILD trigger", inner.keyword.as_str()),
                        ))
                    }
                    _ => {}
                }
            }
            if ins.keyword == Keyword::From {
                let Args::Words(w) = &ins.args else {
                    return Err(self.err(ins.span, "FROM expects an image or stage name"));
                };
                let name = if w.len() == 3 {
                    let n = w[2].node.to_ascii_lowercase();
                    let valid = n.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                        && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
                    if !valid {
                        return Err(self.err(
                            w[2].span,
                            format!("invalid stage name `{}`: it must start with a letter and contain only letters, digits, `-`, `_` and `.`", w[2].node),
                        ));
                    }
                    if let Some(prev) = names.get(&n) {
                        return Err(self.err(
                            w[2].span,
                            format!("duplicate stage name `{n}` (first defined on line {})", prev.line),
                        ));
                    }
                    names.insert(n.clone(), w[2].span);
                    Some(n)
                } else {
                    None
                };
                self.stages.push(StageDecl { from: ins, base: w[0].node.clone(), name, body: Vec::new() });
                continue;
            }
            match self.stages.last_mut() {
                Some(s) => s.body.push(ins),
                None if ins.keyword == Keyword::Arg => self.globals.push(ins),
                None => {
                    return Err(self.err(
                        ins.span,
                        format!("`{}` before the first FROM: only ARG may come before FROM", ins.keyword.as_str()),
                    ))
                }
            }
        }
        if self.stages.is_empty() {
            let span = self.df.instructions.last().map(|i| i.span).unwrap_or_default();
            return Err(self.err(span, "the Dockerfile has no FROM instruction, so there is nothing to build"));
        }
        Ok(())
    }

    fn target_index(&self) -> Result<usize, CompileError> {
        match &self.opts.target {
            None => Ok(self.stages.len() - 1),
            Some(t) => {
                let t = t.to_ascii_lowercase();
                self.stages.iter().position(|s| s.name.as_deref() == Some(&t)).ok_or_else(|| {
                    let names: Vec<&str> = self.stages.iter().filter_map(|s| s.name.as_deref()).collect();
                    CompileError::general(
                        &self.opts.file,
                        format!(
                            "`--target {t}`: no stage named `{t}` (stages: {})",
                            if names.is_empty() { "none are named".to_string() } else { names.join(", ") }
                        ),
                    )
                })
            }
        }
    }

    /// Automatic platform args, then the global ARGs (build args override defaults).
    fn platform_ctx(&mut self, target: Platform) -> Result<PlatformCtx, CompileError> {
        let b = &self.opts.build_platform;
        let mut meta: Vec<(String, String)> = vec![
            ("BUILDPLATFORM".into(), b.to_string()),
            ("BUILDOS".into(), b.os.clone()),
            ("BUILDARCH".into(), b.architecture.clone()),
            ("BUILDVARIANT".into(), b.variant.clone()),
            ("TARGETPLATFORM".into(), target.to_string()),
            ("TARGETOS".into(), target.os.clone()),
            ("TARGETARCH".into(), target.architecture.clone()),
            ("TARGETVARIANT".into(), target.variant.clone()),
        ];
        let globals = self.globals.clone();
        for ins in globals {
            let Args::Pairs(pairs) = &ins.args else { continue };
            let before = meta.clone();
            let lookup = |n: &str| before.iter().rev().find(|(k, _)| k == n).map(|(_, v)| v.clone());
            for p in pairs {
                let value = match self.opts.build_args.get(&p.key) {
                    Some(v) => {
                        self.used_args.insert(p.key.clone());
                        Some(v.clone())
                    }
                    None => match &p.value {
                        Some(d) => Some(self.expand_with(d, p.span, &lookup)?),
                        None => None,
                    },
                };
                if let Some(v) = value {
                    meta.retain(|(k, _)| k != &p.key);
                    meta.push((p.key.clone(), v));
                }
            }
        }
        Ok(PlatformCtx { target, meta, done: vec![None; self.stages.len()], active: vec![false; self.stages.len()] })
    }

    fn expand_with(
        &self,
        word: &str,
        span: Span,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<String, CompileError> {
        expand::expand_word(word, self.df.escape, lookup).map_err(|e| self.err(span, e.message))
    }

    fn expand(&self, st: &State, word: &str, span: Span) -> Result<String, CompileError> {
        self.expand_with(word, span, &|n| st.lookup(n))
    }

    fn meta(&self, ins: &Instruction, st: &State, description: String) -> VertexMeta {
        VertexMeta {
            description,
            group: Some(ProgressGroup { name: st.group.clone(), step: st.step, total: st.total }),
            locations: vec![location(ins)],
            ignore_cache: false,
        }
    }

    /// The instruction as written (continuations joined, heredoc bodies left out), for
    /// progress descriptions and history.
    fn written(&self, ins: &Instruction) -> String {
        let src = &self.text[ins.span.start.min(self.text.len())..ins.span.end.min(self.text.len())];
        let esc = self.df.escape;
        let mut out = String::new();
        for line in src.lines() {
            let t = line.trim_end();
            if let Some(stripped) = t.strip_suffix(esc) {
                out.push_str(stripped);
                out.push(' ');
            } else {
                out.push_str(t);
                break;
            }
        }
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn warn_once(&mut self, key: &str, message: String) {
        if self.warned.insert(key.to_string()) {
            self.warnings.push(message);
        }
    }

    /// The base config of an image (empty with a warning when unknown).
    fn image_config(&mut self, reference: &str, platform: &Platform, span: Span) -> Result<ImageConfig, CompileError> {
        let key = (reference.to_string(), platform.clone());
        if let Some(c) = self.configs.get(&key) {
            return Ok(c.clone().unwrap_or_default());
        }
        let got = self
            .resolver
            .resolve(reference, platform)
            .map_err(|e| self.err(span, format!("cannot read the config of `{reference}`: {e}")))?;
        if got.is_none() {
            self.warn_once(
                reference,
                format!("base image `{reference}` is not in the local store; its config (ENV, WORKDIR, USER…) is taken as empty"),
            );
        }
        self.configs.insert(key, got.clone());
        Ok(got.unwrap_or_default())
    }

    fn image_node(&mut self, reference: &str, platform: &Platform, meta: VertexMeta) -> Ref {
        self.graph.add(
            Op::Source(SourceOp::Image { reference: reference.to_string(), platform: platform.clone() }),
            vec![],
            meta,
        )
    }

    /// The main build context, as a local source excluding `.dockerignore` patterns.
    fn context_node(&mut self) -> Ref {
        self.local_node("context")
    }

    fn local_node(&mut self, name: &str) -> Ref {
        let exclude = if name == "context" { self.opts.dockerignore.clone() } else { Vec::new() };
        let description =
            if name == "context" { "load build context".to_string() } else { format!("load build context {name}") };
        self.graph.add(
            Op::Source(SourceOp::Local { name: name.to_string(), include: Vec::new(), exclude }),
            vec![],
            VertexMeta { description, ..VertexMeta::default() },
        )
    }

    /// Compiles stage `i` for this platform (once) and returns its final state.
    fn lower_stage(&mut self, pc: &mut PlatformCtx, i: usize) -> Result<Rc<State>, CompileError> {
        if let Some(done) = &pc.done[i] {
            return Ok(done.clone());
        }
        let from = self.stages[i].from;
        if pc.active[i] {
            return Err(self.err(from.span, "circular dependency between stages"));
        }
        pc.active[i] = true;
        let st = self.lower_stage_inner(pc, i)?;
        pc.active[i] = false;
        let st = Rc::new(st);
        pc.done[i] = Some(st.clone());
        Ok(st)
    }

    fn lower_stage_inner(&mut self, pc: &mut PlatformCtx, i: usize) -> Result<State, CompileError> {
        let decl = &self.stages[i];
        let from = decl.from;
        let body = decl.body.clone();
        let group = decl.name.clone().unwrap_or_else(|| format!("stage-{i}"));
        let meta_lookup = |n: &str| pc.meta.iter().rev().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let Args::Words(words) = &from.args else { unreachable!("checked in split_stages") };
        let base = self.expand_with(&decl.base, words[0].span, &meta_lookup)?;
        if base.is_empty() {
            return Err(self.err(words[0].span, "FROM names an empty image (a variable expanded to nothing?)"));
        }
        let platform_flag = from.flags.iter().find(|f| f.name == "platform");
        let platform = match platform_flag {
            Some(f) => {
                let v = self.expand_with(f.value.as_deref().unwrap_or(""), f.span, &meta_lookup)?;
                Some(Platform::parse(&v).ok_or_else(|| {
                    self.err(
                        f.span,
                        format!("invalid platform `{v}`: expected `os/arch[/variant]`, e.g. `linux/amd64`"),
                    )
                })?)
            }
            None => None,
        };
        let total = body.len() as u32 + 1;
        let from_meta = |desc: String| VertexMeta {
            description: desc,
            group: Some(ProgressGroup { name: group.clone(), step: 1, total }),
            locations: vec![location(from)],
            ignore_cache: false,
        };
        let lower = base.to_ascii_lowercase();
        // Only earlier stages can be a base (as in BuildKit); a later stage of the same
        // name as an image does not shadow the image.
        let stage_ref = self.stages[..i].iter().position(|s| s.name.as_deref() == Some(lower.as_str()));
        let mut st = if let Some(j) = stage_ref {
            let parent = self.lower_stage(pc, j)?;
            let mut s = (*parent).clone();
            s.cmd_set = false;
            s.args.clear();
            if let Some(p) = platform {
                s.platform = p;
            }
            s
        } else {
            let platform = platform.unwrap_or_else(|| pc.target.clone());
            let (root, config) = if lower == "scratch" {
                let root = self.graph.add(Op::Source(SourceOp::Scratch), vec![], from_meta("FROM scratch".into()));
                (root, ImageConfig::default())
            } else if let Some(ctx) = self.opts.contexts.get(&base) {
                match ctx.clone() {
                    NamedContext::Local => (self.local_node(&base), ImageConfig::default()),
                    NamedContext::Image(r) => {
                        let config = self.image_config(&r, &platform, from.span)?;
                        (self.image_node(&r, &platform, from_meta(format!("FROM {r}"))), config)
                    }
                }
            } else {
                let r = reference::normalize(&base)
                    .map_err(|e| self.err(words[0].span, format!("invalid base image `{base}`: {e}")))?;
                let config = self.image_config(&r, &platform, from.span)?;
                (self.image_node(&r, &platform, from_meta(format!("FROM {}", reference::familiar(&r)))), config)
            };
            let mut config = config;
            let has_path = config.config.env.iter().flatten().any(|kv| kv.starts_with("PATH="));
            if !has_path {
                config.config.env.get_or_insert_with(Vec::new).insert(0, format!("PATH={DEFAULT_PATH}"));
            }
            if config.config.working_dir.as_deref().unwrap_or("").is_empty() && lower == "scratch" {
                config.config.working_dir = Some("/".into());
            }
            if config.rootfs.kind.is_empty() {
                config.rootfs.kind = "layers".into();
            }
            State { root, config, cmd_set: false, args: Vec::new(), platform, group: String::new(), step: 1, total }
        };
        st.group = group;
        st.total = total;
        st.step = 1;
        // ONBUILD triggers of the base run first, then are cleared from the image.
        let triggers = st.config.config.on_build.take().unwrap_or_default();
        for t in &triggers {
            let parsed = cairn_grammar::parse(&format!("{} (ONBUILD trigger)", self.opts.file), t).map_err(|e| {
                self.err(from.span, format!("invalid ONBUILD trigger `{t}` of the base image: {}", e.message))
            })?;
            for ins in &parsed.instructions {
                if matches!(ins.keyword, Keyword::Onbuild | Keyword::From | Keyword::Maintainer) {
                    return Err(
                        self.err(from.span, format!("`{}` isn't allowed as an ONBUILD trigger", ins.keyword.as_str()))
                    );
                }
                // Triggers point at the FROM line: that is where the user sees them come in.
                let mut ins = ins.clone();
                ins.start_line = from.start_line;
                ins.end_line = from.end_line;
                ins.span = from.span;
                self.dispatch_trigger(pc, &mut st, &ins, t)?;
            }
        }
        for (k, ins) in body.iter().enumerate() {
            st.step = k as u32 + 2;
            self.dispatch(pc, &mut st, ins, None)?;
        }
        Ok(st)
    }

    /// A trigger's text stands in for the source line in descriptions.
    fn dispatch_trigger(
        &mut self,
        pc: &mut PlatformCtx,
        st: &mut State,
        ins: &Instruction,
        text: &str,
    ) -> Result<(), CompileError> {
        self.dispatch(pc, st, ins, Some(text.to_string()))
    }

    /// The tree a `--from` / `from=` names: a stage (by name or index), a named context
    /// or an image.
    fn resolve_from(&mut self, pc: &mut PlatformCtx, st: &State, name: &str, span: Span) -> Result<Ref, CompileError> {
        let lower = name.to_ascii_lowercase();
        if let Some(j) = self.stages.iter().position(|s| s.name.as_deref() == Some(lower.as_str())) {
            return Ok(self.lower_stage(pc, j)?.root);
        }
        if let Some(ctx) = self.opts.contexts.get(name).cloned() {
            return Ok(match ctx {
                NamedContext::Local => self.local_node(name),
                NamedContext::Image(r) => self.image_node(
                    &r,
                    &st.platform,
                    VertexMeta { description: format!("load {r}"), ..Default::default() },
                ),
            });
        }
        if let Ok(j) = name.parse::<usize>() {
            if j >= self.stages.len() {
                return Err(
                    self.err(span, format!("there is no stage with index {j} (the file has {})", self.stages.len()))
                );
            }
            return Ok(self.lower_stage(pc, j)?.root);
        }
        let r = reference::normalize(name).map_err(|e| {
            self.err(span, format!("`{name}` is neither a stage, a build context nor a valid image: {e}"))
        })?;
        let d = format!("load {}", reference::familiar(&r));
        Ok(self.image_node(&r, &st.platform, VertexMeta { description: d, ..Default::default() }))
    }

    fn dispatch(
        &mut self,
        pc: &mut PlatformCtx,
        st: &mut State,
        ins: &Instruction,
        trigger: Option<String>,
    ) -> Result<(), CompileError> {
        let written = trigger.clone().unwrap_or_else(|| self.written(ins));
        match ins.keyword {
            Keyword::Run => run::dispatch_run(self, pc, st, ins, &written),
            Keyword::Copy | Keyword::Add => copy::dispatch_copy(self, pc, st, ins, &written),
            Keyword::Env => {
                let Args::Pairs(pairs) = &ins.args else {
                    return Err(self.err(ins.span, "ENV expects `key=value` pairs"));
                };
                let before = st.expansion_view();
                let mut shown = Vec::new();
                for p in pairs {
                    let key = self.expand(&before, &p.key, p.span)?;
                    let value = self.expand(&before, p.value.as_deref().unwrap_or(""), p.span)?;
                    st.set_env(&key, &value);
                    shown.push(format!("{key}={value}"));
                }
                st.history(format!("ENV {}", shown.join(" ")), true);
                Ok(())
            }
            Keyword::Arg => {
                let Args::Pairs(pairs) = &ins.args else {
                    return Err(self.err(ins.span, "ARG expects `name[=default]`"));
                };
                let before = st.expansion_view();
                let mut shown = Vec::new();
                for p in pairs {
                    let value = match self.opts.build_args.get(&p.key) {
                        Some(v) => {
                            self.used_args.insert(p.key.clone());
                            Some(v.clone())
                        }
                        None => match &p.value {
                            Some(d) => Some(self.expand(&before, d, p.span)?),
                            None => pc.meta.iter().rev().find(|(k, _)| k == &p.key).map(|(_, v)| v.clone()),
                        },
                    };
                    shown.push(match &p.value {
                        Some(v) => format!("{}={}", p.key, v),
                        None => p.key.clone(),
                    });
                    st.args.retain(|(k, _)| k != &p.key);
                    if let Some(v) = value {
                        st.args.push((p.key.clone(), v));
                    }
                }
                st.history(format!("ARG {}", shown.join(" ")), true);
                Ok(())
            }
            Keyword::Label => {
                let Args::Pairs(pairs) = &ins.args else {
                    return Err(self.err(ins.span, "LABEL expects `key=value` pairs"));
                };
                let before = st.expansion_view();
                let mut shown = Vec::new();
                for p in pairs {
                    let key = self.expand(&before, &p.key, p.span)?;
                    let value = self.expand(&before, p.value.as_deref().unwrap_or(""), p.span)?;
                    if key.is_empty() {
                        return Err(self.err(p.span, "LABEL names an empty key"));
                    }
                    shown.push(format!("{key}={value}"));
                    st.config.config.labels.get_or_insert_with(BTreeMap::new).insert(key, value);
                }
                st.history(format!("LABEL {}", shown.join(" ")), true);
                Ok(())
            }
            Keyword::Maintainer => {
                let w = self.words(st, ins)?;
                let m = w.join(" ");
                st.config.author = Some(m.clone());
                st.history(format!("MAINTAINER {m}"), true);
                Ok(())
            }
            Keyword::Expose => {
                let mut ports = Vec::new();
                for w in self.words(st, ins)? {
                    for p in w.split_whitespace() {
                        ports.extend(parse_ports(p).map_err(|e| self.err(ins.span, e))?);
                    }
                }
                let set = st.config.config.exposed_ports.get_or_insert_with(BTreeMap::new);
                for p in &ports {
                    set.insert(p.clone(), Default::default());
                }
                st.history(format!("EXPOSE {}", format::go_port_map(&ports)), true);
                Ok(())
            }
            Keyword::Volume => {
                let vols = self.words(st, ins)?;
                if vols.is_empty() || vols.iter().any(|v| v.trim().is_empty()) {
                    return Err(self.err(ins.span, "VOLUME specified can not be an empty string"));
                }
                let set = st.config.config.volumes.get_or_insert_with(BTreeMap::new);
                for v in &vols {
                    set.insert(v.clone(), Default::default());
                }
                st.history(format!("VOLUME [{}]", vols.join(" ")), true);
                Ok(())
            }
            Keyword::User => {
                let u = self.single(st, ins)?;
                st.config.config.user = Some(u.clone());
                st.history(format!("USER {u}"), true);
                Ok(())
            }
            Keyword::Workdir => {
                let w = self.single(st, ins)?;
                let dir = clean_path(&join_path(&st.workdir(), &w));
                st.config.config.working_dir = Some(dir.clone());
                // `/` always exists: no mkdir and no layer, as BuildKit does it. (The
                // optimizer would drop the vertex anyway, leaving history out of step.)
                if dir == "/" {
                    st.history(format!("WORKDIR {dir}"), true);
                    return Ok(());
                }
                let owner = parse_owner(&st.user());
                let meta = self.meta(ins, st, written.clone());
                let node = self.graph.add(
                    Op::File(FileOp {
                        actions: vec![FileAction {
                            base: FileRef::Input(0),
                            kind: FileActionKind::Mkdir {
                                path: dir.clone(),
                                mode: 0o755,
                                make_parents: true,
                                owner,
                                timestamp: None,
                            },
                        }],
                    }),
                    vec![st.root],
                    meta,
                );
                st.root = node;
                st.history(format!("WORKDIR {dir}"), false);
                Ok(())
            }
            Keyword::Cmd | Keyword::Entrypoint => {
                let args = match &ins.args {
                    Args::Exec(v) => v.clone(),
                    Args::Shell(s) => {
                        let mut a = st.shell();
                        a.push(s.clone());
                        a
                    }
                    _ => return Err(self.err(ins.span, format!("{} expects a command", ins.keyword.as_str()))),
                };
                let shown = format::go_quote_list(&args);
                if ins.keyword == Keyword::Cmd {
                    st.config.config.cmd = Some(args);
                    st.cmd_set = true;
                    st.history(format!("CMD {shown}"), true);
                } else {
                    st.config.config.entrypoint = Some(args);
                    if !st.cmd_set {
                        st.config.config.cmd = None;
                    }
                    st.history(format!("ENTRYPOINT {shown}"), true);
                }
                Ok(())
            }
            Keyword::Shell => {
                let Args::Exec(v) = &ins.args else {
                    return Err(self.err(
                        ins.span,
                        "SHELL requires the arguments to be in JSON form, e.g. `SHELL [\"/bin/bash\", \"-c\"]`",
                    ));
                };
                if v.is_empty() {
                    return Err(self.err(ins.span, "SHELL requires at least one argument"));
                }
                st.config.config.shell = Some(v.clone());
                st.history(format!("SHELL {}", format::go_quote_list(v)), true);
                Ok(())
            }
            Keyword::Stopsignal => {
                let s = self.single(st, ins)?;
                let ok = s.parse::<u32>().is_ok_and(|n| n > 0)
                    || s.strip_prefix("SIG").is_some_and(|r| {
                        !r.is_empty()
                            && r.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '+' || c == '-')
                    });
                if !ok {
                    return Err(self.err(
                        ins.span,
                        format!("invalid signal `{s}`: expected a name such as `SIGTERM` or a number"),
                    ));
                }
                st.config.config.stop_signal = Some(s.clone());
                st.history(format!("STOPSIGNAL {s}"), true);
                Ok(())
            }
            Keyword::Healthcheck => {
                let hc = self.healthcheck(ins)?;
                st.history(format!("HEALTHCHECK {}", format::go_healthcheck(&hc)), true);
                st.config.config.healthcheck = Some(hc);
                Ok(())
            }
            Keyword::Onbuild => {
                let Args::Onbuild(inner) = &ins.args else {
                    return Err(self.err(ins.span, "ONBUILD expects an instruction"));
                };
                // The inner span may start at `ONBUILD` itself: keep only the trigger.
                let w = self.written(inner);
                let t = match w.get(..8) {
                    Some(k) if k.eq_ignore_ascii_case("ONBUILD ") => w[8..].trim_start().to_string(),
                    _ => w,
                };
                st.config.config.on_build.get_or_insert_with(Vec::new).push(t.clone());
                st.history(format!("ONBUILD {t}"), true);
                Ok(())
            }
            Keyword::From => Err(self.err(ins.span, "FROM inside a stage")),
        }
    }

    /// Words of a Words/Exec instruction, each expanded.
    fn words(&self, st: &State, ins: &Instruction) -> Result<Vec<String>, CompileError> {
        match &ins.args {
            Args::Words(w) => w.iter().map(|w| self.expand(st, &w.node, w.span)).collect(),
            Args::Exec(v) => v.iter().map(|w| self.expand(st, w, ins.span)).collect(),
            Args::Shell(s) => Ok(vec![self.expand(st, s, ins.span)?]),
            _ => Err(self.err(ins.span, format!("{} expects arguments", ins.keyword.as_str()))),
        }
    }

    /// USER, WORKDIR, STOPSIGNAL: one word, expanded.
    fn single(&self, st: &State, ins: &Instruction) -> Result<String, CompileError> {
        let w = self.words(st, ins)?.join(" ");
        let w = w.trim().to_string();
        if w.is_empty() {
            return Err(self.err(
                ins.span,
                format!("{} expects a value (did a variable expand to nothing?)", ins.keyword.as_str()),
            ));
        }
        Ok(w)
    }

    fn healthcheck(&self, ins: &Instruction) -> Result<Healthcheck, CompileError> {
        let mut hc = Healthcheck::default();
        match &ins.args {
            Args::HealthcheckNone => {
                if let Some(f) = ins.flags.first() {
                    return Err(self.err(f.span, "HEALTHCHECK NONE takes no flags"));
                }
                hc.test = vec!["NONE".into()];
                return Ok(hc);
            }
            Args::HealthcheckCmd(inner) => match &**inner {
                Args::Exec(v) => {
                    hc.test = vec!["CMD".into()];
                    hc.test.extend(v.iter().cloned());
                }
                Args::Shell(s) => hc.test = vec!["CMD-SHELL".into(), s.clone()],
                _ => return Err(self.err(ins.span, "HEALTHCHECK CMD expects a command")),
            },
            _ => return Err(self.err(ins.span, "HEALTHCHECK expects `NONE` or `CMD <command>`")),
        }
        for f in &ins.flags {
            let v = f.value.as_deref().unwrap_or("");
            if f.name == "retries" {
                hc.retries = v
                    .parse::<u64>()
                    .map_err(|_| self.err(f.span, format!("`--retries={v}`: expected a non-negative whole number")))?;
                continue;
            }
            let d = parse_duration(v).map_err(|e| self.err(f.span, format!("`--{}={v}`: {e}", f.name)))?;
            if d != 0 && d < 1_000_000 {
                return Err(self.err(f.span, format!("`--{}` cannot be less than 1ms", f.name)));
            }
            match f.name.as_str() {
                "interval" => hc.interval = d,
                "timeout" => hc.timeout = d,
                "start-period" => hc.start_period = d,
                "start-interval" => hc.start_interval = d,
                other => return Err(self.err(f.span, format!("Unknown flag `--{other}` for `HEALTHCHECK`"))),
            }
        }
        Ok(hc)
    }
}

/// `user[:group]` as a chown owner; `None` for an empty user (root, kept as is).
fn parse_owner(s: &str) -> Option<Owner> {
    if s.is_empty() {
        return None;
    }
    let id = |p: &str| match p.parse::<u32>() {
        Ok(n) => IdOrName::Id(n),
        Err(_) => IdOrName::Name(p.to_string()),
    };
    Some(match s.split_once(':') {
        Some((u, g)) => Owner { user: id(u), group: (!g.is_empty()).then(|| id(g)) },
        None => Owner { user: id(s), group: None },
    })
}

/// Joins `p` onto `base` unless `p` is absolute.
fn join_path(base: &str, p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{}/{}", base.trim_end_matches('/'), p)
    }
}

/// Lexically cleans an absolute path (`.`, `..`, repeated slashes); the result is
/// absolute and never ends in `/` except for the root.
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `80`, `80/udp`, `8000-8002/tcp` → `["80/tcp"]`, … (ranges expanded, as Docker does).
fn parse_ports(p: &str) -> Result<Vec<String>, String> {
    let (range, proto) = match p.split_once('/') {
        Some((r, pr)) => (r, pr.to_ascii_lowercase()),
        None => (p, "tcp".to_string()),
    };
    if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        return Err(format!("invalid protocol `{proto}` in `EXPOSE {p}`: expected tcp, udp or sctp"));
    }
    let port =
        |s: &str| s.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(|| format!("invalid port `{s}` in `EXPOSE {p}`"));
    let (a, b) = match range.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let n = port(range)?;
            (n, n)
        }
    };
    if b < a {
        return Err(format!("invalid port range `{range}` in `EXPOSE {p}`"));
    }
    Ok((a..=b).map(|n| format!("{n}/{proto}")).collect())
}

/// Go's `time.ParseDuration`: `1h2m3.5s`, `300ms`, `0`; nanoseconds.
fn parse_duration(s: &str) -> Result<i64, String> {
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err("expected a duration such as `30s` or `1m30s`".into());
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_end == 0 {
            return Err(format!("invalid duration `{s}`: expected a number before `{rest}`"));
        }
        let n: f64 = rest[..num_end].parse().map_err(|_| format!("invalid duration `{s}`"))?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("invalid duration `{s}`: missing unit (ns, us, ms, s, m, h)")),
            u => return Err(format!("invalid duration `{s}`: unknown unit `{u}`")),
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Ok(total.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go() {
        assert_eq!(parse_duration("30s").unwrap(), 30_000_000_000);
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_duration("300ms").unwrap(), 300_000_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert!(parse_duration("10").unwrap_err().contains("missing unit"));
        assert!(parse_duration("3x").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn ports_and_paths() {
        assert_eq!(parse_ports("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(parse_ports("53/UDP").unwrap(), vec!["53/udp"]);
        assert_eq!(parse_ports("8000-8002").unwrap().len(), 3);
        assert!(parse_ports("http").is_err());
        assert!(parse_ports("80/icmp").is_err());
        assert_eq!(clean_path("/a/./b/../c//"), "/a/c");
        assert_eq!(clean_path(&join_path("/app", "../x")), "/x");
        assert_eq!(join_path("/app", "/abs"), "/abs");
    }
}
