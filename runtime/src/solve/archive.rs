//! Local archives given to `ADD`: detection by content (tar, gzip, bzip2, xz, zstd) and
//! extraction into a directory (`unpack`, as Docker extracts: special files, setuid bits,
//! xattrs kept; names that leave the destination reported).

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A recognized archive compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    Tar,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

/// Detects a (possibly compressed) tar archive by its first bytes; `None` for other files.
pub fn detect(path: &Path) -> io::Result<Option<ArchiveKind>> {
    let mut head = [0u8; 512];
    let mut f = fs::File::open(path)?;
    let mut n = 0;
    while n < head.len() {
        let r = f.read(&mut head[n..])?;
        if r == 0 {
            break;
        }
        n += r;
    }
    let h = &head[..n];
    let kind = if h.starts_with(&[0x1f, 0x8b]) {
        ArchiveKind::Gzip
    } else if h.starts_with(b"BZh") {
        ArchiveKind::Bzip2
    } else if h.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        ArchiveKind::Xz
    } else if h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        ArchiveKind::Zstd
    } else if n >= 262 && &h[257..262] == b"ustar" {
        ArchiveKind::Tar
    } else {
        return Ok(None);
    };
    if kind == ArchiveKind::Tar {
        return Ok(Some(kind));
    }
    // A compressed file is an archive only if it decompresses to a tar.
    let mut r = open(path, kind)?;
    let mut inner = [0u8; 512];
    let mut m = 0;
    while m < inner.len() {
        match r.read(&mut inner[m..]) {
            Ok(0) => break,
            Ok(k) => m += k,
            Err(_) => return Ok(None),
        }
    }
    Ok((m >= 262 && &inner[257..262] == b"ustar").then_some(kind))
}

fn open(path: &Path, kind: ArchiveKind) -> io::Result<Box<dyn Read>> {
    let f = BufReader::new(fs::File::open(path)?);
    Ok(match kind {
        ArchiveKind::Tar => Box::new(f),
        ArchiveKind::Gzip => Box::new(flate2::read::MultiGzDecoder::new(f)),
        ArchiveKind::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(f)),
        ArchiveKind::Xz => {
            let mut out = Vec::new();
            let mut input = f;
            lzma_rs::xz_decompress(&mut input, &mut out)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}")))?;
            Box::new(io::Cursor::new(out))
        }
        ArchiveKind::Zstd => Box::new(
            ruzstd::decoding::StreamingDecoder::new(f)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?,
        ),
    })
}

/// Extracts the archive into `dest` (created beforehand) as Docker's `archive.Unpack`
/// does, and returns warnings for the user (one per entry left out, naming it and why).
///
/// Kept from every entry: the mode with its setuid, setgid and sticky bits (applied after
/// the owner, which would clear them), the owner (unless `owner` overrides it), the mtime,
/// `SCHILY.xattr.*` extended attributes, and the type: directories, regular files,
/// symlinks, hard links, character and block devices and FIFOs. A name is cleaned and
/// taken relative to `dest` (`/etc/passwd` lands at `dest/etc/passwd`, as in Docker); a
/// name or a hard link target that leaves `dest` through `..` is left out with a warning
/// (Docker fails the whole extraction). Symlinks already in the tree are followed inside
/// `dest` only. Each directory is resolved once (a cache from the cleaned name to its host
/// path), so an entry 2,000 levels deep costs one step per new level, not a walk of
/// every prefix.
pub fn unpack(path: &Path, kind: ArchiveKind, dest: &Path, owner: Option<(u32, u32)>) -> io::Result<Vec<String>> {
    let mut ar = tar::Archive::new(open(path, kind)?);
    let mut x = Extractor { dest, owner, dirs: HashMap::new(), dir_times: Vec::new(), warnings: Vec::new() };
    for entry in ar.entries()? {
        let mut entry = entry?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        x.entry(&mut entry, &name).map_err(|e| io::Error::new(e.kind(), format!("entry `{name}`: {e}")))?;
    }
    // Directory times last: creating their children changed them.
    for (p, t) in x.dir_times.iter().rev() {
        set_times(p, *t)?;
    }
    Ok(x.warnings)
}

struct Extractor<'a> {
    dest: &'a Path,
    owner: Option<(u32, u32)>,
    /// Cleaned relative directory name → its host path, known to be a directory inside
    /// `dest` (symlinks resolved).
    dirs: HashMap<String, PathBuf>,
    dir_times: Vec<(PathBuf, i64)>,
    warnings: Vec<String>,
}

