//! parse+compile throughput on the corpus, and the latency of one 200-line Dockerfile.
//! `cargo bench -p cairn-compiler --bench compile`; results go into BENCHMARKS.md.

use std::path::Path;

use cairn_compiler::dockerfile::CompileOptions;
use cairn_compiler::resolver::NoImages;
use cairn_compiler::{compile_dockerfile, passes};
use cairn_ir::Platform;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn corpus() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/corpus");
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
                .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn opts(name: &str) -> CompileOptions {
    let mut o = CompileOptions::new(name);
    o.build_platform = Platform::new("linux", "amd64", "");
    o
}

fn bench(c: &mut Criterion) {
    let files = corpus();
    let bytes: usize = files.iter().map(|(_, t)| t.len()).sum();
    let mut g = c.benchmark_group("corpus");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("parse", |b| {
        b.iter(|| {
            for (n, t) in &files {
                std::hint::black_box(cairn_grammar::parse(n, t).unwrap());
            }
        })
    });
    g.bench_function("parse+compile+optimize", |b| {
        b.iter(|| {
            for (n, t) in &files {
                let c = compile_dockerfile(t, &opts(n), &NoImages).unwrap();
                std::hint::black_box(passes::optimize(&c.graph).to_definition());
            }
        })
    });
    g.finish();
    // The largest corpus file with at least 200 lines, else a synthetic 200-line file.
    let big =
        files.iter().filter(|(_, t)| t.lines().count() >= 200).max_by_key(|(_, t)| t.len()).cloned().unwrap_or_else(
            || {
                let mut t = String::from("FROM busybox AS base\n");
                for i in 0..199 {
                    t.push_str(&format!("RUN echo step {i} > /f{i}\n"));
                }
                ("synthetic".into(), t)
            },
        );
    c.bench_function(&format!("200-line parse+compile+optimize ({}, {} lines)", big.0, big.1.lines().count()), |b| {
        b.iter(|| {
            let c = compile_dockerfile(&big.1, &opts(&big.0), &NoImages).unwrap();
            std::hint::black_box(passes::optimize(&c.graph).to_definition())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
