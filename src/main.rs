//! The `cairn` command line: a thin dispatcher over the `cli` modules, which speak the
//! `docker buildx build` dialect. Library crates return typed errors; here they become
//! `anyhow` errors printed with `{:#}` and exit code 1 (2 for usage errors, from clap; 130
//! for a build stopped by Ctrl-C).

mod cli;

use clap::Parser;

fn main() {
    // The sandbox re-executes this binary to create namespaces in a fresh,
    // single-threaded process (see runtime/src/sandbox).
    cli::maybe_run_sandbox_helper();
    let args = cli::Cli::parse();
    if let Err(err) = cli::run(args) {
        eprintln!("error: {err:#}");
        // Ctrl-C: children were killed and mounts removed; exit like a shell would.
        if matches!(err.downcast_ref(), Some(cairn_runtime::solve::SolveError::Cancelled)) {
            std::process::exit(130);
        }
        std::process::exit(1);
    }
}
