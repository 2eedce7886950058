//! Invariants of the store's boundaries, checked over the runtime's source: only the store
//! knows store paths (every name under the store root is spelled in `runtime/src/store/`,
//! in `StoreLayout`; other modules ask the store), and the store, image and layer code do
//! not import each other in a loop.

use std::fs;
use std::path::{Path, PathBuf};

/// Names that only mean the store: string literals, anywhere.
const LITERALS: &[&str] = &[
    "\"cachemounts",
    "\"statcache",
    "\"layermeta",
    "\"diffids",
    "\"tags.json",
    "\"gc.lock",
    "\"solve/empty",
    "\"solve/mnt",
];

/// Short names, flagged when joined onto a path. (`blobs/sha256` is left out: it is also
/// the OCI image layout's blob directory, which the exporters and importers write and
/// read outside any store.)
const JOINED: &[&str] = &["layers", "cache", "images", "tmp", "http", "lock", "solve"];

/// Files outside `store/` that still spell store paths (the test fails once one no longer
/// does, so the list only shrinks).
const TOLERATED: &[&str] = &[];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source without its unit tests (`#[cfg(test)]` and everything after it: test
/// modules come last in this code base).
fn non_test(src: &str) -> &str {
    src.find("#[cfg(test)]").map_or(src, |i| &src[..i])
}

fn offences(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (n, line) in non_test(src).lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let literal = LITERALS.iter().any(|lit| code.contains(lit));
        let joined = JOINED
            .iter()
            .any(|name| code.contains(&format!(".join(\"{name}\")")) || code.contains(&format!(".join(\"{name}/")));
        if literal || joined {
            out.push(format!("line {}: {}", n + 1, line.trim()));
        }
    }
    out
}

#[test]
fn only_the_store_knows_store_paths() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut bad = Vec::new();
    let mut tolerated_clean = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        // Unit-test files (`tests.rs`, `*_tests.rs`) build fake stores of their own.
        if rel.starts_with("store/") || rel.ends_with("/tests.rs") || rel.ends_with("_tests.rs") {
            continue;
        }
        let found = offences(&fs::read_to_string(f).unwrap());
        if TOLERATED.contains(&rel.as_str()) {
            if found.is_empty() {
                tolerated_clean.push(rel);
            }
            continue;
        }
        bad.extend(found.into_iter().map(|o| format!("{rel} {o}")));
    }
    assert!(
        bad.is_empty(),
        "store paths spelled outside runtime/src/store/ (use `Store::layout()`):\n{}",
        bad.join("\n")
    );
    assert!(
        tolerated_clean.is_empty(),
        "these files no longer spell store paths: remove them from TOLERATED: {tolerated_clean:?}"
    );
}

#[test]
fn the_scan_finds_what_it_looks_for() {
    assert_eq!(offences("let d = opts.root.join(\"cachemounts\").join(&n);").len(), 1);
    assert_eq!(offences("let d = root.join(\"solve/empty\");").len(), 1);
    assert_eq!(offences("let d = root.join(\"http\").join(x);").len(), 1);
    assert!(offences("let d = layout.cache_mounts_dir(); // not \"cachemounts\"").is_empty());
    assert!(offences("#[cfg(test)]\nmod tests { fn f() { root.join(\"tmp\"); } }").is_empty());
    assert!(offences("let b = dir.join(\"blobs/sha256\");").is_empty());
}

/// `crate::…` paths named in the non-comment code of the files under `dir`.
fn crate_uses(dir: &str) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir), &mut files);
    let mut out = Vec::new();
    for f in files {
        let src = fs::read_to_string(&f).unwrap();
        for line in src.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (i, _) in line.match_indices("crate::") {
                let name: String = line[i + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                out.push(name);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// **Architecture Invariant:** no import loop between the store, image and layer code:
/// `oci` uses nothing else in the runtime, the store only `oci`, layers only the store.
#[test]
fn store_image_and_layer_do_not_import_each_other_in_a_loop() {
    assert_eq!(crate_uses("oci"), Vec::<String>::new());
    assert_eq!(crate_uses("store"), ["oci"]);
    assert_eq!(crate_uses("layer"), ["store"]);
    for m in crate_uses("image") {
        assert!(["compress", "gzip", "layer", "oci", "store"].contains(&m.as_str()), "image uses crate::{m}");
    }
}
