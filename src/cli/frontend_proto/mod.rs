//! External frontends: executables in any language that speak the frontend protocol
//! (SPEC.md §11) and return a Definition. This is the host side: which executable
//! ([`select`]), running it confined ([`confine`]) under limits ([`Limits`]), the
//! conversation ([`session`]), answering its image-config queries from cairn's resolver,
//! and showing its diagnostics as cairn shows its own errors ([`diagnostics`]).
//!
//! The entry point is [`run`]: a [`BuildRequest`] in, a validated [`Definition`] out. It
//! knows nothing about `cairn build`'s other flags, so any caller — `build`, `compile`, a
//! bake command building several targets — can run a frontend with it. The message types
//! are `cairn_ir::protocol`'s, shared with frontends written in Rust.

pub mod confine;
pub mod diagnostics;
pub mod select;
mod session;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use cairn_compiler::resolver::ImageResolver;
use cairn_ir::protocol::{
    BuildRequest, Diagnostic, FrontendMessage, HostMessage, ImageConfigAnswer, ResolveImageConfig, Severity,
    PROTOCOL_VERSION,
};
use cairn_ir::{Definition, Platform};

/// What a frontend may take: time, and bytes written back.
#[derive(Debug, Clone)]
pub struct Limits {
    pub timeout: Duration,
    /// Bytes on stdout, all messages together.
    pub max_output: u64,
    /// Bytes of stderr forwarded to cairn's; the rest is dropped.
    pub max_stderr: u64,
}

impl Limits {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
    pub const DEFAULT_MAX_OUTPUT: u64 = 64 << 20;

    /// `--frontend-timeout` (or `CAIRN_FRONTEND_TIMEOUT`), `CAIRN_FRONTEND_MAX_OUTPUT`,
    /// else the defaults.
    pub fn from_flags(timeout: Option<f64>, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Limits> {
        let timeout = match (timeout, env("CAIRN_FRONTEND_TIMEOUT")) {
            (Some(t), _) => Some((t, "`--frontend-timeout`".to_string())),
            (None, Some(v)) => Some((
                v.parse::<f64>().with_context(|| format!("Invalid CAIRN_FRONTEND_TIMEOUT `{v}`: expected seconds"))?,
                "CAIRN_FRONTEND_TIMEOUT".to_string(),
            )),
            (None, None) => None,
        };
        let timeout = match timeout {
            Some((t, from)) if !(t.is_finite() && t > 0.0) => bail!("Invalid {from} `{t}`: expected seconds above 0"),
            Some((t, _)) => Duration::from_secs_f64(t),
            None => Self::DEFAULT_TIMEOUT,
        };
        let max_output = match env("CAIRN_FRONTEND_MAX_OUTPUT") {
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .with_context(|| format!("Invalid CAIRN_FRONTEND_MAX_OUTPUT `{v}`: expected bytes above 0"))?,
            None => Self::DEFAULT_MAX_OUTPUT,
        };
        Ok(Limits { timeout, max_output, max_stderr: 1 << 20 })
    }
}

/// One run of a frontend.
pub struct Invocation<'a> {
    pub exe: &'a Path,
    pub request: BuildRequest,
    /// Keep the host's network (`--allow frontend.network`).
    pub network: bool,
    pub limits: Limits,
}

/// What a frontend gave back.
#[derive(Debug)]
pub struct Outcome {
    pub definition: Definition,
    /// Warning and info diagnostics, rendered.
    pub warnings: Vec<String>,
}

