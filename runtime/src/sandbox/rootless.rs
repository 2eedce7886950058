//! Rootless cairn: run by a user other than root, the whole process moves into a user
//! namespace and a mount namespace of its own before it does anything else, and carries on
//! there as "root" (as `buildah unshare` and rootlesskit do). Everything else (overlay
//! mounts, the sandbox helper, chown of layer files) then works as it does for real root,
//! within what the namespace maps.
//!
//! The mapping: root inside is the user; when `/etc/subuid` and `/etc/subgid` give the user
//! subordinate ids and `newuidmap`/`newgidmap` (Debian's `uidmap`) are installed, ids 1…N
//! inside are those subordinate ids, in the order the files list them. On disk a layer file
//! of uid 1000 is then owned by the 1000th subordinate id, while cairn, inside, reads and
//! writes uid 1000, so tars and images carry the image's own ids. Without subordinate ids
//! the namespace maps uid and gid 0 only (the user's own); `chown` to any other id then
//! fails with `EINVAL`, which the store's `lchown` turns into a message naming the id.
//!
//! Why fork and not re-exec: the maps of a user namespace are written by a process outside
//! it (`newuidmap` is setuid and checks `/etc/subuid`), after the namespace exists. A
//! forked child that unshared keeps the full capability set the kernel gives the creator of
//! a namespace; an exec before the maps are written would drop them (its uid is unmapped
//! then). So [`enter`], first thing in `main` while the process is single-threaded, forks:
//! the child unshares and waits, the parent writes the maps and then only waits for the
//! child, forwarding `SIGTERM`, `SIGHUP` and `SIGQUIT` (Ctrl-C reaches the child from the
//! terminal itself) and exiting as the child did.
//!
//! Overlayfs in a user namespace (Linux ≥ 5.11) cannot use `trusted.*` xattrs: layers keep
//! their opaque-directory marks in `user.overlay.opaque` and overlays are mounted with
//! `userxattr` ([`in_user_namespace`] decides). A store is therefore used either rootless or
//! as root, not both; the rootless store defaults to `$XDG_DATA_HOME/cairn`.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

// The store and layer code decide on them too (and may not import the sandbox).
pub use crate::store::userns::{explain_chown, in_user_namespace, single_id, uid_map, SINGLE_ID_NOTE};

/// Why this non-root process stayed outside a user namespace (the sandbox reports it).
static UNAVAILABLE: OnceLock<String> = OnceLock::new();
/// In the parent: the child's PID, for signal forwarding.
static CHILD: AtomicI32 = AtomicI32::new(0);

/// Why a non-root cairn could not make its user namespace, if it could not.
pub fn unavailable() -> Option<&'static str> {
    UNAVAILABLE.get().map(String::as_str)
}

/// A range of subordinate ids: (first, count).
type Range = (u32, u32);

/// The ranges of `/etc/subuid`-style `text` that belong to user `name` (or to `uid`).
fn ranges(text: &str, name: Option<&str>, uid: u32) -> Vec<Range> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            if f.len() != 3 || !(Some(f[0]) == name || f[0] == uid.to_string()) {
                return None;
            }
            Some((f[1].parse().ok()?, f[2].parse().ok()?))
        })
        .filter(|r: &Range| r.1 > 0)
        .collect()
}

/// `newuidmap`/`newgidmap` arguments after the PID: `0 OWN 1`, then the ranges from 1.
fn map_args(own: u32, subs: &[Range]) -> Vec<String> {
    let mut args = vec!["0".to_string(), own.to_string(), "1".to_string()];
    let mut next: u64 = 1;
    for (start, count) in subs {
        args.extend([next.to_string(), start.to_string(), count.to_string()]);
        next += u64::from(*count);
    }
    args
}

fn user_name(uid: u32) -> Option<String> {
    let text = fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
    })
}

fn find_tool(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/bin", "/usr/sbin", "/usr/local/bin"].iter().map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

/// How the parent maps the child: with subordinate ids through the setuid tools, or the
/// child maps itself to one id (no range for the user, or no tools; the sandbox says what
/// that costs, [`SINGLE_ID_NOTE`]).
enum Plan {
    Tools { uidmap: (PathBuf, Vec<String>), gidmap: (PathBuf, Vec<String>) },
    Single,
}

fn plan(uid: u32, gid: u32) -> Plan {
    let name = user_name(uid);
    let read = |f: &str| fs::read_to_string(f).map(|t| ranges(&t, name.as_deref(), uid)).unwrap_or_default();
    let (subuid, subgid) = (read("/etc/subuid"), read("/etc/subgid"));
    if subuid.is_empty() || subgid.is_empty() {
        return Plan::Single;
    }
    match (find_tool("newuidmap"), find_tool("newgidmap")) {
        (Some(u), Some(g)) => Plan::Tools { uidmap: (u, map_args(uid, &subuid)), gidmap: (g, map_args(gid, &subgid)) },
        _ => Plan::Single,
    }
}

fn read_exact(fd: &OwnedFd, buf: &mut [u8]) -> bool {
    // SAFETY: reading into a buffer of its own length.
    unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) == buf.len() as isize }
}

