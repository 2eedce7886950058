//! `cairn build`: parse the flags, compile a Dockerfile (or load `--ir FILE`), and hand the
//! Definition to the runtime's facade ([`cairn_runtime::build::run`]), which solves,
//! commits, tags and exports; then render the summary.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context};
use cairn_ir::{Definition, Platform};
use cairn_runtime::build::{self, BuildError, BuildRequest};
use cairn_runtime::export::{self, Exporter};
use cairn_runtime::solve::progress::{self, Mode, Progress};
use cairn_runtime::store;

use super::frontend::{
    self, parse_build_args, parse_build_context, ContextSpec, FrontendArgs, FrontendInput, StoreResolver,
};
use super::image_opts::parse_annotation_flag;
use super::outputs::{parse_output, OutputSpec};
use super::registry::RegistryArgs;
use super::resources::ResourceArgs;
use super::secrets::read_secrets;
use super::ssh::SshArgs;

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    #[command(flatten)]
    pub frontend: FrontendArgs,
    /// Name and optionally a tag (`name:tag`) to store the image under; repeatable
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// Do not use the cache when building
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Progress output: auto, plain, tty, rawjson (BuildKit's SolveStatus stream) or quiet
    #[arg(long, default_value = "auto", value_name = "MODE")]
    pub progress: String,
    /// Print only the image ID (the config digest, as buildx) on stdout; no progress
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Write the image ID (the config digest) to FILE
    #[arg(long = "iidfile", value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Set a label on the image (`KEY=VALUE`); repeatable
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Load the image into Docker: streams a docker-archive into `docker load` (needs a
    /// `docker` CLI on PATH)
    #[arg(long = "load")]
    pub load: bool,
    /// The network of RUN steps without `--network`: default, none or host
    #[arg(long = "network", default_value = "default", value_name = "MODE")]
    pub network: String,
    /// Do not use the cache for the steps of STAGE; repeatable
    #[arg(long = "no-cache-filter", value_name = "STAGE")]
    pub no_cache_filter: Vec<String>,
    /// Output: `type=oci|docker|local|tar,dest=PATH[,tar=true|false]`, a directory, or
    /// `-` (a tar of the root filesystem on stdout; `dest=-` does the same for any tar)
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub outputs: Vec<String>,
    /// Secret for `RUN --mount=type=secret`: `id=ID,src=PATH` (a file), `id=ID,env=VAR`
    /// (an environment variable), optionally with `type=file|env`; repeatable
    #[arg(long = "secret", value_name = "id=ID,src=PATH|env=VAR")]
    pub secrets: Vec<String>,
    /// Extra privileges for the build, as buildx spells them: `security.insecure` (lets
    /// `RUN --security=insecure` run unconfined), `network.host`; and `frontend.network`
    /// (an external frontend keeps the network); repeatable
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,
    /// Answer a request about the Dockerfile instead of building: `outline` (the build
    /// args, secrets and SSH the target uses), `targets` (the stages), `check` (the
    /// warnings; fails when there are any); `,format=json` for outline and targets
    #[arg(long = "call", value_name = "REQUEST")]
    pub call: Option<String>,
    /// Shorthand for `--call=check`
    #[arg(long = "check", conflicts_with = "call")]
    pub check: bool,
    /// Add an annotation to the image: `[TYPE[,TYPE][[PLATFORM]]:]KEY=VALUE`, TYPE one of
    /// manifest (the default), manifest-descriptor, index, index-descriptor; repeatable
    #[arg(long = "annotation", value_name = "[TYPE:]KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Write build result metadata (image and config digests) to FILE as JSON
    #[arg(long = "metadata-file", value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
    /// How many RUN steps may run at once (default: no limit, as BuildKit runs every
    /// independent step at once; hashing and compression use one thread per CPU anyway)
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    pub jobs: Option<usize>,
    /// Build a compiled IR file (from `cairn compile`) instead of a Dockerfile
    #[arg(long = "ir", value_name = "FILE")]
    pub ir: Option<PathBuf>,
    /// Build twice (the second time without cache) and fail, naming the first differing
    /// file or config field, unless both give the same image digest
    #[arg(long = "verify-reproducible")]
    pub verify_reproducible: bool,
    /// Push the image to the registry of each `--tag` (as `-o type=registry`)
    #[arg(long)]
    pub push: bool,
    /// Resolve base image tags against their registries even when the store has them
    #[arg(long)]
    pub pull: bool,
    /// Import a build cache: `type=registry,ref=REF`, `type=local,src=DIR`, or a bare
    /// REF; repeatable
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub cache_from: Vec<String>,
    /// Export the build cache: `type=registry,ref=REF`, `type=local,dest=DIR` or
    /// `type=inline` (in the image), with
    /// `mode=min|max` (the final image's results, or every step's); repeatable
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub cache_to: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub resources: ResourceArgs,
    #[command(flatten)]
    pub ssh: SshArgs,
    /// After the build, show what each layer adds and deletes and the space it wastes
    /// (as `cairn analyze`)
    #[arg(long)]
    pub analyze: bool,
    /// Write a Gantt chart of the build's steps to FILE (`.svg` or `.html`)
    #[arg(long, value_name = "FILE")]
    pub timeline: Option<PathBuf>,
    /// After the build, show why each step that ran missed the cache (as `cairn explain`)
    #[arg(long)]
    pub explain: bool,
}

fn load_ir(path: &Path) -> anyhow::Result<Definition> {
    let bytes = std::fs::read(path).with_context(|| format!("Cannot read IR file `{}`", path.display()))?;
    cairn_ir::decode_definition_auto(&bytes).with_context(|| format!("Cannot load IR file `{}`", path.display()))
}

/// SOURCE_DATE_EPOCH from `--build-arg` or the environment.
fn source_date_epoch(build_args: &[(String, String)]) -> anyhow::Result<Option<u64>> {
    let v = build_args
        .iter()
        .rev()
        .find(|(k, _)| k == "SOURCE_DATE_EPOCH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
        .filter(|v| !v.is_empty());
    v.map(|v| v.parse::<u64>().with_context(|| format!("Invalid SOURCE_DATE_EPOCH `{v}`: expected Unix seconds")))
        .transpose()
}

/// `--network` for RUN steps.
fn parse_network(s: &str) -> anyhow::Result<cairn_ir::NetworkMode> {
    Ok(match s {
        "default" => cairn_ir::NetworkMode::Default,
        "none" => cairn_ir::NetworkMode::None,
        "host" => cairn_ir::NetworkMode::Host,
        other => bail!("Invalid `--network {other}`: expected default, none or host"),
    })
}

/// `--label KEY=VALUE`.
fn parse_labels(labels: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("Invalid `--label {l}`: expected KEY=VALUE"),
        })
        .collect()
}

