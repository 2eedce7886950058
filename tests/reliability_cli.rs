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

/// Every file under `dir/blobs/sha256` hashes to its name (`sha256sum`).
fn layout_blobs_match(dir: &std::path::Path) -> bool {
    let blobs = dir.join("blobs/sha256");
    std::fs::read_dir(&blobs).unwrap().flatten().all(|e| {
        let o = Command::new("sha256sum").arg(e.path()).output().unwrap();
        String::from_utf8_lossy(&o.stdout).split_whitespace().next() == Some(&*e.file_name().to_string_lossy())
    })
}

/// 4 bytes overwritten in a stored blob: the export fails naming the blob instead of
/// writing a layout skopeo rejects; `cairn check` finds it, `--repair` drops it and the
/// next build exports a layout whose blobs all match. A file changed in a stored layer
/// directory: `check` names the layer, and after `--repair` the step runs again.
#[test]
fn issue13_store_corruption_is_detected_by_exports_and_check_and_repaired() {
    let t = setup("corrupt");
    t.write("ctx/a.txt", &"a".repeat(4096));
    t.write("ctx/Dockerfile", "FROM busybox\nCOPY a.txt /a.txt\nRUN echo built > /b.txt\n");
    let oci = t.path("oci");
    let o = format!("type=oci,dest={},tar=false", oci.display());
    let (r, _) = build(&t, &["-t", "img:1", "-o", &o]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(layout_blobs_match(&oci));
    let check = crate::build_cli::cairn(&t, &["check"]);
    assert!(check.status.success(), "{}", stderr(&check));

    // Damage the largest blob of the store (a layer) in place.
    let store_blobs = t.path("store/blobs/sha256");
    let victim =
        std::fs::read_dir(&store_blobs).unwrap().flatten().max_by_key(|e| e.metadata().unwrap().len()).unwrap().path();
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 4].copy_from_slice(b"XXXX");
    std::fs::write(&victim, bytes).unwrap();
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    let oci2 = t.path("oci2");
    let o2 = format!("type=oci,dest={},tar=false", oci2.display());
    let (r, _) = build(&t, &["-t", "img:1", "-o", &o2]);
    assert!(!r.status.success(), "a damaged blob was exported");
    assert!(stderr(&r).contains(&name) && stderr(&r).contains("damaged"), "{}", stderr(&r));
    assert!(!oci2.exists(), "a failed export left an output");

    let check = crate::build_cli::cairn(&t, &["check"]);
    let out = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(!check.status.success());
    assert!(out.contains(&format!("damaged: blob sha256:{name}")), "{out}");
    let repair = crate::build_cli::cairn(&t, &["check", "--repair"]);
    assert!(repair.status.success(), "{}", stderr(&repair));
    let (r, _) = build(&t, &["-t", "img:1", "-o", &o2]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(layout_blobs_match(&oci2));

    // A file changed inside a stored (packed) layer directory.
    let layers = t.path("store/layers");
    let changed = std::fs::read_dir(&layers)
        .unwrap()
        .flatten()
        .find(|e| e.path().join("b.txt").exists())
        .expect("the RUN layer")
        .path();
    std::fs::write(changed.join("b.txt"), "tampered\n").unwrap();
    let check = crate::build_cli::cairn(&t, &["check"]);
    let out = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(!check.status.success());
    assert!(out.contains(&format!("layer {}", changed.file_name().unwrap().to_string_lossy())), "{out}");
    assert!(crate::build_cli::cairn(&t, &["check", "--repair"]).status.success());
    let local = t.path("local");
    let (r, s) = build(&t, &["-t", "img:1", "-o", &format!("type=local,dest={}", local.display())]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(std::fs::read_to_string(local.join("b.txt")).unwrap(), "built\n");
    assert!(crate::build_cli::counts(&s).0 >= 1, "the RUN step ran again");
}
