//! `--cache-to` and `--cache-from` of `cairn build`, spelled as buildx spells them, and
//! `cairn cache export|import DIR`; the runtime's `cache` module does the work.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use cairn_runtime::cache::{CacheExport, CacheLocation, CacheMode};

/// `KEY=VALUE,…` fields of one flag value.
fn fields<'a>(flag: &str, spec: &'a str) -> anyhow::Result<BTreeMap<&'a str, &'a str>> {
    let mut kv = BTreeMap::new();
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .with_context(|| format!("Invalid `{flag} {spec}`: field `{part}` must be KEY=VALUE"))?;
        kv.insert(k.trim(), v.trim());
    }
    Ok(kv)
}

fn unsupported(flag: &str, spec: &str, kind: &str) -> anyhow::Error {
    let expected = if flag == "--cache-to" { "registry, local or inline" } else { "registry or local" };
    let hint = if kind == "inline" { "; an image with inline cache is read with `--cache-from IMAGE`" } else { "" };
    anyhow::anyhow!("Unsupported cache type `{kind}` in `{flag} {spec}` (expected {expected}){hint}")
}

/// `--cache-from type=registry,ref=REF`, `type=local,src=DIR`, or a bare REF.
pub fn parse_cache_from(spec: &str) -> anyhow::Result<CacheLocation> {
    let flag = "--cache-from";
    if !spec.contains('=') {
        if spec.is_empty() {
            bail!("Empty `{flag}`");
        }
        return Ok(CacheLocation::Registry(spec.to_string()));
    }
    let mut kv = fields(flag, spec)?;
    let loc = match kv.remove("type").unwrap_or("registry") {
        "registry" => CacheLocation::Registry(
            kv.remove("ref").with_context(|| format!("`{flag} {spec}` needs `ref=REF`"))?.to_string(),
        ),
        "local" => CacheLocation::Local(PathBuf::from(
            kv.remove("src").with_context(|| format!("`{flag} {spec}` needs `src=DIR`"))?,
        )),
        other => return Err(unsupported(flag, spec, other)),
    };
    kv.remove("digest");
    if let Some(k) = kv.keys().next() {
        bail!("Unknown field `{k}` in `{flag} {spec}`");
    }
    Ok(loc)
}

/// `--cache-to type=registry,ref=REF[,mode=min|max]`, `type=local,dest=DIR[,mode=…]` or
/// `type=inline` (`mode=min` only, as in BuildKit), with `ignore-error=true|false`,
/// `cache-mounts=true|false` (cairn's: the cache mounts' contents travel too) and
/// `compression=gzip`.
pub fn parse_cache_to(spec: &str) -> anyhow::Result<CacheExport> {
    let flag = "--cache-to";
    let mut kv = fields(flag, spec)?;
    let location = match kv.remove("type").with_context(|| format!("`{flag} {spec}` has no `type=`"))? {
        "registry" => CacheLocation::Registry(
            kv.remove("ref").with_context(|| format!("`{flag} {spec}` needs `ref=REF`"))?.to_string(),
        ),
        "local" => CacheLocation::Local(PathBuf::from(
            kv.remove("dest").with_context(|| format!("`{flag} {spec}` needs `dest=DIR`"))?,
        )),
        "inline" => CacheLocation::Inline,
        other => return Err(unsupported(flag, spec, other)),
    };
    let mode = match kv.remove("mode") {
        None | Some("min") => CacheMode::Min,
        Some("max") if location == CacheLocation::Inline => {
            bail!("`{flag} {spec}`: inline cache is `mode=min` only (the image holds only its own layers)")
        }
        Some("max") => CacheMode::Max,
        Some(other) => bail!("Invalid `mode={other}` in `{flag} {spec}`: expected min or max"),
    };
    let mut flag_bool = |name: &str| match kv.remove(name) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(anyhow::anyhow!("Invalid `{name}={other}` in `{flag} {spec}`: expected true or false")),
    };
    let ignore_error = flag_bool("ignore-error")?;
    let cache_mounts = flag_bool("cache-mounts")?;
    if cache_mounts && location == CacheLocation::Inline {
        bail!("`{flag} {spec}`: cache mounts cannot travel inline (use type=registry or type=local)");
    }
    match kv.remove("compression") {
        None | Some("gzip") => {}
        Some(other) => bail!("Unsupported `compression={other}` in `{flag} {spec}` (cairn writes gzip)"),
    }
    if let Some(k) = kv.keys().next() {
        bail!("Unknown field `{k}` in `{flag} {spec}`");
    }
    Ok(CacheExport { location, mode, ignore_error, cache_mounts })
}

