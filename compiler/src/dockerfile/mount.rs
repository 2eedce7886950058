//! `RUN --mount`: the value (already expanded) is read into a [`MountSpec`], then lowered
//! into an SDK mount, with the tree it reads (a stage, a named context, an image or the
//! build context).

use cairn_ir::{CacheSharing, MountKind, SecretEnv};
use cairn_sdk::{Mount, State as Tree};

use super::instructions::Word;
use super::state::{abs_path, clean_path, PlatformCtx, State};
use super::values::parse_size;
use super::{Lowerer, Src};
use crate::error::{CompileError, ErrorKind};

/// The kinds of `--mount=type=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

/// One `--mount` as written, keys read and checked.
#[derive(Debug, Clone)]
pub(super) struct MountSpec {
    pub kind: MountType,
    pub target: Option<String>,
    pub source: Option<String>,
    pub from: Option<String>,
    pub readonly: Option<bool>,
    pub id: Option<String>,
    pub sharing: CacheSharing,
    pub mode: Option<u32>,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub required: bool,
    pub env: Option<String>,
}

/// What a `--mount` becomes: a mount at a target, a secret in an environment variable, or
/// both.
pub(super) enum Lowered {
    Mount(String, Mount),
    Env(SecretEnv),
    Both(String, Mount, SecretEnv),
}

fn parse_bool(src: &Src, w: &Word, key: &str, v: Option<&str>) -> Result<bool, CompileError> {
    match v {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(o) => {
            Err(src.err(ErrorKind::Instruction, w.span, format!("`{key}={o}` in `--mount`: expected true or false")))
        }
    }
}

fn parse_u32(src: &Src, w: &Word, key: &str, v: &str, radix: u32) -> Result<u32, CompileError> {
    u32::from_str_radix(v, radix).map_err(|_| {
        let what = if radix == 8 { "an octal mode such as 0755" } else { "a number" };
        src.err(ErrorKind::Instruction, w.span, format!("`{key}={v}` in `--mount`: expected {what}"))
    })
}

/// Reads `type=cache,target=/x,…` (keys case-insensitive, `"` around values dropped).
pub(super) fn parse_mount(src: &Src, w: &Word) -> Result<MountSpec, CompileError> {
    let err = |message: String| src.err(ErrorKind::Instruction, w.span, message);
    let mut kind = "bind".to_string();
    let mut m = MountSpec {
        kind: MountType::Bind,
        target: None,
        source: None,
        from: None,
        readonly: None,
        id: None,
        sharing: CacheSharing::Shared,
        mode: None,
        uid: 0,
        gid: 0,
        size: 0,
        required: false,
        env: None,
    };
    for field in w.node.split(',').filter(|s| !s.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().trim_matches('"'))),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = || v.map(str::to_string).ok_or_else(|| err(format!("`{k}` in `--mount` needs a value (`{k}=…`)")));
        match k.as_str() {
            "type" => kind = need()?,
            "target" | "dst" | "destination" => m.target = Some(need()?),
            "source" | "src" => m.source = Some(need()?),
            "from" => m.from = Some(need()?),
            "readonly" | "ro" => m.readonly = Some(parse_bool(src, w, &k, v)?),
            "readwrite" | "rw" => m.readonly = Some(!parse_bool(src, w, &k, v)?),
            "id" => m.id = Some(need()?),
            "sharing" => {
                m.sharing = match need()?.as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    o => return Err(err(format!("`sharing={o}` in `--mount`: expected shared, private or locked"))),
                }
            }
            "mode" => m.mode = Some(parse_u32(src, w, &k, &need()?, 8)?),
            "uid" => m.uid = parse_u32(src, w, &k, &need()?, 10)?,
            "gid" => m.gid = parse_u32(src, w, &k, &need()?, 10)?,
            "size" | "tmpfs-size" => {
                let v = need()?;
                m.size = parse_size(&v).ok_or_else(|| err(format!("`size={v}` in `--mount`: expected bytes such as 64m")))?
            }
            "required" => m.required = parse_bool(src, w, &k, v)?,
            "env" => m.env = Some(need()?),
            other => {
                return Err(err(format!("Unexpected key `{other}` in `--mount` (known: type, target, source, from, readonly, rw, id, sharing, mode, uid, gid, size, required, env)")))
            }
        }
    }
    m.kind = match kind.as_str() {
        "bind" => MountType::Bind,
        "cache" => MountType::Cache,
        "tmpfs" => MountType::Tmpfs,
        "secret" => MountType::Secret,
        "ssh" => MountType::Ssh,
        other => return Err(err(format!("Unknown mount type `{other}`: expected bind, cache, tmpfs, secret or ssh"))),
    };
    Ok(m)
}

