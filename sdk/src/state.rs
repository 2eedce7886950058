//! `State`: an output of a vertex (or the empty tree) and the values later steps use —
//! environment, working directory, user, platform, network and security — as a
//! `client/llb` State carries them. States are immutable values: every method returns a
//! new one and the old one stays usable.

use cairn_ir::{
    reference, DiffOp, Digest, ImageConfig, MergeOp, NetworkMode, Op, Platform, SecurityMode, SourceOp, VertexMeta,
};

use crate::env::Env;
use crate::error::{Error, ErrorKind};
use crate::exec::Exec;
use crate::file::FileOps;
use crate::node::Out;
use crate::Build;

/// A filesystem tree to build on, and the values the next steps run with.
///
/// New states start with `PATH` set to [`crate::DEFAULT_PATH`], working directory `/`, user
/// root, no platform (the host's is used where one is needed), the default network and the
/// sandbox.
#[derive(Debug, Clone)]
pub struct State {
    /// `None`: the empty tree with no vertex (BuildKit's `llb.Scratch()`).
    pub(crate) out: Option<Out>,
    env: Env,
    cwd: String,
    user: String,
    platform: Option<Platform>,
    network: NetworkMode,
    security: SecurityMode,
}

/// Options of [`State::image_with`].
#[derive(Debug, Clone, Default)]
pub struct ImageOpts {
    /// The platform of the image to use (default: the host's).
    pub platform: Option<Platform>,
    pub meta: VertexMeta,
}

/// Options of [`State::local`]: which paths of the directory are visible
/// (`.dockerignore` patterns, SPEC.md §7.1).
#[derive(Debug, Clone, Default)]
pub struct LocalOpts {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub meta: VertexMeta,
}

/// Options of [`State::git`].
#[derive(Debug, Clone, Default)]
pub struct GitOpts {
    /// A branch, a tag or a commit; empty means HEAD.
    pub reference: String,
    /// Only this directory of the repository (empty: all of it).
    pub subdir: String,
    pub keep_git_dir: bool,
    pub meta: VertexMeta,
}

/// Options of [`State::http`].
#[derive(Debug, Clone, Default)]
pub struct HttpOpts {
    /// The content's sha256, checked by the runtime.
    pub checksum: Option<Digest>,
    /// The file's name in the tree (default: the URL's last path segment, or `index.html`).
    pub filename: Option<String>,
    /// Permission bits (default 0o600).
    pub mode: Option<u32>,
    pub meta: VertexMeta,
}

/// `path` made absolute against `cwd`; an absolute path is kept exactly as written.
pub(crate) fn resolve(cwd: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{}", cwd.trim_end_matches('/'), path)
    }
}

impl State {
    fn with_out(out: Option<Out>) -> State {
        State {
            out,
            env: Env::default(),
            cwd: "/".into(),
            user: String::new(),
            platform: None,
            network: NetworkMode::Default,
            security: SecurityMode::Sandbox,
        }
    }

    fn source(op: SourceOp, meta: VertexMeta) -> State {
        State::with_out(Some(Out::new(Op::Source(op), Vec::new(), meta)))
    }

    /// The empty tree, with no vertex: file actions on it start from nothing, an exec on it
    /// runs in an empty root, and a [`merge`] leaves it out.
    pub fn scratch() -> State {
        State::with_out(None)
    }

    /// The empty tree as a vertex of its own (`SourceOp::Scratch`), for a frontend that
    /// shows its empty base as a step (the Dockerfile frontend's `FROM scratch`).
    pub fn scratch_source(meta: VertexMeta) -> State {
        State::source(SourceOp::Scratch, meta)
    }

    /// An image's root filesystem for the host platform; `reference` is normalized
    /// (`busybox` is `docker.io/library/busybox:latest`).
    pub fn image(reference: &str) -> Result<State, Error> {
        State::image_with(reference, ImageOpts::default())
    }

    /// An image's root filesystem with options. `reference` is normalized, or an
    /// `oci-layout://PATH[:TAG|@DIGEST]` kept as given.
    pub fn image_with(reference: &str, opts: ImageOpts) -> Result<State, Error> {
        let bad =
            |why: String| Error::new(ErrorKind::Reference, format!("Invalid image reference `{reference}`: {why}"));
        let reference = match reference.strip_prefix("oci-layout://") {
            Some("") => return Err(bad("the OCI layout path is empty".into())),
            Some(_) => reference.to_string(),
            None => reference::normalize(reference).map_err(bad)?,
        };
        let platform = opts.platform.unwrap_or_else(Platform::host);
        let op = SourceOp::Image { reference, platform: platform.clone() };
        Ok(State::source(op, opts.meta).platform(platform))
    }

