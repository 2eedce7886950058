//! The operations a vertex can hold. Every field here is part of the vertex digest, so
//! nothing here may describe *where* an op came from (names, lines, progress groups live in
//! [`crate::VertexMeta`]). Field order is the canonical encoding order: append new fields
//! at the end and bump [`crate::FORMAT_VERSION`] (see SPEC.md, "Compatibility").

use serde::{Deserialize, Serialize};

use crate::Digest;

/// A reference to output `index` of the vertex with digest `digest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Input {
    pub digest: Digest,
    pub index: u32,
}

/// One node of the build graph: an op and the outputs of other vertices it reads.
/// Its digest is sha256 over the canonical encoding of this struct (see [`crate::encode`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Vertex {
    pub inputs: Vec<Input>,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    Source(SourceOp),
    Exec(ExecOp),
    File(FileOp),
    Merge(MergeOp),
    Diff(DiffOp),
}

impl Op {
    /// Short lower-case name used in listings: `source`, `exec`, `file`, `merge`, `diff`.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Source(_) => "source",
            Op::Exec(_) => "exec",
            Op::File(_) => "file",
            Op::Merge(_) => "merge",
            Op::Diff(_) => "diff",
        }
    }

    /// How many outputs the op has. Exec: one per mount with `output: Some(_)` (the root
    /// mount's output is index 0); every other op: exactly one.
    pub fn output_count(&self) -> u32 {
        match self {
            Op::Exec(e) => e.mounts.iter().filter_map(|m| m.output).max().map_or(0, |m| m + 1),
            _ => 1,
        }
    }
}

/// An OCI platform, e.g. `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: String,
}

impl Platform {
    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<Platform> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        match parts.as_slice() {
            [os, arch] => Some(Platform::new(os, arch, "")),
            [os, arch, variant] => Some(Platform::new(os, arch, variant)),
            _ => None,
        }
    }

    pub fn new(os: &str, arch: &str, variant: &str) -> Platform {
        Platform { os: os.to_string(), architecture: arch.to_string(), variant: variant.to_string() }
    }

    /// The platform of the machine running this code, in OCI/Go naming.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        let variant = if arch == "arm64" { "v8" } else { "" };
        Platform::new(std::env::consts::OS, arch, variant)
    }

    /// The platform with its default variant spelled out, as containerd's platform
    /// matcher normalises: `arm64` is `arm64/v8`, `arm` is `arm/v7`. Two platforms name
    /// the same machine when their normalised forms are equal.
    pub fn normalized(&self) -> Platform {
        let variant = match (self.architecture.as_str(), self.variant.as_str()) {
            ("arm64", "") => "v8",
            ("arm", "") => "v7",
            (_, v) => v,
        };
        Platform::new(&self.os, &self.architecture, variant)
    }

    /// Whether `self` and `other` name the same machine ([`Platform::normalized`]).
    pub fn same_as(&self, other: &Platform) -> bool {
        self.normalized() == other.normalized()
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// A leaf vertex: it has no inputs and produces one filesystem tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SourceOp {
    /// The empty tree.
    Scratch,
    /// A container image's root filesystem. `reference` is normalized
    /// (`docker.io/library/alpine:3.20`, optionally `@sha256:…`).
    Image { reference: String, platform: Platform },
    /// A directory given by the client, `name` is `context` for the main build context or
    /// the name of a `--build-context`. Only paths matching `include` (all, when empty) and
    /// not matching `exclude` are visible; patterns are .dockerignore patterns (SPEC.md).
    Local { name: String, include: Vec<String>, exclude: Vec<String> },
    /// A single file downloaded from `url`. `checksum` (`sha256:…`) must match when set.
    /// The file is written as `/<filename>` with `mode` (default 0o600, as BuildKit does).
    Http { url: String, checksum: Option<Digest>, filename: String, mode: Option<u32> },
    /// A git repository checked out at `reference` (branch, tag or commit; empty = HEAD).
    Git { remote: String, reference: String, subdir: String, keep_git_dir: bool },
}

