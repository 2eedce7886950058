//! Issue 13, faults: `kill -9` at many instants of every command that writes the store
//! (`load`, `save`, `rmi`, `tag`, `prune`), concurrent `rmi`/`tag`/`build` races, and a
//! store on a full filesystem. After each, `cairn check` finds nothing damaged, every
//! listed image can be saved, and a build gives what a clean store gives.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::build_cli::{busybox_archive, cairn, cairn_in, setup, stderr, Tmp, BIN};

/// Runs `cairn args` against `store` and kills it with SIGKILL after `after`.
fn kill_after(store: &Path, args: &[&str], after: Duration) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("CAIRN_ROOT", store)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let _ = child.kill();
    child.wait().unwrap();
}

fn ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what}: {}{}", String::from_utf8_lossy(&o.stdout), stderr(o));
}

/// The store is whole: `check` finds no damage, and every image `images` lists can be
/// saved into a docker-archive that tar reads.
fn assert_consistent(t: &Tmp, when: &str) {
    let store = t.path("store");
    ok(&cairn_in(&store, &["check"]), &format!("check after {when}"));
    let o = cairn_in(&store, &["images", "--format", "json"]);
    ok(&o, &format!("images after {when}"));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{when}: {e}: {line}"));
        let (repo, tag) = (v["Repository"].as_str().unwrap(), v["Tag"].as_str().unwrap());
        if repo == "<none>" {
            continue;
        }
        let name = format!("{repo}:{tag}");
        let out = t.path("check-save.tar");
        ok(&cairn_in(&store, &["save", "-o", out.to_str().unwrap(), &name]), &format!("save {name} after {when}"));
        let list = Command::new("tar").arg("-tf").arg(&out).output().unwrap();
        assert!(list.status.success(), "{when}: the saved {name} is no tar");
    }
}

fn build_images(t: &Tmp) {
    t.write("ctx/a.txt", &"a".repeat(200_000));
    t.write("ctx/Dockerfile", "FROM busybox\nCOPY a.txt /a.txt\nRUN seq 1 20000 > /seq && echo one > /one\n");
    ok(&cairn(t, &["build", "--progress", "plain", "-t", "app:1", t.path("ctx").to_str().unwrap()]), "build app:1");
    t.write("ctx2/Dockerfile", "FROM app:1\nRUN echo two > /two\n");
    ok(&cairn(t, &["build", "--progress", "plain", "-t", "app:2", t.path("ctx2").to_str().unwrap()]), "build app:2");
}

/// kill -9 of `load`, `save`, `rmi`, `tag` and `prune` at instants from 0 to 150 ms:
/// the store stays whole each time, and the command run again to the end does its work.
#[test]
fn issue13_kill_9_during_store_commands_leaves_a_whole_store() {
    let t = setup("faults-kill");
    build_images(&t);
    let store = t.path("store");
    let archive = busybox_archive().to_str().unwrap().to_string();
    let saved = t.path("saved.tar");
    let saved_s = saved.to_str().unwrap().to_string();
    let commands: Vec<Vec<&str>> = vec![
        vec!["save", "-o", &saved_s, "app:1", "app:2"],
        vec!["load", "-i", &archive],
        vec!["tag", "app:1", "other:1"],
        vec!["rmi", "app:2"],
        vec!["prune", "--all"],
        vec!["load", "-i", &saved_s],
    ];
    let mut kills = 0;
    for args in &commands {
        for ms in [0u64, 2, 5, 10, 20, 40, 80, 150] {
            kill_after(&store, args, Duration::from_millis(ms));
            kills += 1;
            assert_consistent(&t, &format!("kill -9 of `{}` at {ms} ms", args.join(" ")));
        }
        // Run to completion: the command still works on what the kills left (a killed
        // `rmi` may have finished its work: then the image is gone, as it should be).
        let o = cairn_in(&store, args);
        if !(args[0] == "rmi" && stderr(&o).contains("No such image: app:2")) {
            ok(&o, &format!("`{}` after the kills", args.join(" ")));
        }
        assert_consistent(&t, &format!("`{}`", args.join(" ")));
        if args[0] == "save" {
            let list = Command::new("tar").arg("-tf").arg(&saved).output().unwrap();
            assert!(String::from_utf8_lossy(&list.stdout).contains("manifest.json"));
        }
    }
    assert_eq!(kills, 48);
    // After it all: app:1 and app:2 came back from the saved archive, and a build on this
    // store gives the same files as a clean one.
    let o = cairn_in(&store, &["images"]);
    let listed = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(listed.contains("app") && listed.contains("other"), "{listed}");
    let out = t.path("out");
    let dest = format!("type=local,dest={}", out.display());
    ok(&cairn(&t, &["build", "--progress", "plain", "-o", &dest, t.path("ctx2").to_str().unwrap()]), "rebuild");
    assert_eq!(std::fs::read_to_string(out.join("one")).unwrap(), "one\n");
    assert_eq!(std::fs::read_to_string(out.join("two")).unwrap(), "two\n");
    assert_eq!(std::fs::read_to_string(out.join("seq")).unwrap().lines().count(), 20000);
}

