//! The mounts of a process other than its root: binds of inputs and build contexts (a
//! context hidden in part by its patterns is shown through a layer of whiteouts), cache
//! mounts (persistent directories with `shared`, `locked` and `private` sharing), tmpfs and
//! secrets. Writable mounts with an output become new layers.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use cairn_ir::{CacheSharing, ExecOp, FileRef, MountKind};

use super::{OpCx, View};
use crate::solve::backend::{Backend, Chain, ProcessMount, ProcessMountSource, Scratch};
use crate::solve::engine::{fail, Inputs, LocalTree, StepError, Tree};
use crate::solve::fileop;
use crate::solve::pattern::Filter;

/// Cache mounts in use, for `Locked` (wait) and `Private` (take another) sharing.
#[derive(Debug, Default)]
pub struct CacheLocks {
    busy: std::sync::Mutex<std::collections::HashSet<String>>,
    cv: std::sync::Condvar,
}

/// Releases a cache mount id on drop.
pub struct CacheGuard<'a> {
    locks: &'a CacheLocks,
    id: String,
}

impl Drop for CacheGuard<'_> {
    fn drop(&mut self) {
        self.locks.busy.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
        self.locks.cv.notify_all();
    }
}

impl CacheLocks {
    /// Takes `id`, waiting while another step holds it; `None` when cancelled.
    pub fn lock(&self, id: &str, cancel: &AtomicBool) -> Option<CacheGuard<'_>> {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        while busy.contains(id) {
            if cancel.load(Ordering::SeqCst) {
                return None;
            }
            busy =
                self.cv.wait_timeout(busy, std::time::Duration::from_millis(100)).unwrap_or_else(|e| e.into_inner()).0;
        }
        busy.insert(id.to_string());
        Some(CacheGuard { locks: self, id: id.to_string() })
    }

    /// Takes `id` if it is free.
    pub fn try_lock(&self, id: &str) -> Option<CacheGuard<'_>> {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        if !busy.insert(id.to_string()) {
            return None;
        }
        Some(CacheGuard { locks: self, id: id.to_string() })
    }
}

/// Removes a directory tree on drop (private cache mounts of concurrent steps, work
/// directories of remote sources).
pub(super) struct RemoveDir(pub(super) PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// What a process's mounts hold on to until it has run: scratch layers, views, cache locks
/// and private cache copies; `outputs` are the writable mounts that become layers.
pub(super) struct Mounted<'a, B: Backend> {
    pub mounts: Vec<ProcessMount>,
    /// (output index, base chain, new layer)
    pub outputs: Vec<(u32, Chain, B::Scratch)>,
    // Held, not read: each releases its resource when dropped after the process ran.
    _keep_alive: Vec<B::Scratch>,
    _views: Vec<View<B::Mount>>,
    _cache_guards: Vec<CacheGuard<'a>>,
    _private_dirs: Vec<RemoveDir>,
}

