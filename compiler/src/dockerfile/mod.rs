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
//!
//! Each instruction goes the way BuildKit's dispatcher takes it: `instructions` reads it
//! into a typed `instructions::Command` (flags through the grammar's one flag table),
//! `Command::expand` substitutes its variables in one place, and
//! `dispatch` applies it to the stage `State`, building vertices with the SDK
//! ([`cairn_sdk::State`]: `image`, `run`, `file`, `merge`, …), so every Dockerfile build
//! goes through the same builder other Rust frontends use; [`cairn_sdk::Build::graph`]
//! gives the raw graph (every vertex in the order it was made) the optimizer starts from.
//! Modules: `stages` (splitting, stage bases, ONBUILD triggers, `--from`), `dispatch`
//! (the config instructions), `run` and `mount` (RUN), `copy` (COPY/ADD), `values`
//! (ports, durations, sizes), `format` (history strings).

mod copy;
mod dispatch;
mod format;
mod instructions;
mod mount;
mod run;
mod stages;
mod state;
mod values;

use std::collections::{BTreeMap, HashMap, HashSet};

use cairn_grammar::ast::{Dockerfile, Instruction, Span};
use cairn_ir::{ImageConfig, Platform, ProgressGroup, SourceLocation, VertexMeta};

use crate::error::{CompileError, ErrorKind};
use crate::graph::Graph;
use crate::resolver::ImageResolver;
use state::{StageDecl, State};

/// The PATH of an image without one (BuildKit's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
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
    /// `target:STAGE` (buildx bake's scheme): a stage of this Dockerfile.
    Stage(String),
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
    /// The network of a RUN without `--network` (`cairn build --network`; BuildKit's
    /// `default`, `none` or `host`). It is part of the op, so of the digest.
    pub network: cairn_ir::NetworkMode,
    /// `--no-cache-filter`: the stages (by `AS` name) whose steps run even when cached.
    pub no_cache_filter: Vec<String>,
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
            network: cairn_ir::NetworkMode::Default,
            no_cache_filter: Vec::new(),
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
    // `# syntax=` is the caller's business: it chose this frontend (the CLI runs another
    // one when the directive names it, see `is_dockerfile_frontend`).
    let platforms = if opts.platforms.is_empty() { vec![opts.build_platform.clone()] } else { opts.platforms.clone() };
    let target = lw.target_index()?;
    lw.check_no_cache_filter()?;
    for p in platforms {
        let mut pc = lw.platform_ctx(p.clone())?;
        let st = lw.lower_stage(&mut pc, target)?;
        // A base image's config says what its binaries are: it stays the truth (with the
        // `InvalidBaseImagePlatform` warning when it is not the platform asked for).
        let mut config = st.config.clone();
        if config.architecture.is_empty() || config.os.is_empty() {
            config.architecture = st.platform.architecture.clone();
            config.os = st.platform.os.clone();
            config.variant = (!st.platform.variant.is_empty()).then(|| st.platform.variant.clone());
        }
        lw.build.output_for(p, &st.root, config);
    }
    // `BUILDKIT_*` build args configure the frontend itself (`BUILDKIT_DOCKERFILE_CHECK`).
    let unused: Vec<&String> = opts
        .build_args
        .keys()
        .filter(|k| !lw.used_args.contains(*k) && !PROXY_ARGS.contains(&k.as_str()) && !k.starts_with("BUILDKIT_"))
        .collect();
    if !unused.is_empty() {
        let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        lw.warnings.push(format!("One or more build-args [{}] were not consumed", names.join(" ")));
    }
    Ok(Compiled { graph: lw.build.graph(), warnings: lw.warnings })
}

/// Does a `# syntax=` reference name BuildKit's Dockerfile frontend (`docker/dockerfile`,
/// `docker/dockerfile-upstream`, any tag or digest, with or without `docker.io/`)? cairn
/// is that frontend, so such a directive needs nothing more; the CLI runs the frontend any
/// other directive names (SPEC.md §11).
pub fn is_dockerfile_frontend(reference: &str) -> bool {
    let r = reference.trim();
    let r = r.strip_prefix("docker.io/").unwrap_or(r);
    let repo = r.split(['@', ':']).next().unwrap_or("");
    matches!(repo, "docker/dockerfile" | "docker/dockerfile-upstream")
}