/// `rmi`, `tag` and `build` racing on one store: every command either succeeds or fails
/// with a message (never a panic), and the store is whole afterwards.
#[test]
fn issue13_concurrent_rmi_tag_and_build_races() {
    let t = setup("faults-race");
    build_images(&t);
    let store = t.path("store");
    let ctx = t.path("ctx").to_str().unwrap().to_string();
    let ctx2 = t.path("ctx2").to_str().unwrap().to_string();
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for round in 0..4 {
            let (store, ctx, ctx2) = (&store, &ctx, &ctx2);
            handles.push(s.spawn(move || {
                let tag = format!("race:{round}");
                let mut outs = vec![cairn_in(store, &["tag", "app:1", &tag])];
                outs.push(cairn_in(store, &["build", "--progress", "plain", "-t", "app:2", ctx2]));
                outs.push(cairn_in(store, &["rmi", &tag]));
                outs.push(cairn_in(store, &["build", "--progress", "plain", "--no-cache", "-t", "app:1", ctx]));
                outs.push(cairn_in(store, &["rmi", "app:2"]));
                outs
            }));
        }
        for h in handles {
            for o in h.join().unwrap() {
                let err = stderr(&o);
                assert!(!err.contains("panicked"), "{err}");
                assert!(o.status.code().is_some(), "killed by a signal: {err}");
                if !o.status.success() {
                    assert!(!err.trim().is_empty(), "a failure without a message");
                }
            }
        }
    });
    assert_consistent(&t, "the races");
    ok(&cairn_in(&store, &["build", "--progress", "plain", "-t", "app:2", &ctx2]), "a build after the races");
}

/// A loop-mounted ext4 of 48 MiB as the store: a step that writes more than fits fails
/// with the kernel's reason and the step named, leaves no partial image, and after it the
/// store is whole and a small build works.
#[test]
fn issue13_a_full_store_filesystem_fails_clearly_and_loses_nothing() {
    let t = Tmp::new("faults-full");
    let img = t.path("fs.img");
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(48 << 20).unwrap();
    drop(f);
    let mk = Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&img).output().expect("mkfs.ext4 (e2fsprogs)");
    assert!(mk.status.success(), "{}", String::from_utf8_lossy(&mk.stderr));
    let mnt = t.path("store");
    std::fs::create_dir_all(&mnt).unwrap();
    let m = Command::new("mount").args(["-o", "loop"]).arg(&img).arg(&mnt).output().unwrap();
    assert!(m.status.success(), "mount -o loop: {}", String::from_utf8_lossy(&m.stderr));
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _u = Unmount(mnt.clone());
    ok(&cairn(&t, &["load", "-i", busybox_archive().to_str().unwrap()]), "load busybox");
    t.write("ctx/Dockerfile", "FROM busybox\nRUN dd if=/dev/zero of=/big bs=1M count=64\n");
    let o = cairn(&t, &["build", "--progress", "plain", "-t", "big:1", t.path("ctx").to_str().unwrap()]);
    let err = stderr(&o);
    assert!(!o.status.success(), "64 MiB fit into 48: {err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("RUN dd if=/dev/zero"), "the failing step is named: {err}");
    assert!(!String::from_utf8_lossy(&cairn(&t, &["images"]).stdout).contains("big"));
    assert_consistent(&t, "a full filesystem");
    ok(&cairn(&t, &["prune"]), "prune after a full filesystem");
    t.write("ctx/Dockerfile", "FROM busybox\nRUN echo small > /small\n");
    let out = t.path("out");
    let dest = format!("type=local,dest={}", out.display());
    ok(
        &cairn(&t, &["build", "--progress", "plain", "-t", "small:1", "-o", &dest, t.path("ctx").to_str().unwrap()]),
        "small build",
    );
    assert_eq!(std::fs::read_to_string(out.join("small")).unwrap(), "small\n");
    assert_consistent(&t, "a small build after the full one");
}
