//! RUN: the process, its environment, `--mount`, `--network`, `--security` and heredocs.
//!
//! Heredocs follow BuildKit: a RUN whose whole command is one heredoc runs the body as the
//! script (through the shell, or directly from a mounted file when it starts with `#!`);
//! otherwise the bodies are put back after the command line, terminators included, and the
//! shell reads them as ordinary here-documents.

use cairn_grammar::ast::{Args, Flag, Instruction};
use cairn_ir::{
    CacheSharing, ExecMeta, ExecOp, FileAction, FileActionKind, FileOp, FileRef, Mount, MountKind, NetworkMode, Op,
    SecretEnv, SecurityMode,
};

use super::{clean_path, join_path, Lowerer, PlatformCtx, State, PROXY_ARGS};
use crate::error::CompileError;
use crate::graph::Ref;

/// The environment RUN sees: the image env, then stage ARGs not shadowed by ENV, then the
/// predefined proxy build args.
fn run_env(lw: &Lowerer, st: &State) -> Vec<String> {
    let mut env: Vec<String> = st.env().to_vec();
    let has = |env: &[String], k: &str| env.iter().any(|kv| kv.split_once('=').map_or(kv.as_str(), |(a, _)| a) == k);
    for (k, v) in &st.args {
        if !has(&env, k) {
            env.push(format!("{k}={v}"));
        }
    }
    for k in PROXY_ARGS {
        if let Some(v) = lw.opts.build_args.get(k) {
            if !has(&env, k) {
                env.push(format!("{k}={v}"));
            }
        }
    }
    env
}

/// A `#!` heredoc script: the input holding it and where it is mounted.
type ScriptMount = (Ref, String);

/// What a RUN runs: argv, plus an extra input + mount for a `#!` heredoc script.
fn command(
    lw: &mut Lowerer,
    st: &State,
    ins: &Instruction,
) -> Result<(Vec<String>, Option<ScriptMount>), CompileError> {
    match &ins.args {
        Args::Exec(v) => {
            if v.is_empty() {
                return Err(lw.err(ins.span, "RUN needs a command: the JSON array is empty"));
            }
            Ok((v.clone(), None))
        }
        Args::Shell(cmd) if ins.heredocs.is_empty() => {
            let mut a = st.shell();
            a.push(cmd.clone());
            Ok((a, None))
        }
        Args::Shell(cmd) => {
            let only = &ins.heredocs[0];
            let marker =
                cmd.trim().trim_start_matches("<<").trim_start_matches('-').trim_matches(|c| c == '"' || c == '\'');
            if ins.heredocs.len() == 1 && marker == only.name {
                if only.content.starts_with("#!") {
                    // Run the script file itself, so its interpreter line is honoured.
                    let meta =
                        cairn_ir::VertexMeta { description: format!("heredoc {}", only.name), ..Default::default() };
                    let file = lw.graph.add(
                        Op::File(FileOp {
                            actions: vec![FileAction {
                                base: FileRef::Scratch,
                                kind: FileActionKind::Mkfile {
                                    path: format!("/{}", only.name),
                                    mode: 0o755,
                                    data: only.content.clone().into_bytes(),
                                    owner: None,
                                    timestamp: None,
                                },
                            }],
                        }),
                        vec![],
                        meta,
                    );
                    return Ok((vec![format!("/dev/pipes/{}", only.name)], Some((file, "/dev/pipes".to_string()))));
                }
                if only.expand {
                    let mut a = st.shell();
                    a.push(only.content.clone());
                    return Ok((a, None));
                }
            }
            let mut script = cmd.clone();
            for h in &ins.heredocs {
                script.push('\n');
                script.push_str(&h.content);
                script.push_str(&h.name);
            }
            let mut a = st.shell();
            a.push(script);
            Ok((a, None))
        }
        _ => Err(lw.err(ins.span, "RUN needs a command")),
    }
}

