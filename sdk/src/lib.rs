//! Build cairn IR [`Definition`](cairn_ir::Definition)s from Rust, in the spirit of
//! BuildKit's `client/llb`.
//!
//! A [`State`] is an output of a vertex (or the empty tree) together with the values the
//! next steps run with: environment, working directory, user, platform, network and
//! security. Sources make states ([`State::image`], [`State::local`], [`State::git`],
//! [`State::http`], [`State::scratch`]); operations on a state make new ones:
//! [`State::run`] (an [`Exec`] with [`Mount`]s: bind, cache, tmpfs, secret, ssh),
//! [`State::file`] (chained [`FileOps`]: copy, mkdir, mkfile, rm, symlink, with the
//! shortcuts [`State::copy`], [`State::mkdir`], [`State::mkfile`], [`State::rm`]),
//! [`merge`] and [`diff`]. [`State::definition`] — or a [`Build`] for several outputs — gives
//! the Definition that `cairn build --ir FILE` runs once encoded with
//! [`cairn_ir::encode_definition`].
//!
//! The key decisions:
//! - **States are values.** Vertices are shared immutable nodes, so a state can be cloned,
//!   kept, mounted into another step or merged without a builder object passed around.
//!   Equal vertices made twice are two nodes until [`Build::definition`] merges them by
//!   digest: a program never has to remember what it already made.
//! - **The Definition is a function of the states.** Vertices are listed depth-first from
//!   the outputs, so two programs making the same graph in a different order write the
//!   same bytes.
//! - **Mistakes are errors, not panics.** A bad image reference, a mount over `/`, two
//!   mounts at one path or an exec without arguments is an [`Error`] with an
//!   [`ErrorKind`], returned by the call that finishes the vertex.
//! - **The Dockerfile frontend is built on it.** cairn's compiler lowers every Dockerfile
//!   through these states and takes the raw [`Graph`] ([`Build::graph`]: every node in the
//!   order it was made) into its optimizer, so this crate is exercised by every build.
//!
//! ```
//! use cairn_sdk::{merge, Mount, State};
//!
//! # fn main() -> Result<(), cairn_sdk::Error> {
//! let base = State::image("busybox")?.env("GREETING", "hello")?.dir("/work");
//! let src = State::scratch().mkfile("/greet.sh", "echo \"$GREETING\" > /out/greeting\n")?;
//! let built = base
//!     .run(["/bin/sh", "/src/greet.sh"])
//!     .mount("/src", Mount::bind(&src))
//!     .mount("/root/.cache", Mount::cache("greet"))
//!     .mount("/out", Mount::bind(&State::scratch()).readonly(false).output())
//!     .describe("greet")
//!     .finish()?;
//! let out = built.mount("/out").unwrap();
//! let image = merge(&[base.mkdir("app")?, out.clone()])?;
//! let def = image.definition()?;
//! cairn_ir::validate(&def).unwrap();
//! // busybox, the script file, the exec, `mkdir /work/app` and the merge.
//! assert_eq!(def.vertices.len(), 5);
//! assert_eq!(def.outputs[0].config.config.working_dir.as_deref(), Some("/work"));
//! // The same states give the same bytes.
//! assert_eq!(cairn_ir::encode_definition(&def), cairn_ir::encode_definition(&image.definition()?));
//! # Ok(())
//! # }
//! ```
//!
//! Errors come back from the call that finishes a vertex:
//!
//! ```
//! use cairn_sdk::{ErrorKind, Mount, State};
//! let e = State::scratch().run(["true"]).mount("/", Mount::tmpfs(0)).root().unwrap_err();
//! assert_eq!(e.kind, ErrorKind::Mount);
//! assert_eq!(e.to_string(), "A mount cannot target `/`: the root is the state itself");
//! assert_eq!(State::image("Busybox").unwrap_err().kind, ErrorKind::Reference);
//! ```
//!
//! **Architecture Invariant:** this crate depends on no workspace crate but ir-spec.

mod build;
mod env;
mod error;
mod exec;
mod file;
pub mod graph;
mod node;
mod state;
#[cfg(test)]
mod tests;

/// `docs/sdk.md`, whose example runs as a doc test here so the page stays true.
#[cfg(doctest)]
#[doc = include_str!("../../docs/sdk.md")]
pub struct DocsSdkMd;

pub use build::Build;
pub use env::{Env, DEFAULT_PATH};
pub use error::{Error, ErrorKind};
pub use exec::{Exec, ExecOutputs, Mount};
pub use file::{CopyOpts, FileOps, MkdirOpts, MkfileOpts, RmOpts};
pub use graph::Graph;
pub use state::{diff, diff_with, merge, merge_with, GitOpts, HttpOpts, ImageOpts, LocalOpts, State};

/// The IR types the builder's options use.
pub use cairn_ir::{CacheSharing, IdOrName, MountKind, NetworkMode, Owner, Platform, SecurityMode, VertexMeta};
