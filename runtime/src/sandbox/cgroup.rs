//! A cgroup per step for its pids and memory limits, made and removed by the parent
//! (`sandbox::run`), which moves the helper into it before the helper reads its spec, so
//! every process of the step is inside from its start; the helper's cgroup namespace then
//! hides the host's tree.
//!
//! Where: cgroup v2 (`/sys/fs/cgroup` is `cgroup2`): `cairn-steps/<name>` below the
//! current process's cgroup, with `pids` and `memory` enabled for it when that is allowed
//! (a cgroup with processes of its own cannot enable controllers for its children, the
//! "no internal processes" rule; then the step runs without these limits). cgroup v1
//! (Debian hosts with the hybrid layout): `cairn/<name>` below the current cgroup of the
//! `pids` and `memory` hierarchies. A limit that cannot be set is skipped, not fatal:
//! confinement does not depend on it. Rootless, the host's cgroup tree is writable only
//! where it was delegated to the user; without such a cgroup steps run without the limits
//! (the sandbox warns once).
//!
//! `--cgroup-parent P` (buildx's flag): the step cgroups are `cairn-<name>` directly below
//! `P`, a path from the root of the cgroup v2 tree (or of each v1 hierarchy used), which
//! must exist and be writable; then a failure to make the step's cgroup is an error.

use std::fs;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

/// The cgroup directories of one step; removed on drop.
pub struct StepCgroup {
    dirs: Vec<PathBuf>,
}

/// This process's cgroup path in hierarchy `controller` (v1) or the unified one (`""`).
fn own_path(controller: &str) -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = if controller.is_empty() { ctrls.is_empty() } else { ctrls.split(',').any(|c| c == controller) };
        hit.then(|| path.to_string())
    })
}

fn is_cgroup2(p: &Path) -> bool {
    let c = match std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) {
        Ok(c) => c,
        Err(_) => return false,
    };
    // SAFETY: a valid C string and a zeroed statfs buffer.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type == libc::CGROUP2_SUPER_MAGIC
    }
}

/// The cgroups `--cgroup-parent P` names, with their controller: `P` below the root of the
/// cgroup v2 tree, or of the `pids` and `memory` hierarchies on cgroup v1. Each must exist
/// and be writable; the error says which is not and what to do.
fn parent_dirs(p: &str) -> Result<Vec<(&'static str, PathBuf)>, String> {
    let rel = Path::new(p.trim_start_matches('/'));
    if rel.as_os_str().is_empty() || !rel.components().all(|c| matches!(c, std::path::Component::Normal(_))) {
        return Err(format!("Invalid `--cgroup-parent {p}`: expected a cgroup path such as /ci/builds (without `..`)"));
    }
    let dirs = if is_cgroup2(Path::new(ROOT)) {
        vec![("", Path::new(ROOT).join(rel))]
    } else {
        ["pids", "memory"].into_iter().map(|c| (c, Path::new(ROOT).join(c).join(rel))).collect()
    };
    for (_, d) in &dirs {
        if !d.is_dir() {
            return Err(format!(
                "`--cgroup-parent {p}`: the cgroup `{}` does not exist (create it first: `mkdir {}`)",
                d.display(),
                d.display()
            ));
        }
        let c = std::ffi::CString::new(d.as_os_str().as_encoded_bytes()).map_err(|_| format!("bad path `{p}`"))?;
        // SAFETY: a valid C string.
        if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
            return Err(format!(
                "`--cgroup-parent {p}`: the cgroup `{}` is not writable by cairn ({}); delegate it to the user running cairn (`chown -R USER {}`)",
                d.display(),
                std::io::Error::last_os_error(),
                d.display()
            ));
        }
    }
    Ok(dirs)
}

/// Checks a `--cgroup-parent` before the build starts.
pub fn check_parent(p: &str) -> Result<(), String> {
    parent_dirs(p).map(|_| ())
}

