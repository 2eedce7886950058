//! The system mounts of a step's root, made by the helper: `/dev` (a tmpfs with the host's
//! null, zero, full, random, urandom and tty bound in, since no device node can be made
//! in a user namespace and the root is `nodev` anyway; `shm` and a new `pts` instance),
//! `/sys` read-only, and `/etc/hosts` and `/etc/resolv.conf` for the step's network.
//! `/proc` is mounted by PID 1, which must see its own PID namespace.

use std::fs;
use std::path::Path;

use super::{rootless, sandbox_hostname, Created, HelperSpec};
use crate::mount;

/// Mounts them below `root`; `owner` is the tmpfs owner option (`--userns=auto`) or empty.
/// Returns the step's hostname.
pub(super) fn system_mounts(
    spec: &HelperSpec,
    root: &Path,
    created: &mut Created,
    owner: &str,
) -> Result<String, String> {
    let upper = &spec.root_upper;
    created.ensure(root, upper, Path::new("proc"), true)?;
    created.ensure(root, upper, Path::new("dev"), true)?;
    let dev = root.join("dev");
    mount::mount("tmpfs", &dev, "tmpfs", libc::MS_NOSUID, Some(&format!("mode=755,size=65536k{owner}")))
        .map_err(|e| format!("cannot mount /dev: {e}"))?;
    for name in ["null", "zero", "full", "random", "urandom", "tty"] {
        let t = dev.join(name);
        fs::File::create(&t).map_err(|e| format!("cannot create /dev/{name}: {e}"))?;
        mount::mount(&format!("/dev/{name}"), &t, "", libc::MS_BIND, None)
            .map_err(|e| format!("cannot bind /dev/{name}: {e}"))?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        let _ = std::os::unix::fs::symlink(target, dev.join(name));
    }
    let shm = format!("mode=1777,size={}{owner}", spec.resources.shm_size.unwrap_or(64 << 20));
    for (name, fstype, data) in
        [("shm", "tmpfs", shm.as_str()), ("pts", "devpts", "newinstance,ptmxmode=0666,mode=0620")]
    {
        let d = dev.join(name);
        let _ = fs::create_dir(&d);
        mount::mount(fstype, &d, fstype, libc::MS_NOSUID | libc::MS_NOEXEC, Some(data))
            .map_err(|e| format!("cannot mount /dev/{name}: {e}"))?;
    }
    // /sys read-only (read-write only for an insecure step), as runc mounts it.
    created.ensure(root, upper, Path::new("sys"), true)?;
    let ro = if spec.insecure { 0 } else { libc::MS_RDONLY };
    let sys_flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    match mount::mount("sysfs", &root.join("sys"), "sysfs", sys_flags | ro, None) {
        Ok(()) => {}
        // In a user namespace sysfs mounts only over a network namespace of that user
        // namespace: with the host's network, bind the host's /sys, read-only.
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && rootless::in_user_namespace() => {
            mount::mount("/sys", &root.join("sys"), "", libc::MS_BIND, None)
                .and_then(|()| {
                    mount::mount("none", &root.join("sys"), "", libc::MS_BIND | libc::MS_REMOUNT | sys_flags | ro, None)
                })
                .map_err(|e| format!("cannot bind the host's /sys: {e}"))?
        }
        Err(e) => return Err(format!("cannot mount /sys: {e}")),
    }
    // hosts and resolv.conf: the host's (host network) or a loopback-only hosts file.
    let hostname = sandbox_hostname(spec).to_string();
    let hosts_src = spec.scratch.join("hosts");
    let mut hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    hosts.push_str(&format!("127.0.1.1\t{hostname}\n"));
    for (name, addr) in &spec.resources.extra_hosts {
        hosts.push_str(&format!("{addr}\t{name}\n"));
    }
    let host_net = !spec.network_none() && !spec.private_net;
    if host_net {
        if let Ok(h) = fs::read_to_string("/etc/hosts") {
            hosts.push_str(&h);
        }
    }
    fs::write(&hosts_src, hosts).map_err(|e| format!("cannot write hosts file: {e}"))?;
    let resolv_src = spec.scratch.join("resolv.conf");
    let resolv = match (host_net, spec.private_net) {
        (true, _) => fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        // slirp4netns forwards DNS at 10.0.2.3 to the host's resolvers.
        (false, true) => "nameserver 10.0.2.3\n".to_string(),
        (false, false) => String::new(),
    };
    fs::write(&resolv_src, resolv).map_err(|e| format!("cannot write resolv.conf: {e}"))?;
    for (rel, src) in [("etc/hosts", &hosts_src), ("etc/resolv.conf", &resolv_src)] {
        created.ensure(root, upper, Path::new(rel), false)?;
        mount::mount(&src.display().to_string(), &root.join(rel), "", libc::MS_BIND, None)
            .map_err(|e| format!("cannot bind /{rel}: {e}"))?;
    }
    Ok(hostname)
}