/// The Dockerfile being compiled, for errors: its name, text and escape character.
pub(crate) struct Src<'a> {
    pub file: &'a str,
    pub text: &'a str,
    pub escape: char,
}

impl Src<'_> {
    pub fn err(&self, kind: ErrorKind, span: Span, message: impl Into<String>) -> CompileError {
        CompileError::at(kind, self.file, self.text, span, message)
    }
}

struct Lowerer<'a> {
    df: &'a Dockerfile,
    src: Src<'a>,
    opts: &'a CompileOptions,
    resolver: &'a dyn ImageResolver,
    build: cairn_sdk::Build,
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
            src: Src { file: &opts.file, text, escape: df.escape },
            opts,
            resolver,
            build: cairn_sdk::Build::new(),
            warnings: Vec::new(),
            warned: HashSet::new(),
            configs: HashMap::new(),
            globals: Vec::new(),
            stages: Vec::new(),
            used_args: HashSet::new(),
        };
        lw.build.source(&opts.file, text);
        lw.split_stages()?;
        Ok(lw)
    }

    fn err(&self, kind: ErrorKind, span: Span, message: impl Into<String>) -> CompileError {
        self.src.err(kind, span, message)
    }

    fn meta(&self, ins: &Instruction, st: &State, description: String) -> VertexMeta {
        let description = if st.in_trigger { format!("ONBUILD {description}") } else { description };
        VertexMeta {
            description,
            group: Some(ProgressGroup { name: st.group.clone(), step: st.step, total: st.total }),
            locations: vec![location(ins)],
            ignore_cache: st.ignore_cache,
        }
    }

    /// The instruction as written (continuations joined, heredoc bodies left out), for
    /// progress descriptions and history.
    fn written(&self, ins: &Instruction) -> String {
        let text = self.src.text;
        let src = &text[ins.span.start.min(text.len())..ins.span.end.min(text.len())];
        let esc = self.df.escape;
        let mut out = String::new();
        for (i, line) in src.lines().enumerate() {
            let t = line.trim_end();
            // Comment and empty lines inside a continuation are not part of the
            // instruction (Docker drops them), so they never become its title.
            if i > 0 && (t.trim_start().starts_with('#') || t.trim_start().is_empty()) {
                continue;
            }
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
            .map_err(|e| self.err(ErrorKind::Image, span, format!("Cannot read the config of `{reference}`: {e}")))?;
        if got.is_none() {
            self.warn_once(
                reference,
                format!("Base image `{reference}` is not in the local store; its config (ENV, WORKDIR, USER…) is taken as empty"),
            );
        }
        if let Some(c) = got.as_ref().filter(|c| !c.architecture.is_empty()) {
            let actual = c.platform();
            if !actual.same_as(platform) {
                // BuildKit's rule and words (its lint `InvalidBaseImagePlatform`).
                self.warn_once(
                    &format!("platform {reference} {platform}"),
                    format!(
                        "InvalidBaseImagePlatform: Base image {} was pulled with platform \"{actual}\", expected \"{platform}\" for current build",
                        cairn_ir::reference::familiar(reference)
                    ),
                );
            }
        }
        self.configs.insert(key, got.clone());
        Ok(got.unwrap_or_default())
    }

    /// The main build context, as a local source excluding `.dockerignore` patterns.
    fn context_node(&mut self, span: Span) -> Result<cairn_sdk::State, CompileError> {
        self.local_node("context", span)
    }

    fn local_node(&mut self, name: &str, span: Span) -> Result<cairn_sdk::State, CompileError> {
        let exclude = if name == "context" { self.opts.dockerignore.clone() } else { Vec::new() };
        let description =
            if name == "context" { "load build context".to_string() } else { format!("load build context {name}") };
        let meta = VertexMeta { description, ..VertexMeta::default() };
        cairn_sdk::State::local(name, cairn_sdk::LocalOpts { exclude, meta, ..Default::default() })
            .map_err(|e| self.sdk_err(span, e))
    }

    /// An SDK error as a compile error at `span` (the SDK refuses what the IR cannot hold).
    fn sdk_err(&self, span: Span, e: cairn_sdk::Error) -> CompileError {
        let kind = match e.kind {
            cairn_sdk::ErrorKind::Reference => ErrorKind::Image,
            _ => ErrorKind::Instruction,
        };
        self.err(kind, span, e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolver::NoImages;

    fn warnings(text: &str) -> Vec<String> {
        let df = cairn_grammar::parse("Dockerfile", text).unwrap();
        compile(&df, text, &CompileOptions::new("Dockerfile"), &NoImages).unwrap().warnings
    }

    /// Issue 12: steps are numbered as BuildKit numbers them: the FROM of an image, then
    /// RUN, COPY, ADD and WORKDIR; other instructions make no step and no count.
    #[test]
    fn issue12_step_counters_as_buildkit() {
        let text = "FROM busybox AS build\nENV A=1\nRUN a\nLABEL x=y\nWORKDIR /src\nCOPY . .\nUSER 1\nRUN b\n\
                    FROM scratch\nCOPY --from=build /x /x\nCMD [\"x\"]\n";
        let df = cairn_grammar::parse("Dockerfile", text).unwrap();
        let c = compile(&df, text, &CompileOptions::new("Dockerfile"), &NoImages).unwrap();
        let mut steps: Vec<String> =
            c.graph.nodes.iter().filter(|n| n.meta.group.is_some()).filter_map(|n| n.meta.label()).collect();
        steps.sort();
        steps.dedup();
        assert_eq!(
            steps,
            [
                "[build 1/5] FROM busybox:latest",
                "[build 2/5] RUN a",
                "[build 3/5] WORKDIR /src",
                "[build 4/5] COPY . .",
                "[build 5/5] RUN b",
                "[stage-1 1/1] COPY --from=build /x /x",
                "[stage-1 1/1] FROM scratch",
            ]
        );
    }

    /// The progress labels of a compile, sorted, and the vertices that ignore the cache.
    fn labels(text: &str, opts: &CompileOptions, images: &dyn ImageResolver) -> (Vec<String>, Vec<String>) {
        let df = cairn_grammar::parse("Dockerfile", text).unwrap();
        let c = compile(&df, text, opts, images).unwrap();
        let mut all: Vec<String> = c.graph.nodes.iter().filter_map(|n| n.meta.label()).collect();
        let mut ignored: Vec<String> =
            c.graph.nodes.iter().filter(|n| n.meta.ignore_cache).filter_map(|n| n.meta.label()).collect();
        for v in [&mut all, &mut ignored] {
            v.sort();
            v.dedup();
        }
        (all, ignored)
    }

    /// Issue 12: a Dockerfile of one stage shows no stage name (`[1/3]`), named or not, as
    /// BuildKit; the base's ONBUILD triggers show as `ONBUILD …` steps; steps are padded
    /// to the width of the total.
    #[test]
    fn issue12_single_stage_labels_and_onbuild_triggers() {
        let mut base = cairn_ir::ImageConfig::default();
        base.config.on_build = Some(vec!["RUN make".into()]);
        let images = crate::resolver::StaticImages(vec![("docker.io/library/app:latest".into(), base)]);
        let mut text = "FROM app AS only\n".to_string();
        for i in 0..9 {
            text.push_str(&format!("RUN s{i}\n"));
        }
        let (all, _) = labels(&text, &CompileOptions::new("Dockerfile"), &images);
        assert_eq!(all[0], "[ 1/11] FROM app:latest");
        assert_eq!(all[1], "[ 2/11] ONBUILD RUN make");
        assert_eq!(all[2], "[ 3/11] RUN s0");
        assert_eq!(all[10], "[11/11] RUN s8");
        // Two stages: named as before.
        let (all, _) = labels("FROM scratch\nFROM app\nRUN x\n", &CompileOptions::new("Dockerfile"), &images);
        assert!(all.contains(&"[stage-1 2/3] ONBUILD RUN make".to_string()), "{all:?}");
    }

    /// Issue 11: `--no-cache-filter` names stages by their `AS` name (as BuildKit's
    /// IsNoCache); a name that is no stage is an error.
    #[test]
    fn issue11_no_cache_filter_by_stage_name() {
        let text = "FROM busybox AS deps\nRUN a\nFROM busybox AS app\nRUN b\nCOPY --from=deps /a /a\n";
        let mut opts = CompileOptions::new("Dockerfile");
        opts.no_cache_filter = vec!["DEPS".into()];
        let (_, ignored) = labels(text, &opts, &NoImages);
        assert_eq!(ignored, ["[deps 2/2] RUN a"]);
        opts.no_cache_filter = vec!["nope".into()];
        let df = cairn_grammar::parse("Dockerfile", text).unwrap();
        let e = compile(&df, text, &opts, &NoImages).unwrap_err();
        assert!(e.to_string().contains("`--no-cache-filter nope`: no stage named `nope`"), "{e}");
    }

    /// Issue 11: `--build-context NAME=target:STAGE` makes NAME another stage of the file,
    /// for FROM and `--from`; a context named like a stage replaces the stage, body and
    /// all (BuildKit); an unknown or circular target is an error at the line.
    #[test]
    fn issue11_target_contexts_and_contexts_replacing_stages() {
        let text = "FROM scratch AS one\nCOPY a /a\nFROM scratch AS two\nCOPY b /b\n\
                    FROM base\nCOPY --from=other /b /c\n";
        let compile_with = |contexts: &[(&str, NamedContext)]| {
            let mut opts = CompileOptions::new("Dockerfile");
            opts.contexts = contexts.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
            let df = cairn_grammar::parse("Dockerfile", text).unwrap();
            compile(&df, text, &opts, &NoImages)
        };
        let copies = |c: &Compiled| -> Vec<String> {
            let mut v: Vec<String> = c
                .graph
                .nodes
                .iter()
                .filter(|n| n.meta.description.starts_with("COPY"))
                .map(|n| n.meta.description.clone())
                .collect();
            v.sort();
            v
        };
        let c =
            compile_with(&[("base", NamedContext::Stage("one".into())), ("other", NamedContext::Stage("TWO".into()))])
                .unwrap();
        assert_eq!(copies(&c), ["COPY --from=other /b /c", "COPY a /a", "COPY b /b"]);
        // `two` replaced by an image: its COPY is gone.
        let c = compile_with(&[
            ("base", NamedContext::Stage("one".into())),
            ("other", NamedContext::Stage("two".into())),
            ("two", NamedContext::Image("docker.io/library/busybox:latest".into())),
        ])
        .unwrap();
        assert_eq!(copies(&c), ["COPY --from=other /b /c", "COPY a /a"]);
        let e = compile_with(&[("base", NamedContext::Stage("nope".into()))]).unwrap_err();
        assert!(e.to_string().contains("`--build-context base=target:nope`: no stage named `nope`"), "{e}");
        assert_eq!(e.line, 5);
        let e =
            compile_with(&[("one", NamedContext::Stage("one".into())), ("base", NamedContext::Stage("one".into()))])
                .unwrap_err();
        assert!(e.to_string().contains("Circular dependency"), "{e}");
    }

    /// Issue 12: `# syntax=` of the Dockerfile frontend itself is accepted silently; the
    /// CLI chooses another frontend for any other reference (issue 17), so the compiler
    /// never warns about one.
    #[test]
    fn issue12_syntax_directive() {
        for ok in [
            "docker/dockerfile:1",
            "docker/dockerfile:1.7-labs",
            "docker.io/docker/dockerfile:1.14",
            "docker/dockerfile",
            "docker/dockerfile-upstream:master",
            "docker/dockerfile@sha256:ac85f380a63b13dfcefa89046420e1781752bab202122f8f50032edf31be0021",
        ] {
            assert!(is_dockerfile_frontend(ok), "{ok}");
            assert!(warnings(&format!("# syntax={ok}\nFROM scratch\n")).is_empty(), "{ok}");
        }
        for other in ["tonistiigi/dockerfile:master", "example.com/docker/dockerfile:1", "docker/dockerfilex"] {
            assert!(!is_dockerfile_frontend(other), "{other}");
        }
        assert!(warnings("# syntax=example.com/my/frontend:2\nFROM scratch\n").is_empty());
    }
}