    /// A directory the client gives under `name` (`context` is the main build context).
    pub fn local(name: &str, opts: LocalOpts) -> Result<State, Error> {
        if name.is_empty() {
            return Err(Error::new(ErrorKind::Source, "A local source needs a name (`context` for the build context)"));
        }
        let op = SourceOp::Local { name: name.to_string(), include: opts.include, exclude: opts.exclude };
        Ok(State::source(op, opts.meta))
    }

    /// A git repository checked out at `opts.reference`.
    pub fn git(remote: &str, opts: GitOpts) -> Result<State, Error> {
        if remote.trim().is_empty() {
            return Err(Error::new(ErrorKind::Source, "A git source needs a remote"));
        }
        let op = SourceOp::Git {
            remote: remote.to_string(),
            reference: opts.reference,
            subdir: opts.subdir,
            keep_git_dir: opts.keep_git_dir,
        };
        Ok(State::source(op, opts.meta))
    }

    /// One file downloaded from an `http://` or `https://` URL.
    pub fn http(url: &str, opts: HttpOpts) -> Result<State, Error> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            let message = format!("Invalid URL `{url}`: an http source needs `http://` or `https://`");
            return Err(Error::new(ErrorKind::Source, message));
        }
        let filename = opts.filename.unwrap_or_else(|| {
            let path = url.split(['?', '#']).next().unwrap_or("");
            let name = path.rsplit('/').next().unwrap_or("");
            if name.is_empty() || path.matches('/').count() < 3 { "index.html" } else { name }.to_string()
        });
        if filename.is_empty() || filename.contains('/') {
            let message = format!("Invalid file name `{filename}` for `{url}`: it must be non-empty and hold no `/`");
            return Err(Error::new(ErrorKind::Source, message));
        }
        let op = SourceOp::Http { url: url.to_string(), checksum: opts.checksum, filename, mode: opts.mode };
        Ok(State::source(op, opts.meta))
    }

    /// This state over the output `out` (the values kept).
    pub(crate) fn at(&self, out: Option<Out>) -> State {
        State { out, ..self.clone() }
    }

    /// Whether this is the empty tree without a vertex ([`State::scratch`]).
    pub fn is_scratch(&self) -> bool {
        self.out.is_none()
    }

    /// The digest of the vertex this state is an output of (`None` for [`State::scratch`]).
    pub fn digest(&self) -> Option<Digest> {
        self.out.as_ref()?;
        let mut b = Build::new();
        b.output_for(Platform::host(), self, ImageConfig::default());
        let g = b.graph();
        let root = g.outputs[0].root.node;
        Some(g.digests()[root])
    }

    /// This state with `key=value` in its environment.
    pub fn env(self, key: &str, value: &str) -> Result<State, Error> {
        Ok(State { env: self.env.set(key, value)?, ..self })
    }

    /// This state with the whole environment replaced.
    pub fn with_env(self, env: Env) -> State {
        State { env, ..self }
    }

    /// The value of an environment variable.
    pub fn get_env(&self, key: &str) -> Option<String> {
        self.env.get(key)
    }

    /// The environment.
    pub fn env_list(&self) -> &Env {
        &self.env
    }

    /// This state with the working directory `path` (a relative one is joined onto the
    /// current one; an absolute one is kept as written; empty changes nothing).
    pub fn dir(self, path: &str) -> State {
        if path.is_empty() {
            return self;
        }
        let cwd = resolve(&self.cwd, path);
        State { cwd, ..self }
    }

    pub fn get_dir(&self) -> &str {
        &self.cwd
    }

    /// This state with the user later steps run as (`user[:group]`, empty for root).
    pub fn user(self, user: &str) -> State {
        State { user: user.to_string(), ..self }
    }

    pub fn get_user(&self) -> &str {
        &self.user
    }

    /// This state with the platform its processes are built for.
    pub fn platform(self, platform: Platform) -> State {
        State { platform: Some(platform), ..self }
    }

    pub fn get_platform(&self) -> Option<&Platform> {
        self.platform.as_ref()
    }

    /// This state with the network of its processes.
    pub fn network(self, network: NetworkMode) -> State {
        State { network, ..self }
    }

    pub fn get_network(&self) -> NetworkMode {
        self.network
    }

    /// This state with the security mode of its processes.
    pub fn security(self, security: SecurityMode) -> State {
        State { security, ..self }
    }

    pub fn get_security(&self) -> SecurityMode {
        self.security
    }

    /// A process run over this state: `args` is the argv. Finish with
    /// [`Exec::root`] or [`Exec::finish`].
    pub fn run<I, S>(&self, args: I) -> Exec
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Exec::new(self.clone(), args.into_iter().map(Into::into).collect())
    }

    /// A shell command: `/bin/sh -c script`.
    pub fn run_shell(&self, script: &str) -> Exec {
        self.run(["/bin/sh", "-c", script])
    }

    /// File actions on this state, chained in one vertex. Finish with [`FileOps::state`].
    pub fn file(&self) -> FileOps {
        FileOps::new(self.clone())
    }

    /// `mkdir -p -m 0755 path` (relative to the working directory).
    pub fn mkdir(&self, path: &str) -> Result<State, Error> {
        self.file().mkdir(path, Default::default()).state()
    }

    /// A file at `path` with `data`, mode 0o644.
    pub fn mkfile(&self, path: &str, data: impl Into<Vec<u8>>) -> Result<State, Error> {
        self.file().mkfile(path, data, Default::default()).state()
    }

    /// `rm -r path`; a missing path is an error when the step runs.
    pub fn rm(&self, path: &str) -> Result<State, Error> {
        self.file().rm(path, Default::default()).state()
    }

    /// `src_path` of `src` copied to `dest` (relative to this state's working directory).
    pub fn copy(&self, src: &State, src_path: &str, dest: &str) -> Result<State, Error> {
        self.file().copy(src, src_path, dest, Default::default()).state()
    }

    /// An image config describing this state: its environment, working directory, user
    /// and platform (the host's when it has none).
    pub fn image_config(&self) -> ImageConfig {
        let p = self.platform.clone().unwrap_or_else(Platform::host);
        let mut c = ImageConfig { architecture: p.architecture, os: p.os, ..Default::default() };
        c.variant = (!p.variant.is_empty()).then_some(p.variant);
        c.config.env = Some(self.env.entries().to_vec());
        c.config.working_dir = Some(self.cwd.clone());
        c.config.user = (!self.user.is_empty()).then(|| self.user.clone());
        c.rootfs.kind = "layers".into();
        c
    }

    /// A Definition with this state as its one output, for its platform (the host's when
    /// it has none) and with [`State::image_config`] as the config.
    pub fn definition(&self) -> Result<cairn_ir::Definition, Error> {
        let mut b = Build::new();
        b.output(self, self.image_config());
        b.definition()
    }
}

