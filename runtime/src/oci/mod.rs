//! OCI data: media types, annotations, descriptors, manifests, indexes and the
//! docker-archive `manifest.json`. Plain serde types that the store, the image code and
//! the exporters share.
//!
//! **Architecture Invariant:** `oci` depends on nothing else in the runtime (only on
//! `cairn_ir` for `Digest`), so every other module may use it without an import loop.

mod media;
mod types;

pub use media::*;
pub use types::{Descriptor, DescriptorPlatform, DockerArchiveEntry, Index, Manifest};
