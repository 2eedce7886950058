//! Issue 10, `--cgroup-parent PATH` (buildx's flag): the step cgroups are made below the
//! given cgroup, which must exist and be writable. Seen from the parent's own accounting:
//! its memory peak grows by what a step puts in its `/dev/shm`.

use std::path::PathBuf;

use crate::build_cli::{build, setup, stderr};
use crate::rootless_cli::{cairn_as, ensure_user, user_dir, SUB_USER};

const ROOT: &str = "/sys/fs/cgroup";

/// A cgroup made for one test at `/<name>` in the hierarchies cairn uses (the v2 tree, or
/// v1's `pids` and `memory`), removed on drop; `peak` is the memory high-water mark file.
struct Parent {
    dirs: Vec<PathBuf>,
    peak: PathBuf,
}

impl Parent {
    fn new(name: &str) -> Parent {
        let v2 = std::path::Path::new(ROOT).join("cgroup.controllers").exists();
        let (dirs, peak): (Vec<PathBuf>, PathBuf) = if v2 {
            let d = PathBuf::from(ROOT).join(name);
            (vec![d.clone()], d.join("memory.peak"))
        } else {
            let m = PathBuf::from(ROOT).join("memory").join(name);
            (vec![PathBuf::from(ROOT).join("pids").join(name), m.clone()], m.join("memory.max_usage_in_bytes"))
        };
        for d in &dirs {
            let _ = std::fs::remove_dir(d);
            std::fs::create_dir(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        }
        Parent { dirs, peak }
    }

    fn peak(&self) -> u64 {
        std::fs::read_to_string(&self.peak).unwrap().trim().parse().unwrap()
    }

    /// Cgroups left below the parent.
    fn children(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for d in &self.dirs {
            for e in std::fs::read_dir(d).unwrap().flatten() {
                if e.file_type().unwrap().is_dir() {
                    out.push(e.path());
                }
            }
        }
        out
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[test]
fn issue10_cgroup_parent_holds_the_step_cgroups() {
    let name = format!("cairn-it-parent-{}", std::process::id());
    let parent = Parent::new(&name);
    assert!(parent.peak() < 16 << 20, "a fresh cgroup has used nothing yet");
    let t = setup("cgroup-parent");
    t.write("ctx/Dockerfile", "FROM busybox\nRUN head -c 33554432 /dev/zero > /dev/shm/fill && echo ok > /ok\n");
    let (o, _) = build(&t, &["--cgroup-parent", &format!("/{name}")]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The 32 MiB in the step's /dev/shm were charged below the parent.
    assert!(parent.peak() >= 32 << 20, "peak {} below 32 MiB: the step did not run below the parent", parent.peak());
    assert!(parent.children().is_empty(), "step cgroups are removed: {:?}", parent.children());

    // A parent that does not exist: an error naming the flag, before any step runs.
    t.write("ctx/Dockerfile", "FROM busybox\nRUN echo never > /x\n");
    let (o, _) = build(&t, &["--cgroup-parent", "/cairn-it-no-such-cgroup"]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("--cgroup-parent /cairn-it-no-such-cgroup") && err.contains("does not exist"), "{err}");
    let (o, _) = build(&t, &["--cgroup-parent", "/../etc"]);
    assert!(stderr(&o).contains("Invalid `--cgroup-parent /../etc`"), "{}", stderr(&o));

    // Rootless, root's cgroup is not writable: said so, with what to do.
    ensure_user(SUB_USER, true);
    let u = user_dir("cgroup-parent-rootless", SUB_USER);
    std::fs::create_dir_all(u.path("ctx")).unwrap();
    std::fs::write(u.path("ctx/Dockerfile"), "FROM scratch\nCOPY Dockerfile /\n").unwrap();
    let o = cairn_as(SUB_USER, &u, &["build", "--progress", "plain", "--cgroup-parent", &format!("/{name}"), "ctx"]);
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("is not writable by cairn") && err.contains("delegate it"), "{err}");
}
