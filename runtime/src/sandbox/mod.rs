//! The embedded sandbox: runs one RUN step in fresh Linux namespaces over an overlayfs
//! root, with no daemon and no external runtime.
//!
//! `unshare` of a PID or user namespace does not work from the multi-threaded scheduler,
//! so [`run`] re-executes the current binary (`/proc/self/exe`) as a helper with
//! `CAIRN_SANDBOX_HELPER=1`; [`maybe_run_helper`], called first thing in `main`, turns that
//! process into the helper. The protocol:
//! - stdin: the [`HelperSpec`] as JSON (the command itself gets `/dev/null`);
//! - stdout and stderr: the command's output, merged, streamed back to the caller;
//! - fd 3: JSON status lines, `{"error": "…"}` for a setup failure, then
//!   `{"code": N}` or `{"signal": N}` when the command ends.
//!
//! The helper unshares mount, UTS, IPC, PID and cgroup namespaces (and the network namespace
//! for `--network=none`, with only `lo` up), mounts the root overlay (`nodev`), `/dev` with
//! the default device nodes, `/sys` read-only, `/etc/hosts`, `/etc/resolv.conf` and the
//! step's mounts, then forks: the child (`pid1.rs`) is PID 1 of the new PID namespace,
//! mounts `/proc`, masks what a step must not see, pivots into the root, resolves the user
//! through the root's `/etc/passwd` and `/etc/group`, creates the working directory, gives
//! up privileges as BuildKit's default spec does (`confine.rs`: capabilities,
//! `no_new_privs`, seccomp) and execs. `--security=insecure` skips the confinement. When it ends the
//! helper unmounts everything and removes, from the upper directory, every mount point it
//! had to create, so none of them reaches a layer (SPEC.md §7.2).
//!
//! Cancellation: the caller sends the helper `SIGTERM`; its handler `SIGKILL`s the PID
//! namespace's init, the kernel kills everything else in the namespace, and the helper
//! cleans the upper directory and reports as usual. A helper that does not end within a
//! grace period is killed outright (its init dies with it through `PR_SET_PDEATHSIG`, and
//! its mounts with its mount namespace). Killing the helper first would skip the cleaning.
//!
//! Secrets (`RUN --mount=type=secret`) arrive in the stdin JSON only. The helper mounts a
//! tmpfs in its private mount namespace (under the scratch directory, invisible to every
//! other process), writes each secret there with its mode and owner, and bind-mounts the
//! file read-only on the target; the empty mount point is removed from the upper like any
//! other. Env secrets are added to the command's environment by PID 1 right before exec.
//!
//! SSH agents (`RUN --mount=type=ssh`) reach the step through a socket of its own with the
//! mount's mode and owner, forwarded by a process the helper forks (`agent.rs`).
//! `--userns=auto` runs the step in a user namespace of root's subordinate ids over
//! idmapped layers (`idmap.rs`).
//!
//! Root, or a user namespace where cairn is root (rootless, `rootless.rs`), is required;
//! [`check_support`] says what is missing. In a user namespace a step's `/sys` is the
//! host's, bound read-only, when its network namespace is the host's (sysfs cannot be
//! mounted then), and no device node can be made; `/dev` is bound from the host anyway.

mod agent;
mod cgroup;
mod confine;
pub mod idmap;
pub mod net;
mod pid1;
mod points;
pub mod rootless;
mod sysmounts;
mod user;

use std::ffi::CString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use cairn_ir::NetworkMode;
use serde::{Deserialize, Serialize};

use crate::mount;

use crate::process::{Exit, ProcessMountSource, ProcessSpec};
use points::{loopback_up, secrets_tmpfs, write_secret, Created};

const HELPER_ENV: &str = "CAIRN_SANDBOX_HELPER";
/// Exit code of a helper whose setup failed (the message is on fd 3).
const SETUP_FAILED: i32 = 125;
/// How long a cancelled helper may take to clean up before it is killed.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// In the helper: host PID of the namespace's init once forked (0 before).
static INIT_PID: AtomicI32 = AtomicI32::new(0);
/// In the helper: `SIGTERM` arrived.
static CANCELLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    CANCELLED.store(true, Ordering::SeqCst);
    let pid = INIT_PID.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// What the helper gets on its stdin: the process to run, plus what only the helper needs.
