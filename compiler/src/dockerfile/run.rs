//! RUN: the process, its environment, `--mount`, `--network`, `--security` and heredocs.
//!
//! Heredocs follow BuildKit: a RUN whose whole command is one heredoc runs the body as the
//! script (through the shell, or directly from a mounted file when it starts with `#!`);
//! otherwise the bodies are put back after the command line, terminators included, and the
//! shell reads them as ordinary here-documents.

use std::collections::HashSet;

use cairn_ir::{env_key, Env, MountKind, NetworkMode, SecretEnv, SecurityMode, VertexMeta};
use cairn_sdk::{MkfileOpts, Mount, State as Tree};

use super::instructions::{CommandLine, RunCommand, Word};
use super::mount::{lower_mount, parse_mount, Lowered};
use super::state::{PlatformCtx, State};
use super::{Lowerer, PROXY_ARGS};
use crate::error::{CompileError, ErrorKind};

/// The environment RUN sees: the image env, then stage ARGs not shadowed by ENV, then the
/// predefined proxy build args. Built in full at the stage's first RUN; later ENV and ARG
/// instructions extend it as a chain ([`State::set_env`], [`State::set_arg`]), so its
/// order is that of first definition.
fn run_env(lw: &Lowerer, st: &mut State) -> Env {
    if let Some(env) = &st.run_env {
        return env.clone();
    }
    let mut env: Vec<String> = st.env().to_vec();
    let mut keys: HashSet<String> = env.iter().map(|kv| env_key(kv).to_string()).collect();
    for (k, v) in &st.args {
        if keys.insert(k.clone()) {
            env.push(format!("{k}={v}"));
        }
    }
    for k in PROXY_ARGS {
        if let Some(v) = lw.opts.build_args.get(k) {
            if keys.insert(k.to_string()) {
                env.push(format!("{k}={v}"));
            }
        }
    }
    let env = Env::root(env);
    st.run_env = Some(env.clone());
    env
}

/// A `#!` heredoc's script file and where it is mounted.
type Script = Option<(Tree, String)>;

/// A RUN's `--mount`s by target, and its secrets as variables.
type RunMounts = (Vec<(String, Mount)>, Vec<SecretEnv>);

/// What a RUN runs: argv, plus a script file and its mount target for a `#!` heredoc.
fn command(
    lw: &mut Lowerer,
    st: &State,
    ins: &cairn_grammar::ast::Instruction,
    cmd: RunCommand,
) -> Result<(Vec<String>, Script), CompileError> {
    let line = match cmd.command {
        CommandLine::Exec(v) => return Ok((v, None)),
        CommandLine::Shell(line) if cmd.heredocs.is_empty() => return Ok((st.shell_with(line), None)),
        CommandLine::Shell(line) => line,
    };
    let only = &cmd.heredocs[0];
    let marker = line.trim().trim_start_matches("<<").trim_start_matches('-').trim_matches(|c| c == '"' || c == '\'');
    if cmd.heredocs.len() == 1 && marker == only.name {
        if only.content.starts_with("#!") {
            // Run the script file itself, so its interpreter line is honoured.
            let meta = VertexMeta { description: format!("heredoc {}", only.name), ..Default::default() };
            let data = only.content.clone().into_bytes();
            let opts = MkfileOpts { mode: 0o755, ..Default::default() };
            let path = format!("/{}", only.name);
            let file = Tree::scratch().file().mkfile(&path, data, opts).meta(meta).state();
            let file = file.map_err(|e| lw.sdk_err(ins.span, e))?;
            return Ok((vec![format!("/dev/pipes/{}", only.name)], Some((file, "/dev/pipes".to_string()))));
        }
        if only.expand {
            return Ok((st.shell_with(only.content.clone()), None));
        }
    }
    let mut script = line;
    for h in &cmd.heredocs {
        script.push('\n');
        script.push_str(&h.content);
        script.push_str(&h.name);
    }
    Ok((st.shell_with(script), None))
}