/// `cairn cache …`.
#[derive(clap::Subcommand, Debug)]
pub enum CacheCommand {
    /// Write the contents of every cache mount to DIR (a new OCI layout directory)
    Export {
        /// The directory to write (must not exist, or be empty)
        dir: PathBuf,
    },
    /// Seed cache mounts from DIR; ids the store already has are kept as they are
    Import {
        /// A directory written by `cairn cache export`
        dir: PathBuf,
    },
}

pub fn run(c: CacheCommand) -> anyhow::Result<()> {
    let root = cairn_runtime::store::default_root();
    let store = cairn_runtime::store::Store::open(&root)
        .map_err(|e| anyhow::anyhow!("Cannot open the store at `{}`: {e}", root.display()))?;
    match c {
        CacheCommand::Export { dir } => {
            let r = cairn_runtime::cache::export_mounts(&store, &dir)
                .with_context(|| format!("Cannot export the cache mounts to `{}`", dir.display()))?;
            println!("Exported {} cache mounts to {}", r.moved, dir.display());
        }
        CacheCommand::Import { dir } => {
            let r = cairn_runtime::cache::import_mounts(&store, &dir)
                .with_context(|| format!("Cannot import the cache mounts of `{}`", dir.display()))?;
            println!("Imported {} cache mounts ({} already in the store, kept)", r.moved, r.kept);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_flags_parse_as_buildx_spells_them() {
        let reg = |r: &str| CacheLocation::Registry(r.into());
        assert_eq!(parse_cache_from("h:5000/c:main").unwrap(), reg("h:5000/c:main"));
        assert_eq!(parse_cache_from("type=registry,ref=h/c").unwrap(), reg("h/c"));
        assert_eq!(parse_cache_from("type=local,src=/d").unwrap(), CacheLocation::Local("/d".into()));
        assert_eq!(
            parse_cache_to("type=registry,ref=h/c,mode=max").unwrap(),
            CacheExport { location: reg("h/c"), mode: CacheMode::Max, ignore_error: false, cache_mounts: false }
        );
        assert_eq!(
            parse_cache_to("type=local,dest=/d,ignore-error=true").unwrap(),
            CacheExport {
                location: CacheLocation::Local("/d".into()),
                mode: CacheMode::Min,
                ignore_error: true,
                cache_mounts: false
            }
        );
        let e = |r: anyhow::Result<CacheExport>| r.unwrap_err().to_string();
        assert!(e(parse_cache_to("type=gha")).starts_with("Unsupported cache type `gha`"));
        assert!(e(parse_cache_to("type=registry")).contains("needs `ref=REF`"));
        assert!(e(parse_cache_to("type=local,dest=d,mode=all")).contains("`mode=all`"));
        assert!(e(parse_cache_to("type=local,dest=d,color=red")).contains("Unknown field `color`"));
        assert!(e(parse_cache_to("ref=x")).contains("has no `type=`"));
        assert_eq!(parse_cache_to("type=inline").unwrap().location, CacheLocation::Inline);
        assert!(parse_cache_to("type=local,dest=d,cache-mounts=true").unwrap().cache_mounts);
        assert!(e(parse_cache_to("type=inline,cache-mounts=true")).contains("cannot travel inline"));
        assert!(e(parse_cache_to("type=local,dest=d,cache-mounts=yes")).contains("`cache-mounts=yes`"));
        assert!(e(parse_cache_to("type=inline,mode=max")).contains("`mode=min` only"));
        assert!(parse_cache_from("type=inline").unwrap_err().to_string().contains("`--cache-from IMAGE`"));
        assert!(parse_cache_from("type=local").unwrap_err().to_string().contains("needs `src=DIR`"));
    }
}
