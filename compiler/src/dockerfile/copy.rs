//! COPY and ADD: one file vertex per instruction, one copy action per source.
//!
//! Sources come from the build context (a local source), `--from` (a stage, a named
//! context or an image), heredocs (a `mkfile` on scratch, its own vertex), and for
//! ADD also URLs (an http source) and git repositories (a git source). Files from the
//! context, heredocs and downloads are owned by root unless `--chown` says otherwise, as in
//! Docker; files from another stage or image keep their owners. `--link` copies onto scratch
//! and merges the result over the stage, so the layer does not depend on what is below it.

use cairn_grammar::ast::{Heredoc, Instruction};
use cairn_ir::chmod::SymbolicMode;
use cairn_ir::{CopyAction, Digest, FileAction, FileActionKind, FileRef, IdOrName, Owner, SourceOp, VertexMeta};

use super::instructions::{CopyCommand, CopySource, Word};
use super::state::{abs_path, clean_path, parse_owner, PlatformCtx, State};
use super::{location, Lowerer};
use crate::error::{CompileError, ErrorKind};
use crate::graph::Ref;

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// `git@host:repo`, `git://…`, `ssh://…`, or an http(s) URL ending in `.git` (optionally
/// with `#ref[:subdir]`).
fn is_git(s: &str) -> bool {
    let base = s.split('#').next().unwrap_or(s);
    s.starts_with("git@") || s.starts_with("git://") || s.starts_with("ssh://") || (is_url(s) && base.ends_with(".git"))
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The file vertex's inputs: 0 is the stage (unless `--link`), then each source tree.
struct Inputs {
    refs: Vec<Ref>,
    /// The build context's position, shared by every context source.
    context: Option<u32>,
}

impl Inputs {
    fn push(&mut self, r: Ref) -> FileRef {
        self.refs.push(r);
        FileRef::Input(self.refs.len() as u32 - 1)
    }

    fn context(&mut self, lw: &mut Lowerer) -> FileRef {
        match self.context {
            Some(i) => FileRef::Input(i),
            None => {
                let r = self.push(lw.context_node());
                self.context = Some(self.refs.len() as u32 - 1);
                r
            }
        }
    }
}

/// `--chmod`'s two forms.
enum Chmod {
    Octal(u32),
    Symbolic(String),
}

/// What every source of one instruction shares, read from the flags.
struct Shared {
    /// The copy action before its source is filled in.
    base: CopyAction,
    /// `--chown`'s owner, or root: what context, heredoc and download files get.
    owner_or_root: Option<Owner>,
    checksum: Option<Digest>,
    from: Option<Ref>,
}

/// The destination, absolute; a directory keeps its trailing `/`.
fn destination(lw: &Lowerer, st: &State, c: &CopyCommand, kw: &str) -> Result<String, CompileError> {
    let d = c.dest.node.as_str();
    let mut dest = abs_path(&st.workdir(), d);
    if (d.ends_with('/') || d == "." || d.ends_with("/.") || d == "..") && !dest.ends_with('/') {
        dest.push('/');
    }
    if c.sources.len() > 1 && !dest.ends_with('/') {
        return Err(lw.err(
            ErrorKind::Instruction,
            c.dest.span,
            format!(
                "When using `{kw}` with more than one source file, the destination must be a directory and end with a `/`"
            ),
        ));
    }
    Ok(dest)
}

/// Reads the flags every source shares; resolves `--from` (which may lower a stage).
fn shared(
    lw: &mut Lowerer,
    pc: &mut PlatformCtx,
    st: &State,
    ins: &Instruction,
    c: &CopyCommand,
) -> Result<Shared, CompileError> {
    let err = |lw: &Lowerer, w: &Word, message: String| lw.err(ErrorKind::Instruction, w.span, message);
    // Octal, or symbolic (`u+x,go-w`, Dockerfile 1.14) carried as text for the runtime.
    let chmod = c.chmod.last_valid(|w| {
        if w.node.bytes().all(|b| b.is_ascii_digit()) {
            let m = u32::from_str_radix(&w.node, 8).ok().filter(|m| *m <= 0o7777);
            let message = format!("`--chmod={}`: expected an octal mode between 0 and 07777", w.node);
            return m.map(Chmod::Octal).ok_or_else(|| err(lw, w, message));
        }
        SymbolicMode::parse(&w.node).map(|_| Chmod::Symbolic(w.node.clone())).map_err(|_| {
            err(
                lw,
                w,
                format!("`--chmod={}`: expected an octal mode such as 0755 or a symbolic one such as u+x,go-w", w.node),
            )
        })
    })?;
    let (mode, mode_str) = match chmod {
        Some(Chmod::Octal(m)) => (Some(m), None),
        Some(Chmod::Symbolic(s)) => (None, Some(s)),
        None => (None, None),
    };
    let checksum = c.checksum.last_valid(|w| {
        let message = format!("`--checksum={}`: expected `sha256:` followed by 64 hex digits", w.node);
        w.node.parse::<Digest>().map_err(|_| err(lw, w, message))
    })?;
    let dest = destination(lw, st, c, ins.keyword.as_str())?;
    let owner = match c.chown.last() {
        Some(w) => Some(
            parse_owner(&w.node).ok_or_else(|| lw.err(ErrorKind::Instruction, ins.span, "`--chown` needs a user"))?,
        ),
        None => None,
    };
    let from = match c.from.last() {
        Some(w) => Some(lw.resolve_from(pc, st, &w.node, ins.span)?),
        None => None,
    };
    let root = Owner { user: IdOrName::Id(0), group: Some(IdOrName::Id(0)) };
    let base = CopyAction {
        src: FileRef::Scratch,
        src_paths: Vec::new(),
        dest,
        owner: owner.clone(),
        mode,
        follow_symlinks: true,
        dir_contents_only: true,
        allow_wildcard: false,
        allow_empty_wildcard: true,
        include: Vec::new(),
        exclude: c.exclude.iter().map(|w| w.node.clone()).collect(),
        create_dest_path: true,
        unpack_archive: false,
        parents: c.parents,
        timestamp: None,
        mode_str,
    };
    Ok(Shared { base, owner_or_root: owner.or(Some(root)), checksum, from })
}

/// The body becomes a file on scratch (its own vertex, so the same body is shared and
/// cached once), then a copy source like any other.
fn heredoc_copy(lw: &mut Lowerer, h: &Heredoc, sh: &Shared, inputs: &mut Inputs) -> CopyAction {
    let meta = VertexMeta { description: format!("heredoc {}", h.name), ..Default::default() };
    let file = lw.graph.mkfile(&format!("/{}", h.name), 0o644, h.content.clone().into_bytes(), meta);
    CopyAction {
        src: inputs.push(file),
        src_paths: vec![format!("/{}", h.name)],
        owner: sh.owner_or_root.clone(),
        parents: false,
        ..sh.base.clone()
    }
}

/// ADD of a git repository (`URL#REF[:SUBDIR]`) or a URL: a source vertex, copied whole.
fn remote_copy(
    lw: &mut Lowerer,
    ins: &Instruction,
    c: &CopyCommand,
    src: &str,
    sh: &Shared,
    inputs: &mut Inputs,
) -> CopyAction {
    let meta = |description: String| VertexMeta { description, locations: vec![location(ins)], ..Default::default() };
    let (op, description, path) = if is_git(src) {
        let (remote, frag) = src.split_once('#').unwrap_or((src, ""));
        let (reference, subdir) = frag.split_once(':').unwrap_or((frag, ""));
        let (remote, reference, subdir) = (remote.to_string(), reference.to_string(), subdir.to_string());
        (SourceOp::Git { remote, reference, subdir, keep_git_dir: c.keep_git_dir }, format!("git {src}"), "/".into())
    } else {
        let path = src.split(['?', '#']).next().unwrap_or("");
        let name = path.rsplit('/').next().filter(|n| !n.is_empty() && !path.ends_with("//")).unwrap_or("index.html");
        let mode = sh.base.mode;
        let op = SourceOp::Http { url: src.to_string(), checksum: sh.checksum, filename: name.to_string(), mode };
        (op, src.to_string(), format!("/{name}"))
    };
    let node = lw.graph.source(op, meta(description));
    // A download is unpacked only with `--unpack` (BuildKit); a repository never.
    let unpack_archive = !is_git(src) && c.unpack == Some(true);
    CopyAction {
        src: inputs.push(node),
        src_paths: vec![path],
        owner: sh.owner_or_root.clone(),
        unpack_archive,
        ..sh.base.clone()
    }
}

/// A path in the build context or in the `--from` tree.
fn tree_copy(lw: &mut Lowerer, c: &CopyCommand, src: &str, sh: &Shared, inputs: &mut Inputs) -> CopyAction {
    let input = match sh.from {
        Some(t) => inputs.push(t),
        None => inputs.context(lw),
    };
    // `--parents` keeps BuildKit's `/./` pivot: what follows it is the path kept below
    // the destination.
    let path = match src.split_once("/./").filter(|_| c.parents) {
        Some((before, after)) => {
            let before = clean_path(&format!("/{before}"));
            format!("{}/./{}", before.trim_end_matches('/'), clean_path(&format!("/{after}")).trim_start_matches('/'))
        }
        None => clean_path(&format!("/{src}")),
    };
    CopyAction {
        src: input,
        src_paths: vec![path],
        allow_wildcard: has_wildcard(src),
        owner: if sh.from.is_some() { sh.base.owner.clone() } else { sh.owner_or_root.clone() },
        unpack_archive: c.unpack.unwrap_or(c.add && sh.from.is_none()),
        ..sh.base.clone()
    }
}

pub(super) fn dispatch_copy(
    lw: &mut Lowerer,
    pc: &mut PlatformCtx,
    st: &mut State,
    ins: &Instruction,
    c: CopyCommand,
    written: &str,
) -> Result<(), CompileError> {
    let sh = shared(lw, pc, st, ins, &c)?;
    let mut inputs = Inputs { refs: if c.link { Vec::new() } else { vec![st.root] }, context: None };
    let mut copies = Vec::new();
    for s in &c.sources {
        copies.push(match s {
            CopySource::Heredoc(h) => heredoc_copy(lw, h, &sh, &mut inputs),
            CopySource::Path(w) if c.add && sh.from.is_none() && (is_git(&w.node) || is_url(&w.node)) => {
                remote_copy(lw, ins, &c, &w.node, &sh, &mut inputs)
            }
            CopySource::Path(w) => {
                if sh.checksum.is_some() && sh.from.is_none() {
                    let message = "`--checksum` can only be used with a URL source";
                    return Err(lw.err(ErrorKind::Instruction, ins.span, message));
                }
                tree_copy(lw, &c, &w.node, &sh, &mut inputs)
            }
        });
    }
    // Chain the copies: each one modifies the result of the previous one.
    let mut actions: Vec<FileAction> = Vec::new();
    let mut prev = if c.link { FileRef::Scratch } else { FileRef::Input(0) };
    for copy in copies {
        actions.push(FileAction { base: prev, kind: FileActionKind::Copy(copy) });
        prev = FileRef::Action(actions.len() as u32 - 1);
    }
    // Same source tree twice (two --from copies) should be one input.
    let mut refs = inputs.refs;
    dedup_inputs(&mut refs, &mut actions);
    let meta = lw.meta(ins, st, written.to_string());
    let file = lw.graph.file(actions, refs, meta.clone());
    st.root = if c.link {
        lw.graph.merge(vec![st.root, file], VertexMeta { description: format!("{written} (link)"), ..meta })
    } else {
        file
    };
    st.history(format!("{} # buildkit", written), false);
    Ok(())
}

/// Merges equal inputs (the same stage used by two sources) and renumbers references.
fn dedup_inputs(inputs: &mut Vec<Ref>, actions: &mut [FileAction]) {
    let mut map: Vec<u32> = Vec::with_capacity(inputs.len());
    let mut out: Vec<Ref> = Vec::new();
    for r in inputs.iter() {
        match out.iter().position(|o| o == r) {
            Some(p) => map.push(p as u32),
            None => {
                map.push(out.len() as u32);
                out.push(*r);
            }
        }
    }
    let fix = |f: &mut FileRef| {
        if let FileRef::Input(i) = f {
            *i = map[*i as usize];
        }
    };
    for a in actions.iter_mut() {
        fix(&mut a.base);
        if let FileActionKind::Copy(c) = &mut a.kind {
            fix(&mut c.src);
        }
    }
    *inputs = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_kinds() {
        assert!(is_git("https://github.com/o/r.git#v1:sub"));
        assert!(is_git("git@github.com:o/r.git"));
        assert!(!is_git("https://example.com/a.tar.gz"));
        assert!(is_url("https://example.com/a.tar.gz"));
        assert!(has_wildcard("*.go"));
        assert!(!has_wildcard("main.go"));
    }
}
