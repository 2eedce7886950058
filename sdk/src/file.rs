//! `FileOps`: file actions chained in one vertex (`client/llb`'s `State.File` with
//! `Mkdir(…).Mkfile(…)`): each action works on the result of the one before, the first on
//! the state itself. Sources of copies become inputs, one per distinct state (the same
//! output used twice is one input).
//!
//! Relative paths are resolved against the base state's working directory (a copy's
//! source path against its source state's); absolute paths are kept exactly as written, so
//! a trailing `/` (into a directory) or BuildKit's `/./` pivot of `--parents` survive.

use cairn_ir::{CopyAction, FileAction, FileActionKind, FileOp, FileRef, Op, Owner, VertexMeta};

use crate::error::{Error, ErrorKind};
use crate::node::Out;
use crate::state::{resolve, State};

/// Options of [`FileOps::mkdir`]; the default is `mkdir -p -m 0755`, owned by root.
#[derive(Debug, Clone)]
pub struct MkdirOpts {
    pub mode: u32,
    pub make_parents: bool,
    pub owner: Option<Owner>,
    /// The directory's mtime (Unix seconds).
    pub timestamp: Option<i64>,
}

impl Default for MkdirOpts {
    fn default() -> MkdirOpts {
        MkdirOpts { mode: 0o755, make_parents: true, owner: None, timestamp: None }
    }
}

/// Options of [`FileOps::mkfile`]; the default is mode 0o644, owned by root. The file's
/// directory must exist when the step runs (as in BuildKit): chain a [`FileOps::mkdir`]
/// first on a tree that lacks it.
#[derive(Debug, Clone)]
pub struct MkfileOpts {
    pub mode: u32,
    pub owner: Option<Owner>,
    pub timestamp: Option<i64>,
}

impl Default for MkfileOpts {
    fn default() -> MkfileOpts {
        MkfileOpts { mode: 0o644, owner: None, timestamp: None }
    }
}

/// Options of [`FileOps::rm`]; the default fails on a missing path, without wildcards.
#[derive(Debug, Clone, Default)]
pub struct RmOpts {
    pub allow_not_found: bool,
    pub allow_wildcard: bool,
}

/// Options of [`FileOps::copy`], the fields of the IR's `CopyAction` (SPEC.md §7.3) but
/// the source and paths. The default follows symlinks, copies a directory's contents and
/// creates the destination's parents; no wildcards, owner, mode or filters.
#[derive(Debug, Clone)]
pub struct CopyOpts {
    pub owner: Option<Owner>,
    pub mode: Option<u32>,
    /// A symbolic mode (`u+x,go-w`) instead of `mode`.
    pub mode_str: Option<String>,
    pub follow_symlinks: bool,
    pub dir_contents_only: bool,
    pub allow_wildcard: bool,
    pub allow_empty_wildcard: bool,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub create_dest_path: bool,
    pub unpack_archive: bool,
    pub parents: bool,
    pub timestamp: Option<i64>,
}

impl Default for CopyOpts {
    fn default() -> CopyOpts {
        CopyAction::new(FileRef::Scratch, Vec::new(), "").into()
    }
}

impl From<CopyAction> for CopyOpts {
    /// A copy action's options (everything but the source and the paths), for a frontend
    /// that fills in a `CopyAction` itself (the Dockerfile frontend).
    fn from(c: CopyAction) -> CopyOpts {
        CopyOpts {
            owner: c.owner,
            mode: c.mode,
            mode_str: c.mode_str,
            follow_symlinks: c.follow_symlinks,
            dir_contents_only: c.dir_contents_only,
            allow_wildcard: c.allow_wildcard,
            allow_empty_wildcard: c.allow_empty_wildcard,
            include: c.include,
            exclude: c.exclude,
            create_dest_path: c.create_dest_path,
            unpack_archive: c.unpack_archive,
            parents: c.parents,
            timestamp: c.timestamp,
        }
    }
}

/// File actions under construction ([`State::file`]).
#[derive(Debug, Clone)]
pub struct FileOps {
    base: State,
    inputs: Vec<Out>,
    actions: Vec<FileAction>,
    meta: VertexMeta,
    error: Option<Error>,
}

impl FileOps {
    pub(crate) fn new(base: State) -> FileOps {
        FileOps { base, inputs: Vec::new(), actions: Vec::new(), meta: VertexMeta::default(), error: None }
    }

    /// The input index of `s` (added once), or `Scratch` for the empty tree.
    fn input(&mut self, s: &State) -> FileRef {
        let Some(out) = &s.out else { return FileRef::Scratch };
        let i = match self.inputs.iter().position(|o| o.same(out)) {
            Some(i) => i,
            None => {
                self.inputs.push(out.clone());
                self.inputs.len() - 1
            }
        };
        FileRef::Input(i as u32)
    }

