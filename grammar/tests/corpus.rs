//! The data-driven corpus: `test_data/ok/*.Dockerfile` must parse to the JSON AST in the
//! `.ast` file beside it; `test_data/err/*.Dockerfile` must fail with the rendered error in
//! the `.err` file. Run with `UPDATE_SNAPSHOTS=1` to (re)write the expected files, then
//! review the diff with git.

use std::fs;
use std::path::{Path, PathBuf};

fn cases(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data").join(dir);
    let mut v: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no cases in {}", dir.display());
    v
}

fn check(path: &Path, ext: &str, actual: String) -> Option<String> {
    let expected_path = path.with_extension(ext);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        fs::write(&expected_path, &actual).unwrap();
        return None;
    }
    let expected = fs::read_to_string(&expected_path)
        .unwrap_or_else(|_| panic!("missing {} (run with UPDATE_SNAPSHOTS=1)", expected_path.display()));
    (expected != actual).then(|| format!("--- {}\n+++ actual\n{}\n", expected_path.display(), actual))
}

#[test]
fn ok_corpus() {
    let mut failures = Vec::new();
    for path in cases("ok") {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(&path).unwrap();
        match cairn_grammar::parse(&name, &text) {
            Ok(doc) => {
                let json = serde_json::to_string_pretty(&cairn_grammar::json::to_json(&doc)).unwrap() + "\n";
                failures.extend(check(&path, "ast", json));
            }
            Err(e) => failures.push(format!("{name}: unexpected error:\n{e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn err_corpus() {
    let mut failures = Vec::new();
    for path in cases("err") {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(&path).unwrap();
        match cairn_grammar::parse(&name, &text) {
            Ok(_) => failures.push(format!("{name}: parsed but should fail")),
            Err(e) => failures.extend(check(&path, "err", e.to_string() + "\n")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
