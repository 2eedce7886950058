//! Registries seen from the store: pulling an image (lazily) and pushing one, over
//! `cairn_registry`'s client.
//!
//! **Pull** ([`Registry::pull`]) resolves a reference for a platform to its manifest,
//! stores the manifest and the config, and gives each layer a lazy layer id
//! (`store/remote.rs`): no layer bytes move until a step needs them, so a build whose steps
//! are all cached downloads no layer. The record is tagged with the reference, so later
//! builds find it offline. [`Registry`] is the store's [`BlobFetcher`], which is how the
//! bytes come later.
//!
//! **Push** ([`Registry::push`]) uploads what the registry lacks: a `HEAD` per blob first,
//! a cross-repository mount when the blob came from another repository of the same
//! registry, an upload otherwise (a lazy blob from elsewhere is downloaded first), then
//! the config and the manifest, unchanged, so the pushed digest is the local one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use cairn_ir::{Digest, Platform};
use cairn_registry::{Client, Descriptor, Reference, RegistryConfig, RegistryError};

pub use cairn_registry::DOCKER_HUB;

use crate::oci::{Manifest, MEDIA_OCI_MANIFEST};
use crate::store::{diff_ids_of, BlobFetcher, ImageRecord, LayerBlob, RemoteBlob, Store, StoreError};

/// Why a pull or push failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RegistryOpError {
    Registry(RegistryError),
    Store(StoreError),
}

impl std::fmt::Display for RegistryOpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryOpError::Registry(e) => write!(f, "{e}"),
            RegistryOpError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RegistryOpError {}

impl From<RegistryError> for RegistryOpError {
    fn from(e: RegistryError) -> Self {
        RegistryOpError::Registry(e)
    }
}

impl From<StoreError> for RegistryOpError {
    fn from(e: StoreError) -> Self {
        RegistryOpError::Store(e)
    }
}

/// A pulled image: its record and the reference pinned to its manifest digest.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub record: ImageRecord,
    /// `registry/name[:tag]@sha256:…` of the platform's manifest.
    pub pinned: String,
}

/// The registry client as the store and the build use it.
pub struct Registry {
    client: Client,
}

/// Where the registry configuration file is looked for, first found wins:
/// `$CAIRN_REGISTRIES_CONFIG`, `$XDG_CONFIG_HOME/cairn/registries.json` (or
/// `~/.config/…`), `/etc/cairn/registries.json`.
pub fn config_paths() -> Vec<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let mut out = Vec::new();
    if let Some(p) = env("CAIRN_REGISTRIES_CONFIG") {
        out.push(p);
    }
    match (env("XDG_CONFIG_HOME"), env("HOME")) {
        (Some(x), _) => out.push(x.join("cairn/registries.json")),
        (None, Some(h)) => out.push(h.join(".config/cairn/registries.json")),
        _ => {}
    }
    out.push(PathBuf::from("/etc/cairn/registries.json"));
    out
}

impl Registry {
    /// A client configured from docker's config directory, the first registries file of
    /// [`config_paths`], and `insecure` hosts given by the caller (`--insecure-registry`).
    pub fn from_env(insecure: &[String]) -> Result<Registry, RegistryError> {
        let mut config = RegistryConfig::default();
        if let Some(p) = config_paths().into_iter().find(|p| p.is_file()) {
            config.load_file(&p)?;
        }
        config.insecure.extend(insecure.iter().cloned());
        Ok(Registry { client: Client::new(config) })
    }

    pub fn new(config: RegistryConfig) -> Registry {
        Registry { client: Client::new(config) }
    }

