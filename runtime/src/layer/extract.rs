//! Safe extraction of a layer tar into a directory (overlay upper format), optionally
//! copying up from lower layers.

use std::collections::HashSet;

use super::writers::{Writers, MAX_JOB_BYTES};
use super::*;

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
                sys::set_xattr(p, opaque_xattr(), b"y")?;
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
/// `known` holds directories already seen to be real ones (they are not looked at again)
/// and gets the ones this call checks or makes.
fn ensure_parents(dir: &Path, comps: &[&[u8]], raw: &[u8], known: &mut HashSet<PathBuf>) -> io::Result<()> {
    let mut cur = dir.to_path_buf();
    for c in &comps[..comps.len().saturating_sub(1)] {
        cur.push(std::ffi::OsStr::from_bytes(c));
        if known.contains(&cur) {
            continue;
        }
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
        known.insert(cur.clone());
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
    // Root inside a user namespace (rootless) cannot set `trusted.*` attributes either.
    let any_xattr = root && !crate::store::userns::in_user_namespace();
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
                e.raw_os_error() == Some(libc::ENOTSUP) || (!any_xattr && e.kind() == io::ErrorKind::PermissionDenied);
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
///
/// The tar is read on this thread, which makes the directories; the other entries are
/// created by worker threads ([`super::writers`]), and directory mtimes are set last.
pub fn extract_layer_tar_with(reader: impl Read, dir: &Path, lowers: &[PathBuf]) -> io::Result<()> {
    fs::create_dir_all(dir).map_err(|e| ctx(dir, e))?;
    std::thread::scope(|scope| {
        let mut w = Writers::start(scope);
        let res = extract_entries(reader, dir, lowers, &mut w);
        let done = w.barrier();
        res.and(done)
    })
}

/// What a worker makes at a path.
enum Make {
    File(Vec<u8>),
    Symlink(Vec<u8>),
    /// `mknod` type bits and device numbers.
    Node(u32, (u32, u32)),
}

/// One entry a worker creates, with its metadata.
struct Create {
    target: PathBuf,
    shown: String,
    make: Make,
    uid: u32,
    gid: u32,
    mode: u32,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    mtime: (i64, i64),
}

impl Create {
    fn run(self) -> io::Result<()> {
        let Create { target, shown, make, uid, gid, mode, xattrs, mtime } = self;
        let in_entry = |err: io::Error| io::Error::new(err.kind(), format!("Archive entry `{shown}`: {err}"));
        clear(&target).map_err(in_entry)?;
        let is_symlink = matches!(make, Make::Symlink(_));
        match make {
            Make::File(data) => {
                let mut f = create_file(&target).map_err(in_entry)?;
                f.write_all(&data).map_err(|err| in_entry(ctx(&target, err)))?;
            }
            Make::Symlink(l) => std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&l), &target)
                .map_err(|err| in_entry(ctx(&target, err)))?,
            Make::Node(ty, dev) => {
                sys::mknod(&target, ty | (mode & 0o7777), dev.0, dev.1).map_err(|err| in_entry(ctx(&target, err)))?
            }
        }
        apply_metadata(&target, is_symlink, uid, gid, mode, &xattrs, Some(mtime)).map_err(in_entry)
    }
}

/// A new regular file at `target` (never through a symlink), mode 0600 until its metadata
/// is applied.
fn create_file(target: &Path) -> io::Result<File> {
    File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(target)
        .map_err(|err| ctx(target, err))
}

