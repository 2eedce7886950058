//! Thin, safe wrappers over the Linux calls the store, the layer tar code and the exporters
//! need and `std` does not offer: `lchown`, `utimensat` without following links, `mknod`,
//! extended attributes, `renameat2(RENAME_NOREPLACE)`, `flock` and `sync_file_range`.
//!
//! Each wrapper returns a plain `io::Error` from `errno`; callers add the path to the
//! message, so these stay small and free of policy.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// `path` as a C string; a NUL byte inside is an `InvalidInput` error.
pub(crate) fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("`{}` contains a NUL byte", p.display())))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// True when the process runs with effective uid 0.
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Changes the owner of `p` itself (never a symlink's target).
pub(crate) fn lchown(p: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let c = cpath(p)?;
    // SAFETY: valid C string.
    check(unsafe { libc::lchown(c.as_ptr(), uid, gid) }).map_err(|e| super::userns::explain_chown(e, uid, gid))
}

/// Sets atime and mtime of `p` itself (never a symlink's target).
pub(crate) fn set_mtime(p: &Path, secs: i64, nsec: i64) -> io::Result<()> {
    let c = cpath(p)?;
    let ts = libc::timespec { tv_sec: secs as libc::time_t, tv_nsec: nsec as _ };
    let times = [ts, ts];
    // SAFETY: valid C string and a two-element timespec array.
    check(unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })
}

/// Creates a device node or FIFO; `mode` includes the file type bits (`S_IFCHR`, …).
pub(crate) fn mknod(p: &Path, mode: u32, major: u32, minor: u32) -> io::Result<()> {
    let c = cpath(p)?;
    let dev = libc::makedev(major, minor);
    // SAFETY: valid C string.
    check(unsafe { libc::mknod(c.as_ptr(), mode as libc::mode_t, dev) })
}

/// Major and minor number of a device id (`st_rdev`).
pub(crate) fn dev_numbers(rdev: u64) -> (u32, u32) {
    (libc::major(rdev as libc::dev_t), libc::minor(rdev as libc::dev_t))
}

fn unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::ENODATA))
}

/// All extended attributes of `p` itself, sorted by name. A filesystem without xattr
/// support yields an empty list.
pub(crate) fn list_xattrs(p: &Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let c = cpath(p)?;
    let mut names = vec![0u8; 1024];
    let len = loop {
        // SAFETY: the buffer is valid for `names.len()` bytes.
        let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ERANGE) {
            names.resize(names.len() * 4, 0);
            continue;
        }
        if unsupported(&e) {
            return Ok(Vec::new());
        }
        return Err(e);
    };
    let mut out = Vec::new();
    for name in names[..len].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if let Some(v) = get_xattr(p, name)? {
            out.push((name.to_vec(), v));
        }
    }
    out.sort();
    Ok(out)
}

/// The value of the extended attribute `name` of `p` itself, `None` when absent.
pub(crate) fn get_xattr(p: &Path, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let c = cpath(p)?;
    let n = CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "xattr name contains NUL"))?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: valid C strings; the buffer is valid for `buf.len()` bytes.
        let r = unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if r >= 0 {
            buf.truncate(r as usize);
            return Ok(Some(buf));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            _ if unsupported(&e) => return Ok(None),
            _ => return Err(e),
        }
    }
}

/// Sets the extended attribute `name` of `p` itself.
pub(crate) fn set_xattr(p: &Path, name: &[u8], value: &[u8]) -> io::Result<()> {
    let c = cpath(p)?;
    let n = CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "xattr name contains NUL"))?;
    // SAFETY: valid C strings; `value` is valid for its length.
    check(unsafe { libc::lsetxattr(c.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) })
}

/// Renames `from` to `to`, failing with `AlreadyExists` instead of replacing `to`.
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let (f, t) = (cpath(from)?, cpath(to)?);
    // SAFETY: valid C strings; AT_FDCWD makes the paths relative to the cwd as usual.
    let rc = unsafe { libc::renameat2(libc::AT_FDCWD, f.as_ptr(), libc::AT_FDCWD, t.as_ptr(), libc::RENAME_NOREPLACE) };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        // Filesystems without RENAME_NOREPLACE: check, then rename (racy, but only there).
        Some(libc::EINVAL) | Some(libc::ENOSYS) => {
            if to.symlink_metadata().is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            std::fs::rename(from, to)
        }
        _ => Err(e),
    }
}