/// Run a process in a sandbox over mounted inputs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExecOp {
    pub meta: ExecMeta,
    pub network: NetworkMode,
    pub security: SecurityMode,
    /// The first mount must target `/` (the root filesystem).
    pub mounts: Vec<Mount>,
    /// Secrets exposed as environment variables (`RUN --mount=type=secret,env=X`).
    pub secret_env: Vec<SecretEnv>,
    /// The platform the process is built for (its stage's: `FROM --platform=…`, else the
    /// target). A runtime on another machine runs it under emulation. Version 3; omitted
    /// from the encoding when absent (an older file), which means the platform of the
    /// output being built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExecMeta {
    pub args: Vec<String>,
    /// `KEY=value` in order; exactly the process environment. A list, or a node of a
    /// chain shared with other execs and encoded by digest (see [`crate::Env`]), so that
    /// n steps of a growing environment cost O(n), not O(n²) (issue 13).
    pub env: crate::Env,
    /// Absolute working directory, created if missing.
    pub cwd: String,
    /// `user[:group]`, names or numeric ids, resolved in the root filesystem; empty = root.
    pub user: String,
    pub hostname: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NetworkMode {
    /// The runtime's default (host network for cairn's embedded sandbox).
    Default,
    Host,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SecurityMode {
    Sandbox,
    Insecure,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mount {
    /// Index into the vertex's `inputs`; `None` mounts an empty directory.
    pub input: Option<u32>,
    /// Sub-path of the input to mount (`/` or empty = the whole tree). Not part of the
    /// cache key (the content hash of the selected path is).
    pub selector: String,
    /// Absolute path inside the container.
    pub target: String,
    pub readonly: bool,
    /// Output index under which the mount's resulting tree is exported; `None` = discarded.
    pub output: Option<u32>,
    pub kind: MountKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MountKind {
    Bind,
    Cache { id: String, sharing: CacheSharing, mode: u32, uid: u32, gid: u32 },
    Tmpfs { size: u64 },
    Secret { id: String, required: bool, mode: u32, uid: u32, gid: u32 },
    Ssh { id: String, required: bool, mode: u32, uid: u32, gid: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CacheSharing {
    Shared,
    Private,
    Locked,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SecretEnv {
    pub id: String,
    pub name: String,
    pub required: bool,
}

/// Ordered filesystem actions. The op's single output is the result of the last action.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileOp {
    pub actions: Vec<FileAction>,
}

/// Where an action reads a tree from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FileRef {
    /// The empty tree.
    Scratch,
    /// Index into the vertex's `inputs`.
    Input(u32),
    /// The result of an earlier action of the same op (index into `actions`).
    Action(u32),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileAction {
    /// The tree the action modifies.
    pub base: FileRef,
    pub kind: FileActionKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FileActionKind {
    Copy(CopyAction),
    Mkdir { path: String, mode: u32, make_parents: bool, owner: Option<Owner>, timestamp: Option<i64> },
    Mkfile { path: String, mode: u32, data: Vec<u8>, owner: Option<Owner>, timestamp: Option<i64> },
    Rm { path: String, allow_not_found: bool, allow_wildcard: bool },
    Symlink { target: String, link_path: String, owner: Option<Owner>, timestamp: Option<i64> },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CopyAction {
    /// The tree the sources are read from.
    pub src: FileRef,
    /// Absolute paths in `src`; with `allow_wildcard` they are glob patterns.
    pub src_paths: Vec<String>,
    /// Absolute destination in the base tree. A trailing `/` means "into this directory".
    pub dest: String,
    pub owner: Option<Owner>,
    /// Permission bits to set on every copied file and directory.
    pub mode: Option<u32>,
    pub follow_symlinks: bool,
    /// Copy a directory's contents rather than the directory itself.
    pub dir_contents_only: bool,
    pub allow_wildcard: bool,
    /// A wildcard matching nothing is not an error.
    pub allow_empty_wildcard: bool,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub create_dest_path: bool,
    /// Unpack a source that is a recognized archive (tar, optionally compressed).
    pub unpack_archive: bool,
    /// Keep the source's directory structure below the context (`COPY --parents`).
    pub parents: bool,
    /// Clamp all timestamps to this Unix time (SOURCE_DATE_EPOCH).
    pub timestamp: Option<i64>,
    /// A symbolic mode (`u+x,go-w`, [`crate::chmod`]) applied to every copied entry's
    /// permission bits instead of `mode` (version 2; omitted from the encoding when absent,
    /// so a version 1 value encodes as before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode_str: Option<String>,
}

impl CopyAction {
    /// A plain copy of `src_paths` of `src` to `dest`: symlinks followed, a directory's
    /// contents, the destination path created, no wildcards, owner, mode or filters. Callers
    /// change what they need with struct update syntax.
    pub fn new(src: FileRef, src_paths: Vec<String>, dest: impl Into<String>) -> CopyAction {
        CopyAction {
            src,
            src_paths,
            dest: dest.into(),
            owner: None,
            mode: None,
            follow_symlinks: true,
            dir_contents_only: true,
            allow_wildcard: false,
            allow_empty_wildcard: false,
            include: Vec::new(),
            exclude: Vec::new(),
            create_dest_path: true,
            unpack_archive: false,
            parents: false,
            timestamp: None,
            mode_str: None,
        }
    }
}

/// `user[:group]` for chown; names are resolved in the destination tree's `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Owner {
    pub user: IdOrName,
    pub group: Option<IdOrName>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IdOrName {
    Id(u32),
    Name(String),
}

/// Layers its inputs in order: input 0 at the bottom.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MergeOp {}

/// The changes that turn input 0 (lower) into input 1 (upper).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DiffOp {}
