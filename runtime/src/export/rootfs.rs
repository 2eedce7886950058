//! Root filesystem exporters (`-o type=local`, `-o type=tar`). The filesystem is computed,
//! not copied layer by layer: [`merge_layers`] builds the merged tree in memory (bottom
//! layer first; a whiteout removes a path, an opaque directory drops everything below it
//! from lower layers), then the tree is either copied out once or written as a tar with
//! the deterministic writer of [`crate::layer`]. A multi-platform build writes one
//! directory per platform (`linux_amd64/`, `linux_arm64/`), in the directory or the tar,
//! as buildx does.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{ExportContext, ExportSource, Exporter};
use crate::layer::{self, TarOut};
use crate::output::{check_dir_output, install_dir, Install, OutputFile, SiblingTemp};
use crate::store::{io_err, sys, Store, StoreError};

/// A node of a merged filesystem tree: where its content comes from (`None` for the
/// root) and, for a directory, its children by name.
#[derive(Debug, Default)]
pub(crate) struct MergedNode {
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
pub(crate) fn merge_layers(store: &Store, layers: &[String]) -> Result<MergedNode, StoreError> {
    let mut root = MergedNode { src: None, dir: true, children: BTreeMap::new() };
    crate::image::materialize(store, layers, &|_, _, _| {})?;
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
pub(crate) fn write_rootfs_tar(
    store: &Store,
    layers: &[String],
    out: impl Write,
    source_date_epoch: Option<u64>,
) -> Result<(), StoreError> {
    write_rootfs_tars(store, &[("", layers)], out, source_date_epoch)
}

/// One tar of several root filesystems, each under its prefix (`""`: at the top).
fn write_rootfs_tars(
    store: &Store,
    trees: &[(&str, &[String])],
    out: impl Write,
    source_date_epoch: Option<u64>,
) -> Result<(), StoreError> {
    let mut t = TarOut::new(out, source_date_epoch);
    let werr = |e: io::Error| StoreError::Io {
        action: "write the root filesystem tar from",
        path: store.layout().layers_dir(),
        source: e,
    };
    for (prefix, layers) in trees {
        let tree = merge_layers(store, layers)?;
        write_tree(&mut t, &tree, prefix.as_bytes()).map_err(werr)?;
    }
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
    export_rootfs_dirs(store, &[("", layers)], dest)
}

/// Copies several merged filesystems into `dest`, each into its sub-directory (`""`: `dest`
/// itself), all or nothing.
pub fn export_rootfs_dirs(store: &Store, trees: &[(&str, &[String])], dest: &Path) -> Result<(), StoreError> {
    check_dir_output(dest)?;
    let tmp = SiblingTemp::new(dest, "rootfs")?;
    fs::create_dir(&tmp.path).map_err(io_err("create directory", &tmp.path))?;
    for (sub, layers) in trees {
        let tree = merge_layers(store, layers)?;
        let to = tmp.path.join(sub);
        if !sub.is_empty() {
            fs::create_dir(&to).map_err(io_err("create directory", &to))?;
        }
        copy_tree(&tree, &to, &mut HashMap::new()).map_err(|e| StoreError::Io {
            action: "export the root filesystem to",
            path: dest.to_path_buf(),
            source: e,
        })?;
    }
    install_dir(tmp, dest, Install::ReplaceTop)
}

/// The trees of `src`: its one chain at the top, or each platform's in its directory.
fn trees<'a>(src: &ExportSource<'a>, names: &'a [String]) -> Vec<(&'a str, &'a [String])> {
    if src.platforms.is_empty() {
        return vec![("", src.layers)];
    }
    names.iter().map(String::as_str).zip(src.platforms.iter().map(|p| p.layers)).collect()
}

fn dir_names(src: &ExportSource<'_>) -> Vec<String> {
    src.platforms.iter().map(|p| super::platform_dir_name(p.platform)).collect()
}

/// `-o type=local,dest=DIR` (or `-o DIR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsDir {
    pub dest: PathBuf,
}

impl Exporter for RootfsDir {
    fn needs_image(&self) -> bool {
        false
    }
    fn export(&self, store: &Store, src: &ExportSource<'_>, _cx: &ExportContext<'_>) -> Result<(), StoreError> {
        let names = dir_names(src);
        export_rootfs_dirs(store, &trees(src, &names), &self.dest)
    }
}

/// `-o type=tar,dest=FILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsTar {
    pub dest: PathBuf,
}

impl Exporter for RootfsTar {
    fn needs_image(&self) -> bool {
        false
    }
    fn export(&self, store: &Store, src: &ExportSource<'_>, cx: &ExportContext<'_>) -> Result<(), StoreError> {
        let names = dir_names(src);
        let mut out = OutputFile::create(&self.dest)?;
        write_rootfs_tars(store, &trees(src, &names), &mut out, cx.source_date_epoch)?;
        out.commit()
    }
}