    /// The underlying client (login, logout, statistics).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Pulls `reference` for `platform` into `store` (manifest, config, lazy layers) and
    /// tags it with `reference` when that has a tag.
    pub fn pull(&self, store: &Store, reference: &str, platform: &Platform) -> Result<Pulled, RegistryOpError> {
        let r = Reference::parse(reference)?;
        let resolved = self.client.resolve(&r, Some(platform))?;
        let config_path = store.blob_path(&resolved.config_digest);
        if Digest::of(&resolved.config) != resolved.config_digest {
            return Err(StoreError::Corrupt {
                path: config_path,
                message: format!("`{r}` sent a config whose digest is not `{}`", resolved.config_digest),
            }
            .into());
        }
        let diff_ids = diff_ids_of(&resolved.config, &config_path)?;
        if diff_ids.len() != resolved.layers.len() {
            return Err(StoreError::Corrupt {
                path: config_path,
                message: format!("the config lists {} diff_ids for {} layers", diff_ids.len(), resolved.layers.len()),
            }
            .into());
        }
        store.put_blob(&resolved.config)?;
        let repo = r.name();
        let mut layers = Vec::new();
        for (desc, diff_id) in resolved.layers.iter().zip(&diff_ids) {
            store.record_remote_blob(&desc.digest, &repo, desc.size, &desc.media_type)?;
            let lb = LayerBlob {
                diff_id: *diff_id,
                diff_size: 0,
                blob: desc.digest,
                blob_size: desc.size,
                media_type: desc.media_type.clone(),
            };
            layers.push(store.lazy_layer(&lb)?);
        }
        let manifest_digest = store.put_blob(&resolved.manifest)?;
        if manifest_digest != resolved.manifest_digest {
            return Err(StoreError::Corrupt {
                path: store.blob_path(&manifest_digest),
                message: format!("`{r}` sent a manifest whose digest is not `{}`", resolved.manifest_digest),
            }
            .into());
        }
        let record = ImageRecord {
            manifest_digest,
            config_digest: resolved.config_digest,
            layers,
            size: resolved.layers.iter().map(|d| d.size).sum(),
        };
        store.put_record(&record)?;
        let mut name = repo.clone();
        if let Some(tag) = &r.tag {
            name = store.tag_image(&format!("{repo}:{tag}"), &record)?;
        }
        Ok(Pulled { record, pinned: format!("{name}@{manifest_digest}") })
    }

    /// Pushes the image `rec` of `store` as `dest` (`name[:tag]`); returns the manifest
    /// digest. `notice` receives one line per blob (what was done with it).
    pub fn push(
        &self,
        store: &Store,
        rec: &ImageRecord,
        dest: &str,
        notice: &dyn Fn(&str),
    ) -> Result<Digest, RegistryOpError> {
        let r = push_reference(dest)?;
        self.push_image(store, rec, &r, notice)
    }

    /// Pushes a multi-platform image: each platform's image (blobs, then its manifest by
    /// digest), then the index `index` (a store blob) under `dest`'s tag.
    pub fn push_index(
        &self,
        store: &Store,
        images: &[crate::store::PlatformImage],
        index: &Digest,
        dest: &str,
        notice: &dyn Fn(&str),
    ) -> Result<Digest, RegistryOpError> {
        let r = push_reference(dest)?;
        for pi in images {
            let by_digest = Reference { tag: None, digest: Some(pi.image.manifest_digest), ..r.clone() };
            self.push_image(store, &pi.image, &by_digest, notice)?;
        }
        let bytes = store.read_blob(index)?;
        let pushed = self.client.put_manifest(&r, crate::oci::MEDIA_OCI_INDEX, &bytes)?;
        if pushed != *index {
            return Err(RegistryError::Invalid(format!(
                "`{}` stored the index as `{pushed}`, not `{index}`",
                r.registry
            ))
            .into());
        }
        Ok(pushed)
    }