pub(super) fn dispatch_run(
    lw: &mut Lowerer,
    pc: &mut PlatformCtx,
    st: &mut State,
    ins: &Instruction,
    written: &str,
) -> Result<(), CompileError> {
    let mut network = NetworkMode::Default;
    let mut security = SecurityMode::Sandbox;
    let mut inputs: Vec<Ref> = vec![st.root];
    let mut mounts = vec![Mount {
        input: Some(0),
        selector: String::new(),
        target: "/".into(),
        readonly: false,
        output: Some(0),
        kind: MountKind::Bind,
    }];
    let mut secret_env = Vec::new();
    for f in &ins.flags {
        let value = lw.expand(st, f.value.as_deref().unwrap_or(""), f.span)?;
        match f.name.as_str() {
            "network" => {
                network = match value.as_str() {
                    "default" => NetworkMode::Default,
                    "none" => NetworkMode::None,
                    "host" => NetworkMode::Host,
                    v => return Err(lw.err(f.span, format!("`--network={v}`: expected default, none or host"))),
                }
            }
            "security" => {
                security = match value.as_str() {
                    "sandbox" => SecurityMode::Sandbox,
                    "insecure" => SecurityMode::Insecure,
                    v => return Err(lw.err(f.span, format!("`--security={v}`: expected sandbox or insecure"))),
                }
            }
            "mount" => {
                let m = parse_mount(lw, pc, st, f, &value, &mut inputs)?;
                match m {
                    ParsedMount::Mount(m) => {
                        if mounts.iter().any(|x| x.target == m.target) {
                            return Err(lw.err(f.span, format!("two mounts target `{}`", m.target)));
                        }
                        mounts.push(m)
                    }
                    ParsedMount::Env(e) => secret_env.push(e),
                    ParsedMount::Both(m, e) => {
                        mounts.push(m);
                        secret_env.push(e);
                    }
                }
            }
            other => return Err(lw.err(f.span, format!("Unknown flag `--{other}` for `RUN`"))),
        }
    }
    let (args, script) = command(lw, st, ins)?;
    if let Some((file, target)) = script {
        inputs.push(file);
        mounts.push(Mount {
            input: Some(inputs.len() as u32 - 1),
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
    };
    let meta = lw.meta(ins, st, written.to_string());
    st.root = lw.graph.add(Op::Exec(exec), inputs, meta);
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

enum ParsedMount {
    Mount(Mount),
    Env(SecretEnv),
    Both(Mount, SecretEnv),
}

fn parse_bool(lw: &Lowerer, f: &Flag, key: &str, v: Option<&str>) -> Result<bool, CompileError> {
    match v {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(o) => Err(lw.err(f.span, format!("`{key}={o}` in --mount: expected true or false"))),
    }
}

fn parse_u32(lw: &Lowerer, f: &Flag, key: &str, v: &str, radix: u32) -> Result<u32, CompileError> {
    u32::from_str_radix(v, radix).map_err(|_| {
        let what = if radix == 8 { "an octal mode such as 0755" } else { "a number" };
        lw.err(f.span, format!("`{key}={v}` in --mount: expected {what}"))
    })
}

/// Bytes from `64m`, `1g`, `4096`.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.trim_end_matches('b').chars().last()? {
        'k' => (&s[..s.trim_end_matches('b').len() - 1], 1u64 << 10),
        'm' => (&s[..s.trim_end_matches('b').len() - 1], 1 << 20),
        'g' => (&s[..s.trim_end_matches('b').len() - 1], 1 << 30),
        _ => (s.trim_end_matches('b'), 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}

/// Parses one `--mount=` value (already expanded) into a mount, adding its input.
fn parse_mount(
    lw: &mut Lowerer,
    pc: &mut PlatformCtx,
    st: &State,
    f: &Flag,
    value: &str,
    inputs: &mut Vec<Ref>,
) -> Result<ParsedMount, CompileError> {
    let mut kind = "bind".to_string();
    let mut target: Option<String> = None;
    let mut source: Option<String> = None;
    let mut from: Option<String> = None;
    let mut readonly: Option<bool> = None;
    let mut id: Option<String> = None;
    let mut sharing = CacheSharing::Shared;
    let mut mode: Option<u32> = None;
    let mut uid = 0;
    let mut gid = 0;
    let mut size = 0;
    let mut required = false;
    let mut env: Option<String> = None;
    for field in value.split(',').filter(|s| !s.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().trim_matches('"'))),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = |lw: &Lowerer| {
            v.map(str::to_string).ok_or_else(|| lw.err(f.span, format!("`{k}` in --mount needs a value (`{k}=…`)")))
        };
        match k.as_str() {
            "type" => kind = need(lw)?,
            "target" | "dst" | "destination" => target = Some(need(lw)?),
            "source" | "src" => source = Some(need(lw)?),
            "from" => from = Some(need(lw)?),
            "readonly" | "ro" => readonly = Some(parse_bool(lw, f, &k, v)?),
            "readwrite" | "rw" => readonly = Some(!parse_bool(lw, f, &k, v)?),
            "id" => id = Some(need(lw)?),
            "sharing" => {
                sharing = match need(lw)?.as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    o => return Err(lw.err(f.span, format!("`sharing={o}` in --mount: expected shared, private or locked"))),
                }
            }
            "mode" => mode = Some(parse_u32(lw, f, &k, &need(lw)?, 8)?),
            "uid" => uid = parse_u32(lw, f, &k, &need(lw)?, 10)?,
            "gid" => gid = parse_u32(lw, f, &k, &need(lw)?, 10)?,
            "size" | "tmpfs-size" => {
                let v = need(lw)?;
                size = parse_size(&v).ok_or_else(|| lw.err(f.span, format!("`size={v}` in --mount: expected bytes such as 64m")))?
            }
            "required" => required = parse_bool(lw, f, &k, v)?,
            "env" => env = Some(need(lw)?),
            other => {
                return Err(lw.err(
                    f.span,
                    format!("unexpected key `{other}` in --mount (known: type, target, source, from, readonly, rw, id, sharing, mode, uid, gid, size, required, env)"),
                ))
            }
        }
    }
    let abs = |t: &str| clean_path(&join_path(&st.workdir(), t));
    let mut add_input = |r: Ref| {
        inputs.push(r);
        Some(inputs.len() as u32 - 1)
    };
    let selector = source.as_deref().map(|s| clean_path(&format!("/{s}"))).unwrap_or_default();
    let selector = if selector == "/" { String::new() } else { selector };
    let from_tree = |lw: &mut Lowerer, pc: &mut PlatformCtx| -> Result<Ref, CompileError> {
        match &from {
            Some(name) => lw.resolve_from(pc, st, name, f.span),
            None => Ok(lw.context_node()),
        }
    };
    let m = match kind.as_str() {
        "bind" => {
            let t = target.ok_or_else(|| lw.err(f.span, "a bind mount needs `target=`"))?;
            let tree = from_tree(lw, pc)?;
            Mount {
                input: add_input(tree),
                selector,
                target: abs(&t),
                readonly: readonly.unwrap_or(true),
                output: None,
                kind: MountKind::Bind,
            }
        }
        "cache" => {
            let t = abs(&target.ok_or_else(|| lw.err(f.span, "a cache mount needs `target=`"))?);
            let input = if from.is_some() { add_input(from_tree(lw, pc)?) } else { None };
            Mount {
                input,
                selector: if from.is_some() { selector } else { String::new() },
                target: t.clone(),
                readonly: readonly.unwrap_or(false),
                output: None,
                kind: MountKind::Cache { id: id.unwrap_or(t), sharing, mode: mode.unwrap_or(0o755), uid, gid },
            }
        }
        "tmpfs" => Mount {
            input: None,
            selector: String::new(),
            target: abs(&target.ok_or_else(|| lw.err(f.span, "a tmpfs mount needs `target=`"))?),
            readonly: false,
            output: None,
            kind: MountKind::Tmpfs { size },
        },
        "secret" => {
            let id = match (&id, &target) {
                (Some(i), _) => i.clone(),
                (None, Some(t)) => t.rsplit('/').next().unwrap_or("").to_string(),
                (None, None) => return Err(lw.err(f.span, "a secret mount needs `id=` or `target=`")),
            };
            if id.is_empty() {
                return Err(lw.err(f.span, "a secret mount needs a non-empty `id=`"));
            }
            let secret = |target: String| Mount {
                input: None,
                selector: String::new(),
                target,
                readonly: true,
                output: None,
                kind: MountKind::Secret { id: id.clone(), required, mode: mode.unwrap_or(0o400), uid, gid },
            };
            return Ok(match (env, target) {
                (Some(name), None) => ParsedMount::Env(SecretEnv { id: id.clone(), name, required }),
                (Some(name), Some(t)) => {
                    ParsedMount::Both(secret(abs(&t)), SecretEnv { id: id.clone(), name, required })
                }
                (None, t) => {
                    ParsedMount::Mount(secret(t.map(|t| abs(&t)).unwrap_or_else(|| format!("/run/secrets/{id}"))))
                }
            });
        }
        "ssh" => {
            let id = id.unwrap_or_else(|| "default".into());
            Mount {
                input: None,
                selector: String::new(),
                target: target.map(|t| abs(&t)).unwrap_or_else(|| "/run/buildkit/ssh_agent.0".into()),
                readonly: true,
                output: None,
                kind: MountKind::Ssh { id, required, mode: mode.unwrap_or(0o600), uid, gid },
            }
        }
        other => {
            return Err(
                lw.err(f.span, format!("unknown mount type `{other}`: expected bind, cache, tmpfs, secret or ssh"))
            )
        }
    };
    if m.target == "/" {
        return Err(lw.err(f.span, "a --mount cannot target `/`"));
    }
    Ok(ParsedMount::Mount(m))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64m"), Some(64 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("2kb"), Some(2048));
        assert_eq!(parse_size("x"), None);
    }
}
