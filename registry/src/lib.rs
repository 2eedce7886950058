//! cairn's client for the OCI distribution API: what `FROM` pulls and `--push` pushes.
//!
//! A [`Client`] is built from a [`RegistryConfig`] (insecure hosts, mirrors, CA
//! directories, docker's config directory) and speaks to any registry named in a
//! [`Reference`]. Pulling is [`Client::resolve`] (reference + platform → manifest digest,
//! config, layer [`Descriptor`]s; no layer bytes) and [`Client::fetch_blob`] (one layer,
//! streamed, verified while it streams, resumed with HTTP `Range` after a dropped
//! connection). Pushing is [`Client::blob_exists`], [`Client::mount_blob`],
//! [`Client::upload_blob`] and [`Client::put_manifest`]. [`Client::login`] and
//! [`Client::logout`] keep `config.json` the way docker does.
//!
//! Authentication follows the registry's `WWW-Authenticate` challenge: Basic credentials,
//! or a bearer token from the challenge's realm for exactly the scopes a request needs,
//! cached per host and scope until it expires or the registry answers 401 again.
//! Credentials come from `config.json` (`auths`, `credsStore`, `credHelpers` through
//! `docker-credential-*` programs).
//!
//! The design choice: a small blocking client over `ureq` rather than an async one.
//! cairn's scheduler runs a thread per ready vertex, so a blocking call that parallel
//! callers make from their own threads fits it, and the crate adds no async runtime to
//! the build.
//!
//! **Architecture Invariant:** this crate depends on no workspace crate but `cairn-ir`, and
//! never logs or prints: credentials appear only in `Authorization` headers and the
//! helper's stdin, never in an error, a `Debug` output or a URL it reports.
//!
//! ```no_run
//! use cairn_registry::{Client, Reference, RegistryConfig};
//! let client = Client::new(RegistryConfig::default());
//! let r = Reference::parse("debian:bookworm")?;
//! let image = client.resolve(&r, None)?;
//! for layer in &image.layers {
//!     let mut file = std::fs::File::create(format!("/tmp/{}", layer.digest.hex()))?;
//!     client.fetch_blob(&r, layer, &mut file, &|done, total| eprintln!("{done}/{total}"))?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod auth;
mod client;
mod config;
mod credentials;
mod error;
pub mod manifest;
mod reference;
mod transport;

pub use auth::Credential;
pub use client::{Client, Manifest, ManifestHead, Resolved};
pub use config::RegistryConfig;
pub use error::RegistryError;
pub use manifest::Descriptor;
pub use reference::{Reference, DOCKER_HUB, DOCKER_HUB_API, DOCKER_HUB_AUTH_KEY};
pub use transport::Stats;
