//! Subcommands. Each module owns its clap `Args` struct and a `run` function.

pub mod analyze;
pub mod bake;
pub mod build;
pub mod cache;
pub mod call;
pub mod check;
pub mod compile;
pub mod explain;
pub mod frontend;
pub mod frontend_proto;
pub mod image_opts;
pub mod inspect;
pub mod outputs;
pub mod plan;
pub mod registry;
pub mod resources;
pub mod secrets;
pub mod ssh;
pub mod store;
pub mod timeline;

use clap::{Parser, Subcommand};

/// Where images and the cache live, for every `--help`.
pub const STORE_HELP: &str = "The store (images, layers, the cache) is at $CAIRN_ROOT; without it, /var/lib/cairn for \
root, else $XDG_DATA_HOME/cairn or ~/.local/share/cairn.";

/// The exit code of a usage error (an unknown flag, a bad value), as docker and buildx.
pub const USAGE_EXIT: i32 = 125;

#[derive(Parser, Debug)]
#[command(
    name = "cairn",
    version,
    about = "A daemonless Dockerfile build-graph compiler and runtime",
    after_help = STORE_HELP,
    subcommand_help_heading = "Commands"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Compile a Dockerfile to cairn's IR (or show its AST) without building
    #[command(after_help = STORE_HELP)]
    Compile(compile::CompileArgs),
    /// Build an image from a Dockerfile or a compiled IR file
    #[command(after_help = STORE_HELP)]
    Build(Box<build::BuildArgs>),
    /// Build the targets of a bake file (docker-bake.hcl, .json) in one solve
    #[command(after_help = STORE_HELP)]
    Bake(bake::BakeArgs),
    /// List images in the local store
    #[command(after_help = STORE_HELP)]
    Images(store::ImagesArgs),
    /// Show the history of an image (docker's columns)
    History(inspect::HistoryArgs),
    /// Show images as `docker image inspect` does (JSON, or `--format` a Go template)
    Inspect(inspect::InspectArgs),
    /// Show what each layer of an image adds, modifies and deletes, and the space it wastes
    Analyze(analyze::AnalyzeArgs),
    /// Show a build's steps before running it, each predicted cached or run (and why)
    #[command(after_help = STORE_HELP)]
    Plan(plan::PlanArgs),
    /// Show why the steps of a past build missed the cache (the last build by default)
    #[command(after_help = STORE_HELP)]
    Explain(explain::ExplainArgs),
    /// Remove images from the local store
    #[command(after_help = STORE_HELP)]
    Rmi(store::RmiArgs),
    /// Remove unreferenced cache entries, snapshots and blobs
    #[command(after_help = STORE_HELP)]
    Prune(store::PruneArgs),
    /// Show disk usage of the local store
    #[command(after_help = STORE_HELP)]
    Du(store::DuArgs),
    /// Import a docker-archive or OCI-archive tarball into the local store
    #[command(after_help = STORE_HELP)]
    Load(store::LoadArgs),
    /// Write images of the local store to a docker-archive tarball
    #[command(after_help = STORE_HELP)]
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
    /// Verify every blob and layer of the local store against its digest
    Check(check::CheckArgs),
    /// Copy the store's cache mounts (`RUN --mount=type=cache`) to or from a directory
    #[command(subcommand, after_help = STORE_HELP)]
    Cache(cache::CacheCommand),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Compile(a) => compile::run(a),
        Command::Build(a) => build::run(*a),
        Command::Bake(a) => bake::run(a),
        Command::Images(a) => store::images(a),
        Command::History(a) => inspect::history(a),
        Command::Inspect(a) => inspect::inspect(a),
        Command::Analyze(a) => analyze::run(a),
        Command::Explain(a) => explain::run(a),
        Command::Plan(a) => plan::check(&a).and_then(|()| plan::run(a)),
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
        Command::Check(a) => check::run(a),
        Command::Cache(c) => cache::run(c),
    }
}

/// An error already reported to the user (inside the `--progress rawjson` stream):
/// `main` exits with its code and prints nothing.
#[derive(Debug)]
pub struct Reported(pub anyhow::Error);

impl From<anyhow::Error> for Reported {
    fn from(e: anyhow::Error) -> Reported {
        Reported(e)
    }
}

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for Reported {}

/// If this process was started as the sandbox helper, runs it and never returns.
pub fn maybe_run_sandbox_helper() {
    cairn_runtime::sandbox::maybe_run_helper();
}