    /// What the next action modifies: the previous action's result, or the base state.
    fn next_base(&mut self) -> FileRef {
        match self.actions.len() {
            0 => {
                let base = self.base.clone();
                self.input(&base)
            }
            n => FileRef::Action(n as u32 - 1),
        }
    }

    fn path(&mut self, what: &str, path: &str) -> Option<String> {
        if path.is_empty() {
            let e = Error::new(ErrorKind::File, format!("`{what}` needs a path"));
            self.error.get_or_insert(e);
            return None;
        }
        Some(resolve(self.base.get_dir(), path))
    }

    fn push(mut self, kind: FileActionKind) -> FileOps {
        let base = self.next_base();
        self.actions.push(FileAction { base, kind });
        self
    }

    /// Creates the directory `path`.
    pub fn mkdir(mut self, path: &str, opts: MkdirOpts) -> FileOps {
        let Some(path) = self.path("mkdir", path) else { return self };
        let MkdirOpts { mode, make_parents, owner, timestamp } = opts;
        self.push(FileActionKind::Mkdir { path, mode, make_parents, owner, timestamp })
    }

    /// Creates or replaces the file `path` with `data`.
    pub fn mkfile(mut self, path: &str, data: impl Into<Vec<u8>>, opts: MkfileOpts) -> FileOps {
        let Some(path) = self.path("mkfile", path) else { return self };
        let MkfileOpts { mode, owner, timestamp } = opts;
        self.push(FileActionKind::Mkfile { path, mode, data: data.into(), owner, timestamp })
    }

    /// Removes `path` recursively.
    pub fn rm(mut self, path: &str, opts: RmOpts) -> FileOps {
        let Some(path) = self.path("rm", path) else { return self };
        self.push(FileActionKind::Rm {
            path,
            allow_not_found: opts.allow_not_found,
            allow_wildcard: opts.allow_wildcard,
        })
    }

    /// A symbolic link at `link_path` pointing to `target` (kept as written).
    pub fn symlink(mut self, target: &str, link_path: &str, owner: Option<Owner>) -> FileOps {
        let Some(link_path) = self.path("symlink", link_path) else { return self };
        if target.is_empty() {
            self.error.get_or_insert(Error::new(ErrorKind::File, "`symlink` needs a target"));
            return self;
        }
        self.push(FileActionKind::Symlink { target: target.to_string(), link_path, owner, timestamp: None })
    }

    /// Copies `src_path` of `src` to `dest`.
    pub fn copy(mut self, src: &State, src_path: &str, dest: &str, opts: CopyOpts) -> FileOps {
        let Some(dest) = self.path("copy", dest) else { return self };
        if src_path.is_empty() {
            self.error.get_or_insert(Error::new(ErrorKind::File, format!("`copy` to `{dest}` needs a source path")));
            return self;
        }
        if let Some(m) = opts.mode_str.as_deref() {
            if let Err(e) = cairn_ir::chmod::SymbolicMode::parse(m) {
                self.error.get_or_insert(Error::new(ErrorKind::File, format!("`copy` to `{dest}`: {e}")));
                return self;
            }
        }
        let base = self.next_base();
        let src_ref = self.input(src);
        let c = CopyAction {
            src: src_ref,
            src_paths: vec![resolve(src.get_dir(), src_path)],
            dest,
            owner: opts.owner,
            mode: opts.mode,
            follow_symlinks: opts.follow_symlinks,
            dir_contents_only: opts.dir_contents_only,
            allow_wildcard: opts.allow_wildcard,
            allow_empty_wildcard: opts.allow_empty_wildcard,
            include: opts.include,
            exclude: opts.exclude,
            create_dest_path: opts.create_dest_path,
            unpack_archive: opts.unpack_archive,
            parents: opts.parents,
            timestamp: opts.timestamp,
            mode_str: opts.mode_str,
        };
        self.actions.push(FileAction { base, kind: FileActionKind::Copy(c) });
        self
    }

    /// The vertex's metadata (description, progress group, source locations).
    pub fn meta(self, meta: VertexMeta) -> FileOps {
        FileOps { meta, ..self }
    }

    /// The vertex's description, what progress shows.
    pub fn describe(self, description: &str) -> FileOps {
        FileOps { meta: VertexMeta { description: description.to_string(), ..self.meta }, ..self }
    }

    /// Builds the vertex; the state after the last action (the base state's values kept).
    pub fn state(self) -> Result<State, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.actions.is_empty() {
            return Err(Error::new(ErrorKind::File, "A file op needs at least one action"));
        }
        let out = Out::new(Op::File(FileOp { actions: self.actions }), self.inputs, self.meta);
        Ok(self.base.at(Some(out)))
    }
}
