//! What the solver needs from the rest of the runtime, as four small traits with typed
//! errors: [`Snapshots`] (layer directories and overlay views of chains), [`CacheIndex`]
//! (key → result chains), [`Executor`] (runs a process) and [`Images`] (image references →
//! layer chains). [`Backend`] is all four; the real one is
//! [`super::runtime_backend::RuntimeBackend`] over the store, `mount` and `sandbox`.
//!
//! Design: the seams are where something else plugs in. A registry-backed cache implements
//! [`CacheIndex`] only; a second executor implements [`Executor`] only; scratch layers and
//! mounts are associated types, so a backend hands out its own values rather than type-erased
//! tokens. The engine (`engine.rs`) sees only [`CacheIndex`]; host paths appear only in the
//! ops that run on this machine (file actions, process mounts), which get them from
//! [`Snapshots`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use cairn_ir::Digest;

pub use crate::process::{Exit, ProcessMount, ProcessMountSource, ProcessSpec};

/// A layer id of a [`Snapshots`] implementation.
pub type LayerId = String;

/// A chain of layers, bottom first.
pub type Chain = Vec<LayerId>;

/// A cache key (SPEC.md §6): the identity of a vertex's inputs, not of its definition.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey(pub [u8; 32]);

impl CacheKey {
    /// Lower-case hex, as stored in the cache index.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", &self.hex()[..12])
    }
}

/// Why a backend call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BackendError {
    /// The store failed (I/O, corrupt content, unknown image).
    Store(crate::store::StoreError),
    /// A filesystem operation outside the store failed (mount points, overlay mounts).
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    /// The executor could not run the process (not its exit status: that is an [`Exit`]).
    Process(String),
    /// An image could not be pulled from its registry.
    Pull(String),
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::Store(e) => write!(f, "{e}"),
            BackendError::Io { action, path, source } => write!(f, "Cannot {action} `{}`: {source}", path.display()),
            BackendError::Process(m) | BackendError::Pull(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BackendError::Store(e) => Some(e),
            BackendError::Io { source, .. } => Some(source),
            BackendError::Process(_) | BackendError::Pull(_) => None,
        }
    }
}

impl From<crate::store::StoreError> for BackendError {
    fn from(e: crate::store::StoreError) -> Self {
        BackendError::Store(e)
    }
}

/// A layer being written: `upper()` becomes the layer when committed, `work()` is the
/// overlay workdir. Dropping it without committing removes it.
pub trait Scratch: Send {
    fn upper(&self) -> &Path;
    fn work(&self) -> &Path;
}

/// Layer directories and views of chains.
pub trait Snapshots: Sync {
    type Scratch: Scratch;
    /// Keeps an overlay mounted; unmounts on drop.
    type Mount: Send;
    /// The directory of a committed layer (ops running on this machine read it).
    fn layer_dir(&self, id: &str) -> PathBuf;
    /// Whether every layer of the chain is present or can be made present ([`Self::materialize`]).
    fn has_layers(&self, chain: &[LayerId]) -> bool;
    fn new_layer(&self) -> Result<Self::Scratch, BackendError>;
    fn commit_layer(&self, layer: Self::Scratch) -> Result<LayerId, BackendError>;
    /// A fresh path for temporary work (nothing is created there); what a killed build
    /// leaves at it is removed the next time the backend is opened.
    fn tmp_path(&self, what: &str) -> PathBuf;
    /// Makes sure every layer of `chain` has its directory (a lazy layer of a pulled image
    /// is downloaded and extracted here); `progress` gets `(blob, done, total)` per download.
    fn materialize(
        &self,
        chain: &[LayerId],
        progress: &(dyn Fn(&Digest, u64, u64) + Sync),
    ) -> Result<(), BackendError> {
        let _ = (chain, progress);
        Ok(())
    }
    /// Mounts an overlay of `lowers` (bottom first) at `target`, read-only without an
    /// upper/work pair.
    fn mount_overlay(
        &self,
        lowers: &[PathBuf],
        upper_work: Option<(&Path, &Path)>,
        target: &Path,
    ) -> Result<Self::Mount, BackendError>;
}

/// Results by cache key: the output chains of a vertex, output 0 first.
pub trait CacheIndex: Sync {
    fn get(&self, key: &CacheKey) -> Result<Option<Vec<Chain>>, BackendError>;
    fn put(&self, key: &CacheKey, chains: &[Chain]) -> Result<(), BackendError>;
}

/// Runs processes.
pub trait Executor: Sync {
    /// Runs `spec`; output (stdout and stderr merged) goes to `output`; the process is
    /// killed when `cancel` becomes true.
    fn run(&self, spec: &ProcessSpec, cancel: &AtomicBool, output: &mut dyn FnMut(&[u8]))
        -> Result<Exit, BackendError>;
}

/// An image resolved to its layers.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub manifest_digest: Digest,
    /// Layer ids, bottom first.
    pub layers: Chain,
}

/// Image references (`docker.io/library/busybox:latest`, `…@sha256:…`,
/// `oci-layout://PATH[:TAG|@sha256:…]`) → layer chains.
pub trait Images: Sync {
    /// `None` when the image is unknown.
    fn image(&self, reference: &str, platform: &cairn_ir::Platform) -> Result<Option<ImageInfo>, BackendError>;
}

/// Everything the solver uses.
pub trait Backend: Snapshots + CacheIndex + Executor + Images {}

impl<T: Snapshots + CacheIndex + Executor + Images> Backend for T {}
