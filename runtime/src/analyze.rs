//! Layer analysis (`cairn analyze`, `cairn build --analyze`): what each layer of an image
//! adds, modifies and deletes, the bytes it stores that the final image never shows, and
//! dive's efficiency score, read from the layer directories of the store without a daemon.
//!
//! Layers are overlay upper directories: a deleted path is a character device 0:0
//! (whiteout), a directory that hides everything below it carries
//! `trusted.overlay.opaque=y`. [`analyze_layers`] replays them bottom first over a map of
//! the visible paths, so every change is classified against what the layers below show.
//!
//! **Wasted bytes** are bytes stored in a layer that no one gets from the image:
//! - `deleted`: a file a later layer removes (a whiteout, or an opaque directory hiding it);
//! - `overwritten`: a file a later layer replaces (a `chmod` in a later RUN copies it whole);
//! - `duplicate`: a file whose exact content an earlier layer already holds at another
//!   path (one copy per later layer counts).
//!
//! Each waste names the layer that stored the bytes first (`layer`) and the layer that
//! made them useless (`by`); user waste is the waste whose `by` is above the base image.
//!
//! **Efficiency** is dive's: per path, the smallest size it has in any layer over the sum
//! of its sizes in all layers (a deletion counts 0), summed over paths; 1 when there are no
//! bytes. Unlike dive, a deleted directory counts as the deletion of each file under it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::layer;
use crate::store::{ImageRecord, Store, StoreError};

/// One layer to analyze: its directory and the history line that made it.
#[derive(Debug, Clone)]
pub struct LayerInput {
    pub id: String,
    pub created_by: String,
    pub dir: PathBuf,
}

/// A path changed by a layer and its bytes (for a deletion: the bytes it hid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    pub path: String,
    pub size: u64,
}

/// What one layer does.
#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    pub index: usize,
    pub id: String,
    pub created_by: String,
    /// Bytes of the regular files in the layer (hard links counted once).
    pub size: u64,
    /// Part of the base image (below the instructions of this build).
    pub base: bool,
    pub added: Vec<FileChange>,
    pub modified: Vec<FileChange>,
    pub deleted: Vec<FileChange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WasteKind {
    Deleted,
    Overwritten,
    Duplicate,
}

/// Wasted bytes of one kind, stored by `layer` and made useless by `by`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WasteGroup {
    pub kind: WasteKind,
    pub layer: usize,
    pub by: usize,
    pub bytes: u64,
    pub files: usize,
    /// The largest paths first (at most [`MAX_PATHS`]); for a duplicate, `path = first`.
    pub paths: Vec<String>,
}

/// How many paths a [`WasteGroup`] lists.
pub const MAX_PATHS: usize = 10;

/// The analysis of an image.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub layers: Vec<LayerReport>,
    /// How many bottom layers belong to the base image.
    pub base_layers: usize,
    pub size: u64,
    pub user_size: u64,
    pub wasted_bytes: u64,
    pub user_wasted_bytes: u64,
    /// `user_wasted_bytes / user_size` (0 without user bytes), a ratio as dive's.
    pub user_wasted_percent: f64,
    pub efficiency: f64,
    /// Largest first.
    pub waste: Vec<WasteGroup>,
}

enum Kind {
    File { size: u64, host: PathBuf },
    Dir { opaque: bool },
    Whiteout,
    Other,
}

