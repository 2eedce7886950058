//! What `cairn compile` and `cairn build` share: the frontend flags (defined once, and
//! flattened into both commands), reading the Dockerfile and its `.dockerignore`, turning
//! flags into [`CompileOptions`], compiling. Depends on no other `cli` module.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cairn_compiler::dockerfile::{CompileOptions, Compiled, NamedContext};
use cairn_compiler::resolver::{ImageResolver, ResolveError};
use cairn_ir::protocol as proto;
use cairn_ir::Platform;
use cairn_runtime::registry::Registry;
use cairn_runtime::store::{ImageRecord, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::frontend_proto::{self, select, select::Frontend};

/// The flags `build` and `compile` share.
#[derive(clap::Args, Debug)]
pub struct FrontendArgs {
    /// Name of the Dockerfile (default: `CONTEXT/Dockerfile`; `-` reads it from stdin)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Build stage to build (default: the last one)
    #[arg(long)]
    pub target: Option<String>,
    /// Build-time variable `KEY=VALUE`, or `KEY` to take it from the environment
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub build_args: Vec<String>,
    /// Target platform `os/arch[/variant]` (default: this machine's); `compile` takes a
    /// comma-separated list and gives one output each
    #[arg(long)]
    pub platform: Option<String>,
    /// Extra build context `NAME=DIR`, `NAME=oci-layout://PATH[:TAG|@DIGEST]` or
    /// `NAME=docker-image://REF`
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub build_contexts: Vec<String>,
    /// The frontend that reads the file: NAME (the executable `cairn-frontend-NAME` on
    /// PATH), a PATH, or `dockerfile` (the built-in one: the default, unless the file
    /// starts with a `# syntax=` directive naming another)
    #[arg(long, value_name = "NAME|PATH")]
    pub frontend: Option<String>,
    /// An option for an external frontend, `KEY=VALUE`; repeatable
    #[arg(long = "frontend-opt", value_name = "KEY=VALUE")]
    pub frontend_opts: Vec<String>,
    /// Seconds an external frontend may run (default 60; or CAIRN_FRONTEND_TIMEOUT)
    #[arg(long = "frontend-timeout", value_name = "SECONDS")]
    pub frontend_timeout: Option<f64>,
    /// The build context directory
    #[arg(default_value = ".")]
    pub context: PathBuf,
}

impl FrontendArgs {
    /// `-f`, or `Dockerfile` in the context.
    pub fn dockerfile(&self) -> PathBuf {
        self.file.clone().unwrap_or_else(|| self.context.join("Dockerfile"))
    }
}

/// A `--build-context` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextSpec {
    Dir(PathBuf),
    /// A git repository or a tarball URL, fetched into a directory before the build.
    Url(String),
    /// `oci-layout://…` or a store reference (from `docker-image://`), as an image source
    /// reference.
    Image(String),
    /// `target:STAGE`: a stage of the same Dockerfile (buildx bake's scheme).
    Stage(String),
}

/// A context given as a URL: a git repository (`….git[#REF[:DIR]]`, `git@…`, `git://…`)
/// or an HTTP(S) tarball, as buildx takes them.
pub fn is_url_context(s: &str) -> bool {
    ["https://", "http://", "git://", "git@", "ssh://"].iter().any(|p| s.starts_with(p))
}

pub fn parse_build_context(s: &str) -> anyhow::Result<(String, ContextSpec)> {
    let (name, value) =
        s.split_once('=').with_context(|| format!("Invalid `--build-context {s}`: expected NAME=VALUE"))?;
    if name.is_empty() || value.is_empty() {
        bail!("Invalid `--build-context {s}`: expected NAME=VALUE");
    }
    let spec = if value.starts_with("oci-layout://") {
        let (path, r) = cairn_runtime::image::parse_oci_layout_ref(value);
        let abs = std::fs::canonicalize(&path)
            .with_context(|| format!("`--build-context {name}`: OCI layout `{}` not found", path.display()))?;
        let mut reference = format!("oci-layout://{}", abs.display());
        if let Some(r) = r {
            reference.push(if r.starts_with("sha256:") { '@' } else { ':' });
            reference.push_str(&r);
        }
        ContextSpec::Image(reference)
    } else if let Some(stage) = value.strip_prefix("target:") {
        if stage.is_empty() {
            bail!("Invalid `--build-context {s}`: `target:` needs a stage name");
        }
        ContextSpec::Stage(stage.to_string())
    } else if let Some(r) = value.strip_prefix("docker-image://") {
        ContextSpec::Image(r.to_string())
    } else if is_url_context(value) {
        ContextSpec::Url(value.to_string())
    } else if value.contains("://") {
        bail!(
            "Unsupported `--build-context {s}`: expected a directory, a git or HTTP(S) tarball URL, `oci-layout://`, `docker-image://` or `target:STAGE`"
        );
    } else {
        let p = PathBuf::from(value);
        if !p.is_dir() {
            bail!("`--build-context {name}`: directory `{value}` not found");
        }
        ContextSpec::Dir(p)
    };
    Ok((name.to_string(), spec))
}