/// Writes the limits a cgroup of controller `ctrl` (`""`: cgroup v2) can hold; a limit
/// that cannot be set is skipped.
fn set_limits(ctrl: &str, dir: &Path, pids_max: Option<u64>, memory_max: Option<u64>) {
    let (pids_file, memory_file) = match ctrl {
        "" => (Some("pids.max"), Some("memory.max")),
        "pids" => (Some("pids.max"), None),
        _ => (None, Some("memory.limit_in_bytes")),
    };
    if let (Some(f), Some(n)) = (pids_file, pids_max) {
        let _ = fs::write(dir.join(f), n.to_string());
    }
    if let (Some(f), Some(n)) = (memory_file, memory_max) {
        let _ = fs::write(dir.join(f), n.to_string());
        if ctrl.is_empty() {
            let _ = fs::write(dir.join("memory.swap.max"), "0");
        }
    }
}

impl StepCgroup {
    /// The step's cgroup(s) below `--cgroup-parent` when given (an error when they cannot
    /// be made there), else below this process's own cgroup when a limit is asked for and
    /// one can be made (`None` otherwise).
    pub fn create(
        name: &str,
        pids_max: Option<u64>,
        memory_max: Option<u64>,
        parent: Option<&str>,
    ) -> Result<Option<StepCgroup>, String> {
        let Some(p) = parent else { return Ok(Self::create_below_own(name, pids_max, memory_max)) };
        let mut cg = StepCgroup { dirs: Vec::new() };
        for (ctrl, base) in parent_dirs(p)? {
            if ctrl.is_empty() {
                // Allowed only where the "no internal processes" rule permits.
                let _ = fs::write(base.join("cgroup.subtree_control"), "+pids +memory");
            }
            let dir = base.join(format!("cairn-{name}"));
            fs::create_dir(&dir).map_err(|e| {
                format!("`--cgroup-parent {p}`: cannot create the step's cgroup `{}`: {e}", dir.display())
            })?;
            set_limits(ctrl, &dir, pids_max, memory_max);
            cg.dirs.push(dir);
        }
        Ok(Some(cg))
    }

    fn create_below_own(name: &str, pids_max: Option<u64>, memory_max: Option<u64>) -> Option<StepCgroup> {
        if pids_max.is_none() && memory_max.is_none() {
            return None;
        }
        let mut dirs = Vec::new();
        if is_cgroup2(Path::new(ROOT)) {
            let parent = Path::new(ROOT).join(own_path("")?.trim_start_matches('/')).join("cairn-steps");
            fs::create_dir_all(&parent).ok()?;
            // Allowed only where the rule permits; a failure leaves the step unlimited.
            let _ = fs::write(parent.join("cgroup.subtree_control"), "+pids +memory");
            let dir = parent.join(name);
            fs::create_dir(&dir).ok()?;
            set_limits("", &dir, pids_max, memory_max);
            dirs.push(dir);
        } else {
            for (ctrl, limit) in [("pids", pids_max), ("memory", memory_max)] {
                let (Some(_), Some(own)) = (limit, own_path(ctrl)) else { continue };
                let dir = Path::new(ROOT).join(ctrl).join(own.trim_start_matches('/')).join("cairn").join(name);
                if fs::create_dir_all(&dir).is_err() {
                    continue;
                }
                set_limits(ctrl, &dir, pids_max, memory_max);
                dirs.push(dir);
            }
        }
        (!dirs.is_empty()).then_some(StepCgroup { dirs })
    }

    /// Moves process `pid` (and so everything it starts later) into the step's cgroups.
    pub fn add(&self, pid: u32) -> std::io::Result<()> {
        for d in &self.dirs {
            fs::write(d.join("cgroup.procs"), pid.to_string())?;
        }
        Ok(())
    }
}

impl Drop for StepCgroup {
    fn drop(&mut self) {
        for d in &self.dirs {
            // The last processes of the step may still be exiting: retry for a moment.
            for _ in 0..100 {
                if fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}