    /// One image's blobs and manifest, the manifest under `r`'s tag or digest.
    fn push_image(
        &self,
        store: &Store,
        rec: &ImageRecord,
        r: &Reference,
        notice: &dyn Fn(&str),
    ) -> Result<Digest, RegistryOpError> {
        let r = r.clone();
        for lb in store.image_layer_blobs(rec)? {
            self.push_blob(store, &r, &lb.blob, lb.blob_size, notice)?;
        }
        let config = store.read_blob(&rec.config_digest)?;
        self.push_blob(store, &r, &rec.config_digest, config.len() as u64, notice)?;
        let manifest = store.read_blob(&rec.manifest_digest)?;
        let media = serde_json::from_slice::<Manifest>(&manifest)
            .ok()
            .and_then(|m| m.media_type)
            .unwrap_or_else(|| MEDIA_OCI_MANIFEST.to_string());
        let pushed = self.client.put_manifest(&r, &media, &manifest)?;
        if pushed != rec.manifest_digest {
            return Err(RegistryError::Invalid(format!(
                "`{}` stored the manifest as `{pushed}`, not `{}`",
                r.registry, rec.manifest_digest
            ))
            .into());
        }
        Ok(pushed)
    }

    /// One blob: already there, mounted from another repository, or uploaded. A registry's
    /// server error is tried again a few times (distribution answers 500 to some requests
    /// about a blob another client is uploading at the same moment).
    pub(crate) fn push_blob(
        &self,
        store: &Store,
        r: &Reference,
        blob: &Digest,
        size: u64,
        notice: &dyn Fn(&str),
    ) -> Result<(), RegistryOpError> {
        let mut attempt = 0;
        loop {
            match self.push_blob_once(store, r, blob, size, notice) {
                Err(RegistryOpError::Registry(RegistryError::Http { status, .. }))
                    if status >= 500 && attempt < UPLOAD_RETRIES =>
                {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(200 * attempt));
                }
                other => return other,
            }
        }
    }

    fn push_blob_once(
        &self,
        store: &Store,
        r: &Reference,
        blob: &Digest,
        size: u64,
        notice: &dyn Fn(&str),
    ) -> Result<(), RegistryOpError> {
        let short = &blob.hex()[..12];
        // Remembered, so a later push to another repository of the registry mounts it.
        let remember = || store.record_remote_blob(blob, &r.name(), size, "");
        if self.client.blob_exists(r, blob)? {
            notice(&format!("{short}: already in {}", r.name()));
            return Ok(remember()?);
        }
        let same_registry = store
            .remote_blob(blob)
            .map(|rb| rb.repositories)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|repo| Reference::parse(&repo).ok())
            .filter(|from| from.registry == r.registry && from.repository != r.repository);
        for from in same_registry {
            if self.client.mount_blob(r, blob, &from)? {
                notice(&format!("{short}: mounted from {}", from.name()));
                return Ok(remember()?);
            }
        }
        let path = store.ensure_blob(blob, &|_, _, _| {})?;
        let mut f = File::open(&path).map_err(|e| StoreError::Io { action: "open", path: path.clone(), source: e })?;
        self.client.upload_blob(r, blob, size, &mut f)?;
        notice(&format!("{short}: uploaded ({size} bytes)"));
        Ok(remember()?)
    }
}

impl BlobFetcher for Registry {
    fn fetch(
        &self,
        repository: &str,
        blob: &Digest,
        remote: &RemoteBlob,
        out: &mut dyn Write,
        progress: &dyn Fn(u64, u64),
    ) -> Result<(), String> {
        let r = Reference::parse(repository).map_err(|e| e.to_string())?;
        let desc = Descriptor::new(&remote.media_type, *blob, remote.size);
        self.client.fetch_blob(&r, &desc, out, progress).map_err(|e| e.to_string())
    }
}

/// How often an upload the registry failed with a server error is tried again.
const UPLOAD_RETRIES: u64 = 3;

/// The reference a push writes to: a tag, never a digest.
fn push_reference(dest: &str) -> Result<Reference, RegistryOpError> {
    let r = Reference::parse(dest)?;
    if r.digest.is_some() {
        return Err(RegistryError::Invalid(format!("Cannot push to `{dest}`: a push names a tag, not a digest")).into());
    }
    Ok(r)
}

/// Whether `reference` names a registry image (not an `oci-layout://` or a bare digest).
pub fn is_registry_reference(reference: &str) -> bool {
    !reference.starts_with("oci-layout://")
        && reference.parse::<Digest>().is_err()
        && !Path::new(reference).is_absolute()
}
