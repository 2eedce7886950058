//! The cairn runtime: executes an IR [`cairn_ir::Definition`] and exports images.
//!
//! **Architecture Invariant:** the runtime never depends on grammar or compiler; it only
//! sees a Definition.
//!
//! [`build::run`] is the facade a frontend calls: it solves a Definition, commits the
//! result as an image, verifies, tags and exports it. The modules below it:
//! - `solve` and friends: scheduler, cache keys, content hashing, op execution, progress.
//! - `store`: the on-disk store (blobs, layer directories, cache index, image records and
//!   tags), crash-safe; `StoreLayout` names every path under its root.
//! - `oci`: the OCI JSON documents (media types, descriptors, manifests, indexes); depends
//!   on nothing else here.
//! - `image`: committing a layer chain as an image; importing archives and OCI layouts.
//! - `cache`: build caches shared through registries and directories (`--cache-to`,
//!   `--cache-from`): the cache artifact, lazy import, export.
//! - `export`: the `Exporter` trait and its OCI layout, docker-archive and rootfs exporters.
//! - `layer`: layer directories in overlay format ⇄ OCI layer tars.
//! - `gzip`: parallel, deterministic gzip of layer tars (one member per MiB); `compress`:
//!   the layer encodings (gzip, zstd, none) behind one writer and one reader.
//! - `sandbox`, `mount`: the Linux-namespace sandbox that runs Exec ops over overlayfs;
//!   `emulation`: the `binfmt_misc` handler (QEMU) a step of another platform needs.
//! - `output`: user-named output paths (temp-and-rename for files, write-into for devices).
//! - `inspect`, `analyze`: reading stored images (history, `docker inspect`'s document;
//!   per-layer changes, wasted bytes and efficiency).
//! - `verify`: the first difference between two images (`--verify-reproducible`).
//!
//! No import loops: `oci` ← `store` ← `layer`/`image` ← `export` ← `build`.

pub mod analyze;
pub mod build;
pub mod build_bake;
mod build_multi;
pub mod cache;
pub mod compress;
pub mod emulation;
pub mod export;
pub mod gzip;
pub mod image;
pub mod inspect;
pub mod layer;
pub mod mount;
pub(crate) mod oci;
pub mod output;
pub mod process;
pub mod registry;
pub mod sandbox;
pub mod solve;
pub mod store;
pub(crate) mod verify;
