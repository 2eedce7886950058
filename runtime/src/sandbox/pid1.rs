//! PID 1 of a step's PID namespace: mounts `/proc`, masks what the step must not see,
//! enters the root, becomes the user, gives up privileges (`confine.rs`) and forks the
//! command, staying behind as a minimal init that reaps orphans and reports the end.

use std::ffi::CString;
use std::fs;
use std::io;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{confine, errno, sandbox_hostname, user, HelperSpec, Status};
use crate::mount;

/// PID 1: mounts /proc, enters the root, becomes the user, execs. Returns only on error.
pub(super) fn child(spec: &HelperSpec, root: &Path, userns: Option<&std::os::fd::OwnedFd>) -> String {
    // Die with the helper (Ctrl-C kills the helper; the kernel then kills the namespace).
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    // A mount namespace of its own: pivot_root would otherwise move the helper's root too
    // (it changes the root of every process in the namespace).
    // SAFETY: unshare in a single-threaded process.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return errno("cannot create the container's mount namespace");
    }
    if let Err(e) =
        mount::mount("proc", &root.join("proc"), "proc", libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, None)
    {
        return format!("cannot mount /proc: {e}");
    }
    if !spec.insecure {
        if let Err(e) = confine::protect_paths(root, &confine::MASKED, &confine::READ_ONLY) {
            return e;
        }
    }
    // Built before anything is confined (it allocates).
    let seccomp = match spec.insecure {
        true => Vec::new(),
        false => match confine::seccomp_programs() {
            Ok(p) => p,
            Err(e) => return e,
        },
    };
    if let Err(e) = pivot(root) {
        return e;
    }
    let ids = match user::resolve(&spec.user) {
        Ok(ids) => ids,
        Err(e) => return e,
    };
    let cwd = if spec.cwd.is_empty() { "/" } else { spec.cwd.as_str() };
    if let Err(e) = fs::create_dir_all(cwd) {
        return format!("cannot create the working directory `{cwd}`: {e}");
    }
    if let Err(e) = std::env::set_current_dir(cwd) {
        return format!("cannot enter the working directory `{cwd}`: {e}");
    }
    // `--ulimit`: before the capabilities go (raising a hard limit needs CAP_SYS_RESOURCE).
    for u in &spec.resources.ulimits {
        let Some(res) = rlimit_resource(&u.name) else { return format!("unknown ulimit `{}`", u.name) };
        let lim = libc::rlimit { rlim_cur: u.soft as libc::rlim_t, rlim_max: u.hard as libc::rlim_t };
        // SAFETY: a valid rlimit for a known resource.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            return errno(&format!("cannot set ulimit `{}`", u.name));
        }
    }
    // `--userns=auto`: from here on root is the namespace's (ulimits are set, as they
    // need the host's CAP_SYS_RESOURCE to raise a hard limit).
    if let Some(fd) = userns {
        if let Err(e) = super::idmap::enter(fd) {
            return e;
        }
    }
    if !spec.insecure {
        if let Err(e) = confine::drop_bounding_set() {
            return e;
        }
    }
    // SAFETY: plain id syscalls; order: groups, gid, uid.
    unsafe {
        // A single-id user namespace denies setgroups (rootless without subordinate ids).
        if libc::setgroups(ids.groups.len(), ids.groups.as_ptr()) != 0 && !super::rootless::single_id() {
            return errno("setgroups");
        }
        if libc::setgid(ids.gid) != 0 {
            return unmapped(&format!("setgid({})", ids.gid));
        }
        if libc::setuid(ids.uid) != 0 {
            return unmapped(&format!("setuid({})", ids.uid));
        }
    }
    if !spec.insecure {
        if let Err(e) = confine::set_capabilities(ids.uid) {
            return e;
        }
    }
    let Some(arg0) = spec.args.first() else { return "the command is empty".into() };
    let path_env = spec.env.iter().find_map(|kv| kv.strip_prefix("PATH=")).unwrap_or("");
    let exe = match find_executable(arg0, path_env) {
        Some(p) => p,
        None => {
            if arg0.contains('/') {
                return format!("executable `{arg0}` not found in the image (or not executable)");
            }
            return format!("executable `{arg0}` not found in the image (PATH={path_env})");
        }
    };
    // no_new_privs and the seccomp filter last: init is confined too.
    if let Err(e) = confine::apply_seccomp(&seccomp) {
        return e;
    }
    // PID 1 stays as a minimal init: it reaps orphans and reports how the command ended
    // (the command itself as PID 1 would ignore signals it has no handler for).
    // SAFETY: single-threaded process.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return errno("cannot fork the command");
    }
    if pid > 0 {
        init(pid);
    }
    let null = fs::File::open("/dev/null");
    if let Ok(n) = &null {
        // SAFETY: valid descriptors.
        unsafe { libc::dup2(n.as_raw_fd(), 0) };
    }
    // execve directly rather than `Command`: the environment goes in exactly as given, in
    // its order (`Command` would sort it).
    let exe_c = match CString::new(exe.as_os_str().as_bytes()) {
        Ok(c) => c,
        Err(_) => return format!("executable path `{}` contains a NUL byte", exe.display()),
    };
    let to_c = |v: &[String], what: &str| -> Result<Vec<CString>, String> {
        v.iter().map(|a| CString::new(a.as_str()).map_err(|_| format!("{what} `{a}` contains a NUL byte"))).collect()
    };
    let argv = match to_c(&spec.args, "argument") {
        Ok(v) => v,
        Err(e) => return e,
    };
    let secret_names: Vec<&str> = spec.secret_env.iter().map(|(n, _)| n.as_str()).collect();
    let envs: Vec<String> = spec
        .env
        .iter()
        .filter(|kv| !secret_names.contains(&kv.split_once('=').map_or(kv.as_str(), |(k, _)| k)))
        .map(|kv| if kv.contains('=') { kv.clone() } else { format!("{kv}=") })
        .collect();
    // As runc does: `HOME` from the user's passwd entry and `HOSTNAME` from the sandbox's
    // hostname, each unless the step's environment sets it.
    let mut envs = envs;
    let has = |envs: &[String], k: &str| envs.iter().any(|kv| kv.split_once('=').is_some_and(|(n, _)| n == k));
    if !has(&envs, "HOSTNAME") {
        envs.push(format!("HOSTNAME={}", sandbox_hostname(spec)));
    }
    if !has(&envs, "HOME") {
        envs.push(format!("HOME={}", ids.home));
    }
    let mut envp = match to_c(&envs, "environment variable") {
        Ok(v) => v,
        Err(e) => return e,
    };
    for (name, value) in &spec.secret_env {
        let mut kv = format!("{name}=").into_bytes();
        kv.extend_from_slice(&value.0);
        match CString::new(kv) {
            Ok(c) => envp.push(c),
            Err(_) => return format!("secret environment variable `{name}` contains a NUL byte"),
        }
    }
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|c| c.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    // SAFETY: NUL-terminated arrays of valid C strings that outlive the call.
    unsafe { libc::execve(exe_c.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
    format!("cannot run `{arg0}`: {}", io::Error::last_os_error())
}

/// `EINVAL` from setuid/setgid in a user namespace: the id is not mapped; say so.
fn unmapped(what: &str) -> String {
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINVAL) && super::rootless::in_user_namespace() {
        return format!("{what}: {e}: the id is not mapped in cairn's user namespace (rootless)");
    }
    format!("{what}: {e}")
}

