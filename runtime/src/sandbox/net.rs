//! The default network of a RUN step: a network namespace of its own with outbound access
//! through `slirp4netns` (user-mode NAT: TCP/UDP to the outside, DNS at 10.0.2.3), and no
//! way to the host's loopback services (`--disable-host-loopback`). `--network=host` (with
//! `--allow network.host`) shares the host's network; `--network=none` has only `lo`.
//!
//! `slirp4netns` must run in the host's network namespace and be given the PID whose
//! namespace it serves. So the helper forks it *before* unsharing; the child waits on a
//! pipe, the helper unshares and says go, the child execs `slirp4netns PID`. The helper sets
//! up the step's mounts meanwhile and waits for slirp4netns's readiness (a pipe) only before
//! it starts the step's PID 1; when the step ends it kills slirp4netns (SIGTERM made it take
//! 13–30 ms to exit, measured by strace in BENCHMARKS.md).

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::errno;

/// Where `slirp4netns` is, if installed.
pub fn slirp4netns() -> Option<PathBuf> {
    ["/usr/bin/slirp4netns", "/usr/local/bin/slirp4netns", "/bin/slirp4netns"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(errno("cannot create a pipe for slirp4netns"));
    }
    // SAFETY: freshly created descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A `slirp4netns` forked in the host's namespaces, waiting to be told to start.
pub struct Pending {
    pid: libc::pid_t,
    go: OwnedFd,
    ready: OwnedFd,
    exit: OwnedFd,
}

/// A started `slirp4netns`; killed and reaped when this drops (it keeps no state).
pub struct Slirp {
    pid: libc::pid_t,
    ready: Option<OwnedFd>,
    _exit: OwnedFd,
}

/// Forks the child that will exec `slirp4netns` for this process's next network namespace.
/// Call before `unshare(CLONE_NEWNET)`, in the single-threaded helper.
pub fn fork_slirp(bin: &Path) -> Result<Pending, String> {
    let (go_r, go_w) = pipe()?;
    let (ready_r, ready_w) = pipe()?;
    let (exit_r, exit_w) = pipe()?;
    // SAFETY: getpid has no preconditions.
    let target = unsafe { libc::getpid() };
    let to_c = |s: &str| CString::new(s).map_err(|_| format!("`{s}` contains a NUL byte"));
    let args: Vec<CString> = [
        bin.to_string_lossy().as_ref(),
        "--configure",
        "--mtu=65520",
        "--disable-host-loopback",
        &format!("--ready-fd={}", ready_w.as_raw_fd()),
        &format!("--exit-fd={}", exit_r.as_raw_fd()),
        &target.to_string(),
        "tap0",
    ]
    .iter()
    .map(|s| to_c(s))
    .collect::<Result<_, _>>()?;
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    // SAFETY: the helper is single-threaded; the child only reads, clears flags and execs.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(errno("cannot fork slirp4netns"));
    }
    if pid == 0 {
        // SAFETY: the child: wait for go, keep the two fds slirp4netns uses, exec.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            let mut b = [0u8; 1];
            if libc::read(go_r.as_raw_fd(), b.as_mut_ptr().cast(), 1) != 1 {
                libc::_exit(1);
            }
            libc::fcntl(ready_w.as_raw_fd(), libc::F_SETFD, 0);
            libc::fcntl(exit_r.as_raw_fd(), libc::F_SETFD, 0);
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if null >= 0 {
                libc::dup2(null, 0);
                libc::dup2(null, 1);
                libc::dup2(null, 2);
            }
            libc::execve(argv[0], argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    drop((go_r, ready_w, exit_r));
    Ok(Pending { pid, go: go_w, ready: ready_r, exit: exit_w })
}

impl Pending {
    /// After `unshare(CLONE_NEWNET)`: lets `slirp4netns` configure the namespace. The caller
    /// goes on setting up the step meanwhile and waits with [`Slirp::wait_ready`].
    pub fn go(self) -> Result<Slirp, String> {
        // SAFETY: writing one byte to our pipe.
        if unsafe { libc::write(self.go.as_raw_fd(), b"g".as_ptr().cast(), 1) } != 1 {
            return Err(errno("cannot start slirp4netns"));
        }
        Ok(Slirp { pid: self.pid, ready: Some(self.ready), _exit: self.exit })
    }
}

impl Slirp {
    /// Waits until `slirp4netns` has configured the namespace.
    pub fn wait_ready(&mut self) -> Result<(), String> {
        let Some(fd) = self.ready.take() else { return Ok(()) };
        let mut b = [0u8; 1];
        match std::fs::File::from(fd).read(&mut b) {
            Ok(1) => Ok(()),
            _ => Err(
                "slirp4netns could not set up the step's network; use `--network=host` with `--allow network.host`, or reinstall slirp4netns"
                    .to_string(),
            ),
        }
    }
}

impl Drop for Slirp {
    fn drop(&mut self) {
        // SIGKILL rather than SIGTERM: it has nothing to save, and SIGTERM took it 13-30 ms.
        let mut status = 0;
        // SAFETY: our child, not reaped yet; kill is harmless if it already exited.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, &mut status, 0);
        }
    }
}