/// `--no-cache-filter` for an `--ir` build: every vertex of the named progress groups runs
/// even when cached (a Dockerfile's stages are filtered by the compiler, by stage name).
fn apply_no_cache_filter(def: &mut Definition, stages: &[String]) -> anyhow::Result<()> {
    for stage in stages {
        let mut found = false;
        for v in &mut def.vertices {
            if v.meta.group.as_ref().is_some_and(|g| g.name == *stage) {
                v.meta.ignore_cache = true;
                found = true;
            }
        }
        if !found {
            bail!("`--no-cache-filter {stage}`: no stage named `{stage}` is part of this build");
        }
    }
    Ok(())
}

/// The build context: a directory, or `-` (stdin: a tar of the context, plain, gzip or
/// zstd, or a Dockerfile
/// with an empty context, as `docker build -`), unpacked into a directory removed at the
/// end.
struct BuildContext {
    dir: PathBuf,
    /// The Dockerfile text, when stdin was one.
    dockerfile_text: Option<String>,
    _cleanup: Option<TempDir>,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(what: &str) -> anyhow::Result<TempDir> {
    let d = std::env::temp_dir().join(format!("cairn-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).with_context(|| format!("Cannot create `{}`", d.display()))?;
    Ok(TempDir(d))
}

fn read_context(path: &Path, dockerfile_from_stdin: bool) -> anyhow::Result<BuildContext> {
    if let Some(url) = path.to_str().filter(|s| frontend::is_url_context(s)) {
        return remote_context(url);
    }
    if path != Path::new("-") {
        if !path.is_dir() {
            bail!("Build context `{}` is not a directory", path.display());
        }
        return Ok(BuildContext { dir: path.to_path_buf(), dockerfile_text: None, _cleanup: None });
    }
    if dockerfile_from_stdin {
        bail!("`-f -` and the context `-` cannot both read stdin");
    }
    // A compressed tar (gzip, as `tar cz | docker build -`; or zstd) is decompressed.
    let stdin = std::io::BufReader::new(std::io::stdin());
    let (mut r, _) = cairn_runtime::compress::decoder(stdin).context("Cannot read the build context from stdin")?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut r, &mut bytes).context("Cannot read the build context from stdin")?;
    let tmp = temp_dir("stdin-context")?;
    let is_tar = bytes.len() >= 262 && &bytes[257..262] == b"ustar";
    if !is_tar {
        let text = String::from_utf8(bytes).context("stdin is neither a tar archive nor a Dockerfile")?;
        return Ok(BuildContext { dir: tmp.0.clone(), dockerfile_text: Some(text), _cleanup: Some(tmp) });
    }
    let mut ar = tar::Archive::new(&bytes[..]);
    ar.set_preserve_permissions(true);
    ar.unpack(&tmp.0).context("Cannot unpack the build context from stdin")?;
    Ok(BuildContext { dir: tmp.0.clone(), dockerfile_text: None, _cleanup: Some(tmp) })
}

fn is_git_url(s: &str) -> bool {
    let base = s.split('#').next().unwrap_or(s);
    !s.starts_with("http") || base.ends_with(".git")
}

/// Checks out or downloads a URL context into a directory removed at the end.
fn remote_context(url: &str) -> anyhow::Result<BuildContext> {
    let tmp = temp_dir("url-context")?;
    let dir = if is_git_url(url) {
        let cancel = AtomicBool::new(false);
        cairn_runtime::solve::checkout_context(url, &tmp.0, &cancel)
            .map_err(|e| anyhow::anyhow!("Cannot use `{url}` as the build context: {e}"))?
    } else {
        let dir = tmp.0.join("context");
        std::fs::create_dir_all(&dir).with_context(|| format!("Cannot create `{}`", dir.display()))?;
        cairn_runtime::solve::fetch_context_tarball(url, &dir).map_err(anyhow::Error::msg)?;
        dir
    };
    Ok(BuildContext { dir, dockerfile_text: None, _cleanup: Some(tmp) })
}

/// Writes `text` to stdout (a closed pipe is an error, not a panic).
fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).context("Cannot write to stdout")
}

