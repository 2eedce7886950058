//! Store management: `cairn images`, `rmi`, `prune`, `du`, `load`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use cairn_runtime::inspect;
use cairn_runtime::store::{default_root, Store};

use super::inspect::reference_matches;

fn open() -> anyhow::Result<Store> {
    let root = default_root();
    Store::open(&root).map_err(|e| anyhow::anyhow!("Cannot open the store at `{}`: {e}", root.display()))
}

/// `1.2MB`-style sizes, as `docker images` prints them.
fn human(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.3}").trim_end_matches('0').trim_end_matches('.').to_string() + units[u]
    }
}

#[derive(clap::Args, Debug)]
pub struct ImagesArgs {
    /// Print only image ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Show the manifest digest of each image
    #[arg(long)]
    pub digests: bool,
    /// Only images matching: `reference=PATTERN` (docker's glob on the familiar name,
    /// `busybox`, `team/*:1.*`); repeatable, any may match
    #[arg(long = "filter", value_name = "reference=PATTERN")]
    pub filters: Vec<String>,
    /// `table` (the default) or `json` (one object per line, as docker)
    #[arg(long, value_name = "FORMAT", default_value = "table")]
    pub format: String,
}

#[derive(clap::Args, Debug)]
pub struct RmiArgs {
    /// Images to untag (`name[:tag]`)
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Also remove the cache index and cache mounts (everything rebuilds next time)
    #[arg(short, long)]
    pub all: bool,
}

#[derive(clap::Args, Debug)]
pub struct DuArgs {}

#[derive(clap::Args, Debug)]
pub struct SaveArgs {
    /// Images to save (`name[:tag]` or an image digest)
    #[arg(required = true)]
    pub images: Vec<String>,
    /// The docker-archive tarball to write
    #[arg(short, long, value_name = "FILE", required = true)]
    pub output: PathBuf,
    /// Of a multi-platform image, the platform to save (default: this machine's, else the
    /// first)
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// The docker-archive or OCI-archive tarball to import
    #[arg(short, long, value_name = "FILE")]
    pub input: PathBuf,
}

pub fn images(a: ImagesArgs) -> anyhow::Result<()> {
    let s = open()?;
    let mut patterns = Vec::new();
    for f in &a.filters {
        match f.split_once('=') {
            Some(("reference", p)) => patterns.push(p.to_string()),
            _ => bail!("Unsupported `--filter {f}`: cairn filters images by `reference=PATTERN` only"),
        }
    }
    let json = match a.format.as_str() {
        "table" | "" => false,
        "json" => true,
        other => bail!("Unsupported `--format {other}`: expected table or json"),
    };
    let list = s.list_images().map_err(|e| anyhow::anyhow!("{e}"))?;
    let list =
        list.into_iter().filter(|(n, _)| patterns.is_empty() || patterns.iter().any(|p| reference_matches(p, n)));
    if !a.quiet && !json {
        if a.digests {
            println!("{:<50} {:<72} {:<14} {:>10}", "NAME", "DIGEST", "IMAGE ID", "SIZE");
        } else {
            println!("{:<50} {:<14} {:>10}", "NAME", "IMAGE ID", "SIZE");
        }
    }
    for (name, r) in list {
        let id = &r.config_digest.hex()[..12];
        let familiar = cairn_ir::reference::familiar(&name);
        if a.quiet {
            println!("{id}");
        } else if json {
            let created = s.image_config(&r).ok().and_then(|c| c.created).and_then(|c| inspect::parse_time(&c));
            let size = super::inspect::go_size(r.size);
            let v = serde_json::json!({
                "Containers": "N/A",
                "CreatedAt": created.map(go_time).unwrap_or_default(),
                "CreatedSince": super::inspect::since(created),
                "Digest": r.manifest_digest.to_string(),
                "ID": id,
                "Repository": cairn_ir::reference::familiar(inspect::repository_of(&name)),
                "SharedSize": "N/A",
                "Size": size,
                "Tag": inspect::tag_of(&name),
                "UniqueSize": "N/A",
                "VirtualSize": size,
            });
            println!("{v}");
        } else if a.digests {
            println!("{familiar:<50} {:<72} {id:<14} {:>10}", r.manifest_digest.to_string(), human(r.size));
        } else {
            println!("{familiar:<50} {id:<14} {:>10}", human(r.size));
        }
    }
    Ok(())
}