/// The SDK mount of `m` and its target.
pub(super) fn lower_mount(
    lw: &mut Lowerer,
    pc: &mut PlatformCtx,
    st: &State,
    w: &Word,
    m: MountSpec,
) -> Result<Lowered, CompileError> {
    let err = |lw: &Lowerer, message: &str| lw.err(ErrorKind::Instruction, w.span, message);
    let abs = |t: &str| abs_path(&st.workdir(), t);
    let selector = m.source.as_deref().map(|s| clean_path(&format!("/{s}"))).unwrap_or_default();
    let selector = if selector == "/" { String::new() } else { selector };
    let tree = |lw: &mut Lowerer, pc: &mut PlatformCtx| -> Result<Tree, CompileError> {
        match &m.from {
            Some(name) => lw.resolve_from(pc, st, name, w.span),
            None => lw.context_node(w.span),
        }
    };
    let mount = |source: Option<Tree>, selector: String, readonly: bool, kind: MountKind| {
        let mount = Mount::of(kind).selector(&selector).readonly(readonly);
        match source {
            Some(s) => mount.source(&s),
            None => mount,
        }
    };
    let (target, lowered) = match m.kind {
        MountType::Bind => {
            let t = m.target.as_deref().ok_or_else(|| err(lw, "A bind mount needs `target=`"))?;
            let source = tree(lw, pc)?;
            (abs(t), mount(Some(source), selector, m.readonly.unwrap_or(true), MountKind::Bind))
        }
        MountType::Cache => {
            let t = abs(m.target.as_deref().ok_or_else(|| err(lw, "A cache mount needs `target=`"))?);
            let (source, selector) =
                if m.from.is_some() { (Some(tree(lw, pc)?), selector) } else { (None, String::new()) };
            let (mode, uid, gid) = (m.mode.unwrap_or(0o755), m.uid, m.gid);
            let kind = MountKind::Cache { id: m.id.unwrap_or(t.clone()), sharing: m.sharing, mode, uid, gid };
            (t, mount(source, selector, m.readonly.unwrap_or(false), kind))
        }
        MountType::Tmpfs => {
            let t = abs(m.target.as_deref().ok_or_else(|| err(lw, "A tmpfs mount needs `target=`"))?);
            (t, mount(None, String::new(), false, MountKind::Tmpfs { size: m.size }))
        }
        MountType::Secret => return lower_secret(lw, w, m, abs),
        MountType::Ssh => {
            let id = m.id.unwrap_or_else(|| "default".into());
            let t = m.target.map(|t| abs(&t)).unwrap_or_else(|| "/run/buildkit/ssh_agent.0".into());
            let kind =
                MountKind::Ssh { id, required: m.required, mode: m.mode.unwrap_or(0o600), uid: m.uid, gid: m.gid };
            (t, mount(None, String::new(), true, kind))
        }
    };
    if target == "/" {
        return Err(err(lw, "A `--mount` cannot target `/`"));
    }
    Ok(Lowered::Mount(target, lowered))
}

/// A secret: a file (at `target=`, by default `/run/secrets/ID`), a variable (`env=`), or
/// both.
fn lower_secret(lw: &Lowerer, w: &Word, m: MountSpec, abs: impl Fn(&str) -> String) -> Result<Lowered, CompileError> {
    let id = match (&m.id, &m.target) {
        (Some(i), _) => i.clone(),
        (None, Some(t)) => t.rsplit('/').next().unwrap_or("").to_string(),
        (None, None) => return Err(lw.err(ErrorKind::Instruction, w.span, "A secret mount needs `id=` or `target=`")),
    };
    if id.is_empty() {
        return Err(lw.err(ErrorKind::Instruction, w.span, "A secret mount needs a non-empty `id=`"));
    }
    let required = m.required;
    let kind = MountKind::Secret { id: id.clone(), required, mode: m.mode.unwrap_or(0o400), uid: m.uid, gid: m.gid };
    let secret = Mount::of(kind).readonly(true);
    Ok(match (m.env, m.target) {
        (Some(name), None) => Lowered::Env(SecretEnv { id: id.clone(), name, required }),
        (Some(name), Some(t)) => Lowered::Both(abs(&t), secret, SecretEnv { id: id.clone(), name, required }),
        (None, t) => Lowered::Mount(t.map(|t| abs(&t)).unwrap_or_else(|| format!("/run/secrets/{id}")), secret),
    })
}
