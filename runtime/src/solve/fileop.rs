//! File actions (copy, mkdir, mkfile, rm, symlink) executed on a directory: the merged
//! view of an overlay mount (whose upper directory becomes the new layer) or a plain tree.
//!
//! Paths are resolved inside a root: symlinks are followed within it, an absolute link
//! target is relative to the root and `..` never leaves it. Source trees that come from the
//! client (Local sources) are strict: a selected path that leaves the root through `..` or a
//! symlink is an error naming the path.

use std::ffi::CString;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cairn_ir::chmod::SymbolicMode;
use cairn_ir::{CopyAction, FileActionKind, IdOrName, Owner};

use super::hash::is_whiteout;
use super::pattern::{clean_segments, has_wildcard, match_segment, Filter};

/// Why a file action failed.
#[derive(Debug)]
pub enum FileOpError {
    Io {
        path: PathBuf,
        source: io::Error,
    },
    /// A path that does not exist in the source tree.
    NotFound {
        path: String,
    },
    /// A path leaving the source root through `..` or a symlink.
    Escapes {
        path: String,
    },
    Invalid(String),
}

impl fmt::Display for FileOpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileOpError::Io { path, source } => write!(f, "`{}`: {source}", path.display()),
            FileOpError::NotFound { path } => write!(f, "`{path}` not found"),
            FileOpError::Escapes { path } => {
                write!(f, "`{path}` points outside the build context (through `..` or a symlink)")
            }
            FileOpError::Invalid(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for FileOpError {}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FileOpError + '_ {
    move |source| FileOpError::Io { path: path.to_path_buf(), source }
}

/// A tree that copies read from.
pub struct SrcTree<'a> {
    pub root: &'a Path,
    /// Visibility filter relative to `root` (a Local source's include/exclude).
    pub filter: Option<&'a Filter>,
    /// Reject escapes with an error instead of clamping to the root (client trees).
    pub strict: bool,
}

/// Resolves `path` (absolute or relative to the root) inside `root`. Symlinks in parent
/// components are always followed within the root; the last component only when
/// `follow_last`. Returns the host path and the root-relative path.
pub fn resolve(root: &Path, path: &str, follow_last: bool, strict: bool) -> Result<(PathBuf, String), FileOpError> {
    let mut stack: Vec<String> = Vec::new();
    let mut todo: Vec<String> = path.split('/').rev().map(str::to_string).collect();
    let mut links = 0;
    while let Some(seg) = todo.pop() {
        match seg.as_str() {
            "" | "." => continue,
            ".." => {
                if stack.pop().is_none() && strict {
                    return Err(FileOpError::Escapes { path: path.to_string() });
                }
                continue;
            }
            _ => {}
        }
        let is_last = todo.iter().all(|s| s.is_empty() || s == ".");
        let mut cand = root.to_path_buf();
        for s in &stack {
            cand.push(s);
        }
        cand.push(&seg);
        match fs::symlink_metadata(&cand) {
            Ok(md) if md.file_type().is_symlink() && (!is_last || follow_last) => {
                links += 1;
                if links > 40 {
                    return Err(FileOpError::Invalid(format!("Too many levels of symbolic links in `{path}`")));
                }
                let target = fs::read_link(&cand).map_err(io_err(&cand))?;
                let t = target.to_string_lossy().into_owned();
                if t.starts_with('/') {
                    if strict {
                        return Err(FileOpError::Escapes { path: path.to_string() });
                    }
                    stack.clear();
                }
                for s in t.split('/').rev() {
                    todo.push(s.to_string());
                }
            }
            _ => stack.push(seg),
        }
    }
    let mut out = root.to_path_buf();
    for s in &stack {
        out.push(s);
    }
    Ok((out, stack.join("/")))
}

/// uid and gid lookups through a tree's `/etc/passwd` and `/etc/group`.
pub struct Ids {
    users: Vec<(String, u32, u32)>,
    groups: Vec<(String, u32)>,
}

