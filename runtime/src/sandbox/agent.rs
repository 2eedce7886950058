//! `RUN --mount=type=ssh`: the step gets a socket of its own, with the mount's `mode`,
//! `uid` and `gid` (BuildKit's defaults: 0600, root), that forwards each connection to the
//! SSH agent's socket. Binding the agent's socket itself would expose its owner and mode
//! (a `USER` step could not reach a root-owned agent, and changing them would change the
//! user's agent).
//!
//! The helper makes the listening sockets in its scratch directory and forks the forwarder
//! before it unshares the PID namespace (a process forked after would become the
//! namespace's init). The forwarder, outside the step's namespaces, accepts and copies
//! bytes both ways on a thread per direction; it dies with the helper (`PR_SET_PDEATHSIG`)
//! and is killed when the step ends.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::errno;
use crate::process::ProcessMountSource;

/// The forwarder process; killed and reaped on drop.
pub struct Forwarder {
    pid: libc::pid_t,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        let mut st = 0;
        // SAFETY: our child, not reaped yet.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, &mut st, 0);
        }
    }
}

/// Where the socket of mount `n` is, in the helper's scratch directory.
pub fn socket_path(scratch: &Path, n: usize) -> PathBuf {
    scratch.join("agents").join(format!("{n}.sock"))
}

/// Makes the sockets of the `Socket` mounts of `mounts` (with their mode and owner, the
/// owner shifted by `base` for `--userns=auto`) and forks their forwarder; `None` when
/// there are none.
pub fn start(
    scratch: &Path,
    mounts: &[crate::process::ProcessMount],
    base: (u32, u32),
) -> Result<Option<Forwarder>, String> {
    let mut pairs: Vec<(UnixListener, PathBuf)> = Vec::new();
    for (n, m) in mounts.iter().enumerate() {
        let ProcessMountSource::Socket { agent, mode, uid, gid } = &m.source else { continue };
        let path = socket_path(scratch, n);
        let fail = |e: io::Error| format!("cannot make the SSH agent socket for `{}`: {e}", m.target);
        std::fs::create_dir_all(path.parent().expect("has a parent")).map_err(fail)?;
        let l = UnixListener::bind(&path).map_err(fail)?;
        std::os::unix::fs::chown(&path, Some(uid + base.0), Some(gid + base.1)).map_err(fail)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777)).map_err(fail)?;
        pairs.push((l, agent.clone()));
    }
    if pairs.is_empty() {
        return Ok(None);
    }
    // SAFETY: the helper is single-threaded; the child only runs this module's code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(errno("cannot fork the SSH agent forwarder"));
    }
    if pid == 0 {
        // SAFETY: die with the helper; stdio to /dev/null so the step's output pipe and the
        // status descriptor close when the helper's do.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            libc::close(3);
        }
        let mut threads = Vec::new();
        for (l, agent) in pairs {
            threads.push(std::thread::spawn(move || serve(l, agent)));
        }
        for t in threads {
            let _ = t.join();
        }
        // SAFETY: leaving the child without the helper's destructors.
        unsafe { libc::_exit(0) };
    }
    Ok(Some(Forwarder { pid }))
}

/// Accepts connections on `l` and joins each to a fresh connection to `agent`.
fn serve(l: UnixListener, agent: PathBuf) {
    for conn in l.incoming() {
        let Ok(client) = conn else { continue };
        let Ok(upstream) = UnixStream::connect(&agent) else { continue };
        let (Ok(mut c2), Ok(mut u2)) = (client.try_clone(), upstream.try_clone()) else { continue };
        std::thread::spawn(move || {
            let _ = io::copy(&mut c2, &mut u2);
            let _ = u2.shutdown(std::net::Shutdown::Write);
        });
        std::thread::spawn(move || {
            let (mut c, mut u) = (client, upstream);
            let _ = io::copy(&mut u, &mut c);
            let _ = c.shutdown(std::net::Shutdown::Write);
        });
    }
}
