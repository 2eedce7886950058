//! Parse throughput (MB/s) on the grammar corpus, side by side with the hand-written
//! `parse-dockerfile` crate. Run: `cargo bench -p cairn-grammar --bench parse`.

use std::fs;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Every ok-corpus Dockerfile both parsers accept (parse-dockerfile rejects some BuildKit
/// syntax), concatenated into one realistic input per file.
fn corpus() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for dir in ["test_data/ok", "../compiler/test_data/corpus"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for p in paths {
            if p.extension().is_none_or(|e| e != "Dockerfile") {
                continue;
            }
            let text = fs::read_to_string(&p).unwrap();
            if cairn_grammar::parse("Dockerfile", &text).is_ok() && parse_dockerfile::parse(&text).is_ok() {
                out.push((p.file_name().unwrap().to_string_lossy().into_owned(), text));
            }
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let files = corpus();
    let total: usize = files.iter().map(|(_, t)| t.len()).sum();
    let mut g = c.benchmark_group("parse-corpus");
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("cairn-grammar", |b| {
        b.iter(|| {
            for (_, t) in &files {
                std::hint::black_box(cairn_grammar::parse("Dockerfile", t).unwrap());
            }
        })
    });
    g.bench_function("parse-dockerfile", |b| {
        b.iter(|| {
            for (_, t) in &files {
                std::hint::black_box(parse_dockerfile::parse(t).unwrap());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
