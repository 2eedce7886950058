//! Exports of images (OCI layout as a directory or tar, docker-archive) and of merged root
//! filesystems (directory, tar), and imports (docker-archive and OCI-archive tarballs,
//! OCI layout directories for `oci-layout://` build contexts).
//!
//! **All or nothing.** Every output goes through [`crate::output`]: built beside its
//! destination and renamed into place at the end, so an error or a kill leaves the
//! destination as it was; a device or FIFO is written into, never replaced.
//!
//! **Root filesystems** are computed, not copied layer by layer: [`merge_layers`] builds
//! the merged tree in memory (bottom layer first; a whiteout removes a path, an opaque
//! directory drops everything below it from lower layers), then the tree is either copied
//! out once or written as a tar with the deterministic writer of [`crate::layer`].
//!
//! **docker-archive** uses the classic `docker save` shape, loadable by `docker load` and
//! skopeo: `manifest.json` (`Config`, `RepoTags`, `Layers`) with uncompressed layer tars
//! named by their diff_id, streamed out of the gzip blobs and verified on the way.
//!
//! **Imports** unpack the archive's files into the store's `tmp/` (entries are read in any
//! order), then hand manifests and blobs to [`crate::image`], which verifies every digest
//! and extracts each layer once per diff_id.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use cairn_ir::{Digest, Platform};
use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};
use tar::{EntryType, Header};

use crate::image::{
    self, Descriptor, ImageRecord, Index, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, MEDIA_DOCKER_LIST,
    MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
};
use crate::layer::{self, TarOut};
use crate::output::{check_dir_output, install_dir, OutputFile, SiblingTemp};
use crate::store::{io_err, remove_all, sys, HashReader, LayerBlob, Store, StoreError};

// -------------------------------------------------------------------- tar helpers

