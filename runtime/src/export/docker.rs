//! The docker-archive exporter (`-o type=docker`, `cairn save`), in the classic
//! `docker save` shape that `docker load` and skopeo read: `manifest.json` (`Config`,
//! `RepoTags`, `Layers`) with uncompressed layer tars named by their diff_id, streamed
//! out of the gzip blobs and verified on the way.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use cairn_ir::Digest;
use tar::EntryType;

use super::{plain_header, tar_bytes, tar_dir, ExportContext, ExportSource, Exporter};
use crate::image::open_maybe_gzip;
use crate::oci::DockerArchiveEntry;
use crate::output::OutputFile;
use crate::store::{io_err, normalize_reference, HashReader, ImageRecord, LayerBlob, Store, StoreError};

/// The uncompressed size of a layer blob (counted by decompressing when not recorded).
fn layer_diff_size(store: &Store, lb: &LayerBlob) -> Result<u64, StoreError> {
    if lb.diff_size > 0 {
        return Ok(lb.diff_size);
    }
    let p = store.ensure_blob(&lb.blob, &|_, _, _| {})?;
    let mut r = open_maybe_gzip(&p)?;
    io::copy(&mut r, &mut io::sink()).map_err(io_err("read", &p))
}

/// Writes `rec` as a docker-archive tarball (`docker save` format) at `dest`, with
/// `repo_tags` (any reference form; written in Docker's short form) in `manifest.json`.
pub fn export_docker_archive(
    store: &Store,
    rec: &ImageRecord,
    dest: &Path,
    repo_tags: &[String],
) -> Result<(), StoreError> {
    export_docker_archive_images(store, &[(rec.clone(), repo_tags.to_vec())], dest)
}

/// Writes several images, each with its RepoTags, as one docker-archive at `dest` (what
/// `docker save A B` writes): one `manifest.json` entry per image, shared layers once.
pub fn export_docker_archive_images(
    store: &Store,
    images: &[(ImageRecord, Vec<String>)],
    dest: &Path,
) -> Result<(), StoreError> {
    write_docker_archive(store, images, OutputFile::create(dest)?, dest)
}

/// Writes `rec` as a docker-archive into the open stream `out` (a pipe to `docker load`);
/// `name` names the stream in errors.
pub fn export_docker_archive_stream(
    store: &Store,
    rec: &ImageRecord,
    repo_tags: &[String],
    out: std::fs::File,
    name: &str,
) -> Result<(), StoreError> {
    let images = [(rec.clone(), repo_tags.to_vec())];
    write_docker_archive(store, &images, OutputFile::stream(out, name), Path::new(name))
}

fn write_docker_archive(
    store: &Store,
    images: &[(ImageRecord, Vec<String>)],
    out: OutputFile,
    dest: &Path,
) -> Result<(), StoreError> {
    let mut b = tar::Builder::new(out);
    let w = |e: io::Error| StoreError::Io { action: "write", path: dest.to_path_buf(), source: e };
    tar_dir(&mut b, "blobs/").map_err(w)?;
    tar_dir(&mut b, "blobs/sha256/").map_err(w)?;
    let mut written: Vec<Digest> = Vec::new();
    let mut manifest = Vec::new();
    for (rec, repo_tags) in images {
        let mut tags = Vec::new();
        for t in repo_tags {
            let n = normalize_reference(t)?;
            if n.contains('@') {
                return Err(StoreError::Invalid(format!(
                    "`{t}` cannot be a RepoTag of a docker-archive: it has a digest"
                )));
            }
            tags.push(cairn_ir::reference::familiar(&n));
        }
        let blobs = store.image_layer_blobs(rec)?;
        let config = store.read_blob(&rec.config_digest)?;
        if Digest::of(&config) != rec.config_digest {
            let got = Digest::of(&config);
            let message = format!("the config blob hashes to `{got}`: run `cairn check --repair`, then build again");
            return Err(StoreError::Corrupt { path: store.blob_path(&rec.config_digest), message });
        }
        let mut layer_names = Vec::new();
        for lb in &blobs {
            let name = format!("blobs/sha256/{}", lb.diff_id.hex());
            layer_names.push(name.clone());
            if written.contains(&lb.diff_id) {
                continue;
            }
            written.push(lb.diff_id);
            let size = layer_diff_size(store, lb)?;
            let p = store.ensure_blob(&lb.blob, &|_, _, _| {})?;
            let mut hr = HashReader::new(open_maybe_gzip(&p)?);
            let mut h = plain_header(EntryType::Regular, 0o644, size);
            h.set_path(&name).map_err(w)?;
            h.set_cksum();
            b.append(&h, (&mut hr).take(size)).map_err(io_err("copy layer", &p))?;
            io::copy(&mut hr, &mut io::sink()).map_err(io_err("read", &p))?;
            if hr.count != size || hr.digest() != lb.diff_id {
                return Err(StoreError::Corrupt {
                    path: p,
                    message: format!(
                        "the layer does not match its diff_id `{}` (or its recorded size {size})",
                        lb.diff_id
                    ),
                });
            }
        }
        let cfg_name = format!("blobs/sha256/{}", rec.config_digest.hex());
        if !written.contains(&rec.config_digest) {
            written.push(rec.config_digest);
            tar_bytes(&mut b, &cfg_name, &config).map_err(w)?;
        }
        manifest.push(DockerArchiveEntry { config: cfg_name, repo_tags: Some(tags), layers: layer_names });
    }
    let m_bytes = serde_json::to_vec(&manifest).map_err(|e| StoreError::Invalid(e.to_string()))?;
    tar_bytes(&mut b, "manifest.json", &m_bytes).map_err(w)?;
    b.into_inner().map_err(w)?.commit()
}

/// `-o type=docker,dest=FILE[,name=NAME]`: RepoTags are `name` then the image's tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerArchive {
    pub dest: PathBuf,
    pub name: Option<String>,
}

impl Exporter for DockerArchive {
    fn needs_image(&self) -> bool {
        true
    }
    fn export(&self, store: &Store, src: &ExportSource<'_>, cx: &ExportContext<'_>) -> Result<(), StoreError> {
        if !src.platforms.is_empty() {
            return Err(StoreError::Invalid(
                "A docker-archive (`-o type=docker`) holds one image per name, not a multi-platform image: use `-o type=oci` or build one `--platform` at a time".into(),
            ));
        }
        let mut tags: Vec<String> = cx.tags.iter().map(|n| cairn_ir::reference::familiar(n)).collect();
        if let Some(n) = &self.name {
            tags.insert(0, n.clone());
        }
        export_docker_archive(store, super::image_of(src)?, &self.dest, &tags)
    }
}
