//! Why two images of one build differ: the first differing config field, or the first
//! differing entry of the first differing layer. `cairn build --verify-reproducible` uses
//! it to explain a digest mismatch in terms of a file and what about it changed.
//!
//! Layers are compared as the tars the images hold (not the layer directories), because
//! the tar is what the digest covers: an mtime that the SOURCE_DATE_EPOCH clamp leaves
//! alone, or an owner, counts exactly when it reaches the tar. Entries are sorted in our
//! tars (see [`crate::layer`]), so one pass over both in step finds the first difference.

use std::io::{self, Read};
use std::path::Path;

use serde_json::Value;

use crate::store::ImageRecord;
use crate::store::{io_err, Store, StoreError};

/// Describes the first difference between images `a` and `b` of the store (`None` when
/// their manifests are equal).
pub(crate) fn first_difference(store: &Store, a: &ImageRecord, b: &ImageRecord) -> Result<Option<String>, StoreError> {
    if a.manifest_digest == b.manifest_digest {
        return Ok(None);
    }
    let config = |r: &ImageRecord| -> Result<Value, StoreError> {
        let bytes = store.read_blob(&r.config_digest)?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path: store.blob_path(&r.config_digest),
            message: format!("not an image config: {e}"),
        })
    };
    let (mut ca, mut cb) = (config(a)?, config(b)?);
    let ids = |c: &Value| -> Vec<String> {
        c["rootfs"]["diff_ids"]
            .as_array()
            .map_or(Vec::new(), |v| v.iter().filter_map(|d| d.as_str().map(str::to_string)).collect())
    };
    let (ia, ib) = (ids(&ca), ids(&cb));
    let history = |c: &Value| -> Vec<String> {
        c["history"].as_array().map_or(Vec::new(), |v| {
            v.iter()
                .filter(|h| !h["empty_layer"].as_bool().unwrap_or(false))
                .map(|h| h["created_by"].as_str().unwrap_or("").to_string())
                .collect()
        })
    };
    let steps = history(&ca);
    for c in [&mut ca, &mut cb] {
        if let Some(o) = c.as_object_mut() {
            o.remove("rootfs");
        }
    }
    if ia.len() != ib.len() {
        return Ok(Some(format!("the first build has {} layers, the second {}", ia.len(), ib.len())));
    }
    if let Some(i) = (0..ia.len()).find(|&i| ia[i] != ib[i]) {
        let blobs_a = store.image_layer_blobs(a)?;
        let blobs_b = store.image_layer_blobs(b)?;
        let (pa, pb) = (store.blob_path(&blobs_a[i].blob), store.blob_path(&blobs_b[i].blob));
        let what = layer_difference(&pa, &pb)?
            .unwrap_or_else(|| "the layer tars differ in their encoding, not in any entry".to_string());
        let step = steps.get(i).filter(|s| !s.is_empty()).map_or(String::new(), |s| format!(" (`{s}`)"));
        return Ok(Some(format!("layer {} of {}{step}: {what}", i + 1, ia.len())));
    }
    Ok(Some(match value_difference(&ca, &cb, "") {
        Some(d) => format!("the image config differs at {d}"),
        None => "the manifests differ although configs and layers are equal".to_string(),
    }))
}

/// The first path below `at` where two JSON values differ, with both values.
fn value_difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                let (va, vb) = (x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null));
                value_difference(va, vb, &format!("{at}.{k}"))
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (va, vb))| value_difference(va, vb, &format!("{at}[{i}]")))
        }
        _ if a == b => None,
        _ => Some(format!("`{}`: {a} vs {b}", at.trim_start_matches('.'))),
    }
}

fn open_layer(p: &Path) -> Result<tar::Archive<Box<dyn Read>>, StoreError> {
    Ok(tar::Archive::new(crate::image::open_maybe_gzip(p)?))
}

/// One tar entry as far as a digest can see it: path, header fields, PAX records, content.
struct Entry {
    path: String,
    fields: Vec<(&'static str, String)>,
    data: Vec<u8>,
}

fn read_entry(e: &mut tar::Entry<'_, Box<dyn Read>>) -> io::Result<Entry> {
    let h = e.header().clone();
    let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
    let link = e.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default();
    let mut pax = Vec::new();
    if let Some(exts) = e.pax_extensions()? {
        for x in exts.flatten() {
            pax.push(format!("{}={}", x.key().unwrap_or("?"), String::from_utf8_lossy(x.value_bytes())));
        }
    }
    let mut data = Vec::new();
    e.read_to_end(&mut data)?;
    let fields = vec![
        ("type", format!("{:?}", h.entry_type())),
        ("mode", format!("{:o}", h.mode().unwrap_or(0))),
        ("uid", h.uid().unwrap_or(0).to_string()),
        ("gid", h.gid().unwrap_or(0).to_string()),
        ("mtime", h.mtime().unwrap_or(0).to_string()),
        ("link target", link),
        ("extended attributes", pax.join(", ")),
        ("size", data.len().to_string()),
    ];
    Ok(Entry { path, fields, data })
}

/// The first entry that differs between two layer tars, in words.
fn layer_difference(a: &Path, b: &Path) -> Result<Option<String>, StoreError> {
    let (mut ta, mut tb) = (open_layer(a)?, open_layer(b)?);
    let mut ea = ta.entries().map_err(io_err("read", a))?;
    let mut eb = tb.entries().map_err(io_err("read", b))?;
    loop {
        let na = ea.next().transpose().map_err(io_err("read", a))?;
        let nb = eb.next().transpose().map_err(io_err("read", b))?;
        let (mut x, mut y) = match (na, nb) {
            (None, None) => return Ok(None),
            (Some(mut x), None) => {
                let e = read_entry(&mut x).map_err(io_err("read", a))?;
                return Ok(Some(format!("`/{}` is only in the first build", e.path)));
            }
            (None, Some(mut y)) => {
                let e = read_entry(&mut y).map_err(io_err("read", b))?;
                return Ok(Some(format!("`/{}` is only in the second build", e.path)));
            }
            (Some(x), Some(y)) => (x, y),
        };
        let x = read_entry(&mut x).map_err(io_err("read", a))?;
        let y = read_entry(&mut y).map_err(io_err("read", b))?;
        if x.path != y.path {
            let (first, which) = if x.path < y.path { (&x.path, "first") } else { (&y.path, "second") };
            return Ok(Some(format!("`/{first}` is only in the {which} build")));
        }
        for ((name, va), (_, vb)) in x.fields.iter().zip(&y.fields) {
            if va != vb {
                return Ok(Some(format!("`/{}`: its {name} differs ({va} vs {vb})", x.path)));
            }
        }
        if x.data != y.data {
            return Ok(Some(format!("`/{}`: its content differs", x.path)));
        }
    }
}
