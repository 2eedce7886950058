//! `--userns=auto` as root: steps run in a user namespace where their root is a subordinate
//! id of root's (`/etc/subuid`), BuildKit's rootless worker model kept as defence in depth:
//! a step that escapes its other confinement is an unprivileged user on the host.
//!
//! The layers keep their exact ownership on disk (uid 0 stays 0) through idmapped mounts
//! (Linux ≥ 5.19 under overlayfs): the helper, still real root, clones every layer, upper
//! and bind source with `open_tree` and gives the clone the namespace's mapping
//! (`mount_setattr(MOUNT_ATTR_IDMAP)`), so on-disk id `k` is seen as the host id `base + k`,
//! which is `k` inside the namespace, and a step's write as `k` lands on disk as `k`. The
//! overlay is mounted over the clones with the helper's filesystem ids set to `base` (the
//! overlay creates and copies up files with its mounter's ids, which must be mapped); PID 1
//! joins the namespace (`setns`) after `pivot_root` and becomes its root. Fresh tmpfs
//! mounts are owned by `base`, root inside.

use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::errno;

/// The ids a step's namespace maps: 0…count inside are `uid`…, `gid`… outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    pub uid: u32,
    pub gid: u32,
    pub count: u32,
}

/// Root's first subordinate range in `/etc/subuid` and `/etc/subgid` (65,536 ids at most).
pub fn root_range() -> Result<IdMap, String> {
    let first = |file: &str| -> Option<(u32, u32)> {
        let text = fs::read_to_string(file).ok()?;
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            (f.len() == 3 && (f[0] == "root" || f[0] == "0")).then(|| Some((f[1].parse().ok()?, f[2].parse().ok()?)))?
        })
    };
    match (first("/etc/subuid"), first("/etc/subgid")) {
        (Some((u, uc)), Some((g, gc))) if uc > 0 && gc > 0 => Ok(IdMap { uid: u, gid: g, count: uc.min(gc).min(65536) }),
        _ => Err("`--userns=auto` runs steps as root's subordinate ids, and root has no range in /etc/subuid and /etc/subgid (add one: `usermod --add-subuids 1000000-1065535 --add-subgids 1000000-1065535 root`)".into()),
    }
}

/// A user namespace with `map`, as a descriptor: a child unshares it and waits while this
/// (real root) process writes its maps and opens it.
pub fn userns(map: &IdMap) -> Result<OwnedFd, String> {
    let (r, w) = super::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
    // SAFETY: the helper is single-threaded; the child only makes syscalls and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(errno("cannot fork"));
    }
    if pid == 0 {
        // SAFETY: the child: unshare, say whether it worked, wait to be killed.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            let ok = libc::unshare(libc::CLONE_NEWUSER) == 0;
            let b = [u8::from(ok)];
            libc::write(w.as_raw_fd(), b.as_ptr().cast(), 1);
            loop {
                libc::pause();
            }
        }
    }
    let result = (|| {
        let mut b = [0u8; 1];
        // SAFETY: reading one byte into our buffer.
        if unsafe { libc::read(r.as_raw_fd(), b.as_mut_ptr().cast(), 1) } != 1 || b[0] != 1 {
            return Err("cannot create the steps' user namespace".to_string());
        }
        let proc = PathBuf::from(format!("/proc/{pid}"));
        for (file, base) in [("uid_map", map.uid), ("gid_map", map.gid)] {
            fs::write(proc.join(file), format!("0 {base} {}", map.count))
                .map_err(|e| format!("cannot write the steps' {file}: {e}"))?;
        }
        let f =
            fs::File::open(proc.join("ns/user")).map_err(|e| format!("cannot open the steps' user namespace: {e}"))?;
        Ok(OwnedFd::from(f))
    })();
    drop((r, w));
    // SAFETY: our child; end it and reap it (the descriptor keeps the namespace).
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut st = 0;
        libc::waitpid(pid, &mut st, 0);
    }
    result
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Attaches at `target` (which exists) a clone of the mount tree at `src`, idmapped by
/// `userns`.
pub fn bind_idmapped(src: &Path, target: &Path, userns: &OwnedFd) -> Result<(), String> {
    let c =
        |p: &Path| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| "NUL in a path".to_string());
    let (s, t) = (c(src)?, c(target)?);
    let fail = |what: &str| {
        format!("cannot make an idmapped mount of `{}` ({what}): {}", src.display(), std::io::Error::last_os_error())
    };
    // SAFETY: valid C strings; the returned descriptor is owned below.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            s.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | AT_RECURSIVE,
        )
    };
    if fd < 0 {
        return Err(fail("open_tree"));
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    let attr =
        MountAttr { attr_set: MOUNT_ATTR_IDMAP, attr_clr: 0, propagation: 0, userns_fd: userns.as_raw_fd() as u64 };
    let empty = c"";
    // SAFETY: valid descriptor, C string and attribute struct of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(fail("mount_setattr"));
    }
    // SAFETY: valid descriptor and C strings.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(fail("move_mount"));
    }
    Ok(())
}