impl Ids {
    pub fn load(root: &Path) -> Ids {
        let read = |p: &str| {
            resolve(root, p, true, false).ok().and_then(|(hp, _)| fs::read_to_string(hp).ok()).unwrap_or_default()
        };
        let users = read("/etc/passwd")
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                Some((f.first()?.to_string(), f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
            })
            .collect();
        let groups = read("/etc/group")
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                Some((f.first()?.to_string(), f.get(2)?.parse().ok()?))
            })
            .collect();
        Ids { users, groups }
    }

    /// Resolves an owner to (uid, gid).
    pub fn owner(&self, o: &Owner) -> Result<(u32, u32), FileOpError> {
        let (uid, primary) = match &o.user {
            IdOrName::Id(u) => (*u, *u),
            IdOrName::Name(n) => match n.parse::<u32>() {
                Ok(u) => (u, u),
                Err(_) => self
                    .users
                    .iter()
                    .find(|(name, _, _)| name == n)
                    .map(|(_, u, g)| (*u, *g))
                    .ok_or_else(|| FileOpError::Invalid(format!("Unknown user `{n}` (not in `/etc/passwd`)")))?,
            },
        };
        let gid = match &o.group {
            None => primary,
            Some(IdOrName::Id(g)) => *g,
            Some(IdOrName::Name(n)) => match n.parse::<u32>() {
                Ok(g) => g,
                Err(_) => self
                    .groups
                    .iter()
                    .find(|(name, _)| name == n)
                    .map(|(_, g)| *g)
                    .ok_or_else(|| FileOpError::Invalid(format!("Unknown group `{n}` (not in `/etc/group`)")))?,
            },
        };
        Ok((uid, gid))
    }
}

fn lchown(p: &Path, uid: u32, gid: u32) -> Result<(), FileOpError> {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid))
        .map_err(|e| crate::sandbox::rootless::explain_chown(e, uid, gid))
        .map_err(io_err(p))
}

fn set_mtime(p: &Path, secs: i64) -> Result<(), FileOpError> {
    let c = CString::new(p.as_os_str().as_bytes())
        .map_err(|_| FileOpError::Invalid(format!("Path `{}` contains a NUL byte", p.display())))?;
    let ts = libc::timespec { tv_sec: secs as libc::time_t, tv_nsec: 0 };
    let times = [ts, ts];
    // SAFETY: valid C string and a two-element timespec array.
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    if r != 0 {
        return Err(FileOpError::Io { path: p.to_path_buf(), source: io::Error::last_os_error() });
    }
    Ok(())
}

fn copy_mtime(p: &Path, md: &fs::Metadata) -> Result<(), FileOpError> {
    let c = CString::new(p.as_os_str().as_bytes())
        .map_err(|_| FileOpError::Invalid(format!("Path `{}` contains a NUL byte", p.display())))?;
    let ts = libc::timespec { tv_sec: md.mtime() as libc::time_t, tv_nsec: md.mtime_nsec() as _ };
    let times = [ts, ts];
    // SAFETY: valid C string and a two-element timespec array.
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    if r != 0 {
        return Err(FileOpError::Io { path: p.to_path_buf(), source: io::Error::last_os_error() });
    }
    Ok(())
}

/// Removes whatever is at `p` (file, link or whole directory); missing is fine.
fn remove_any(p: &Path) -> Result<(), FileOpError> {
    match fs::symlink_metadata(p) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(FileOpError::Io { path: p.to_path_buf(), source: e }),
        Ok(md) if md.is_dir() => fs::remove_dir_all(p).map_err(io_err(p)),
        Ok(_) => fs::remove_file(p).map_err(io_err(p)),
    }
}