/// Go's `time.Time.String()` in UTC: `2024-01-02 15:04:05 +0000 UTC`.
fn go_time(secs: i64) -> String {
    let t = inspect::format_time(secs);
    format!("{} {} +0000 UTC", &t[..10], &t[11..19])
}

pub fn rmi(a: RmiArgs) -> anyhow::Result<()> {
    let s = open()?;
    let mut missing = Vec::new();
    for i in &a.images {
        let removed = match s.remove_image(i) {
            Ok(r) => r,
            Err(cairn_runtime::store::StoreError::NotFound(_)) => {
                missing.push(i.as_str());
                continue;
            }
            Err(e) => bail!("{e}"),
        };
        for n in removed {
            println!("Untagged: {}", cairn_ir::reference::familiar(&n));
        }
    }
    if !missing.is_empty() {
        bail!("No such image: {}", missing.join(", "));
    }
    Ok(())
}

pub fn prune(a: PruneArgs) -> anyhow::Result<()> {
    let s = open()?;
    let r = s.prune(a.all).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "Deleted: {} layers, {} blobs, {} cache records, {} cache mounts",
        r.layers, r.blobs, r.cache_records, r.cache_mounts
    );
    println!("Total reclaimed space: {}", human(r.freed_bytes));
    Ok(())
}

pub fn du(_a: DuArgs) -> anyhow::Result<()> {
    let s = open()?;
    let u = s.disk_usage().map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{:<14} {:>8} {:>10}", "TYPE", "COUNT", "SIZE");
    for (what, n) in [("Blobs", u.blobs), ("Layers", u.layers), ("Cache mounts", u.cache_mounts)] {
        println!("{what:<14} {:>8} {:>10}", n.count, human(n.bytes));
    }
    println!("{:<14} {:>8}", "Images", u.images);
    println!("{:<14} {:>8}", "Cache records", u.cache_records);
    println!("{:<14} {:>8} {:>10}", "Total", "", human(u.total_bytes()));
    Ok(())
}

/// `cairn save`: the images as one docker-archive (`docker save` format), each with the
/// names it was asked by as RepoTags (none when asked by digest).
pub fn save(a: SaveArgs) -> anyhow::Result<()> {
    let s = open()?;
    let platform = match &a.platform {
        Some(p) => Some(
            cairn_ir::Platform::parse(p)
                .with_context(|| format!("Invalid `--platform {p}`: expected os/arch[/variant], e.g. linux/amd64"))?,
        ),
        None => None,
    };
    let mut images: Vec<(cairn_runtime::store::ImageRecord, Vec<String>)> = Vec::new();
    for r in &a.images {
        let rec = s
            .get_image_for(r, platform.as_ref())
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .with_context(|| format!("No such image `{r}` in the store (see `cairn images`)"))?;
        let tag = cairn_ir::reference::normalize(r).ok().filter(|n| !n.contains('@'));
        match images.iter_mut().find(|(i, _)| i.manifest_digest == rec.manifest_digest) {
            Some((_, tags)) => tags.extend(tag),
            None => images.push((rec, tag.into_iter().collect())),
        }
    }
    cairn_runtime::export::export_docker_archive_images(&s, &images, &a.output)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("Cannot write `{}`", a.output.display()))
}

pub fn load(a: LoadArgs) -> anyhow::Result<()> {
    let s = open()?;
    if !a.input.is_file() {
        bail!("`--input {}`: no such file", a.input.display());
    }
    let names = cairn_runtime::image::load_archive(&s, &a.input)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("Cannot load `{}`", a.input.display()))?;
    for n in names {
        println!("Loaded image: {}", cairn_ir::reference::familiar(&n));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_sizes() {
        assert_eq!(super::human(999), "999B");
        assert_eq!(super::human(1_500_000), "1.5MB");
        assert_eq!(super::human(2_000_000_000), "2GB");
    }
}