impl<'a, B: Backend> OpCx<'a, B> {
    /// The process mounts of `e` (all but the root), in order.
    pub(super) fn process_mounts(
        &'a self,
        e: &ExecOp,
        inputs: &Inputs,
        cancel: &AtomicBool,
    ) -> Result<Mounted<'a, B>, StepError> {
        let mut extra_layers = Vec::new();
        let mut keep_alive = Vec::new();
        let mut cache_guards = Vec::new();
        let mut private_dirs = Vec::new();
        let mut views = Vec::new();
        let mut mounts = Vec::new();
        for m in &e.mounts[1..] {
            let tree = match m.input {
                Some(i) => Some(inputs.tree(i)?.clone()),
                None => None,
            };
            let source = match &m.kind {
                MountKind::Bind => match (tree, m.output) {
                    (Some(Tree::Local(_)), Some(_)) => {
                        return Err(StepError::msg("A build context mount cannot have an output"))
                    }
                    (Some(Tree::Local(l)), None) if !l.filter.is_trivial() => {
                        self.filtered_bind(&l, m, &mut keep_alive)?
                    }
                    (Some(Tree::Local(l)), None) => {
                        let (hp, _) = fileop::resolve(&l.root, &m.selector, true, true)
                            .map_err(|e| StepError::msg(e.to_string()))?;
                        self.bind_source(hp, m, &mut keep_alive)?
                    }
                    (tree, None) => {
                        let tree = tree.unwrap_or_else(|| Tree::Layers(Arc::new(Vec::new())));
                        let view = self.view(&tree)?;
                        let (hp, _) = fileop::resolve(&view.path, &m.selector, true, false)
                            .map_err(|e| StepError::msg(e.to_string()))?;
                        views.push(view);
                        self.bind_source(hp, m, &mut keep_alive)?
                    }
                    (tree, Some(o)) => {
                        let chain = match tree {
                            Some(Tree::Layers(c)) => c.to_vec(),
                            _ => Vec::new(),
                        };
                        if !m.selector.trim_matches('/').is_empty() {
                            return Err(StepError::msg("A mount with both a selector and an output is not supported"));
                        }
                        let nl = self.backend.new_layer().map_err(fail("Cannot create a layer"))?;
                        let upper = Some((nl.upper().to_path_buf(), nl.work().to_path_buf()));
                        let lowers = self.lowers(&chain)?;
                        extra_layers.push((o, chain, nl));
                        ProcessMountSource::Overlay { lowers, upper }
                    }
                },
                MountKind::Cache { id: cid, sharing, mode, uid, gid } => {
                    let name = blake3::hash(cid.as_bytes()).to_hex().to_string();
                    let mut dir = self.opts.layout.cache_mounts_dir().join(&name);
                    match sharing {
                        CacheSharing::Shared => {}
                        // Two locked mounts of one id in one step share the lock.
                        CacheSharing::Locked if cache_guards.iter().any(|g: &CacheGuard| g.id == name) => {}
                        CacheSharing::Locked => cache_guards
                            .push(self.cache_locks.lock(&name, cancel).ok_or_else(|| StepError::msg("Cancelled"))?),
                        CacheSharing::Private => match self.cache_locks.try_lock(&name) {
                            Some(g) => cache_guards.push(g),
                            None => {
                                let n = self.mount_seq.fetch_add(1, Ordering::SeqCst);
                                dir = self
                                    .opts
                                    .layout
                                    .cache_mounts_dir()
                                    .join(format!("{name}-{}-{n}", std::process::id()));
                                private_dirs.push(RemoveDir(dir.clone()));
                            }
                        },
                    }
                    if !dir.is_dir() {
                        self.init_cache_dir(&dir, tree.as_ref(), &m.selector, (*mode, *uid, *gid))?;
                    }
                    ProcessMountSource::Bind(dir)
                }
                MountKind::Tmpfs { size } => ProcessMountSource::Tmpfs { size: *size },
                MountKind::Secret { id: sid, required, mode, uid, gid } => match self.opts.secrets.get(sid) {
                    Some(data) => ProcessMountSource::Secret { data: data.clone(), mode: *mode, uid: *uid, gid: *gid },
                    None if *required => return Err(super::exec::missing_secret(sid)),
                    None => continue,
                },
                // A socket forwarded to the agent (never keyed, like a secret).
                MountKind::Ssh { id: sid, required, mode, uid, gid } => match self.opts.ssh.get(sid) {
                    Some(sock) => ProcessMountSource::Socket { agent: sock.clone(), mode: *mode, uid: *uid, gid: *gid },
                    None if *required => {
                        return Err(StepError::msg(format!(
                            "SSH mount `{sid}` is required but no agent was given for it (use `--ssh {sid}` for $SSH_AUTH_SOCK, or `--ssh {sid}=SOCKET|KEYFILE`)"
                        )))
                    }
                    None => continue,
                },
            };
            mounts.push(ProcessMount { target: m.target.clone(), readonly: m.readonly, source });
        }
        Ok(Mounted {
            mounts,
            outputs: extra_layers,
            _keep_alive: keep_alive,
            _views: views,
            _cache_guards: cache_guards,
            _private_dirs: private_dirs,
        })
    }

    /// The process mount for a bind of the host path `hp` (a context path or a view of an
    /// input): read-only as it is; read-write over a throwaway upper (a directory) or a
    /// throwaway copy (a file), so writes never reach the source or an output.
    fn bind_source(
        &self,
        hp: PathBuf,
        m: &cairn_ir::Mount,
        keep_alive: &mut Vec<B::Scratch>,
    ) -> Result<ProcessMountSource, StepError> {
        let md = fs::metadata(&hp).map_err(|_| {
            let shown = if m.selector.is_empty() { "/" } else { m.selector.as_str() };
            StepError::msg(format!("Cannot mount `{shown}` at `{}`: it does not exist in the mounted tree", m.target))
        })?;
        if m.readonly {
            return Ok(ProcessMountSource::Bind(hp));
        }
        let nl = self.backend.new_layer().map_err(fail("Cannot create a layer"))?;
        let source = if md.is_dir() {
            ProcessMountSource::Overlay {
                lowers: vec![self.empty_dir.clone(), hp],
                upper: Some((nl.upper().to_path_buf(), nl.work().to_path_buf())),
            }
        } else {
            let copy = nl.work().join("file");
            fs::copy(&hp, &copy).map_err(fail("Cannot copy a bind-mounted file"))?;
            ProcessMountSource::Bind(copy)
        };
        keep_alive.push(nl);
        Ok(source)
    }

    /// A bind of a build context whose include/exclude patterns (`.dockerignore`) hide
    /// something: the context directory as an overlay lower with, above it, a layer of
    /// whiteouts for every hidden entry below the selection, so the step sees exactly what
    /// its key hashed without copying the context.
    fn filtered_bind(
        &self,
        l: &LocalTree,
        m: &cairn_ir::Mount,
        keep_alive: &mut Vec<B::Scratch>,
    ) -> Result<ProcessMountSource, StepError> {
        let (hp, rel) = fileop::resolve(&l.root, &m.selector, true, true).map_err(|e| StepError::msg(e.to_string()))?;
        let hidden = !rel.is_empty() && !l.filter.visible(&rel) && !l.filter.may_descend(&rel);
        if hidden || fs::symlink_metadata(&hp).is_err() {
            let shown = if m.selector.is_empty() { "/" } else { m.selector.as_str() };
            return Err(StepError::msg(format!(
                "Cannot mount `{shown}` at `{}`: it does not exist in the build context (or `.dockerignore` excludes it)",
                m.target
            )));
        }
        if !hp.is_dir() {
            return self.bind_source(hp, m, keep_alive);
        }
        let wl = self.backend.new_layer().map_err(fail("Cannot create a layer"))?;
        let any = hide_invisible(&l.filter, &hp, &rel, wl.upper())
            .map_err(fail("Cannot prepare a filtered build context mount"))?;
        if !any {
            return self.bind_source(hp, m, keep_alive);
        }
        let lowers = vec![hp, wl.upper().to_path_buf()];
        keep_alive.push(wl);
        if m.readonly {
            return Ok(ProcessMountSource::Overlay { lowers, upper: None });
        }
        let nl = self.backend.new_layer().map_err(fail("Cannot create a layer"))?;
        let upper = Some((nl.upper().to_path_buf(), nl.work().to_path_buf()));
        keep_alive.push(nl);
        Ok(ProcessMountSource::Overlay { lowers, upper })
    }

    /// Creates the cache mount directory `dir`: from the input's tree at `selector` when
    /// the mount has `from=`, else empty with `mode/uid/gid`. It is built under a temporary
    /// name and renamed, so a concurrent user never sees it half made.
    fn init_cache_dir(
        &self,
        dir: &std::path::Path,
        tree: Option<&Tree>,
        selector: &str,
        (mode, uid, gid): (u32, u32, u32),
    ) -> Result<(), StepError> {
        let n = self.mount_seq.fetch_add(1, Ordering::SeqCst);
        let name = dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.with_file_name(format!(".tmp-{name}-{}-{n}", std::process::id()));
        let _cleanup = RemoveDir(tmp.clone());
        fs::create_dir_all(&tmp).map_err(fail("Cannot create a cache mount"))?;
        match tree {
            Some(tree) => {
                let view = self.view(tree)?;
                let src = super::src_tree(&view.path, tree);
                let c = copy_selection(selector);
                fileop::copy(&tmp, &src, &c)
                    .map_err(|e| StepError::msg(format!("Cannot initialise a cache mount from its source: {e}")))?;
                // The cache root is the source directory itself: its mode and owner too.
                let (hp, _) = fileop::resolve(&view.path, &c.src_paths[0], true, src.strict)
                    .map_err(|e| StepError::msg(e.to_string()))?;
                if let Some(md) = fs::metadata(&hp).ok().filter(|md| md.is_dir()) {
                    use std::os::unix::fs::MetadataExt;
                    set_mode_owner(&tmp, md.mode(), md.uid(), md.gid())
                        .map_err(fail("Cannot set a cache mount's mode and owner"))?;
                }
            }
            None => set_mode_owner(&tmp, mode, uid, gid).map_err(fail("Cannot set a cache mount's mode and owner"))?,
        }
        match fs::rename(&tmp, dir) {
            Ok(()) => Ok(()),
            Err(_) if dir.is_dir() => Ok(()), // a concurrent step made it first
            Err(e) => Err(StepError::msg(format!("Cannot create a cache mount: {e}"))),
        }
    }
}

