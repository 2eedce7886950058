//! The image exporter options of `-o type=oci|docker|image|registry,…` and `--annotation`,
//! as buildx spells them: `compression=gzip|zstd|uncompressed`, `compression-level=N`,
//! `force-compression=true`, `oci-mediatypes=true|false`, `rewrite-timestamp=true`,
//! `annotation[-TYPE][[PLATFORM]].KEY=V`; `--annotation [TYPE[,TYPE][[PLATFORM]]:]KEY=V`.

use std::collections::HashMap;

use anyhow::{bail, Context};
use cairn_ir::Platform;
use cairn_runtime::compress::Compression;
use cairn_runtime::export::ImageExport;

/// Where an annotation goes (buildx's annotation types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnotationKind {
    Manifest,
    ManifestDescriptor,
    Index,
    IndexDescriptor,
}

impl AnnotationKind {
    fn parse(s: &str) -> Option<AnnotationKind> {
        Some(match s {
            "manifest" => AnnotationKind::Manifest,
            "manifest-descriptor" => AnnotationKind::ManifestDescriptor,
            "index" => AnnotationKind::Index,
            "index-descriptor" => AnnotationKind::IndexDescriptor,
            _ => return None,
        })
    }
}

/// One annotation: its kinds, the platform it is limited to, key and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub kinds: Vec<AnnotationKind>,
    pub platform: Option<Platform>,
    pub key: String,
    pub value: String,
}

/// `TYPE[,TYPE][[PLATFORM]]` (either part may be empty: the manifest, any platform).
fn parse_selector(sel: &str, what: &str) -> anyhow::Result<(Vec<AnnotationKind>, Option<Platform>)> {
    let (types, platform) = match sel.split_once('[') {
        Some((t, rest)) => {
            let p = rest.strip_suffix(']').with_context(|| format!("Invalid {what}: `[` without `]`"))?;
            let p = Platform::parse(p)
                .with_context(|| format!("Invalid {what}: `{p}` is not a platform (os/arch[/variant])"))?;
            (t, Some(p))
        }
        None => (sel, None),
    };
    let mut kinds = Vec::new();
    for t in types.split(',').filter(|t| !t.is_empty()) {
        kinds.push(AnnotationKind::parse(t).with_context(|| {
            format!("Invalid {what}: unknown annotation type `{t}` (expected manifest, manifest-descriptor, index or index-descriptor)")
        })?);
    }
    if kinds.is_empty() {
        kinds.push(AnnotationKind::Manifest);
    }
    Ok((kinds, platform))
}

/// `--annotation [TYPE[,TYPE][[PLATFORM]]:]KEY=VALUE`.
pub fn parse_annotation_flag(s: &str) -> anyhow::Result<Annotation> {
    let what = format!("`--annotation {s}`");
    let (head, value) = s.split_once('=').with_context(|| format!("Invalid {what}: expected KEY=VALUE"))?;
    // A type prefix ends at the first `:` outside the platform brackets (keys may hold
    // `:` only after that, e.g. `org.example:x` needs a prefix to be read as a key).
    let (sel, key) = match head.find(':') {
        Some(i) if sel_like(&head[..i]) => (&head[..i], &head[i + 1..]),
        _ => ("", head),
    };
    if key.is_empty() {
        bail!("Invalid {what}: the key is empty");
    }
    let (kinds, platform) = parse_selector(sel, &what)?;
    Ok(Annotation { kinds, platform, key: key.to_string(), value: value.to_string() })
}

/// Whether `s` reads as an annotation selector (`manifest`, `index[linux/amd64]`, …).
fn sel_like(s: &str) -> bool {
    let types = s.split('[').next().unwrap_or("");
    types.split(',').all(|t| AnnotationKind::parse(t).is_some())
}

/// The image options of an image output, and what the build must say about them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageOutputOptions {
    pub export: ImageExport,
    /// `rewrite-timestamp=true`: file times clamped to SOURCE_DATE_EPOCH (cairn does that
    /// whenever the epoch is set; without it the option has nothing to rewrite to).
    pub rewrite_timestamp: bool,
    /// `compression=zstd` with `oci-mediatypes=false`: OCI media types are used anyway.
    pub forced_oci: bool,
    /// `annotation…` fields, placed by [`ImageOutputOptions::resolve`].
    pub annotations: Vec<Annotation>,
}

impl ImageOutputOptions {
    /// The exporter options for a build of `platform`, with these annotations and `extra`
    /// (`--annotation`) placed; annotations for another platform are left out.
    pub fn resolve(&self, extra: &[Annotation], platform: &Platform) -> ImageExport {
        let mut e = self.export.clone();
        for a in extra.iter().chain(&self.annotations) {
            if a.platform.as_ref().is_some_and(|p| p != platform) {
                continue;
            }
            for k in &a.kinds {
                let to = match k {
                    AnnotationKind::Manifest => &mut e.image.manifest.annotations,
                    AnnotationKind::ManifestDescriptor => &mut e.descriptor_annotations,
                    AnnotationKind::Index => &mut e.index_annotations,
                    // A single image in a layout has no index of indexes to describe.
                    AnnotationKind::IndexDescriptor => continue,
                };
                to.insert(a.key.clone(), a.value.clone());
            }
        }
        e
    }
}