/// Resolves `--build-arg` values: `K=V` as given, `K` from the environment (skipped when
/// unset, as docker does).
pub fn parse_build_args(
    args: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for a in args {
        match a.split_once('=') {
            Some(("", _)) => bail!("Invalid `--build-arg {a}`: empty name"),
            Some((k, v)) => out.push((k.to_string(), v.to_string())),
            None if a.is_empty() => bail!("Invalid empty `--build-arg`"),
            None => {
                if let Some(v) = env(a) {
                    out.push((a.clone(), v));
                }
            }
        }
    }
    Ok(out)
}

/// Parses `--platform a,b` (empty: the host's).
pub fn parse_platforms(s: Option<&str>) -> anyhow::Result<Vec<Platform>> {
    match s {
        None => Ok(vec![Platform::host()]),
        Some(list) => list
            .split(',')
            .map(|p| {
                Platform::parse(p).with_context(|| {
                    format!("Invalid `--platform {list}`: `{p}` is not os/arch[/variant], e.g. linux/amd64")
                })
            })
            .collect(),
    }
}

/// `.dockerignore` patterns: `<Dockerfile>.dockerignore` beside the Dockerfile wins over
/// the context's `.dockerignore` (BuildKit's rule). Comments and blank lines dropped.
pub fn read_dockerignore(dockerfile: &Path, context: &Path) -> anyhow::Result<Vec<String>> {
    let mut specific = dockerfile.as_os_str().to_owned();
    specific.push(".dockerignore");
    let candidates = [PathBuf::from(specific), context.join(".dockerignore")];
    for c in candidates {
        match std::fs::read_to_string(&c) {
            Ok(text) => {
                // A leading UTF-8 byte-order mark is no part of the first pattern (as
                // Docker's `ignorefile.ReadAll` strips it; issue 13).
                let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
                return Ok(text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string)
                    .collect());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("Cannot read `{}`", c.display())),
        }
    }
    Ok(Vec::new())
}

pub struct FrontendInput<'a> {
    pub dockerfile: &'a Path,
    /// The Dockerfile's text when it did not come from `dockerfile` (stdin).
    pub text: Option<&'a str>,
    /// The network of a RUN without `--network`.
    pub network: cairn_ir::NetworkMode,
    pub context: &'a Path,
    pub target: Option<&'a str>,
    pub build_args: &'a [(String, String)],
    pub platforms: Vec<Platform>,
    pub contexts: &'a [(String, ContextSpec)],
    /// `--no-cache-filter`: stages whose steps run even when cached.
    pub no_cache_filter: &'a [String],
    /// `--frontend`, `--frontend-opt`, `--frontend-timeout`.
    pub args: &'a FrontendArgs,
    /// An external frontend keeps the host's network (`--allow frontend.network`).
    pub frontend_network: bool,
}

impl<'a> FrontendInput<'a> {
    /// The input of a command that compiles without building (`compile`, `plan`): the
    /// file from disk, the default network, no `--no-cache-filter`, no frontend network.
    pub fn from_args(
        fe: &'a FrontendArgs,
        dockerfile: &'a Path,
        build_args: &'a [(String, String)],
        platforms: Vec<Platform>,
        contexts: &'a [(String, ContextSpec)],
    ) -> FrontendInput<'a> {
        FrontendInput {
            dockerfile,
            text: None,
            network: cairn_ir::NetworkMode::Default,
            context: &fe.context,
            target: fe.target.as_deref(),
            build_args,
            platforms,
            contexts,
            no_cache_filter: &[],
            args: fe,
            frontend_network: false,
        }
    }
}