/// Derefs to the [`ProcessSpec`], so the helper reads `spec.args`, `spec.mounts`, ….
#[derive(Debug, Serialize, Deserialize)]
pub struct HelperSpec {
    pub process: ProcessSpec,
    /// A scratch directory the helper may use (mount points, filler layers).
    pub scratch: PathBuf,
    /// A network namespace of its own with outbound access through slirp4netns (the
    /// default network, when slirp4netns is installed).
    pub private_net: bool,
    /// `--userns=auto`: the ids the step's user namespace maps (the helper is real root).
    pub idmap: Option<idmap::IdMap>,
}

impl std::ops::Deref for HelperSpec {
    type Target = ProcessSpec;
    fn deref(&self) -> &ProcessSpec {
        &self.process
    }
}

impl HelperSpec {
    /// `--network=none`: only `lo`.
    fn network_none(&self) -> bool {
        self.network == NetworkMode::None
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Error(String),
    Code(i32),
    Signal(i32),
}

/// Checks `--cgroup-parent PATH`: the cgroup exists and cairn may write it.
pub fn check_cgroup_parent(path: &str) -> Result<(), String> {
    cgroup::check_parent(path)
}

/// Whether `name` is a `--ulimit` the sandbox knows (docker's names).
pub fn ulimit_known(name: &str) -> Option<()> {
    pid1::rlimit_resource(name).map(|_| ())
}

/// Can this process run the sandbox? The message says what is missing.
pub fn check_support() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(match rootless::unavailable() {
            Some(why) => format!("rootless cairn runs its builds in a user namespace, but {why}"),
            None => "cairn's sandbox needs root, or a user namespace in which cairn is root".into(),
        });
    }
    let fs = fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !fs.lines().any(|l| l.trim_end().ends_with("overlay")) {
        return Err("the kernel has no overlayfs (`modprobe overlay`), which cairn needs to stack layers".into());
    }
    if !Path::new("/proc/self/ns/pid").exists() {
        return Err("the kernel has no PID namespaces, which cairn's sandbox needs".into());
    }
    Ok(())
}

