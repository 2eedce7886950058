//! Overlay mounts: a stack of immutable layer directories (bottom first) with an optional
//! writable upper directory, mounted at a target and unmounted when the guard drops.
//!
//! Design choices:
//! - Overlayfs takes `lowerdir` top-first; callers think bottom-first (the order of a
//!   layer chain), so the order is reversed here and nowhere else.
//! - Overlayfs needs at least two lower layers when there is no upper, and at least one
//!   lower in any case; an empty directory supplied by the caller fills in. A single lower
//!   with no upper thus becomes a read-only overlay of that layer over nothing.
//! - The mount options of mount(2) are limited to one page (4096 bytes with the NUL). A
//!   chain whose paths do not fit is mounted with the new mount API instead (`fsopen`,
//!   one `fsconfig` `lowerdir+` per layer, Linux 6.8+), which has no such limit: a chain
//!   may then be as deep as overlayfs allows (500 lower layers). On older kernels the
//!   fallback is `/proc/self/fd/N` names: each lower is opened `O_PATH` and the kernel
//!   resolves the magic link while parsing the options, so ~226 layers fit whatever their
//!   paths. `chdir` to a common parent would be shorter still but changes the cwd of every
//!   thread of the scheduler, so it is not used. Plain paths come first: they read better
//!   in `/proc/mounts`. Past every limit the error says what to do.
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
    if upper_work.is_some() {
        data.push_str(VOLATILE);
    }
    if crate::sandbox::rootless::in_user_namespace() {
        data.push_str(",userxattr");
    }
    (data.len() <= MAX_OPTIONS).then_some(data)
}

/// Writable overlays are `volatile` (Linux 5.10+): unmounting one does not sync the
/// store's filesystem. Without it every RUN step's unmount flushed the whole disk (0.8 s
/// for a 200 MiB step; 3.3 s for four tiny parallel steps on a busy machine). Layers are
/// made durable once per build ([`crate::store::Store::sync`], from the runtime backend's
/// `flush`), and a cache record is trusted after a power cut only if a flush covered it.
const VOLATILE: &str = ",volatile";

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
    let readonly = readonly || upper_work.is_none();
    // Descriptors behind the short names must stay open until mount(2) has parsed them.
    let mut fds: Vec<OwnedFd> = Vec::new();
    let data = match options(&plain, upper_work, &escape(empty)) {
        Some(d) => d,
        None => {
            match mount_overlay_fsconfig(&lowers, upper_work, target, readonly, empty) {
                Ok(()) => return Ok(()),
                // Too deep for overlayfs: no other form mounts it either.
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => return Err(e),
                // An older kernel without `lowerdir+`: try the short names.
                Err(_) => {}
            }
            fds = lowers.iter().map(|l| open_path(l)).collect::<io::Result<_>>()?;
            let short: Vec<String> = fds.iter().map(|fd| format!("/proc/self/fd/{}", fd.as_raw_fd())).collect();
            options(&short, upper_work, &escape(empty)).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "an overlay of {} layers at `{}` does not fit in the kernel's mount options (one page), even with short /proc/self/fd names, and this kernel has no `lowerdir+` (Linux 6.8+): use a newer kernel, or make the image shallower (fewer RUN/COPY/ADD steps, or `COPY --from` a stage's result into a fresh stage)",
                        lowers.len(),
                        target.display()
                    ),
                )
            })?
        }
    };
    let flags = if readonly { libc::MS_RDONLY } else { 0 };
    let mut r = mount("overlay", target, "overlay", flags, Some(&data));
    if matches!(&r, Err(e) if e.raw_os_error() == Some(libc::EINVAL)) && data.ends_with(VOLATILE) {
        // A kernel older than 5.10 has no `volatile`: its unmount syncs, as before.
        r = mount("overlay", target, "overlay", flags, Some(&data[..data.len() - VOLATILE.len()]));
    }
    drop(fds);
    r.map_err(|e| {
        let upper = upper_work.map_or(String::new(), |(u, _)| format!(" with upper `{}`", u.display()));
        io::Error::new(
            e.kind(),
            format!("cannot mount an overlay of {} layers{upper} at `{}`: {e}", lowers.len(), target.display()),
        )
    })
}

/// How many lower layers overlayfs stacks (`OVL_MAX_STACK`).
const MAX_LOWERS: usize = 500;