/// `--call outline|targets`: answered from the Dockerfile's AST, nothing built.
fn answer_call(call: super::call::Call, fe: &FrontendArgs, context: &BuildContext) -> anyhow::Result<()> {
    use super::call::{outline, outline_text, targets, targets_text, CallKind};
    let (name, text) = match (&fe.file, &context.dockerfile_text) {
        (None, Some(t)) => ("Dockerfile".to_string(), t.clone()),
        (f, _) => {
            let path = f.clone().unwrap_or_else(|| context.dir.join("Dockerfile"));
            (path.display().to_string(), frontend::read_dockerfile(&path)?)
        }
    };
    let df = cairn_grammar::parse(&name, &text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let v = match call.kind {
        CallKind::Outline => outline(&df, &text, fe.target.as_deref())?,
        _ => targets(&df, &text)?,
    };
    let out = match (call.json, call.kind) {
        (true, _) => format!("{}\n", serde_json::to_string_pretty(&v)?),
        (false, CallKind::Outline) => outline_text(&v),
        (false, _) => targets_text(&v),
    };
    print_stdout(&out)
}

/// `--load`: a docker-archive streamed into `docker load`.
#[derive(Debug)]
struct DockerLoad {
    docker: PathBuf,
}

/// The `docker` CLI on PATH.
fn find_docker() -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("docker"))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

