//! The OCI image layout exporter (`-o type=oci`): a directory or a tar of `oci-layout`,
//! `index.json` (one manifest, with the image's name as BuildKit annotates it) and
//! `blobs/sha256/`. A multi-platform build's `index.json` names one image index instead,
//! whose manifests carry their platforms (BuildKit's layout too).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use cairn_ir::Digest;

use super::{copy_blob, tar_blob, tar_bytes, tar_dir, ExportContext, ExportSource, Exporter, ImageExport};
use crate::oci::{Descriptor, Index, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST};
use crate::output::{check_dir_output, install_dir, Install, OutputFile, SiblingTemp};
use crate::store::{io_err, normalize_reference, ImageRecord, Store, StoreError};

/// The index annotations for `ref_name`: a plain tag becomes
/// `org.opencontainers.image.ref.name`; a full reference also gives
/// `io.containerd.image.name` (as BuildKit writes them).
fn ref_annotations(ref_name: Option<&str>) -> Result<Option<BTreeMap<String, String>>, StoreError> {
    let Some(r) = ref_name.filter(|r| !r.is_empty()) else { return Ok(None) };
    let mut a = BTreeMap::new();
    if !r.contains(['/', ':', '@']) {
        a.insert(ANNOTATION_REF_NAME.to_string(), r.to_string());
        return Ok(Some(a));
    }
    let n = normalize_reference(r)?;
    a.insert(ANNOTATION_IMAGE_NAME.to_string(), n.clone());
    let name_tag = n.split('@').next().unwrap_or(&n);
    let last = name_tag.rsplit('/').next().unwrap_or(name_tag);
    if let Some((_, tag)) = last.split_once(':') {
        a.insert(ANNOTATION_REF_NAME.to_string(), tag.to_string());
    }
    Ok(Some(a))
}

/// Blobs of an image: manifest, config and layer blobs (each once), with their files.
fn image_blobs(store: &Store, rec: &ImageRecord) -> Result<(Descriptor, Vec<(Digest, PathBuf)>), StoreError> {
    let m_bytes = store.read_blob(&rec.manifest_digest)?;
    let m = store.image_manifest(rec)?;
    let media = m.media_type.clone().unwrap_or_else(|| MEDIA_OCI_MANIFEST.to_string());
    let desc = Descriptor {
        media_type: media,
        digest: rec.manifest_digest,
        size: m_bytes.len() as u64,
        annotations: None,
        platform: None,
    };
    let mut out: Vec<(Digest, PathBuf)> = Vec::new();
    for d in std::iter::once(m.config.digest).chain(m.layers.iter().map(|l| l.digest)).chain([rec.manifest_digest]) {
        if out.iter().any(|(x, _)| *x == d) {
            continue;
        }
        // A lazy blob of a pulled base image is downloaded here.
        let p = store.ensure_blob(&d, &|_, _, _| {}).map_err(|e| match e {
            StoreError::NotFound(_) => {
                StoreError::NotFound(format!("Blob `{d}` of image `{}` is not in the store", rec.manifest_digest))
            }
            other => other,
        })?;
        out.push((d, p));
    }
    Ok((desc, out))
}

/// Writes `rec` as an OCI image layout at `dest`: a directory, or with `tar` an archive
/// file. `ref_name` (a tag, or a full reference) is recorded in `index.json`.
pub fn export_oci_layout(
    store: &Store,
    rec: &ImageRecord,
    dest: &Path,
    tar: bool,
    ref_name: Option<&str>,
) -> Result<(), StoreError> {
    export_oci_layout_with(store, rec, dest, tar, ref_name, &ImageExport::default())
}

