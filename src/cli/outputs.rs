//! `-o`/`--output` as buildx spells it: the output kinds, their fields, and the runtime
//! exporter each one becomes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cairn_runtime::export::{self, Exporter};

use super::image_opts::{take_image_options, Annotation, ImageOutputOptions};
use cairn_ir::Platform;

/// One `-o` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSpec {
    Oci {
        dest: PathBuf,
        tar: bool,
        name: Option<String>,
        options: ImageOutputOptions,
    },
    /// A docker-archive's layers are plain tars: of the image options only the
    /// annotations and media types would show, and the archive has no place for them.
    Docker {
        dest: PathBuf,
        name: Option<String>,
    },
    Local {
        dest: PathBuf,
    },
    Tar {
        dest: PathBuf,
    },
    /// `type=image,name=…[,push=true]` (stored, and pushed with `push`) or
    /// `type=registry,name=…` (stored and pushed).
    Image {
        names: Vec<String>,
        push: bool,
        options: ImageOutputOptions,
    },
}

impl OutputSpec {
    /// The runtime exporter that writes this output (`None` for an image output: it is
    /// tags and pushes).
    /// `annotations` are the `--annotation` flags, `platform` the build's.
    pub fn exporter(&self, annotations: &[Annotation], platform: &Platform) -> Option<Box<dyn Exporter>> {
        Some(match self.clone() {
            OutputSpec::Oci { dest, tar, name, options } => {
                Box::new(export::OciLayout { dest, tar, name, options: options.resolve(annotations, platform) })
            }
            OutputSpec::Docker { dest, name } => Box::new(export::DockerArchive { dest, name }),
            OutputSpec::Local { dest } => Box::new(export::RootfsDir { dest }),
            OutputSpec::Tar { dest } => Box::new(export::RootfsTar { dest }),
            OutputSpec::Image { .. } => return None,
        })
    }
}

/// Parses `type=…,dest=…[,tar=…][,name=…]` (a bare path means `type=local,dest=PATH`).
pub fn parse_output(spec: &str) -> anyhow::Result<OutputSpec> {
    if !spec.contains('=') {
        if spec.is_empty() {
            bail!("Empty `--output`");
        }
        if spec == "-" {
            return Ok(OutputSpec::Tar { dest: PathBuf::from("-") });
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
    let options = match kind {
        "oci" | "docker" | "image" | "registry" => take_image_options(&mut kv, spec)?,
        _ => ImageOutputOptions::default(),
    };
    let out = match kind {
        "oci" => {
            let tar = match kv.remove("tar") {
                None | Some("true") => true,
                Some("false") => false,
                Some(other) => bail!("Invalid `tar={other}` in `--output {spec}`: expected true or false"),
            };
            let dest = need_dest()?;
            if !tar && dest == Path::new("-") {
                bail!("`--output {spec}`: a directory cannot go to stdout (`dest=-` needs `tar=true`)");
            }
            OutputSpec::Oci { dest, tar, name, options }
        }
        "docker" => OutputSpec::Docker { dest: need_dest()?, name },
        "local" => match need_dest()? {
            d if d == Path::new("-") => {
                bail!("`--output {spec}`: a directory cannot go to stdout (use `type=tar,dest=-`)")
            }
            dest => OutputSpec::Local { dest },
        },
        "tar" => OutputSpec::Tar { dest: need_dest()? },
        "image" | "registry" => {
            let push = match (kind, kv.remove("push")) {
                ("registry", None | Some("true")) => true,
                ("registry", Some(_)) => bail!("`type=registry` always pushes: drop `push=` in `--output {spec}`"),
                (_, None | Some("false")) => false,
                (_, Some("true")) => true,
                (_, Some(other)) => bail!("Invalid `push={other}` in `--output {spec}`: expected true or false"),
            };
            let names: Vec<String> = name.iter().flat_map(|n| n.split(';')).map(str::to_string).collect();
            if names.is_empty() {
                bail!("`--output {spec}` needs `name=REF`");
            }
            OutputSpec::Image { names, push, options }
        }
        other => bail!(
            "Unsupported output type `{other}` in `--output {spec}` (expected oci, docker, local, tar, image or registry)"
        ),
    };
    if let Some(k) = kv.keys().next() {
        bail!("Unknown field `{k}` in `--output {spec}`");
    }
    Ok(out)
}
