//! The default confinement of a RUN step, at least what BuildKit's default OCI spec gives:
//! - the 14 default capabilities only (bounding, permitted and effective sets; inheritable
//!   and ambient empty); a non-root user keeps none of them (`setuid` drops them);
//! - `no_new_privs` and a seccomp filter ([`seccomp`]) that refuses what Docker's default
//!   profile leaves out: mounts, new namespaces, keyrings, bpf, kexec, kernel modules, the
//!   clock, swap, reboot, `ptrace` of processes outside the step is not possible anyway (PID
//!   namespace), quotas, `perf_event_open`, `userfaultfd`, handle-based opens;
//! - masked paths (an empty read-only tmpfs over a directory, `/dev/null` over a file) and
//!   read-only paths in `/proc` and `/sys` ([`MASKED`], [`READ_ONLY`]).
//!
//! Design: the seccomp filter is a deny list of Docker's omissions rather than Docker's
//! ~350-entry allow list: the same calls fail (`EPERM`, and `ENOSYS` for `clone3` so libc
//! falls back to `clone`, whose namespace flags are refused), while a new syscall of a newer
//! kernel is not refused by surprise. `RUN --security=insecure` (with `--allow
//! security.insecure`) skips all of this, as BuildKit's insecure mode does.

use std::collections::BTreeMap;
use std::path::Path;

use caps::{CapSet, Capability, CapsHashSet};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};

use crate::mount;

/// The capabilities a step's root keeps (containerd's and BuildKit's default set).
pub const DEFAULT_CAPS: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// Paths hidden from a step (relative to the root; missing ones are skipped).
pub const MASKED: [&str; 11] = [
    "proc/asound",
    "proc/acpi",
    "proc/kcore",
    "proc/keys",
    "proc/latency_stats",
    "proc/timer_list",
    "proc/timer_stats",
    "proc/sched_debug",
    "proc/scsi",
    "sys/firmware",
    "sys/devices/virtual/powercap",
];

/// Paths a step may read but not write.
pub const READ_ONLY: [&str; 5] = ["proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger"];

/// Masks and write-protects the paths of `paths` below `root` (before `pivot_root`, while
/// the host's `/dev/null` is still reachable).
pub fn protect_paths(root: &Path, masked: &[&str], read_only: &[&str]) -> Result<(), String> {
    for rel in masked {
        let p = root.join(rel);
        let Ok(md) = std::fs::symlink_metadata(&p) else { continue };
        let r = if md.is_dir() {
            mount::mount("tmpfs", &p, "tmpfs", libc::MS_RDONLY, Some("size=0"))
        } else {
            mount::mount("/dev/null", &p, "", libc::MS_BIND, None)
        };
        r.map_err(|e| format!("cannot mask /{rel}: {e}"))?;
    }
    for rel in read_only {
        let p = root.join(rel);
        if std::fs::symlink_metadata(&p).is_err() {
            continue;
        }
        mount::mount(&p.display().to_string(), &p, "", libc::MS_BIND | libc::MS_REC, None)
            .and_then(|()| {
                let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV;
                mount::mount("none", &p, "", flags | libc::MS_NOEXEC, None)
            })
            .map_err(|e| format!("cannot make /{rel} read-only: {e}"))?;
    }
    Ok(())
}

/// Reduces the bounding set to [`DEFAULT_CAPS`]; must run while the process still has
/// `CAP_SETPCAP`, before it changes its user.
pub fn drop_bounding_set() -> Result<(), String> {
    let keep: CapsHashSet = DEFAULT_CAPS.into_iter().collect();
    for cap in caps::all() {
        if !keep.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| format!("cannot drop {cap} from the bounding set: {e}"))?;
        }
    }
    Ok(())
}

/// After `setuid`: root keeps exactly [`DEFAULT_CAPS`] as permitted and effective; every
/// user clears the inheritable and ambient sets.
pub fn set_capabilities(uid: u32) -> Result<(), String> {
    fn err(what: &'static str) -> impl Fn(caps::errors::CapsError) -> String {
        move |e| format!("cannot set the {what} capabilities: {e}")
    }
    caps::clear(None, CapSet::Ambient).map_err(err("ambient"))?;
    caps::clear(None, CapSet::Inheritable).map_err(err("inheritable"))?;
    if uid == 0 {
        let keep: CapsHashSet = DEFAULT_CAPS.into_iter().collect();
        caps::set(None, CapSet::Effective, &keep).map_err(err("effective"))?;
        caps::set(None, CapSet::Permitted, &keep).map_err(err("permitted"))?;
    }
    Ok(())
}

/// Syscalls refused with `EPERM` whatever their arguments.
const DENIED: &[i64] = &[
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_settimeofday,
    libc::SYS_adjtimex,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_syslog,
    libc::SYS_quotactl,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_lookup_dcookie,
    libc::SYS_vhangup,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_uselib,
    #[cfg(target_arch = "x86_64")]
    libc::SYS__sysctl,
];

/// Namespace flags `clone` may not use.
const CLONE_NS_FLAGS: [i32; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

/// The step's seccomp programs: the deny list (`EPERM`) and `clone3` (`ENOSYS`).
pub fn seccomp_programs() -> Result<Vec<BpfProgram>, String> {
    let arch = std::env::consts::ARCH.try_into().map_err(|e| format!("seccomp: {e:?}"))?;
    let err = |e: seccompiler::BackendError| format!("cannot build the seccomp filter: {e}");
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED.iter().map(|&s| (s, Vec::new())).collect();
    let mut clone_rules = Vec::new();
    for f in CLONE_NS_FLAGS {
        let c = SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(f as u64), f as u64)
            .map_err(err)?;
        clone_rules.push(SeccompRule::new(vec![c]).map_err(err)?);
    }
    rules.insert(libc::SYS_clone, clone_rules);
    let deny =
        SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch).map_err(err)?;
    let clone3: BTreeMap<i64, Vec<SeccompRule>> = [(libc::SYS_clone3, Vec::new())].into_iter().collect();
    let clone3 = SeccompFilter::new(clone3, SeccompAction::Allow, SeccompAction::Errno(libc::ENOSYS as u32), arch)
        .map_err(err)?;
    let mut out = Vec::new();
    for f in [deny, clone3] {
        out.push(f.try_into().map_err(|e: seccompiler::BackendError| err(e))?);
    }
    Ok(out)
}

/// Sets `no_new_privs` and installs `programs` (built before, so nothing allocates here).
pub fn apply_seccomp(programs: &[BpfProgram]) -> Result<(), String> {
    for p in programs {
        seccompiler::apply_filter(p).map_err(|e| format!("cannot install the seccomp filter: {e}"))?;
    }
    Ok(())
}
