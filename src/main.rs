//! The `cairn` command line: a thin dispatcher over the `cli` modules, which speak the
//! `docker buildx build` dialect. Library crates return typed errors; here they become
//! `anyhow` errors printed with `{:#}` and exit code 1 (125 for usage errors, as docker's; 130
//! for a build stopped by Ctrl-C).

mod cli;

use clap::Parser;

fn main() {
    // The sandbox re-executes this binary to create namespaces in a fresh,
    // single-threaded process (see runtime/src/sandbox).
    cli::maybe_run_sandbox_helper();
    // Not root: go on in a user namespace where cairn is root (rootless; see
    // runtime/src/sandbox/rootless.rs). Before anything could start a thread.
    cairn_runtime::sandbox::rootless::enter(cairn_runtime::store::default_root);
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        // `--help` and `--version` exit 0; usage errors with docker's and buildx's code.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let _ = e.print();
            std::process::exit(cli::USAGE_EXIT);
        }
    };
    if !matches!(args.command, cli::Command::Build(_)) {
        // `cairn images | head`: a closed pipe ends the command quietly, as it ends `ls`,
        // instead of a panic in `println!`. A build keeps ignoring SIGPIPE so it can stop
        // its steps and remove its mounts; it reports EPIPE as an error instead.
        // SAFETY: resetting a signal disposition before any thread is started.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    if let Err(err) = cli::run(args) {
        let err = match err.downcast::<cli::Reported>() {
            Ok(reported) => reported.0,
            Err(err) => {
                eprintln!("error: {err:#}");
                err
            }
        };
        // Ctrl-C: children were killed and mounts removed; exit like a shell would.
        if matches!(err.downcast_ref(), Some(cairn_runtime::solve::SolveError::Cancelled)) {
            std::process::exit(130);
        }
        std::process::exit(1);
    }
}
