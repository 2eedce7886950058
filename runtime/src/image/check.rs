//! `cairn check`: every blob and every packed layer of the store checked against its
//! digest, and with `repair` the damaged ones dropped so the next build makes them again.
//!
//! What is verified when (issue 13):
//! - `cairn check`: each file under `blobs/sha256/` hashes to its name; each layer
//!   directory that was ever packed (every layer of a committed image) packs again to the
//!   `diff_id` recorded then. A layer only ever imported is verified through its blob; a
//!   layer never packed (an intermediate step) has nothing to compare with and is counted
//!   as unverified.
//! - Exports (`-o type=oci`, `type=docker`, `cairn save`): each blob is hashed while it is
//!   copied out (docker archives: each layer's `diff_id` while decompressing), and a
//!   mismatch fails the export naming the blob, so a damaged store never yields an output
//!   that does not match its own digests.
//!
//! Repair drops what is damaged: a blob file (a packed layer blob is packed again at the
//! next commit; a config or manifest is written again by the next build of the image), a
//! layer directory (the cache index then misses for every chain holding it, so the next
//! build runs those steps again). An image whose imported layer blob was damaged must be
//! loaded again; the report says so.

use std::fs;
use std::io;

use cairn_ir::Digest;

use crate::store::{io_err, remove_all, HashReader, HashWriter, Store, StoreError};

/// What `check_store` found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub blobs_checked: usize,
    pub layers_checked: usize,
    /// Layers with no recorded digest to compare with.
    pub layers_unverified: usize,
    /// One line per damaged entry: what and why.
    pub damaged: Vec<String>,
    /// One line per entry dropped by `repair`.
    pub repaired: Vec<String>,
}

/// The sha256 of a file's content.
fn file_digest(p: &std::path::Path) -> io::Result<Digest> {
    let mut r = HashReader::new(io::BufReader::with_capacity(256 * 1024, fs::File::open(p)?));
    io::copy(&mut r, &mut io::sink())?;
    Ok(r.digest())
}

/// Checks every blob and every packed layer; with `repair`, removes the damaged ones.
pub fn check_store(store: &Store, repair: bool) -> Result<CheckReport, StoreError> {
    let mut report = CheckReport::default();
    let dir = store.layout().blobs_dir();
    let mut names: Vec<String> = fs::read_dir(&dir)
        .map_err(io_err("read directory", &dir))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    let mut bad_blobs = Vec::new();
    for name in names {
        let p = dir.join(&name);
        let got = file_digest(&p).map_err(io_err("read", &p))?;
        report.blobs_checked += 1;
        if got.hex() != name {
            report.damaged.push(format!("blob sha256:{name}: its content hashes to {got}"));
            bad_blobs.push(name.clone());
            if repair {
                fs::remove_file(&p).map_err(io_err("remove", &p))?;
                report.repaired.push(format!("removed blob sha256:{name}"));
            }
        }
    }
    for id in store.list_layers()? {
        let meta = store.layer_meta(&id)?;
        if let Some(b) = &meta.imported {
            if bad_blobs.contains(&b.blob.hex()) {
                report.damaged.push(format!(
                    "layer {id} was imported from blob {}, which is damaged: load its image again",
                    b.blob
                ));
            }
        }
        // An imported layer's packed blobs (`force-compression`) are its original tar
        // re-compressed, not its directory packed: it is verified through its blob.
        let Some(p) = meta.packed.first().filter(|_| meta.imported.is_none()) else {
            if meta.imported.is_none() {
                report.layers_unverified += 1;
            } else {
                report.layers_checked += 1;
            }
            continue;
        };
        let path = store.layer_path(&id);
        let mut w = HashWriter::new(io::sink());
        crate::layer::write_layer_tar(&path, &mut w, p.source_date_epoch).map_err(io_err("pack layer", &path))?;
        report.layers_checked += 1;
        if w.digest() != p.blob.diff_id {
            report.damaged.push(format!(
                "layer {id}: its directory packs to {} instead of the recorded {}",
                w.digest(),
                p.blob.diff_id
            ));
            if repair {
                remove_all(&path).map_err(io_err("remove", &path))?;
                report.repaired.push(format!("removed layer {id} (the steps that made it run again)"));
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue13_check_finds_and_repairs_a_damaged_blob_and_layer() {
        let root = std::env::temp_dir().join(format!("cairn-check-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let store = Store::open(&root).unwrap();
        let good = store.put_blob(b"good").unwrap();
        let bad = store.put_blob(b"bad bytes").unwrap();
        let nl = store.new_layer().unwrap();
        fs::write(nl.upper.join("file"), "v1").unwrap();
        let id = store.commit_layer(nl).unwrap();
        let opts = super::super::CommitOptions::default();
        let lb = super::super::commit::pack_layer(&store, &id, &opts).unwrap();
        let clean = check_store(&store, false).unwrap();
        assert!(clean.damaged.is_empty(), "{clean:?}");
        assert_eq!((clean.blobs_checked, clean.layers_checked), (3, 1));

        fs::write(store.blob_path(&bad), b"BAD bytes").unwrap();
        fs::write(store.layer_path(&id).join("file"), "v2").unwrap();
        let r = check_store(&store, false).unwrap();
        assert_eq!(r.damaged.len(), 2, "{r:?}");
        assert!(r.damaged[0].contains(&bad.hex()), "{r:?}");
        assert!(r.damaged[1].contains(&id), "{r:?}");
        assert!(r.repaired.is_empty());

        let r = check_store(&store, true).unwrap();
        assert_eq!(r.repaired.len(), 2, "{r:?}");
        assert!(store.get_blob_path(&bad).is_none() && store.get_blob_path(&good).is_some());
        assert!(store.get_blob_path(&lb.blob).is_some());
        assert!(!store.layer_exists(&id));
        assert!(check_store(&store, false).unwrap().damaged.is_empty());
        drop(store);
        fs::remove_dir_all(&root).unwrap();
    }
}
