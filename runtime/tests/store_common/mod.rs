//! Helpers shared by the `store_*` integration tests: temp dirs, a sample layer directory
//! in overlay format with every kind of entry, tree snapshots for comparisons, and the
//! external tools (skopeo, umoci, GNU tar) the interoperability tests run.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Fails loudly unless running as root (mknod, trusted.* xattrs and chown need it).
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "these store tests need root (mknod, trusted.overlay.* xattrs, chown); run them as root"
    );
}

/// A fresh, empty directory for one test.
pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cairn-st-{name}-{}", std::process::id()));
    let _ = cairn_runtime::store::remove_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn c(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

pub fn set_mtime(p: &Path, secs: i64) {
    let ts = libc::timespec { tv_sec: secs, tv_nsec: 0 };
    // SAFETY: valid C string and timespec array.
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c(p).as_ptr(), [ts, ts].as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    assert_eq!(r, 0, "utimensat {}", p.display());
}

pub fn mknod(p: &Path, kind: libc::mode_t, major: u32, minor: u32) {
    // SAFETY: valid C string.
    let r = unsafe { libc::mknod(c(p).as_ptr(), kind | 0o644, libc::makedev(major, minor)) };
    assert_eq!(r, 0, "mknod {}: {}", p.display(), std::io::Error::last_os_error());
}

pub fn setxattr(p: &Path, name: &str, value: &[u8]) {
    let n = CString::new(name).unwrap();
    // SAFETY: valid C strings and buffer.
    let r = unsafe { libc::lsetxattr(c(p).as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    assert_eq!(r, 0, "setxattr {name} on {}: {}", p.display(), std::io::Error::last_os_error());
}

pub fn getxattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let n = CString::new(name).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid C strings and buffer.
    let r = unsafe { libc::lgetxattr(c(p).as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| {
        buf.truncate(r as usize);
        buf
    })
}

pub fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

pub fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// A `security.capability` value (v2: cap_net_bind_service permitted and effective).
pub fn cap_value() -> Vec<u8> {
    let words: [u32; 5] = [0x0200_0001, 1 << 10, 0, 0, 0];
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

pub fn long_dir() -> String {
    format!("deep/{}", "d".repeat(70))
}

pub fn long_file() -> String {
    format!("{}/{}", long_dir(), "f".repeat(80))
}

type Step = Box<dyn Fn(&Path)>;

/// Writes a layer directory in overlay format holding every kind of entry the tar code
/// handles. `reverse` creates the entries in another order (other inodes, other readdir
/// order) for determinism tests.
pub fn sample_layer(dir: &Path, reverse: bool) {
    fs::create_dir_all(dir).unwrap();
    let mut steps: Vec<Step> = vec![
        Box::new(|d| {
            fs::write(d.join("a.txt"), "hello\n").unwrap();
            chmod(&d.join("a.txt"), 0o644);
            setxattr(&d.join("a.txt"), "user.note", b"kept");
            fs::hard_link(d.join("a.txt"), d.join("hard.txt")).unwrap();
        }),
        Box::new(|d| {
            fs::create_dir_all(d.join("bin")).unwrap();
            fs::write(d.join("bin/tool"), vec![7u8; 70_000]).unwrap();
            chown(&d.join("bin/tool"), 1000, 1000);
            chmod(&d.join("bin/tool"), 0o4755);
            setxattr(&d.join("bin/tool"), "security.capability", &cap_value());
        }),
        Box::new(|d| std::os::unix::fs::symlink("a.txt", d.join("sym")).unwrap()),
        Box::new(|d| std::os::unix::fs::symlink("t".repeat(150), d.join("longsym")).unwrap()),
        Box::new(|d| {
            fs::create_dir_all(d.join(long_dir())).unwrap();
            fs::write(d.join(long_file()), "long").unwrap();
        }),
        Box::new(|d| mknod(&d.join("pipe"), libc::S_IFIFO, 0, 0)),
        Box::new(|d| mknod(&d.join("null"), libc::S_IFCHR, 1, 3)),
        Box::new(|d| {
            // Overlayfs creates whiteouts with mode 0.
            mknod(&d.join("gone"), libc::S_IFCHR, 0, 0);
            chmod(&d.join("gone"), 0o000);
        }),
        Box::new(|d| {
            fs::create_dir_all(d.join("opq")).unwrap();
            fs::write(d.join("opq/new"), "fresh").unwrap();
            setxattr(&d.join("opq"), "trusted.overlay.opaque", b"y");
        }),
        Box::new(|d| {
            fs::write(d.join("biguid"), "x").unwrap();
            chown(&d.join("biguid"), 3_000_000, 3_000_001);
        }),
    ];
    if reverse {
        steps.reverse();
    }
    for s in &steps {
        s(dir);
    }
    stamp_mtimes(dir, 1_600_000_000);
    set_mtime(&dir.join("a.txt"), 2_000_000_000);
}

/// Sets every mtime below `dir` to `secs` (children before their directory).
pub fn stamp_mtimes(dir: &Path, secs: i64) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.symlink_metadata().unwrap().is_dir() {
            stamp_mtimes(&p, secs);
        }
        set_mtime(&p, secs);
    }
    set_mtime(dir, secs);
}

/// What a tree holds, path by path: type, mode, owner, mtime, content or target, device
/// numbers and xattrs (hard links show as the same `ino` group).
pub fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, String> = BTreeMap::new();
    snap(dir, dir, &mut out, &mut inodes);
    out
}

fn snap(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>, inodes: &mut BTreeMap<u64, String>) {
    let mut names: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    for n in names {
        let p = dir.join(&n);
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let md = p.symlink_metadata().unwrap();
        let ft = md.file_type();
        let what = if ft.is_dir() {
            "dir".to_string()
        } else if ft.is_symlink() {
            format!("symlink->{}", fs::read_link(&p).unwrap().display())
        } else if ft.is_file() {
            let data = fs::read(&p).unwrap();
            let first = inodes.entry(md.ino()).or_insert_with(|| rel.clone()).clone();
            format!("file:{}:{}:link-group={first}", data.len(), blake3::hash(&data).to_hex())
        } else if ft.is_char_device() {
            format!("char:{}:{}", libc::major(md.rdev()), libc::minor(md.rdev()))
        } else if ft.is_fifo() {
            "fifo".to_string()
        } else {
            "other".to_string()
        };
        let mut x = Vec::new();
        for name in ["user.note", "security.capability", "trusted.overlay.opaque"] {
            if let Some(v) = getxattr(&p, name) {
                x.push(format!("{name}={}", hex::encode(v)));
            }
        }
        let mode = if ft.is_symlink() { 0 } else { md.mode() & 0o7777 };
        out.insert(
            rel,
            format!(
                "{what} mode={mode:o} uid={} gid={} mtime={} xattrs=[{}]",
                md.uid(),
                md.gid(),
                md.mtime(),
                x.join(",")
            ),
        );
        if ft.is_dir() {
            snap(root, &p, out, inodes);
        }
    }
}

/// Fails loudly unless an external program is on `PATH`, naming the package to install.
pub fn require_tool(tool: &str) {
    let ok = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success());
    assert!(ok, "`{tool}` is not installed: install the `{tool}` package (apt-get install -y {tool}); CI installs it");
}

/// Runs a command and returns its stdout; panics with stderr on failure.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Entry names, types and link targets of a tar, in order.
pub fn tar_listing(bytes: &[u8]) -> Vec<(String, tar::EntryType, Option<String>)> {
    let mut ar = tar::Archive::new(bytes);
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let link = e.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned());
            (name, e.header().entry_type(), link)
        })
        .collect()
}
