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
//! confinement does not depend on it.

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

impl StepCgroup {
    /// Makes the step's cgroup(s) with the limits that can be set; `None` when neither
    /// limit is asked for or no cgroup can be made here.
    pub fn create(name: &str, pids_max: Option<u64>, memory_max: Option<u64>) -> Option<StepCgroup> {
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
            if let Some(n) = pids_max {
                let _ = fs::write(dir.join("pids.max"), n.to_string());
            }
            if let Some(n) = memory_max {
                let _ = fs::write(dir.join("memory.max"), n.to_string());
                let _ = fs::write(dir.join("memory.swap.max"), "0");
            }
            dirs.push(dir);
        } else {
            for (ctrl, limit, file) in [("pids", pids_max, "pids.max"), ("memory", memory_max, "memory.limit_in_bytes")]
            {
                let (Some(n), Some(own)) = (limit, own_path(ctrl)) else { continue };
                let dir = Path::new(ROOT).join(ctrl).join(own.trim_start_matches('/')).join("cairn").join(name);
                if fs::create_dir_all(&dir).is_err() {
                    continue;
                }
                if fs::write(dir.join(file), n.to_string()).is_ok() {
                    dirs.push(dir);
                } else {
                    let _ = fs::remove_dir(&dir);
                }
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
