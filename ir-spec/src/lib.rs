//! cairn's intermediate representation: the contract between frontends and runtimes.
//!
//! A [`Definition`] is a Merkle DAG of [`Vertex`]es in the style of BuildKit's LLB. Each
//! vertex holds one [`Op`] (source, exec, file, merge, diff) and the [`Input`]s it reads,
//! named by the *digests* of other vertices. A vertex digest is sha256 over the canonical
//! MessagePack encoding of the vertex (see [`encode`]), so equal subgraphs have equal
//! digests no matter which frontend or which source line produced them. Everything that
//! describes where a vertex came from lives in [`VertexMeta`], outside the digest.
//!
//! The digest names *what to do*; it is not a cache key. A runtime derives cache keys from
//! digests plus content hashes of the files a vertex reads (SPEC.md, "Cache keys").
//!
//! **Architecture Invariant:** this crate has no workspace dependencies. `SPEC.md` beside
//! this crate is normative; the types here follow it field by field.
//!
//! ```
//! use cairn_ir::{encode, Op, SourceOp, Vertex};
//! let v = Vertex { inputs: vec![], op: Op::Source(SourceOp::Scratch) };
//! let d = encode::vertex_digest(&v);
//! assert_eq!(d, encode::vertex_digest(&v.clone()));
//! assert!(d.to_string().starts_with("sha256:"));
//! ```

pub mod chmod;
pub mod config;
pub mod definition;
pub mod digest;
pub mod encode;
pub mod env;
pub mod json;
pub mod op;
pub mod reference;

pub use config::*;
pub use definition::*;
pub use digest::{Digest, ParseDigestError};
pub use encode::{decode_definition, encode_definition, validate, vertex_digest, vertex_digest_of, LoadError};
pub use env::{env_key, Env, EnvEntry};
pub use json::{decode_definition_auto, decode_definition_json, encode_definition_json};
pub use op::*;
pub mod protocol;

/// The IR format version this crate writes. See SPEC.md, "Compatibility".
pub const FORMAT_VERSION: u32 = 4;

/// The oldest version this crate reads: versions 2 to 4 only added fields and forms that
/// older files never use, so they read unchanged.
pub const OLDEST_FORMAT_VERSION: u32 = 1;
