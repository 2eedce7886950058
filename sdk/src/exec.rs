//! `Exec`: a process over a state, with its mounts, as `client/llb`'s `State.Run` builds
//! an ExecOp. The root mount is the state itself (input 0, output 0); every other mount
//! reads another state (bind, a seeded cache) or none (cache, tmpfs, secret, ssh), and a
//! read-write bind may be exported as an output of its own.
//!
//! Every mount with a source is its own input, in mount order, even when two mounts read
//! the same state: the Dockerfile frontend has always lowered `RUN --mount` that way, and
//! its digests must not change.

use cairn_ir::{
    CacheSharing, ExecMeta, ExecOp, Mount as IrMount, MountKind, NetworkMode, Op, Platform, SecretEnv, SecurityMode,
    VertexMeta,
};

use crate::env::{exec_env, Env};
use crate::error::{Error, ErrorKind};
use crate::node::Out;
use crate::state::{resolve, State};

/// One mount of an [`Exec`] other than the root: what it mounts and how.
#[derive(Debug, Clone)]
pub struct Mount {
    source: Option<State>,
    selector: String,
    readonly: bool,
    output: bool,
    kind: MountKind,
}

impl Mount {
    /// A mount of `kind` as the IR spells it, read-only, without a source: for a frontend
    /// that reads mount options itself (the Dockerfile frontend's `RUN --mount`).
    pub fn of(kind: MountKind) -> Mount {
        Mount { source: None, selector: String::new(), readonly: true, output: false, kind }
    }

    /// `source`'s tree, read-only.
    pub fn bind(source: &State) -> Mount {
        Mount::of(MountKind::Bind).source(source)
    }

    /// A persistent cache directory `id`, shared, created empty with mode 0o755 owned by
    /// root (seed it from a tree with [`Mount::source`]).
    pub fn cache(id: &str) -> Mount {
        let kind = MountKind::Cache { id: id.to_string(), sharing: CacheSharing::Shared, mode: 0o755, uid: 0, gid: 0 };
        Mount { readonly: false, ..Mount::of(kind) }
    }

    /// A fresh tmpfs of `size` bytes (0: the runtime's default).
    pub fn tmpfs(size: u64) -> Mount {
        Mount { readonly: false, ..Mount::of(MountKind::Tmpfs { size }) }
    }

    /// The secret `id` as a read-only file, mode 0o400, owned by root, not required.
    pub fn secret(id: &str) -> Mount {
        Mount::of(MountKind::Secret { id: id.to_string(), required: false, mode: 0o400, uid: 0, gid: 0 })
    }

    /// The client's SSH agent `id` as a socket, mode 0o600, not required.
    pub fn ssh(id: &str) -> Mount {
        Mount::of(MountKind::Ssh { id: id.to_string(), required: false, mode: 0o600, uid: 0, gid: 0 })
    }

    /// The tree the mount reads (a bind's contents, a cache's seed).
    pub fn source(self, source: &State) -> Mount {
        Mount { source: Some(source.clone()), ..self }
    }

    /// Only this sub-path of the source (`/` or empty: all of it).
    pub fn selector(self, path: &str) -> Mount {
        Mount { selector: path.to_string(), ..self }
    }

    pub fn readonly(self, readonly: bool) -> Mount {
        Mount { readonly, ..self }
    }

    /// Export the mount's tree after the process as an output ([`ExecOutputs::mount`]);
    /// only a read-write bind has one.
    pub fn output(self) -> Mount {
        Mount { output: true, ..self }
    }

    /// A cache mount's sharing mode.
    pub fn sharing(mut self, sharing: CacheSharing) -> Mount {
        if let MountKind::Cache { sharing: s, .. } = &mut self.kind {
            *s = sharing;
        }
        self
    }

    /// A secret's or an agent's: whether a missing one fails the step.
    pub fn required(mut self, required: bool) -> Mount {
        if let MountKind::Secret { required: r, .. } | MountKind::Ssh { required: r, .. } = &mut self.kind {
            *r = required;
        }
        self
    }
}

/// The outputs of an exec: the root and every mount asked for with [`Mount::output`].
#[derive(Debug, Clone)]
pub struct ExecOutputs {
    pub root: State,
    pub mounts: Vec<(String, State)>,
}

impl ExecOutputs {
    /// The output of the mount at `target`.
    pub fn mount(&self, target: &str) -> Option<&State> {
        self.mounts.iter().find(|(t, _)| t == target).map(|(_, s)| s)
    }
}

/// A process under construction ([`State::run`]).
#[derive(Debug, Clone)]
pub struct Exec {
    base: State,
    args: Vec<String>,
    env: Env,
    cwd: String,
    user: String,
    hostname: String,
    platform: Option<Platform>,
    network: NetworkMode,
    security: SecurityMode,
    readonly_root: bool,
    mounts: Vec<(String, Mount)>,
    secret_env: Vec<SecretEnv>,
    meta: VertexMeta,
    error: Option<Error>,
}

impl Exec {
    pub(crate) fn new(base: State, args: Vec<String>) -> Exec {
        Exec {
            env: base.env_list().clone(),
            cwd: base.get_dir().to_string(),
            user: base.get_user().to_string(),
            hostname: String::new(),
            platform: base.get_platform().cloned(),
            network: base.get_network(),
            security: base.get_security(),
            readonly_root: false,
            mounts: Vec::new(),
            secret_env: Vec::new(),
            meta: VertexMeta::default(),
            error: None,
            args,
            base,
        }
    }

