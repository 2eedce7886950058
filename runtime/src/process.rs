//! The contract between whoever asks for a process and an executor: what to run
//! ([`ProcessSpec`]: root layers, argv, environment, mounts) and how it ended ([`Exit`]).
//!
//! A leaf module: it depends on nothing else in the runtime, so the sandbox (the executor
//! cairn has) and the solver (which asks) meet here without knowing each other.

use std::fmt;
use std::path::PathBuf;

use cairn_ir::NetworkMode;
use serde::{Deserialize, Serialize};

/// Secret bytes; `Debug` never shows them.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretBytes(pub Vec<u8>);

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes>)", self.0.len())
    }
}

/// One process to run in the sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// Root filesystem layers, bottom first (empty: scratch).
    pub root_lowers: Vec<PathBuf>,
    pub root_upper: PathBuf,
    pub root_work: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub hostname: String,
    pub network: NetworkMode,
    /// Run without the default confinement (`RUN --security=insecure`, allowed by the
    /// `security.insecure` entitlement).
    pub insecure: bool,
    pub mounts: Vec<ProcessMount>,
    /// Resource limits and host details (the build's).
    pub resources: StepResources,
    /// Secrets added to the process environment (`NAME`, value), after `env`.
    pub secret_env: Vec<(String, SecretBytes)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessMount {
    pub target: String,
    pub readonly: bool,
    pub source: ProcessMountSource,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ProcessMountSource {
    Bind(PathBuf),
    /// Lower dirs bottom first; `upper` = (upper, work) or a read-only stack.
    Overlay {
        lowers: Vec<PathBuf>,
        upper: Option<(PathBuf, PathBuf)>,
    },
    Tmpfs {
        size: u64,
    },
    /// A file holding secret bytes; the sandbox keeps it in memory (never on disk).
    Secret {
        data: SecretBytes,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// An SSH agent's socket (`RUN --mount=type=ssh`): the step gets a socket of its own
    /// with this mode and owner, forwarded to `agent`.
    Socket {
        agent: PathBuf,
        mode: u32,
        uid: u32,
        gid: u32,
    },
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

/// One `--ulimit NAME=SOFT[:HARD]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// docker's name: `nofile`, `nproc`, `core`, `memlock`, `stack`, `fsize`, …
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// Resources and host details of every step of a build (`--ulimit`, `--shm-size`,
/// `--add-host`, `--pids-limit`, `--memory`, `--cgroup-parent`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepResources {
    pub ulimits: Vec<Ulimit>,
    /// Size of `/dev/shm` in bytes (default 64 MiB, as Docker).
    pub shm_size: Option<u64>,
    /// Extra `/etc/hosts` entries: (name, address).
    pub extra_hosts: Vec<(String, String)>,
    /// Most processes and threads a step may have (a cgroup `pids.max`).
    pub pids_max: Option<u64>,
    /// Most memory a step may use, in bytes (a cgroup memory limit).
    pub memory_max: Option<u64>,
    /// `--cgroup-parent`: the cgroup (a path from the cgroup tree's root) the step cgroups
    /// are made in.
    #[serde(default)]
    pub cgroup_parent: Option<String>,
    /// `--userns=auto`: steps run in a user namespace of root's subordinate ids.
    #[serde(default)]
    pub userns: bool,
}

impl StepResources {
    /// What of these can change a step's result (and so enters its cache key): ulimits,
    /// `/dev/shm`'s size and hosts entries; limits only make a step fail or not.
    pub fn key_bytes(&self) -> Option<Vec<u8>> {
        if self.ulimits.is_empty() && self.shm_size.is_none() && self.extra_hosts.is_empty() {
            return None;
        }
        Some(serde_json::to_vec(&(&self.ulimits, self.shm_size, &self.extra_hosts)).unwrap_or_default())
    }
}
