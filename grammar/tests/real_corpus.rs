//! Every realistic Dockerfile in `compiler/test_data/corpus` (language images, multi-stage
//! builds, RUN mounts, heredocs, Windows-style escapes, 200-line files) parses. The corpus
//! lives in the compiler crate because the compiler compiles the same files; here we only
//! require that the grammar accepts them, and report every failing file with its error.

use std::fs;
use std::path::Path;

#[test]
fn real_corpus_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../compiler/test_data/corpus");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    files.sort();
    assert!(files.len() >= 110, "{} holds only {} Dockerfiles, expected at least 110", dir.display(), files.len());
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        match cairn_grammar::parse(&name, &text) {
            Ok(doc) if doc.instructions.is_empty() => failures.push(format!("{name}: no instructions")),
            Ok(_) => {}
            Err(e) => failures.push(format!("{name}:\n{e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus files failed to parse:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
