//! `cairn build`: compile a Dockerfile (or load `--ir FILE`), execute it with the runtime
//! and export the image (local store tags, OCI layout, docker-archive, rootfs dir or tar).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context};
use cairn_ir::{Definition, Platform};
use cairn_runtime::solve::progress::Mode;
use cairn_runtime::{image, oci, solve, store};

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// Name of the Dockerfile (default: `PATH/Dockerfile`)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Name and optionally a tag (`name:tag`) to store the image under; repeatable
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// Build stage to build (default: the last one)
    #[arg(long)]
    pub target: Option<String>,
    /// Build-time variable `KEY=VALUE`, or `KEY` to take it from the environment
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub build_args: Vec<String>,
    /// Target platform `os/arch[/variant]` (default: this machine's)
    #[arg(long)]
    pub platform: Option<String>,
    /// Do not use the cache when building
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Progress output: auto, plain, tty, rawjson or quiet
    #[arg(long, default_value = "auto", value_name = "MODE")]
    pub progress: String,
    /// Output: `type=oci|docker|local|tar,dest=PATH[,tar=true|false]`, or a directory
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub outputs: Vec<String>,
    /// Extra build context `NAME=DIR`, `NAME=oci-layout://PATH[:TAG|@DIGEST]` or
    /// `NAME=docker-image://REF`
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub build_contexts: Vec<String>,
    /// Secret for `RUN --mount=type=secret`: `id=ID,src=PATH` (a file), `id=ID,env=VAR`
    /// (an environment variable), optionally with `type=file|env`; repeatable
    #[arg(long = "secret", value_name = "id=ID,src=PATH|env=VAR")]
    pub secrets: Vec<String>,
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
    /// The build context directory
    #[arg(default_value = ".")]
    pub path: PathBuf,
}

/// One `-o` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSpec {
    Oci { dest: PathBuf, tar: bool, name: Option<String> },
    Docker { dest: PathBuf, name: Option<String> },
    Local { dest: PathBuf },
    Tar { dest: PathBuf },
}

/// Parses `type=…,dest=…[,tar=…][,name=…]` (a bare path means `type=local,dest=PATH`).
pub fn parse_output(spec: &str) -> anyhow::Result<OutputSpec> {
    if !spec.contains('=') {
        if spec.is_empty() {
            bail!("Empty `--output`");
        }
        return Ok(OutputSpec::Local { dest: PathBuf::from(spec) });
    }
    let mut kv: HashMap<&str, &str> = HashMap::new();
    for part in spec.split(',') {
        let (k, v) = part
            .split_once('=')
            .with_context(|| format!("Invalid `--output` field `{part}` in `{spec}`: expected KEY=VALUE"))?;
        kv.insert(k.trim(), v.trim());
    }
    let kind = kv.remove("type").with_context(|| format!("`--output {spec}` has no `type=`"))?;
    let dest = kv.remove("dest").map(PathBuf::from);
    let need_dest = || dest.clone().with_context(|| format!("`--output {spec}` needs `dest=PATH`"));
    let name = kv.remove("name").map(str::to_string);
    let out = match kind {
        "oci" => {
            let tar = match kv.remove("tar") {
                None | Some("true") => true,
                Some("false") => false,
                Some(other) => bail!("Invalid `tar={other}` in `--output {spec}`: expected true or false"),
            };
            OutputSpec::Oci { dest: need_dest()?, tar, name }
        }
        "docker" => OutputSpec::Docker { dest: need_dest()?, name },
        "local" => OutputSpec::Local { dest: need_dest()? },
        "tar" => OutputSpec::Tar { dest: need_dest()? },
        other => bail!("Unsupported output type `{other}` in `--output {spec}` (expected oci, docker, local or tar)"),
    };
    if let Some(k) = kv.keys().next() {
        bail!("Unknown field `{k}` in `--output {spec}`");
    }
    Ok(out)
}

/// A `--build-context` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextSpec {
    Dir(PathBuf),
    /// `oci-layout://…` or a store reference (from `docker-image://`), as an image source
    /// reference.
    Image(String),
}

