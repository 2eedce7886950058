//! Overlay mounts: a stack of immutable layer directories (bottom first) with an optional
//! writable upper directory, mounted at a target and unmounted when the guard drops.
//!
//! Design choices:
//! - Overlayfs takes `lowerdir` top-first; callers think bottom-first (the order of a
//!   layer chain), so the order is reversed here and nowhere else.
//! - Overlayfs needs at least two lower layers when there is no upper, and at least one
//!   lower in any case; an empty directory supplied by the caller fills in. A single lower
//!   with no upper thus becomes a read-only overlay of that layer over nothing.
//! - The mount options are limited to one page (4096 bytes with the NUL). A chain whose
//!   paths do not fit is mounted through `/proc/self/fd/N` names instead: each lower is
//!   opened `O_PATH` and the kernel resolves the magic link while parsing the options, so
//!   ~200 layers fit whatever their paths. `chdir` to a common parent would be shorter
//!   still but changes the cwd of every thread of the scheduler, so it is not used. The
//!   short form is only a fallback: plain paths read better in `/proc/mounts`.
//! - Overlayfs refuses a directory that appears twice in one stack (`ELOOP`). A chain may
//!   hold one layer twice (a merge of equal inputs); every occurrence but the topmost is
//!   dropped, which changes nothing because the topmost one shadows it entirely.
//! - Zero lowers and no upper is an empty read-only directory: a read-only bind mount of
//!   the filler, as overlayfs cannot stack one directory over itself.
//! - Every directory is checked before mounting, so an error names the missing path
//!   rather than the kernel's bare `ENOENT` for the whole option string.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The kernel copies at most one page of mount data, NUL included.
const MAX_OPTIONS: usize = 4095;

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("path `{}` contains a NUL byte", p.display())))
}

/// Mounts `fstype` at `target` with `data` (a thin wrapper over mount(2)).
pub fn mount(source: &str, target: &Path, fstype: &str, flags: libc::c_ulong, data: Option<&str>) -> io::Result<()> {
    let nul = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("mount {what} contains a NUL byte"));
    let src = CString::new(source).map_err(|_| nul("source"))?;
    let tgt = cstr(target)?;
    let fs = CString::new(fstype).map_err(|_| nul("type"))?;
    let data_c = data.map(CString::new).transpose().map_err(|_| nul("options"))?;
    // SAFETY: every pointer is a valid NUL-terminated string or null.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fs.as_ptr(),
            flags,
            data_c.as_ref().map_or(std::ptr::null(), |d| d.as_ptr() as *const libc::c_void),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Lazily unmounts `target` (and everything below it).
pub fn unmount(target: &Path) -> io::Result<()> {
    let t = cstr(target)?;
    // SAFETY: valid C string.
    if unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Escapes the characters overlayfs splits its options on.
fn escape(p: &Path) -> String {
    p.display().to_string().replace('\\', "\\\\").replace(':', "\\:").replace(',', "\\,")
}

/// The overlay mount options for `lowers` (bottom first, already in the form the kernel
/// gets), an optional upper/work pair and the filler `empty`; `None` when they do not fit
/// in one page.
fn options(lowers: &[String], upper_work: Option<(&Path, &Path)>, empty: &str) -> Option<String> {
    let mut lower: Vec<&str> = lowers.iter().rev().map(String::as_str).collect();
    if lower.is_empty() || (upper_work.is_none() && lower.len() == 1) {
        lower.push(empty);
    }
    let mut data = format!("lowerdir={}", lower.join(":"));
    if let Some((u, w)) = upper_work {
        data.push_str(&format!(",upperdir={},workdir={}", escape(u), escape(w)));
    }
    // No index and no xino: layers are stacked in many combinations, and an index would
    // tie an upper to one particular stack.
    data.push_str(",index=off,xino=off");
    (data.len() <= MAX_OPTIONS).then_some(data)
}

/// Checks that `p` is a directory; the error names it and its role.
fn check_dir(p: &Path, role: &str) -> io::Result<()> {
    match fs::metadata(p) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("overlay {role} `{}` is not a directory", p.display()),
        )),
        Err(e) => Err(io::Error::new(e.kind(), format!("overlay {role} `{}`: {e}", p.display()))),
    }
}

