//! The runtime's hot paths on generated trees: content hashing of a build context (cold,
//! and warm through the stat cache) and packing a layer directory into a gzipped tar
//! (cairn's chunked parallel gzip against one flate2 stream, on text and on random bytes).
//! Run: `cargo bench -p cairn-runtime --bench hot_paths`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use cairn_runtime::gzip::ChunkedGzWriter;
use cairn_runtime::layer::write_layer_tar;
use cairn_runtime::solve::hash::{hash_entry, HashOpts, StatCache};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

/// Deterministic bytes: text-like when `text`, otherwise xorshift noise.
fn content(len: usize, seed: u64, text: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut s = seed | 1;
    while out.len() < len {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        if text {
            out.extend_from_slice(format!("let v{} = compute({}, \"{}\");\n", s % 1000, s % 97, s % 13).as_bytes());
        } else {
            out.extend_from_slice(&s.to_le_bytes());
        }
    }
    out.truncate(len);
    out
}

/// A fresh directory `name` under the temp dir with `small` files of ~1 KiB (40 per
/// subdirectory) and the given large files; returns its path and total size.
fn tree(name: &str, small: usize, large: &[(usize, bool)]) -> (PathBuf, u64) {
    let root = std::env::temp_dir().join(format!("cairn-bench-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    let mut total = 0;
    for i in 0..small {
        let d = root.join(format!("pkg{:03}", i / 40));
        fs::create_dir_all(&d).unwrap();
        let c = content(512 + (i * 37) % 1024, i as u64, true);
        total += c.len() as u64;
        fs::write(d.join(format!("file{i:04}.rs")), c).unwrap();
    }
    fs::create_dir_all(root.join("assets")).unwrap();
    for (i, &(len, text)) in large.iter().enumerate() {
        fs::write(root.join(format!("assets/large{i}.bin")), content(len, 1000 + i as u64, text)).unwrap();
        total += len as u64;
    }
    (root, total)
}

fn remove(dir: &Path) {
    let _ = fs::remove_dir_all(dir);
}

fn context_hashing(c: &mut Criterion) {
    let (dir, total) = tree("ctx", 2000, &[(8 << 20, false), (8 << 20, true)]);
    let mut g = c.benchmark_group("context-hash");
    g.sample_size(10).measurement_time(Duration::from_secs(5)).throughput(Throughput::Bytes(total));
    g.bench_function("2000 small + 2×8 MiB, cold", |b| {
        b.iter(|| hash_entry(&dir, "", &HashOpts { filter: None, stat_cache: None }).unwrap())
    });
    let cache = StatCache::in_memory();
    hash_entry(&dir, "", &HashOpts { filter: None, stat_cache: Some(&cache) }).unwrap();
    g.bench_function("2000 small + 2×8 MiB, stat cache warm", |b| {
        b.iter(|| hash_entry(&dir, "", &HashOpts { filter: None, stat_cache: Some(&cache) }).unwrap())
    });
    let saved = dir.with_extension("statcache");
    let on_disk = StatCache::load(&saved);
    hash_entry(&dir, "", &HashOpts { filter: None, stat_cache: Some(&on_disk) }).unwrap();
    on_disk.save().unwrap();
    g.bench_function("stat cache load of 2002 entries", |b| b.iter(|| StatCache::load(&saved)));
    g.finish();
    remove(&dir);
    let _ = fs::remove_file(&saved);
}

/// Counts what is written (a sink that keeps the compressed size honest).
struct Count(u64);

impl Write for Count {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn layer_packing(c: &mut Criterion) {
    for (name, text) in [("text", true), ("random", false)] {
        let (dir, total) = tree(&format!("layer-{name}"), 500, &[(24 << 20, text)]);
        let mut g = c.benchmark_group(format!("layer-tar-gzip-{name}"));
        g.sample_size(10).measurement_time(Duration::from_secs(8)).throughput(Throughput::Bytes(total));
        g.bench_function("tar only", |b| b.iter(|| write_layer_tar(&dir, Count(0), None).unwrap()));
        g.bench_function("tar + chunked parallel gzip -1", |b| {
            b.iter_batched(
                || ChunkedGzWriter::new(Count(0), 1),
                |mut w| {
                    write_layer_tar(&dir, &mut w, None).unwrap();
                    w.finish().unwrap().0
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_function("tar + flate2 gzip -1 (one stream)", |b| {
            b.iter_batched(
                || flate2::write::GzEncoder::new(Count(0), flate2::Compression::new(1)),
                |mut w| {
                    write_layer_tar(&dir, &mut w, None).unwrap();
                    w.finish().unwrap().0
                },
                BatchSize::SmallInput,
            )
        });
        g.finish();
        remove(&dir);
    }
}

criterion_group!(benches, context_hashing, layer_packing);
criterion_main!(benches);