/// An overlay's lowers and its (upper, work), as paths to mount.
pub type Stack = (Vec<PathBuf>, Option<(PathBuf, PathBuf)>);

/// Idmapped views of the directories an overlay is made of, under `scratch`.
pub struct Views<'a> {
    pub userns: &'a OwnedFd,
    pub scratch: PathBuf,
    pub n: usize,
}

impl Views<'_> {
    /// An idmapped view of directory `src`.
    pub fn dir(&mut self, src: &Path) -> Result<PathBuf, String> {
        self.n += 1;
        let v = self.scratch.join(self.n.to_string());
        fs::create_dir_all(&v).map_err(|e| format!("cannot create `{}`: {e}", v.display()))?;
        bind_idmapped(src, &v, self.userns)?;
        Ok(v)
    }

    /// Idmapped views of an overlay's lowers and of its upper and work (one view of their
    /// common parent: overlayfs wants both on one mount).
    pub fn overlay(&mut self, lowers: &[PathBuf], upper_work: Option<(&Path, &Path)>) -> Result<Stack, String> {
        let ls = lowers.iter().map(|l| self.dir(l)).collect::<Result<Vec<_>, _>>()?;
        let uw = match upper_work {
            None => None,
            Some((u, w)) => {
                let parent = u.parent().filter(|p| Some(*p) == w.parent()).ok_or_else(|| {
                    format!("the upper `{}` and work `{}` directories are not siblings", u.display(), w.display())
                })?;
                let v = self.dir(parent)?;
                let name = |p: &Path| p.file_name().map(PathBuf::from).unwrap_or_default();
                Some((v.join(name(u)), v.join(name(w))))
            }
        };
        Ok((ls, uw))
    }
}

/// Sets the filesystem ids to `map`'s root (new files through idmapped mounts land as 0)
/// and raises the effective capabilities again (a change of fsuid from 0 drops them).
pub fn become_mapped_root(map: &IdMap) -> Result<(), String> {
    // SAFETY: plain id syscalls.
    unsafe {
        libc::setfsgid(map.gid);
        libc::setfsuid(map.uid);
    }
    let permitted = caps::read(None, caps::CapSet::Permitted).map_err(|e| format!("cannot read capabilities: {e}"))?;
    caps::set(None, caps::CapSet::Effective, &permitted).map_err(|e| format!("cannot raise capabilities: {e}"))
}

/// PID 1, after `pivot_root`: joins the steps' user namespace and becomes its root.
pub fn enter(userns: &OwnedFd) -> Result<(), String> {
    // SAFETY: setns with a user-namespace descriptor, in a single-threaded process.
    if unsafe { libc::setns(userns.as_raw_fd(), libc::CLONE_NEWUSER) } != 0 {
        return Err(errno("cannot join the steps' user namespace"));
    }
    // SAFETY: plain id syscalls.
    unsafe {
        if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
            return Err(errno("cannot become root in the steps' user namespace"));
        }
    }
    Ok(())
}