/// [`export_oci_layout`] with the index annotations of `opts` in `index.json` and its
/// descriptor annotations beside the name's (`rec` is already written with its
/// image options).
fn export_oci_layout_with(
    store: &Store,
    rec: &ImageRecord,
    dest: &Path,
    tar: bool,
    ref_name: Option<&str>,
    opts: &ImageExport,
) -> Result<(), StoreError> {
    let (mut desc, blobs) = image_blobs(store, rec)?;
    desc.annotations = ref_annotations(ref_name)?;
    if !opts.descriptor_annotations.is_empty() {
        let a = desc.annotations.get_or_insert_with(Default::default);
        a.extend(opts.descriptor_annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    write_layout(dest, tar, desc, &blobs, opts)
}

/// Writes a layout whose `index.json` holds `desc`, with `blobs`.
fn write_layout(
    dest: &Path,
    tar: bool,
    desc: Descriptor,
    blobs: &[(Digest, PathBuf)],
    opts: &ImageExport,
) -> Result<(), StoreError> {
    let index = Index {
        schema_version: 2,
        media_type: Some(MEDIA_OCI_INDEX.to_string()),
        manifests: vec![desc],
        annotations: (!opts.index_annotations.is_empty()).then(|| opts.index_annotations.clone()),
    };
    let index_bytes = serde_json::to_vec(&index).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    if tar {
        let mut b = tar::Builder::new(OutputFile::create(dest)?);
        let w = |e: io::Error| StoreError::Io { action: "write", path: dest.to_path_buf(), source: e };
        tar_bytes(&mut b, "oci-layout", layout).map_err(w)?;
        tar_bytes(&mut b, "index.json", &index_bytes).map_err(w)?;
        tar_dir(&mut b, "blobs/").map_err(w)?;
        tar_dir(&mut b, "blobs/sha256/").map_err(w)?;
        for (d, p) in blobs {
            tar_blob(&mut b, &format!("blobs/sha256/{}", d.hex()), p, d).map_err(w)?;
        }
        b.into_inner().map_err(w)?.commit()
    } else {
        check_dir_output(dest)?;
        let tmp = SiblingTemp::new(dest, "oci")?;
        let bdir = tmp.path.join("blobs/sha256");
        fs::create_dir_all(&bdir).map_err(io_err("create directory", &bdir))?;
        fs::write(tmp.path.join("oci-layout"), layout).map_err(io_err("write", &tmp.path))?;
        fs::write(tmp.path.join("index.json"), &index_bytes).map_err(io_err("write", &tmp.path))?;
        for (d, p) in blobs {
            let to = bdir.join(d.hex());
            copy_blob(p, &to, d).map_err(io_err("copy to", &to))?;
        }
        install_dir(tmp, dest, Install::Merge)
    }
}

/// `-o type=oci,dest=PATH[,tar=true|false][,name=NAME]` and the image options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciLayout {
    pub dest: PathBuf,
    /// A tar archive (the default) rather than a directory.
    pub tar: bool,
    /// The name for `index.json`; the first tag when not given.
    pub name: Option<String>,
    /// Compression, media types, annotations.
    pub options: ImageExport,
}

impl Exporter for OciLayout {
    fn needs_image(&self) -> bool {
        true
    }
    fn export(&self, store: &Store, src: &ExportSource<'_>, cx: &ExportContext<'_>) -> Result<(), StoreError> {
        let n = self.name.clone().or_else(|| cx.tags.first().cloned());
        if !src.platforms.is_empty() {
            return self.export_index(store, src, cx, n.as_deref());
        }
        let rec = self.options.image(store, src, cx)?;
        export_oci_layout_with(store, &rec, &self.dest, self.tar, n.as_deref(), &self.options)
    }
}

impl OciLayout {
    /// A multi-platform build: `index.json` names one image index (as BuildKit writes it),
    /// whose manifests are the platforms' images, each written with these options.
    fn export_index(
        &self,
        store: &Store,
        src: &ExportSource<'_>,
        cx: &ExportContext<'_>,
        ref_name: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut images = Vec::new();
        for p in src.platforms {
            let one = ExportSource::single(p.image, p.layers);
            let rec = self.options.image(store, &one, cx)?.into_owned();
            let config = store.image_config(&rec)?;
            images.push(crate::store::PlatformImage { platform: config.platform(), image: rec });
        }
        let index = store.put_index(&images)?;
        let bytes = store.read_blob(&index)?;
        let mut desc = Descriptor::new(MEDIA_OCI_INDEX, index, bytes.len() as u64);
        desc.annotations = ref_annotations(ref_name)?;
        if !self.options.descriptor_annotations.is_empty() {
            let a = desc.annotations.get_or_insert_with(Default::default);
            a.extend(self.options.descriptor_annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let mut blobs = vec![(index, store.blob_path(&index))];
        for pi in &images {
            for b in image_blobs(store, &pi.image)?.1 {
                if !blobs.iter().any(|(d, _)| *d == b.0) {
                    blobs.push(b);
                }
            }
        }
        write_layout(&self.dest, self.tar, desc, &blobs, &self.options)
    }
}
