//! Issue 17, the Rust builder SDK end to end: a Definition made with `cairn-sdk` (an image,
//! the build context, a file made on scratch, an exec with bind, cache and tmpfs mounts,
//! `diff` and `merge`) is written to a file and built by `cairn build --ir`; the exported
//! files are what the steps wrote, and a second build is all cached.

use cairn_sdk::{diff, merge, LocalOpts, Mount, State};

use crate::build_cli::{build, counts, executed_steps, setup, stderr};

const SCRIPT: &str =
    "set -e\ncat greeting.txt > result.txt\necho \"name=$NAME cwd=$(pwd) user=$(id -u)\" >> result.txt\n\
                      echo run >> /cache/runs\necho scratch > /tmp/t\n";

fn definition() -> Result<Vec<u8>, cairn_sdk::Error> {
    let base = State::image("busybox")?;
    let context = State::local("context", LocalOpts { include: vec!["*.txt".into()], ..Default::default() })?;
    let script = State::scratch().mkfile("/make.sh", SCRIPT)?;
    let built = base
        .clone()
        .dir("/app")
        .env("NAME", "sdk")?
        .copy(&context, "greeting.txt", "greeting.txt")?
        .run(["/bin/sh", "/src/make.sh"])
        .mount("/src", Mount::bind(&script))
        .mount("/cache", Mount::cache("sdk-e2e"))
        .mount("/tmp", Mount::tmpfs(1 << 20))
        .describe("make result.txt")
        .root()?;
    // Only what the steps changed, on an empty base, plus one more file.
    let changes = diff(&base, &built)?;
    let image = merge(&[changes, State::scratch().mkfile("/extra.txt", "merged\n")?])?;
    Ok(cairn_ir::encode_definition(&image.definition()?))
}

#[test]
fn issue17_sdk_definition_builds_exports_and_caches() {
    let t = setup("sdk-e2e");
    t.write("ctx/greeting.txt", "hello from the context\n");
    t.write("ctx/ignored.bin", "not included\n");
    let ir = t.path("sdk.cairn");
    std::fs::write(&ir, definition().unwrap()).unwrap();
    let out = t.path("out");
    let (ir_s, dest) = (ir.to_str().unwrap().to_string(), format!("type=local,dest={}", out.display()));

    let (o, first) = build(&t, &["--ir", &ir_s, "-o", &dest]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(executed_steps(&o).iter().any(|s| s == "make result.txt"), "{:?}", executed_steps(&o));
    let result = std::fs::read_to_string(out.join("app/result.txt")).unwrap();
    assert_eq!(result, "hello from the context\nname=sdk cwd=/app user=0\n");
    assert_eq!(std::fs::read_to_string(out.join("app/greeting.txt")).unwrap(), "hello from the context\n");
    assert_eq!(std::fs::read_to_string(out.join("extra.txt")).unwrap(), "merged\n");
    assert!(!out.join("bin/busybox").exists(), "the diff left the base image out");
    assert!(!out.join("src").exists() && !out.join("cache/runs").exists(), "mounts stay out of the tree");
    assert!(!out.join("tmp/t").exists(), "the tmpfs stays out of the tree");

    let (o, second) = build(&t, &["--ir", &ir_s, "-o", &dest]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ((e1, c1), (e2, c2)) = (counts(&first), counts(&second));
    assert!(e1 > 0, "{first}");
    assert_eq!((e2, c2), (0, e1 + c1), "a second build is all cached:\n{}", stderr(&o));
}