/// Creates `dir` and missing parents below `root` with mode 0o755 and `owner`.
fn mkdir_parents(dir: &Path, owner: Option<(u32, u32)>, mode: u32) -> Result<(), FileOpError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        mkdir_parents(parent, owner, 0o755)?;
    }
    if fs::symlink_metadata(dir).is_ok() {
        remove_any(dir)?;
    }
    fs::create_dir(dir).map_err(io_err(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(io_err(dir))?;
    if let Some((u, g)) = owner {
        lchown(dir, u, g)?;
    }
    Ok(())
}

struct CopyCtx<'a> {
    owner: Option<(u32, u32)>,
    mode: Option<u32>,
    /// `mode_str`, parsed: applied to each entry's own bits (it wins over `mode`).
    mode_str: Option<SymbolicMode>,
    timestamp: Option<i64>,
    /// (filter, prefix relative to the source tree root) for the tree filter.
    tree_filter: Option<&'a Filter>,
    copy_filter: Option<Filter>,
}

impl CopyCtx<'_> {
    fn visible(&self, tree_rel: &str, src_rel: &str, is_dir: bool) -> bool {
        let ok = |f: &Filter, rel: &str| f.visible(rel) || (is_dir && f.may_descend(rel));
        self.tree_filter.is_none_or(|f| ok(f, tree_rel))
            && (src_rel.is_empty() || self.copy_filter.as_ref().is_none_or(|f| ok(f, src_rel)))
    }

    fn finish(&self, dst: &Path, md: &fs::Metadata) -> Result<(), FileOpError> {
        let (u, g) = self.owner.unwrap_or((md.uid(), md.gid()));
        lchown(dst, u, g)?;
        if !md.file_type().is_symlink() {
            let bits = match (&self.mode_str, self.mode) {
                (Some(m), _) => m.apply(md.mode(), md.is_dir()),
                (None, Some(m)) => m,
                (None, None) => md.mode() & 0o7777,
            };
            fs::set_permissions(dst, fs::Permissions::from_mode(bits)).map_err(io_err(dst))?;
        }
        match self.timestamp {
            Some(t) => set_mtime(dst, t),
            None => copy_mtime(dst, md),
        }
    }
}

fn join_rel(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

/// Copies the entry at `src` to `dst` (replacing what is there unless both are dirs).
fn copy_entry(src: &Path, dst: &Path, tree_rel: &str, src_rel: &str, ctx: &CopyCtx) -> Result<(), FileOpError> {
    let md = fs::symlink_metadata(src).map_err(io_err(src))?;
    if is_whiteout(&md) {
        return Ok(());
    }
    let ft = md.file_type();
    if ft.is_dir() {
        if !fs::symlink_metadata(dst).map(|m| m.is_dir()).unwrap_or(false) {
            remove_any(dst)?;
            fs::create_dir(dst).map_err(io_err(dst))?;
        }
        copy_children(src, dst, tree_rel, src_rel, ctx)?;
    } else {
        if let Ok(existing) = fs::symlink_metadata(dst) {
            if existing.is_dir() {
                fs::remove_dir_all(dst).map_err(io_err(dst))?;
            } else {
                fs::remove_file(dst).map_err(io_err(dst))?;
            }
        }
        if ft.is_file() {
            fs::copy(src, dst).map_err(io_err(dst))?;
        } else if ft.is_symlink() {
            let t = fs::read_link(src).map_err(io_err(src))?;
            std::os::unix::fs::symlink(&t, dst).map_err(io_err(dst))?;
        } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() || ft.is_socket() {
            let c = CString::new(dst.as_os_str().as_bytes())
                .map_err(|_| FileOpError::Invalid(format!("Path `{}` contains a NUL byte", dst.display())))?;
            // SAFETY: valid C string; mode and rdev come from stat.
            let r = unsafe { libc::mknod(c.as_ptr(), md.mode() as libc::mode_t, md.rdev() as libc::dev_t) };
            if r != 0 {
                return Err(FileOpError::Io { path: dst.to_path_buf(), source: io::Error::last_os_error() });
            }
        }
    }
    ctx.finish(dst, &md)
}

fn copy_children(src: &Path, dst: &Path, tree_rel: &str, src_rel: &str, ctx: &CopyCtx) -> Result<(), FileOpError> {
    let mut names: Vec<_> = fs::read_dir(src)
        .map_err(io_err(src))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io_err(src))?;
    names.sort();
    for name in names {
        let n = name.to_string_lossy();
        let (trel, srel) = (join_rel(tree_rel, &n), join_rel(src_rel, &n));
        let cs = src.join(&name);
        let is_dir = fs::symlink_metadata(&cs).map(|m| m.is_dir()).unwrap_or(false);
        if !ctx.visible(&trel, &srel, is_dir) {
            continue;
        }
        copy_entry(&cs, &dst.join(&name), &trel, &srel, ctx)?;
    }
    Ok(())
}