/// Runs `spec` and streams its output. `scratch` is an empty directory for this run (the
/// caller removes it afterwards).
pub fn run(spec: &ProcessSpec, scratch: &Path, cancel: &AtomicBool, output: &mut dyn FnMut(&[u8])) -> io::Result<Exit> {
    check_support().map_err(io::Error::other)?;
    let idmap =
        match spec.resources.userns {
            false => None,
            true if rootless::in_user_namespace() => return Err(io::Error::other(
                "`--userns=auto` is for cairn run as root: rootless, every step already runs in cairn's user namespace",
            )),
            true => {
                static RANGE: std::sync::OnceLock<Result<idmap::IdMap, String>> = std::sync::OnceLock::new();
                Some(RANGE.get_or_init(idmap::root_range).clone().map_err(io::Error::other)?)
            }
        };
    let hs = HelperSpec {
        process: spec.clone(),
        scratch: scratch.to_path_buf(),
        private_net: spec.network == NetworkMode::Default && net::slirp4netns().is_some(),
        idmap,
    };
    if spec.network == NetworkMode::Default && !hs.private_net {
        output(b"warning: slirp4netns is not installed, so this step uses the host's network\n");
    }
    if hs.private_net && rootless::in_user_namespace() {
        // slirp4netns opens the tun device as the user (udev makes it 0666 on Debian).
        if let Err(e) = fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun") {
            return Err(io::Error::other(format!(
                "rootless: the step's network (slirp4netns) needs /dev/net/tun usable by the user running cairn, and opening it failed ({e}); make it mode 0666 as Debian's udev does (`chmod 0666 /dev/net/tun`), or build with `--network=none`"
            )));
        }
    }
    static SINGLE_SAID: AtomicBool = AtomicBool::new(false);
    if rootless::single_id() && !SINGLE_SAID.swap(true, Ordering::SeqCst) {
        output(format!("warning: {}\n", rootless::SINGLE_ID_NOTE).as_bytes());
    }
    let json = serde_json::to_vec(&hs).map_err(io::Error::other)?;
    let (out_r, out_w) = pipe()?;
    let (st_r, st_w) = pipe()?;
    let out_w2 = out_w.try_clone()?;
    let st_fd = st_w.as_raw_fd();
    let mut cmd = Command::new("/proc/self/exe");
    cmd.env_clear().env(HELPER_ENV, "1").stdin(Stdio::piped()).stdout(Stdio::from(out_w)).stderr(Stdio::from(out_w2));
    // SAFETY: dup2 and prctl are async-signal-safe; the closure touches nothing else.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself would keep close-on-exec: clear it by hand then.
            let r = if st_fd == 3 { libc::fcntl(3, libc::F_SETFD, 0) } else { libc::dup2(st_fd, 3) };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
            // If cairn dies (even SIGKILL), the helper dies, and with it the namespace.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child =
        cmd.spawn().map_err(|e| io::Error::new(e.kind(), format!("cannot start the sandbox helper: {e}")))?;
    drop(cmd); // closes our copies of the write ends
    drop(st_w);
    // Into the step's cgroup before it reads its spec, so before it starts anything.
    static STEP_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = STEP_SEQ.fetch_add(1, Ordering::Relaxed);
    let name = format!("{}-{n}", std::process::id());
    let r = &spec.resources;
    let step_cgroup = match cgroup::StepCgroup::create(&name, r.pids_max, r.memory_max, r.cgroup_parent.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(e));
        }
    };
    static NO_CGROUP_SAID: AtomicBool = AtomicBool::new(false);
    if step_cgroup.is_none()
        && (r.pids_max.is_some() || r.memory_max.is_some())
        && rootless::in_user_namespace()
        && !NO_CGROUP_SAID.swap(true, Ordering::SeqCst)
    {
        output(b"warning: rootless cairn found no writable cgroup (none delegated to the user), so steps run without the pids and memory limits; give a delegated one with `--cgroup-parent`\n");
    }
    if let Some(cg) = &step_cgroup {
        if let Err(e) = cg.add(child.id()) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(e.kind(), format!("cannot move the step into its cgroup: {e}")));
        }
    }
    {
        let mut stdin = child.stdin.take().expect("piped");
        stdin.write_all(&json)?;
    }
    // Stream output until EOF, polling for cancellation.
    let mut out = fs::File::from(out_r);
    let mut buf = vec![0u8; 64 * 1024];
    let helper_pid = child.id() as libc::pid_t;
    let mut cancelled_at: Option<Instant> = None;
    let mut killed = false;
    loop {
        let mut pfd = libc::pollfd { fd: out.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 100) };
        if cancel.load(Ordering::SeqCst) {
            match cancelled_at {
                None => {
                    // SAFETY: the helper is our child and not reaped yet, so the PID is its.
                    unsafe { libc::kill(helper_pid, libc::SIGTERM) };
                    cancelled_at = Some(Instant::now());
                }
                Some(t) if !killed && t.elapsed() > CANCEL_GRACE => {
                    let _ = child.kill();
                    killed = true;
                }
                Some(_) => {}
            }
        }
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            continue;
        }
        match out.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => output(&buf[..k]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let status = child.wait()?;
    drop(step_cgroup);
    let mut text = String::new();
    fs::File::from(st_r).read_to_string(&mut text)?;
    if cancelled_at.is_some() {
        return Ok(Exit { code: None, signal: Some(libc::SIGKILL) });
    }
    let mut exit = None;
    for line in text.lines() {
        match serde_json::from_str::<Status>(line) {
            Ok(Status::Error(m)) => return Err(io::Error::other(m)),
            Ok(Status::Code(c)) if exit.is_none() => exit = Some(Exit { code: Some(c), signal: None }),
            Ok(Status::Signal(s)) if exit.is_none() => exit = Some(Exit { code: None, signal: Some(s) }),
            Ok(_) => {}
            Err(_) => {}
        }
    }
    exit.ok_or_else(|| io::Error::other(format!("the sandbox helper ended without a status ({status})")))
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: freshly created descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// If this process is the sandbox helper, runs it and exits; otherwise returns.
pub fn maybe_run_helper() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    // SAFETY: F_GETFD on any number is harmless.
    if unsafe { libc::fcntl(3, libc::F_GETFD) } < 0 {
        eprintln!("{HELPER_ENV} is set but fd 3 is not open: the sandbox helper is only started by cairn itself");
        std::process::exit(SETUP_FAILED);
    }
    // SAFETY: the handler only touches atomics and calls kill; sigaction is zeroed first.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigterm as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
    }
    // SAFETY: fd 3 was set up by `run` (checked open above).
    let mut status = unsafe { fs::File::from_raw_fd(3) };
    let report = |status: &mut fs::File, s: Status| {
        let _ = writeln!(status, "{}", serde_json::to_string(&s).unwrap_or_default());
    };
    let mut input = Vec::new();
    if let Err(e) = io::stdin().read_to_end(&mut input) {
        report(&mut status, Status::Error(format!("sandbox helper: cannot read its spec: {e}")));
        std::process::exit(SETUP_FAILED);
    }
    let spec: HelperSpec = match serde_json::from_slice(&input) {
        Ok(s) => s,
        Err(e) => {
            report(&mut status, Status::Error(format!("sandbox helper: bad spec: {e}")));
            std::process::exit(SETUP_FAILED);
        }
    };
    match helper(&spec, &mut status) {
        Ok(Some(s)) => report(&mut status, s),
        Ok(None) => {}
        Err(e) => report(&mut status, Status::Error(e)),
    }
    std::process::exit(0);
}

