//! What the solver needs from the rest of the runtime: layer directories and the cache
//! index (the store), overlay mounts (mount) and a process sandbox (sandbox), as one trait.
//!
//! Keeping this seam small lets the scheduler and op execution be tested on a plain
//! directory store, and keeps the solver independent of how the store lays out its files.
//! Layer ids are the store's short strings.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use cairn_ir::{Digest, NetworkMode};

use super::secrets::SecretBytes;

/// A layer being written: `upper` becomes the layer, `work` is the overlay workdir.
/// Dropping it without committing removes it (the token owns the directories).
pub struct ScratchLayer {
    pub upper: PathBuf,
    pub work: PathBuf,
    pub token: Box<dyn Any + Send>,
}

/// An image resolved from the store (or an OCI layout).
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub manifest_digest: Digest,
    /// Layer ids, bottom first.
    pub layers: Vec<String>,
}

/// One process to run in the sandbox.
#[derive(Debug, Clone)]
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
    pub mounts: Vec<ProcessMount>,
    /// Secrets added to the process environment (`NAME`, value), after `env`.
    pub secret_env: Vec<(String, SecretBytes)>,
}

#[derive(Debug, Clone)]
pub struct ProcessMount {
    pub target: String,
    pub readonly: bool,
    pub source: ProcessMountSource,
}

#[derive(Debug, Clone)]
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
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

/// The services the solver uses. Errors are messages (they end up in a step failure).
pub trait Backend: Sync {
    fn layer_path(&self, id: &str) -> PathBuf;
    fn new_layer(&self) -> Result<ScratchLayer, String>;
    /// A fresh path in the store's temporary directory (nothing is created there); what a
    /// killed build leaves at it is removed the next time the store is opened.
    fn tmp_path(&self, what: &str) -> PathBuf;
    fn commit_layer(&self, layer: ScratchLayer) -> Result<String, String>;
    /// The output chains (output 0 first) recorded under `key`, if any.
    fn cache_get(&self, key: &str) -> Result<Option<Vec<Vec<String>>>, String>;
    fn cache_put(&self, key: &str, chains: &[Vec<String>]) -> Result<(), String>;
    /// An image by reference (`docker.io/library/busybox:latest`, `…@sha256:…` or
    /// `oci-layout://PATH[:TAG|@sha256:…]`); `None` when unknown.
    fn image(&self, reference: &str) -> Result<Option<ImageInfo>, String>;
    /// Mounts an overlay (lowers bottom first) at `target`; unmounted when the guard drops.
    fn mount_overlay(
        &self,
        lowers: &[PathBuf],
        upper_work: Option<(&Path, &Path)>,
        target: &Path,
    ) -> Result<Box<dyn Any + Send>, String>;
    /// Runs a process; output (stdout and stderr merged) goes to `output`; the process is
    /// killed when `cancel` becomes true.
    fn run_process(
        &self,
        spec: &ProcessSpec,
        cancel: &AtomicBool,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<Exit, String>;
}