/// Expands one source path of a copy into (host path, tree-relative path) pairs (sorted for
/// wildcards; a missing literal path is an error).
pub fn expand_src(src: &SrcTree, pattern: &str, c: &CopyAction) -> Result<Vec<(PathBuf, String)>, FileOpError> {
    if !(c.allow_wildcard && has_wildcard(pattern)) {
        let (hp, rel) = resolve(src.root, pattern, c.follow_symlinks, src.strict)?;
        let visible = src.filter.is_none_or(|f| rel.is_empty() || f.visible(&rel) || f.may_descend(&rel));
        if !visible || fs::symlink_metadata(&hp).is_err() {
            return Err(FileOpError::NotFound { path: pattern.to_string() });
        }
        if src.strict && c.follow_symlinks {
            // The final link target must stay inside the root too.
            resolve(src.root, pattern, true, true)?;
        }
        return Ok(vec![(hp, rel)]);
    }
    let segs = clean_segments(pattern);
    let mut found: Vec<(PathBuf, String)> = vec![(src.root.to_path_buf(), String::new())];
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let mut next = Vec::new();
        if seg == "**" && c.parents {
            // Any number of directories (none included), as in `.dockerignore` patterns;
            // symlinked directories are not entered. Trailing, it selects what it follows.
            for (dir, rel) in &found {
                next.push((dir.clone(), rel.clone()));
                if !last {
                    subdirs(dir, rel, src.filter, &mut next);
                }
            }
            found = next;
            continue;
        }
        for (dir, rel) in &found {
            if !has_wildcard(seg) {
                let r = join_rel(rel, seg);
                let (hp, rr) = resolve(src.root, &r, !last || c.follow_symlinks, src.strict)?;
                if fs::symlink_metadata(&hp).is_ok() {
                    next.push((hp, rr));
                }
                continue;
            }
            let Ok(rd) = fs::read_dir(dir) else { continue };
            let mut names: Vec<String> =
                rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
            names.sort();
            for n in names {
                if match_segment(seg.as_bytes(), n.as_bytes()) {
                    let r = join_rel(rel, &n);
                    let (hp, rr) = resolve(src.root, &r, !last || c.follow_symlinks, src.strict)?;
                    let md = fs::symlink_metadata(&hp);
                    if md.as_ref().map(is_whiteout).unwrap_or(true) {
                        continue;
                    }
                    if !last && !md.map(|m| m.is_dir()).unwrap_or(false) {
                        continue;
                    }
                    next.push((hp, rr));
                }
            }
        }
        found = next;
    }
    found.retain(|(_, rel)| src.filter.is_none_or(|f| f.visible(rel)));
    found.sort_by(|a, b| a.1.cmp(&b.1));
    found.dedup_by(|a, b| a.1 == b.1);
    Ok(found)
}

/// Every directory below `dir` (depth first, sorted), not through symlinks or into what
/// the tree's filter hides entirely.
fn subdirs(dir: &Path, rel: &str, filter: Option<&Filter>, out: &mut Vec<(PathBuf, String)>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut names: Vec<String> =
        rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    for n in names {
        let (p, r) = (dir.join(&n), join_rel(rel, &n));
        let is_dir = fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir());
        if is_dir && filter.is_none_or(|f| f.visible(&r) || f.may_descend(&r)) {
            out.push((p.clone(), r.clone()));
            subdirs(&p, &r, filter, out);
        }
    }
}