fn extract_entries(reader: impl Read, dir: &Path, lowers: &[PathBuf], w: &mut Writers) -> io::Result<()> {
    let mut ar = tar::Archive::new(reader);
    let mut dir_times: Vec<(PathBuf, i64, i64)> = Vec::new();
    // Directories known to be real ones below `dir` (see `ensure_parents`).
    let mut known: HashSet<PathBuf> = HashSet::new();
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
        let target = dir.join(rel_path(&comps));
        let parent = target.parent().unwrap_or(dir).to_path_buf();
        let hidden = base.strip_prefix(WHITEOUT_PREFIX.as_bytes()).filter(|_| !base.starts_with(b".wh..wh."));
        let changed = match hidden {
            Some(h) => parent.join(std::ffi::OsStr::from_bytes(h)),
            None => target.clone(),
        };
        // Whatever replaces or removes a directory, and a hard link (its target may be in
        // flight), waits for every job; so does an entry on a path still being created.
        let is_link = kind == EntryType::Link;
        let replaces_dir = kind != EntryType::Directory && known.contains(&changed);
        if is_link || replaces_dir || w.touches_pending(&changed) || w.touches_pending(&target) {
            w.barrier()?;
        }
        if is_link || replaces_dir {
            known.clear();
        }
        ensure_parents(dir, &comps, &raw, &mut known)?;
        if base == OPAQUE_MARKER.as_bytes() {
            sys::set_xattr(&parent, opaque_xattr(), b"y").map_err(|err| ctx(&parent, err)).map_err(in_entry)?;
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
        if hidden.is_some() {
            let w = &changed;
            clear(w).map_err(in_entry)?;
            sys::mknod(w, libc::S_IFCHR, 0, 0).map_err(|err| ctx(w, err)).map_err(in_entry)?;
            // Overlayfs ignores a whiteout's metadata; keeping it makes tar → dir → tar exact.
            apply_metadata(w, false, uid as u32, gid as u32, 0, &[], Some(mtime)).map_err(in_entry)?;
            continue;
        }
        let link = e.link_name_bytes().map(|l| l.into_owned());
        let dev = (h.device_major().ok().flatten().unwrap_or(0), h.device_minor().ok().flatten().unwrap_or(0));
        let size = h.size().unwrap_or(0);
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
        let job =
            |make, xattrs| Create { target: target.clone(), shown: shown.clone(), make, uid, gid, mode, xattrs, mtime };
        match kind {
            EntryType::Directory => {
                if !known.contains(&target) {
                    if !target.symlink_metadata().is_ok_and(|m| m.is_dir()) {
                        make_dir(&target).map_err(|err| ctx(&target, err)).map_err(in_entry)?;
                    }
                    known.insert(target.clone());
                }
                apply_metadata(&target, false, uid, gid, mode, &xattrs, None).map_err(in_entry)?;
                dir_times.push((target, mtime.0, mtime.1));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse if size <= MAX_JOB_BYTES => {
                let mut data = Vec::with_capacity(size as usize);
                e.read_to_end(&mut data).map_err(in_entry)?;
                let n = data.len() as u64;
                let c = job(Make::File(data), xattrs);
                w.submit(target, n, Box::new(move || c.run()))?;
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                clear(&target).map_err(in_entry)?;
                let mut f = create_file(&target).map_err(in_entry)?;
                io::copy(&mut e, &mut f).map_err(in_entry)?;
                drop(f);
                apply_metadata(&target, false, uid, gid, mode, &xattrs, Some(mtime)).map_err(in_entry)?;
            }
            EntryType::Symlink => {
                let l = link.ok_or_else(|| in_entry(invalid("a symlink without a target".into())))?;
                let c = job(Make::Symlink(l), xattrs);
                w.submit(target, 0, Box::new(move || c.run()))?;
            }
            EntryType::Link => {
                let l = link.ok_or_else(|| in_entry(invalid("a hard link without a target".into())))?;
                hard_link(dir, &target, &l, lowers).map_err(in_entry)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let ty = match kind {
                    EntryType::Char => libc::S_IFCHR,
                    EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                let c = job(Make::Node(ty, dev), xattrs);
                w.submit(target, 0, Box::new(move || c.run()))?;
            }
            _ => {} // other entry types carry nothing a layer can hold
        }
    }
    // Directory mtimes last: creating their contents changed them.
    w.barrier()?;
    for (d, s, ns) in dir_times.iter().rev() {
        sys::set_mtime(d, *s, *ns).map_err(|e| ctx(d, e))?;
    }
    Ok(())
}

/// A hard-link entry at `target` naming `l`: the target file must be in this layer, or is
/// copied up from the topmost lower layer that has it.
fn hard_link(dir: &Path, target: &Path, l: &[u8], lowers: &[PathBuf]) -> io::Result<()> {
    let lcomps = clean_components(l)?;
    if lcomps.is_empty() {
        return Err(invalid("a hard link to the layer root".into()));
    }
    check_parents(dir, &lcomps, l)?;
    let src = dir.join(rel_path(&lcomps));
    if src == target {
        return Ok(());
    }
    if src.symlink_metadata().is_err() {
        let rel = rel_path(&lcomps);
        let found = lowers.iter().rev().map(|lw| lw.join(&rel)).find_map(|p| p.symlink_metadata().ok().map(|m| (p, m)));
        match found {
            Some((p, m)) if !is_whiteout(&m) => {
                copy_up_parents(dir, &lcomps, lowers)?;
                copy_up(&p, &src)?
            }
            _ => {
                return Err(invalid(format!(
                    "the hard-link target `{}` is not in this layer or below it",
                    String::from_utf8_lossy(l)
                )))
            }
        }
    }
    if src.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        return Err(invalid(format!("the hard-link target `{}` is a directory", String::from_utf8_lossy(l))));
    }
    clear(target)?;
    fs::hard_link(&src, target).map_err(|err| ctx(target, err))
}