fn network(lw: &Lowerer, w: &Word) -> Result<NetworkMode, CompileError> {
    match w.node.as_str() {
        "default" => Ok(NetworkMode::Default),
        "none" => Ok(NetworkMode::None),
        "host" => Ok(NetworkMode::Host),
        v => Err(lw.err(ErrorKind::Instruction, w.span, format!("`--network={v}`: expected default, none or host"))),
    }
}

fn security(lw: &Lowerer, w: &Word) -> Result<SecurityMode, CompileError> {
    match w.node.as_str() {
        "sandbox" => Ok(SecurityMode::Sandbox),
        "insecure" => Ok(SecurityMode::Insecure),
        v => Err(lw.err(ErrorKind::Instruction, w.span, format!("`--security={v}`: expected sandbox or insecure"))),
    }
}

/// The `--mount`s of a RUN (the stage itself is the root mount the SDK adds).
fn mounts(lw: &mut Lowerer, pc: &mut PlatformCtx, st: &State, cmd: &RunCommand) -> Result<RunMounts, CompileError> {
    let (mut mounts, mut secret_env): RunMounts = (Vec::new(), Vec::new());
    for w in &cmd.mounts {
        let spec = parse_mount(&lw.src, w)?;
        match lower_mount(lw, pc, st, w, spec)? {
            Lowered::Mount(target, m) => {
                if mounts.iter().any(|(t, _)| *t == target) {
                    return Err(lw.err(ErrorKind::Instruction, w.span, format!("Two mounts target `{target}`")));
                }
                mounts.push((target, m))
            }
            Lowered::Env(e) => secret_env.push(e),
            Lowered::Both(target, m, e) => {
                mounts.push((target, m));
                secret_env.push(e);
            }
        }
    }
    Ok((mounts, secret_env))
}

pub(super) fn dispatch_run(
    lw: &mut Lowerer,
    pc: &mut PlatformCtx,
    st: &mut State,
    ins: &cairn_grammar::ast::Instruction,
    cmd: RunCommand,
    written: &str,
) -> Result<(), CompileError> {
    let network = cmd.network.last_valid(|w| network(lw, w))?.unwrap_or(lw.opts.network);
    let security = cmd.security.last_valid(|w| security(lw, w))?.unwrap_or(SecurityMode::Sandbox);
    let (mut mounts, secret_env) = mounts(lw, pc, st, &cmd)?;
    let (args, script) = command(lw, st, ins, cmd)?;
    if let Some((file, target)) = script {
        mounts.push((target, Mount::of(MountKind::Bind).source(&file).readonly(true)));
    }
    let env = run_env(lw, st);
    // The stage's platform: a `FROM --platform=$BUILDPLATFORM` stage runs natively
    // whatever the target, and is shared by every target platform's graph.
    let mut exec = st
        .root
        .run(args.clone())
        .with_env(env.into())
        .dir(&st.workdir())
        .user(&st.user())
        .network(network)
        .security(security)
        .platform(st.platform.clone())
        .meta(lw.meta(ins, st, written.to_string()));
    for (target, m) in mounts {
        exec = exec.mount(&target, m);
    }
    for e in secret_env {
        exec = exec.secret_env(&e.id, &e.name, e.required);
    }
    st.root = exec.root().map_err(|e| lw.sdk_err(ins.span, e))?;
    // `RUN |2 A=1 B=2 /bin/sh -c make # buildkit`: the ARGs in force are part of history.
    let mut shown = String::new();
    if !st.args.is_empty() {
        shown.push_str(&format!("|{} ", st.args.len()));
        for (k, v) in &st.args {
            shown.push_str(&format!("{k}={v} "));
        }
    }
    shown.push_str(&args.join(" "));
    st.history(format!("RUN {shown} # buildkit"), false);
    Ok(())
}