fn write_all(fd: &OwnedFd, buf: &[u8]) -> bool {
    // SAFETY: writing a buffer of its own length.
    unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) == buf.len() as isize }
}

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// For a non-root user: moves this process into a new user and mount namespace (see the
/// module doc). Returns in the child, inside; the parent exits with the child's status.
/// Returns at once for root. When the namespace cannot be made the process goes on outside
/// and [`unavailable`] says why (commands that need no sandbox still work).
/// `store_root` is the store for the user, computed outside (inside, the process is root).
/// Call it while the process is single-threaded.
pub fn enter(store_root: impl FnOnce() -> PathBuf) {
    // SAFETY: id getters have no preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if uid == 0 {
        return;
    }
    let store = std::env::var_os("CAIRN_ROOT").filter(|v| !v.is_empty()).map_or_else(store_root, PathBuf::from);
    let plan = plan(uid, gid);
    let (Ok((ready_r, ready_w)), Ok((go_r, go_w))) = (super::pipe(), super::pipe()) else {
        let _ = UNAVAILABLE.set("cannot create a pipe".into());
        return;
    };
    // SAFETY: the process is single-threaded (the caller's contract); the child goes on
    // running this program.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let _ = UNAVAILABLE.set(format!("cannot fork: {}", io::Error::last_os_error()));
        return;
    }
    if pid == 0 {
        drop((ready_r, go_w));
        child(ready_w, go_r, uid, gid, &store);
        return;
    }
    drop((ready_w, go_r));
    let mut errno = [0u8; 4];
    if !read_exact(&ready_r, &mut errno) || errno != [0; 4] {
        let e = io::Error::from_raw_os_error(i32::from_ne_bytes(errno));
        let mut status = 0;
        // SAFETY: our child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let _ = UNAVAILABLE.set(format!(
            "cannot create a user namespace ({e}); check `sysctl kernel.unprivileged_userns_clone` and `user.max_user_namespaces`, and any AppArmor restriction (`kernel.apparmor_restrict_unprivileged_userns`)"
        ));
        return;
    }
    let go: u8 = match &plan {
        Plan::Single => b's',
        Plan::Tools { uidmap, gidmap } => match run_map(uidmap, pid) {
            // The child can still map itself to its one id.
            Err(e) => {
                eprintln!("warning: {e}; mapping uid 0 only");
                b's'
            }
            Ok(()) => match run_map(gidmap, pid) {
                Ok(()) => b'm',
                Err(e) => {
                    eprintln!("error: {e}");
                    b'x'
                }
            },
        },
    };
    let _ = write_all(&go_w, &[go]);
    drop(go_w);
    wait_and_exit(pid)
}

/// Runs `newuidmap`/`newgidmap` for `pid`.
fn run_map((tool, args): &(PathBuf, Vec<String>), pid: libc::pid_t) -> Result<(), String> {
    let out = Command::new(tool)
        .arg(pid.to_string())
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", tool.display()))?;
    if !out.status.success() {
        return Err(format!(
            "`{} {pid} {}` failed: {}",
            tool.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// The child: unshares, waits for the maps (or writes its single-id maps), and returns to
/// go on as root inside.
fn child(ready: OwnedFd, go: OwnedFd, uid: u32, gid: u32, store: &Path) {
    // SAFETY: prctl and unshare with constant arguments, in a single-threaded process.
    let r = unsafe {
        // The parent gone (killed), the build stops and cleans up as for a SIGTERM.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS)
    };
    if r != 0 {
        let e = io::Error::last_os_error().raw_os_error().unwrap_or(libc::EPERM);
        let _ = write_all(&ready, &e.to_ne_bytes());
        // SAFETY: leaving the child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    let _ = write_all(&ready, &[0; 4]);
    drop(ready);
    let mut b = [0u8];
    if !read_exact(&go, &mut b) || b[0] == b'x' {
        // SAFETY: as above.
        unsafe { libc::_exit(1) };
    }
    if b[0] == b's' {
        let maps = [
            ("/proc/self/setgroups", "deny".to_string()),
            ("/proc/self/uid_map", format!("0 {uid} 1")),
            ("/proc/self/gid_map", format!("0 {gid} 1")),
        ];
        for (file, text) in maps {
            if let Err(e) = fs::write(file, text) {
                eprintln!("error: rootless: cannot write {file}: {e}");
                // SAFETY: as above.
                unsafe { libc::_exit(1) };
            }
        }
    }
    // Inside, the process is root: the store must not become root's default.
    std::env::set_var("CAIRN_ROOT", store);
}

/// The parent: waits for the child, forwarding termination signals, and exits as it did.
fn wait_and_exit(pid: libc::pid_t) -> ! {
    CHILD.store(pid, Ordering::SeqCst);
    // SAFETY: installing handlers that only call kill; SIGINT comes from the terminal to
    // the child too, so the parent ignores it rather than sending a second one.
    unsafe {
        for sig in [libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            libc::signal(sig, forward as extern "C" fn(libc::c_int) as libc::sighandler_t);
        }
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    let mut status = 0;
    loop {
        // SAFETY: waiting for our child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            std::process::exit(1);
        }
    }
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        // SAFETY: dying of the same signal, as a shell would report it.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::kill(libc::getpid(), sig);
        }
        std::process::exit(128 + sig);
    }
    std::process::exit(libc::WEXITSTATUS(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_and_map_arguments() {
        let text = "alice:100000:65536\n1001:300000:10\nbob:200000:65536\nalice:500000:0\n";
        assert_eq!(ranges(text, Some("alice"), 1000), vec![(100000, 65536)]);
        assert_eq!(ranges(text, Some("carol"), 1001), vec![(300000, 10)], "a uid entry counts too");
        assert!(ranges(text, None, 7).is_empty());
        let args = map_args(1000, &[(100000, 65536), (300000, 10)]);
        assert_eq!(args.join(" "), "0 1000 1 1 100000 65536 65537 300000 10");
    }
}
