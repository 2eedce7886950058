//! Architecture invariants (ARCHITECTURE.md): dependency edges between workspace crates,
//! checked over `cargo metadata` like buck2's dependency-graph rules.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Workspace crate name → the workspace crates it depends on (normal and build deps).
fn workspace_edges() -> BTreeMap<String, BTreeSet<String>> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let names: BTreeSet<String> = packages.iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
    let mut edges = BTreeMap::new();
    for p in packages {
        let deps = p["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"].is_null() || d["kind"] == "build")
            .map(|d| d["name"].as_str().unwrap().to_string())
            .filter(|n| names.contains(n))
            .collect();
        edges.insert(p["name"].as_str().unwrap().to_string(), deps);
    }
    edges
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn dependency_direction_is_cli_to_frontend_and_runtime_to_ir() {
    let edges = workspace_edges();
    assert_eq!(edges["cairn-ir"], set(&[]), "ir-spec has no workspace dependencies");
    assert_eq!(edges["cairn-grammar"], set(&[]), "grammar depends on no workspace crate");
    assert_eq!(edges["cairn-compiler"], set(&["cairn-grammar", "cairn-ir", "cairn-sdk"]));
    assert_eq!(edges["cairn-sdk"], set(&["cairn-ir"]), "the builder SDK depends on no workspace crate but ir-spec");
    assert!(
        !edges["cairn-runtime"].contains("cairn-grammar") && !edges["cairn-runtime"].contains("cairn-compiler"),
        "runtime never depends on grammar or compiler; it only sees a Definition"
    );
    assert!(
        edges["cairn-runtime"].is_subset(&set(&["cairn-ir", "cairn-registry"])),
        "runtime depends only on ir-spec (and the registry client)"
    );
    assert_eq!(
        edges["cairn-registry"],
        set(&["cairn-ir"]),
        "the registry client depends on no workspace crate but ir-spec"
    );
}