fn cstring(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("`{s}` contains a NUL byte"))
}

fn errno(what: &str) -> String {
    format!("{what}: {}", io::Error::last_os_error())
}

/// The helper proper: returns how the command ended, or a setup error.
fn helper(spec: &HelperSpec, status: &mut fs::File) -> Result<Option<Status>, String> {
    let mut flags =
        libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWPID | libc::CLONE_NEWCGROUP;
    // Made before the unshare: the forked child would be PID 1 of the new PID namespace.
    let userns = match &spec.idmap {
        Some(m) => Some((idmap::userns(m)?, *m)),
        None => None,
    };
    // Forked before the unshare too, outside the step's namespaces.
    let base = spec.idmap.map_or((0, 0), |m| (m.uid, m.gid));
    let _agents = agent::start(&spec.scratch, &spec.mounts, base)?;
    // Forked before the unshare: slirp4netns runs in the host's network namespace.
    let slirp = match net::slirp4netns().filter(|_| spec.private_net) {
        Some(bin) => Some(net::fork_slirp(&bin)?),
        None => None,
    };
    if spec.network_none() || spec.private_net {
        flags |= libc::CLONE_NEWNET;
    }
    // SAFETY: unshare in a single-threaded process.
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(errno("cannot create namespaces (unshare)"));
    }
    // slirp4netns configures the namespace while the mounts are set up.
    let mut slirp = match slirp {
        Some(p) => Some(p.go()?),
        None => None,
    };
    mount::mount("none", Path::new("/"), "", libc::MS_REC | libc::MS_PRIVATE, None)
        .map_err(|e| format!("cannot make mounts private: {e}"))?;
    let root = spec.scratch.join("root");
    let empty = spec.scratch.join("empty");
    for d in [&root, &empty] {
        fs::create_dir_all(d).map_err(|e| format!("cannot create `{}`: {e}", d.display()))?;
    }
    let mut views = match &userns {
        Some((fd, m)) => {
            idmap::become_mapped_root(m)?;
            Some(idmap::Views { userns: fd, scratch: spec.scratch.join("idmap"), n: 0 })
        }
        None => None,
    };
    match views.as_mut() {
        None => {
            mount::mount_overlay(&spec.root_lowers, Some((&spec.root_upper, &spec.root_work)), &root, false, &empty)
        }
        Some(v) => {
            let (lowers, uw) = v.overlay(&spec.root_lowers, Some((&spec.root_upper, &spec.root_work)))?;
            let uw = uw.as_ref().map(|(u, w)| (u.as_path(), w.as_path()));
            mount::mount_overlay(&lowers, uw, &root, false, &empty)
        }
    }
    .map_err(|e| format!("cannot mount the root filesystem: {e}"))?;
    if !spec.insecure {
        // Device nodes in the root (an image's, or made by `mknod`) cannot be opened: the
        // device cgroup's job under runc. /dev gets its own mount with the default nodes.
        mount::mount("none", &root, "", libc::MS_BIND | libc::MS_REMOUNT | libc::MS_NODEV, None)
            .map_err(|e| format!("cannot mount the root filesystem nodev: {e}"))?;
    }
    let mut created = Created::default();
    let result = setup_and_run(spec, &root, &empty, &mut created, status, slirp.as_mut(), views.as_mut());
    let _ = mount::unmount(&root);
    created.clean(&spec.root_upper);
    result
}