/// `flock(2)` on `file`; `op` is `LOCK_SH`, `LOCK_EX` or `LOCK_UN`, optionally `| LOCK_NB`.
/// Interrupted waits are retried.
pub(crate) fn flock(file: &File, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: a valid open file descriptor.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Starts writeback of `len` bytes of `file` at `offset` without waiting for it
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`): a hint that makes a later `fsync` short.
pub(crate) fn start_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
    // SAFETY: a valid open file descriptor; the call only schedules I/O.
    let rc = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
    check(rc)
}

/// Whether a process with this pid exists (in our pid namespace).
pub(crate) fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The mount points listed in `/proc/self/mountinfo` (octal escapes decoded).
fn mount_points() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let decode = |s: &str| {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
                out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
                i += 4;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        PathBuf::from(std::ffi::OsString::from_vec(out))
    };
    text.lines().filter_map(|l| l.split(' ').nth(4)).map(decode).collect()
}

/// Unmounts every mount at or below `dir/<pid>-…` whose process `pid` is gone (a solver
/// killed with SIGKILL while a file step had its overlay mounted), deepest first and
/// stacked ones all, then removes those mount points. Runs at every store open, so the
/// next `cairn` command of any kind cleans up (issue 13). Returns how many it unmounted.
pub(crate) fn clean_stale_mounts(dir: &Path) -> usize {
    let dead = |p: &Path| -> bool {
        let Ok(rest) = p.strip_prefix(dir) else { return false };
        let Some(first) = rest.components().next() else { return false };
        let name = first.as_os_str().to_string_lossy();
        name.split('-').next().and_then(|p| p.parse::<u32>().ok()).is_some_and(|pid| !pid_alive(pid))
    };
    let mut stale: Vec<PathBuf> = mount_points().into_iter().filter(|p| dead(p)).collect();
    stale.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    stale.dedup();
    let mut n = 0;
    for p in &stale {
        let Ok(c) = cpath(p) else { continue };
        // Stacked mounts on one point come off one at a time.
        // SAFETY: a valid C string.
        while unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
            n += 1;
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if dead(&e.path()) {
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpfs(p: &Path) {
        let (src, fstype, c) = (CString::new("tmpfs").unwrap(), CString::new("tmpfs").unwrap(), cpath(p).unwrap());
        // SAFETY: valid C strings, no data.
        let rc = unsafe { libc::mount(src.as_ptr(), c.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
        assert_eq!(rc, 0, "mount tmpfs at {}: {}", p.display(), io::Error::last_os_error());
    }

    /// A build killed while its overlay was mounted (issue 13): the next store open, by
    /// any command, unmounts it and removes the mount point; a live process's stays.
    #[test]
    fn issue13_store_open_unmounts_what_a_killed_build_left() {
        assert!(is_root(), "this test needs root (it mounts a tmpfs)");
        let root = std::env::temp_dir().join(format!("cairn-stale-mount-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mnt = super::super::StoreLayout::new(&root).solve_mnt_dir();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let dead = mnt.join(format!("{dead_pid}-0"));
        let live = mnt.join(format!("{}-0", std::process::id()));
        for d in [&dead, &live] {
            std::fs::create_dir_all(d).unwrap();
            tmpfs(d);
        }
        // Stacked, and one nested below: all of it goes.
        tmpfs(&dead);
        std::fs::create_dir_all(dead.join("a/b")).unwrap();
        tmpfs(&dead.join("a/b"));
        drop(super::super::Store::open(&root).unwrap());
        let points = mount_points();
        assert!(!points.iter().any(|p| p.starts_with(&dead)), "still mounted: {points:?}");
        assert!(!dead.exists());
        assert!(points.contains(&live), "a live process's mount was removed");
        // SAFETY: a valid C string.
        unsafe { libc::umount2(cpath(&live).unwrap().as_ptr(), libc::MNT_DETACH) };
        std::fs::remove_dir_all(&root).unwrap();
    }
}