impl Exporter for DockerLoad {
    fn needs_image(&self) -> bool {
        true
    }
    fn export(
        &self,
        st: &store::Store,
        src: &export::ExportSource<'_>,
        cx: &export::ExportContext<'_>,
    ) -> Result<(), store::StoreError> {
        use std::process::{Command, Stdio};
        let failed = |m: String| store::StoreError::Invalid(m);
        if !src.platforms.is_empty() {
            return Err(failed("`--load` loads one image into docker: build one `--platform` at a time".into()));
        }
        let rec = src.image.ok_or_else(|| failed("`--load` needs an image, and none was committed".into()))?;
        let tags: Vec<String> = cx.tags.iter().map(|n| cairn_ir::reference::familiar(n)).collect();
        // docker's output goes to a file, so a chatty `docker load` cannot block on a
        // full pipe while we write its stdin, and never mixes into the progress stream.
        let log = temp_dir("docker-load").map_err(|e| failed(format!("{e:#}")))?;
        let log_path = log.0.join("out");
        let log_file =
            std::fs::File::create(&log_path).map_err(|e| failed(format!("Cannot create a log file: {e}")))?;
        let log_err = log_file.try_clone().map_err(|e| failed(e.to_string()))?;
        let mut child = Command::new(&self.docker)
            .arg("load")
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(|e| failed(format!("Cannot run `{} load`: {e}", self.docker.display())))?;
        let stdin = child.stdin.take().expect("piped");
        let fd: std::os::fd::OwnedFd = stdin.into();
        let wrote = export::export_docker_archive_stream(st, rec, &tags, std::fs::File::from(fd), "docker load");
        let status = child.wait().map_err(|e| failed(format!("`docker load`: {e}")))?;
        let out = std::fs::read_to_string(&log_path).unwrap_or_default();
        if !status.success() {
            return Err(failed(format!("`docker load` failed ({status}): {}", out.trim())));
        }
        wrote
    }
}

/// Checks every flag, compiles (or loads) the Definition, hands it to the runtime's
/// build facade and renders the result. With `--progress rawjson` a failure is reported
/// inside the stream, and `main` prints nothing more.
pub fn run(args: BuildArgs) -> anyhow::Result<()> {
    let mut mode: Mode = args.progress.parse().map_err(anyhow::Error::msg)?;
    if args.quiet {
        mode = Mode::Quiet;
    }
    // The recorder keeps the events for `--timeline` and passes them on to the renderer.
    let progress = super::timeline::Recorder::new(progress::renderer(mode));
    match build(&args, mode, &progress) {
        Err(e) if mode == Mode::RawJson => {
            progress.event(progress::Event::Failed { message: format!("{e:#}"), time: progress::now() });
            Err(anyhow::Error::new(super::Reported::from(e)))
        }
        r => r,
    }
}

