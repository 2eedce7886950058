//! Crash safety and concurrency of the store with real processes: leftovers of dead
//! processes are cleaned at open, a writer killed with SIGKILL at random instants never
//! leaves a half-written entry, tag updates from several threads and processes are never
//! lost, and prune refuses to run while another process has the store open.
//!
//! Child processes are this test binary re-executed on the test `child_process_entry`
//! with `CAIRN_STORE_CHILD` set; without it that test returns at once.

mod store_common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_ir::{Digest, ImageConfig};
use cairn_runtime::export;
use cairn_runtime::image::{commit_image, CommitOptions};
use cairn_runtime::store::{Store, StoreError};
use store_common::*;

fn child(mode: &str, root: &Path, extra: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "child_process_entry", "--nocapture", "--test-threads=1"])
        .env("CAIRN_STORE_CHILD", mode)
        .env("CAIRN_STORE_CHILD_ROOT", root)
        .env("CAIRN_STORE_CHILD_ARG", extra);
    c
}

fn config() -> ImageConfig {
    ImageConfig { architecture: "amd64".into(), os: "linux".into(), ..Default::default() }
}

/// Pseudo-random bytes (xorshift) so gzip has real work to do.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x & 0x3f) as u8 + b' '
        })
        .collect()
}

fn small_image(store: &Store, tag: &str) -> cairn_runtime::store::ImageRecord {
    let l = store.new_layer().unwrap();
    fs::write(l.upper.join("f"), tag).unwrap();
    let id = store.commit_layer(l).unwrap();
    commit_image(store, &[id], &config(), &CommitOptions::default()).unwrap()
}

/// Entry point of the child processes; a no-op in a normal test run.
#[test]
fn child_process_entry() {
    let Ok(mode) = std::env::var("CAIRN_STORE_CHILD") else { return };
    let root = PathBuf::from(std::env::var("CAIRN_STORE_CHILD_ROOT").unwrap());
    let arg = std::env::var("CAIRN_STORE_CHILD_ARG").unwrap_or_default();
    let store = Store::open(&root).unwrap();
    match mode.as_str() {
        "tagger" => {
            let rec = small_image(&store, &arg);
            for i in 0..40 {
                store.tag_image(&format!("{arg}-{i}"), &rec).unwrap();
            }
        }
        "holder" => {
            println!("ready");
            std::thread::sleep(Duration::from_secs(60));
        }
        "writer" => {
            let out = root.parent().unwrap().join("exports");
            fs::create_dir_all(&out).unwrap();
            for i in 0u64.. {
                let seed: u64 = arg.parse::<u64>().unwrap_or(1) * 1000 + i;
                let l = store.new_layer().unwrap();
                for f in 0..3 {
                    fs::write(l.upper.join(format!("f{f}")), noise(seed * 7 + f, 1 << 20)).unwrap();
                }
                let id = store.commit_layer(l).unwrap();
                store.cache_put(&format!("key{seed}"), &[vec![id.clone()]]).unwrap();
                let rec = commit_image(&store, &[id], &config(), &CommitOptions::default()).unwrap();
                store.tag_image(&format!("crash/img:{seed}"), &rec).unwrap();
                export::export_oci_layout(&store, &rec, &out.join("layout"), false, Some("t")).unwrap();
                export::export_docker_archive(&store, &rec, &out.join("image.tar"), &["crash/img:x".into()]).unwrap();
                println!("iteration {i}");
            }
        }
        other => panic!("unknown child mode {other}"),
    }
}

/// Checks every invariant a reader relies on; panics with the offending path.
fn check_consistent(root: &Path) {
    let store = Store::open(root).unwrap();
    if let Some(e) = fs::read_dir(root.join("tmp")).unwrap().next() {
        panic!("tmp/ entry left after open: {:?}", e.unwrap().path());
    }
    for e in fs::read_dir(root.join("blobs/sha256")).unwrap() {
        let p = e.unwrap().path();
        let d = Digest::of(&fs::read(&p).unwrap());
        assert_eq!(d.hex(), p.file_name().unwrap().to_string_lossy(), "blob content matches its name: {}", p.display());
    }
    for (name, rec) in store.list_images().unwrap() {
        let cfg = store.image_config(&rec).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(cfg.rootfs.diff_ids.len(), rec.layers.len());
        for id in &rec.layers {
            assert!(store.layer_exists(id), "{name}: layer {id}");
        }
        for b in store.image_layer_blobs(&rec).unwrap() {
            assert!(store.get_blob_path(&b.blob).is_some(), "{name}: blob {}", b.blob);
        }
    }
    for e in fs::read_dir(root.join("cache")).unwrap() {
        let key = e.unwrap().file_name().to_string_lossy().into_owned();
        store.cache_get(&key).unwrap().unwrap_or_else(|| panic!("cache record {key} is complete and its layers exist"));
    }
    for id in store.list_layers().unwrap() {
        store.layer_meta(&id).unwrap_or_else(|e| panic!("{e}"));
    }
    let exports = root.parent().unwrap().join("exports");
    if exports.join("layout").exists() {
        let idx: serde_json::Value =
            serde_json::from_slice(&fs::read(exports.join("layout/index.json")).unwrap()).unwrap();
        let d: Digest = idx["manifests"][0]["digest"].as_str().unwrap().parse().unwrap();
        assert!(exports.join("layout/blobs/sha256").join(d.hex()).is_file());
    }
    if exports.join("image.tar").exists() {
        let names = tar_listing(&fs::read(exports.join("image.tar")).unwrap());
        assert!(names.iter().any(|(n, _, _)| n == "manifest.json"), "a complete docker-archive");
    }
}

