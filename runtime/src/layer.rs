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

/// The overlayfs xattr marking an opaque directory.
pub const OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";
/// Marker file of an opaque directory in a layer tar.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// Prefix of a whiteout marker file in a layer tar.
pub const WHITEOUT_PREFIX: &str = ".wh.";

/// An `io::Error` whose message names `path`.
pub(crate) fn ctx(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("`{}`: {e}", path.display()))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Whether `md` is an overlay whiteout (a character device 0:0).
pub fn is_whiteout(md: &Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

/// Whether the directory at `p` is marked opaque.
pub fn is_opaque(p: &Path) -> io::Result<bool> {
    Ok(sys::get_xattr(p, OPAQUE_XATTR)?.is_some_and(|v| v == b"y"))
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

/// A deterministic tar writer over filesystem entries (shared by layer tars and rootfs
/// tars).
pub(crate) struct TarOut<W: Write> {
    b: tar::Builder<W>,
    epoch: Option<u64>,
    /// (dev, inode) of multiply-linked files already written → their archive name.
    links: HashMap<(u64, u64), Vec<u8>>,
}

const USTAR_ID_MAX: u64 = 0o7777777;
const USTAR_SIZE_MAX: u64 = 0o77777777777;

impl<W: Write> TarOut<W> {
    pub fn new(w: W, source_date_epoch: Option<u64>) -> TarOut<W> {
        TarOut { b: tar::Builder::new(w), epoch: source_date_epoch, links: HashMap::new() }
    }

    fn mtime(&self, secs: i64) -> u64 {
        let m = secs.max(0) as u64;
        self.epoch.map_or(m, |e| m.min(e))
    }

    /// Writes one header (with a PAX header first when needed) and `size` bytes of data.
    #[allow(clippy::too_many_arguments)]
    fn put(
        &mut self,
        mut h: Header,
        name: &[u8],
        link: Option<&[u8]>,
        uid: u64,
        gid: u64,
        size: u64,
        xattrs: &[(Vec<u8>, Vec<u8>)],
        data: &mut dyn Read,
    ) -> io::Result<()> {
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        {
            let u = h.as_ustar_mut().ok_or_else(|| io::Error::other("not a ustar header"))?;
            let n = name.len().min(100);
            u.name = [0; 100];
            u.name[..n].copy_from_slice(&name[..n]);
            if let Some(l) = link {
                let n = l.len().min(100);
                u.linkname = [0; 100];
                u.linkname[..n].copy_from_slice(&l[..n]);
            }
        }
        if name.len() > 100 {
            pax.push(("path".into(), name.to_vec()));
        }
        if let Some(l) = link.filter(|l| l.len() > 100) {
            pax.push(("linkpath".into(), l.to_vec()));
        }
        if size > USTAR_SIZE_MAX {
            pax.push(("size".into(), size.to_string().into_bytes()));
        }
        if uid > USTAR_ID_MAX {
            pax.push(("uid".into(), uid.to_string().into_bytes()));
        }
        if gid > USTAR_ID_MAX {
            pax.push(("gid".into(), gid.to_string().into_bytes()));
        }
        for (k, v) in xattrs {
            pax.push((format!("SCHILY.xattr.{}", String::from_utf8_lossy(k)), v.clone()));
        }
        h.set_uid(if uid > USTAR_ID_MAX { 0 } else { uid });
        h.set_gid(if gid > USTAR_ID_MAX { 0 } else { gid });
        h.set_size(size);
        if !pax.is_empty() {
            let mut records = Vec::new();
            for (k, v) in &pax {
                // "<len> <key>=<value>\n" where <len> counts itself.
                let rest = k.len() + v.len() + 3;
                let mut len = rest + 1;
                while len.to_string().len() + rest != len {
                    len = len.to_string().len() + rest;
                }
                records.extend_from_slice(format!("{len} {k}=").as_bytes());
                records.extend_from_slice(v);
                records.push(b'\n');
            }
            let base = name.rsplit(|&b| b == b'/').find(|c| !c.is_empty()).unwrap_or(b"entry");
            let mut pname = b"PaxHeaders/".to_vec();
            pname.extend_from_slice(base);
            pname.truncate(100);
            let mut ph = Header::new_ustar();
            if let Some(u) = ph.as_ustar_mut() {
                u.name[..pname.len()].copy_from_slice(&pname);
            }
            ph.set_mode(0o644);
            ph.set_mtime(h.mtime().unwrap_or(0));
            ph.set_size(records.len() as u64);
            ph.set_entry_type(EntryType::XHeader);
            ph.set_cksum();
            self.b.append(&ph, records.as_slice())?;
        }
        h.set_cksum();
        let mut counted = CountingReader { inner: data.take(size), n: 0 };
        self.b.append(&h, &mut counted)?;
        if counted.n != size {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while it was being archived"));
        }
        Ok(())
    }

    /// Appends the filesystem entry at `path` under the archive name `name` (relative,
    /// no trailing slash). Sockets are skipped (a tar cannot hold them).
    pub fn append_path(&mut self, name: &[u8], path: &Path, md: &Metadata) -> io::Result<()> {
        let ft = md.file_type();
        if ft.is_socket() {
            return Ok(());
        }
        let mut h = Header::new_ustar();
        h.set_mode(md.mode() & 0o7777);
        h.set_mtime(self.mtime(md.mtime()));
        let mut name = name.to_vec();
        let mut link: Option<Vec<u8>> = None;
        let mut size = 0;
        let mut xattrs = Vec::new();
        let mut file: Option<File> = None;
        if ft.is_dir() {
            h.set_entry_type(EntryType::Directory);
            name.push(b'/');
            xattrs = file_xattrs(path).map_err(|e| ctx(path, e))?;
        } else if let Some(first) =
            (md.nlink() > 1 && !is_whiteout(md)).then(|| self.links.get(&(md.dev(), md.ino())).cloned()).flatten()
        {
            h.set_entry_type(EntryType::Link);
            link = Some(first);
        } else {
            if md.nlink() > 1 && !is_whiteout(md) {
                self.links.insert((md.dev(), md.ino()), name.clone());
            }
            xattrs = file_xattrs(path).map_err(|e| ctx(path, e))?;
            if ft.is_file() {
                h.set_entry_type(EntryType::Regular);
                size = md.len();
                file = Some(File::open(path).map_err(|e| ctx(path, e))?);
            } else if ft.is_symlink() {
                h.set_entry_type(EntryType::Symlink);
                link = Some(fs::read_link(path).map_err(|e| ctx(path, e))?.into_os_string().into_vec());
            } else if ft.is_char_device() || ft.is_block_device() {
                h.set_entry_type(if ft.is_char_device() { EntryType::Char } else { EntryType::Block });
                let (maj, min) = sys::dev_numbers(md.rdev());
                h.set_device_major(maj)?;
                h.set_device_minor(min)?;
            } else if ft.is_fifo() {
                h.set_entry_type(EntryType::Fifo);
            }
        }
        let mut data: Box<dyn Read> = match file {
            Some(f) => Box::new(io::BufReader::with_capacity(256 * 1024, f)),
            None => Box::new(io::empty()),
        };
        self.put(h, &name, link.as_deref(), md.uid() as u64, md.gid() as u64, size, &xattrs, &mut data)
            .map_err(|e| ctx(path, e))
    }

    /// Appends an empty regular file (a whiteout or opaque marker) with the owner and
    /// mtime of `md` and the given mode.
    pub fn append_marker(&mut self, name: &[u8], md: &Metadata, mode: u32) -> io::Result<()> {
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(mode);
        h.set_mtime(self.mtime(md.mtime()));
        self.put(h, name, None, md.uid() as u64, md.gid() as u64, 0, &[], &mut io::empty())
    }

    /// Writes the end-of-archive blocks and returns the writer.
    pub fn finish(self) -> io::Result<W> {
        self.b.into_inner()
    }
}

struct CountingReader<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

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

/// Splits an archive path into clean components: `.` and empty parts dropped, an
/// absolute path or a `..` component refused.
pub(crate) fn clean_components(raw: &[u8]) -> io::Result<Vec<&[u8]>> {
    let shown = || String::from_utf8_lossy(raw).into_owned();
    if raw.starts_with(b"/") {
        return Err(invalid(format!("Archive entry `{}` is an absolute path; layer paths must be relative", shown())));
    }
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                return Err(invalid(format!("Archive entry `{}` leaves the target directory through `..`", shown())))
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

fn rel_path(comps: &[&[u8]]) -> PathBuf {
    comps.iter().map(|c| Path::new(std::ffi::OsStr::from_bytes(c))).collect()
}

/// Creates a directory at `p` (0755), replacing a whiteout by an opaque directory (a
/// deleted lower directory must stay hidden) and anything else that is not a directory.
fn make_dir(p: &Path) -> io::Result<()> {
    match p.symlink_metadata() {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(m) => {
            let was_whiteout = is_whiteout(&m);
            fs::remove_file(p)?;
            fs::create_dir(p)?;
            fs::set_permissions(p, fs::Permissions::from_mode(0o755))?;
            if was_whiteout {
                sys::set_xattr(p, OPAQUE_XATTR, b"y")?;
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir(p)?;
            fs::set_permissions(p, fs::Permissions::from_mode(0o755))?;
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Makes sure every parent of `comps` exists below `dir` as a real directory: missing ones
/// are created, a symlink or file on the way is an error (it could lead outside `dir`).
fn ensure_parents(dir: &Path, comps: &[&[u8]], raw: &[u8]) -> io::Result<()> {
    let mut cur = dir.to_path_buf();
    for c in &comps[..comps.len().saturating_sub(1)] {
        cur.push(std::ffi::OsStr::from_bytes(c));
        match cur.symlink_metadata() {
            Ok(m) if m.is_dir() => {}
            Ok(m) if is_whiteout(&m) => make_dir(&cur).map_err(|e| ctx(&cur, e))?,
            Ok(_) => {
                return Err(invalid(format!(
                    "Archive entry `{}` goes through `{}`, which is not a directory (a symlink or a file)",
                    String::from_utf8_lossy(raw),
                    cur.strip_prefix(dir).unwrap_or(&cur).display()
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => make_dir(&cur).map_err(|e| ctx(&cur, e))?,
            Err(e) => return Err(ctx(&cur, e)),
        }
    }
    Ok(())
}

/// Like [`ensure_parents`] but creates nothing: every existing parent must be a real
/// directory (a missing one is left to the caller).
fn check_parents(dir: &Path, comps: &[&[u8]], raw: &[u8]) -> io::Result<()> {
    let mut cur = dir.to_path_buf();
    for c in &comps[..comps.len().saturating_sub(1)] {
        cur.push(std::ffi::OsStr::from_bytes(c));
        match cur.symlink_metadata() {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(invalid(format!(
                    "Archive entry `{}` goes through `{}`, which is not a directory (a symlink or a file)",
                    String::from_utf8_lossy(raw),
                    cur.strip_prefix(dir).unwrap_or(&cur).display()
                )))
            }
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// Creates the missing parents of `comps` in `dir` with the metadata the topmost lower
/// layer gives them, so the copied-up file does not change how its directories look.
fn copy_up_parents(dir: &Path, comps: &[&[u8]], lowers: &[PathBuf]) -> io::Result<()> {
    let mut rel = PathBuf::new();
    for c in &comps[..comps.len().saturating_sub(1)] {
        rel.push(std::ffi::OsStr::from_bytes(c));
        let here = dir.join(&rel);
        if here.symlink_metadata().is_ok() {
            continue;
        }
        fs::create_dir(&here).map_err(|e| ctx(&here, e))?;
        let lower = lowers.iter().rev().map(|l| l.join(&rel)).find_map(|p| p.symlink_metadata().ok().map(|m| (p, m)));
        match lower {
            Some((p, m)) if m.is_dir() => {
                let x = file_xattrs(&p).map_err(|e| ctx(&p, e))?;
                apply_metadata(&here, false, m.uid(), m.gid(), m.mode(), &x, Some((m.mtime(), m.mtime_nsec())))?;
            }
            _ => fs::set_permissions(&here, fs::Permissions::from_mode(0o755)).map_err(|e| ctx(&here, e))?,
        }
    }
    Ok(())
}

/// Removes whatever is at `p` (nothing there is fine).
fn clear(p: &Path) -> io::Result<()> {
    crate::store::remove_all(p).map_err(|e| ctx(p, e))
}

/// Owner, mode, extended attributes and (for non-directories) mtime, in the order that
/// keeps set-id bits and capabilities (a chown clears both).
pub(crate) fn apply_metadata(
    p: &Path,
    is_symlink: bool,
    uid: u32,
    gid: u32,
    mode: u32,
    xattrs: &[(Vec<u8>, Vec<u8>)],
    mtime: Option<(i64, i64)>,
) -> io::Result<()> {
    let root = sys::is_root();
    if let Err(e) = sys::lchown(p, uid, gid) {
        if root || e.kind() != io::ErrorKind::PermissionDenied {
            return Err(ctx(p, e));
        }
    }
    if !is_symlink {
        fs::set_permissions(p, fs::Permissions::from_mode(mode & 0o7777)).map_err(|e| ctx(p, e))?;
    }
    for (k, v) in xattrs.iter().filter(|(k, _)| exported_xattr(k)) {
        if let Err(e) = sys::set_xattr(p, k, v) {
            let ignorable =
                e.raw_os_error() == Some(libc::ENOTSUP) || (!root && e.kind() == io::ErrorKind::PermissionDenied);
            if !ignorable {
                return Err(ctx(
                    p,
                    io::Error::new(e.kind(), format!("set xattr `{}`: {e}", String::from_utf8_lossy(k))),
                ));
            }
        }
    }
    if let Some((s, ns)) = mtime {
        sys::set_mtime(p, s, ns).map_err(|e| ctx(p, e))?;
    }
    Ok(())
}

/// Copies one non-directory entry with its metadata (used to bring up a hard-link target
/// from a lower layer).
fn copy_up(src: &Path, dst: &Path) -> io::Result<()> {
    let md = src.symlink_metadata().map_err(|e| ctx(src, e))?;
    if md.file_type().is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(src)?, dst).map_err(|e| ctx(dst, e))?;
    } else if md.is_file() {
        fs::copy(src, dst).map_err(|e| ctx(dst, e))?;
    } else {
        return Err(invalid(format!("Cannot hard-link to `{}`: not a regular file", src.display())));
    }
    let x = file_xattrs(src).map_err(|e| ctx(src, e))?;
    apply_metadata(
        dst,
        md.file_type().is_symlink(),
        md.uid(),
        md.gid(),
        md.mode(),
        &x,
        Some((md.mtime(), md.mtime_nsec())),
    )
}

/// Extracts a layer tar into `dir` in overlay format (see the module doc).
pub fn extract_layer_tar(reader: impl Read, dir: &Path) -> io::Result<()> {
    extract_layer_tar_with(reader, dir, &[])
}

/// [`extract_layer_tar`] for a layer stacked on `lowers` (bottom first): a hard link to a
/// file that only a lower layer has copies that file up first.
pub fn extract_layer_tar_with(reader: impl Read, dir: &Path, lowers: &[PathBuf]) -> io::Result<()> {
    fs::create_dir_all(dir).map_err(|e| ctx(dir, e))?;
    let mut ar = tar::Archive::new(reader);
    let mut dir_times: Vec<(PathBuf, i64, i64)> = Vec::new();
    for entry in ar.entries()? {
        let mut e = entry?;
        let raw = e.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let in_entry = |err: io::Error| io::Error::new(err.kind(), format!("Archive entry `{shown}`: {err}"));
        let comps = clean_components(&raw)?;
        let Some(&base) = comps.last() else { continue };
        let kind = e.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink
        ) {
            continue;
        }
        ensure_parents(dir, &comps, &raw)?;
        let target = dir.join(rel_path(&comps));
        let parent = target.parent().unwrap_or(dir).to_path_buf();
        if base == OPAQUE_MARKER.as_bytes() {
            sys::set_xattr(&parent, OPAQUE_XATTR, b"y").map_err(|err| ctx(&parent, err)).map_err(in_entry)?;
            continue;
        }
        if base.starts_with(b".wh..wh.") {
            continue; // aufs bookkeeping (`.wh..wh.plnk`, …): nothing to do in overlay format
        }
        let h = e.header();
        // Empty numeric fields (some writers leave them blank) read as 0, as in Go's tar.
        let mode = h.mode().map_err(in_entry)?;
        let mut uid = h.uid().unwrap_or(0);
        let mut gid = h.gid().unwrap_or(0);
        let mut mtime = (h.mtime().unwrap_or(0) as i64, 0i64);
        if let Some(hidden) = base.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            let w = parent.join(std::ffi::OsStr::from_bytes(hidden));
            clear(&w).map_err(in_entry)?;
            sys::mknod(&w, libc::S_IFCHR, 0, 0).map_err(|err| ctx(&w, err)).map_err(in_entry)?;
            // Overlayfs ignores a whiteout's metadata; keeping it makes tar → dir → tar exact.
            apply_metadata(&w, false, uid as u32, gid as u32, 0, &[], Some(mtime)).map_err(in_entry)?;
            continue;
        }
        let link = e.link_name_bytes().map(|l| l.into_owned());
        let dev = (h.device_major().ok().flatten().unwrap_or(0), h.device_minor().ok().flatten().unwrap_or(0));
        let mut xattrs = Vec::new();
        if let Some(exts) = e.pax_extensions().map_err(in_entry)? {
            for ext in exts {
                let ext = ext.map_err(in_entry)?;
                let key = ext.key_bytes();
                let val = ext.value_bytes();
                let num = || std::str::from_utf8(val).ok();
                if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    xattrs.push((name.to_vec(), val.to_vec()));
                } else if key == b"uid" {
                    uid = num().and_then(|v| v.parse().ok()).unwrap_or(uid);
                } else if key == b"gid" {
                    gid = num().and_then(|v| v.parse().ok()).unwrap_or(gid);
                } else if key == b"mtime" {
                    if let Some(v) = num() {
                        let (s, frac) = v.split_once('.').unwrap_or((v, ""));
                        if let Ok(s) = s.parse::<i64>() {
                            let digits: String = frac.chars().take(9).collect();
                            let ns = format!("{digits:0<9}").parse::<i64>().unwrap_or(0);
                            mtime = (s, if s < 0 { 0 } else { ns });
                        }
                    }
                }
            }
        }
        let (uid, gid) = (uid as u32, gid as u32);
        let md_now = target.symlink_metadata().ok();
        match kind {
            EntryType::Directory => {
                if !md_now.as_ref().is_some_and(|m| m.is_dir()) {
                    make_dir(&target).map_err(|err| ctx(&target, err)).map_err(in_entry)?;
                }
                apply_metadata(&target, false, uid, gid, mode, &xattrs, None).map_err(in_entry)?;
                dir_times.push((target, mtime.0, mtime.1));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                clear(&target).map_err(in_entry)?;
                let mut f = File::options()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&target)
                    .map_err(|err| in_entry(ctx(&target, err)))?;
                io::copy(&mut e, &mut f).map_err(in_entry)?;
                drop(f);
                apply_metadata(&target, false, uid, gid, mode, &xattrs, Some(mtime)).map_err(in_entry)?;
            }
            EntryType::Symlink => {
                let l = link.ok_or_else(|| in_entry(invalid("a symlink without a target".into())))?;
                clear(&target).map_err(in_entry)?;
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&l), &target)
                    .map_err(|err| in_entry(ctx(&target, err)))?;
                apply_metadata(&target, true, uid, gid, mode, &xattrs, Some(mtime)).map_err(in_entry)?;
            }
            EntryType::Link => {
                let l = link.ok_or_else(|| in_entry(invalid("a hard link without a target".into())))?;
                let lcomps = clean_components(&l).map_err(in_entry)?;
                if lcomps.is_empty() {
                    return Err(in_entry(invalid("a hard link to the layer root".into())));
                }
                check_parents(dir, &lcomps, &l)?;
                let src = dir.join(rel_path(&lcomps));
                if src == target {
                    continue;
                }
                if src.symlink_metadata().is_err() {
                    let rel = rel_path(&lcomps);
                    let found = lowers
                        .iter()
                        .rev()
                        .map(|lw| lw.join(&rel))
                        .find_map(|p| p.symlink_metadata().ok().map(|m| (p, m)));
                    match found {
                        Some((p, m)) if !is_whiteout(&m) => {
                            copy_up_parents(dir, &lcomps, lowers).map_err(in_entry)?;
                            copy_up(&p, &src).map_err(in_entry)?
                        }
                        _ => {
                            return Err(in_entry(invalid(format!(
                                "the hard-link target `{}` is not in this layer or below it",
                                String::from_utf8_lossy(&l)
                            ))))
                        }
                    }
                }
                if src.symlink_metadata().is_ok_and(|m| m.is_dir()) {
                    return Err(in_entry(invalid(format!(
                        "the hard-link target `{}` is a directory",
                        String::from_utf8_lossy(&l)
                    ))));
                }
                clear(&target).map_err(in_entry)?;
                fs::hard_link(&src, &target).map_err(|err| in_entry(ctx(&target, err)))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                clear(&target).map_err(in_entry)?;
                let ty = match kind {
                    EntryType::Char => libc::S_IFCHR,
                    EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                sys::mknod(&target, ty | (mode & 0o7777), dev.0, dev.1).map_err(|err| in_entry(ctx(&target, err)))?;
                apply_metadata(&target, false, uid, gid, mode, &xattrs, Some(mtime)).map_err(in_entry)?;
            }
            _ => {} // other entry types carry nothing a layer can hold
        }
    }
    // Directory mtimes last: creating their contents changed them.
    for (d, s, ns) in dir_times.iter().rev() {
        sys::set_mtime(d, *s, *ns).map_err(|e| ctx(d, e))?;
    }
    Ok(())
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
