//! `mount::OverlayMount` on real overlayfs: layer order, filler layers, read-only stacks,
//! long chains that need the short `/proc/self/fd` form, duplicates, errors naming paths,
//! and unmounting on drop. Needs root (overlay mounts); fails saying so otherwise.

use std::fs;
use std::path::{Path, PathBuf};

use cairn_runtime::mount::OverlayMount;

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        assert!(
            // SAFETY: geteuid has no preconditions.
            unsafe { libc::geteuid() } == 0,
            "overlay mount tests need root (overlayfs mounts); run them as root"
        );
        let d = std::env::temp_dir().join(format!("cairn-mnt-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        for sub in ["empty", "target", "upper", "work"] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        Dir(d)
    }

    fn layer(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let l = self.0.join(name);
        fs::create_dir_all(&l).unwrap();
        for (f, body) in files {
            fs::write(l.join(f), body).unwrap();
        }
        l
    }

    fn p(&self, sub: &str) -> PathBuf {
        self.0.join(sub)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn mounted(target: &Path) -> bool {
    let t = target.display().to_string();
    fs::read_to_string("/proc/self/mountinfo").unwrap().lines().any(|l| l.split(' ').nth(4) == Some(t.as_str()))
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn bottom_first_order_and_writes_to_the_upper() {
    let d = Dir::new("order");
    let a = d.layer("a", &[("f", "a"), ("only-a", "1")]);
    let b = d.layer("b", &[("f", "b")]);
    let (t, u, w) = (d.p("target"), d.p("upper"), d.p("work"));
    {
        let m = OverlayMount::new(&[a, b], Some((&u, &w)), &t, &d.p("empty")).unwrap();
        assert_eq!(m.target(), t);
        assert_eq!(fs::read_to_string(t.join("f")).unwrap(), "b", "the last lower is the top");
        assert_eq!(names(&t), ["f", "only-a"]);
        fs::write(t.join("new"), "n").unwrap();
        fs::remove_file(t.join("only-a")).unwrap();
    }
    assert!(!mounted(&t), "dropping the guard unmounts");
    assert_eq!(fs::read_to_string(u.join("new")).unwrap(), "n");
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let wh = fs::symlink_metadata(u.join("only-a")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0, "a deletion is a whiteout");
}

#[test]
fn zero_lowers_with_and_without_an_upper() {
    let d = Dir::new("zero");
    let (t, u, w) = (d.p("target"), d.p("upper"), d.p("work"));
    {
        let _m = OverlayMount::new(&[], Some((&u, &w)), &t, &d.p("empty")).unwrap();
        assert!(names(&t).is_empty());
        fs::write(t.join("x"), "x").unwrap();
    }
    assert_eq!(names(&u), ["x"]);
    let _m = OverlayMount::new(&[], None, &t, &d.p("empty")).unwrap();
    assert!(mounted(&t));
    assert!(names(&t).is_empty());
    assert!(fs::write(t.join("y"), "y").is_err(), "no upper: read-only");
    assert!(names(&d.p("empty")).is_empty(), "the filler stays empty");
}

#[test]
fn one_lower_without_an_upper_is_read_only() {
    let d = Dir::new("single");
    let a = d.layer("a", &[("f", "a")]);
    let t = d.p("target");
    let _m = OverlayMount::new(std::slice::from_ref(&a), None, &t, &d.p("empty")).unwrap();
    assert_eq!(fs::read_to_string(t.join("f")).unwrap(), "a");
    let err = fs::write(t.join("g"), "g").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    assert_eq!(names(&a), ["f"]);
}

#[test]
fn a_hundred_long_named_lowers() {
    let d = Dir::new("hundred");
    // ~90 bytes per path: 100 of them are twice the page the kernel accepts.
    let lowers: Vec<PathBuf> = (0..100)
        .map(|i| {
            d.layer(
                &format!("layer-{i:03}-{}", "x".repeat(60)),
                &[(&format!("f{i}"), &i.to_string()), ("top", &i.to_string())],
            )
        })
        .collect();
    assert!(lowers.iter().map(|l| l.as_os_str().len() + 1).sum::<usize>() > 4096);
    let (t, u, w) = (d.p("target"), d.p("upper"), d.p("work"));
    {
        let _m = OverlayMount::new(&lowers, Some((&u, &w)), &t, &d.p("empty")).unwrap();
        assert_eq!(names(&t).len(), 101);
        assert_eq!(fs::read_to_string(t.join("top")).unwrap(), "99", "order kept in the short form");
        assert_eq!(fs::read_to_string(t.join("f0")).unwrap(), "0");
        fs::write(t.join("f0"), "changed").unwrap();
    }
    assert!(!mounted(&t));
    assert_eq!(fs::read_to_string(u.join("f0")).unwrap(), "changed");
    assert_eq!(fs::read_to_string(lowers[0].join("f0")).unwrap(), "0");
}

#[test]
fn a_layer_twice_in_the_chain() {
    let d = Dir::new("dup");
    let a = d.layer("a", &[("f", "a")]);
    let b = d.layer("b", &[("f", "b")]);
    let t = d.p("target");
    let _m = OverlayMount::new(&[a.clone(), b, a], None, &t, &d.p("empty")).unwrap();
    assert_eq!(fs::read_to_string(t.join("f")).unwrap(), "a", "the topmost occurrence counts");
}

#[test]
fn errors_name_the_path() {
    let d = Dir::new("errors");
    let a = d.layer("a", &[]);
    let missing = d.p("no-such-layer");
    let (t, u, w) = (d.p("target"), d.p("upper"), d.p("work"));
    let err = OverlayMount::new(&[a.clone(), missing.clone()], Some((&u, &w)), &t, &d.p("empty")).unwrap_err();
    assert!(err.to_string().contains(&format!("`{}`", missing.display())), "{err}");
    let err = OverlayMount::new(std::slice::from_ref(&a), Some((&u, &d.p("no-work"))), &t, &d.p("empty")).unwrap_err();
    assert!(err.to_string().contains("work directory") && err.to_string().contains("no-work"), "{err}");
    let file = d.p("file");
    fs::write(&file, "").unwrap();
    let err = OverlayMount::new(std::slice::from_ref(&file), None, &t, &d.p("empty")).unwrap_err();
    assert!(
        err.to_string().contains("is not a directory") && err.to_string().contains(&file.display().to_string()),
        "{err}"
    );
    let err = OverlayMount::new(&[a], None, &d.p("no-target"), &d.p("empty")).unwrap_err();
    assert!(err.to_string().contains("mount point") && err.to_string().contains("no-target"), "{err}");
    assert!(!mounted(&t));
}
