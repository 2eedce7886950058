//! RUN: the process, its environment, `--mount`, `--network`, `--security` and heredocs.
//!
//! Heredocs follow BuildKit: a RUN whose whole command is one heredoc runs the body as the
//! script (through the shell, or directly from a mounted file when it starts with `#!`);
//! otherwise the bodies are put back after the command line, terminators included, and the
//! shell reads them as ordinary here-documents.

use std::collections::HashSet;

use cairn_ir::{Env, ExecMeta, ExecOp, Mount, MountKind, NetworkMode, SecurityMode, VertexMeta};

use super::instructions::{CommandLine, RunCommand, Word};
use super::mount::{lower_mount, parse_mount, Lowered};
use super::state::{PlatformCtx, State};
use super::{Lowerer, PROXY_ARGS};
use crate::error::{CompileError, ErrorKind};
use crate::graph::Ref;

/// The environment RUN sees: the image env, then stage ARGs not shadowed by ENV, then the
/// predefined proxy build args. Built in full at the stage's first RUN; later ENV and ARG
/// instructions extend it as a chain ([`State::set_env`], [`State::set_arg`]), so its
/// order is that of first definition.
fn run_env(lw: &Lowerer, st: &mut State) -> Env {
    if let Some(env) = &st.run_env {
        return env.clone();
    }
    let mut env: Vec<String> = st.env().to_vec();
    let mut keys: HashSet<String> =
        env.iter().map(|kv| kv.split_once('=').map_or(kv.as_str(), |(a, _)| a).to_string()).collect();
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

/// What a RUN runs: argv, plus an extra input + mount target for a `#!` heredoc script.
fn command(lw: &mut Lowerer, st: &State, cmd: RunCommand) -> (Vec<String>, Option<(Ref, String)>) {
    let line = match cmd.command {
        CommandLine::Exec(v) => return (v, None),
        CommandLine::Shell(line) if cmd.heredocs.is_empty() => return (st.shell_with(line), None),
        CommandLine::Shell(line) => line,
    };
    let only = &cmd.heredocs[0];
    let marker = line.trim().trim_start_matches("<<").trim_start_matches('-').trim_matches(|c| c == '"' || c == '\'');
    if cmd.heredocs.len() == 1 && marker == only.name {
        if only.content.starts_with("#!") {
            // Run the script file itself, so its interpreter line is honoured.
            let meta = VertexMeta { description: format!("heredoc {}", only.name), ..Default::default() };
            let data = only.content.clone().into_bytes();
            let file = lw.graph.mkfile(&format!("/{}", only.name), 0o755, data, meta);
            return (vec![format!("/dev/pipes/{}", only.name)], Some((file, "/dev/pipes".to_string())));
        }
        if only.expand {
            return (st.shell_with(only.content.clone()), None);
        }
    }
    let mut script = line;
    for h in &cmd.heredocs {
        script.push('\n');
        script.push_str(&h.content);
        script.push_str(&h.name);
    }
    (st.shell_with(script), None)
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

/// The mounts of a RUN: the stage at `/` (input 0, output 0), then each `--mount`.
fn mounts(
    lw: &mut Lowerer,
    pc: &mut PlatformCtx,
    st: &State,
    cmd: &RunCommand,
    inputs: &mut Vec<Ref>,
) -> Result<(Vec<Mount>, Vec<cairn_ir::SecretEnv>), CompileError> {
    let root = Mount {
        input: Some(0),
        selector: String::new(),
        target: "/".into(),
        readonly: false,
        output: Some(0),
        kind: MountKind::Bind,
    };
    let (mut mounts, mut secret_env) = (vec![root], Vec::new());
    for w in &cmd.mounts {
        let spec = parse_mount(&lw.src, w)?;
        match lower_mount(lw, pc, st, w, spec, inputs)? {
            Lowered::Mount(m) => {
                if mounts.iter().any(|x| x.target == m.target) {
                    return Err(lw.err(ErrorKind::Instruction, w.span, format!("Two mounts target `{}`", m.target)));
                }
                mounts.push(m)
            }
            Lowered::Env(e) => secret_env.push(e),
            Lowered::Both(m, e) => {
                mounts.push(m);
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
    let mut inputs: Vec<Ref> = vec![st.root];
    let (mut mounts, secret_env) = mounts(lw, pc, st, &cmd, &mut inputs)?;
    let (args, script) = command(lw, st, cmd);
    if let Some((file, target)) = script {
        inputs.push(file);
        let input = Some(inputs.len() as u32 - 1);
        mounts.push(Mount {
            input,
            selector: String::new(),
            target,
            readonly: true,
            output: None,
            kind: MountKind::Bind,
        });
    }
    let env = run_env(lw, st);
    let exec = ExecOp {
        meta: ExecMeta { args: args.clone(), env, cwd: st.workdir(), user: st.user(), hostname: String::new() },
        network,
        security,
        mounts,
        secret_env,
        // The stage's platform: a `FROM --platform=$BUILDPLATFORM` stage runs natively
        // whatever the target, and is shared by every target platform's graph.
        platform: Some(st.platform.normalized()),
    };
    let meta = lw.meta(ins, st, written.to_string());
    st.root = lw.graph.exec(exec, inputs, meta);
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
