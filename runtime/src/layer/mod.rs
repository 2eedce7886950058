//! Layer directories (overlayfs upper-dir format) to OCI layer tars and back.
//!
//! A layer directory is what overlayfs leaves in an upper dir: a deleted path is a
//! character device 0:0 ("whiteout") and a directory that hides everything below it
//! carries the xattr `trusted.overlay.opaque=y`. An OCI layer tar says the same with
//! marker files: an empty `.wh.<name>` beside the deleted entry and `.wh..wh..opq` inside
//! the opaque directory. [`write_layer_tar`] converts one way, [`extract_layer_tar`] the
//! other.
//!
//! **Deterministic tars.** The same directory always gives the same bytes, which makes
//! diff_ids (and so image config digests) reproducible:
//! - entries come in depth-first order with each directory's children sorted by the bytes
//!   of their names; a directory comes before its contents, and an opaque directory's
//!   `.wh..wh..opq` right after the directory (where importers expect it);
//! - headers are POSIX ustar with exactly: mode bits, uid, gid, mtime in whole seconds
//!   (clamped to `source_date_epoch` when given), size, link target and device numbers;
//!   user and group names, atime and ctime are left out;
//! - a PAX extended header is added only when needed: a path or link target over 100
//!   bytes, an id or size too large for ustar, and extended attributes
//!   (`SCHILY.xattr.<name>`, sorted). Attributes that describe the host rather than the
//!   file are not exported: `trusted.overlay.*`/`user.overlay.*` (overlayfs bookkeeping)
//!   and `security.selinux` (a host label);
//! - a regular file whose inode was already written becomes a hard-link entry naming the
//!   first path, so hard links survive (whiteouts are excluded: overlayfs may hard-link
//!   them all to one shared inode).
//!
//! **Safe extraction.** Entry paths are relative to the layer root; an absolute path or a
//! `..` component is an error naming the entry, and no parent directory of an entry may
//! be a symlink or a file, so nothing is ever written outside the target directory.
//! Extraction is meant for a fresh directory under the store's `tmp/` that is committed
//! only when the whole tar was read.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use crate::store::sys;

/// The overlayfs xattr marking an opaque directory: `trusted.overlay.opaque`, or in a user
/// namespace (rootless, where `trusted.*` is out of reach) `user.overlay.opaque`, the one
/// overlayfs uses when mounted with `userxattr` (`mount.rs` adds it there).
pub(crate) fn opaque_xattr() -> &'static [u8] {
    if crate::store::userns::in_user_namespace() {
        b"user.overlay.opaque"
    } else {
        b"trusted.overlay.opaque"
    }
}
/// Marker file of an opaque directory in a layer tar.
pub(crate) const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// Prefix of a whiteout marker file in a layer tar.
pub(crate) const WHITEOUT_PREFIX: &str = ".wh.";

/// An `io::Error` whose message names `path`.
pub(crate) fn ctx(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("`{}`: {e}", path.display()))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Whether `md` is an overlay whiteout (a character device 0:0).
pub(crate) fn is_whiteout(md: &Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

/// Whether the directory at `p` is marked opaque.
pub(crate) fn is_opaque(p: &Path) -> io::Result<bool> {
    Ok(sys::get_xattr(p, opaque_xattr())?.is_some_and(|v| v == b"y"))
}

/// Whether an extended attribute belongs in a tar (or a copy) of the file.
pub(crate) fn exported_xattr(name: &[u8]) -> bool {
    !(name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") || name == b"security.selinux")
}

/// The exported extended attributes of `p`, sorted by name.
pub(crate) fn file_xattrs(p: &Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    Ok(sys::list_xattrs(p)?.into_iter().filter(|(n, _)| exported_xattr(n)).collect())
}

/// Names of a directory's entries, sorted by their bytes.
pub(crate) fn sorted_names(dir: &Path) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| ctx(dir, e))? {
        names.push(e.map_err(|e| ctx(dir, e))?.file_name());
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

mod extract;
mod tar_out;
mod writers;

pub(crate) use extract::{apply_metadata, clean_components};
pub use extract::{extract_layer_tar, extract_layer_tar_with};
pub(crate) use tar_out::TarOut;

fn join_name(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut v = prefix.to_vec();
    if !v.is_empty() {
        v.push(b'/');
    }
    v.extend_from_slice(name);
    v
}

fn walk_layer<W: Write>(out: &mut TarOut<W>, dir: &Path, prefix: &[u8]) -> io::Result<()> {
    for n in sorted_names(dir)? {
        let p = dir.join(&n);
        let md = p.symlink_metadata().map_err(|e| ctx(&p, e))?;
        if is_whiteout(&md) {
            let mut wh = WHITEOUT_PREFIX.as_bytes().to_vec();
            wh.extend_from_slice(n.as_bytes());
            out.append_marker(&join_name(prefix, &wh), &md, 0)?;
            continue;
        }
        let name = join_name(prefix, n.as_bytes());
        out.append_path(&name, &p, &md)?;
        if md.is_dir() {
            if is_opaque(&p).map_err(|e| ctx(&p, e))? {
                out.append_marker(&join_name(&name, OPAQUE_MARKER.as_bytes()), &md, md.mode() & 0o7777)?;
            }
            walk_layer(out, &p, &name)?;
        }
    }
    Ok(())
}

/// Writes the layer directory `dir` as a deterministic OCI layer tar (see the module doc);
/// mtimes later than `source_date_epoch` are clamped to it.
pub fn write_layer_tar(dir: &Path, out: impl Write, source_date_epoch: Option<u64>) -> io::Result<()> {
    let mut t = TarOut::new(out, source_date_epoch);
    if is_opaque(dir).map_err(|e| ctx(dir, e))? {
        let md = dir.symlink_metadata().map_err(|e| ctx(dir, e))?;
        t.append_marker(OPAQUE_MARKER.as_bytes(), &md, md.mode() & 0o7777)?;
    }
    walk_layer(&mut t, dir, b"")?;
    t.finish()?.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_checked() {
        assert_eq!(clean_components(b"./a//b/./c").unwrap(), vec![&b"a"[..], b"b", b"c"]);
        assert!(clean_components(b"/etc/passwd").unwrap_err().to_string().contains("absolute path"));
        let e = clean_components(b"a/../../x").unwrap_err();
        assert!(e.to_string().contains("Archive entry `a/../../x` leaves the target directory"), "{e}");
        assert!(clean_components(b"./").unwrap().is_empty());
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        let mut buf = Vec::new();
        let mut t = TarOut::new(&mut buf, None);
        let long = "d/".repeat(60) + "file";
        let md = std::env::temp_dir().symlink_metadata().unwrap();
        t.append_marker(long.as_bytes(), &md, 0o644).unwrap();
        t.finish().unwrap();
        let mut ar = tar::Archive::new(buf.as_slice());
        let names: Vec<String> =
            ar.entries().unwrap().map(|e| String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap()).collect();
        assert_eq!(names, vec![long]);
    }
}
