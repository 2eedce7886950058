//! Issue 13 end to end: hostile or unusual inputs through the real `cairn` binary.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::process::Command;

use crate::build_cli::{build, setup, stderr, Tmp};

fn local_out(t: &Tmp) -> (String, std::path::PathBuf) {
    let dest = t.path("rootfs");
    (format!("type=local,dest={}", dest.display()), dest)
}

/// 300 layers: every step mounts the chain below it (~226 was the limit), and a RUN on
/// top mounts all of them as its root.
#[test]
fn issue13_a_300_layer_chain_builds() {
    let t = setup("deep-chain");
    let mut df = String::from("FROM busybox\n");
    for i in 0..300 {
        t.write(&format!("ctx/f{i}"), &i.to_string());
        df.push_str(&format!("COPY f{i} /d/\n"));
    }
    df.push_str("RUN ls /d | wc -l > /count\n");
    t.write("ctx/Dockerfile", &df);
    let (o, out) = local_out(&t);
    let (r, _) = build(&t, &["-o", &o]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(std::fs::read_to_string(out.join("count")).unwrap().trim(), "300");
    assert_eq!(std::fs::read_to_string(out.join("d/f299")).unwrap(), "299");
}

/// `ADD rootfs.tar /` keeps setuid bits and FIFOs, and says which entry it left out.
#[test]
fn issue13_add_of_a_tar_keeps_special_bits_and_warns_about_dotdot_entries() {
    let t = setup("add-tar");
    let src = t.path("src");
    std::fs::create_dir_all(src.join("bin")).unwrap();
    std::fs::write(src.join("bin/su"), "su").unwrap();
    std::fs::set_permissions(src.join("bin/su"), std::os::unix::fs::PermissionsExt::from_mode(0o4755)).unwrap();
    let fifo = std::ffi::CString::new(src.join("bin/fifo").to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    std::fs::create_dir_all(t.path("ctx")).unwrap();
    let tar = t.path("ctx/rootfs.tar");
    // `-P` keeps the `../x` name as written.
    std::fs::write(t.path("x"), "outside").unwrap();
    let st = Command::new("tar")
        .current_dir(&src)
        .args(["-P", "-cf", tar.to_str().unwrap(), "bin", "../x"])
        .status()
        .unwrap();
    assert!(st.success());
    t.write("ctx/Dockerfile", "FROM scratch\nADD rootfs.tar /\n");
    let (o, out) = local_out(&t);
    let (r, _) = build(&t, &["-o", &o]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(std::fs::metadata(out.join("bin/su")).unwrap().mode() & 0o7777, 0o4755);
    assert!(std::fs::symlink_metadata(out.join("bin/fifo")).unwrap().file_type().is_fifo());
    let err = stderr(&r);
    assert!(err.contains("warning: rootfs.tar: `../x` left out"), "{err}");
}

/// A `.dockerignore` saved with a byte-order mark still excludes its first pattern.
#[test]
fn issue13_dockerignore_with_a_bom_excludes_its_first_pattern() {
    let t = setup("bom");
    t.write("ctx/secret.env", "TOKEN=1");
    t.write("ctx/keep.txt", "keep");
    t.write("ctx/.dockerignore", "\u{feff}secret.env\n");
    t.write("ctx/Dockerfile", "FROM scratch\nCOPY . /src/\n");
    let (o, out) = local_out(&t);
    let (r, _) = build(&t, &["-o", &o]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(out.join("src/keep.txt").exists());
    assert!(!out.join("src/secret.env").exists(), "the BOM hid the first pattern");
}
