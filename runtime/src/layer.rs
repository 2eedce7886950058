//! Layer directories (overlayfs upper format) ⇄ OCI layer tars.
//!
//! A layer directory is what an overlay upper holds: deletions are character devices 0/0,
//! opaque directories carry the xattr `trusted.overlay.opaque=y`. The tar form uses the
//! OCI whiteout files `.wh.<name>` and `.wh..wh..opq`.
//!
//! Tars are deterministic: entries sorted by path bytes (a directory before its contents,
//! `.wh..wh..opq` right after its directory), PAX records for long names and xattrs
//! (`SCHILY.xattr.*`, overlay's own `trusted.overlay.*` never), hard links as link entries,
//! no user or group names, mtimes clamped to `SOURCE_DATE_EPOCH` when one is given.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const WH_PREFIX: &str = ".wh.";
const WH_OPAQUE: &str = ".wh..wh..opq";

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

/// Extended attributes of `p` (not following symlinks), sorted by name.
pub fn xattrs(p: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    let c = cpath(p)?;
    // SAFETY: size query with a null buffer.
    let n = unsafe { libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0) };
    if n <= 0 {
        return Ok(Vec::new());
    }
    let mut names = vec![0u8; n as usize];
    // SAFETY: buffer of the size just reported.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr() as *mut libc::c_char, names.len()) };
    if n < 0 {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for name in names[..n as usize].split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let cname = CString::new(name).expect("split on NUL");
        // SAFETY: size query.
        let len = unsafe { libc::lgetxattr(c.as_ptr(), cname.as_ptr(), std::ptr::null_mut(), 0) };
        if len < 0 {
            continue;
        }
        let mut val = vec![0u8; len as usize];
        // SAFETY: buffer of the reported size.
        let len = unsafe { libc::lgetxattr(c.as_ptr(), cname.as_ptr(), val.as_mut_ptr() as *mut libc::c_void, val.len()) };
        if len < 0 {
            continue;
        }
        val.truncate(len as usize);
        out.push((String::from_utf8_lossy(name).into_owned(), val));
    }
    out.sort();
    Ok(out)
}