/// Mounts the overlay with the new mount API: one `lowerdir+` per layer, so no page
/// limit. `InvalidInput` when the chain is deeper than overlayfs allows; another error
/// (e.g. `ENOSYS`, or `EINVAL` from a kernel without `lowerdir+`) lets the caller fall back.
fn mount_overlay_fsconfig(
    lowers: &[PathBuf],
    upper_work: Option<(&Path, &Path)>,
    target: &Path,
    readonly: bool,
    empty: &Path,
) -> io::Result<()> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    const MOUNT_ATTR_RDONLY: libc::c_uint = 1;
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
    let mut all: Vec<&Path> = lowers.iter().rev().map(PathBuf::as_path).collect();
    if all.is_empty() || (upper_work.is_none() && all.len() == 1) {
        all.push(empty);
    }
    if all.len() > MAX_LOWERS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "an overlay of {} layers at `{}` is deeper than overlayfs allows ({MAX_LOWERS} lower layers): make the image shallower (fewer RUN/COPY/ADD steps, or `COPY --from` a stage's result into a fresh stage)",
                all.len(),
                target.display()
            ),
        ));
    }
    let last = || io::Error::last_os_error();
    let c = |s: &str| CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in an option"));
    let fstype = c("overlay")?;
    // SAFETY: a valid C string; the descriptor is owned below.
    let fd = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) };
    if fd < 0 {
        return Err(last());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let fs_fd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    let set = |key: &str, value: &CString| -> io::Result<()> {
        let k = c(key)?;
        // SAFETY: valid descriptor and C strings.
        let rc = unsafe {
            libc::syscall(libc::SYS_fsconfig, fs_fd.as_raw_fd(), FSCONFIG_SET_STRING, k.as_ptr(), value.as_ptr(), 0)
        };
        if rc < 0 {
            return Err(last());
        }
        Ok(())
    };
    for l in &all {
        set("lowerdir+", &cstr(l)?)?;
    }
    if let Some((u, w)) = upper_work {
        set("upperdir", &cstr(u)?)?;
        set("workdir", &cstr(w)?)?;
    }
    set("index", &c("off")?)?;
    set("xino", &c("off")?)?;
    let flag = |name: &str| -> io::Result<()> {
        // A flag: no value (FSCONFIG_SET_FLAG).
        let k = c(name)?;
        // SAFETY: valid descriptor and C string.
        if unsafe { libc::syscall(libc::SYS_fsconfig, fs_fd.as_raw_fd(), 0, k.as_ptr(), std::ptr::null::<u8>(), 0) } < 0
        {
            return Err(last());
        }
        Ok(())
    };
    if crate::sandbox::rootless::in_user_namespace() {
        flag("userxattr")?;
    }
    if upper_work.is_some() {
        flag("volatile")?;
    }
    let fail = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("cannot mount an overlay of {} layers at `{}`: {e}", all.len(), target.display()),
        )
    };
    // SAFETY: valid descriptor; no strings.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs_fd.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<u8>(),
            std::ptr::null::<u8>(),
            0,
        )
    };
    if rc < 0 {
        return Err(fail(last()));
    }
    let attrs = if readonly { MOUNT_ATTR_RDONLY } else { 0 };
    // SAFETY: valid descriptor.
    let m = unsafe { libc::syscall(libc::SYS_fsmount, fs_fd.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) };
    if m < 0 {
        return Err(fail(last()));
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let mnt_fd = unsafe { OwnedFd::from_raw_fd(m as libc::c_int) };
    let empty_path = c("")?;
    let tgt = cstr(target)?;
    // SAFETY: valid descriptors and C strings.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt_fd.as_raw_fd(),
            empty_path.as_ptr(),
            libc::AT_FDCWD,
            tgt.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(fail(last()));
    }
    Ok(())
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
        assert_eq!(o, "lowerdir=/b:/a,upperdir=/u,workdir=/w,index=off,xino=off,volatile");
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

    /// A 300-layer chain with long layer paths (issue 13: ~226 was the limit) mounts, and
    /// every layer shows through in order; 501 layers fail saying what to do.
    #[test]
    fn issue13_a_300_layer_chain_mounts() {
        assert!(unsafe { libc::geteuid() } == 0, "this test needs root (it mounts overlays)");
        let d = std::env::temp_dir().join(format!("cairn-mount-deep-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        let layer = |i: usize| d.join(format!("layers/{i:064}"));
        for i in 0..501 {
            fs::create_dir_all(layer(i)).unwrap();
            fs::write(layer(i).join(format!("f{i}")), i.to_string()).unwrap();
            fs::write(layer(i).join("top"), i.to_string()).unwrap();
        }
        for p in ["empty", "mnt", "upper", "work"] {
            fs::create_dir_all(d.join(p)).unwrap();
        }
        let lowers: Vec<PathBuf> = (0..300).map(layer).collect();
        assert!(options(&lowers.iter().map(|p| escape(p)).collect::<Vec<_>>(), None, "/e").is_none());
        let uw = (d.join("upper"), d.join("work"));
        let m = OverlayMount::new(&lowers, Some((&uw.0, &uw.1)), &d.join("mnt"), &d.join("empty")).unwrap();
        assert_eq!(fs::read_to_string(d.join("mnt/f0")).unwrap(), "0");
        assert_eq!(fs::read_to_string(d.join("mnt/f299")).unwrap(), "299");
        assert_eq!(fs::read_to_string(d.join("mnt/top")).unwrap(), "299");
        fs::write(d.join("mnt/new"), "x").unwrap();
        assert!(d.join("upper/new").exists());
        drop(m);
        let lowers: Vec<PathBuf> = (0..501).map(layer).collect();
        let e = mount_overlay(&lowers, None, &d.join("mnt"), true, &d.join("empty")).unwrap_err().to_string();
        assert!(e.contains("deeper than overlayfs allows") && e.contains("shallower"), "{e}");
        fs::remove_dir_all(&d).unwrap();
    }
}
