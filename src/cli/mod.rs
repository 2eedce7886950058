//! Subcommands. Each module owns its clap `Args` struct and a `run` function.

pub mod analyze;
pub mod build;
pub mod compile;
pub mod frontend;
pub mod inspect;
pub mod registry;
pub mod store;
pub mod timeline;

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
    /// Show the history of an image (docker's columns)
    History(inspect::HistoryArgs),
    /// Show images as `docker image inspect` does (JSON, or `--format` a Go template)
    Inspect(inspect::InspectArgs),
    /// Show what each layer of an image adds, modifies and deletes, and the space it wastes
    Analyze(analyze::AnalyzeArgs),
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
    /// Store an image from a registry (manifest and config; layers come when needed)
    Pull(registry::PullArgs),
    /// Push an image of the local store to a registry
    Push(registry::PushArgs),
    /// Give an image of the local store another name
    Tag(registry::TagArgs),
    /// Log in to a registry (credentials stored as docker stores them)
    Login(registry::LoginArgs),
    /// Log out of a registry
    Logout(registry::LogoutArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Compile(a) => compile::run(a),
        Command::Build(a) => build::run(a),
        Command::Images(a) => store::images(a),
        Command::History(a) => inspect::history(a),
        Command::Inspect(a) => inspect::inspect(a),
        Command::Analyze(a) => analyze::run(a),
        Command::Rmi(a) => store::rmi(a),
        Command::Prune(a) => store::prune(a),
        Command::Du(a) => store::du(a),
        Command::Load(a) => store::load(a),
        Command::Save(a) => store::save(a),
        Command::Pull(a) => registry::pull(a),
        Command::Push(a) => registry::push(a),
        Command::Tag(a) => registry::tag(a),
        Command::Login(a) => registry::login(a),
        Command::Logout(a) => registry::logout(a),
    }
}

/// If this process was started as the sandbox helper, runs it and never returns.
pub fn maybe_run_sandbox_helper() {
    cairn_runtime::sandbox::maybe_run_helper();
}
