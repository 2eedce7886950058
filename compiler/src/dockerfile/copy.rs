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
use cairn_ir::{CopyAction, Digest, FileRef, IdOrName, Owner, VertexMeta};
use cairn_sdk::{GitOpts, HttpOpts, MkfileOpts, State as Tree};

use super::instructions::{CopyCommand, CopySource, Word};
use super::state::{abs_path, clean_path, parse_owner, PlatformCtx, State};
use super::{location, Lowerer};
use crate::error::{CompileError, ErrorKind};

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

/// The build context of one instruction: one local source, however many of its sources
/// read it (the SDK makes it one input of the file vertex).
struct Context(Option<Tree>);

impl Context {
    fn get(&mut self, lw: &mut Lowerer, ins: &Instruction) -> Result<Tree, CompileError> {
        if let Some(t) = &self.0 {
            return Ok(t.clone());
        }
        let t = lw.context_node(ins.span)?;
        self.0 = Some(t.clone());
        Ok(t)
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
    from: Option<Tree>,
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
fn heredoc_copy(
    lw: &mut Lowerer,
    ins: &Instruction,
    h: &Heredoc,
    sh: &Shared,
) -> Result<(Tree, CopyAction), CompileError> {
    let meta = VertexMeta { description: format!("heredoc {}", h.name), ..Default::default() };
    let path = format!("/{}", h.name);
    let opts = MkfileOpts { mode: 0o644, ..Default::default() };
    let file = Tree::scratch().file().mkfile(&path, h.content.clone().into_bytes(), opts).meta(meta).state();
    let file = file.map_err(|e| lw.sdk_err(ins.span, e))?;
    let copy = CopyAction { src_paths: vec![path], owner: sh.owner_or_root.clone(), parents: false, ..sh.base.clone() };
    Ok((file, copy))
}

/// ADD of a git repository (`URL#REF[:SUBDIR]`) or a URL: a source vertex, copied whole.
fn remote_copy(
    lw: &mut Lowerer,
    ins: &Instruction,
    c: &CopyCommand,
    src: &str,
    sh: &Shared,
) -> Result<(Tree, CopyAction), CompileError> {
    let meta = |description: String| VertexMeta { description, locations: vec![location(ins)], ..Default::default() };
    let (node, path) = if is_git(src) {
        let (remote, frag) = src.split_once('#').unwrap_or((src, ""));
        let (reference, subdir) = frag.split_once(':').unwrap_or((frag, ""));
        let (reference, subdir) = (reference.to_string(), subdir.to_string());
        let opts = GitOpts { reference, subdir, keep_git_dir: c.keep_git_dir, meta: meta(format!("git {src}")) };
        (Tree::git(remote, opts), "/".to_string())
    } else {
        let path = src.split(['?', '#']).next().unwrap_or("");
        let name = path.rsplit('/').next().filter(|n| !n.is_empty() && !path.ends_with("//")).unwrap_or("index.html");
        let opts = HttpOpts {
            checksum: sh.checksum,
            filename: Some(name.to_string()),
            mode: sh.base.mode,
            meta: meta(src.to_string()),
        };
        (Tree::http(src, opts), format!("/{name}"))
    };
    let node = node.map_err(|e| lw.sdk_err(ins.span, e))?;
    // A download is unpacked only with `--unpack` (BuildKit); a repository never.
    let unpack_archive = !is_git(src) && c.unpack == Some(true);
    let copy = CopyAction { src_paths: vec![path], owner: sh.owner_or_root.clone(), unpack_archive, ..sh.base.clone() };
    Ok((node, copy))
}

/// A path in the build context or in the `--from` tree.
fn tree_copy(
    lw: &mut Lowerer,
    ins: &Instruction,
    c: &CopyCommand,
    src: &str,
    sh: &Shared,
    context: &mut Context,
) -> Result<(Tree, CopyAction), CompileError> {
    let tree = match &sh.from {
        Some(t) => t.clone(),
        None => context.get(lw, ins)?,
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
    let copy = CopyAction {
        src_paths: vec![path],
        allow_wildcard: has_wildcard(src),
        owner: if sh.from.is_some() { sh.base.owner.clone() } else { sh.owner_or_root.clone() },
        unpack_archive: c.unpack.unwrap_or(c.add && sh.from.is_none()),
        ..sh.base.clone()
    };
    Ok((tree, copy))
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
    let mut context = Context(None);
    let mut copies = Vec::new();
    for s in &c.sources {
        copies.push(match s {
            CopySource::Heredoc(h) => heredoc_copy(lw, ins, h, &sh)?,
            CopySource::Path(w) if c.add && sh.from.is_none() && (is_git(&w.node) || is_url(&w.node)) => {
                remote_copy(lw, ins, &c, &w.node, &sh)?
            }
            CopySource::Path(w) => {
                if sh.checksum.is_some() && sh.from.is_none() {
                    let message = "`--checksum` can only be used with a URL source";
                    return Err(lw.err(ErrorKind::Instruction, ins.span, message));
                }
                tree_copy(lw, ins, &c, &w.node, &sh, &mut context)?
            }
        });
    }
    // The copies chain in one vertex, each on the result of the previous one; with
    // `--link` the first starts from nothing. The same source tree twice is one input.
    let mut file = if c.link { Tree::scratch().file() } else { st.root.file() };
    for (tree, copy) in copies {
        let (src_path, dest) = (copy.src_paths[0].clone(), copy.dest.clone());
        file = file.copy(&tree, &src_path, &dest, copy.into());
    }
    let meta = lw.meta(ins, st, written.to_string());
    let file = file.meta(meta.clone()).state().map_err(|e| lw.sdk_err(ins.span, e))?;
    st.root = if c.link {
        let meta = VertexMeta { description: format!("{written} (link)"), ..meta };
        cairn_sdk::merge_with(&[st.root.clone(), file], meta).map_err(|e| lw.sdk_err(ins.span, e))?
    } else {
        file
    };
    st.history(format!("{} # buildkit", written), false);
    Ok(())
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
