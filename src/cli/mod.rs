//! Subcommands. Each module owns its clap `Args` struct and a `run` function.

pub mod build;
pub mod check;
pub mod compile;
pub mod frontend;
pub mod store;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "cairn", version, about = "A daemonless Dockerfile build-graph compiler and runtime")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Compile a Dockerfile to cairn's IR (or show its AST) without building
    Compile(compile::CompileArgs),
    /// Build an image from a Dockerfile or a compiled IR file
    Build(build::BuildArgs),
    /// List images in the local store
    Images(store::ImagesArgs),
    /// Remove images from the local store
    Rmi(store::RmiArgs),
    /// Remove unreferenced cache entries, snapshots and blobs
    Prune(store::PruneArgs),
    /// Show disk usage of the local store
    Du(store::DuArgs),
    /// Import a docker-archive or OCI-archive tarball into the local store
    Load(store::LoadArgs),
    /// Write images of the local store to a docker-archive tarball
    Save(store::SaveArgs),
    /// Verify every blob and layer of the local store against its digest
    Check(check::CheckArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Compile(a) => compile::run(a),
        Command::Build(a) => build::run(a),
        Command::Images(a) => store::images(a),
        Command::Rmi(a) => store::rmi(a),
        Command::Prune(a) => store::prune(a),
        Command::Du(a) => store::du(a),
        Command::Load(a) => store::load(a),
        Command::Save(a) => store::save(a),
        Command::Check(a) => check::run(a),
    }
}

/// If this process was started as the sandbox helper, runs it and never returns.
pub fn maybe_run_sandbox_helper() {
    cairn_runtime::sandbox::maybe_run_helper();
}
