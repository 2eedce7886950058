//! Layer directories ⇄ layer tars on real files: determinism, mtime clamping, whiteouts,
//! opaque directories, hard links, xattrs, long names, and extraction that refuses to
//! leave its directory. Tars are read back with the `tar` crate and with GNU tar.

mod store_common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use cairn_runtime::layer::{extract_layer_tar, extract_layer_tar_with, write_layer_tar};
use store_common::*;
use tar::EntryType;

fn tar_of(dir: &std::path::Path, epoch: Option<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    write_layer_tar(dir, &mut out, epoch).unwrap();
    out
}

#[test]
fn same_tree_gives_same_bytes_whatever_the_creation_order() {
    require_root();
    let d = tmpdir("determinism");
    sample_layer(&d.join("one"), false);
    sample_layer(&d.join("two"), true);
    let a = tar_of(&d.join("one"), None);
    assert_eq!(a, tar_of(&d.join("one"), None), "the same directory twice");
    assert_eq!(a, tar_of(&d.join("two"), None), "an equal tree built in another order");
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn entries_are_ordered_and_overlay_markers_converted() {
    require_root();
    let d = tmpdir("listing");
    sample_layer(&d.join("l"), false);
    let bytes = tar_of(&d.join("l"), None);
    let listing = tar_listing(&bytes);
    let names: Vec<&str> = listing.iter().map(|(n, _, _)| n.as_str()).collect();
    let long = long_file();
    let expected = vec![
        "a.txt",
        "biguid",
        "bin/",
        "bin/tool",
        "deep/",
        &long[..long.rfind('/').unwrap() + 1],
        long.as_str(),
        ".wh.gone",
        "hard.txt",
        "longsym",
        "null",
        "opq/",
        "opq/.wh..wh..opq",
        "opq/new",
        "pipe",
        "sym",
    ];
    assert_eq!(names, expected);
    let kind = |n: &str| listing.iter().find(|(x, _, _)| x == n).unwrap().1;
    let link = |n: &str| listing.iter().find(|(x, _, _)| x == n).unwrap().2.clone();
    assert_eq!(kind(".wh.gone"), EntryType::Regular);
    assert_eq!(kind("opq/.wh..wh..opq"), EntryType::Regular);
    assert_eq!(kind("hard.txt"), EntryType::Link);
    assert_eq!(link("hard.txt").as_deref(), Some("a.txt"));
    assert_eq!(kind("pipe"), EntryType::Fifo);
    assert_eq!(kind("null"), EntryType::Char);
    assert_eq!(link("longsym"), Some("t".repeat(150)));

    // Headers: owner, mode, size, PAX ids and xattrs; no overlay bookkeeping exported.
    let mut ar = tar::Archive::new(bytes.as_slice());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let mut pax = Vec::new();
        if let Some(exts) = e.pax_extensions().unwrap() {
            for x in exts {
                let x = x.unwrap();
                pax.push((x.key().unwrap().to_string(), x.value_bytes().to_vec()));
            }
        }
        assert!(!pax.iter().any(|(k, _)| k.contains("overlay")), "{name}: {pax:?}");
        let h = e.header();
        match name.as_str() {
            "bin/tool" => {
                assert_eq!((h.uid().unwrap(), h.gid().unwrap(), h.mode().unwrap()), (1000, 1000, 0o4755));
                assert_eq!(h.size().unwrap(), 70_000);
                assert!(pax.contains(&("SCHILY.xattr.security.capability".into(), cap_value())), "{pax:?}");
            }
            "a.txt" => assert!(pax.contains(&("SCHILY.xattr.user.note".into(), b"kept".to_vec()))),
            "biguid" => {
                assert!(pax.contains(&("uid".into(), b"3000000".to_vec())), "{pax:?}");
                assert!(pax.contains(&("gid".into(), b"3000001".to_vec())), "{pax:?}");
            }
            n if n == long_file() => assert!(pax.iter().any(|(k, _)| k == "path")),
            _ => {}
        }
        assert_eq!(h.as_ustar().map(|u| u.uname[0]), Some(0), "no user names in headers");
    }

    // GNU tar reads the archive too (PAX long names, devices, links).
    let tarfile = d.join("l.tar");
    fs::write(&tarfile, &bytes).unwrap();
    let listing = run(Command::new("tar").arg("-tf").arg(&tarfile));
    assert!(listing.lines().any(|l| l == long_file()), "{listing}");
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn source_date_epoch_clamps_newer_mtimes_only() {
    require_root();
    let d = tmpdir("clamp");
    sample_layer(&d.join("l"), false);
    let bytes = tar_of(&d.join("l"), Some(1_700_000_000));
    let mut ar = tar::Archive::new(bytes.as_slice());
    let mut seen = 0;
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let m = e.header().mtime().unwrap();
        match name.as_str() {
            "a.txt" | "hard.txt" => {
                assert_eq!(m, 1_700_000_000, "{name} (mtime 2e9) is clamped");
                seen += 1;
            }
            _ => assert_eq!(m, 1_600_000_000, "{name} is older than the epoch and kept"),
        }
    }
    assert_eq!(seen, 2, "the file and its hard-link entry");
    assert_ne!(bytes, tar_of(&d.join("l"), None));
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn round_trip_through_extraction_keeps_everything() {
    require_root();
    let d = tmpdir("roundtrip");
    sample_layer(&d.join("src"), false);
    let bytes = tar_of(&d.join("src"), None);
    extract_layer_tar(bytes.as_slice(), &d.join("dst")).unwrap();
    let (a, b) = (snapshot(&d.join("src")), snapshot(&d.join("dst")));
    assert_eq!(a, b);
    assert!(b["gone"].starts_with("char:0:0"), "whiteout back as a char device: {}", b["gone"]);
    assert!(b["opq"].contains("trusted.overlay.opaque=79"), "opaque xattr restored: {}", b["opq"]);
    assert!(b["bin/tool"].contains("security.capability="), "{}", b["bin/tool"]);
    let ino = |p: &str| d.join("dst").join(p).metadata().unwrap().ino();
    assert_eq!(ino("a.txt"), ino("hard.txt"), "hard link kept");
    assert_eq!(tar_of(&d.join("dst"), None), bytes, "tar → dir → tar is the identity");
    fs::remove_dir_all(&d).unwrap();
}

/// A tar entry with a raw name (the `tar` crate refuses `..` in `set_path`).
fn raw_entry(b: &mut tar::Builder<Vec<u8>>, name: &[u8], kind: EntryType, link: Option<&[u8]>, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.as_ustar_mut().unwrap().name[..name.len()].copy_from_slice(name);
    if let Some(l) = link {
        h.as_ustar_mut().unwrap().linkname[..l.len()].copy_from_slice(l);
    }
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

#[test]
fn extraction_refuses_paths_that_leave_the_directory() {
    require_root();
    let d = tmpdir("escape");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        {
            let mut b = tar::Builder::new(Vec::new());
            raw_entry(&mut b, b"../evil", EntryType::Regular, None, b"x");
            (b.into_inner().unwrap(), "Archive entry `../evil` leaves the target directory through `..`")
        },
        {
            let mut b = tar::Builder::new(Vec::new());
            raw_entry(&mut b, b"/etc/evil", EntryType::Regular, None, b"x");
            (b.into_inner().unwrap(), "Archive entry `/etc/evil` is an absolute path")
        },
        {
            let mut b = tar::Builder::new(Vec::new());
            raw_entry(&mut b, b"up", EntryType::Symlink, Some(b".."), b"");
            raw_entry(&mut b, b"up/evil", EntryType::Regular, None, b"x");
            (b.into_inner().unwrap(), "Archive entry `up/evil` goes through `up`, which is not a directory")
        },
        {
            let mut b = tar::Builder::new(Vec::new());
            raw_entry(&mut b, b"hl", EntryType::Link, Some(b"../../etc/passwd"), b"");
            (b.into_inner().unwrap(), "leaves the target directory")
        },
    ];
    for (i, (bytes, msg)) in cases.into_iter().enumerate() {
        let target = d.join(format!("t{i}"));
        let err = extract_layer_tar(bytes.as_slice(), &target).unwrap_err();
        assert!(err.to_string().contains(msg), "case {i}: {err}");
    }
    assert!(!d.join("evil").exists());
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn foreign_tars_with_gnu_long_names_and_docker_whiteouts() {
    require_root();
    let d = tmpdir("gnutar");
    let src = d.join("src");
    fs::create_dir_all(src.join(long_dir())).unwrap();
    fs::write(src.join(long_file()), "gnu").unwrap();
    fs::create_dir_all(src.join("etc/conf.d")).unwrap();
    fs::write(src.join("etc/.wh.removed"), "").unwrap();
    fs::write(src.join("etc/conf.d/.wh..wh..opq"), "").unwrap();
    fs::write(src.join("etc/conf.d/only"), "1").unwrap();
    fs::write(src.join(".wh..wh.plnk"), "").unwrap();
    let tarfile = d.join("gnu.tar");
    run(Command::new("tar").arg("--format=gnu").arg("-cf").arg(&tarfile).arg("-C").arg(&src).arg("."));
    let dst = d.join("dst");
    extract_layer_tar(fs::File::open(&tarfile).unwrap(), &dst).unwrap();
    assert_eq!(fs::read_to_string(dst.join(long_file())).unwrap(), "gnu");
    let snap = snapshot(&dst);
    assert!(snap["etc/removed"].starts_with("char:0:0"), "{snap:?}");
    assert!(snap["etc/conf.d"].contains("trusted.overlay.opaque=79"), "{snap:?}");
    assert!(!snap.contains_key("etc/conf.d/.wh..wh..opq"));
    assert!(!snap.keys().any(|k| k.contains(".wh.")), "no marker files are left: {snap:?}");
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn whiteout_then_directory_becomes_opaque_and_lower_hard_links_copy_up() {
    require_root();
    let d = tmpdir("replace");
    let lower = d.join("lower");
    fs::create_dir_all(lower.join("data")).unwrap();
    fs::write(lower.join("data/base"), "from below").unwrap();
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(&mut b, b".wh.cfg", EntryType::Regular, None, b"");
    raw_entry(&mut b, b"cfg/new", EntryType::Regular, None, b"n");
    raw_entry(&mut b, b"data/linked", EntryType::Link, Some(b"data/base"), b"");
    let bytes = b.into_inner().unwrap();
    let up = d.join("upper");
    extract_layer_tar_with(bytes.as_slice(), &up, std::slice::from_ref(&lower)).unwrap();
    assert_eq!(getxattr(&up.join("cfg"), "trusted.overlay.opaque").as_deref(), Some(&b"y"[..]));
    assert_eq!(fs::read_to_string(up.join("data/linked")).unwrap(), "from below");
    assert_eq!(up.join("data/linked").metadata().unwrap().ino(), up.join("data/base").metadata().unwrap().ino());
    let err = extract_layer_tar(bytes.as_slice(), &d.join("alone")).unwrap_err();
    assert!(err.to_string().contains("the hard-link target `data/base` is not in this layer or below it"), "{err}");
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn gzip_stream_of_a_layer_is_deterministic_too() {
    require_root();
    let d = tmpdir("gz");
    sample_layer(&d.join("l"), false);
    let gz = |dir: &std::path::Path| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        write_layer_tar(dir, &mut e, None).unwrap();
        e.flush().unwrap();
        e.finish().unwrap()
    };
    assert_eq!(gz(&d.join("l")), gz(&d.join("l")));
    fs::remove_dir_all(&d).unwrap();
}

/// Issue 18: entries are created by several threads; a name given twice, a directory
/// replaced by a file, a name below a file and a hard link to a file still being written
/// come out as the tar says, in its order.
#[test]
fn issue18_threaded_extraction_keeps_the_tar_order_where_it_matters() {
    require_root();
    let d = tmpdir("threaded");
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..300 {
        raw_entry(&mut b, format!("many/f{i}").as_bytes(), EntryType::Regular, None, format!("{i}").as_bytes());
    }
    raw_entry(&mut b, b"twice", EntryType::Regular, None, b"first");
    raw_entry(&mut b, b"twice", EntryType::Regular, None, b"second");
    raw_entry(&mut b, b"dir/inner", EntryType::Regular, None, b"x");
    raw_entry(&mut b, b"dir", EntryType::Regular, None, b"now a file");
    raw_entry(&mut b, b"many/f7-link", EntryType::Link, Some(b"many/f7"), b"");
    let ok = b.into_inner().unwrap();
    let dst = d.join("ok");
    extract_layer_tar(ok.as_slice(), &dst).unwrap();
    for i in 0..300 {
        assert_eq!(fs::read_to_string(dst.join(format!("many/f{i}"))).unwrap(), i.to_string());
    }
    assert_eq!(fs::read_to_string(dst.join("twice")).unwrap(), "second");
    assert_eq!(fs::read_to_string(dst.join("dir")).unwrap(), "now a file");
    assert_eq!(dst.join("many/f7-link").metadata().unwrap().ino(), dst.join("many/f7").metadata().unwrap().ino());
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(&mut b, b"file", EntryType::Regular, None, b"x");
    raw_entry(&mut b, b"file/below", EntryType::Regular, None, b"y");
    let bad = b.into_inner().unwrap();
    let err = extract_layer_tar(bad.as_slice(), &d.join("bad")).unwrap_err();
    assert!(err.to_string().contains("goes through `file`, which is not a directory"), "{err}");
    fs::remove_dir_all(&d).unwrap();
}