fn plain_header(kind: EntryType, mode: u32, size: u64) -> Header {
    let mut h = Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

fn tar_dir<W: Write>(b: &mut tar::Builder<W>, name: &str) -> io::Result<()> {
    let mut h = plain_header(EntryType::Directory, 0o755, 0);
    h.set_path(name)?;
    h.set_cksum();
    b.append(&h, io::empty())
}

fn tar_bytes<W: Write>(b: &mut tar::Builder<W>, name: &str, data: &[u8]) -> io::Result<()> {
    let mut h = plain_header(EntryType::Regular, 0o644, data.len() as u64);
    h.set_path(name)?;
    h.set_cksum();
    b.append(&h, data)
}

fn tar_file<W: Write>(b: &mut tar::Builder<W>, name: &str, path: &Path) -> io::Result<()> {
    let f = File::open(path).map_err(|e| layer::ctx(path, e))?;
    let size = f.metadata()?.len();
    let mut h = plain_header(EntryType::Regular, 0o644, size);
    h.set_path(name)?;
    h.set_cksum();
    b.append(&h, BufReader::with_capacity(256 * 1024, f).take(size))
}

// -------------------------------------------------------------------- OCI layout export

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
    let n = image::normalize_reference(r)?;
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
        let p = store.get_blob_path(&d).ok_or_else(|| {
            StoreError::NotFound(format!("Blob `{d}` of image `{}` is not in the store", rec.manifest_digest))
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
    let (mut desc, blobs) = image_blobs(store, rec)?;
    desc.annotations = ref_annotations(ref_name)?;
    let index = Index {
        schema_version: 2,
        media_type: Some(MEDIA_OCI_INDEX.to_string()),
        manifests: vec![desc],
        annotations: None,
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
        for (d, p) in &blobs {
            tar_file(&mut b, &format!("blobs/sha256/{}", d.hex()), p).map_err(w)?;
        }
        b.into_inner().map_err(w)?.commit()
    } else {
        check_dir_output(dest)?;
        let tmp = SiblingTemp::new(dest, "oci")?;
        let bdir = tmp.path.join("blobs/sha256");
        fs::create_dir_all(&bdir).map_err(io_err("create directory", &bdir))?;
        fs::write(tmp.path.join("oci-layout"), layout).map_err(io_err("write", &tmp.path))?;
        fs::write(tmp.path.join("index.json"), &index_bytes).map_err(io_err("write", &tmp.path))?;
        for (d, p) in &blobs {
            let to = bdir.join(d.hex());
            fs::copy(p, &to).map_err(io_err("copy to", &to))?;
        }
        install_dir(tmp, dest)
    }
}

// -------------------------------------------------------------------- docker-archive

/// One image of a docker-archive's `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DockerArchiveEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
}

/// The uncompressed size of a layer blob (counted by decompressing when not recorded).
fn layer_diff_size(store: &Store, lb: &LayerBlob) -> Result<u64, StoreError> {
    if lb.diff_size > 0 {
        return Ok(lb.diff_size);
    }
    let p = store.blob_path(&lb.blob);
    let mut r = open_maybe_gzip(&p)?;
    io::copy(&mut r, &mut io::sink()).map_err(io_err("read", &p))
}

/// Opens a file, decompressing it when it starts with the gzip magic.
pub(crate) fn open_maybe_gzip(p: &Path) -> Result<Box<dyn Read>, StoreError> {
    let f = File::open(p).map_err(io_err("open", p))?;
    let mut r = BufReader::with_capacity(256 * 1024, f);
    let gz = r.fill_buf().map_err(io_err("read", p))?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz { Box::new(MultiGzDecoder::new(r)) } else { Box::new(r) })
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
    let mut b = tar::Builder::new(OutputFile::create(dest)?);
    let w = |e: io::Error| StoreError::Io { action: "write", path: dest.to_path_buf(), source: e };
    tar_dir(&mut b, "blobs/").map_err(w)?;
    tar_dir(&mut b, "blobs/sha256/").map_err(w)?;
    let mut written: Vec<Digest> = Vec::new();
    let mut manifest = Vec::new();
    for (rec, repo_tags) in images {
        let mut tags = Vec::new();
        for t in repo_tags {
            let n = image::normalize_reference(t)?;
            if n.contains('@') {
                return Err(StoreError::Invalid(format!(
                    "`{t}` cannot be a RepoTag of a docker-archive: it has a digest"
                )));
            }
            tags.push(cairn_ir::reference::familiar(&n));
        }
        let blobs = store.image_layer_blobs(rec)?;
        let config = store.read_blob(&rec.config_digest)?;
        let mut layer_names = Vec::new();
        for lb in &blobs {
            let name = format!("blobs/sha256/{}", lb.diff_id.hex());
            layer_names.push(name.clone());
            if written.contains(&lb.diff_id) {
                continue;
            }
            written.push(lb.diff_id);
            let size = layer_diff_size(store, lb)?;
            let p = store.blob_path(&lb.blob);
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

// -------------------------------------------------------------------- root filesystems

/// A node of a merged filesystem tree: where its content comes from (`None` for the
/// root) and, for a directory, its children by name.
#[derive(Debug, Default)]
pub struct MergedNode {
    pub src: Option<PathBuf>,
    pub dir: bool,
    pub children: BTreeMap<Vec<u8>, MergedNode>,
}

fn merge_into(node: &mut MergedNode, dir: &Path) -> io::Result<()> {
    for n in layer::sorted_names(dir)? {
        let p = dir.join(&n);
        let md = p.symlink_metadata().map_err(|e| layer::ctx(&p, e))?;
        let key = n.as_bytes().to_vec();
        if layer::is_whiteout(&md) {
            node.children.remove(&key);
        } else if md.is_dir() {
            let opaque = layer::is_opaque(&p).map_err(|e| layer::ctx(&p, e))?;
            let child = node.children.entry(key).or_default();
            if !child.dir || opaque {
                *child = MergedNode { src: None, dir: true, children: BTreeMap::new() };
            }
            child.src = Some(p.clone());
            merge_into(child, &p)?;
        } else {
            node.children.insert(key, MergedNode { src: Some(p), dir: false, children: BTreeMap::new() });
        }
    }
    Ok(())
}

/// The merged tree of `layers` (bottom first), honouring whiteouts and opaque dirs.
pub fn merge_layers(store: &Store, layers: &[String]) -> Result<MergedNode, StoreError> {
    let mut root = MergedNode { src: None, dir: true, children: BTreeMap::new() };
    for id in layers {
        if !store.layer_exists(id) {
            return Err(StoreError::NotFound(format!("Layer `{id}` is not in the store")));
        }
        let dir = store.layer_path(id);
        if layer::is_opaque(&dir).map_err(io_err("read", &dir))? {
            root.children.clear();
        }
        merge_into(&mut root, &dir).map_err(io_err("merge layer", &dir))?;
    }
    Ok(root)
}

fn write_tree<W: Write>(out: &mut TarOut<W>, node: &MergedNode, prefix: &[u8]) -> io::Result<()> {
    for (name, child) in &node.children {
        let Some(src) = &child.src else { continue };
        let mut full = prefix.to_vec();
        if !full.is_empty() {
            full.push(b'/');
        }
        full.extend_from_slice(name);
        let md = src.symlink_metadata().map_err(|e| layer::ctx(src, e))?;
        out.append_path(&full, src, &md)?;
        if child.dir {
            write_tree(out, child, &full)?;
        }
    }
    Ok(())
}

/// Writes the merged filesystem of `layers` as a deterministic tar to `out`.
pub fn write_rootfs_tar(
    store: &Store,
    layers: &[String],
    out: impl Write,
    source_date_epoch: Option<u64>,
) -> Result<(), StoreError> {
    let tree = merge_layers(store, layers)?;
    let mut t = TarOut::new(out, source_date_epoch);
    let werr = |e: io::Error| StoreError::Io {
        action: "write the root filesystem tar from",
        path: store.root().join("layers"),
        source: e,
    };
    write_tree(&mut t, &tree, b"").map_err(werr)?;
    t.finish().map_err(werr)?.flush().map_err(werr)
}

/// Writes the merged filesystem of `layers` as a tar file at `dest`.
pub fn export_rootfs_tar(
    store: &Store,
    layers: &[String],
    dest: &Path,
    source_date_epoch: Option<u64>,
) -> Result<(), StoreError> {
    let mut out = OutputFile::create(dest)?;
    write_rootfs_tar(store, layers, &mut out, source_date_epoch)?;
    out.commit()
}

fn copy_tree(node: &MergedNode, dest: &Path, links: &mut HashMap<(u64, u64), PathBuf>) -> io::Result<()> {
    for (name, child) in &node.children {
        let Some(src) = &child.src else { continue };
        let to = dest.join(std::ffi::OsStr::from_bytes(name));
        let md = src.symlink_metadata().map_err(|e| layer::ctx(src, e))?;
        let ft = md.file_type();
        let times = Some((md.mtime(), md.mtime_nsec()));
        if child.dir {
            fs::create_dir(&to).map_err(|e| layer::ctx(&to, e))?;
            copy_tree(child, &to, links)?;
            let x = layer::file_xattrs(src).map_err(|e| layer::ctx(src, e))?;
            layer::apply_metadata(&to, false, md.uid(), md.gid(), md.mode(), &x, times)?;
            continue;
        }
        if ft.is_socket() {
            continue;
        }
        if md.nlink() > 1 {
            if let Some(first) = links.get(&(md.dev(), md.ino())) {
                fs::hard_link(first, &to).map_err(|e| layer::ctx(&to, e))?;
                continue;
            }
            links.insert((md.dev(), md.ino()), to.clone());
        }
        if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(src).map_err(|e| layer::ctx(src, e))?, &to)
                .map_err(|e| layer::ctx(&to, e))?;
        } else if ft.is_file() {
            fs::copy(src, &to).map_err(|e| layer::ctx(&to, e))?;
        } else {
            let (maj, min) = sys::dev_numbers(md.rdev());
            let ty = if ft.is_char_device() {
                libc::S_IFCHR
            } else if ft.is_block_device() {
                libc::S_IFBLK
            } else {
                libc::S_IFIFO
            };
            sys::mknod(&to, ty | (md.mode() & 0o7777), maj, min).map_err(|e| layer::ctx(&to, e))?;
        }
        let x = layer::file_xattrs(src).map_err(|e| layer::ctx(src, e))?;
        layer::apply_metadata(&to, ft.is_symlink(), md.uid(), md.gid(), md.mode(), &x, times)?;
    }
    Ok(())
}

/// Copies the merged filesystem of `layers` to the directory `dest`.
pub fn export_rootfs_dir(store: &Store, layers: &[String], dest: &Path) -> Result<(), StoreError> {
    check_dir_output(dest)?;
    let tree = merge_layers(store, layers)?;
    let tmp = SiblingTemp::new(dest, "rootfs")?;
    fs::create_dir(&tmp.path).map_err(io_err("create directory", &tmp.path))?;
    copy_tree(&tree, &tmp.path, &mut HashMap::new()).map_err(|e| StoreError::Io {
        action: "export the root filesystem to",
        path: dest.to_path_buf(),
        source: e,
    })?;
    install_dir(tmp, dest)
}

// -------------------------------------------------------------------- imports

/// Unpacks the regular files, directories and (resolved) symlinks of an archive into
/// `into`; paths that would leave `into` are errors.
fn unpack_archive(file: &Path, into: &Path) -> Result<(), StoreError> {
    let bad = |m: String| StoreError::Invalid(format!("Cannot load `{}`: {m}", file.display()));
    let reader = open_maybe_gzip(file)?;
    let mut ar = tar::Archive::new(reader);
    let mut symlinks: Vec<(PathBuf, PathBuf)> = Vec::new();
    fs::create_dir_all(into).map_err(io_err("create directory", into))?;
    for entry in ar.entries().map_err(io_err("read", file))? {
        let mut e = entry.map_err(io_err("read", file))?;
        let raw = e.path_bytes().into_owned();
        let comps = layer::clean_components(&raw).map_err(|err| bad(err.to_string()))?;
        if comps.is_empty() {
            continue;
        }
        let rel: PathBuf = comps.iter().map(|c| Path::new(std::ffi::OsStr::from_bytes(c))).collect();
        let to = into.join(&rel);
        match e.header().entry_type() {
            EntryType::Directory => fs::create_dir_all(&to).map_err(io_err("create directory", &to))?,
            EntryType::Regular | EntryType::Continuous => {
                if let Some(parent) = to.parent() {
                    fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
                }
                let mut f = File::create(&to).map_err(io_err("create", &to))?;
                io::copy(&mut e, &mut f).map_err(io_err("unpack", &to))?;
            }
            EntryType::Symlink => {
                let target = e.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default();
                let base: Vec<&[u8]> = comps[..comps.len() - 1].to_vec();
                let mut joined = base.iter().map(|c| c.to_vec()).collect::<Vec<_>>().join(&b'/');
                if !joined.is_empty() {
                    joined.push(b'/');
                }
                joined.extend_from_slice(&target);
                // Resolve `..` lexically within the archive; anything leaving it is refused.
                let mut stack: Vec<&[u8]> = Vec::new();
                for c in joined.split(|&b| b == b'/') {
                    match c {
                        b"" | b"." => {}
                        b".." => {
                            if stack.pop().is_none() {
                                return Err(bad(format!(
                                    "the symlink `{}` points outside the archive",
                                    String::from_utf8_lossy(&raw)
                                )));
                            }
                        }
                        c => stack.push(c),
                    }
                }
                if target.starts_with(b"/") {
                    return Err(bad(format!("the symlink `{}` is absolute", String::from_utf8_lossy(&raw))));
                }
                let resolved: PathBuf = stack.iter().map(|c| Path::new(std::ffi::OsStr::from_bytes(c))).collect();
                symlinks.push((to, into.join(resolved)));
            }
            _ => {}
        }
    }
    // Archive symlinks (older `docker save` links duplicate layers) become hard links.
    for (link, target) in symlinks {
        if target.is_file() {
            if let Some(parent) = link.parent() {
                fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
            }
            let _ = fs::remove_file(&link);
            fs::hard_link(&target, &link).map_err(io_err("link", &link))?;
        }
    }
    Ok(())
}

/// Resolves a path named inside an unpacked archive (`manifest.json` entries).
fn archive_path(root: &Path, name: &str, file: &Path) -> Result<PathBuf, StoreError> {
    let comps = layer::clean_components(name.as_bytes())
        .map_err(|e| StoreError::Invalid(format!("Cannot load `{}`: {e}", file.display())))?;
    let p = root.join(comps.iter().map(|c| Path::new(std::ffi::OsStr::from_bytes(c))).collect::<PathBuf>());
    if !p.is_file() {
        return Err(StoreError::Invalid(format!(
            "Cannot load `{}`: `{name}` is named in the archive's manifest but missing",
            file.display()
        )));
    }
    Ok(p)
}

/// The image name an OCI index entry carries, if any (a bare tag names no repository).
fn name_of(desc: &Descriptor) -> Option<String> {
    let a = desc.annotations.as_ref()?;
    if let Some(n) = a.get(ANNOTATION_IMAGE_NAME) {
        return image::normalize_reference(n).ok();
    }
    let r = a.get(ANNOTATION_REF_NAME)?;
    if r.contains('/') || r.contains(':') {
        return image::normalize_reference(r).ok();
    }
    None
}

/// Loads a docker-archive or OCI-archive tarball (plain or gzip-compressed, with gzip or
/// plain layers) into the store and tags its images; returns the names loaded (the
/// manifest digest for an image without a name).
pub fn load_archive(store: &Store, file: &Path) -> Result<Vec<String>, StoreError> {
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = remove_all(&self.0);
        }
    }
    let dir = Cleanup(store.tmp_path("load"));
    unpack_archive(file, &dir.0)?;
    let mut names = Vec::new();
    let manifest_json = dir.0.join("manifest.json");
    if manifest_json.is_file() {
        let bytes = fs::read(&manifest_json).map_err(io_err("read", &manifest_json))?;
        let entries: Vec<DockerArchiveEntry> = serde_json::from_slice(&bytes).map_err(|e| {
            StoreError::Invalid(format!(
                "Cannot load `{}`: its manifest.json is not a docker-archive manifest: {e}",
                file.display()
            ))
        })?;
        for entry in entries {
            let cfg_path = archive_path(&dir.0, &entry.config, file)?;
            let cfg = fs::read(&cfg_path).map_err(io_err("read", &cfg_path))?;
            let layers = entry.layers.iter().map(|l| archive_path(&dir.0, l, file)).collect::<Result<Vec<_>, _>>()?;
            let rec = image::import_config_and_layers(store, &cfg, &cfg_path, &layers)?;
            let tags = entry.repo_tags.unwrap_or_default();
            if tags.is_empty() {
                names.push(rec.manifest_digest.to_string());
            }
            for t in tags {
                names.push(store.tag_image(&t, &rec)?);
            }
        }
        return Ok(names);
    }
    if dir.0.join("index.json").is_file() {
        let index = read_index(&dir.0.join("index.json"))?;
        for desc in &index.manifests {
            let rec = import_descriptor(store, &dir.0, desc)?;
            match name_of(desc) {
                Some(n) => names.push(store.tag_image(&n, &rec)?),
                None => names.push(rec.manifest_digest.to_string()),
            }
        }
        return Ok(names);
    }
    Err(StoreError::Invalid(format!(
        "Cannot load `{}`: it is neither a docker-archive (no manifest.json) nor an OCI archive (no index.json)",
        file.display()
    )))
}