fn build(args: &BuildArgs, mode: Mode, progress: &super::timeline::Recorder) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let started_at = progress::now();
    if let Some(t) = &args.timeline {
        super::timeline::check_path(t)?;
    }
    let fe = &args.frontend;
    // Several platforms are built in one solve into one image index; the first one's
    // settings apply to what has only one (`--annotation` limited to a platform).
    let platforms = frontend::parse_platforms(fe.platform.as_deref())?;
    let platforms = if platforms.is_empty() { vec![Platform::host()] } else { platforms };
    for (i, p) in platforms.iter().enumerate() {
        if platforms[..i].iter().any(|q| q.same_as(p)) {
            bail!("Invalid `--platform`: `{p}` is given twice");
        }
    }
    let platform = platforms[0].clone();
    let outputs = args.outputs.iter().map(|o| parse_output(o)).collect::<anyhow::Result<Vec<_>>>()?;
    let annotations = args.annotations.iter().map(|a| parse_annotation_flag(a)).collect::<anyhow::Result<Vec<_>>>()?;
    let cache_from =
        args.cache_from.iter().map(|c| super::cache::parse_cache_from(c)).collect::<Result<Vec<_>, _>>()?;
    let cache_to = args.cache_to.iter().map(|c| super::cache::parse_cache_to(c)).collect::<Result<Vec<_>, _>>()?;
    let mut named = fe.build_contexts.iter().map(|c| parse_build_context(c)).collect::<anyhow::Result<Vec<_>>>()?;
    // URL contexts are fetched now (a git checkout, a tarball) and kept until the build ends.
    let mut fetched = Vec::new();
    for (name, spec) in named.iter_mut() {
        if let ContextSpec::Url(url) = spec {
            let c = remote_context(url).with_context(|| format!("`--build-context {name}`"))?;
            *spec = ContextSpec::Dir(c.dir.clone());
            fetched.push(c);
        }
    }
    let build_args = parse_build_args(&fe.build_args, |k| std::env::var(k).ok())?;
    let secrets = read_secrets(&args.secrets)?;
    let network = parse_network(&args.network)?;
    let labels = parse_labels(&args.labels)?;
    let (mut allow_insecure, mut allow_network_host, mut frontend_network) = (false, false, false);
    for a in &args.allow {
        match a.as_str() {
            "security.insecure" => allow_insecure = true,
            "network.host" => allow_network_host = true,
            "frontend.network" => frontend_network = true,
            other => bail!(
                "Unknown entitlement `--allow {other}` (expected security.insecure, network.host or frontend.network)"
            ),
        }
    }
    let docker = match args.load {
        true => Some(find_docker().context(
            "`--load` needs a `docker` CLI on PATH, and there is none: write the image with `-o type=docker,dest=FILE` and load that file where Docker runs",
        )?),
        false => None,
    };
    let call = match (&args.call, args.check) {
        (Some(c), _) => Some(super::call::parse_call(c)?),
        (None, true) => Some(super::call::Call { kind: super::call::CallKind::Check, json: false }),
        (None, false) => None,
    };
    let dockerfile_stdin = fe.file.as_deref() == Some(Path::new("-"));
    let context = read_context(&fe.context, dockerfile_stdin)?;
    if call.is_some() && args.ir.is_some() {
        bail!("`--call` reads a Dockerfile: it cannot be given with `--ir`");
    }
    if let Some(c) = call.filter(|c| c.kind != super::call::CallKind::Check) {
        return answer_call(c, fe, &context);
    }
    for t in &args.tags {
        cairn_ir::reference::normalize(t).map_err(|e| anyhow::anyhow!("Invalid `--tag {t}`: {e}"))?;
    }
    let epoch = source_date_epoch(&build_args)?;
    // Image outputs: names to tag, and those to push (`--push` pushes every `--tag`).
    let mut tags = args.tags.clone();
    let mut push = if args.push { args.tags.clone() } else { Vec::new() };
    for o in &outputs {
        if let OutputSpec::Image { names, push: p, .. } = o {
            tags.extend(names.iter().cloned());
            if *p {
                push.extend(names.iter().cloned());
            }
        }
    }
    if args.push && push.is_empty() {
        bail!("`--push` needs a name to push to: give `--tag NAME`");
    }
    for t in &tags {
        cairn_ir::reference::normalize(t).map_err(|e| anyhow::anyhow!("Invalid image name `{t}`: {e}"))?;
    }
    // Started agents (for key files) live as long as the build.
    let agents = args.ssh.agents()?;
    let registry = args.registry.registry()?;
    let root = store::default_root();
    let st = Arc::new(
        store::Store::open(&root).map_err(|e| anyhow::anyhow!("Cannot open the store at `{}`: {e}", root.display()))?,
    );
    let mut lint_report = None;
    let mut def = match &args.ir {
        Some(ir) => {
            let mut def = load_ir(ir)?;
            apply_no_cache_filter(&mut def, &args.no_cache_filter)?;
            def
        }
        None => {
            let dockerfile = match (&fe.file, &context.dockerfile_text) {
                (None, Some(_)) => PathBuf::from("Dockerfile"),
                (None, None) => context.dir.join("Dockerfile"),
                (Some(f), _) => f.clone(),
            };
            // `-f -`: stdin is read once, for the compile and the checks.
            let stdin_text = match (&context.dockerfile_text, dockerfile == Path::new("-")) {
                (None, true) => Some(frontend::read_dockerfile(&dockerfile)?),
                _ => None,
            };
            let input = FrontendInput {
                dockerfile: &dockerfile,
                text: context.dockerfile_text.as_deref().or(stdin_text.as_deref()),
                network,
                context: &context.dir,
                target: fe.target.as_deref(),
                build_args: &build_args,
                platforms: platforms.clone(),
                contexts: &named,
                no_cache_filter: &args.no_cache_filter,
                args: fe,
                frontend_network,
            };
            let resolver = StoreResolver::new(st.clone(), Some(registry.clone()), args.pull);
            let (compiled, report) = match frontend::select_frontend(&input)? {
                frontend::Selected::Builtin(text) => {
                    let (compiled, df) = frontend::compile_builtin(&input, &text, &resolver)?;
                    (compiled, super::call::lint_parsed(&input, &df, text, &resolver)?)
                }
                other => (frontend::compile_selected(&input, other, &resolver)?, Default::default()),
            };
            if call.is_some() {
                let text = super::call::check_text(&report, &compiled.warnings);
                print_stdout(&text)?;
                if !compiled.warnings.is_empty() || !report.warnings.is_empty() {
                    let n = compiled.warnings.len() + report.warnings.len();
                    return Err(anyhow::Error::new(super::Reported(anyhow::anyhow!(
                        "`--call check` found {n} warning(s)"
                    ))));
                }
                return Ok(());
            }
            for w in &compiled.warnings {
                progress.event(progress::Event::Warning { message: w.clone(), time: progress::now() });
            }
            lint_report = Some(report);
            if let Some(e) = lint_report.as_ref().and_then(|r| r.violation()) {
                print_lint(lint_report.as_ref(), mode, progress);
                bail!("{e}");
            }
            cairn_compiler::passes::optimize(&compiled.graph).to_definition()
        }
    };
    if !labels.is_empty() {
        for out in &mut def.outputs {
            out.config.config.labels.get_or_insert_with(Default::default).extend(labels.iter().cloned());
        }
    }
    let mut contexts = HashMap::new();
    contexts.insert("context".to_string(), context.dir.clone());
    for (name, spec) in &named {
        if let ContextSpec::Dir(d) = spec {
            contexts.insert(name.clone(), d.clone());
        }
    }
    let cancel = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, cancel.clone()).context("Cannot install the Ctrl-C handler")?;
    }
    let mut exports: Vec<Box<dyn Exporter>> =
        outputs.iter().filter_map(|o| o.exporter(&annotations, &platform)).collect();
    // The stored (tagged, pushed) image: the last image output's options, and `--annotation`.
    let image_out = outputs.iter().rev().find_map(|o| match o {
        OutputSpec::Image { options, .. } => Some(options.clone()),
        _ => None,
    });
    let image_options = image_out.unwrap_or_default().resolve(&annotations, &platform).image;
    for o in &outputs {
        if let OutputSpec::Oci { options, .. } | OutputSpec::Image { options, .. } = o {
            let notice = |m: String| progress.event(progress::Event::Notice { message: m, time: progress::now() });
            if options.forced_oci {
                notice("`compression=zstd` has only OCI media types: `oci-mediatypes=false` is ignored".into());
            }
            if options.rewrite_timestamp && epoch.is_none() {
                notice("`rewrite-timestamp=true` has no effect without SOURCE_DATE_EPOCH".into());
            }
        }
    }
    if let Some(docker) = docker {
        exports.push(Box::new(DockerLoad { docker }));
    }
    let wants_id = mode == Mode::Quiet || args.iidfile.is_some();
    let built = build::run(BuildRequest {
        store: &st,
        definition: &def,
        platforms,
        contexts,
        secrets,
        allow_insecure,
        allow_network_host,
        resources: args.resources.resources()?,
        ssh: agents.sockets.clone(),
        no_cache: args.no_cache,
        jobs: args.jobs,
        tags: &tags,
        push: &push,
        registry: Some(registry.clone()),
        exports: &exports,
        metadata_file: args.metadata_file.as_deref(),
        verify_reproducible: args.verify_reproducible,
        source_date_epoch: epoch,
        commit_image: wants_id,
        image_options,
        progress,
        cancel: &cancel,
        notice: &|line| progress.event(progress::Event::Notice { message: line.to_string(), time: progress::now() }),
        cache_from: &cache_from,
        cache_to: &cache_to,
    })
    .map_err(|e| match e {
        // Kept as a SolveError so `main` maps Ctrl-C to exit code 130.
        BuildError::Solve(s) => anyhow::Error::from(s),
        other => anyhow::Error::from(other),
    })?;
    // The image ID, as buildx prints it for `-q` and writes to `--iidfile`: the config
    // digest, or a multi-platform build's index digest (it has no config).
    let image_id = match built.index {
        Some(index) => Some(index.to_string()),
        None => built.image.as_ref().map(|r| r.config_digest.to_string()),
    };
    if let (Some(f), Some(id)) = (&args.iidfile, &image_id) {
        cairn_runtime::output::write_file(f, id.as_bytes())
            .with_context(|| format!("Cannot write `--iidfile {}`", f.display()))?;
    }
    if mode == Mode::Quiet {
        if let Some(id) = &image_id {
            use std::io::Write;
            let mut out = std::io::stdout();
            writeln!(out, "{id}").and_then(|()| out.flush()).context("Cannot write the image ID to stdout")?;
        }
    }
    progress.event(progress::Event::Summary {
        seconds: started.elapsed().as_secs_f64(),
        executed: built.executed,
        cached: built.cached,
        digest: built.index.or(built.image.as_ref().map(|r| r.manifest_digest)).map(|d| d.to_string()),
        time: progress::now(),
    });
    if let Some(t) = &args.timeline {
        super::timeline::write(t, progress, &def, started_at, started.elapsed().as_secs_f64())?;
    }
    print_lint(lint_report.as_ref(), mode, progress);
    if let (true, Some(rec)) = (args.explain, &built.record) {
        super::explain::report(rec, mode == Mode::RawJson, progress);
    }
    if args.analyze {
        let Some(rec) = &built.image else {
            bail!("`--analyze` analyzes the built image: give it a name with `-t NAME`")
        };
        let dockerfile = args.ir.is_none().then(|| fe.dockerfile());
        let title = args.tags.first().map_or_else(|| "Image".to_string(), |t| format!("Image {t}"));
        super::analyze::print_report(&st, rec, &title, dockerfile.as_deref())?;
    }
    Ok(())
}