/// Removes what dead solver processes left in `cachemounts/`: half-made cache directories
/// (`.tmp-<name>-<pid>-<n>`) and private copies (`<name>-<pid>-<n>`).
pub fn clean_stale_cache_dirs(dir: &std::path::Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let mut parts = name.trim_start_matches(".tmp-").split('-');
        let (Some(_), Some(pid), Some(_)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if !crate::store::sys::pid_alive(pid) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Puts an overlay whiteout in `wdir` for every entry below the context directory `dir`
/// (`rel` from the context root) that `filter` hides, then gives the directories it made
/// the mode and owner of the context's (the top layer's directory attributes win in an
/// overlay). Returns whether it hid anything.
fn hide_invisible(filter: &Filter, dir: &std::path::Path, rel: &str, wdir: &std::path::Path) -> std::io::Result<bool> {
    let any = add_whiteouts(filter, dir, rel, wdir)?;
    if any {
        copy_dir_attrs(dir, wdir)?;
    }
    Ok(any)
}

/// Sets the permission bits of `mode` and the owner of `p`.
fn set_mode_owner(p: &std::path::Path, mode: u32, uid: u32, gid: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode & 0o7777))?;
    std::os::unix::fs::chown(p, Some(uid), Some(gid))
}

fn copy_dir_attrs(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let md = fs::metadata(from)?;
    set_mode_owner(to, md.mode(), md.uid(), md.gid())?;
    for e in fs::read_dir(to)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            copy_dir_attrs(&from.join(e.file_name()), &e.path())?;
        }
    }
    Ok(())
}

fn add_whiteouts(filter: &Filter, dir: &std::path::Path, rel: &str, wdir: &std::path::Path) -> std::io::Result<bool> {
    let mut any = false;
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let child_rel = if rel.is_empty() {
            name.to_string_lossy().into_owned()
        } else {
            format!("{rel}/{}", name.to_string_lossy())
        };
        let is_dir = e.file_type()?.is_dir();
        let visible = filter.visible(&child_rel);
        if is_dir && (visible || filter.may_descend(&child_rel)) {
            any |= add_whiteouts(filter, &e.path(), &child_rel, &wdir.join(&name))?;
            continue;
        }
        if visible {
            continue;
        }
        fs::create_dir_all(wdir)?;
        // A 0/0 character device is an overlay whiteout.
        crate::store::sys::mknod(&wdir.join(&name), libc::S_IFCHR, 0, 0)?;
        any = true;
    }
    Ok(any)
}

/// A copy of everything at `selector` (a directory's contents, or one file) into `/`.
fn copy_selection(selector: &str) -> cairn_ir::CopyAction {
    cairn_ir::CopyAction::new(
        FileRef::Input(0),
        vec![if selector.is_empty() { "/".to_string() } else { selector.to_string() }],
        "/",
    )
}