fn read_index(p: &Path) -> Result<Index, StoreError> {
    let bytes = fs::read(p).map_err(io_err("read", p))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| StoreError::Corrupt { path: p.to_path_buf(), message: format!("not an OCI index: {e}") })
}

fn layout_blob(dir: &Path, d: &Digest) -> Result<PathBuf, StoreError> {
    let p = dir.join("blobs/sha256").join(d.hex());
    if !p.is_file() {
        return Err(StoreError::NotFound(format!("Blob `{d}` is missing from the OCI layout `{}`", dir.display())));
    }
    Ok(p)
}

/// Imports the image an index entry of the layout `dir` points at; for a nested index
/// (a multi-platform image) the manifest for this machine's platform.
fn import_descriptor(store: &Store, dir: &Path, desc: &Descriptor) -> Result<ImageRecord, StoreError> {
    let mut desc = desc.clone();
    for _ in 0..4 {
        let p = layout_blob(dir, &desc.digest)?;
        let bytes = fs::read(&p).map_err(io_err("read", &p))?;
        if Digest::of(&bytes) != desc.digest {
            return Err(StoreError::Corrupt {
                path: p,
                message: format!("the content does not match its digest `{}`", desc.digest),
            });
        }
        let is_index = desc.media_type == MEDIA_OCI_INDEX
            || desc.media_type == MEDIA_DOCKER_LIST
            || serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|v| v.get("manifests").is_some());
        if !is_index {
            return image::import_manifest(store, &bytes, &p, &|d| layout_blob(dir, d));
        }
        let idx: Index = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Corrupt { path: p.clone(), message: format!("not an OCI index: {e}") })?;
        let host = Platform::host();
        let pick = idx
            .manifests
            .iter()
            .find(|m| {
                m.platform.as_ref().is_some_and(|pl| {
                    pl.os == host.os
                        && pl.architecture == host.architecture
                        && (host.variant.is_empty() || pl.variant.as_deref().is_none_or(|v| v == host.variant))
                })
            })
            .or(if idx.manifests.len() == 1 { idx.manifests.first() } else { None })
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "The image index `{}` in `{}` has no manifest for `{host}`",
                    desc.digest,
                    dir.display()
                ))
            })?;
        desc = pick.clone();
    }
    Err(StoreError::Invalid(format!("The OCI layout `{}` nests image indexes too deeply", dir.display())))
}

