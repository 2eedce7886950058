//! Every path name under the store root, in one place.
//!
//! ```text
//! <root>/blobs/sha256/<hex>     OCI blobs (layer tar.gz, configs, manifests), by sha256
//! <root>/layers/<id>/           a layer directory in overlayfs upper-dir format
//! <root>/layermeta/<id>.json    what is known about a layer's tar: diff_id, blob, sizes
//! <root>/diffids/<hex>          diff_id → layer id, so an imported base layer is shared
//! <root>/cache/<key>            cache record: the layer chains of one vertex's outputs
//! <root>/images/<hex>.json      image record by manifest digest (config, layer ids, size)
//! <root>/tags.json              image name (normalized reference) → manifest digest
//! <root>/http/<blake3>.json     last download of a URL: ETag, Last-Modified, layer
//! <root>/remote/<hex>.json      where a blob not downloaded yet can be fetched (pulls)
//! <root>/cachemounts/<name>/    `RUN --mount=type=cache` directories
//! <root>/builds/<time>-<id>.json  step records of the last builds (`cairn explain`)
//! <root>/builds/salt          key of the hash that hides secret-looking values there
//! <root>/statcache              the content hasher's stat cache
//! <root>/solve/empty, solve/mnt an empty directory and mount points for the solver
//! <root>/tmp/<pid>-<n>-<what>   work in progress of the process `pid`
//! <root>/lock, <root>/gc.lock   flock files (metadata updates; prune against users)
//! <root>/builder-id             this store's id in shared caches (`cache/`, SPEC §10)
//! <root>/cache-export.lock      flock around writing this store's shared-cache index
//! ```
//!
//! **Architecture Invariant:** only the store knows store paths. Every other module asks
//! [`StoreLayout`] (through [`super::Store::layout`]); `runtime/tests/store_paths.rs`
//! checks that no other module spells these names.

use std::path::{Path, PathBuf};

use cairn_ir::Digest;

/// The names of everything under one store root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLayout {
    root: PathBuf,
}

impl StoreLayout {
    pub fn new(root: &Path) -> StoreLayout {
        StoreLayout { root: root.to_path_buf() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directories [`super::Store::open`] creates.
    pub(crate) fn created_at_open(&self) -> [PathBuf; 7] {
        [
            self.blobs_dir(),
            self.layers_dir(),
            self.layer_meta_dir(),
            self.diff_ids_dir(),
            self.cache_dir(),
            self.images_dir(),
            self.tmp_dir(),
        ]
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    pub(crate) fn blob(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    pub(crate) fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    pub(crate) fn layer(&self, id: &str) -> PathBuf {
        self.layers_dir().join(id)
    }

    pub(crate) fn layer_meta_dir(&self) -> PathBuf {
        self.root.join("layermeta")
    }

    pub(crate) fn layer_meta(&self, id: &str) -> PathBuf {
        self.layer_meta_dir().join(format!("{id}.json"))
    }

    pub(crate) fn diff_ids_dir(&self) -> PathBuf {
        self.root.join("diffids")
    }

    pub(crate) fn diff_id(&self, diff_id: &Digest) -> PathBuf {
        self.diff_ids_dir().join(diff_id.hex())
    }

    pub(crate) fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// When the last flush of boot `boot` started (see `records.rs`).
    pub(crate) fn sync_marker(&self, boot: &str) -> PathBuf {
        self.root.join("sync").join(boot)
    }

    /// The cache record of `key` (the caller validates the name).
    pub(crate) fn cache_record(&self, key: &str) -> PathBuf {
        self.cache_dir().join(key)
    }

    pub(crate) fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    pub(crate) fn image_record(&self, manifest: &Digest) -> PathBuf {
        self.images_dir().join(format!("{}.json", manifest.hex()))
    }

    pub(crate) fn tags_path(&self) -> PathBuf {
        self.root.join("tags.json")
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(crate) fn lock_path(&self) -> PathBuf {
        self.root.join("lock")
    }

    pub(crate) fn gc_lock_path(&self) -> PathBuf {
        self.root.join("gc.lock")
    }

    /// This store's builder id in shared caches.
    pub(crate) fn builder_id_path(&self) -> PathBuf {
        self.root.join("builder-id")
    }

    /// Held while this store writes its index of a shared cache.
    pub(crate) fn cache_export_lock_path(&self) -> PathBuf {
        self.root.join("cache-export.lock")
    }

    /// `RUN --mount=type=cache` directories, one per cache id.
    pub fn cache_mounts_dir(&self) -> PathBuf {
        self.root.join("cachemounts")
    }

    /// Where blobs of pulled images that are not downloaded yet can be fetched.
    pub(crate) fn remote_blob(&self, digest: &Digest) -> PathBuf {
        self.root.join("remote").join(format!("{}.json", digest.hex()))
    }

    /// Download records of `ADD https://…` (ETag, Last-Modified, layer), one per URL.
    pub fn http_records_dir(&self) -> PathBuf {
        self.root.join("http")
    }

    /// Step records of recent builds, one file per build.
    pub(crate) fn builds_dir(&self) -> PathBuf {
        self.root.join("builds")
    }

    /// The key of the keyed hash of secret-looking values in build records.
    pub(crate) fn builds_salt(&self) -> PathBuf {
        self.root.join("builds/salt")
    }

    /// The content hasher's stat cache file.
    pub fn stat_cache_path(&self) -> PathBuf {
        self.root.join("statcache")
    }

    /// An empty directory the solver mounts where nothing should be visible.
    pub fn solve_empty_dir(&self) -> PathBuf {
        self.root.join("solve/empty")
    }

    /// Where the solver makes its mount points.
    pub fn solve_mnt_dir(&self) -> PathBuf {
        self.root.join("solve/mnt")
    }
}

#[cfg(test)]
mod tests {
    use super::StoreLayout;
    use std::path::Path;

    #[test]
    fn names_match_the_on_disk_format() {
        let l = StoreLayout::new(Path::new("/s"));
        let d = cairn_ir::Digest::of(b"x");
        assert_eq!(l.blob(&d), Path::new("/s/blobs/sha256").join(d.hex()));
        assert_eq!(l.layer("abc"), Path::new("/s/layers/abc"));
        assert_eq!(l.layer_meta("abc"), Path::new("/s/layermeta/abc.json"));
        assert_eq!(l.diff_id(&d), Path::new("/s/diffids").join(d.hex()));
        assert_eq!(l.cache_record("k"), Path::new("/s/cache/k"));
        assert_eq!(l.image_record(&d), Path::new("/s/images").join(format!("{}.json", d.hex())));
        assert_eq!(l.tags_path(), Path::new("/s/tags.json"));
        assert_eq!(l.tmp_dir(), Path::new("/s/tmp"));
        assert_eq!((l.lock_path(), l.gc_lock_path()), (Path::new("/s/lock").into(), Path::new("/s/gc.lock").into()));
        assert_eq!(l.cache_mounts_dir(), Path::new("/s/cachemounts"));
        assert_eq!(l.http_records_dir(), Path::new("/s/http"));
        assert_eq!(l.stat_cache_path(), Path::new("/s/statcache"));
        assert_eq!(
            (l.builds_dir(), l.builds_salt()),
            (Path::new("/s/builds").into(), Path::new("/s/builds/salt").into())
        );
        assert_eq!(l.solve_empty_dir(), Path::new("/s/solve/empty"));
        assert_eq!(l.solve_mnt_dir(), Path::new("/s/solve/mnt"));
    }
}