pub fn parse_build_context(s: &str) -> anyhow::Result<(String, ContextSpec)> {
    let (name, value) =
        s.split_once('=').with_context(|| format!("Invalid `--build-context {s}`: expected NAME=VALUE"))?;
    if name.is_empty() || value.is_empty() {
        bail!("Invalid `--build-context {s}`: expected NAME=VALUE");
    }
    let spec = if value.starts_with("oci-layout://") {
        let (path, r) = oci::parse_oci_layout_ref(value);
        let abs = std::fs::canonicalize(&path)
            .with_context(|| format!("`--build-context {name}`: OCI layout `{}` not found", path.display()))?;
        let mut reference = format!("oci-layout://{}", abs.display());
        if let Some(r) = r {
            reference.push(if r.starts_with("sha256:") { '@' } else { ':' });
            reference.push_str(&r);
        }
        ContextSpec::Image(reference)
    } else if let Some(r) = value.strip_prefix("docker-image://") {
        ContextSpec::Image(r.to_string())
    } else if value.contains("://") {
        bail!(
            "Unsupported `--build-context {s}`: only directories, `oci-layout://` and `docker-image://` are supported"
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

/// Where a `--secret` value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// The largest secret accepted (BuildKit's limit): secrets travel in memory.
const MAX_SECRET_BYTES: u64 = 500 * 1024;

/// Parses `--secret` as buildx does: `[type=file|env,]id=ID[,src=PATH][,env=VAR]`. With
/// neither `src` nor `env`, `ID` names an environment variable when one is set and a file
/// otherwise (BuildKit's rule); without `id`, it is the variable's name or the file's base
/// name.
pub fn parse_secret(spec: &str, has_env: impl Fn(&str) -> bool) -> anyhow::Result<(String, SecretSource)> {
    let (mut id, mut src, mut env, mut typ) = (None, None, None, None);
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = field
            .split_once('=')
            .with_context(|| format!("Invalid `--secret {spec}`: field `{field}` must be KEY=VALUE"))?;
        match k.trim().to_ascii_lowercase().as_str() {
            "type" => match v {
                "file" | "env" => typ = Some(v.to_string()),
                other => bail!("Unsupported secret type `{other}` in `--secret {spec}` (expected file or env)"),
            },
            "id" => id = Some(v.to_string()),
            "src" | "source" => src = Some(v.to_string()),
            "env" => env = Some(v.to_string()),
            other => bail!("Unknown field `{other}` in `--secret {spec}` (expected type, id, src or env)"),
        }
    }
    if typ.as_deref() == Some("env") && env.is_none() {
        env = src.take();
    }
    let source = match (env, src) {
        (Some(e), _) => SecretSource::Env(e),
        (None, Some(p)) => SecretSource::File(PathBuf::from(p)),
        (None, None) => {
            let Some(i) = &id else { bail!("Invalid `--secret {spec}`: expected `id=ID,src=PATH` or `id=ID,env=VAR`") };
            if typ.as_deref() != Some("file") && has_env(i) {
                SecretSource::Env(i.clone())
            } else {
                SecretSource::File(PathBuf::from(i))
            }
        }
    };
    let id = match id {
        Some(i) => i,
        None => match &source {
            SecretSource::Env(e) => e.clone(),
            SecretSource::File(p) => p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        },
    };
    if id.is_empty() {
        bail!("Invalid `--secret {spec}`: the secret id is empty");
    }
    Ok((id, source))
}

/// Reads every `--secret` into memory.
fn read_secrets(specs: &[String]) -> anyhow::Result<solve::secrets::Secrets> {
    let mut out = solve::secrets::Secrets::default();
    for spec in specs {
        let (id, source) = parse_secret(spec, |k| std::env::var_os(k).is_some())?;
        let value = match &source {
            SecretSource::Env(var) => std::env::var_os(var)
                .with_context(|| format!("`--secret {spec}`: environment variable `{var}` is not set"))?
                .into_encoded_bytes(),
            SecretSource::File(path) => {
                let md = std::fs::metadata(path)
                    .with_context(|| format!("`--secret {spec}`: cannot read secret file `{}`", path.display()))?;
                if !md.is_file() {
                    bail!("`--secret {spec}`: `{}` is not a regular file", path.display());
                }
                if md.len() > MAX_SECRET_BYTES {
                    bail!("`--secret {spec}`: secret `{id}` is {} bytes, more than the 500 KiB limit", md.len());
                }
                std::fs::read(path)
                    .with_context(|| format!("`--secret {spec}`: cannot read secret file `{}`", path.display()))?
            }
        };
        if value.len() as u64 > MAX_SECRET_BYTES {
            bail!("`--secret {spec}`: secret `{id}` is {} bytes, more than the 500 KiB limit", value.len());
        }
        out.insert(id, value);
    }
    Ok(out)
}

fn load_ir(path: &Path) -> anyhow::Result<Definition> {
    let bytes = std::fs::read(path).with_context(|| format!("Cannot read IR file `{}`", path.display()))?;
    cairn_ir::decode_definition(&bytes).with_context(|| format!("Cannot load IR file `{}`", path.display()))
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

/// Checks every flag, compiles (or loads) the Definition, solves it and exports.
pub fn run(args: BuildArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mode: Mode = args.progress.parse().map_err(anyhow::Error::msg)?;
    let platform = match &args.platform {
        None => Platform::host(),
        Some(p) => Platform::parse(p)
            .with_context(|| format!("Invalid `--platform {p}`: expected os/arch[/variant], e.g. linux/amd64"))?,
    };
    let outputs = args.outputs.iter().map(|o| parse_output(o)).collect::<anyhow::Result<Vec<_>>>()?;
    let named = args.build_contexts.iter().map(|c| parse_build_context(c)).collect::<anyhow::Result<Vec<_>>>()?;
    let build_args = parse_build_args(&args.build_args, |k| std::env::var(k).ok())?;
    let secrets = read_secrets(&args.secrets)?;
    if !args.path.is_dir() {
        bail!("Build context `{}` is not a directory", args.path.display());
    }
    for t in &args.tags {
        cairn_ir::reference::normalize(t).map_err(|e| anyhow::anyhow!("Invalid `--tag {t}`: {e}"))?;
    }
    let epoch = source_date_epoch(&build_args)?;
    let commit_opts = image::CommitOptions { source_date_epoch: epoch, ..Default::default() };
    let root = store::default_root();
    let st = Arc::new(
        store::Store::open(&root).map_err(|e| anyhow::anyhow!("Cannot open the store at `{}`: {e}", root.display()))?,
    );
    let def = match &args.ir {
        Some(ir) => load_ir(ir)?,
        None => {
            let dockerfile = args.file.clone().unwrap_or_else(|| args.path.join("Dockerfile"));
            let input = super::frontend::FrontendInput {
                dockerfile: &dockerfile,
                context: &args.path,
                target: args.target.as_deref(),
                build_args: &build_args,
                platforms: vec![platform.clone()],
                contexts: &named,
            };
            let resolver = super::frontend::StoreResolver(st.clone());
            let compiled = super::frontend::compile(&input, &resolver)?;
            cairn_compiler::passes::optimize(&compiled.graph).to_definition()
        }
    };
    solve::pick_output(&def, &platform)?;
    let mut contexts = HashMap::new();
    contexts.insert("context".to_string(), args.path.clone());
    for (name, spec) in &named {
        if let ContextSpec::Dir(d) = spec {
            contexts.insert(name.clone(), d.clone());
        }
    }
    let cancel = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, cancel.clone()).context("Cannot install the Ctrl-C handler")?;
    }
    let progress = solve::progress::renderer(mode);
    let backend = solve::runtime_backend::RuntimeBackend::new(st.clone()).map_err(anyhow::Error::msg)?;
    let opts = solve::SolveOptions {
        platform: platform.clone(),
        no_cache: args.no_cache,
        jobs: args.jobs.unwrap_or(usize::MAX).max(1),
        contexts,
        root: st.root().to_path_buf(),
        secrets,
    };
    let solved = solve::solve(&def, &backend, &opts, &*progress, &cancel)?;
    // Packing layers costs time: only when something asks for an image.
    let wants_image = !args.tags.is_empty()
        || args.metadata_file.is_some()
        || args.verify_reproducible
        || outputs.iter().any(|o| matches!(o, OutputSpec::Oci { .. } | OutputSpec::Docker { .. }));
    let mut digest = None;
    if wants_image {
        let config = &def.outputs[solved.output].config;
        let rec = image::commit_image(&st, &solved.layers, config, &commit_opts)
            .map_err(|e| anyhow::anyhow!("Cannot write the image: {e}"))?;
        if args.verify_reproducible {
            verify_reproducible(&def, &backend, &opts, &*progress, &cancel, config, &commit_opts, &rec)?;
        }
        let mut names = Vec::new();
        for t in &args.tags {
            names.push(st.tag_image(t, &rec).map_err(|e| anyhow::anyhow!("{e}"))?);
        }
        for o in &outputs {
            match o {
                OutputSpec::Oci { dest, tar, name } => {
                    let n = name.clone().or_else(|| names.first().cloned());
                    oci::export_oci_layout(&st, &rec, dest, *tar, n.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))?
                }
                OutputSpec::Docker { dest, name } => {
                    let mut tags: Vec<String> = names.iter().map(|n| cairn_ir::reference::familiar(n)).collect();
                    if let Some(n) = name {
                        tags.insert(0, n.clone());
                    }
                    oci::export_docker_archive(&st, &rec, dest, &tags).map_err(|e| anyhow::anyhow!("{e}"))?
                }
                _ => {}
            }
        }
        if let Some(f) = &args.metadata_file {
            let meta = serde_json::json!({
                "containerimage.digest": rec.manifest_digest.to_string(),
                "containerimage.config.digest": rec.config_digest.to_string(),
                "image.name": names.join(","),
            });
            super::compile::write_atomic(f, serde_json::to_string_pretty(&meta)?.as_bytes())?;
        }
        digest = Some(rec.manifest_digest.to_string());
    }
    let ids: Vec<String> = solved.layers.iter().map(|l| l.to_string()).collect();
    for o in &outputs {
        match o {
            OutputSpec::Local { dest } => {
                oci::export_rootfs_dir(&st, &ids, dest).map_err(|e| anyhow::anyhow!("{e}"))?
            }
            OutputSpec::Tar { dest } => {
                oci::export_rootfs_tar(&st, &ids, dest, epoch).map_err(|e| anyhow::anyhow!("{e}"))?
            }
            _ => {}
        }
    }
    if mode == Mode::Quiet {
        if let Some(d) = &digest {
            println!("{d}");
        }
    }
    progress.event(solve::progress::Event::Summary {
        seconds: started.elapsed().as_secs_f64(),
        executed: solved.executed,
        cached: solved.cached,
        digest,
        time: solve::progress::now(),
    });
    Ok(())
}