    fn fail(mut self, e: Error) -> Exec {
        self.error.get_or_insert(e);
        self
    }

    /// `key=value` in this process's environment only.
    pub fn env(self, key: &str, value: &str) -> Exec {
        match self.env.set(key, value) {
            Ok(env) => Exec { env, ..self },
            Err(e) => self.fail(e),
        }
    }

    /// This process's whole environment.
    pub fn with_env(self, env: Env) -> Exec {
        Exec { env, ..self }
    }

    /// The working directory (relative: joined onto the state's).
    pub fn dir(self, path: &str) -> Exec {
        let cwd = if path.is_empty() { self.cwd.clone() } else { resolve(&self.cwd, path) };
        Exec { cwd, ..self }
    }

    pub fn user(self, user: &str) -> Exec {
        Exec { user: user.to_string(), ..self }
    }

    pub fn hostname(self, hostname: &str) -> Exec {
        Exec { hostname: hostname.to_string(), ..self }
    }

    /// The platform the process is built for (default: the state's, else the host's).
    pub fn platform(self, platform: Platform) -> Exec {
        Exec { platform: Some(platform), ..self }
    }

    pub fn network(self, network: NetworkMode) -> Exec {
        Exec { network, ..self }
    }

    pub fn security(self, security: SecurityMode) -> Exec {
        Exec { security, ..self }
    }

    /// Mount the root filesystem read-only.
    pub fn readonly_root(self) -> Exec {
        Exec { readonly_root: true, ..self }
    }

    /// Adds a mount at `target` (relative: below the working directory).
    pub fn mount(mut self, target: &str, mount: Mount) -> Exec {
        let target = resolve(&self.cwd, target);
        let message = if target.trim_end_matches('/').is_empty() {
            Some(format!("A mount cannot target `{target}`: the root is the state itself"))
        } else if self.mounts.iter().any(|(t, _)| *t == target) {
            Some(format!("Two mounts target `{target}`"))
        } else if mount.output && (mount.readonly || mount.kind != MountKind::Bind) {
            Some(format!("The mount at `{target}` cannot be an output: only a read-write bind mount has one"))
        } else {
            None
        };
        match message {
            Some(m) => self.fail(Error::new(ErrorKind::Mount, m)),
            None => {
                self.mounts.push((target, mount));
                self
            }
        }
    }

    /// The secret `id` as the environment variable `name` of this process.
    pub fn secret_env(mut self, id: &str, name: &str, required: bool) -> Exec {
        if id.is_empty() || name.is_empty() || name.contains('=') {
            let message = format!("Invalid secret variable `{name}` for secret `{id}`: both need a name, without `=`");
            return self.fail(Error::new(ErrorKind::Exec, message));
        }
        self.secret_env.push(SecretEnv { id: id.to_string(), name: name.to_string(), required });
        self
    }

    /// The vertex's metadata (description, progress group, source locations).
    pub fn meta(self, meta: VertexMeta) -> Exec {
        Exec { meta, ..self }
    }

    /// The vertex's description, what progress shows.
    pub fn describe(self, description: &str) -> Exec {
        Exec { meta: VertexMeta { description: description.to_string(), ..self.meta }, ..self }
    }

    /// Builds the vertex; the state after the process.
    pub fn root(self) -> Result<State, Error> {
        Ok(self.finish()?.root)
    }

    /// Builds the vertex; the root and every mount output.
    pub fn finish(self) -> Result<ExecOutputs, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.args.is_empty() {
            return Err(Error::new(ErrorKind::Exec, "`run` needs a command: the argument list is empty"));
        }
        let mut inputs: Vec<Out> = Vec::new();
        let mut input = |s: &Option<State>| -> Option<u32> {
            let out = s.as_ref()?.out.clone()?;
            inputs.push(out);
            Some(inputs.len() as u32 - 1)
        };
        let root = IrMount {
            input: input(&Some(self.base.clone())),
            selector: String::new(),
            target: "/".into(),
            readonly: self.readonly_root,
            output: Some(0),
            kind: MountKind::Bind,
        };
        let mut mounts = vec![root];
        let mut outputs = Vec::new();
        for (target, m) in &self.mounts {
            let output = m.output.then(|| {
                outputs.push(target.clone());
                outputs.len() as u32
            });
            let (selector, readonly, kind) = (m.selector.clone(), m.readonly, m.kind.clone());
            mounts.push(IrMount { input: input(&m.source), selector, target: target.clone(), readonly, output, kind });
        }
        let platform = self.platform.unwrap_or_else(Platform::host).normalized();
        let op = ExecOp {
            meta: ExecMeta {
                args: self.args,
                env: exec_env(&self.env),
                cwd: self.cwd,
                user: self.user,
                hostname: self.hostname,
            },
            network: self.network,
            security: self.security,
            mounts,
            secret_env: self.secret_env,
            platform: Some(platform),
        };
        let out = Out::new(Op::Exec(op), inputs, self.meta);
        let at = |index: u32| self.base.at(Some(Out { node: out.node.clone(), index }));
        let mounts = outputs.into_iter().enumerate().map(|(i, t)| (t, at(i as u32 + 1))).collect();
        Ok(ExecOutputs { root: at(0), mounts })
    }
}