/// `name` cleaned (`.`, `..`, repeated and leading slashes); `None` when it leaves the root.
fn clean_rel(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

impl Extractor<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>, name: &str) -> io::Result<()> {
        let h = entry.header().clone();
        let et = h.entry_type();
        if matches!(et, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader) {
            return Ok(());
        }
        let Some(rel) = clean_rel(name) else {
            self.warnings.push(format!("`{name}` left out: its name leads outside the destination through `..`"));
            return Ok(());
        };
        if rel.is_empty() {
            // The root itself (`./`): only its metadata.
            if et.is_dir() {
                self.metadata(entry, &h, self.dest.to_path_buf(), true)?;
            }
            return Ok(());
        }
        let (parent, base) = match rel.rsplit_once('/') {
            Some((p, b)) => (p, b),
            None => ("", rel.as_str()),
        };
        let dir = self.dir(parent)?;
        let target = dir.join(base);
        let existing = fs::symlink_metadata(&target).ok();
        if let Some(md) = &existing {
            if !(md.is_dir() && et.is_dir()) {
                if md.is_dir() {
                    fs::remove_dir_all(&target)?;
                } else {
                    fs::remove_file(&target)?;
                }
                self.dirs.retain(|k, _| !(k == &rel || k.starts_with(&format!("{rel}/"))));
            }
        }
        let mode = h.mode()?;
        match et {
            tar::EntryType::Directory => {
                if !existing.as_ref().is_some_and(|m| m.is_dir()) {
                    fs::create_dir(&target)?;
                }
                self.dirs.insert(rel.clone(), target.clone());
            }
            tar::EntryType::Symlink => {
                let link = entry.link_name()?.ok_or_else(|| invalid("a symlink without a target"))?;
                std::os::unix::fs::symlink(link, &target)?;
            }
            tar::EntryType::Link => {
                let link = entry.link_name_bytes().ok_or_else(|| invalid("a hard link without a target"))?;
                let link = String::from_utf8_lossy(&link).into_owned();
                let Some(lrel) = clean_rel(&link) else {
                    self.warnings.push(format!(
                        "`{name}` left out: it is a hard link to `{link}`, which leads outside the destination through `..`"
                    ));
                    return Ok(());
                };
                let (lp, lb) = lrel.rsplit_once('/').unwrap_or(("", lrel.as_str()));
                let from = self.dir(lp)?.join(lb);
                fs::hard_link(&from, &target)?;
                // A hard link shares the metadata of what it links to.
                return Ok(());
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let kind = match et {
                    tar::EntryType::Char => libc::S_IFCHR,
                    tar::EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                // A FIFO's device fields are often blank: read them for devices only.
                let dev = if et == tar::EntryType::Fifo {
                    0
                } else {
                    libc::makedev(h.device_major()?.unwrap_or(0), h.device_minor()?.unwrap_or(0))
                };
                let c = cstring(&target)?;
                // SAFETY: a valid C string; mknod does not keep the pointer.
                if unsafe { libc::mknod(c.as_ptr(), kind | (mode & 0o7777), dev) } != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            _ if et.is_file() || et == tar::EntryType::GNUSparse => {
                let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&target)?;
                io::copy(entry, &mut f)?;
            }
            other => {
                self.warnings.push(format!("`{name}` left out: entry type {other:?} is not supported"));
                return Ok(());
            }
        }
        self.metadata(entry, &h, target, et.is_dir())
    }

    /// Owner, then mode (setuid/setgid survive), xattrs and times of an extracted entry.
    fn metadata<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        h: &tar::Header,
        p: PathBuf,
        is_dir: bool,
    ) -> io::Result<()> {
        let (uid, gid) = match self.owner {
            Some(o) => o,
            None => (h.uid()? as u32, h.gid()? as u32),
        };
        std::os::unix::fs::lchown(&p, Some(uid), Some(gid))?;
        let is_link = h.entry_type() == tar::EntryType::Symlink;
        if !is_link {
            fs::set_permissions(&p, fs::Permissions::from_mode(h.mode()? & 0o7777))?;
        }
        if let Some(exts) = entry.pax_extensions()? {
            for ext in exts {
                let ext = ext?;
                let Ok(key) = ext.key() else { continue };
                if let Some(attr) = key.strip_prefix("SCHILY.xattr.") {
                    set_xattr(&p, attr, ext.value_bytes())?;
                }
            }
        }
        let mtime = h.mtime()? as i64;
        if is_dir {
            self.dir_times.push((p, mtime));
        } else {
            set_times(&p, mtime)?;
        }
        Ok(())
    }

    /// The host path of the directory `rel` (cleaned, relative), created (0755, as
    /// Docker's implied parents) when missing. Resolved once: a cached parent plus one
    /// component, a symlink followed inside `dest`.
    fn dir(&mut self, rel: &str) -> io::Result<PathBuf> {
        if rel.is_empty() {
            return Ok(self.dest.to_path_buf());
        }
        if let Some(p) = self.dirs.get(rel) {
            return Ok(p.clone());
        }
        // The nearest cached ancestor, then each missing level once (iteratively: no
        // recursion however deep the name).
        let comps: Vec<&str> = rel.split('/').collect();
        let mut k = comps.len();
        let mut host = self.dest.to_path_buf();
        while k > 0 {
            if let Some(p) = self.dirs.get(&comps[..k].join("/")) {
                host = p.clone();
                break;
            }
            k -= 1;
        }
        for i in k..comps.len() {
            let mut next = host.join(comps[i]);
            match fs::symlink_metadata(&next) {
                Ok(md) if md.is_dir() => {}
                Ok(md) if md.file_type().is_symlink() => {
                    let inside = comps[..=i].join("/");
                    let (resolved, _) = super::fileop::resolve(self.dest, &inside, true, false)
                        .map_err(|e| io::Error::other(e.to_string()))?;
                    if !resolved.is_dir() {
                        fs::create_dir_all(&resolved)?;
                    }
                    next = resolved;
                }
                Ok(_) => {
                    fs::remove_file(&next)?;
                    fs::create_dir(&next)?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&next)?;
                    fs::set_permissions(&next, fs::Permissions::from_mode(0o755))?;
                    if let Some((u, g)) = self.owner {
                        std::os::unix::fs::lchown(&next, Some(u), Some(g))?;
                    }
                }
                Err(e) => return Err(e),
            }
            self.dirs.insert(comps[..=i].join("/"), next.clone());
            host = next;
        }
        Ok(host)
    }
}

