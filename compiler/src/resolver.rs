//! Base image configs: a stage's environment, working directory, user, shell, history and
//! layers start from its base image's config. The compiler never fetches anything; the
//! caller passes a resolver (the CLI: one backed by the local store).

use cairn_ir::{ImageConfig, Platform};

/// Why a resolver could not read an image it has: whatever error the resolver's storage
/// gives, shown after ``Cannot read the config of `REF`: ``.
pub type ResolveError = Box<dyn std::error::Error + Send + Sync>;

pub trait ImageResolver {
    /// The config of `reference` (normalized, e.g. `docker.io/library/busybox:latest`, or
    /// `oci-layout://…`) for `platform`. `Ok(None)`: unknown here; the compiler warns once
    /// and treats the config as empty. `Err`: the image exists but cannot be read.
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<Option<ImageConfig>, ResolveError>;

    /// `reference` pinned to the manifest digest it resolved to (`name:tag@sha256:…`), for
    /// the IR, after [`Self::resolve`] found it; `None` keeps the reference as written.
    fn pinned(&self, reference: &str, platform: &Platform) -> Option<String> {
        let _ = (reference, platform);
        None
    }

    /// The manifest digest (`sha256:…`) `reference` resolves to, when the resolver knows
    /// it (for frontends that ask for an image's config, SPEC.md §11).
    fn digest(&self, reference: &str, platform: &Platform) -> Option<String> {
        let _ = (reference, platform);
        None
    }
}

/// Knows no image: every base config is empty (with a warning).
pub struct NoImages;

impl ImageResolver for NoImages {
    fn resolve(&self, _reference: &str, _platform: &Platform) -> Result<Option<ImageConfig>, ResolveError> {
        Ok(None)
    }
}

/// A fixed table of configs, for tests and for frontends that pre-resolve.
#[derive(Default)]
pub struct StaticImages(pub Vec<(String, ImageConfig)>);

impl ImageResolver for StaticImages {
    fn resolve(&self, reference: &str, _platform: &Platform) -> Result<Option<ImageConfig>, ResolveError> {
        Ok(self.0.iter().find(|(r, _)| r == reference).map(|(_, c)| c.clone()))
    }
}