/// Runs the frontend, answers its queries with `resolver`, and returns its Definition
/// (validated as an IR file is), or an error: its error diagnostics, or what it did
/// wrong (invalid or too much output, no answer in time, a Definition that does not
/// validate).
pub fn run(inv: &Invocation, resolver: &dyn ImageResolver) -> anyhow::Result<Outcome> {
    let name = inv.exe.display();
    let req = &inv.request;
    let mut read_only: Vec<PathBuf> = vec![PathBuf::from(&req.context)];
    read_only.extend(req.file.iter().map(PathBuf::from));
    for c in req.named_contexts.values() {
        if let cairn_ir::protocol::NamedContext::Directory(d) = c {
            read_only.push(PathBuf::from(d));
        }
    }
    let confinement = confine::Confinement { read_only, network: inv.network };
    let default_platform = req.platforms.first().cloned().unwrap_or_else(Platform::host);
    let answer = |m: &FrontendMessage| match m {
        FrontendMessage::ResolveImageConfig(q) => {
            Some(HostMessage::ImageConfig(Box::new(answer(q, &default_platform, resolver))))
        }
        FrontendMessage::Result(_) => None,
    };
    let result = session::converse(inv.exe, &HostMessage::Request(req.clone()), &confinement, &inv.limits, &answer)?;
    if result.protocol != PROTOCOL_VERSION {
        bail!(
            "Frontend `{name}` answered in protocol version {}; this cairn speaks version {PROTOCOL_VERSION}",
            result.protocol
        );
    }
    let context = Path::new(&req.context);
    let allowed: Vec<&Path> = req.file.iter().map(Path::new).collect();
    let render = |d, label| diagnostics::render(d, context, &allowed, label);
    let is_error = |d: &&Diagnostic| d.severity == Severity::Error;
    if result.diagnostics.iter().any(|d| is_error(&d)) {
        // Errors first, then the rest: warnings often explain an error.
        let errors = result.diagnostics.iter().filter(is_error);
        let others = result.diagnostics.iter().filter(|d| !is_error(d));
        let all: Vec<String> = errors.chain(others).map(|d| render(d, true)).collect();
        bail!("{}", all.join("\n"));
    }
    // Shown as warnings by the caller, which says so itself.
    let warnings = result.diagnostics.iter().map(|d| render(d, d.severity == Severity::Info)).collect();
    let Some(def) = result.definition else {
        bail!("Frontend `{name}` returned neither a Definition nor an error diagnostic");
    };
    let json: cairn_ir::json::JsonDefinition = serde_json::from_value(def)
        .map_err(|e| anyhow::anyhow!("Frontend `{name}` returned a malformed Definition: {e}"))?;
    let definition = cairn_ir::json::from_json(json)
        .map_err(|e| anyhow::anyhow!("Frontend `{name}` returned an invalid Definition: {e}"))?;
    if definition.outputs.is_empty() {
        bail!("Frontend `{name}` returned a Definition without outputs");
    }
    Ok(Outcome { definition, warnings })
}

/// The answer to one query: the config, the manifest digest and platform when known.
fn answer(q: &ResolveImageConfig, default_platform: &Platform, resolver: &dyn ImageResolver) -> ImageConfigAnswer {
    let platform = q.platform.clone().unwrap_or_else(|| default_platform.clone());
    let mut a = ImageConfigAnswer {
        id: q.id,
        reference: q.reference.clone(),
        digest: None,
        platform: None,
        config: None,
        error: None,
    };
    let reference = if q.reference.starts_with("oci-layout://") {
        q.reference.clone()
    } else {
        match cairn_ir::reference::normalize(&q.reference) {
            Ok(r) => r,
            Err(e) => {
                a.error = Some(format!("Invalid image reference `{}`: {e}", q.reference));
                return a;
            }
        }
    };
    a.reference = reference.clone();
    match resolver.resolve(&reference, &platform) {
        Ok(Some(config)) => {
            if let Some(p) = resolver.pinned(&reference, &platform) {
                a.digest = p.rsplit_once('@').map(|(_, d)| d.to_string());
                a.reference = p;
            } else {
                a.digest = resolver.digest(&reference, &platform);
            }
            a.platform = Some(config.platform());
            a.config = Some(config);
        }
        Ok(None) => a.error = Some(format!("Image `{reference}` not found for {platform}")),
        Err(e) => a.error = Some(format!("Cannot read the config of `{reference}`: {e}")),
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_come_from_the_flag_then_the_environment() {
        let none = |_: &str| None;
        assert_eq!(Limits::from_flags(None, none).unwrap().timeout, Limits::DEFAULT_TIMEOUT);
        let env = |k: &str| match k {
            "CAIRN_FRONTEND_TIMEOUT" => Some("0.5".to_string()),
            "CAIRN_FRONTEND_MAX_OUTPUT" => Some("1000".to_string()),
            _ => None,
        };
        let l = Limits::from_flags(None, env).unwrap();
        assert_eq!((l.timeout, l.max_output), (Duration::from_millis(500), 1000));
        assert_eq!(Limits::from_flags(Some(2.0), env).unwrap().timeout, Duration::from_secs(2));
        let e = Limits::from_flags(Some(0.0), none).unwrap_err().to_string();
        assert!(e.contains("`--frontend-timeout`"), "{e}");
        let e = Limits::from_flags(None, |_| Some("soon".to_string())).unwrap_err().to_string();
        assert!(e.contains("CAIRN_FRONTEND_TIMEOUT `soon`"), "{e}");
    }
}