/// Reads the Dockerfile at `path`, or stdin for `-`.
pub fn read_dockerfile(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("Cannot read the Dockerfile from stdin")?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("Cannot read Dockerfile `{}`", path.display()))
}

/// Compiles the file with the frontend `--frontend` or its `# syntax=` names (the
/// Dockerfile frontend by default); the caller shows `Compiled::warnings`.
pub fn compile(input: &FrontendInput, resolver: &dyn ImageResolver) -> anyhow::Result<Compiled> {
    compile_selected(input, select_frontend(input)?, resolver)
}

/// The frontend that compiles a build: the built-in Dockerfile frontend (with the file's
/// text), or an external executable and the file it reads.
pub enum Selected<'a> {
    Builtin(String),
    External(PathBuf, Option<&'a Path>),
}

/// Chooses the frontend: `--frontend`, else the file's `# syntax=`, else the built-in one.
pub fn select_frontend<'a>(input: &'a FrontendInput) -> anyhow::Result<Selected<'a>> {
    let path_var = std::env::var_os("PATH");
    if let Some(name) = &input.args.frontend {
        if let Frontend::External(exe) = select::resolve(name, &select::Origin::Flag, path_var.as_deref())? {
            let file = input.args.file.as_deref().filter(|f| *f != Path::new("-"));
            return Ok(Selected::External(exe, file));
        }
        return Ok(Selected::Builtin(text_of(input)?));
    }
    let text = text_of(input)?;
    if let Some((value, line)) = select::syntax_directive(input.dockerfile, &text)? {
        let origin = select::Origin::Directive { file: input.dockerfile, line };
        if let Frontend::External(exe) = select::resolve(&value, &origin, path_var.as_deref())? {
            if input.text.is_some() || input.dockerfile == Path::new("-") {
                bail!("`# syntax={value}` names an external frontend, which reads its file from disk: give the file with `-f FILE`, not on stdin");
            }
            return Ok(Selected::External(exe, Some(input.dockerfile)));
        }
    }
    Ok(Selected::Builtin(text))
}

/// Compiles with the frontend [`select_frontend`] chose.
pub fn compile_selected(
    input: &FrontendInput,
    selected: Selected,
    resolver: &dyn ImageResolver,
) -> anyhow::Result<Compiled> {
    match selected {
        Selected::Builtin(text) => compile_text(input, text, resolver),
        Selected::External(exe, file) => run_external(input, &exe, file, resolver),
    }
}

/// The file's text: given (stdin), or read.
fn text_of(input: &FrontendInput) -> anyhow::Result<String> {
    match input.text {
        Some(t) => Ok(t.to_string()),
        None => read_dockerfile(input.dockerfile),
    }
}

/// Runs an external frontend (SPEC.md §11) on `file` and the context.
fn run_external(
    input: &FrontendInput,
    exe: &Path,
    file: Option<&Path>,
    resolver: &dyn ImageResolver,
) -> anyhow::Result<Compiled> {
    let abs = |p: &Path| {
        std::fs::canonicalize(p)
            .map(|p| p.display().to_string())
            .with_context(|| format!("Cannot find `{}`", p.display()))
    };
    let mut named_contexts = BTreeMap::new();
    for (name, spec) in input.contexts {
        let c = match spec {
            ContextSpec::Dir(d) => proto::NamedContext::Directory(abs(d)?),
            ContextSpec::Image(r) => proto::NamedContext::Image(r.clone()),
            ContextSpec::Url(u) => {
                bail!("`--build-context {name}={u}`: URL contexts are fetched by `cairn build` only")
            }
            ContextSpec::Stage(t) => {
                bail!("`--build-context {name}=target:{t}` names a Dockerfile stage; an external frontend takes directories and images")
            }
        };
        named_contexts.insert(name.clone(), c);
    }
    let mut options = BTreeMap::new();
    for o in &input.args.frontend_opts {
        match o.split_once('=') {
            Some((k, v)) if !k.is_empty() => options.insert(k.to_string(), v.to_string()),
            _ => bail!("Invalid `--frontend-opt {o}`: expected KEY=VALUE"),
        };
    }
    let request = proto::BuildRequest {
        protocol: proto::PROTOCOL_VERSION,
        context: abs(input.context)?,
        file: file.map(abs).transpose()?,
        target: input.target.map(str::to_string),
        platforms: input.platforms.clone(),
        build_args: input.build_args.iter().cloned().collect(),
        options,
        named_contexts,
    };
    let limits = frontend_proto::Limits::from_flags(input.args.frontend_timeout, |k| std::env::var(k).ok())?;
    let inv = frontend_proto::Invocation { exe, request, network: input.frontend_network, limits };
    let out = frontend_proto::run(&inv, resolver)?;
    Ok(Compiled { graph: cairn_compiler::graph::Graph::from_definition(&out.definition), warnings: out.warnings })
}