/// With `--parents`, the part of a source path before BuildKit's `/./` pivot: what
/// matched paths keep below the destination is relative to it (`/x/./y/*.txt` copies
/// `y/…`). `None` without a pivot (paths keep their whole path below the tree root).
fn pivot_of(path: &str) -> Option<&str> {
    path.find("/./").map(|i| &path[..i])
}

/// Performs one copy action from `src` into the tree at `root`; returns warnings for the
/// user (archive entries left out by `ADD`).
pub fn copy(root: &Path, src: &SrcTree, c: &CopyAction) -> Result<Vec<String>, FileOpError> {
    let mut warnings = Vec::new();
    let ids = Ids::load(root);
    let owner = c.owner.as_ref().map(|o| ids.owner(o)).transpose()?;
    let copy_filter = if c.include.is_empty() && c.exclude.is_empty() {
        None
    } else {
        Some(Filter::new(&c.include, &c.exclude).map_err(|e| FileOpError::Invalid(e.to_string()))?)
    };
    let mode_str =
        c.mode_str.as_deref().map(SymbolicMode::parse).transpose().map_err(|e| FileOpError::Invalid(e.to_string()))?;
    let ctx = CopyCtx { owner, mode: c.mode, mode_str, timestamp: c.timestamp, tree_filter: src.filter, copy_filter };
    let mut sources = Vec::new();
    for p in &c.src_paths {
        let found = expand_src(src, p, c)?;
        if found.is_empty() && !c.allow_empty_wildcard {
            return Err(FileOpError::Invalid(format!("No source files were specified: `{p}` matches nothing")));
        }
        // The path each source keeps below `dest` with `parents`: relative to the pivot.
        let pivot = match pivot_of(p).filter(|_| c.parents) {
            Some(pv) => resolve(src.root, pv, true, src.strict)?.1,
            None => String::new(),
        };
        for (hp, rel) in found {
            let kept = match rel.strip_prefix(&pivot) {
                Some(r) if pivot.is_empty() => r.to_string(),
                Some(r) if r.is_empty() || r.starts_with('/') => r.trim_start_matches('/').to_string(),
                _ => rel.clone(),
            };
            sources.push((hp, rel, kept));
        }
    }
    let dest_says_dir = c.dest.ends_with('/') || c.dest.ends_with("/.") || clean_segments(&c.dest).is_empty();
    let (dest, _) = resolve(root, &c.dest, true, false)?;
    let dest_is_dir = dest_says_dir || dest.is_dir() || sources.len() > 1 && !c.parents;
    if sources.len() > 1 && !dest_says_dir && !dest.is_dir() {
        return Err(FileOpError::Invalid(format!(
            "When copying several sources, the destination `{}` must be a directory and end with a `/`",
            c.dest
        )));
    }
    let parent_owner = owner;
    if let Some(parent) = dest.parent() {
        if !parent.is_dir() {
            if !c.create_dest_path && !dest_is_dir {
                return Err(FileOpError::NotFound { path: c.dest.clone() });
            }
            mkdir_parents(parent, parent_owner, 0o755)?;
        }
    }
    for (hp, rel, kept) in sources {
        let md = fs::metadata(&hp).or_else(|_| fs::symlink_metadata(&hp)).map_err(io_err(&hp))?;
        let base_name = Path::new(&rel).file_name().map(|n| n.to_os_string());
        // `--parents` keeps the whole path below the source root (or the `/./` pivot), as
        // BuildKit does (`COPY --parents packages/*/package.json /app/` gives
        // `/app/packages/a/package.json`).
        let target_dir = if c.parents {
            let d = match Path::new(&kept).parent() {
                Some(p) if !p.as_os_str().is_empty() => dest.join(p),
                _ => dest.clone(),
            };
            mkdir_parents(&d, parent_owner, 0o755)?;
            Some(d)
        } else {
            None
        };
        if c.unpack_archive && md.is_file() {
            if let Some(kind) = super::archive::detect(&hp).map_err(io_err(&hp))? {
                mkdir_parents(&dest, parent_owner, 0o755)?;
                let left_out = super::archive::unpack(&hp, kind, &dest, owner).map_err(io_err(&hp))?;
                warnings.extend(left_out.into_iter().map(|w| format!("{rel}: {w}")));
                continue;
            }
        }
        let src_md = fs::symlink_metadata(&hp).map_err(io_err(&hp))?;
        if src_md.is_dir() && (c.dir_contents_only || rel.is_empty()) {
            let d = target_dir.map(|t| match &base_name {
                Some(n) if c.parents => t.join(n),
                _ => t,
            });
            let d = d.unwrap_or_else(|| dest.clone());
            if !d.is_dir() {
                mkdir_parents(&d, owner, 0o755)?;
            }
            copy_children(&hp, &d, &rel, "", &ctx)?;
        } else {
            let to = match (&target_dir, dest_is_dir, &base_name) {
                (Some(t), _, Some(n)) => t.join(n),
                (None, true, Some(n)) => {
                    mkdir_parents(&dest, owner, 0o755)?;
                    dest.join(n)
                }
                _ => dest.clone(),
            };
            copy_entry(&hp, &to, &rel, "", &ctx)?;
        }
    }
    Ok(warnings)
}

