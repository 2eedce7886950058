//! `--secret` as buildx spells it, read into memory (never the store).

use std::path::PathBuf;

use anyhow::{bail, Context};
use cairn_runtime::solve::secrets::Secrets;

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
pub fn read_secrets(specs: &[String]) -> anyhow::Result<Secrets> {
    let mut out = Secrets::default();
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