/// The built-in Dockerfile frontend on `text`.
fn compile_text(input: &FrontendInput, text: String, resolver: &dyn ImageResolver) -> anyhow::Result<Compiled> {
    Ok(compile_builtin(input, &text, resolver)?.0)
}

/// Compiles `text` with the built-in Dockerfile frontend; returns the parsed file too, for
/// the linter (one parse per build).
pub fn compile_builtin(
    input: &FrontendInput,
    text: &str,
    resolver: &dyn ImageResolver,
) -> anyhow::Result<(Compiled, cairn_grammar::ast::Dockerfile)> {
    let opts = compile_options(input)?;
    let df = cairn_grammar::parse(&opts.file, text)
        .map_err(|e| anyhow::anyhow!("{}", cairn_compiler::CompileError::from(e)))?;
    let compiled =
        cairn_compiler::dockerfile::compile(&df, text, &opts, resolver).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((compiled, df))
}

fn compile_options(input: &FrontendInput) -> anyhow::Result<CompileOptions> {
    // `./Dockerfile` reads better as `Dockerfile` in errors and progress.
    let shown = input.dockerfile.strip_prefix(".").unwrap_or(input.dockerfile);
    let mut opts = CompileOptions::new(&shown.display().to_string());
    opts.target = input.target.map(str::to_string);
    opts.build_args = input.build_args.iter().cloned().collect::<BTreeMap<_, _>>();
    opts.platforms = input.platforms.clone();
    opts.network = input.network;
    opts.no_cache_filter = input.no_cache_filter.to_vec();
    opts.dockerignore = read_dockerignore(input.dockerfile, input.context)?;
    for (name, spec) in input.contexts {
        let nc = match spec {
            ContextSpec::Dir(_) | ContextSpec::Url(_) => NamedContext::Local,
            ContextSpec::Stage(t) => NamedContext::Stage(t.clone()),
            ContextSpec::Image(r) if r.starts_with("oci-layout://") => NamedContext::Image(r.clone()),
            ContextSpec::Image(r) => NamedContext::Image(
                cairn_ir::reference::normalize(r).map_err(|e| anyhow::anyhow!("`--build-context {name}`: {e}"))?,
            ),
        };
        opts.contexts.insert(name.clone(), nc);
    }
    Ok(opts)
}

/// Base image configs from the local store (and `oci-layout://` contexts), pulling from
/// the image's registry what the store lacks (or, with `pull`, every tag again). A tag
/// that cannot be refreshed but is in the store is used with a warning (offline).
pub struct StoreResolver {
    pub store: Arc<Store>,
    pub registry: Option<Arc<Registry>>,
    /// `--pull`: resolve tags against the registry even when the store has them.
    pub pull: bool,
    /// References pulled in this run → their pinned form (`name:tag@sha256:…`).
    pinned: Mutex<HashMap<(String, Platform), String>>,
    /// What each reference resolved to in this run: asked again (51 stages `FROM busybox`,
    /// the linter after the compiler), it is the same image, without reading the store again.
    resolved: Mutex<HashMap<(String, Platform), Option<ImageRecord>>>,
}

impl StoreResolver {
    pub fn new(store: Arc<Store>, registry: Option<Arc<Registry>>, pull: bool) -> StoreResolver {
        StoreResolver { store, registry, pull, pinned: Mutex::default(), resolved: Mutex::default() }
    }