/// Waits for `cmd` (reaping every other child too), reports its end on fd 3, exits.
fn init(cmd: libc::pid_t) -> ! {
    let mut status = 0;
    loop {
        let mut ws = 0;
        // SAFETY: waiting for any child of ours.
        let r = unsafe { libc::waitpid(-1, &mut ws, 0) };
        if r == cmd {
            status = ws;
            break;
        }
        if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break;
        }
    }
    let s = if libc::WIFSIGNALED(status) {
        Status::Signal(libc::WTERMSIG(status))
    } else {
        Status::Code(libc::WEXITSTATUS(status))
    };
    // SAFETY: fd 3 is the status pipe.
    let mut f = unsafe { fs::File::from_raw_fd(3) };
    let _ = writeln!(f, "{}", serde_json::to_string(&s).unwrap_or_default());
    // SAFETY: leaving without destructors; the kernel kills what is left in the namespace.
    unsafe { libc::_exit(0) }
}

/// `arg0` itself when it has a slash, else the first match along `path_env`; a match is a
/// regular file with an execute bit (checked after the user switch, as exec would).
fn find_executable(arg0: &str, path_env: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let runnable =
        |p: &Path| fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false);
    if arg0.contains('/') {
        return Some(PathBuf::from(arg0)).filter(|p| runnable(p));
    }
    path_env.split(':').filter(|d| !d.is_empty()).map(|d| Path::new(d).join(arg0)).find(|p| runnable(p))
}

/// pivot_root into `root` and detach the old root.
fn pivot(root: &Path) -> Result<(), String> {
    let r = CString::new(root.as_os_str().as_bytes()).map_err(|_| "bad root path".to_string())?;
    let dot = CString::new(".").expect("no NUL");
    // SAFETY: syscalls with valid C strings.
    unsafe {
        if libc::chdir(r.as_ptr()) != 0 {
            return Err(errno("chdir to the root"));
        }
        if libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) != 0 {
            return Err(errno("pivot_root"));
        }
        if libc::umount2(dot.as_ptr(), libc::MNT_DETACH) != 0 {
            return Err(errno("detaching the old root"));
        }
        let slash = CString::new("/").expect("no NUL");
        if libc::chdir(slash.as_ptr()) != 0 {
            return Err(errno("chdir /"));
        }
    }
    Ok(())
}

/// docker's `--ulimit` names.
pub(super) fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "core" => libc::RLIMIT_CORE,
        "cpu" => libc::RLIMIT_CPU,
        "data" => libc::RLIMIT_DATA,
        "fsize" => libc::RLIMIT_FSIZE,
        "locks" => libc::RLIMIT_LOCKS,
        "memlock" => libc::RLIMIT_MEMLOCK,
        "msgqueue" => libc::RLIMIT_MSGQUEUE,
        "nice" => libc::RLIMIT_NICE,
        "nofile" => libc::RLIMIT_NOFILE,
        "nproc" => libc::RLIMIT_NPROC,
        "rss" => libc::RLIMIT_RSS,
        "rtprio" => libc::RLIMIT_RTPRIO,
        "rttime" => libc::RLIMIT_RTTIME,
        "sigpending" => libc::RLIMIT_SIGPENDING,
        "stack" => libc::RLIMIT_STACK,
        _ => return None,
    })
}