pub fn set_xattr(p: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let c = cpath(p)?;
    let n = CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in xattr name"))?;
    // SAFETY: valid strings and buffer.
    if unsafe { libc::lsetxattr(c.as_ptr(), n.as_ptr(), value.as_ptr() as *const libc::c_void, value.len(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(p: &Path) -> bool {
    xattrs(p).map(|x| x.iter().any(|(k, v)| k == OPAQUE_XATTR && v.as_slice() == b"y")).unwrap_or(false)
}

/// Is the layer directory empty (nothing added, changed or deleted)?
pub fn is_empty_layer(dir: &Path) -> io::Result<bool> {
    Ok(fs::read_dir(dir)?.next().is_none())
}

/// Paths below `dir`, sorted by bytes, each directory before its contents.
fn walk(dir: &Path) -> io::Result<Vec<PathBuf>> {
    walk_from(dir, Path::new("")).map_err(|e| io::Error::new(e.kind(), format!("cannot read layer `{}`: {e}", dir.display())))
}

fn walk_from(dir: &Path, rel: &Path) -> io::Result<Vec<PathBuf>> {
    let full = dir.join(rel);
    let mut names: Vec<_> = fs::read_dir(&full)?.map(|e| e.map(|e| e.file_name())).collect::<io::Result<_>>()?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut out = Vec::new();
    for n in names {
        let r = rel.join(&n);
        let m = fs::symlink_metadata(dir.join(&r))?;
        out.push(r.clone());
        if m.is_dir() {
            out.extend(walk_from(dir, &r)?);
        }
    }
    Ok(out)
}

/// Writes one entry, with a PAX header first when the name or link is long or there are
/// xattrs.
fn append<W: Write>(
    b: &mut tar::Builder<W>,
    mut h: tar::Header,
    path: &[u8],
    link: Option<&[u8]>,
    xattrs: &[(String, Vec<u8>)],
    data: &mut dyn Read,
) -> io::Result<()> {
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    if path.len() > 100 {
        pax.push(("path".into(), path.to_vec()));
    }
    if let Some(l) = link {
        if l.len() > 100 {
            pax.push(("linkpath".into(), l.to_vec()));
        }
    }
    for (k, v) in xattrs {
        if !k.starts_with("trusted.overlay.") {
            pax.push((format!("SCHILY.xattr.{k}"), v.clone()));
        }
    }
    if !pax.is_empty() {
        b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
    }
    {
        let name = &mut h.as_old_mut().name;
        let n = path.len().min(100);
        name.fill(0);
        name[..n].copy_from_slice(&path[..n]);
    }
    if let Some(l) = link {
        let ln = &mut h.as_old_mut().linkname;
        let n = l.len().min(100);
        ln.fill(0);
        ln[..n].copy_from_slice(&l[..n]);
    }
    h.set_cksum();
    b.append(&h, data)
}

fn header(kind: tar::EntryType, m: &fs::Metadata, size: u64, clamp: Option<i64>) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(m.mode() & 0o7777);
    h.set_uid(m.uid() as u64);
    h.set_gid(m.gid() as u64);
    let mtime = m.mtime().max(0);
    h.set_mtime(match clamp {
        Some(c) if mtime > c => c.max(0) as u64,
        _ => mtime as u64,
    });
    h.set_size(size);
    h
}

/// Writes the layer directory `dir` as a deterministic tar to `out`.
pub fn write_layer_tar<W: Write>(dir: &Path, out: W, clamp: Option<i64>) -> io::Result<W> {
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Complete);
    let mut links: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    let empty: &mut dyn Read = &mut io::empty();
    for rel in walk(dir)? {
        let full = dir.join(&rel);
        let m = fs::symlink_metadata(&full)?;
        let name = rel.as_os_str().as_bytes();
        let xa = xattrs(&full).unwrap_or_default();
        if is_whiteout(&m) {
            let parent = rel.parent().unwrap_or(Path::new(""));
            let mut wh = parent.as_os_str().as_bytes().to_vec();
            if !wh.is_empty() {
                wh.push(b'/');
            }
            wh.extend_from_slice(WH_PREFIX.as_bytes());
            wh.extend_from_slice(rel.file_name().unwrap_or_default().as_bytes());
            let mut h = header(tar::EntryType::Regular, &m, 0, clamp);
            h.set_mode(0o644);
            append(&mut b, h, &wh, None, &[], empty)?;
            continue;
        }
        let ft = m.file_type();
        if ft.is_dir() {
            let mut p = name.to_vec();
            p.push(b'/');
            append(&mut b, header(tar::EntryType::Directory, &m, 0, clamp), &p, None, &xa, empty)?;
            if is_opaque(&full) {
                let mut o = name.to_vec();
                o.push(b'/');
                o.extend_from_slice(WH_OPAQUE.as_bytes());
                let mut h = header(tar::EntryType::Regular, &m, 0, clamp);
                h.set_mode(0o644);
                append(&mut b, h, &o, None, &[], empty)?;
            }
        } else if ft.is_symlink() {
            let target = fs::read_link(&full)?;
            append(&mut b, header(tar::EntryType::Symlink, &m, 0, clamp), name, Some(target.as_os_str().as_bytes()), &xa, empty)?;
        } else if ft.is_file() {
            if m.nlink() > 1 {
                let key = (m.dev(), m.ino());
                if let Some(first) = links.get(&key) {
                    let first = first.clone();
                    append(&mut b, header(tar::EntryType::Link, &m, 0, clamp), name, Some(&first), &[], empty)?;
                    continue;
                }
                links.insert(key, name.to_vec());
            }
            let mut f = fs::File::open(&full).map_err(|e| io::Error::new(e.kind(), format!("cannot read `{}`: {e}", full.display())))?;
            append(&mut b, header(tar::EntryType::Regular, &m, m.len(), clamp), name, None, &xa, &mut f)?;
        } else if ft.is_char_device() || ft.is_block_device() {
            let kind = if ft.is_char_device() { tar::EntryType::Char } else { tar::EntryType::Block };
            let mut h = header(kind, &m, 0, clamp);
            let rdev = m.rdev();
            h.set_device_major(libc::major(rdev))?;
            h.set_device_minor(libc::minor(rdev))?;
            append(&mut b, h, name, None, &xa, empty)?;
        } else if ft.is_fifo() {
            append(&mut b, header(tar::EntryType::Fifo, &m, 0, clamp), name, None, &xa, empty)?;
        }
        // Sockets cannot be represented in a tar; skipped as Docker does.
    }
    b.into_inner()
}

/// A safe relative path inside the layer, or an error naming the entry.
fn safe_rel(p: &Path) -> io::Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("layer entry `{}` leaves the layer through `..`", p.display())))
            }
        }
    }
    Ok(out)
}

