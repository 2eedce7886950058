//! The cairn compiler: frontends lower their input into a [`graph::Graph`], optimizer
//! [`passes`] rewrite it, and [`graph::Graph::to_definition`] produces the IR
//! [`cairn_ir::Definition`] that any runtime can execute. The Dockerfile frontend is
//! [`dockerfile`]; other frontends produce the same graph.
//!
//! **Architecture Invariant:** the compiler never fetches anything. What it needs to know
//! about base images comes through [`resolver::ImageResolver`].
//!
//! ```
//! use cairn_compiler::{compile_dockerfile, dockerfile::CompileOptions, resolver::NoImages};
//! let text = "FROM scratch\nCOPY a.txt /\n";
//! let c = compile_dockerfile(text, &CompileOptions::new("Dockerfile"), &NoImages).unwrap();
//! let def = cairn_compiler::passes::optimize(&c.graph).to_definition();
//! assert_eq!(def.outputs.len(), 1);
//! ```

pub mod dockerfile;
pub mod error;
pub mod graph;
pub mod lint;
pub mod passes;
pub mod render;
pub mod resolver;

pub use error::CompileError;

/// Parses and lowers a Dockerfile in one step.
pub fn compile_dockerfile(
    text: &str,
    opts: &dockerfile::CompileOptions,
    resolver: &dyn resolver::ImageResolver,
) -> Result<dockerfile::Compiled, CompileError> {
    let df = cairn_grammar::parse(&opts.file, text)?;
    dockerfile::compile(&df, text, opts, resolver)
}
