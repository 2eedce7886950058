//! The real [`Backend`]: layers and the cache index in the [`Store`], overlay mounts from
//! [`crate::mount`], processes in the [`crate::sandbox`].

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::backend::{Backend, Exit, ImageInfo, ProcessSpec, ScratchLayer};
use crate::store::{NewLayer, Store};

pub struct RuntimeBackend {
    pub store: Arc<Store>,
    empty: PathBuf,
}

impl RuntimeBackend {
    pub fn new(store: Arc<Store>) -> Result<RuntimeBackend, String> {
        let empty = store.root().join("solve/empty");
        std::fs::create_dir_all(&empty).map_err(|e| format!("Cannot create `{}`: {e}", empty.display()))?;
        Ok(RuntimeBackend { store, empty })
    }
}

impl Backend for RuntimeBackend {
    fn layer_path(&self, id: &str) -> PathBuf {
        self.store.layer_path(id)
    }

    fn new_layer(&self) -> Result<ScratchLayer, String> {
        let l = self.store.new_layer().map_err(|e| e.to_string())?;
        Ok(ScratchLayer { upper: l.upper.clone(), work: l.work.clone(), token: Box::new(l) })
    }

    fn tmp_path(&self, what: &str) -> PathBuf {
        self.store.tmp_path(what)
    }

    fn commit_layer(&self, layer: ScratchLayer) -> Result<String, String> {
        let l = layer.token.downcast::<NewLayer>().map_err(|_| "a scratch layer from another backend".to_string())?;
        self.store.commit_layer(*l).map_err(|e| e.to_string())
    }

    fn cache_get(&self, key: &str) -> Result<Option<Vec<Vec<String>>>, String> {
        self.store.cache_get(key).map_err(|e| e.to_string())
    }

    fn cache_put(&self, key: &str, chains: &[Vec<String>]) -> Result<(), String> {
        self.store.cache_put(key, chains).map_err(|e| e.to_string())
    }

    fn image(&self, reference: &str) -> Result<Option<ImageInfo>, String> {
        let rec = crate::image::resolve_image(&self.store, reference).map_err(|e| e.to_string())?;
        Ok(rec.map(|r| ImageInfo { manifest_digest: r.manifest_digest, layers: r.layers }))
    }

    fn mount_overlay(
        &self,
        lowers: &[PathBuf],
        upper_work: Option<(&Path, &Path)>,
        target: &Path,
    ) -> Result<Box<dyn Any + Send>, String> {
        let m = crate::mount::OverlayMount::new(lowers, upper_work, target, &self.empty).map_err(|e| e.to_string())?;
        Ok(Box::new(m))
    }

    fn run_process(
        &self,
        spec: &ProcessSpec,
        cancel: &AtomicBool,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<Exit, String> {
        let scratch = self.store.tmp_path("sandbox");
        std::fs::create_dir_all(&scratch).map_err(|e| format!("Cannot create `{}`: {e}", scratch.display()))?;
        let r = crate::sandbox::run(spec, &scratch, cancel, output).map_err(|e| e.to_string());
        crate::store::remove_tree(&scratch);
        r
    }
}