fn invalid(m: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, m.to_string())
}

fn cstring(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| invalid("a NUL byte in a path"))
}

fn set_times(p: &Path, secs: i64) -> io::Result<()> {
    let c = cstring(p)?;
    let t = libc::timespec { tv_sec: secs as libc::time_t, tv_nsec: 0 };
    let times = [t, t];
    // SAFETY: valid C string and a two-element array, as utimensat requires.
    if unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn set_xattr(p: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let c = cstring(p)?;
    let n = CString::new(name).map_err(|_| invalid("a NUL byte in an xattr name"))?;
    // SAFETY: valid C strings and a buffer of `value.len()` bytes.
    let r = unsafe { libc::lsetxattr(c.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_bytes() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, "dir/file.txt", &b"abc"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn detects_and_unpacks_plain_and_gzip() {
        let d = std::env::temp_dir().join(format!("cairn-archive-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("a.tar"), tar_bytes()).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar_bytes()).unwrap();
        fs::write(d.join("a.tgz"), gz.finish().unwrap()).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"not a tar").unwrap();
        fs::write(d.join("x.gz"), gz.finish().unwrap()).unwrap();
        fs::write(d.join("plain"), b"hello").unwrap();
        assert_eq!(detect(&d.join("a.tar")).unwrap(), Some(ArchiveKind::Tar));
        assert_eq!(detect(&d.join("a.tgz")).unwrap(), Some(ArchiveKind::Gzip));
        assert_eq!(detect(&d.join("x.gz")).unwrap(), None);
        assert_eq!(detect(&d.join("plain")).unwrap(), None);
        for (name, kind) in [("a.tar", ArchiveKind::Tar), ("a.tgz", ArchiveKind::Gzip)] {
            let out = d.join(format!("out-{name}"));
            fs::create_dir_all(&out).unwrap();
            unpack(&d.join(name), kind, &out, Some((0, 0))).unwrap();
            assert_eq!(fs::read(out.join("dir/file.txt")).unwrap(), b"abc");
        }
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn detects_and_unpacks_bzip2_xz_and_zstd() {
        let d = std::env::temp_dir().join(format!("cairn-archive3-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        let tar = tar_bytes();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&tar).unwrap();
        fs::write(d.join("a.tbz"), bz.finish().unwrap()).unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut io::Cursor::new(&tar), &mut xz).unwrap();
        fs::write(d.join("a.txz"), xz).unwrap();
        let zst = ruzstd::encoding::compress_to_vec(&tar[..], ruzstd::encoding::CompressionLevel::Fastest);
        fs::write(d.join("a.tzst"), zst).unwrap();
        for (name, kind) in [("a.tbz", ArchiveKind::Bzip2), ("a.txz", ArchiveKind::Xz), ("a.tzst", ArchiveKind::Zstd)] {
            assert_eq!(detect(&d.join(name)).unwrap(), Some(kind), "{name}");
            let out = d.join(format!("out-{name}"));
            fs::create_dir_all(&out).unwrap();
            unpack(&d.join(name), kind, &out, None).unwrap();
            assert_eq!(fs::read(out.join("dir/file.txt")).unwrap(), b"abc", "{name}");
        }
        fs::remove_dir_all(&d).unwrap();
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_mtime(1_000_000);
        h
    }

    /// What a `FROM scratch` + `ADD rootfs.tar /` needs kept (issue 13): setuid/setgid/sticky
    /// bits, devices, FIFOs, links; absolute names taken relative, `..` names reported.
    #[test]
    fn issue13_unpack_keeps_what_docker_keeps_and_reports_what_it_leaves_out() {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let d = std::env::temp_dir().join(format!("cairn-archive13-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("out")).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let add = |b: &mut tar::Builder<Vec<u8>>, kind, mode, name: &str, data: &[u8]| {
            let mut h = header(kind, mode, data.len() as u64);
            b.append_data(&mut h, name, data).unwrap();
        };
        add(&mut b, tar::EntryType::Directory, 0o1777, "tmp/", b"");
        add(&mut b, tar::EntryType::Directory, 0o2775, "srv/", b"");
        add(&mut b, tar::EntryType::Regular, 0o4755, "bin/su", b"su");
        add(&mut b, tar::EntryType::Fifo, 0o644, "run/fifo", b"");
        add(&mut b, tar::EntryType::Regular, 0o644, "etc/abs-ok", b"abs");
        let mut h = header(tar::EntryType::Char, 0o666, 0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        b.append_data(&mut h, "dev/null", &b""[..]).unwrap();
        let mut h = header(tar::EntryType::Block, 0o660, 0);
        h.set_device_major(7).unwrap();
        h.set_device_minor(0).unwrap();
        b.append_data(&mut h, "dev/loop0", &b""[..]).unwrap();
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, "bin/sh", "su").unwrap();
        let mut h = header(tar::EntryType::Link, 0o755, 0);
        b.append_link(&mut h, "bin/su2", "bin/su").unwrap();
        let raw = |b: &mut tar::Builder<Vec<u8>>, name: &str, kind| {
            // Names tar::Builder refuses to write (absolute, `..`): set the bytes directly.
            let mut h = header(kind, 0o644, 1);
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, &b"x"[..]).unwrap();
        };
        raw(&mut b, "/abs/file", tar::EntryType::Regular);
        raw(&mut b, "../evil", tar::EntryType::Regular);
        raw(&mut b, "a/../../evil2", tar::EntryType::Regular);
        let deep = format!("{}x", "a/".repeat(2000));
        add(&mut b, tar::EntryType::Regular, 0o644, &deep, b"deep");
        fs::write(d.join("root.tar"), b.into_inner().unwrap()).unwrap();

        let out = d.join("out");
        let warnings = unpack(&d.join("root.tar"), ArchiveKind::Tar, &out, None).unwrap();
        let md = |p: &str| fs::symlink_metadata(out.join(p)).unwrap();
        assert_eq!(md("bin/su").mode() & 0o7777, 0o4755);
        assert_eq!((md("bin/su").uid(), md("bin/su").gid()), (1000, 1000));
        assert_eq!(md("tmp").mode() & 0o7777, 0o1777);
        assert_eq!(md("srv").mode() & 0o7777, 0o2775);
        assert!(md("run/fifo").file_type().is_fifo());
        assert!(md("dev/null").file_type().is_char_device());
        assert_eq!(md("dev/null").rdev(), libc::makedev(1, 3));
        assert!(md("dev/loop0").file_type().is_block_device());
        assert_eq!(fs::read_link(out.join("bin/sh")).unwrap(), PathBuf::from("su"));
        assert_eq!(md("bin/su2").ino(), md("bin/su").ino());
        assert_eq!(md("tmp").mtime(), 1_000_000);
        assert_eq!(fs::read(out.join("abs/file")).unwrap(), b"x");
        assert_eq!(fs::read(out.join(&deep)).unwrap(), b"deep");
        assert!(!d.join("evil").exists() && !d.join("evil2").exists());
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("`../evil`") && warnings[0].contains(".."), "{warnings:?}");
        assert!(warnings[1].contains("`a/../../evil2`"), "{warnings:?}");

        // `--chown` overrides owners and still keeps the setuid bit.
        let out2 = d.join("out2");
        fs::create_dir_all(&out2).unwrap();
        unpack(&d.join("root.tar"), ArchiveKind::Tar, &out2, Some((5, 6))).unwrap();
        let su = fs::metadata(out2.join("bin/su")).unwrap();
        assert_eq!((su.mode() & 0o7777, su.uid(), su.gid()), (0o4755, 5, 6));
        // A symlink in the tree is followed inside the destination only.
        let out3 = d.join("out3");
        fs::create_dir_all(&out3).unwrap();
        std::os::unix::fs::symlink("/", out3.join("abs")).unwrap();
        unpack(&d.join("root.tar"), ArchiveKind::Tar, &out3, None).unwrap();
        // `abs` -> `/` is the destination's root here, never the host's.
        assert_eq!(fs::read(out3.join("file")).unwrap(), b"x");
        assert!(!Path::new("/file").exists());
        fs::remove_dir_all(&d).unwrap();
    }
}
