//! The end of a multi-platform build (`--platform linux/amd64,linux/arm64`): after one
//! solve of every platform's output, each is committed as an image of its own, and the
//! images become one OCI image index — the unit that is tagged (one tag for the index,
//! `--platform` picks on use), pushed and written by `-o type=oci`. Root filesystem
//! outputs write one directory per platform; a docker-archive refuses (it cannot hold an
//! index). Kept apart from [`crate::build`] so the single-platform path stays exactly as
//! it was.
//!
//! Each index entry's platform is taken from the image's own config, never from the
//! request: the config says what the binaries are (a base image of another platform keeps
//! its architecture, with the compiler's `InvalidBaseImagePlatform` warning).

use crate::build::{export_caches, push_all, wants_image, write_metadata, BuildError, BuildRequest, BuildResult};
use crate::export::{ExportContext, ExportSource, PlatformSource};
use crate::image::{commit_image, convert_image, ManifestOptions};
use crate::solve::Solved;
use crate::store::{PlatformImage, Store};

/// Commits, tags, pushes and exports the outputs of a solve of several platforms.
pub(crate) fn finish(
    req: &BuildRequest<'_>,
    solved: &Solved,
    shared: Option<&crate::cache::SharedCache>,
) -> Result<BuildResult, BuildError> {
    let def = req.definition;
    let st: &Store = req.store;
    let chains: Vec<Vec<String>> =
        solved.outputs.iter().map(|(_, l)| l.iter().map(|id| id.to_string()).collect()).collect();
    let mut image_options = req.image_options.clone();
    image_options.commit.source_date_epoch = req.source_date_epoch;
    let mut images: Vec<PlatformImage> = Vec::new();
    let mut index = None;
    let mut tags = Vec::new();
    if wants_image(req) {
        for ((output, _), layers) in solved.outputs.iter().zip(&chains) {
            let config = &def.outputs[*output].config;
            let commit = |r| BuildError::Commit { second: false, source: r };
            let mut rec = commit_image(st, layers, config, &image_options.commit).map_err(commit)?;
            if image_options.manifest != ManifestOptions::default() {
                rec = convert_image(st, &rec, &image_options).map_err(commit)?;
            }
            images.push(PlatformImage { platform: config.platform(), image: rec });
        }
        let idx = st.put_index(&images).map_err(|source| BuildError::Commit { second: false, source })?;
        for t in req.tags {
            tags.push(st.tag_index(t, &idx).map_err(BuildError::Export)?);
        }
        index = Some(idx);
    }
    let platforms: Vec<PlatformSource<'_>> = solved
        .outputs
        .iter()
        .zip(&chains)
        .enumerate()
        .map(|(i, ((output, _), layers))| PlatformSource {
            platform: &def.outputs[*output].platform,
            image: images.get(i).map(|p| &p.image),
            layers,
        })
        .collect();
    let src = ExportSource { image: images.first().map(|p| &p.image), layers: &chains[0], platforms: &platforms };
    let with_image =
        ExportContext { tags: &tags, source_date_epoch: req.source_date_epoch, image_options: Some(&image_options) };
    for e in req.exports.iter().filter(|e| e.needs_image()) {
        e.export(st, &src, &with_image).map_err(BuildError::Export)?;
    }
    if let Some(idx) = &index {
        push_all(req, |r, name| r.push_index(st, &images, idx, name, req.notice))?;
        if let Some(f) = req.metadata_file {
            write_metadata(st, f, idx, None, &tags)?;
        }
    }
    let plain = ExportContext { tags: &tags, source_date_epoch: req.source_date_epoch, image_options: None };
    for e in req.exports.iter().filter(|e| !e.needs_image()) {
        e.export(st, &src, &plain).map_err(BuildError::Export)?;
    }
    export_caches(req, shared, &chains.concat())?;
    Ok(BuildResult {
        image: images.first().map(|p| p.image.clone()),
        index,
        tags,
        executed: solved.executed,
        cached: solved.cached,
        // The caller adds the build's record.
        record: None,
    })
}
