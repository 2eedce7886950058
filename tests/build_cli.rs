//! Tests of `cairn build`'s command line: flags and IR files are checked before anything
//! runs, with messages that name the flag or file. (The end-to-end build tests with the
//! real sandbox live on branch `core-integration` until the store and sandbox land.)

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_cairn");

struct Tmp(PathBuf);

impl Tmp {
    fn new(name: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("cairn-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cairn(root: &Tmp, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("CAIRN_ROOT", root.0.join("store"))
        .stdin(Stdio::null())
        .output()
        .expect("run cairn")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_ir_files_and_flags_fail_clearly() {
    let t = Tmp::new("badflags");
    let ctx = t.0.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let ctx = ctx.to_str().unwrap();
    let junk = t.0.join("junk.cairn");
    std::fs::write(&junk, b"\x01\x02junk").unwrap();
    let out = cairn(&t, &["build", "--ir", junk.to_str().unwrap(), ctx]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&format!("Cannot load IR file `{}`", junk.display())), "{}", stderr(&out));
    let out = cairn(&t, &["build", "--ir", "/no/such/file.cairn", ctx]);
    assert!(stderr(&out).contains("Cannot read IR file `/no/such/file.cairn`"), "{}", stderr(&out));
    let out = cairn(&t, &["build", "--progress", "fancy", ctx]);
    assert!(stderr(&out).contains("Unknown progress mode `fancy`"), "{}", stderr(&out));
    let out = cairn(&t, &["build", "-o", "type=registry,dest=x", ctx]);
    assert!(stderr(&out).contains("Unsupported output type `registry`"), "{}", stderr(&out));
    let out = cairn(&t, &["build", "--platform", "linux", ctx]);
    assert!(stderr(&out).contains("Invalid `--platform linux`"), "{}", stderr(&out));
    let out = cairn(&t, &["build", "--build-context", "x=/no/such/dir", ctx]);
    assert!(stderr(&out).contains("`--build-context x`: directory `/no/such/dir` not found"), "{}", stderr(&out));
    let out = cairn(&t, &["build", "--build-arg", "=v", ctx]);
    assert!(stderr(&out).contains("Invalid `--build-arg =v`"), "{}", stderr(&out));
    let out = cairn(&t, &["build", "/no/such/context"]);
    assert!(stderr(&out).contains("Build context `/no/such/context` is not a directory"), "{}", stderr(&out));
    let out = cairn(&t, &["build", "--jobs", "many", ctx]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit with 2");
}