fn chown(p: &Path, uid: u64, gid: u64) -> io::Result<()> {
    let c = cpath(p)?;
    // SAFETY: valid path.
    if unsafe { libc::lchown(c.as_ptr(), uid as libc::uid_t, gid as libc::gid_t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn set_mtime(p: &Path, secs: i64) -> io::Result<()> {
    let c = cpath(p)?;
    let ts = [libc::timespec { tv_sec: secs, tv_nsec: 0 }, libc::timespec { tv_sec: secs, tv_nsec: 0 }];
    // SAFETY: valid path and two timespecs.
    if unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn mknod_whiteout(p: &Path) -> io::Result<()> {
    let c = cpath(p)?;
    // SAFETY: valid path; a 0/0 character device is overlay's whiteout.
    if unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o000, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Extracts a layer tar into `dir` in overlay format. Entries must stay inside `dir`.
pub fn extract_layer_tar<R: Read>(input: R, dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let mut ar = tar::Archive::new(input);
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    for entry in ar.entries()? {
        let mut e = entry?;
        let raw = e.path()?.into_owned();
        let rel = safe_rel(&raw)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let name = rel.file_name().unwrap_or_default().to_owned();
        let parent = dir.join(rel.parent().unwrap_or(Path::new("")));
        fs::create_dir_all(&parent)?;
        let nb = name.as_bytes();
        if nb == WH_OPAQUE.as_bytes() {
            set_xattr(&parent, OPAQUE_XATTR, b"y")?;
            continue;
        }
        if let Some(hidden) = nb.strip_prefix(WH_PREFIX.as_bytes()) {
            let target = parent.join(OsStr::from_bytes(hidden));
            let _ = fs::remove_file(&target).or_else(|_| fs::remove_dir_all(&target));
            mknod_whiteout(&target)?;
            continue;
        }
        let target = dir.join(&rel);
        let h = e.header().clone();
        let mode = h.mode()? & 0o7777;
        let (uid, gid) = (h.uid()?, h.gid()?);
        let mtime = h.mtime()? as i64;
        let xattrs: Vec<(String, Vec<u8>)> = match e.pax_extensions()? {
            Some(exts) => exts
                .filter_map(|x| x.ok())
                .filter_map(|x| Some((x.key().ok()?.strip_prefix("SCHILY.xattr.")?.to_string(), x.value_bytes().to_vec())))
                .collect(),
            None => Vec::new(),
        };
        match h.entry_type() {
            tar::EntryType::Directory => {
                if fs::symlink_metadata(&target).map(|m| !m.is_dir()).unwrap_or(false) {
                    fs::remove_file(&target)?;
                }
                fs::create_dir_all(&target)?;
                dir_times.push((target.clone(), mtime));
            }
            tar::EntryType::Symlink => {
                let _ = fs::remove_file(&target);
                let l = e.link_name()?.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "symlink without target"))?;
                std::os::unix::fs::symlink(&*l, &target)?;
            }
            tar::EntryType::Link => {
                let l = e.link_name()?.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "hard link without target"))?;
                let src = dir.join(safe_rel(&l)?);
                let _ = fs::remove_file(&target);
                fs::hard_link(&src, &target)
                    .map_err(|err| io::Error::new(err.kind(), format!("hard link `{}` → `{}`: {err}", rel.display(), l.display())))?;
                continue;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let _ = fs::remove_file(&target);
                let kind = match h.entry_type() {
                    tar::EntryType::Char => libc::S_IFCHR,
                    tar::EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                let dev = libc::makedev(h.device_major()?.unwrap_or(0), h.device_minor()?.unwrap_or(0));
                let c = cpath(&target)?;
                // SAFETY: valid path.
                if unsafe { libc::mknod(c.as_ptr(), kind | mode, dev) } != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                if fs::symlink_metadata(&target).is_ok() {
                    let _ = fs::remove_file(&target).or_else(|_| fs::remove_dir_all(&target));
                }
                let mut f = fs::File::create(&target)?;
                io::copy(&mut e, &mut f)?;
            }
            _ => continue,
        }
        chown(&target, uid, gid)?;
        if h.entry_type() != tar::EntryType::Symlink {
            fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        }
        for (k, v) in &xattrs {
            let _ = set_xattr(&target, k, v);
        }
        if h.entry_type() != tar::EntryType::Directory {
            let _ = set_mtime(&target, mtime);
        }
    }
    for (d, t) in dir_times.into_iter().rev() {
        let _ = set_mtime(&d, t);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("cairn-layer-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn deterministic_with_whiteouts_opaque_links_and_long_names() {
        let d = tmp("rt");
        let src = d.join("src");
        fs::create_dir_all(src.join("b/opq")).unwrap();
        fs::write(src.join("b/file"), "x").unwrap();
        fs::hard_link(src.join("b/file"), src.join("a-link")).unwrap();
        std::os::unix::fs::symlink("/b/file", src.join("sym")).unwrap();
        mknod_whiteout(&src.join("gone")).unwrap();
        set_xattr(&src.join("b/opq"), OPAQUE_XATTR, b"y").unwrap();
        set_xattr(&src.join("b/file"), "user.note", b"hello").unwrap();
        let long = "d".repeat(120);
        fs::create_dir_all(src.join(&long)).unwrap();
        fs::write(src.join(&long).join("f".repeat(90)), "long").unwrap();
        let t1 = write_layer_tar(&src, Vec::new(), None).unwrap();
        let t2 = write_layer_tar(&src, Vec::new(), None).unwrap();
        assert_eq!(t1, t2, "deterministic");
        let mut names = Vec::new();
        for e in tar::Archive::new(&t1[..]).entries().unwrap() {
            names.push(e.unwrap().path().unwrap().display().to_string());
        }
        assert_eq!(names[0], "a-link");
        assert!(names.contains(&"b/opq/.wh..wh..opq".to_string()), "{names:?}");
        assert!(names.contains(&".wh.gone".to_string()), "{names:?}");
        assert!(names.iter().any(|n| n.len() > 200), "long name through PAX: {names:?}");
        // Back to overlay format.
        let back = d.join("back");
        extract_layer_tar(&t1[..], &back).unwrap();
        assert!(is_whiteout(&fs::symlink_metadata(back.join("gone")).unwrap()));
        assert!(is_opaque(&back.join("b/opq")));
        assert_eq!(fs::metadata(back.join("a-link")).unwrap().ino(), fs::metadata(back.join("b/file")).unwrap().ino());
        assert_eq!(fs::read_link(back.join("sym")).unwrap(), PathBuf::from("/b/file"));
        assert!(xattrs(&back.join("b/file")).unwrap().contains(&("user.note".to_string(), b"hello".to_vec())));
        assert_eq!(write_layer_tar(&back, Vec::new(), None).unwrap(), t1, "round trip is byte-identical");
        // Clamping changes only mtimes.
        let c = write_layer_tar(&src, Vec::new(), Some(0)).unwrap();
        for e in tar::Archive::new(&c[..]).entries().unwrap() {
            assert_eq!(e.unwrap().header().mtime().unwrap(), 0);
        }
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn escaping_entries_are_rejected() {
        let d = tmp("evil");
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.as_old_mut().name[..10].copy_from_slice(b"../evil.tx");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let t = b.into_inner().unwrap();
        let err = extract_layer_tar(&t[..], &d.join("out")).unwrap_err();
        assert!(err.to_string().contains("leaves the layer"), "{err}");
        assert!(!d.join("evil.tx").exists());
        fs::remove_dir_all(&d).unwrap();
    }
}