/// Opens `p` as an `O_PATH` directory descriptor (close-on-exec).
fn open_path(p: &Path) -> io::Result<OwnedFd> {
    let c = cstr(p)?;
    // SAFETY: valid C string; the returned descriptor is owned below.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("cannot open overlay layer `{}`: {e}", p.display())));
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Mounts an overlay of `lowers` (bottom first) with an optional upper/work pair at
/// `target`; read-only when `readonly` or when there is no upper. `empty` is an empty
/// directory used when overlayfs needs a filler lower layer. Nothing unmounts it: see
/// [`OverlayMount`] for a guard.
pub fn mount_overlay(
    lowers: &[PathBuf],
    upper_work: Option<(&Path, &Path)>,
    target: &Path,
    readonly: bool,
    empty: &Path,
) -> io::Result<()> {
    for l in lowers {
        check_dir(l, "lower layer")?;
    }
    if let Some((u, w)) = upper_work {
        check_dir(u, "upper directory")?;
        check_dir(w, "work directory")?;
    }
    check_dir(empty, "filler directory")?;
    check_dir(target, "mount point")?;
    if lowers.is_empty() && upper_work.is_none() {
        return bind_readonly(empty, target);
    }
    let lowers = topmost_only(lowers);
    let plain: Vec<String> = lowers.iter().map(|p| escape(p)).collect();
    // Descriptors behind the short names must stay open until mount(2) has parsed them.
    let mut fds: Vec<OwnedFd> = Vec::new();
    let data = match options(&plain, upper_work, &escape(empty)) {
        Some(d) => d,
        None => {
            fds = lowers.iter().map(|l| open_path(l)).collect::<io::Result<_>>()?;
            let short: Vec<String> = fds.iter().map(|fd| format!("/proc/self/fd/{}", fd.as_raw_fd())).collect();
            options(&short, upper_work, &escape(empty)).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "an overlay of {} layers at `{}` does not fit in the kernel's mount options (one page), even with short /proc/self/fd names",
                        lowers.len(),
                        target.display()
                    ),
                )
            })?
        }
    };
    let flags = if readonly || upper_work.is_none() { libc::MS_RDONLY } else { 0 };
    let r = mount("overlay", target, "overlay", flags, Some(&data));
    drop(fds);
    r.map_err(|e| {
        let upper = upper_work.map_or(String::new(), |(u, _)| format!(" with upper `{}`", u.display()));
        io::Error::new(
            e.kind(),
            format!("cannot mount an overlay of {} layers{upper} at `{}`: {e}", lowers.len(), target.display()),
        )
    })
}

/// `lowers` (bottom first) without the occurrences of a layer below its topmost one.
fn topmost_only(lowers: &[PathBuf]) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<PathBuf> = lowers.iter().rev().filter(|p| seen.insert(p.as_path())).cloned().collect();
    out.reverse();
    out
}

/// A read-only bind mount of `src` at `target`.
fn bind_readonly(src: &Path, target: &Path) -> io::Result<()> {
    let fail = |e: io::Error| {
        io::Error::new(e.kind(), format!("cannot bind `{}` read-only at `{}`: {e}", src.display(), target.display()))
    };
    mount(&src.display().to_string(), target, "", libc::MS_BIND, None).map_err(fail)?;
    if let Err(e) = mount("none", target, "", libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY, None) {
        let _ = unmount(target);
        return Err(fail(e));
    }
    Ok(())
}

/// An overlay mounted at `target`; dropping it unmounts (lazily, `MNT_DETACH`).
#[derive(Debug)]
pub struct OverlayMount {
    target: PathBuf,
}

impl OverlayMount {
    /// Mounts `lowers` (bottom first) and an optional upper/work pair at `target`; without
    /// an upper the mount is read-only. `empty` is an empty directory used when overlayfs
    /// needs a filler lower layer (zero lowers, or one lower and no upper).
    pub fn new(
        lowers: &[PathBuf],
        upper_work: Option<(&Path, &Path)>,
        target: &Path,
        empty: &Path,
    ) -> io::Result<OverlayMount> {
        mount_overlay(lowers, upper_work, target, false, empty)?;
        Ok(OverlayMount { target: target.to_path_buf() })
    }

    /// Where the overlay is mounted.
    pub fn target(&self) -> &Path {
        &self.target
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        let _ = unmount(&self.target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn options_reverse_and_fill() {
        let uw = Some((Path::new("/u"), Path::new("/w")));
        let o = options(&s(&["/a", "/b"]), uw, "/e").unwrap();
        assert_eq!(o, "lowerdir=/b:/a,upperdir=/u,workdir=/w,index=off,xino=off");
        assert!(options(&s(&["/a"]), None, "/e").unwrap().starts_with("lowerdir=/a:/e,"));
        assert!(options(&s(&["/a"]), uw, "/e").unwrap().starts_with("lowerdir=/a,"));
        assert!(options(&[], uw, "/e").unwrap().starts_with("lowerdir=/e,"));
        assert!(options(&[], None, "/e").unwrap().starts_with("lowerdir=/e,"));
        let many: Vec<String> = (0..400).map(|i| format!("/var/lib/cairn/layers/{i:08}")).collect();
        assert!(options(&many, None, "/e").is_none());
    }

    #[test]
    fn duplicates_keep_the_topmost() {
        let p = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
        assert_eq!(topmost_only(&p(&["/x", "/y", "/x", "/z"])), p(&["/y", "/x", "/z"]));
    }

    #[test]
    fn escapes_separators() {
        assert_eq!(escape(Path::new("/a:b,c\\d")), "/a\\:b\\,c\\\\d");
    }
}
