//! Data-driven snapshot tests of the Dockerfile frontend and the optimizer.
//!
//! - `test_data/compile/NAME.Dockerfile` → `NAME.ir`: warnings, the optimized IR listing and
//!   every output's image config (JSON).
//! - `test_data/passes/NAME.Dockerfile` → `NAME.passes`: the raw listing, then the listing
//!   after each pass (the before/after of every pass).
//! - `test_data/compile_err/NAME.Dockerfile` → `NAME.err`: the error message.
//!
//! A `NAME.opts` file beside a Dockerfile holds options, one per line: `target=STAGE`,
//! `build-arg=K=V`, `platform=os/arch[,…]`, `context=NAME` (a local named context),
//! `context-image=NAME=REF`, `dockerignore=PATTERN`.
//! `UPDATE_SNAPSHOTS=1 cargo test -p cairn-compiler --test snapshots` rewrites the
//! expected files; review the diff.

use std::path::{Path, PathBuf};

use cairn_compiler::dockerfile::{CompileOptions, NamedContext};
use cairn_compiler::resolver::StaticImages;
use cairn_compiler::{compile_dockerfile, passes, render};
use cairn_ir::{ContainerConfig, ImageConfig, Platform};

fn images() -> StaticImages {
    let busybox = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        config: ContainerConfig {
            env: Some(vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()]),
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        },
        rootfs: cairn_ir::RootFs { kind: "layers".into(), diff_ids: vec!["sha256:1111".into()] },
        history: vec![cairn_ir::History { created_by: Some("ADD busybox".into()), ..Default::default() }],
        ..Default::default()
    };
    let mut app = busybox.clone();
    app.config.working_dir = Some("/srv".into());
    app.config.user = Some("app".into());
    app.config.env = Some(vec!["PATH=/srv/bin:/usr/bin:/bin".into(), "APP_HOME=/srv".into()]);
    app.config.on_build = Some(vec!["COPY . /srv/src".into(), "RUN make -C /srv/src".into()]);
    StaticImages(vec![
        ("docker.io/library/busybox:latest".into(), busybox),
        ("docker.io/example/onbuild-app:1".into(), app),
    ])
}

fn options(file: &Path) -> CompileOptions {
    let mut o = CompileOptions::new(file.file_name().unwrap().to_str().unwrap());
    o.build_platform = Platform::new("linux", "amd64", "");
    let opts = file.with_extension("opts");
    if let Ok(text) = std::fs::read_to_string(&opts) {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("{}: bad line `{line}`", opts.display()));
            match k {
                "target" => o.target = Some(v.into()),
                "build-arg" => {
                    let (a, b) = v.split_once('=').unwrap();
                    o.build_args.insert(a.into(), b.into());
                }
                "platform" => o.platforms = v.split(',').map(|p| Platform::parse(p).unwrap()).collect(),
                "context" => {
                    o.contexts.insert(v.into(), NamedContext::Local);
                }
                "context-image" => {
                    let (a, b) = v.split_once('=').unwrap();
                    o.contexts.insert(a.into(), NamedContext::Image(b.into()));
                }
                "dockerignore" => o.dockerignore.push(v.into()),
                other => panic!("{}: unknown option `{other}`", opts.display()),
            }
        }
    }
    o
}

fn cases(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data").join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no cases in {}", root.display());
    v
}

fn check(path: &Path, ext: &str, actual: &str, failures: &mut Vec<String>) {
    let snap = path.with_extension(ext);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&snap, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&snap).unwrap_or_default();
    if expected != actual {
        failures.push(format!("{} differs:\n--- expected\n{expected}\n--- actual\n{actual}", snap.display()));
    }
}

#[test]
fn compile_snapshots() {
    let mut failures = Vec::new();
    for path in cases("compile") {
        let text = std::fs::read_to_string(&path).unwrap();
        let c = compile_dockerfile(&text, &options(&path), &images())
            .unwrap_or_else(|e| panic!("{} failed to compile:\n{e}", path.display()));
        let g = passes::optimize(&c.graph);
        let mut out = String::new();
        for w in &c.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        out.push_str(&render::text(&g));
        let def = g.to_definition();
        cairn_ir::validate(&def).unwrap();
        for o in &def.outputs {
            out.push_str(&format!("\nconfig {}:\n{}\n", o.platform, serde_json::to_string_pretty(&o.config).unwrap()));
        }
        check(&path, "ir", &out, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn pass_snapshots() {
    let mut failures = Vec::new();
    for path in cases("passes") {
        let text = std::fs::read_to_string(&path).unwrap();
        let c = compile_dockerfile(&text, &options(&path), &images()).unwrap();
        let raw = c.graph;
        let noop = passes::remove_noop_file_actions(&raw);
        let dedup = passes::dedup(&noop);
        let pruned = passes::prune_unreachable(&dedup);
        let out = format!(
            "== raw\n{}\n== remove_noop_file_actions\n{}\n== dedup\n{}\n== prune_unreachable\n{}",
            render::text(&raw),
            render::text(&noop),
            render::text(&dedup),
            render::text(&pruned)
        );
        // The invariant: no pass changes what the outputs are.
        let root = |g: &cairn_compiler::graph::Graph| -> Vec<String> {
            let d = g.digests();
            g.outputs.iter().map(|o| d[o.root.node].to_string()).collect()
        };
        assert_eq!(root(&noop.clone()), root(&dedup), "{}: dedup changed an output", path.display());
        assert_eq!(root(&dedup), root(&pruned), "{}: prune changed an output", path.display());
        check(&path, "passes", &out, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn error_snapshots() {
    let mut failures = Vec::new();
    for path in cases("compile_err") {
        let text = std::fs::read_to_string(&path).unwrap();
        let e = match compile_dockerfile(&text, &options(&path), &images()) {
            Ok(_) => panic!("{} compiled but should fail", path.display()),
            Err(e) => e,
        };
        check(&path, "err", &format!("{e}\n"), &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
