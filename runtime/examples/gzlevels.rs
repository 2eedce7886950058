//! Size and CPU time of `gzip.rs`' chunked writer at several levels over one file (a layer
//! tar): `cargo run --release -p cairn-runtime --example gzlevels FILE`. How the import
//! level (`image/import.rs`) was chosen.
use std::io::Write;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let data = std::fs::read(&path).unwrap();
    for level in [1u32, 2, 3, 4, 6] {
        let t = std::time::Instant::now();
        let c0 = cpu();
        let mut w = cairn_runtime::gzip::ChunkedGzWriter::new(Vec::new(), level);
        for piece in data.chunks(256 * 1024) {
            w.write_all(piece).unwrap();
        }
        let out = w.finish().unwrap();
        println!("level {level}: {} bytes, wall {:.2}s, cpu {:.2}s", out.len(), t.elapsed().as_secs_f64(), cpu() - c0);
    }
}
fn cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}
