//! The real [`Backend`](super::backend::Backend): layers and the cache index in the
//! [`Store`], overlay mounts from [`crate::mount`], processes in the [`crate::sandbox`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::backend::{
    BackendError, CacheIndex, CacheKey, Chain, Executor, Exit, ImageInfo, Images, LayerId, ProcessSpec, Scratch,
    Snapshots,
};
use crate::store::{NewLayer, Store};
use cairn_ir::Digest;

pub struct RuntimeBackend {
    pub store: Arc<Store>,
    empty: PathBuf,
    /// Pulls images the store lacks (`COPY --from=IMAGE`, an IR naming an unknown image).
    registry: Option<Arc<crate::registry::Registry>>,
    /// Imported shared caches (`--cache-from`), asked on a local miss; what the build uses
    /// is noted there for `--cache-to`.
    shared: Option<Arc<crate::cache::SharedCache>>,
    /// Whether this backend recorded results since its last [`Self::flush`]: their layers
    /// came from `volatile` overlays, not yet flushed to disk (see `store/records.rs`).
    unflushed: AtomicBool,
}

impl RuntimeBackend {
    pub fn new(store: Arc<Store>) -> Result<RuntimeBackend, BackendError> {
        let empty = store.layout().solve_empty_dir();
        std::fs::create_dir_all(&empty).map_err(|source| BackendError::Io {
            action: "create",
            path: empty.clone(),
            source,
        })?;
        Ok(RuntimeBackend { store, empty, registry: None, shared: None, unflushed: AtomicBool::new(false) })
    }

    /// Pulls what the store lacks through `registry`, and fetches lazy layers with it.
    pub fn with_registry(mut self, registry: Arc<crate::registry::Registry>) -> RuntimeBackend {
        self.store.set_fetcher(registry.clone());
        self.registry = Some(registry);
        self
    }

    /// Flushes the store's filesystem once when results were recorded since the last
    /// flush, so that their records stay trusted after a power cut. Called after each
    /// solve, before an image or tag names any layer.
    pub fn flush(&self) -> Result<(), BackendError> {
        if self.unflushed.swap(false, Ordering::SeqCst) {
            self.store.sync()?;
        }
        Ok(())
    }

    /// Looks up in `shared` what the store lacks, and notes the results the build uses.
    pub fn with_shared_cache(mut self, shared: Arc<crate::cache::SharedCache>) -> RuntimeBackend {
        self.shared = Some(shared);
        self
    }
}

impl Scratch for NewLayer {
    fn upper(&self) -> &Path {
        &self.upper
    }
    fn work(&self) -> &Path {
        &self.work
    }
}

impl Snapshots for RuntimeBackend {
    type Scratch = NewLayer;
    type Mount = crate::mount::OverlayMount;

    fn layer_dir(&self, id: &str) -> PathBuf {
        self.store.layer_path(id)
    }

    fn has_layers(&self, chain: &[LayerId]) -> bool {
        chain.iter().all(|l| self.store.layer_available(l))
    }

    fn materialize(
        &self,
        chain: &[LayerId],
        progress: &(dyn Fn(&Digest, u64, u64) + Sync),
    ) -> Result<(), BackendError> {
        Ok(crate::image::materialize(&self.store, chain, progress)?)
    }

    fn new_layer(&self) -> Result<NewLayer, BackendError> {
        Ok(self.store.new_layer()?)
    }

    fn commit_layer(&self, layer: NewLayer) -> Result<LayerId, BackendError> {
        Ok(self.store.commit_layer(layer)?)
    }

    fn tmp_path(&self, what: &str) -> PathBuf {
        self.store.tmp_path(what)
    }

    fn mount_overlay(
        &self,
        lowers: &[PathBuf],
        upper_work: Option<(&Path, &Path)>,
        target: &Path,
    ) -> Result<crate::mount::OverlayMount, BackendError> {
        crate::mount::OverlayMount::new(lowers, upper_work, target, &self.empty).map_err(|source| BackendError::Io {
            action: "mount an overlay at",
            path: target.to_path_buf(),
            source,
        })
    }
}

impl CacheIndex for RuntimeBackend {
    fn get(&self, key: &CacheKey) -> Result<Option<Vec<Chain>>, BackendError> {
        let local = self.store.cache_get(&key.hex())?;
        let Some(shared) = &self.shared else { return Ok(local) };
        let usable = |c: &Vec<Chain>| c.iter().all(|c| self.has_layers(c)) && shared.intact(&self.store, c);
        let found = match local.filter(usable) {
            Some(c) => Some(c),
            // A remote hit is recorded in the store's own index (its layers lazy), so the
            // next build finds it without the shared cache.
            None => match shared.lookup(&self.store, key)? {
                Some(c) => {
                    self.store.cache_put(&key.hex(), &c)?;
                    Some(c)
                }
                None => None,
            },
        };
        if let Some(c) = &found {
            shared.note(key, c);
        }
        Ok(found)
    }

    fn put(&self, key: &CacheKey, chains: &[Chain]) -> Result<(), BackendError> {
        if let Some(shared) = &self.shared {
            shared.note(key, chains);
        }
        self.unflushed.store(true, Ordering::SeqCst);
        Ok(self.store.cache_put(&key.hex(), chains)?)
    }
}

impl Images for RuntimeBackend {
    fn image(&self, reference: &str, platform: &cairn_ir::Platform) -> Result<Option<ImageInfo>, BackendError> {
        let mut rec = crate::image::resolve_image_for(&self.store, reference, Some(platform))?;
        if rec.is_none() && crate::registry::is_registry_reference(reference) {
            if let Some(r) = &self.registry {
                let pulled = r.pull(&self.store, reference, platform).map_err(|e| BackendError::Pull(e.to_string()))?;
                rec = Some(pulled.record);
            }
        }
        Ok(rec.map(|r| ImageInfo { manifest_digest: r.manifest_digest, layers: r.layers }))
    }
}

impl Executor for RuntimeBackend {
    fn run(
        &self,
        spec: &ProcessSpec,
        cancel: &AtomicBool,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<Exit, BackendError> {
        let scratch = self.store.tmp_path("sandbox");
        std::fs::create_dir_all(&scratch).map_err(|source| BackendError::Io {
            action: "create",
            path: scratch.clone(),
            source,
        })?;
        let r = crate::sandbox::run(spec, &scratch, cancel, output).map_err(|e| BackendError::Process(e.to_string()));
        crate::store::remove_tree(&scratch);
        r
    }
}

impl Drop for RuntimeBackend {
    /// A caller that did not flush (a test, an error path) still has its layers flushed.
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
