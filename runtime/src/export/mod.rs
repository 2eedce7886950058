//! Exporters: what a build writes besides the store's tags. [`Exporter`] is the seam the
//! CLI picks from by `-o type=`: an OCI layout ([`OciLayout`]), a docker-archive
//! ([`DockerArchive`], also `cairn save`), or the merged root filesystem as a directory
//! ([`RootfsDir`]) or a tar ([`RootfsTar`]).
//!
//! **All or nothing.** Every output goes through [`crate::output`]: built beside its
//! destination and renamed into place at the end, so an error or a kill leaves the
//! destination as it was; a device or FIFO is written into, never replaced.

mod docker;
mod layout;
mod rootfs;

pub use docker::{export_docker_archive, export_docker_archive_images, export_docker_archive_stream, DockerArchive};
pub use layout::{export_oci_layout, OciLayout};
pub use rootfs::{export_rootfs_dir, export_rootfs_dirs, export_rootfs_tar, RootfsDir, RootfsTar};

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use tar::{EntryType, Header};

use crate::image::ImageOptions;
use crate::layer;
use cairn_ir::Digest;

use crate::store::{HashReader, ImageRecord, Store, StoreError};

/// What a build hands an exporter: the layer chain of the result and, when some exporter
/// asked for one ([`Exporter::needs_image`]), the committed image.
#[derive(Debug, Clone, Copy)]
pub struct ExportSource<'a> {
    pub image: Option<&'a ImageRecord>,
    /// Layer ids, bottom first.
    pub layers: &'a [String],
    /// A multi-platform build (empty for one platform): every platform's result, in the
    /// order asked; `image` and `layers` are then the first's.
    pub platforms: &'a [PlatformSource<'a>],
}

impl<'a> ExportSource<'a> {
    /// The source of a single-platform build.
    pub fn single(image: Option<&'a ImageRecord>, layers: &'a [String]) -> ExportSource<'a> {
        ExportSource { image, layers, platforms: &[] }
    }
}

/// One platform's result in a multi-platform build.
#[derive(Debug, Clone, Copy)]
pub struct PlatformSource<'a> {
    pub platform: &'a cairn_ir::Platform,
    pub image: Option<&'a ImageRecord>,
    pub layers: &'a [String],
}

/// The directory (or tar prefix) of a platform in a multi-platform root filesystem
/// output, as buildx names it: `linux_amd64`, `linux_arm64`, `linux_arm_v7`.
pub fn platform_dir_name(p: &cairn_ir::Platform) -> String {
    let p = p.normalized();
    let mut name = format!("{}_{}", p.os, p.architecture);
    let default_arm64 = p.architecture == "arm64" && p.variant == "v8";
    if !p.variant.is_empty() && !default_arm64 {
        name.push('_');
        name.push_str(&p.variant);
    }
    name
}

/// What an export may need besides its source.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportContext<'a> {
    /// The names the image was tagged with in the store (normalized), in `-t` order.
    pub tags: &'a [String],
    /// Clamp file times to this (root filesystem tars).
    pub source_date_epoch: Option<u64>,
    /// The options the source's image was written with (an exporter with other
    /// [`ImageExport`] options writes it again: [`crate::image::convert_image`]).
    pub image_options: Option<&'a ImageOptions>,
}

/// The exporter options of an image output (`-o type=oci|docker,…`): compression, media
/// types and manifest annotations, and the annotations of the index and of the
/// manifest's descriptor in it (an OCI layout's `index.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageExport {
    pub image: ImageOptions,
    pub index_annotations: BTreeMap<String, String>,
    pub descriptor_annotations: BTreeMap<String, String>,
}

impl ImageExport {
    /// The image of `src` as these options write it: the committed one when they are the
    /// options it was written with, a converted one otherwise.
    fn image<'a>(
        &self,
        store: &Store,
        src: &ExportSource<'a>,
        cx: &ExportContext<'_>,
    ) -> Result<Cow<'a, ImageRecord>, StoreError> {
        let rec = image_of(src)?;
        let mut want = self.image.clone();
        want.commit.source_date_epoch = cx.source_date_epoch;
        let default = ImageOptions {
            commit: crate::image::CommitOptions { source_date_epoch: cx.source_date_epoch, ..Default::default() },
            ..Default::default()
        };
        if want == *cx.image_options.unwrap_or(&default) {
            return Ok(Cow::Borrowed(rec));
        }
        Ok(Cow::Owned(crate::image::convert_image(store, rec, &want)?))
    }
}

/// One output of a build.
pub trait Exporter: std::fmt::Debug + Send + Sync {
    /// Whether the export writes an image (so the chain must be committed first: packing
    /// layers costs time, and a root filesystem export does without).
    fn needs_image(&self) -> bool;
    /// Writes the output.
    fn export(&self, store: &Store, src: &ExportSource<'_>, cx: &ExportContext<'_>) -> Result<(), StoreError>;
}

/// The image of `src`, for exporters that need one.
fn image_of<'a>(src: &ExportSource<'a>) -> Result<&'a ImageRecord, StoreError> {
    src.image.ok_or_else(|| StoreError::Invalid("This export needs an image, and none was committed".to_string()))
}

// -------------------------------------------------------------------- tar helpers

pub(crate) fn plain_header(kind: EntryType, mode: u32, size: u64) -> Header {
    let mut h = Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

pub(crate) fn tar_dir<W: Write>(b: &mut tar::Builder<W>, name: &str) -> io::Result<()> {
    let mut h = plain_header(EntryType::Directory, 0o755, 0);
    h.set_path(name)?;
    h.set_cksum();
    b.append(&h, io::empty())
}

pub(crate) fn tar_bytes<W: Write>(b: &mut tar::Builder<W>, name: &str, data: &[u8]) -> io::Result<()> {
    let mut h = plain_header(EntryType::Regular, 0o644, data.len() as u64);
    h.set_path(name)?;
    h.set_cksum();
    b.append(&h, data)
}

/// The error for a blob whose bytes in the store no longer match its digest.
fn damaged(digest: &Digest, got: &Digest) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "Blob `{digest}` in the store is damaged (its content hashes to `{got}`): run `cairn check --repair`, then build again"
        ),
    )
}

/// `tar_file` for a store blob, hashed while it is written: a damaged blob fails the
/// export (issue 13), whose output is then never committed.
pub(crate) fn tar_blob<W: Write>(b: &mut tar::Builder<W>, name: &str, path: &Path, digest: &Digest) -> io::Result<()> {
    let f = File::open(path).map_err(|e| layer::ctx(path, e))?;
    let size = f.metadata()?.len();
    let mut h = plain_header(EntryType::Regular, 0o644, size);
    h.set_path(name)?;
    h.set_cksum();
    let mut r = HashReader::new(BufReader::with_capacity(256 * 1024, f).take(size));
    b.append(&h, &mut r)?;
    let got = r.digest();
    if got != *digest {
        return Err(damaged(digest, &got));
    }
    Ok(())
}

/// Copies a store blob to `to`, hashed while copying; a damaged blob is an error.
pub(crate) fn copy_blob(path: &Path, to: &Path, digest: &Digest) -> io::Result<()> {
    let mut r = HashReader::new(BufReader::with_capacity(256 * 1024, File::open(path)?));
    let mut w = io::BufWriter::new(File::create(to)?);
    io::copy(&mut r, &mut w)?;
    w.flush()?;
    let got = r.digest();
    if got != *digest {
        return Err(damaged(digest, &got));
    }
    Ok(())
}