/// The checks' findings at the end of a build, as buildx prints them (rawjson: warnings).
fn print_lint(report: Option<&super::call::LintReport>, mode: Mode, progress: &dyn Progress) {
    let Some(lines) = report.map(|r| r.short()).filter(|l| !l.is_empty()) else { return };
    match mode {
        Mode::RawJson => {
            for message in lines {
                progress.event(progress::Event::Warning { message, time: progress::now() });
            }
        }
        _ => {
            let n = lines.len();
            eprintln!("\n {n} warning{} found:", if n == 1 { "" } else { "s" });
            for l in lines {
                eprintln!(" - {l}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::secrets::{parse_secret, SecretSource};

    #[test]
    fn outputs_parse() {
        assert_eq!(
            parse_output("type=oci,dest=out.tar").unwrap(),
            OutputSpec::Oci { dest: "out.tar".into(), tar: true, name: None, options: Default::default() }
        );
        assert_eq!(
            parse_output("type=oci,dest=dir,tar=false").unwrap(),
            OutputSpec::Oci { dest: "dir".into(), tar: false, name: None, options: Default::default() }
        );
        assert_eq!(
            parse_output("type=docker,dest=i.tar").unwrap(),
            OutputSpec::Docker { dest: "i.tar".into(), name: None }
        );
        assert_eq!(parse_output("type=local,dest=d").unwrap(), OutputSpec::Local { dest: "d".into() });
        assert_eq!(parse_output("type=tar,dest=r.tar").unwrap(), OutputSpec::Tar { dest: "r.tar".into() });
        assert_eq!(parse_output("somedir").unwrap(), OutputSpec::Local { dest: "somedir".into() });
        let e = parse_output("type=registry,dest=x").unwrap_err().to_string();
        assert!(e.contains("needs `name=REF`"), "{e}");
        assert_eq!(
            parse_output("type=registry,name=h:5000/a:1").unwrap(),
            OutputSpec::Image { names: vec!["h:5000/a:1".into()], push: true, options: Default::default() }
        );
        assert_eq!(
            parse_output("type=image,name=a:1;b:2").unwrap(),
            OutputSpec::Image { names: vec!["a:1".into(), "b:2".into()], push: false, options: Default::default() }
        );
        assert_eq!(
            parse_output("type=image,name=a,push=true").unwrap(),
            OutputSpec::Image { names: vec!["a".into()], push: true, options: Default::default() }
        );
        let e = parse_output("type=ftp,dest=x").unwrap_err().to_string();
        assert!(e.starts_with("Unsupported output type `ftp`"), "{e}");
        let e = parse_output("type=oci").unwrap_err().to_string();
        assert!(e.contains("needs `dest=PATH`"), "{e}");
        let e = parse_output("type=oci,dest=x,tar=maybe").unwrap_err().to_string();
        assert!(e.contains("`tar=maybe`"), "{e}");
        let e = parse_output("type=oci,dest=x,color=red").unwrap_err().to_string();
        assert!(e.contains("Unknown field `color`"), "{e}");
    }

    #[test]
    fn secrets_parse_as_buildx_does() {
        let env = |k: &str| k == "TOKEN";
        let file = |p: &str| SecretSource::File(PathBuf::from(p));
        let p = |s: &str| parse_secret(s, env).unwrap();
        assert_eq!(p("id=a,src=/x/y"), ("a".into(), file("/x/y")));
        assert_eq!(p("id=a,source=/x/y,type=file"), ("a".into(), file("/x/y")));
        assert_eq!(p("id=a,env=HOME"), ("a".into(), SecretSource::Env("HOME".into())));
        assert_eq!(p("type=env,id=a,src=HOME"), ("a".into(), SecretSource::Env("HOME".into())));
        assert_eq!(p("src=/run/keys/npmrc"), ("npmrc".into(), file("/run/keys/npmrc")));
        assert_eq!(p("env=GH"), ("GH".into(), SecretSource::Env("GH".into())));
        assert_eq!(p("id=TOKEN"), ("TOKEN".into(), SecretSource::Env("TOKEN".into())));
        assert_eq!(p("id=other"), ("other".into(), file("other")));
        assert_eq!(p("type=file,id=TOKEN"), ("TOKEN".into(), file("TOKEN")));
        let e = |s: &str| parse_secret(s, env).unwrap_err().to_string();
        assert!(e("id=a,src").contains("field `src` must be KEY=VALUE"), "{}", e("id=a,src"));
        assert!(e("type=ssh,id=a").starts_with("Unsupported secret type `ssh`"), "{}", e("type=ssh,id=a"));
        assert!(e("id=a,color=red").contains("Unknown field `color`"), "{}", e("id=a,color=red"));
        assert!(e("type=env").contains("`--secret type=env`"), "{}", e("type=env"));
        assert!(e("id=,src=/").contains("id is empty"), "{}", e("id=,src=/"));
    }
}