/// `--verify-reproducible`: solves again without cache, commits, compares with `first`.
#[allow(clippy::too_many_arguments)]
fn verify_reproducible(
    def: &Definition,
    backend: &solve::runtime_backend::RuntimeBackend,
    opts: &solve::SolveOptions,
    progress: &dyn solve::progress::Progress,
    cancel: &AtomicBool,
    config: &cairn_ir::ImageConfig,
    commit_opts: &image::CommitOptions,
    first: &image::ImageRecord,
) -> anyhow::Result<()> {
    eprintln!("Verifying reproducibility: building again without the cache");
    let again = solve::SolveOptions { no_cache: true, ..opts.clone() };
    let solved = solve::solve(def, backend, &again, progress, cancel)?;
    let st = &backend.store;
    let second = image::commit_image(st, &solved.layers, config, commit_opts)
        .map_err(|e| anyhow::anyhow!("Cannot write the image of the second build: {e}"))?;
    match cairn_runtime::verify::first_difference(st, first, &second).map_err(|e| anyhow::anyhow!("{e}"))? {
        None => {
            eprintln!("Reproducible: both builds gave image {}", first.manifest_digest);
            Ok(())
        }
        Some(why) => {
            let hint = if commit_opts.source_date_epoch.is_none() {
                " (SOURCE_DATE_EPOCH is not set: timestamps vary from build to build)"
            } else {
                ""
            };
            bail!(
                "The build is not reproducible: image {} then {}; first difference: {why}{hint}",
                first.manifest_digest,
                second.manifest_digest
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_parse() {
        assert_eq!(
            parse_output("type=oci,dest=out.tar").unwrap(),
            OutputSpec::Oci { dest: "out.tar".into(), tar: true, name: None }
        );
        assert_eq!(
            parse_output("type=oci,dest=dir,tar=false").unwrap(),
            OutputSpec::Oci { dest: "dir".into(), tar: false, name: None }
        );
        assert_eq!(
            parse_output("type=docker,dest=i.tar").unwrap(),
            OutputSpec::Docker { dest: "i.tar".into(), name: None }
        );
        assert_eq!(parse_output("type=local,dest=d").unwrap(), OutputSpec::Local { dest: "d".into() });
        assert_eq!(parse_output("type=tar,dest=r.tar").unwrap(), OutputSpec::Tar { dest: "r.tar".into() });
        assert_eq!(parse_output("somedir").unwrap(), OutputSpec::Local { dest: "somedir".into() });
        let e = parse_output("type=registry,dest=x").unwrap_err().to_string();
        assert!(e.starts_with("Unsupported output type `registry`"), "{e}");
        let e = parse_output("type=oci").unwrap_err().to_string();
        assert!(e.contains("needs `dest=PATH`"), "{e}");
        let e = parse_output("type=oci,dest=x,tar=maybe").unwrap_err().to_string();
        assert!(e.contains("`tar=maybe`"), "{e}");
        let e = parse_output("type=oci,dest=x,color=red").unwrap_err().to_string();
        assert!(e.contains("Unknown field `color`"), "{e}");
    }

    #[test]
    fn build_args_take_env_for_bare_names() {
        let env = |k: &str| (k == "HOME_X").then(|| "/h".to_string());
        let got = parse_build_args(&["A=1".into(), "HOME_X".into(), "UNSET".into(), "B=x=y".into()], env).unwrap();
        assert_eq!(got, vec![("A".into(), "1".into()), ("HOME_X".into(), "/h".into()), ("B".into(), "x=y".into())]);
        assert!(parse_build_args(&["=1".into()], env).is_err());
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
        assert!(parse_build_context("x=https://example.com/a.git").is_err());
        assert!(parse_build_context("noequals").is_err());
        let e = parse_build_context("x=/definitely/not/here").unwrap_err().to_string();
        assert!(e.contains("`/definitely/not/here` not found"), "{e}");
    }
}