    /// The record of `reference`, pulled when needed; once per run.
    fn record(&self, reference: &str, platform: &Platform) -> Result<Option<ImageRecord>, ResolveError> {
        let key = (reference.to_string(), platform.clone());
        if let Some(r) = self.resolved.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(r.clone());
        }
        let r = self.record_uncached(reference, platform)?;
        self.resolved.lock().unwrap_or_else(|e| e.into_inner()).insert(key, r.clone());
        Ok(r)
    }

    fn record_uncached(&self, reference: &str, platform: &Platform) -> Result<Option<ImageRecord>, ResolveError> {
        let local = cairn_runtime::image::resolve_image_for(&self.store, reference, Some(platform))?;
        let Some(registry) =
            self.registry.as_ref().filter(|_| cairn_runtime::registry::is_registry_reference(reference))
        else {
            return Ok(local);
        };
        let by_digest = reference.contains('@');
        if local.is_some() && (by_digest || !self.pull) {
            return Ok(local);
        }
        match registry.pull(&self.store, reference, platform) {
            Ok(p) => {
                let key = (reference.to_string(), platform.clone());
                self.pinned.lock().unwrap_or_else(|e| e.into_inner()).insert(key, p.pinned);
                Ok(Some(p.record))
            }
            Err(e) if local.is_some() => {
                eprintln!("warning: cannot refresh `{reference}` ({e}); using the copy in the local store");
                Ok(local)
            }
            Err(e) => Err(Box::new(e)),
        }
    }
}

impl ImageResolver for StoreResolver {
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<Option<cairn_ir::ImageConfig>, ResolveError> {
        match self.record(reference, platform)? {
            Some(r) => Ok(Some(self.store.image_config(&r)?)),
            None => Ok(None),
        }
    }

    fn pinned(&self, reference: &str, platform: &Platform) -> Option<String> {
        let key = (reference.to_string(), platform.clone());
        self.pinned.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned()
    }

    fn digest(&self, reference: &str, platform: &Platform) -> Option<String> {
        let r = self.record(reference, platform).ok()??;
        Some(r.manifest_digest.to_string())
    }
}

/// The image-config resolver for the CLI: the local store's images, or none when the
/// store cannot be opened (compiling must work anywhere).
pub fn resolver() -> Box<dyn ImageResolver> {
    match cairn_runtime::store::Store::open(&cairn_runtime::store::default_root()) {
        Ok(s) => Box::new(StoreResolver::new(Arc::new(s), None, false)),
        Err(_) => Box::new(cairn_compiler::resolver::NoImages),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_args_take_env_for_bare_names() {
        let env = |k: &str| (k == "HOME_X").then(|| "/h".to_string());
        let got = parse_build_args(&["A=1".into(), "HOME_X".into(), "UNSET".into(), "B=x=y".into()], env).unwrap();
        assert_eq!(got, vec![("A".into(), "1".into()), ("HOME_X".into(), "/h".into()), ("B".into(), "x=y".into())]);
        assert!(parse_build_args(&["=1".into()], env).is_err());
    }

    #[test]
    fn build_contexts_parse() {
        let dir = std::env::temp_dir();
        let (n, s) = parse_build_context(&format!("src={}", dir.display())).unwrap();
        assert_eq!((n.as_str(), s), ("src", ContextSpec::Dir(dir.clone())));
        let (_, s) = parse_build_context("base=docker-image://busybox:latest").unwrap();
        assert_eq!(s, ContextSpec::Image("busybox:latest".into()));
        let (_, s) = parse_build_context(&format!("l=oci-layout://{}:v1", dir.display())).unwrap();
        let canon = dir.canonicalize().unwrap();
        assert_eq!(s, ContextSpec::Image(format!("oci-layout://{}:v1", canon.display())));
        let (_, s) = parse_build_context("x=https://example.com/a.git#v1:sub").unwrap();
        assert_eq!(s, ContextSpec::Url("https://example.com/a.git#v1:sub".into()));
        let (_, s) = parse_build_context("base=target:build").unwrap();
        assert_eq!(s, ContextSpec::Stage("build".into()));
        assert!(parse_build_context("base=target:").unwrap_err().to_string().contains("needs a stage name"));
        assert!(parse_build_context("x=ftp://example.com/a.tar").is_err());
        assert!(parse_build_context("noequals").is_err());
        let e = parse_build_context("x=/definitely/not/here").unwrap_err().to_string();
        assert!(e.contains("`/definitely/not/here` not found"), "{e}");
    }

    #[test]
    fn issue13_dockerignore_with_a_byte_order_mark() {
        let dir = std::env::temp_dir().join(format!("cairn-bom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(".dockerignore"), "\u{feff}secret.env\n# c\n*.log\n").unwrap();
        let got = read_dockerignore(&dir.join("Dockerfile"), &dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(got, vec!["secret.env".to_string(), "*.log".to_string()]);
    }
}