/// Imports an image from the OCI layout directory `dir`. `selector` picks the manifest:
/// a tag (`org.opencontainers.image.ref.name`, or a full name), `sha256:…`, or `None`
/// when the layout holds exactly one.
pub fn import_oci_layout(store: &Store, dir: &Path, selector: Option<&str>) -> Result<ImageRecord, StoreError> {
    let index = read_index(&dir.join("index.json"))?;
    let listing = || {
        index
            .manifests
            .iter()
            .map(|m| {
                let tag = m.annotations.as_ref().and_then(|a| a.get(ANNOTATION_REF_NAME)).cloned();
                tag.unwrap_or_else(|| m.digest.to_string())
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let desc = match selector.filter(|s| !s.is_empty()) {
        None => match index.manifests.as_slice() {
            [one] => one.clone(),
            [] => return Err(StoreError::NotFound(format!("The OCI layout `{}` holds no image", dir.display()))),
            _ => {
                return Err(StoreError::Invalid(format!(
                    "The OCI layout `{}` holds several images ({}); choose one with `:TAG` or `@sha256:…`",
                    dir.display(),
                    listing()
                )))
            }
        },
        Some(s) if s.starts_with("sha256:") => {
            let d: Digest = s.parse().map_err(|e| StoreError::Invalid(format!("{e}")))?;
            match index.manifests.iter().find(|m| m.digest == d) {
                Some(m) => m.clone(),
                None => {
                    let p = layout_blob(dir, &d)?;
                    let size = fs::metadata(&p).map_err(io_err("stat", &p))?.len();
                    Descriptor {
                        media_type: MEDIA_OCI_MANIFEST.into(),
                        digest: d,
                        size,
                        annotations: None,
                        platform: None,
                    }
                }
            }
        }
        Some(tag) => {
            let full = image::normalize_reference(tag).ok();
            index
                .manifests
                .iter()
                .find(|m| {
                    let a = m.annotations.as_ref();
                    a.and_then(|a| a.get(ANNOTATION_REF_NAME)).is_some_and(|r| r == tag)
                        || (full.is_some() && name_of(m) == full)
                })
                .cloned()
                .ok_or_else(|| {
                    StoreError::NotFound(format!(
                        "The OCI layout `{}` has no image `{tag}` (it has: {})",
                        dir.display(),
                        listing()
                    ))
                })?
        }
    };
    import_descriptor(store, dir, &desc)
}

/// Splits `oci-layout://PATH[:TAG|@sha256:…]` (the prefix is optional) into the layout
/// path and the selector.
pub fn parse_oci_layout_ref(reference: &str) -> (PathBuf, Option<String>) {
    let r = reference.strip_prefix("oci-layout://").unwrap_or(reference);
    if let Some(i) = r.rfind("@sha256:") {
        return (PathBuf::from(&r[..i]), Some(r[i + 1..].to_string()));
    }
    let last = r.rfind('/').map_or(0, |i| i + 1);
    match r[last..].rfind(':') {
        Some(i) => (PathBuf::from(&r[..last + i]), Some(r[last + i + 1..].to_string())),
        None => (PathBuf::from(r), None),
    }
}

/// An image by reference, as the solver asks for it: a store reference, or
/// `oci-layout://PATH[:TAG|@sha256:…]` (imported into the store first). `None` when a
/// store reference is unknown.
pub fn resolve_image(store: &Store, reference: &str) -> Result<Option<ImageRecord>, StoreError> {
    if reference.starts_with("oci-layout://") {
        let (dir, sel) = parse_oci_layout_ref(reference);
        return import_oci_layout(store, &dir, sel.as_deref()).map(Some);
    }
    store.get_image(reference)
}