/// Entries of a layer directory in depth-first order, paths absolute (`/a/b`; the layer
/// root is `""` and only listed when opaque); regular files with their size (a hard link
/// within the layer after the first has size 0 in `size_once`).
fn walk(
    dir: &Path,
    prefix: &str,
    out: &mut Vec<(String, Kind)>,
    seen: &mut HashSet<(u64, u64)>,
    size: &mut u64,
) -> io::Result<()> {
    for n in layer::sorted_names(dir)? {
        let p = dir.join(&n);
        let md = p.symlink_metadata().map_err(|e| layer::ctx(&p, e))?;
        let path = format!("{prefix}/{}", String::from_utf8_lossy(n.as_bytes()));
        if layer::is_whiteout(&md) {
            out.push((path, Kind::Whiteout));
        } else if md.is_dir() {
            let opaque = layer::is_opaque(&p).map_err(|e| layer::ctx(&p, e))?;
            out.push((path.clone(), Kind::Dir { opaque }));
            walk(&p, &path, out, seen, size)?;
        } else if md.is_file() {
            if md.nlink() == 1 || seen.insert((md.dev(), md.ino())) {
                *size += md.len();
            }
            out.push((path, Kind::File { size: md.len(), host: p }));
        } else {
            out.push((path, Kind::Other));
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
struct Visible {
    layer: usize,
    size: u64,
    dir: bool,
    host: Option<PathBuf>,
}

struct Waste {
    kind: WasteKind,
    layer: usize,
    by: usize,
    bytes: u64,
    path: String,
}

/// Removes `path` (when `with_self`) and everything under it from `visible`, except the
/// paths `keep` holds; returns what was removed.
fn take_subtree(
    visible: &mut BTreeMap<String, Visible>,
    path: &str,
    with_self: bool,
    keep: &HashSet<&str>,
) -> Vec<(String, Visible)> {
    let under = format!("{path}/");
    let mut keys: Vec<String> = visible
        .range(under.clone()..)
        .take_while(|(k, _)| k.starts_with(&under))
        .map(|(k, _)| k.clone())
        .filter(|k| !keep.contains(k.as_str()))
        .collect();
    if with_self && visible.contains_key(path) {
        keys.push(path.to_string());
    }
    keys.into_iter().filter_map(|k| visible.remove(&k).map(|v| (k, v))).collect()
}

/// Per path: (sum of sizes over layers, smallest size), for dive's efficiency.
#[derive(Default)]
struct Occurrences(HashMap<String, (u64, u64)>);

impl Occurrences {
    fn add(&mut self, path: &str, size: u64) {
        let e = self.0.entry(path.to_string()).or_insert((0, u64::MAX));
        e.0 += size;
        e.1 = e.1.min(size);
    }
    fn efficiency(&self) -> f64 {
        let (min, sum) = self.0.values().fold((0u64, 0u64), |(m, s), (c, lo)| (m + lo, s + c));
        if sum == 0 {
            1.0
        } else {
            min as f64 / sum as f64
        }
    }
}

/// Analyzes `layers` (bottom first); the first `base_layers` belong to the base image.
pub fn analyze_layers(layers: &[LayerInput], base_layers: usize) -> io::Result<Analysis> {
    let mut visible: BTreeMap<String, Visible> = BTreeMap::new();
    let mut occ = Occurrences::default();
    let mut wastes: Vec<Waste> = Vec::new();
    let mut reports = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let mut entries = Vec::new();
        let mut size = 0;
        let mut seen = HashSet::new();
        if layer::is_opaque(&l.dir).map_err(|e| layer::ctx(&l.dir, e))? {
            entries.push((String::new(), Kind::Dir { opaque: true }));
        }
        walk(&l.dir, "", &mut entries, &mut seen, &mut size)?;
        let here: HashSet<&str> = entries.iter().map(|(p, _)| p.as_str()).collect();
        let mut r = LayerReport {
            index: i,
            id: l.id.clone(),
            created_by: l.created_by.clone(),
            size,
            base: i < base_layers,
            added: Vec::new(),
            modified: Vec::new(),
            deleted: Vec::new(),
        };
        let gone =
            |removed: Vec<(String, Visible)>, kind: WasteKind, wastes: &mut Vec<Waste>, occ: &mut Occurrences| {
                let mut bytes = 0;
                for (p, v) in removed {
                    if v.dir {
                        continue;
                    }
                    bytes += v.size;
                    occ.add(&p, 0);
                    if v.size > 0 {
                        wastes.push(Waste { kind, layer: v.layer, by: i, bytes: v.size, path: p });
                    }
                }
                bytes
            };
        for (p, k) in &entries {
            match k {
                Kind::Whiteout => {
                    let removed = take_subtree(&mut visible, p, true, &HashSet::new());
                    let bytes = gone(removed, WasteKind::Deleted, &mut wastes, &mut occ);
                    r.deleted.push(FileChange { path: p.clone(), size: bytes });
                }
                Kind::Dir { opaque } => {
                    if visible.get(p).is_some_and(|v| !v.dir) {
                        let removed = take_subtree(&mut visible, p, true, &HashSet::new());
                        let bytes = gone(removed, WasteKind::Overwritten, &mut wastes, &mut occ);
                        r.deleted.push(FileChange { path: p.clone(), size: bytes });
                    }
                    if *opaque {
                        let removed = take_subtree(&mut visible, p, false, &here);
                        let bytes = gone(removed, WasteKind::Deleted, &mut wastes, &mut occ);
                        if bytes > 0 || p.is_empty() {
                            r.deleted.push(FileChange { path: format!("{p}/*"), size: bytes });
                        }
                    }
                    if !p.is_empty() {
                        visible.insert(p.clone(), Visible { layer: i, size: 0, dir: true, host: None });
                    }
                }
                Kind::File { .. } | Kind::Other => {
                    let (fsize, host) = match k {
                        Kind::File { size, host } => (*size, Some(host.clone())),
                        _ => (0, None),
                    };
                    match visible.get(p).cloned() {
                        Some(v) if !v.dir => {
                            if v.size > 0 {
                                wastes.push(Waste {
                                    kind: WasteKind::Overwritten,
                                    layer: v.layer,
                                    by: i,
                                    bytes: v.size,
                                    path: p.clone(),
                                });
                            }
                            r.modified.push(FileChange { path: p.clone(), size: fsize });
                        }
                        Some(_) => {
                            let removed = take_subtree(&mut visible, p, true, &HashSet::new());
                            gone(removed, WasteKind::Overwritten, &mut wastes, &mut occ);
                            r.added.push(FileChange { path: p.clone(), size: fsize });
                        }
                        None => r.added.push(FileChange { path: p.clone(), size: fsize }),
                    }
                    occ.add(p, fsize);
                    visible.insert(p.clone(), Visible { layer: i, size: fsize, dir: false, host });
                }
            }
        }
        reports.push(r);
    }
    wastes.extend(duplicates(&visible)?);
    let size: u64 = reports.iter().map(|r| r.size).sum();
    let user_size: u64 = reports.iter().filter(|r| !r.base).map(|r| r.size).sum();
    let wasted_bytes: u64 = wastes.iter().map(|w| w.bytes).sum();
    let user_wasted_bytes: u64 = wastes.iter().filter(|w| w.by >= base_layers).map(|w| w.bytes).sum();
    Ok(Analysis {
        layers: reports,
        base_layers,
        size,
        user_size,
        wasted_bytes,
        user_wasted_bytes,
        user_wasted_percent: if user_size == 0 { 0.0 } else { user_wasted_bytes as f64 / user_size as f64 },
        efficiency: occ.efficiency(),
        waste: group(wastes),
    })
}

/// Files of the final image whose content an earlier layer already holds at another
/// path: one waste per later layer holding a copy.
fn duplicates(visible: &BTreeMap<String, Visible>) -> io::Result<Vec<Waste>> {
    let mut by_size: HashMap<u64, Vec<(&String, &Visible)>> = HashMap::new();
    for (p, v) in visible.iter().filter(|(_, v)| !v.dir && v.size > 0 && v.host.is_some()) {
        by_size.entry(v.size).or_default().push((p, v));
    }
    let mut out = Vec::new();
    for (size, files) in by_size {
        if files.iter().map(|(_, v)| v.layer).collect::<HashSet<_>>().len() < 2 {
            continue;
        }
        let mut by_hash: HashMap<[u8; 32], Vec<(&String, &Visible)>> = HashMap::new();
        for (p, v) in files {
            let host = v.host.as_ref().expect("filtered above");
            let mut h = blake3::Hasher::new();
            h.update_reader(fs::File::open(host).map_err(|e| layer::ctx(host, e))?).map_err(|e| layer::ctx(host, e))?;
            by_hash.entry(*h.finalize().as_bytes()).or_default().push((p, v));
        }
        for mut copies in by_hash.into_values() {
            copies.sort_by(|a, b| (a.1.layer, a.0).cmp(&(b.1.layer, b.0)));
            let (first, first_v) = copies[0];
            let mut layers_seen = HashSet::from([first_v.layer]);
            for (p, v) in &copies[1..] {
                if layers_seen.insert(v.layer) {
                    out.push(Waste {
                        kind: WasteKind::Duplicate,
                        layer: first_v.layer,
                        by: v.layer,
                        bytes: size,
                        path: format!("{p} = {first}"),
                    });
                }
            }
        }
    }
    Ok(out)
}

fn group(wastes: Vec<Waste>) -> Vec<WasteGroup> {
    let mut groups: BTreeMap<(WasteKind, usize, usize), Vec<Waste>> = BTreeMap::new();
    for w in wastes {
        groups.entry((w.kind, w.layer, w.by)).or_default().push(w);
    }
    let mut out: Vec<WasteGroup> = groups
        .into_iter()
        .map(|((kind, layer, by), mut ws)| {
            ws.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
            WasteGroup {
                kind,
                layer,
                by,
                bytes: ws.iter().map(|w| w.bytes).sum(),
                files: ws.len(),
                paths: ws.iter().take(MAX_PATHS).map(|w| w.path.clone()).collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| (a.layer, a.by).cmp(&(b.layer, b.by))));
    out
}

/// Analyzes the stored image `rec`: lazy layers are downloaded and extracted first, the
/// base image is the longest other stored image whose layers begin this one's (else, as
/// dive, the bottom layer).
pub fn analyze_image(store: &Store, rec: &ImageRecord) -> Result<Analysis, StoreError> {
    crate::image::materialize(store, &rec.layers, &|_, _, _| {})?;
    let cfg = store.image_config(rec)?;
    let mut created_by =
        cfg.history.iter().filter(|h| !h.empty_layer).map(|h| h.created_by.clone().unwrap_or_default());
    let mut inputs = Vec::new();
    for id in &rec.layers {
        if !store.layer_exists(id) {
            return Err(StoreError::NotFound(format!("Layer `{id}` is not in the store")));
        }
        inputs.push(LayerInput {
            id: id.clone(),
            created_by: created_by.next().unwrap_or_default(),
            dir: store.layer_path(id),
        });
    }
    let mut base = crate::inspect::base_layer_count(store, rec)?;
    if base == 0 && rec.layers.len() > 1 {
        base = 1;
    }
    let dir = store.layout().layers_dir();
    analyze_layers(&inputs, base).map_err(crate::store::io_err("analyze the layers in", &dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sys;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cairn-analyze-unit-{}-{name}", std::process::id()));
        let _ = crate::store::remove_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn write(dir: &Path, rel: &str, bytes: usize) {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, vec![b'x'; bytes]).unwrap();
    }

    fn input(root: &Path, n: usize) -> LayerInput {
        let dir = root.join(format!("l{n}"));
        fs::create_dir_all(&dir).unwrap();
        LayerInput { id: format!("l{n}"), created_by: format!("step {n}"), dir }
    }

    /// Whiteouts and opaque directories need root (mknod, trusted.* xattrs).
    fn can_make_whiteouts(dir: &Path) -> bool {
        let ok = sys::mknod(&dir.join("probe"), libc::S_IFCHR, 0, 0).is_ok();
        let _ = fs::remove_file(dir.join("probe"));
        ok
    }

    #[test]
    fn deleted_overwritten_and_duplicated_bytes() {
        let root = tmp("waste");
        assert!(can_make_whiteouts(&root), "this test needs root (mknod of a whiteout)");
        let l: Vec<LayerInput> = (0..4).map(|n| input(&root, n)).collect();
        write(&l[0].dir, "bin/sh", 100);
        write(&l[1].dir, "big/a", 1000);
        write(&l[1].dir, "big/b", 500);
        write(&l[1].dir, "etc/conf", 10);
        // layer 2: removes /big, rewrites /etc/conf, copies /bin/sh's bytes elsewhere.
        fs::create_dir_all(l[2].dir.join("etc")).unwrap();
        sys::mknod(&l[2].dir.join("big"), libc::S_IFCHR, 0, 0).unwrap();
        write(&l[2].dir, "etc/conf", 20);
        write(&l[2].dir, "opt/sh-copy", 100);
        // layer 3: an opaque /etc with one new file.
        write(&l[3].dir, "etc/new", 5);
        sys::set_xattr(&l[3].dir.join("etc"), layer::opaque_xattr(), b"y").unwrap();
        let a = analyze_layers(&l, 1).unwrap();
        assert_eq!(a.layers.iter().map(|r| r.size).collect::<Vec<_>>(), vec![100, 1510, 120, 5]);
        assert_eq!(a.layers[1].added.len(), 3);
        assert_eq!(a.layers[2].deleted, vec![FileChange { path: "/big".into(), size: 1500 }]);
        assert_eq!(a.layers[2].modified, vec![FileChange { path: "/etc/conf".into(), size: 20 }]);
        assert_eq!(a.layers[3].deleted, vec![FileChange { path: "/etc/*".into(), size: 20 }]);
        let kinds: Vec<(WasteKind, usize, usize, u64)> =
            a.waste.iter().map(|w| (w.kind, w.layer, w.by, w.bytes)).collect();
        assert_eq!(
            kinds,
            vec![
                (WasteKind::Deleted, 1, 2, 1500),
                (WasteKind::Duplicate, 0, 2, 100),
                (WasteKind::Deleted, 2, 3, 20),
                (WasteKind::Overwritten, 1, 2, 10),
            ]
        );
        assert_eq!(a.waste[0].paths, vec!["/big/a", "/big/b"]);
        assert_eq!(a.waste[1].paths, vec!["/opt/sh-copy = /bin/sh"]);
        assert_eq!(a.wasted_bytes, 1630);
        assert_eq!(a.user_wasted_bytes, 1630);
        assert_eq!(a.user_size, 1635);
        // dive: per path min/sum; /big/a 0/1000, /big/b 0/500, /etc/conf 0/30, others 1.
        let eff = (100 + 100 + 5) as f64 / (100 + 1000 + 500 + 30 + 100 + 5) as f64;
        assert!((a.efficiency - eff).abs() < 1e-9, "{} != {eff}", a.efficiency);
        crate::store::remove_all(&root).unwrap();
    }

    #[test]
    fn an_image_without_waste_is_fully_efficient() {
        let root = tmp("clean");
        let l: Vec<LayerInput> = (0..2).map(|n| input(&root, n)).collect();
        write(&l[0].dir, "a", 3);
        write(&l[1].dir, "b", 4);
        let a = analyze_layers(&l, 1).unwrap();
        assert_eq!((a.wasted_bytes, a.efficiency, a.user_size), (0, 1.0, 4));
        assert!(a.waste.is_empty());
        crate::store::remove_all(&root).unwrap();
    }
}