/// The trees of `states` layered in order, the first at the bottom (a [`State::scratch`]
/// adds nothing and is left out; one tree left is returned as is). The values (env, …) are
/// the first state's.
pub fn merge(states: &[State]) -> Result<State, Error> {
    merge_with(states, VertexMeta::default())
}

/// [`merge`] with the merge vertex's metadata.
pub fn merge_with(states: &[State], meta: VertexMeta) -> Result<State, Error> {
    let Some(first) = states.first() else {
        return Err(Error::new(ErrorKind::Merge, "`merge` needs at least one state"));
    };
    let outs: Vec<Out> = states.iter().filter_map(|s| s.out.clone()).collect();
    Ok(match outs.len() {
        0 => first.at(None),
        1 => first.at(outs.into_iter().next()),
        _ => first.at(Some(Out::new(Op::Merge(MergeOp {}), outs, meta))),
    })
}

/// The changes that turn `lower` into `upper` (added and modified paths, deletions as
/// whiteouts). From [`State::scratch`] that is `upper` itself. The values are `upper`'s.
pub fn diff(lower: &State, upper: &State) -> Result<State, Error> {
    diff_with(lower, upper, VertexMeta::default())
}

/// [`diff`] with the diff vertex's metadata.
pub fn diff_with(lower: &State, upper: &State, meta: VertexMeta) -> Result<State, Error> {
    let Some(low) = lower.out.clone() else {
        return Ok(upper.clone());
    };
    let up = match &upper.out {
        Some(o) => o.clone(),
        None => Out::new(Op::Source(SourceOp::Scratch), Vec::new(), VertexMeta::default()),
    };
    Ok(upper.at(Some(Out::new(Op::Diff(DiffOp {}), vec![low, up], meta))))
}