/// Applies a non-copy action to the tree at `root`.
pub fn apply(root: &Path, kind: &FileActionKind) -> Result<(), FileOpError> {
    let owner_of = |o: &Option<Owner>| -> Result<Option<(u32, u32)>, FileOpError> {
        match o {
            None => Ok(None),
            Some(o) => Ids::load(root).owner(o).map(Some),
        }
    };
    match kind {
        FileActionKind::Copy(_) => Err(FileOpError::Invalid("Copy needs a source tree".to_string())),
        FileActionKind::Mkdir { path, mode, make_parents, owner, timestamp } => {
            let (p, _) = resolve(root, path, true, false)?;
            let own = owner_of(owner)?;
            if p.is_dir() {
                return Ok(());
            }
            match p.parent() {
                Some(parent) if !parent.is_dir() => {
                    if !make_parents {
                        return Err(FileOpError::NotFound { path: path.clone() });
                    }
                    mkdir_parents(parent, own, 0o755)?;
                }
                _ => {}
            }
            remove_any(&p)?;
            fs::create_dir(&p).map_err(io_err(&p))?;
            fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).map_err(io_err(&p))?;
            if let Some((u, g)) = own {
                lchown(&p, u, g)?;
            }
            if let Some(t) = timestamp {
                set_mtime(&p, *t)?;
            }
            Ok(())
        }
        FileActionKind::Mkfile { path, mode, data, owner, timestamp } => {
            let (p, _) = resolve(root, path, true, false)?;
            let own = owner_of(owner)?;
            if p.is_dir() {
                return Err(FileOpError::Invalid(format!("Cannot create file `{path}`: it is a directory")));
            }
            remove_any(&p)?;
            fs::write(&p, data).map_err(io_err(&p))?;
            fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).map_err(io_err(&p))?;
            if let Some((u, g)) = own {
                lchown(&p, u, g)?;
            }
            if let Some(t) = timestamp {
                set_mtime(&p, *t)?;
            }
            Ok(())
        }
        FileActionKind::Rm { path, allow_not_found, allow_wildcard } => {
            let targets: Vec<PathBuf> = if *allow_wildcard && has_wildcard(path) {
                let c = CopyAction {
                    follow_symlinks: false,
                    dir_contents_only: false,
                    allow_wildcard: true,
                    allow_empty_wildcard: true,
                    create_dest_path: false,
                    ..CopyAction::new(cairn_ir::FileRef::Scratch, vec![], "")
                };
                let tree = SrcTree { root, filter: None, strict: false };
                expand_src(&tree, path, &c)?.into_iter().map(|(p, _)| p).collect()
            } else {
                vec![resolve(root, path, false, false)?.0]
            };
            if targets.is_empty() || targets.iter().all(|t| fs::symlink_metadata(t).is_err()) {
                if *allow_not_found {
                    return Ok(());
                }
                return Err(FileOpError::NotFound { path: path.clone() });
            }
            for t in targets {
                if t == root {
                    return Err(FileOpError::Invalid("Refusing to remove the root directory".to_string()));
                }
                remove_any(&t)?;
            }
            Ok(())
        }
        FileActionKind::Symlink { target, link_path, owner, timestamp } => {
            let (p, _) = resolve(root, link_path, false, false)?;
            let own = owner_of(owner)?;
            remove_any(&p)?;
            std::os::unix::fs::symlink(target, &p).map_err(io_err(&p))?;
            if let Some((u, g)) = own {
                lchown(&p, u, g)?;
            }
            if let Some(t) = timestamp {
                set_mtime(&p, *t)?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_ir::FileRef;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cairn-fileop-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn cp(src: &[&str], dest: &str) -> CopyAction {
        CopyAction {
            allow_wildcard: true,
            ..CopyAction::new(FileRef::Input(0), src.iter().map(|s| s.to_string()).collect(), dest)
        }
    }

    #[test]
    fn resolve_stays_inside_root() {
        let r = tmp("resolve");
        fs::create_dir_all(r.join("a")).unwrap();
        std::os::unix::fs::symlink("/a", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../..", r.join("a/up")).unwrap();
        assert_eq!(resolve(&r, "/abs/x", true, false).unwrap().1, "a/x");
        assert_eq!(resolve(&r, "/a/up/etc", true, false).unwrap().1, "etc");
        assert!(matches!(resolve(&r, "/a/up/etc", true, true), Err(FileOpError::Escapes { .. })));
        assert!(matches!(resolve(&r, "../x", true, true), Err(FileOpError::Escapes { .. })));
        fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn copy_files_dirs_wildcards() {
        let s = tmp("src");
        let d = tmp("dst");
        fs::create_dir_all(s.join("dir/sub")).unwrap();
        fs::write(s.join("dir/sub/f"), b"x").unwrap();
        fs::write(s.join("a.txt"), b"a").unwrap();
        fs::write(s.join("b.txt"), b"b").unwrap();
        let tree = SrcTree { root: &s, filter: None, strict: true };
        copy(&d, &tree, &cp(&["/dir"], "/out")).unwrap();
        assert_eq!(fs::read(d.join("out/sub/f")).unwrap(), b"x");
        copy(&d, &tree, &cp(&["/*.txt"], "/t/")).unwrap();
        assert_eq!(fs::read(d.join("t/a.txt")).unwrap(), b"a");
        assert_eq!(fs::read(d.join("t/b.txt")).unwrap(), b"b");
        copy(&d, &tree, &cp(&["/a.txt"], "/renamed")).unwrap();
        assert_eq!(fs::read(d.join("renamed")).unwrap(), b"a");
        let err = copy(&d, &tree, &cp(&["/missing"], "/x")).unwrap_err();
        assert_eq!(err.to_string(), "`/missing` not found");
        let err = copy(&d, &tree, &cp(&["/*.none"], "/x/")).unwrap_err();
        assert!(err.to_string().contains("matches nothing"), "{err}");
        let err = copy(&d, &tree, &cp(&["/a.txt", "/b.txt"], "/single")).unwrap_err();
        assert!(err.to_string().contains("must be a directory"), "{err}");
        fs::remove_dir_all(&s).unwrap();
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn copy_rejects_symlink_escape_from_context() {
        let s = tmp("esc");
        let d = tmp("escd");
        std::os::unix::fs::symlink("/etc/passwd", s.join("evil")).unwrap();
        let tree = SrcTree { root: &s, filter: None, strict: true };
        let err = copy(&d, &tree, &cp(&["/evil"], "/x")).unwrap_err();
        assert!(matches!(err, FileOpError::Escapes { .. }), "{err}");
        fs::remove_dir_all(&s).unwrap();
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn copy_applies_owner_mode_and_filters() {
        let s = tmp("own");
        let d = tmp("ownd");
        fs::create_dir_all(d.join("etc")).unwrap();
        fs::write(d.join("etc/passwd"), "app:x:1000:1001::/home/app:/bin/sh\n").unwrap();
        fs::write(d.join("etc/group"), "staff:x:50:\n").unwrap();
        fs::write(s.join("f"), b"1").unwrap();
        fs::write(s.join("skip.log"), b"2").unwrap();
        let filt = Filter::new(&[], &["*.log".to_string()]).unwrap();
        let tree = SrcTree { root: &s, filter: Some(&filt), strict: true };
        let mut c = cp(&["/"], "/app/");
        c.owner = Some(Owner { user: IdOrName::Name("app".into()), group: None });
        c.mode = Some(0o640);
        copy(&d, &tree, &c).unwrap();
        let md = fs::metadata(d.join("app/f")).unwrap();
        assert_eq!((md.uid(), md.gid(), md.mode() & 0o777), (1000, 1001, 0o640));
        assert!(!d.join("app/skip.log").exists());
        let mut c = cp(&["/f"], "/g");
        c.owner = Some(Owner { user: IdOrName::Id(7), group: Some(IdOrName::Name("staff".into())) });
        copy(&d, &tree, &c).unwrap();
        let md = fs::metadata(d.join("g")).unwrap();
        assert_eq!((md.uid(), md.gid()), (7, 50));
        c.owner = Some(Owner { user: IdOrName::Name("nobody-here".into()), group: None });
        assert!(copy(&d, &tree, &c).unwrap_err().to_string().contains("Unknown user `nobody-here`"));
        fs::remove_dir_all(&s).unwrap();
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn mkdir_mkfile_rm_symlink() {
        let r = tmp("acts");
        apply(
            &r,
            &FileActionKind::Mkdir {
                path: "/a/b".into(),
                mode: 0o700,
                make_parents: true,
                owner: None,
                timestamp: None,
            },
        )
        .unwrap();
        assert!(r.join("a/b").is_dir());
        assert!(apply(
            &r,
            &FileActionKind::Mkdir {
                path: "/x/y".into(),
                mode: 0o700,
                make_parents: false,
                owner: None,
                timestamp: None
            }
        )
        .is_err());
        apply(
            &r,
            &FileActionKind::Mkfile {
                path: "/a/f".into(),
                mode: 0o600,
                data: b"d".to_vec(),
                owner: None,
                timestamp: Some(5),
            },
        )
        .unwrap();
        assert_eq!(fs::metadata(r.join("a/f")).unwrap().mtime(), 5);
        apply(
            &r,
            &FileActionKind::Symlink { target: "f".into(), link_path: "/a/l".into(), owner: None, timestamp: None },
        )
        .unwrap();
        assert_eq!(fs::read_link(r.join("a/l")).unwrap(), PathBuf::from("f"));
        apply(&r, &FileActionKind::Rm { path: "/a/*".into(), allow_not_found: false, allow_wildcard: true }).unwrap();
        assert!(fs::read_dir(r.join("a")).unwrap().next().is_none());
        assert!(apply(&r, &FileActionKind::Rm { path: "/nope".into(), allow_not_found: false, allow_wildcard: false })
            .is_err());
        apply(&r, &FileActionKind::Rm { path: "/nope".into(), allow_not_found: true, allow_wildcard: false }).unwrap();
        fs::remove_dir_all(&r).unwrap();
    }
}
