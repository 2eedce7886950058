//! Parses the benchmark corpus N times with one parser, for instruction counts that do not
//! depend on machine load (criterion's wall-clock figures do). `benches/callgrind.sh` runs
//! it under valgrind for both parsers and prints instructions and allocations per pass.
//!
//! `parse_count cairn|parse-dockerfile N`: the corpus is that of `benches/parse.rs` (the
//! files of `test_data/ok` and `../compiler/test_data/corpus` both parsers accept); the
//! allocation count per pass goes to stderr.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting allocations and reallocations.
struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(which), Some(n)) = (args.next(), args.next().and_then(|n| n.parse::<usize>().ok())) else {
        eprintln!("usage: parse_count cairn|parse-dockerfile N");
        std::process::exit(2);
    };
    let mut files = Vec::new();
    for dir in ["test_data/ok", "../compiler/test_data/corpus"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut paths: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        paths.sort();
        for p in paths {
            if p.extension().is_none_or(|e| e != "Dockerfile") {
                continue;
            }
            let text = fs::read_to_string(&p).unwrap();
            if cairn_grammar::parse("Dockerfile", &text).is_ok() && parse_dockerfile::parse(&text).is_ok() {
                files.push(text);
            }
        }
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..n {
        for t in &files {
            match which.as_str() {
                "cairn" => drop(std::hint::black_box(cairn_grammar::parse("Dockerfile", t).unwrap())),
                _ => drop(std::hint::black_box(parse_dockerfile::parse(t).unwrap())),
            }
        }
    }
    let allocs = (ALLOCS.load(Ordering::Relaxed) - before) / n.max(1);
    let bytes: usize = files.iter().map(|f| f.len()).sum();
    eprintln!("{} files, {bytes} bytes, {allocs} allocations per pass", files.len());
}