#[test]
fn leftovers_of_dead_processes_are_removed_at_open() {
    let d = tmpdir("leftovers");
    let root = d.join("store");
    let store = Store::open(&root).unwrap();
    let img = small_image(&store, "x");
    store.tag_image("left/over", &img).unwrap();
    drop(store);
    // A pid that surely ran and is gone: a finished child.
    let mut c = Command::new("true").spawn().unwrap();
    let dead = c.id();
    c.wait().unwrap();
    let tmp = root.join("tmp");
    fs::create_dir_all(tmp.join(format!("{dead}-1-layer/upper/usr/bin"))).unwrap();
    fs::write(tmp.join(format!("{dead}-1-layer/upper/usr/bin/half")), noise(1, 1000)).unwrap();
    fs::create_dir_all(tmp.join(format!("{dead}-1-layer/work/work"))).unwrap();
    chmod(&tmp.join(format!("{dead}-1-layer/work/work")), 0o000);
    fs::write(tmp.join(format!("{dead}-2-blob")), &noise(2, 5000)[..1234]).unwrap();
    fs::write(tmp.join(format!("{dead}-3-write")), b"{\"docker.io/half").unwrap();
    let mine = tmp.join(format!("{}-99-layer", std::process::id()));
    fs::create_dir_all(&mine).unwrap();
    let stranger = tmp.join("not-ours");
    fs::write(&stranger, "?").unwrap();

    let store = Store::open(&root).unwrap();
    let left: Vec<String> =
        fs::read_dir(&tmp).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let mut left = left;
    left.sort();
    assert_eq!(
        left,
        vec![mine.file_name().unwrap().to_string_lossy().into_owned(), "not-ours".into()],
        "only live or foreign entries stay"
    );
    assert_eq!(store.get_image("left/over").unwrap(), Some(img));
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_writer_killed_at_random_instants_leaves_a_consistent_store() {
    let d = tmpdir("kill");
    let root = d.join("store");
    let mut completed = 0;
    for round in 0..6u64 {
        let mut c: Child = child("writer", &root, &round.to_string()).stdout(Stdio::piped()).spawn().unwrap();
        let out = c.stdout.take().unwrap();
        if round % 2 == 1 {
            // Let one iteration finish, so kills also hit replacements of existing outputs.
            let mut lines = BufReader::new(out).lines();
            while !lines.next().unwrap().unwrap().contains("iteration") {}
            std::thread::spawn(move || lines.for_each(drop));
        } else {
            std::thread::spawn(move || BufReader::new(out).lines().for_each(drop));
        }
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
        std::thread::sleep(Duration::from_millis(100 + (nanos + round * 7919) % 1200));
        c.kill().unwrap();
        c.wait().unwrap();
        check_consistent(&root);
        completed += Store::open(&root).unwrap().list_images().unwrap().len();
    }
    assert!(completed > 0, "the writer finished at least one image over all rounds");
    // The store stays fully usable: commit, tag, prune and export after the crashes.
    let store = Store::open(&root).unwrap();
    let rec = small_image(&store, "after");
    store.tag_image("after/crash", &rec).unwrap();
    store.prune(false).unwrap();
    export::export_oci_layout(&store, &rec, &d.join("final"), true, None).unwrap();
    drop(store);
    check_consistent(&root);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn concurrent_tag_writes_from_threads_and_processes_are_all_kept() {
    let d = tmpdir("tags");
    let root = d.join("store");
    std::thread::scope(|s| {
        for t in ["thread-a", "thread-b", "thread-c"] {
            let root = &root;
            s.spawn(move || {
                let store = Store::open(root).unwrap();
                let rec = small_image(&store, t);
                for i in 0..40 {
                    store.tag_image(&format!("{t}-{i}"), &rec).unwrap();
                }
            });
        }
    });
    let procs: Vec<Child> =
        ["proc-a", "proc-b"].iter().map(|p| child("tagger", &root, p).stdout(Stdio::null()).spawn().unwrap()).collect();
    for mut p in procs {
        assert!(p.wait().unwrap().success());
    }
    let store = Store::open(&root).unwrap();
    let names = store.list_images().unwrap();
    assert_eq!(names.len(), 5 * 40, "no tag update was lost");
    for who in ["thread-a", "thread-b", "thread-c", "proc-a", "proc-b"] {
        let recs: Vec<_> =
            names.iter().filter(|(n, _)| n.contains(&format!("/{who}-"))).map(|(_, r)| r.manifest_digest).collect();
        assert_eq!(recs.len(), 40, "{who}");
        assert!(recs.iter().all(|r| *r == recs[0]));
    }
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn prune_waits_for_no_one_and_refuses_while_another_process_uses_the_store() {
    let d = tmpdir("busy");
    let root = d.join("store");
    let store = Store::open(&root).unwrap();
    let mut holder = child("holder", &root, "").stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    let start = Instant::now();
    while !lines.next().unwrap().unwrap().contains("ready") {
        assert!(start.elapsed() < Duration::from_secs(30));
    }
    let err = store.prune(false).unwrap_err();
    assert!(matches!(err, StoreError::Busy(_)));
    assert!(err.to_string().contains("is in use by another cairn process"), "{err}");
    holder.kill().unwrap();
    holder.wait().unwrap();
    store.prune(false).unwrap();
    // The store still holds its shared lock: a second prune from elsewhere is refused.
    let other = Store::open(&root).unwrap();
    assert!(matches!(other.prune(true), Err(StoreError::Busy(_))));
    fs::remove_dir_all(&d).unwrap();
}
