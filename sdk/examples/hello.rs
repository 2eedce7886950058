//! Writes a Definition made with the SDK to a file, for `cairn build --ir FILE`:
//!
//! ```text
//! cargo run -p cairn-sdk --example hello -- hello.cairn
//! cairn build --ir hello.cairn -t hello:sdk -o type=local,dest=out CONTEXT_DIR
//! ```
//!
//! The image: busybox, with `/app/index.html` made from the context's `*.txt` files by a
//! shell step (a cache mount keeps a count of runs across builds), and a small `/etc/motd`
//! made on scratch and merged on top.

use std::process::ExitCode;

use cairn_sdk::{merge, LocalOpts, Mount, State};

fn build() -> Result<cairn_ir::Definition, cairn_sdk::Error> {
    let base = State::image("busybox")?.env("TITLE", "Made with cairn-sdk")?.dir("/app");
    let context = State::local("context", LocalOpts { include: vec!["*.txt".into()], ..Default::default() })?;
    let page = base
        .run_shell("{ echo \"<h1>$TITLE</h1>\"; for f in /ctx/*.txt; do echo \"<pre>$(cat \"$f\")</pre>\"; done; } > index.html && echo run >> /cache/runs")
        .mount("/ctx", Mount::bind(&context))
        .mount("/cache", Mount::cache("hello-runs"))
        .describe("render index.html")
        .root()?;
    // Actions chain in one vertex; a file's directory must exist first.
    let motd = State::scratch()
        .file()
        .mkdir("/etc", Default::default())
        .mkfile("/etc/motd", "Built from a Rust program.\n", Default::default())
        .state()?;
    let image = merge(&[page, motd])?;
    let mut def = image.definition()?;
    def.outputs[0].config.config.cmd = Some(vec!["cat".into(), "/app/index.html".into()]);
    Ok(def)
}

fn main() -> ExitCode {
    let path = std::env::args().nth(1).unwrap_or_else(|| "hello.cairn".into());
    let def = match build() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::write(&path, cairn_ir::encode_definition(&def)) {
        eprintln!("error: cannot write `{path}`: {e}");
        return ExitCode::FAILURE;
    }
    println!("wrote {path}: {} vertices", def.vertices.len());
    ExitCode::SUCCESS
}