fn setup_and_run(
    spec: &HelperSpec,
    root: &Path,
    empty: &Path,
    created: &mut Created,
    status: &mut fs::File,
    slirp: Option<&mut net::Slirp>,
    mut views: Option<&mut idmap::Views>,
) -> Result<Option<Status>, String> {
    let upper = &spec.root_upper;
    // `--userns=auto`: fresh tmpfs mounts belong to the namespace's root.
    let owner = spec.idmap.map_or(String::new(), |m| format!(",uid={},gid={}", m.uid, m.gid));
    let (base_uid, base_gid) = spec.idmap.map_or((0, 0), |m| (m.uid, m.gid));
    let hostname = sysmounts::system_mounts(spec, root, created, &owner)?;
    // The step's mounts, in order.
    let mut secret_dir: Option<PathBuf> = None;
    for (n, m) in spec.mounts.iter().enumerate() {
        let rel = Path::new(m.target.trim_start_matches('/'));
        if rel.as_os_str().is_empty() {
            return Err("a mount cannot target `/`".into());
        }
        if !rel.components().all(|c| matches!(c, std::path::Component::Normal(_))) {
            return Err(format!("mount target `{}` must be an absolute path without `..`", m.target));
        }
        let target = root.join(rel);
        match &m.source {
            ProcessMountSource::Bind(src) => {
                let is_dir = fs::metadata(src).map(|md| md.is_dir()).unwrap_or(true);
                created.ensure(root, upper, rel, is_dir)?;
                match views.as_deref() {
                    Some(v) => idmap::bind_idmapped(src, &target, v.userns)?,
                    None => mount::mount(&src.display().to_string(), &target, "", libc::MS_BIND | libc::MS_REC, None)
                        .map_err(|e| format!("cannot bind `{}` at `{}`: {e}", src.display(), m.target))?,
                }
                if m.readonly {
                    mount::mount(
                        "none",
                        &target,
                        "",
                        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_REC,
                        None,
                    )
                    .map_err(|e| format!("cannot make `{}` read-only: {e}", m.target))?;
                }
            }
            ProcessMountSource::Overlay { lowers, upper: up } => {
                created.ensure(root, upper, rel, true)?;
                let uw = up.as_ref().map(|(u, w)| (u.as_path(), w.as_path()));
                let r = match views.as_deref_mut() {
                    None => mount::mount_overlay(lowers, uw, &target, m.readonly, empty),
                    Some(v) => {
                        let (lowers, uw) = v.overlay(lowers, uw)?;
                        let uw = uw.as_ref().map(|(u, w)| (u.as_path(), w.as_path()));
                        mount::mount_overlay(&lowers, uw, &target, m.readonly, empty)
                    }
                };
                r.map_err(|e| format!("cannot mount at `{}`: {e}", m.target))?;
            }
            ProcessMountSource::Tmpfs { size } => {
                created.ensure(root, upper, rel, true)?;
                let data =
                    if *size > 0 { format!("mode=1777,size={size}{owner}") } else { format!("mode=1777{owner}") };
                let ro = if m.readonly { libc::MS_RDONLY } else { 0 };
                mount::mount("tmpfs", &target, "tmpfs", libc::MS_NOSUID | libc::MS_NODEV | ro, Some(&data))
                    .map_err(|e| format!("cannot mount a tmpfs at `{}`: {e}", m.target))?;
            }
            ProcessMountSource::Socket { .. } => {
                created.ensure(root, upper, rel, false)?;
                let sock = agent::socket_path(&spec.scratch, n);
                mount::mount(&sock.display().to_string(), &target, "", libc::MS_BIND, None)
                    .map_err(|e| format!("cannot mount the SSH agent socket at `{}`: {e}", m.target))?;
            }
            ProcessMountSource::Secret { data, mode, uid, gid } => {
                let dir = match &secret_dir {
                    Some(d) => d.clone(),
                    None => {
                        let d = secrets_tmpfs(spec)?;
                        secret_dir = Some(d.clone());
                        d
                    }
                };
                let file = dir.join(n.to_string());
                write_secret(&file, data, *mode, uid + base_uid, gid + base_gid)
                    .map_err(|e| format!("cannot write the secret for `{}`: {e}", m.target))?;
                created.ensure(root, upper, rel, false)?;
                mount::mount(&file.display().to_string(), &target, "", libc::MS_BIND, None)
                    .map_err(|e| format!("cannot mount a secret at `{}`: {e}", m.target))?;
                mount::mount(
                    "none",
                    &target,
                    "",
                    libc::MS_BIND
                        | libc::MS_REMOUNT
                        | libc::MS_RDONLY
                        | libc::MS_NOSUID
                        | libc::MS_NODEV
                        | libc::MS_NOEXEC,
                    None,
                )
                .map_err(|e| format!("cannot make the secret at `{}` read-only: {e}", m.target))?;
            }
        }
    }
    let h = cstring(&hostname)?;
    // SAFETY: valid buffer and length.
    if unsafe { libc::sethostname(h.as_ptr(), hostname.len()) } != 0 {
        return Err(errno("cannot set the hostname"));
    }
    if let Some(s) = slirp {
        s.wait_ready()?;
    }
    if spec.network_none() || spec.private_net {
        loopback_up()?;
    }
    if CANCELLED.load(Ordering::SeqCst) {
        return Ok(Some(Status::Signal(libc::SIGKILL)));
    }
    // PID 1 of the new namespace.
    // SAFETY: single-threaded process; the child only runs Rust code of this process.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(errno("cannot fork"));
    }
    if pid == 0 {
        // SAFETY: back to the default action; the handler belongs to the helper.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_DFL) };
        let err = pid1::child(spec, root, views.as_deref().map(|v| v.userns));
        let _ = writeln!(status, "{}", serde_json::to_string(&Status::Error(err)).unwrap_or_default());
        // SAFETY: leaving the child without running destructors.
        unsafe { libc::_exit(SETUP_FAILED) };
    }
    INIT_PID.store(pid, Ordering::SeqCst);
    if CANCELLED.load(Ordering::SeqCst) {
        // SIGTERM came between the check above and the store: the handler saw no PID.
        // SAFETY: our child, not reaped yet.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let mut ws = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut ws, 0) };
        if r == pid {
            break;
        }
        if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return Err(errno("waitpid"));
        }
    }
    // Init reported the command's end on fd 3 itself; only its own death is news here.
    if libc::WIFSIGNALED(ws) {
        return Ok(Some(Status::Signal(libc::WTERMSIG(ws))));
    }
    Ok(None)
}

/// The UTS hostname of the step: the Exec's, or `cairn`.
fn sandbox_hostname(spec: &HelperSpec) -> &str {
    if spec.hostname.is_empty() {
        "cairn"
    } else {
        &spec.hostname
    }
}
