//! Every realistic Dockerfile in `test_data/corpus` compiles (for the host platform and
//! for two target platforms), optimizes, validates as IR and round-trips its encoding.

use std::path::Path;

use cairn_compiler::dockerfile::CompileOptions;
use cairn_compiler::resolver::NoImages;
use cairn_compiler::{compile_dockerfile, passes};
use cairn_ir::Platform;

#[test]
fn corpus_compiles() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("compiler/test_data/corpus")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    files.sort();
    assert!(files.len() >= 100, "the corpus holds {} Dockerfiles; the issue asks for at least 100", files.len());
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let mut o = CompileOptions::new(&name);
        o.build_platform = Platform::new("linux", "amd64", "");
        o.platforms = vec![Platform::new("linux", "amd64", ""), Platform::new("linux", "arm64", "v8")];
        match compile_dockerfile(&text, &o, &NoImages) {
            Ok(c) => {
                let def = passes::optimize(&c.graph).to_definition();
                if let Err(e) = cairn_ir::validate(&def) {
                    failures.push(format!("{name}: invalid IR: {e}"));
                }
                let bytes = cairn_ir::encode_definition(&def);
                assert_eq!(cairn_ir::encode_definition(&cairn_ir::decode_definition(&bytes).unwrap()), bytes);
            }
            Err(e) => failures.push(format!("{e}")),
        }
    }
    assert!(failures.is_empty(), "{} of {} failed:\n{}", failures.len(), files.len(), failures.join("\n\n"));
}
