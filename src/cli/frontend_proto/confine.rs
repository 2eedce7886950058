//! Starting a frontend executable confined: its own mount namespace in which the build
//! context (and the other directories it is given) are read-only bind mounts of
//! themselves, its own network namespace (only a loopback that is down) unless the build
//! allows `frontend.network`, its own PID namespace with a `/proc` of its own (it sees and
//! can signal only what it started, and all of that dies with it), its own process group
//! (so a timeout kills what it started), `no_new_privs`, and death with cairn.
//!
//! Everything happens in `pre_exec`, in the forked child before `exec`: that child is
//! single-threaded, so `unshare` works there even though cairn itself has threads. Only
//! raw system calls run there, on data prepared before the fork. Not root: a user
//! namespace that maps the caller's own ids comes first, which is what lets an
//! unprivileged user make the others. A new PID namespace holds the *children* of the
//! process that makes it, so that child forks once more: the grandchild (PID 1 of the
//! namespace) goes on to `exec` the frontend, and the child closes every descriptor
//! (so the pipes end when the frontend's do) and waits, then exits with the frontend's
//! status — it is what cairn waits for and kills.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// How the frontend process is confined.
#[derive(Debug, Clone)]
pub struct Confinement {
    /// Directories and files the frontend may read but never write.
    pub read_only: Vec<PathBuf>,
    /// Keep the host's network (`--allow frontend.network`).
    pub network: bool,
}

/// Starts `exe` with piped stdin, stdout and stderr, confined as `c` says. The process
/// dies with the calling *thread* (`PR_SET_PDEATHSIG` follows the thread that forked), so
/// call this from the thread that waits for it.
pub fn spawn(exe: &Path, c: &Confinement) -> io::Result<Child> {
    let mut paths = Vec::new();
    for p in &c.read_only {
        // Canonical, so a symlinked context is still covered: the bind is of the real path.
        let real = std::fs::canonicalize(p)?;
        paths.push(CString::new(real.as_os_str().as_bytes()).map_err(io::Error::other)?);
    }
    // SAFETY: getuid/getgid/geteuid have no preconditions.
    let (uid, gid, root) = unsafe { (libc::getuid(), libc::getgid(), libc::geteuid() == 0) };
    let uid_map = format!("{uid} {uid} 1\n");
    let gid_map = format!("{gid} {gid} 1\n");
    let mut flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID;
    if !c.network {
        flags |= libc::CLONE_NEWNET;
    }
    if !root {
        flags |= libc::CLONE_NEWUSER;
    }
    let mut cmd = Command::new(exe);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    // SAFETY: the closure makes only system calls on memory prepared before the fork and
    // allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
            check(libc::unshare(flags))?;
            if !root {
                write_file(c"/proc/self/setgroups", b"deny")?;
                write_file(c"/proc/self/uid_map", uid_map.as_bytes())?;
                write_file(c"/proc/self/gid_map", gid_map.as_bytes())?;
            }
            let none = std::ptr::null();
            check(libc::mount(none, c"/".as_ptr(), none, libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()))?;
            for p in &paths {
                read_only_bind(p)?;
            }
            pid_namespace_init(root)
        });
    }
    cmd.spawn()
}

/// Forks into the new PID namespace: returns in the grandchild (its PID 1, with a `/proc`
/// of the namespace), never in the child, which waits for it and exits with its status.
///
/// SAFETY: to be called in the child between fork and exec only, after `unshare`.
unsafe fn pid_namespace_init(root: bool) -> io::Result<()> {
    let pid = libc::fork();
    check(pid)?;
    if pid == 0 {
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
        let none = std::ptr::null();
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        let rc = libc::mount(c"proc".as_ptr(), c"/proc".as_ptr(), c"proc".as_ptr(), flags, none);
        // Rootless, the kernel refuses a new proc where the host's is partly hidden (a
        // container's): the frontend then keeps reading the host's `/proc`, but can still
        // signal only its own namespace.
        if rc < 0 && root {
            return Err(io::Error::last_os_error());
        }
        return Ok(());
    }
    libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
    let mut status = 0;
    while libc::waitpid(pid, &mut status, 0) < 0 {
        if *libc::__errno_location() != libc::EINTR {
            libc::_exit(127);
        }
    }
    if libc::WIFEXITED(status) {
        libc::_exit(libc::WEXITSTATUS(status));
    }
    libc::_exit(128 + libc::WTERMSIG(status))
}

/// Binds `p` onto itself and remounts the bind read-only, keeping the flags the kernel
/// locks in a user namespace (nosuid, nodev, noexec, atime) as they were.
///
/// SAFETY: to be called in the child between fork and exec only.
unsafe fn read_only_bind(p: &CString) -> io::Result<()> {
    let none = std::ptr::null();
    check(libc::mount(p.as_ptr(), p.as_ptr(), none, libc::MS_BIND | libc::MS_REC, std::ptr::null()))?;
    let mut st: libc::statvfs = std::mem::zeroed();
    check(libc::statvfs(p.as_ptr(), &mut st))?;
    let mut keep = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if st.f_flag & st_flag != 0 {
            keep |= ms_flag;
        }
    }
    let flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | keep;
    check(libc::mount(none, p.as_ptr(), none, flags, std::ptr::null()))
}

/// SAFETY: to be called in the child between fork and exec only.
unsafe fn write_file(path: &std::ffi::CStr, data: &[u8]) -> io::Result<()> {
    let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
    check(fd)?;
    let n = libc::write(fd, data.as_ptr().cast(), data.len());
    libc::close(fd);
    if n != data.len() as isize {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Kills the frontend's whole process group and reaps the frontend.
pub fn kill(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: signalling the process group we created for this child (`process_group(0)`).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.wait();
}
