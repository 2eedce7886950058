//! Issue 14, a build cache shared by many machines: two stores (two `CAIRN_ROOT`s) stand
//! for two machines, one `docker-registry` on 127.0.0.1 for the registry they share.
//! Machine-independent keys, `--cache-to`/`--cache-from` with `type=registry` and
//! `type=local`, lazy import (what is downloaded, from the registry's own log), many
//! writers on one ref, and a corrupted cache blob.

use std::path::Path;
use std::process::Output;

use crate::build_cli::{cairn_in, setup, stderr, Tmp};

/// The cache record names (the keys) of a store.
fn keys(store: &Path) -> Vec<String> {
    let mut k: Vec<String> = std::fs::read_dir(store.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    k.sort();
    k
}

/// A build of `ctx` into `store` with rawjson progress.
fn build_in(store: &Path, ctx: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["build", "--progress", "rawjson"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    cairn_in(store, &args)
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

const DOCKERFILE: &str = "FROM busybox\n\
WORKDIR /app\n\
RUN echo one > /one.txt\n\
COPY src/ /app/src/\n\
RUN cat /app/src/*.txt > /app/all.txt && echo built >> /app/all.txt\n\
COPY extra.txt /app/\n\
RUN wc -c /app/all.txt > /app/size.txt\n";

fn write_context(t: &Tmp, dir: &str) {
    t.write(&format!("{dir}/Dockerfile"), DOCKERFILE);
    t.write(&format!("{dir}/src/a.txt"), "alpha\n");
    t.write(&format!("{dir}/src/b.txt"), "beta\n");
    t.write(&format!("{dir}/extra.txt"), "extra\n");
}

/// SPEC.md §6: no host path, inode or store-local id in a key. Two stores in different
/// directories, building copies of one context at different paths (written at different
/// times), record the same keys.
#[test]
fn issue14_two_stores_compute_equal_keys() {
    let a = setup("keys-a");
    let b = setup("keys-b");
    write_context(&a, "somewhere/ctx");
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_context(&b, "elsewhere/deeper/ctx");
    ok(build_in(&a.path("store"), &a.path("somewhere/ctx"), &[]));
    ok(build_in(&b.path("store"), &b.path("elsewhere/deeper/ctx"), &[]));
    let (ka, kb) = (keys(&a.path("store")), keys(&b.path("store")));
    assert!(ka.len() >= 6, "every step recorded a key: {ka:?}");
    assert_eq!(ka, kb, "the two stores computed different keys");
}
