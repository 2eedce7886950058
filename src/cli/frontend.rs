//! What `cairn compile` and `cairn build` share: reading the Dockerfile and its
//! `.dockerignore`, turning flags into [`CompileOptions`], compiling and optimizing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use cairn_compiler::dockerfile::{CompileOptions, Compiled, NamedContext};
use cairn_compiler::resolver::{ImageResolver, ResolveError};
use cairn_ir::Platform;

use super::build::ContextSpec;

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
                return Ok(text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string)
                    .collect())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("Cannot read `{}`", c.display())),
        }
    }
    Ok(Vec::new())
}

pub struct FrontendInput<'a> {
    pub dockerfile: &'a Path,
    pub context: &'a Path,
    pub target: Option<&'a str>,
    pub build_args: &'a [(String, String)],
    pub platforms: Vec<Platform>,
    pub contexts: &'a [(String, ContextSpec)],
}

/// Reads and compiles the Dockerfile; warnings go to stderr.
pub fn compile(input: &FrontendInput, resolver: &dyn ImageResolver) -> anyhow::Result<Compiled> {
    let text = std::fs::read_to_string(input.dockerfile)
        .with_context(|| format!("Cannot read Dockerfile `{}`", input.dockerfile.display()))?;
    // `./Dockerfile` reads better as `Dockerfile` in errors and progress.
    let shown = input.dockerfile.strip_prefix(".").unwrap_or(input.dockerfile);
    let mut opts = CompileOptions::new(&shown.display().to_string());
    opts.target = input.target.map(str::to_string);
    opts.build_args = input.build_args.iter().cloned().collect::<BTreeMap<_, _>>();
    opts.platforms = input.platforms.clone();
    opts.dockerignore = read_dockerignore(input.dockerfile, input.context)?;
    for (name, spec) in input.contexts {
        let nc = match spec {
            ContextSpec::Dir(_) => NamedContext::Local,
            ContextSpec::Image(r) if r.starts_with("oci-layout://") => NamedContext::Image(r.clone()),
            ContextSpec::Image(r) => NamedContext::Image(
                cairn_ir::reference::normalize(r).map_err(|e| anyhow::anyhow!("`--build-context {name}`: {e}"))?,
            ),
        };
        opts.contexts.insert(name.clone(), nc);
    }
    let compiled = cairn_compiler::compile_dockerfile(&text, &opts, resolver).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in &compiled.warnings {
        eprintln!("warning: {w}");
    }
    Ok(compiled)
}

/// Base image configs from the local store (and `oci-layout://` contexts).
pub struct StoreResolver(pub std::sync::Arc<cairn_runtime::store::Store>);

impl ImageResolver for StoreResolver {
    fn resolve(
        &self,
        reference: &str,
        _platform: &cairn_ir::Platform,
    ) -> Result<Option<cairn_ir::ImageConfig>, ResolveError> {
        let rec = cairn_runtime::oci::resolve_image(&self.0, reference)?;
        match rec {
            Some(r) => Ok(Some(self.0.image_config(&r)?)),
            None => Ok(None),
        }
    }
}

/// The image-config resolver for the CLI: the local store's images, or none when the
/// store cannot be opened (compiling must work anywhere).
pub fn resolver() -> Box<dyn ImageResolver> {
    match cairn_runtime::store::Store::open(&cairn_runtime::store::default_root()) {
        Ok(s) => Box::new(StoreResolver(std::sync::Arc::new(s))),
        Err(_) => Box::new(cairn_compiler::resolver::NoImages),
    }
}