fn parse_bool(k: &str, v: &str, spec: &str) -> anyhow::Result<bool> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => bail!("Invalid `{k}={other}` in `--output {spec}`: expected true or false"),
    }
}

/// Takes the image options out of the fields `kv` of `--output spec`.
pub fn take_image_options(kv: &mut HashMap<&str, &str>, spec: &str) -> anyhow::Result<ImageOutputOptions> {
    let mut o = ImageOutputOptions::default();
    let c = &mut o.export.image.commit;
    if let Some(v) = kv.remove("compression") {
        c.compression = Compression::parse(v).with_context(|| {
            format!("Invalid `compression={v}` in `--output {spec}`: expected gzip, zstd or uncompressed")
        })?;
    }
    if let Some(v) = kv.remove("compression-level") {
        let n: u32 = v.parse().with_context(|| format!("Invalid `compression-level={v}` in `--output {spec}`"))?;
        c.compression_level = Some(n);
    }
    if let Some(v) = kv.remove("force-compression") {
        c.force_compression = parse_bool("force-compression", v, spec)?;
    }
    if let Some(v) = kv.remove("oci-mediatypes") {
        o.export.image.manifest.oci_mediatypes = parse_bool("oci-mediatypes", v, spec)?;
    }
    if c.compression == Compression::Zstd && !o.export.image.manifest.oci_mediatypes {
        o.export.image.manifest.oci_mediatypes = true;
        o.forced_oci = true;
    }
    if let Some(v) = kv.remove("rewrite-timestamp") {
        o.rewrite_timestamp = parse_bool("rewrite-timestamp", v, spec)?;
    }
    let keys: Vec<&str> = kv.keys().copied().filter(|k| k.starts_with("annotation")).collect();
    for k in keys {
        let v = kv.remove(k).unwrap_or_default();
        let what = format!("`{k}` in `--output {spec}`");
        let rest = &k["annotation".len()..];
        let (sel, key) = rest.split_once('.').with_context(|| format!("Invalid {what}: expected annotation.KEY"))?;
        let sel = sel.strip_prefix('-').unwrap_or(sel);
        if key.is_empty() {
            bail!("Invalid {what}: the key is empty");
        }
        let (kinds, platform) = parse_selector(sel, &what)?;
        o.annotations.push(Annotation { kinds, platform, key: key.to_string(), value: v.to_string() });
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_flags_parse_as_buildx_spells_them() {
        let a = parse_annotation_flag("org.example.k=v=w").unwrap();
        assert_eq!(
            (a.kinds, a.platform, a.key, a.value),
            (vec![AnnotationKind::Manifest], None, "org.example.k".into(), "v=w".into())
        );
        let a = parse_annotation_flag("index,manifest-descriptor:k=v").unwrap();
        assert_eq!(a.kinds, [AnnotationKind::Index, AnnotationKind::ManifestDescriptor]);
        let a = parse_annotation_flag("manifest[linux/arm64]:k=v").unwrap();
        assert_eq!(a.platform, Platform::parse("linux/arm64"));
        assert_eq!(parse_annotation_flag("urn:x=v").unwrap().key, "urn:x");
        let e = parse_annotation_flag("manifest[linux]:k=v").unwrap_err().to_string();
        assert!(e.contains("`linux` is not a platform"), "{e}");
        assert!(parse_annotation_flag("manifest:=v").unwrap_err().to_string().contains("key is empty"));
    }

    #[test]
    fn output_image_options_parse() {
        let spec = "x";
        let mut kv: HashMap<&str, &str> = [
            ("compression", "zstd"),
            ("compression-level", "7"),
            ("force-compression", "true"),
            ("oci-mediatypes", "false"),
            ("annotation-index.a", "1"),
            ("annotation.b", "2"),
            ("dest", "d"),
        ]
        .into_iter()
        .collect();
        let o = take_image_options(&mut kv, spec).unwrap();
        assert_eq!(kv.keys().collect::<Vec<_>>(), [&"dest"]);
        let c = o.export.image.commit;
        assert_eq!((c.compression, c.compression_level, c.force_compression), (Compression::Zstd, Some(7), true));
        assert!(o.forced_oci && o.export.image.manifest.oci_mediatypes, "zstd forces OCI media types");
        let e = o.resolve(&[], &Platform::parse("linux/amd64").unwrap());
        assert_eq!(e.index_annotations.get("a").map(String::as_str), Some("1"));
        assert_eq!(e.image.manifest.annotations.get("b").map(String::as_str), Some("2"));
        let mut kv: HashMap<&str, &str> = [("compression", "lz4")].into_iter().collect();
        assert!(take_image_options(&mut kv, spec).unwrap_err().to_string().contains("`compression=lz4`"));
        let mut kv: HashMap<&str, &str> = [("annotation-bogus.k", "v")].into_iter().collect();
        assert!(take_image_options(&mut kv, spec).unwrap_err().to_string().contains("unknown annotation type `bogus`"));
    }
}
