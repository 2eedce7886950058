//! The cairn runtime: executes an IR [`cairn_ir::Definition`] and exports images.
//!
//! **Architecture Invariant:** the runtime never depends on grammar or compiler; it only
//! sees a Definition.
//!
//! Module map (see ARCHITECTURE.md):
//! - `store`: the on-disk store (blobs, tags, cache index, layer directories), crash-safe.
//! - `layer`: layer directories in overlay format ⇄ OCI layer tars.
//! - `gzip`: parallel, deterministic gzip of layer tars (one member per MiB).
//! - `image`, `oci`: image manifests/configs, OCI layout, docker-archive, rootfs exports,
//!   archive import.
//! - `sandbox`, `mount`: the Linux-namespace sandbox that runs Exec ops over overlayfs.
//! - `solve` and friends: scheduler, cache keys, content hashing, op execution, progress.
//! - `output`: user-named output paths (temp-and-rename for files, write-into for devices).
//! - `verify`: the first difference between two images (`--verify-reproducible`).

pub mod build;
pub mod export;
pub mod gzip;
pub mod image;
pub mod layer;
pub mod mount;
pub(crate) mod oci;
pub mod output;
pub mod sandbox;
pub mod solve;
pub mod store;
pub(crate) mod verify;
